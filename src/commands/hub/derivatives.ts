import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { hubOptions } from '../../hub/client.js';
import { RELATIONS, derivativesWithCache, parseDuration, writeDerivativesCsv, type DerivativeRow, type Relation } from '../../hub/discover.js';
import { renderTable } from '../../ui/table.js';

export const endpointFlag = Flags.string({ description: 'Hub URL (default: $HF_ENDPOINT, else https://huggingface.co). HF_TOKEN authenticates.' });

export function parseRelations(v: string): Relation[] {
  const out = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = out.filter((r) => !(RELATIONS as readonly string[]).includes(r));
  if (bad.length > 0 || out.length === 0) throw new ModelprintError('E_USAGE', `unknown relation(s) ${bad.join(', ') || '(none)'}`, { subject: '--relation', hint: `pick from ${RELATIONS.join(',')}` });
  return [...new Set(out)] as Relation[];
}

export default class HubDerivatives extends BaseCommand<typeof HubDerivatives> {
  static override summary = 'Find the derivatives of a base model on the Hub (base_model tags, recursively).';
  static override description =
    'Searches the Hub for models tagged base_model:<relation>:<id> (fine-tunes, adapters, quantizations, merges), then their derivatives in turn down to --depth, following pagination. Writes one row per model: model_id, base_model (the parent it was found under), relation, depth, downloads, likes, created_at, last_modified, pipeline_tag, library, gated, formats, revision, tags — a superset of the Hub metadata CSV `analyze downloads --hub-metadata` reads. The result is cached in the registry for --ttl, so a rerun does not ask the Hub again (--refresh does).';
  static override examples = [
    '<%= config.bin %> hub derivatives meta-llama/Llama-3.2-1B --out derivatives.csv',
    '<%= config.bin %> hub derivatives Qwen/Qwen2.5-0.5B --relation finetune,quantized --depth 2 --limit 500 --out q.csv --json',
  ];
  static override args = { base: Args.string({ description: 'Base model id (org/name).', required: true }) };
  static override flags = {
    relation: Flags.string({ description: 'Relations to follow, comma-separated.', default: RELATIONS.join(',') }),
    depth: Flags.integer({ description: 'Levels of derivatives (1: the base’s own).', default: 1, min: 1, max: 10 }),
    limit: Flags.integer({ description: 'Most derivatives in all.', min: 1 }),
    output: Flags.string({ char: 'o', description: 'CSV to write.', default: 'derivatives.csv' }),
    endpoint: endpointFlag,
    ttl: Flags.string({ description: 'Reuse a cached discovery younger than this (e.g. 3600, 90m, 24h; 0 = never).', default: '24h' }),
    refresh: Flags.boolean({ description: 'Ask the Hub even when the registry has a fresh result.' }),
    retries: Flags.integer({ description: 'Retries of a request on 429 / 5xx / network errors.', default: 5, min: 0 }),
  };

  async run(): Promise<{ base: string; output: string; count: number; cached: boolean; cached_at: string | null; by_relation: Record<string, number>; rows: DerivativeRow[] }> {
    const f = this.flags;
    const hub = hubOptions({ endpoint: f.endpoint, retries: f.retries });
    hub.onRetry = (r) => this.logger.info(`retry ${r.attempt} in ${(r.waitMs / 1000).toFixed(1)}s: ${r.reason} (${r.url})`);
    const opts = { relations: parseRelations(f.relation), depth: f.depth, limit: f.limit ?? Infinity };
    const registry = await this.registry();
    const r = await derivativesWithCache(this.args.base, hub, opts, { registry, ttlSeconds: parseDuration(f.ttl), refresh: f.refresh, warn: (m) => this.logger.warn(m) }, (row, n) => {
      if (n % 100 === 0) this.logger.info(`${n} derivatives so far (depth ${row.depth})`);
    });
    writeDerivativesCsv(f.output, r.rows);
    const byRelation: Record<string, number> = {};
    for (const row of r.rows) byRelation[row.relation] = (byRelation[row.relation] ?? 0) + 1;
    this.out(renderTable(['relation', 'models'], Object.entries(byRelation)));
    this.out(`${r.rows.length} derivatives of ${this.args.base}${r.cached ? ` (from the registry cache, ${r.cachedAt})` : ''} → ${f.output}`);
    return { base: this.args.base, output: f.output, count: r.rows.length, cached: r.cached, cached_at: r.cachedAt, by_relation: byRelation, rows: r.rows };
  }
}
