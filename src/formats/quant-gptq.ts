/**
 * GPTQ and AWQ (GEMM) checkpoints in the transformers layout: each quantized linear layer
 * is stored packed (qweight / qzeros int32, scales, GPTQ's g_idx) and is dequantized in
 * JavaScript, one layer at a time, into the float32 file next to the graph
 * (dequantized.ts), W = scale · (q − zero) in float32, as the [out, in] weight
 * transformers' dequantized model holds.
 *
 * GPTQ (gptqmodel / auto-gptq, QuantLinear): qweight [in·bits/32, out], the values of rows
 * p·(32/bits)+k at bits k·bits of row p; qzeros [groups, out·bits/32] packed the same way
 * along the output; scales [groups, out]; g_idx [in] the group of each input row (desc_act
 * permutes it). checkpoint_format "gptq" stores zero − 1, subtracted from the whole packed
 * word (gptqmodel: qzeros −= 0x11111111 at 4 bits; read back by adding it), "gptq_v2" the
 * zero itself.
 * AWQ GEMM (autoawq, WQLinear_GEMM): qweight [in, out/8] and qzeros [groups, out/8] packed
 * along the output in the nibble order [0, 2, 4, 6, 1, 3, 5, 7]; scales [groups, out];
 * group of row i = i / group_size.
 */
import path from 'node:path';
import { ModelError } from '../inference/errors.js';
import { DequantPlan, TensorReader, type DequantizedCheckpoint } from './dequantized.js';
import { openCheckpoint, type TensorEntry } from './safetensors.js';

export interface QuantSpec {
  method: 'gptq' | 'awq';
  bits: number;
  /** -1: one group for all input rows. */
  groupSize: number;
  /** GPTQ: stored zeros are zero − 1 (checkpoint_format "gptq"). */
  zeroMinusOne: boolean;
  /** For records and messages, e.g. "gptq 4-bit group 32 desc_act sym (format gptq)". */
  label: string;
  /**
   * gptqmodel's per-module `dynamic` overrides, first match wins: a pattern (regex matched
   * at the start of the module name, or a literal name) gives other bits / group_size, or
   * ("-:" prefix) leaves the module unquantized.
   */
  dynamic: { pattern: string; test: (module: string) => boolean; skip: boolean; bits: number; groupSize: number }[];
}

const GPTQ_BITS = [2, 4, 8];
/** Where AWQ's nibble k holds output column AWQ_ORDER[k]; column c is in nibble AWQ_INVERSE[c]. */
const AWQ_INVERSE = [0, 4, 1, 5, 2, 6, 3, 7];

const unsupported = (id: string, what: string, need: string): ModelError =>
  new ModelError(
    'unsupported_quantization',
    id,
    `${what} cannot be run: that needs ${need}`,
    'fingerprint the full-precision base of this quantization, or dequantize it with transformers (model.dequantize(), then save_pretrained) and fingerprint that folder',
  );

/**
 * The quantization a config.json's quantization_config describes, if modelprint
 * dequantizes it (GPTQ 2/4/8-bit in the gptq / gptq_v2 formats, AWQ GEMM 4-bit); null
 * for other methods (the caller's coded error); a coded error for
 * unsupported variants of these two.
 */
