/**
 * Detection quality on a set of models with known lineage (the zoo): how each relation
 * type scores against its base, ROC AUC of derivatives vs unrelated models, and each
 * model's nearest relative.
 */
import { auc } from '../analysis/roc.js';
import type { ModelEntry } from './models-input.js';

export interface Labelled {
  id: string;
  family: string;
  /** Root base of the family; the model itself for a base. */
  base: string;
  relation: string;
}

export function labelsFromEntries(models: ModelEntry[]): Labelled[] {
  return models.map((m) => ({
    id: m.id,
    family: m.meta.family ?? '',
    base: m.meta.base_model && m.meta.base_model !== '' ? m.meta.base_model : m.id,
    relation: m.meta.relation ?? (m.meta.base_model ? 'derived' : 'base'),
  }));
}

export interface QualityReport {
  relations: Array<{ relation: string; count: number; mean: number; min: number; max: number }>;
  auc_all: number | null;
  auc_without_hard: number | null;
  hard_relations: string[];
  positives: number;
  negatives: number;
  same_tokenizer_negatives: number;
  nearest: Array<{ model: string; family: string; relation: string; nearest: string; score: number; same_family: boolean }>;
  nearest_same_family_rate: number;
  reupload_scores: number[];
}

/**
 * Scores are M[base][model] (the base's prompts). Positives: each derivative against
 * its base; negatives: each base against every model of another family.
 */
export function lineageQuality(
  ids: string[],
  m: Float32Array,
  labels: Labelled[],
  opts: { hard?: string[]; tokenizerOf?: (id: string) => string } = {},
): QualityReport {
  const n = ids.length;
  const idx = new Map(ids.map((id, i) => [id, i]));
  const hard = opts.hard ?? ['finetune-heavy', 'finetune-chain'];
  const score = (a: string, b: string) => {
    const i = idx.get(a);
    const j = idx.get(b);
    return i === undefined || j === undefined ? -1 : m[i * n + j];
  };
  const byRel = new Map<string, number[]>();
  const pos: number[] = [];
  const posEasy: number[] = [];
  for (const l of labels) {
    if (l.base === l.id) continue;
    const s = score(l.base, l.id);
    if (s < 0) continue;
    if (!byRel.has(l.relation)) byRel.set(l.relation, []);
    byRel.get(l.relation)!.push(s);
    pos.push(s);
    if (!hard.includes(l.relation)) posEasy.push(s);
  }
  const neg: number[] = [];
  let sameTok = 0;
  const bases = labels.filter((l) => l.base === l.id);
  for (const b of bases) {
    for (const l of labels) {
      if (l.family === b.family) continue;
      const s = score(b.id, l.id);
      if (s < 0) continue;
      neg.push(s);
      if (opts.tokenizerOf && opts.tokenizerOf(b.id) === opts.tokenizerOf(l.id)) sameTok++;
    }
  }
  const nearest: QualityReport['nearest'] = [];
  for (const l of labels) {
    const i = idx.get(l.id);
    if (i === undefined || m[i * n + i] < 0) continue;
    let best = -1;
    let bestS = -Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      // Symmetrised: the better of the two directions.
      const s = Math.max(m[i * n + j], m[j * n + i]);
      if (s > bestS) {
        bestS = s;
        best = j;
      }
    }
    if (best < 0) continue;
    const other = labels.find((x) => x.id === ids[best]);
    nearest.push({ model: l.id, family: l.family, relation: l.relation, nearest: ids[best], score: bestS, same_family: other?.family === l.family });
  }
  const relations = [...byRel.entries()].map(([relation, v]) => ({
    relation,
    count: v.length,
    mean: v.reduce((a, b) => a + b, 0) / v.length,
    min: Math.min(...v),
    max: Math.max(...v),
  }));
  relations.sort((a, b) => b.mean - a.mean);
  return {
    relations,
    auc_all: auc(pos, neg),
    auc_without_hard: auc(posEasy, neg),
    hard_relations: hard,
    positives: pos.length,
    negatives: neg.length,
    same_tokenizer_negatives: sameTok,
    nearest,
    nearest_same_family_rate: nearest.length ? nearest.filter((x) => x.same_family).length / nearest.length : 0,
    reupload_scores: byRel.get('reupload') ?? [],
  };
}
