/**
 * A checkpoint whose quantized weights are dequantized in JavaScript into one file next to
 * the cached graph (bitsandbytes: quant-bnb.ts, GPTQ / AWQ: quant-gptq.ts): the planner
 * reads headers only and gives every quantized weight its final entry in that file (float32,
 * or a half-precision dtype that holds the values exactly); `write` then dequantizes one
 * tensor at a time (its packed bytes and its float32 result in memory, nothing else), and
 * the graph reads the file as ordinary external data. hf-checkpoint.ts places the file
 * (cache folder or next to the weights, written before the graph).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { messageOf } from '../errors.js';
import { ModelError } from '../inference/errors.js';
import type { Checkpoint, RawTensorEntry, TensorEntry } from './safetensors.js';
import { halfTable } from '../util/half.js';

/** The file name of the dequantized tensors next to the graph. */
export const DEQUANT_FILE = 'dequantized.bin';

export interface DequantizedCheckpoint {
  /** The float tensors as stored, and each quantized weight as an entry of `dequantFile`. */
  ckpt: Checkpoint;
  /** Stands for the file `write` makes (the entries' offsets in it are final). */
  dequantFile: string;
  /** e.g. "NF4 (double quant)", "LLM.int8()", "gptq 4-bit group 128 sym (format gptq)". */
  method: string;
  quantized: number;
  /** Bytes that `write` produces. */
  bytes: number;
  /** Dequantizes every quantized weight into `dest`, one tensor in memory at a time. */
  write(dest: string): void;
}

/** A tensor's packed bytes, read on demand (one descriptor per file, closed by `close`). */
export class TensorReader {
  private fds = new Map<string, number>();
  constructor(private readonly corrupt: (t: RawTensorEntry, msg: string) => ModelError) {}

  read(t: RawTensorEntry): Buffer {
    let h = this.fds.get(t.file);
    if (h === undefined) {
      h = fs.openSync(t.file, 'r');
      this.fds.set(t.file, h);
    }
    // Buffer.alloc never comes from the shared pool: byteOffset 0, so typed views line up.
    const buf = Buffer.alloc(t.length);
    if (fs.readSync(h, buf, 0, t.length, t.offset) !== t.length) throw this.corrupt(t, 'short read');
    return buf;
  }

  /** Little-endian 32-bit words of a tensor (a view where the host is little-endian). */
  words(t: RawTensorEntry): Uint32Array {
    const b = this.read(t);
    if (LITTLE) return new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
    const y = new Uint32Array(b.length >> 2);
    for (let i = 0; i < y.length; i++) y[i] = b.readUInt32LE(i * 4);
    return y;
  }

  /** A float tensor (F32, F16 or BF16) as float32 (exact: every value is representable). */
  floats(t: RawTensorEntry): Float32Array {
    const b = this.read(t);
    let y: Float32Array;
    if (t.dtype === 'F32') {
      y = new Float32Array(b.length >> 2);
      for (let i = 0; i < y.length; i++) y[i] = b.readFloatLE(i * 4);
    } else if (t.dtype === 'F16') {
      const table = halfTable();
      y = new Float32Array(b.length >> 1);
      for (let i = 0; i < y.length; i++) y[i] = table[b.readUInt16LE(i * 2)];
    } else if (t.dtype === 'BF16') {
      y = new Float32Array(b.length >> 1);
      const u = new Uint32Array(y.buffer);
      for (let i = 0; i < y.length; i++) u[i] = b.readUInt16LE(i * 2) << 16;
    } else {
      throw this.corrupt(t, `dtype ${t.dtype} where float values belong`);
    }
    for (let i = 0; i < y.length; i++) if (!Number.isFinite(y[i])) throw this.corrupt(t, `non-finite value at element ${i}`);
    return y;
  }

  close(): void {
    for (const h of this.fds.values()) fs.closeSync(h);
    this.fds.clear();
  }
}

const LITTLE = os.endianness() === 'LE';

/** An entry stored in half precision: `encode` turns the (already rounded, finite) values into its bytes. */
export interface HalfEncoding {
  dtype: 'F16' | 'BF16';
  encode: (y: Float32Array) => Buffer;
}

interface Planned {
  entry: TensorEntry;
  /** The file named when its values turn out non-finite. */
  source: string;
  dequant: () => Float32Array;
  half?: HalfEncoding;
}

/**
 * The file being planned: `place` gives each quantized weight its final entry (64-byte
 * aligned), `finish` the DequantizedCheckpoint that writes it.
 */
export class DequantPlan {
  readonly file: string;
  private offset = 0;
  private readonly plans: Planned[] = [];

  constructor(
    dir: string,
    private readonly id: string,
    private readonly corrupt: (name: string, file: string, msg: string) => ModelError,
  ) {
    this.file = path.join(dir, DEQUANT_FILE);
  }

  get count(): number {
    return this.plans.length;
  }

  /**
   * The entry of `shape` for `name`, dequantized by `dequant` (row-major float32 values,
   * `shape`'s element count): float32, or `half`'s dtype.
   */
  place(name: string, shape: number[], source: string, dequant: () => Float32Array, half?: HalfEncoding): TensorEntry {
    const length = shape.reduce((a, b) => a * b, 1) * (half ? 2 : 4);
    if (!Number.isSafeInteger(this.offset + length)) throw this.corrupt(name, this.file, 'the dequantized checkpoint exceeds the largest file size');
    const entry: TensorEntry = { name, file: this.file, dtype: half ? half.dtype : 'F32', shape, offset: this.offset, length };
    this.offset = Math.ceil((this.offset + length) / 64) * 64;
    this.plans.push({ entry, source, dequant, half });
    return entry;
  }

  finish(base: Omit<Checkpoint, 'tensors'>, tensors: Map<string, TensorEntry>, method: string, what: string, reader: TensorReader): DequantizedCheckpoint {
    const total = this.offset;
    const writeAll = (dest: string): void => {
      const out = fs.openSync(dest, 'w');
      try {
        for (const p of this.plans) {
          const y = p.dequant();
          for (let i = 0; i < y.length; i++) {
            if (!Number.isFinite(y[i])) throw this.corrupt(p.entry.name, p.source, `dequantizes to a non-finite value at element ${i}`);
          }
          let bytes: Buffer;
          if (p.half) {
            bytes = p.half.encode(y);
          } else {
            bytes = Buffer.from(y.buffer, y.byteOffset, y.byteLength);
            if (!LITTLE) for (let i = 0; i < y.length; i++) bytes.writeFloatLE(y[i], i * 4);
          }
          if (bytes.length !== p.entry.length) throw new Error(`internal: ${p.entry.name} dequantized to ${bytes.length} bytes, planned ${p.entry.length}`);
          fs.writeSync(out, bytes, 0, bytes.length, p.entry.offset);
        }
        if (total > 0) fs.ftruncateSync(out, total);
      } finally {
        fs.closeSync(out);
        reader.close();
      }
    };
    const write = (dest: string): void => {
      try {
        writeAll(dest);
      } catch (e) {
        if (e instanceof ModelError) throw e;
        throw new ModelError('load_failed', this.id, `cannot write the dequantized ${what} weights (${total} bytes) to ${dest}: ${messageOf(e)}`, 'set MODELPRINT_CACHE_DIR to a writable folder with room for the dequantized weights');
      }
    };
    return { ckpt: { files: base.files, tensors, fingerprint: base.fingerprint }, dequantFile: this.file, method, quantized: this.plans.length, bytes: total, write };
  }
}
