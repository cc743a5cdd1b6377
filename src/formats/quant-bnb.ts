/**
 * bitsandbytes checkpoints as transformers saves them (save_pretrained of a model loaded
 * with a BitsAndBytesConfig), dequantized for the hf-decoder graph into a file next to it, in
 * the quant_state's dtype (bfloat16 / float16 hold the rounded values exactly, 2 bytes per
 * weight; float32 states and LLM.int8(): float32):
 *
 * - 4-bit NF4 / FP4 (`Params4bit`): `X.weight` is the packed uint8 ([⌈n/2⌉, 1], two codes
 *   per byte, high nibble first, over the row-major flattened weight), next to it
 *   `X.weight.absmax` (one scale per `blocksize` values), `X.weight.quant_map` (the 16-entry
 *   code book), `X.weight.quant_state.bitsandbytes__nf4|fp4` (uint8 bytes of a JSON object:
 *   quant_type, blocksize, dtype, shape) and, with double quantization
 *   (bnb_4bit_use_double_quant), an 8-bit absmax dequantized blockwise by
 *   `X.weight.nested_quant_map` · `X.weight.nested_absmax` plus the JSON's nested_offset.
 *   w[i] = quant_map[q[i]] · absmax[⌊i / blocksize⌋] in float32, then rounded to the
 *   state's dtype: bitsandbytes' dequantize_4bit, bit for bit (tools/gen_bnb_fixtures.py
 *   checks it on the fixtures).
 * - LLM.int8() 8-bit (`Int8Params`): `X.weight` int8 [out, in], `X.SCB` float32 [out] row
 *   scales, `X.weight_format` uint8 (0 = row-major); w = q · SCB[row] · (1/127 as float32),
 *   bitsandbytes' int8_vectorwise_dequant.
 * - GPT-2's Conv1D weights are quantized as Linear layers ([out, in]) and transposed back
 *   to the [in, out] the graph reads.
 *
 * Every size in the JSON and the tensor headers is checked against the others before
 * anything is allocated; a checkpoint that does not fit is a `corrupt_safetensors`
 * ModelError naming the file, tensor and field, a variant that is not read here an
 * `unsupported_bitsandbytes` one naming what it would need.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelError } from '../inference/errors.js';
import { DequantPlan, TensorReader, type DequantizedCheckpoint } from './dequantized.js';
import { openCheckpointRaw, type RawTensorEntry, type TensorEntry } from './safetensors.js';

/** Bumped whenever the dequantized tensors change (part of the graph cache key). */
export const BNB_VERSION = 2;

/** Largest quant_state JSON read (transformers writes ~170 bytes). */
const MAX_STATE_BYTES = 65536;

const QuantConfigSchema = z
  .object({
    quant_method: z.string().optional(),
    load_in_4bit: z.boolean().optional(),
    load_in_8bit: z.boolean().optional(),
    bnb_4bit_quant_type: z.string().optional(),
    bnb_4bit_use_double_quant: z.boolean().optional(),
    bnb_4bit_quant_storage: z.string().nullish(),
    llm_int8_has_fp16_weight: z.boolean().optional(),
  })
  .passthrough();

const QuantStateSchema = z
  .object({
    quant_type: z.enum(['nf4', 'fp4']),
    blocksize: z.number().int().positive().max(1 << 24),
    dtype: z.string(),
    shape: z.array(z.number().int().positive()).min(1).max(4),
    nested_blocksize: z.number().int().positive().max(1 << 24).optional(),
    nested_dtype: z.string().optional(),
    nested_offset: z.number().finite().optional(),
  })
  .strict();
type QuantState = z.infer<typeof QuantStateSchema>;

/** Whether a quantization_config is bitsandbytes' (quant_method, or the load_in_* flags of older configs). */
export function isBitsandbytesConfig(q: Record<string, unknown>): boolean {
  const m = typeof q.quant_method === 'string' ? q.quant_method.toLowerCase() : null;
  return m === 'bitsandbytes' || (m === null && (q.load_in_4bit === true || q.load_in_8bit === true));
}

export interface BnbOptions {
  /**
   * Weights the graph reads as GPT-2 Conv1D, [in, out]: transformers quantizes a Conv1D as a
   * Linear, so the checkpoint stores it as [out, in]; it is transposed when dequantized.
   */
  conv1d?: (name: string) => boolean;
}

