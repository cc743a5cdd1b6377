/**
 * The shared PostgreSQL registry against a real server (helpers/pg.ts): roles and permissions
 * enforced by PostgreSQL, migrations, concurrent writers, export / import between backends.
 * Needs the built CLI (dist/): `npx tsc -p tsconfig.build.json`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelprintError } from '../src/errors.js';
import { PERMISSION_HINT, PostgresRegistry, redactUrl } from '../src/registry/postgres.js';
import { SqliteRegistry } from '../src/registry/sqlite.js';
import { native } from '../src/native/index.js';
import { ROOT, parseJson, runCli, tmpDir, type CliResult } from './helpers/cli.js';
import {
  ADMIN_PASSWORD,
  ADMIN_USER,
  READER_PASSWORD,
  READER_USER,
  SUPER_PASSWORD,
  SUPER_USER,
  startPostgres,
  type PgServer,
} from './helpers/pg.js';

let pgs: PgServer;

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'registry', 'postgres.js'))) {
    throw new Error('dist/ is not built: run `npx tsc -p tsconfig.build.json` (npm test does) before these tests');
  }
  pgs = await startPostgres();
});

afterAll(async () => {
  await pgs?.stop();
});

type ErrJson = { ok: false; error: { code: string; message: string; hint?: string } };
const errorOf = (r: CliResult) => parseJson<ErrJson>(r).error;

async function rejection(p: Promise<unknown>): Promise<ModelprintError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(ModelprintError);
  return e as ModelprintError;
}

/** A fresh migrated database and URLs for it. */
async function freshDb() {
  const db = await pgs.createDatabase({ migrate: true });
  return {
    db,
    admin: pgs.url(ADMIN_USER, ADMIN_PASSWORD, db),
    reader: pgs.url(READER_USER, READER_PASSWORD, db),
    super: pgs.url(SUPER_USER, SUPER_PASSWORD, db),
  };
}

function modelDir(): string {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'tiny'));
  fs.writeFileSync(path.join(dir, 'tiny', 'config.json'), '{"model_type":"llama"}');
  return dir;
}

