/**
 * METHODS §6 — ROC analysis of same-family (positive) vs different-family (negative)
 * scores. A pair is predicted "same family" when score ≥ threshold. Only valid scores
 * (≥ 0) are passed in.
 *
 * Scores are compared after rounding to `digits` decimals (default 10) so that the
 * floating-point noise of averaging (0.005900000000000001 vs 0.0059, both 59/10000) does
 * not split a real tie; `digits: null` compares the raw doubles.
 */

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
  return Number(x.toFixed(digits));
}

export function roc(
  sameScores: readonly number[],
  diffScores: readonly number[],
  opts: { targetTpr?: number; digits?: number | null } = {},
): RocReport {
  const digits = opts.digits === undefined ? 10 : opts.digits;
  const targetTpr = opts.targetTpr ?? 0.95;
  const P = sameScores.map((x) => canonical(x, digits));
  const N = diffScores.map((x) => canonical(x, digits));
  const nP = P.length;
  const nN = N.length;
  if (nP === 0 || nN === 0) throw new Error('roc needs at least one same and one different score');

  // Count per distinct score, walk thresholds descending.
  const counts = new Map<number, { p: number; n: number }>();
  for (const x of P) counts.set(x, { p: (counts.get(x)?.p ?? 0) + 1, n: counts.get(x)?.n ?? 0 });
  for (const x of N) counts.set(x, { p: counts.get(x)?.p ?? 0, n: (counts.get(x)?.n ?? 0) + 1 });
  const thresholds = [...counts.keys()].sort((a, b) => b - a);

  const table: RocRow[] = [];
  const curve: RocReport['curve'] = [{ fpr: 0, tpr: 0, threshold: null }];
  let tp = 0;
  let fp = 0;
  let auc = 0;
  let tied = 0;
  for (const t of thresholds) {
    const c = counts.get(t)!;
    const prevTpr = tp / nP;
    const prevFpr = fp / nN;
    tp += c.p;
    fp += c.n;
    tied += c.p * c.n;
    const tpr = tp / nP;
    const fpr = fp / nN;
    // Trapezoid: a tie block moves diagonally, which counts its pairs half.
    auc += ((fpr - prevFpr) * (tpr + prevTpr)) / 2;
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
  return {
    same_count: nP,
    diff_count: nN,
    auc,
    tied_pairs: tied,
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
