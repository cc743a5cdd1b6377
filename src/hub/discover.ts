/**
 * Discovery: the derivatives of a base model on the Hub, found through the `base_model:<relation>:<id>`
 * tags the Hub sets from model cards, followed recursively to a depth, with pagination (the
 * official client follows the Link headers). Results are cached in the registry (as a
 * `hub_derivatives` run whose summary holds the rows) for a time-to-live.
 */
import { listModels } from '@huggingface/hub';
import { ModelprintError, messageOf } from '../errors.js';
import { parseHubId } from '../inference/hub.js';
import type { Registry } from '../registry/types.js';
import { stableHash } from '../util/hash.js';
import { readCsvFile, writeCsvFile } from '../util/csv.js';
import { clientParams, type HubOptions } from './client.js';

export const RELATIONS = ['finetune', 'adapter', 'quantized', 'merge'] as const;
export type Relation = (typeof RELATIONS)[number];

/** Columns of derivatives.csv: a superset of the Hub metadata CSV `analyze downloads --hub-metadata` reads. */
export const DERIVATIVE_COLUMNS = [
  'model_id',
  'base_model',
  'relation',
  'depth',
  'downloads',
  'likes',
  'created_at',
  'last_modified',
  'pipeline_tag',
  'library',
  'gated',
  'formats',
  'revision',
  'tags',
] as const;

export interface DerivativeRow {
  model_id: string;
  /** The parent it was found under (the audited base at depth 1). */
  base_model: string;
  relation: Relation;
  depth: number;
  downloads: number | null;
  likes: number | null;
  created_at: string;
  last_modified: string;
  pipeline_tag: string;
  library: string;
  /** false, auto or manual. */
  gated: string;
  /** Weight formats present, `;`-separated, in preference order: onnx;safetensors;adapter;gguf. */
  formats: string;
  /** Commit the listing saw. */
  revision: string;
  /** The repo's tags, `;`-separated. */
  tags: string;
}

export interface DiscoverOptions {
  relations: readonly Relation[];
  depth: number;
  /** Most derivatives in all (Infinity for no limit). */
  limit: number;
}

/** Weight formats a file list holds, in preference order. */
export function formatsOf(files: string[]): string[] {
  const out: string[] = [];
  if (files.some((f) => f.endsWith('.onnx'))) out.push('onnx');
  if (files.some((f) => f.endsWith('.safetensors') && !/(^|\/)adapter_model\.safetensors$/.test(f))) out.push('safetensors');
  if (files.some((f) => /(^|\/)adapter_(config\.json|model\.safetensors)$/.test(f))) out.push('adapter');
  if (files.some((f) => f.endsWith('.gguf'))) out.push('gguf');
  return out;
}

/** Breadth-first over the base_model tags: depth 1 are the base's children, depth 2 theirs, … */
export async function discoverDerivatives(
  base: string,
  hub: HubOptions,
  opts: DiscoverOptions,
  onFound?: (row: DerivativeRow, total: number) => void,
): Promise<DerivativeRow[]> {
  if (!parseHubId(base) || base.includes('@')) throw new ModelprintError('E_USAGE', `not a Hub model id: ${base}`, { subject: base, hint: 'pass org/name' });
  const params = clientParams(hub);
  const seen = new Set<string>([base]);
  const rows: DerivativeRow[] = [];
  let frontier = [base];
  for (let depth = 1; depth <= opts.depth && frontier.length > 0 && rows.length < opts.limit; depth++) {
    const next: string[] = [];
    for (const parent of frontier) {
      for (const relation of opts.relations) {
        if (rows.length >= opts.limit) break;
        const tag = `base_model:${relation}:${parent}`;
        try {
          for await (const m of listModels({
            ...params,
            search: { tags: [tag] },
            additionalFields: ['createdAt', 'library_name', 'tags', 'sha', 'filePaths'],
          })) {
            if (seen.has(m.name)) continue;
            if (!parseHubId(m.name)) continue; // a hostile or malformed id is never used as a path
            seen.add(m.name);
            const row: DerivativeRow = {
              model_id: m.name,
              base_model: parent,
              relation,
              depth,
              downloads: Number.isFinite(m.downloads) ? m.downloads : null,
              likes: Number.isFinite(m.likes) ? m.likes : null,
              created_at: typeof m.createdAt === 'string' ? m.createdAt : '',
              last_modified: Number.isFinite(m.updatedAt?.getTime()) ? m.updatedAt.toISOString() : '',
              pipeline_tag: m.task ?? '',
              library: typeof m.library_name === 'string' ? m.library_name : '',
              gated: String(m.gated ?? false),
              formats: formatsOf(m.filePaths ?? []).join(';'),
              revision: typeof m.sha === 'string' ? m.sha : '',
              tags: (Array.isArray(m.tags) ? m.tags : []).join(';'),
            };
            rows.push(row);
            next.push(m.name);
            onFound?.(row, rows.length);
            if (rows.length >= opts.limit) break;
          }
        } catch (e) {
          throw new ModelprintError('E_IO', `Hub search for ${tag} failed: ${messageOf(e)}`, { subject: hub.endpoint, hint: 'check --endpoint / HF_ENDPOINT and HF_TOKEN, or retry later', cause: e });
        }
      }
    }
    frontier = next;
  }
  return rows;
}

