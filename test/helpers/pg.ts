/**
 * A real, throw-away PostgreSQL server for tests: initdb into a fresh temp folder, the server
 * on 127.0.0.1 on a free port (its unix socket in the temp folder too), a database, and the
 * registry roles with two password logins: mp_admin (modelprint_admin) and mp_reader
 * (modelprint_reader). When run as root (CI), the server runs as the `postgres` OS user (or
 * `nobody`), since PostgreSQL refuses to run as root.
 *
 * Missing server binaries are an error, not a skip: CI installs `postgresql` (see .ci/run).
 * MODELPRINT_PG_BIN may name the folder holding initdb and postgres.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { grantRole, setupRoles } from '../../src/registry/postgres.js';

export const SUPER_USER = 'mp_super';
export const SUPER_PASSWORD = 'super-secret-pw';
export const ADMIN_USER = 'mp_admin';
export const ADMIN_PASSWORD = 'admin-secret-pw';
export const READER_USER = 'mp_reader';
export const READER_PASSWORD = 'reader-secret-pw';

export interface PgServer {
  host: string;
  port: number;
  /** The database set up for the registry (roles set up, migrated by the admin). */
  database: string;
  url(user: string, password: string, database?: string): string;
  superUrl: string;
  adminUrl: string;
  readerUrl: string;
  /**
   * A new, empty database. With setupRoles (default) the registry roles get their schema
   * privileges there, as `registry migrate --setup-roles` would (no tables yet); with migrate
   * the admin also applies the migrations.
   */
  createDatabase(opts?: { setupRoles?: boolean; migrate?: boolean }): Promise<string>;
  /** Runs SQL as the superuser (in `database`, default the registry database). */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[], database?: string): Promise<T[]>;
  stop(): Promise<void>;
}

function findBinDir(): string {
  const candidates: string[] = [];
  if (process.env.MODELPRINT_PG_BIN) candidates.push(process.env.MODELPRINT_PG_BIN);
  const base = '/usr/lib/postgresql';
  if (fs.existsSync(base)) {
    const versions = fs
      .readdirSync(base)
      .filter((v) => /^\d+/.test(v))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    for (const v of versions) candidates.push(path.join(base, v, 'bin'));
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) candidates.push(path.dirname(fs.realpathSync(which.stdout.trim())));
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error(
    'PostgreSQL server binaries (initdb, postgres) not found in MODELPRINT_PG_BIN, /usr/lib/postgresql/*/bin or PATH. ' +
      'The PostgreSQL registry tests need a real server: install it (apt-get install postgresql, as .ci/run does) ' +
      'or set MODELPRINT_PG_BIN to the folder holding initdb and postgres.',
  );
}

/** uid/gid to run the server as: ourselves, or (as root) postgres / nobody. */
function serverUser(): { uid: number; gid: number; name: string } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), name };
  }
  throw new Error('running as root, but there is neither a `postgres` nor a `nobody` OS user to run the PostgreSQL server as');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** A temp folder the server user can use (as root: world-traversable parent, chowned). */
