import { Flags } from '@oclif/core';
import path from 'node:path';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { onnxVariantFlag } from '../../cli/method-flags.js';
import type { OnnxVariantRequest } from '../../inference/format.js';
import { readExperimentConfig, runExperiment, type ExperimentResult } from '../../methods/experiment.js';
import { makeProgress, type ProgressMode } from '../../ui/progress.js';
import { StopSignal } from '../../util/signals.js';
import { renderTable } from '../../ui/table.js';
import { withOutputLocks } from '../../util/lock.js';

export default class ExperimentRun extends BaseCommand<typeof ExperimentRun> {
  static override summary = 'Fingerprint registry models with several methods and compare them with several metrics.';
  static override description = `The config (JSON, validated; errors name the field) lists registry model ids, methods (bottomk, input_output, weight, architecture), their arguments and metrics (overlap, jaccard for bottomk; l1, cosine, euclidean for vector methods). Writes fingerprints.json, similarity_matrices.json (read by \`analyze families\`) and one CSV matrix per method and metric. With --use-existing, fingerprints already in the registry for the same model, method and config are used instead of recomputed; --write-to-registry stores new ones (on a shared PostgreSQL registry this needs the admin role).`;
  static override examples = [
    '<%= config.bin %> experiment run --config configs/experiment.example.json --use-existing --output-dir exp1',
    '<%= config.bin %> experiment run --config exp.json --registry postgres://me@db/modelprint --use-existing --write-to-registry',
  ];
  static override flags = {
    ...registryFlag,
    config: Flags.string({ description: 'Experiment config (JSON).', required: true }),
    'use-existing': Flags.boolean({ description: 'Use fingerprints already in the registry instead of recomputing them.' }),
    'write-to-registry': Flags.boolean({ description: 'Store new fingerprints in the registry.' }),
    'output-dir': Flags.string({ char: 'o', description: 'Output folder.', default: 'experiment' }),
    'sketches-out': Flags.string({ description: 'Also write the bottom-k sketches (.mpsk) that `modelprint similarity --sketches` reads.' }),
    device: Flags.string({ options: ['cpu', 'cuda', 'auto'], default: 'auto', description: 'Inference device.' }),
    progress: Flags.string({ options: ['auto', 'tty', 'jsonl', 'plain', 'none'], default: 'auto', description: 'Progress display.' }),
    'onnx-variant': onnxVariantFlag,
  };

  async run(): Promise<ExperimentResult> {
    const cfg = readExperimentConfig(this.flags.config);
    const registry = await this.registry();
    return withOutputLocks([{ path: this.flags['output-dir'], kind: 'dir', flag: '--output-dir' }], () => this.runLocked(cfg, registry));
  }

  private async runLocked(cfg: ReturnType<typeof readExperimentConfig>, registry: Awaited<ReturnType<ExperimentRun['registry']>>): Promise<ExperimentResult> {
    const stop = new StopSignal();
    const progress = await makeProgress(this.flags.progress as ProgressMode, Boolean(this.flags.quiet));
    try {
      const r = await runExperiment(cfg, {
        registry,
        useExisting: this.flags['use-existing'],
        writeToRegistry: this.flags['write-to-registry'],
        outputDir: path.resolve(this.flags['output-dir']),
        device: this.flags.device as 'cpu' | 'cuda' | 'auto',
        onnxVariant: this.flags['onnx-variant'] as OnnxVariantRequest,
        progress,
        stop,
        sketchesOut: this.flags['sketches-out'],
        warn: (m) => this.logger.warn(m),
      });
      progress.close();
      this.out(renderTable(['method', 'computed', 'reused'], Object.keys(r.computed).map((m) => [m, r.computed[m], r.reused[m]])));
      if (r.failed.length) this.out(renderTable(['model', 'method', 'code', 'message'], r.failed.map((f) => [f.model, f.method, f.code, f.message.slice(0, 80)])));
      this.out(`outputs: ${r.files.similarity}`);
      this.partial(r.failed.length);
      return r;
    } finally {
      progress.close();
      stop.dispose();
    }
  }
}
