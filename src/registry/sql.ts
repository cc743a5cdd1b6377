/**
 * The registry's SQL, once for every backend. Each statement is written with PostgreSQL's
 * numbered placeholders (`$1`, `$2`, … a number may repeat) in SQL that SQLite (3.39+) and
 * PostgreSQL both accept: `INSERT … ON CONFLICT … DO NOTHING`, `RETURNING`, `CAST(… AS …)`,
 * `IS NOT DISTINCT FROM`. A backend supplies only what truly differs: how a statement is run
 * on its driver (and its errors mapped), how migrations are serialised between processes,
 * and how the registry is opened and closed.
 */
import { ModelprintError } from '../errors.js';
import { MIGRATIONS, renderMigration } from './migrations.js';
import { errorFromRow, fingerprintFromRow, modelFromRow, now, probeSetFromRow, runFromRow } from './rows.js';
import type {
  FingerprintInput,
  FingerprintRecord,
  ImportRecord,
  ModelErrorRecord,
  ModelInput,
  ModelRecord,
  Page,
  ProbeSetInput,
  ProbeSetRecord,
  Registry,
  RegistryInfo,
  RunRecord,
} from './types.js';

export type Row = Record<string, unknown>;
export type Dialect = 'sqlite' | 'postgres';

const MODEL_COLUMNS = 'name, source, revision, content_hash, family, model_type, display_name, base_model, downloads, likes, tags, format, created_at';
const PROBE_SET_COLUMNS = 'method, params_hash, params, source_key, prompts, created_at';
const FINGERPRINT_COLUMNS = 'model_key, model_id, probe_set_id, method, config_hash, payload, created_at';
const ERROR_COLUMNS = 'run_id, model_ref, code, message, created_at';

const INSERT_MODEL = `INSERT INTO models (${MODEL_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) ON CONFLICT (name) DO NOTHING`;
const INSERT_PROBE_SET = `INSERT INTO probe_sets (${PROBE_SET_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (method, params_hash, source_key) DO NOTHING`;
const INSERT_FINGERPRINT = `INSERT INTO fingerprints (${FINGERPRINT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (model_key, method, config_hash) DO NOTHING`;
const MODEL_BY_NAME = 'SELECT * FROM models WHERE name = $1';
const PROBE_SET_BY_KEY = 'SELECT * FROM probe_sets WHERE method = $1 AND params_hash = $2 AND source_key = $3';
const FINGERPRINT_BY_KEY = 'SELECT * FROM fingerprints WHERE model_key = $1 AND method = $2 AND config_hash = $3';
/** Runs and errors have no unique key: an equal row is one with the same kind, start and config (all fields). */
const RUN_MATCH = 'kind = CAST($1 AS TEXT) AND started_at = CAST($2 AS TEXT) AND config = CAST($3 AS TEXT)';
const ERROR_MATCH = `run_id IS NOT DISTINCT FROM CAST($1 AS BIGINT) AND model_ref = CAST($2 AS TEXT) AND code = CAST($3 AS TEXT)
  AND message = CAST($4 AS TEXT) AND created_at = CAST($5 AS TEXT)`;

const modelParams = (m: ModelInput, createdAt: string): unknown[] => [
  m.name,
  m.source,
  m.revision ?? null,
  m.contentHash ?? null,
  m.family ?? null,
  m.modelType ?? null,
  m.displayName ?? null,
  m.baseModel ?? null,
  m.downloads ?? null,
  m.likes ?? null,
  JSON.stringify(m.tags ?? []),
  m.format ?? null,
  createdAt,
];
const probeSetParams = (p: ProbeSetInput, createdAt: string): unknown[] => [
  p.method,
  p.paramsHash,
  JSON.stringify(p.params),
  p.sourceKey,
  JSON.stringify(p.prompts),
  createdAt,
];
const fingerprintParams = (f: FingerprintInput, createdAt: string): unknown[] => [
  f.modelKey,
  f.modelId ?? null,
  f.probeSetId ?? null,
  f.method,
  f.configHash,
  f.payload,
  createdAt,
];

/** One statement and its parameters. */
export type Statement = [sql: string, params: unknown[]];

/** The unique keys of probe sets and fingerprints, as PROBE_SET_BY_KEY / FINGERPRINT_BY_KEY take them. */
const probeSetKey = (p: ProbeSetInput): unknown[] => [p.method, p.paramsHash, p.sourceKey];
const fingerprintKey = (f: FingerprintInput): unknown[] => [f.modelKey, f.method, f.configHash];

/**
 * The steps that apply the migrations not yet recorded in schema_migrations: each yields a
 * statement and takes back its rows, so a synchronous driver (SQLite) and an asynchronous one
 * (PostgreSQL) run the same steps (`runMigrations`). The caller holds the lock that makes
 * this exclusive (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so what is applied
 * is read again under it. Returns the versions applied.
 */
