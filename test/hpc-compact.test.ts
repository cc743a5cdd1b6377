/**
 * The compact sketch index (.mpsk version 3): written from a SketchSet, read back by every
 * reader, and used by `similarity --top` and the identify query engine (two stages:
 * hashed-sample candidates, exact rescore) — equal to the exact engines when every model
 * is a candidate, exact scores otherwise; hostile files give coded errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { native } from '../src/native/index.js';
import type { SketchSet } from '../native/index.js';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';

const N = 120;
const P = 6;
const K = 300;
const VOCAB = 20000;

/** Deterministic sketches with family structure: 8 families; a member keeps 30–90 % of its family base. */
function synthetic(n: number, seed: number): SketchSet {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const set = (base: number[] | null, keep: number) => {
    const out = new Set<number>();
    if (base) for (const id of base) if (rnd() < keep) out.add(id);
    while (out.size < K) out.add(Math.floor(rnd() * VOCAB));
    return [...out].sort((a, b) => a - b);
  };
  const bases = Array.from({ length: 8 * P }, () => set(null, 0));
  const names: string[] = [];
  const ids: number[] = [];
  for (let m = 0; m < n; m++) {
    const f = m % 8;
    const keep = 0.3 + 0.6 * rnd();
    for (let p = 0; p < P; p++) ids.push(...set(bases[f * P + p], keep));
    names.push(`fam${f}/m${m}`);
  }
  return native.SketchSet.fromArrays(names, Uint32Array.from(ids), new Uint32Array(n * P).fill(K), { prompts: P, vocabSize: VOCAB, k: K });
}

let dir: string;
let set: SketchSet;
let v1: string;
let v3: string;

beforeAll(() => {
  dir = tmpDir('modelprint-compact-');
  set = synthetic(N, 7);
  v1 = path.join(dir, 'index-v1.mpsk');
  v3 = path.join(dir, 'index-v3.mpsk');
  set.save(v1);
  native.saveCompact(set, v3, 1 / 16);
});

function neighbours(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

describe('compact index (.mpsk v3)', () => {
  it('is much smaller than v1 and reads back as the same collection', () => {
    expect(native.isCompactSketchFile(v3)).toBe(true);
    expect(native.isCompactSketchFile(v1)).toBe(false);
    expect(fs.statSync(v3).size * 2.5).toBeLessThan(fs.statSync(v1).size);
    const back = native.SketchSet.open(v3);
    expect(back.fingerprint).toBe(set.fingerprint);
    const ix = native.CompactSketchIndex.open(v3);
    expect(ix.count).toBe(N);
    expect(ix.modelIds).toEqual(set.modelIds);
    expect(ix.sampleRate).toBeCloseTo(1 / 16, 6);
  });

  it('similarity --top: every model a candidate equals the exact engine; --exact too; default candidates give exact scores', () => {
    const exact = path.join(dir, 'exact.jsonl');
    expect(runCli(['similarity', '--sketches', v1, '--top', '5', '--output', exact, '--json']).code).toBe(0);
    const all = path.join(dir, 'all.jsonl');
    const r = runCli(['similarity', '--sketches', v3, '--top', '5', '--candidates', String(N - 1), '--output', all, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson<{ device: string; n: number }>(r)).toMatchObject({ n: N });
    expect(parseJson<{ device: string }>(r).device).toContain('sampled');
    expect(neighbours(all)).toBe(neighbours(exact));
    const viaExact = path.join(dir, 'via-exact.jsonl');
    expect(runCli(['similarity', '--sketches', v3, '--top', '5', '--exact', '--output', viaExact, '--json']).code).toBe(0);
    expect(neighbours(viaExact)).toBe(neighbours(exact));
    // Fewer candidates: same-family neighbours, every score the exact one.
    const few = path.join(dir, 'few.jsonl');
    expect(runCli(['similarity', '--sketches', v3, '--top', '5', '--candidates', '8', '--output', few, '--json']).code).toBe(0);
    type Line = { model: string; neighbours: Array<{ model: string; score: number }> };
    const lines = (f: string) => neighbours(f).trim().split('\n').map((l) => JSON.parse(l) as Line);
    const full = path.join(dir, 'full.jsonl');
    expect(runCli(['similarity', '--sketches', v1, '--top', String(N - 1), '--output', full, '--json']).code).toBe(0);
    const score = new Map(lines(full).flatMap((l) => l.neighbours.map((x) => [`${l.model} ${x.model}`, x.score] as const)));
    for (const l of lines(few)) {
      expect(l.neighbours).toHaveLength(5);
      for (const x of l.neighbours) {
        expect(x.model.split('/')[0]).toBe(l.model.split('/')[0]);
        expect(x.score).toBe(score.get(`${l.model} ${x.model}`));
      }
    }
  });

  it('the identify query: every model a candidate equals the streaming scan; fewer candidates keep exact scores', async () => {
    const query = synthetic(N + 1, 7);
    // The last model of a longer run of the same generator: a new member of family N % 8.
    const q = native.SketchSet.fromArrays(['query'], Uint32Array.from(Array.from({ length: P }, (_, p) => Array.from(query.set(N, p))).flat()), new Uint32Array(P).fill(K), { prompts: P, vocabSize: VOCAB, k: K });
    const ix = native.CompactSketchIndex.open(v3);
    const scan = await native.similarityScanTopN(q, 10, native.SketchSet.open(v1), { metric: 'overlap' });
    const two = await native.compactQueryTopN(q, 10, ix, { candidates: N });
    expect(Array.from(two.index)).toEqual(Array.from(scan.index));
    expect(Array.from(two.scores)).toEqual(Array.from(scan.scores));
    expect(set.modelIds[two.index[0]].startsWith(`fam${N % 8}/`)).toBe(true);
    const all = await native.similarityScanTopN(q, N, native.SketchSet.open(v1), { metric: 'jaccard' });
    const exact = new Map(Array.from(all.index).map((j, i) => [j, all.scores[i]]));
    const few = await native.compactQueryTopN(q, 10, ix, { candidates: 20, metric: 'jaccard' });
    expect(few.index.length).toBe(10);
    for (let i = 0; i < 10; i++) expect(few.scores[i]).toBe(exact.get(few.index[i]));
  });

  it('a corrupt or truncated compact index is a coded input error', () => {
    const bytes = fs.readFileSync(v3);
    const cut = path.join(dir, 'cut.mpsk');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    const r = runCli(['similarity', '--sketches', cut, '--top', '5', '--output', path.join(dir, 'x.jsonl'), '--json']);
    expect(r.code).toBe(1);
    expect(parseJson<{ error: { code: string; message: string } }>(r).error.code).toBe('E_INPUT');
    // A flipped id byte (the data section has per-model checksums): found when the model is read.
    const flipped = Buffer.from(bytes);
    flipped[300] ^= 0x44;
    const bad = path.join(dir, 'flipped.mpsk');
    fs.writeFileSync(bad, flipped);
    const r2 = runCli(['similarity', '--sketches', bad, '--top', '5', '--output', path.join(dir, 'y.jsonl'), '--json']);
    expect(r2.code).toBe(1);
    const e = parseJson<{ error: { code: string; message: string } }>(r2).error;
    expect(e.code).toBe('E_INPUT');
    expect(e.message).toMatch(/checksum/);
    expect(() => native.SketchSet.open(bad)).toThrow(/checksum/);
  });
});
