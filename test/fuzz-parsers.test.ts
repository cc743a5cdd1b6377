/**
 * Issue 16: fuzz-style tests of the TypeScript binary readers (the Rust ones — .mpsk,
 * .mppart, JSON lines — are fuzzed with proptest in crates/modelprint-core). Valid files are
 * mutated (byte flips in the header and anywhere, truncation, inserted bytes) with a seeded
 * generator; every reader must return or throw a coded ModelError — never another exception,
 * never a hang. MODELPRINT_FUZZ_ITERATIONS sets the cases per reader (default 150; the longer
 * run in SECURITY.md uses 20000).
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelError, type ModelErrorCode } from '../src/inference/errors.js';
import { readOnnx } from '../src/inference/onnx-reader.js';
import { readSafetensorsHeader } from '../src/formats/safetensors.js';
import { readGguf } from '../src/formats/gguf-file.js';
import { Rng } from '../src/util/rng.js';
import { ROOT, tmpDir } from './helpers/cli.js';
import { tinyZoo } from './helpers/zoo.js';

const ITERATIONS = Number(process.env.MODELPRINT_FUZZ_ITERATIONS) || 150;

/** One mutation of `good`: flips in the first 4 KiB or anywhere, a truncation, or inserted bytes. */
function mutate(good: Buffer, rng: Rng): Buffer {
  const b = Buffer.from(good);
  switch (rng.int(4)) {
    case 0: {
      const head = Math.min(b.length, 4096);
      for (let i = 0, n = 1 + rng.int(8); i < n; i++) b[rng.int(head)] = rng.int(256);
      return b;
    }
    case 1:
      for (let i = 0, n = 1 + rng.int(32); i < n; i++) b[rng.int(b.length)] = rng.int(256);
      return b;
    case 2:
      return b.subarray(0, rng.int(b.length));
    default: {
      const at = rng.int(Math.min(b.length, 4096));
      const extra = Buffer.alloc(1 + rng.int(16));
      for (let i = 0; i < extra.length; i++) extra[i] = rng.int(256);
      return Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]);
    }
  }
}

/** Runs `read` over mutations of `good` written to `file`; returns the codes seen. */
function fuzz(good: Buffer, file: string, seed: number, allowed: ModelErrorCode[], read: (file: string) => unknown): Map<string, number> {
  const rng = new Rng(seed);
  const seen = new Map<string, number>();
  for (let i = 0; i < ITERATIONS; i++) {
    fs.writeFileSync(file, mutate(good, rng));
    let outcome = 'ok';
    try {
      read(file);
    } catch (e) {
      if (!(e instanceof ModelError)) throw new Error(`case ${i}: ${(e as Error)?.name}: ${(e as Error)?.message} is not a coded ModelError`);
      expect(allowed, `case ${i}: ${e.message}`).toContain(e.modelCode);
      expect(e.message).toContain(path.basename(file));
      outcome = e.modelCode;
    }
    seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
  }
  return seen;
}

let onnxFile: string;
beforeAll(async () => {
  const { models } = await tinyZoo();
  onnxFile = path.join(models.find((m) => m.model_id === 'alpha-base')!.path, 'onnx', 'model.onnx');
}, 120_000);

describe('fuzzed binary readers end in a coded error or a result (issue 16)', () => {
  it('ONNX (modelprint reads graphs itself for the weight and architecture methods)', () => {
    const seen = fuzz(fs.readFileSync(onnxFile), path.join(tmpDir('modelprint-fuzz-'), 'model.onnx'), 1, ['corrupt_onnx', 'unsafe_path', 'not_found'], (f) => readOnnx(f));
    // The mutations really break files: most are refused, with the reader's own code.
    expect(seen.get('corrupt_onnx') ?? 0).toBeGreaterThan(ITERATIONS / 10);
  });

  it('safetensors headers', () => {
    const good = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'hf', 'llama', 'model.safetensors'));
    const seen = fuzz(good, path.join(tmpDir('modelprint-fuzz-'), 'model.safetensors'), 2, ['corrupt_safetensors', 'unsupported_safetensors'], (f) => readSafetensorsHeader(f));
    expect(seen.get('corrupt_safetensors') ?? 0).toBeGreaterThan(ITERATIONS / 10);
  });

  it('GGUF files (header, metadata, tensor table)', () => {
    const good = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'gguf', 'llama-Q8_0.gguf'));
    const seen = fuzz(good, path.join(tmpDir('modelprint-fuzz-'), 'model.gguf'), 3, ['bad_gguf', 'unsupported_gguf_type'], (f) => readGguf(f));
    expect(seen.get('bad_gguf') ?? 0).toBeGreaterThan(ITERATIONS / 10);
  });
});
