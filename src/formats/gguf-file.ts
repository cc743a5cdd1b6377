/**
 * GGUF (llama.cpp) files: the header parser and ggml's dequantizers. Every count, string
 * length, dimension and tensor range is checked against the file before anything is
 * allocated, so a hostile or truncated file gives a `bad_gguf` ModelError naming the file
 * and the field or tensor; a tensor type without a dequantizer gives
 * `unsupported_gguf_type`.
 *
 * Layout (ggml/docs/gguf.md): magic "GGUF", version (2 or 3), tensor count, key/value
 * count (u64), the key/value pairs, the tensor infos (name, dims with ne[0] fastest, ggml
 * type, offset relative to the data section), padding to `general.alignment` (32), data.
 * The dequantizers follow ggml-quants.c (dequantize_row_q4_0 … dequantize_row_q6_K).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelError } from '../inference/errors.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

/** ggml tensor types: name, elements per block, bytes per block. */
export const GGML_TYPES: Record<number, { name: string; block: number; bytes: number }> = {
  0: { name: 'F32', block: 1, bytes: 4 },
  1: { name: 'F16', block: 1, bytes: 2 },
  2: { name: 'Q4_0', block: 32, bytes: 18 },
  3: { name: 'Q4_1', block: 32, bytes: 20 },
  6: { name: 'Q5_0', block: 32, bytes: 22 },
  7: { name: 'Q5_1', block: 32, bytes: 24 },
  8: { name: 'Q8_0', block: 32, bytes: 34 },
  9: { name: 'Q8_1', block: 32, bytes: 36 },
  10: { name: 'Q2_K', block: 256, bytes: 84 },
  11: { name: 'Q3_K', block: 256, bytes: 110 },
  12: { name: 'Q4_K', block: 256, bytes: 144 },
  13: { name: 'Q5_K', block: 256, bytes: 176 },
  14: { name: 'Q6_K', block: 256, bytes: 210 },
  15: { name: 'Q8_K', block: 256, bytes: 292 },
  16: { name: 'IQ2_XXS', block: 256, bytes: 66 },
  17: { name: 'IQ2_XS', block: 256, bytes: 74 },
  18: { name: 'IQ3_XXS', block: 256, bytes: 98 },
  19: { name: 'IQ1_S', block: 256, bytes: 50 },
  20: { name: 'IQ4_NL', block: 32, bytes: 18 },
  21: { name: 'IQ3_S', block: 256, bytes: 110 },
  22: { name: 'IQ2_S', block: 256, bytes: 82 },
  23: { name: 'IQ4_XS', block: 256, bytes: 136 },
  24: { name: 'I8', block: 1, bytes: 1 },
  25: { name: 'I16', block: 1, bytes: 2 },
  26: { name: 'I32', block: 1, bytes: 4 },
  27: { name: 'I64', block: 1, bytes: 8 },
  28: { name: 'F64', block: 1, bytes: 8 },
  29: { name: 'IQ1_M', block: 256, bytes: 56 },
  30: { name: 'BF16', block: 1, bytes: 2 },
  34: { name: 'TQ1_0', block: 256, bytes: 54 },
  35: { name: 'TQ2_0', block: 256, bytes: 66 },
  39: { name: 'MXFP4', block: 32, bytes: 17 },
};

/** The types this module dequantizes. */
export const DEQUANTIZABLE = ['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'] as const;

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  name: string;
  /** ne[0] first (the row length), as stored. */
  dims: number[];
  type: number;
  typeName: string;
  /** Absolute byte offset in the file and byte length. */
  offset: number;
  length: number;
  elements: number;
}

export interface GgufFile {
  file: string;
  version: number;
  size: number;
  mtimeMs: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensor>;
  alignment: number;
  dataStart: number;
  /** The header bytes (everything before the data section), for cache keys. */
  header: Buffer;
}

export const badGguf = (id: string, file: string, msg: string): ModelError =>
  new ModelError('bad_gguf', id, `${path.basename(file)}: ${msg}`, 'download the GGUF file again (it is truncated or not a GGUF file)');

