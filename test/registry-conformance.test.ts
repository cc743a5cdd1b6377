/**
 * One behaviour for every storage backend: the same suite runs against SQLite and a real
 * PostgreSQL server (see helpers/pg.ts), each test on a fresh, empty registry.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelprintError } from '../src/errors.js';
import { PostgresRegistry } from '../src/registry/postgres.js';
import { SqliteRegistry } from '../src/registry/sqlite.js';
import type { Registry } from '../src/registry/types.js';
import { tmpDir } from './helpers/cli.js';
import { ADMIN_PASSWORD, ADMIN_USER, startPostgres, type PgServer } from './helpers/pg.js';

let server: PgServer | undefined;
const opened: Registry[] = [];

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  for (const r of opened) await r.close();
  await server?.stop();
});

const backends: Array<[string, () => Promise<Registry>]> = [
  ['sqlite', async () => SqliteRegistry.open(path.join(tmpDir(), 'registry.db'))],
  [
    'postgres',
    async () => {
      if (!server) throw new Error('the PostgreSQL test server did not start (see beforeAll)');
      const db = await server.createDatabase({ migrate: true });
      return PostgresRegistry.open(server.url(ADMIN_USER, ADMIN_PASSWORD, db));
    },
  ],
];

describe.each(backends)('registry conformance: %s', (backend, make) => {
  const fresh = async () => {
    const r = await make();
    opened.push(r);
    return r;
  };

  it('reports its backend, schema version and counts', async () => {
    const r = await fresh();
    const info = await r.info();
    expect(info).toMatchObject({ backend, schemaVersion: 1, counts: { models: 0, probeSets: 0, fingerprints: 0, runs: 0, errors: 0 } });
    expect(r.backend).toBe(backend);
    expect(r.appliedMigrations).toEqual(backend === 'sqlite' ? [1] : []);
  });

  it('adds, gets, lists and removes models', async () => {
    const r = await fresh();
    const a = await r.addModel({
      name: 'org/alpha',
      source: '/models/alpha',
      revision: 'abc',
      contentHash: 'h'.repeat(64),
      family: 'alpha',
      modelType: 'Base',
      displayName: 'Alpha',
      baseModel: null,
      downloads: 12_345_678_901,
      likes: 7,
      tags: ['x', 'y'],
      format: 'onnx',
    });
    expect(a).toMatchObject({
      name: 'org/alpha',
      source: '/models/alpha',
      revision: 'abc',
      family: 'alpha',
      modelType: 'Base',
      displayName: 'Alpha',
      baseModel: null,
      downloads: 12_345_678_901,
      likes: 7,
      tags: ['x', 'y'],
      format: 'onnx',
    });
    expect(typeof a.id).toBe('number');
    expect(a.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const b = await r.addModel({ name: 'beta', source: '/models/beta', family: 'beta' });
    expect(b).toMatchObject({ revision: null, contentHash: null, downloads: null, likes: null, tags: [], format: null });
    const numeric = await r.addModel({ name: '999', source: '/models/n' });

    expect(await r.getModel(a.id)).toEqual(a);
    expect(await r.getModel(String(a.id))).toEqual(a);
    expect(await r.getModel('org/alpha')).toEqual(a);
    expect((await r.getModel('999'))?.id).toBe(numeric.id); // no model with id 999: falls back to the name
    expect(await r.getModel('nope')).toBeNull();
    expect((await r.listModels()).map((m) => m.name)).toEqual(['org/alpha', 'beta', '999']);
    expect((await r.listModels({ family: 'beta' })).map((m) => m.name)).toEqual(['beta']);

    const dup = await r.addModel({ name: 'beta', source: '/elsewhere' }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(ModelprintError);
    expect(dup).toMatchObject({ code: 'E_INPUT' });

    expect(await r.removeModel('beta')).toBe(true);
    expect(await r.removeModel('beta')).toBe(false);
    expect(await r.removeModel(a.id)).toBe(true);
    expect((await r.listModels()).map((m) => m.name)).toEqual(['999']);
    expect((await r.info()).counts.models).toBe(1);
  });

  it('stores a probe set once per (method, params hash, source)', async () => {
    const r = await fresh();
    const input = { method: 'bottomk', paramsHash: 'p1', params: { k: 3, nested: { a: [1, 2] } }, sourceKey: 'src', prompts: ['a', 'b c', 'ünïcödé'] };
    const p = await r.putProbeSet(input);
    expect(p).toMatchObject(input);
    const again = await r.putProbeSet({ ...input, prompts: ['different'] });
    expect(again).toEqual(p);
    const other = await r.putProbeSet({ ...input, sourceKey: 'other' });
    expect(other.id).not.toBe(p.id);
    expect(await r.findProbeSet('bottomk', 'p1', 'src')).toEqual(p);
    expect(await r.findProbeSet('bottomk', 'p1', 'missing')).toBeNull();
    expect(await r.listProbeSets()).toEqual([p, other]);
    expect(await r.listProbeSets({ afterId: p.id })).toEqual([other]);
    expect(await r.listProbeSets({ limit: 1 })).toEqual([p]);
  });

  it('stores a fingerprint once per (model key, method, config) with its binary payload', async () => {
    const r = await fresh();
    const m = await r.addModel({ name: 'm', source: '/m' });
    const ps = await r.putProbeSet({ method: 'bottomk', paramsHash: 'p', params: {}, sourceKey: 's', prompts: [] });
    const payload = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const f = await r.putFingerprint({ modelKey: 'key1', modelId: m.id, probeSetId: ps.id, method: 'bottomk', configHash: 'c1', payload });
    expect(f).toMatchObject({ modelKey: 'key1', modelId: m.id, probeSetId: ps.id, method: 'bottomk', configHash: 'c1' });
    expect(Buffer.compare(f.payload, payload)).toBe(0);
    const again = await r.putFingerprint({ modelKey: 'key1', method: 'bottomk', configHash: 'c1', payload: Buffer.from('other') });
    expect(again).toEqual(f); // the first one stays
    const g = await r.putFingerprint({ modelKey: 'key1', method: 'bottomk', configHash: 'c2', payload: Buffer.alloc(0) });
    expect(g.payload.length).toBe(0);
    expect(g).toMatchObject({ modelId: null, probeSetId: null });
    expect(await r.findFingerprint('key1', 'bottomk', 'c1')).toEqual(f);
    expect(await r.findFingerprint('key1', 'other', 'c1')).toBeNull();
    expect(await r.listFingerprints()).toEqual([f, g]);
    expect(await r.listFingerprints({ afterId: f.id, limit: 10 })).toEqual([g]);
    // Removing the model keeps its fingerprints, unlinked.
    await r.removeModel(m.id);
    expect((await r.findFingerprint('key1', 'bottomk', 'c1'))?.modelId).toBeNull();
    expect((await r.info()).counts).toMatchObject({ fingerprints: 2, probeSets: 1 });
  });

  it('records runs and errors', async () => {
    const r = await fresh();
    const a = await r.startRun('identify', { models: [1, 2], opts: { k: 5 } });
    expect(a).toMatchObject({ kind: 'identify', config: { models: [1, 2], opts: { k: 5 } }, status: 'running', finishedAt: null, summary: null });
    const b = await r.startRun('experiment', {});
    await r.finishRun(a.id, 'done', { ok: 2 });
    const runs = await r.listRuns();
    expect(runs.map((x) => x.id)).toEqual([b.id, a.id]);
    expect(runs[1]).toMatchObject({ status: 'done', summary: { ok: 2 } });
    expect(runs[1].finishedAt).toMatch(/^\d{4}-/);
    expect((await r.listRuns(1)).map((x) => x.id)).toEqual([b.id]);
    expect((await r.listAllRuns()).map((x) => x.id)).toEqual([a.id, b.id]);

    await r.recordError(a.id, 'model-x', 'E_MODEL_LOAD', 'cannot load');
    await r.recordError(null, 'model-y', 'E_TOKENIZER', 'no tokenizer');
    const all = await r.listErrors();
    expect(all.map((e) => [e.runId, e.modelRef, e.code, e.message])).toEqual([
      [a.id, 'model-x', 'E_MODEL_LOAD', 'cannot load'],
      [null, 'model-y', 'E_TOKENIZER', 'no tokenizer'],
    ]);
    expect((await r.listErrors(a.id)).map((e) => e.modelRef)).toEqual(['model-x']);
    expect((await r.info()).counts).toMatchObject({ runs: 2, errors: 2 });
  });

  it('imports exported records once, keeping their timestamps', async () => {
    const r = await fresh();
    const model = { name: 'imp', source: '/s', revision: null, contentHash: 'c', family: 'f', modelType: null, displayName: null, baseModel: null, downloads: 3, likes: null, tags: ['t'], format: 'onnx', createdAt: '2020-01-01T00:00:00.000Z' };
    const m1 = await r.importRecord({ table: 'models', record: model });
    expect(m1.inserted).toBe(true);
    expect(await r.importRecord({ table: 'models', record: { ...model, source: '/changed' } })).toEqual({ id: m1.id, inserted: false });
    expect(await r.getModel('imp')).toMatchObject({ ...model, id: m1.id });

    const ps = { method: 'm', paramsHash: 'h', params: { a: 1 }, sourceKey: 's', prompts: ['p'], createdAt: '2020-01-02T00:00:00.000Z' };
    const p1 = await r.importRecord({ table: 'probe_sets', record: ps });
    expect(await r.importRecord({ table: 'probe_sets', record: ps })).toEqual({ id: p1.id, inserted: false });

    const fp = { modelKey: 'k', modelId: m1.id, probeSetId: p1.id, method: 'm', configHash: 'c', payload: Buffer.from([0, 255, 1]), createdAt: '2020-01-03T00:00:00.000Z' };
    const f1 = await r.importRecord({ table: 'fingerprints', record: fp });
    expect(await r.importRecord({ table: 'fingerprints', record: fp })).toEqual({ id: f1.id, inserted: false });
    expect(await r.findFingerprint('k', 'm', 'c')).toEqual({ ...fp, id: f1.id });

    const run = { kind: 'k', config: { x: 1 }, status: 'partial' as const, startedAt: '2020-01-04T00:00:00.000Z', finishedAt: '2020-01-04T00:01:00.000Z', summary: { n: 1 } };
    const r1 = await r.importRecord({ table: 'runs', record: run });
    expect(await r.importRecord({ table: 'runs', record: run })).toEqual({ id: r1.id, inserted: false });
    expect(await r.listAllRuns()).toEqual([{ ...run, id: r1.id }]);

    for (const runId of [r1.id, null]) {
      const err = { runId, modelRef: 'x', code: 'E', message: 'msg', createdAt: '2020-01-05T00:00:00.000Z' };
      const e1 = await r.importRecord({ table: 'model_errors', record: err });
      expect(e1.inserted).toBe(true);
      expect(await r.importRecord({ table: 'model_errors', record: err })).toEqual({ id: e1.id, inserted: false });
    }
    expect((await r.info()).counts).toEqual({ models: 1, probeSets: 1, fingerprints: 1, runs: 1, errors: 2 });
  });
});
