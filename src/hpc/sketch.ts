/**
 * `modelprint sketch`: every model's bottom-k sets on a probe bank, as one .mpsk sketch
 * collection (the input of `similarity` and `identify`), optionally one shard of the model
 * list per HPC array task.
 *
 * Resumable: each finished model is saved at once as its own part file under
 * `<out>.parts/` (a one-model .mpsk, or a .failed.json for a model that could not be
 * sketched). A re-run skips models with a part (or already in a finished `<out>` made from
 * the same bank and k); when all are done the collection is written atomically, with a
 * sidecar `<out>.json` (bank, k, shard, per-model status and metadata), and the parts are
 * removed. Peak memory is one shard's sets (n · P · k · 4 bytes).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { SketchSet } from '../../native/index.js';
import { ModelprintError, messageOf } from '../errors.js';
import { CausalLM, type OpenOptions } from '../inference/session.js';
import { isModelError } from '../inference/errors.js';
import { computeSketch } from '../methods/bottomk.js';
import type { ModelEntry } from '../methods/models-input.js';
import { native } from '../native/index.js';
import { engineError } from '../similarity/index.js';
import type { Progress } from '../ui/progress.js';
import { writeFileAtomic } from '../util/atomic.js';
import { stableHash } from '../util/hash.js';
import { ProbeBankSchema, type ProbeBank } from './probes.js';
import { shardIndices, shardPath, type Shard } from './shard.js';

export const SketchModelSchema = z.object({
  model: z.string(),
  /** Position in the full (unsharded) model list. */
  index: z.number().int().nonnegative(),
  path: z.string().nullable(),
  family: z.string().nullable(),
  ok: z.boolean(),
  error_code: z.string().nullable(),
  error_message: z.string().nullable(),
  vocab_size: z.number().int().nonnegative().nullable(),
  failed_prompts: z.number().int().nonnegative(),
  meta: z.record(z.string(), z.string()),
});
export type SketchModel = z.infer<typeof SketchModelSchema>;

/** The sidecar `<out>.json` of a sketch collection. */
export const SketchManifestSchema = z.object({
  format: z.literal('modelprint-sketches'),
  version: z.literal(1),
  bank: ProbeBankSchema,
  k: z.number().int().positive(),
  shard: z.object({ index: z.number().int().nonnegative(), count: z.number().int().positive() }).nullable(),
  /** Size and hash of the full model list the shards partition. */
  models_total: z.number().int().nonnegative(),
  models_hash: z.string(),
  models: z.array(SketchModelSchema),
  created: z.string(),
});
export type SketchManifest = z.infer<typeof SketchManifestSchema>;

export function manifestPath(out: string): string {
  return `${out}.json`;
}

export function readManifest(file: string): SketchManifest {
  const side = manifestPath(file);
  if (!fs.existsSync(side)) {
    throw new ModelprintError('E_NOT_FOUND', `${file} has no sidecar ${side}`, { subject: side, hint: 'sketch collections made by `modelprint sketch` carry one; keep it next to the .mpsk' });
  }
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(side, 'utf8'));
  } catch (e) {
    throw new ModelprintError('E_INPUT', `${side}: not JSON: ${messageOf(e)}`, { subject: side, hint: 'write it again with `modelprint sketch`' });
  }
  const r = SketchManifestSchema.safeParse(j);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ModelprintError('E_INPUT', `${side}: ${i.path.join('.') || '(root)'}: ${i.message}`, { subject: side, hint: 'write it again with `modelprint sketch`' });
  }
  return r.data;
}

export function modelsHash(models: ModelEntry[]): string {
  return stableHash(models.map((m) => m.id));
}

/** One model's sets on the bank, or why it has none. */
export interface ModelSketch {
  entry: SketchModel;
  /** Per prompt ascending ids (empty for a failed prompt); null for a failed model. */
  sets: Uint32Array[] | null;
}

/** Concatenates model sketches into a collection (same order) and its arrays. */
export function buildSet(items: ModelSketch[], bank: ProbeBank, k: number): SketchSet {
  const P = bank.prompts.length;
  const lens = new Uint32Array(items.length * P);
  let total = 0;
  let vocab = 1;
  items.forEach((it, m) => {
    if (!it.sets) return;
    for (let p = 0; p < P; p++) {
      const s = it.sets[p];
      lens[m * P + p] = s.length;
      total += s.length;
      if (s.length) vocab = Math.max(vocab, s[s.length - 1] + 1);
    }
    vocab = Math.max(vocab, it.entry.vocab_size ?? 0);
  });
  const ids = new Uint32Array(total);
  let o = 0;
  for (const it of items) {
    if (!it.sets) continue;
    for (const s of it.sets) {
      ids.set(s, o);
      o += s.length;
    }
  }
  try {
    return native.SketchSet.fromArrays(
      items.map((it) => it.entry.model),
      ids,
      lens,
      { prompts: P, vocabSize: vocab, k, promptHash: bank.hash, failed: items.map((it) => !it.sets) },
    );
  } catch (e) {
    throw engineError(e);
  }
}

