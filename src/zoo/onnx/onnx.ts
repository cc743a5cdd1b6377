/**
 * Encoders for the ONNX protobuf messages a decoder-only language model needs
 * (field numbers from onnx/onnx.proto, IR version 8).
 */
import os from 'node:os';
import { ProtoWriter } from './protobuf.js';

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, BFLOAT16: 16 } as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

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

// TensorProto: dims=1, data_type=2, name=8, raw_data=9, external_data=13
// (StringStringEntryProto: key=1, value=2), data_location=14 (EXTERNAL = 1).
function encodeTensor(t: TensorData): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.external) {
    const e = t.external;
    for (const [k, v] of [['location', e.location], ['offset', String(e.offset)], ['length', String(e.length)]]) {
      w.message(13, new ProtoWriter().string(1, k).string(2, v));
    }
    w.int(14, 1);
  } else {
    w.bytes(9, t.raw);
  }
  return w;
}

// TensorShapeProto.Dimension: dim_value=1, dim_param=2. TensorShapeProto: dim=1.
// TypeProto.Tensor: elem_type=1, shape=2. TypeProto: tensor_type=1. ValueInfoProto: name=1, type=2.
function encodeValueInfo(v: ValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, v.elemType).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

const isFloatAttr = (v: AttrValue): v is FloatAttr => typeof v === 'object' && v !== null && 'float' in v;
const isFloatsAttr = (v: AttrValue): v is FloatsAttr => typeof v === 'object' && v !== null && 'floats' in v;
const isTensor = (v: AttrValue): v is TensorData => typeof v === 'object' && v !== null && 'raw' in v;

// AttributeProto: name=1, f=2, i=3, s=4, t=5, floats=7, ints=8, strings=9, type=20.
function encodeAttribute(name: string, v: AttrValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use {float: x})`);
    w.int(3, v).int(20, AttrType.INT);
  } else if (typeof v === 'string') {
    w.string(4, v).int(20, AttrType.STRING);
  } else if (Array.isArray(v)) {
    if (v.length > 0 && v.every((x) => typeof x === 'string')) {
      for (const s of v as string[]) w.string(9, s);
      w.int(20, AttrType.STRINGS);
    } else {
      for (const x of v as number[]) w.int(8, x);
      w.int(20, AttrType.INTS);
    }
  } else if (isFloatAttr(v)) {
    w.float(2, v.float).int(20, AttrType.FLOAT);
  } else if (isFloatsAttr(v)) {
    for (const x of v.floats) w.float(7, x);
    w.int(20, AttrType.FLOATS);
  } else if (isTensor(v)) {
    w.message(5, encodeTensor(v)).int(20, AttrType.TENSOR);
  }
  return w;
}

// NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, domain=7.
function encodeNode(n: NodeData): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes)) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

// GraphProto: node=1, name=2, initializer=5, doc_string=10, input=11, output=12.
function encodeGraph(g: GraphData): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  if (g.docString) w.string(10, g.docString);
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  return w;
}

/**
 * ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7,
 * opset_import=8 (OperatorSetIdProto: domain=1, version=2), metadata_props=14
 * (StringStringEntryProto: key=1, value=2).
 */
export function encodeModel(m: ModelData): Buffer {
  const w = new ProtoWriter();
  w.int(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, encodeGraph(m.graph));
  for (const o of m.opsets) {
    const op = new ProtoWriter();
    if (o.domain) op.string(1, o.domain);
    op.int(2, o.version);
    w.message(8, op);
  }
  for (const [k, v] of Object.entries(m.metadata ?? {})) w.message(14, new ProtoWriter().string(1, k).string(2, v));
  return w.toBuffer();
}
