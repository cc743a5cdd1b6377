/**
 * GGUF files (llama.cpp) on the ONNX Runtime path: the tensors are dequantized to float32
 * into a cached external-data file, renamed to the transformers layout (undoing the
 * converter's Q/K row permutation for llama-family RoPE and Gemma's stored norm + 1), the
 * metadata becomes the config.json the hf-decoder graph builder takes, and the tokenizer
 * metadata (tokenizer.ggml.*) becomes a tokenizer.json. Everything lands in one cache
 * folder keyed by the GGUF file's path, size, mtime and header bytes, so the second open
 * reads only the header.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { messageOf } from '../errors.js';
import { ModelError } from '../inference/errors.js';
import { cacheRoot } from './hf-checkpoint.js';
import { buildDecoderGraph, decoderSpec } from './hf-decoder.js';
import { badGguf, dequantize, readGguf, type GgufFile, type GgufValue } from './gguf-file.js';
import { DEFAULT_GGUF_ACTIVATIONS, llamaCppHooks, type BlockMins, type GgufActivations } from './gguf-activations.js';
import type { Checkpoint, TensorEntry } from './safetensors.js';

/** Bumped whenever what a GGUF file prepares to changes. */
export const GGUF_PREP_VERSION = 2;

/** GGUF architectures modelprint maps onto the decoder builder (Mistral GGUFs are "llama"). */
export const GGUF_ARCHITECTURES = ['llama', 'qwen2', 'qwen3', 'gemma'] as const;

/**
 * `--gguf-quant` default: the first of these present in a folder of GGUF files; full
 * precision first (the fingerprint of the weights as trained), then by bits.
 */
export const DEFAULT_GGUF_QUANTS = ['F32', 'BF16', 'F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q5_K_S', 'Q5_0', 'Q4_K_M', 'Q4_K_S', 'Q4_0'];

/** The quantization a GGUF file name says it holds (…-Q4_K_M.gguf → Q4_K_M), upper-case, or null. */
export function quantOfFileName(file: string): string | null {
  const stem = path.basename(file).replace(/\.gguf$/i, '');
  const m = /(?:^|[-_.])((?:I?Q\d(?:_[A-Z0-9]+)*)|F32|F16|BF16|FP16|FP32)$/i.exec(stem);
  if (!m) return null;
  const q = m[1].toUpperCase();
  return q === 'FP16' ? 'F16' : q === 'FP32' ? 'F32' : q;
}

/** Parses `--gguf-quant` (comma-separated, case-insensitive). */
export function parseGgufQuantList(v: string | undefined): string[] {
  const list = (v ?? '')
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  return list.length ? list : DEFAULT_GGUF_QUANTS;
}

/**
 * Picks the GGUF file of a folder: the only one, else the first of `prefs` by the
 * quantization in its file name (multimodal projector files mmproj-* are skipped).
 */
export function pickGgufFile(dir: string, prefs: string[], id: string): string {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.gguf') && !/^mmproj/i.test(f) && fs.statSync(path.join(dir, f)).isFile())
    .sort();
  if (files.length === 0) throw new ModelError('not_found', id, `no .gguf file in ${dir}`);
  if (files.length === 1) return path.join(dir, files[0]);
  for (const want of prefs) {
    const hit = files.find((f) => quantOfFileName(f) === want);
    if (hit) return path.join(dir, hit);
  }
  throw new ModelError(
    'not_found',
    id,
    `none of the GGUF files in ${dir} is ${prefs.join(', ')} (it has: ${files.map((f) => `${f} [${quantOfFileName(f) ?? '?'}]`).join(', ')})`,
    'pick one with --gguf-quant (e.g. --gguf-quant Q8_0,Q6_K) or pass the .gguf file itself',
  );
}

export interface PreparedGguf {
  /** The cache folder: model.onnx, weights.bin, config.json, tokenizer.json, tokenizer_config.json. */
  dir: string;
  onnxPath: string;
  /** null when the GGUF has no tokenizer metadata (then --tokenizer is needed). */
  tokenizerPath: string | null;
  arch: string;
  /** general.file_type as a name, or the quantization in the file name. */
  quant: string | null;
  /** How the graph treats the activations of quantized / F16 weights (--gguf-activations). */
  activations: GgufActivations;
  cached: boolean;
}

