/**
 * The native similarity engine (issue 5) for the CLI: sketch collections (.mpsk binary or
 * JSON lines), all-pairs overlap / Jaccard matrices, streaming top-N neighbours and shards.
 *
 * Everything heavy runs in Rust off the JS main thread (napi AsyncTasks); results are
 * written by Rust, atomically, so an n × n matrix never passes through JS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { native, fromNative } from '../native/index.js';
import type { SketchSet, MetricName, DeviceRequest as NativeDeviceRequest } from '../../native/index.js';
import { ModelprintError, type ErrorCode } from '../errors.js';

/** The engine's metrics and devices: typed unions generated from the Rust enums. */
export type Metric = MetricName;
export type DeviceRequest = NativeDeviceRequest;

/** For CLI flag `options:` lists (the addon validates what it receives by type). */
export const METRICS: readonly Metric[] = ['overlap', 'jaccard'];
export const DEVICES: readonly DeviceRequest[] = ['cpu', 'cuda', 'auto'];
/** Extension of shard part files. */
export const PART_EXT = '.mppart';

const HINTS: Partial<Record<ErrorCode, string>> = {
  E_INPUT: 'fix or regenerate the file; sets must be ascending, unique and below the vocabulary size, with the same prompts for every model',
  E_DEVICE: 'use --device cpu (or --device auto, which falls back to the CPU)',
  E_IO: 'check the path and that the folder is writable',
  E_USAGE: 'see `modelprint similarity --help`',
};

/** Turns an error of the native engine (a JS Error with code / subject / hint) into a ModelprintError. */
export function engineError(err: unknown, subject?: string): ModelprintError {
  return fromNative(err, { subject, hint: (code) => HINTS[code] });
}

/** "i/n", 0-based. */
export function parseShard(spec: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new ModelprintError('E_USAGE', `--shard must be i/n with 0 ≤ i < n (0-based, e.g. 0/4), got "${spec}"`, {
      subject: '--shard',
      hint: 'run one command per shard: --shard 0/4, --shard 1/4, --shard 2/4, --shard 3/4',
    });
  }
  return { index, count };
}

/** Opens a sketch collection (.mpsk is memory-mapped; .jsonl / .json / .ndjson parsed). */
export function openSketches(file: string): SketchSet {
  if (!fs.existsSync(file)) {
    throw new ModelprintError('E_NOT_FOUND', `sketch file not found: ${file}`, {
      subject: file,
      hint: 'pass a .mpsk or .jsonl sketch collection with --sketches',
    });
  }
  let sk: SketchSet;
  try {
    sk = native.SketchSet.open(file);
  } catch (e) {
    throw engineError(e, file);
  }
  // An empty file (or a header line alone) is not an empty matrix: something went wrong upstream.
  if (sk.count === 0) throw new ModelprintError('E_INPUT', `${file} holds no models (empty sketch collection)`, { subject: file, hint: 'pass a sketch collection written by --sketches-out, with at least one model' });
  return sk;
}

export type OutputKind = 'csv' | 'npy' | 'neighbours' | 'part';

/** What `--output` names, from its extension. */
export function outputKind(out: string): OutputKind {
  const ext = path.extname(out).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.npy') return 'npy';
  if (ext === '.jsonl' || ext === '.ndjson') return 'neighbours';
  if (ext === PART_EXT) return 'part';
  throw new ModelprintError('E_USAGE', `--output ${out}: unknown output type "${ext || '(none)'}"`, {
    subject: '--output',
    hint: `use matrix.csv or matrix.npy for a matrix, neighbours.jsonl with --top, part${PART_EXT} with --shard`,
  });
}

export interface SimilarityRequest {
  sketches: string;
  out: string;
  metric?: Metric;
  device?: DeviceRequest;
  threads?: number;
  top?: number;
  shard?: string;
  /** Compact index (.mpsk v3) with --top: candidates rescored exactly per model (default 64). */
  candidates?: number;
  /** Compact index with --top: the exact engine (decodes the index into memory; small n). */
  exact?: boolean;
}

export interface SimilaritySummary {
  mode: 'matrix' | 'top' | 'shard';
  n: number;
  prompts: number;
  k: number;
  vocabSize: number;
  failed: number;
  metric: Metric;
  device: string;
  deviceKind: string;
  seconds: number;
  out: string;
  top?: number;
  shard?: { index: number; count: number; tiles: number };
}

