import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, ROOT, runCli, tmpDir } from './helpers/cli.js';
import { averageRanks, mannWhitneyU, pearson, spearman, welchTTest } from '../src/analysis/stats.js';
import { roc } from '../src/analysis/roc.js';
import { loadMatrix, loadModelInfo, loadScores } from '../src/analysis/input.js';
import { parseCsv, stringifyCsv } from '../src/util/csv.js';
import { ModelprintError } from '../src/errors.js';

/*
 * Expected values below were computed independently with pandas 2 / scipy / scikit-learn by
 * test/fixtures/analysis/expected.py (run it in that folder to reproduce them): pandas
 * cut + describe for groups and summaries, scipy.stats.pearsonr / spearmanr /
 * ttest_ind(equal_var=False) / mannwhitneyu(method='asymptotic', use_continuity=True),
 * sklearn.metrics.roc_auc_score / roc_curve (argmax of J) for ROC, numpy for families.
 */

const FIX = path.join(ROOT, 'test', 'fixtures', 'analysis');
const fx = (name: string) => path.join(FIX, name);
const ANCHOR = path.resolve(ROOT, '..', 'shared', 'data', 'anchor');
const hasAnchor = fs.existsSync(path.join(ANCHOR, 'overlap_qwen_same.csv'));
const an = (name: string) => path.join(ANCHOR, name);

function cliJson<T>(args: string[]): T {
  const r = runCli([...args, '--json']);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return parseJson<T>(r);
}

function cliError(args: string[]): { code: number; error: { code: string; message: string; hint?: string; subject?: string } } {
  const r = runCli([...args, '--json']);
  return { code: r.code, error: parseJson<{ error: { code: string; message: string } }>(r).error };
}

type Group = { label: string; lo: number | null; hi: number | null; count: number; mean: number | null; median: number | null; std: number | null; min: number | null; max: number | null };
type Side = {
  rows: number;
  valid: number;
  groups: Group[];
  low: { count: number; mean: number };
  high: { count: number; mean: number };
  correlation: { pearson: { r: number; p: number }; spearman: { rho: number; p: number } };
  strategies: { name: string; kept: number }[];
  confidence_weighted: { mean: number };
  anomalies: { model: string; kind: string }[];
};
type DownloadsJson = {
  same: Side;
  diff: Side;
  low_ratio: number;
  tests: { welch: { t: number; p: number; df: number }; mann_whitney: { u: number; p: number } };
};

describe('csv', () => {
  it('round-trips quoted fields with commas, quotes and newlines', () => {
    const text = stringifyCsv(['a', 'json', 'msg'], [
      ['x', '[0.1, 0.2]', 'said "hi",\nthen left'],
      ['y', '[]', null],
    ]);
    const t = parseCsv(text, 'mem.csv');
    expect(t.header).toEqual(['a', 'json', 'msg']);
    expect(t.rows).toEqual([
      { a: 'x', json: '[0.1, 0.2]', msg: 'said "hi",\nthen left' },
      { a: 'y', json: '[]', msg: '' },
    ]);
  });

  it('reports ragged rows and missing columns as E_INPUT naming file, line and column', () => {
    expect(() => parseCsv('a,b\n1,2,3\n', 'bad.csv')).toThrow(/bad\.csv: line 2 has 3 fields/);
    try {
      loadScores(fx('matrix.csv'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ModelprintError);
      const err = e as ModelprintError;
      expect(err.code).toBe('E_INPUT');
      expect(err.message).toContain('matrix.csv');
      expect(err.message).toMatch(/derived_model_name|avg_overlap_ratio/);
      expect(err.hint).toBeTruthy();
    }
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'x.csv'), 'derived_model_name,avg_overlap_ratio\nm1,0.5\nm2,abc\n');
    expect(() => loadScores(path.join(dir, 'x.csv'))).toThrow(/x\.csv: line 3, column "avg_overlap_ratio": not a number/);
  });
});

