import type { ModelInfo, SimilarityMatrix } from './input.js';
import { mean, populationVariance, quantileSorted, sorted } from './stats.js';
import { fmt } from '../util/format.js';

/**
 * METHODS §4 — family analysis of a similarity matrix.
 *
 * The score of an unordered pair {i, j} is M[i][j] when the matrix is symmetric there, and
 * the mean of M[i][j] and M[j][i] otherwise (a bottom-k matrix is asymmetric: row i uses
 * model i's prompts); both directions are kept in the pair. A pair is left out when either
 * direction is negative (-1 marks a failed model) or not a number. Models without info are
 * ignored.
 */

export interface PairScore {
  a: string;
  b: string;
  family_a: string;
  family_b: string;
  type_a: string;
  type_b: string;
  score: number;
  /** M[a][b] and M[b][a], only when they differ (an asymmetric matrix). */
  ab?: number;
  ba?: number;
}

export interface PairGroup {
  label: string;
  category: 'intrafamily' | 'interfamily' | 'type_pair';
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Population variance (divides by n). */
  variance: number | null;
  median: number | null;
  q1: number | null;
  q3: number | null;
  /** Pairs sorted by score, descending. */
  pairs: PairScore[];
}

export interface FamilyReport {
  source: SimilarityMatrix['source'];
  models: number;
  models_with_info: number;
  ignored_models: string[];
  failed_models: string[];
  families: { family: string; models: string[] }[];
  /** Groups sorted by mean, descending. */
  intrafamily: PairGroup[];
  interfamily: PairGroup[];
  type_pairs: PairGroup[];
  /** Pairs counted (each is in exactly one intrafamily or interfamily group). */
  pairs: number;
}

export function isFailedModel(values: number[][], i: number): boolean {
  const n = values.length;
  let neg = 0;
  let other = 0;
  for (let j = 0; j < n; j++) {
    if (j === i) continue;
    if (values[i][j] < 0) neg++;
    else other++;
  }
  return n > 1 && neg > 0 && other === 0;
}

const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

/** Score descending, then model ids (plain code-unit order: fast and stable across locales). */
function byScoreDesc(x: PairScore, y: PairScore): number {
  return y.score - x.score || cmp(x.a, y.a) || cmp(x.b, y.b);
}

function group(label: string, category: PairGroup['category'], pairs: PairScore[]): PairGroup {
  const scores = pairs.map((p) => p.score);
  const s = sorted(scores);
  return {
    label,
    category,
    count: pairs.length,
    min: s.length ? s[0] : null,
    max: s.length ? s[s.length - 1] : null,
    mean: mean(scores),
    variance: populationVariance(scores),
    median: quantileSorted(s, 0.5),
    q1: quantileSorted(s, 0.25),
    q3: quantileSorted(s, 0.75),
    pairs: [...pairs].sort(byScoreDesc),
  };
}

const byMeanDesc = (x: PairGroup, y: PairGroup) => (y.mean ?? -Infinity) - (x.mean ?? -Infinity) || cmp(x.label, y.label);

export function typePairLabel(t1: string, t2: string): string {
  return [t1, t2].sort(cmp).join('-');
}

export function analyzeFamilies(matrix: SimilarityMatrix, info: readonly ModelInfo[]): FamilyReport {
  const infoById = new Map(info.map((m) => [m.model_id, m]));
  const { models, values } = matrix;
  const idx: number[] = [];
  const ignored: string[] = [];
  models.forEach((m, i) => (infoById.has(m) ? idx.push(i) : ignored.push(m)));
  const failed = models.filter((_, i) => isFailedModel(values, i));

  const all: PairScore[] = [];
  for (let x = 0; x < idx.length; x++) {
    for (let y = x + 1; y < idx.length; y++) {
      const i = idx[x];
      const j = idx[y];
      const ab = values[i][j];
      const ba = values[j][i];
      if (!Number.isFinite(ab) || !Number.isFinite(ba) || ab < 0 || ba < 0) continue;
      const A = infoById.get(models[i])!;
      const B = infoById.get(models[j])!;
      all.push({
        a: A.model_id,
        b: B.model_id,
        family_a: A.family,
        family_b: B.family,
        type_a: A.model_type,
        type_b: B.model_type,
        ...(ab === ba ? { score: ab } : { score: (ab + ba) / 2, ab, ba }),
      });
    }
  }

  const famModels = new Map<string, string[]>();
  for (const i of idx) {
    const f = infoById.get(models[i])!.family;
    const list = famModels.get(f);
    if (list) list.push(models[i]);
    else famModels.set(f, [models[i]]);
  }

  const intra = new Map<string, PairScore[]>();
  const inter = new Map<string, PairScore[]>();
  const types = new Map<string, PairScore[]>();
  const push = (m: Map<string, PairScore[]>, k: string, p: PairScore) => {
    const list = m.get(k);
    if (list) list.push(p);
    else m.set(k, [p]);
  };
  for (const p of all) {
    if (p.family_a === p.family_b) {
      push(intra, p.family_a, p);
      if (p.type_a !== p.type_b) push(types, typePairLabel(p.type_a, p.type_b), p);
    } else {
      const [f1, f2] = [p.family_a, p.family_b].sort(cmp);
      push(inter, `${f1} vs ${f2}`, p);
    }
  }

  return {
    source: matrix.source,
    models: models.length,
    models_with_info: idx.length,
    ignored_models: ignored,
    failed_models: failed,
    families: [...famModels.entries()]
      .sort((a, b) => cmp(a[0], b[0]))
      .map(([family, ms]) => ({ family, models: ms })),
    intrafamily: [...intra.entries()].map(([k, v]) => group(k, 'intrafamily', v)).sort(byMeanDesc),
    interfamily: [...inter.entries()].map(([k, v]) => group(k, 'interfamily', v)).sort(byMeanDesc),
    type_pairs: [...types.entries()].map(([k, v]) => group(k, 'type_pair', v)).sort(byMeanDesc),
    pairs: all.length,
  };
}

/** A plain-text report of every pair in the groups, with family and type, by score. */
export function familyTextReport(title: string, groups: readonly PairGroup[], digits = 6): string {
  const lines: string[] = [title, '='.repeat(title.length), ''];
  if (groups.length === 0) lines.push('(no pairs)');
  for (const g of groups) {
    lines.push(`${g.label}: ${g.count} pairs, mean ${fmt(g.mean, digits)}, min ${fmt(g.min, digits)}, max ${fmt(g.max, digits)}, variance ${fmt(g.variance, digits)}`);
    for (const p of g.pairs) {
      lines.push(
        `  ${p.score.toFixed(digits)}  ${p.a} [${p.family_a}, ${p.type_a}]  <->  ${p.b} [${p.family_b}, ${p.type_b}]` +
          (p.ab !== undefined && p.ba !== undefined ? `  (a→b ${p.ab.toFixed(digits)}, b→a ${p.ba.toFixed(digits)})` : ''),
      );
    }
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/** The `limit` highest-scoring pairs of the report (intrafamily and interfamily). */
export function topPairs(report: FamilyReport, limit: number): PairScore[] {
  const all = [...report.intrafamily, ...report.interfamily].flatMap((g) => g.pairs);
  return all.sort(byScoreDesc).slice(0, limit);
}