/** Runs `modelprint similarity`: one of matrix (.csv/.npy), top-N (.jsonl), shard (part file). */
export async function runSimilarity(req: SimilarityRequest): Promise<SimilaritySummary> {
  const metric = req.metric ?? 'overlap';
  const device = req.device ?? 'auto';
  const kind = outputKind(req.out);
  if (req.shard !== undefined && req.top !== undefined) {
    throw new ModelprintError('E_USAGE', '--shard and --top cannot be combined', {
      hint: 'shards build a full matrix; compute top-N on the whole collection',
    });
  }
  const shard = req.shard !== undefined ? parseShard(req.shard) : undefined;
  const want: OutputKind[] = shard ? ['part'] : req.top !== undefined ? ['neighbours'] : ['csv', 'npy'];
  if (!want.includes(kind)) {
    const what = shard ? `a part file (*${PART_EXT})` : req.top !== undefined ? 'a neighbours file (*.jsonl)' : 'a matrix file (*.csv or *.npy)';
    throw new ModelprintError('E_USAGE', `--output ${req.out}: ${shard ? 'with --shard' : req.top !== undefined ? 'with --top' : 'without --top or --shard'} the output is ${what}`, {
      subject: '--output',
      hint: `e.g. --output matrix.csv, --top 10 --output neighbours.jsonl, --shard 0/4 --output part-0${PART_EXT}`,
    });
  }
  if (req.top !== undefined && !req.exact && fs.existsSync(req.sketches) && native.isCompactSketchFile(req.sketches)) {
    // A compact index: two-stage top-N (hashed-sample candidates, exact rescore), mapped.
    let ix;
    try {
      ix = native.CompactSketchIndex.open(req.sketches);
      const r = await native.compactTopN(ix, req.top, { metric, threads: req.threads, candidates: req.candidates, outPath: req.out });
      const failed = ix.failed.reduce((a, b) => a + b, 0);
      return { mode: 'top', n: ix.count, prompts: ix.prompts, k: ix.k, vocabSize: ix.vocabSize, failed, metric, out: req.out, device: r.device, deviceKind: r.deviceKind, seconds: r.seconds, top: req.top };
    } catch (e) {
      throw engineError(e, req.sketches);
    }
  }
  const sk = openSketches(req.sketches);
  const failedCount = sk.failed.reduce((a, b) => a + b, 0);
  const opts = { metric, device, threads: req.threads, outPath: req.out, returnScores: false };
  const base = {
    n: sk.count,
    prompts: sk.prompts,
    k: sk.k,
    vocabSize: sk.vocabSize,
    failed: failedCount,
    metric,
    out: req.out,
  };
  try {
    if (shard) {
      const r = await native.similarityShard(sk, shard.index, shard.count, req.out, opts);
      return { mode: 'shard', ...base, device: r.device, deviceKind: r.deviceKind, seconds: r.seconds, shard: { ...shard, tiles: r.tiles } };
    }
    if (req.top !== undefined) {
      const r = await native.similarityTopN(sk, req.top, null, opts);
      return { mode: 'top', ...base, device: r.device, deviceKind: r.deviceKind, seconds: r.seconds, top: req.top };
    }
    const r = await native.similarityMatrix(sk, opts);
    return { mode: 'matrix', ...base, device: r.device, deviceKind: r.deviceKind, seconds: r.seconds };
  } catch (e) {
    throw engineError(e, req.sketches);
  }
}

export interface MergeSummary {
  n: number;
  parts: number;
  metric: string;
  seconds: number;
  out: string;
}

/** Runs `modelprint similarity merge`: part files of every shard → one matrix file. */
export async function mergeShards(parts: string[], out: string): Promise<MergeSummary> {
  const kind = outputKind(out);
  if (kind !== 'csv' && kind !== 'npy') {
    throw new ModelprintError('E_USAGE', `--output ${out}: a merged matrix is written as .csv or .npy`, { subject: '--output' });
  }
  for (const p of parts) {
    if (!fs.existsSync(p)) {
      throw new ModelprintError('E_NOT_FOUND', `part file not found: ${p}`, {
        subject: p,
        hint: 'pass every part written by `modelprint similarity --shard i/n --output <part>`',
      });
    }
  }
  try {
    const r = await native.similarityMerge(parts, out, false);
    return { n: r.n, parts: r.parts, metric: r.metric, seconds: r.seconds, out };
  } catch (e) {
    throw engineError(e);
  }
}