/** Limits that keep a hostile header from exhausting memory before the file-size checks bite. */
const MAX_DIMS = 4;
const MAX_STRING = 1 << 24;
const MAX_ARRAY_DEPTH = 2;
/** Vocabularies are ≤ 300k tokens; merges lists a few hundred thousand. */
const MAX_ARRAY = 1 << 24;

/** Sequential reader over a file descriptor with every read bounded by the file size. */
class Reader {
  pos = 0;
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
    readonly fail: (msg: string) => ModelError,
  ) {}

  private need(n: number, what: string): Buffer {
    if (n < 0 || this.pos + n > this.size) throw this.fail(`${what} at byte ${this.pos} runs past the end of the file (${this.size} bytes)`);
    const rel = this.pos - this.bufStart;
    if (rel < 0 || rel + n > this.buf.length) {
      const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
      this.buf = Buffer.alloc(len);
      const got = fs.readSync(this.fd, this.buf, 0, len, this.pos);
      if (got < n) throw this.fail(`short read of ${what} at byte ${this.pos}`);
      this.bufStart = this.pos;
    }
    const start = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(start, start + n);
  }
  remaining(): number {
    return this.size - this.pos;
  }
  u32(w: string) {
    return this.need(4, w).readUInt32LE(0);
  }
  u64(w: string): bigint {
    return this.need(8, w).readBigUInt64LE(0);
  }
  /** One value of a fixed-size gguf_type (SCALARS). */
  scalar(type: number, w: string): GgufValue {
    const t = SCALARS[type]!;
    return t.read(this.need(t.bytes, w));
  }
  /** A u64 that must fit the file: a count whose items take at least `minBytes` each. */
  count(w: string, minBytes: number): number {
    const v = this.u64(w);
    if (v > BigInt(Math.floor(this.remaining() / Math.max(1, minBytes)))) throw this.fail(`${w} ${v} is more than the rest of the file can hold`);
    return Number(v);
  }
  str(w: string): string {
    const n = this.count(`length of ${w}`, 1);
    if (n > MAX_STRING) throw this.fail(`length of ${w} (${n}) exceeds 16 MiB`);
    return this.need(n, w).toString('utf8');
  }
}

// gguf_type: value types of the key/value section, with the least bytes one value takes.
const VALUE_MIN_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8 };

/** A 64-bit integer as a number when it is exact, else as a bigint. */
const exact = (v: bigint): number | bigint => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v);

// gguf_type values of a fixed size: their bytes and how one little-endian value reads.
const SCALARS: Record<number, { bytes: number; read: (b: Buffer) => GgufValue }> = {
  0: { bytes: 1, read: (b) => b.readUInt8(0) },
  1: { bytes: 1, read: (b) => b.readInt8(0) },
  2: { bytes: 2, read: (b) => b.readUInt16LE(0) },
  3: { bytes: 2, read: (b) => b.readInt16LE(0) },
  4: { bytes: 4, read: (b) => b.readUInt32LE(0) },
  5: { bytes: 4, read: (b) => b.readInt32LE(0) },
  6: { bytes: 4, read: (b) => b.readFloatLE(0) },
  7: { bytes: 1, read: (b) => b.readUInt8(0) !== 0 },
  10: { bytes: 8, read: (b) => exact(b.readBigUInt64LE(0)) },
  11: { bytes: 8, read: (b) => exact(b.readBigInt64LE(0)) },
  12: { bytes: 8, read: (b) => b.readDoubleLE(0) },
};

