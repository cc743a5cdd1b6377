/**
 * Base-vs-derived protocol (METHODS §1.5): prompts from the base, the base's sets once,
 * each derived model loaded once, one row per derived model appended as soon as it is
 * done. Probe sets and sketches are kept in the registry by content hash, so a re-run
 * or one new derivative costs one model load.
 */
import fs from 'node:fs';
import type { SketchSet } from '../../native/index.js';
import { ModelprintError, messageOf } from '../errors.js';
import { ModelError } from '../inference/errors.js';
import { native } from '../native/index.js';
import { writeFileAtomic } from '../util/atomic.js';
import { stableHash } from '../util/hash.js';
import { collectSketches, promptScores } from './bottomk.js';
import type { ModelEntry } from './models-input.js';
import { promptParamsHash, type BottomKParams } from './params.js';
import { LINEAGE_COLUMNS, ResultCsv } from './results.js';
import { formatScore, scoresJson } from '../util/format.js';
import { forEachModel, lazyModel, modelKey, promptsFor, runRegistry, sketchFor, type RunContext } from './runner.js';

export type { RunContext } from './runner.js';

export interface PromptFile {
  version: 1;
  source_model: string;
  params: Omit<BottomKParams, 'k' | 'metric'>;
  prompts: string[];
}

export interface LineageSummary {
  base: string;
  out: string;
  rows: number;
  ok: number;
  failed: number;
  skipped: number;
  reused: number;
  seconds: number;
  failures: Array<{ model: string; code: string; message: string }>;
  prompts: number;
}

/** Reads and validates a prompts JSON file (--prompts-in). */
export function readPromptFile(file: string): PromptFile {
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelprintError('E_INPUT', `cannot read prompts file ${file}: ${messageOf(e)}`, { subject: file, hint: 'pass a file written by --prompts-out' });
  }
  const prompts = (j as { prompts?: unknown }).prompts;
  if (!Array.isArray(prompts) || prompts.length === 0 || !prompts.every((p) => typeof p === 'string')) {
    throw new ModelprintError('E_INPUT', `${file}: field "prompts" must be a non-empty array of strings`, { subject: file, hint: 'pass a file written by --prompts-out' });
  }
  return j as PromptFile;
}

/**
 * Checks the parameters recorded beside a result file (`<out>.params.json`) against this
 * run's and records them: a resume with other parameters is refused, naming each that
 * differs. The base is recorded by content hash, so its path spelling does not matter.
 */
export function checkParamsSidecar(out: string, record: Record<string, unknown>, hasRows: boolean): void {
  const sidecar = `${out}.params.json`;
  if (hasRows && fs.existsSync(sidecar)) {
    let prev: Record<string, unknown> = {};
    try {
      prev = JSON.parse(fs.readFileSync(sidecar, 'utf8')) as Record<string, unknown>;
    } catch {
      prev = {};
    }
    const keys = [...new Set([...Object.keys(prev), ...Object.keys(record)])].filter((k) => k !== 'base');
    const differ = keys.filter((k) => stableHash(prev[k] ?? null) !== stableHash(record[k] ?? null));
    if (differ.length > 0) {
      const what = differ.map((k) => `${k}: ${JSON.stringify(prev[k] ?? null)} in the file, ${JSON.stringify(record[k] ?? null)} now`).join('; ');
      throw new ModelprintError('E_CONFIG', `${out} holds results computed with other parameters (${what})`, {
        subject: `${out}:${differ.join(',')}`,
        hint: 'use another --out for these parameters, or move the old file away',
      });
    }
  }
  writeFileAtomic(sidecar, `${JSON.stringify(record, null, 2)}\n`);
}

/** The base's prompts (from --prompts-in, the registry, or generated) and its sketch, loaded at most once. */
export async function baseProbe(ctx: RunContext, base: ModelEntry, promptsIn?: string): Promise<{ prompts: string[]; set: SketchSet }> {
  const baseModel = lazyModel(base, ctx);
  try {
    const prompts = promptsIn ? readPromptFile(promptsIn).prompts : (await promptsFor(ctx, base, baseModel.get)).prompts;
    const { sketch } = await sketchFor(ctx, base, prompts, baseModel.get);
    ctx.progress.emit({ event: 'phase', model: base.id, phase: 'done', done: prompts.length, total: prompts.length });
    return { prompts, set: sketch.set };
  } catch (e) {
    if (e instanceof ModelError) throw new ModelprintError(e.code, `base model ${e.message}`, { subject: base.id, hint: e.hint, cause: e });
    throw e;
  } finally {
    await baseModel.release();
  }
}

