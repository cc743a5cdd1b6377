import ttest2 from '@stdlib/stats-ttest2';
import pcorrtest from '@stdlib/stats-pcorrtest';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import { mannWhitneyCount } from './roc.js';

/**
 * Descriptive statistics and tests. Descriptives follow pandas/numpy conventions (sample
 * std with n−1, quantiles by linear interpolation, numpy's default). p-values come from
 * @stdlib (see each function); nothing here approximates a distribution by hand.
 */

export function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

export function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : sum(xs) / xs.length;
}

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Quantile by linear interpolation between order statistics (numpy `linear`, pandas default). */
export function quantileSorted(s: readonly number[], p: number): number | null {
  if (s.length === 0) return null;
  const h = (s.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

export function median(xs: readonly number[]): number | null {
  return quantileSorted(sorted(xs), 0.5);
}

/** Sample variance (n−1); null for n < 2. */
export function sampleVariance(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const m = sum(xs) / xs.length;
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  return ss / (xs.length - 1);
}

/** Sample standard deviation (n−1, pandas `std`); null for n < 2. */
export function sampleStd(xs: readonly number[]): number | null {
  const v = sampleVariance(xs);
  return v === null ? null : Math.sqrt(v);
}

/** Population variance (divides by n, numpy `var`); null for n = 0. */
export function populationVariance(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const m = sum(xs) / xs.length;
  let ss = 0;
  for (const x of xs) ss += (x - m) * (x - m);
  return ss / xs.length;
}

export interface Describe {
  count: number;
  mean: number | null;
  median: number | null;
  /** Sample standard deviation (n−1); null for n < 2. */
  std: number | null;
  min: number | null;
  max: number | null;
  q1: number | null;
  q3: number | null;
}

/** pandas `describe()` of a numeric series (count, mean, std, min, 25 %, 50 %, 75 %, max). */
export function describe(xs: readonly number[]): Describe {
  const s = sorted(xs);
  return {
    count: s.length,
    mean: mean(s),
    median: quantileSorted(s, 0.5),
    std: sampleStd(s),
    min: s.length ? s[0] : null,
    max: s.length ? s[s.length - 1] : null,
    q1: quantileSorted(s, 0.25),
    q3: quantileSorted(s, 0.75),
  };
}

/** Ranks 1..n with ties given their average rank (scipy `rankdata(method='average')`). */
export function averageRanks(xs: readonly number[]): number[] {
  const idx = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const ranks = new Array<number>(xs.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && xs[idx[j + 1]] === xs[idx[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]] = r;
    i = j + 1;
  }
  return ranks;
}

/** Sizes of the groups of tied values (only groups of 2 or more). */
function tieSizes(xs: readonly number[]): number[] {
  const counts = new Map<number, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts.values()].filter((t) => t > 1);
}

/** Sums of centred cross products and squares of paired samples, with the means; null for n < 2. */
function centredSums(x: readonly number[], y: readonly number[]): { mx: number; my: number; sxy: number; sxx: number; syy: number } | null {
  const n = x.length;
  if (n < 2) return null;
  const mx = sum(x) / n;
  const my = sum(y) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return { mx, my, sxy, sxx, syy };
}

export function pearsonR(x: readonly number[], y: readonly number[]): number | null {
  const c = centredSums(x, y);
  if (!c) return null;
  const { sxy, sxx, syy } = c;
  if (sxx === 0 || syy === 0) return null;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

export interface CorrelationResult {
  n: number;
  /** Coefficient (Pearson r or Spearman rho); null when undefined (n < 2 or a constant input). */
  r: number | null;
  /** Two-sided p-value against 0; null when undefined or n < 4 (@stdlib needs four pairs). */
  p: number | null;
}

/**
 * Pearson correlation with a two-sided p-value from @stdlib/stats-pcorrtest (t test with
 * n−2 degrees of freedom, the same p-value as scipy.stats.pearsonr).
 */
export function pearson(x: readonly number[], y: readonly number[]): CorrelationResult {
  const n = x.length;
  const r = pearsonR(x, y);
  if (r === null || n < 4) return { n, r, p: null };
  const res = pcorrtest([...x], [...y], { alternative: 'two-sided' });
  return { n, r, p: finiteOrNull(res.pValue) };
}

/**
 * Spearman rank correlation: Pearson's r of the average ranks, p-value from
 * @stdlib/stats-pcorrtest on the ranks (t test with n−2 df — what scipy.stats.spearmanr does).
 */
export function spearman(x: readonly number[], y: readonly number[]): SpearmanResult {
  const { n, r, p } = pearson(averageRanks(x), averageRanks(y));
  return { n, rho: r, p };
}

export interface SpearmanResult {
  n: number;
  /** Spearman's rho; null when undefined (n < 2 or a constant input). */
  rho: number | null;
  /** Two-sided p-value against 0; null when undefined or n < 4. */
  p: number | null;
}

export interface WelchResult {
  t: number | null;
  df: number | null;
  p: number | null;
  mean_x: number | null;
  mean_y: number | null;
  method: string;
}

/** Welch's two-sample t test, two-sided, from @stdlib/stats-ttest2 (variance: 'unequal'). */
export function welchTTest(x: readonly number[], y: readonly number[]): WelchResult {
  const method = "Welch two-sample t test, two-sided (@stdlib/stats-ttest2, variance: 'unequal')";
  const base = { mean_x: mean(x), mean_y: mean(y), method };
  const vx = sampleVariance(x);
  const vy = sampleVariance(y);
  if (vx === null || vy === null || (vx === 0 && vy === 0)) return { t: null, df: null, p: null, ...base };
  const res = ttest2([...x], [...y], { variance: 'unequal', alternative: 'two-sided' });
  return { t: finiteOrNull(res.statistic), df: finiteOrNull(res.df), p: finiteOrNull(res.pValue), ...base };
}

export interface MannWhitneyResult {
  /** U statistic of the first sample (scipy's `statistic`). */
  u: number | null;
  z: number | null;
  p: number | null;
  n_x: number;
  n_y: number;
  method: string;
}

/**
 * Mann–Whitney U test, two-sided, by the tie-corrected normal approximation with continuity
 * correction — exactly scipy.stats.mannwhitneyu(x, y, alternative='two-sided',
 * method='asymptotic', use_continuity=True):
 *   U1 = R1 − n1(n1+1)/2, U = max(U1, n1·n2 − U1), μ = n1·n2/2,
 *   σ = sqrt(n1·n2/12 · ((n+1) − Σ(t³−t)/(n(n−1)))),
 *   z = (U − μ − 0.5)/σ, p = min(1, 2·Φ(−z)),
 * with Φ the standard normal CDF of @stdlib/stats-base-dists-normal-cdf. (scipy's default
 * method='auto' would use the exact distribution for samples ≤ 8 without ties; this always
 * uses the asymptotic one.)
 */
export function mannWhitneyU(x: readonly number[], y: readonly number[]): MannWhitneyResult {
  const method =
    "Mann-Whitney U, two-sided, normal approximation with tie and continuity correction (scipy method='asymptotic', use_continuity=True; normal CDF from @stdlib/stats-base-dists-normal-cdf)";
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) return { u: null, z: null, p: null, n_x: n1, n_y: n2, method };
  const all = [...x, ...y];
  // U1 = R1 − n1(n1+1)/2: the pairs where x wins plus half the ties (raw doubles, as scipy).
  const u1 = mannWhitneyCount(x, y, null).u;
  const n = n1 + n2;
  const u = Math.max(u1, n1 * n2 - u1);
  const mu = (n1 * n2) / 2;
  const tieTerm = sum(tieSizes(all).map((t) => t ** 3 - t));
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (!(variance > 0)) return { u: u1, z: null, p: null, n_x: n1, n_y: n2, method };
  const z = (u - mu - 0.5) / Math.sqrt(variance);
  const p = Math.min(1, Math.max(0, 2 * normalCdf(-z, 0, 1)));
  return { u: u1, z, p, n_x: n1, n_y: n2, method };
}

/** Least-squares line y = slope·x + intercept; null with fewer than 2 distinct x. */
export function linearFit(x: readonly number[], y: readonly number[]): { slope: number; intercept: number } | null {
  const c = centredSums(x, y);
  if (!c || c.sxx === 0) return null;
  const { mx, my, sxy, sxx } = c;
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

export function finiteOrNull(x: number | null | undefined): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : x;
}

