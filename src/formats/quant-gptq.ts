/**
 * GPTQ and AWQ (GEMM) checkpoints in the transformers layout: each quantized linear layer
 * is stored packed (qweight / qzeros int32, scales, GPTQ's g_idx) and is dequantized to
 * float32 in the graph, W = scale · (q − zero), from the packed bytes as external data
 * (nothing is unpacked on the JavaScript side; ONNX Runtime folds the unpacking into a
 * float32 initializer at load, or runs it right before its use with cast at use).
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
import fs from 'node:fs';
import path from 'node:path';
import { ModelError } from '../inference/errors.js';
import { DataType, type GraphBuilder } from '../zoo/onnx/graph.js';
import type { QuantizedWeights } from './hf-decoder.js';
import type { Checkpoint, TensorEntry } from './safetensors.js';

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

/**
 * The packed linear layers of an opened checkpoint. Every layer's tensors are checked
 * against the config's shapes and each other when the graph asks for it (before anything
 * is allocated), g_idx values against the number of groups.
 */
export function quantizedWeights(spec: QuantSpec, ckpt: Checkpoint, id: string, arch: string): QuantizedWeights {
  if (arch === 'gpt2') {
    // Not checked against a library: transformers 5.24 + gptqmodel 7.7 cannot load the GPT-2
    // checkpoints gptqmodel writes (Conv1D init on a quantized module), so there is no reference.
    throw unsupported(id, `${spec.method.toUpperCase()} checkpoint of model_type gpt2`, 'packed Conv1D layers checked against a library reference (none loads them); supported: the other architectures');
  }
  const base = (name: string) => name.replace(/\.weight$/, '');
  const anyPacked = [...ckpt.tensors.keys()].some((n) => n.endsWith('.qweight'));
  if (!anyPacked) {
    throw new ModelError('load_failed', id, `quantization_config says ${spec.method.toUpperCase()} but no tensor of the checkpoint is packed (no *.qweight)`, 'the weights do not belong to this config.json: download the checkpoint again');
  }
  const get = (name: string, dtypes: string[], shape: number[], label: string): TensorEntry => {
    const t = ckpt.tensors.get(name);
    if (!t) throw new ModelError('load_failed', id, `the ${spec.method.toUpperCase()} checkpoint has no tensor "${name}"`, 'the checkpoint is incomplete');
    if (!dtypes.includes(t.dtype)) {
      throw new ModelError('corrupt_safetensors', id, `${path.basename(t.file)}: tensor "${name}" has dtype ${t.dtype}, ${spec.method.toUpperCase()} stores ${dtypes.join(' or ')}`, 'the checkpoint is not in the layout its quantization_config describes');
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelError(
        'corrupt_safetensors',
        id,
        `${path.basename(t.file)}: tensor "${name}" has shape [${t.shape.join(', ')}], ${label} with config.json implies [${shape.join(', ')}]`,
        'the checkpoint is not in the layout its quantization_config describes (bits, group_size, checkpoint_format)',
      );
    }
    return t;
  };
  const floats = ['F16', 'BF16', 'F32'];
  const DT = { F16: DataType.FLOAT16, BF16: DataType.BFLOAT16, F32: DataType.FLOAT, I32: DataType.INT32 } as const;

  return {
    has: (name) => name.endsWith('.weight') && ckpt.tensors.has(`${base(name)}.qweight`),
    weight(g: GraphBuilder, name: string, shape: number[], location: (file: string) => string, defer?: (ext: string) => string): string {
      const b = base(name);
      const [out, inn] = shape;
      const dyn = spec.dynamic.find((d) => d.test(b));
      if (dyn?.skip) {
        throw new ModelError('corrupt_safetensors', id, `${b} is packed, but quantization_config.dynamic "${dyn.pattern}" leaves it unquantized`, 'the weights do not belong to this config.json');
      }
      const bits = dyn ? dyn.bits : spec.bits;
      const per = 32 / bits;
      const gs0 = dyn ? dyn.groupSize : spec.groupSize;
      const gs = gs0 === -1 ? inn : gs0;
      const label = dyn ? `${spec.label}, ${bits}-bit group ${gs0} by dynamic "${dyn.pattern}"` : spec.label;
      const what = `${b}: in_features ${inn}, out_features ${out}`;
      if (spec.method === 'awq' && inn % gs !== 0) {
        throw new ModelError('corrupt_safetensors', id, `${what} is not a multiple of AWQ group_size ${gs}`, 'config.json does not belong to these weights');
      }
      if (inn % per !== 0 || out % per !== 0) {
        throw new ModelError('corrupt_safetensors', id, `${what}: ${bits}-bit packing needs both to be multiples of ${per}`, 'config.json does not belong to these weights');
      }
      const groups = Math.ceil(inn / gs);
      const F = DataType.FLOAT;
      const U32 = DataType.UINT32;
      const ext = (t: TensorEntry, dataType: number, deferIt = false): string => {
        const n = g.externalInitializer(`${t.name}#${t.dtype}`, dataType as typeof F, t.shape, { location: location(t.file), offset: t.offset, length: t.length });
        return deferIt && defer ? defer(n) : n;
      };
      const u32 = (values: number[], dims: number[]) => g.op('Cast', [g.int64(values, dims)], { to: U32 });
      /** Values of `bits` bits at the given shifts (uint32): (x << (32 − bits − s)) >> (32 − bits). */
      const field = (x: string, shifts: number[], dims: number[]) =>
        g.op('BitShift', [g.op('BitShift', [x, u32(shifts.map((s) => 32 - bits - s), dims)], { direction: 'LEFT' }), u32([32 - bits], [])], { direction: 'RIGHT' });

      const scope = g.scope;
      g.scope = `dequant/${b}/`;
      let w: string;
      if (spec.method === 'gptq') {
        const qw = get(`${b}.qweight`, ['I32'], [inn / per, out], label);
        const qz = get(`${b}.qzeros`, ['I32'], [groups, out / per], label);
        const sc = get(`${b}.scales`, floats, [groups, out], label);
        const gi = get(`${b}.g_idx`, ['I32'], [inn], label);
        checkGroupIndex(gi, groups, id);
        const shifts = Array.from({ length: per }, (_, k) => k * bits);
        // [in/per, 1, out] → [in/per, per, out] → [in, out]
        const q = g.op('Reshape', [field(g.op('Unsqueeze', [ext(qw, U32, true), g.int64([1])]), shifts, [1, per, 1]), g.int64([inn, out])]);
        // Format gptq stores zero − 1 in every field; gptqmodel (what transformers loads with)
        // writes and reads it as one word subtraction / addition, 0x11111111 for 4 bits.
        let words = ext(qz, U32);
        if (spec.zeroMinusOne) words = g.op('Add', [words, u32([shifts.reduce((a, s) => a + 2 ** s, 0)], [])]);
        const z = g.op('Reshape', [field(g.op('Unsqueeze', [words, g.int64([2])]), shifts, [1, 1, per]), g.int64([groups, out])]);
        const s = sc.dtype === 'F32' ? ext(sc, F) : g.op('Cast', [ext(sc, DT[sc.dtype as 'F16'])], { to: F });
        const idx = ext(gi, DataType.INT32);
        const zf = g.op('Cast', [g.op('Gather', [z, idx], { axis: 0 })], { to: F });
        w = g.op('Mul', [g.op('Sub', [g.op('Cast', [q], { to: F }), zf]), g.op('Gather', [s, idx], { axis: 0 })]);
      } else {
        const qw = get(`${b}.qweight`, ['I32'], [inn, out / per], label);
        const qz = get(`${b}.qzeros`, ['I32'], [groups, out / per], label);
        const sc = get(`${b}.scales`, floats, [groups, out], label);
        const shifts = AWQ_INVERSE.map((k) => k * 4);
        // [rows, out/8, 1] → [rows, out/8, 8] → [rows, out], column order restored by the shifts.
        const q = g.op('Reshape', [field(g.op('Unsqueeze', [ext(qw, U32, true), g.int64([2])]), shifts, [1, 1, per]), g.int64([groups, gs, out])]);
        const z = g.op('Reshape', [field(g.op('Unsqueeze', [ext(qz, U32), g.int64([2])]), shifts, [1, 1, per]), g.int64([groups, 1, out])]);
        const s = sc.dtype === 'F32' ? ext(sc, F) : g.op('Cast', [ext(sc, DT[sc.dtype as 'F16'])], { to: F });
        const diff = g.op('Sub', [g.op('Cast', [q], { to: F }), g.op('Cast', [z], { to: F })]);
        w = g.op('Reshape', [g.op('Mul', [diff, g.op('Reshape', [s, g.int64([groups, 1, out])])]), g.int64([inn, out])]);
      }
      // w is [in, out]; the linear layers' Gemm takes [out, in].
      const res = g.op('Transpose', [w], { perm: [1, 0] });
      g.scope = scope;
      return res;
    },
  };
}

/** g_idx values must name a group: read (in × 4 bytes, bounded by the checked shape) and checked. */
function checkGroupIndex(t: TensorEntry, groups: number, id: string): void {
  const buf = Buffer.alloc(t.length);
  const fd = fs.openSync(t.file, 'r');
  try {
    if (fs.readSync(fd, buf, 0, t.length, t.offset) !== t.length) throw new ModelError('corrupt_safetensors', id, `${path.basename(t.file)}: short read of "${t.name}"`, 'download the checkpoint again');
  } finally {
    fs.closeSync(fd);
  }
  for (let i = 0; i < t.shape[0]; i++) {
    const v = buf.readInt32LE(i * 4);
    if (v < 0 || v >= groups) {
      throw new ModelError('corrupt_safetensors', id, `${path.basename(t.file)}: tensor "${t.name}" row ${i} names group ${v}, outside [0, ${groups})`, 'the checkpoint is corrupt or not in the layout its quantization_config describes (group_size)');
    }
  }
}
