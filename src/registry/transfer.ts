/**
 * `registry export` / `registry import`: every table of a registry as JSON lines, so data moves
 * between SQLite and PostgreSQL in both directions.
 *
 * File layout (one JSON document a line):
 *   {"format":"modelprint-registry","version":1,"schemaVersion":1,"backend":"sqlite","exportedAt":"…"}
 *   {"table":"models","row":{…ModelRecord}}               parents always before the rows that refer to them
 *   {"table":"fingerprints","row":{…,"payload":"<base64>"}}
 *   {"end":true,"counts":{"models":3,…}}                   a truncated file has no trailer and is refused
 *
 * Import checks the whole file first (nothing is written when a line is bad), then stores each
 * row unless an equal one is there (Registry.importRecord), remapping ids for foreign keys. So
 * importing the same file twice changes nothing, and an interrupted import can simply be re-run.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { z } from 'zod';
import { ModelprintError, messageOf } from '../errors.js';
import { LATEST_SCHEMA_VERSION } from './migrations.js';
import { payloadProblem } from './payloads.js';
import type { FingerprintRecord, ImportRecord, Registry } from './types.js';

export const EXPORT_FORMAT = 'modelprint-registry';
export const EXPORT_VERSION = 1;
export const TABLES = ['models', 'probe_sets', 'fingerprints', 'runs', 'model_errors'] as const;
export type TableName = (typeof TABLES)[number];
export type TableCounts = Record<TableName, number>;

const PAGE = 500;
const zeroCounts = (): TableCounts => ({ models: 0, probe_sets: 0, fingerprints: 0, runs: 0, model_errors: 0 });

const id = z.number().int().positive();
const refId = z.number().int().positive().nullable();
const text = z.string();
const optText = z.string().nullable();
const json = z.record(z.string(), z.unknown());

const ModelRow = z.object({
  id,
  name: z.string().min(1),
  source: text,
  revision: optText,
  contentHash: optText,
  family: optText,
  modelType: optText,
  displayName: optText,
  baseModel: optText,
  downloads: z.number().nullable(),
  likes: z.number().nullable(),
  tags: z.array(z.string()),
  format: optText,
  createdAt: text,
});
const ProbeSetRow = z.object({
  id,
  method: text,
  paramsHash: text,
  params: json,
  sourceKey: text,
  prompts: z.array(z.string()),
  createdAt: text,
});
const FingerprintRow = z.object({
  id,
  modelKey: text,
  modelId: refId,
  probeSetId: refId,
  method: text,
  configHash: text,
  payload: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
  createdAt: text,
});
const RunRow = z.object({
  id,
  kind: text,
  config: json,
  status: z.enum(['running', 'done', 'failed', 'interrupted', 'partial']),
  startedAt: text,
  finishedAt: optText,
  summary: json.nullable(),
});
const ErrorRow = z.object({ id, runId: refId, modelRef: text, code: text, message: text, createdAt: text });

const Line = z.discriminatedUnion('table', [
  z.object({ table: z.literal('models'), row: ModelRow }),
  z.object({ table: z.literal('probe_sets'), row: ProbeSetRow }),
  z.object({ table: z.literal('fingerprints'), row: FingerprintRow }),
  z.object({ table: z.literal('runs'), row: RunRow }),
  z.object({ table: z.literal('model_errors'), row: ErrorRow }),
]);
type Line = z.infer<typeof Line>;

const Header = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.literal(EXPORT_VERSION),
  schemaVersion: z.number().int().nonnegative(),
  backend: z.string(),
  exportedAt: z.string(),
});
const Trailer = z.object({
  end: z.literal(true),
  counts: z.object({
    models: z.number().int(),
    probe_sets: z.number().int(),
    fingerprints: z.number().int(),
    runs: z.number().int(),
    model_errors: z.number().int(),
  }),
});

export interface ExportResult {
  out: string;
  backend: string;
  schemaVersion: number;
  counts: TableCounts;
  bytes: number;
}

/** Writes every table of `reg` to `out` as JSON lines (temp file, fsync, rename). */
export async function exportRegistry(reg: Registry, out: string): Promise<ExportResult> {
  const file = path.resolve(out);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (e) {
    throw new ModelprintError('E_IO', `cannot create the folder of ${out}: ${messageOf(e)}`, { subject: out, cause: e });
  }
  const info = await reg.info();
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, 'w');
  } catch (e) {
    throw new ModelprintError('E_IO', `cannot write ${out}: ${messageOf(e)}`, { subject: out, hint: 'choose a writable --output', cause: e });
  }
  const counts = zeroCounts();
  let buf: string[] = [];
  let bufLen = 0;
  let bytes = 0;
  const flush = async () => {
    if (!buf.length) return;
    const chunk = Buffer.from(buf.join(''));
    await fh.write(chunk);
    bytes += chunk.length;
    buf = [];
    bufLen = 0;
  };
  const write = async (doc: unknown) => {
    const s = `${JSON.stringify(doc)}\n`;
    buf.push(s);
    bufLen += s.length;
    if (bufLen > 1 << 20) await flush();
  };
  const row = async (table: TableName, r: object) => {
    await write({ table, row: r });
    counts[table]++;
  };

  // Rows written so far, per table: a child row is written only after its parent.
  const seen = { models: new Set<number>(), probe_sets: new Set<number>(), runs: new Set<number>() };
  // A registry in use may gain rows while we read it: a parent created after we listed its
  // table is fetched and written just before its first child.
  const ensureModel = async (mid: number | null | undefined): Promise<number | null> => {
    if (mid === null || mid === undefined) return null;
    if (seen.models.has(mid)) return mid;
    const m = await reg.getModel(mid);
    if (!m || m.id !== mid) return null;
    seen.models.add(mid);
    await row('models', m);
    return mid;
  };
  const ensureProbeSet = async (pid: number | null | undefined): Promise<number | null> => {
    if (pid === null || pid === undefined) return null;
    if (seen.probe_sets.has(pid)) return pid;
    const [p] = await reg.listProbeSets({ afterId: pid - 1, limit: 1 });
    if (!p || p.id !== pid) return null;
    seen.probe_sets.add(pid);
    await row('probe_sets', p);
    return pid;
  };
  const ensureRun = async (rid: number | null): Promise<number | null> => {
    if (rid === null) return null;
    if (seen.runs.has(rid)) return rid;
    const [r] = await reg.listAllRuns({ afterId: rid - 1, limit: 1 });
    if (!r || r.id !== rid) return null;
    seen.runs.add(rid);
    await row('runs', r);
    return rid;
  };

  try {
    await write({ format: EXPORT_FORMAT, version: EXPORT_VERSION, schemaVersion: info.schemaVersion, backend: info.backend, exportedAt: new Date().toISOString() });
    for (const m of await reg.listModels()) {
      seen.models.add(m.id);
      await row('models', m);
    }
    for (let after = 0; ; ) {
      const page = await reg.listProbeSets({ afterId: after, limit: PAGE });
      for (const p of page) {
        if (seen.probe_sets.has(p.id)) continue;
        seen.probe_sets.add(p.id);
        await row('probe_sets', p);
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    for (let after = 0; ; ) {
      const page: FingerprintRecord[] = await reg.listFingerprints({ afterId: after, limit: PAGE });
      for (const f of page) {
        const modelId = await ensureModel(f.modelId);
        const probeSetId = await ensureProbeSet(f.probeSetId);
        await row('fingerprints', { ...f, modelId, probeSetId, payload: f.payload.toString('base64') });
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    for (let after = 0; ; ) {
      const page = await reg.listAllRuns({ afterId: after, limit: PAGE });
      for (const r of page) {
        if (seen.runs.has(r.id)) continue;
        seen.runs.add(r.id);
        await row('runs', r);
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    for (const e of await reg.listErrors()) {
      await row('model_errors', { ...e, runId: await ensureRun(e.runId) });
    }
    await write({ end: true, counts });
    await flush();
    await fh.sync();
    await fh.close();
    fs.renameSync(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    fs.rmSync(tmp, { force: true });
    if (e instanceof ModelprintError) throw e;
    throw new ModelprintError('E_IO', `cannot write ${out}: ${messageOf(e)}`, { subject: out, cause: e });
  }
  return { out: file, backend: info.backend, schemaVersion: info.schemaVersion, counts, bytes };
}

export interface ImportResult {
  file: string;
  source: { backend: string; schemaVersion: number; exportedAt: string };
  inserted: TableCounts;
  existing: TableCounts;
}

function badLine(file: string, n: number, what: string, hint = 'the file must come from `modelprint registry export`'): ModelprintError {
  return new ModelprintError('E_INPUT', `${file} line ${n}: ${what}`, { subject: `${file}:${n}`, hint });
}

function zodProblem(e: z.ZodError): string {
  const i = e.issues[0];
  return i.path.length ? `field "${i.path.join('.')}": ${i.message}` : i.message;
}

async function* lines(file: string): AsyncGenerator<[number, string]> {
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const l of rl) {
      n++;
      if (l.trim() !== '') yield [n, l];
    }
  } finally {
    rl.close();
  }
}

function parseJsonLine(file: string, n: number, l: string): unknown {
  try {
    return JSON.parse(l) as unknown;
  } catch (e) {
    throw badLine(file, n, `not JSON (${messageOf(e)})`);
  }
}

/** Checks the whole export file: header, every row, references, trailer. Writes nothing. */
async function validate(file: string): Promise<z.infer<typeof Header>> {
  let header: z.infer<typeof Header> | null = null;
  let trailer: z.infer<typeof Trailer> | null = null;
  const counts = zeroCounts();
  const ids = { models: new Set<number>(), probe_sets: new Set<number>(), runs: new Set<number>() };
  for await (const [n, l] of lines(file)) {
    const doc = parseJsonLine(file, n, l);
    if (!header) {
      const h = Header.safeParse(doc);
      if (!h.success) throw badLine(file, n, `not a modelprint registry export header (${zodProblem(h.error)})`);
      if (h.data.schemaVersion > LATEST_SCHEMA_VERSION) {
        throw badLine(file, n, `exported from schema version ${h.data.schemaVersion}, newer than this modelprint (${LATEST_SCHEMA_VERSION})`, 'import it with a newer modelprint');
      }
      header = h.data;
      continue;
    }
    if (trailer) throw badLine(file, n, 'data after the end marker');
    if (doc && typeof doc === 'object' && 'end' in doc) {
      const t = Trailer.safeParse(doc);
      if (!t.success) throw badLine(file, n, `bad end marker (${zodProblem(t.error)})`);
      trailer = t.data;
      continue;
    }
    const p = Line.safeParse(doc);
    if (!p.success) throw badLine(file, n, zodProblem(p.error));
    const { table, row } = p.data;
    counts[table]++;
    const ref = (set: Set<number>, v: number | null, what: string) => {
      if (v !== null && !set.has(v)) throw badLine(file, n, `refers to ${what} id ${v}, which is not in the file before it`);
    };
    if (table === 'fingerprints') {
      const f = p.data.row;
      ref(ids.models, f.modelId, 'model');
      ref(ids.probe_sets, f.probeSetId, 'probe set');
      const problem = payloadProblem(f.method, f.modelKey, Buffer.from(f.payload, 'base64'));
      if (problem) {
        throw badLine(file, n, `the ${f.method} fingerprint of ${JSON.stringify(f.modelKey)} (row id ${f.id}) ${problem}`, 'the payload was altered or does not belong to that model; nothing was imported');
      }
    } else if (table === 'model_errors') {
      ref(ids.runs, p.data.row.runId, 'run');
    } else if (table in ids) {
      ids[table as keyof typeof ids].add(row.id);
    }
  }
  if (!header) throw badLine(file, 1, 'empty file, not a modelprint registry export');
  if (!trailer) throw badLine(file, 0, 'no end marker: the file is truncated', 'export it again');
  for (const t of TABLES) {
    if (trailer.counts[t] !== counts[t]) {
      throw badLine(file, 0, `the end marker counts ${trailer.counts[t]} ${t} rows but the file has ${counts[t]}`, 'export it again');
    }
  }
  return header;
}

function toImport(l: Line, maps: Record<'models' | 'probe_sets' | 'runs', Map<number, number>>): ImportRecord {
  const map = (m: Map<number, number>, v: number | null) => (v === null ? null : (m.get(v) ?? null));
  switch (l.table) {
    case 'models': {
      const { id: _id, ...record } = l.row;
      return { table: 'models', record };
    }
    case 'probe_sets': {
      const { id: _id, ...record } = l.row;
      return { table: 'probe_sets', record };
    }
    case 'fingerprints': {
      const { id: _id, ...r } = l.row;
      return {
        table: 'fingerprints',
        record: { ...r, modelId: map(maps.models, r.modelId), probeSetId: map(maps.probe_sets, r.probeSetId), payload: Buffer.from(r.payload, 'base64') },
      };
    }
    case 'runs': {
      const { id: _id, ...record } = l.row;
      return { table: 'runs', record };
    }
    case 'model_errors': {
      const { id: _id, ...r } = l.row;
      return { table: 'model_errors', record: { ...r, runId: map(maps.runs, r.runId) } };
    }
  }
}

/** Imports an export file into `reg`: idempotent, ids remapped. */
export async function importRegistry(reg: Registry, file: string): Promise<ImportResult> {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isFile()) {
    throw new ModelprintError('E_NOT_FOUND', `export file ${file} does not exist`, {
      subject: file,
      hint: 'make one with `modelprint registry export --output <file.jsonl>`',
    });
  }
  const header = await validate(abs);
  const inserted = zeroCounts();
  const existing = zeroCounts();
  const maps = { models: new Map<number, number>(), probe_sets: new Map<number, number>(), runs: new Map<number, number>() };
  let first = true;
  for await (const [, l] of lines(abs)) {
    if (first) {
      first = false;
      continue;
    }
    const doc = JSON.parse(l) as { end?: boolean };
    if (doc.end === true) break;
    const line = Line.parse(doc);
    const r = await reg.importRecord(toImport(line, maps));
    (r.inserted ? inserted : existing)[line.table]++;
    if (line.table in maps) maps[line.table as keyof typeof maps].set(line.row.id, r.id);
  }
  return { file: abs, source: { backend: header.backend, schemaVersion: header.schemaVersion, exportedAt: header.exportedAt }, inserted, existing };
}
