/**
 * METHODS §6 — ROC analysis of same-family (positive) vs different-family (negative)
 * scores. A pair is predicted "same family" when score ≥ threshold. Only valid scores
 * (≥ 0) are passed in.
 *
 * Scores are compared after rounding to `digits` decimals (default 10) so that the
 * floating-point noise of averaging (0.005900000000000001 vs 0.0059, both 59/10000) does
 * not split a real tie; `digits: null` compares the raw doubles.
 */

import { roundTo } from '../util/format.js';

export interface RocRow {
  threshold: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  tpr: number;
  fpr: number;
  /** null when nothing is predicted positive. */
  precision: number | null;
  accuracy: number;
  specificity: number;
  f1: number | null;
  youden_j: number;
}

export interface RocReport {
  same_count: number;
  diff_count: number;
  auc: number;
  /** Same/diff pairs with equal scores (each counted half in the AUC). */
  tied_pairs: number;
  digits: number | null;
  best_threshold: number;
  youden_j: number;
  accuracy: number;
  precision: number | null;
  recall: number;
  specificity: number;
  f1: number | null;
  tpr: number;
  fpr: number;
  target_tpr: number;
  /** The highest threshold whose TPR ≥ target_tpr. */
  target_tpr_threshold: number;
  target: RocRow;
  /** One row per distinct score, thresholds descending. */
  table: RocRow[];
  /** ROC points from (0,0) to (1,1) (fpr, tpr). */
  curve: { fpr: number; tpr: number; threshold: number | null }[];
}

export function canonical(x: number, digits: number | null): number {
  if (digits === null) return x;
  return roundTo(x, digits);
}

/** Positive and negative counts per distinct (canonical) score, scores descending. */
function scoreBlocks(pos: readonly number[], neg: readonly number[], digits: number | null): Array<{ score: number; p: number; n: number }> {
  const counts = new Map<number, { p: number; n: number }>();
  const at = (x: number) => {
    const key = canonical(x, digits);
    let c = counts.get(key);
    if (!c) counts.set(key, (c = { p: 0, n: 0 }));
    return c;
  };
  for (const x of pos) at(x).p++;
  for (const x of neg) at(x).n++;
  return [...counts.entries()].sort((a, b) => b[0] - a[0]).map(([score, c]) => ({ score, ...c }));
}

/**
 * The Mann–Whitney U of `pos` over `neg`: the pairs where the positive scores higher, plus
 * half the tied pairs (exact: a multiple of ½). AUC = U / (n_pos · n_neg).
 */
export function mannWhitneyCount(pos: readonly number[], neg: readonly number[], digits: number | null = 10): { u: number; ties: number } {
  let negAbove = 0;
  let u = 0;
  let ties = 0;
  for (const b of scoreBlocks(pos, neg, digits)) {
    negAbove += b.n;
    u += b.p * (neg.length - negAbove) + (b.p * b.n) / 2;
    ties += b.p * b.n;
  }
  return { u, ties };
}

/**
 * The project's one ROC AUC: P(score_pos > score_neg) + ½ P(equal), which is the
 * trapezoidal area under the ROC curve over all thresholds. Scores are compared after
 * rounding to `digits` decimals (see above); null when either side is empty.
 */
export function auc(pos: readonly number[], neg: readonly number[], digits: number | null = 10): number | null {
  if (pos.length === 0 || neg.length === 0) return null;
  return mannWhitneyCount(pos, neg, digits).u / (pos.length * neg.length);
}

export function roc(
  sameScores: readonly number[],
  diffScores: readonly number[],
  opts: { targetTpr?: number; digits?: number | null } = {},
): RocReport {
  const digits = opts.digits === undefined ? 10 : opts.digits;
  const targetTpr = opts.targetTpr ?? 0.95;
  const nP = sameScores.length;
  const nN = diffScores.length;
  if (nP === 0 || nN === 0) throw new Error('roc needs at least one same and one different score');

  const table: RocRow[] = [];
  const curve: RocReport['curve'] = [{ fpr: 0, tpr: 0, threshold: null }];
  let tp = 0;
  let fp = 0;
  // Walk the thresholds descending (a tie block moves the curve diagonally).
  for (const c of scoreBlocks(sameScores, diffScores, digits)) {
    const t = c.score;
    tp += c.p;
    fp += c.n;
    const tpr = tp / nP;
    const fpr = fp / nN;
    curve.push({ fpr, tpr, threshold: t });
    const fn = nP - tp;
    const tn = nN - fp;
    const precision = tp + fp > 0 ? tp / (tp + fp) : null;
    const f1 = precision !== null && precision + tpr > 0 ? (2 * precision * tpr) / (precision + tpr) : null;
    table.push({
      threshold: t,
      tp,
      fp,
      tn,
      fn,
      tpr,
      fpr,
      precision,
      accuracy: (tp + tn) / (nP + nN),
      specificity: tn / nN,
      f1,
      youden_j: tpr - fpr,
    });
  }
  // Youden's J; among equal J the highest threshold (the first in descending order).
  let best = table[0];
  for (const row of table) if (row.youden_j > best.youden_j + 1e-15) best = row;
  const target = table.find((r) => r.tpr >= targetTpr - 1e-12) ?? table[table.length - 1];
  const { u, ties } = mannWhitneyCount(sameScores, diffScores, digits);
  return {
    same_count: nP,
    diff_count: nN,
    auc: u / (nP * nN),
    tied_pairs: ties,
    digits,
    best_threshold: best.threshold,
    youden_j: best.youden_j,
    accuracy: best.accuracy,
    precision: best.precision,
    recall: best.tpr,
    specificity: best.specificity,
    f1: best.f1,
    tpr: best.tpr,
    fpr: best.fpr,
    target_tpr: targetTpr,
    target_tpr_threshold: target.threshold,
    target,
    table,
    curve,
  };
}
