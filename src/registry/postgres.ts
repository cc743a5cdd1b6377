/**
 * PostgreSQL backend of the registry: the shared registry for teams and clusters.
 *
 * Same schema and migrations as SQLite. Who may do what is enforced by PostgreSQL itself
 * through two group roles (see `setupRoles`):
 *
 * - `modelprint_admin` owns the tables; its members read and write everything and apply
 *   migrations (DDL runs under `SET ROLE modelprint_admin`, so new tables are owned by the group).
 * - `modelprint_reader` may SELECT every table, and for its own bookkeeping INSERT runs and
 *   model errors and UPDATE a run's status, finished_at and summary. It may not write models,
 *   probe sets or fingerprints, nor delete anything: PostgreSQL answers SQLSTATE 42501, which
 *   this backend reports as E_PERMISSION.
 */
import pg from 'pg';
import { ModelprintError, messageOf } from '../errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, renderMigration } from './migrations.js';
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

type Row = Record<string, unknown>;

export const ADMIN_ROLE = 'modelprint_admin';
export const READER_ROLE = 'modelprint_reader';
/** Tables only admins write. */
export const SHARED_TABLES = ['models', 'probe_sets', 'fingerprints'] as const;
/** Tables readers may append to for their own bookkeeping. */
export const BOOKKEEPING_TABLES = ['runs', 'model_errors'] as const;
const ALL_TABLES = ['schema_migrations', ...SHARED_TABLES, ...BOOKKEEPING_TABLES];
/** Advisory lock key serialising migrations and role setup ("mprg"). */
const MIGRATION_LOCK = 0x6d707267;

export const PERMISSION_HINT = 'ask a registry admin to grant modelprint_admin, or run with --registry-write read-only (experiment: without --write-to-registry)';

/** The URL with its password (and any password parameter) replaced by ***. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of [...u.searchParams.keys()]) {
      if (/pass/i.test(k)) u.searchParams.set(k, '***');
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@]*@/, '//$1:***@').replace(/(pass\w*=)[^&]*/gi, '$1***');
  }
}

const sqlstate = (e: unknown): string | undefined => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
};

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

