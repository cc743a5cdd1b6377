import type { ModelInfo, SimilarityMatrix } from './input.js';

/** How a pair's score is read from M[i][j] and M[j][i] (an overlap matrix is not symmetric). */
export const SYMMETRISE = ['max', 'mean', 'row'] as const;
export type Symmetrise = (typeof SYMMETRISE)[number];

export interface Neighbour {
  model: string;
  score: number;
  family: string | null;
  /** null without model info for both models. */
  same_family: boolean | null;
}

export interface NeighboursRow {
  model: string;
  family: string | null;
  neighbours: Neighbour[];
}

export interface NeighboursReport {
  models: number;
  /** Models left out: failed (-1 on the diagonal or everywhere) or without any finite score. */
  skipped: string[];
  top: number;
  symmetrise: Symmetrise;
  rows: NeighboursRow[];
  /** Share of models (with info) whose nearest relative is of their own family; null without info. */
  nearest_same_family_rate: number | null;
}

/**
 * Each model's `top` nearest relatives in a similarity matrix (largest score first; ties by
 * matrix order). `max` (default, as `demo` does) takes the better of M[i][j] and M[j][i],
 * `mean` their mean, `row` M[i][j] only. Scores < 0 (failed models) and NaN never count.
 */
export function nearestNeighbours(m: SimilarityMatrix, info: readonly ModelInfo[] | undefined, opts: { top?: number; symmetrise?: Symmetrise } = {}): NeighboursReport {
  const top = opts.top ?? 1;
  const how = opts.symmetrise ?? 'max';
  const n = m.models.length;
  const fam = new Map(info?.map((x) => [x.model_id, x.family]) ?? []);
  const ok = (v: number) => Number.isFinite(v) && v >= 0;
  const pair = (i: number, j: number): number => {
    const a = m.values[i][j];
    const b = m.values[j][i];
    if (how === 'row') return ok(a) ? a : NaN;
    if (!ok(a) || !ok(b)) return how === 'max' && (ok(a) || ok(b)) ? (ok(a) ? a : b) : NaN;
    return how === 'max' ? Math.max(a, b) : (a + b) / 2;
  };
  const rows: NeighboursRow[] = [];
  const skipped: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = m.models[i];
    const diag = m.values[i][i];
    const cands: { j: number; s: number }[] = [];
    if (!(Number.isFinite(diag) && diag < 0)) {
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const s = pair(i, j);
        if (ok(s)) cands.push({ j, s });
      }
    }
    if (cands.length === 0) {
      skipped.push(id);
      continue;
    }
    cands.sort((a, b) => b.s - a.s || a.j - b.j);
    const f = fam.get(id) ?? null;
    rows.push({
      model: id,
      family: f,
      neighbours: cands.slice(0, top).map(({ j, s }) => {
        const g = fam.get(m.models[j]) ?? null;
        return { model: m.models[j], score: s, family: g, same_family: f !== null && g !== null ? f === g : null };
      }),
    });
  }
  const labelled = rows.filter((r) => r.neighbours[0].same_family !== null);
  return {
    models: n,
    skipped,
    top,
    symmetrise: how,
    rows,
    nearest_same_family_rate: labelled.length ? labelled.filter((r) => r.neighbours[0].same_family).length / labelled.length : null,
  };
}
