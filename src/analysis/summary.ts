import { type Distribution, distribution } from './bins.js';
import type { ScoreRow } from './input.js';
import { describe, type Describe } from './stats.js';

export interface ModelScore {
  model: string;
  score: number;
  line: number;
}

export interface SummaryReport extends Omit<Describe, 'count'> {
  rows: number;
  /** Rows with score ≥ 0. */
  valid: number;
  /** Rows with score < 0 (failed models, -1) or no score. */
  invalid: number;
  invalid_rate: number | null;
  distribution: Distribution;
  lowest: ModelScore[];
  highest: ModelScore[];
  /** Invalid rows grouped by error code, most frequent first. */
  failures: FailureGroup[];
}

export interface FailureGroup {
  /**
   * The row's `error_code` (modelprint's result files have one); `unrecorded` for a failed
   * row (score < 0) of a file without error codes (the published CSVs); `no_score` for an
   * empty or NaN score.
   */
  code: string;
  count: number;
  /** Share of all rows. */
  share: number;
  /** Up to five models with this code, in file order. */
  models: string[];
}

/** Invalid rows by error code (most frequent first, then by code). */
export function failuresByCode(rows: readonly ScoreRow[]): FailureGroup[] {
  const groups = new Map<string, string[]>();
  for (const r of rows) {
    if (r.valid) continue;
    const code = r.error_code ?? (r.score === null ? 'no_score' : 'unrecorded');
    const g = groups.get(code) ?? [];
    g.push(r.model);
    groups.set(code, g);
  }
  return [...groups.entries()]
    .map(([code, models]) => ({ code, count: models.length, share: models.length / rows.length, models: models.slice(0, 5) }))
    .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : 1));
}

/** METHODS §5 summary of a base-vs-derived file: only rows with score ≥ 0 count. */
export function summarize(rows: readonly ScoreRow[], edges: readonly number[], top = 5): SummaryReport {
  const valid = rows.filter((r) => r.valid) as (ScoreRow & { score: number })[];
  const scores = valid.map((r) => r.score);
  const d = describe(scores);
  const byScore = valid.map((r) => ({ model: r.model, score: r.score, line: r.line }));
  // Stable order: by score, then file order.
  const asc = [...byScore].sort((a, b) => a.score - b.score || a.line - b.line);
  const desc = [...byScore].sort((a, b) => b.score - a.score || a.line - b.line);
  return {
    rows: rows.length,
    valid: valid.length,
    invalid: rows.length - valid.length,
    invalid_rate: rows.length ? (rows.length - valid.length) / rows.length : null,
    mean: d.mean,
    median: d.median,
    std: d.std,
    min: d.min,
    max: d.max,
    q1: d.q1,
    q3: d.q3,
    distribution: distribution(scores, edges),
    lowest: asc.slice(0, top),
    highest: desc.slice(0, top),
    failures: failuresByCode(rows),
  };
}
