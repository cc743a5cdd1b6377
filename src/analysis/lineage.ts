import { agnes } from 'ml-hclust';
import { isFailedModel } from './families.js';
import type { SimilarityMatrix } from './input.js';
import { pearsonR } from './stats.js';

/**
 * Lineage recovery from a similarity matrix (docs/lineage-recovery.md): families, a
 * predicted parent per model, and findings against declared bases.
 *
 * Pure functions. The pair score is S(i, j) = (M[i][j] + M[j][i]) / 2 (a bottom-k matrix is
 * asymmetric: row i is scored on model i's prompts); a pair with a negative or missing
 * value in either direction has no score. The steps of the default method ("hub"):
 *  0. degenerate sketches: two models with S ≥ copyThreshold whose score profiles against
 *     all other models disagree (Pearson r of log10 S < copyProfileCorrelation) cannot be one
 *     checkpoint — the probe returned the same tokens whatever the model; such models are
 *     left out like failed ones (role "degenerate");
 *  1. same/different threshold τ learned from the scores: a two-component Gaussian mixture
 *     on log10 S of all pairs; τ is where the "same" component's posterior reaches 0.5;
 *  2. copy groups: pairs with S ≥ copyThreshold whose score profiles agree are one checkpoint
 *     (re-uploads, lossless conversions); the representative is the oldest (created_at),
 *     else most downloaded, else the upload whose namespace names the model ("publisher
 *     prior", only to break exact ties), else the shortest id;
 *  3. families: single-linkage clusters of S ≥ τ (the connected components);
 *  4. rank inside a family: created_at when both have one (older first); else a rank value:
 *     copy-group size (originals get re-uploaded), then centrality (mean score against the
 *     copy groups it scores ≥ τ with), then the mean score against all models; a name
 *     ancestor (nameAncestor: `Qwen2-7B` for `Qwen2-7B-Instruct`) that scores ≥ τ with its
 *     name descendant is lifted just above it (the order stays transitive);
 *  4b. names (third round): a copy group's name parent is the most specific (most words) of the
 *     groups whose names it extends (nameAncestor; version bumps and quantization variants are
 *     siblings, not ancestors) that score at least the name floor with it (the mean of the
 *     "different" component: above a typical unrelated pair) and whose size token agrees (≤ 1.5×);
 *     name parents join families; the rank value adds the number of related groups named after
 *     the group ("namesakes": originals are fine-tuned and quantized under their name);
 *  5. parent: the name parent when there is one (the chain step below may still move it to a
 *     closer model that is named after it too); else the candidates are the copy groups
 *     scoring ≥ τ, of agreeing size, that outrank the model; those
 *     within `window` × the best of their scores are kept (windowOf "above"; "all": × the
 *     model's best score over all groups, so its own derivatives can push its parent out);
 *     the parent is the best-scoring of those with the most copies; none → a root;
 *  6. chains: while a closer candidate j that also outranks the model sits between the model
 *     and that parent p (the model–p score is the weakest side of the triangle by
 *     `chainMargin`), j becomes the parent.
 * Other members of a copy group get the representative as parent (exact copies that are all
 * quantized uploads without metadata: the group's parent, as siblings). "arborescence" (Chu-Liu/
 * Edmonds on the directed scores) and "nearest" are kept as measured alternatives.
 */

export type LineageMethod = 'hub' | 'arborescence' | 'nearest';

export interface LineageMetadata {
  model: string;
  /** Declared bases (answer key for findings; never used to predict). */
  baseModels: string[];
  downloads: number | null;
  /** Creation time, ms since the epoch. */
  createdAt: number | null;
}

export interface LineageOptions {
  method?: LineageMethod;
  /** Same/different threshold; undefined or null → learned from the scores. */
  threshold?: number | null;
  /** Score at or above which two models may be copies of one checkpoint. */
  copyThreshold?: number;
  /** Minimum Pearson r of the two models' log-score profiles for a copy. */
  copyProfileCorrelation?: number;
  /** Parent candidates: within this fraction of the model's best score. */
  window?: number;
  /** Break exact ties between copies by the uploader namespace (see above). */
  namePrior?: boolean;
  /**
   * Orient an edge by the model names when one name extends the other (see nameAncestor):
   * `Qwen2-7B` ranks above `Qwen2-7B-Instruct`, `SmolLM3-3B-Base` above `SmolLM3-3B`.
   */
  nameOrientation?: boolean;
  /** Rank originals above their derivatives by the size of their copy group. */
  copyCountPrior?: boolean;
  /** Centrality over the copy groups scoring ≥ τ with the group (default), or over its whole family. */
  centrality?: 'neighbours' | 'family';
  /**
   * The window is measured from the best score of all candidates ('all') or of the candidates
   * that outrank the model ('above': the model's own derivatives do not push its parent out).
   */
  windowOf?: 'all' | 'above';
  /** Leave out models with degenerate sketches (see analyzeLineage). */
  detectDegenerate?: boolean;
  /** Chain step only through candidates that outrank the model (else: any candidate). */
  chainAbove?: boolean;
  /**
   * Among the candidates that outrank the model (within the window): the best-scoring one
   * among those with the most copies (default: a quantization goes to the re-uploaded
   * original, a fine-tune to the closer of two equally re-uploaded ancestors), the top-ranked
   * one ('rank'), or the best-scoring one ('score').
   */
  parentChoice?: 'rank' | 'score' | 'copies';
  /**
   * Chains: move the parent from the chosen (top-ranked) candidate p to a closer candidate j
   * when the pair (model, p) is the weakest side of the triangle (model, j, p) by this margin,
   * i.e. j sits between the model and p. 0 disables.
   */
  chainMargin?: number;
  /**
   * Parent by name: when name ancestors of the model (see nameAncestor) are among its
   * related copy groups, the parent is the most specific of them (the most words; ties: the
   * best score), before the copies, window and chain rules.
   */
  nameParent?: boolean;
  /**
   * How low a name ancestor's score may be for the name parent: 'tau' (the same/different
   * threshold) or 'unrelated' (the mean of the "different" score component: the pair need only
   * score above a typical unrelated pair).
   */
  nameFloor?: 'tau' | 'unrelated';
  /** Rank originals above their derivatives by the number of related models named after them. */
  namesakePrior?: boolean;
  /**
   * A candidate whose name gives a parameter size more than this ratio away from the model's
   * (`1.7B` vs `4B`) is not its parent (fine-tunes, merges and quantizations keep the size);
   * 0 disables.
   */
  sizeRatio?: number;
  /**
   * Exact copies that are all quantized uploads (q2_k and q2_k_l of one GGUF export) are
   * siblings: each gets the group's parent rather than the representative.
   */
  quantSiblings?: boolean;
  /**
   * Names that differ only by a version number (Qwen2-7B, Qwen2.5-7B) or only by
   * quantization words added to a quantized upload (q2_k, q2_k_l) are siblings, not
   * ancestor and derivative.
   */
  nameSiblings?: boolean;
  /**
   * Measured, off by default: a chat-tuned model (name with instruct, chat, it) is not the
   * parent of a model whose name has none of these words (unless by name parent).
   */
  chatParentVeto?: boolean;
  metadata?: Map<string, LineageMetadata>;
}

export const LINEAGE_DEFAULTS = {
  method: 'hub' as LineageMethod,
  copyThreshold: 0.98,
  copyProfileCorrelation: 0.95,
  window: 0.6,
  namePrior: true,
  nameOrientation: true,
  windowOf: 'above' as 'all' | 'above',
  chainAbove: true,
  detectDegenerate: true,
  copyCountPrior: true,
  parentChoice: 'copies' as 'rank' | 'score' | 'copies',
  centrality: 'neighbours' as 'neighbours' | 'family',
  chainMargin: 0.1,
  nameParent: true,
  nameFloor: 'unrelated' as 'tau' | 'unrelated',
  namesakePrior: true,
  sizeRatio: 1.5,
  quantSiblings: true,
  nameSiblings: true,
  chatParentVeto: false,
};

