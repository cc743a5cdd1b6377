import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError, messageOf } from '../errors.js';
import { MIGRATIONS, renderMigration } from './migrations.js';
import { errorFromRow, fingerprintFromRow, modelFromRow, now, probeSetFromRow, runFromRow } from './rows.js';
import type {
  FingerprintInput,
  ImportRecord,
  Page,
  FingerprintRecord,
  ModelErrorRecord,
  ModelInput,
  ModelRecord,
  ProbeSetInput,
  ProbeSetRecord,
  Registry,
  RegistryInfo,
  RunRecord,
} from './types.js';

type Row = Record<string, unknown>;

function registryError(file: string, e: unknown): ModelprintError {
  const msg = messageOf(e);
  if (/not a database|malformed|file is encrypted/i.test(msg)) {
    return new ModelprintError('E_REGISTRY', `registry ${file} is not a valid SQLite database (${msg})`, {
      subject: file,
      hint: 'restore it from a backup, or move it away and let modelprint create a new one',
      cause: e,
    });
  }
  return new ModelprintError('E_REGISTRY', `registry ${file}: ${msg}`, { subject: file, cause: e });
}

/** The embedded default registry: one SQLite file in WAL mode. */
export class SqliteRegistry implements Registry {
  readonly backend = 'sqlite' as const;
  readonly appliedMigrations: number[] = [];
  private db: Database.Database;

  private constructor(
    readonly file: string,
    db: Database.Database,
  ) {
    this.db = db;
  }

