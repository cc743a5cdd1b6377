/**
 * Pairwise matrix protocol (METHODS §1.5): each model generates N prompts of its own
 * (pass 1); each model then computes its bottom-k sets on all n·N prompts (pass 2).
 * M[i][j] = mean over model i's prompts of overlap(S_i(p), S_j(p)); M[i][i] = 1;
 * a failed model gives -1 in its row and column. No model is loaded more than twice,
 * and outputs are rewritten atomically as models finish.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SketchSet } from '../../native/index.js';
import { native } from '../native/index.js';
import { ModelprintError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { collectSketches } from './bottomk.js';
import type { ModelEntry } from './models-input.js';
import { forEachModel, promptsFor, sketchFor, type RunContext } from './runner.js';

export interface MatrixResult {
  models: string[];
  /** Row-major n × n. */
  matrix: Float32Array;
  status: Array<{ model: string; ok: boolean; code?: string; message?: string; reused_prompts?: boolean; reused_sketch?: boolean }>;
  outDir: string;
  files: { csv: string; npy: string; models: string; prompts: string; sketches: string | null };
  seconds: number;
  failed: number;
  /** Every model's sets on all prompts, with anchor ranges (row i over model i's own prompts). */
  sketches: SketchSet;
  ranges: ([number, number] | null)[];
}

/** Writes a matrix with the engine's one writer (.csv in the pandas layout, or .npy). */
export function writeMatrix(file: string, rows: string[], cols: string[], m: Float32Array): void {
  native.writeMatrixFile(file, rows, cols, m);
}

export async function runMatrix(ctx: RunContext, models: ModelEntry[], outDir: string, opts: { sketchesOut?: string } = {}): Promise<MatrixResult> {
  const t0 = Date.now();
  const n = models.length;
  if (n === 0) throw new ModelprintError('E_INPUT', 'no models given', { subject: '--models', hint: 'pass model folders or a models CSV' });
  const ids = models.map((m) => m.id);
  const files = {
    csv: path.join(outDir, 'overlap_matrix.csv'),
    npy: path.join(outDir, 'overlap_matrix.npy'),
    models: path.join(outDir, 'matrix_models.json'),
    prompts: path.join(outDir, 'prompts.json'),
    sketches: opts.sketchesOut ?? null,
  };
  const status: MatrixResult['status'] = ids.map((model) => ({ model, ok: true }));
  const failed = new Set<number>();
  const fail = (_e: ModelEntry, f: { code: string; message: string }, i: number) => {
    failed.add(i);
    Object.assign(status[i], { ok: false, code: f.code, message: f.message });
  };

  ctx.progress.emit({ event: 'start', run: `matrix of ${n} models`, models: n, total_prompts: n * ctx.params.numPrompts });
  // Pass 1: prompts of each model (loaded only if the registry does not have them).
  const promptLists = await forEachModel(
    ctx,
    models,
    async (m, lm, i) => {
      const r = await promptsFor(ctx, m, lm.get);
      status[i].reused_prompts = r.reused;
      return { value: r.prompts, reused: r.reused };
    },
    fail,
    { events: false },
  );
  const allPrompts: string[] = [];
  const ranges: ([number, number] | null)[] = promptLists.map((p) => {
    if (!p) return null;
    const r: [number, number] = [allPrompts.length, allPrompts.length + p.length];
    allPrompts.push(...p);
    return r;
  });
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(files.prompts, `${JSON.stringify({ params: ctx.params, models: ids.map((id, i) => ({ model: id, prompts: promptLists[i] })) }, null, 2)}\n`);

  // Pass 2: every model's sets on all prompts.
  const usable = models.filter((_, i) => !failed.has(i));
  const index = new Map(usable.map((m) => [m, models.indexOf(m)]));
  const got = await forEachModel(
    ctx,
    usable,
    async (m, lm) => {
      const i = index.get(m)!;
      const r = await sketchFor(ctx, m, allPrompts, lm.get);
      status[i].reused_sketch = r.reused;
      return { value: r.sketch.set, reused: r.reused && Boolean(status[i].reused_prompts) };
    },
    (m, f) => fail(m, f, index.get(m)!),
  );
  const sets: (SketchSet | null)[] = new Array(n).fill(null);
  usable.forEach((m, k) => (sets[index.get(m)!] = got[k]));

  // One engine call: row i over model i's own prompts (anchor ranges) against every model.
  const sketches = collectSketches(ids, sets, allPrompts, ranges);
  const r = await native.similarityMatrix(sketches, { metric: ctx.params.metric, device: ctx.open.device ?? 'auto' });
  const m = r.scores;
  writeMatrix(files.csv, ids, ids, m);
  writeMatrix(files.npy, ids, ids, m);
  if (opts.sketchesOut) sketches.save(opts.sketchesOut);
  writeFileAtomic(files.models, `${JSON.stringify({ models: status, params: ctx.params }, null, 2)}\n`);
  const seconds = (Date.now() - t0) / 1000;
  ctx.progress.emit({ event: 'done', ok: n - failed.size, failed: failed.size, skipped: 0, seconds });
  return { models: ids, matrix: m, status, outDir, files, seconds, failed: failed.size, sketches, ranges };
}