/** The model sketches of a collection (with its manifest entries). */
export function readSketches(set: SketchSet, entries: SketchModel[]): ModelSketch[] {
  const ids = set.modelIds;
  const failed = set.failed;
  return entries.map((entry) => {
    const m = ids.indexOf(entry.model);
    if (m < 0) throw new ModelprintError('E_INPUT', `model ${entry.model} is in the sidecar but not in the sketch file`, { subject: entry.model, hint: 'the .mpsk and its .json belong together; write them again' });
    if (failed[m]) return { entry, sets: null };
    const sets: Uint32Array[] = [];
    for (let p = 0; p < set.prompts; p++) sets.push(Uint32Array.from(set.set(m, p)));
    return { entry, sets };
  });
}

export interface SketchRunOptions {
  bank: ProbeBank;
  bankFile: string;
  /** The full model list (the shard is taken from it). */
  models: ModelEntry[];
  out: string;
  shard: Shard | null;
  k: number;
  open: OpenOptions;
  progress: Progress;
  /** Throws when the run should stop (Ctrl-C / SIGTERM); called between models. */
  check: () => void;
  retryFailed?: boolean;
}

export interface SketchRunSummary {
  out: string;
  sidecar: string;
  shard: Shard | null;
  models: number;
  ok: number;
  failed: number;
  computed: number;
  resumed: number;
  prompts: number;
  k: number;
  bank_hash: string;
  seconds: number;
  failures: Array<{ model: string; code: string; message: string }>;
}

function partName(id: string): string {
  return crypto.createHash('sha256').update(id).digest('hex').slice(0, 24);
}

const FailedPartSchema = z.object({ entry: SketchModelSchema, bank_hash: z.string(), k: z.number() });

/** Sketches one model on the bank; a failure is a result, not an exception. */
async function sketchOne(e: ModelEntry, index: number, bank: ProbeBank, k: number, open: OpenOptions, progress: Progress): Promise<ModelSketch> {
  const entry: SketchModel = {
    model: e.id,
    index,
    path: e.path,
    family: e.meta.family?.trim() ? e.meta.family.trim() : null,
    ok: false,
    error_code: null,
    error_message: null,
    vocab_size: null,
    failed_prompts: 0,
    meta: e.meta,
  };
  let lm: CausalLM | null = null;
  const prompts = bank.prompts.map((p) => p.text);
  try {
    progress.emit({ event: 'phase', model: e.id, phase: 'loading', done: 0, total: 0 });
    if (!e.path || !fs.existsSync(e.path)) {
      return { entry: { ...entry, error_code: 'not_found', error_message: e.path ? `no such file or folder ${e.path}` : 'model could not be found locally or in the registry' }, sets: null };
    }
    lm = await CausalLM.open(e.path, { ...open, id: e.id });
    progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done: 0, total: prompts.length });
    const sk = await computeSketch(lm, prompts, k, (done, total) => progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done, total }));
    const failedPrompts = sk.sets.filter((s) => s === null).length;
    if (failedPrompts === prompts.length) {
      return { entry: { ...entry, error_code: 'non_finite_logits', error_message: `every prompt failed: ${sk.errors.find((x) => x) ?? 'unknown'}` }, sets: null };
    }
    return {
      entry: { ...entry, ok: true, vocab_size: lm.logitsWidth ?? lm.tok.vocabSize, failed_prompts: failedPrompts },
      sets: sk.sets.map((s) => s ?? new Uint32Array(0)),
    };
  } catch (err) {
    if (err instanceof ModelprintError && (err.code === 'E_INTERRUPTED' || err.code === 'E_DEVICE')) throw err;
    const code = isModelError(err) ? err.modelCode : 'inference_failed';
    const message = isModelError(err) && err.hint ? `${err.message} (${err.hint})` : messageOf(err);
    return { entry: { ...entry, error_code: code, error_message: message }, sets: null };
  } finally {
    await lm?.release();
  }
}