export function writeDerivativesCsv(file: string, rows: DerivativeRow[]): void {
  writeCsvFile(
    file,
    [...DERIVATIVE_COLUMNS],
    rows.map((r) => DERIVATIVE_COLUMNS.map((c) => r[c])),
  );
}

/** Reads a derivatives CSV (ours, or any CSV with a model_id column). */
export function readDerivativesCsv(file: string): DerivativeRow[] {
  const t = readCsvFile(file, 'derivatives CSV');
  if (!t.header.includes('model_id')) throw new ModelprintError('E_INPUT', `${file}: no model_id column`, { subject: file, hint: 'pass a file written by `modelprint hub derivatives`' });
  const num = (v: string | undefined) => (v !== undefined && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : null);
  return t.rows.map((r) => ({
    model_id: r.model_id.trim(),
    base_model: r.base_model ?? '',
    relation: (RELATIONS as readonly string[]).includes(r.relation) ? (r.relation as Relation) : 'finetune',
    depth: num(r.depth) ?? 1,
    downloads: num(r.downloads),
    likes: num(r.likes),
    created_at: r.created_at ?? '',
    last_modified: r.last_modified ?? '',
    pipeline_tag: r.pipeline_tag ?? '',
    library: r.library ?? '',
    gated: r.gated ?? 'false',
    formats: r.formats ?? '',
    revision: r.revision ?? '',
    tags: r.tags ?? '',
  }));
}

// ---------------------------------------------------------------------------------------
// registry cache

export const CACHE_KIND = 'hub_derivatives';

function cacheConfig(base: string, hub: HubOptions, o: DiscoverOptions): Record<string, unknown> {
  return { base, endpoint: hub.endpoint, relations: [...o.relations], depth: o.depth, limit: Number.isFinite(o.limit) ? o.limit : null, version: 1 };
}

/** The rows of a finished discovery with the same parameters younger than ttlSeconds, if any. */
export async function cachedDerivatives(reg: Registry, base: string, hub: HubOptions, o: DiscoverOptions, ttlSeconds: number, now = Date.now()): Promise<{ rows: DerivativeRow[]; at: string } | null> {
  const want = stableHash(cacheConfig(base, hub, o));
  for (const run of await reg.listRuns(500)) {
    if (run.kind !== CACHE_KIND || run.status !== 'done' || !run.finishedAt) continue;
    if (stableHash(run.config) !== want) continue;
    const age = (now - Date.parse(run.finishedAt)) / 1000;
    if (!(age >= 0 && age <= ttlSeconds)) continue;
    const rows = (run.summary as { rows?: unknown } | null)?.rows;
    if (Array.isArray(rows)) return { rows: rows as DerivativeRow[], at: run.finishedAt };
  }
  return null;
}

export async function storeDerivatives(reg: Registry, base: string, hub: HubOptions, o: DiscoverOptions, rows: DerivativeRow[]): Promise<void> {
  const run = await reg.startRun(CACHE_KIND, cacheConfig(base, hub, o));
  await reg.finishRun(run.id, 'done', { rows, count: rows.length });
}

/** `1h`, `30m`, `2d`, `45s` or plain seconds → seconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/i.exec(v.trim());
  if (!m) throw new ModelprintError('E_USAGE', `not a duration: ${v}`, { subject: '--ttl', hint: 'e.g. 3600, 90m, 24h, 7d' });
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2].toLowerCase() as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * mult;
}

/** Discovery through the registry cache: a fresh cached result, else the Hub (then stored). */
export async function derivativesWithCache(
  base: string,
  hub: HubOptions,
  o: DiscoverOptions,
  cache: { registry: Registry | null; ttlSeconds: number; refresh: boolean; warn?: (m: string) => void },
  onFound?: (row: DerivativeRow, total: number) => void,
): Promise<{ rows: DerivativeRow[]; cached: boolean; cachedAt: string | null }> {
  if (cache.registry && !cache.refresh && cache.ttlSeconds > 0) {
    const hit = await cachedDerivatives(cache.registry, base, hub, o, cache.ttlSeconds);
    if (hit) return { rows: hit.rows, cached: true, cachedAt: hit.at };
  }
  const rows = await discoverDerivatives(base, hub, o, onFound);
  if (cache.registry) {
    try {
      await storeDerivatives(cache.registry, base, hub, o, rows);
    } catch (e) {
      cache.warn?.(`could not cache the discovery in the registry: ${messageOf(e)}`);
    }
  }
  return { rows, cached: false, cachedAt: null };
}
