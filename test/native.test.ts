import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelprintError, type ErrorCode } from '../src/errors.js';
import { fromNative, native } from '../src/native/index.js';

function naiveBottomK(values: Float32Array, k: number): number[] {
  return Array.from(values.keys())
    .sort((a, b) => values[a] - values[b] || a - b)
    .slice(0, Math.min(k, values.length));
}

describe('native bottom-k', () => {
  it('returns a Uint32Array of the lowest ids, ties to the lower id', () => {
    const r = native.bottomK(new Float32Array([1, 0, 0, 0, 2]), 4);
    expect(r).toBeInstanceOf(Uint32Array);
    expect(Array.from(r)).toEqual([1, 2, 3, 0]);
  });

  it('agrees with a plain sort on random rows (the Rust tests use the same rule)', () => {
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let t = 0; t < 50; t++) {
      const n = 1 + Math.floor(rnd() * 3000);
      const v = new Float32Array(n).map(() => Math.round(rnd() * 200) / 10);
      for (const k of [1, 17, Math.floor(n / 3), n + 5]) expect(Array.from(native.bottomK(v, k))).toEqual(naiveBottomK(v, k));
    }
  });

  it('handles rows in one call and rejects NaN / infinity', () => {
    const data = new Float32Array([3, 1, 2, 0, 9, 8]);
    expect(Array.from(native.bottomKRows(data, 3, 2))).toEqual([1, 2, 0, 2]);
    expect(() => native.bottomK(new Float32Array([0, NaN]), 1)).toThrow(/non-finite/);
    expect(() => native.bottomKRows(new Float32Array([0, 1, Infinity, 2]), 2, 1)).toThrow(/row 1/);
    expect(() => native.bottomKRows(new Float32Array(5), 2, 1)).toThrow(/whole number of rows/);
  });

  it('scores sorted sets', () => {
    expect(native.overlapRatio(new Uint32Array([1, 2, 3, 4]), new Uint32Array([3, 4, 5, 6]))).toBe(0.5);
    expect(native.jaccard(new Uint32Array([1, 2, 3, 4]), new Uint32Array([3, 4, 5, 6]))).toBeCloseTo(1 / 3);
  });
});

/** What a native call threw. */
function thrown(f: () => unknown): Error & { code?: unknown; subject?: unknown; hint?: unknown } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: unknown; subject?: unknown; hint?: unknown };
  }
  throw new Error('expected the native call to throw');
}

describe('native errors and typed options (issue 10, item 4)', () => {
  it('throw JS errors carrying code, subject and hint as properties', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-native-'));
    const file = path.join(dir, 'bomb.jsonl');
    fs.writeFileSync(file, '{"model":"a","sets":[[1,4294967294]]}\n{"model":"b","sets":[[1,2]]}\n');
    const e = thrown(() => native.SketchSet.open(file));
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('E_INPUT');
    expect(e.subject).toBe(file);
    expect(e.hint).toContain('MODELPRINT_MAX_VOCAB');
    expect(e.message).toContain('vocab_size');
    // fromNative reads the fields (no message parsing).
    const me = fromNative(e);
    expect(me).toBeInstanceOf(ModelprintError);
    expect([me.code, me.subject, me.hint]).toEqual(['E_INPUT', file, e.hint]);

    const missing = thrown(() => native.SketchSet.open(path.join(dir, 'nope.mpsk')));
    expect([missing.code, missing.subject]).toEqual(['E_NOT_FOUND', path.join(dir, 'nope.mpsk')]);
    const nan = thrown(() => native.bottomK(new Float32Array([0, NaN]), 1));
    expect(nan.code).toBe('E_INPUT');
    const tok = thrown(() => native.Tokenizer.fromFile(file));
    expect([tok.code, tok.subject]).toEqual(['E_TOKENIZER', file]);
    const shape = thrown(() => native.pinv(new Float64Array(3), 2, 2));
    expect(shape.code).toBe('E_INPUT');
  });

  it('rejects async tasks with the same fields', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-native-'));
    const part = path.join(dir, 'p.mppart');
    fs.writeFileSync(part, 'MPSHARD\0 not a part');
    const e = (await native.similarityMerge([part], null, false).then(
      () => null,
      (err: unknown) => err,
    )) as { code?: unknown; subject?: unknown; hint?: unknown } | null;
    expect(e).toBeInstanceOf(Error);
    expect(e!.code).toBe('E_INPUT');
    expect(e!.subject).toBe(part);
    expect(typeof e!.hint).toBe('string');
  });

  it('every native code is a CLI ErrorCode; unknown errors become E_INTERNAL', () => {
    const cliCodes: ErrorCode[] = ['E_USAGE', 'E_CONFIG', 'E_INPUT', 'E_NOT_FOUND', 'E_REGISTRY', 'E_PERMISSION', 'E_MODEL_FORMAT', 'E_MODEL_LOAD', 'E_TOKENIZER', 'E_INFERENCE', 'E_DEVICE', 'E_IO', 'E_INTERRUPTED', 'E_INTERNAL'];
    const codes = native.errorCodes();
    expect(codes).toContain('E_INPUT');
    for (const c of codes) expect(cliCodes).toContain(c);
    expect(fromNative(new Error('boom')).code).toBe('E_INTERNAL');
    expect(fromNative(Object.assign(new Error('x'), { code: 'EACCES' })).code).toBe('E_INTERNAL');
  });

  it('options are typed string unions, checked by the addon', async () => {
    const set = native.SketchSet.fromArrays(['a', 'b'], new Uint32Array([1, 2, 2, 3]), new Uint32Array([2, 2]), { prompts: 1, vocabSize: 10 });
    const r = await native.similarityMatrix(set, { metric: 'jaccard', device: 'cpu', cpuKernel: 'merge' });
    expect(r.deviceKind).toBe('cpu');
    expect(Array.from(r.scores)).toEqual([1, Math.fround(1 / 3), Math.fround(1 / 3), 1]);
    expect(native.similarityMetrics()).toEqual(['overlap', 'jaccard']);
    // A value outside the union is refused by napi-rs before any work.
    expect(() => native.similarityMatrix(set, { metric: 'cosine' as never })).toThrow(/cosine/);
  });

  it('textMetrics returns a named object', () => {
    const m = native.textMetrics('the same text', 'the same text', 5);
    expect(Object.keys(m).sort()).toEqual(['lcsRatio', 'levSim', 'palK', 'score']);
    expect(m.levSim).toBe(1);
    expect(m.lcsRatio).toBe(1);
    const d = native.textMetrics('abcdef', 'abcxyz', 3);
    expect(d.palK).toBe(1);
    expect(d.levSim).toBeCloseTo(0.5);
  });
});