describe('PostgreSQL registry: roles enforced by the server', () => {
  it('opens as the admin, with the password redacted from its location', async () => {
    const reg = await PostgresRegistry.open(pgs.adminUrl);
    try {
      const info = await reg.info();
      expect(info).toMatchObject({ backend: 'postgres', schemaVersion: 1 });
      expect(info.location).toBe(`postgres://${ADMIN_USER}:***@${pgs.host}:${pgs.port}/modelprint`);
      expect(info.location).not.toContain(ADMIN_PASSWORD);
    } finally {
      await reg.close();
    }
    expect(redactUrl('postgresql://u:p%40ss@h/db?password=x&sslmode=require')).toBe(
      'postgresql://u:***@h/db?password=***&sslmode=require',
    );
  });

  it('lets a reader read and keep its own run records, but not write shared tables', async () => {
    const u = await freshDb();
    const admin = await PostgresRegistry.open(u.admin);
    const reader = await PostgresRegistry.open(u.reader);
    try {
      const m = await admin.addModel({ name: 'shared-model', source: '/m', family: 'f' });
      const ps = await admin.putProbeSet({ method: 'bottomk', paramsHash: 'h', params: {}, sourceKey: 's', prompts: ['p'] });
      await admin.putFingerprint({ modelKey: 'k', modelId: m.id, probeSetId: ps.id, method: 'bottomk', configHash: 'c', payload: Buffer.from('fp') });
      const before = (await admin.info()).counts;

      expect((await reader.listModels()).map((x) => x.name)).toEqual(['shared-model']);
      expect(await reader.findFingerprint('k', 'bottomk', 'c')).toMatchObject({ modelId: m.id });
      expect(await reader.findProbeSet('bottomk', 'h', 's')).toMatchObject({ id: ps.id });

      const writes: Array<[string, () => Promise<unknown>]> = [
        ['addModel', () => reader.addModel({ name: 'sneaky', source: '/x' })],
        ['removeModel', () => reader.removeModel('shared-model')],
        ['putProbeSet', () => reader.putProbeSet({ method: 'bottomk', paramsHash: 'new', params: {}, sourceKey: 's', prompts: [] })],
        ['putProbeSet (existing)', () => reader.putProbeSet({ method: 'bottomk', paramsHash: 'h', params: {}, sourceKey: 's', prompts: [] })],
        ['putFingerprint', () => reader.putFingerprint({ modelKey: 'k2', method: 'bottomk', configHash: 'c', payload: Buffer.from('x') })],
        ['putFingerprint (existing)', () => reader.putFingerprint({ modelKey: 'k', method: 'bottomk', configHash: 'c', payload: Buffer.from('x') })],
        ['importRecord', () => reader.importRecord({ table: 'models', record: { ...m, name: 'imported' } })],
      ];
      for (const [what, write] of writes) {
        const e = await rejection(write());
        expect(e.code, what).toBe('E_PERMISSION');
        expect(e.hint, what).toBe(PERMISSION_HINT);
        expect((e.cause as { code?: string }).code, what).toBe('42501'); // PostgreSQL said no, not the client
        expect(e.message, what).not.toContain(READER_PASSWORD);
      }
      expect((await admin.info()).counts).toEqual(before);
      expect((await admin.getModel('shared-model'))?.id).toBe(m.id);

      // Bookkeeping: a reader records its own runs and per-model errors.
      const run = await reader.startRun('identify', { by: 'reader' });
      await reader.recordError(run.id, 'shared-model', 'E_MODEL_LOAD', 'boom');
      await reader.finishRun(run.id, 'partial', { failed: 1 });
      expect((await admin.listRuns(1))[0]).toMatchObject({ id: run.id, status: 'partial', summary: { failed: 1 } });
      expect((await admin.listErrors(run.id)).map((x) => x.code)).toEqual(['E_MODEL_LOAD']);
      // …but may not delete anything, not even runs.
      await expect(pgs.sql('SET ROLE mp_reader; DELETE FROM runs', [], u.db)).rejects.toMatchObject({ code: '42501' });
    } finally {
      await reader.close();
      await admin.close();
    }
  });

  it('`models add` as a reader fails with E_PERMISSION and changes nothing; as the admin it succeeds', async () => {
    const u = await freshDb();
    const cwd = modelDir();
    const denied = runCli(['models', 'add', './tiny', '--family', 'f', '--json', '--registry', u.reader], { cwd });
    expect(denied.code, denied.stderr).toBe(1);
    const err = errorOf(denied);
    expect(err).toMatchObject({ code: 'E_PERMISSION', hint: PERMISSION_HINT });
    expect(err.message).toContain(`${READER_USER}:***@`);
    expect(denied.stdout + denied.stderr).not.toContain(READER_PASSWORD);
    expect(denied.stderr).toMatch(/^error \[E_PERMISSION\] .*\(hint: ask a registry admin to grant modelprint_admin/m);
    expect(await pgs.sql('SELECT COUNT(*)::int AS n FROM models', [], u.db)).toEqual([{ n: 0 }]);

    const ok = runCli(['models', 'add', './tiny', '--family', 'f', '--json', '--registry', u.admin], { cwd });
    expect(ok.code, ok.stderr).toBe(0);
    expect(parseJson<{ name: string; family: string }>(ok)).toMatchObject({ name: 'tiny', family: 'f' });

    const list = runCli(['models', 'list', '--json', '--registry', u.reader], { cwd });
    expect(list.code, list.stderr).toBe(0);
    expect(parseJson<{ models: Array<{ name: string }> }>(list).models.map((m) => m.name)).toEqual(['tiny']);
    const rm = runCli(['models', 'remove', 'tiny', '--json', '--registry', u.reader], { cwd });
    expect(errorOf(rm).code).toBe('E_PERMISSION');
    expect(await pgs.sql('SELECT name FROM models', [], u.db)).toEqual([{ name: 'tiny' }]);
  });

  it('refuses to let a reader open an out-of-date registry, with a clear error', async () => {
    // Roles set up but never migrated: only an admin may create the tables.
    const db = await pgs.createDatabase({ setupRoles: true, migrate: false });
    const readerUrl = pgs.url(READER_USER, READER_PASSWORD, db);
    const e = await rejection(PostgresRegistry.open(readerUrl));
    expect(e.code).toBe('E_PERMISSION');
    expect(e.message).toMatch(/schema version 0 but this modelprint needs version 1.*modelprint_admin/);
    expect(e.hint).toContain('modelprint registry migrate --registry');
    expect(await pgs.sql("SELECT to_regclass('schema_migrations') AS t", [], db)).toEqual([{ t: null }]);

    const r = runCli(['registry', 'info', '--json', '--registry', readerUrl]);
    expect(r.code).toBe(1);
    expect(errorOf(r).code).toBe('E_PERMISSION');

    // A database where the roles got no privileges (no --setup-roles there): even an admin
    // member cannot create the tables, and it is PostgreSQL that says so.
    const bare = await pgs.createDatabase({ setupRoles: false });
    for (const [user, pw] of [[READER_USER, READER_PASSWORD], [ADMIN_USER, ADMIN_PASSWORD]]) {
      const e2 = await rejection(PostgresRegistry.open(pgs.url(user, pw, bare)));
      expect(e2.code, user).toBe('E_PERMISSION');
      expect(e2.message, user).toMatch(/schema version 0/);
      if (user === ADMIN_USER) {
        expect((e2.cause as { code?: string }).code).toBe('42501');
        expect(e2.hint).toContain('--setup-roles');
      }
    }

    // Once the admin migrates, the reader opens it read-only.
    const m = runCli(['registry', 'migrate', '--json', '--registry', pgs.url(ADMIN_USER, ADMIN_PASSWORD, db)]);
    expect(m.code, m.stderr).toBe(0);
    expect(parseJson(m)).toMatchObject({ backend: 'postgres', schema_version: 1, latest_version: 1, applied: [1] });
    const ok = runCli(['registry', 'info', '--json', '--registry', readerUrl]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(parseJson(ok)).toMatchObject({ backend: 'postgres', schema_version: 1 });
  });

  it('`registry migrate --setup-roles` hands existing tables to modelprint_admin and grants the reader', async () => {
    const db = await pgs.createDatabase({ setupRoles: false });
    const superUrl = pgs.url(SUPER_USER, SUPER_PASSWORD, db);
    const readerUrl = pgs.url(READER_USER, READER_PASSWORD, db);
    // Migrated by a superuser before any roles: the tables are the superuser's; readers see nothing.
    const m1 = runCli(['registry', 'migrate', '--json', '--registry', superUrl]);
    expect(m1.code, m1.stderr).toBe(0);
    expect(parseJson(m1)).toMatchObject({ schema_version: 1, applied: [1] });
    expect((await rejection(PostgresRegistry.open(readerUrl))).code).toBe('E_PERMISSION');

    const m2 = runCli(['registry', 'migrate', '--setup-roles', '--json', '--registry', superUrl]);
    expect(m2.code, m2.stderr).toBe(0);
    const out = parseJson<{ schema_version: number; applied: number[]; roles: { tables_owned: string[]; created: string[] } }>(m2);
    expect(out).toMatchObject({ schema_version: 1, applied: [], roles: { created: [] } });
    expect(out.roles.tables_owned.sort()).toEqual(['fingerprints', 'model_errors', 'models', 'probe_sets', 'runs', 'schema_migrations']);
    const owners = await pgs.sql<{ tableowner: string }>("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", [], db);
    expect(owners).toEqual([{ tableowner: 'modelprint_admin' }]);
    const reader = await PostgresRegistry.open(readerUrl);
    try {
      expect((await reader.info()).schemaVersion).toBe(1);
      expect((await rejection(reader.addModel({ name: 'x', source: '/x' }))).code).toBe('E_PERMISSION');
    } finally {
      await reader.close();
    }

    const sq = runCli(['registry', 'migrate', '--setup-roles', '--json', '--registry', path.join(tmpDir(), 'r.db')]);
    expect(sq.code).toBe(2);
    expect(errorOf(sq).code).toBe('E_USAGE');
  });

  it('`registry grant` gives and takes the roles; only a superuser / CREATEROLE user may', async () => {
    const u = await freshDb();
    await pgs.sql("CREATE ROLE mp_late LOGIN PASSWORD 'late-pw'", [], u.db);
    const lateUrl = pgs.url('mp_late', 'late-pw', u.db);
    const canRead = async () => {
      const r = await PostgresRegistry.open(lateUrl).catch((e: unknown) => e);
      if (!(r instanceof PostgresRegistry)) return (r as ModelprintError).code;
      try {
        await r.listModels();
        await r.addModel({ name: `m${Date.now()}`, source: '/m' });
        return 'write';
      } catch (e) {
        return `read, ${(e as ModelprintError).code}`;
      } finally {
        await r.close();
      }
    };
    // Before any grant: the tables belong to modelprint_admin, the login has nothing.
    expect(await canRead()).toBe('E_PERMISSION');

    const g = runCli(['registry', 'grant', 'mp_late', '--role', 'reader', '--json', '--registry', u.super]);
    expect(g.code, g.stderr).toBe(0);
    expect(parseJson(g)).toEqual({ user: 'mp_late', role: 'modelprint_reader', granted: true });
    expect(await canRead()).toBe('read, E_PERMISSION');

    expect(runCli(['registry', 'grant', 'mp_late', '--role', 'admin', '--registry', u.super]).code).toBe(0);
    expect(await canRead()).toBe('write');
    const rv = runCli(['registry', 'grant', 'mp_late', '--role', 'admin', '--revoke', '--json', '--registry', u.super]);
    expect(parseJson(rv)).toEqual({ user: 'mp_late', role: 'modelprint_admin', granted: false });
    expect(await canRead()).toBe('read, E_PERMISSION');

    expect(errorOf(runCli(['registry', 'grant', 'mp_late', '--role', 'admin', '--json', '--registry', u.admin])).code).toBe('E_PERMISSION');
    expect(errorOf(runCli(['registry', 'grant', 'nobody_here', '--role', 'admin', '--json', '--registry', u.super])).code).toBe('E_NOT_FOUND');
    expect(runCli(['registry', 'grant', 'x', '--role', 'admin', '--registry', path.join(tmpDir(), 'r.db')]).code).toBe(2);
  });

  it('reports connection problems as E_REGISTRY naming the URL without its password', async () => {
    const cases: Array<[string, string, RegExp]> = [
      [`postgres://someone:hunter2@127.0.0.1:1/modelprint`, 'someone:***@127.0.0.1:1', /running and reachable/],
      [pgs.url(ADMIN_USER, 'wrong-password'), `${ADMIN_USER}:***@`, /password/],
      [pgs.url(ADMIN_USER, ADMIN_PASSWORD, 'no_such_db'), 'no_such_db', /create the database/],
    ];
    for (const [url, shown, hint] of cases) {
      const r = runCli(['registry', 'info', '--json', '--registry', url]);
      expect(r.code, url).toBe(1);
      const e = errorOf(r);
      expect(e.code, url).toBe('E_REGISTRY');
      expect(e.message, url).toContain(shown);
      expect(e.hint, url).toMatch(hint);
      expect(r.stdout + r.stderr, url).not.toMatch(/hunter2|wrong-password/);
    }
  });
});

describe('PostgreSQL registry: concurrent writers', () => {
  it('eight processes migrating and writing overlapping fingerprints at once end with one row per key, none lost', async () => {
    const db = await pgs.createDatabase({ setupRoles: true, migrate: false });
    const url = pgs.url(ADMIN_USER, ADMIN_PASSWORD, db);
    const script = path.join(ROOT, 'test', 'fixtures', 'pg-writer.mjs');
    const startAt = Date.now() + 2500;
    type Out = { worker: number; probeSetId: number; applied: number[]; results: Array<{ key: string; id: number; payload: string }> };
    const outs = await Promise.all(
      Array.from({ length: 8 }, (_, w) =>
        new Promise<Out>((resolve, reject) => {
          const p = spawn(process.execPath, [script, url, String(w), String(startAt)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          p.on('error', reject);
          p.on('close', (code) => {
            if (code !== 0) reject(new Error(`writer ${w} exited ${code}: ${stderr}`));
            else resolve(JSON.parse(stdout) as Out);
          });
        }),
      ),
    );
    // Migrated exactly once, by one of them.
    expect(outs.flatMap((o) => o.applied)).toEqual([1]);
    expect(await pgs.sql('SELECT version FROM schema_migrations', [], db)).toEqual([{ version: 1 }]);
    // One probe set, the same for everyone.
    expect(new Set(outs.map((o) => o.probeSetId)).size).toBe(1);
    expect(await pgs.sql('SELECT COUNT(*)::int AS n FROM probe_sets', [], db)).toEqual([{ n: 1 }]);

    const rows = await pgs.sql<{ id: string; key: string; payload: Buffer }>(
      "SELECT id, model_key || '|' || method || '|' || config_hash AS key, payload FROM fingerprints",
      [],
      db,
    );
    const byKey = new Map(rows.map((r) => [r.key, r]));
    expect(byKey.size).toBe(rows.length); // the unique constraint held…
    const wanted = new Set(outs.flatMap((o) => o.results.map((r) => r.key)));
    expect(wanted.size).toBe(48);
    expect([...byKey.keys()].sort()).toEqual([...wanted].sort()); // …and nothing is lost
    // Every writer got back the stored row, the same one (the first writer's payload).
    for (const o of outs) {
      expect(o.results).toHaveLength(40);
      for (const r of o.results) {
        const stored = byKey.get(r.key)!;
        expect(r.id).toBe(Number(stored.id));
        expect(r.payload).toBe(stored.payload.toString());
      }
    }
  });
});

describe('registry export / import', () => {
  /** Table contents with ids replaced by what they point to, so registries compare by content. */
  function canonical(file: string) {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const rows = lines.filter((l) => 'table' in l) as Array<{ table: string; row: Record<string, unknown> }>;
    const keyOf = new Map<string, string>();
    const out: Record<string, string[]> = {};
    for (const { table, row } of rows) {
      const { id, ...rest } = row;
      if (table === 'fingerprints') {
        rest.modelId = rest.modelId === null ? null : keyOf.get(`models:${String(rest.modelId)}`);
        rest.probeSetId = rest.probeSetId === null ? null : keyOf.get(`probe_sets:${String(rest.probeSetId)}`);
      }
      if (table === 'model_errors') rest.runId = rest.runId === null ? null : keyOf.get(`runs:${String(rest.runId)}`);
      const s = JSON.stringify(rest);
      keyOf.set(`${table}:${String(id)}`, s);
      (out[table] ??= []).push(s);
    }
    for (const t of Object.keys(out)) out[t].sort();
    return out;
  }

  async function seedSqlite(file: string) {
    const r = SqliteRegistry.open(file);
    const gone = await r.addModel({ name: 'removed-later', source: '/gone' });
    const a = await r.addModel({ name: 'org/a', source: '/a', family: 'fam', modelType: 'Base', downloads: 10, tags: ['t1'], format: 'onnx', contentHash: 'ha' });
    const b = await r.addModel({ name: 'org/b', source: '/b', family: 'fam', baseModel: 'org/a', modelType: 'Chat' });
    const ps = await r.putProbeSet({ method: 'bottomk', paramsHash: 'ph', params: { k: 4, seed: 1 }, sourceKey: 'vocab', prompts: ['x', 'y'] });
    // Payloads as the pipeline stores them (import refuses any other): a one-model sketch named by its key, a float64 vector.
    const sketch = (key: string, ids: number[]) => native.SketchSet.fromArrays([key], Uint32Array.from(ids), Uint32Array.from([2, ids.length - 2]), { prompts: 2, vocabSize: 1000, k: 4 }).toBytes();
    await r.putFingerprint({ modelKey: 'ha', modelId: a.id, probeSetId: ps.id, method: 'bottomk', configHash: 'c1', payload: sketch('ha', [3, 700, 1, 2, 999]) });
    await r.putFingerprint({ modelKey: 'hb', modelId: b.id, probeSetId: ps.id, method: 'bottomk', configHash: 'c1', payload: sketch('hb', [5, 6, 7]) });
    await r.putFingerprint({ modelKey: 'hgone', modelId: gone.id, method: 'weight', configHash: 'c2', payload: Buffer.from(new Float64Array([0.5, -1]).buffer) });
    await r.removeModel(gone.id);
    const run = await r.startRun('experiment', { models: ['org/a', 'org/b'] });
    await r.recordError(run.id, 'org/b', 'E_MODEL_LOAD', 'missing weights');
    await r.recordError(null, 'org/c', 'E_NOT_FOUND', 'no such model');
    await r.finishRun(run.id, 'partial', { failed: 1 });
    await r.startRun('identify', {});
    await r.close();
  }

  it('round-trips SQLite → PostgreSQL → SQLite with identical content, idempotently', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src.db');
    await seedSqlite(src);
    const u = await freshDb();
    const cli = (args: string[]) => {
      const r = runCli([...args, '--json']);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return parseJson<Record<string, unknown>>(r);
    };

    const e1 = cli(['registry', 'export', '--registry', src, '--output', path.join(dir, 'a.jsonl')]);
    expect(e1).toMatchObject({ backend: 'sqlite', counts: { models: 2, probe_sets: 1, fingerprints: 3, runs: 2, model_errors: 2 } });
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);

    // A reader may not import; nothing changes.
    const denied = runCli(['registry', 'import', path.join(dir, 'a.jsonl'), '--json', '--registry', u.reader]);
    expect(errorOf(denied).code).toBe('E_PERMISSION');
    expect(await pgs.sql('SELECT COUNT(*)::int AS n FROM models', [], u.db)).toEqual([{ n: 0 }]);

    const i1 = cli(['registry', 'import', path.join(dir, 'a.jsonl'), '--registry', u.admin]);
    expect(i1).toMatchObject({
      inserted: { models: 2, probe_sets: 1, fingerprints: 3, runs: 2, model_errors: 2 },
      existing: { models: 0, probe_sets: 0, fingerprints: 0, runs: 0, model_errors: 0 },
      source: { backend: 'sqlite', schema_version: 1 },
    });
    const infoAfterFirst = cli(['registry', 'info', '--registry', u.admin]);
    const i2 = cli(['registry', 'import', path.join(dir, 'a.jsonl'), '--registry', u.admin]);
    expect(i2).toMatchObject({
      inserted: { models: 0, probe_sets: 0, fingerprints: 0, runs: 0, model_errors: 0 },
      existing: { models: 2, probe_sets: 1, fingerprints: 3, runs: 2, model_errors: 2 },
    });
    expect(cli(['registry', 'info', '--registry', u.admin])).toEqual(infoAfterFirst);

    // The reader may export the shared registry.
    const e2 = cli(['registry', 'export', '--registry', u.reader, '--output', path.join(dir, 'b.jsonl')]);
    expect(e2).toMatchObject({ backend: 'postgres', counts: e1.counts });
    const back = path.join(dir, 'back.db');
    cli(['registry', 'import', path.join(dir, 'b.jsonl'), '--registry', back]);
    cli(['registry', 'export', '--registry', back, '--output', path.join(dir, 'c.jsonl')]);

    const a = canonical(path.join(dir, 'a.jsonl'));
    expect(a.fingerprints).toHaveLength(3);
    expect(canonical(path.join(dir, 'b.jsonl'))).toEqual(a);
    expect(canonical(path.join(dir, 'c.jsonl'))).toEqual(a);

    // Records themselves (timestamps, statuses, payload bytes) survive the trip.
    const s = SqliteRegistry.open(src);
    const t = SqliteRegistry.open(back);
    const p = await PostgresRegistry.open(u.admin);
    try {
      const strip = <T extends { id: number }>(xs: T[]) => xs.map(({ id: _id, ...x }) => x);
      const models = strip(await s.listModels());
      expect(strip(await p.listModels())).toEqual(models);
      expect(strip(await t.listModels())).toEqual(models);
      const fa = await s.findFingerprint('ha', 'bottomk', 'c1');
      for (const other of [p, t]) {
        const fb = await other.findFingerprint('ha', 'bottomk', 'c1');
        expect(Buffer.compare(fb!.payload, fa!.payload)).toBe(0);
        expect(fb!.createdAt).toBe(fa!.createdAt);
        expect((await other.getModel(fb!.modelId!))?.name).toBe('org/a');
        expect((await other.findFingerprint('hgone', 'weight', 'c2'))?.modelId).toBeNull();
        expect(strip(await other.listAllRuns())).toEqual(strip(await s.listAllRuns()));
      }
    } finally {
      await p.close();
      await s.close();
      await t.close();
    }
  });

  it('refuses a truncated or foreign file before writing anything', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'src.db');
    await seedSqlite(src);
    const file = path.join(dir, 'a.jsonl');
    expect(runCli(['registry', 'export', '--registry', src, '--output', file]).code).toBe(0);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    fs.writeFileSync(path.join(dir, 'cut.jsonl'), `${lines.slice(0, -2).join('\n')}\n`);
    fs.writeFileSync(path.join(dir, 'foreign.jsonl'), '{"hello":"world"}\n');
    const target = path.join(dir, 'target.db');
    for (const [name, pattern] of [
      ['cut.jsonl', /truncated/],
      ['foreign.jsonl', /not a modelprint registry export/],
    ] as const) {
      const r = runCli(['registry', 'import', path.join(dir, name), '--json', '--registry', target]);
      expect(r.code).toBe(1);
      expect(errorOf(r).code).toBe('E_INPUT');
      expect(errorOf(r).message).toMatch(pattern);
    }
    expect(errorOf(runCli(['registry', 'import', path.join(dir, 'missing.jsonl'), '--json', '--registry', target])).code).toBe('E_NOT_FOUND');
    const info = parseJson<{ counts: Record<string, number> }>(runCli(['registry', 'info', '--json', '--registry', target]));
    expect(Object.values(info.counts).every((n) => n === 0)).toBe(true);
  });
});
