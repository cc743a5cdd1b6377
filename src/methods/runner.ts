/**
 * What every batch method shares (lineage bottom-k and text, matrix, experiment): the run
 * context, model identity, lazy model loading, failure rows, the registry and its write
 * policy, and reuse of stored probe sets and sketches.
 *
 * Registry write policy (`--registry-write`):
 * - `write` (default): read what is stored, store what is computed. When the registry
 *   refuses a write (a `modelprint_reader` on PostgreSQL), the run warns once and goes on
 *   read-only: a model computed successfully is never reported as failed because of it.
 * - `read-only`: use what is stored, write nothing.
 * - `off`: neither read nor write.
 */
import fs from 'node:fs';
import { ModelprintError, messageOf } from '../errors.js';
import { CausalLM, type OpenOptions } from '../inference/session.js';
import { isModelError, ModelError } from '../inference/errors.js';
import type { OnnxVariantRequest } from '../inference/format.js';
import { fingerprintKey, onnxFileOf } from '../inference/resolve.js';
import type { SketchSet } from '../../native/index.js';
import { decodeSketchPayload } from '../registry/payloads.js';
import type { Registry } from '../registry/types.js';
import { contentHash } from '../util/hash.js';
import type { Progress } from '../ui/progress.js';
import type { StopSignal } from '../util/signals.js';
import { computeSketch, generatePrompts, promptListHash, type ModelSketch } from './bottomk.js';
import type { ModelEntry } from './models-input.js';
import { promptParamsHash, sketchConfigHash, type BottomKParams } from './params.js';

export const REGISTRY_WRITE_MODES = ['write', 'read-only', 'off'] as const;
export type RegistryWrite = (typeof REGISTRY_WRITE_MODES)[number];

export interface RunContext {
  params: BottomKParams;
  open: OpenOptions;
  registry: Registry | null;
  /** Use stored probe sets and sketches (the `--reuse` flag). */
  reuse: boolean;
  /** What the run may write to the registry. */
  registryWrite?: RegistryWrite;
  progress: Progress;
  stop: StopSignal;
  resumeHint: string;
  /** Warnings for the user (stderr); set by the command. */
  warn?: (msg: string) => void;
}

/** Codes that end the whole run instead of failing one model (interrupted, no device, the registry broke). */
export function isFatal(e: unknown): boolean {
  return e instanceof ModelprintError && (e.code === 'E_INTERRUPTED' || e.code === 'E_DEVICE' || e.code === 'E_REGISTRY');
}

export function failureOf(e: unknown): { code: string; message: string } {
  if (isModelError(e)) return { code: e.modelCode, message: e.hint ? `${e.message} (${e.hint})` : e.message };
  return { code: 'inference_failed', message: messageOf(e) };
}

/**
 * The registry as this run may use it: reads unless `off`; writes with `write`, where a
 * refused write (E_PERMISSION) turns the rest of the run read-only with one warning.
 */
export class RunRegistry {
  private mode: RegistryWrite;
  constructor(
    private readonly ctx: RunContext,
  ) {
    this.mode = ctx.registry ? (ctx.registryWrite ?? 'write') : 'off';
  }
  get reads(): Registry | null {
    return this.mode === 'off' || !this.ctx.reuse ? null : this.ctx.registry;
  }
  async write(what: string, f: (r: Registry) => Promise<unknown>): Promise<void> {
    if (this.mode !== 'write' || !this.ctx.registry) return;
    try {
      await f(this.ctx.registry);
    } catch (e) {
      if (e instanceof ModelprintError && e.code === 'E_PERMISSION') {
        this.mode = 'read-only';
        this.ctx.warn?.(`the registry refused to store ${what} (${e.message}); going on without writing to it (use --registry-write read-only to say so up front)`);
        return;
      }
      throw e;
    }
  }
}

const runRegistries = new WeakMap<RunContext, RunRegistry>();
export function runRegistry(ctx: RunContext): RunRegistry {
  let r = runRegistries.get(ctx);
  if (!r) runRegistries.set(ctx, (r = new RunRegistry(ctx)));
  return r;
}

