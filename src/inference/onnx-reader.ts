/**
 * A small ONNX protobuf reader: graph nodes, inputs/outputs and initializers (inline
 * raw_data / float_data, or external data files), without running the model. Used by
 * the weight, architecture and input_output methods.
 */
import fs from 'node:fs';
import path from 'node:path';

export const ONNX_TYPES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

export interface OnnxInitializer {
  name: string;
  dims: number[];
  dataType: number;
  /** Loads the values as float32 (float16/bfloat16/float64/int8/uint8 converted). */
  floats(): Float32Array;
}

export interface OnnxNode {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
}

export interface OnnxGraphInfo {
  irVersion: number;
  opsets: Array<{ domain: string; version: number }>;
  producer: string;
  nodes: OnnxNode[];
  inputs: string[];
  outputs: string[];
  initializers: OnnxInitializer[];
}

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }
  get done(): boolean {
    return this.pos >= this.end;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  }
  /** Reads a tag; returns [field, wireType]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }
  bytes(): [number, number] {
    const len = this.varint();
    const s = this.pos;
    if (s + len > this.end) throw new Error('truncated field');
    this.pos += len;
    return [s, s + len];
  }
  string(): string {
    const [s, e] = this.bytes();
    return this.buf.toString('utf8', s, e);
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new Error('truncated field');
  }
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function readTensor(buf: Buffer, start: number, end: number, dir: string): OnnxInitializer {
  const r = new Reader(buf, start, end);
  let name = '';
  const dims: number[] = [];
  let dataType = 0;
  let raw: [number, number] | null = null;
  let floatData: [number, number] | null = null;
  const floatVals: number[] = [];
  const external: Record<string, string> = {};
  let location = 0;
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) {
      const [s, e] = r.bytes();
      const sub = new Reader(buf, s, e);
      while (!sub.done) dims.push(sub.varint());
    } else if (f === 1 && w === 0) dims.push(r.varint());
    else if (f === 2 && w === 0) dataType = r.varint();
    else if (f === 4 && w === 2) floatData = r.bytes();
    else if (f === 4 && w === 5) {
      floatVals.push(buf.readFloatLE(r.pos));
      r.pos += 4;
    } else if (f === 8 && w === 2) name = r.string();
    else if (f === 9 && w === 2) raw = r.bytes();
    else if (f === 13 && w === 2) {
      const [s, e] = r.bytes();
      const sub = new Reader(buf, s, e);
      let k = '';
      let v = '';
      while (!sub.done) {
        const [ff, ww] = sub.tag();
        if (ff === 1 && ww === 2) k = sub.string();
        else if (ff === 2 && ww === 2) v = sub.string();
        else sub.skip(ww);
      }
      external[k] = v;
    } else if (f === 14 && w === 0) location = r.varint();
    else r.skip(w);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  const floats = (): Float32Array => {
    let bytes: Buffer;
    if (location === 1) {
      const file = path.join(dir, external.location ?? '');
      const offset = Number(external.offset ?? 0);
      const length = Number(external.length ?? 0) || count * bytesPer(dataType);
      const fd = fs.openSync(file, 'r');
      try {
        bytes = Buffer.alloc(length);
        fs.readSync(fd, bytes, 0, length, offset);
      } finally {
        fs.closeSync(fd);
      }
    } else if (raw) bytes = buf.subarray(raw[0], raw[1]);
    else if (floatData) bytes = buf.subarray(floatData[0], floatData[1]);
    else if (floatVals.length) return Float32Array.from(floatVals);
    else return new Float32Array(0);
    const out = new Float32Array(count);
    const dt = floatData && !raw ? 1 : dataType;
    for (let i = 0; i < count; i++) {
      switch (dt) {
        case 1:
          out[i] = bytes.readFloatLE(i * 4);
          break;
        case 10:
          out[i] = f16(bytes.readUInt16LE(i * 2));
          break;
        case 16:
          out[i] = new Float32Array(new Uint32Array([bytes.readUInt16LE(i * 2) << 16]).buffer)[0];
          break;
        case 11:
          out[i] = bytes.readDoubleLE(i * 8);
          break;
        case 3:
          out[i] = bytes.readInt8(i);
          break;
        case 2:
          out[i] = bytes.readUInt8(i);
          break;
        default:
          throw new Error(`initializer ${name}: data type ${ONNX_TYPES[dt] ?? dt} is not numeric float data`);
      }
    }
    return out;
  };
  return { name, dims, dataType, floats };
}

function bytesPer(dt: number): number {
  return { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 }[dt] ?? 4;
}

function readNode(buf: Buffer, start: number, end: number): OnnxNode {
  const r = new Reader(buf, start, end);
  const node: OnnxNode = { opType: '', domain: '', inputs: [], outputs: [] };
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) node.inputs.push(r.string());
    else if (f === 2 && w === 2) node.outputs.push(r.string());
    else if (f === 4 && w === 2) node.opType = r.string();
    else if (f === 7 && w === 2) node.domain = r.string();
    else r.skip(w);
  }
  return node;
}

function valueInfoName(buf: Buffer, start: number, end: number): string {
  const r = new Reader(buf, start, end);
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) return r.string();
    r.skip(w);
  }
  return '';
}

/** Parses an ONNX model file (weights are read lazily via `floats()`). */
export function readOnnx(file: string): OnnxGraphInfo {
  const buf = fs.readFileSync(file);
  const dir = path.dirname(file);
  const info: OnnxGraphInfo = { irVersion: 0, opsets: [], producer: '', nodes: [], inputs: [], outputs: [], initializers: [] };
  const r = new Reader(buf);
  let graph: [number, number] | null = null;
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1 && w === 0) info.irVersion = r.varint();
    else if (f === 2 && w === 2) info.producer = r.string();
    else if (f === 7 && w === 2) graph = r.bytes();
    else if (f === 8 && w === 2) {
      const [s, e] = r.bytes();
      const sub = new Reader(buf, s, e);
      const op = { domain: '', version: 0 };
      while (!sub.done) {
        const [ff, ww] = sub.tag();
        if (ff === 1 && ww === 2) op.domain = sub.string();
        else if (ff === 2 && ww === 0) op.version = sub.varint();
        else sub.skip(ww);
      }
      info.opsets.push(op);
    } else r.skip(w);
  }
  if (!graph) throw new Error(`${file}: no graph in the ONNX model`);
  const g = new Reader(buf, graph[0], graph[1]);
  while (!g.done) {
    const [f, w] = g.tag();
    if (w !== 2) {
      g.skip(w);
      continue;
    }
    const [s, e] = g.bytes();
    if (f === 1) info.nodes.push(readNode(buf, s, e));
    else if (f === 5) info.initializers.push(readTensor(buf, s, e, dir));
    else if (f === 11) info.inputs.push(valueInfoName(buf, s, e));
    else if (f === 12) info.outputs.push(valueInfoName(buf, s, e));
  }
  return info;
}

/** The token embedding: the initializer a Gather reads with input_ids as indices. */
export function findEmbedding(info: OnnxGraphInfo): OnnxInitializer | null {
  const byName = new Map(info.initializers.map((i) => [i.name, i]));
  for (const n of info.nodes) {
    if (n.opType === 'Gather' && n.inputs[1] === 'input_ids' && byName.has(n.inputs[0])) {
      const init = byName.get(n.inputs[0])!;
      if (init.dims.length === 2) return init;
    }
  }
  // Fallback: the largest 2-D initializer whose name says embed.
  const cands = info.initializers.filter((i) => i.dims.length === 2 && /embed|wte|tok/i.test(i.name));
  cands.sort((a, b) => b.dims[0] * b.dims[1] - a.dims[0] * a.dims[1]);
  return cands[0] ?? null;
}
