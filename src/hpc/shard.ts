/**
 * Sharding a model list over the tasks of an HPC array (issue 13).
 *
 * Partition: model number m (0-based, in the order of the deduplicated model list) goes to
 * shard m mod n. It is deterministic for a given list, needs no coordination, and spreads
 * the families of a sorted list evenly (the zoo CSV lists a family's models together).
 * Shard i of n is `--shard i/n` (0-based), or, inside a Slurm array task,
 * SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT.
 */
import path from 'node:path';
import { ModelprintError } from '../errors.js';
import { parseShard } from '../similarity/index.js';

export interface Shard {
  index: number;
  count: number;
}

/** The shard of this process: `--shard i/n` when given, else the Slurm array task, else none. */
export function resolveShard(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Shard | null {
  if (flag !== undefined && flag !== '') {
    if (flag === 'none') return null;
    return parseShard(flag);
  }
  const id = env.SLURM_ARRAY_TASK_ID;
  const count = env.SLURM_ARRAY_TASK_COUNT;
  if (id === undefined || id === '' || count === undefined || count === '') return null;
  const min = env.SLURM_ARRAY_TASK_MIN ?? '0';
  const [i, n, lo] = [Number(id), Number(count), Number(min)];
  if (![i, n, lo].every(Number.isInteger) || n < 1 || i - lo < 0 || i - lo >= n) {
    throw new ModelprintError(
      'E_USAGE',
      `cannot derive a shard from SLURM_ARRAY_TASK_ID=${id}, SLURM_ARRAY_TASK_MIN=${min}, SLURM_ARRAY_TASK_COUNT=${count}: the array must be contiguous (e.g. --array=0-15)`,
      { subject: 'SLURM_ARRAY_TASK_ID', hint: 'submit a contiguous array, or pass --shard i/n explicitly (--shard none: the whole list)' },
    );
  }
  return { index: i - lo, count: n };
}

/** Indices (into `n` items) of shard `s`: m with m mod count = index. */
export function shardIndices(n: number, s: Shard | null): number[] {
  const out: number[] = [];
  for (let m = 0; m < n; m++) if (!s || m % s.count === s.index) out.push(m);
  return out;
}

/** The items of shard `s` (all of them when s is null). */
export function shardItems<T>(items: T[], s: Shard | null): T[] {
  return shardIndices(items.length, s).map((m) => items[m]);
}

/** `dir/name.ext` → `dir/name.shard-3-of-16.ext` (the per-shard output of `--output dir/name.ext`). */
export function shardPath(out: string, s: Shard): string {
  const ext = path.extname(out);
  const stem = ext ? out.slice(0, -ext.length) : out;
  return `${stem}.shard-${s.index}-of-${s.count}${ext}`;
}

/** Parses a shard file name written by shardPath; null when it is not one. */
export function parseShardPath(file: string): Shard | null {
  const m = /\.shard-(\d+)-of-(\d+)(\.[^./]*)?$/.exec(path.basename(file));
  return m ? { index: Number(m[1]), count: Number(m[2]) } : null;
}

export interface ShardCheck<T> {
  count: number;
  missing: number[];
  duplicated: Array<{ index: number; items: T[] }>;
}

/** Which shards of `count` are missing and which appear more than once. */
export function checkShards<T>(items: Array<{ shard: Shard; item: T }>, count: number): ShardCheck<T> {
  const by = new Map<number, T[]>();
  for (const { shard, item } of items) {
    const l = by.get(shard.index) ?? [];
    l.push(item);
    by.set(shard.index, l);
  }
  const missing: number[] = [];
  for (let i = 0; i < count; i++) if (!by.has(i)) missing.push(i);
  const duplicated = [...by.entries()].filter(([, l]) => l.length > 1).map(([index, l]) => ({ index, items: l }));
  return { count, missing, duplicated };
}

/** Sidecar `<shard output>.shard.json` of a shard of a CSV-writing command (lineage). */
export interface ShardManifest {
  format: 'modelprint-shard';
  version: 1;
  command: string;
  shard: Shard;
  models_total: number;
  models_hash: string;
  /** The shard's models: id and position in the full list. */
  models: Array<{ model: string; index: number }>;
}

export function shardManifestPath(out: string): string {
  return `${out}.shard.json`;
}
