import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, runCli, tmpDir, ROOT } from './helpers/cli.js';
import { familiesFromBaseModel, loadModelInfo } from '../src/analysis/input.js';
import { csvLine, readCsvFile } from '../src/util/csv.js';

const fx = (f: string) => path.join(ROOT, 'test', 'fixtures', 'analysis', f);
const ANCHOR = '/work/shared/data/anchor';
const HAS_ANCHOR = fs.existsSync(path.join(ANCHOR, 'base_vs_derived_qwen2.5-0.5b.csv'));

function cli<T>(args: string[]): T {
  const r = runCli([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return parseJson<T>(r);
}

describe('analyses that chain', () => {
  it('analyze roc --input --label-column gives what --same/--diff give on the same rows', () => {
    const dir = tmpDir();
    // The fixtures have CRLF line ends and quoted fields: go through the CSV reader and writer.
    const same = readCsvFile(fx('roc_same.csv'), 'csv');
    const diff = readCsvFile(fx('roc_diff.csv'), 'csv');
    expect(same.header).toEqual(diff.header);
    const one = path.join(dir, 'all.csv');
    const row = (r: Record<string, string>, label: string) => csvLine([...same.header.map((h) => r[h]), label]);
    fs.writeFileSync(one, csvLine([...same.header, 'same_family']) + same.rows.map((r) => row(r, 'true')).join('') + diff.rows.map((r) => row(r, 'no')).join(''));
    type Roc = { auc: number; best_threshold: number; same_count: number; diff_count: number; table: unknown[]; label_column: string | null };
    const split = cli<Roc>(['analyze', 'roc', '--same', fx('roc_same.csv'), '--diff', fx('roc_diff.csv')]);
    const labelled = cli<Roc>(['analyze', 'roc', '--input', one, '--label-column', 'same_family']);
    expect(labelled).toMatchObject({ auc: split.auc, best_threshold: split.best_threshold, same_count: split.same_count, diff_count: split.diff_count, label_column: 'same_family' });
    expect(labelled.table.length).toBeGreaterThan(10);
    // The threshold table is printed only when asked for.
    const plain = runCli(['analyze', 'roc', '--input', one, '--label-column', 'same_family']);
    expect(plain.stdout).not.toContain('│ threshold');
    expect(plain.stderr).toContain('print them with --thresholds');
    expect(runCli(['analyze', 'roc', '--input', one, '--label-column', 'same_family', '--thresholds']).stdout).toContain('threshold');
    // A bad label names its line.
    fs.appendFileSync(one, row(same.rows[0], 'maybe'));
    const bad = runCli(['analyze', 'roc', '--input', one, '--label-column', 'same_family', '--json']);
    expect(bad.code).toBe(1);
    expect(parseJson<{ error: { code: string; message: string } }>(bad).error.message).toMatch(/line \d+, column "same_family": "maybe" is neither true nor false/);
    // Half of the pair is a usage error.
    expect(runCli(['analyze', 'roc', '--same', fx('roc_same.csv')]).code).toBe(2);
  });

  it('analyze summary breaks failures down by error code', () => {
    const r = cli<{ invalid: number; failures: { code: string; count: number; share: number; models: string[] }[] }>(['analyze', 'summary', '--input', fx('summary.csv')]);
    const total = r.failures.reduce((a, g) => a + g.count, 0);
    expect(total).toBe(r.invalid);
    expect(r.failures.map((g) => g.code)).toContain('load_failed');
    for (let i = 1; i < r.failures.length; i++) expect(r.failures[i - 1].count).toBeGreaterThanOrEqual(r.failures[i].count);
    const text = runCli(['analyze', 'summary', '--input', fx('summary.csv')]).stdout;
    expect(text).toContain('failures by error code');
  });

  it.skipIf(!HAS_ANCHOR)('counts the published Qwen failures (no error_code column) as unrecorded', () => {
    const r = cli<{ rows: number; invalid: number; failures: { code: string; count: number }[] }>(['analyze', 'summary', '--input', path.join(ANCHOR, 'base_vs_derived_qwen2.5-0.5b.csv')]);
    expect(r.invalid).toBeGreaterThan(0);
    expect(r.failures).toEqual([{ code: 'unrecorded', count: r.invalid, share: r.invalid / r.rows, models: expect.any(Array) }]);
  });

  it('finds the score column of every result CSV modelprint writes', () => {
    const dir = tmpDir();
    const text = path.join(dir, 'text.csv');
    fs.writeFileSync(
      text,
      'base_model_name,derived_model_name,num_pairs,avg_pal_k,avg_lev_sim,avg_lcs_ratio,avg_score,pair_metrics_json,error_code,error_message\n' +
        'b,d1,2,0.5,0.4,0.3,0.45,[],,\nb,d2,0,,,,-1.0,[],missing_tokenizer,no tokenizer\n',
    );
    const t = cli<{ score_column: string; mean: number; failures: { code: string }[] }>(['analyze', 'summary', '--input', text]);
    expect(t).toMatchObject({ score_column: 'avg_score', mean: 0.45, failures: [{ code: 'missing_tokenizer' }] });
    expect(cli<{ score_column: string }>(['analyze', 'summary', '--input', fx('summary.csv')]).score_column).toBe('avg_overlap_ratio');
    const nearest = path.join(dir, 'nearest.csv');
    fs.writeFileSync(nearest, 'model_id,family,relation,nearest,score,same_family\na,A,base,b,0.900000,true\nc,C,base,a,0.100000,false\n');
    expect(cli<{ score_column: string; mean: number }>(['analyze', 'summary', '--input', nearest])).toMatchObject({ score_column: 'score', mean: 0.5 });
    const none = runCli(['analyze', 'summary', '--input', fx('models.csv')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no score column (looked for avg_overlap_ratio, avg_score, score)');
  });

  it('derives families from base_model links (merges join both parents)', () => {
    const fam = familiesFromBaseModel([
      { model_id: 'org/base', base_model: 'NONE' },
      { model_id: 'org/chat', base_model: 'org/base' },
      { model_id: 'x/q4', base_model: 'org/chat' },
      { model_id: 'other/base', base_model: '' },
      { model_id: 'm/merge', base_model: 'other/base; org/chat' },
      { model_id: 'lone', base_model: 'NONE' },
      { model_id: 'ext/ft', base_model: 'upstream/unlisted' },
    ]);
    expect(fam.get('x/q4')).toBe(fam.get('org/base'));
    expect(fam.get('m/merge')).toBe(fam.get('org/base'));
    expect(fam.get('other/base')).toBe(fam.get('org/base'));
    expect(fam.get('lone')).toBe('lone');
    expect(fam.get('ext/ft')).toBe('upstream/unlisted');
    const dir = tmpDir();
    const rel = path.join(dir, 'rel.csv');
    fs.writeFileSync(rel, 'model_id,base_model,relationship_type\na/base,NONE,NONE\na/chat,a/base,finetune\na/q4,a/chat,quantized\nb/base,NONE,NONE\nb/chat,b/base,finetune\nb/chat2,b/base,finetune\nc/base,NONE,NONE\n');
    const info = loadModelInfo(rel);
    expect(info.find((x) => x.model_id === 'a/q4')).toMatchObject({ family: 'a/base', model_type: 'quantized' });
    expect(info.find((x) => x.model_id === 'b/base')).toMatchObject({ family: 'b/base', model_type: 'Base' });
    const r = cli<{ families: unknown[]; intrafamily: { label: string; count: number }[] }>(['analyze', 'families', '--matrix', fx('matrix.csv'), '--model-info', rel]);
    expect(r.intrafamily.map((g) => [g.label, g.count]).sort()).toEqual([
      ['a/base', 3],
      ['b/base', 3],
    ]);
  });

  it.skipIf(!HAS_ANCHOR)('reads the published lineage relationships as families', () => {
    const r = cli<{ models_with_info: number; families: unknown[] }>([
      'analyze',
      'families',
      '--matrix',
      path.join(ANCHOR, 'lineage_dev_overlap_matrix.csv'),
      '--model-info',
      path.join(ANCHOR, 'lineage_dev_relationships.csv'),
    ]);
    expect(r.models_with_info).toBeGreaterThan(100);
    expect(r.families.length).toBeGreaterThan(10);
  });

  it('lists nearest relatives of any matrix, and its CSV feeds analyze roc', () => {
    const dir = tmpDir();
    type N = { rows: { model: string; neighbours: { model: string; score: number; same_family: boolean | null }[] }[]; skipped: string[]; nearest_same_family_rate: number };
    const r = cli<N>(['analyze', 'neighbours', '--matrix', fx('matrix.csv'), '--model-info', fx('model_info.json'), '--top', '2', '-o', dir]);
    expect(r.skipped).toEqual(['a/broken']);
    const lines = fs.readFileSync(fx('matrix.csv'), 'utf8').trim().split('\n');
    const ids = lines[0].split(',').slice(1);
    const M = lines.slice(1).map((l) => l.split(',').slice(1).map(Number));
    // Independent check of the first model's best relative: the larger of both directions.
    const i = ids.indexOf('a/base');
    let best = -1;
    let bestS = -Infinity;
    ids.forEach((_, j) => {
      if (j === i || M[i][j] < 0 || M[j][i] < 0) return;
      const s = Math.max(M[i][j], M[j][i]);
      if (s > bestS) [best, bestS] = [j, s];
    });
    const row = r.rows.find((x) => x.model === 'a/base')!;
    expect(row.neighbours).toHaveLength(2);
    expect(row.neighbours[0]).toMatchObject({ model: ids[best], score: bestS });
    const csv = path.join(dir, 'neighbours.csv');
    expect(fs.readFileSync(csv, 'utf8').split('\n')[0]).toBe('model_id,rank,nearest,score,family,nearest_family,same_family');
    const top1 = path.join(dir, 'top1');
    cli(['analyze', 'neighbours', '--matrix', fx('matrix.csv'), '--model-info', fx('model_info.json'), '-o', top1]);
    const rows = fs.readFileSync(path.join(top1, 'neighbours.csv'), 'utf8').trim().split('\n').slice(1);
    const known = path.join(dir, 'known.csv');
    fs.writeFileSync(known, ['model_id,rank,nearest,score,family,nearest_family,same_family', ...rows.filter((l) => /,(true|false)$/.test(l))].join('\n') + '\n');
    const roc = cli<{ same_count: number; diff_count: number }>(['analyze', 'roc', '--input', known, '--label-column', 'same_family']);
    expect(roc.same_count + roc.diff_count).toBe(rows.filter((l) => /,(true|false)$/.test(l)).length);
  });

  it('makes a mislabel finding only for declared derivatives, with its evidence', () => {
    type D = { same: { anomalies: { model: string; kind: string; evidence: string }[] } };
    // Without a different-family sample: fixed 0.1, said so.
    const alone = cli<D>(['analyze', 'downloads', '--same', fx('downloads_same.csv')]);
    const m14 = alone.same.anomalies.find((a) => a.model === 'fam/m14')!;
    expect(m14.kind).toBe('declared_derivative_low_overlap');
    expect(m14.evidence).toMatch(/declared a derivative of org\/base, yet its overlap 0\.0500 < 0\.1 \(fixed threshold/);
    // With --diff: judged against the different-family overlaps (m14's 0.05 is above all of them).
    const both = cli<D & { diff: { anomalies: unknown[] } }>(['analyze', 'downloads', '--same', fx('downloads_same.csv'), '--diff', fx('downloads_diff.csv')]);
    expect(both.same.anomalies.some((a) => a.kind === 'declared_derivative_low_overlap')).toBe(false);
    expect(both.diff.anomalies).toEqual([]);
    // A declared derivative inside the unrelated range is flagged, naming the percentile and file.
    const dir = tmpDir();
    const same = path.join(dir, 'same.csv');
    const src = readCsvFile(fx('downloads_same.csv'), 'csv');
    const lookalike: Record<string, string> = { ...src.rows[0], derived_model_name: 'fam/lookalike', avg_overlap_ratio: '0.0010' };
    fs.writeFileSync(same, csvLine(src.header) + [...src.rows, lookalike].map((r) => csvLine(src.header.map((h) => r[h]))).join(''));
    const flagged = cli<D>(['analyze', 'downloads', '--same', same, '--diff', fx('downloads_diff.csv')]);
    const f = flagged.same.anomalies.find((a) => a.model === 'fam/lookalike');
    expect(f?.kind).toBe('declared_derivative_low_overlap');
    expect(f?.evidence).toMatch(/≤ 0\.\d{4}, the 95th percentile of the \d+ different-family overlaps in .*downloads_diff\.csv/);
  });
});
