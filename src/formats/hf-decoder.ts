/**
 * Decoder-only transformers checkpoints (config.json + safetensors) as ONNX graphs with
 * the inputs and outputs of an Optimum "text-generation-with-past" export (see
 * src/zoo/llama.ts for the IO contract), built from config.json. The weights are not
 * copied: each initializer is ONNX external data pointing at its bytes in the safetensors
 * file; F16/BF16 weights get a Cast to float32 (the graph computes in float32).
 *
 * Supported `model_type`s and their quirks:
 *   llama, mistral, qwen2, qwen3 (q/k RMSNorm), phi3 (fused qkv / gate_up, partial rotary),
 *   gemma (norm ×(1+w), embedding ×√hidden, GELU-tanh), gemma2 (pre/post norms,
 *   attention and final soft-capping, alternating sliding windows), gemma3_text (gemma2 +
 *   q/k norm, local/global RoPE bases), gpt2 (learned positions, Conv1D [in, out]
 *   weights, LayerNorm), gpt_neox (parallel residual, partial rotary, per-head interleaved
 *   fused qkv). RoPE scaling: default, linear, llama3.
 */
import path from 'node:path';
import { DataType, GraphBuilder } from '../zoo/onnx/graph.js';
import { causalMask, decoderInputs, decoderOutputs, maskBias } from '../zoo/onnx/decoder-io.js';
import { ModelError } from '../inference/errors.js';
import type { Checkpoint, TensorEntry } from './safetensors.js';

export const SUPPORTED_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'gemma3_text', 'phi3', 'gpt2', 'gpt_neox'] as const;
type Arch = (typeof SUPPORTED_ARCHITECTURES)[number];

type Raw = Record<string, unknown>;
export type Act = 'silu' | 'gelu' | 'gelu_tanh' | 'relu';

interface RopeSpec {
  invFreq: number[];
  /** Leading dims of each head that rotate (partial rotary). */
  rotDim: number;
}

export interface DecoderSpec {
  arch: Arch;
  V: number;
  E: number;
  L: number;
  H: number;
  KV: number;
  D: number;
  eps: number;
  act: Act;
  rope: RopeSpec | null;
  /** gemma3: sliding layers use another RoPE base. */
  ropeLocal: RopeSpec | null;
  slidingWindow: number | null;
  sliding: boolean[];
  attnScale: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function actOf(name: unknown, model: string): Act {
  switch (name) {
    case 'silu':
    case 'swish':
      return 'silu';
    case 'gelu':
      return 'gelu';
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return 'gelu_tanh';
    case 'relu':
      return 'relu';
    default:
      throw new ModelError('unsupported_architecture', model, `activation "${String(name)}" is not supported`, `supported: silu, gelu, gelu_new, gelu_pytorch_tanh, relu`);
  }
}

/** HF's inv_freq (float32) with its rope_type's scaling. */
function ropeSpec(model: string, headDim: number, partial: number, theta: number, scaling: Raw | null, maxPos: number | null): RopeSpec {
  const rotDim = Math.trunc(headDim * partial);
  if (rotDim % 2 !== 0 || rotDim <= 0) throw new ModelError('unsupported_architecture', model, `rotary dimension ${rotDim} (head_dim ${headDim} × ${partial}) must be even and positive`);
  let inv: number[] = [];
  for (let i = 0; i < rotDim; i += 2) inv.push(Math.fround(1 / Math.fround(theta ** (i / rotDim))));
  const type = String(scaling?.rope_type ?? scaling?.type ?? 'default');
  if (type === 'default') return { invFreq: inv, rotDim };
  if (type === 'linear') {
    const factor = num(scaling?.factor) ?? 1;
    return { invFreq: inv.map((f) => Math.fround(f / factor)), rotDim };
  }
  if (type === 'llama3') {
    const factor = num(scaling?.factor) ?? 8;
    const low = num(scaling?.low_freq_factor) ?? 1;
    const high = num(scaling?.high_freq_factor) ?? 4;
    const old = num(scaling?.original_max_position_embeddings) ?? maxPos ?? 8192;
    const lowWavelen = old / low;
    const highWavelen = old / high;
    inv = inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      let v = wavelen > lowWavelen ? f / factor : f;
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        const smooth = (old / wavelen - low) / (high - low);
        v = (1 - smooth) * (v / factor) + smooth * v;
      }
      return Math.fround(v);
    });
    return { invFreq: inv, rotDim };
  }
  throw new ModelError('unsupported_architecture', model, `rope scaling type "${type}" is not supported`, 'supported: default, linear, llama3');
}

