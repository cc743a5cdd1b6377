/**
 * Model lists for batch commands: local paths, a models CSV (`model_id`, optional
 * `path`, any metadata columns), or registry ids / names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError } from '../errors.js';
import type { ModelError } from '../inference/errors.js';
import { ONNX_VARIANT_CHOICES, type OnnxVariantRequest } from '../inference/format.js';
import { parseHubId, resolveHubId } from '../inference/hub.js';
import type { Registry } from '../registry/types.js';
import { readCsvFile } from '../util/csv.js';

export interface ModelEntry {
  /** The name rows are keyed by (hub id, registry name, or the path as given). */
  id: string;
  /** Local path to load, or null when it could not be resolved (the row will say not_found). */
  path: string | null;
  /** Extra CSV / registry columns carried into the output (downloads, likes, …). */
  meta: Record<string, string>;
  contentHash?: string | null;
  registryId?: number;
  /** ONNX variant recorded with the registry model (tag onnx-variant:<name>); --onnx-variant overrides it. */
  onnxVariant?: OnnxVariantRequest;
  /** Why the reference could not be resolved (e.g. an unsafe refs/ file in the Hugging Face cache). */
  error?: ModelError;
}

function readModelsCsv(file: string): ModelEntry[] {
  const table = readCsvFile(file, 'models CSV');
  const idCol = table.header.includes('model_id') ? 'model_id' : table.header.includes('derived_model_name') ? 'derived_model_name' : null;
  if (!idCol) {
    throw new ModelprintError('E_INPUT', `${file}: no "model_id" column (columns: ${table.header.join(', ')})`, {
      subject: file,
      hint: 'name the model column model_id; add a path column for local folders',
    });
  }
  const base = path.dirname(path.resolve(file));
  const lineOf = new Map<string, number>();
  return table.rows.map((r, i) => {
    const id = r[idCol].trim();
    if (!id) throw new ModelprintError('E_INPUT', `${file} line ${table.lines[i]}: empty model_id`, { subject: file, hint: 'every row needs a model_id' });
    // A repeated id would silently drop a row (results are keyed by id): refuse it, naming both lines.
    const first = lineOf.get(id);
    if (first !== undefined) {
      throw new ModelprintError('E_INPUT', `${file}: ${idCol} "${id}" appears twice (lines ${first} and ${table.lines[i]})`, { subject: `${file}:${idCol}`, hint: 'give every model a distinct id, or remove the repeated row' });
    }
    lineOf.set(id, table.lines[i]);
    const p = r.path?.trim() ? path.resolve(base, r.path.trim()) : null;
    const meta: Record<string, string> = {};
    for (const h of table.header) if (h !== idCol && h !== 'path' && h) meta[h] = r[h] ?? '';
    return { id, path: p, meta };
  });
}

/** Expands the values of --derived / --models into model entries (order kept, duplicates dropped). */
export async function resolveModelList(values: string[], registry: Registry | null): Promise<ModelEntry[]> {
  const out: ModelEntry[] = [];
  for (const v of values) {
    if (v.endsWith('.csv') && fs.existsSync(v) && fs.statSync(v).isFile()) {
      for (const e of readModelsCsv(v)) {
        if (!e.path) {
          const local = await resolveOne(e.id, registry);
          out.push({ ...local, meta: { ...local.meta, ...e.meta } });
        } else out.push(e);
      }
    } else out.push(await resolveOne(v, registry));
  }
  const seen = new Set<string>();
  return out.filter((e) => (seen.has(e.id) ? false : (seen.add(e.id), true)));
}

/** One reference: a local path, else a registry id/name, else a Hub id in the local cache, else unresolved (not_found row). */
export async function resolveOne(ref: string, registry: Registry | null): Promise<ModelEntry> {
  if (fs.existsSync(ref)) return { id: ref, path: path.resolve(ref), meta: {} };
  const m = registry ? await registry.getModel(ref) : null;
  if (m) {
    const meta: Record<string, string> = {};
    if (m.downloads !== null) meta.downloads = String(m.downloads);
    if (m.likes !== null) meta.likes = String(m.likes);
    const tag = m.tags.find((t) => t.startsWith('onnx-variant:'))?.slice('onnx-variant:'.length);
    const onnxVariant = (ONNX_VARIANT_CHOICES as readonly string[]).includes(tag ?? '') ? (tag as OnnxVariantRequest) : undefined;
    return { id: m.name, path: m.source, meta, contentHash: m.contentHash, registryId: m.id, ...(onnxVariant ? { onnxVariant } : {}) };
  }
  if (parseHubId(ref)) {
    try {
      return { id: ref, path: resolveHubId(ref).snapshotDir, meta: {} };
    } catch (e) {
      return { id: ref, path: null, meta: {}, error: e as ModelError };
    }
  }
  return { id: ref, path: null, meta: {} };
}