/** Runs `modelprint sketch` for one shard (or the whole list). */
export async function runSketch(o: SketchRunOptions): Promise<SketchRunSummary> {
  const t0 = Date.now();
  const target = o.shard ? shardPath(o.out, o.shard) : o.out;
  const sidecar = manifestPath(target);
  const partsDir = `${target}.parts`;
  const mine = shardIndices(o.models.length, o.shard);
  const done = new Map<string, ModelSketch>();

  // Resume 1: a finished collection from the same bank and k.
  if (fs.existsSync(target) && fs.existsSync(sidecar)) {
    const man = readManifest(target);
    if (man.bank.hash !== o.bank.hash || man.k !== o.k) {
      throw new ModelprintError('E_CONFIG', `${target} was made from another probe bank or k (bank ${man.bank.hash.slice(0, 12)}…, k ${man.k}; now ${o.bank.hash.slice(0, 12)}…, k ${o.k})`, {
        subject: target,
        hint: 'use another --out for this bank, or move the old file away',
      });
    }
    const set = native.SketchSet.open(target);
    for (const ms of readSketches(set, man.models)) done.set(ms.entry.model, ms);
  }
  // Resume 2: parts of an interrupted run.
  if (fs.existsSync(partsDir)) {
    for (const f of fs.readdirSync(partsDir)) {
      const file = path.join(partsDir, f);
      try {
        if (f.endsWith('.failed.json')) {
          const r = FailedPartSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
          if (r.bank_hash === o.bank.hash && r.k === o.k) done.set(r.entry.model, { entry: r.entry, sets: null });
        } else if (f.endsWith('.mpsk')) {
          const set = native.SketchSet.open(file);
          const side = readManifest(file);
          if (set.promptHash === o.bank.hash && side.k === o.k) for (const ms of readSketches(set, side.models)) done.set(ms.entry.model, ms);
        }
      } catch {
        // A part cut short by a kill (the rename is atomic, so this is rare): computed again.
      }
    }
  }

  const isDone = (id: string) => {
    const d = done.get(id);
    return Boolean(d && (d.sets || !o.retryFailed));
  };
  const todo = mine.filter((m) => !isDone(o.models[m].id));
  const resumed = mine.length - todo.length;
  o.progress.emit({ event: 'start', run: `sketch ${mine.length} models on ${o.bank.prompts.length} probes${o.shard ? ` (shard ${o.shard.index}/${o.shard.count})` : ''}`, models: mine.length, total_prompts: mine.length * o.bank.prompts.length });
  for (const m of mine) {
    const d = done.get(o.models[m].id);
    if (d && isDone(o.models[m].id)) {
      if (d.sets) o.progress.emit({ event: 'model_done', model: d.entry.model, score: null, reused: true, seconds: 0 });
    }
  }
  let computed = 0;
  for (const m of todo) {
    o.check();
    const e = o.models[m];
    const t = Date.now();
    const ms = await sketchOne(e, m, o.bank, o.k, o.open, o.progress);
    fs.mkdirSync(partsDir, { recursive: true });
    const base = path.join(partsDir, partName(e.id));
    if (ms.sets) {
      const set = buildSet([ms], o.bank, o.k);
      set.save(`${base}.mpsk`);
      writeManifest(`${base}.mpsk`, o, [ms.entry]);
      fs.rmSync(`${base}.failed.json`, { force: true });
      o.progress.emit({ event: 'model_done', model: e.id, score: null, reused: false, seconds: (Date.now() - t) / 1000 });
    } else {
      writeFileAtomic(`${base}.failed.json`, `${JSON.stringify({ entry: ms.entry, bank_hash: o.bank.hash, k: o.k })}\n`);
      o.progress.emit({ event: 'model_failed', model: e.id, code: ms.entry.error_code ?? 'inference_failed', message: ms.entry.error_message ?? '' });
    }
    done.set(e.id, ms);
    computed++;
  }

  // Everything of this shard is done: one collection, written atomically, then its sidecar.
  const items = mine.map((m) => {
    const d = done.get(o.models[m].id)!;
    return { entry: { ...d.entry, index: m, path: o.models[m].path, meta: o.models[m].meta, family: familyOf(o.models[m]) ?? d.entry.family }, sets: d.sets };
  });
  const set = buildSet(items, o.bank, o.k);
  // The collection first, then its sidecar: a kill in between leaves a sidecar that lists
  // a subset of the collection, which a re-run still reads.
  set.save(target);
  writeManifest(target, o, items.map((it) => it.entry));
  fs.rmSync(partsDir, { recursive: true, force: true });
  const failures = items.filter((it) => !it.sets).map((it) => ({ model: it.entry.model, code: it.entry.error_code ?? 'inference_failed', message: it.entry.error_message ?? '' }));
  const seconds = (Date.now() - t0) / 1000;
  o.progress.emit({ event: 'done', ok: items.length - failures.length, failed: failures.length, skipped: resumed, seconds });
  return {
    out: target,
    sidecar,
    shard: o.shard,
    models: items.length,
    ok: items.length - failures.length,
    failed: failures.length,
    computed,
    resumed,
    prompts: o.bank.prompts.length,
    k: o.k,
    bank_hash: o.bank.hash,
    seconds,
    failures,
  };
}

function familyOf(e: ModelEntry): string | null {
  const f = e.meta.family?.trim();
  return f ? f : null;
}

function writeManifest(target: string, o: SketchRunOptions, models: SketchModel[]): void {
  const man: SketchManifest = {
    format: 'modelprint-sketches',
    version: 1,
    bank: o.bank,
    k: o.k,
    shard: o.shard,
    models_total: o.models.length,
    models_hash: modelsHash(o.models),
    models,
    created: new Date().toISOString(),
  };
  writeFileAtomic(manifestPath(target), `${JSON.stringify(man)}\n`);
}