/** Reads what the graph needs from config.json; unknown model_type → unsupported_architecture. */
export function decoderSpec(cfg: Raw, model: string): DecoderSpec {
  const arch = String(cfg.model_type ?? 'unknown');
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new ModelError(
      'unsupported_architecture',
      model,
      `model_type "${arch}" is not supported for safetensors checkpoints`,
      `supported: ${SUPPORTED_ARCHITECTURES.join(', ')}; or export it with \`optimum-cli export onnx\``,
    );
  }
  const a = arch as Arch;
  const need = (...keys: string[]): number => {
    for (const k of keys) {
      const v = num(cfg[k]);
      if (v !== null) return v;
    }
    throw new ModelError('load_failed', model, `config.json has no ${keys.join(' / ')}`, 'fix or replace config.json');
  };
  const V = need('vocab_size');
  const E = need('hidden_size', 'n_embd');
  const L = need('num_hidden_layers', 'n_layer');
  const H = need('num_attention_heads', 'n_head');
  // GPT-2 and GPT-NeoX have no grouped-query attention (a stray num_key_value_heads is ignored, as transformers does).
  const KV = a === 'gpt2' || a === 'gpt_neox' ? H : (num(cfg.num_key_value_heads) ?? H);
  const D = num(cfg.head_dim) ?? E / H;
  if (!Number.isInteger(D) || H % KV !== 0) throw new ModelError('load_failed', model, `inconsistent heads: hidden ${E}, heads ${H}, kv heads ${KV}, head_dim ${D}`);
  const eps = num(cfg.rms_norm_eps) ?? num(cfg.layer_norm_epsilon) ?? num(cfg.layer_norm_eps) ?? 1e-6;
  const isGemma = a === 'gemma' || a === 'gemma2' || a === 'gemma3_text';
  const act = actOf(isGemma ? (cfg.hidden_activation ?? 'gelu_pytorch_tanh') : a === 'gpt2' ? (cfg.activation_function ?? 'gelu_new') : (cfg.hidden_act ?? 'silu'), model);
  const maxPos = num(cfg.max_position_embeddings) ?? num(cfg.n_positions);

  // transformers ≥ 5 keeps RoPE settings in rope_parameters (per layer type for Gemma 3).
  const rp = (cfg.rope_parameters ?? null) as Raw | null;
  const rpFull = (rp && typeof rp.full_attention === 'object' ? (rp.full_attention as Raw) : rp) ?? null;
  const rpLocal = (rp && typeof rp.sliding_attention === 'object' ? (rp.sliding_attention as Raw) : null) ?? null;
  const scaling = (rpFull ?? (cfg.rope_scaling as Raw | null) ?? null) as Raw | null;
  const theta = num(rpFull?.rope_theta) ?? num(cfg.rope_theta) ?? num(cfg.rotary_emb_base) ?? 10000;
  const partial = num(rpFull?.partial_rotary_factor) ?? num(cfg.partial_rotary_factor) ?? (a === 'gpt_neox' ? (num(cfg.rotary_pct) ?? 1) : 1);
  const rope = a === 'gpt2' ? null : ropeSpec(model, D, partial, theta, scaling, maxPos);
  // GGUF (src/formats/gguf.ts): llama.cpp's rope_freqs tensor divides each inverse frequency (llama3 scaling).
  const factors = Array.isArray(cfg.rope_freq_factors) ? (cfg.rope_freq_factors as unknown[]) : null;
  if (rope && factors) {
    if (factors.length !== rope.invFreq.length || factors.some((f) => num(f) === null || (f as number) <= 0)) {
      throw new ModelError('load_failed', model, `rope_freq_factors has ${factors.length} entries, the rotary dimension needs ${rope.invFreq.length} positive ones`);
    }
    rope.invFreq = rope.invFreq.map((f, i) => Math.fround(f / (factors[i] as number)));
  }
  let ropeLocal: RopeSpec | null = null;
  if (a === 'gemma3_text') {
    const localTheta = num(rpLocal?.rope_theta) ?? num(cfg.rope_local_base_freq) ?? 10000;
    ropeLocal = ropeSpec(model, D, partial, localTheta, rpLocal, maxPos);
  }

  const window = num(cfg.sliding_window);
  const layerTypes = Array.isArray(cfg.layer_types) ? (cfg.layer_types as unknown[]) : null;
  const sliding = Array.from({ length: L }, (_, i) => {
    if (window === null) return false;
    if (layerTypes) return layerTypes[i] === 'sliding_attention';
    if (a === 'mistral' || a === 'phi3') return true;
    if (a === 'gemma2') return i % 2 === 0;
    if (a === 'gemma3_text') return (i + 1) % (num(cfg.sliding_window_pattern) ?? 6) !== 0;
    if (a === 'qwen2' || a === 'qwen3') return cfg.use_sliding_window === true && i >= (num(cfg.max_window_layers) ?? L);
    return false;
  });
  const qpas = num(cfg.query_pre_attn_scalar);
  const attnScale = (a === 'gemma2' || a === 'gemma3_text') && qpas !== null ? qpas ** -0.5 : 1 / Math.sqrt(D);
  return {
    arch: a,
    V,
    E,
    L,
    H,
    KV,
    D,
    eps,
    act,
    rope,
    ropeLocal,
    slidingWindow: window,
    sliding,
    attnScale,
    // transformers applies attn_logit_softcapping in Gemma 2 only (Gemma 3 keeps the field but ignores it).
    attnSoftcap: a === 'gemma2' ? num(cfg.attn_logit_softcapping) : null,
    finalSoftcap: a === 'gemma2' || a === 'gemma3_text' ? num(cfg.final_logit_softcapping) : null,
  };
}