export function parseQuantConfig(q: Record<string, unknown>, id: string): QuantSpec | null {
  const method = String(q.quant_method ?? '').toLowerCase();
  if (method !== 'gptq' && method !== 'awq') return null;
  const bits = q.bits ?? q.w_bit;
  const gs = q.group_size ?? q.q_group_size;
  const name = `${method.toUpperCase()} checkpoint (quantization_config: bits ${JSON.stringify(bits)}, group_size ${JSON.stringify(gs)})`;
  if (typeof gs !== 'number' || !Number.isInteger(gs) || (gs !== -1 && gs <= 0)) {
    throw new ModelError('load_failed', id, `config.json: quantization_config.group_size ${JSON.stringify(gs)} is not a positive integer or -1`, 'fix quantization_config in config.json');
  }
  if (method === 'gptq') {
    const format = String(q.checkpoint_format ?? q.format ?? 'gptq').toLowerCase();
    if (typeof bits !== 'number' || !GPTQ_BITS.includes(bits)) {
      throw unsupported(id, name, bits === 3 ? 'unpacking 3-bit GPTQ values, which straddle int32 words (supported: 2, 4 and 8 bits)' : `a ${JSON.stringify(bits)}-bit GPTQ unpacker (supported: 2, 4 and 8 bits)`);
    }
    if (format !== 'gptq' && format !== 'gptq_v2') {
      throw unsupported(id, `GPTQ checkpoint in checkpoint_format "${format}"`, `the ${format} weight layout (supported: the gptq and gptq_v2 layouts that gptqmodel / auto-gptq save)`);
    }
    if (q.is_marlin_format === true) throw unsupported(id, 'GPTQ checkpoint in the Marlin layout (is_marlin_format)', 'the Marlin weight layout (supported: the gptq and gptq_v2 layouts)');
    const pack = String(q.pack_dtype ?? 'int32').toLowerCase();
    if (pack !== 'int32' && pack !== 'torch.int32') throw unsupported(id, `GPTQ checkpoint with pack_dtype ${pack}`, 'an unpacker for that word size (supported: int32)');
    const desc = q.desc_act === true || q.act_order === true;
    const sym = q.sym !== false;
    const dynamic = parseDynamic(q.dynamic, bits, gs, id);
    const dyn = dynamic.length ? `, ${dynamic.length} dynamic override${dynamic.length > 1 ? 's' : ''}` : '';
    return { method, bits, groupSize: gs, zeroMinusOne: format === 'gptq', dynamic, label: `gptq ${bits}-bit group ${gs}${desc ? ' desc_act' : ''} ${sym ? 'sym' : 'asym'} (format ${format}${dyn})` };
  }
  const version = String(q.version ?? q.checkpoint_format ?? q.format ?? 'gemm').toLowerCase();
  if (version !== 'gemm') {
    throw unsupported(id, `AWQ checkpoint in version "${version}"`, `the AWQ ${version} weight layout (supported: gemm, the autoawq default)`);
  }
  if (bits !== 4) throw unsupported(id, name, 'a 4-bit AWQ checkpoint (autoawq writes 4-bit only)');
  if (gs === -1) throw unsupported(id, name, 'an AWQ group_size > 0');
  // zero_point false (gptqmodel's sym AWQ) still stores qzeros (2^(bits-1)): the same unpacking.
  if (q.dynamic && typeof q.dynamic === 'object' && Object.keys(q.dynamic).length) {
    throw unsupported(id, 'AWQ checkpoint with per-module "dynamic" overrides', 'per-module AWQ bits / group sizes (supported: dynamic for GPTQ)');
  }
  return { method, bits, groupSize: gs, zeroMinusOne: false, dynamic: [], label: `awq 4-bit group ${gs}${q.zero_point === false ? '' : ' zero_point'} (gemm)` };
}

/** A quantified group that holds a quantifier ((a+)+, (x*)*, (a|b+){2,}): exponential backtracking. */
const NESTED_QUANTIFIER = /\([^()]*[*+?}][^()]*\)\s*[*+?{]/;
const REGEX_CHARS = /[\\^$.|?*+()[\]{}]/;

/** gptqmodel's `dynamic`: { "[+:|-:]pattern": { bits?, group_size?, … } } in order. */
function parseDynamic(raw: unknown, bits: number, gs: number, id: string): QuantSpec['dynamic'] {
  if (raw === undefined || raw === null) return [];
  const bad = (msg: string) => new ModelError('load_failed', id, `config.json: quantization_config.dynamic ${msg}`, 'fix quantization_config in config.json');
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad('is not an object of pattern → overrides');
  const out: QuantSpec['dynamic'] = [];
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const skip = key.startsWith('-:');
    const pattern = key.startsWith('-:') || key.startsWith('+:') ? key.slice(2) : key;
    if (pattern.length === 0 || pattern.length > 200) throw bad(`pattern "${key.slice(0, 60)}" is empty or longer than 200 characters`);
    if (NESTED_QUANTIFIER.test(pattern)) throw bad(`pattern "${pattern}" nests quantifiers (exponential matching time)`);
    let test: (m: string) => boolean;
    if (!REGEX_CHARS.test(pattern)) {
      test = (m) => m === pattern;
    } else {
      let re: RegExp;
      try {
        re = new RegExp(`^(?:${pattern})`);
      } catch (e) {
        throw bad(`pattern "${pattern}" is not a regular expression modelprint can read (${(e as Error).message})`);
      }
      test = (m) => re.test(m);
    }
    const o = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
    const b = o.bits ?? bits;
    const g = o.group_size ?? gs;
    if (!skip && (typeof b !== 'number' || !GPTQ_BITS.includes(b))) {
      throw unsupported(id, `GPTQ checkpoint whose dynamic override "${key}" sets bits ${JSON.stringify(b)}`, 'a GPTQ unpacker for those bits (supported: 2, 4 and 8)');
    }
    if (!skip && (typeof g !== 'number' || !Number.isInteger(g) || (g !== -1 && g <= 0))) throw bad(`"${key}": group_size ${JSON.stringify(g)} is not a positive integer or -1`);
    out.push({ pattern: key, test, skip, bits: b as number, groupSize: g as number });
  }
  return out;
}