describe('stats against scipy', () => {
  // scipy.stats on x = [1, 2, 3, 4, 5.5], y = [2, 4, 6, 9, 10, 12] (and z = [2, 1, 4, 3, 7, 5] vs 1..6).
  it('Welch, Pearson, Spearman, Mann-Whitney', () => {
    const w = welchTTest([1, 2, 3, 4, 5.5], [2, 4, 6, 9, 10, 12]);
    expect(w.t).toBeCloseTo(-2.333246244934846, 10); // ttest_ind(equal_var=False)
    expect(w.p).toBeCloseTo(0.05110351196292814, 10);
    expect(w.df).toBeCloseTo(7.255669252988692, 8);
    const p = pearson([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 7, 5]);
    expect(p.r).toBeCloseTo(0.7917946548886295, 12); // pearsonr
    expect(p.p).toBeCloseTo(0.06051140336275671, 10);
    // spearmanr([1,1,2,3,5,8,8,9], [3,1,4,1,5,9,2,6]) = (0.6000110195873174, 0.1158315371318012)
    const s = spearman([1, 1, 2, 3, 5, 8, 8, 9], [3, 1, 4, 1, 5, 9, 2, 6]);
    expect(s.rho).toBeCloseTo(0.6000110195873174, 12);
    expect(s.p).toBeCloseTo(0.1158315371318012, 10);
    // mannwhitneyu([1,2,2,3,5,7], [2,3,3,4,8,9,10], alternative='two-sided', method='asymptotic',
    // use_continuity=True) = (U 11.0, p 0.16996790760227598)
    const m = mannWhitneyU([1, 2, 2, 3, 5, 7], [2, 3, 3, 4, 8, 9, 10]);
    expect(m.u).toBe(11);
    expect(m.p).toBeCloseTo(0.16996790760227598, 10);
    expect(averageRanks([3, 1, 3, 2])).toEqual([3.5, 1, 3.5, 2]);
  });
});

describe('analyze summary', () => {
  it('matches pandas on a fixture with failures and multi-line quoted fields', () => {
    const r = cliJson<{
      rows: number;
      valid: number;
      invalid: number;
      invalid_rate: number;
      mean: number;
      median: number;
      std: number;
      min: number;
      max: number;
      distribution: { bins: { label: string; count: number; share: number }[] };
      lowest: { model: string }[];
      highest: { model: string }[];
    }>(['analyze', 'summary', '--input', fx('summary.csv')]);
    expect(r).toMatchObject({ rows: 14, valid: 12, invalid: 2 });
    expect(r.invalid_rate).toBeCloseTo(2 / 14, 12);
    expect(r.mean).toBeCloseTo(0.40761666666666657, 12);
    expect(r.median).toBeCloseTo(0.30905, 12);
    expect(r.std).toBeCloseTo(0.36492887933088686, 12);
    expect(r.min).toBe(0.0009);
    expect(r.max).toBe(1);
    // pd.cut(right=True, include_lowest=True) over 0,0.1,0.3,0.5,0.7,1.0
    expect(r.distribution.bins.map((b) => b.count)).toEqual([4, 2, 2, 1, 3]);
    expect(r.distribution.bins[0].share).toBeCloseTo(4 / 12, 12);
    expect(r.lowest.map((m) => m.model)).toEqual(['user13/model-13', 'user5/model-5', 'user2/model-2', 'user9/model-9', 'user7/model-7']);
    expect(r.highest.map((m) => m.model)).toEqual(['user4/model-4', 'user11/model-11', 'user3/model-3', 'user10/model-10', 'user8/model-8']);
  });

  it('names a missing file and a missing score column', () => {
    const nf = cliError(['analyze', 'summary', '--input', fx('nope.csv')]);
    expect(nf.code).toBe(1);
    expect(nf.error.code).toBe('E_NOT_FOUND');
    expect(nf.error.message).toContain('nope.csv');
    const col = cliError(['analyze', 'summary', '--input', fx('summary.csv'), '--score-column', 'avg_score']);
    expect(col.error.code).toBe('E_INPUT');
    expect(col.error.message).toMatch(/summary\.csv: missing column "avg_score"/);
    expect(col.error.hint).toMatch(/--score-column/);
  });
});