  static open(file: string): SqliteRegistry {
    const abs = path.resolve(file);
    if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) {
      throw new ModelprintError('E_REGISTRY', `registry path ${abs} is a directory`, {
        subject: abs,
        hint: `pass a file path, e.g. --registry ${path.join(file, 'registry.db')}`,
      });
    }
    try {
      fs.mkdirSync(path.dirname(abs), { recursive: true });
    } catch (e) {
      throw new ModelprintError('E_REGISTRY', `cannot create the folder of registry ${abs}: ${messageOf(e)}`, {
        subject: abs,
        hint: 'choose a writable location with --registry or MODELPRINT_REGISTRY',
      });
    }
    let db: Database.Database;
    try {
      db = new Database(abs);
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 10000');
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

  private migrate(): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)),
    );
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(renderMigration(m.sql, 'sqlite'));
        this.db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, now());
      })();
      this.appliedMigrations.push(m.version);
    }
  }

  private wrap<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ModelprintError) throw e;
      throw registryError(this.file, e);
    }
  }

  async info(): Promise<RegistryInfo> {
    return this.wrap(() => {
      const count = (t: string) => Number((this.db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as Row).n);
      const v = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as Row;
      return {
        backend: 'sqlite',
        location: this.file,
        schemaVersion: Number(v.v ?? 0),
        counts: {
          models: count('models'),
          probeSets: count('probe_sets'),
          fingerprints: count('fingerprints'),
          runs: count('runs'),
          errors: count('model_errors'),
        },
      };
    });
  }

  async addModel(m: ModelInput): Promise<ModelRecord> {
    return this.wrap(() => {
      const existing = this.db.prepare('SELECT id FROM models WHERE name = ?').get(m.name);
      if (existing) {
        throw new ModelprintError('E_INPUT', `a model named "${m.name}" is already registered`, {
          subject: m.name,
          hint: 'pick another --name, or `modelprint models remove` the old one first',
        });
      }
      const info = this.db
        .prepare(
          `INSERT INTO models (name, source, revision, content_hash, family, model_type, display_name, base_model,
             downloads, likes, tags, format, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
        )
        .run(
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
        );
      return modelFromRow(this.db.prepare('SELECT * FROM models WHERE id = ?').get(info.lastInsertRowid) as Row);
    });
  }

  async getModel(ref: string | number): Promise<ModelRecord | null> {
    return this.wrap(() => {
      const byId = typeof ref === 'number' || /^\d+$/.test(ref);
      const row = byId
        ? ((this.db.prepare('SELECT * FROM models WHERE id = ?').get(Number(ref)) as Row | undefined) ??
          (this.db.prepare('SELECT * FROM models WHERE name = ?').get(String(ref)) as Row | undefined))
        : (this.db.prepare('SELECT * FROM models WHERE name = ?').get(ref) as Row | undefined);
      return row ? modelFromRow(row) : null;
    });
  }

  async listModels(filter: { family?: string } = {}): Promise<ModelRecord[]> {
    return this.wrap(() => {
      const rows = filter.family
        ? this.db.prepare('SELECT * FROM models WHERE family = ? ORDER BY id').all(filter.family)
        : this.db.prepare('SELECT * FROM models ORDER BY id').all();
      return (rows as Row[]).map(modelFromRow);
    });
  }

  async removeModel(ref: string | number): Promise<boolean> {
    const m = await this.getModel(ref);
    if (!m) return false;
    return this.wrap(() => this.db.prepare('DELETE FROM models WHERE id = ?').run(m.id).changes > 0);
  }

  async putProbeSet(p: ProbeSetInput): Promise<ProbeSetRecord> {
    return this.wrap(() => {
      this.db
        .prepare(
          `INSERT INTO probe_sets (method, params_hash, params, source_key, prompts, created_at) VALUES (?,?,?,?,?,?)
           ON CONFLICT (method, params_hash, source_key) DO NOTHING`,
        )
        .run(p.method, p.paramsHash, JSON.stringify(p.params), p.sourceKey, JSON.stringify(p.prompts), now());
      return probeSetFromRow(
        this.db
          .prepare('SELECT * FROM probe_sets WHERE method = ? AND params_hash = ? AND source_key = ?')
          .get(p.method, p.paramsHash, p.sourceKey) as Row,
      );
    });
  }

  async findProbeSet(method: string, paramsHash: string, sourceKey: string): Promise<ProbeSetRecord | null> {
    return this.wrap(() => {
      const row = this.db
        .prepare('SELECT * FROM probe_sets WHERE method = ? AND params_hash = ? AND source_key = ?')
        .get(method, paramsHash, sourceKey) as Row | undefined;
      return row ? probeSetFromRow(row) : null;
    });
  }

  /** Rows of a table in id order, one page (SQLite's LIMIT -1 means no limit). */
  private page(table: string, page: Page = {}): Row[] {
    return this.db
      .prepare(`SELECT * FROM ${table} WHERE id > ? ORDER BY id LIMIT ?`)
      .all(page.afterId ?? 0, page.limit ?? -1) as Row[];
  }

  async listProbeSets(page?: Page): Promise<ProbeSetRecord[]> {
    return this.wrap(() => this.page('probe_sets', page).map(probeSetFromRow));
  }

  async putFingerprint(f: FingerprintInput): Promise<FingerprintRecord> {
    return this.wrap(() => {
      this.db
        .prepare(
          `INSERT INTO fingerprints (model_key, model_id, probe_set_id, method, config_hash, payload, created_at)
           VALUES (?,?,?,?,?,?,?) ON CONFLICT (model_key, method, config_hash) DO NOTHING`,
        )
        .run(f.modelKey, f.modelId ?? null, f.probeSetId ?? null, f.method, f.configHash, f.payload, now());
      return fingerprintFromRow(
        this.db
          .prepare('SELECT * FROM fingerprints WHERE model_key = ? AND method = ? AND config_hash = ?')
          .get(f.modelKey, f.method, f.configHash) as Row,
      );
    });
  }

  async findFingerprint(modelKey: string, method: string, configHash: string): Promise<FingerprintRecord | null> {
    return this.wrap(() => {
      const row = this.db
        .prepare('SELECT * FROM fingerprints WHERE model_key = ? AND method = ? AND config_hash = ?')
        .get(modelKey, method, configHash) as Row | undefined;
      return row ? fingerprintFromRow(row) : null;
    });
  }

  async listFingerprints(page?: Page): Promise<FingerprintRecord[]> {
    return this.wrap(() => this.page('fingerprints', page).map(fingerprintFromRow));
  }

  async startRun(kind: string, config: Record<string, unknown>): Promise<RunRecord> {
    return this.wrap(() => {
      const info = this.db
        .prepare('INSERT INTO runs (kind, config, status, started_at) VALUES (?,?,?,?)')
        .run(kind, JSON.stringify(config), 'running', now());
      return runFromRow(this.db.prepare('SELECT * FROM runs WHERE id = ?').get(info.lastInsertRowid) as Row);
    });
  }

  async finishRun(id: number, status: RunRecord['status'], summary: Record<string, unknown>): Promise<void> {
    this.wrap(() =>
      this.db
        .prepare('UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE id = ?')
        .run(status, now(), JSON.stringify(summary), id),
    );
  }

  async listRuns(limit = 50): Promise<RunRecord[]> {
    return this.wrap(() =>
      (this.db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit) as Row[]).map(runFromRow),
    );
  }

  async listAllRuns(page?: Page): Promise<RunRecord[]> {
    return this.wrap(() => this.page('runs', page).map(runFromRow));
  }

  async recordError(runId: number | null, modelRef: string, code: string, message: string): Promise<void> {
    this.wrap(() =>
      this.db
        .prepare('INSERT INTO model_errors (run_id, model_ref, code, message, created_at) VALUES (?,?,?,?,?)')
        .run(runId, modelRef, code, message, now()),
    );
  }

  async listErrors(runId?: number): Promise<ModelErrorRecord[]> {
    return this.wrap(() => {
      const rows =
        runId === undefined
          ? this.db.prepare('SELECT * FROM model_errors ORDER BY id').all()
          : this.db.prepare('SELECT * FROM model_errors WHERE run_id = ? ORDER BY id').all(runId);
      return (rows as Row[]).map(errorFromRow);
    });
  }

  async importRecord(r: ImportRecord): Promise<{ id: number; inserted: boolean }> {
    return this.wrap(() =>
      this.db.transaction((): { id: number; inserted: boolean } => {
        const found = (sql: string, ...params: unknown[]) => this.db.prepare(sql).get(...params) as Row | undefined;
        const insert = (sql: string, ...params: unknown[]) => ({
          id: Number(this.db.prepare(sql).run(...params).lastInsertRowid),
          inserted: true,
        });
        let hit: Row | undefined;
        switch (r.table) {
          case 'models': {
            const m = r.record;
            hit = found('SELECT id FROM models WHERE name = ?', m.name);
            if (hit) break;
            return insert(
              `INSERT INTO models (name, source, revision, content_hash, family, model_type, display_name, base_model,
                 downloads, likes, tags, format, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
              m.name, m.source, m.revision, m.contentHash, m.family, m.modelType, m.displayName, m.baseModel,
              m.downloads, m.likes, JSON.stringify(m.tags), m.format, m.createdAt,
            );
          }
          case 'probe_sets': {
            const p = r.record;
            hit = found('SELECT id FROM probe_sets WHERE method = ? AND params_hash = ? AND source_key = ?', p.method, p.paramsHash, p.sourceKey);
            if (hit) break;
            return insert(
              'INSERT INTO probe_sets (method, params_hash, params, source_key, prompts, created_at) VALUES (?,?,?,?,?,?)',
              p.method, p.paramsHash, JSON.stringify(p.params), p.sourceKey, JSON.stringify(p.prompts), p.createdAt,
            );
          }
          case 'fingerprints': {
            const f = r.record;
            hit = found('SELECT id FROM fingerprints WHERE model_key = ? AND method = ? AND config_hash = ?', f.modelKey, f.method, f.configHash);
            if (hit) break;
            return insert(
              `INSERT INTO fingerprints (model_key, model_id, probe_set_id, method, config_hash, payload, created_at)
               VALUES (?,?,?,?,?,?,?)`,
              f.modelKey, f.modelId ?? null, f.probeSetId ?? null, f.method, f.configHash, f.payload, f.createdAt,
            );
          }
          case 'runs': {
            const x = r.record;
            const config = JSON.stringify(x.config);
            hit = found('SELECT id FROM runs WHERE kind = ? AND started_at = ? AND config = ? ORDER BY id LIMIT 1', x.kind, x.startedAt, config);
            if (hit) break;
            return insert(
              'INSERT INTO runs (kind, config, status, started_at, finished_at, summary) VALUES (?,?,?,?,?,?)',
              x.kind, config, x.status, x.startedAt, x.finishedAt, x.summary === null ? null : JSON.stringify(x.summary),
            );
          }
          case 'model_errors': {
            const x = r.record;
            hit = found(
              `SELECT id FROM model_errors WHERE run_id IS ? AND model_ref = ? AND code = ? AND message = ? AND created_at = ?
               ORDER BY id LIMIT 1`,
              x.runId, x.modelRef, x.code, x.message, x.createdAt,
            );
            if (hit) break;
            return insert(
              'INSERT INTO model_errors (run_id, model_ref, code, message, created_at) VALUES (?,?,?,?,?)',
              x.runId, x.modelRef, x.code, x.message, x.createdAt,
            );
          }
        }
        if (!hit) throw new Error(`importRecord: unknown table ${(r as { table: string }).table}`);
        return { id: Number(hit.id), inserted: false };
      })(),
    );
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