/** The ONNX variant to open for an entry: --onnx-variant, else the one recorded with it, else auto. */
export function variantFor(e: ModelEntry, open: OpenOptions): OnnxVariantRequest {
  return open.onnxVariant && open.onnxVariant !== 'auto' ? open.onnxVariant : (e.onnxVariant ?? 'auto');
}

/**
 * A model's identity for reuse: its content hash (the registry's when known), made per ONNX
 * variant for folders holding several (fingerprintKey). Never the path as typed.
 */
export async function modelKey(e: ModelEntry, variant: OnnxVariantRequest = 'auto'): Promise<string> {
  if (e.contentHash) return e.path ? fingerprintKey(e.path, e.contentHash, variant) : e.contentHash;
  if (!e.path) throw e.error ?? new ModelError('not_found', e.id, 'model could not be found locally or in the registry', 'pass a local path, a models CSV with a path column, or register it with `modelprint models add`');
  if (!fs.existsSync(e.path)) throw new ModelError('not_found', e.id, `no such file or folder ${e.path}`, 'check the path');
  e.contentHash = await contentHash(e.path);
  return fingerprintKey(e.path, e.contentHash, variant);
}

/** The key a run stores and looks up a model's probe sets and fingerprints by. */
export function runKey(ctx: RunContext, e: ModelEntry): Promise<string> {
  return modelKey(e, variantFor(e, ctx.open));
}

/** Opens a model lazily, at most once. */
export function lazyModel(e: ModelEntry, ctx: RunContext): { get: () => Promise<CausalLM>; release: () => Promise<void>; loaded: () => boolean } {
  let lm: CausalLM | null = null;
  return {
    get: async () => {
      if (!lm) {
        const f = e.path ? onnxFileOf(e.path, variantFor(e, ctx.open)) : null;
        ctx.progress.emit({ event: 'phase', model: e.id, phase: 'loading', done: 0, total: 0, ...(f ? { onnx_file: f.onnxFile, onnx_variant: f.onnxVariant } : {}) });
        if (!e.path) throw e.error ?? new ModelError('not_found', e.id, 'model could not be found locally or in the registry', 'pass a local path, a models CSV with a path column, or register it');
        lm = await CausalLM.open(e.path, { ...ctx.open, id: e.id, onnxVariant: variantFor(e, ctx.open) });
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

/**
 * A fingerprint method as the runner sees it: how its payload is keyed, stored and checked.
 * bottomk (sketches), input_output, weight and architecture (vectors) implement it.
 */
export interface Fingerprinter<F> {
  method: string;
  /** Key of the configuration (parameters, prompts, probe tokens …). */
  configHash: string;
  encode(f: F): Buffer;
  /** The stored payload for model `key`, or null when it does not belong to it or cannot be read. */
  decode(payload: Buffer, key: string): F | null;
}

/**
 * A model's fingerprint: from the registry when stored (and valid for this model), else
 * computed by `compute` and stored (if the run may write).
 */
export async function fingerprintFor<F>(ctx: RunContext, e: ModelEntry, fp: Fingerprinter<F>, compute: (key: string) => Promise<F>): Promise<{ value: F; reused: boolean }> {
  const key = await runKey(ctx, e);
  const reg = runRegistry(ctx);
  const stored = await reg.reads?.findFingerprint(key, fp.method, fp.configHash);
  if (stored) {
    const v = fp.decode(stored.payload, key);
    if (v !== null) return { value: v, reused: true };
    ctx.warn?.(`ignoring a stored ${fp.method} fingerprint of ${e.id}: it does not match the model or the parameters (recomputing)`);
  }
  const value = await compute(key);
  await reg.write(`a ${fp.method} fingerprint`, (r) => r.putFingerprint({ modelKey: key, modelId: e.registryId ?? null, method: fp.method, configHash: fp.configHash, payload: fp.encode(value) }));
  return { value, reused: false };
}

/** bottomk: a one-model sketch collection (`.mpsk` bytes) named by the model's key, over these prompts. */
export function sketchFingerprinter(k: number, prompts: string[]): Fingerprinter<SketchSet> {
  return {
    method: 'bottomk',
    configHash: sketchConfigHash(k, prompts),
    encode: (s) => s.toBytes(),
    decode: (payload, key) => {
      const r = decodeSketchPayload(payload, key);
      if ('problem' in r) return null;
      return r.set.prompts === prompts.length && r.set.promptHash === promptListHash(prompts) ? r.set : null;
    },
  };
}

/** A model's sketch on `prompts`: from the registry, or computed with a model loaded by `load`. */
export async function sketchFor(ctx: RunContext, e: ModelEntry, prompts: string[], load: () => Promise<CausalLM>): Promise<{ sketch: ModelSketch; reused: boolean }> {
  let errors: (string | null)[] = prompts.map(() => null);
  const r = await fingerprintFor(ctx, e, sketchFingerprinter(ctx.params.k, prompts), async (key) => {
    const lm = await load();
    ctx.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done: 0, total: prompts.length });
    const sketch = await computeSketch(lm, prompts, ctx.params.k, key, (done, total) => ctx.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done, total }));
    errors = sketch.errors;
    return sketch.set;
  });
  return { sketch: { set: r.value, errors }, reused: r.reused };
}

