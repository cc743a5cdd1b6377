/**
 * The ways a zoo derivative is made from its parent's weights. Each returns new weights
 * and leaves its input untouched; all randomness comes from the given generator.
 */
import type { Rng } from '../util/rng.js';
import { cloneWeights, matrix, outputHead, tensors, type LlamaWeights, type Matrix, type TensorKind } from './weights.js';

function std(x: Float32Array): number {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) {
    s += x[i];
    s2 += x[i] * x[i];
  }
  const mean = s / x.length;
  const v = s2 / x.length - mean * mean;
  return v > 1e-12 ? Math.sqrt(v) : Math.sqrt(s2 / x.length);
}

/** Fine-tune stand-in: every tensor += N(0, (rel · std(tensor))²). */
export function addNoise(w: LlamaWeights, rel: number, rng: Rng): LlamaWeights {
  const out = cloneWeights(w);
  for (const t of tensors(out)) {
    const r = rng.fork(t.name);
    const s = rel * std(t.data);
    for (let i = 0; i < t.data.length; i++) t.data[i] += s * r.normal();
  }
  return out;
}

/**
 * What a heavy domain fine-tune does to the output head: a fraction of the token rows
 * move to new directions and every row's norm drifts.
 */
export function shiftHead(w: LlamaWeights, fraction: number, strength: number, rng: Rng): LlamaWeights {
  const out = cloneWeights(w);
  const head = outputHead(out);
  const E = head.cols;
  const s = std(head.data);
  for (let t = 0; t < head.rows; t++) {
    const row = head.data.subarray(t * E, (t + 1) * E);
    const drift = Math.exp(0.1 * rng.normal());
    const moved = rng.next() < fraction;
    for (let j = 0; j < E; j++) row[j] = row[j] * drift + (moved ? strength * s * rng.normal() : 0);
  }
  return out;
}

/** A merged LoRA: W += B·A (rank r) on every attention and MLP matrix, ‖ΔW‖ = rel·‖W‖. */
export function mergeLora(w: LlamaWeights, rank: number, rel: number, rng: Rng): LlamaWeights {
  const out = cloneWeights(w);
  for (const t of tensors(out)) {
    if (t.kind !== 'attn' && t.kind !== 'mlp') continue;
    const r = rng.fork(t.name);
    const a = r.normals(rank * t.cols); // [rank, in]
    const b = r.normals(t.rows * rank); // [out, rank]
    const delta = new Float32Array(t.rows * t.cols);
    for (let i = 0; i < t.rows; i++) {
      for (let k = 0; k < rank; k++) {
        const bik = b[i * rank + k];
        const arow = k * t.cols;
        const drow = i * t.cols;
        for (let j = 0; j < t.cols; j++) delta[drow + j] += bik * a[arow + j];
      }
    }
    let nw = 0;
    let nd = 0;
    for (let i = 0; i < delta.length; i++) {
      nw += t.data[i] * t.data[i];
      nd += delta[i] * delta[i];
    }
    const scale = (rel * Math.sqrt(nw)) / Math.sqrt(nd);
    for (let i = 0; i < delta.length; i++) t.data[i] += scale * delta[i];
  }
  return out;
}

/** Per-row symmetric quantize → dequantize of every matrix (norm vectors stay float). */
export function quantizeRoundTrip(w: LlamaWeights, bits: 4 | 8): LlamaWeights {
  const out = cloneWeights(w);
  const qmax = 2 ** (bits - 1) - 1;
  for (const t of tensors(out)) {
    if (t.kind === 'norm') continue;
    for (let r = 0; r < t.rows; r++) {
      const row = t.data.subarray(r * t.cols, (r + 1) * t.cols);
      let max = 0;
      for (const x of row) max = Math.max(max, Math.abs(x));
      if (max === 0) continue;
      const scale = Math.fround(max / qmax);
      for (let j = 0; j < row.length; j++) {
        const q = Math.max(-qmax, Math.min(qmax, Math.round(row[j] / scale)));
        row[j] = q * scale;
      }
    }
  }
  return out;
}

/**
 * The k-th smallest |x| (k ≥ 1) and how many entries are strictly smaller, by a
 * two-pass radix select on the float bits (|x| bit patterns sort like the values).
 */
export function kthSmallestAbs(data: Float32Array, k: number): { threshold: number; below: number } {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const hist = new Uint32Array(65536);
  for (let i = 0; i < bits.length; i++) hist[(bits[i] & 0x7fffffff) >>> 16]++;
  let hi = 0;
  let acc = 0;
  while (acc + hist[hi] < k) acc += hist[hi++];
  hist.fill(0);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] & 0x7fffffff;
    if (b >>> 16 === hi) hist[b & 0xffff]++;
  }
  let lo = 0;
  while (acc + hist[lo] < k) acc += hist[lo++];
  const pattern = ((hi << 16) | lo) >>> 0;
  const threshold = new Float32Array(new Uint32Array([pattern]).buffer)[0];
  return { threshold, below: acc };
}

/** Zeroes the `fraction` smallest-magnitude entries of each matrix of the given kinds. */
export function prune(w: LlamaWeights, fractions: Partial<Record<TensorKind, number>>): LlamaWeights {
  const out = cloneWeights(w);
  for (const t of tensors(out)) {
    const f = fractions[t.kind];
    if (!f) continue;
    const k = Math.floor(f * t.data.length);
    if (k === 0) continue;
    const { threshold, below } = kthSmallestAbs(t.data, k);
    // Exactly k zeros: every entry below the k-th smallest magnitude, then ties in index order.
    let tiesLeft = k - below;
    for (let i = 0; i < t.data.length; i++) {
      const m = Math.abs(t.data[i]);
      if (m < threshold) t.data[i] = 0;
      else if (m === threshold && tiesLeft > 0) {
        t.data[i] = 0;
        tiesLeft--;
      }
    }
  }
  return out;
}

/**
 * Vocabulary extension: `n` new rows in the embedding (and untied head), initialised
 * like transformers' mean resizing: the mean row plus small noise.
 */
export function extendVocab(w: LlamaWeights, n: number, rng: Rng): LlamaWeights {
  const grow = (m: Matrix, r: Rng): Matrix => {
    const E = m.cols;
    const mean = new Float64Array(E);
    for (let t = 0; t < m.rows; t++) for (let j = 0; j < E; j++) mean[j] += m.data[t * E + j];
    for (let j = 0; j < E; j++) mean[j] /= m.rows;
    const s = std(m.data);
    const out = matrix(m.rows + n, E);
    out.data.set(m.data);
    for (let t = m.rows; t < m.rows + n; t++) for (let j = 0; j < E; j++) out.data[t * E + j] = mean[j] + 0.05 * s * r.normal();
    return out;
  };
  const out = cloneWeights(w);
  out.embed = grow(w.embed, rng.fork('embed'));
  if (w.lmHead) out.lmHead = grow(w.lmHead, rng.fork('lm_head'));
  out.config.vocabSize += n;
  return out;
}

/** Element-wise average of two models of the same shape. */
export function average(a: LlamaWeights, b: LlamaWeights): LlamaWeights {
  const out = cloneWeights(a);
  const ta = tensors(out);
  const tb = tensors(b);
  if (ta.length !== tb.length) throw new Error('cannot merge models of different structure');
  ta.forEach((t, i) => {
    const u = tb[i];
    if (u.name !== t.name || u.data.length !== t.data.length) throw new Error(`cannot merge ${t.name}: shapes differ`);
    for (let j = 0; j < t.data.length; j++) t.data[j] = Math.fround((t.data[j] + u.data[j]) / 2);
  });
  return out;
}
