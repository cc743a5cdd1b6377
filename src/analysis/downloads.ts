import { type Distribution, distribution, formatEdge } from './bins.js';
import type { ScoreRow } from './input.js';
import {
  type CorrelationResult,
  type SpearmanResult,
  type MannWhitneyResult,
  type WelchResult,
  type Describe,
  describe,
  linearFit,
  mannWhitneyU,
  mean,
  pearson,
  spearman,
  welchTTest,
} from './stats.js';

/**
 * METHODS §5 — downloads analysis of the derivatives of one base, same family vs different
 * family. Only valid rows (score ≥ 0) count; a row with unknown downloads counts as 0
 * downloads (group `0`, low, flag low, weight 0.3) except in correlations and the scatter,
 * which need a number and leave it out.
 */

export interface DownloadsOptions {
  /** Group edges; intervals (e_i, e_{i+1}] and an open last one (e_last, ∞). */
  edges: number[];
  /** Low: downloads ≤ this (zeros and unknown included). Default 10. */
  low: number;
  /** High: downloads > this. Default 100. */
  high: number;
  /** Overlap bins for the distribution. */
  scoreEdges: number[];
}

export interface DownloadGroup extends Describe {
  label: string;
  /** Lower edge (exclusive); null for the `0` group. */
  lo: number | null;
  /** Upper edge (inclusive); null for the open last group. For the `0` group, 0. */
  hi: number | null;
}

/** A group's `describe()` without the quartiles. */
export type LowHigh = Omit<Describe, 'q1' | 'q3'>;

export interface StrategyResult {
  name: string;
  rule: string;
  min_downloads_exclusive: number;
  kept: number;
  removed: number;
  kept_share: number | null;
  mean_kept: number | null;
  mean_removed: number | null;
}

export interface Anomaly {
  model: string;
  downloads: number | null;
  overlap: number;
  kind: 'low_downloads_high_overlap' | 'declared_derivative_low_overlap';
  note: string;
  /** What the finding rests on, in words (the numbers compared and where they come from). */
  evidence: string;
}

/** Different-family overlaps to judge a same-side row against (nearest-rank 95th percentile). */
export interface UnrelatedReference {
  file: string;
  n: number;
  p95: number;
}

export function unrelatedReference(file: string, scores: readonly number[]): UnrelatedReference | null {
  if (scores.length === 0) return null;
  const sorted = [...scores].sort((a, b) => a - b);
  return { file, n: sorted.length, p95: sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)] };
}

/** Without a different-family sample, the fixed threshold of the published analysis. */
export const MISLABEL_FIXED_THRESHOLD = 0.1;

export interface DownloadRow {
  model: string;
  downloads: number | null;
  overlap: number;
  group: string;
  flag: 'high' | 'medium' | 'low';
  weight: number;
  weighted_score: number;
}

export interface SideReport {
  file: string;
  rows: number;
  valid: number;
  invalid: number;
  invalid_rate: number | null;
  unknown_downloads: number;
  overall: LowHigh;
  groups: DownloadGroup[];
  low: LowHigh;
  high: LowHigh;
  correlation: {
    n: number;
    pearson: CorrelationResult;
    spearman: SpearmanResult;
    /** Pearson r of overlap vs log10(downloads + 1). */
    pearson_log: CorrelationResult;
  };
  /** Least-squares line overlap = slope · log10(downloads + 1) + intercept (the scatter's trend line). */
  trend: { slope: number; intercept: number } | null;
  strategies: StrategyResult[];
  flags: { high: LowHigh; medium: LowHigh; low: LowHigh };
  confidence_weighted: { mean: number | null; weights: { high: number; medium: number; low: number } };
  anomalies: Anomaly[];
  distribution: Distribution;
  table: DownloadRow[];
}

export interface DownloadsReport {
  options: DownloadsOptions;
  same?: SideReport;
  diff?: SideReport;
  /** same.low.mean / diff.low.mean. */
  low_ratio: number | null;
  /** same.high.mean / diff.high.mean. */
  high_ratio: number | null;
  tests: { welch: WelchResult; mann_whitney: MannWhitneyResult } | null;
}