function isConnectionError(e: unknown): boolean {
  const code = sqlstate(e) ?? '';
  if (/^(08|28|3D|57P|53)/.test(code)) return true;
  if (/^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ENOTFOUND, ETIMEDOUT, ECONNRESET…
  return /connection terminated|timeout expired|connect(ion)? timeout|server closed the connection/i.test(messageOf(e));
}

function connectionError(e: unknown, location: string): ModelprintError {
  const code = sqlstate(e) ?? '';
  let hint =
    'check that the PostgreSQL server is running and reachable at that host and port, or pass another --registry / MODELPRINT_REGISTRY';
  if (code === '28P01' || code === '28000') {
    hint = 'check the user name and password in the URL (or PGPASSWORD) and that pg_hba.conf lets this user connect';
  } else if (code === '3D000') {
    hint = 'create the database first (e.g. `createdb modelprint`), or fix the database name in the URL';
  } else if (code === '53300') {
    hint = 'the server has too many connections: put a pooler (PgBouncer) in front of it or run fewer processes at once';
  }
  return new ModelprintError('E_REGISTRY', `cannot use the PostgreSQL registry ${location}: ${messageOf(e)}`, {
    subject: location,
    hint,
    cause: e,
  });
}

/** Maps anything the pg driver throws to a ModelprintError naming the (redacted) registry URL. */
export function toRegistryError(e: unknown, location: string): ModelprintError {
  if (e instanceof ModelprintError) return e;
  if (sqlstate(e) === '42501') {
    return new ModelprintError('E_PERMISSION', `the shared registry ${location} refused the change: ${messageOf(e)}`, {
      subject: location,
      hint: PERMISSION_HINT,
      cause: e,
    });
  }
  if (isConnectionError(e)) return connectionError(e, location);
  return new ModelprintError('E_REGISTRY', `registry ${location}: ${messageOf(e)}`, { subject: location, cause: e });
}

function outOfDate(location: string, version: number, cause?: unknown, isAdmin = false): ModelprintError {
  const need = `the shared registry ${location} is at schema version ${version} but this modelprint needs version ${LATEST_SCHEMA_VERSION}`;
  if (isAdmin) {
    return new ModelprintError('E_PERMISSION', `${need}, and PostgreSQL refused the migration: ${messageOf(cause)}`, {
      subject: location,
      hint: `the roles have no privileges in this database yet: run \`modelprint registry migrate --setup-roles --registry <url>\` once as a PostgreSQL superuser`,
      cause,
    });
  }
  return new ModelprintError('E_PERMISSION', `${need}, and only members of ${ADMIN_ROLE} may migrate it`, {
    subject: location,
    hint: `ask a registry admin to run \`modelprint registry migrate --registry ${location}\``,
    cause,
  });
}

function newPool(url: string): pg.Pool {
  const hasTimeout = /[?&]connect_timeout=/i.test(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    idleTimeoutMillis: 10_000,
    application_name: 'modelprint',
    ...(hasTimeout ? {} : { connectionTimeoutMillis: 20_000 }),
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return pool;
}

/** Opens one connection, runs fn on it, closes it; errors mapped to ModelprintError. */
async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const location = redactUrl(url);
  const client = new pg.Client({ connectionString: url, application_name: 'modelprint' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } catch (e) {
    throw toRegistryError(e, location);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function existingTables(c: pg.ClientBase): Promise<string[]> {
  const r = await c.query<{ t: string }>(
    'SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(quote_ident(t)) IS NOT NULL',
    [ALL_TABLES],
  );
  return r.rows.map((x) => x.t);
}

/** Grants the reader its privileges on the tables that exist. Run by the tables' owner (or a superuser). */
async function grantTablePrivileges(c: pg.ClientBase): Promise<void> {
  const readerExists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [READER_ROLE])).rowCount;
  if (!readerExists) return;
  const tables = await existingTables(c);
  const reader = quoteIdent(READER_ROLE);
  for (const t of tables) await c.query(`GRANT SELECT ON ${quoteIdent(t)} TO ${reader}`);
  for (const t of BOOKKEEPING_TABLES) {
    if (!tables.includes(t)) continue;
    await c.query(`GRANT INSERT ON ${quoteIdent(t)} TO ${reader}`);
    const seq = (await c.query<{ s: string | null }>('SELECT pg_get_serial_sequence($1, $2) AS s', [t, 'id'])).rows[0]?.s;
    if (seq) await c.query(`GRANT USAGE ON SEQUENCE ${seq} TO ${reader}`);
  }
  if (tables.includes('runs')) await c.query(`GRANT UPDATE (status, finished_at, summary) ON runs TO ${reader}`);
}

export interface RoleSetup {
  roles: string[];
  created: string[];
  schema: string;
  tablesOwned: string[];
}

/**
 * Creates the group roles modelprint_admin and modelprint_reader (if missing), lets the admin
 * role create tables in the current schema and the reader use it, hands existing registry
 * tables to modelprint_admin and grants the reader its privileges. Idempotent. Needs a
 * PostgreSQL superuser (or a CREATEROLE user owning the database and its tables).
 */
export async function setupRoles(url: string): Promise<RoleSetup> {
  const location = redactUrl(url);
  return withClient(url, async (c) => {
    await c.query('BEGIN');
    try {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const created: string[] = [];
      for (const role of [ADMIN_ROLE, READER_ROLE]) {
        const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount;
        if (!exists) {
          await c.query(`CREATE ROLE ${quoteIdent(role)} NOLOGIN`);
          created.push(role);
        }
      }
      const schema = (await c.query<{ s: string | null }>('SELECT current_schema() AS s')).rows[0]?.s;
      if (!schema) throw new ModelprintError('E_REGISTRY', `registry ${location} has no current schema (empty search_path)`, { subject: location });
      await c.query(`GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(ADMIN_ROLE)}`);
      await c.query(`GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(READER_ROLE)}`);
      const tables = await existingTables(c);
      for (const t of tables) await c.query(`ALTER TABLE ${quoteIdent(t)} OWNER TO ${quoteIdent(ADMIN_ROLE)}`);
      await grantTablePrivileges(c);
      await c.query('COMMIT');
      return { roles: [ADMIN_ROLE, READER_ROLE], created, schema, tablesOwned: tables };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      if (sqlstate(e) === '42501') {
        throw new ModelprintError('E_PERMISSION', `cannot set up the registry roles in ${location}: ${messageOf(e)}`, {
          subject: location,
          hint: 'run `modelprint registry migrate --setup-roles` once as a PostgreSQL superuser (or a CREATEROLE user that owns the database)',
          cause: e,
        });
      }
      throw e;
    }
  });
}

/** Grants (or revokes) membership of modelprint_admin / modelprint_reader to a login role. */
export async function grantRole(
  url: string,
  user: string,
  role: 'admin' | 'reader',
  revoke = false,
): Promise<{ user: string; role: string; granted: boolean }> {
  const location = redactUrl(url);
  const group = role === 'admin' ? ADMIN_ROLE : READER_ROLE;
  return withClient(url, async (c) => {
    if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [group])).rowCount) {
      throw new ModelprintError('E_NOT_FOUND', `role ${group} does not exist in ${location}`, {
        subject: group,
        hint: `run \`modelprint registry migrate --setup-roles --registry ${location}\` as a superuser first`,
      });
    }
    if (!(await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user])).rowCount) {
      throw new ModelprintError('E_NOT_FOUND', `no PostgreSQL role "${user}" in ${location}`, {
        subject: user,
        hint: `create the login first, e.g. CREATE ROLE ${quoteIdent(user)} LOGIN PASSWORD '…'`,
      });
    }
    try {
      await c.query(`${revoke ? 'REVOKE' : 'GRANT'} ${quoteIdent(group)} ${revoke ? 'FROM' : 'TO'} ${quoteIdent(user)}`);
    } catch (e) {
      if (sqlstate(e) === '42501') {
        throw new ModelprintError('E_PERMISSION', `cannot ${revoke ? 'revoke' : 'grant'} ${group} in ${location}: ${messageOf(e)}`, {
          subject: user,
          hint: 'grant roles as a PostgreSQL superuser or a user with CREATEROLE',
          cause: e,
        });
      }
      throw e;
    }
    return { user, role: group, granted: !revoke };
  });
}

