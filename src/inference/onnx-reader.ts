/**
 * ONNX model reader: graph nodes, inputs/outputs and initializers (inline raw_data /
 * float_data, or external data files), without running the model. Decoding is the
 * project's one ONNX codec (src/onnx/codec.ts); initializer values are converted lazily.
 * Used by the weight, architecture and input_output methods.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelError } from './errors.js';
import { cacheRepoOf } from './hub.js';
import { confinedPath, openRegularFile } from '../util/paths.js';
import { DATA_TYPES, DataType, EXTERNAL, decodeModel, int64, type onnx } from '../onnx/codec.js';

/** ONNX data type code → element name (from the codec's one table). */
export const ONNX_TYPES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(DATA_TYPES).map(([k, v]) => [k, v.name]));

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

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Reads external data (TensorProto.external_data: location, offset, length) relative to the
 * model's folder. The location is confined to that folder (regular files only, see
 * src/util/paths.ts) and the byte range must lie inside the file: a hostile `location`
 * (`../../etc/passwd`, an absolute path, a link out, a FIFO) is an `unsafe_path` error.
 */
function readExternal(t: onnx.ITensorProto, src: OnnxSource, count: number): Buffer {
  const external: Record<string, string> = {};
  for (const e of t.externalData ?? []) external[e.key ?? ''] = e.value ?? '';
  const field = `${path.basename(src.file)}: external_data location of initializer "${t.name ?? ''}"`;
  const file = confinedPath(src.dir, external.location ?? '', { id: src.id, field, realRoot: src.realRoot });
  const offset = Number(external.offset ?? 0);
  const length = Number(external.length ?? 0) || count * (DATA_TYPES[t.dataType ?? 0]?.bytes ?? 4);
  const { fd, size } = openRegularFile(file, { id: src.id, field });
  try {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new ModelError('corrupt_onnx', src.id, `${field}: bytes ${external.offset ?? 0}+${external.length ?? length} lie outside ${external.location} (${size} bytes)`, 'download the model again');
    }
    const bytes = Buffer.alloc(length);
    fs.readSync(fd, bytes, 0, length, offset);
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

/** The model file, the folder its external data is confined to and the model id for errors. */
interface OnnxSource {
  file: string;
  dir: string;
  realRoot: string;
  id: string;
}

function initializer(t: onnx.ITensorProto, src: OnnxSource): OnnxInitializer {
  const dims = (t.dims ?? []).map(int64);
  const name = t.name ?? '';
  const dataType = t.dataType ?? 0;
  const count = dims.reduce((a, b) => a * b, 1);
  const floats = (): Float32Array => {
    let data: Uint8Array;
    if (t.dataLocation === EXTERNAL) data = readExternal(t, src, count);
    else if (t.rawData?.length) data = t.rawData;
    else if (t.floatData?.length) return Float32Array.from(t.floatData);
    else return new Float32Array(0);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      switch (dataType) {
        case DataType.FLOAT:
          out[i] = bytes.readFloatLE(i * 4);
          break;
        case DataType.FLOAT16:
          out[i] = f16(bytes.readUInt16LE(i * 2));
          break;
        case DataType.BFLOAT16:
          out[i] = new Float32Array(new Uint32Array([bytes.readUInt16LE(i * 2) << 16]).buffer)[0];
          break;
        case DataType.DOUBLE:
          out[i] = bytes.readDoubleLE(i * 8);
          break;
        case DataType.INT8:
          out[i] = bytes.readInt8(i);
          break;
        case DataType.UINT8:
          out[i] = bytes.readUInt8(i);
          break;
        default:
          throw new Error(`initializer ${name}: data type ${ONNX_TYPES[dataType] ?? dataType} is not numeric float data`);
      }
    }
    return out;
  };
  return { name, dims, dataType, floats };
}

/**
 * Parses an ONNX model file (weights are read lazily via `floats()`). External data is read
 * only from regular files inside the file's folder (for a Hugging Face cache snapshot, inside
 * the cache repo folder its links point into); `id` names the model in errors.
 */
export function readOnnx(file: string, id = file): OnnxGraphInfo {
  const corrupt = (why: string) => new ModelError('corrupt_onnx', id, `${file}: ${why}`, 'download or export the model again');
  let model: onnx.ModelProto;
  try {
    model = decodeModel(fs.readFileSync(file));
  } catch (e) {
    if (e instanceof ModelError || (e as NodeJS.ErrnoException).code) throw e;
    throw corrupt(`not a valid ONNX model (${(e as Error).message})`);
  }
  const dir = path.dirname(file);
  const src: OnnxSource = { file, dir, realRoot: cacheRepoOf(dir)?.repoFolder ?? dir, id };
  const g = model.graph;
  if (!g) throw corrupt('no graph in the ONNX model');
  return {
    irVersion: int64(model.irVersion),
    opsets: model.opsetImport.map((o) => ({ domain: o.domain ?? '', version: int64(o.version) })),
    producer: model.producerName,
    nodes: (g.node ?? []).map((n) => ({ opType: n.opType ?? '', domain: n.domain ?? '', inputs: n.input ?? [], outputs: n.output ?? [] })),
    inputs: (g.input ?? []).map((v) => v.name ?? ''),
    outputs: (g.output ?? []).map((v) => v.name ?? ''),
    initializers: (g.initializer ?? []).map((t) => initializer(t, src)),
  };
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