export interface ThresholdFit {
  value: number;
  learned: boolean;
  /** How the threshold was found. */
  rule: string;
  /** log10-score mixture (when learned). */
  mixture: { weight_same: number; mean_same: number; sd_same: number; mean_diff: number; sd_diff: number } | null;
  pairs: number;
}

export interface ParentRow {
  model: string;
  parent: string | null;
  /** 0..1: posterior of "same" at the edge's score (roots: see reason). */
  confidence: number;
  family: string;
  reason: string;
  /** S(model, parent); null for a root. */
  score: number | null;
  /** 1-based rank of the parent among the model's neighbours by score. */
  rank: number | null;
  role: 'root' | 'copy' | 'derived' | 'isolated' | 'failed' | 'degenerate';
  metadata_used: string[];
}

export interface FamilyRow {
  family: string;
  root: string;
  members: { model: string; confidence: number; depth: number }[];
}

export interface Finding {
  kind: 'declared_base_contradicted' | 'declared_base_weak' | 'undeclared_relation' | 'declared_base_missing';
  model: string;
  other: string;
  score: number | null;
  detail: string;
}

export interface Dendrogram {
  /** Leaf order of the tree (indices into models). */
  order: number[];
  /** Merges bottom-up: children are leaf indices (≥ 0) or merge indices (−1 − k); height = 1 − S. */
  merges: { left: number; right: number; height: number; size: number }[];
}

export interface LineageReport {
  source: SimilarityMatrix['source'];
  method: LineageMethod;
  options: {
    copy_threshold: number;
    copy_profile_correlation: number;
    window: number;
    chain_margin: number;
    centrality: 'neighbours' | 'family';
    name_prior: boolean;
    name_orientation: boolean;
    copy_count_prior: boolean;
    window_of: 'all' | 'above';
    parent_choice: 'rank' | 'score' | 'copies';
    chain_above: boolean;
    detect_degenerate: boolean;
    name_parent: boolean;
    name_floor: 'tau' | 'unrelated';
    namesake_prior: boolean;
    size_ratio: number;
    quant_siblings: boolean;
    name_siblings: boolean;
    chat_parent_veto: boolean;
  };
  models: number;
  failed_models: string[];
  /** Models left out because their sketches are degenerate (see analyzeLineage). */
  degenerate_models: string[];
  threshold: ThresholdFit;
  copy_groups: { representative: string; members: string[] }[];
  families: FamilyRow[];
  parents: ParentRow[];
  findings: Finding[];
  dendrogram: Dendrogram;
  metadata: { models: number; with_base: number; with_downloads: number; with_created_at: number } | null;
}

// ---------------------------------------------------------------------------------------
// scores

/** Symmetric pair scores; NaN where either direction is missing or negative. */
export function pairScores(values: readonly (readonly number[])[]): number[][] {
  const n = values.length;
  const S: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(NaN));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const a = values[i][j];
      const b = values[j][i];
      const v = Number.isFinite(a) && Number.isFinite(b) && a >= 0 && b >= 0 ? (a + b) / 2 : NaN;
      S[i][j] = v;
      S[j][i] = v;
    }
  }
  return S;
}

const LOG_FLOOR = 1e-4;
const log10s = (s: number) => Math.log10(Math.max(s, LOG_FLOOR));

function normalPdf(x: number, m: number, sd: number): number {
  const z = (x - m) / sd;
  return Math.exp(-0.5 * z * z) / sd;
}

export interface Mixture {
  w: number; // weight of the low ("different") component
  m1: number;
  s1: number;
  m2: number;
  s2: number;
}

/** Two-component 1-D Gaussian mixture by EM (deterministic start at the quartiles). */
export function fitMixture(xs: readonly number[], iterations = 300): Mixture | null {
  const n = xs.length;
  if (n < 8) return null;
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(n - 1, Math.floor(p * (n - 1)))];
  const spread = Math.max(1e-3, (s[n - 1] - s[0]) / 4);
  let mx: Mixture = { w: 0.5, m1: q(0.25), s1: spread, m2: q(0.9), s2: spread };
  if (mx.m2 <= mx.m1) return null;
  const minSd = 1e-3;
  for (let it = 0; it < iterations; it++) {
    let w2 = 0;
    let a1 = 0;
    let a2 = 0;
    const r = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const p1 = mx.w * normalPdf(xs[k], mx.m1, mx.s1);
      const p2 = (1 - mx.w) * normalPdf(xs[k], mx.m2, mx.s2);
      const t = p1 + p2 > 0 ? p2 / (p1 + p2) : xs[k] > (mx.m1 + mx.m2) / 2 ? 1 : 0;
      r[k] = t;
      w2 += t;
      a2 += t * xs[k];
      a1 += (1 - t) * xs[k];
    }
    const w1 = n - w2;
    if (w1 < 1 || w2 < 1) return null;
    const m1 = a1 / w1;
    const m2 = a2 / w2;
    let v1 = 0;
    let v2 = 0;
    for (let k = 0; k < n; k++) {
      v1 += (1 - r[k]) * (xs[k] - m1) ** 2;
      v2 += r[k] * (xs[k] - m2) ** 2;
    }
    const next: Mixture = { w: w1 / n, m1, s1: Math.max(minSd, Math.sqrt(v1 / w1)), m2, s2: Math.max(minSd, Math.sqrt(v2 / w2)) };
    const done = Math.abs(next.m1 - mx.m1) + Math.abs(next.m2 - mx.m2) + Math.abs(next.s1 - mx.s1) + Math.abs(next.s2 - mx.s2) < 1e-10;
    mx = next;
    if (done) break;
  }
  if (mx.m1 > mx.m2) mx = { w: 1 - mx.w, m1: mx.m2, s1: mx.s2, m2: mx.m1, s2: mx.s1 };
  return mx;
}

/** Posterior of the high ("same") component at x. */
export function posteriorSame(mx: Mixture, x: number): number {
  const p1 = mx.w * normalPdf(x, mx.m1, mx.s1);
  const p2 = (1 - mx.w) * normalPdf(x, mx.m2, mx.s2);
  if (p1 + p2 === 0) return x > mx.m2 ? 1 : 0;
  return p2 / (p1 + p2);
}

/** The x between the two means where the posterior of "same" crosses 0.5 (bisection). */
export function mixtureCrossing(mx: Mixture): number {
  let lo = mx.m1;
  let hi = mx.m2;
  for (let k = 0; k < 80; k++) {
    const mid = (lo + hi) / 2;
    if (posteriorSame(mx, mid) >= 0.5) hi = mid;
    else lo = mid;
  }
  return (lo + hi) / 2;
}

/** Learns the same/different threshold from all pair scores (see the module comment). */
export function learnThreshold(S: readonly (readonly number[])[]): { fit: ThresholdFit; mixture: Mixture | null } {
  const xs: number[] = [];
  for (let i = 0; i < S.length; i++) for (let j = i + 1; j < S.length; j++) if (Number.isFinite(S[i][j])) xs.push(log10s(S[i][j]));
  // Large matrices: fit on an evenly spaced sample of at most 200,000 pairs (deterministic).
  const MAX_FIT = 200_000;
  const sample = xs.length > MAX_FIT ? Array.from({ length: MAX_FIT }, (_, k) => xs[Math.floor((k * xs.length) / MAX_FIT)]) : xs;
  const mx = fitMixture(sample);
  if (!mx || mx.m2 - mx.m1 < 0.1) {
    return {
      fit: { value: 0.1, learned: false, rule: `too few or unimodal scores (${xs.length} pairs): fixed 0.1`, mixture: null, pairs: xs.length },
      mixture: null,
    };
  }
  const value = 10 ** mixtureCrossing(mx);
  return {
    fit: {
      value,
      learned: true,
      rule: 'two-component Gaussian mixture on log10(score); posterior of "same" = 0.5',
      mixture: { weight_same: 1 - mx.w, mean_same: 10 ** mx.m2, sd_same: mx.s2, mean_diff: 10 ** mx.m1, sd_diff: mx.s1 },
      pairs: xs.length,
    },
    mixture: mx,
  };
}