const FILE_TYPES: Record<number, string> = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K', 32: 'BF16' };

class Meta {
  constructor(
    private readonly g: GgufFile,
    private readonly id: string,
  ) {}
  get(key: string): GgufValue | undefined {
    return this.g.metadata.get(key);
  }
  num(key: string): number | null {
    const v = this.get(key);
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }
  need(key: string): number {
    const v = this.num(key);
    if (v === null || v < 0) throw badGguf(this.id, this.g.file, `metadata "${key}" is missing or not a number`);
    return v;
  }
  str(key: string): string | null {
    const v = this.get(key);
    return typeof v === 'string' ? v : null;
  }
  strings(key: string): string[] | null {
    const v = this.get(key);
    if (v === undefined) return null;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badGguf(this.id, this.g.file, `metadata "${key}" is not an array of strings`);
    return v as string[];
  }
  ints(key: string): number[] | null {
    const v = this.get(key);
    if (v === undefined) return null;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw badGguf(this.id, this.g.file, `metadata "${key}" is not an array of integers`);
    return v as number[];
  }
}

/** GGUF tensor name → transformers name (llama-family layout). */
function hfName(name: string): string | null {
  const top: Record<string, string> = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' };
  if (top[name]) return top[name];
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(name);
  if (!m) return null;
  const sub: Record<string, string> = {
    attn_norm: 'input_layernorm',
    attn_q: 'self_attn.q_proj',
    attn_k: 'self_attn.k_proj',
    attn_v: 'self_attn.v_proj',
    attn_output: 'self_attn.o_proj',
    attn_q_norm: 'self_attn.q_norm',
    attn_k_norm: 'self_attn.k_norm',
    ffn_norm: 'post_attention_layernorm',
    ffn_gate: 'mlp.gate_proj',
    ffn_up: 'mlp.up_proj',
    ffn_down: 'mlp.down_proj',
  };
  const s = sub[m[2]];
  return s ? `model.layers.${m[1]}.${s}.${m[3]}` : null;
}

/** config.json (transformers keys) from the GGUF metadata. */
function configOf(g: GgufFile, meta: Meta, id: string, ropeFactors: number[] | null): Record<string, unknown> {
  const arch = meta.str('general.architecture') ?? 'unknown';
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new ModelError('unsupported_architecture', id, `GGUF architecture "${arch}" is not supported`, `supported GGUF architectures: ${GGUF_ARCHITECTURES.join(', ')} (Mistral GGUFs are "llama")`);
  }
  const k = (s: string) => `${arch}.${s}`;
  const E = meta.need(k('embedding_length'));
  const H = meta.need(k('attention.head_count'));
  const emb = g.tensors.get('token_embd.weight');
  if (!emb || emb.dims.length !== 2) throw badGguf(id, g.file, 'no 2-D tensor "token_embd.weight"');
  const tokens = meta.strings('tokenizer.ggml.tokens');
  const V = meta.num(k('vocab_size')) ?? emb.dims[1];
  const cfg: Record<string, unknown> = {
    model_type: arch,
    architectures: [`${arch}-gguf`],
    vocab_size: V,
    hidden_size: E,
    num_hidden_layers: meta.need(k('block_count')),
    num_attention_heads: H,
    num_key_value_heads: meta.num(k('attention.head_count_kv')) ?? H,
    head_dim: meta.num(k('attention.key_length')) ?? E / H,
    intermediate_size: meta.need(k('feed_forward_length')),
    rms_norm_eps: meta.num(k('attention.layer_norm_rms_epsilon')) ?? 1e-5,
    rope_theta: meta.num(k('rope.freq_base')) ?? 10000,
    max_position_embeddings: meta.num(k('context_length')) ?? 2048,
    tie_word_embeddings: !g.tensors.has('output.weight'),
  };
  const rotDim = meta.num(k('rope.dimension_count'));
  if (rotDim !== null && rotDim !== cfg.head_dim) cfg.partial_rotary_factor = rotDim / (cfg.head_dim as number);
  const scaling = meta.str(k('rope.scaling.type'));
  if (scaling && scaling !== 'none') {
    if (scaling !== 'linear') throw new ModelError('unsupported_architecture', id, `GGUF rope.scaling.type "${scaling}" is not supported`, 'supported: none, linear, and llama3 rope_freqs');
    cfg.rope_scaling = { rope_type: 'linear', factor: meta.num(k('rope.scaling.factor')) ?? 1 };
  }
  if (ropeFactors) cfg.rope_freq_factors = ropeFactors;
  if (arch === 'gemma') cfg.hidden_activation = 'gelu_pytorch_tanh';
  else cfg.hidden_act = 'silu';
  for (const [key, name] of [
    ['bos_token_id', 'tokenizer.ggml.bos_token_id'],
    ['eos_token_id', 'tokenizer.ggml.eos_token_id'],
    ['pad_token_id', 'tokenizer.ggml.padding_token_id'],
  ] as const) {
    const v = meta.num(name);
    if (v !== null && (!tokens || v < tokens.length)) cfg[key] = v;
  }
  return cfg;
}