function readValue(r: Reader, type: number, key: string, depth: number): GgufValue {
  if (type in SCALARS) return r.scalar(type, key);
  if (type === 8) return r.str(key);
  if (type !== 9) throw badValue(r, key, `unknown value type ${type}`);
  if (depth >= MAX_ARRAY_DEPTH) throw badValue(r, key, 'arrays nested too deeply');
  const et = r.u32(`element type of ${key}`);
  if (!(et in VALUE_MIN_BYTES)) throw badValue(r, key, `unknown array element type ${et}`);
  const n = r.count(`element count of ${key}`, VALUE_MIN_BYTES[et]);
  if (n > MAX_ARRAY) throw badValue(r, key, `array of ${n} elements exceeds the limit of ${MAX_ARRAY}`);
  const out: GgufValue[] = new Array<GgufValue>(n);
  for (let i = 0; i < n; i++) out[i] = readValue(r, et, key, depth + 1);
  return out;
}

const badValue = (r: Reader, key: string, msg: string): ModelError => r.fail(`metadata "${key}": ${msg}`);

/** Parses a GGUF file's header and tensor directory (no tensor data is read). */
export function readGguf(file: string, id = file): GgufFile {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new ModelError('not_found', id, `cannot open ${file}: ${(e as Error).message}`);
  }
  const fail = (m: string) => badGguf(id, file, m);
  try {
    const st = fs.fstatSync(fd);
    const r = new Reader(fd, st.size, fail);
    if (st.size < 24) throw fail(`file has ${st.size} bytes, fewer than a GGUF header`);
    const magic = r.u32('magic');
    if (magic !== GGUF_MAGIC) throw fail(`bad magic 0x${magic.toString(16).padStart(8, '0')} (a GGUF file starts with "GGUF")`);
    const version = r.u32('version');
    if (version !== 2 && version !== 3) throw fail(`GGUF version ${version} is not supported (2 and 3 are)`);
    // A tensor info takes at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes.
    const nTensors = r.count('tensor count', 32);
    const nKv = r.count('key/value count', 13);
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = r.str(`key #${i}`);
      const type = r.u32(`type of "${key}"`);
      metadata.set(key, readValue(r, type, key, 0));
    }
    const alignRaw = metadata.get('general.alignment') ?? 32;
    const alignment = typeof alignRaw === 'number' ? alignRaw : -1;
    if (!Number.isInteger(alignment) || alignment <= 0 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0) {
      throw fail(`general.alignment ${String(alignRaw)} is not a power of two`);
    }
    const infos: Array<Omit<GgufTensor, 'offset' | 'length'> & { rel: bigint }> = [];
    for (let i = 0; i < nTensors; i++) {
      const name = r.str(`name of tensor #${i}`);
      const nDims = r.u32(`dimension count of tensor "${name}"`);
      if (nDims < 1 || nDims > MAX_DIMS) throw fail(`tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
      const dims: number[] = [];
      let elements = 1;
      for (let d = 0; d < nDims; d++) {
        const v = r.u64(`dimension ${d} of tensor "${name}"`);
        if (v === 0n || v > BigInt(st.size) * 8n) throw fail(`tensor "${name}" dimension ${d} is ${v}, impossible for a ${st.size}-byte file`);
        dims.push(Number(v));
        elements *= Number(v);
        if (!Number.isSafeInteger(elements) || elements > st.size * 8) throw fail(`tensor "${name}" has more elements (${dims.join('×')}) than the file can hold`);
      }
      const type = r.u32(`type of tensor "${name}"`);
      const rel = r.u64(`offset of tensor "${name}"`);
      const info = GGML_TYPES[type];
      infos.push({ name, dims, type, typeName: info?.name ?? `type ${type}`, elements, rel });
    }
    const dataStart = Math.ceil(r.pos / alignment) * alignment;
    if (dataStart > st.size) throw fail(`the data section would start at byte ${dataStart}, past the end of the file (${st.size} bytes)`);
    const dataLen = st.size - dataStart;
    const tensors = new Map<string, GgufTensor>();
    for (const t of infos) {
      if (tensors.has(t.name)) throw fail(`tensor "${t.name}" appears twice`);
      const info = GGML_TYPES[t.type];
      if (!info) throw new ModelError('unsupported_gguf_type', id, `${path.basename(file)}: tensor "${t.name}" has unknown ggml type ${t.type}`, 'the file is newer than this modelprint or corrupt');
      if (t.dims[0] % info.block !== 0) throw fail(`tensor "${t.name}" row length ${t.dims[0]} is not a multiple of the ${info.name} block size ${info.block}`);
      if (t.rel % BigInt(alignment) !== 0n) throw fail(`tensor "${t.name}" offset ${t.rel} is not aligned to ${alignment}`);
      const length = (t.elements / info.block) * info.bytes;
      if (t.rel > BigInt(dataLen) || Number(t.rel) + length > dataLen) {
        throw fail(`tensor "${t.name}" (${info.name}, ${t.dims.join('×')}, ${length} bytes at offset ${t.rel}) lies outside the data section (${dataLen} bytes)`);
      }
      tensors.set(t.name, { name: t.name, dims: t.dims, type: t.type, typeName: info.name, elements: t.elements, offset: dataStart + Number(t.rel), length });
    }
    const header = Buffer.alloc(Math.min(dataStart, 64 << 20));
    fs.readSync(fd, header, 0, header.length, 0);
    return { file, version, size: st.size, mtimeMs: st.mtimeMs, metadata, tensors, alignment, dataStart, header };
  } finally {
    fs.closeSync(fd);
  }
}

// ---- dequantization (ggml-quants.c) ----

const f16tab = new Float32Array(65536);
for (let h = 0; h < 65536; h++) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  f16tab[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}
const f16 = (b: Buffer, o: number): number => f16tab[b.readUInt16LE(o)];

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at q. */
/** Rounding to float32 where ggml computes in float. */
const fr = Math.fround;

/**
 * Q4_K and Q5_K super-blocks of 256 values: 8 sub-blocks with 6-bit (scale, min) pairs
 * and 4-bit quants; Q5_K adds a fifth bit per value from its qh[32] (ggml-quants.c).
 */
function dequantK45(src: Buffer, nb: number, y: Float32Array, high: boolean): void {
  const bytes = high ? 176 : 144;
  for (let i = 0; i < nb; i++) {
    const o = i * bytes;
    const d = f16(src, o);
    const min = f16(src, o + 2);
    const qh = o + 16;
    let q = high ? o + 48 : o + 16;
    let out = i * 256;
    let u1 = 1;
    let u2 = 2;
    for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
      const [sc1, m1] = scaleMinK4(is, src, o + 4);
      const [sc2, m2] = scaleMinK4(is + 1, src, o + 4);
      const d1 = fr(d * sc1);
      const mm1 = fr(min * m1);
      const d2 = fr(d * sc2);
      const mm2 = fr(min * m2);
      for (let l = 0; l < 32; l++) y[out++] = fr(d1 * ((src[q + l] & 0xf) + (high && src[qh + l] & u1 ? 16 : 0))) - mm1;
      for (let l = 0; l < 32; l++) y[out++] = fr(d2 * ((src[q + l] >> 4) + (high && src[qh + l] & u2 ? 16 : 0))) - mm2;
      q += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

function scaleMinK4(j: number, b: Buffer, q: number): [number, number] {
  if (j < 4) return [b[q + j] & 63, b[q + j + 4] & 63];
  return [(b[q + j + 4] & 0xf) | ((b[q + j - 4] >> 6) << 4), (b[q + j + 4] >> 4) | ((b[q + j] >> 6) << 4)];
}

/**
 * Dequantizes `elements` values of ggml type `type` from `src` into float32 (in f32
 * arithmetic, as ggml does). Throws `unsupported_gguf_type` for types without a dequantizer.
 */
export function dequantize(src: Buffer, type: number, elements: number, where: { id: string; file: string; tensor: string }): Float32Array {
  const info = GGML_TYPES[type];
  const y = new Float32Array(elements);
  const nb = elements / (info?.block ?? 1);
  switch (info?.name) {
    case 'F32':
      for (let i = 0; i < elements; i++) y[i] = src.readFloatLE(4 * i);
      return y;
    case 'F16':
      for (let i = 0; i < elements; i++) y[i] = f16(src, 2 * i);
      return y;
    case 'BF16': {
      const u = new Uint32Array(y.buffer);
      for (let i = 0; i < elements; i++) u[i] = src.readUInt16LE(2 * i) << 16;
      return y;
    }
    case 'Q4_0':
      for (let i = 0; i < nb; i++) {
        const o = i * 18;
        const d = f16(src, o);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 2 + j];
          y[i * 32 + j] = ((q & 0xf) - 8) * d;
          y[i * 32 + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return y;
    case 'Q4_1':
      for (let i = 0; i < nb; i++) {
        const o = i * 20;
        const d = f16(src, o);
        const m = f16(src, o + 2);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 4 + j];
          y[i * 32 + j] = fr((q & 0xf) * d) + m;
          y[i * 32 + j + 16] = fr((q >> 4) * d) + m;
        }
      }
      return y;
    case 'Q5_0':
      for (let i = 0; i < nb; i++) {
        const o = i * 22;
        const d = f16(src, o);
        const qh = src.readUInt32LE(o + 2);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 6 + j];
          const xh0 = ((qh >>> j) << 4) & 0x10;
          const xh1 = (qh >>> (j + 12)) & 0x10;
          y[i * 32 + j] = (((q & 0xf) | xh0) - 16) * d;
          y[i * 32 + j + 16] = (((q >> 4) | xh1) - 16) * d;
        }
      }
      return y;
    case 'Q5_1':
      for (let i = 0; i < nb; i++) {
        const o = i * 24;
        const d = f16(src, o);
        const m = f16(src, o + 2);
        const qh = src.readUInt32LE(o + 4);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 8 + j];
          const xh0 = ((qh >>> j) << 4) & 0x10;
          const xh1 = (qh >>> (j + 12)) & 0x10;
          y[i * 32 + j] = fr(((q & 0xf) | xh0) * d) + m;
          y[i * 32 + j + 16] = fr(((q >> 4) | xh1) * d) + m;
        }
      }
      return y;
    case 'Q8_0':
      for (let i = 0; i < nb; i++) {
        const o = i * 34;
        const d = f16(src, o);
        for (let j = 0; j < 32; j++) y[i * 32 + j] = src.readInt8(o + 2 + j) * d;
      }
      return y;
    case 'Q4_K':
      // block_q4_K: d, dmin (f16), scales[12], qs[128]
      dequantK45(src, nb, y, false);
      return y;
    case 'Q5_K':
      // block_q5_K: d, dmin (f16), scales[12], qh[32], qs[128]
      dequantK45(src, nb, y, true);
      return y;
    case 'Q6_K':
      // block_q6_K: ql[128], qh[64], scales[16] (int8), d (f16)
      for (let i = 0; i < nb; i++) {
        const o = i * 210;
        const d = f16(src, o + 208);
        let ql = o;
        let qh = o + 128;
        let sc = o + 192;
        let out = i * 256;
        for (let n = 0; n < 256; n += 128) {
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const h = src[qh + l];
            const q1 = ((src[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            y[out + l] = fr(d * src.readInt8(sc + is)) * q1;
            y[out + l + 32] = fr(d * src.readInt8(sc + is + 2)) * q2;
            y[out + l + 64] = fr(d * src.readInt8(sc + is + 4)) * q3;
            y[out + l + 96] = fr(d * src.readInt8(sc + is + 6)) * q4;
          }
          out += 128;
          ql += 64;
          qh += 32;
          sc += 8;
        }
      }
      return y;
    default:
      throw new ModelError(
        'unsupported_gguf_type',
        where.id,
        `${path.basename(where.file)}: tensor "${where.tensor}" is ${info?.name ?? `ggml type ${type}`}, which modelprint cannot dequantize`,
        `supported: ${DEQUANTIZABLE.join(', ')} (the Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0, F16 and F32 files); pick another quantization of the model with --gguf-quant`,
      );
  }
}
