/**
 * Llama weights in memory (Hugging Face layout: linear weights are [out, in], row-major)
 * and the deterministic initialisation of a zoo base model.
 */
import { Rng } from '../util/rng.js';

export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
}

/** A row-major matrix. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

export interface LayerWeights {
  inputNorm: Float32Array;
  q: Matrix;
  k: Matrix;
  v: Matrix;
  o: Matrix;
  postNorm: Float32Array;
  gate: Matrix;
  up: Matrix;
  down: Matrix;
}

export interface LlamaWeights {
  config: LlamaConfig;
  /** [vocab, hidden]; also the LM head when tied. */
  embed: Matrix;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  /** [vocab, hidden]; null when tied to the embedding. */
  lmHead: Matrix | null;
}

export type TensorKind = 'embed' | 'lm_head' | 'attn' | 'mlp' | 'norm';

export interface TensorRef {
  name: string;
  kind: TensorKind;
  data: Float32Array;
  /** Rows and columns of a matrix (a norm vector is 1 × n). */
  rows: number;
  cols: number;
}

export const matrix = (rows: number, cols: number, data: Float32Array = new Float32Array(rows * cols)): Matrix => ({ rows, cols, data });

/** Every tensor of the model once (a tied head is the embedding), in a fixed order. */
export function tensors(w: LlamaWeights): TensorRef[] {
  const m = (name: string, kind: TensorKind, x: Matrix): TensorRef => ({ name, kind, data: x.data, rows: x.rows, cols: x.cols });
  const v = (name: string, x: Float32Array): TensorRef => ({ name, kind: 'norm', data: x, rows: 1, cols: x.length });
  const out: TensorRef[] = [m('model.embed_tokens.weight', 'embed', w.embed)];
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    out.push(
      v(`${p}.input_layernorm.weight`, l.inputNorm),
      m(`${p}.self_attn.q_proj.weight`, 'attn', l.q),
      m(`${p}.self_attn.k_proj.weight`, 'attn', l.k),
      m(`${p}.self_attn.v_proj.weight`, 'attn', l.v),
      m(`${p}.self_attn.o_proj.weight`, 'attn', l.o),
      v(`${p}.post_attention_layernorm.weight`, l.postNorm),
      m(`${p}.mlp.gate_proj.weight`, 'mlp', l.gate),
      m(`${p}.mlp.up_proj.weight`, 'mlp', l.up),
      m(`${p}.mlp.down_proj.weight`, 'mlp', l.down),
    );
  });
  out.push(v('model.norm.weight', w.finalNorm));
  if (w.lmHead) out.push(m('lm_head.weight', 'lm_head', w.lmHead));
  return out;
}

/** The output head: the LM head, or the embedding when tied. */
export const outputHead = (w: LlamaWeights): Matrix => w.lmHead ?? w.embed;

const cloneMatrix = (x: Matrix): Matrix => matrix(x.rows, x.cols, x.data.slice());

export function cloneWeights(w: LlamaWeights): LlamaWeights {
  return {
    config: { ...w.config },
    embed: cloneMatrix(w.embed),
    layers: w.layers.map((l) => ({
      inputNorm: l.inputNorm.slice(),
      q: cloneMatrix(l.q),
      k: cloneMatrix(l.k),
      v: cloneMatrix(l.v),
      o: cloneMatrix(l.o),
      postNorm: l.postNorm.slice(),
      gate: cloneMatrix(l.gate),
      up: cloneMatrix(l.up),
      down: cloneMatrix(l.down),
    })),
    finalNorm: w.finalNorm.slice(),
    lmHead: w.lmHead ? cloneMatrix(w.lmHead) : null,
  };
}

export function parameterCount(w: LlamaWeights): number {
  return tensors(w).reduce((n, t) => n + t.data.length, 0);
}

export interface BaseInitOptions {
  /**
   * Ids that real training would never see (invalid UTF-8 bytes, special tokens):
   * candidates for "under-trained" rows, on top of a random ~1% of rare tokens.
   */
  untrainedCandidates?: number[];
  /** First id of the merged (non-byte, non-special) tokens: later ids count as rarer. */
  firstMergeId?: number;
}

