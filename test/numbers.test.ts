import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { auc, mannWhitneyCount, roc } from '../src/analysis/roc.js';
import { readCsvFile } from '../src/util/csv.js';
import { fmt, formatScore, num, pct, pyFloat, roundTo, scoresJson } from '../src/util/format.js';
import { mannWhitneyU } from '../src/analysis/stats.js';
import { lineageQuality } from '../src/methods/quality.js';

/** AUC by brute force over all pairs, ties half. */
function pairAuc(pos: number[], neg: number[]): number {
  let s = 0;
  for (const p of pos) for (const n of neg) s += p > n ? 1 : p === n ? 0.5 : 0;
  return s / (pos.length * neg.length);
}

describe('the one AUC (src/analysis/roc.ts)', () => {
  const pos = [0.9, 0.8, 0.8, 0.5, 0.3, 0.3, 0.0059];
  const neg = [0.8, 0.4, 0.3, 0.3, 0.1, 0.005900000000000001, 0];

  it('is the pairwise probability with ties counted half, the ROC area and U / (n·m)', () => {
    // 0.0059 vs 0.005900000000000001 tie after rounding to 10 decimals, not as raw doubles.
    const rounded = neg.map((x) => Number(x.toFixed(10)));
    expect(auc(pos, neg)).toBe(pairAuc(pos, rounded));
    expect(auc(pos, neg, null)).toBe(pairAuc(pos, neg));
    expect(auc(pos, neg)).not.toBe(auc(pos, neg, null));
    expect(roc(pos, neg).auc).toBe(auc(pos, neg));
    expect(roc(pos, neg).tied_pairs).toBe(2 + 4 + 1);
    expect(mannWhitneyCount(pos, neg, null)).toEqual({ u: pairAuc(pos, neg) * 49, ties: 6 });
    expect(mannWhitneyU(pos, neg).u).toBe(pairAuc(pos, neg) * 49);
    expect(auc([], neg)).toBeNull();
  });

  it('is the AUC the lineage quality report gives', () => {
    // base a (family f) with derivatives a1, a2; base b (family g). M[base][model].
    const ids = ['a', 'a1', 'a2', 'b'];
    const meta = [
      { id: 'a', family: 'f', base: 'a', relation: 'base' },
      { id: 'a1', family: 'f', base: 'a', relation: 'finetune-light' },
      { id: 'a2', family: 'f', base: 'a', relation: 'finetune-heavy' },
      { id: 'b', family: 'g', base: 'b', relation: 'base' },
    ];
    const m = Float32Array.from([1, 0.6, 0.2, 0.2, 0.6, 1, 0.5, 0.1, 0.2, 0.5, 1, 0.3, 0.2, 0.1, 0.3, 1]);
    const q = lineageQuality(ids, m, meta);
    const f = Math.fround;
    // Positives M[a][a1], M[a][a2]; negatives M[a][b], M[b][a], M[b][a1], M[b][a2]: 0.6 wins 4, 0.2 wins 1 and ties 2.
    expect(q.auc_all).toBe(auc([f(0.6), f(0.2)], [f(0.2), f(0.2), f(0.1), f(0.3)]));
    expect(q.auc_all).toBe(6 / 8);
    expect(q.auc_without_hard).toBe(1);
  });
});

const ANCHOR = path.resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'anchor');
const published = ['base_vs_derived_qwen2.5-0.5b.csv', 'base_vs_derived_tinyllama-1.1b-chat.csv'].map((f) => path.join(ANCHOR, f));

describe('the one number formatter (src/util/format.ts)', () => {
  it('writes floats as Python does after round()', () => {
    expect([pyFloat(1, 4), pyFloat(0.23600000001, 4), pyFloat(0.24854, 4), pyFloat(2, 6), pyFloat(1e-7, 6)]).toEqual(['1.0', '0.236', '0.2485', '2.0', '0.0']);
    expect([formatScore(-0.5), formatScore(-1), formatScore(0.3181), formatScore(1 / 3)]).toEqual(['-1.0', '-1.0', '0.3181', '0.333333']);
    expect(scoresJson([0.236, 0.2485, 1, 0.1 + 0.2])).toBe('[0.236, 0.2485, 1.0, 0.3]');
    expect(scoresJson([])).toBe('[]');
    expect([roundTo(0.005900000000000001, 10), roundTo(1 / 3, 6)]).toEqual([0.0059, 0.333333]);
  });

  it('formats tables, labels and shares', () => {
    expect([fmt(0.5), fmt(1 / 3, 6), fmt(null), fmt(undefined), fmt(NaN)]).toEqual(['0.5000', '0.333333', '-', '-', '-']);
    expect([num(0.25), num(1 / 3), num(3), num(123456), num(null), num(Infinity), num(0.123456, 5)]).toEqual(['0.25', '0.3333', '3', '1.23e+5', '-', '-', '0.12346']);
    expect([pct(0.1234), pct(1), pct(null)]).toEqual(['12.3%', '100.0%', '-']);
  });

  it.skipIf(!fs.existsSync(published[0]))('re-renders the pair scores of the published result files byte for byte', () => {
    let n = 0;
    for (const file of published) {
      for (const row of readCsvFile(file).rows) {
        const text = row.pair_scores_json;
        expect(scoresJson(JSON.parse(text) as number[])).toBe(text);
        n++;
      }
    }
    expect(n).toBeGreaterThan(90);
  });
});