// ---------------------------------------------------------------------------------------
// helpers

class UnionFind {
  parent: number[];
  constructor(n: number) {
    this.parent = Array.from({ length: n }, (_, i) => i);
  }
  find(x: number): number {
    while (this.parent[x] !== x) {
      this.parent[x] = this.parent[this.parent[x]];
      x = this.parent[x];
    }
    return x;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

function tokens(s: string): string[] {
  return s.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/**
 * The "publisher prior" for exact copies: 1 when the uploader namespace and the model name
 * share a word (Qwen/Qwen2.5-7B, meta-llama/Llama-3.1-8B, mistralai/Mistral-7B), else 0.
 */
export function publisherPrior(id: string): number {
  const slash = id.indexOf('/');
  if (slash < 0) return 0;
  const org = id.slice(0, slash).toLowerCase().replace(/[^a-z0-9]/g, '');
  const orgWords = tokens(id.slice(0, slash)).filter((t) => t.length >= 3);
  const name = id.slice(slash + 1).toLowerCase();
  const flatName = name.replace(/[^a-z0-9]/g, '');
  if ([org, ...orgWords].some((t) => t.length >= 3 && flatName.includes(t))) return 1;
  const nameWords = (name.match(/[a-z]{4,}/g) ?? []) as string[];
  return nameWords.some((w) => org.includes(w)) ? 1 : 0;
}

interface NameKey {
  /** Words of the name (namespace dropped), without "base". */
  words: Set<string>;
  /** Whether the name has the word "base". */
  base: boolean;
  /** The words joined (punctuation dropped). */
  flat: string;
  /** Whether the name carries a quantization-format tag (q4, iq2, bnb, 4bit, awq, gptq, fp8, …). */
  quant: boolean;
  /** Parameter count from a size token (`7B`, `1.7B`, `135M`), in billions; null when none. */
  size: number | null;
  /** The longest word: inside the other's flat name whenever either name extends the other (a fast pre-check). */
  longest: string;
}

/** Quantization-format words of upload names (GGUF types, bitsandbytes, AWQ, GPTQ, …). */
const QUANT_WORD = /^(i?q\d+|bnb|\d+bits?|awq|gptq|fp[48]|int[48]|nf4|gguf|exl2|mlx)$/;
/** Words that name a variant of a quantization scheme (q4_k_m, q2_k_xl, iq4_nl, q4_0). */
const QUANT_VARIANT_WORD = /^(k|[0-9]|[sml]|xl|xxl|xs|xxs|nl)$/;

/** Parameter count in billions from the first size token of a name (`7B`, `1.7B`, `135M`). */
export function sizeOfName(id: string): number | null {
  const m = /(?:^|[^a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])/i.exec(id.slice(id.indexOf('/') + 1));
  if (!m) return null;
  const v = Number(m[1]) * (m[2].toLowerCase() === 'm' ? 1e-3 : 1);
  return v > 0 ? v : null;
}

function nameKey(id: string): NameKey {
  const all = tokens(id.slice(id.indexOf('/') + 1));
  const words = all.filter((t) => t !== 'base');
  const longest = words.reduce((a, b) => (b.length > a.length ? b : a), '');
  return { words: new Set(words), base: words.length < all.length, flat: words.join(''), quant: words.some((w) => QUANT_WORD.test(w)), size: sizeOfName(id), longest };
}

function nameAncestorOf(a: NameKey, b: NameKey, siblings = true): number {
  if (a.words.size === 0 || b.words.size === 0) return 0;
  // Every word of a name is inside the flat form of any name that extends it.
  if (!b.flat.includes(a.longest) && !a.flat.includes(b.longest)) return 0;
  const subset = (x: Set<string>, y: Set<string>) => [...x].every((t) => y.has(t));
  // Or the whole name, punctuation dropped, inside the other (Qwen3-1.7B in FluentlyQwen3-1.7B,
  // Llama-3.1-8B in Hermes-3-Llama-3.1-8B); at least 6 characters.
  const within = (x: string, y: string) => x.length >= 6 && y.includes(x);
  // Quantized files are all made from the full-precision weights: a quantization whose name
  // only adds quantization words to another quantization's (q2_k → q2_k_l, q4_k → q4_k_m) is a
  // sibling, not a derivative.
  const quantSibling = (x: NameKey, y: NameKey) => x.quant && [...y.words].every((t) => x.words.has(t) || QUANT_WORD.test(t) || QUANT_VARIANT_WORD.test(t));
  // A name that only adds a version number (Qwen2-7B → Qwen2.5-7B, Nemotron-7B →
  // Nemotron-1.1-7B) is a newer release, not a derivative.
  const versionSibling = (x: NameKey, y: NameKey) => x.words.size < y.words.size && [...y.words].every((t) => x.words.has(t) || /^v?\d+$/.test(t));
  const aInB = (subset(a.words, b.words) || within(a.flat, b.flat)) && !(siblings && (quantSibling(a, b) || versionSibling(a, b)));
  const bInA = (subset(b.words, a.words) || within(b.flat, a.flat)) && !(siblings && (quantSibling(b, a) || versionSibling(b, a)));
  if (aInB && bInA) return a.base === b.base ? 0 : a.base ? 1 : -1;
  if (aInB && !b.base) return 1;
  if (bInA && !a.base) return -1;
  return 0;
}

/**
 * The "name extension" convention of model hubs: a derivative is named after its base with
 * words added (`Qwen2-7B` → `Qwen2-7B-Instruct`, `Llama-3.1-8B` → `Llama-3.1-8B-Instruct`), or
 * the base's whole name inside its own (`Qwen3-1.7B` → `FluentlyQwen3-1.7B`), and a pretrained
 * checkpoint published next to its tuned version carries the word "base" (`SmolLM3-3B-Base` →
 * `SmolLM3-3B`). Returns 1 when model a's name (namespace dropped) is the ancestor by this
 * convention, −1 when b's is, 0 when neither name extends the other — or when the names differ
 * only by a version number (`Qwen2-7B`, `Qwen2.5-7B`) or by quantization words added to a
 * quantized upload's name (`q2_k`, `q2_k_l`): siblings. analyzeLineage orients related pairs
 * by it and takes the most specific name ancestor scoring above the name floor as the parent.
 */
export function nameAncestor(a: string, b: string): number {
  return nameAncestorOf(nameKey(a), nameKey(b));
}

function profileCorrelation(S: readonly (readonly number[])[], a: number, b: number): number {
  const x: number[] = [];
  const y: number[] = [];
  for (let k = 0; k < S.length; k++) {
    if (k === a || k === b || !Number.isFinite(S[a][k]) || !Number.isFinite(S[b][k])) continue;
    x.push(log10s(S[a][k]));
    y.push(log10s(S[b][k]));
  }
  if (x.length < 3) return 1; // nothing to contradict the copy
  return pearsonR(x, y) ?? 0;
}

/**
 * Single-linkage tree on distance 1 − S in O(n²): Prim's minimum spanning tree, whose edges
 * sorted by length are the merges (Kruskal order). Missing scores count as distance 1.
 */
function singleLinkage(S: readonly (readonly number[])[]): Dendrogram {
  const n = S.length;
  const dist = (i: number, j: number) => (Number.isFinite(S[i][j]) ? Math.max(0, 1 - S[i][j]) : 1);
  const inTree = new Uint8Array(n);
  const best = new Float64Array(n).fill(Infinity);
  const from = new Int32Array(n).fill(-1);
  const edges: { a: number; b: number; h: number }[] = [];
  best[0] = 0;
  for (let step = 0; step < n; step++) {
    let u = -1;
    for (let v = 0; v < n; v++) if (!inTree[v] && (u < 0 || best[v] < best[u])) u = v;
    inTree[u] = 1;
    if (from[u] >= 0) edges.push({ a: from[u], b: u, h: best[u] });
    for (let v = 0; v < n; v++) {
      if (inTree[v]) continue;
      const d = dist(u, v);
      if (d < best[v]) {
        best[v] = d;
        from[v] = u;
      }
    }
  }
  edges.sort((x, y) => x.h - y.h || Math.min(x.a, x.b) - Math.min(y.a, y.b));
  const uf = new UnionFind(n);
  const node = Array.from({ length: n }, (_, i) => i); // cluster root → node id (leaf or −1 − merge)
  const size = new Array<number>(n).fill(1);
  const merges: Dendrogram['merges'] = [];
  const children: [number, number][] = [];
  for (const e of edges) {
    const ra = uf.find(e.a);
    const rb = uf.find(e.b);
    if (ra === rb) continue;
    const [left, right] = node[ra] <= node[rb] ? [node[ra], node[rb]] : [node[rb], node[ra]];
    merges.push({ left, right, height: e.h, size: size[ra] + size[rb] });
    children.push([left, right]);
    uf.union(ra, rb);
    const r = uf.find(ra);
    node[r] = -1 - (merges.length - 1);
    size[r] = size[ra] + size[rb];
  }
  // Leaf order: depth-first from the last merge (iterative; the tree can be a long chain).
  const order: number[] = [];
  const stack: number[] = merges.length ? [-merges.length] : [0];
  while (stack.length) {
    const x = stack.pop()!;
    if (x >= 0) order.push(x);
    else {
      const [l, r] = children[-1 - x];
      stack.push(r, l);
    }
  }
  return { order, merges };
}

/**
 * Hierarchical clustering on distance 1 − S: single linkage in O(n²) (minimum spanning
 * tree), average linkage with ml-hclust (O(n³)).
 */
export function clusterScores(S: readonly (readonly number[])[], linkage: 'single' | 'average' = 'single'): Dendrogram {
  const n = S.length;
  if (n === 0) return { order: [], merges: [] };
  if (n === 1) return { order: [0], merges: [] };
  if (linkage === 'single') return singleLinkage(S);
  const D = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (__, j) => (i === j ? 0 : Number.isFinite(S[i][j]) ? Math.max(0, 1 - S[i][j]) : 1)));
  const tree = agnes(D, { method: linkage, isDistanceMatrix: true });
  const merges: Dendrogram['merges'] = [];
  // Post-order walk: children before parents, so merge indices refer to earlier merges.
  type Node = { children: Node[]; height: number; size: number; index: number; isLeaf: boolean };
  const walk = (node: Node): number => {
    if (node.isLeaf || node.children.length === 0) return node.index;
    let acc = walk(node.children[0]);
    let size = node.children[0].size || 1;
    for (let c = 1; c < node.children.length; c++) {
      const right = walk(node.children[c]);
      size += node.children[c].size || 1;
      merges.push({ left: acc, right, height: node.height, size });
      acc = -1 - (merges.length - 1);
    }
    return acc;
  };
  walk(tree as unknown as Node);
  return { order: tree.indices(), merges };
}

/** Leaf order of an average-linkage tree of a matrix (for heatmaps). */
export function clusteredOrder(matrix: Pick<SimilarityMatrix, 'values'>, linkage: 'single' | 'average' = 'average'): number[] {
  return clusterScores(pairScores(matrix.values), linkage).order;
}

// ---------------------------------------------------------------------------------------
// Chu-Liu/Edmonds maximum spanning arborescence

export interface WeightedEdge {
  from: number;
  to: number;
  w: number;
}

/**
 * Maximum-weight spanning arborescence rooted at `root` over nodes 0..n-1 (Chu-Liu/Edmonds).
 * Returns parent[] (−1 for the root and for nodes that cannot be reached).
 */
export function maxArborescence(n: number, edges: readonly WeightedEdge[], root: number): number[] {
  // Recursive contraction on edge lists; keeps the original edge for each contracted edge.
  type E = { u: number; v: number; w: number; orig: number };
  const solve = (nn: number, es: E[], r: number): number[] => {
    // best incoming edge per node
    const inEdge: (E | null)[] = new Array<E | null>(nn).fill(null);
    for (const e of es) if (e.u !== e.v && e.v !== r && (!inEdge[e.v] || e.w > inEdge[e.v]!.w)) inEdge[e.v] = e;
    // find cycles
    const id = new Array<number>(nn).fill(-1);
    const vis = new Array<number>(nn).fill(-1);
    let cnt = 0;
    for (let v = 0; v < nn; v++) {
      if (v === r || !inEdge[v]) continue;
      let x = v;
      while (x !== r && vis[x] !== v && id[x] === -1 && inEdge[x]) {
        vis[x] = v;
        x = inEdge[x]!.u;
      }
      if (x !== r && id[x] === -1 && inEdge[x] && vis[x] === v) {
        for (let y = inEdge[x]!.u; y !== x; y = inEdge[y]!.u) id[y] = cnt;
        id[x] = cnt++;
      }
    }
    if (cnt === 0) return inEdge.map((e) => (e ? e.orig : -1));
    for (let v = 0; v < nn; v++) if (id[v] === -1) id[v] = cnt++;
    const next: E[] = [];
    for (const e of es) {
      const u = id[e.u];
      const v = id[e.v];
      if (u === v) continue;
      const w = inEdge[e.v] ? e.w - inEdge[e.v]!.w : e.w;
      next.push({ u, v, w, orig: e.orig });
    }
    const chosen = solve(cnt, next, id[r]);
    // expand: chosen original edges, plus cycle edges except the one replaced
    const result = inEdge.map((e) => (e ? e.orig : -1));
    const enteredAt = new Set<number>();
    for (const o of chosen) if (o >= 0) enteredAt.add(o);
    // for each contracted node, the chosen edge entering it replaces the cycle edge into its target
    const out = new Array<number>(nn).fill(-1);
    for (let v = 0; v < nn; v++) out[v] = result[v];
    for (const o of enteredAt) {
      const e = es.find((x) => x.orig === o)!;
      out[e.v] = o;
    }
    // nodes in supernodes that received no chosen edge keep their cycle edge (already in out)
    return out;
  };
  const es: E[] = edges.map((e, k) => ({ u: e.from, v: e.to, w: e.w, orig: k }));
  const chosen = solve(n, es, root);
  const parent = new Array<number>(n).fill(-1);
  chosen.forEach((o, v) => {
    if (o >= 0 && v !== root) parent[v] = edges[o].from;
  });
  return parent;
}

// ---------------------------------------------------------------------------------------
// the analysis

interface Ctx {
  n: number;
  ids: string[];
  S: number[][];
  M: number[][];
  tau: number;
  mixture: Mixture | null;
  failed: boolean[];
  gid: number[]; // copy-group id (= representative index) per model
  groups: Map<number, number[]>;
  fam: number[]; // family component id per model
  meta?: Map<string, LineageMetadata>;
}

const finite = (x: number) => Number.isFinite(x);

function confidenceAt(ctx: Ctx, s: number | null): number {
  if (s === null || !finite(s)) return 0;
  if (ctx.mixture) return posteriorSame(ctx.mixture, log10s(s));
  return s >= ctx.tau ? 1 : 0;
}

/** Max score between two copy groups. */
function groupScore(ctx: Pick<Ctx, 'groups' | 'S'>, a: number, b: number): number {
  let best = NaN;
  for (const x of ctx.groups.get(a)!) {
    for (const y of ctx.groups.get(b)!) {
      const v = ctx.S[x][y];
      if (finite(v) && !(v <= best)) best = v;
    }
  }
  return best;
}

export function analyzeLineage(matrix: SimilarityMatrix, options: LineageOptions = {}): LineageReport {
  const o = { ...LINEAGE_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<Omit<LineageOptions, 'threshold' | 'metadata'>> &
    Pick<LineageOptions, 'threshold' | 'metadata'>;
  const ids = matrix.models;
  const n = ids.length;
  const failed = ids.map((_, i) => isFailedModel(matrix.values, i));
  const S = pairScores(matrix.values);
  for (let i = 0; i < n; i++) if (failed[i]) for (let j = 0; j < n; j++) S[i][j] = S[j][i] = NaN;
  // Degenerate sketches: two models whose bottom-k sets coincide (S ≥ copyThreshold) but
  // whose scores against everyone else disagree (profile r < copyProfileCorrelation) cannot be
  // one checkpoint; the coincidence means the probe returned the same tokens whatever the
  // model (e.g. a tokenizer mismatch). Their scores carry no lineage: left out like failures.
  const degenerate = new Array<boolean>(n).fill(false);
  if (o.detectDegenerate) {
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (finite(S[i][j]) && S[i][j] >= o.copyThreshold && profileCorrelation(S, i, j) < o.copyProfileCorrelation) degenerate[i] = degenerate[j] = true;
      }
    }
    for (let i = 0; i < n; i++) {
      if (!degenerate[i]) continue;
      failed[i] = true;
      for (let j = 0; j < n; j++) S[i][j] = S[j][i] = NaN;
    }
  }
  const learned = learnThreshold(S);
  const fit: ThresholdFit =
    o.threshold !== undefined && o.threshold !== null
      ? { value: o.threshold, learned: false, rule: 'given with --threshold', mixture: learned.fit.mixture, pairs: learned.fit.pairs }
      : learned.fit;
  const tau = fit.value;
  const meta = o.metadata;