/**
 * The one per-model loop of every batch: stop checks between models, the model loaded at
 * most once and released after, `model_done` / `model_failed` events, failures recorded in
 * the registry (when the run may write) and handed to `onFailure` for the failure row. A
 * fatal error (interrupted, device) ends the batch. Returns each model's value, null when
 * it failed.
 */
export async function forEachModel<T>(
  ctx: RunContext,
  models: ModelEntry[],
  work: (e: ModelEntry, model: ReturnType<typeof lazyModel>, index: number) => Promise<{ value: T; reused: boolean; score?: number | null }>,
  onFailure?: (e: ModelEntry, f: { code: string; message: string }, index: number) => void | Promise<void>,
  opts: { events?: boolean } = {},
): Promise<(T | null)[]> {
  const events = opts.events ?? true;
  const out: (T | null)[] = [];
  for (const [i, e] of models.entries()) {
    ctx.stop.check(ctx.resumeHint);
    const t = Date.now();
    const lm = lazyModel(e, ctx);
    try {
      const r = await work(e, lm, i);
      out.push(r.value);
      if (events) ctx.progress.emit({ event: 'model_done', model: e.id, score: r.score ?? null, reused: r.reused, seconds: (Date.now() - t) / 1000 });
    } catch (err) {
      if (isFatal(err)) throw err;
      const f = failureOf(err);
      out.push(null);
      await onFailure?.(e, f, i);
      await recordFailure(ctx, e.id, f);
      ctx.progress.emit({ event: 'model_failed', model: e.id, code: f.code, message: f.message });
    } finally {
      await lm.release();
    }
  }
  return out;
}

/** Prompts of a source model: from the registry, or generated with a model loaded by `load`. */
export async function promptsFor(ctx: RunContext, e: ModelEntry, load: () => Promise<CausalLM>): Promise<{ prompts: string[]; reused: boolean }> {
  const key = await runKey(ctx, e);
  const ph = promptParamsHash(ctx.params);
  const reg = runRegistry(ctx);
  const ps = await reg.reads?.findProbeSet('bottomk', ph, key);
  if (ps) return { prompts: ps.prompts, reused: true };
  const lm = await load();
  const steps = ctx.params.totalLen - ctx.params.prefixLen;
  const prompts = await generatePrompts(lm, ctx.params, (done) => ctx.progress.emit({ event: 'phase', model: e.id, phase: 'prompts', done, total: steps }), () => ctx.stop.check(ctx.resumeHint));
  const { numPrompts, sampleK, prefixLen, totalLen, seed } = ctx.params;
  await reg.write('a probe set', (r) => r.putProbeSet({ method: 'bottomk', paramsHash: ph, params: { numPrompts, sampleK, prefixLen, totalLen, seed }, sourceKey: key, prompts }));
  return { prompts, reused: false };
}

/** Records a model's failure in the registry, if the run may write. */
export async function recordFailure(ctx: RunContext, model: string, f: { code: string; message: string }): Promise<void> {
  await runRegistry(ctx).write('an error record', (r) => r.recordError(null, model, f.code, f.message));
}
