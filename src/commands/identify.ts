import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base.js';
import type { DeviceRequest } from '../inference/device.js';
import { identify, type IdentifyResult } from '../hpc/identify.js';
import type { Metric } from '../similarity/index.js';
import { renderTable } from '../ui/table.js';

export default class Identify extends BaseCommand<typeof Identify> {
  static override summary = 'The nearest known models of a model, from a sketch index (.mpsk from `sketch` / `merge`).';
  static override description = `Loads the model once, computes its bottom-k sets on the index's probe bank (kept in the index sidecar) and scores it against every indexed model in one 1 × n query (the index is memory-mapped; on the CPU a streaming scan reads it once, with --device cuda the GPU engine runs the query). Prints the --top nearest models with their score and family (from the index's models CSV family column, or --models-csv).`;
  static override examples = [
    '<%= config.bin %> identify ./uploads/mystery-model --index sketches.mpsk',
    '<%= config.bin %> identify ./zoo/alpha-int8 --index sketches.mpsk --top 5 --json',
  ];
  static override args = {
    model: Args.string({ description: 'The model to identify (local folder).', required: true }),
  };
  static override flags = {
    index: Flags.string({ description: 'Sketch index (.mpsk with its .json sidecar).', required: true }),
    top: Flags.integer({ description: 'Neighbours to list.', default: 10, min: 1 }),
    metric: Flags.string({ description: 'Set score.', options: ['overlap', 'jaccard'], default: 'overlap' }),
    'models-csv': Flags.string({ description: 'Models CSV with model_id and family columns (families of the neighbours).' }),
    device: Flags.string({ description: 'Device of inference and of the query.', options: ['cpu', 'cuda', 'auto'], default: 'auto' }),
    threads: Flags.integer({ description: 'ONNX Runtime threads (0 = all cores).', default: 0, min: 0 }),
    candidates: Flags.integer({ description: 'Compact index (.mpsk v3): models found by the hashed sample and rescored exactly.', default: 1000, min: 1 }),
    exact: Flags.boolean({ description: 'Compact index: rescore every indexed model (the exact scan; slower at 100,000 models).', default: false }),
  };

  async run(): Promise<IdentifyResult> {
    const f = this.flags;
    const r = await identify({
      model: this.args.model,
      index: f.index,
      top: f.top,
      metric: f.metric as Metric,
      device: f.device as DeviceRequest,
      open: { device: f.device as DeviceRequest, threads: f.threads },
      familiesCsv: f['models-csv'],
      candidates: f.candidates,
      exact: f.exact,
    });
    this.out(renderTable(['#', 'model', 'score', 'family'], r.neighbours.map((n) => [n.rank, n.model, n.score.toFixed(4), n.family ?? ''])));
    this.out(`${r.model}: likely family ${r.likely_family ?? 'unknown'} (${r.index_models} indexed models, ${r.prompts} probes, query ${r.seconds.query.toFixed(3)} s)`);
    return r;
  }
}