interface Plan4Spec {
  kind: '4bit';
  transpose: boolean;
  packed: RawTensorEntry;
  absmax: RawTensorEntry;
  quantMap: RawTensorEntry;
  nestedAbsmax: RawTensorEntry | null;
  nestedQuantMap: RawTensorEntry | null;
  state: QuantState;
}
interface Plan8Spec {
  kind: 'int8';
  transpose: boolean;
  weight: RawTensorEntry;
  scb: RawTensorEntry;
}

const FLOAT = new Set(['F32', 'F16', 'BF16']);

/** [rows, cols] → [cols, rows]. */
function transpose2d(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[c * rows + r] = x[r * cols + c];
  return y;
}
const ROUND: Record<string, ((x: number) => number) | null> = { float32: null, float16: roundF16, bfloat16: roundBf16 };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Values already rounded to bfloat16 / float16 (roundBf16 / roundF16, finite) as their
 * 2-byte little-endian encoding: exact, so no second rounding.
 */
export function halfBytes(y: Float32Array, dtype: 'F16' | 'BF16'): Buffer {
  const bits = new Uint32Array(y.buffer, y.byteOffset, y.length);
  const out = Buffer.alloc(y.length * 2);
  for (let i = 0; i < y.length; i++) {
    const b = bits[i];
    let h: number;
    if (dtype === 'BF16') {
      h = b >>> 16;
    } else {
      const sign = (b >>> 16) & 0x8000;
      const a = Math.abs(y[i]);
      const exp = ((b >>> 23) & 0xff) - 127;
      // Normals keep the top 10 mantissa bits; below 2^-14, multiples of 2^-24.
      h = a === 0 ? sign : exp >= -14 ? sign | ((exp + 15) << 10) | ((b & 0x7fffff) >>> 13) : sign | (a / 2 ** -24);
    }
    out.writeUInt16LE(h, i * 2);
  }
  return out;
}

/** Nearest float16 (ties to even) of a float32 value, as a number. */
export function roundF16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  f32[0] = a;
  // The float32 exponent; float16's normals start at 2^-14 (below it, the subnormal spacing 2^-24).
  const exp = Math.max(((u32[0] >>> 23) & 0xff) - 127, -14);
  const ulp = 2 ** (exp - 10);
  const v = a / ulp;
  let r = Math.floor(v);
  const frac = v - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  return Math.sign(x) * r * ulp;
}

/** Nearest bfloat16 (ties to even) of a float32 value, as a number. */
export function roundBf16(x: number): number {
  if (!Number.isFinite(x)) return x;
  f32[0] = x;
  const b = u32[0];
  u32[0] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32[0];
}

/**
 * Plans the dequantization of a bitsandbytes checkpoint folder: reads the headers and the
 * quant_state JSONs (small), checks every size, and returns the float32 entries; nothing
 * large is read until `write`.
 */
