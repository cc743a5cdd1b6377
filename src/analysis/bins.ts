import { ModelprintError } from '../errors.js';

/** Parses a comma-separated list of ascending bin edges (a CLI flag). */
export function parseEdges(value: string, flag: string, opts: { min?: number; minCount?: number } = {}): number[] {
  const parts = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const edges = parts.map(Number);
  const minCount = opts.minCount ?? 2;
  const bad = parts.find((p, i) => !Number.isFinite(edges[i]));
  if (bad !== undefined || edges.length < minCount) {
    throw new ModelprintError('E_USAGE', `--${flag}: expected ${minCount}+ comma-separated numbers, got "${value}"`, {
      subject: `--${flag}`,
      hint: `e.g. --${flag} 0,0.1,0.3,0.5,0.7,1.0`,
    });
  }
  for (let i = 1; i < edges.length; i++) {
    if (!(edges[i] > edges[i - 1])) {
      throw new ModelprintError('E_USAGE', `--${flag}: edges must be strictly ascending, got "${value}"`, {
        subject: `--${flag}`,
        hint: 'list the edges from smallest to largest, without repeats',
      });
    }
  }
  if (opts.min !== undefined && edges[0] < opts.min) {
    throw new ModelprintError('E_USAGE', `--${flag}: edges must be ≥ ${opts.min}, got "${value}"`, { subject: `--${flag}` });
  }
  return edges;
}

export interface BinCount {
  label: string;
  lo: number;
  hi: number;
  /** true for the first bin, which includes its lower edge. */
  closed_left: boolean;
  count: number;
  share: number | null;
}

export interface Distribution {
  bins: BinCount[];
  /** Values outside [first edge, last edge]. */
  out_of_range: number;
  total: number;
}

export function formatEdge(x: number): string {
  return String(Number(x.toPrecision(12)));
}

/**
 * Counts values in bins like pandas `cut(right=True, include_lowest=True)`: the first bin is
 * `[e0, e1]`, every other `(e_i, e_{i+1}]`. Shares are of all values given.
 */
export function distribution(values: readonly number[], edges: readonly number[]): Distribution {
  const bins: BinCount[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    bins.push({
      label: `${i === 0 ? '[' : '('}${formatEdge(edges[i])}, ${formatEdge(edges[i + 1])}]`,
      lo: edges[i],
      hi: edges[i + 1],
      closed_left: i === 0,
      count: 0,
      share: null,
    });
  }
  let out = 0;
  for (const v of values) {
    const b = bins.find((bin) => (bin.closed_left ? v >= bin.lo : v > bin.lo) && v <= bin.hi);
    if (b) b.count++;
    else out++;
  }
  for (const b of bins) b.share = values.length ? b.count / values.length : null;
  return { bins, out_of_range: out, total: values.length };
}

export const DEFAULT_SCORE_BINS = '0,0.1,0.3,0.5,0.7,1.0';
