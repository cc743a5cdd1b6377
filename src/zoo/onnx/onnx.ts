/**
 * The model description the zoo builds (plain data) and its encoding with the project's
 * one ONNX codec (src/onnx/codec.ts: protobufjs over the official onnx.proto).
 */
import os from 'node:os';
import { AttributeType, DataType, encodeModel as encodeModelProto, type DataTypeId, type onnx } from '../../onnx/codec.js';

export { DataType, type DataTypeId };

/** A dimension: a fixed size or a symbolic name (dim_param). */
export type Dim = number | string;

export interface TensorData {
  name: string;
  dataType: DataTypeId;
  dims: number[];
  /** Little-endian element bytes (empty when `external` is set). */
  raw: Uint8Array;
  /** ONNX external data: the bytes live in `location` (relative to the model file) at `offset`. */
  external?: { location: string; offset: number; length: number };
}

export interface ValueInfo {
  name: string;
  elemType: DataTypeId;
  shape: Dim[];
}

/** A float attribute (plain numbers are encoded as int attributes). */
export interface FloatAttr {
  float: number;
}
export interface FloatsAttr {
  floats: number[];
}
export type AttrValue = number | number[] | string | string[] | FloatAttr | FloatsAttr | TensorData;

export interface NodeData {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  domain?: string;
  attributes: Record<string, AttrValue>;
}

export interface GraphData {
  name: string;
  nodes: NodeData[];
  initializers: TensorData[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  docString?: string;
}

export interface ModelData {
  irVersion: number;
  opsets: Array<{ domain: string; version: number }>;
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata?: Record<string, string>;
  graph: GraphData;
}

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** The little-endian bytes of a typed array (a view, no copy, on little-endian hosts). */
export function leBytes(a: Float32Array | BigInt64Array | Int32Array | Uint8Array): Uint8Array {
  const view = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE_ENDIAN || a.BYTES_PER_ELEMENT === 1) return view;
  const out = new Uint8Array(view.length);
  const w = a.BYTES_PER_ELEMENT;
  for (let i = 0; i < view.length; i += w) for (let j = 0; j < w; j++) out[i + j] = view[i + w - 1 - j];
  return out;
}

// ONNX external data: `location` (relative to the model file), `offset`, `length`; data_location EXTERNAL.
const tensorProto = (t: TensorData): onnx.ITensorProto =>
  t.external
    ? {
        dims: t.dims,
        dataType: t.dataType,
        name: t.name,
        externalData: [
          { key: 'location', value: t.external.location },
          { key: 'offset', value: String(t.external.offset) },
          { key: 'length', value: String(t.external.length) },
        ],
        dataLocation: 1,
      }
    : { dims: t.dims, dataType: t.dataType, name: t.name, rawData: t.raw };

const valueInfoProto = (v: ValueInfo): onnx.IValueInfoProto => ({
  name: v.name,
  type: {
    tensorType: {
      elemType: v.elemType,
      shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
    },
  },
});

const isFloatAttr = (v: AttrValue): v is FloatAttr => typeof v === 'object' && v !== null && 'float' in v;
const isFloatsAttr = (v: AttrValue): v is FloatsAttr => typeof v === 'object' && v !== null && 'floats' in v;
const isTensor = (v: AttrValue): v is TensorData => typeof v === 'object' && v !== null && 'raw' in v;
const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

function attributeProto(name: string, v: AttrValue): onnx.IAttributeProto {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use {float: x})`);
    return { name, i: v, type: AttributeType.INT };
  }
  if (typeof v === 'string') return { name, s: utf8(v), type: AttributeType.STRING };
  if (Array.isArray(v)) {
    if (v.length > 0 && v.every((x) => typeof x === 'string')) return { name, strings: (v as string[]).map(utf8), type: AttributeType.STRINGS };
    return { name, ints: v as number[], type: AttributeType.INTS };
  }
  if (isFloatAttr(v)) return { name, f: v.float, type: AttributeType.FLOAT };
  if (isFloatsAttr(v)) return { name, floats: v.floats, type: AttributeType.FLOATS };
  if (isTensor(v)) return { name, t: tensorProto(v), type: AttributeType.TENSOR };
  return { name };
}

function nodeProto(n: NodeData): onnx.INodeProto {
  return {
    input: n.inputs,
    output: n.outputs,
    name: n.name,
    opType: n.opType,
    attribute: Object.entries(n.attributes).map(([k, v]) => attributeProto(k, v)),
    ...(n.domain ? { domain: n.domain } : {}),
  };
}

function graphProto(g: GraphData): onnx.IGraphProto {
  return {
    node: g.nodes.map(nodeProto),
    name: g.name,
    initializer: g.initializers.map(tensorProto),
    ...(g.docString ? { docString: g.docString } : {}),
    input: g.inputs.map(valueInfoProto),
    output: g.outputs.map(valueInfoProto),
  };
}

/** Encodes a model file. */
export function encodeModel(m: ModelData): Buffer {
  const bytes = encodeModelProto({
    irVersion: m.irVersion,
    producerName: m.producerName,
    producerVersion: m.producerVersion,
    ...(m.docString ? { docString: m.docString } : {}),
    graph: graphProto(m.graph),
    opsetImport: m.opsets.map((o) => ({ ...(o.domain ? { domain: o.domain } : {}), version: o.version })),
    metadataProps: Object.entries(m.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
