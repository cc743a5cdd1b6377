/**
 * Base-vs-derived protocol (METHODS §1.5): prompts from the base, the base's sets once,
 * each derived model loaded once, one row per derived model appended as soon as it is
 * done. Probe sets and sketches are kept in the registry by content hash, so a re-run
 * or one new derivative costs one model load.
 */
import fs from 'node:fs';
import { ModelprintError, messageOf } from '../errors.js';
import { CausalLM, type OpenOptions } from '../inference/session.js';
import { isModelError, ModelError } from '../inference/errors.js';
import type { Registry } from '../registry/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { contentHash, stableHash } from '../util/hash.js';
import type { Progress } from '../ui/progress.js';
import type { StopSignal } from '../util/signals.js';
import { computeSketch, decodeSketch, encodeSketch, generatePrompts, scoreSketches, type Sketch } from './bottomk.js';
import type { ModelEntry } from './models-input.js';
import { promptParamsHash, sketchConfigHash, type BottomKParams } from './params.js';
import { LINEAGE_COLUMNS, ResultCsv } from './results.js';
import { formatScore, scoresJson } from '../util/format.js';

export interface PromptFile {
  version: 1;
  source_model: string;
  params: Omit<BottomKParams, 'k' | 'metric'>;
  prompts: string[];
}

export interface RunContext {
  params: BottomKParams;
  open: OpenOptions;
  registry: Registry | null;
  reuse: boolean;
  progress: Progress;
  stop: StopSignal;
  resumeHint: string;
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

/** Cached content hash of a model path (registry value when known). */
export async function modelKey(e: ModelEntry): Promise<string> {
  if (e.contentHash) return e.contentHash;
  if (!e.path) throw new ModelError('not_found', e.id, 'model could not be found locally or in the registry', 'pass a local path, a models CSV with a path column, or register it with `modelprint models add`');
  if (!fs.existsSync(e.path)) throw new ModelError('not_found', e.id, `no such file or folder ${e.path}`, 'check the path');
  e.contentHash = await contentHash(e.path);
  return e.contentHash;
}

/** A sketch from the registry, or computed with a model loaded by `load`. */
export async function sketchFor(
  ctx: RunContext,
  e: ModelEntry,
  prompts: string[],
  load: () => Promise<CausalLM>,
): Promise<{ sketch: Sketch; reused: boolean }> {
  const key = await modelKey(e);
  const cfg = sketchConfigHash(ctx.params.k, prompts);
  if (ctx.reuse && ctx.registry) {
    const fp = await ctx.registry.findFingerprint(key, 'bottomk', cfg);
    if (fp) return { sketch: decodeSketch(fp.payload), reused: true };
  }
  const lm = await load();
  ctx.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done: 0, total: prompts.length });
  const sketch = await computeSketch(lm, prompts, ctx.params.k, (done, total) =>
    ctx.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done, total }),
  );
  if (sketch.sets.every((s) => s === null)) {
    throw new ModelError('non_finite_logits', e.id, `every prompt failed: ${sketch.errors.find((x) => x) ?? 'unknown'}`, 'the model produces NaN or infinite logits; check its weights');
  }
  if (ctx.registry) {
    await ctx.registry.putFingerprint({ modelKey: key, modelId: e.registryId ?? null, method: 'bottomk', configHash: cfg, payload: encodeSketch(sketch) });
  }
  return { sketch, reused: false };
}

/** Prompts of a source model: from the registry, or generated with a model loaded by `load`. */
export async function promptsFor(ctx: RunContext, e: ModelEntry, load: () => Promise<CausalLM>): Promise<{ prompts: string[]; reused: boolean }> {
  const key = await modelKey(e);
  const ph = promptParamsHash(ctx.params);
  if (ctx.reuse && ctx.registry) {
    const ps = await ctx.registry.findProbeSet('bottomk', ph, key);
    if (ps) return { prompts: ps.prompts, reused: true };
  }
  const lm = await load();
  const steps = ctx.params.totalLen - ctx.params.prefixLen;
  const prompts = await generatePrompts(lm, ctx.params, (done) =>
    ctx.progress.emit({ event: 'phase', model: e.id, phase: 'prompts', done, total: steps }),
  );
  if (ctx.registry) {
    const { numPrompts, sampleK, prefixLen, totalLen, seed } = ctx.params;
    await ctx.registry.putProbeSet({ method: 'bottomk', paramsHash: ph, params: { numPrompts, sampleK, prefixLen, totalLen, seed }, sourceKey: key, prompts });
  }
  return { prompts, reused: false };
}

/** Opens a model lazily, at most once. */
export function lazyModel(e: ModelEntry, ctx: RunContext): { get: () => Promise<CausalLM>; release: () => Promise<void>; loaded: () => boolean } {
  let lm: CausalLM | null = null;
  return {
    get: async () => {
      if (!lm) {
        ctx.progress.emit({ event: 'phase', model: e.id, phase: 'loading', done: 0, total: 0 });
        if (!e.path) throw new ModelError('not_found', e.id, 'model could not be found locally or in the registry', 'pass a local path, a models CSV with a path column, or register it');
        lm = await CausalLM.open(e.path, { ...ctx.open, id: e.id });
      }
      return lm;
    },
    release: async () => {
      if (lm) await lm.release();
      lm = null;
    },
    loaded: () => lm !== null,
  };
}

export function failureOf(e: unknown): { code: string; message: string } {
  if (isModelError(e)) return { code: e.modelCode, message: e.hint ? `${e.message} (${e.hint})` : e.message };
  return { code: 'inference_failed', message: messageOf(e) };
}

