import fs from 'node:fs';
import { DataType, GraphBuilder } from '../../src/zoo/onnx/graph.js';

/** A valid ONNX model whose inputs/outputs are not those of a causal LM (x → y). */
export function writeIdentityModel(file: string): void {
  const g = new GraphBuilder('odd');
  const x = g.input('pixel_values', DataType.FLOAT, ['batch', 3]);
  g.output('embeddings', DataType.FLOAT, ['batch', 3], g.op('Identity', [x]));
  fs.writeFileSync(file, g.encode({ producerName: 'modelprint-test', producerVersion: '0' }));
}