const DTYPE_ID = { F32: DataType.FLOAT, F16: DataType.FLOAT16, BF16: DataType.BFLOAT16, I32: DataType.INT32 } as const;

/** LoRA pairs by module name (e.g. model.layers.0.self_attn.q_proj): y += scale · (x Aᵀ) Bᵀ. */
export interface LoraSpec {
  modules: Map<string, { a: string; b: string }>;
  scale: number;
  /** Modules whose pair was used; every pair must be. */
  used: Set<string>;
}

export interface DecoderGraphOptions {
  /**
   * Keep half-precision (F16/BF16) matrices as stored and cast each to float32 right before
   * its use (see `castAfter` below), so only a layer's worth of float32 copies exists at a
   * time; the tied / separate head is cast in vocabulary chunks. Default: one Cast per
   * tensor, which ONNX Runtime folds into a float32 initializer at load (faster, 2 × the
   * memory of bf16 weights, plus its pre-packed copies).
   */
  castAtUse?: boolean;
  /** Cast-at-use head: bytes of float32 per vocabulary chunk (default 16 MiB). */
  headChunkBytes?: number;
}

/** 16 MiB: under glibc's largest mmap threshold, so freed chunks are reused rather than unmapped and faulted in again. */
const HEAD_CHUNK_BYTES = 16 << 20;

/**
 * Changes another engine's arithmetic needs, e.g. llama.cpp's for GGUF files
 * (src/formats/gguf-activations.ts). Without hooks the graph is unchanged.
 */
export interface DecoderHooks {
  /**
   * The input x ([rows, inn]) of the linear layer whose weight is `weight`: returns the
   * tensor to multiply instead and, optionally, a rewrite of the layer's output.
   */
  linear?(g: GraphBuilder, x: string, weight: string, inn: number): { x: string; output?: (y: string) => string };
  /** The MLP activation function of x, or null for the builder's own. */
  activation?(g: GraphBuilder, x: string, act: Act): string | null;
}

/**
 * Builds the graph. `location(file)` names each safetensors file relative to the model
 * file (external data).
 */