export async function runBaseVsDerived(
  ctx: RunContext,
  base: ModelEntry,
  derived: ModelEntry[],
  out: string,
  opts: { promptsIn?: string; promptsOut?: string; retryFailed?: boolean },
): Promise<LineageSummary> {
  const t0 = Date.now();
  const p = ctx.params;
  const csv = new ResultCsv(out, LINEAGE_COLUMNS, 'derived_model_name');
  const metaCols = [...new Set(derived.flatMap((d) => Object.keys(d.meta)))].filter((c) => !(LINEAGE_COLUMNS as readonly string[]).includes(c));
  csv.extendHeader(metaCols);

  // Parameters of an existing result file must match (a sidecar records them).
  const sidecar = `${out}.params.json`;
  const paramsRecord = { base: base.id, k: p.k, metric: p.metric, prompts: promptParamsHash(p), promptsIn: opts.promptsIn ? stableHash(readPromptFile(opts.promptsIn).prompts) : null };
  if (csv.done.size > 0 && fs.existsSync(sidecar)) {
    const prev = JSON.parse(fs.readFileSync(sidecar, 'utf8')) as typeof paramsRecord;
    if (stableHash(prev) !== stableHash(paramsRecord)) {
      throw new ModelprintError('E_CONFIG', `${out} holds results computed with other parameters (${JSON.stringify(prev)})`, {
        subject: out,
        hint: 'use another --out for these parameters, or move the old file away',
      });
    }
  }
  writeFileAtomic(sidecar, `${JSON.stringify(paramsRecord, null, 2)}\n`);

  const isDone = (d: ModelEntry) => csv.isDone(d.id, 'avg_overlap_ratio', opts.retryFailed);
  const todo = derived.filter((d) => !isDone(d));
  const skipped = derived.length - todo.length;
  ctx.progress.emit({ event: 'start', run: `lineage vs ${base.id}`, models: derived.length, total_prompts: p.numPrompts * derived.length });
  for (const d of derived) if (isDone(d)) ctx.progress.emit({ event: 'model_done', model: d.id, score: Number(csv.done.get(d.id)!.avg_overlap_ratio), reused: true, seconds: 0 });

  const summary: LineageSummary = { base: base.id, out, rows: derived.length, ok: 0, failed: 0, skipped, reused: 0, seconds: 0, failures: [], prompts: 0 };
  if (todo.length === 0) {
    summary.seconds = (Date.now() - t0) / 1000;
    ctx.progress.emit({ event: 'done', ok: 0, failed: 0, skipped, seconds: summary.seconds });
    return summary;
  }

  // The base: prompts and its sets, loaded at most once.
  const baseModel = lazyModel(base, ctx);
  let prompts: string[];
  let baseSketch: Sketch;
  try {
    if (opts.promptsIn) prompts = readPromptFile(opts.promptsIn).prompts;
    else prompts = (await promptsFor(ctx, base, baseModel.get)).prompts;
    baseSketch = (await sketchFor(ctx, base, prompts, baseModel.get)).sketch;
  } catch (e) {
    if (e instanceof ModelError) {
      throw new ModelprintError(e.code, `base model ${e.message}`, { subject: base.id, hint: e.hint, cause: e });
    }
    throw e;
  } finally {
    await baseModel.release();
  }
  ctx.progress.emit({ event: 'phase', model: base.id, phase: 'done', done: prompts.length, total: prompts.length });
  summary.prompts = prompts.length;
  if (opts.promptsOut) {
    const { numPrompts, sampleK, prefixLen, totalLen, seed } = p;
    const file: PromptFile = { version: 1, source_model: base.id, params: { numPrompts, sampleK, prefixLen, totalLen, seed }, prompts };
    writeFileAtomic(opts.promptsOut, `${JSON.stringify(file, null, 2)}\n`);
  }

  for (const d of todo) {
    ctx.stop.check(ctx.resumeHint);
    const t = Date.now();
    const lm = lazyModel(d, ctx);
    const row: Record<string, unknown> = { base_model_name: base.id, derived_model_name: d.id, bottom_k_vocab_size: p.k, ...d.meta };
    try {
      const { sketch, reused } = await sketchFor(ctx, d, prompts, lm.get);
      const s = scoreSketches(baseSketch, sketch, p.metric);
      Object.assign(row, { num_pairs: s.perPrompt.length, avg_overlap_ratio: formatScore(s.score), pair_scores_json: scoresJson(s.perPrompt), error_code: '', error_message: '' });
      if (s.score < 0) Object.assign(row, { error_code: 'inference_failed', error_message: 'no prompt could be scored' });
      summary.ok += s.score >= 0 ? 1 : 0;
      if (reused) summary.reused++;
      csv.append(row);
      ctx.progress.emit({ event: 'model_done', model: d.id, score: s.score, reused, seconds: (Date.now() - t) / 1000 });
    } catch (e) {
      if (e instanceof ModelprintError && (e.code === 'E_INTERRUPTED' || e.code === 'E_DEVICE')) throw e;
      const f = failureOf(e);
      Object.assign(row, { num_pairs: 0, avg_overlap_ratio: '-1.0', pair_scores_json: '[]', error_code: f.code, error_message: f.message });
      csv.append(row);
      summary.failed++;
      summary.failures.push({ model: d.id, ...f });
      await ctx.registry?.recordError(null, d.id, f.code, f.message);
      ctx.progress.emit({ event: 'model_failed', model: d.id, code: f.code, message: f.message });
    } finally {
      await lm.release();
    }
  }
  summary.seconds = (Date.now() - t0) / 1000;
  ctx.progress.emit({ event: 'done', ok: summary.ok, failed: summary.failed, skipped, seconds: summary.seconds });
  return summary;
}