  // copy groups
  const uf = new UnionFind(n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (finite(S[i][j]) && S[i][j] >= o.copyThreshold && profileCorrelation(S, i, j) >= o.copyProfileCorrelation) uf.union(i, j);
    }
  }
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const r = uf.find(i);
    const list = members.get(r);
    if (list) list.push(i);
    else members.set(r, [i]);
  }
  const created = (i: number) => meta?.get(ids[i])?.createdAt ?? null;
  const downloads = (i: number) => meta?.get(ids[i])?.downloads ?? null;
  const repKey = (a: number, b: number) => {
    const ca = created(a);
    const cb = created(b);
    if (ca !== null && cb !== null && ca !== cb) return ca - cb;
    if (ca !== null && cb === null) return -1;
    if (cb !== null && ca === null) return 1;
    const da = downloads(a);
    const db = downloads(b);
    if (da !== null && db !== null && da !== db) return db - da;
    if (da !== null && db === null) return -1;
    if (db !== null && da === null) return 1;
    if (o.namePrior) {
      const pa = publisherPrior(ids[a]);
      const pb = publisherPrior(ids[b]);
      if (pa !== pb) return pb - pa;
    }
    return ids[a].length - ids[b].length || a - b;
  };
  const gid = new Array<number>(n);
  const groups = new Map<number, number[]>();
  for (const list of members.values()) {
    const sortedList = [...list].sort(repKey);
    const rep = sortedList[0];
    groups.set(rep, sortedList);
    for (const i of list) gid[i] = rep;
  }

  // Names: keys per model, the size of a copy group, and the name parent of each group (the
  // most specific name ancestor among the groups it scores at least the name floor with).
  const nameKeys = ids.map(nameKey);
  const keyOf = (g: number) => nameKeys[g];
  // Size of a copy group: the first size token among its members' names.
  const groupSizes = new Map<number, number | null>();
  for (const [g, list] of groups) groupSizes.set(g, list.map((m) => nameKeys[m].size).find((v) => v !== null) ?? null);
  const sizeAgrees = (a: number, b: number): boolean => {
    if (!o.namePrior || !(o.sizeRatio > 0)) return true;
    const x = groupSizes.get(a)!;
    const y = groupSizes.get(b)!;
    return x === null || y === null || Math.max(x, y) / Math.min(x, y) <= o.sizeRatio;
  };
  /** Words of the most specific name of group a that is a name ancestor of a name of group b (0: none). */
  const nameSpecificity = (a: number, b: number): number => {
    let best = 0;
    for (const x of groups.get(a)!) for (const y of groups.get(b)!) if (nameAncestorOf(keyOf(x), keyOf(y), o.nameSiblings) > 0) best = Math.max(best, keyOf(x).words.size - (keyOf(x).base ? 0.5 : 0));
    return best;
  };
  const nameFloor = o.nameFloor === 'unrelated' && learned.mixture ? Math.min(tau, 10 ** learned.mixture.m1) : tau;
  const nameParentOf = new Map<number, { p: number; s: number }>();
  if (o.method === 'hub' && o.namePrior && o.nameParent) {
    const live = [...groups.keys()].filter((g) => !failed[g]);
    for (const i of live) {
      let best: { p: number; s: number; w: number } | null = null;
      for (const j of live) {
        if (j === i) continue;
        const s = groupScore({ groups, S }, i, j);
        if (!finite(s) || s < nameFloor || !sizeAgrees(i, j)) continue;
        const ci = created(i);
        const cj = created(j);
        if (ci !== null && cj !== null && cj > ci) continue;
        const w = nameSpecificity(j, i);
        if (w > 0 && (!best || w > best.w || (w === best.w && s > best.s))) best = { p: j, s, w };
      }
      if (best) nameParentOf.set(i, { p: best.p, s: best.s });
    }
  }

  // families: connected components of S ≥ τ (and of name parents below τ)
  const famUf = new UnionFind(n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (finite(S[i][j]) && S[i][j] >= tau) famUf.union(i, j);
  for (const [rep, list] of groups) for (const i of list) famUf.union(rep, i);
  for (const [i, e] of nameParentOf) famUf.union(i, e.p);
  const fam = ids.map((_, i) => famUf.find(i));
  const ctx: Ctx = { n, ids, S, M: matrix.values, tau, mixture: learned.mixture, failed, gid, groups, fam, meta };

  // rank keys per copy group
  const famGroups = new Map<number, number[]>();
  for (const rep of groups.keys()) {
    const list = famGroups.get(fam[rep]);
    if (list) list.push(rep);
    else famGroups.set(fam[rep], [rep]);
  }
  const centrality = new Map<number, number>();
  for (const [rep, list] of groups) {
    const others = famGroups.get(fam[rep])!.filter((g) => g !== rep && (o.centrality === 'family' || groupScore(ctx, rep, g) >= tau));
    let best = 0;
    for (const i of list) {
      const vals: number[] = [];
      for (const g of others) {
        const ms = groups.get(g)!;
        let sum = 0;
        let k = 0;
        for (const j of ms) {
          if (finite(S[i][j])) {
            sum += S[i][j];
            k++;
          }
        }
        if (k) vals.push(sum / k);
      }
      const c = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : 0;
      if (c > best) best = c;
    }
    centrality.set(rep, best);
  }
  const globalMean = ids.map((_, i) => {
    let sum = 0;
    let k = 0;
    for (let j = 0; j < n; j++) {
      if (j !== i && finite(S[i][j])) {
        sum += S[i][j];
        k++;
      }
    }
    return k ? sum / k : 0;
  });
  // Rank value of a copy group (higher = closer to the root): the number of copies, then
  // centrality (< 1), then the mean score against all models (tiny weight).
  const rankValue = new Map<number, number>();
  for (const [rep, list] of groups) {
    rankValue.set(rep, (o.copyCountPrior ? list.length : 0) + 0.999 * Math.min(1, centrality.get(rep)!) + 1e-6 * globalMean[rep]);
  }
  const useNames = o.namePrior && o.nameOrientation;
  if (o.namePrior && o.namesakePrior) {
    // Originals are fine-tuned and quantized under their name: add the number of related
    // groups (score ≥ τ) whose names extend this group's name.
    for (const list of famGroups.values()) {
      for (const a of list) {
        if (failed[a]) continue;
        let k = 0;
        for (const b of list) if (b !== a && !failed[b] && groupScore(ctx, a, b) >= tau && nameAncestorOf(keyOf(a), keyOf(b), o.nameSiblings) > 0) k++;
        rankValue.set(a, rankValue.get(a)! + k);
      }
    }
  }
  if (useNames) {
    // A name ancestor (see nameAncestor) ranks above each related name descendant: it
    // inherits the highest rank value among them, so the order stays transitive.
    const pairs: [number, number][] = [];
    for (const list of famGroups.values()) {
      for (const a of list) {
        for (const b of list) {
          if (a !== b && !failed[a] && !failed[b] && groupScore(ctx, a, b) >= tau && nameAncestorOf(keyOf(a), keyOf(b), o.nameSiblings) > 0) pairs.push([a, b]);
        }
      }
    }
    for (const [b, e] of nameParentOf) if (created(b) === null || created(e.p) === null) pairs.push([e.p, b]);
    for (let pass = 0, changed = true; changed && pass <= n; pass++) {
      changed = false;
      for (const [a, b] of pairs) {
        if (rankValue.get(a)! <= rankValue.get(b)!) {
          rankValue.set(a, rankValue.get(b)! + 1e-9);
          changed = true;
        }
      }
    }
  }
  /** > 0 when group a ranks above group b (closer to the root). */
  const outranks = (a: number, b: number): number => {
    const ca = created(a);
    const cb = created(b);
    if (ca !== null && cb !== null && ca !== cb) return cb - ca;
    return rankValue.get(a)! - rankValue.get(b)! || b - a;
  };

  // parents of copy-group representatives
  const reps = [...groups.keys()].filter((r) => !failed[r]).sort((a, b) => a - b);
  const parentOf = new Map<number, { p: number; why: string; used: string[] }>();
  if (o.method === 'hub' || o.method === 'nearest') {
    for (const i of reps) {
      const np = nameParentOf.get(i);
      const chatty = (g: number) => [...keyOf(g).words].some((w) => /^(instruct|chat|it)$/.test(w));
      const cand = famGroups
        .get(fam[i])!
        .filter((j) => j !== i && !failed[j] && (o.method === 'nearest' || (sizeAgrees(i, j) && !(o.namePrior && o.chatParentVeto && chatty(j) && !chatty(i)))));
      const scored = cand.map((j) => ({ j, s: groupScore(ctx, i, j) })).filter((x) => finite(x.s) && x.s >= tau);
      if (!scored.length && !np) continue;
      if (o.method === 'nearest') {
        const best = scored.reduce((a, b) => (b.s > a.s ? b : a));
        parentOf.set(i, { p: best.j, why: 'nearest neighbour', used: [] });
        continue;
      }
      const top = Math.max(...scored.map((x) => x.s));
      const above = scored.filter((x) => outranks(x.j, i) > 0);
      if (!above.length && !np) continue;
      const ref = o.windowOf === 'above' && above.length ? Math.max(...above.map((x) => x.s)) : top;
      const near = scored.filter((x) => x.s >= o.window * ref);
      const up = near.filter((x) => outranks(x.j, i) > 0);
      if (!up.length && !np) continue;
      const copies = (j: number) => groups.get(j)!.length;
      const topCopies = Math.max(...up.map((x) => copies(x.j)));
      let best = np
        ? { j: np.p, s: np.s }
        : o.parentChoice === 'copies'
          ? up.filter((x) => copies(x.j) === topCopies).reduce((a, b) => (b.s > a.s ? b : a))
          : up.reduce((a, b) => (o.parentChoice === 'score' ? (b.s > a.s ? b : a) : outranks(b.j, a.j) > 0 ? b : a));
      let chained = false;
      for (let step = 0; o.chainMargin > 0 && step < near.length; step++) {
        const p = best;
        // From a name parent, only through models named after it too (X → X-Instruct → …).
        const between = (o.chainAbove ? up : near).filter(
          (x) => x.j !== p.j && x.s > p.s && p.s < Math.min(x.s, groupScore(ctx, x.j, p.j)) - o.chainMargin && (!np || nameSpecificity(np.p, x.j) > 0),
        );
        if (!between.length) break;
        best = between.reduce((a, b) => (b.s > a.s ? b : a));
        chained = true;
      }
      const used: string[] = [];
      const dated = created(best.j) !== null && created(i) !== null;
      if (dated) used.push('created_at');
      const named = !dated && o.namePrior && (best.j === np?.p || (useNames && nameAncestorOf(keyOf(best.j), keyOf(i), o.nameSiblings) > 0));
      if (named) used.push('name');
      const why = chained
        ? `closer model between this one and the ${np ? 'name parent' : 'chosen candidate'} (chain)`
        : np && best.j === np.p
          ? `the most specific related model whose name this one extends (name parent${np.s < tau ? `; score below τ but above the typical unrelated pair, ${nameFloor.toFixed(4)}` : ''})`
          : dated && created(best.j)! < created(i)!
            ? 'older of the strong neighbours'
            : named
              ? 'strong neighbour whose name this one extends (name orientation)'
              : groups.get(best.j)!.length > groups.get(i)!.length
                ? `most re-uploaded strong neighbour (${groups.get(best.j)!.length} copies)`
                : 'best-scoring more central strong neighbour';
      parentOf.set(i, { p: best.j, why, used });
    }
  } else {
    // arborescence on directed scores between groups: w(j → i) = mean M[i][j] over members
    const idxOf = new Map(reps.map((r, k) => [r, k]));
    const root = reps.length;
    const edges: WeightedEdge[] = [];
    for (const i of reps) {
      edges.push({ from: root, to: idxOf.get(i)!, w: tau });
      for (const j of famGroups.get(fam[i])!) {
        if (j === i || failed[j]) continue;
        const s = groupScore(ctx, i, j);
        if (!finite(s) || s < tau) continue;
        const d = ctx.M[i][j];
        edges.push({ from: idxOf.get(j)!, to: idxOf.get(i)!, w: finite(d) && d >= 0 ? d : s });
      }
    }
    const par = maxArborescence(reps.length + 1, edges, root);
    reps.forEach((i, k) => {
      if (par[k] >= 0 && par[k] !== root) parentOf.set(i, { p: reps[par[k]], why: 'maximum spanning arborescence on directed scores', used: [] });
    });
  }
  // Guarantee a forest (the nearest-neighbour baseline can form 2-cycles).
  for (const start of [...parentOf.keys()]) {
    const seen = new Set<number>();
    let x: number | undefined = start;
    while (x !== undefined && parentOf.has(x) && !seen.has(x)) {
      seen.add(x);
      x = parentOf.get(x)!.p;
    }
    if (x !== undefined && seen.has(x)) {
      // cycle through x: drop its weakest edge
      const cyc: number[] = [];
      let y = x;
      do {
        cyc.push(y);
        y = parentOf.get(y)!.p;
      } while (y !== x);
      const weakest = cyc.reduce((a, b) => (groupScore(ctx, b, parentOf.get(b)!.p) < groupScore(ctx, a, parentOf.get(a)!.p) ? b : a));
      parentOf.delete(weakest);
    }
  }

  // roots, depth, families named after their root
  const rootOf = (i: number): number => {
    let x = gid[i];
    for (let guard = 0; parentOf.has(x) && guard <= n; guard++) x = parentOf.get(x)!.p;
    return x;
  };
  const depthOf = (i: number): number => {
    let d = gid[i] === i ? 0 : 1;
    let x = gid[i];
    for (let guard = 0; parentOf.has(x) && guard <= n; guard++) {
      x = parentOf.get(x)!.p;
      d++;
    }
    return d;
  };
  // A family is a connected component; its name is the top-ranked root in it.
  const famRoot = new Map<number, number>();
  for (const [f, list] of famGroups) {
    const roots = list.filter((g) => !parentOf.has(g) && !failed[g]);
    const top = (roots.length ? roots : list).reduce((a, b) => (outranks(b, a) > 0 ? b : a));
    famRoot.set(f, top);
  }
  const familyName = (i: number) => (degenerate[i] ? '(degenerate)' : failed[i] ? '(failed)' : ids[famRoot.get(fam[i])!]);

  // neighbour rank of p for model i
  const rankOf = (i: number, p: number): number => {
    const s = S[i][p];
    let r = 1;
    for (let j = 0; j < n; j++) if (j !== i && j !== p && finite(S[i][j]) && S[i][j] > s) r++;
    return r;
  };
  const bestOther = (i: number): { j: number; s: number } | null => {
    let best: { j: number; s: number } | null = null;
    for (let j = 0; j < n; j++) if (j !== i && gid[j] !== gid[i] && finite(S[i][j]) && (!best || S[i][j] > best.s)) best = { j, s: S[i][j] };
    return best;
  };

  const parents: ParentRow[] = ids.map((id, i) => {
    const metaUsed = (extra: string[]) => [...new Set([...extra])];
    if (degenerate[i]) {
      return {
        model: id,
        parent: null,
        confidence: 0,
        family: familyName(i),
        reason: `degenerate sketch: scores ≥ ${o.copyThreshold} with a model whose scores against all others disagree (probe returns the same tokens whatever the model); left out`,
        score: null,
        rank: null,
        role: 'degenerate',
        metadata_used: [],
      };
    }
    if (failed[i]) {
      return { model: id, parent: null, confidence: 0, family: familyName(i), reason: 'failed model (-1 in its row): no scores', score: null, rank: null, role: 'failed', metadata_used: [] };
    }
    const rep = gid[i];
    const siblingOf = rep !== i && o.namePrior && o.quantSiblings && keyOf(rep).quant && keyOf(i).quant && created(rep) === null && downloads(rep) === null ? parentOf.get(rep) : undefined;
    if (siblingOf) {
      // Exact copies among quantized uploads (q2_k and q2_k_l of one export): nothing says
      // which came first; both are quantizations of the group's parent.
      const s = S[i][siblingOf.p];
      return {
        model: id,
        parent: ids[siblingOf.p],
        confidence: 1,
        family: familyName(i),
        reason: `exact copy of ${ids[rep]} (score ${S[i][rep].toFixed(4)}), both quantized uploads: a sibling quantization, given the parent of ${ids[rep]}`,
        score: finite(s) ? s : null,
        rank: finite(s) ? rankOf(i, siblingOf.p) : null,
        role: 'copy',
        metadata_used: ['name'],
      };
    }
    if (rep !== i) {
      const s = S[i][rep];
      const used: string[] = [];
      if (created(rep) !== null || created(i) !== null) used.push('created_at');
      else if (downloads(rep) !== null || downloads(i) !== null) used.push('downloads');
      else if (o.namePrior && publisherPrior(ids[rep]) !== publisherPrior(id)) used.push('name (publisher prior)');
      return {
        model: id,
        parent: ids[rep],
        confidence: 1,
        family: familyName(i),
        reason:
          `copy of ${ids[rep]} (${s >= o.copyThreshold ? `score ${s.toFixed(4)}` : `same copy group through other copies; direct score ${s.toFixed(4)}`}; same score profile)` +
          `${used.length ? `; representative chosen by ${used.join(', ')}` : '; representative chosen by shortest id'}`,
        score: s,
        rank: rankOf(i, rep),
        role: 'copy',
        metadata_used: metaUsed(used),
      };
    }
    const e = parentOf.get(i);
    if (e) {
      // score and rank against the parent's member with the highest score
      let pBest = e.p;
      for (const m of groups.get(e.p)!) if (finite(S[i][m]) && S[i][m] > S[i][pBest]) pBest = m;
      const s = S[i][pBest];
      return {
        model: id,
        parent: ids[e.p],
        confidence: Number(confidenceAt(ctx, s).toFixed(4)),
        family: familyName(i),
        reason: `${e.why}; score ${s.toFixed(4)}, rank ${rankOf(i, pBest)}`,
        score: s,
        rank: rankOf(i, pBest),
        role: 'derived',
        metadata_used: e.used,
      };
    }
    const b = bestOther(i);
    const sizeOfFamily = famGroups.get(fam[i])!.length;
    if (!b || b.s < tau || sizeOfFamily === 1) {
      return {
        model: id,
        parent: null,
        confidence: Number((1 - confidenceAt(ctx, b?.s ?? null)).toFixed(4)),
        family: familyName(i),
        reason: b ? `no score above the threshold ${tau.toFixed(4)} (best ${ids[b.j]} ${b.s.toFixed(4)})` : 'no scores',
        score: null,
        rank: null,
        role: 'isolated',
        metadata_used: [],
      };
    }
    return {
      model: id,
      parent: null,
      confidence: Number(confidenceAt(ctx, b.s).toFixed(4)),
      family: familyName(i),
      reason: `root: outranks its strong neighbours (best ${ids[b.j]} ${b.s.toFixed(4)})`,
      score: null,
      rank: null,
      role: 'root',
      metadata_used: [],
    };
  });

  // families
  const famRows = new Map<string, FamilyRow>();
  ids.forEach((id, i) => {
    const name = familyName(i);
    let row = famRows.get(name);
    if (!row) {
      row = { family: name, root: failed[i] ? '' : ids[rootOf(famRoot.get(fam[i])!)], members: [] };
      famRows.set(name, row);
    }
    const b = bestOther(i);
    const inFam = (() => {
      if (failed[i]) return 0;
      let best = -Infinity;
      for (let j = 0; j < n; j++) if (j !== i && fam[j] === fam[i] && finite(S[i][j]) && S[i][j] > best) best = S[i][j];
      return best === -Infinity ? 1 - confidenceAt(ctx, b?.s ?? null) : confidenceAt(ctx, best);
    })();
    row.members.push({ model: id, confidence: Number(inFam.toFixed(4)), depth: failed[i] ? 0 : depthOf(i) });
  });
  const families = [...famRows.values()].sort((a, b) => b.members.length - a.members.length || (a.family < b.family ? -1 : 1));

  // findings
  const findings: Finding[] = [];
  if (meta) {
    const idx = new Map(ids.map((m, i) => [m, i]));
    const predicted = new Map(parents.map((p) => [p.model, p.parent]));
    const declared = new Map<string, Set<string>>();
    ids.forEach((id) => declared.set(id, new Set()));
    for (const id of ids) {
      for (const b of meta.get(id)?.baseModels ?? []) {
        if (!idx.has(b) || b === id) continue;
        declared.get(id)!.add(b);
        declared.get(b)!.add(id);
      }
    }
    for (const id of ids) {
      const i = idx.get(id)!;
      const bases = (meta.get(id)?.baseModels ?? []).filter((b) => b !== id);
      for (const b of bases) {
        const j = idx.get(b);
        if (j === undefined) {
          findings.push({ kind: 'declared_base_missing', model: id, other: b, score: null, detail: 'declared base is not in the matrix' });
          continue;
        }
        if (failed[i] || failed[j]) continue;
        const s = S[i][j];
        const best = bestOther(i);
        if (!finite(s) || s < tau) {
          findings.push({
            kind: 'declared_base_contradicted',
            model: id,
            other: b,
            score: finite(s) ? s : null,
            detail:
              `score ${finite(s) ? s.toFixed(4) : '-'} is below the same/different threshold ${tau.toFixed(4)} (P(same) ${confidenceAt(ctx, s).toFixed(3)})${best ? `; closest: ${ids[best.j]} ${best.s.toFixed(4)}` : ''}` +
              (predicted.get(id) === b ? '; predicted as parent all the same, by name (name parent)' : ''),
          });
        } else if (predicted.get(id) !== b && best && best.s > s && confidenceAt(ctx, s) < 0.5 * confidenceAt(ctx, best.s)) {
          findings.push({
            kind: 'declared_base_weak',
            model: id,
            other: b,
            score: s,
            detail: `score ${s.toFixed(4)} is far below the closest model ${ids[best.j]} (${best.s.toFixed(4)})`,
          });
        }
      }
    }
    // Strong predicted edges that no declared base explains (not parent, child, sibling or copy).
    const relatedDeclared = (a: string, b: string) => {
      if (declared.get(a)!.has(b)) return true;
      const ba = meta.get(a)?.baseModels ?? [];
      const bb = meta.get(b)?.baseModels ?? [];
      return ba.some((x) => bb.includes(x));
    };
    for (const p of parents) {
      if (!p.parent || p.score === null) continue;
      if (!meta.has(p.model) && !meta.has(p.parent)) continue;
      if (relatedDeclared(p.model, p.parent)) continue;
      if (p.confidence < 0.9) continue;
      findings.push({
        kind: 'undeclared_relation',
        model: p.model,
        other: p.parent,
        score: p.score,
        detail: `predicted ${p.role === 'copy' ? 'copy' : 'parent'} with P(same) ${p.confidence.toFixed(3)}, but neither declares the other (nor a shared base)`,
      });
    }
  }

  let withBase = 0;
  let withDownloads = 0;
  let withCreated = 0;
  if (meta) {
    for (const id of ids) {
      const m = meta.get(id);
      if (!m) continue;
      if (m.baseModels.length) withBase++;
      if (m.downloads !== null) withDownloads++;
      if (m.createdAt !== null) withCreated++;
    }
  }

  return {
    source: matrix.source,
    method: o.method,
    options: {
      copy_threshold: o.copyThreshold,
      copy_profile_correlation: o.copyProfileCorrelation,
      window: o.window,
      chain_margin: o.chainMargin,
      centrality: o.centrality,
      name_prior: o.namePrior,
      name_orientation: o.namePrior && o.nameOrientation,
      copy_count_prior: o.copyCountPrior,
      window_of: o.windowOf,
      parent_choice: o.parentChoice,
      chain_above: o.chainAbove,
      detect_degenerate: o.detectDegenerate,
      name_parent: o.namePrior && o.nameParent,
      name_floor: o.nameFloor,
      namesake_prior: o.namePrior && o.namesakePrior,
      size_ratio: o.namePrior ? o.sizeRatio : 0,
      quant_siblings: o.namePrior && o.quantSiblings,
      name_siblings: o.nameSiblings,
      chat_parent_veto: o.namePrior && o.chatParentVeto,
    },
    models: n,
    failed_models: ids.filter((_, i) => failed[i] && !degenerate[i]),
    degenerate_models: ids.filter((_, i) => degenerate[i]),
    threshold: fit,
    copy_groups: [...groups.values()].filter((l) => l.length > 1).map((l) => ({ representative: ids[l[0]], members: l.map((i) => ids[i]) })),
    families,
    parents,
    findings,
    dendrogram: clusterScores(S, 'single'),
    metadata: meta ? { models: ids.filter((id) => meta.has(id)).length, with_base: withBase, with_downloads: withDownloads, with_created_at: withCreated } : null,
  };
}

