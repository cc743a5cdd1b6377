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
import type { OpenOptions } from '../inference/session.js';
import { ModelError } from '../inference/errors.js';
import { collectSketches, computeSketch, modelSketches } from '../methods/bottomk.js';
import type { ModelEntry } from '../methods/models-input.js';
import { BottomKParamsSchema } from '../methods/params.js';
import { forEachModel, type RunContext } from '../methods/runner.js';
import { native } from '../native/index.js';
import { engineError } from '../similarity/index.js';
import type { Progress } from '../ui/progress.js';
import type { StopSignal } from '../util/signals.js';
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

/** One model's sketch on the bank (a one-model collection), or null with why in its entry. */
export interface IndexedSketch {
  entry: SketchModel;
  set: SketchSet | null;
}

/** One collection of model sketches (same order) over the bank's prompts. */
export function buildSet(items: IndexedSketch[], bank: ProbeBank): SketchSet {
  try {
    return collectSketches(
      items.map((it) => it.entry.model),
      items.map((it) => it.set),
      bank.prompts.map((p) => p.text),
    );
  } catch (e) {
    throw engineError(e);
  }
}

/** The model sketches of a collection, for the entries of its sidecar. */
export function readSketches(set: SketchSet, entries: SketchModel[]): IndexedSketch[] {
  const ids = set.modelIds;
  const sets = modelSketches(set);
  return entries.map((entry) => {
    const m = ids.indexOf(entry.model);
    if (m < 0) throw new ModelprintError('E_INPUT', `model ${entry.model} is in the sidecar but not in the sketch file`, { subject: entry.model, hint: 'the .mpsk and its .json belong together; write them again' });
    return { entry, set: sets[m] };
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
  /** Ctrl-C / SIGTERM: checked between models. */
  stop: StopSignal;
  /** The command that resumes the run (in the interruption message). */
  resumeHint: string;
  retryFailed?: boolean;
  /** Write the collection as a compact index (.mpsk version 3: delta-coded ids, hashed sample). */
  compact?: boolean;
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

function entryOf(e: ModelEntry, index: number): SketchModel {
  return { model: e.id, index, path: e.path, family: familyOf(e), ok: false, error_code: null, error_message: null, vocab_size: null, failed_prompts: 0, meta: e.meta };
}

/** Runs `modelprint sketch` for one shard (or the whole list). */
export async function runSketch(o: SketchRunOptions): Promise<SketchRunSummary> {
  const t0 = Date.now();
  const target = o.shard ? shardPath(o.out, o.shard) : o.out;
  const sidecar = manifestPath(target);
  const partsDir = `${target}.parts`;
  const mine = shardIndices(o.models.length, o.shard);
  const done = new Map<string, IndexedSketch>();

  // Resume 1: a finished collection from the same bank and k.
  if (fs.existsSync(target) && fs.existsSync(sidecar)) {
    const man = readManifest(target);
    if (man.bank.hash !== o.bank.hash || man.k !== o.k) {
      throw new ModelprintError('E_CONFIG', `${target} was made from another probe bank or k (bank ${man.bank.hash.slice(0, 12)}…, k ${man.k}; now ${o.bank.hash.slice(0, 12)}…, k ${o.k})`, {
        subject: target,
        hint: 'use another --output for this bank, or move the old file away',
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
          if (r.bank_hash === o.bank.hash && r.k === o.k) done.set(r.entry.model, { entry: r.entry, set: null });
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
    return Boolean(d && (d.set || !o.retryFailed));
  };
  const todo = mine.filter((m) => !isDone(o.models[m].id));
  const resumed = mine.length - todo.length;
  o.progress.emit({ event: 'start', run: `sketch ${mine.length} models on ${o.bank.prompts.length} probes${o.shard ? ` (shard ${o.shard.index}/${o.shard.count})` : ''}`, models: mine.length, total_prompts: mine.length * o.bank.prompts.length });
  for (const m of mine) {
    const d = done.get(o.models[m].id);
    if (d && isDone(o.models[m].id)) {
      if (d.set) o.progress.emit({ event: 'model_done', model: d.entry.model, score: null, reused: true, seconds: 0 });
    }
  }
  let computed = 0;
  const prompts = o.bank.prompts.map((p) => p.text);
  const part = (e: ModelEntry) => path.join(partsDir, partName(e.id));
  // The runner's loop: stop checks, one load per model, model_done / model_failed events.
  const ctx: RunContext = { params: BottomKParamsSchema.parse({ k: o.k }), open: o.open, registry: null, reuse: false, progress: o.progress, stop: o.stop, resumeHint: o.resumeHint };
  await forEachModel(
    ctx,
    todo.map((m) => o.models[m]),
    async (e, model, i) => {
      if (e.path && !fs.existsSync(e.path)) throw new ModelError('not_found', e.id, `no such file or folder ${e.path}`, 'check the path');
      const lm = await model.get();
      o.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done: 0, total: prompts.length });
      const sk = await computeSketch(lm, prompts, o.k, e.id, (done, total) => o.progress.emit({ event: 'phase', model: e.id, phase: 'sketch', done, total }));
      const entry: SketchModel = { ...entryOf(e, todo[i]), ok: true, vocab_size: lm.logitsWidth ?? lm.tok.vocabSize, failed_prompts: sk.errors.filter((x) => x !== null).length };
      fs.mkdirSync(partsDir, { recursive: true });
      sk.set.save(`${part(e)}.mpsk`);
      writeManifest(`${part(e)}.mpsk`, o, [entry]);
      fs.rmSync(`${part(e)}.failed.json`, { force: true });
      done.set(e.id, { entry, set: sk.set });
      computed++;
      return { value: null, reused: false };
    },
    (e, f, i) => {
      const entry: SketchModel = { ...entryOf(e, todo[i]), error_code: f.code, error_message: f.message };
      fs.mkdirSync(partsDir, { recursive: true });
      writeFileAtomic(`${part(e)}.failed.json`, `${JSON.stringify({ entry, bank_hash: o.bank.hash, k: o.k })}\n`);
      done.set(e.id, { entry, set: null });
      computed++;
    },
  );

  // Everything of this shard is done: one collection, written atomically, then its sidecar.
  const items = mine.map((m) => {
    const d = done.get(o.models[m].id)!;
    return { entry: { ...d.entry, index: m, path: o.models[m].path, meta: o.models[m].meta, family: familyOf(o.models[m]) ?? d.entry.family }, set: d.set };
  });
  const set = buildSet(items, o.bank);
  // The collection first, then its sidecar: a kill in between leaves a sidecar that lists
  // a subset of the collection, which a re-run still reads.
  if (o.compact) native.saveCompact(set, target);
  else set.save(target);
  writeManifest(target, o, items.map((it) => it.entry));
  fs.rmSync(partsDir, { recursive: true, force: true });
  const failures = items.filter((it) => !it.set).map((it) => ({ model: it.entry.model, code: it.entry.error_code ?? 'inference_failed', message: it.entry.error_message ?? '' }));
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
