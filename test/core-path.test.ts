/**
 * One path from model to sketch to scores (issue 10): the sketch collections that `matrix`
 * and `lineage` write are what `similarity` reads, and give the same scores; the registry
 * stores the same encoding; a reader on PostgreSQL runs the pipeline without false failures;
 * a model's identity does not depend on how its path is spelled.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCsvFile } from '../src/util/csv.js';
import { readNpyFloat32 } from '../src/util/npy.js';
import { formatScore } from '../src/methods/results.js';
import { native } from '../src/native/index.js';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';
import { ADMIN_PASSWORD, ADMIN_USER, READER_PASSWORD, READER_USER, startPostgres, type PgServer } from './helpers/pg.js';
import { tinyZoo, type ZooModel } from './helpers/zoo.js';

const FAST = ['--num-prompts', '2', '--k', '150', '--prefix-len', '4', '--total-len', '12', '--progress', 'jsonl'];

let models: ZooModel[];
let base: ZooModel;
let family: ZooModel[];

beforeAll(async () => {
  ({ models } = await tinyZoo());
  base = models.find((m) => !m.base_model)!;
  family = models.filter((m) => m.family === base.family && m.model_id !== base.model_id).slice(0, 3);
});

function derivedCsv(dir: string, list: ZooModel[]): string {
  const f = path.join(dir, 'derived.csv');
  fs.writeFileSync(f, `model_id,path\n${list.map((m) => `${m.model_id},${m.path}`).join('\n')}\n`);
  return f;
}

describe('sketch files are the pipeline’s own sketches', () => {
  it('matrix --sketches-out fed to similarity gives the same matrix, bit for bit', () => {
    const dir = tmpDir();
    const pick = [base, ...family.slice(0, 2), models.find((m) => m.family !== base.family)!];
    const out = path.join(dir, 'm');
    const mpsk = path.join(dir, 'matrix.mpsk');
    const r = runCli(['matrix', '--models', ...pick.map((m) => m.path), '--out-dir', out, '--sketches-out', mpsk, '--registry', path.join(dir, 'r.db'), '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    const set = native.SketchSet.open(mpsk);
    expect(set.count).toBe(4);
    expect(set.prompts).toBe(8); // every model on all 4 × 2 prompts
    expect(Array.from(set.anchors!)).toEqual([0, 2, 2, 4, 4, 6, 6, 8]);

    const simNpy = path.join(dir, 'sim.npy');
    const simCsv = path.join(dir, 'sim.csv');
    for (const o of [simNpy, simCsv]) {
      const s = runCli(['similarity', '--sketches', mpsk, '--out', o, '--device', 'cpu', '--json']);
      expect(s.code, s.stderr).toBe(0);
    }
    expect(fs.readFileSync(simNpy)).toEqual(fs.readFileSync(path.join(out, 'overlap_matrix.npy')));
    expect(fs.readFileSync(simCsv, 'utf8')).toBe(fs.readFileSync(path.join(out, 'overlap_matrix.csv'), 'utf8'));
    // The pandas layout of the published overlap_matrix.csv: an empty first header cell.
    expect(fs.readFileSync(simCsv, 'utf8').split('\n')[0]).toBe(`,${pick.map((m) => m.path).join(',')}`);
    const { data } = readNpyFloat32(simNpy);
    for (let i = 0; i < 4; i++) expect(data[i * 4 + i]).toBe(1);
    expect(data[1]).toBeGreaterThan(data[3]); // a derivative is closer to its base than another family
  });

  it('lineage --sketches-out fed to similarity gives the base row of the lineage CSV, and the registry holds the same encoding', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'l.csv');
    const mpsk = path.join(dir, 'lineage.mpsk');
    const reg = path.join(dir, 'r.db');
    const other = models.find((m) => m.family !== base.family)!;
    const r = runCli(['lineage', '--base', base.path, '--derived', derivedCsv(dir, [...family, other]), '--out', out, '--sketches-out', mpsk, '--registry', reg, '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    const rows = readCsvFile(out).rows;
    const npy = path.join(dir, 'l.npy');
    const s = runCli(['similarity', '--sketches', mpsk, '--out', npy, '--device', 'cpu']);
    expect(s.code, s.stderr).toBe(0);
    const set = native.SketchSet.open(mpsk);
    const ids = set.modelIds;
    expect(ids[0]).toBe(base.path);
    const { data } = readNpyFloat32(npy);
    const n = ids.length;
    for (const row of rows) {
      const j = ids.indexOf(row.derived_model_name);
      expect(j).toBeGreaterThan(0);
      expect(row.avg_overlap_ratio).toBe(formatScore(data[j]));
      // the engine's score of the same pair, 1 × 1
      expect(Number(row.avg_overlap_ratio)).toBeCloseTo(data[0 * n + j], 6);
    }
    // A re-run resumes from the file and rewrites the same sketch file from the registry.
    const before = fs.readFileSync(mpsk);
    fs.rmSync(mpsk);
    const again = runCli(['lineage', '--base', base.path, '--derived', derivedCsv(dir, [...family, other]), '--out', out, '--sketches-out', mpsk, '--registry', reg, '--json', ...FAST]);
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readFileSync(mpsk)).toEqual(before);
  });

  it('a resume names the parameter that differs, and the same base by another path spelling resumes', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'l.csv');
    const derived = derivedCsv(dir, family.slice(0, 1));
    const rel = path.relative(dir, base.path);
    const first = runCli(['lineage', '--base', rel, '--derived', derived, '--out', out, '--registry', path.join(dir, 'r.db'), '--json', ...FAST], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    const abs = runCli(['lineage', '--base', base.path, '--derived', derived, '--out', out, '--registry', path.join(dir, 'r.db'), '--json', ...FAST], { cwd: dir });
    expect(abs.code, abs.stderr).toBe(0);
    expect(parseJson<{ skipped: number }>(abs).skipped).toBe(1);
    const other = runCli(['lineage', '--base', base.path, '--derived', derived, '--out', out, '--json', ...FAST.map((a) => (a === '150' ? '160' : a))], { cwd: dir });
    expect(other.code).toBe(1);
    const err = parseJson<{ error: { code: string; message: string; subject: string } }>(other).error;
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toMatch(/k: 150 in the file, 160 now/);
    expect(err.subject).toMatch(/:k$/);
  });
});

describe('a reader on a shared PostgreSQL registry', () => {
  let pgs: PgServer;
  beforeAll(async () => {
    pgs = await startPostgres();
  });
  afterAll(async () => {
    await pgs?.stop();
  });

  it('runs lineage and matrix: uses what is stored, computes the rest, writes nothing, reports no false failures', async () => {
    const db = await pgs.createDatabase({ migrate: true });
    const admin = pgs.url(ADMIN_USER, ADMIN_PASSWORD, db);
    const reader = pgs.url(READER_USER, READER_PASSWORD, db);
    const dir = tmpDir();
    const derived = derivedCsv(dir, family);

    // On an empty registry: everything computed, nothing stored, every row a score.
    const r1 = runCli(['lineage', '--base', base.path, '--derived', derived, '--out', path.join(dir, 'a.csv'), '--registry', reader, '--json', ...FAST]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(parseJson<{ ok: number; failed: number }>(r1)).toMatchObject({ ok: family.length, failed: 0 });
    expect(r1.stderr).toMatch(/refused to store/);
    const rows1 = readCsvFile(path.join(dir, 'a.csv')).rows;
    for (const row of rows1) {
      expect(row.error_code).toBe('');
      expect(Number(row.avg_overlap_ratio)).toBeGreaterThan(0);
    }
    expect(await pgs.sql('SELECT COUNT(*)::int AS n FROM fingerprints', [], db)).toEqual([{ n: 0 }]);

    // Said up front: no warning, still nothing stored.
    const r2 = runCli(['lineage', '--base', base.path, '--derived', derived, '--out', path.join(dir, 'b.csv'), '--registry', reader, '--registry-write', 'read-only', '--json', ...FAST]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).not.toMatch(/refused to store/);

    // The admin stores the sketches; the reader then reuses them (no model loaded) with the same scores.
    const ra = runCli(['lineage', '--base', base.path, '--derived', derived, '--out', path.join(dir, 'c.csv'), '--registry', admin, '--json', ...FAST]);
    expect(ra.code, ra.stderr).toBe(0);
    const r3 = runCli(['lineage', '--base', base.path, '--derived', derived, '--out', path.join(dir, 'd.csv'), '--registry', reader, '--json', ...FAST]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(parseJson<{ reused: number }>(r3).reused).toBe(family.length);
    expect(r3.stderr).not.toMatch(/"phase":"loading"/);
    const rows3 = readCsvFile(path.join(dir, 'd.csv')).rows;
    expect(rows3.map((x) => x.avg_overlap_ratio)).toEqual(rows1.map((x) => x.avg_overlap_ratio));

    const m = runCli(['matrix', '--models', base.path, family[0].path, '--out-dir', path.join(dir, 'm'), '--registry', reader, '--json', ...FAST]);
    expect(m.code, m.stderr).toBe(0);
    expect(parseJson<{ failed: number }>(m).failed).toBe(0);
  });
});
