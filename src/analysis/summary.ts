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
  };
}