export const WEIGHTS = { high: 1.0, medium: 0.7, low: 0.3 } as const;

function lowHigh(values: readonly number[]): LowHigh {
  const { q1: _q1, q3: _q3, ...rest } = describe(values);
  return rest;
}

export function groupLabel(lo: number, hi: number | null): string {
  return hi === null ? `(${formatEdge(lo)},∞)` : `(${formatEdge(lo)},${formatEdge(hi)}]`;
}

/** The group of a download count: `0` for 0 / unknown, else the (lo, hi] interval. */
export function groupOf(downloads: number | null, edges: readonly number[]): { label: string; index: number } {
  const d = downloads ?? 0;
  if (d <= 0) return { label: '0', index: 0 };
  for (let i = 0; i < edges.length; i++) {
    const lo = edges[i];
    const hi = i + 1 < edges.length ? edges[i + 1] : null;
    if (d > lo && (hi === null || d <= hi)) return { label: groupLabel(lo, hi), index: i + 1 };
  }
  return { label: groupLabel(0, edges[0]), index: 1 };
}

/** Normalizes edges: starts at 0 (prepended when missing). */
export function normalizeEdges(edges: readonly number[]): number[] {
  return edges[0] === 0 ? [...edges] : [0, ...edges];
}

/**
 * One side's report. `role` says which side it is: the mislabel finding
 * (declared_derivative_low_overlap) applies only to the same side — rows declared
 * derivatives — and compares their overlap with `unrelated` (the different-family side)
 * when given, else with a fixed 0.1. Low overlap on the different side is what unrelated
 * models are expected to have, and is never a finding.
 */
