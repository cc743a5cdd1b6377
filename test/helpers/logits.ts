/** Shared checks of the format tests (safetensors, GGUF, GPTQ / AWQ, bitsandbytes): logits vs references, coded open errors, per-file cache set-up. */
import { beforeAll, expect } from 'vitest';
import { CausalLM } from '../../src/inference/session.js';
import { ModelError } from '../../src/inference/errors.js';
import { readCsvFile } from '../../src/util/csv.js';
import { parseJson, runCli, tmpDir } from './cli.js';

/** The k lowest logits' token ids (ties by id), as the method's bottom-k set. */
export function bottomK(logits: ArrayLike<number>, k: number): Set<number> {
  const idx = Array.from({ length: logits.length }, (_, i) => i);
  idx.sort((a, b) => logits[a] - logits[b] || a - b);
  return new Set(idx.slice(0, k));
}

/** max |a[i] − b[i]|. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** What opening a model on the CPU throws (null when it opens). */
export async function openError(ref: string): Promise<unknown> {
  return CausalLM.open(ref, { device: 'cpu' }).then(
    async (lm) => {
      await lm.release();
      return null;
    },
    (e: unknown) => e,
  );
}

/** Opening `ref` fails with ModelError `code` (and a message matching `text`). */
export async function expectCode(ref: string, code: string, text?: RegExp): Promise<ModelError> {
  const err = await openError(ref);
  expect(err, `expected ${code} for ${ref}`).toBeInstanceOf(ModelError);
  expect((err as ModelError).modelCode, (err as Error).message).toBe(code);
  if (text) expect((err as Error).message).toMatch(text);
  return err as ModelError;
}

/**
 * A small `lineage` run through the CLI (3 prompts, k 128, 16 tokens), asserting every model
 * ran; returns the avg_overlap_ratio of each derived path.
 */
export function smallLineage(base: string, derived: string[], opts: { out: string; cache: string; registry?: string }): (derivedPath: string) => number {
  const reg = opts.registry ? ['--registry', opts.registry] : ['--registry-write', 'off'];
  const r = runCli(['lineage', '--base', base, '--derived', ...derived, '--output', opts.out, ...reg, '--json', '--num-prompts', '3', '--k', '128', '--prefix-len', '4', '--total-len', '16', '--progress', 'none'], {
    env: { MODELPRINT_CACHE_DIR: opts.cache },
  });
  expect(r.code, r.stderr).toBe(0);
  expect(parseJson<{ ok: number; failed: number }>(r)).toMatchObject({ ok: derived.length, failed: 0 });
  const rows = readCsvFile(opts.out).rows;
  return (p) => Number(rows.find((x) => x.derived_model_name === p)?.avg_overlap_ratio);
}

/**
 * A test file's own model cache (MODELPRINT_CACHE_DIR, set before its tests run) and work
 * folder: `<prefix>cache-…` and `<prefix>-…` under the system's temporary folder.
 */
export function cacheAndWorkDirs(prefix: string): { cache: string; work: string } {
  const dirs = { cache: tmpDir(`${prefix}cache-`), work: tmpDir(`${prefix}-`) };
  beforeAll(() => {
    process.env.MODELPRINT_CACHE_DIR = dirs.cache;
  });
  return dirs;
}
