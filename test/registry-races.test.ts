/**
 * Many processes on one SQLite registry at once (issue 16, item 6): first opens of a new
 * registry (migrations in one exclusive transaction) and `models import` of the same CSV
 * (one upsert a model). Every child is a real process; they start together.
 * Needs the built CLI (dist/): `npx tsc -p tsconfig.build.json`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, tmpDir } from './helpers/cli.js';

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], cwd: string): Promise<Exit> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A child that loads the registry code, waits for the common start time `at`, then opens
 * `file` (creating and migrating it when new) and reads its info.
 */
const OPENER = `
const [modUrl, file, at] = process.argv.slice(1);
const { openRegistry } = await import(modUrl);
while (Date.now() < Number(at)) await new Promise((r) => setTimeout(r, 1));
try {
  const reg = await openRegistry(file);
  const info = await reg.info();
  await reg.close();
  console.log(JSON.stringify({ ok: true, schemaVersion: info.schemaVersion, applied: reg.appliedMigrations }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.code, message: e.message, stack: e.cause?.stack ?? e.stack }));
  process.exitCode = 1;
}`;

describe('SQLite registry: concurrent processes', () => {
  it('eight processes opening a new registry at the same moment all succeed, and exactly one migrates it', async () => {
    const mod = new URL(`file://${path.join(ROOT, 'dist', 'registry', 'index.js')}`).href;
    for (let round = 0; round < 4; round++) {
      const file = path.join(tmpDir(), 'nested', 'registry.db');
      const at = Date.now() + 1500;
      const exits = await Promise.all(Array.from({ length: 8 }, () => run(['--input-type=module', '-e', OPENER, mod, file, String(at)], ROOT)));
      const results = exits.map((x) => {
        expect(x.code, `${x.stdout}${x.stderr}`).toBe(0);
        return JSON.parse(x.stdout) as { ok: boolean; schemaVersion: number; applied: number[] };
      });
      expect(results.every((r) => r.ok && r.schemaVersion === 1)).toBe(true);
      // The schema was applied once, by one of them; the others found it applied.
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    }
  }, 120_000);

  it('four `models import` of the same CSV at once all succeed and register each model once', async () => {
    const dir = tmpDir();
    const N = 80;
    const rows = ['model_id,path,family'];
    for (let i = 0; i < N; i++) {
      const m = path.join(dir, 'models', `m${i}`);
      fs.mkdirSync(m, { recursive: true });
      fs.writeFileSync(path.join(m, 'config.json'), JSON.stringify({ model_type: 'llama', i }));
      rows.push(`org/m${i},models/m${i},fam${i % 3}`);
    }
    const csv = path.join(dir, 'models.csv');
    fs.writeFileSync(csv, `${rows.join('\n')}\n`);
    const reg = path.join(dir, 'registry.db');
    // Created beforehand, so that the race is on the rows, not the schema (the test above).
    const init = await run([BIN, 'registry', 'info', '--registry', reg, '--json'], dir);
    expect(init.code, init.stderr).toBe(0);

    const exits = await Promise.all(Array.from({ length: 4 }, () => run([BIN, 'models', 'import', csv, '--registry', reg, '--json'], dir)));
    const docs = exits.map((x) => {
      expect(x.code, x.stderr).toBe(0);
      return JSON.parse(x.stdout) as { added: Array<{ name: string }>; existing: string[] };
    });
    // Every model is added by exactly one process and found by the three others.
    const added = docs.flatMap((d) => d.added.map((m) => m.name)).sort();
    expect(added).toEqual(rows.slice(1).map((r) => r.split(',')[0]).sort());
    for (const d of docs) expect(d.added.length + d.existing.length).toBe(N);

    const list = await run([BIN, 'models', 'list', '--registry', reg, '--json'], dir);
    const { models } = JSON.parse(list.stdout) as { models: Array<{ name: string; family: string }> };
    expect(models).toHaveLength(N);
    expect(new Set(models.map((m) => m.name)).size).toBe(N);
  }, 120_000);
});
