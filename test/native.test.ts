import { describe, expect, it } from 'vitest';
import { native } from '../src/native/index.js';

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
