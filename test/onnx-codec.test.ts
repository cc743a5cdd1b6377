import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { AttributeType, DATA_TYPES, DataType, decodeModel, encodeModel, int64, type onnx } from '../src/onnx/codec.js';
import { findEmbedding, readOnnx } from '../src/inference/onnx-reader.js';
import { GraphBuilder } from '../src/zoo/onnx/graph.js';
import { descriptor } from '../src/vendor/onnx/descriptor.js';
import { tmpDir } from './helpers/cli.js';

const schema = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);

/** A model with one graph holding these initializers (and no nodes). */
function modelWith(initializer: onnx.ITensorProto[]): Uint8Array {
  return encodeModel({ irVersion: 8, producerName: 'test', opsetImport: [{ version: 17 }], graph: { name: 'g', initializer } });
}

const le = (a: Float32Array | Float64Array | Int8Array | Uint16Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('the ONNX codec (protobufjs over the official onnx.proto)', () => {
  it('uses the codes of the official enums', () => {
    const dt = schema.lookupEnum('onnx.TensorProto.DataType').values;
    for (const [name, code] of Object.entries(DataType)) expect(dt[name], name).toBe(code);
    expect(Object.keys(DATA_TYPES).map(Number).sort((a, b) => a - b)).toEqual(Object.values(DataType).sort((a, b) => a - b));
    const at = schema.lookupEnum('onnx.AttributeProto.AttributeType').values;
    for (const [name, code] of Object.entries(AttributeType)) expect(at[name], name).toBe(code);
  });

  it('writes the protobuf wire format field by field (proto2: repeated scalars unpacked)', () => {
    const bytes = encodeModel({ graph: { initializer: [{ dims: [2, 3], dataType: DataType.INT8, name: 'w', rawData: new Uint8Array([1, 2, 3, 4, 5, 6]) }] } });
    // ModelProto.graph (7, bytes) → GraphProto.initializer (5, bytes) → TensorProto:
    // dims=1 varint ×2, data_type=2 varint, name=8 bytes, raw_data=9 bytes.
    const tensor = [0x08, 2, 0x08, 3, 0x10, 3, 0x42, 1, 0x77, 0x4a, 6, 1, 2, 3, 4, 5, 6];
    expect(Array.from(bytes)).toEqual([0x3a, tensor.length + 2, 0x2a, tensor.length, ...tensor]);
    // A negative int64 is ten bytes of two's complement.
    const attr = schema.lookupType('onnx.AttributeProto').encode({ name: 'a', i: -1 }).finish();
    expect(Array.from(attr)).toEqual([0x0a, 1, 0x61, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  });

  it('round-trips what the graph builder writes, and ONNX Runtime runs it', async () => {
    const g = new GraphBuilder('roundtrip');
    const x = g.input('x', DataType.FLOAT, ['batch', 3]);
    const w = g.initializer('w', Float32Array.from([1, 2, 3]), [3]);
    const y = g.op('Mul', [x, w]);
    const s = g.op('ReduceSum', [y, g.int64([-1])], { keepdims: 0 });
    const c = g.op('Clip', [s, g.float([0]), g.float([100])]);
    g.output('y', DataType.FLOAT, ['batch'], c);
    const bytes = g.encode({ producerName: 'modelprint-test', producerVersion: '1', metadata: { k: 'v' } });
    // Every attribute kind (on a node ONNX Runtime would refuse, so decoded only).
    const a = new GraphBuilder('attrs');
    a.op('Custom', [a.input('x', DataType.FLOAT, [1])], { note: 'text', tags: ['a', 'b'], eps: { float: 0.5 }, scales: { floats: [0.25, 2] }, axes: [-1, 2] }, 'ignored');
    const attrNode = decodeModel(a.encode({ producerName: 'p', producerVersion: '0' })).graph!.node![0];

    const m = decodeModel(bytes);
    expect([int64(m.irVersion), m.producerName, m.producerVersion]).toEqual([8, 'modelprint-test', '1']);
    expect(m.opsetImport.map((o) => [o.domain, int64(o.version)])).toEqual([['', 17]]);
    expect(m.metadataProps.map((p) => [p.key, p.value])).toEqual([['k', 'v']]);
    const graph = m.graph!;
    const dims = graph.input![0].type!.tensorType!.shape!.dim!;
    expect(dims.map((d) => d.dimParam || int64(d.dimValue))).toEqual(['batch', 3]);
    const attr: Record<string, onnx.IAttributeProto> = Object.fromEntries(attrNode.attribute!.map((x) => [x.name, x]));
    expect(Buffer.from(attr.note.s!).toString()).toBe('text');
    expect(attr.tags.strings!.map((b) => Buffer.from(b).toString())).toEqual(['a', 'b']);
    expect([attr.eps.f, attr.eps.type]).toEqual([0.5, AttributeType.FLOAT]);
    expect(attr.scales.floats).toEqual([0.25, 2]);
    expect(attr.axes.ints!.map(int64)).toEqual([-1, 2]);
    expect(Array.from(graph.initializer!.find((t) => t.name === 'w')!.rawData!)).toEqual(Array.from(le(Float32Array.from([1, 2, 3]))));

    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 1, 1, -1, 0, 0]), [2, 3]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([6, 0]);
    await session.release();
  });

  it('reads initializers of every float-convertible type, inline and external', () => {
    const dir = tmpDir('modelprint-onnx-');
    const ext = Float32Array.from([7, 8, 9, 10]);
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.concat([Buffer.alloc(16), le(ext)]));
    const file = path.join(dir, 'model.onnx');
    const bf16 = new Uint16Array(new Uint32Array(new Float32Array([1.5, -2]).buffer).map((u) => u >>> 16));
    fs.writeFileSync(
      file,
      modelWith([
        { name: 'f16', dims: [3], dataType: DataType.FLOAT16, rawData: le(Uint16Array.from([0x3c00, 0xc000, 0x3800])) },
        { name: 'bf16', dims: [2], dataType: DataType.BFLOAT16, rawData: le(bf16) },
        { name: 'f64', dims: [2], dataType: DataType.DOUBLE, rawData: le(Float64Array.from([0.25, -3])) },
        { name: 'i8', dims: [2], dataType: DataType.INT8, rawData: le(Int8Array.from([-5, 7])) },
        { name: 'packed', dims: [2], dataType: DataType.FLOAT, floatData: [1.25, 2.5] },
        {
          name: 'ext',
          dims: [2, 2],
          dataType: DataType.FLOAT,
          dataLocation: 1,
          externalData: [
            { key: 'location', value: 'weights.bin' },
            { key: 'offset', value: '16' },
            { key: 'length', value: '16' },
          ],
        },
        { name: 'ids', dims: [1], dataType: DataType.INT64, rawData: le(BigInt64Array.from([3n])) },
      ]),
    );
    const info = readOnnx(file);
    expect([info.irVersion, info.producer, info.opsets]).toEqual([8, 'test', [{ domain: '', version: 17 }]]);
    const get = (name: string) => info.initializers.find((i) => i.name === name)!;
    expect(Array.from(get('f16').floats())).toEqual([1, -2, 0.5]);
    expect(Array.from(get('bf16').floats())).toEqual([1.5, -2]);
    expect(Array.from(get('f64').floats())).toEqual([0.25, -3]);
    expect(Array.from(get('i8').floats())).toEqual([-5, 7]);
    expect(Array.from(get('packed').floats())).toEqual([1.25, 2.5]);
    expect([get('ext').dims, Array.from(get('ext').floats())]).toEqual([[2, 2], [7, 8, 9, 10]]);
    expect(() => get('ids').floats()).toThrow(/int64 is not numeric float data/);
    expect(findEmbedding(info)).toBeNull();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a file that is not a model', () => {
    const dir = tmpDir('modelprint-onnx-');
    const file = path.join(dir, 'bad.onnx');
    fs.writeFileSync(file, Buffer.from([0x3a, 0x40, 1, 2]));
    expect(() => readOnnx(file)).toThrow();
    fs.writeFileSync(file, encodeModel({ irVersion: 8 }));
    expect(() => readOnnx(file)).toThrow(/no graph/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
