/** Shared checks of the format tests (safetensors, GGUF, GPTQ / AWQ, bitsandbytes): logits vs references, coded open errors. */
import { expect } from 'vitest';
import { CausalLM } from '../../src/inference/session.js';
import { ModelError } from '../../src/inference/errors.js';

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
