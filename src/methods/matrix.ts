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
import { failureOf, isFatal, lazyModel, promptsFor, recordFailure, sketchFor, type RunContext } from './runner.js';

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
  const fail = async (i: number, e: unknown) => {
    const f = failureOf(e);
    failed.add(i);
    Object.assign(status[i], { ok: false, code: f.code, message: f.message });
    ctx.progress.emit({ event: 'model_failed', model: ids[i], code: f.code, message: f.message });
    await recordFailure(ctx, ids[i], f);
  };

  ctx.progress.emit({ event: 'start', run: `matrix of ${n} models`, models: n, total_prompts: n * ctx.params.numPrompts });
  // Pass 1: prompts of each model (loaded only if the registry does not have them).
  const promptLists: (string[] | null)[] = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    ctx.stop.check(ctx.resumeHint);
    const lm = lazyModel(models[i], ctx);
    try {
      const r = await promptsFor(ctx, models[i], lm.get);
      promptLists[i] = r.prompts;
      status[i].reused_prompts = r.reused;
    } catch (e) {
      if (isFatal(e)) throw e;
      await fail(i, e);
    } finally {
      await lm.release();
    }
  }
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
  const sets: (SketchSet | null)[] = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    if (failed.has(i)) continue;
    ctx.stop.check(ctx.resumeHint);
    const t = Date.now();
    const lm = lazyModel(models[i], ctx);
    try {
      const r = await sketchFor(ctx, models[i], allPrompts, lm.get);
      sets[i] = r.sketch.set;
      status[i].reused_sketch = r.reused;
      ctx.progress.emit({ event: 'model_done', model: ids[i], score: null, reused: r.reused && Boolean(status[i].reused_prompts), seconds: (Date.now() - t) / 1000 });
    } catch (e) {
      if (isFatal(e)) throw e;
      await fail(i, e);
    } finally {
      await lm.release();
    }
  }

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
