import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import { ModelprintError } from '../errors.js';
import { bottomKFlags, bottomKParamsFrom } from '../cli/method-flags.js';
import { withRunContext } from '../cli/run-context.js';
import type { DeviceRequest } from '../inference/device.js';
import type { OnnxVariantRequest } from '../inference/format.js';
import { hubCacheDir } from '../inference/hub.js';
import { setGgufActivations, setGgufQuantPreference } from '../inference/resolve.js';
import type { RegistryWrite } from '../methods/runner.js';
import type { ProgressMode } from '../ui/progress.js';
import { renderTable } from '../ui/table.js';
import { hubOptions } from '../hub/client.js';
import { RELATIONS, parseDuration } from '../hub/discover.js';
import { parseSize, runAudit, type AuditSummary } from '../hub/audit.js';
import { endpointFlag, parseRelations } from './hub/derivatives.js';

const { 'sketches-out': _sketchesOut, ...auditBottomKFlags } = bottomKFlags;

export default class Audit extends BaseCommand<typeof Audit> {
  static override summary = 'Audit the Hub derivatives of a base: discover, download, fingerprint against the base, clean up.';
  static override description = `Discovers the derivatives of <base> on the Hub (as \`hub derivatives\`), downloads what fingerprinting needs into the Hugging Face cache (as \`hub download\`), scores each against the base with the lineage protocol (bottom-k, METHODS §1.5), and deletes what it downloaded — never what was in the cache before; --keep keeps it. At most --max-disk of the audit's own downloads are on disk at any time: derivatives go in chunks that fit next to the base; one that alone does not fit gets the code disk_budget. Re-running the same command resumes after Ctrl-C, SIGTERM or SIGKILL (finished models are skipped, partial files resume, leftovers are deleted).

Writes to --output-dir: derivatives.csv, lineage.csv (§1.7 rows as they finish), audit.csv (§1.7 rows joined with the Hub metadata, in discovery order), findings.json / findings.md (declared derivatives scoring below --mislabel-below, failures by code), and report/ (downloads analysis, METHODS §5, with its dashboard). Every model ends scored or with an error code (gated, unauthorized, not_found, download_failed, checksum_mismatch, unsafe_path, disk_budget, or a model code such as bad_gguf); exit 3 when any failed.`;
  static override examples = [
    'HF_TOKEN=hf_… <%= config.bin %> audit Qwen/Qwen2.5-0.5B --max-disk 20G --output-dir audit-qwen',
    '<%= config.bin %> audit zoo/alpha-base --endpoint http://127.0.0.1:8080 --depth 3 --num-prompts 3 --json',
  ];
  static override args = { base: Args.string({ description: 'Base model id (org/name).', required: true }) };
  static override flags = {
    endpoint: endpointFlag,
    relation: Flags.string({ description: 'Relations to follow, comma-separated.', default: RELATIONS.join(',') }),
    depth: Flags.integer({ description: 'Levels of derivatives.', default: 1, min: 1, max: 10 }),
    limit: Flags.integer({ description: 'Most derivatives in all.', min: 1 }),
    'max-disk': Flags.string({ description: 'Disk budget for the audit’s own downloads (e.g. 20G, 500M).', default: '20G' }),
    keep: Flags.boolean({ description: 'Keep the downloaded models in the cache (the budget then bounds their total).' }),
    'output-dir': Flags.string({ char: 'o', description: 'Folder for the audit’s files (resume by running the same command).', default: 'audit' }),
    concurrency: Flags.integer({ description: 'Files downloaded at once.', default: 4, min: 1, max: 64 }),
    chunk: Flags.integer({ description: 'Most derivatives downloaded ahead of fingerprinting.', default: 8, min: 1 }),
    retries: Flags.integer({ description: 'Retries of a request on 429 / 5xx / dropped connections.', default: 5, min: 0 }),
    ttl: Flags.string({ description: 'Reuse a cached discovery younger than this (0 = never).', default: '24h' }),
    refresh: Flags.boolean({ description: 'Ask the Hub even when the registry has a fresh discovery.' }),
    'mislabel-below': Flags.string({ description: 'A declared derivative scoring below this is listed as a possible mislabel.', default: '0.2' }),
    ...auditBottomKFlags,
  };

  async run(): Promise<AuditSummary> {
    const f = this.flags;
    const params = bottomKParamsFrom(f);
    setGgufQuantPreference(f['gguf-quant']);
    setGgufActivations(f['gguf-activations']);
    const mislabelBelow = Number(f['mislabel-below']);
    if (!Number.isFinite(mislabelBelow) || mislabelBelow < 0 || mislabelBelow > 1) {
      throw new ModelprintError('E_USAGE', `--mislabel-below must be a score in [0, 1], not ${f['mislabel-below']}`, { subject: '--mislabel-below', hint: 'e.g. 0.2' });
    }
    const registry = f['registry-write'] === 'off' ? null : await this.registry();
    const hub = hubOptions({ endpoint: f.endpoint, retries: f.retries });
    hub.onRetry = (r) => this.logger.debug(`retry ${r.attempt} in ${(r.waitMs / 1000).toFixed(1)}s: ${r.reason} (${r.url})`);
    const open = { device: f.device as DeviceRequest, threads: f.threads, batchSize: f['batch-size'], onnxVariant: f['onnx-variant'] as OnnxVariantRequest };
    const summary = await withRunContext(
      { params, open, registry, reuse: f.reuse, registryWrite: f['registry-write'] as RegistryWrite, progress: f.progress as ProgressMode, quiet: Boolean(f.quiet), warn: (m) => this.logger.warn(m), outputs: [{ path: f['output-dir'], kind: 'dir', flag: '--output-dir' }] },
      async (ctx) => {
        const s = await runAudit(
          ctx,
          {
            base: this.args.base,
            hub,
            cacheDir: hubCacheDir(),
            outDir: f['output-dir'],
            maxDisk: parseSize(f['max-disk']),
            keep: f.keep,
            discover: { relations: parseRelations(f.relation), depth: f.depth, limit: f.limit ?? Infinity },
            ttlSeconds: parseDuration(f.ttl),
            refresh: f.refresh,
            registry,
            concurrency: f.concurrency,
            chunk: f.chunk,
            mislabelBelow,
          },
          (m) => this.logger.info(m),
        );
        ctx.progress.close();
        return s;
      },
    );
    const fi = summary.findings;
    if (fi.possible_mislabels.length) {
      this.out(`possible mislabels (score < ${f['mislabel-below']}):`);
      this.out(renderTable(['model', 'declared', 'score', 'downloads'], fi.possible_mislabels.map((m) => [m.model, `${m.relation} of ${m.declared_base}`, m.score.toFixed(4), m.downloads ?? '?'])));
    }
    const codes = Object.entries(fi.failures_by_code);
    if (codes.length) this.out(renderTable(['error code', 'models', 'examples'], codes.map(([c, ids]) => [c, ids.length, ids.slice(0, 3).join(', ')])));
    const s = summary.seconds;
    this.out(`${summary.models} derivatives: ${summary.scored} scored, ${summary.failed} failed (${summary.skipped} from an earlier run); discovery ${s.discovery.toFixed(1)}s, download ${s.download.toFixed(1)}s, fingerprint ${s.fingerprint.toFixed(1)}s → ${summary.files.audit}`);
    this.partial(summary.failed);
    return summary;
  }
}
