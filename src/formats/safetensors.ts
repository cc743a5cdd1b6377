/**
 * Reads the tensor directory of safetensors checkpoints (single file or shards with
 * `model.safetensors.index.json`) without loading any weights. Every header field is
 * checked against the file before use: a hostile or truncated file gives a
 * `corrupt_safetensors` ModelError naming the file and the tensor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelError } from '../inference/errors.js';
import { cacheRepoOf } from '../inference/hub.js';
import { confinedPath } from '../util/paths.js';

/** I32 only in quantized checkpoints (GPTQ / AWQ packed weights and g_idx). */
export type StDtype = 'F32' | 'F16' | 'BF16' | 'I32';

const ELEM_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1, U16: 2, U32: 4, U64: 8 };

/** The format's own limit on the JSON header (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  /** Absolute path of the file that holds it. */
  file: string;
  dtype: StDtype;
  shape: number[];
  /** Absolute byte offset in `file` and byte length. */
  offset: number;
  length: number;
}

export interface Checkpoint {
  files: string[];
  tensors: Map<string, TensorEntry>;
  /** A digest input: every file's header bytes, size and mtime. */
  fingerprint: string[];
}

const EntrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});

const corrupt = (id: string, file: string, msg: string): ModelError =>
  new ModelError('corrupt_safetensors', id, `${path.basename(file)}: ${msg}`, 'download the checkpoint again (the file is truncated or not a safetensors file)');

/** A tensor of any safetensors dtype (quantized checkpoints: U8, I8, I32 …). */
export interface RawTensorEntry extends Omit<TensorEntry, 'dtype'> {
  dtype: string;
}

/** Parses one safetensors file's header; returns its tensors (offsets absolute). */
export function readSafetensorsHeader(file: string, id = file, opts: { int32?: boolean } = {}): { tensors: TensorEntry[]; header: Buffer; size: number; mtimeMs: number } {
  const h = readSafetensorsHeaderRaw(file, id);
  for (const t of h.tensors) {
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16' && !(t.dtype === 'I32' && opts.int32)) {
      throw new ModelError('unsupported_safetensors', id, `${path.basename(file)}: tensor "${t.name}" has dtype ${t.dtype}; only F32, F16 and BF16 checkpoints are supported`, 'quantized checkpoints (GPTQ/AWQ/bitsandbytes) need their full-precision base');
    }
  }
  return h as { tensors: TensorEntry[]; header: Buffer; size: number; mtimeMs: number };
}

/** readSafetensorsHeader without the dtype check: every dtype the format knows, each size checked against the file. */
export function readSafetensorsHeaderRaw(file: string, id = file): { tensors: RawTensorEntry[]; header: Buffer; size: number; mtimeMs: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new ModelError('not_found', id, `cannot open ${file}: ${(e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    const size = st.size;
    if (size < 8) throw corrupt(id, file, `file has ${size} bytes, fewer than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = lenBuf.readBigUInt64LE(0);
    if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
      throw corrupt(id, file, `header length ${headerLen} exceeds the file (${size} bytes) or the 100 MB limit`);
    }
    const n = Number(headerLen);
    const header = Buffer.alloc(n);
    if (fs.readSync(fd, header, 0, n, 8) !== n) throw corrupt(id, file, 'short read of the header');
    let json: unknown;
    try {
      json = JSON.parse(header.toString('utf8'));
    } catch (e) {
      throw corrupt(id, file, `header is not valid JSON (${(e as Error).message})`);
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw corrupt(id, file, 'header is not a JSON object');
    const dataStart = 8 + n;
    const dataLen = size - dataStart;
    const tensors: RawTensorEntry[] = [];
    for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const parsed = EntrySchema.safeParse(raw);
      if (!parsed.success) throw corrupt(id, file, `tensor "${name}": ${parsed.error.issues[0].path.join('.')} ${parsed.error.issues[0].message}`);
      const { dtype, shape, data_offsets: [begin, end] } = parsed.data;
      const elem = ELEM_SIZE[dtype];
      if (!elem) throw corrupt(id, file, `tensor "${name}": unknown dtype ${dtype}`);
      if (begin > end || end > dataLen) throw corrupt(id, file, `tensor "${name}": data_offsets [${begin}, ${end}] outside the data section (${dataLen} bytes)`);
      const count = shape.reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(count * elem) || count * elem !== end - begin) {
        throw corrupt(id, file, `tensor "${name}": ${end - begin} bytes for shape [${shape.join(', ')}] of ${dtype}`);
      }
      tensors.push({ name, file, dtype, shape, offset: dataStart + begin, length: end - begin });
    }
    return { tensors, header, size, mtimeMs: st.mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}