export function analyzeSide(
  file: string,
  rows: readonly ScoreRow[],
  opts: DownloadsOptions,
  role: 'same' | 'diff' = 'same',
  unrelated: UnrelatedReference | null = null,
): SideReport {
  const edges = normalizeEdges(opts.edges);
  const valid = rows.filter((r) => r.valid) as (ScoreRow & { score: number })[];
  const dl = (r: ScoreRow) => r.downloads ?? 0;

  const groupDefs: { label: string; lo: number | null; hi: number | null }[] = [{ label: '0', lo: null, hi: 0 }];
  for (let i = 0; i < edges.length; i++) {
    const hi = i + 1 < edges.length ? edges[i + 1] : null;
    groupDefs.push({ label: groupLabel(edges[i], hi), lo: edges[i], hi });
  }
  const buckets: number[][] = groupDefs.map(() => []);
  for (const r of valid) buckets[groupOf(r.downloads, edges).index].push(r.score);
  const groups: DownloadGroup[] = groupDefs.map((g, i) => {
    const d = describe(buckets[i]);
    return { ...g, count: d.count, mean: d.mean, median: d.median, std: d.std, min: d.min, max: d.max, q1: d.q1, q3: d.q3 };
  });

  const known = valid.filter((r) => r.downloads !== null) as (ScoreRow & { score: number; downloads: number })[];
  const kx = known.map((r) => r.downloads);
  const ky = known.map((r) => r.score);
  const logx = kx.map((d) => Math.log10(d + 1));

  const flagOf = (d: number): 'high' | 'medium' | 'low' => (d > opts.high ? 'high' : d > opts.low ? 'medium' : 'low');

  const strategies: StrategyResult[] = [
    { name: 'conservative', threshold: opts.high },
    { name: 'balanced', threshold: opts.low },
  ].map(({ name, threshold }) => {
    const kept = valid.filter((r) => dl(r) > threshold).map((r) => r.score);
    const removed = valid.filter((r) => !(dl(r) > threshold)).map((r) => r.score);
    return {
      name,
      rule: `downloads > ${threshold}`,
      min_downloads_exclusive: threshold,
      kept: kept.length,
      removed: removed.length,
      kept_share: valid.length ? kept.length / valid.length : null,
      mean_kept: mean(kept),
      mean_removed: mean(removed),
    };
  });

  const table: DownloadRow[] = valid.map((r) => {
    const flag = flagOf(dl(r));
    const weight = WEIGHTS[flag];
    return {
      model: r.model,
      downloads: r.downloads,
      overlap: r.score,
      group: groupOf(r.downloads, edges).label,
      flag,
      weight,
      weighted_score: r.score * weight,
    };
  });

  const anomalies: Anomaly[] = [];
  for (const r of valid) {
    if (dl(r) < 10 && r.score > 0.9) {
      anomalies.push({
        model: r.model,
        downloads: r.downloads,
        overlap: r.score,
        kind: 'low_downloads_high_overlap',
        note: 'downloads < 10 and overlap > 0.9: likely a re-upload or test copy',
        evidence: `${r.downloads ?? 'unknown'} downloads (< 10) and overlap ${r.score.toFixed(4)} (> 0.9)`,
      });
    }
    if (role !== 'same') continue;
    const cut = unrelated ? unrelated.p95 : MISLABEL_FIXED_THRESHOLD;
    const low = unrelated ? r.score <= cut : r.score < cut;
    if (low) {
      const declared = r.base ? `declared a derivative of ${r.base}` : `listed as a same-family derivative in ${file}`;
      anomalies.push({
        model: r.model,
        downloads: r.downloads,
        overlap: r.score,
        kind: 'declared_derivative_low_overlap',
        note: 'declared derivative whose overlap looks like an unrelated model: the declared base may be wrong (mislabelled)',
        evidence: unrelated
          ? `${declared}, yet its overlap ${r.score.toFixed(4)} ≤ ${cut.toFixed(4)}, the 95th percentile of the ${unrelated.n} different-family overlaps in ${unrelated.file}`
          : `${declared}, yet its overlap ${r.score.toFixed(4)} < ${cut} (fixed threshold; give --diff to compare with different-family overlaps instead)`,
      });
    }
  }

  return {
    file,
    rows: rows.length,
    valid: valid.length,
    invalid: rows.length - valid.length,
    invalid_rate: rows.length ? (rows.length - valid.length) / rows.length : null,
    unknown_downloads: valid.filter((r) => r.downloads === null).length,
    overall: lowHigh(valid.map((r) => r.score)),
    groups,
    low: lowHigh(valid.filter((r) => dl(r) <= opts.low).map((r) => r.score)),
    high: lowHigh(valid.filter((r) => dl(r) > opts.high).map((r) => r.score)),
    correlation: {
      n: known.length,
      pearson: pearson(kx, ky),
      spearman: spearman(kx, ky),
      pearson_log: pearson(logx, ky),
    },
    trend: linearFit(logx, ky),
    strategies,
    flags: {
      high: lowHigh(table.filter((t) => t.flag === 'high').map((t) => t.overlap)),
      medium: lowHigh(table.filter((t) => t.flag === 'medium').map((t) => t.overlap)),
      low: lowHigh(table.filter((t) => t.flag === 'low').map((t) => t.overlap)),
    },
    confidence_weighted: { mean: mean(table.map((t) => t.weighted_score)), weights: { ...WEIGHTS } },
    anomalies,
    distribution: distribution(
      valid.map((r) => r.score),
      opts.scoreEdges,
    ),
    table,
  };
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}

export function analyzeDownloads(
  inputs: { same?: { file: string; rows: ScoreRow[] }; diff?: { file: string; rows: ScoreRow[] } },
  opts: DownloadsOptions,
): DownloadsReport {
  const diff = inputs.diff ? analyzeSide(inputs.diff.file, inputs.diff.rows, opts, 'diff') : undefined;
  const reference = diff ? unrelatedReference(diff.file, diff.table.map((t) => t.overlap)) : null;
  const same = inputs.same ? analyzeSide(inputs.same.file, inputs.same.rows, opts, 'same', reference) : undefined;
  let tests: DownloadsReport['tests'] = null;
  if (same && diff) {
    const x = same.table.map((t) => t.overlap);
    const y = diff.table.map((t) => t.overlap);
    tests = { welch: welchTTest(x, y), mann_whitney: mannWhitneyU(x, y) };
  }
  return {
    options: { ...opts, edges: normalizeEdges(opts.edges) },
    same,
    diff,
    low_ratio: ratio(same?.low.mean, diff?.low.mean),
    high_ratio: ratio(same?.high.mean, diff?.high.mean),
    tests,
  };
}
