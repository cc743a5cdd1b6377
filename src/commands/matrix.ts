import { Flags } from '@oclif/core';
import { BaseCommand, registryFlag } from '../cli/base.js';
import { setGgufActivations, setGgufQuantPreference } from '../inference/resolve.js';
import { bottomKFlags, bottomKParamsFrom, checkTotalLen } from '../cli/method-flags.js';
import { runMatrix } from '../methods/matrix.js';
import { resolveModelList } from '../methods/models-input.js';
import type { ProgressMode } from '../ui/progress.js';
import { withRunContext } from '../cli/run-context.js';
import type { RegistryWrite } from '../methods/runner.js';
import type { DeviceRequest } from '../inference/device.js';
import type { OnnxVariantRequest } from '../inference/format.js';
import { renderTable } from '../ui/table.js';
import { writeMatrixDashboard } from '../report/index.js';
import { messageOf } from '../errors.js';

export default class Matrix extends BaseCommand<typeof Matrix> {
  static override summary = 'Pairwise bottom-k overlap matrix of many models (METHODS §1.5).';
  static override description = `Each model generates N probe prompts of its own, then every model computes its bottom-k sets on all n·N prompts; M[i][j] is the mean over model i's prompts of the overlap of S_j with S_i. Writes overlap_matrix.csv (six decimals, pandas layout), overlap_matrix.npy (float32), matrix_models.json (status and error codes) and prompts.json, and at the end dashboard.html (with the family analysis when the models CSV has a family column; --no-dashboard skips it); with --sketches-out also the sketch collection (every model on every prompt, each row anchored on its own prompts) from which \`modelprint similarity\` gives the same matrix bit for bit. The matrix is one call of the native engine. Failed models are -1 in their row and column; probe sets and sketches are reused from the registry, so an interrupted run resumes.`;
  static override examples = [
    '<%= config.bin %> matrix --models ./zoo/models.csv --output-dir ./matrix',
    '<%= config.bin %> matrix --models ./zoo/alpha-base ./zoo/beta-base ./zoo/alpha-int8 --num-prompts 5 -o m --json',
  ];
  static override flags = {
    ...registryFlag,
    models: Flags.string({ description: 'Models: folders, registry ids, or a models CSV (model_id, optional path).', required: true, multiple: true }),
    'output-dir': Flags.string({ char: 'o', description: 'Output folder (the matrix files and dashboard.html).', default: 'matrix', aliases: ['out-dir'], deprecateAliases: true }),
    'color-range': Flags.string({ description: 'Heatmap colour scale: the metric range (0–1; distances: their data range) or the data min–max.', options: ['metric', 'data'], default: 'metric' }),
    dashboard: Flags.boolean({ description: 'Write dashboard.html (heatmap; with families, the family analysis) next to the matrix.', default: true, allowNo: true }),
    ...bottomKFlags,
  };

  async run(): Promise<Record<string, unknown>> {
    const f = this.flags;
    const params = bottomKParamsFrom(f);
    setGgufQuantPreference(f['gguf-quant']);
    setGgufActivations(f['gguf-activations']);
    const registry = await this.registry();
    const open = { device: f.device as DeviceRequest, threads: f.threads, lowMemory: f['low-memory'], batchSize: f['batch-size'], onnxVariant: f['onnx-variant'] as OnnxVariantRequest };
    return withRunContext({ params, open, registry, reuse: f.reuse, registryWrite: f['registry-write'] as RegistryWrite, progress: f.progress as ProgressMode, quiet: Boolean(f.quiet), warn: (m) => this.logger.warn(m), outputs: [{ path: f['output-dir'], kind: 'dir', flag: '--output-dir' }] }, async (ctx) => {
      const models = await resolveModelList(f.models, registry);
      checkTotalLen(models, params.totalLen);
      const r = await runMatrix(ctx, models, f['output-dir'], { sketchesOut: f['sketches-out'] });
      ctx.progress.close();
      const failures = r.status.filter((s) => !s.ok);
      if (failures.length > 0) this.out(renderTable(['model', 'error code', 'message'], failures.map((s) => [s.model, s.code, (s.message ?? '').slice(0, 100)])));
      let dashboard: string | null = null;
      if (f.dashboard) {
        try {
          const info = models.map((m) => ({ model_id: m.id, family: m.meta.family ?? null, model_type: m.meta.model_type ?? null, display_name: m.id }));
          dashboard = writeMatrixDashboard(f['output-dir'], { models: r.models, matrix: r.matrix, info, title: `bottom-k ${params.metric} matrix of ${r.models.length} models`, label: params.metric, source: r.files.csv, display: { colourRange: f['color-range'] as 'metric' | 'data' } }).html;
        } catch (e) {
          this.logger.warn(`dashboard not written: ${messageOf(e)}`);
        }
      }
      this.out(`${r.models.length - r.failed} ok, ${r.failed} failed → ${r.files.csv}${dashboard ? `\ndashboard: ${dashboard}` : ''}`);
      this.partial(r.failed);
      return { models: r.models, failed: r.failed, status: r.status, files: { ...r.files, dashboard }, seconds: r.seconds, params };
    });
  }
}
