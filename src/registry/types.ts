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

export interface Registry {
  readonly backend: 'sqlite' | 'postgres';
  info(): Promise<RegistryInfo>;

  addModel(m: ModelInput): Promise<ModelRecord>;
  /** By numeric id or by name. */
  getModel(ref: string | number): Promise<ModelRecord | null>;
  listModels(filter?: { family?: string }): Promise<ModelRecord[]>;
  removeModel(ref: string | number): Promise<boolean>;

  putProbeSet(p: ProbeSetInput): Promise<ProbeSetRecord>;
  findProbeSet(method: string, paramsHash: string, sourceKey: string): Promise<ProbeSetRecord | null>;

  /** Inserts unless one exists for (modelKey, method, configHash); returns the stored row. */
  putFingerprint(f: FingerprintInput): Promise<FingerprintRecord>;
  findFingerprint(modelKey: string, method: string, configHash: string): Promise<FingerprintRecord | null>;

  startRun(kind: string, config: Record<string, unknown>): Promise<RunRecord>;
  finishRun(id: number, status: RunRecord['status'], summary: Record<string, unknown>): Promise<void>;
  listRuns(limit?: number): Promise<RunRecord[]>;

  recordError(runId: number | null, modelRef: string, code: string, message: string): Promise<void>;
  listErrors(runId?: number): Promise<ModelErrorRecord[]>;

  close(): Promise<void>;
}
