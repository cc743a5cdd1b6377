/**
 * `modelprint merge` for result CSVs of a sharded `lineage` (one row per derived model):
 * checks every shard is there once (by the `<out>.shard.json` sidecars), that all
 * partition the same model list, that every shard has a row for each of its models, and
 * writes the rows in the order of the full list, atomically.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelprintError, messageOf } from '../errors.js';
import { readCsvFile, writeCsvFile } from '../util/csv.js';
import { checkShards, shardIndices, shardManifestPath, shardPath, type ShardManifest } from './shard.js';

const ManifestSchema = z.object({
  format: z.literal('modelprint-shard'),
  version: z.literal(1),
  command: z.string(),
  shard: z.object({ index: z.number().int().nonnegative(), count: z.number().int().positive() }),
  models_total: z.number().int().nonnegative(),
  models_hash: z.string(),
  models: z.array(z.object({ model: z.string(), index: z.number().int().nonnegative() })),
});

export interface CsvMergeSummary {
  out: string;
  shards: number;
  files: string[];
  rows: number;
  failed: number;
  seconds: number;
}

function readShardManifest(file: string): ShardManifest {
  const side = shardManifestPath(file);
  if (!fs.existsSync(side)) {
    throw new ModelprintError('E_NOT_FOUND', `${file} has no shard sidecar ${side}`, { subject: side, hint: 'merge CSVs written by `modelprint lineage --shard i/n`' });
  }
  try {
    return ManifestSchema.parse(JSON.parse(fs.readFileSync(side, 'utf8'))) as ShardManifest;
  } catch (e) {
    throw new ModelprintError('E_INPUT', `${side}: ${messageOf(e)}`, { subject: side, hint: 'run the shard again; it resumes' });
  }
}

export function mergeCsvShards(files: string[], out: string, expectShards?: number): CsvMergeSummary {
  const t0 = Date.now();
  const parts = files.map((file) => ({ file, man: readShardManifest(file) }));
  const first = parts[0];
  const count = first.man.shard.count;
  for (const p of parts) {
    if (p.man.shard.count !== count || p.man.models_hash !== first.man.models_hash || p.man.command !== first.man.command) {
      throw new ModelprintError('E_INPUT', `${p.file} comes from another run than ${first.file} (shard count, command or model list differ)`, { subject: p.file, hint: 'merge the shards of one run only' });
    }
  }
  if (expectShards !== undefined && expectShards !== count) {
    throw new ModelprintError('E_INPUT', `expected ${expectShards} shards, the files are shards of ${count}`, { subject: first.file, hint: 'pass --shards with the array size the job was submitted with' });
  }
  const check = checkShards(parts.map((p) => ({ shard: p.man.shard, item: p.file })), count);
  if (check.missing.length > 0 || check.duplicated.length > 0) {
    const msg: string[] = [];
    if (check.missing.length > 0) msg.push(`missing shard${check.missing.length > 1 ? 's' : ''} ${check.missing.join(', ')} of ${count} (${check.missing.map((i) => path.basename(shardPath(out, { index: i, count }))).join(', ')})`);
    for (const d of check.duplicated) msg.push(`shard ${d.index} given ${d.items.length} times (${d.items.join(', ')})`);
    throw new ModelprintError('E_INPUT', `cannot merge: ${msg.join('; ')}`, { subject: out, hint: 'run the missing shards again (they resume), then merge' });
  }
  let header: string[] | null = null;
  const rows: Array<{ index: number; row: Record<string, string> }> = [];
  for (const p of parts) {
    const want = shardIndices(p.man.models_total, p.man.shard);
    const got = p.man.models.map((m) => m.index);
    if (want.length !== got.length || want.some((v, i) => v !== got[i])) {
      throw new ModelprintError('E_INPUT', `${p.file}: its sidecar lists ${got.length} models, shard ${p.man.shard.index}/${count} of ${p.man.models_total} has ${want.length}`, { subject: p.file, hint: 'run the shard again' });
    }
    const t = readCsvFile(p.file, 'shard CSV');
    header ??= t.header;
    if (t.header.join(',') !== header.join(',')) throw new ModelprintError('E_INPUT', `${p.file} has other columns than ${first.file}`, { subject: p.file, hint: 'every shard must be run with the same options' });
    const byModel = new Map(t.rows.map((r) => [r.derived_model_name, r]));
    const missing = p.man.models.filter((m) => !byModel.has(m.model));
    if (missing.length > 0) {
      throw new ModelprintError('E_INPUT', `${p.file}: shard ${p.man.shard.index} is incomplete: no row for ${missing.slice(0, 5).map((m) => m.model).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`, {
        subject: p.file,
        hint: `run \`modelprint lineage … --shard ${p.man.shard.index}/${count}\` again; it resumes`,
      });
    }
    for (const m of p.man.models) rows.push({ index: m.index, row: byModel.get(m.model)! });
  }
  rows.sort((a, b) => a.index - b.index);
  const h = header!;
  writeCsvFile(out, h, rows.map((r) => h.map((c) => r.row[c] ?? '')));
  const failed = rows.filter((r) => (r.row.error_code ?? '') !== '').length;
  return { out, shards: count, files: parts.map((p) => p.file), rows: rows.length, failed, seconds: (Date.now() - t0) / 1000 };
}