/** PostgreSQL backend of the registry (shared registry for teams and clusters). */
export class PostgresRegistry implements Registry {
  readonly backend = 'postgres' as const;
  readonly appliedMigrations: number[] = [];
  private closed = false;

  private constructor(
    /** The URL with its password redacted. */
    readonly location: string,
    private readonly pool: pg.Pool,
  ) {}

  static async open(url: string): Promise<PostgresRegistry> {
    const location = redactUrl(url);
    const reg = new PostgresRegistry(location, newPool(url));
    try {
      await reg.migrate();
    } catch (e) {
      await reg.close().catch(() => undefined);
      throw toRegistryError(e, location);
    }
    return reg;
  }

  private static async appliedVersions(c: pg.ClientBase): Promise<Set<number>> {
    const exists = (await c.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t")).rows[0]?.t;
    if (!exists) return new Set();
    return new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => Number(r.version)));
  }

  /**
   * Applies pending migrations exactly once even when many processes open the registry at the
   * same moment: one transaction under an advisory lock, re-reading what is applied after
   * taking it. An up-to-date registry is only read, so readers can open it.
   */
  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      const before = await PostgresRegistry.appliedVersions(c);
      if (MIGRATIONS.every((m) => before.has(m.version))) return;
      const version = Math.max(0, ...before);
      const roles = (
        await c.query<{ member: boolean | null; can_create: boolean | null }>(
          `SELECT pg_has_role(current_user, r.oid, 'MEMBER') AS member,
                  has_schema_privilege(r.oid, current_schema(), 'CREATE') AS can_create
             FROM pg_roles r WHERE r.rolname = $1`,
          [ADMIN_ROLE],
        )
      ).rows[0];
      // With the roles set up, only admins migrate, as the admin group (so it owns the tables).
      if (roles && !roles.member) throw outOfDate(this.location, version);
      const asAdmin = Boolean(roles?.member && roles.can_create);
      await c.query('BEGIN');
      try {
        await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        if (asAdmin) await c.query(`SET LOCAL ROLE ${quoteIdent(ADMIN_ROLE)}`);
        await c.query(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
        );
        const applied = await PostgresRegistry.appliedVersions(c);
        const done: number[] = [];
        for (const m of MIGRATIONS) {
          if (applied.has(m.version)) continue;
          await c.query(renderMigration(m.sql, 'postgres'));
          await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now()]);
          done.push(m.version);
        }
        if (asAdmin && done.length > 0) await grantTablePrivileges(c);
        await c.query('COMMIT');
        this.appliedMigrations.push(...done);
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        if (sqlstate(e) === '42501') throw outOfDate(this.location, version, e, Boolean(roles?.member));
        throw e;
      }
    } finally {
      c.release();
    }
  }

  private async q(sql: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows as Row[];
    } catch (e) {
      throw toRegistryError(e, this.location);
    }
  }

  async info(): Promise<RegistryInfo> {
    const [r] = await this.q(
      `SELECT (SELECT MAX(version) FROM schema_migrations) AS v,
              (SELECT COUNT(*) FROM models) AS models, (SELECT COUNT(*) FROM probe_sets) AS probe_sets,
              (SELECT COUNT(*) FROM fingerprints) AS fingerprints, (SELECT COUNT(*) FROM runs) AS runs,
              (SELECT COUNT(*) FROM model_errors) AS errors`,
    );
    return {
      backend: 'postgres',
      location: this.location,
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

  async addModel(m: ModelInput): Promise<ModelRecord> {
    const rows = await this.q(
      `INSERT INTO models (name, source, revision, content_hash, family, model_type, display_name, base_model,
         downloads, likes, tags, format, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
       ON CONFLICT (name) DO NOTHING RETURNING *`,
      [
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
        now(),
      ],
    );
    if (rows.length === 0) {
      throw new ModelprintError('E_INPUT', `a model named "${m.name}" is already registered`, {
        subject: m.name,
        hint: 'pick another --name, or `modelprint models remove` the old one first',
      });
    }
    return modelFromRow(rows[0]);
  }

  async getModel(ref: string | number): Promise<ModelRecord | null> {
    const byId = (typeof ref === 'number' || /^\d+$/.test(ref)) && Number.isSafeInteger(Number(ref));
    let rows = byId ? await this.q('SELECT * FROM models WHERE id = $1', [Number(ref)]) : [];
    if (rows.length === 0) rows = await this.q('SELECT * FROM models WHERE name = $1', [String(ref)]);
    return rows.length ? modelFromRow(rows[0]) : null;
  }

  async listModels(filter: { family?: string } = {}): Promise<ModelRecord[]> {
    const rows = filter.family
      ? await this.q('SELECT * FROM models WHERE family = $1 ORDER BY id', [filter.family])
      : await this.q('SELECT * FROM models ORDER BY id');
    return rows.map(modelFromRow);
  }

  async removeModel(ref: string | number): Promise<boolean> {
    const m = await this.getModel(ref);
    if (!m) return false;
    try {
      return ((await this.pool.query('DELETE FROM models WHERE id = $1', [m.id])).rowCount ?? 0) > 0;
    } catch (e) {
      throw toRegistryError(e, this.location);
    }
  }

  /** INSERT … ON CONFLICT DO NOTHING, then read the stored row (a concurrent writer's, maybe). */
  private async insertThenSelect(insert: string, params: unknown[], select: string, key: unknown[]): Promise<Row> {
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.q(insert, params);
      const rows = await this.q(select, key);
      if (rows.length) return rows[0];
    }
    throw new ModelprintError('E_REGISTRY', `registry ${this.location}: a row vanished while it was being stored`, {
      subject: this.location,
      hint: 'someone is deleting rows concurrently; retry',
    });
  }

  async putProbeSet(p: ProbeSetInput): Promise<ProbeSetRecord> {
    const row = await this.insertThenSelect(
      `INSERT INTO probe_sets (method, params_hash, params, source_key, prompts, created_at) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (method, params_hash, source_key) DO NOTHING`,
      [p.method, p.paramsHash, JSON.stringify(p.params), p.sourceKey, JSON.stringify(p.prompts), now()],
      'SELECT * FROM probe_sets WHERE method = $1 AND params_hash = $2 AND source_key = $3',
      [p.method, p.paramsHash, p.sourceKey],
    );
    return probeSetFromRow(row);
  }

  async findProbeSet(method: string, paramsHash: string, sourceKey: string): Promise<ProbeSetRecord | null> {
    const rows = await this.q('SELECT * FROM probe_sets WHERE method = $1 AND params_hash = $2 AND source_key = $3', [
      method,
      paramsHash,
      sourceKey,
    ]);
    return rows.length ? probeSetFromRow(rows[0]) : null;
  }

  private page(table: string, page: Page = {}): Promise<Row[]> {
    return this.q(`SELECT * FROM ${table} WHERE id > $1 ORDER BY id LIMIT $2`, [page.afterId ?? 0, page.limit ?? null]);
  }

  async listProbeSets(page?: Page): Promise<ProbeSetRecord[]> {
    return (await this.page('probe_sets', page)).map(probeSetFromRow);
  }

  async putFingerprint(f: FingerprintInput): Promise<FingerprintRecord> {
    const row = await this.insertThenSelect(
      `INSERT INTO fingerprints (model_key, model_id, probe_set_id, method, config_hash, payload, created_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (model_key, method, config_hash) DO NOTHING`,
      [f.modelKey, f.modelId ?? null, f.probeSetId ?? null, f.method, f.configHash, f.payload, now()],
      'SELECT * FROM fingerprints WHERE model_key = $1 AND method = $2 AND config_hash = $3',
      [f.modelKey, f.method, f.configHash],
    );
    return fingerprintFromRow(row);
  }

  async findFingerprint(modelKey: string, method: string, configHash: string): Promise<FingerprintRecord | null> {
    const rows = await this.q('SELECT * FROM fingerprints WHERE model_key = $1 AND method = $2 AND config_hash = $3', [
      modelKey,
      method,
      configHash,
    ]);
    return rows.length ? fingerprintFromRow(rows[0]) : null;
  }

  async listFingerprints(page?: Page): Promise<FingerprintRecord[]> {
    return (await this.page('fingerprints', page)).map(fingerprintFromRow);
  }

  async startRun(kind: string, config: Record<string, unknown>): Promise<RunRecord> {
    const rows = await this.q('INSERT INTO runs (kind, config, status, started_at) VALUES ($1,$2,$3,$4) RETURNING *', [
      kind,
      JSON.stringify(config),
      'running',
      now(),
    ]);
    return runFromRow(rows[0]);
  }

  async finishRun(id: number, status: RunRecord['status'], summary: Record<string, unknown>): Promise<void> {
    await this.q('UPDATE runs SET status = $1, finished_at = $2, summary = $3 WHERE id = $4', [
      status,
      now(),
      JSON.stringify(summary),
      id,
    ]);
  }

  async listRuns(limit = 50): Promise<RunRecord[]> {
    return (await this.q('SELECT * FROM runs ORDER BY id DESC LIMIT $1', [limit])).map(runFromRow);
  }

  async listAllRuns(page?: Page): Promise<RunRecord[]> {
    return (await this.page('runs', page)).map(runFromRow);
  }

  async recordError(runId: number | null, modelRef: string, code: string, message: string): Promise<void> {
    await this.q('INSERT INTO model_errors (run_id, model_ref, code, message, created_at) VALUES ($1,$2,$3,$4,$5)', [
      runId,
      modelRef,
      code,
      message,
      now(),
    ]);
  }

  async listErrors(runId?: number): Promise<ModelErrorRecord[]> {
    const rows =
      runId === undefined
        ? await this.q('SELECT * FROM model_errors ORDER BY id')
        : await this.q('SELECT * FROM model_errors WHERE run_id = $1 ORDER BY id', [runId]);
    return rows.map(errorFromRow);
  }

  async importRecord(r: ImportRecord): Promise<{ id: number; inserted: boolean }> {
    // Unique keys: insert unless present, then read the id. Runs and errors have no unique key:
    // insert only when no equal row exists.
    const upsert = async (insert: string, params: unknown[], select: string, key: unknown[]) => {
      const ins = await this.q(insert, params);
      if (ins.length) return { id: Number(ins[0].id), inserted: true };
      const rows = await this.q(select, key);
      if (!rows.length) throw new ModelprintError('E_REGISTRY', `registry ${this.location}: import of a ${r.table} row found neither a new nor an existing row`, { subject: this.location });
      return { id: Number(rows[0].id), inserted: false };
    };
    switch (r.table) {
      case 'models': {
        const m = r.record;
        return upsert(
          `INSERT INTO models (name, source, revision, content_hash, family, model_type, display_name, base_model,
             downloads, likes, tags, format, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
           ON CONFLICT (name) DO NOTHING RETURNING id`,
          [m.name, m.source, m.revision, m.contentHash, m.family, m.modelType, m.displayName, m.baseModel, m.downloads, m.likes, JSON.stringify(m.tags), m.format, m.createdAt],
          'SELECT id FROM models WHERE name = $1',
          [m.name],
        );
      }
      case 'probe_sets': {
        const p = r.record;
        return upsert(
          `INSERT INTO probe_sets (method, params_hash, params, source_key, prompts, created_at) VALUES ($1,$2,$3,$4,$5,$6)
           ON CONFLICT (method, params_hash, source_key) DO NOTHING RETURNING id`,
          [p.method, p.paramsHash, JSON.stringify(p.params), p.sourceKey, JSON.stringify(p.prompts), p.createdAt],
          'SELECT id FROM probe_sets WHERE method = $1 AND params_hash = $2 AND source_key = $3',
          [p.method, p.paramsHash, p.sourceKey],
        );
      }
      case 'fingerprints': {
        const f = r.record;
        return upsert(
          `INSERT INTO fingerprints (model_key, model_id, probe_set_id, method, config_hash, payload, created_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (model_key, method, config_hash) DO NOTHING RETURNING id`,
          [f.modelKey, f.modelId ?? null, f.probeSetId ?? null, f.method, f.configHash, f.payload, f.createdAt],
          'SELECT id FROM fingerprints WHERE model_key = $1 AND method = $2 AND config_hash = $3',
          [f.modelKey, f.method, f.configHash],
        );
      }
      case 'runs': {
        const x = r.record;
        const key = [x.kind, x.startedAt, JSON.stringify(x.config)];
        return upsert(
          `INSERT INTO runs (kind, config, status, started_at, finished_at, summary)
           SELECT $1::text, $3::text, $4::text, $2::text, $5::text, $6::text
            WHERE NOT EXISTS (SELECT 1 FROM runs WHERE kind = $1::text AND started_at = $2::text AND config = $3::text)
           RETURNING id`,
          [...key, x.status, x.finishedAt, x.summary === null ? null : JSON.stringify(x.summary)],
          'SELECT id FROM runs WHERE kind = $1 AND started_at = $2 AND config = $3 ORDER BY id LIMIT 1',
          key,
        );
      }
      case 'model_errors': {
        const x = r.record;
        const key = [x.runId, x.modelRef, x.code, x.message, x.createdAt];
        return upsert(
          `INSERT INTO model_errors (run_id, model_ref, code, message, created_at)
           SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text
            WHERE NOT EXISTS (SELECT 1 FROM model_errors WHERE run_id IS NOT DISTINCT FROM $1::bigint AND model_ref = $2::text
                                AND code = $3::text AND message = $4::text AND created_at = $5::text)
           RETURNING id`,
          key,
          `SELECT id FROM model_errors WHERE run_id IS NOT DISTINCT FROM $1::bigint AND model_ref = $2 AND code = $3
             AND message = $4 AND created_at = $5 ORDER BY id LIMIT 1`,
          key,
        );
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
