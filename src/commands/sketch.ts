import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import type { DeviceRequest } from '../inference/device.js';
import { resolveModelList } from '../methods/models-input.js';
import { batchFlags, withBatch } from '../hpc/batch.js';
import { readBank } from '../hpc/probes.js';
import { resolveShard } from '../hpc/shard.js';
import { runSketch, type SketchRunSummary } from '../hpc/sketch.js';
import { renderTable } from '../ui/table.js';

export default class Sketch extends BaseCommand<typeof Sketch> {
  static override summary = 'Bottom-k sketches of many models on a probe bank → one .mpsk collection (shardable over an HPC array).';
  static override description = `Loads each model once and computes its bottom-k sets on the bank's P prompts (O(n · P) forward passes). The output is a binary sketch collection (.mpsk, memory-mapped by \`similarity\` and \`identify\`) with a sidecar <out>.json (bank, k, per-model status, family and CSV metadata). Failed models are kept, flagged, with an error code; the command then exits 3.

Resumable: each model is saved as soon as it is done (under <out>.parts/); re-running the same command skips them, and the collection is written atomically when all are done. Ctrl-C / SIGTERM finish the current model and exit 130 / 143.

Sharding: --shard i/n (0-based) takes models m with m mod n = i of the model list and writes <out stem>.shard-i-of-n.mpsk; inside a Slurm array the shard defaults to SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT. \`modelprint merge --output <out>\` then checks and combines the shards.`;
  static override examples = [
    '<%= config.bin %> sketch --probes bank.json --models ./zoo/models.csv --output sketches.mpsk',
    '<%= config.bin %> sketch --probes bank.json --models ./zoo/models.csv --output sketches.mpsk --shard 2/8 --progress jsonl',
  ];
  static override flags = {
    probes: Flags.string({ description: 'Probe bank (from `modelprint probes make`).', required: true }),
    models: Flags.string({ description: 'Models: folders or a models CSV (model_id, path, optional family and metadata).', required: true, multiple: true }),
    output: Flags.string({ char: 'o', aliases: ['out'], deprecateAliases: true, description: 'Sketch collection (.mpsk).', default: 'sketches.mpsk' }),
    shard: Flags.string({ description: 'Shard i/n of the model list (0-based); "none" ignores SLURM_ARRAY_* . [default: from SLURM_ARRAY_TASK_ID/COUNT/MIN]' }),
    k: Flags.integer({ description: 'Size of each bottom-k set (clipped to the vocabulary).', default: 2000, min: 1 }),
    'retry-failed': Flags.boolean({ description: 'On resume, run models that failed before again.' }),
    compact: Flags.boolean({ description: 'Write a compact index (.mpsk version 3: ~1 byte per id and a hashed sample; what `identify` and `similarity --top` use at 100,000 models).' }),
    ...batchFlags,
  };

  async run(): Promise<SketchRunSummary> {
    const f = this.flags;
    const bank = readBank(f.probes);
    const shard = resolveShard(f.shard);
    const models = await resolveModelList(f.models, null);
    const s = await withBatch({ progress: f.progress, quiet: Boolean(f.quiet) || this.jsonEnabled(), heartbeat: f.heartbeat }, (ctx) =>
      runSketch({
        bank,
        bankFile: f.probes,
        models,
        out: f.output,
        shard,
        k: f.k,
        open: { device: f.device as DeviceRequest, threads: f.threads, batchSize: f['batch-size'] },
        progress: ctx.progress,
        stop: ctx.stop,
        resumeHint: ctx.resume,
        retryFailed: f['retry-failed'],
        compact: f.compact,
      }),
    );
    if (s.failures.length > 0) this.out(renderTable(['model', 'error code', 'message'], s.failures.map((x) => [x.model, x.code, x.message.slice(0, 100)])));
    this.out(`${s.ok} ok, ${s.failed} failed (${s.computed} computed, ${s.resumed} resumed) on ${s.prompts} probes → ${s.out}`);
    this.partial(s.failed);
    return s;
  }
}
