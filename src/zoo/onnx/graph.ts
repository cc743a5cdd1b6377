/**
 * A small graph builder over the ONNX encoder: nodes get readable auto-generated
 * output names, constants become initializers, and the result encodes to a model file.
 */
import {
  DataType,
  encodeModel,
  leBytes,
  type AttrValue,
  type DataTypeId,
  type Dim,
  type GraphData,
  type NodeData,
  type TensorData,
  type ValueInfo,
} from './onnx.js';

export { DataType, type Dim } from './onnx.js';

export const IR_VERSION = 8;
export const OPSET = 17;

export class GraphBuilder {
  private readonly nodes: NodeData[] = [];
  private readonly initializers: TensorData[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private unique(base: string): string {
    let n = base;
    while (this.names.has(n)) n = `${base}_${++this.counter}`;
    this.names.add(n);
    return n;
  }

  input(name: string, elemType: DataTypeId, shape: Dim[]): string {
    if (this.names.has(name)) throw new Error(`graph value ${name} defined twice`);
    this.names.add(name);
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  /** Declares a graph output; `value` is renamed to `name` with an Identity when they differ. */
  output(name: string, elemType: DataTypeId, shape: Dim[], value?: string): string {
    if (value !== undefined && value !== name) {
      if (this.names.has(name)) throw new Error(`graph value ${name} defined twice`);
      this.names.add(name);
      this.nodes.push({ opType: 'Identity', inputs: [value], outputs: [name], name: `${name}_identity`, attributes: {} });
    }
    this.outputs.push({ name, elemType, shape });
    return name;
  }

  /** A float32 initializer (data is referenced, not copied). */
  initializer(name: string, data: Float32Array, dims: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(', ')}]`);
    if (this.names.has(name)) throw new Error(`graph value ${name} defined twice`);
    this.names.add(name);
    this.initializers.push({ name, dataType: DataType.FLOAT, dims, raw: leBytes(data) });
    return name;
  }

  /**
   * An initializer whose bytes stay in another file (ONNX external data): `location` is
   * relative to the model file, `offset`/`length` in bytes.
   */
  externalInitializer(name: string, dataType: DataTypeId, dims: number[], external: { location: string; offset: number; length: number }): string {
    if (this.names.has(name)) throw new Error(`graph value ${name} defined twice`);
    this.names.add(name);
    this.initializers.push({ name, dataType, dims, raw: new Uint8Array(0), external });
    return name;
  }

  /** An int64 constant (shared between uses); dims [] for a scalar. */
  int64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.unique(`const_i64_${values.join('_').replace(/-/g, 'm')}`);
    const raw = leBytes(BigInt64Array.from(values.map((v) => BigInt(v))));
    this.initializers.push({ name, dataType: DataType.INT64, dims, raw });
    this.constCache.set(key, name);
    return name;
  }

  /** A float32 constant (shared between uses); dims [] for a scalar. */
  float(values: number[], dims: number[] = [values.length]): string {
    const f = Float32Array.from(values);
    const key = `f32:${dims.join('x')}:${Array.from(f).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.unique(`const_f32_${this.counter++}`);
    this.initializers.push({ name, dataType: DataType.FLOAT, dims, raw: leBytes(f) });
    this.constCache.set(key, name);
    return name;
  }

  /** Adds a node with one output; returns the output name (`out` or generated from `prefix`). */
  op(opType: string, inputs: string[], attributes: Record<string, AttrValue> = {}, out?: string): string {
    return this.opN(opType, inputs, 1, attributes, out ? [out] : undefined)[0];
  }

  /** Adds a node with several outputs. */
  opN(opType: string, inputs: string[], nOutputs: number, attributes: Record<string, AttrValue> = {}, outs?: string[]): string[] {
    const base = `${this.scope}${opType}`;
    const nodeName = this.unique(`/${base}`);
    const outputs = outs ?? Array.from({ length: nOutputs }, (_, i) => this.unique(`${base}_out${i}`));
    if (outs) for (const o of outs) this.names.add(o);
    this.nodes.push({ opType, inputs, outputs, name: nodeName, attributes });
    return outputs;
  }

  /** Prefix for generated names (e.g. "model.layers.0/attn/"). */
  scope = '';

  build(): GraphData {
    return {
      name: this.name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
    };
  }

  /** Encodes the model file (ir_version 8, default-domain opset 17). */
  encode(opts: { producerName: string; producerVersion: string; docString?: string; metadata?: Record<string, string> }): Buffer {
    return encodeModel({
      irVersion: IR_VERSION,
      opsets: [{ domain: '', version: OPSET }],
      producerName: opts.producerName,
      producerVersion: opts.producerVersion,
      docString: opts.docString,
      metadata: opts.metadata,
      graph: this.build(),
    });
  }
}
