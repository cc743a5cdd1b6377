/** Row <-> record mapping shared by the SQL backends. */
import type { ModelRecord, ProbeSetRecord, FingerprintRecord, RunRecord, ModelErrorRecord } from './types.js';

type Row = Record<string, unknown>;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function modelFromRow(r: Row): ModelRecord {
  return {
    id: Number(r.id),
    name: String(r.name),
    source: String(r.source),
    revision: str(r.revision),
    contentHash: str(r.content_hash),
    family: str(r.family),
    modelType: str(r.model_type),
    displayName: str(r.display_name),
    baseModel: str(r.base_model),
    downloads: num(r.downloads),
    likes: num(r.likes),
    tags: JSON.parse(String(r.tags ?? '[]')) as string[],
    format: str(r.format),
    createdAt: String(r.created_at),
  };
}

export function probeSetFromRow(r: Row): ProbeSetRecord {
  return {
    id: Number(r.id),
    method: String(r.method),
    paramsHash: String(r.params_hash),
    params: JSON.parse(String(r.params)) as Record<string, unknown>,
    sourceKey: String(r.source_key),
    prompts: JSON.parse(String(r.prompts)) as string[],
    createdAt: String(r.created_at),
  };
}

export function fingerprintFromRow(r: Row): FingerprintRecord {
  return {
    id: Number(r.id),
    modelKey: String(r.model_key),
    modelId: num(r.model_id),
    probeSetId: num(r.probe_set_id),
    method: String(r.method),
    configHash: String(r.config_hash),
    payload: Buffer.from(r.payload as Uint8Array),
    createdAt: String(r.created_at),
  };
}

export function runFromRow(r: Row): RunRecord {
  return {
    id: Number(r.id),
    kind: String(r.kind),
    config: JSON.parse(String(r.config)) as Record<string, unknown>,
    status: String(r.status) as RunRecord['status'],
    startedAt: String(r.started_at),
    finishedAt: str(r.finished_at),
    summary: r.summary ? (JSON.parse(String(r.summary)) as Record<string, unknown>) : null,
  };
}

export function errorFromRow(r: Row): ModelErrorRecord {
  return {
    id: Number(r.id),
    runId: num(r.run_id),
    modelRef: String(r.model_ref),
    code: String(r.code),
    message: String(r.message),
    createdAt: String(r.created_at),
  };
}

export const now = (): string => new Date().toISOString();