describe('analyze downloads', () => {
  function checkSide(s: Side, exp: { groups: (Omit<Group, 'lo' | 'hi'>)[] }) {
    expect(s.groups.map((g) => g.label)).toEqual(['0', '(0,10]', '(10,100]', '(100,1000]', '(1000,∞)']);
    expect(s.groups.map((g) => [g.lo, g.hi])).toEqual([[null, 0], [0, 10], [10, 100], [100, 1000], [1000, null]]);
    s.groups.forEach((g, i) => {
      const e = exp.groups[i];
      expect(g.count).toBe(e.count);
      for (const k of ['mean', 'median', 'std', 'min', 'max'] as const) {
        if (e[k] === null) expect(g[k]).toBeNull();
        else expect(g[k]).toBeCloseTo(e[k] as number, 12);
      }
    });
  }

  it('matches pandas cut + describe and scipy tests on fixtures', () => {
    const r = cliJson<DownloadsJson>(['analyze', 'downloads', '--same', fx('downloads_same.csv'), '--diff', fx('downloads_diff.csv')]);
    // expected.py → downloads.same.groups (group '0' = 0 or unknown downloads)
    checkSide(r.same, {
      groups: [
        { label: '0', count: 4, mean: 0.8334750000000001, median: 0.85955, std: 0.1216146749642767, min: 0.6648, max: 0.95 },
        { label: '(0,10]', count: 6, mean: 0.3161166666666667, median: 0.29385, std: 0.18872358004941156, min: 0.0714, max: 0.572 },
        { label: '(10,100]', count: 4, mean: 0.40732499999999994, median: 0.3958, std: 0.12095115749756179, min: 0.2717, max: 0.566 },
        { label: '(100,1000]', count: 3, mean: 0.45449999999999996, median: 0.4228, std: 0.22374063108876763, min: 0.2483, max: 0.6924 },
        { label: '(1000,∞)', count: 1, mean: 0.05, median: 0.05, std: null, min: 0.05, max: 0.05 },
      ],
    });
    checkSide(r.diff, {
      groups: [
        { label: '0', count: 4, mean: 0.010775, median: 0.0083, std: 0.009954689012386742, min: 0.0018, max: 0.0247 },
        { label: '(0,10]', count: 5, mean: 0.01778, median: 0.0179, std: 0.007719261622720141, min: 0.0067, max: 0.0282 },
        { label: '(10,100]', count: 3, mean: 0.018900000000000004, median: 0.0228, std: 0.012707084638106414, min: 0.0047, max: 0.0292 },
        { label: '(100,1000]', count: 3, mean: 0.027866666666666668, median: 0.0292, std: 0.002484619353811229, min: 0.025, max: 0.0294 },
        { label: '(1000,∞)', count: 1, mean: 0.0085, median: 0.0085, std: null, min: 0.0085, max: 0.0085 },
      ],
    });
    expect(r.same).toMatchObject({ rows: 20, valid: 18, low: { count: 10 }, high: { count: 4 } });
    expect(r.same.low.mean).toBeCloseTo(0.5230599999999999, 12);
    expect(r.same.high.mean).toBeCloseTo(0.353375, 12);
    expect(r.diff.low.mean).toBeCloseTo(0.014666666666666668, 12);
    expect(r.low_ratio).toBeCloseTo(35.663181818181805, 9);
    // pearsonr / spearmanr over rows with known downloads
    expect(r.same.correlation.pearson.r).toBeCloseTo(-0.3856125090075131, 12);
    expect(r.same.correlation.pearson.p).toBeCloseTo(0.12635090752949835, 10);
    expect(r.same.correlation.spearman.rho).toBeCloseTo(-0.39803559947901945, 12);
    expect(r.same.correlation.spearman.p).toBeCloseTo(0.11357142246224362, 10);
    expect(r.diff.correlation.pearson.r).toBeCloseTo(-0.28912864515669773, 12);
    expect(r.diff.correlation.spearman.p).toBeCloseTo(0.30284072880906526, 10);
    expect(r.tests.welch.t).toBeCloseTo(6.9735629115316184, 9);
    expect(r.tests.welch.df).toBeCloseTo(17.051590442230506, 8);
    expect(r.tests.welch.p / 2.2073136189441403e-6).toBeCloseTo(1, 6);
    expect(r.tests.mann_whitney.u).toBe(288);
    expect(r.tests.mann_whitney.p / 7.360628008154184e-7).toBeCloseTo(1, 8);
    expect(r.same.strategies.map((s) => [s.name, s.kept])).toEqual([['conservative', 4], ['balanced', 8]]);
    expect(r.diff.strategies.map((s) => s.kept)).toEqual([4, 7]);
    expect(r.same.confidence_weighted.mean).toBeCloseTo(0.2290661111111111, 12);
    expect(r.diff.confidence_weighted.mean).toBeCloseTo(0.010711875, 12);
    // A re-upload-like copy; no mislabel finding: fam/m14's overlap (0.05) is above every
    // different-family overlap, and low overlap on the different side is expected, not a finding.
    expect(r.same.anomalies.map((a) => [a.model, a.kind])).toEqual([['fam/m1', 'low_downloads_high_overlap']]);
    expect(r.diff.anomalies).toEqual([]);
  });

  it('joins downloads from hub metadata and writes a report folder', () => {
    const out = tmpDir();
    const direct = cliJson<DownloadsJson>(['analyze', 'downloads', '--same', fx('downloads_same.csv')]);
    const joined = cliJson<DownloadsJson & { output: { files: string[] } }>([
      'analyze', 'downloads', '--same', fx('nodownloads_same.csv'), '--hub-metadata', fx('hub.csv'), '--output-dir', out,
    ]);
    expect(joined.same.groups).toEqual(direct.same.groups);
    expect(joined.same.correlation).toEqual(direct.same.correlation);
    for (const f of ['dashboard.html', 'report.json', 'downloads_scatter.svg', 'overlap_cdf.svg', 'overlap_histogram.svg', 'downloads_box.svg']) {
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
    expect(fs.readFileSync(path.join(out, 'downloads_scatter.svg'), 'utf8')).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const missing = cliError(['analyze', 'downloads', '--same', fx('nodownloads_same.csv')]);
    expect(missing.error.code).toBe('E_INPUT');
    expect(missing.error.message).toContain('derived_model_downloads');
    expect(missing.error.hint).toMatch(/--hub-metadata/);
  });
});

describe('analyze roc', () => {
  it('matches scikit-learn, ties counted half, float-noise ties merged with a digits option', () => {
    type R = { auc: number; same_count: number; diff_count: number; best_threshold: number; accuracy: number; precision: number; recall: number; specificity: number; f1: number; target_tpr_threshold: number; table: unknown[] };
    const r = cliJson<R>(['analyze', 'roc', '--same', fx('roc_same.csv'), '--diff', fx('roc_diff.csv'), '--tie-decimals', '10']);
    // roc_auc_score on scores rounded to 10 decimals (0.005900000000000001 ties 0.0059)
    expect(r.auc).toBeCloseTo(0.8045454545454545, 12);
    expect(r).toMatchObject({ same_count: 11, diff_count: 10, best_threshold: 0.05, target_tpr_threshold: 0.004 });
    expect(r.accuracy).toBeCloseTo(0.7619047619047619, 12);
    expect(r.precision).toBeCloseTo(0.8, 12);
    expect(r.recall).toBeCloseTo(0.7272727272727273, 12);
    expect(r.specificity).toBeCloseTo(0.8, 12);
    expect(r.f1).toBeCloseTo(0.761904761904762, 12);
    expect(r.table.length).toBeGreaterThan(5);
    // roc_auc_score on the raw doubles (the CLI default)
    expect(cliJson<R>(['analyze', 'roc', '--same', fx('roc_same.csv'), '--diff', fx('roc_diff.csv')]).auc).toBeCloseTo(0.8090909090909091, 12);
    const raw = roc([0.9, 0.8, 0.8, 0.5, 0.3, 0.3, 0.2, 0.05, 0.01, 0.004, 0.005900000000000001], [0.004, 0.004, 0.01, 0.02, 0.3, 0.001, 0.002, 0.0059, 0.5, 0.003], { digits: null });
    expect(raw.auc).toBeCloseTo(0.8090909090909091, 12);
  });
});

describe('analyze families', () => {
  // expected.py → families (pair score = mean of both directions; -1 model and model without info left out)
  const intra = [
    { label: 'A', count: 3, mean: 0.684965, min: 0.5, max: 0.815207, variance: 0.018056545506 },
    { label: 'B', count: 3, mean: 0.5519595, min: 0.378764, max: 0.8173805000000001, variance: 0.03631684377050001 },
  ];
  const inter = [
    { label: 'B vs C', count: 3, mean: 0.013123666666666665, min: 0.009269, max: 0.0191065, variance: 1.8393947722222218e-5 },
    { label: 'A vs C', count: 3, mean: 0.01119, min: 0.0011475, max: 0.016741, variance: 5.061299316666667e-5 },
    { label: 'A vs B', count: 9, mean: 0.008102555555555556, min: 0.0040435, max: 0.011587, variance: 7.899438858024692e-6 },
  ];
  const types = [
    { label: 'Chat-Quantized', count: 1, mean: 0.815207 },
    { label: 'Base-Quantized', count: 1, mean: 0.7396879999999999 },
    { label: 'Base-Chat', count: 3, mean: 0.446166, variance: 0.002541739928000001 },
  ];
  type G = { label: string; count: number; mean: number; min: number; max: number; variance: number; pairs: { score: number; a: string; b: string }[] };
  function check(got: G[], exp: Partial<G>[]) {
    expect(got.map((g) => g.label)).toEqual(exp.map((g) => g.label));
    got.forEach((g, i) => {
      expect(g.count).toBe(exp[i].count);
      for (const k of ['mean', 'min', 'max', 'variance'] as const) if (exp[i][k] !== undefined) expect(g[k]).toBeCloseTo(exp[i][k] as number, 12);
      const scores = g.pairs.map((p) => p.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
    });
  }

  it('matches numpy on a CSV matrix with info JSON and writes the reports', () => {
    const out = tmpDir();
    const r = cliJson<{ intrafamily: G[]; interfamily: G[]; type_pairs: G[]; ignored_models: string[]; failed_models: string[]; pairs: number }>([
      'analyze', 'families', '--matrix', fx('matrix.csv'), '--model-info', fx('model_info.json'), '--output-dir', out,
    ]);
    check(r.intrafamily, intra);
    check(r.interfamily, inter);
    check(r.type_pairs, types);
    expect(r.ignored_models).toEqual(['x/noinfo']);
    expect(r.failed_models).toEqual(['a/broken']);
    expect(r.pairs).toBe(21);
    for (const f of ['dashboard.html', 'report.json', 'heatmap.svg', 'intrafamily_box.svg', 'interfamily_quartiles.svg', 'intrafamily.txt', 'interfamily.txt', 'type_pairs.txt']) {
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
    const txt = fs.readFileSync(path.join(out, 'intrafamily.txt'), 'utf8');
    expect(txt).toMatch(/A: 3 pairs, mean 0\.684965/);
    expect(txt).toMatch(/0\.815207 {2}a\/chat \[A, Chat\] {2}<-> {2}a\/q4 \[A, Quantized\]/);
    const html = fs.readFileSync(path.join(out, 'dashboard.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
  });

  it('reads the zoo models.csv and the runner JSON (method / metric)', () => {
    const csvInfo = cliJson<{ intrafamily: G[] }>(['analyze', 'families', '--matrix', fx('matrix.csv'), '--model-info', fx('models.csv')]);
    check(csvInfo.intrafamily, intra);
    const json = cliJson<{ intrafamily: G[]; source: { method: string; metric: string } }>(['analyze', 'families', '--matrix', fx('runner.json'), '--model-info', fx('model_info.json')]);
    expect(json.source).toMatchObject({ method: 'bottomk', metric: 'overlap' });
    check(json.intrafamily, intra);
    const m = loadMatrix(fx('runner.json'), { method: 'input_output', metric: 'l1' });
    expect(m.models).toHaveLength(7);
    expect(m.source).toMatchObject({ method: 'input_output', metric: 'l1' });
    expect(() => loadMatrix(fx('runner.json'), { method: 'nope' })).toThrow(
      expect.objectContaining({ code: 'E_NOT_FOUND', hint: 'choose --method from: bottomk, input_output' }),
    );
    expect(loadModelInfo(fx('models.csv'))).toHaveLength(8);
  });
});

describe('reference figures on the published data (shared/data/anchor)', () => {
  it.skipIf(!hasAnchor)('§5 TinyLlama downloads table and low-download means', () => {
    const r = cliJson<DownloadsJson>(['analyze', 'downloads', '--same', an('overlap_downloads_llama_same.csv'), '--diff', an('overlap_downloads_llama_diff.csv')]);
    const g = (s: Side, label: string) => s.groups.find((x) => x.label === label)!;
    const round = (x: number | null) => (x === null ? null : Math.round(x * 1e4) / 1e4);
    const row = (x: Group) => [x.count, round(x.mean), round(x.median), round(x.std), round(x.min), round(x.max)];
    expect(row(g(r.same, '(0,10]'))).toEqual([51, 0.4914, 0.5147, 0.3644, 0.0024, 1.0]);
    expect(row(g(r.diff, '(0,10]'))).toEqual([67, 0.0077, 0.0068, 0.0056, 0.0036, 0.0484]);
    expect(row(g(r.same, '(10,100]'))).toEqual([14, 0.6242, 0.6747, 0.2932, 0.173, 1.0]);
    expect(row(g(r.diff, '(10,100]'))).toEqual([7, 0.0102, 0.0076, 0.0091, 0.002, 0.0299]);
    expect(g(r.same, '(100,1000]').count).toBe(0);
    expect(row(g(r.diff, '(100,1000]'))).toEqual([1, 0.01, 0.01, null, 0.01, 0.01]);
    expect(row(g(r.same, '(1000,∞)'))).toEqual([1, 0.7348, 0.7348, null, 0.7348, 0.7348]);
    expect(row(g(r.diff, '(1000,∞)'))).toEqual([5, 0.0059, 0.0066, 0.002, 0.0026, 0.0074]);
    expect(r.same.low.count).toBe(89);
    expect(round(r.same.low.mean)).toBe(0.5314);
    expect(r.diff.low.count).toBe(96);
    expect(round(r.diff.low.mean)).toBe(0.0074);
    // METHODS quotes 71.8× = 0.5314 / 0.0074 (means rounded first); the unrounded ratio is 72.26×.
    expect(0.5314 / 0.0074).toBeCloseTo(71.8, 1);
    expect(r.low_ratio).toBeCloseTo(0.5313842696629213 / 0.007354166666666648, 9);
  });

  it.skipIf(!hasAnchor)('§5 base-vs-derived summaries (Qwen2.5-0.5B, TinyLlama)', () => {
    type S = { rows: number; valid: number; mean: number; median: number; min: number; max: number; std: number };
    const q = cliJson<S>(['analyze', 'summary', '--input', an('base_vs_derived_qwen2.5-0.5b.csv')]);
    expect(q).toMatchObject({ rows: 54, valid: 29 });
    expect([q.mean, q.median, q.min, q.max, q.std].map((x) => Math.round(x * 1e4) / 1e4)).toEqual([0.2847, 0.2415, 0.0009, 1.0, 0.2901]);
    const t = cliJson<S>(['analyze', 'summary', '--input', an('base_vs_derived_tinyllama-1.1b-chat.csv')]);
    expect(t).toMatchObject({ rows: 41, valid: 28 });
    expect([t.mean, t.median, t.min, t.max, t.std].map((x) => Math.round(x * 1e4) / 1e4)).toEqual([0.6475, 0.6903, 0.1216, 1.0, 0.2507]);
  });

  it.skipIf(!hasAnchor)('§6 ROC AUC (Qwen 103/104, TinyLlama 104/109)', () => {
    type R = { auc: number; same_count: number; diff_count: number; tied_pairs: number };
    // Raw doubles: 9 tied pairs at 0.004 → METHODS' 0.98847.
    const valid = (f: string) => loadScores(an(f)).rows.filter((x) => x.valid).map((x) => x.score as number);
    const qRaw = roc(valid('overlap_qwen_same.csv'), valid('overlap_qwen_diff.csv'), { digits: null });
    expect(qRaw).toMatchObject({ same_count: 103, diff_count: 104, tied_pairs: 9 });
    expect(qRaw.auc).toBeCloseTo(0.98847, 5);
    // The CLI compares scores as stored, as METHODS §6 specifies: 0.9885.
    const qCli = cliJson<R>(['analyze', 'roc', '--same', an('overlap_qwen_same.csv'), '--diff', an('overlap_qwen_diff.csv')]);
    expect(qCli).toMatchObject({ same_count: 103, diff_count: 104, tied_pairs: 9 });
    expect(qCli.auc).toBeCloseTo(0.98847, 5);
    // --tie-decimals 10: 0.005900000000000001 (same) and 0.0059 (diff) are both 59/10000 — a 10th tie → the published 0.98842.
    const q = cliJson<R>(['analyze', 'roc', '--same', an('overlap_qwen_same.csv'), '--diff', an('overlap_qwen_diff.csv'), '--tie-decimals', '10']);
    expect(q).toMatchObject({ same_count: 103, diff_count: 104, tied_pairs: 10 });
    expect(q.auc).toBeCloseTo(0.98842, 5);
    const t = cliJson<R>(['analyze', 'roc', '--same', an('overlap_llama_same.csv'), '--diff', an('overlap_llama_diff.csv')]);
    expect(t).toMatchObject({ same_count: 104, diff_count: 109 });
    expect(t.auc).toBeCloseTo(0.97711, 5);
  });
});