const IndexSchema = z.object({ weight_map: z.record(z.string(), z.string()) });

/** The checkpoint's files: model.safetensors, the shards of the index, or the folder's single .safetensors. */
export function checkpointFiles(dir: string, id: string): string[] {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return [single];
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(indexFile)) {
    let parsed;
    try {
      parsed = IndexSchema.safeParse(JSON.parse(fs.readFileSync(indexFile, 'utf8')));
    } catch (e) {
      throw corrupt(id, indexFile, `not valid JSON (${(e as Error).message})`);
    }
    if (!parsed.success) throw corrupt(id, indexFile, 'has no weight_map object of strings');
    const names = [...new Set(Object.values(parsed.data.weight_map))].sort();
    const realRoot = cacheRepoOf(dir)?.repoFolder ?? dir;
    for (const n of names) {
      if (n !== path.basename(n) || n === '..' || n === '.') throw corrupt(id, indexFile, `shard name "${n}" is not a plain file name`);
      if (!fs.existsSync(path.join(dir, n))) throw new ModelError('not_found', id, `shard ${n} listed in model.safetensors.index.json is missing`, 'download the complete checkpoint');
      // A shard that links out of the folder (or the cache repo), or is no regular file: unsafe_path.
      confinedPath(dir, n, { id, field: 'model.safetensors.index.json: weight_map shard', realRoot });
    }
    return names.map((n) => path.join(dir, n));
  }
  const all = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors') && f !== 'adapter_model.safetensors');
  if (all.length === 1) return [path.join(dir, all[0])];
  throw new ModelError('unsupported_safetensors', id, `found ${all.length} .safetensors files and no model.safetensors.index.json`, 'add the index file of the sharded checkpoint');
}

/** Opens the tensor directory of a checkpoint folder. */
export function openCheckpoint(dir: string, id: string, opts: { int32?: boolean } = {}): Checkpoint {
  return openCheckpointWith(dir, id, (f, i) => readSafetensorsHeader(f, i, opts));
}

/** openCheckpoint with tensors of every dtype (quantized checkpoints: src/formats/quant-*.ts). */
export function openCheckpointRaw(dir: string, id: string): { files: string[]; tensors: Map<string, RawTensorEntry>; fingerprint: string[] } {
  return openCheckpointWith(dir, id, readSafetensorsHeaderRaw);
}

function openCheckpointWith<T extends RawTensorEntry>(dir: string, id: string, read: (file: string, id: string) => { tensors: T[]; header: Buffer; size: number; mtimeMs: number }): { files: string[]; tensors: Map<string, T>; fingerprint: string[] } {
  const files = checkpointFiles(dir, id);
  const tensors = new Map<string, T>();
  const fingerprint: string[] = [];
  for (const f of files) {
    const h = read(f, id);
    fingerprint.push(`${path.basename(f)}:${h.size}:${h.mtimeMs}:${h.header.toString('utf8')}`);
    for (const t of h.tensors) {
      if (tensors.has(t.name)) throw corrupt(id, f, `tensor "${t.name}" appears in two shards`);
      tensors.set(t.name, t);
    }
  }
  return { files, tensors, fingerprint };
}