export async function runBaseVsDerived(
  ctx: RunContext,
  base: ModelEntry,
  derived: ModelEntry[],
  out: string,
  opts: { promptsIn?: string; promptsOut?: string; retryFailed?: boolean; sketchesOut?: string },
): Promise<LineageSummary> {
  const t0 = Date.now();
  const p = ctx.params;
  const csv = new ResultCsv(out, LINEAGE_COLUMNS, 'derived_model_name');
  const metaCols = [...new Set(derived.flatMap((d) => Object.keys(d.meta)))].filter((c) => !(LINEAGE_COLUMNS as readonly string[]).includes(c));
  csv.extendHeader(metaCols);
  checkParamsSidecar(
    out,
    { method: 'bottomk', base: base.id, base_key: await modelKey(base).catch(() => base.id), k: p.k, metric: p.metric, prompts: promptParamsHash(p), prompts_in: opts.promptsIn ? stableHash(readPromptFile(opts.promptsIn).prompts) : null },
    csv.done.size > 0,
  );

  const isDone = (d: ModelEntry) => csv.isDone(d.id, 'avg_overlap_ratio', opts.retryFailed);
  const todo = derived.filter((d) => !isDone(d));
  const skipped = derived.length - todo.length;
  ctx.progress.emit({ event: 'start', run: `lineage vs ${base.id}`, models: derived.length, total_prompts: p.numPrompts * derived.length });
  for (const d of derived) if (isDone(d)) ctx.progress.emit({ event: 'model_done', model: d.id, score: Number(csv.done.get(d.id)!.avg_overlap_ratio), reused: true, seconds: 0 });

  const summary: LineageSummary = { base: base.id, out, rows: derived.length, ok: 0, failed: 0, skipped, reused: 0, seconds: 0, failures: [], prompts: 0 };
  if (todo.length === 0 && !opts.sketchesOut) {
    summary.seconds = (Date.now() - t0) / 1000;
    ctx.progress.emit({ event: 'done', ok: 0, failed: 0, skipped, seconds: summary.seconds });
    return summary;
  }

  const { prompts, set: baseSet } = await baseProbe(ctx, base, opts.promptsIn);
  summary.prompts = prompts.length;
  if (opts.promptsOut) {
    const { numPrompts, sampleK, prefixLen, totalLen, seed } = p;
    const file: PromptFile = { version: 1, source_model: base.id, params: { numPrompts, sampleK, prefixLen, totalLen, seed }, prompts };
    writeFileAtomic(opts.promptsOut, `${JSON.stringify(file, null, 2)}\n`);
  }

  // Each derived model: its sketch on the base's prompts, scored by the engine (a 1 × 1 call).
  const sketches = new Map<string, SketchSet>();
  const rowOf = (d: ModelEntry): Record<string, unknown> => ({ base_model_name: base.id, derived_model_name: d.id, bottom_k_vocab_size: p.k, ...d.meta });
  await forEachModel(
    ctx,
    todo,
    async (d, lm) => {
      const { sketch, reused } = await sketchFor(ctx, d, prompts, lm.get);
      sketches.set(d.id, sketch.set);
      const score = (await native.similarityRect(baseSet, sketch.set, { metric: p.metric, device: 'cpu' })).scores[0];
      const perPrompt = promptScores(baseSet, 0, sketch.set, 0, p.metric);
      const row = { ...rowOf(d), num_pairs: perPrompt.length, avg_overlap_ratio: formatScore(score), pair_scores_json: scoresJson(perPrompt), error_code: '', error_message: '' };
      if (score < 0) {
        // No prompt could be scored: a failed model (exit 3 with its code), not a success.
        Object.assign(row, { error_code: 'inference_failed', error_message: 'no prompt could be scored' });
        summary.failed++;
        summary.failures.push({ model: d.id, code: 'inference_failed', message: 'no prompt could be scored' });
      }
      summary.ok += score >= 0 ? 1 : 0;
      if (reused) summary.reused++;
      csv.append(row);
      return { value: score, reused, score };
    },
    (d, f) => {
      csv.append({ ...rowOf(d), num_pairs: 0, avg_overlap_ratio: '-1.0', pair_scores_json: '[]', error_code: f.code, error_message: f.message });
      summary.failed++;
      summary.failures.push({ model: d.id, ...f });
    },
  );
  if (opts.sketchesOut) await writeLineageSketches(ctx, opts.sketchesOut, base, baseSet, derived, prompts, sketches);
  summary.seconds = (Date.now() - t0) / 1000;
  ctx.progress.emit({ event: 'done', ok: summary.ok, failed: summary.failed, skipped, seconds: summary.seconds });
  return summary;
}

/**
 * `--sketches-out`: the base and every derived model on the base's prompts as one collection
 * (base first). Models scored in an earlier run come from the registry; one that is not
 * stored (or failed) is flagged failed in the file.
 */
async function writeLineageSketches(
  ctx: RunContext,
  file: string,
  base: ModelEntry,
  baseSet: SketchSet,
  derived: ModelEntry[],
  prompts: string[],
  sketches: Map<string, SketchSet>,
): Promise<void> {
  const reads = runRegistry(ctx).reads;
  const sets: (SketchSet | null)[] = [baseSet];
  let missing = 0;
  for (const d of derived) {
    let s = sketches.get(d.id) ?? null;
    if (!s && reads) {
      const r = await sketchFor({ ...ctx, registryWrite: 'read-only' }, d, prompts, () => Promise.reject(new Error('not stored'))).catch(() => null);
      s = r?.sketch.set ?? null;
    }
    if (!s) missing++;
    sets.push(s);
  }
  if (missing > 0) ctx.warn?.(`${missing} derived model(s) have no sketch in ${file} (failed, or scored in an earlier run without a registry)`);
  collectSketches([base.id, ...derived.map((d) => d.id)], sets, prompts).save(file);
}
