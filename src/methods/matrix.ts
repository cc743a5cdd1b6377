/**
 * Pairwise matrix protocol (METHODS §1.5): each model generates N prompts of its own
 * (pass 1); each model then computes its bottom-k sets on all n·N prompts (pass 2).
 * M[i][j] = mean over model i's prompts of overlap(S_i(p), S_j(p)); M[i][i] = 1;
 * a failed model gives -1 in its row and column. No model is loaded more than twice,
 * and outputs are rewritten atomically as models finish.
 */
import path from 'node:path';
import { native } from '../native/index.js';
import { ModelprintError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { writeNpyFloat32 } from '../util/npy.js';
import type { Sketch } from './bottomk.js';
import { failureOf, lazyModel, promptsFor, sketchFor, type RunContext } from './lineage.js';
import type { ModelEntry } from './models-input.js';
import { csvLine } from './results.js';

export interface MatrixResult {
  models: string[];
  /** Row-major n × n; NaN where not computed yet. */
  matrix: Float32Array;
  status: Array<{ model: string; ok: boolean; code?: string; message?: string; reused_prompts?: boolean; reused_sketch?: boolean }>;
  outDir: string;
  files: { csv: string; npy: string; models: string; prompts: string };
  seconds: number;
  failed: number;
  /** Per model: its sketch on all prompts, and which prompts are its own. */
  sketches: (Sketch | null)[];
  ranges: ([number, number] | null)[];
}

export function matrixCsv(models: string[], m: Float32Array): string {
  const n = models.length;
  let s = csvLine(['', ...models]);
  for (let i = 0; i < n; i++) {
    const row: string[] = [models[i]];
    for (let j = 0; j < n; j++) {
      const v = m[i * n + j];
      row.push(Number.isNaN(v) ? '' : v.toFixed(6));
    }
    s += csvLine(row);
  }
  return s;
}

/** M[i][j]: mean over model i's prompts of the score of S_j against S_i. */
function fillPair(i: number, j: number, m: Float32Array, sketches: (Sketch | null)[], ranges: ([number, number] | null)[], metric: 'overlap' | 'jaccard'): void {
  const n = sketches.length;
  const si = sketches[i];
  const sj = sketches[j];
  const range = ranges[i];
  if (!si || !sj || !range) return;
  if (i === j) {
    m[i * n + j] = 1;
    return;
  }
  let sum = 0;
  let cnt = 0;
  for (let p = range[0]; p < range[1]; p++) {
    const a = si.sets[p];
    const b = sj.sets[p];
    if (!a || !b) continue;
    sum += metric === 'jaccard' ? native.jaccard(a, b) : native.overlapRatio(a, b);
    cnt++;
  }
  m[i * n + j] = cnt > 0 ? sum / cnt : -1;
}

/**
 * The final matrix from the native similarity engine (issue 5): one rectangular call in
 * which query i holds model i's sets on its own prompts only (empty elsewhere) and the
 * references hold every model's sets on all P prompts. The engine averages over all P
 * prompts, so each row is rescaled by P / N_i. Returns null when a prompt failed inside
 * a valid sketch (the JS path skips such prompts; the engine would count them as 0).
 */
export async function engineMatrix(
  sketches: (Sketch | null)[],
  ranges: ([number, number] | null)[],
  ids: string[],
  metric: 'overlap' | 'jaccard',
  device: 'cpu' | 'cuda' | 'auto',
): Promise<Float32Array | null> {
  const n = ids.length;
  const P = sketches.find((s) => s)?.sets.length ?? 0;
  if (P === 0) return null;
  if (sketches.some((s) => s && s.sets.some((x) => x === null))) return null;
  let vocab = 1;
  let k = 1;
  const refLens = new Uint32Array(n * P);
  const qLens = new Uint32Array(n * P);
  let refTotal = 0;
  let qTotal = 0;
  for (let i = 0; i < n; i++) {
    const s = sketches[i];
    if (!s) continue;
    for (let p = 0; p < P; p++) {
      const set = s.sets[p]!;
      refLens[i * P + p] = set.length;
      refTotal += set.length;
      if (set.length) vocab = Math.max(vocab, set[set.length - 1] + 1);
      k = Math.max(k, set.length);
      if (ranges[i] && p >= ranges[i]![0] && p < ranges[i]![1]) {
        qLens[i * P + p] = set.length;
        qTotal += set.length;
      }
    }
  }
  const refIds = new Uint32Array(refTotal);
  const qIds = new Uint32Array(qTotal);
  let ro = 0;
  let qo = 0;
  for (let i = 0; i < n; i++) {
    const s = sketches[i];
    if (!s) continue;
    for (let p = 0; p < P; p++) {
      const set = s.sets[p]!;
      refIds.set(set, ro);
      ro += set.length;
      if (qLens[i * P + p]) {
        qIds.set(set, qo);
        qo += set.length;
      }
    }
  }
  const failed = sketches.map((s) => !s);
  const init = { prompts: P, vocabSize: vocab, k, failed };
  const refs = native.SketchSet.fromArrays(ids, refIds, refLens, init);
  const queries = native.SketchSet.fromArrays(ids, qIds, qLens, { ...init, failed: sketches.map((s, i) => !s || !ranges[i]) });
  const r = await native.similarityRect(queries, refs, { metric, device });
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const range = ranges[i];
    const scale = range ? P / (range[1] - range[0]) : 0;
    for (let j = 0; j < n; j++) {
      const v = r.scores[i * n + j];
      out[i * n + j] = !sketches[i] || !sketches[j] || !range ? -1 : i === j ? 1 : v * scale;
    }
  }
  return out;
}