// Pre-tokenizers of llama.cpp's tokenizer.ggml.pre, as Hugging Face tokenizer.json parts.
const SPLIT_LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const SPLIT_QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const splitThenBytes = (re: string) => ({
  type: 'Sequence',
  pretokenizers: [{ type: 'Split', pattern: { Regex: re }, behavior: 'Isolated', invert: false }, byteLevel(false)],
});
const PRE_TOKENIZERS: Record<string, { pre: unknown; normalizer: unknown }> = {
  'gpt-2': { pre: byteLevel(true), normalizer: null },
  'llama-bpe': { pre: splitThenBytes(SPLIT_LLAMA3), normalizer: null },
  'smaug-bpe': { pre: splitThenBytes(SPLIT_LLAMA3), normalizer: null },
  qwen2: { pre: splitThenBytes(SPLIT_QWEN2), normalizer: { type: 'NFC' } },
};

/**
 * tokenizer.json (+ tokenizer_config.json) from tokenizer.ggml.*: byte-level BPE
 * (tokenizer.ggml.model "gpt2") with the pre-tokenizer tokenizer.ggml.pre names. null when
 * the file carries no tokenizer.
 */
export function tokenizerFromGguf(g: GgufFile, id: string): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } | null {
  const meta = new Meta(g, id);
  const model = meta.str('tokenizer.ggml.model');
  const tokens = meta.strings('tokenizer.ggml.tokens');
  if (!model || !tokens) return null;
  if (model !== 'gpt2' && model !== 'llama') {
    throw new ModelError(
      'missing_tokenizer',
      id,
      `${path.basename(g.file)}: GGUF tokenizer model "${model}" cannot be converted yet (byte-level BPE "gpt2" and SentencePiece BPE "llama" can)`,
      'pass the tokenizer.json of the original model with --tokenizer',
    );
  }
  const types = meta.ints('tokenizer.ggml.token_type');
  if (types && types.length !== tokens.length) throw badGguf(id, g.file, `tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);
  const tokenConfig = (): Record<string, unknown> => {
    const name = (key: string) => {
      const v = meta.num(key);
      return v !== null && v < tokens.length ? tokens[v] : null;
    };
    const config: Record<string, unknown> = { tokenizer_class: 'PreTrainedTokenizerFast', source: 'gguf' };
    for (const [k, key] of [
      ['bos_token', 'tokenizer.ggml.bos_token_id'],
      ['eos_token', 'tokenizer.ggml.eos_token_id'],
      ['pad_token', 'tokenizer.ggml.padding_token_id'],
      ['unk_token', 'tokenizer.ggml.unknown_token_id'],
    ] as const) {
      const n = name(key);
      if (n !== null) config[k] = n;
    }
    const addBos = meta.get('tokenizer.ggml.add_bos_token');
    if (typeof addBos === 'boolean') config.add_bos_token = addBos;
    return config;
  };
  // llama_vocab token types: 3 = control (special), 4 = user-defined (added, not special),
  // 5 = unused (padding rows the converter adds up to the embedding's size: llama.cpp never
  // samples them, so they are special here too and prompt generation skips them).
  const special = (t: number) => t === 3 || t === 5;
  const added = tokens.flatMap((t, i) => (types && (special(types[i]) || types[i] === 4) ? [{ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: types[i] === 4, special: special(types[i]) }] : []));
  if (model === 'llama') return { tokenizer: spmTokenizer(g, meta, id, tokens, types, added), config: tokenConfig() };
  const pre = meta.str('tokenizer.ggml.pre') ?? 'default';
  const p = PRE_TOKENIZERS[pre];
  if (!p) {
    throw new ModelError('missing_tokenizer', id, `${path.basename(g.file)}: GGUF pre-tokenizer "${pre}" has no tokenizer.json equivalent here (known: ${Object.keys(PRE_TOKENIZERS).join(', ')})`, 'pass the tokenizer.json of the original model with --tokenizer');
  }
  const merges = meta.strings('tokenizer.ggml.merges') ?? [];
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: p.normalizer,
    pre_tokenizer: p.pre,
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
  return { tokenizer, config: tokenConfig() };
}

/**
 * SentencePiece BPE (tokenizer.ggml.model "llama": Llama 2, Mistral v0.1, Gemma) as
 * transformers' LlamaConverter writes it: a byte-fallback BPE whose merges are every split
 * of a vocabulary piece into two pieces, ranked by the merged piece's score (llama.cpp's
 * llm_tokenizer_spm merges the adjacent pair whose concatenation scores highest).
 */
function spmTokenizer(g: GgufFile, meta: Meta, id: string, tokens: string[], types: number[] | null, added: unknown[]): Record<string, unknown> {
  const scoresRaw = meta.get('tokenizer.ggml.scores');
  if (!Array.isArray(scoresRaw) || scoresRaw.length !== tokens.length || scoresRaw.some((x) => typeof x !== 'number')) {
    throw badGguf(id, g.file, 'tokenizer.ggml.scores is missing or not one number per token');
  }
  const scores = scoresRaw as number[];
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  const merges: Array<[string, string, number, number, number]> = [];
  tokens.forEach((t, i) => {
    if (types && types[i] !== 1) return;
    const chars = Array.from(t);
    const local: Array<[string, string, number, number, number]> = [];
    for (let j = 1; j < chars.length; j++) {
      const l = chars.slice(0, j).join('');
      const r = chars.slice(j).join('');
      if (l in vocab && r in vocab) local.push([l, r, scores[i], vocab[l], vocab[r]]);
    }
    local.sort((a, b) => a[3] - b[3] || a[4] - b[4]);
    merges.push(...local);
  });
  // Stable: equal scores keep vocabulary order.
  merges.sort((a, b) => b[2] - a[2]);
  const unkId = meta.num('tokenizer.ggml.unknown_token_id');
  const addPrefix = meta.get('tokenizer.ggml.add_space_prefix') !== false;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: addPrefix ? 'first' : 'never', split: false },
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, ...(addPrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : [])],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkId !== null && unkId < tokens.length ? tokens[unkId] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m[0], m[1]]),
    },
  };
}

/** Undoes convert_hf_to_gguf's LlamaModel.permute on the rows of a [heads·D, cols] matrix. */
function unpermuteRows(x: Float32Array, heads: number, rows: number, cols: number): Float32Array {
  const D = rows / heads;
  const half = D / 2;
  const out = new Float32Array(x.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * D + 2 * i + j) * cols;
        const dst = (h * D + j * half + i) * cols;
        out.set(x.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/**
 * Prepares (or finds in the cache) the ONNX graph, float32 weights, config and tokenizer of
 * a GGUF file. `activations`: 'llama.cpp' (default) rounds the activation of each F16 /
 * quantized weight as llama.cpp's CPU backend does (gguf-activations.ts), so the logits
 * are llama.cpp's on the file as is; 'float32' keeps them in float32 (the logits of the
 * dequantized weights).
 */
export function prepareGguf(file: string, id: string, opts: { activations?: GgufActivations } = {}): PreparedGguf {
  const activations = opts.activations ?? DEFAULT_GGUF_ACTIVATIONS;
  const g = readGguf(file, id);
  const meta = new Meta(g, id);
  const arch = meta.str('general.architecture') ?? 'unknown';
  const ft = meta.num('general.file_type');
  const quant = (ft !== null ? FILE_TYPES[ft] : undefined) ?? quantOfFileName(file);
  const real = fs.realpathSync(file);
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify({ v: GGUF_PREP_VERSION, file: real, size: g.size, mtime: g.mtimeMs, activations }))
    .update(g.header)
    .digest('hex')
    .slice(0, 32);
  const dir = path.join(cacheRoot(), 'gguf', key);
  const onnxPath = path.join(dir, 'model.onnx');
  const tokPath = path.join(dir, 'tokenizer.json');
  const done = path.join(dir, 'complete.json');
  if (fs.existsSync(done)) return { dir, onnxPath, tokenizerPath: fs.existsSync(tokPath) ? tokPath : null, arch, quant, activations, cached: true };

  // rope_freqs (llama3 RoPE scaling): per-dimension divisors of the inverse frequencies.
  let ropeFactors: number[] | null = null;
  const rf = g.tensors.get('rope_freqs.weight');
  const fd = fs.openSync(file, 'r');
  const readRaw = (name: string): Buffer => {
    const t = g.tensors.get(name)!;
    const buf = Buffer.alloc(t.length);
    if (fs.readSync(fd, buf, 0, t.length, t.offset) !== t.length) throw badGguf(id, file, `short read of tensor "${name}"`);
    return buf;
  };
  const readTensor = (name: string): Float32Array => {
    const t = g.tensors.get(name)!;
    const y = dequantize(readRaw(name), t.type, t.elements, { id, file, tensor: name });
    for (let i = 0; i < y.length; i++) {
      if (!Number.isFinite(y[i])) throw badGguf(id, file, `tensor "${name}" holds a non-finite value at element ${i}`);
    }
    return y;
  };
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    if (rf) ropeFactors = Array.from(readTensor('rope_freqs.weight'));
    const cfg = configOf(g, meta, id, ropeFactors);
    const spec = decoderSpec(cfg, id);
    const tok = tokenizerFromGguf(g, id);
    fs.mkdirSync(tmp, { recursive: true });
    const weightsFile = path.join(tmp, 'weights.bin');
    const out = fs.openSync(weightsFile, 'w');
    const tensors = new Map<string, TensorEntry>();
    const ggmlTypes = new Map<string, string>();
    const blockMins = new Map<string, BlockMins>();
    let offset = 0;
    const append = (y: Float32Array): { offset: number; length: number } => {
      const bytes = Buffer.from(y.buffer, y.byteOffset, y.byteLength);
      fs.writeSync(out, bytes, 0, bytes.length, offset);
      const at = { offset, length: bytes.length };
      offset = Math.ceil((offset + bytes.length) / 64) * 64;
      return at;
    };
    try {
      for (const t of g.tensors.values()) {
        if (t.name === 'rope_freqs.weight') continue;
        const name = hfName(t.name);
        if (!name) throw new ModelError('unsupported_architecture', id, `${path.basename(file)}: tensor "${t.name}" has no place in the ${arch} graph`, 'this GGUF variant of the architecture is not supported');
        let y = readTensor(t.name);
        const rows = t.dims.length === 2 ? t.dims[1] : 1;
        const cols = t.dims[0];
        // convert_hf_to_gguf permutes q/k rows for llama.cpp's interleaved RoPE (llama, Mistral); qwen2 and gemma use NeoX RoPE, unpermuted.
        const permuted = arch === 'llama' && /\.attn_[qk]\.(weight|bias)$/.test(t.name);
        const heads = /attn_q/.test(t.name) ? spec.H : spec.KV;
        if (permuted) y = unpermuteRows(y, heads, t.dims.length === 2 ? rows : cols, t.dims.length === 2 ? cols : 1);
        // Not the token embedding: looked up by rows, it needs its mins. (Tied to the head, it
        // then gets x'·(d·q + m), i.e. m·fp16(d)·Σq where llama.cpp has m·fp16(d·Σq).)
        if (activations === 'llama.cpp' && t.dims.length === 2 && t.name !== 'token_embd.weight' && (t.typeName === 'Q4_1' || t.typeName === 'Q5_1')) {
          // The block minimums m (fp16 at byte 2 of each block): the blocks with every quant zeroed dequantize to m.
          const raw = readRaw(t.name);
          const bsize = t.typeName === 'Q4_1' ? 20 : 24;
          for (let b = 0; b < raw.length; b += bsize) raw.fill(0, b + 4, b + bsize);
          const all = dequantize(raw, t.type, t.elements, { id, file, tensor: t.name });
          const blocks = cols / 32;
          let mins: Float32Array = new Float32Array(rows * blocks);
          for (let i = 0; i < mins.length; i++) mins[i] = all[i * 32];
          if (permuted) mins = unpermuteRows(mins, heads, rows, blocks);
          blockMins.set(name, { location: 'weights.bin', rows, blocks, ...append(mins) });
          // …and the weight without them: d·q (see gguf-activations.ts, Q8_1).
          const raw2 = readRaw(t.name);
          for (let b = 0; b < raw2.length; b += bsize) raw2.fill(0, b + 2, b + 4);
          y = dequantize(raw2, t.type, t.elements, { id, file, tensor: t.name });
          if (permuted) y = unpermuteRows(y, heads, rows, cols);
        }
        // The Gemma converter stores RMSNorm weights as w + 1 (llama.cpp multiplies by them); the builder adds the 1 itself.
        if (arch === 'gemma' && /norm\.weight$/.test(t.name)) for (let i = 0; i < y.length; i++) y[i] = Math.fround(y[i] - 1);
        tensors.set(name, { name, file: weightsFile, dtype: 'F32', shape: [...t.dims].reverse(), ...append(y) });
        ggmlTypes.set(name, t.typeName);
      }
    } finally {
      fs.closeSync(out);
    }
    const ckpt: Checkpoint = { files: [weightsFile], tensors, fingerprint: [] };
    const graph = buildDecoderGraph(spec, ckpt, cfg, id, () => 'weights.bin', undefined, activations === 'llama.cpp' ? llamaCppHooks(ggmlTypes, blockMins) : undefined);
    fs.writeFileSync(onnxPath.replace(dir, tmp), graph.encode({ producerName: 'modelprint', producerVersion: String(GGUF_PREP_VERSION), docString: `${arch} decoder dequantized by modelprint from ${file}`, metadata: { source: file, model_type: arch, gguf_quant: quant ?? '', gguf_activations: activations } }));
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(cfg, null, 1));
    if (tok) {
      fs.writeFileSync(path.join(tmp, 'tokenizer.json'), JSON.stringify(tok.tokenizer));
      fs.writeFileSync(path.join(tmp, 'tokenizer_config.json'), JSON.stringify(tok.config, null, 1));
    }
    fs.writeFileSync(path.join(tmp, 'complete.json'), JSON.stringify({ source: real, size: g.size, mtime_ms: g.mtimeMs, arch, quant, activations }));
    if (fs.existsSync(done)) {
      // Another process published the same folder meanwhile: keep it (it may be open).
      fs.rmSync(tmp, { recursive: true, force: true });
      return { dir, onnxPath, tokenizerPath: fs.existsSync(tokPath) ? tokPath : null, arch, quant, activations, cached: true };
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof ModelError) throw e;
    // Another process may have published the same folder meanwhile.
    if (fs.existsSync(done)) return { dir, onnxPath, tokenizerPath: fs.existsSync(tokPath) ? tokPath : null, arch, quant, activations, cached: true };
    throw new ModelError('load_failed', id, `cannot prepare ${file} in ${dir}: ${messageOf(e)}`, 'set MODELPRINT_CACHE_DIR to a writable folder with room for the float32 weights');
  } finally {
    fs.closeSync(fd);
  }
  return { dir, onnxPath, tokenizerPath: fs.existsSync(tokPath) ? tokPath : null, arch, quant, activations, cached: false };
}
