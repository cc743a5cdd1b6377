/**
 * `modelprint merge`: the per-shard sketch collections of an array job → one collection,
 * after checking that every shard is there exactly once and that all come from the same
 * probe bank, k and model list. Models are put back in the order of the full list, so
 * the result is the file a single process would have written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelprintError } from '../errors.js';
import { native } from '../native/index.js';
import { writeFileAtomic } from '../util/atomic.js';
import { checkShards, parseShardPath, shardIndices, shardPath, type Shard } from './shard.js';
import { buildSet, manifestPath, readManifest, readSketches, type IndexedSketch, type SketchManifest } from './sketch.js';

export interface MergeSketchesSummary {
  out: string;
  sidecar: string;
  shards: number;
  files: string[];
  models: number;
  ok: number;
  failed: number;
  prompts: number;
  k: number;
  bank_hash: string;
  fingerprint: string;
  seconds: number;
}

/** Shard files next to `out` (`name.shard-i-of-n.ext` for `--output name.ext`). */
export function discoverShards(out: string): string[] {
  const dir = path.dirname(path.resolve(out));
  const ext = path.extname(out);
  const stem = path.basename(out, ext);
  if (!fs.existsSync(dir)) return [];
  const re = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.shard-\\d+-of-\\d+${ext.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return fs
    .readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

function inputError(message: string, subject: string, hint: string): ModelprintError {
  return new ModelprintError('E_INPUT', message, { subject, hint });
}

export function mergeSketchShards(filesIn: string[], out: string, expectShards?: number, compact = false): MergeSketchesSummary {
  const t0 = Date.now();
  const files = filesIn.length > 0 ? filesIn : discoverShards(out);
  if (files.length === 0) {
    throw new ModelprintError('E_NOT_FOUND', `no shard files given and none found next to ${out} (${path.basename(shardPath(out, { index: 0, count: 0 })).replace('shard-0-of-0', `shard-<i>-of-${expectShards ?? '<n>'}`)})`, {
      subject: out,
      hint: 'pass the files written by `modelprint sketch --shard i/n`, or the same --output they were written with',
    });
  }
  const mans: Array<{ file: string; man: SketchManifest; shard: Shard }> = [];
  for (const file of files) {
    if (!fs.existsSync(file)) throw new ModelprintError('E_NOT_FOUND', `shard file not found: ${file}`, { subject: file, hint: 'pass files written by `modelprint sketch --shard i/n`' });
    const man = readManifest(file);
    const shard = man.shard ?? parseShardPath(file);
    if (!shard) throw inputError(`${file} is not a shard (its sidecar has no shard and its name no .shard-i-of-n)`, file, 'merge the outputs of `modelprint sketch --shard i/n`');
    mans.push({ file, man, shard });
  }
  const first = mans[0];
  for (const m of mans) {
    if (m.shard.count !== first.shard.count) throw inputError(`${m.file} is shard ${m.shard.index} of ${m.shard.count}, ${first.file} of ${first.shard.count}: the files come from different arrays`, m.file, 'merge the shards of one run only');
    if (m.man.bank.hash !== first.man.bank.hash) throw inputError(`${m.file} was sketched on another probe bank than ${first.file}`, m.file, 'every shard must use the same --probes file');
    if (m.man.k !== first.man.k) throw inputError(`${m.file} has k = ${m.man.k}, ${first.file} k = ${first.man.k}`, m.file, 'every shard must use the same --k');
    if (m.man.models_hash !== first.man.models_hash || m.man.models_total !== first.man.models_total) {
      throw inputError(`${m.file} partitions another model list than ${first.file}`, m.file, 'every shard must get the same --models list');
    }
  }
  const count = first.shard.count;
  if (expectShards !== undefined && expectShards !== count) {
    throw inputError(`expected ${expectShards} shards, the files are shards of ${count}`, first.file, 'pass --shards with the array size the job was submitted with');
  }
  const check = checkShards(mans.map((m) => ({ shard: m.shard, item: m.file })), count);
  if (check.missing.length > 0 || check.duplicated.length > 0) {
    const parts: string[] = [];
    if (check.missing.length > 0) {
      parts.push(`missing shard${check.missing.length > 1 ? 's' : ''} ${check.missing.join(', ')} of ${count} (${check.missing.map((i) => path.basename(shardPath(out, { index: i, count }))).join(', ')})`);
    }
    for (const d of check.duplicated) parts.push(`shard ${d.index} given ${d.items.length} times (${d.items.join(', ')})`);
    throw new ModelprintError('E_INPUT', `cannot merge: ${parts.join('; ')}`, {
      subject: out,
      hint: check.missing.length > 0 ? `run the missing array tasks again (e.g. \`modelprint sketch … --shard ${check.missing[0]}/${count}\`), then merge` : 'pass each shard file once',
    });
  }
  const items: IndexedSketch[] = [];
  const seen = new Map<string, string>();
  for (const m of mans) {
    const want = shardIndices(m.man.models_total, m.shard);
    const got = m.man.models.map((x) => x.index).sort((a, b) => a - b);
    if (want.length !== got.length || want.some((v, i) => v !== got[i])) {
      throw inputError(`${m.file} holds ${got.length} models, shard ${m.shard.index}/${count} of ${m.man.models_total} needs ${want.length}: the shard is incomplete`, m.file, `run \`modelprint sketch … --shard ${m.shard.index}/${count}\` again; it resumes`);
    }
    const set = native.SketchSet.open(m.file);
    if (set.promptHash !== m.man.bank.hash) throw inputError(`${m.file}: its prompt hash does not match its sidecar's bank`, m.file, 'the .mpsk and its .json belong together; run the shard again');
    for (const ms of readSketches(set, m.man.models)) {
      const prev = seen.get(ms.entry.model);
      if (prev) throw inputError(`model ${ms.entry.model} is in ${prev} and ${m.file}`, ms.entry.model, 'the shards overlap; merge the shards of one run only');
      seen.set(ms.entry.model, m.file);
      items.push(ms);
    }
  }
  items.sort((a, b) => a.entry.index - b.entry.index);
  const set = buildSet(items, first.man.bank);
  // A compact index (.mpsk v3) for big collections: identify / similarity --top read it mapped.
  if (compact) native.saveCompact(set, out);
  else set.save(out);
  const man: SketchManifest = { ...first.man, shard: null, models: items.map((i) => i.entry), created: new Date().toISOString() };
  writeFileAtomic(manifestPath(out), `${JSON.stringify(man)}\n`);
  const failed = items.filter((i) => !i.set).length;
  return {
    out,
    sidecar: manifestPath(out),
    shards: count,
    files: mans.map((m) => m.file),
    models: items.length,
    ok: items.length - failed,
    failed,
    prompts: first.man.bank.prompts.length,
    k: first.man.k,
    bank_hash: first.man.bank.hash,
    fingerprint: set.fingerprint,
    seconds: (Date.now() - t0) / 1000,
  };
}