/** A one-line description of any quantization_config, for records (null when there is none). */
export function quantLabel(q: unknown): string | null {
  if (!q || typeof q !== 'object') return null;
  const c = q as Record<string, unknown>;
  try {
    const s = parseQuantConfig(c, '');
    if (s) return s.label;
  } catch {
    // an unsupported variant: described below
  }
  const method = String(c.quant_method ?? (c.load_in_4bit || c.load_in_8bit ? 'bitsandbytes' : 'unknown')).toLowerCase();
  const bits = typeof c.bits === 'number' ? ` ${c.bits}-bit` : c.load_in_4bit ? ' 4-bit' : c.load_in_8bit ? ' 8-bit' : '';
  return `${method}${bits}`;
}

/** Bumped whenever the dequantized tensors change (a digest input of the graph cache key). */
export const GPTQ_VERSION = 1;

/**
 * Plans the dequantization of a GPTQ / AWQ checkpoint folder: every packed layer's
 * tensors are checked against the bits, group size and each other from the headers
 * (g_idx values against the number of groups) before anything is allocated, and become
 * one float32 [out, in] `X.weight` entry of the dequantized file; the decoder graph then
 * checks [out, in] against config.json as for a float checkpoint.
 */
export function openGptqCheckpoint(dir: string, spec: QuantSpec, id: string, arch: string): DequantizedCheckpoint {
  const M = spec.method.toUpperCase();
  if (arch === 'gpt2') {
    // Not checked against a library: transformers 5.24 + gptqmodel 7.7 cannot load the GPT-2
    // checkpoints gptqmodel writes (Conv1D init on a quantized module), so there is no reference.
    throw unsupported(id, `${M} checkpoint of model_type gpt2`, 'packed Conv1D layers checked against a library reference (none loads them); supported: the other architectures');
  }
  const ckpt = openCheckpoint(dir, id, { int32: true });
  const modules = [...ckpt.tensors.keys()].filter((n) => n.endsWith('.qweight')).map((n) => n.slice(0, -'.qweight'.length));
  if (modules.length === 0) {
    throw new ModelError('load_failed', id, `quantization_config says ${M} but no tensor of the checkpoint is packed (no *.qweight)`, 'the weights do not belong to this config.json: download the checkpoint again');
  }
  const corrupt = (name: string, file: string, msg: string) => new ModelError('corrupt_safetensors', id, `${path.basename(file)}: tensor "${name}": ${msg}`, 'download the checkpoint again (it does not match what gptqmodel / autoawq save)');
  const reader = new TensorReader((t, msg) => corrupt(t.name, t.file, msg));
  const plan = new DequantPlan(dir, id, corrupt);
  const tensors = new Map(ckpt.tensors);
  const floats = ['F16', 'BF16', 'F32'];
  /** The tensor `name` of one of `dtypes` and of the shape `shape` (a number: any shape of that rank, no zero size) that `label` with `basis` implies. */
  const get = (name: string, dtypes: string[], shape: number[] | number, label: string, basis: string): TensorEntry => {
    const t = ckpt.tensors.get(name);
    if (!t) throw new ModelError('load_failed', id, `the ${M} checkpoint has no tensor "${name}"`, 'the checkpoint is incomplete');
    if (!dtypes.includes(t.dtype)) {
      throw new ModelError('corrupt_safetensors', id, `${path.basename(t.file)}: tensor "${name}" has dtype ${t.dtype}, ${M} stores ${dtypes.join(' or ')}`, 'the checkpoint is not in the layout its quantization_config describes');
    }
    const bad = typeof shape === 'number' ? t.shape.length !== shape || t.shape.some((d) => d === 0) : t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]);
    if (bad) {
      throw new ModelError(
        'corrupt_safetensors',
        id,
        `${path.basename(t.file)}: tensor "${name}" has shape [${t.shape.join(', ')}], ${label} with ${basis} implies ${typeof shape === 'number' ? `${shape}-D, no size 0` : `[${shape.join(', ')}]`}`,
        'the checkpoint is not in the layout its quantization_config describes (bits, group_size, checkpoint_format)',
      );
    }
    return t;
  };

  try {
    for (const b of modules) {
      const dyn = spec.dynamic.find((d) => d.test(b));
      if (dyn?.skip) {
        throw new ModelError('corrupt_safetensors', id, `${b} is packed, but quantization_config.dynamic "${dyn.pattern}" leaves it unquantized`, 'the weights do not belong to this config.json');
      }
      const wname = `${b}.weight`;
      const qwName = `${b}.qweight`;
      if (ckpt.tensors.has(wname)) throw corrupt(wname, ckpt.tensors.get(wname)!.file, `a float weight next to the packed "${qwName}"`);
      const bits = dyn ? dyn.bits : spec.bits;
      const per = 32 / bits;
      const gs0 = dyn ? dyn.groupSize : spec.groupSize;
      const label = dyn ? `${spec.label}, ${bits}-bit group ${gs0} by dynamic "${dyn.pattern}"` : spec.label;
      const packing = (inn: number, out: number) => {
        if (inn % per !== 0 || out % per !== 0) {
          throw new ModelError('corrupt_safetensors', id, `${b}: in_features ${inn}, out_features ${out}: ${bits}-bit packing needs both to be multiples of ${per}`, 'config.json does not belong to these weights');
        }
      };
      let inn: number;
      let out: number;
      let gs: number;
      let layer: Layer;
      if (spec.method === 'gptq') {
        // in_features from g_idx [in], groups from the group size, out_features from scales [groups, out].
        const gi = get(`${b}.g_idx`, ['I32'], 1, label, 'one group per input row');
        inn = gi.shape[0];
        gs = gs0 === -1 ? inn : gs0;
        const groups = Math.ceil(inn / gs);
        const sc0 = get(`${b}.scales`, floats, 2, label, `g_idx [${inn}]`);
        if (sc0.shape[0] !== groups) get(`${b}.scales`, floats, [groups, sc0.shape[1]], label, `g_idx [${inn}]`);
        out = sc0.shape[1];
        packing(inn, out);
        const basis = `g_idx [${inn}] and scales [${groups}, ${out}]`;
        const qw = get(qwName, ['I32'], [inn / per, out], label, basis);
        const qz = get(`${b}.qzeros`, ['I32'], [groups, out / per], label, basis);
        groupIndex(reader, gi, groups, id);
        layer = { awq: false, qw, qz, sc: sc0, gi, inn, out, bits, gs, groups, zeroMinusOne: spec.zeroMinusOne };
        for (const t of [qw, qz, sc0, gi]) tensors.delete(t.name);
      } else {
        // in_features and out_features from qweight [in, out/8].
        const qw = get(qwName, ['I32'], 2, label, 'AWQ');
        inn = qw.shape[0];
        out = qw.shape[1] * per;
        gs = gs0;
        if (inn % gs !== 0) throw new ModelError('corrupt_safetensors', id, `${b}: in_features ${inn}, out_features ${out} is not a multiple of AWQ group_size ${gs}`, 'config.json does not belong to these weights');
        const groups = inn / gs;
        const basis = `qweight [${inn}, ${out / per}]`;
        const qz = get(`${b}.qzeros`, ['I32'], [groups, out / per], label, basis);
        const sc = get(`${b}.scales`, floats, [groups, out], label, basis);
        layer = { awq: true, qw, qz, sc, gi: null, inn, out, bits, gs, groups, zeroMinusOne: false };
        for (const t of [qw, qz, sc]) tensors.delete(t.name);
      }
      const l = layer;
      tensors.set(wname, plan.place(wname, [out, inn], l.qw.file, () => dequantLayer(reader, l, id)));
    }
  } finally {
    reader.close();
  }
  ckpt.fingerprint.push(`gptq:${GPTQ_VERSION}`);
  return plan.finish(ckpt, tensors, spec.label, M, reader);
}