export function openBnbCheckpoint(dir: string, q: Record<string, unknown>, id: string, opts: BnbOptions = {}): DequantizedCheckpoint {
  const cfgParsed = QuantConfigSchema.safeParse(q);
  if (!cfgParsed.success) {
    const i = cfgParsed.error.issues[0];
    throw new ModelError('load_failed', id, `config.json: quantization_config.${i.path.join('.')} ${i.message}`, 'fix or replace config.json');
  }
  const c = cfgParsed.data;
  const kind = c.load_in_4bit ? `4-bit ${(c.bnb_4bit_quant_type ?? 'fp4').toUpperCase()}` : c.load_in_8bit ? '8-bit LLM.int8()' : 'unknown';
  const unsupported = (what: string, need: string) =>
    new ModelError('unsupported_bitsandbytes', id, `BITSANDBYTES ${kind} checkpoint with ${what} cannot be run: that needs ${need}`, 'fingerprint the full-precision base of this quantization, or dequantize it with transformers (model.dequantize(), then save_pretrained) and fingerprint that folder');
  if (!c.load_in_4bit && !c.load_in_8bit) throw unsupported('neither load_in_4bit nor load_in_8bit in quantization_config', 'a quantization_config that says which bitsandbytes layout the weights have');
  if (c.load_in_4bit && c.bnb_4bit_quant_storage && c.bnb_4bit_quant_storage !== 'uint8') {
    throw unsupported(`bnb_4bit_quant_storage "${c.bnb_4bit_quant_storage}"`, 'reading the packed 4-bit codes from a non-uint8 storage dtype (only uint8, the default, is read)');
  }

  const names = fs.readdirSync(dir);
  if (!names.some((f) => f.endsWith('.safetensors')) && names.some((f) => /^pytorch_model.*\.bin$/.test(f))) {
    throw unsupported('PyTorch .bin weights', 'the checkpoint in safetensors (transformers ≥ 4.37 saves bitsandbytes models as model.safetensors; load and save_pretrained it again)');
  }
  const raw = openCheckpointRaw(dir, id);
  const corrupt = (t: RawTensorEntry | string, file: string, msg: string) =>
    new ModelError('corrupt_safetensors', id, `${path.basename(file)}: tensor "${typeof t === 'string' ? t : t.name}": ${msg}`, 'download the checkpoint again (it does not match what bitsandbytes saves)');
  const count = (t: RawTensorEntry) => t.shape.reduce((a, b) => a * b, 1);
  const reader = new TensorReader((t, msg) => corrupt(t, t.file, msg));
  const readBytes = (t: RawTensorEntry): Buffer => reader.read(t);
  const need = (name: string, owner: RawTensorEntry, dtype: string, n: number | null): RawTensorEntry => {
    const t = raw.tensors.get(name);
    if (!t) throw corrupt(owner, owner.file, `its quantization state has no tensor "${name}"`);
    if (t.dtype !== dtype) throw corrupt(t, t.file, `dtype ${t.dtype}, bitsandbytes writes ${dtype}`);
    if (n !== null && count(t) !== n) throw corrupt(t, t.file, `${count(t)} values, the quant_state implies ${n}`);
    return t;
  };

  const used = new Set<string>();
  const tensors = new Map<string, TensorEntry>();
  const plan = new DequantPlan(dir, id, corrupt);
  /** An entry of the dequantized file, `p`'s weight (transposed back for a Conv1D), float32 or in `dtype`. */
  const place = (name: string, shape: number[], p: Plan4Spec | Plan8Spec, source: string, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): TensorEntry =>
    plan.place(
      name,
      shape,
      source,
      () => {
        const y = p.kind === '4bit' ? dequant4(p, shape) : dequant8(p);
        return p.transpose ? transpose2d(y, shape[1], shape[0]) : y;
      },
      dtype === 'F32' ? undefined : { dtype, encode: (y) => halfBytes(y, dtype) },
    );
  let nested = false;
  let types = new Set<string>();

  try {
    for (const t of raw.tensors.values()) {
      const stateKey = /^(.*)\.quant_state\.bitsandbytes__(\w+)$/.exec(t.name);
      if (stateKey) {
        const [, wname, suffix] = stateKey;
        const packed = raw.tensors.get(wname);
        if (!packed) throw corrupt(t, t.file, `no packed weight "${wname}" next to it`);
        if (t.dtype !== 'U8' || t.shape.length !== 1 || t.length > MAX_STATE_BYTES) throw corrupt(t, t.file, `a quant_state is a 1-D uint8 tensor of at most ${MAX_STATE_BYTES} bytes (it is ${t.dtype} [${t.shape.join(', ')}])`);
        let json: unknown;
        try {
          json = JSON.parse(readBytes(t).toString('utf8'));
        } catch (e) {
          throw corrupt(t, t.file, `the quant_state is not JSON (${(e as Error).message})`);
        }
        const st = QuantStateSchema.safeParse(json);
        if (!st.success) {
          const i = st.error.issues[0];
          if (i.path[0] === 'quant_type' && json && typeof json === 'object') {
            throw unsupported(`quant_type ${JSON.stringify((json as Record<string, unknown>).quant_type)} (tensor ${t.name})`, 'a dequantizer for that 4-bit code (NF4 and FP4 are read)');
          }
          throw corrupt(t, t.file, `quant_state field ${i.path.join('.') || '(root)'}: ${i.message}`);
        }
        const s = st.data;
        if (s.quant_type !== suffix) throw corrupt(t, t.file, `quant_state says quant_type ${s.quant_type}, its name says ${suffix}`);
        if (!(s.dtype in ROUND)) throw unsupported(`quant_state dtype "${s.dtype}" (tensor ${t.name})`, 'a float32, float16 or bfloat16 dequantized dtype');
        const n = s.shape.reduce((a, b) => a * b, 1);
        if (!Number.isSafeInteger(n * 4)) throw corrupt(t, t.file, `quant_state shape [${s.shape.join(', ')}] is too large`);
        if (packed.dtype !== 'U8') throw corrupt(packed, packed.file, `a 4-bit packed weight is uint8 (it is ${packed.dtype})`);
        if (count(packed) !== Math.ceil(n / 2)) throw corrupt(packed, packed.file, `${count(packed)} packed bytes, quant_state shape [${s.shape.join(', ')}] needs ${Math.ceil(n / 2)}`);
        const blocks = Math.ceil(n / s.blocksize);
        const isNested = s.nested_blocksize !== undefined || s.nested_offset !== undefined || s.nested_dtype !== undefined;
        let absmax: RawTensorEntry;
        let nestedAbsmax: RawTensorEntry | null = null;
        let nestedQuantMap: RawTensorEntry | null = null;
        if (isNested) {
          if (s.nested_blocksize === undefined || s.nested_offset === undefined) throw corrupt(t, t.file, 'quant_state has some nested_* fields but not nested_blocksize and nested_offset');
          if (s.nested_dtype !== undefined && s.nested_dtype !== 'float32') throw unsupported(`nested_dtype "${s.nested_dtype}" (tensor ${t.name})`, 'a float32 nested absmax');
          absmax = need(`${wname}.absmax`, packed, 'U8', blocks);
          nestedAbsmax = need(`${wname}.nested_absmax`, packed, 'F32', Math.ceil(blocks / s.nested_blocksize));
          nestedQuantMap = need(`${wname}.nested_quant_map`, packed, 'F32', 256);
          nested = true;
        } else {
          absmax = need(`${wname}.absmax`, packed, 'F32', blocks);
        }
        const quantMap = need(`${wname}.quant_map`, packed, 'F32', 16);
        for (const x of [t, packed, absmax, quantMap, nestedAbsmax, nestedQuantMap]) if (x) used.add(x.name);
        if (tensors.has(wname)) throw corrupt(t, t.file, `a second quant_state for "${wname}"`);
        const transpose = opts.conv1d?.(wname) === true;
        if (transpose && s.shape.length !== 2) throw corrupt(t, t.file, `quant_state shape [${s.shape.join(', ')}] of a Conv1D weight is not 2-D`);
        tensors.set(wname, place(wname, transpose ? [s.shape[1], s.shape[0]] : s.shape, { kind: '4bit', transpose, packed, absmax, quantMap, nestedAbsmax, nestedQuantMap, state: s }, packed.file, s.dtype === 'bfloat16' ? 'BF16' : s.dtype === 'float16' ? 'F16' : 'F32'));
        types.add(s.quant_type.toUpperCase());
        continue;
      }
      const scbKey = /^(.*)\.SCB$/.exec(t.name);
      if (scbKey) {
        const wname = `${scbKey[1]}.weight`;
        const w = raw.tensors.get(wname);
        if (!w) throw corrupt(t, t.file, `no int8 weight "${wname}" next to it`);
        if (w.dtype !== 'I8' || w.shape.length !== 2) throw corrupt(w, w.file, `an LLM.int8() weight is a 2-D int8 tensor (it is ${w.dtype} [${w.shape.join(', ')}])`);
        if (t.dtype !== 'F32' || count(t) !== w.shape[0]) throw corrupt(t, t.file, `SCB holds one float32 scale per row: ${w.shape[0]}, it is ${t.dtype} [${t.shape.join(', ')}]`);
        const fmt = raw.tensors.get(`${scbKey[1]}.weight_format`);
        if (fmt) {
          if (fmt.dtype !== 'U8' || count(fmt) !== 1) throw corrupt(fmt, fmt.file, `weight_format is one uint8 (it is ${fmt.dtype} [${fmt.shape.join(', ')}])`);
          const v = readBytes(fmt)[0];
          if (v !== 0) {
            const names: Record<number, string> = { 1: 'col32', 2: 'col_turing', 3: 'col_ampere' };
            throw unsupported(`LLM.int8() weight_format ${v} (${names[v] ?? 'unknown'}) in ${fmt.name}`, 'undoing that GPU tile layout; only the row-major format (0, what bitsandbytes ≥ 0.45 saves) is read');
          }
          used.add(fmt.name);
        }
        used.add(t.name);
        used.add(w.name);
        if (tensors.has(wname)) throw corrupt(t, t.file, `"${wname}" is both a 4-bit and an int8 weight`);
        const transpose = opts.conv1d?.(wname) === true;
        tensors.set(wname, place(wname, transpose ? [w.shape[1], w.shape[0]] : [...w.shape], { kind: 'int8', transpose, weight: w, scb: t }, w.file));
        types.add('LLM.int8()');
      }
    }
    for (const t of raw.tensors.values()) {
      if (used.has(t.name)) continue;
      if (FLOAT.has(t.dtype)) {
        tensors.set(t.name, t as TensorEntry);
        continue;
      }
      if (t.dtype === 'I8' && /\.weight$/.test(t.name)) {
        throw unsupported(`an int8 weight "${t.name}" without its SCB row scales`, 'the SCB tensor saved next to each LLM.int8() weight (checkpoints from bitsandbytes < 0.37.2 lack it)');
      }
      if (t.dtype === 'U8' && /\.weight$/.test(t.name)) {
        throw unsupported(`a 4-bit packed weight "${t.name}" without its quant_state.bitsandbytes__* tensor`, 'the quant_state (absmax, quant_map, quant_state JSON) that transformers ≥ 4.37 saves next to each 4-bit weight');
      }
      throw unsupported(`tensor "${t.name}" of dtype ${t.dtype} (${path.basename(t.file)})`, 'a known bitsandbytes layout for it (4-bit Params4bit with quant_state, or LLM.int8() with SCB)');
    }
  } finally {
    reader.close();
  }
  if (plan.count === 0) throw unsupported('no quantized weight (no quant_state.bitsandbytes__* or SCB tensor)', 'the quantized tensors bitsandbytes saves; a float checkpoint should not carry a quantization_config');
  types = new Set([...types].sort());
  const method = `${[...types].join(' + ')}${nested ? ' (double quant)' : ''}`;
  raw.fingerprint.push(`bnb:${BNB_VERSION}`);

  const floats = (t: RawTensorEntry): Float32Array => reader.floats(t);
  const dequant4 = (p: Plan4Spec, shape: number[]): Float32Array => {
    const s = p.state;
    const n = shape.reduce((a, b) => a * b, 1);
    const code = floats(p.quantMap);
    let absmax: Float32Array;
    if (p.nestedAbsmax && p.nestedQuantMap) {
      // bitsandbytes' dequantize_blockwise (float32) of the 8-bit absmax, plus nested_offset.
      const q8 = readBytes(p.absmax);
      const code2 = floats(p.nestedQuantMap);
      const abs2 = floats(p.nestedAbsmax);
      const off = Math.fround(s.nested_offset!);
      const nb = s.nested_blocksize!;
      absmax = new Float32Array(q8.length);
      for (let i = 0; i < q8.length; i++) absmax[i] = Math.fround(code2[q8[i]] * abs2[Math.floor(i / nb)]) + off;
    } else {
      absmax = floats(p.absmax);
    }
    const packed = readBytes(p.packed);
    const round = ROUND[s.dtype];
    const y = new Float32Array(n);
    const bs = s.blocksize;
    for (let b = 0, i = 0; i < n; b++) {
      const a = absmax[b];
      for (const end = Math.min(n, i + bs); i < end; i++) {
        const byte = packed[i >> 1];
        // y is a Float32Array: the store rounds the double product to float32, as the float32 multiply does.
        y[i] = code[i & 1 ? byte & 15 : byte >> 4] * a;
      }
    }
    if (round) for (let i = 0; i < n; i++) y[i] = round(y[i]);
    return y;
  };
  const inv127 = Math.fround(7.874015718698502e-3);
  const dequant8 = (p: Plan8Spec): Float32Array => {
    const b = readBytes(p.weight);
    const scb = floats(p.scb);
    const [rows, cols] = p.weight.shape;
    const y = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const s = scb[r];
      for (let j = 0; j < cols; j++) {
        const i = r * cols + j;
        y[i] = Math.fround(((b[i] << 24) >> 24) * s) * inv127;
      }
    }
    return y;
  };

  return plan.finish(raw, tensors, method, 'bitsandbytes', reader);
}
