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
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from './migrations.js';
import { SqlRegistry, migrationSteps, type Row } from './sql.js';
import { redactUrl } from './url.js';

export { redactUrl };

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
export class PostgresRegistry extends SqlRegistry {
  readonly backend = 'postgres' as const;
  private closed = false;

  private constructor(
    /** The URL with its password redacted. */
    readonly location: string,
    private readonly pool: pg.Pool,
  ) {
    super();
  }

  protected get where(): string {
    return this.location;
  }

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
        const steps = migrationSteps('postgres');
        let step = steps.next();
        while (!step.done) step = steps.next((await c.query(...step.value)).rows as Row[]);
        const done = step.value;
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

  protected async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params)).rows as Row[];
    } catch (e) {
      throw toRegistryError(e, this.location);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