interface Layer {
  awq: boolean;
  qw: TensorEntry;
  qz: TensorEntry;
  sc: TensorEntry;
  /** GPTQ: the group of each input row (null: AWQ, row / group size). */
  gi: TensorEntry | null;
  inn: number;
  out: number;
  bits: number;
  gs: number;
  groups: number;
  zeroMinusOne: boolean;
}

/**
 * One layer as float32 [out, in]: W[o, i] = scale[g, o] · (q[i, o] − zero[g, o]), g the
 * group of row i; q − zero is a small integer, so the product rounded once to float32 (the
 * Float32Array store) is what the libraries' float32 dequantizers compute.
 */
function dequantLayer(reader: TensorReader, l: Layer, id: string): Float32Array {
  const { inn, out, bits, groups } = l;
  const per = 32 / bits;
  const mask = (1 << bits) - 1;
  const q = reader.words(l.qw);
  const zw = reader.words(l.qz);
  const s = reader.floats(l.sc);
  const group = l.gi ? groupIndex(reader, l.gi, groups, id) : Int32Array.from({ length: inn }, (_, i) => Math.floor(i / l.gs));
  // Format gptq stores zero − 1 in every field; gptqmodel (what transformers loads with)
  // writes and reads it as one word subtraction / addition (0x11111111 at 4 bits), carries included.
  let add = 0;
  if (l.zeroMinusOne) for (let k = 0; k < per; k++) add += 2 ** (k * bits);
  const shiftOf = (o: number) => (l.awq ? AWQ_INVERSE[o & 7] * 4 : (o % per) * bits);
  // zeros and scales as [out, groups], so a row of W reads them in order.
  const zT = new Float32Array(out * groups);
  const sT = new Float32Array(out * groups);
  const wordsPerRow = out / per;
  for (let g = 0; g < groups; g++) {
    for (let o = 0; o < out; o++) {
      const word = (zw[g * wordsPerRow + Math.floor(o / per)] + add) >>> 0;
      zT[o * groups + g] = (word >>> shiftOf(o)) & mask;
      sT[o * groups + g] = s[g * out + o];
    }
  }
  const y = new Float32Array(out * inn);
  if (!l.awq) {
    // qweight [in/per, out]: row i is field i % per of word row ⌊i / per⌋.
    for (let o = 0; o < out; o++) {
      const base = o * inn;
      const zo = o * groups;
      for (let p = 0, i = 0; p < inn / per; p++) {
        const word = q[p * out + o];
        for (let k = 0; k < per; k++, i++) {
          const g = zo + group[i];
          y[base + i] = sT[g] * (((word >>> (k * bits)) & mask) - zT[g]);
        }
      }
    }
  } else {
    // qweight [in, out/8]: column o is nibble AWQ_INVERSE[o % 8] of word ⌊o / 8⌋.
    for (let o = 0; o < out; o++) {
      const base = o * inn;
      const zo = o * groups;
      const col = o >> 3;
      const sh = AWQ_INVERSE[o & 7] * 4;
      for (let i = 0; i < inn; i++) {
        const g = zo + group[i];
        y[base + i] = sT[g] * (((q[i * wordsPerRow + col] >>> sh) & 15) - zT[g]);
      }
    }
  }
  return y;
}

/** g_idx (in × 4 bytes, bounded by the checked shape): every value must name a group. */
function groupIndex(reader: TensorReader, t: TensorEntry, groups: number, id: string): Int32Array {
  const w = reader.words(t);
  const g = new Int32Array(w.buffer, w.byteOffset, w.length);
  for (let i = 0; i < g.length; i++) {
    const v = g[i];
    if (v < 0 || v >= groups) {
      throw new ModelError('corrupt_safetensors', id, `${path.basename(t.file)}: tensor "${t.name}" row ${i} names group ${v}, outside [0, ${groups})`, 'the checkpoint is corrupt or not in the layout its quantization_config describes (group_size)');
    }
  }
  return g;
}
