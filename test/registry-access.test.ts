/**
 * Registry locations and access (issue 16, item 8): a registry this user may read but not
 * write is used read-only (a computed model is a score, not `inference_failed`, and a resume
 * keeps it); URLs that are not PostgreSQL are refused with E_CONFIG without echoing their
 * password and without creating folders named after them.
 * Needs the built CLI (dist/): `npx tsc -p tsconfig.build.json`.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCsvFile } from '../src/util/csv.js';
import { BIN, ROOT, parseJson, runCli, tmpDir } from './helpers/cli.js';
import { tinyZoo } from './helpers/zoo.js';

const FAST = ['--num-prompts', '2', '--k', '150', '--prefix-len', '4', '--total-len', '12', '--progress', 'none'];
/** As root, file modes do not stop writes: the read-only run is made as `nobody`. */
const AS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

function fingerprints(file: string): number {
  const db = new Database(file, { readonly: true });
  const n = (db.prepare('SELECT COUNT(*) AS n FROM fingerprints').get() as { n: number }).n;
  db.close();
  return n;
}

describe('a registry this user can read but not write', () => {
  it('lineage uses it read-only: a computed model scores (no inference_failed row), nothing is stored, and a resume keeps the score', async () => {
    const { dir: zoo, models } = await tinyZoo();
    const byId = (id: string) => models.find((m) => m.model_id === id)!;
    const base = byId('alpha-base');
    const work = tmpDir();
    const reg = path.join(work, 'r.db');
    const derived = (list: string[]) => {
      const f = path.join(work, `d${list.length}.csv`);
      fs.writeFileSync(f, `model_id,path\n${list.map((id) => `${id},${byId(id).path}`).join('\n')}\n`);
      return f;
    };
    const first = runCli(['lineage', '--base', base.path, '--derived', derived(['alpha-ft-light']), '--out', path.join(work, 'first.csv'), '--registry', reg, '--json', ...FAST]);
    expect(first.code, first.stderr).toBe(0);
    const stored = fingerprints(reg);
    expect(stored).toBe(2);

    // Read-only: the file mode, every other process gone (WAL folded into the file).
    const db = new Database(reg);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    fs.chmodSync(reg, 0o444);
    if (AS_ROOT) {
      fs.chmodSync(work, 0o777);
      fs.chmodSync(path.dirname(zoo), 0o755); // the zoo's temp folder
      expect(spawnSync('chmod', ['-R', 'a+rX', zoo]).status).toBe(0);
    }
    const out = path.join(work, 'ro.csv');
    const args = ['lineage', '--base', base.path, '--derived', derived(['alpha-ft-light', 'alpha-lora']), '--out', out, '--registry', reg, '--json', ...FAST];
    const run = () =>
      spawnSync(process.execPath, [BIN, ...args], {
        cwd: ROOT,
        env: { ...process.env, NO_COLOR: '1', HOME: work },
        encoding: 'utf8',
        ...(AS_ROOT ? { uid: NOBODY, gid: NOBODY } : {}),
      });
    const r = run();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('refused to store');
    const rows = readCsvFile(out).rows;
    expect(rows.map((x) => [x.derived_model_name, x.error_code])).toEqual([
      ['alpha-ft-light', ''],
      ['alpha-lora', ''],
    ]);
    expect(Number(rows[1].avg_overlap_ratio)).toBeGreaterThan(0.5);
    expect(fingerprints(reg)).toBe(stored);

    // A resume of the same run finds every row done and keeps the score.
    const again = run();
    expect(again.status, again.stderr).toBe(0);
    expect(parseJson<{ rows: number; failed: number }>({ code: 0, stdout: again.stdout, stderr: '' })).toMatchObject({ rows: 2, failed: 0 });
    expect(readCsvFile(out).rows).toEqual(rows);
  }, 120_000);
});

describe('registry URLs', () => {
  it.each([
    ['a mysql:// URL', 'mysql://root:hunter2-secret@db.example/x'],
    ['a pg:// URL', 'pg://alice:hunter2-secret@db.example/x'],
    ['postgres: with one slash', 'postgres:/alice:hunter2-secret@db.example/x'],
    ['postgres: with no slash', 'postgresql:alice:hunter2-secret@db.example/x'],
  ])('%s is refused with E_CONFIG, the password not shown and no folder created', (_name, url) => {
    const cwd = tmpDir();
    const r = runCli(['registry', 'info', '--registry', url, '--json'], { cwd });
    expect(r.code).toBe(1);
    const err = parseJson<{ error: { code: string; message: string } }>(r).error;
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toContain('***');
    expect(`${r.stdout}${r.stderr}`).not.toContain('hunter2');
    expect(fs.readdirSync(cwd)).toEqual([]);
  });
});

describe('a registry that does not exist yet', () => {
  it('is an empty registry to commands that only read, and nothing is created for it; a command that writes creates it', () => {
    const cwd = tmpDir();
    const reg = path.join(cwd, 'no', 'such', 'dir', 'r.db');
    const info = runCli(['registry', 'info', '--registry', reg, '--json'], { cwd });
    expect(info.code, info.stderr).toBe(0);
    expect(parseJson<{ location: string; counts: Record<string, number> }>(info)).toMatchObject({ location: reg, counts: { models: 0, fingerprints: 0 } });
    const list = runCli(['models', 'list', '--registry', reg, '--json'], { cwd });
    expect(list.code, list.stderr).toBe(0);
    expect(parseJson<{ models: unknown[] }>(list).models).toEqual([]);
    expect(runCli(['models', 'show', 'x', '--registry', reg, '--json'], { cwd }).code).toBe(1);
    const ex = runCli(['registry', 'export', '--out', path.join(cwd, 'e.jsonl'), '--registry', reg, '--json'], { cwd });
    expect(ex.code, ex.stderr).toBe(0);
    expect(fs.readdirSync(cwd)).toEqual(['e.jsonl']);

    fs.mkdirSync(path.join(cwd, 'm'));
    fs.writeFileSync(path.join(cwd, 'm', 'config.json'), '{"model_type":"llama"}');
    const add = runCli(['models', 'add', path.join(cwd, 'm'), '--registry', reg, '--json'], { cwd });
    expect(add.code, add.stderr).toBe(0);
    expect(fs.existsSync(reg)).toBe(true);
  });
});