/**
 * A base model with some of the structure of a trained one:
 * - embeddings share a common mean direction (anisotropy) and per-token norms vary
 *   (log-normal, shrinking for rarer tokens);
 * - a few "under-trained" tokens have rows at the mean embedding with tiny noise, and
 *   (untied) LM-head rows pointing against the common hidden direction, so they sit in
 *   every prompt's bottom tail, like glitch tokens in real models;
 * - LM-head rows also vary in norm and in their projection on that direction;
 * - projections are scaled like a trained transformer (residual-branch outputs smaller).
 */
export function initBaseWeights(config: LlamaConfig, rng: Rng, opts: BaseInitOptions = {}): LlamaWeights {
  const { vocabSize: V, hiddenSize: E, intermediateSize: I, numLayers: L, numHeads: H, numKvHeads: KV, headDim: D } = config;
  const sigma = 2.8 / Math.sqrt(E);
  const firstMerge = opts.firstMergeId ?? 0;
  const rarity = (t: number) => (t < firstMerge ? 0.5 : (t - firstMerge) / Math.max(1, V - firstMerge));

  // Under-trained tokens: given candidates (some of them) + ~1% of ids, mostly rare ones.
  const r = rng.fork('untrained');
  const untrained = new Set<number>();
  for (const t of opts.untrainedCandidates ?? []) if (r.next() < 0.6) untrained.add(t);
  const extra = Math.max(4, Math.round(V * 0.01));
  while (untrained.size < extra + (opts.untrainedCandidates?.length ?? 0) * 0.6) {
    const t = Math.floor(V * (1 - r.next() ** 3)); // skewed to high (rare) ids
    if (t >= firstMerge) untrained.add(Math.min(V - 1, t));
    else if (r.next() < 0.05) untrained.add(t);
  }

  const er = rng.fork('embed');
  const meanDir = er.normals(E, 0.5 * sigma);
  const embed = matrix(V, E);
  for (let t = 0; t < V; t++) {
    const row = embed.data.subarray(t * E, (t + 1) * E);
    if (untrained.has(t)) {
      for (let j = 0; j < E; j++) row[j] = meanDir[j] + 0.02 * sigma * er.normal();
      continue;
    }
    const s = Math.exp(0.3 * er.normal()) * (1 - 0.35 * rarity(t));
    for (let j = 0; j < E; j++) row[j] = meanDir[j] + s * sigma * er.normal();
  }

  let lmHead: Matrix | null = null;
  if (!config.tieWordEmbeddings) {
    const hr = rng.fork('lm_head');
    const dir = new Float32Array(meanDir);
    let n = 0;
    for (const x of dir) n += x * x;
    n = Math.sqrt(n);
    for (let j = 0; j < E; j++) dir[j] = (dir[j] / n) * sigma * Math.sqrt(E);
    lmHead = matrix(V, E);
    for (let t = 0; t < V; t++) {
      const row = lmHead.data.subarray(t * E, (t + 1) * E);
      const s = Math.exp(0.35 * hr.normal());
      const a = 0.4 * hr.normal() - 0.4 * rarity(t) - (untrained.has(t) ? 1.5 + 0.3 * hr.normal() : 0);
      const spread = untrained.has(t) ? 0.3 : 1;
      for (let j = 0; j < E; j++) row[j] = a * dir[j] + spread * s * sigma * hr.normal();
    }
  }

  const lr = rng.fork('layers');
  const lin = (rows: number, cols: number, std: number) => matrix(rows, cols, lr.normals(rows * cols, std));
  const norm = (n: number, spread: number) => {
    const x = lr.normals(n, spread, 1);
    for (let i = 0; i < n; i++) x[i] = Math.abs(x[i]);
    return x;
  };
  const layers: LayerWeights[] = [];
  for (let i = 0; i < L; i++) {
    layers.push({
      inputNorm: norm(E, 0.1),
      q: lin(H * D, E, 1 / Math.sqrt(E)),
      k: lin(KV * D, E, 1 / Math.sqrt(E)),
      v: lin(KV * D, E, 1 / Math.sqrt(E)),
      o: lin(E, H * D, 0.6 / Math.sqrt(H * D)),
      postNorm: norm(E, 0.1),
      gate: lin(I, E, 1 / Math.sqrt(E)),
      up: lin(I, E, 1 / Math.sqrt(E)),
      down: lin(E, I, 0.6 / Math.sqrt(I)),
    });
  }
  return { config: { ...config }, embed, layers, finalNorm: norm(E, 0.15), lmHead };
}