export function buildDecoderGraph(spec: DecoderSpec, ckpt: Checkpoint, cfg: Raw, model: string, location: (file: string) => string, lora?: LoraSpec, hooks?: DecoderHooks, opts: DecoderGraphOptions = {}): GraphBuilder {
  const { arch, V, E, L, H, KV, D, eps } = spec;
  const rep = H / KV;
  const g = new GraphBuilder(`modelprint-${arch}`);
  const F = DataType.FLOAT;
  const isGemma = arch === 'gemma' || arch === 'gemma2' || arch === 'gemma3_text';

  // Weight names: gpt2 checkpoints come with or without the "transformer." prefix.
  const prefix = arch === 'gpt2' ? (ckpt.tensors.has('transformer.wte.weight') ? 'transformer.' : '') : arch === 'gpt_neox' ? 'gpt_neox.' : 'model.';
  const has = (name: string) => ckpt.tensors.has(name);
  const tensor = (name: string, shape?: number[]): TensorEntry => {
    const t: TensorEntry | undefined = ckpt.tensors.get(name);
    if (t && t.dtype === 'I32') throw new ModelError('unsupported_safetensors', model, `${path.basename(t.file)}: tensor "${name}" has dtype I32 where float weights belong`, 'the checkpoint is not in the layout its quantization_config describes');
    if (!t) throw new ModelError('load_failed', model, `the checkpoint has no tensor "${name}" (model_type ${arch})`, 'the checkpoint is incomplete or not in the transformers layout');
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new ModelError('load_failed', model, `tensor "${name}" has shape [${t.shape.join(', ')}], config.json implies [${shape.join(', ')}]`, 'config.json does not belong to these weights');
    }
    return t;
  };
  /** The initializer of a tensor as stored (external data, no copy). */
  const stored = new Map<string, string>();
  const raw = (t: TensorEntry): string => {
    let ext = stored.get(t.name);
    if (!ext) {
      ext = g.externalInitializer(t.dtype === 'F32' ? t.name : `${t.name}#${t.dtype}`, DTYPE_ID[t.dtype], t.shape, { location: location(t.file), offset: t.offset, length: t.length });
      stored.set(t.name, ext);
    }
    return ext;
  };
  // Cast at use: ONNX Runtime runs a node as soon as its inputs exist, so a Cast of an
  // initializer alone would run at the start of every pass and all float32 copies would
  // live at once. Each cast-at-use matrix is therefore reshaped (a view: no copy) by a
  // shape computed from the activation it multiplies, [0, 0] = "keep both dims": the
  // Cast waits for that activation, and its float32 output is freed after its one use.
  const after = new Map<string, string>();
  /** A 2-D initializer as a view that waits for `use`. */
  const deferTo = (ext: string, use: string): string => {
    let keep = after.get(use);
    if (!keep) {
      keep = g.op('Mul', [g.op('Shape', [use]), g.int64([0], [])]);
      after.set(use, keep);
    }
    return g.op('Reshape', [ext, keep]);
  };
  const castAfter = (ext: string, use: string): string => g.op('Cast', [deferTo(ext, use)], { to: F });
  const lazy = (t: TensorEntry) => opts.castAtUse === true && t.dtype !== 'F32' && t.shape.length === 2;
  const loaded = new Map<string, string>();
  /** A float32 weight; `use` is the activation it multiplies (for cast at use). */
  const weight = (name: string, shape?: number[], use?: string): string => {
    const t = tensor(name, shape);
    if (use && lazy(t)) return castAfter(raw(t), use);
    const hit = loaded.get(name);
    if (hit) return hit;
    const out = t.dtype === 'F32' ? raw(t) : g.op('Cast', [raw(t)], { to: F }, name);
    loaded.set(name, out);
    return out;
  };
  /** Rows of an embedding table as float32 (half-precision tables are gathered, then cast). */
  const embed = (name: string, shape: number[], ids: string): string => {
    const t = tensor(name, shape);
    if (t.dtype === 'F32') return g.op('Gather', [raw(t), ids], { axis: 0 });
    return g.op('Cast', [g.op('Gather', [raw(t), ids], { axis: 0 })], { to: F });
  };
  /** x · headᵀ; a cast-at-use head is split into vocabulary chunks, each cast right before its product. */
  const headProduct = (x: string, name: string): string => {
    const t = tensor(name, [V, E]);
    if (!lazy(t)) return g.op('Gemm', [x, weight(name, [V, E])], { transB: 1 });
    const rowBytes = (t.length / V) | 0;
    const rows = Math.max(1, Math.floor((opts.headChunkBytes ?? HEAD_CHUNK_BYTES) / (E * 4)));
    const parts: string[] = [];
    for (let r = 0; r < V; r += rows) {
      const n = Math.min(rows, V - r);
      const chunk = g.externalInitializer(`${name}#${t.dtype}[${r}:${r + n}]`, DTYPE_ID[t.dtype], [n, E], { location: location(t.file), offset: t.offset + r * rowBytes, length: n * rowBytes });
      // Each chunk waits for the previous product, so one chunk's float32 copy lives at a time.
      parts.push(g.op('Gemm', [x, castAfter(chunk, parts.at(-1) ?? x)], { transB: 1 }));
    }
    return parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: 1 });
  };
  const optBias = (name: string, n: number): string | null => (has(name) ? weight(name, [n]) : null);

  const dims = { layers: L, kvHeads: KV, headDim: D };
  const { inputIds, attentionMask, positionIds, past } = decoderInputs(g, dims);

  g.scope = 'shapes/';
  const bs = g.op('Shape', [inputIds]);
  const headsShape = (n: number) => g.op('Concat', [bs, g.int64([n, D])], { axis: 0 });

  // x is kept 2-D, [batch·seq, features]: every projection is one Gemm on the weight as stored.
  /** Adds the LoRA path of `module` (if the adapter has one) to its output y. */
  const withLora = (x: string, y: string, module: string, out: number, inn: number): string => {
    const pair = lora?.modules.get(module);
    if (!pair) return y;
    lora!.used.add(module);
    const ta = ckpt.tensors.get(pair.a);
    const r = ta?.shape[0] ?? 0;
    const down = g.op('Gemm', [x, weight(pair.a, [r, inn], x)], { transB: 1 });
    const upd = g.op('Gemm', [down, weight(pair.b, [out, r], down)], { transB: 1 });
    return g.op('Add', [y, g.op('Mul', [upd, g.float([lora!.scale], [])])]);
  };
  const linear = (x: string, wname: string, out: number, inn: number, bname?: string): string => {
    const b = bname ? optBias(bname, out) : null;
    const h = hooks?.linear?.(g, x, wname, inn);
    const xw = h ? h.x : x;
    const w = weight(wname, [out, inn], xw);
    let y = g.op('Gemm', b ? [xw, w, b] : [xw, w], { transB: 1 });
    if (h?.output) y = h.output(y);
    return withLora(x, y, wname.replace(/\.weight$/, ''), out, inn);
  };
  const conv1d = (x: string, p: string, inn: number, out: number): string =>
    withLora(x, g.op('Gemm', [x, weight(`${p}.weight`, [inn, out], x), weight(`${p}.bias`, [out])]), p, out, inn);
  const rmsNorm = (x: string, wname: string, n: number, plusOne: boolean): string => {
    let w = weight(wname, [n]);
    if (plusOne) w = g.op('Add', [w, g.float([1], [])]);
    const mean = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [mean, g.float([eps], [])])])]);
    return g.op('Mul', [g.op('Mul', [x, inv]), w]);
  };
  const layerNorm = (x: string, p: string, n: number): string =>
    g.op('LayerNormalization', [x, weight(`${p}.weight`, [n]), weight(`${p}.bias`, [n])], { axis: -1, epsilon: { float: eps } });
  const norm = (x: string, p: string, n = E): string => (arch === 'gpt2' || arch === 'gpt_neox' ? layerNorm(x, p, n) : rmsNorm(x, `${p}.weight`, n, isGemma));
  const activation = (x: string): string => {
    const hooked = hooks?.activation?.(g, x, spec.act);
    if (hooked) return hooked;
    switch (spec.act) {
      case 'silu':
        return g.op('Mul', [x, g.op('Sigmoid', [x])]);
      case 'relu':
        return g.op('Relu', [x]);
      case 'gelu':
        return g.op('Mul', [g.op('Mul', [x, g.float([0.5], [])]), g.op('Add', [g.op('Erf', [g.op('Mul', [x, g.float([Math.SQRT1_2], [])])]), g.float([1], [])])]);
      case 'gelu_tanh': {
        const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
        const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.float([0.044715], [])])]), g.float([Math.sqrt(2 / Math.PI)], [])]);
        return g.op('Mul', [g.op('Mul', [x, g.float([0.5], [])]), g.op('Add', [g.op('Tanh', [inner]), g.float([1], [])])]);
      }
    }
  };
  const softcap = (x: string, cap: number | null): string => (cap === null ? x : g.op('Mul', [g.op('Tanh', [g.op('Mul', [x, g.float([1 / cap], [])])]), g.float([cap], [])]));

  // Rotary tables from position_ids: [batch, 1, seq, rot].
  g.scope = 'rotary/';
  const posF = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: F }), g.int64([2])]);
  const ropeTables = (r: RopeSpec) => {
    const freqs = g.op('Mul', [posF, g.float(r.invFreq)]);
    const emb = g.op('Concat', [freqs, freqs], { axis: -1 });
    return { cos: g.op('Unsqueeze', [g.op('Cos', [emb]), g.int64([1])]), sin: g.op('Unsqueeze', [g.op('Sin', [emb]), g.int64([1])]), rotDim: r.rotDim };
  };
  const ropeGlobal = spec.rope ? ropeTables(spec.rope) : null;
  const ropeLocal = spec.ropeLocal ? ropeTables(spec.ropeLocal) : null;
  /** x: [b, heads, s, D]; rotate_half on the first rotDim dims. */
  const applyRope = (x: string, t: { cos: string; sin: string; rotDim: number }): string => {
    const r = t.rotDim;
    let rot = x;
    let pass: string | null = null;
    if (r < D) [rot, pass] = g.opN('Split', [x, g.int64([r, D - r])], 2, { axis: -1 });
    const [x1, x2] = g.opN('Split', [rot, g.int64([r / 2, r / 2])], 2, { axis: -1 });
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    const out = g.op('Add', [g.op('Mul', [rot, t.cos]), g.op('Mul', [rotated, t.sin])]);
    return pass ? g.op('Concat', [out, pass], { axis: -1 }) : out;
  };

  // Additive masks [batch, 1, 1, seq, total]: causal over absolute positions and padding (and the sliding window).
  g.scope = 'mask/';
  const { keyIdx, queryIdx, allowed, bias: biasFull } = causalMask(g, { inputIds, attentionMask });
  let biasSliding: string | null = null;
  if (spec.sliding.some(Boolean) && spec.slidingWindow !== null) {
    // HF: key j is visible from query i when j > i - window.
    const inWindow = g.op('Greater', [keyIdx, g.op('Sub', [queryIdx, g.int64([spec.slidingWindow], [])])]);
    biasSliding = maskBias(g, g.op('And', [allowed, inWindow]));
  }

  /** Attention over q [b,H,s,D], k/v [b,KV,s,D] (after RoPE); returns [b·s, H·D]. */
  const attention = (i: number, q: string, k: string, v: string): string => {
    const keyAll = g.op('Concat', [past[i].key, k], { axis: 2 }, `present.${i}.key`);
    const valueAll = g.op('Concat', [past[i].value, v], { axis: 2 }, `present.${i}.value`);
    let scale = spec.attnScale;
    if (arch === 'gpt2' && cfg.scale_attn_by_inverse_layer_idx === true) scale /= i + 1;
    if (arch === 'gpt2' && cfg.scale_attn_weights === false) scale = 1;
    const q5 = g.op('Mul', [g.op('Reshape', [q, g.int64([0, KV, rep, -1, D])]), g.float([scale], [])]);
    const k5 = g.op('Transpose', [g.op('Unsqueeze', [keyAll, g.int64([2])])], { perm: [0, 1, 2, 4, 3] });
    const scores = softcap(g.op('MatMul', [q5, k5]), spec.attnSoftcap);
    const masked = g.op('Add', [scores, spec.sliding[i] && biasSliding ? biasSliding : biasFull]);
    const probs = g.op('Softmax', [masked], { axis: -1 });
    const ctx5 = g.op('MatMul', [probs, g.op('Unsqueeze', [valueAll, g.int64([2])])]);
    const ctx = g.op('Transpose', [g.op('Reshape', [ctx5, g.int64([0, H, -1, D])])], { perm: [0, 2, 1, 3] });
    return g.op('Reshape', [ctx, g.int64([-1, H * D])]);
  };
  /** [b·s, n·D] → [b, n, s, D]. */
  const toHeads = (t: string, n: number): string => g.op('Transpose', [g.op('Reshape', [t, headsShape(n)])], { perm: [0, 2, 1, 3] });
  const ropeFor = (i: number) => (spec.sliding[i] && ropeLocal ? ropeLocal : ropeGlobal);

  g.scope = 'model/';
  const flatIds = g.op('Reshape', [inputIds, g.int64([-1])]);
  let x: string;
  if (arch === 'gpt2') {
    const P = (num(cfg.n_positions) ?? num(cfg.max_position_embeddings))!;
    const tok = embed(`${prefix}wte.weight`, [V, E], flatIds);
    const posE = embed(`${prefix}wpe.weight`, [P, E], g.op('Reshape', [positionIds, g.int64([-1])]));
    x = g.op('Add', [tok, posE]);
  } else {
    const embName = arch === 'gpt_neox' ? 'gpt_neox.embed_in.weight' : 'model.embed_tokens.weight';
    x = embed(embName, [V, E], flatIds);
    if (isGemma) x = g.op('Mul', [x, g.float([Math.fround(Math.sqrt(E))], [])]);
  }

  const I = num(cfg.intermediate_size) ?? (arch === 'gpt2' ? (num(cfg.n_inner) ?? 4 * E) : 0);
  for (let i = 0; i < L; i++) {
    g.scope = `layers.${i}/`;
    if (arch === 'gpt2') {
      const p = `${prefix}h.${i}`;
      const qkv = conv1d(norm(x, `${p}.ln_1`), `${p}.attn.c_attn`, E, 3 * E);
      const [q, k, v] = g.opN('Split', [qkv, g.int64([E, E, E])], 3, { axis: -1 });
      const ctx = attention(i, toHeads(q, H), toHeads(k, H), toHeads(v, H));
      x = g.op('Add', [x, conv1d(ctx, `${p}.attn.c_proj`, E, E)]);
      const m = conv1d(activation(conv1d(norm(x, `${p}.ln_2`), `${p}.mlp.c_fc`, E, I)), `${p}.mlp.c_proj`, I, E);
      x = g.op('Add', [x, m]);
      continue;
    }
    if (arch === 'gpt_neox') {
      const p = `gpt_neox.layers.${i}`;
      const h = norm(x, `${p}.input_layernorm`);
      const qkv = linear(h, `${p}.attention.query_key_value.weight`, 3 * E, E, `${p}.attention.query_key_value.bias`);
      // Interleaved per head: [b, s, H, 3·D] → q, k, v.
      const [q, k, v] = g.opN('Split', [g.op('Reshape', [qkv, g.op('Concat', [bs, g.int64([H, 3 * D])], { axis: 0 })]), g.int64([D, D, D])], 3, { axis: -1 });
      const heads = (t: string) => g.op('Transpose', [t], { perm: [0, 2, 1, 3] });
      const ctx = attention(i, applyRope(heads(q), ropeGlobal!), applyRope(heads(k), ropeGlobal!), heads(v));
      const attnOut = linear(ctx, `${p}.attention.dense.weight`, E, E, `${p}.attention.dense.bias`);
      const mlp = (hh: string) =>
        linear(activation(linear(hh, `${p}.mlp.dense_h_to_4h.weight`, I, E, `${p}.mlp.dense_h_to_4h.bias`)), `${p}.mlp.dense_4h_to_h.weight`, E, I, `${p}.mlp.dense_4h_to_h.bias`);
      if (cfg.use_parallel_residual !== false) {
        x = g.op('Add', [g.op('Add', [x, attnOut]), mlp(norm(x, `${p}.post_attention_layernorm`))]);
      } else {
        x = g.op('Add', [x, attnOut]);
        x = g.op('Add', [x, mlp(norm(x, `${p}.post_attention_layernorm`))]);
      }
      continue;
    }
    // Llama family.
    const p = `model.layers.${i}`;
    const a = `${p}.self_attn`;
    const h = norm(x, `${p}.input_layernorm`);
    let q: string;
    let k: string;
    let v: string;
    if (arch === 'phi3') {
      const qkv = linear(h, `${a}.qkv_proj.weight`, (H + 2 * KV) * D, E, `${a}.qkv_proj.bias`);
      [q, k, v] = g.opN('Split', [qkv, g.int64([H * D, KV * D, KV * D])], 3, { axis: -1 });
    } else {
      q = linear(h, `${a}.q_proj.weight`, H * D, E, `${a}.q_proj.bias`);
      k = linear(h, `${a}.k_proj.weight`, KV * D, E, `${a}.k_proj.bias`);
      v = linear(h, `${a}.v_proj.weight`, KV * D, E, `${a}.v_proj.bias`);
    }
    let qh = toHeads(q, H);
    let kh = toHeads(k, KV);
    if (arch === 'qwen3' || arch === 'gemma3_text') {
      qh = rmsNorm(qh, `${a}.q_norm.weight`, D, arch === 'gemma3_text');
      kh = rmsNorm(kh, `${a}.k_norm.weight`, D, arch === 'gemma3_text');
    }
    const r = ropeFor(i)!;
    const ctx = attention(i, applyRope(qh, r), applyRope(kh, r), toHeads(v, KV));
    let attnOut = linear(ctx, `${a}.o_proj.weight`, E, H * D, `${a}.o_proj.bias`);
    const sandwich = arch === 'gemma2' || arch === 'gemma3_text';
    if (sandwich) attnOut = norm(attnOut, `${p}.post_attention_layernorm`);
    x = g.op('Add', [x, attnOut]);
    const h2 = norm(x, sandwich ? `${p}.pre_feedforward_layernorm` : `${p}.post_attention_layernorm`);
    let gate: string;
    let up: string;
    if (arch === 'phi3') {
      [gate, up] = g.opN('Split', [linear(h2, `${p}.mlp.gate_up_proj.weight`, 2 * I, E), g.int64([I, I])], 2, { axis: -1 });
    } else {
      gate = linear(h2, `${p}.mlp.gate_proj.weight`, I, E, `${p}.mlp.gate_proj.bias`);
      up = linear(h2, `${p}.mlp.up_proj.weight`, I, E, `${p}.mlp.up_proj.bias`);
    }
    let mlpOut = linear(g.op('Mul', [activation(gate), up]), `${p}.mlp.down_proj.weight`, E, I, `${p}.mlp.down_proj.bias`);
    if (sandwich) mlpOut = norm(mlpOut, `${p}.post_feedforward_layernorm`);
    x = g.op('Add', [x, mlpOut]);
  }

  g.scope = 'head/';
  const finalNorm = arch === 'gpt2' ? `${prefix}ln_f` : arch === 'gpt_neox' ? 'gpt_neox.final_layer_norm' : 'model.norm';
  // Only the last position's logits: CausalLM reads no others (batches are left-padded, so
  // every row ends there), and the head is the largest product of a prompt's pass.
  const lastPos = g.op('Gather', [g.op('Reshape', [x, g.op('Concat', [bs, g.int64([E])], { axis: 0 })]), g.int64([-1], [])], { axis: 1 });
  const hidden = norm(lastPos, finalNorm);
  // GPT-NeoX's head is embed_out in transformers' saved checkpoints, lm_head in transformers 5's
  // module tree (what gptqmodel saves).
  const headName = arch === 'gpt_neox' && !has('lm_head.weight') ? 'embed_out.weight' : 'lm_head.weight';
  const embName = arch === 'gpt2' ? `${prefix}wte.weight` : arch === 'gpt_neox' ? 'gpt_neox.embed_in.weight' : 'model.embed_tokens.weight';
  // A head that is not in the checkpoint is tied to the embedding (as transformers does).
  const headWeight = has(headName) ? headName : embName;
  const hh = hooks?.linear?.(g, hidden, headWeight, E);
  let logits = headProduct(hh ? hh.x : hidden, headWeight);
  if (hh?.output) logits = hh.output(logits);
  const flat = softcap(logits, spec.finalSoftcap);
  g.op('Reshape', [flat, g.int64([-1, 1, V])], {}, 'logits');

  decoderOutputs(g, dims, V);
  return g;
}
