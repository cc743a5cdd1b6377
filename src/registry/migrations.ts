/**
 * Versioned schema migrations, shared by every backend. Each migration is plain SQL
 * that both SQLite and PostgreSQL accept, with `{{AUTO_ID}}` and `{{BLOB}}` filled in
 * per dialect.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE models (
  id {{AUTO_ID}},
  name TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  revision TEXT,
  content_hash TEXT,
  family TEXT,
  model_type TEXT,
  display_name TEXT,
  base_model TEXT,
  downloads BIGINT,
  likes BIGINT,
  tags TEXT NOT NULL DEFAULT '[]',
  format TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX models_family ON models(family);
CREATE INDEX models_hash ON models(content_hash);
CREATE TABLE probe_sets (
  id {{AUTO_ID}},
  method TEXT NOT NULL,
  params_hash TEXT NOT NULL,
  params TEXT NOT NULL,
  source_key TEXT NOT NULL,
  prompts TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (method, params_hash, source_key)
);
CREATE TABLE fingerprints (
  id {{AUTO_ID}},
  model_key TEXT NOT NULL,
  model_id BIGINT REFERENCES models(id) ON DELETE SET NULL,
  probe_set_id BIGINT REFERENCES probe_sets(id) ON DELETE SET NULL,
  method TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  payload {{BLOB}} NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (model_key, method, config_hash)
);
CREATE TABLE runs (
  id {{AUTO_ID}},
  kind TEXT NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  summary TEXT
);
CREATE TABLE model_errors (
  id {{AUTO_ID}},
  run_id BIGINT REFERENCES runs(id) ON DELETE CASCADE,
  model_ref TEXT NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

export function renderMigration(sql: string, dialect: 'sqlite' | 'postgres'): string {
  return sql
    .replaceAll('{{AUTO_ID}}', dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY')
    .replaceAll('{{BLOB}}', dialect === 'sqlite' ? 'BLOB' : 'BYTEA');
}
