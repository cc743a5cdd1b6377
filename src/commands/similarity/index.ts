import { withOutputLocks } from '../../util/lock.js';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { DEVICES, METRICS, PART_EXT, runSimilarity, type DeviceRequest, type Metric, type SimilaritySummary } from '../../similarity/index.js';

export default class Similarity extends BaseCommand<typeof Similarity> {
  static override summary = 'All-pairs bottom-k similarity of many models from their sketches (native CPU / CUDA engine).';
  static override description = `Reads a sketch collection (binary .mpsk, memory-mapped, or JSON lines: {"model": id, "sets": [[ids…], …]} per line) and computes, for every pair of models, the mean over prompts of the overlap |A∩B|/|A| (A the row model's set) or the Jaccard index (METHODS §1.4–1.5). Diagonal 1; a failed model (no sketch) is -1 in its row and column.

--output chooses the result: matrix.csv (model ids as header row and first column, six decimals) or matrix.npy (float32); with --top N, neighbours.jsonl ({"model": id, "neighbours": [{"model": id, "score": s}, …]}, streamed without holding the n × n matrix); with --shard i/n, a part file (*${PART_EXT}) holding a balanced 1/n of the matrix, for HPC array jobs — combine the parts with \`modelprint similarity merge\`. Files are written atomically.

--device auto uses CUDA when a driver, a GPU and NVRTC are present, else the CPU; --device cuda fails when they are not.`;
  static override examples = [
    '<%= config.bin %> similarity --sketches sketches.mpsk --output matrix.csv',
    '<%= config.bin %> similarity --sketches sketches.jsonl --metric jaccard --output matrix.npy --device cpu --threads 8',
    '<%= config.bin %> similarity --sketches sketches.mpsk --top 10 --output neighbours.jsonl',
    `<%= config.bin %> similarity --sketches sketches.mpsk --shard 0/4 --output part-0${PART_EXT}`,
  ];
  static override flags = {
    sketches: Flags.string({ description: 'Sketch collection: .mpsk (binary) or .jsonl (JSON lines).', required: true }),
    metric: Flags.string({ description: 'Per-prompt score.', options: [...METRICS], default: 'overlap' }),
    top: Flags.integer({ description: 'Write the N best neighbours of every model (to a .jsonl --output) instead of the matrix.', min: 1 }),
    candidates: Flags.integer({ description: 'Compact index (.mpsk v3) with --top: models per model found by the hashed sample and rescored exactly.', default: 64, min: 1 }),
    exact: Flags.boolean({ description: 'Compact index with --top: the exact all-pairs engine instead of the two stages (decodes the index into memory: small collections).', default: false }),
    shard: Flags.string({ description: `Compute shard i of n (0-based, "i/n") of the full matrix into a part file (*${PART_EXT}).` }),
    device: Flags.string({ description: 'Where to compute.', options: [...DEVICES], default: 'auto' }),
    threads: Flags.integer({ description: 'CPU threads (default: all cores).', min: 1 }),
    output: Flags.string({ char: 'o', aliases: ['out'], deprecateAliases: true, description: `Output: matrix.csv | matrix.npy | neighbours.jsonl (with --top) | part${PART_EXT} (with --shard).`, required: true }),
  };

  async run(): Promise<SimilaritySummary> {
    const f = this.flags;
    const s = await withOutputLocks([{ path: f.output, kind: 'file', flag: '--output' }], () => runSimilarity({
      sketches: f.sketches,
      out: f.output,
      metric: f.metric as Metric,
      device: f.device as DeviceRequest,
      threads: f.threads,
      top: f.top,
      candidates: f.candidates,
      exact: f.exact,
      shard: f.shard,
    }));
    const what = s.mode === 'shard' ? `shard ${s.shard?.index}/${s.shard?.count} (${s.shard?.tiles} tiles)` : s.mode === 'top' ? `top ${s.top} neighbours` : `${s.n} × ${s.n} ${s.metric} matrix`;
    this.out(`${what} of ${s.n} models (P = ${s.prompts}, k = ${s.k}${s.failed ? `, ${s.failed} failed` : ''}) on ${s.device} in ${s.seconds.toFixed(2)} s → ${s.out}`);
    return s;
  }
}