export function* migrationSteps(dialect: Dialect): Generator<Statement, number[], Row[]> {
  yield ['CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)', []];
  const applied = new Set((yield ['SELECT version FROM schema_migrations', []]).map((r) => Number(r.version)));
  const done: number[] = [];
  for (const m of MIGRATIONS) {
    if (applied.has(m.version)) continue;
    for (const stmt of splitStatements(renderMigration(m.sql, dialect))) yield [stmt, []];
    yield ['INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now()]];
    done.push(m.version);
  }
  return done;
}

/** A migration's statements (they hold no `;` inside strings). */
function splitStatements(sql: string): string[] {
  return sql
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The Registry interface on top of a backend's `query`. */
export abstract class SqlRegistry implements Registry {
  abstract readonly backend: Dialect;
  readonly appliedMigrations: number[] = [];

  /** Where the registry is, as shown to users (a PostgreSQL URL with its password redacted). */
  protected abstract readonly where: string;
  /** Runs one statement; errors become ModelprintError naming the registry. */
  protected abstract query(sql: string, params?: unknown[]): Promise<Row[]>;
  abstract close(): Promise<void>;

  private async one(sql: string, params: unknown[]): Promise<Row | null> {
    return (await this.query(sql, params))[0] ?? null;
  }

  async info(): Promise<RegistryInfo> {
    const r = (await this.one(
      `SELECT (SELECT MAX(version) FROM schema_migrations) AS v,
              (SELECT COUNT(*) FROM models) AS models, (SELECT COUNT(*) FROM probe_sets) AS probe_sets,
              (SELECT COUNT(*) FROM fingerprints) AS fingerprints, (SELECT COUNT(*) FROM runs) AS runs,
              (SELECT COUNT(*) FROM model_errors) AS errors`,
      [],
    )) as Row;
    return {
      backend: this.backend,
      location: this.where,
      schemaVersion: Number(r.v ?? 0),
      counts: {
        models: Number(r.models),
        probeSets: Number(r.probe_sets),
        fingerprints: Number(r.fingerprints),
        runs: Number(r.runs),
        errors: Number(r.errors),
      },
    };
  }

  async registerModel(m: ModelInput): Promise<{ record: ModelRecord; inserted: boolean }> {
    const row = await this.insertThenSelect(`${INSERT_MODEL} RETURNING *`, modelParams(m, now()), MODEL_BY_NAME, [m.name]);
    return { record: modelFromRow(row.row), inserted: row.inserted };
  }

  async addModel(m: ModelInput): Promise<ModelRecord> {
    const { record, inserted } = await this.registerModel(m);
    if (!inserted) {
      throw new ModelprintError('E_INPUT', `a model named "${m.name}" is already registered`, {
        subject: m.name,
        hint: 'pick another --name, or `modelprint models remove` the old one first',
      });
    }
    return record;
  }

  async getModel(ref: string | number): Promise<ModelRecord | null> {
    const byId = (typeof ref === 'number' || /^\d+$/.test(ref)) && Number.isSafeInteger(Number(ref));
    const row = (byId ? await this.one('SELECT * FROM models WHERE id = $1', [Number(ref)]) : null) ?? (await this.one(MODEL_BY_NAME, [String(ref)]));
    return row ? modelFromRow(row) : null;
  }

  async listModels(filter: { family?: string } = {}): Promise<ModelRecord[]> {
    const rows = filter.family
      ? await this.query('SELECT * FROM models WHERE family = $1 ORDER BY id', [filter.family])
      : await this.query('SELECT * FROM models ORDER BY id');
    return rows.map(modelFromRow);
  }

  async removeModel(ref: string | number): Promise<boolean> {
    const m = await this.getModel(ref);
    if (!m) return false;
    return (await this.query('DELETE FROM models WHERE id = $1 RETURNING id', [m.id])).length > 0;
  }

  /**
   * `insert` (… ON CONFLICT DO NOTHING / WHERE NOT EXISTS … RETURNING) and, when it stored
   * nothing, the row already there (a concurrent writer's, maybe) read by `select`.
   */
  private async insertThenSelect(insert: string, params: unknown[], select: string, key: unknown[]): Promise<{ row: Row; inserted: boolean }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const ins = await this.query(insert, params);
      if (ins.length) return { row: ins[0], inserted: true };
      const hit = await this.one(select, key);
      if (hit) return { row: hit, inserted: false };
    }
    throw new ModelprintError('E_REGISTRY', `registry ${this.where}: a row vanished while it was being stored`, {
      subject: this.where,
      hint: 'someone is deleting rows concurrently; retry',
    });
  }

  async putProbeSet(p: ProbeSetInput): Promise<ProbeSetRecord> {
    return probeSetFromRow((await this.insertThenSelect(`${INSERT_PROBE_SET} RETURNING *`, probeSetParams(p, now()), PROBE_SET_BY_KEY, probeSetKey(p))).row);
  }

  async findProbeSet(method: string, paramsHash: string, sourceKey: string): Promise<ProbeSetRecord | null> {
    const row = await this.one(PROBE_SET_BY_KEY, [method, paramsHash, sourceKey]);
    return row ? probeSetFromRow(row) : null;
  }

  /** Rows of a table in id order, one page. */
  private page(table: string, page: Page = {}): Promise<Row[]> {
    const limit = page.limit === undefined ? '' : ' LIMIT $2';
    const params = page.limit === undefined ? [page.afterId ?? 0] : [page.afterId ?? 0, page.limit];
    return this.query(`SELECT * FROM ${table} WHERE id > $1 ORDER BY id${limit}`, params);
  }

  async listProbeSets(page?: Page): Promise<ProbeSetRecord[]> {
    return (await this.page('probe_sets', page)).map(probeSetFromRow);
  }

  async putFingerprint(f: FingerprintInput): Promise<FingerprintRecord> {
    return fingerprintFromRow((await this.insertThenSelect(`${INSERT_FINGERPRINT} RETURNING *`, fingerprintParams(f, now()), FINGERPRINT_BY_KEY, fingerprintKey(f))).row);
  }

  async findFingerprint(modelKey: string, method: string, configHash: string): Promise<FingerprintRecord | null> {
    const row = await this.one(FINGERPRINT_BY_KEY, [modelKey, method, configHash]);
    return row ? fingerprintFromRow(row) : null;
  }

  async listFingerprints(page?: Page): Promise<FingerprintRecord[]> {
    return (await this.page('fingerprints', page)).map(fingerprintFromRow);
  }

  async startRun(kind: string, config: Record<string, unknown>): Promise<RunRecord> {
    const row = await this.one('INSERT INTO runs (kind, config, status, started_at) VALUES ($1,$2,$3,$4) RETURNING *', [kind, JSON.stringify(config), 'running', now()]);
    return runFromRow(row as Row);
  }

  async finishRun(id: number, status: RunRecord['status'], summary: Record<string, unknown>): Promise<void> {
    await this.query('UPDATE runs SET status = $1, finished_at = $2, summary = $3 WHERE id = $4', [status, now(), JSON.stringify(summary), id]);
  }

  async listRuns(limit = 50): Promise<RunRecord[]> {
    return (await this.query('SELECT * FROM runs ORDER BY id DESC LIMIT $1', [limit])).map(runFromRow);
  }

  async listAllRuns(page?: Page): Promise<RunRecord[]> {
    return (await this.page('runs', page)).map(runFromRow);
  }

  async recordError(runId: number | null, modelRef: string, code: string, message: string): Promise<void> {
    await this.query(`INSERT INTO model_errors (${ERROR_COLUMNS}) VALUES ($1,$2,$3,$4,$5)`, [runId, modelRef, code, message, now()]);
  }

  async listErrors(runId?: number): Promise<ModelErrorRecord[]> {
    const rows =
      runId === undefined
        ? await this.query('SELECT * FROM model_errors ORDER BY id')
        : await this.query('SELECT * FROM model_errors WHERE run_id = $1 ORDER BY id', [runId]);
    return rows.map(errorFromRow);
  }

  async importRecord(r: ImportRecord): Promise<{ id: number; inserted: boolean }> {
    // One statement each (atomic on both backends): insert unless an equal row is there, then
    // read the id of the one that is.
    const store = async (insert: string, params: unknown[], select: string, key: unknown[]) => {
      const { row, inserted } = await this.insertThenSelect(`${insert} RETURNING id`, params, select, key);
      return { id: Number(row.id), inserted };
    };
    switch (r.table) {
      case 'models':
        return store(INSERT_MODEL, modelParams(r.record, r.record.createdAt), MODEL_BY_NAME, [r.record.name]);
      case 'probe_sets':
        return store(INSERT_PROBE_SET, probeSetParams(r.record, r.record.createdAt), PROBE_SET_BY_KEY, probeSetKey(r.record));
      case 'fingerprints':
        return store(INSERT_FINGERPRINT, fingerprintParams(r.record, r.record.createdAt), FINGERPRINT_BY_KEY, fingerprintKey(r.record));
      case 'runs': {
        const x = r.record;
        const key = [x.kind, x.startedAt, JSON.stringify(x.config)];
        return store(
          `INSERT INTO runs (kind, config, status, started_at, finished_at, summary)
           SELECT CAST($1 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($2 AS TEXT), CAST($5 AS TEXT), CAST($6 AS TEXT)
            WHERE NOT EXISTS (SELECT 1 FROM runs WHERE ${RUN_MATCH})`,
          [...key, x.status, x.finishedAt, x.summary === null ? null : JSON.stringify(x.summary)],
          `SELECT id FROM runs WHERE ${RUN_MATCH} ORDER BY id LIMIT 1`,
          key,
        );
      }
      case 'model_errors': {
        const x = r.record;
        const key = [x.runId, x.modelRef, x.code, x.message, x.createdAt];
        return store(
          `INSERT INTO model_errors (${ERROR_COLUMNS})
           SELECT CAST($1 AS BIGINT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT)
            WHERE NOT EXISTS (SELECT 1 FROM model_errors WHERE ${ERROR_MATCH})`,
          key,
          `SELECT id FROM model_errors WHERE ${ERROR_MATCH} ORDER BY id LIMIT 1`,
          key,
        );
      }
    }
  }
}
