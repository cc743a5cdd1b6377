/**
 * `lineage --shard i/n`: the shard's part of the derived list, its own output CSV and a
 * `.shard.json` sidecar naming its models, for `modelprint merge --output results.csv`.
 */
import type { ModelEntry } from '../methods/models-input.js';
import { writeFileAtomic } from '../util/atomic.js';
import { stableHash } from '../util/hash.js';
import { resolveShard, shardIndices, shardManifestPath, shardPath, type Shard, type ShardManifest } from './shard.js';

export function shardOfList(all: ModelEntry[], out: string, flag: string | undefined, command: string): { derived: ModelEntry[]; out: string; shard: Shard | null } {
  const shard = resolveShard(flag);
  if (!shard) return { derived: all, out, shard: null };
  const idx = shardIndices(all.length, shard);
  const file = shardPath(out, shard);
  const man: ShardManifest = {
    format: 'modelprint-shard',
    version: 1,
    command,
    shard,
    models_total: all.length,
    models_hash: stableHash(all.map((m) => m.id)),
    models: idx.map((i) => ({ model: all[i].id, index: i })),
  };
  writeFileAtomic(shardManifestPath(file), `${JSON.stringify(man, null, 2)}\n`);
  return { derived: idx.map((i) => all[i]), out: file, shard };
}
