/**
 * `modelprint identify`: the nearest known models of an unknown one. One model load, its
 * bottom-k sets on the index's probe bank, and one 1 × n query against the index
 * (memory-mapped .mpsk): a streaming scan on the CPU (similarityScanTopN), or the
 * engine's rectangular top-N with --device cuda. A compact index (.mpsk version 3, written by
 * `sketch --compact` / `merge --compact`) is queried in two stages instead: its hashed sample
 * is scanned for the --candidates best, which are rescored exactly (compactQueryTopN); with
 * --exact every indexed model is rescored.
 */
import fs from 'node:fs';
import { ModelprintError } from '../errors.js';
import { CausalLM, type OpenOptions } from '../inference/session.js';
import { computeSketch } from '../methods/bottomk.js';
import { native } from '../native/index.js';
import type { CompactSketchIndex, SketchSet } from '../../native/index.js';
import { engineError, openSketches, type DeviceRequest, type Metric } from '../similarity/index.js';
import { readCsvFile } from '../util/csv.js';
import type { ProbeBank } from './probes.js';
import { readManifest, type SketchManifest } from './sketch.js';

export interface IdentifyOptions {
  model: string;
  index: string;
  top: number;
  metric: Metric;
  device: DeviceRequest;
  open: OpenOptions;
  /** A models CSV with model_id and family columns (overrides the index's families). */
  familiesCsv?: string;
  /** Compact index: candidates rescored exactly (default 1000). */
  candidates?: number;
  /** Compact index: rescore every indexed model (the exact scan). */
  exact?: boolean;
}

export interface Neighbour {
  rank: number;
  model: string;
  score: number;
  family: string | null;
}

export interface IdentifyResult {
  model: string;
  index: string;
  index_models: number;
  prompts: number;
  k: number;
  metric: Metric;
  device: string;
  neighbours: Neighbour[];
  /** The family most of the best three neighbours belong to (null when unknown). */
  likely_family: string | null;
  failed_prompts: number;
  seconds: { load: number; sketch: number; query: number; total: number };
}

function familiesFromCsv(file: string): Map<string, string> {
  const t = readCsvFile(file, 'models CSV');
  const idCol = t.header.includes('model_id') ? 'model_id' : null;
  if (!idCol || !t.header.includes('family')) {
    throw new ModelprintError('E_INPUT', `${file}: needs model_id and family columns (has ${t.header.join(', ')})`, { subject: file, hint: 'pass a models CSV like the zoo\'s models.csv' });
  }
  const m = new Map<string, string>();
  for (const r of t.rows) if (r.family?.trim()) m.set(r[idCol].trim(), r.family.trim());
  return m;
}

export async function identify(o: IdentifyOptions): Promise<IdentifyResult> {
  const t0 = Date.now();
  const compact = fs.existsSync(o.index) && native.isCompactSketchFile(o.index);
  let index: SketchSet | CompactSketchIndex;
  try {
    index = compact ? native.CompactSketchIndex.open(o.index) : openSketches(o.index);
  } catch (e) {
    throw engineError(e, o.index);
  }
  const man: SketchManifest = readManifest(o.index);
  const bank: ProbeBank = man.bank;
  if (index.promptHash !== bank.hash) {
    throw new ModelprintError('E_INPUT', `${o.index}: its prompt hash does not match its sidecar's probe bank`, { subject: o.index, hint: 'the .mpsk and its .json belong together; write them again with `modelprint sketch` / `merge`' });
  }
  const families = new Map<string, string>();
  for (const e of man.models) if (e.family) families.set(e.model, e.family);
  if (o.familiesCsv) for (const [k, v] of familiesFromCsv(o.familiesCsv)) families.set(k, v);

  if (!fs.existsSync(o.model)) {
    throw new ModelprintError('E_NOT_FOUND', `model not found: ${o.model}`, { subject: o.model, hint: 'pass a local model folder (an ONNX export with tokenizer.json)' });
  }
  const lm = await CausalLM.open(o.model, o.open);
  const t1 = Date.now();
  let query: SketchSet;
  let failedPrompts: number;
  try {
    // Throws non_finite_logits (E_INFERENCE) when every probe prompt fails.
    const sk = await computeSketch(lm, bank.prompts.map((p) => p.text), man.k, o.model);
    query = sk.set;
    failedPrompts = sk.errors.filter((e) => e !== null).length;
  } finally {
    await lm.release();
  }
  const t2 = Date.now();
  const top = Math.min(o.top, index.count);
  let r;
  try {
    // One query row: a streaming scan of the (mapped) index on the CPU; the tiled engines
    // (and the GPU, when asked for) pay per-stripe set-up that one row does not amortise.
    if (index instanceof native.CompactSketchIndex) {
      const candidates = o.exact ? index.count : (o.candidates ?? 1000);
      r = await native.compactQueryTopN(query, top, index, { metric: o.metric, candidates });
    } else {
      r = o.device === 'cuda' ? await native.similarityTopN(query, top, index, { metric: o.metric, device: o.device }) : await native.similarityScanTopN(query, top, index, { metric: o.metric });
    }
  } catch (e) {
    throw engineError(e, o.index);
  }
  const t3 = Date.now();
  const ids = index.modelIds;
  const neighbours: Neighbour[] = [];
  for (let j = r.offsets[0]; j < r.offsets[1]; j++) {
    const score = r.scores[j];
    if (!(score >= 0)) continue; // failed models of the index
    const model = ids[r.index[j]];
    neighbours.push({ rank: neighbours.length + 1, model, score, family: families.get(model) ?? null });
  }
  const votes = new Map<string, number>();
  for (const n of neighbours.slice(0, 3)) if (n.family) votes.set(n.family, (votes.get(n.family) ?? 0) + 1);
  const likely = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  return {
    model: o.model,
    index: o.index,
    index_models: index.count,
    prompts: bank.prompts.length,
    k: man.k,
    metric: o.metric,
    device: r.device,
    neighbours,
    likely_family: likely,
    failed_prompts: failedPrompts,
    seconds: { load: (t1 - t0) / 1000, sketch: (t2 - t1) / 1000, query: (t3 - t2) / 1000, total: (t3 - t0) / 1000 },
  };
}
