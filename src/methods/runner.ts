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
import type { SketchSet } from '../../native/index.js';
import { native } from '../native/index.js';
import type { Registry } from '../registry/types.js';
import { contentHash } from '../util/hash.js';
import type { Progress } from '../ui/progress.js';
import type { StopSignal } from '../util/signals.js';
import { computeSketch, generatePrompts, type ModelSketch } from './bottomk.js';
import type { ModelEntry } from './models-input.js';
import { promptParamsHash, sketchConfigHash, type BottomKParams } from './params.js';

export type RegistryWrite = 'write' | 'read-only' | 'off';
export const REGISTRY_WRITE_MODES: readonly RegistryWrite[] = ['write', 'read-only', 'off'];

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

/** Codes that end the whole run instead of failing one model. */
export function isFatal(e: unknown): boolean {
  return e instanceof ModelprintError && (e.code === 'E_INTERRUPTED' || e.code === 'E_DEVICE');
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

/** A model's identity for reuse: its content hash (the registry's when known). */
export async function modelKey(e: ModelEntry): Promise<string> {
  if (e.contentHash) return e.contentHash;
  if (!e.path) throw new ModelError('not_found', e.id, 'model could not be found locally or in the registry', 'pass a local path, a models CSV with a path column, or register it with `modelprint models add`');
  if (!fs.existsSync(e.path)) throw new ModelError('not_found', e.id, `no such file or folder ${e.path}`, 'check the path');
  e.contentHash = await contentHash(e.path);
  return e.contentHash;
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

/**
 * A stored sketch, checked: it must decode as a one-model collection over these prompts
 * whose model id is this model's key (a payload copied onto another model's key is refused).
 */
function storedSketch(payload: Buffer, key: string, prompts: number, warn?: (m: string) => void): SketchSet | null {
  try {
    const s = native.SketchSet.fromBytes(payload);
    if (s.count === 1 && s.prompts === prompts && s.modelIds[0] === key) return s;
    warn?.(`ignoring a stored sketch of ${key.slice(0, 12)}…: it does not match the model or the prompts (recomputing)`);
  } catch (e) {
    warn?.(`ignoring an unreadable stored sketch of ${key.slice(0, 12)}…: ${messageOf(e)} (recomputing)`);
  }
  return null;
}

/** A model's sketch on `prompts`: from the registry, or computed with a model loaded by `load`. */
export async function sketchFor(ctx: RunContext, e: ModelEntry, prompts: string[], load: () => Promise<CausalLM>): Promise<{ sketch: ModelSketch; reused: boolean }> {
  const key = await modelKey(e);
  const cfg = sketchConfigHash(ctx.params.k, prompts);
  const reg = runRegistry(ctx);
  const fp = await reg.reads?.findFingerprint(key, 'bottomk', cfg);
  if (fp) {
    const set = storedSketch(fp.payload, key, prompts.length, ctx.warn);
    if (set) return { sketch: { set, errors: prompts.map(() => null) }, reused: true };
  }
  const lm = await load();
  ctx.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done: 0, total: prompts.length });
  const sketch = await computeSketch(lm, prompts, ctx.params.k, key, (done, total) => ctx.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done, total }));
  await reg.write('a sketch', (r) => r.putFingerprint({ modelKey: key, modelId: e.registryId ?? null, method: 'bottomk', configHash: cfg, payload: sketch.set.toBytes() }));
  return { sketch, reused: false };
}

/** Prompts of a source model: from the registry, or generated with a model loaded by `load`. */
export async function promptsFor(ctx: RunContext, e: ModelEntry, load: () => Promise<CausalLM>): Promise<{ prompts: string[]; reused: boolean }> {
  const key = await modelKey(e);
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
