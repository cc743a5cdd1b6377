/**
 * The storage interface. SQLite is the embedded default; PostgreSQL (the shared
 * registry for teams and clusters) implements the same interface.
 */
export interface ModelInput {
  name: string;
  source: string;
  revision?: string | null;
  contentHash?: string | null;
  family?: string | null;
  modelType?: string | null;
  displayName?: string | null;
  baseModel?: string | null;
  downloads?: number | null;
  likes?: number | null;
  tags?: string[];
  format?: string | null;
}

export interface ModelRecord {
  id: number;
  name: string;
  source: string;
  revision: string | null;
  contentHash: string | null;
  family: string | null;
  modelType: string | null;
  displayName: string | null;
  baseModel: string | null;
  downloads: number | null;
  likes: number | null;
  tags: string[];
  format: string | null;
  createdAt: string;
}

export interface ProbeSetInput {
  method: string;
  paramsHash: string;
  params: Record<string, unknown>;
  sourceKey: string;
  prompts: string[];
}

export interface ProbeSetRecord extends ProbeSetInput {
  id: number;
  createdAt: string;
}

export interface FingerprintInput {
  /** Content hash of the model (or another stable key of what was fingerprinted). */
  modelKey: string;
  modelId?: number | null;
  probeSetId?: number | null;
  method: string;
  configHash: string;
  payload: Buffer;
}

export interface FingerprintRecord extends FingerprintInput {
  id: number;
  createdAt: string;
}

export interface RunRecord {
  id: number;
  kind: string;
  config: Record<string, unknown>;
  status: 'running' | 'done' | 'failed' | 'interrupted' | 'partial';
  startedAt: string;
  finishedAt: string | null;
  summary: Record<string, unknown> | null;
}

export interface ModelErrorRecord {
  id: number;
  runId: number | null;
  modelRef: string;
  code: string;
  message: string;
  createdAt: string;
}

export interface RegistryInfo {
  backend: 'sqlite' | 'postgres';
  location: string;
  schemaVersion: number;
  counts: { models: number; probeSets: number; fingerprints: number; runs: number; errors: number };
}

/** A page of a listing in id order: rows with id > afterId, at most limit of them (all when absent). */
export interface Page {
  afterId?: number;
  limit?: number;
}

/**
 * A record exported from another registry (`registry export`), to store as it is:
 * timestamps and run status are kept, foreign ids must already point into the target.
 */
export type ImportRecord =
  | { table: 'models'; record: Omit<ModelRecord, 'id'> }
  | { table: 'probe_sets'; record: Omit<ProbeSetRecord, 'id'> }
  | { table: 'fingerprints'; record: Omit<FingerprintRecord, 'id'> }
  | { table: 'runs'; record: Omit<RunRecord, 'id'> }
  | { table: 'model_errors'; record: Omit<ModelErrorRecord, 'id'> };

export interface Registry {
  readonly backend: 'sqlite' | 'postgres';
  /** Schema versions this process applied when it opened the registry (empty when it was up to date). */
  readonly appliedMigrations: readonly number[];
  info(): Promise<RegistryInfo>;

  /** Inserts the model; E_INPUT when one of that name is registered already. */
  addModel(m: ModelInput): Promise<ModelRecord>;
  /**
   * Inserts the model unless one of that name is registered (one atomic upsert, safe when many
   * processes register the same models at once); returns the stored row and whether it is new.
   */
  registerModel(m: ModelInput): Promise<{ record: ModelRecord; inserted: boolean }>;
  /** By numeric id or by name. */
  getModel(ref: string | number): Promise<ModelRecord | null>;
  listModels(filter?: { family?: string }): Promise<ModelRecord[]>;
  removeModel(ref: string | number): Promise<boolean>;

  putProbeSet(p: ProbeSetInput): Promise<ProbeSetRecord>;
  findProbeSet(method: string, paramsHash: string, sourceKey: string): Promise<ProbeSetRecord | null>;
  /** Every probe set, oldest (lowest id) first. */
  listProbeSets(page?: Page): Promise<ProbeSetRecord[]>;

  /** Inserts unless one exists for (modelKey, method, configHash); returns the stored row. */
  putFingerprint(f: FingerprintInput): Promise<FingerprintRecord>;
  findFingerprint(modelKey: string, method: string, configHash: string): Promise<FingerprintRecord | null>;
  /** Every fingerprint with its payload, oldest first; page through big registries with afterId/limit. */
  listFingerprints(page?: Page): Promise<FingerprintRecord[]>;

  startRun(kind: string, config: Record<string, unknown>): Promise<RunRecord>;
  finishRun(id: number, status: RunRecord['status'], summary: Record<string, unknown>): Promise<void>;
  /** The latest runs, newest first. */
  listRuns(limit?: number): Promise<RunRecord[]>;
  /** Every run, oldest first (for export). */
  listAllRuns(page?: Page): Promise<RunRecord[]>;

  recordError(runId: number | null, modelRef: string, code: string, message: string): Promise<void>;
  listErrors(runId?: number): Promise<ModelErrorRecord[]>;

  /**
   * Stores an exported record unless an equal one is there already (models by name, probe sets
   * and fingerprints by their unique keys, runs by kind + start time + config, errors by all
   * fields). Returns the id of the stored or matching row. Used by `registry import`.
   */
  importRecord(r: ImportRecord): Promise<{ id: number; inserted: boolean }>;

  close(): Promise<void>;
}