// ---------------------------------------------------------------------------------------
// scoring (TypeScript twin of tools/lineage_eval.py in the shared folder)

export interface DeclaredRelation {
  model: string;
  bases: string[];
}

/** Declared bases: "NONE" / "" → none; several separated by ";" or ",". */
export function parseBases(raw: string | null | undefined): string[] {
  const b = (raw ?? '').trim();
  if (b === '' || b === 'NONE') return [];
  return b
    .replace(/;/g, ',')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

export interface LineageScore {
  models: number;
  declared_edges: number;
  tukey: { precision: number; precision_defined: number; recall: number; recall_defined: number; base_hits: number; base_eligible: number };
  predicted: { correct: number; with_parent: number; precision: number; found: number; needed: number; recall: number } | null;
}

function quantileLinear(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/**
 * Scores predicted parents against declared bases exactly as lineage_eval.py does: a
 * predicted parent is correct when it is a declared relative (base or child) of the model;
 * recall counts models whose declared bases are all in the matrix and whose predicted
 * parent is one of them. Also computes the per-row Tukey-fence baseline.
 */
export function scoreLineage(
  matrix: Pick<SimilarityMatrix, 'models' | 'values'>,
  declared: Map<string, string[]>,
  predicted?: Map<string, string | null>,
  /** Score the predicted parents of these models only (e.g. one half of a split). */
  subset?: (model: string) => boolean,
): LineageScore {
  const ids = matrix.models;
  const M = matrix.values;
  const n = ids.length;
  const idx = new Map(ids.map((m, i) => [m, i]));
  const bases = (m: string) => declared.get(m) ?? [];
  const edges = new Set<string>();
  const key = (a: string, b: string) => `${a}\u0000${b}`;
  const related = new Map(ids.map((m) => [m, new Set<string>()]));
  for (const m of ids) {
    for (const b of bases(m)) {
      if (idx.has(b) && b !== m && !edges.has(key(m, b))) {
        edges.add(key(m, b));
        related.get(m)!.add(b);
        related.get(b)!.add(m);
      }
    }
  }
  const S = (i: number, j: number) => (M[i][j] + M[j][i]) / 2;
  const precs: number[] = [];
  const recs: number[] = [];
  let hits = 0;
  let elig = 0;
  ids.forEach((m, i) => {
    const others: number[] = [];
    for (let j = 0; j < n; j++) if (j !== i && M[i][j] >= 0 && M[j][i] >= 0) others.push(j);
    const vals = others.map((j) => S(i, j));
    const q1 = quantileLinear(vals, 0.25);
    const q3 = quantileLinear(vals, 0.75);
    const fence = q3 + 1.5 * (q3 - q1);
    const out = new Set(others.filter((j) => S(i, j) > fence).map((j) => ids[j]));
    const rel = related.get(m)!;
    const inter = [...out].filter((x) => rel.has(x)).length;
    if (out.size) precs.push(inter / out.size);
    if (rel.size) recs.push(inter / rel.size);
    const bs = bases(m).filter((b) => b !== m);
    if (bs.length && bs.every((b) => idx.has(b))) {
      elig++;
      if (bs.some((b) => out.has(b))) hits++;
    }
  });
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  let pred: LineageScore['predicted'] = null;
  if (predicted) {
    const inSubset = subset ?? (() => true);
    const withp = ids.filter((m) => predicted.get(m) && inSubset(m));
    const correct = withp.filter((m) => {
      const p = predicted.get(m)!;
      return bases(m).includes(p) || edges.has(key(p, m)) || related.get(m)!.has(p);
    }).length;
    const needed = ids.filter((m) => inSubset(m) && bases(m).length && bases(m).every((b) => idx.has(b)));
    const found = needed.filter((m) => bases(m).includes(predicted.get(m) ?? '\u0000')).length;
    pred = {
      correct,
      with_parent: withp.length,
      precision: correct / Math.max(withp.length, 1),
      found,
      needed: needed.length,
      recall: found / Math.max(needed.length, 1),
    };
  }
  return {
    models: n,
    declared_edges: edges.size,
    tukey: { precision: mean(precs), precision_defined: precs.length, recall: mean(recs), recall_defined: recs.length, base_hits: hits, base_eligible: elig },
    predicted: pred,
  };
}
