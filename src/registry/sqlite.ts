import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError, messageOf } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { SqlRegistry, migrationSteps, type Row } from './sql.js';

function registryError(file: string, e: unknown): ModelprintError {
  if (e instanceof ModelprintError) return e;
  const msg = messageOf(e);
  if (/not a database|malformed|file is encrypted/i.test(msg)) {
    return new ModelprintError('E_REGISTRY', `registry ${file} is not a valid SQLite database (${msg})`, {
      subject: file,
      hint: 'restore it from a backup, or move it away and let modelprint create a new one',
      cause: e,
    });
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_READONLY')) {
    // A file this user may read but not write: like a reader on PostgreSQL (runs go on read-only).
    return new ModelprintError('E_PERMISSION', `registry ${file} is read-only for this user: ${msg}`, {
      subject: file,
      hint: 'run with --registry-write read-only to use it without writing, or point --registry at a writable file',
      cause: e,
    });
  }
  return new ModelprintError('E_REGISTRY', `registry ${file}: ${msg}`, { subject: file, cause: e });
}

/** `$1`, `$2` … bound by number (better-sqlite3 takes them as named parameters "1", "2" …). */
function bind(params: unknown[]): Record<string, unknown> {
  return Object.fromEntries(params.map((v, i) => [String(i + 1), v]));
}

/** How long a process waits for another one's write lock (migrations, writes) before failing. */
const BUSY_TIMEOUT_MS = 30_000;

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Runs fn again (after a short pause) while SQLite reports SQLITE_BUSY, up to the busy timeout. */
function retryWhileBusy<T>(fn: () => T): T {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() > deadline) throw e;
      Atomics.wait(pause, 0, 0, Math.min(100, 5 * attempt));
    }
  }
}

/** The embedded default registry: one SQLite file in WAL mode. */
export class SqliteRegistry extends SqlRegistry {
  readonly backend = 'sqlite' as const;
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
  ) {
    super();
  }

  protected get where(): string {
    return this.file;
  }

  /** Opens (creating it and its folder when missing, unless `create` is false: then an empty, in-memory registry) and migrates. */
  static open(file: string, opts: { create?: boolean } = {}): SqliteRegistry {
    const abs = path.resolve(file);
    if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) {
      throw new ModelprintError('E_REGISTRY', `registry path ${abs} is a directory`, {
        subject: abs,
        hint: `pass a file path, e.g. --registry ${path.join(file, 'registry.db')}`,
      });
    }
    const missing = !fs.existsSync(abs);
    if (missing && opts.create === false) return SqliteRegistry.connect(abs, ':memory:');
    try {
      fs.mkdirSync(path.dirname(abs), { recursive: true });
    } catch (e) {
      throw new ModelprintError('E_REGISTRY', `cannot create the folder of registry ${abs}: ${messageOf(e)}`, {
        subject: abs,
        hint: 'choose a writable location with --registry or MODELPRINT_REGISTRY',
      });
    }
    return SqliteRegistry.connect(abs, abs);
  }

  /** Connects to `target` (a file, or `:memory:`), shown as `abs`, and migrates it. */
  private static connect(abs: string, target: string): SqliteRegistry {
    let db: Database.Database;
    try {
      db = new Database(target, { timeout: BUSY_TIMEOUT_MS });
      const conn = db;
      // Switching a new file to WAL takes an exclusive lock, and SQLite answers SQLITE_BUSY at
      // once (no busy handler) when another process holds one: wait and try again.
      retryWhileBusy(() => conn.pragma('journal_mode = WAL'));
      db.pragma('foreign_keys = ON');
    } catch (e) {
      throw registryError(abs, e);
    }
    const reg = new SqliteRegistry(abs, db);
    try {
      reg.migrate();
    } catch (e) {
      db.close();
      throw registryError(abs, e);
    }
    return reg;
  }

  /**
   * Applies pending migrations in one BEGIN IMMEDIATE transaction: the first of many processes
   * opening a new registry at once takes the write lock, the others wait for it (busy timeout)
   * and then find the schema applied. An up-to-date registry is only read (no lock taken).
   */
  private migrate(): void {
    if (this.upToDate()) return;
    retryWhileBusy(() => this.db.exec('BEGIN IMMEDIATE'));
    try {
      const steps = migrationSteps('sqlite');
      let step = steps.next();
      while (!step.done) step = steps.next(this.run(...step.value));
      this.appliedMigrations.push(...step.value);
      this.db.exec('COMMIT');
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }

  /** Whether every migration is applied (read without a write lock, so a read-only file opens). */
  private upToDate(): boolean {
    const table = this.run("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (table.length === 0) return false;
    const applied = new Set(this.run('SELECT version FROM schema_migrations').map((r) => Number(r.version)));
    return MIGRATIONS.every((m) => applied.has(m.version));
  }

  /** Runs one statement (`$n` placeholders) on the connection; its rows (none without RETURNING). */
  private run(sql: string, params: unknown[] = []): Row[] {
    try {
      let stmt = this.statements.get(sql);
      if (!stmt) {
        stmt = this.db.prepare(sql);
        this.statements.set(sql, stmt);
      }
      const args = params.length ? [bind(params)] : [];
      if (stmt.reader) return stmt.all(...args) as Row[];
      stmt.run(...args);
      return [];
    } catch (e) {
      throw registryError(this.file, e);
    }
  }

  protected async query(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.run(sql, params);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