function makeTempDir(user: { uid: number; gid: number } | null): string {
  let parent = os.tmpdir();
  if (user) {
    try {
      fs.accessSync(parent, fs.constants.X_OK);
      if ((fs.statSync(parent).mode & 0o001) === 0) parent = '/tmp';
    } catch {
      parent = '/tmp';
    }
  }
  const dir = fs.mkdtempSync(path.join(parent, 'mp-pg-'));
  if (user) fs.chownSync(dir, user.uid, user.gid);
  return dir;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export async function startPostgres(): Promise<PgServer> {
  const bin = findBinDir();
  const user = serverUser();
  const dir = makeTempDir(user);
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  fs.mkdirSync(sock);
  if (user) fs.chownSync(sock, user.uid, user.gid);
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, `${SUPER_PASSWORD}\n`, { mode: 0o600 });
  if (user) fs.chownSync(pwfile, user.uid, user.gid);
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C', HOME: dir };

  const init = spawnSync(
    path.join(bin, 'initdb'),
    ['-D', data, '-U', SUPER_USER, '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync'],
    { ...asUser, env, encoding: 'utf8', cwd: dir },
  );
  if (init.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr || init.stdout || init.error?.message}`);
  }

  const host = '127.0.0.1';
  let port = 0;
  let proc: ChildProcess | null = null;
  let log = '';
  for (let attempt = 0; attempt < 5 && !proc; attempt++) {
    port = await freePort();
    const p = spawn(
      path.join(bin, 'postgres'),
      [
        '-D', data, '-p', String(port), '-k', sock,
        '-c', `listen_addresses=${host}`,
        '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
        '-c', 'max_connections=100', '-c', 'shared_buffers=32MB', '-c', 'logging_collector=off',
      ],
      { ...asUser, env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    log = '';
    p.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    running.add(p);
    const ok = await waitReady(host, port, 30_000, () => p.exitCode !== null || p.signalCode !== null);
    if (ok) {
      proc = p;
    } else {
      p.kill('SIGKILL');
      running.delete(p);
      if (!/could not bind|address already in use/i.test(log)) break;
    }
  }
  if (!proc) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`the PostgreSQL server did not start:\n${log}`);
  }
  const server = proc;

  const url = (u: string, pw: string, db = 'modelprint') =>
    `postgres://${encodeURIComponent(u)}:${encodeURIComponent(pw)}@${host}:${port}/${encodeURIComponent(db)}`;
  const sql = async <T extends pg.QueryResultRow>(text: string, params: unknown[] = [], db = 'modelprint'): Promise<T[]> => {
    const c = new pg.Client({ connectionString: url(SUPER_USER, SUPER_PASSWORD, db) });
    await c.connect();
    try {
      return (await c.query<T>(text, params)).rows;
    } finally {
      await c.end();
    }
  };

  let dbCount = 0;
  const createDatabase = async (opts: { setupRoles?: boolean; migrate?: boolean } = {}): Promise<string> => {
    const name = `mp_db_${++dbCount}`;
    await sql(`CREATE DATABASE ${name}`, [], 'postgres');
    if (opts.setupRoles ?? true) await setupRoles(url(SUPER_USER, SUPER_PASSWORD, name));
    if (opts.migrate) {
      const { PostgresRegistry } = await import('../../src/registry/postgres.js');
      await (await PostgresRegistry.open(url(ADMIN_USER, ADMIN_PASSWORD, name))).close();
    }
    return name;
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (server.exitCode === null && server.signalCode === null) {
      const gone = new Promise<void>((resolve) => server.once('exit', () => resolve()));
      server.kill('SIGINT'); // fast shutdown
      const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
    running.delete(server);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    await sql('CREATE DATABASE modelprint', [], 'postgres');
    await sql(`CREATE ROLE ${ADMIN_USER} LOGIN PASSWORD '${ADMIN_PASSWORD}'`, [], 'postgres');
    await sql(`CREATE ROLE ${READER_USER} LOGIN PASSWORD '${READER_PASSWORD}'`, [], 'postgres');
    const superUrl = url(SUPER_USER, SUPER_PASSWORD);
    await setupRoles(superUrl);
    await grantRole(superUrl, ADMIN_USER, 'admin');
    await grantRole(superUrl, READER_USER, 'reader');
    const { PostgresRegistry } = await import('../../src/registry/postgres.js');
    await (await PostgresRegistry.open(url(ADMIN_USER, ADMIN_PASSWORD))).close();
    return {
      host,
      port,
      database: 'modelprint',
      url,
      superUrl,
      adminUrl: url(ADMIN_USER, ADMIN_PASSWORD),
      readerUrl: url(READER_USER, READER_PASSWORD),
      createDatabase,
      sql,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function waitReady(host: string, port: number, timeoutMs: number, dead: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !dead()) {
    const c = new pg.Client({ host, port, user: SUPER_USER, password: SUPER_PASSWORD, database: 'postgres', connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return true;
    } catch {
      await c.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  return false;
}