export async function runMatrix(ctx: RunContext, models: ModelEntry[], outDir: string): Promise<MatrixResult> {
  const t0 = Date.now();
  const n = models.length;
  if (n === 0) throw new ModelprintError('E_INPUT', 'no models given', { subject: '--models', hint: 'pass model folders or a models CSV' });
  const ids = models.map((m) => m.id);
  const files = {
    csv: path.join(outDir, 'overlap_matrix.csv'),
    npy: path.join(outDir, 'overlap_matrix.npy'),
    models: path.join(outDir, 'matrix_models.json'),
    prompts: path.join(outDir, 'prompts.json'),
  };
  const m = new Float32Array(n * n).fill(NaN);
  const status: MatrixResult['status'] = ids.map((model) => ({ model, ok: true }));
  const failed = new Set<number>();
  const fail = (i: number, e: unknown) => {
    const f = failureOf(e);
    failed.add(i);
    Object.assign(status[i], { ok: false, code: f.code, message: f.message });
    for (let j = 0; j < n; j++) {
      m[i * n + j] = -1;
      m[j * n + i] = -1;
    }
    ctx.progress.emit({ event: 'model_failed', model: ids[i], code: f.code, message: f.message });
    void ctx.registry?.recordError(null, ids[i], f.code, f.message);
  };
  let lastWrite = 0;
  const write = (force: boolean) => {
    if (!force && Date.now() - lastWrite < 2000) return;
    lastWrite = Date.now();
    writeFileAtomic(files.csv, matrixCsv(ids, m));
    writeNpyFloat32(files.npy, m, [n, n]);
    writeFileAtomic(files.models, `${JSON.stringify({ models: status, params: ctx.params }, null, 2)}\n`);
  };

  ctx.progress.emit({ event: 'start', run: `matrix of ${n} models`, models: n, total_prompts: n * ctx.params.numPrompts });
  // Pass 1: prompts of each model (loaded only if the registry does not have them).
  const promptLists: (string[] | null)[] = new Array(n).fill(null);
  const loadedInPass1 = new Set<number>();
  for (let i = 0; i < n; i++) {
    ctx.stop.check(ctx.resumeHint);
    const lm = lazyModel(models[i], ctx);
    try {
      const r = await promptsFor(ctx, models[i], lm.get);
      promptLists[i] = r.prompts;
      status[i].reused_prompts = r.reused;
      if (lm.loaded()) loadedInPass1.add(i);
    } catch (e) {
      if (e instanceof ModelprintError && (e.code === 'E_INTERRUPTED' || e.code === 'E_DEVICE')) throw e;
      fail(i, e);
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
  writeFileAtomic(files.prompts, `${JSON.stringify({ params: ctx.params, models: ids.map((id, i) => ({ model: id, prompts: promptLists[i] })) }, null, 2)}\n`);

  // Pass 2: every model's sets on all prompts.
  const sketches: (Sketch | null)[] = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    if (failed.has(i)) continue;
    ctx.stop.check(ctx.resumeHint);
    const t = Date.now();
    const lm = lazyModel(models[i], ctx);
    try {
      const r = await sketchFor(ctx, models[i], allPrompts, lm.get);
      sketches[i] = r.sketch;
      status[i].reused_sketch = r.reused;
      for (let a = 0; a < n; a++) {
        if (!sketches[a]) continue;
        fillPair(i, a, m, sketches, ranges, ctx.params.metric);
        fillPair(a, i, m, sketches, ranges, ctx.params.metric);
      }
      ctx.progress.emit({ event: 'model_done', model: ids[i], score: null, reused: r.reused && Boolean(status[i].reused_prompts), seconds: (Date.now() - t) / 1000 });
      write(false);
    } catch (e) {
      if (e instanceof ModelprintError && (e.code === 'E_INTERRUPTED' || e.code === 'E_DEVICE')) throw e;
      fail(i, e);
    } finally {
      await lm.release();
    }
  }
  for (const i of failed) {
    for (let j = 0; j < n; j++) {
      m[i * n + j] = -1;
      m[j * n + i] = -1;
    }
  }
  if (n - failed.size >= 2) {
    const fromEngine = await engineMatrix(sketches, ranges, ids, ctx.params.metric, ctx.open.device ?? 'auto');
    if (fromEngine) m.set(fromEngine);
  }
  write(true);
  const seconds = (Date.now() - t0) / 1000;
  ctx.progress.emit({ event: 'done', ok: n - failed.size, failed: failed.size, skipped: 0, seconds });
  return { models: ids, matrix: m, status, outDir, files, seconds, failed: failed.size, sketches, ranges };
}
