import { Flags } from '@oclif/core';
import { BaseCommand, registryFlag } from '../cli/base.js';
import { setGgufActivations, setGgufQuantPreference } from '../inference/resolve.js';
import { bottomKFlags, bottomKParamsFrom, checkTotalLen } from '../cli/method-flags.js';
import { ModelprintError } from '../errors.js';
import { runBaseVsDerived, type LineageSummary } from '../methods/lineage.js';
import { resolveModelList, resolveOne } from '../methods/models-input.js';
import { runTextMethod } from '../methods/text.js';
import type { ProgressMode } from '../ui/progress.js';
import { withRunContext } from '../cli/run-context.js';
import type { RegistryWrite } from '../methods/runner.js';
import type { DeviceRequest } from '../inference/device.js';
import type { OnnxVariantRequest } from '../inference/format.js';
import { renderTable } from '../ui/table.js';
import { shardOfList } from '../hpc/lineage-shard.js';
import { resolveShard, shardPath } from '../hpc/shard.js';

export default class Lineage extends BaseCommand<typeof Lineage> {
  static override summary = 'Base vs derived: score each derived model against a base (bottom-k overlap).';
  static override description = `Generates probe prompts from the base (METHODS §1.2), computes the base's bottom-k sets once, then loads each derived model once and appends one CSV row per model as soon as it is done. Re-running the same command resumes: models already in --output are skipped. Broken or unsupported models become rows with -1 and an error code; the batch goes on and exits 3.`;
  static override examples = [
    '<%= config.bin %> lineage --base ./zoo/alpha-base --derived ./zoo/models.csv --output results.csv',
    '<%= config.bin %> lineage --base ./zoo/alpha-base --derived ./zoo/alpha-int8 ./zoo/beta-base --num-prompts 5 --json',
    '<%= config.bin %> lineage --base ./zoo/alpha-base --derived ./zoo/models.csv --method text --output text.csv',
  ];
  static override flags = {
    ...registryFlag,
    base: Flags.string({ description: 'Base model: local folder, hub cache snapshot, .onnx file or registry id/name.', required: true }),
    derived: Flags.string({ description: 'Derived models: folders, registry ids, or a models CSV (model_id, optional path).', required: true, multiple: true }),
    output: Flags.string({ char: 'o', description: 'Result CSV (appended per model; resumable).', default: 'lineage_results.csv', aliases: ['out'], deprecateAliases: true }),
    'prompts-out': Flags.string({ description: 'Write the probe prompts (with seed and parameters) to this JSON file.' }),
    'prompts-in': Flags.string({ description: 'Use the probe prompts of this JSON file instead of generating them.' }),
    method: Flags.string({ description: 'bottomk (§1) or text (§2, bottom-k constrained generation).', options: ['bottomk', 'text'], default: 'bottomk' }),
    'retry-failed': Flags.boolean({ description: 'On resume, run models that failed before again.' }),
    shard: Flags.string({ description: 'Shard i/n of the derived list (0-based) → <out stem>.shard-i-of-n.csv; `modelprint merge` combines them. [default: from SLURM_ARRAY_TASK_ID/COUNT/MIN]' }),
    tokenizer: Flags.string({ description: 'tokenizer.json to use for the base when it is a bare .onnx file.' }),
    'adapter-base': Flags.string({ description: 'Base checkpoint folder for PEFT LoRA adapters (default: their base_model_name_or_path, as a folder or in the Hugging Face cache).' }),
    ...bottomKFlags,
  };

  async run(): Promise<LineageSummary> {
    const f = this.flags;
    const params = bottomKParamsFrom(f);
    setGgufQuantPreference(f['gguf-quant']);
    setGgufActivations(f['gguf-activations']);
    const registry = await this.registry();
    const open = { device: f.device as DeviceRequest, threads: f.threads, lowMemory: f['low-memory'], batchSize: f['batch-size'], onnxVariant: f['onnx-variant'] as OnnxVariantRequest, adapterBase: f['adapter-base'] };
    // Array tasks write (and lock) their own shard file, so they never wait on one another.
    const shardSpec = resolveShard(f.shard);
    const lockPath = shardSpec ? shardPath(f.output, shardSpec) : f.output;
    return withRunContext({ params, open, registry, reuse: f.reuse, registryWrite: f['registry-write'] as RegistryWrite, progress: f.progress as ProgressMode, quiet: Boolean(f.quiet), warn: (m) => this.logger.warn(m), outputs: [{ path: lockPath, kind: 'file', flag: '--output' }] }, async (ctx) => {
      const base = await resolveOne(f.base, registry);
      if (!base.path) {
        if (base.error) throw base.error;
        throw new ModelprintError('E_NOT_FOUND', `base model "${f.base}" is neither a local path nor a registry model`, { subject: '--base', hint: 'pass a model folder, or register it with `modelprint models add`' });
      }
      const { derived, out, shard } = shardOfList(await resolveModelList(f.derived, registry), f.output, f.shard, `lineage ${f.method}`);
      if (derived.length === 0) throw new ModelprintError('E_INPUT', 'no derived models given', { subject: '--derived', hint: 'pass folders or a models CSV' });
      checkTotalLen([base, ...derived], params.totalLen);
      const sketchesOut = f['sketches-out'] && shard ? shardPath(f['sketches-out'], shard) : f['sketches-out'];
      const io = { promptsIn: f['prompts-in'], promptsOut: f['prompts-out'], retryFailed: f['retry-failed'], sketchesOut };
      if (f.method === 'text' && f['sketches-out']) throw new ModelprintError('E_USAGE', '--sketches-out writes bottom-k sketches; the text method has none', { subject: '--sketches-out', hint: 'drop --sketches-out, or use --method bottomk' });
      const summary = f.method === 'text' ? await runTextMethod(ctx, base, derived, out, io) : await runBaseVsDerived(ctx, base, derived, out, io);
      ctx.progress.close();
      if (summary.failures.length > 0) {
        this.out(renderTable(['model', 'error code', 'message'], summary.failures.map((x) => [x.model, x.code, x.message.slice(0, 100)])));
      }
      this.out(`${summary.ok} ok, ${summary.failed} failed, ${summary.skipped} already done → ${summary.out}`);
      this.partial(summary.failed);
      return summary;
    });
  }
}
