import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';
import { native } from '../src/native/index.js';

type Sets = number[][] | null;
interface Model {
  model: string;
  sets: Sets;
}

// ---------------------------------------------------------------------------------------
// A tiny JS reference of METHODS §1.4–1.5 (pair by pair).

function intersect(a: number[], b: number[]): number {
  const s = new Set(a);
  let c = 0;
  for (const x of b) if (s.has(x)) c++;
  return c;
}

function score(metric: string, c: number, la: number, lb: number): number {
  if (metric === 'overlap') return la === 0 ? 0 : c / la;
  const u = la + lb - c;
  return u === 0 ? 0 : c / u;
}

const isFailed = (m: Model) => m.sets === null || m.sets.every((s) => s.length === 0);

/** Mean over the prompts both models have (an empty set is a missing prompt); -1 when none. */
function refPair(a: Model, b: Model, metric: string, prompts: number): number {
  let sum = 0;
  let common = 0;
  for (let p = 0; p < prompts; p++) {
    const x = a.sets![p];
    const y = b.sets![p];
    sum += score(metric, intersect(x, y), x.length, y.length);
    if (x.length > 0 && y.length > 0) common++;
  }
  // The engine's arithmetic: the mean over all P, rescaled once to the common prompts.
  const mean = Math.fround(prompts === 0 ? 0 : sum / prompts);
  if (common === prompts) return mean;
  return common === 0 ? -1 : Math.fround((mean * prompts) / common);
}

function refMatrix(models: Model[], metric: string, prompts: number): Float32Array {
  const n = models.length;
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      m[i * n + j] = isFailed(models[i]) || isFailed(models[j]) ? -1 : i === j ? 1 : refPair(models[i], models[j], metric, prompts);
  return m;
}

function refTop(models: Model[], m: Float32Array, top: number) {
  const n = models.length;
  return models.map((mod, i) => ({
    model: mod.model,
    neighbours: isFailed(mod)
      ? []
      : [...Array(n).keys()]
          .filter((j) => j !== i && !isFailed(models[j]))
          .sort((a, b) => m[i * n + b] - m[i * n + a] || a - b)
          .slice(0, top)
          .map((j) => ({ model: models[j].model, score: m[i * n + j] })),
  }));
}

// ---------------------------------------------------------------------------------------

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Families, unequal lengths, an empty set here and there, failed models. */
function makeModels(n: number, prompts: number, vocab: number, k: number, seed: number): Model[] {
  const r = rng(seed);
  const out: Model[] = [];
  let base: number[][] = [];
  for (let i = 0; i < n; i++) {
    if (i % 9 === 4) {
      out.push({ model: `org/failed-${i}`, sets: null });
      continue;
    }
    if (i % 4 === 0 || base.length === 0)
      base = [...Array(prompts)].map(() => [...new Set([...Array(k)].map(() => Math.floor(r() * vocab)))].sort((a, b) => a - b));
    const keep = r();
    const sets = base.map((b) => {
      if (r() < 0.05) return [];
      const s = new Set(b.filter(() => r() < keep));
      const want = 1 + Math.floor(r() * k);
      while (s.size < want) s.add(Math.floor(r() * vocab));
      return [...s].sort((a, b) => a - b).slice(0, k);
    });
    out.push({ model: i === 1 ? 'org/with,comma "quoted"' : `org/model-${i}`, sets });
  }
  return out;
}

function writeJsonl(file: string, models: Model[], header?: Record<string, unknown>) {
  const lines = models.map((m) => JSON.stringify(m));
  if (header) lines.unshift(JSON.stringify(header));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

function readNpy(file: string): { shape: number[]; data: Float32Array } {
  const b = fs.readFileSync(file);
  expect(b.subarray(0, 8).equals(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]))).toBe(true);
  const hlen = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + hlen).toString('latin1');
  expect(header).toContain("'descr': '<f4'");
  expect(header).toContain("'fortran_order': False");
  expect((10 + hlen) % 16).toBe(0);
  const shape = /'shape': \((\d+), (\d+)\)/.exec(header)!.slice(1).map(Number);
  const start = 10 + hlen;
  const copy = new Uint8Array(b.subarray(start));
  return { shape, data: new Float32Array(copy.buffer, 0, shape[0] * shape[1]) };
}

/** Minimal RFC 4180 CSV parser. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') q = false;
      else cell += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  return rows;
}

describe('modelprint similarity (native engine)', () => {
  const P = 3;
  const models = makeModels(40, P, 120, 30, 7);
  const dir = tmpDir('mp-sim-');
  const jsonl = path.join(dir, 'sketches.jsonl');
  writeJsonl(jsonl, models);

  it('writes the overlap matrix as CSV (ids as header row and first column, six decimals)', () => {
    const out = path.join(dir, 'm.csv');
    const r = runCli(['similarity', '--sketches', jsonl, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = parseJson<Record<string, unknown>>(r);
    expect(s).toMatchObject({ mode: 'matrix', n: 40, prompts: P, metric: 'overlap', deviceKind: 'cpu', out, failed: models.filter(isFailed).length });
    expect(typeof s.seconds).toBe('number');
    const rows = parseCsv(fs.readFileSync(out, 'utf8'));
    const ids = models.map((m) => m.model);
    expect(rows[0]).toEqual(['', ...ids]);
    const ref = refMatrix(models, 'overlap', P);
    for (let i = 0; i < 40; i++) {
      expect(rows[i + 1][0]).toBe(ids[i]);
      for (let j = 0; j < 40; j++) {
        const cell = rows[i + 1][j + 1];
        expect(cell).toMatch(/^-?\d+\.\d{6}$/);
        expect(Math.abs(Number(cell) - ref[i * 40 + j])).toBeLessThanOrEqual(5e-7 + 1e-9);
      }
    }
  });

  it('writes NPY float32 equal to the reference bit for bit, for both metrics', () => {
    for (const metric of ['overlap', 'jaccard']) {
      const out = path.join(dir, `m-${metric}.npy`);
      const r = runCli(['similarity', '--sketches', jsonl, '--metric', metric, '--out', out, '--threads', '2']);
      expect(r.code, r.stderr).toBe(0);
      const { shape, data } = readNpy(out);
      expect(shape).toEqual([40, 40]);
      expect(Array.from(data)).toEqual(Array.from(refMatrix(models, metric, P)));
    }
  });

  it('streams top-N neighbours as JSON lines', () => {
    const out = path.join(dir, 'nb.jsonl');
    const r = runCli(['similarity', '--sketches', jsonl, '--top', '3', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson<{ mode: string; top: number }>(r)).toMatchObject({ mode: 'top', top: 3 });
    const got = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { model: string; failed?: boolean; neighbours: { model: string; score: number }[] });
    const want = refTop(models, refMatrix(models, 'overlap', P), 3);
    expect(got.map((g) => g.model)).toEqual(want.map((w) => w.model));
    for (let i = 0; i < got.length; i++) {
      expect(got[i].failed ?? false).toBe(isFailed(models[i]));
      expect(got[i].neighbours.map((x) => x.model)).toEqual(want[i].neighbours.map((x) => x.model));
      got[i].neighbours.forEach((x, k) => expect(Math.abs(x.score - want[i].neighbours[k].score)).toBeLessThan(6e-7));
    }
  });

  it('splits the matrix into shards whose merge is the full matrix (across 512-model blocks)', () => {
    const big = makeModels(1100, 2, 200, 12, 11);
    const file = path.join(dir, 'big.jsonl');
    writeJsonl(file, big, { format: 'modelprint-sketch', version: 1, vocab_size: 200, k: 12, prompts: 2 });
    const parts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const part = path.join(dir, `part-${i}.mppart`);
      const r = runCli(['similarity', '--sketches', file, '--shard', `${i}/4`, '--out', part, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(parseJson<{ shard: { index: number; count: number } }>(r).shard).toMatchObject({ index: i, count: 4 });
      parts.push(part);
    }
    const merged = path.join(dir, 'merged.npy');
    const r = runCli(['similarity', 'merge', ...parts.reverse(), '--out', merged, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson<{ n: number; parts: number }>(r)).toMatchObject({ n: 1100, parts: 4 });
    const full = path.join(dir, 'full.npy');
    expect(runCli(['similarity', '--sketches', file, '--out', full]).code).toBe(0);
    const a = readNpy(merged).data;
    const b = readNpy(full).data;
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    // Spot-check the full matrix against the reference (every pair would be slow in JS).
    const r2 = rng(3);
    for (let t = 0; t < 3000; t++) {
      const i = Math.floor(r2() * 1100);
      const j = Math.floor(r2() * 1100);
      const want = i === j ? 1 : isFailed(big[i]) || isFailed(big[j]) ? -1 : refPair(big[i], big[j], 'overlap', 2);
      expect(b[i * 1100 + j]).toBe(want);
    }
    // A missing shard is named.
    const bad = runCli(['similarity', 'merge', parts[0], parts[1], parts[2], '--out', path.join(dir, 'x.csv'), '--json']);
    expect(bad.code).toBe(1);
    const err = parseJson<{ error: { code: string; message: string } }>(bad).error;
    expect(err.code).toBe('E_INPUT');
    expect(err.message).toContain('missing shard part(s): 0/4');
  });

  it('reads binary .mpsk collections written by the binding (memory-mapped)', () => {
    const ids: number[] = [];
    const lengths: number[] = [];
    for (const m of models) for (let p = 0; p < P; p++) {
      const s = m.sets ? m.sets[p] : [];
      ids.push(...s);
      lengths.push(s.length);
    }
    const set = native.SketchSet.fromArrays(
      models.map((m) => m.model),
      new Uint32Array(ids),
      new Uint32Array(lengths),
      { prompts: P, vocabSize: 120, k: 30, failed: models.map((m) => m.sets === null) },
    );
    const bin = path.join(dir, 's.mpsk');
    set.save(bin);
    const back = native.SketchSet.open(bin);
    expect(back.mapped).toBe(true);
    expect(back.fingerprint).toBe(set.fingerprint);
    expect(back.modelIds).toEqual(models.map((m) => m.model));
    const out = path.join(dir, 'bin.npy');
    expect(runCli(['similarity', '--sketches', bin, '--out', out]).code).toBe(0);
    expect(Array.from(readNpy(out).data)).toEqual(Array.from(refMatrix(models, 'overlap', P)));
  });

  it('rejects bad sketches and impossible devices with clear errors', () => {
    const bad = path.join(dir, 'bad.jsonl');
    writeJsonl(bad, [
      { model: 'a', sets: [[1, 2], [3]] },
      { model: 'b', sets: [[1, 2], [9, 4]] },
    ]);
    const r = runCli(['similarity', '--sketches', bad, '--out', path.join(dir, 'x.csv'), '--json']);
    expect(r.code).toBe(1);
    const e = parseJson<{ error: { code: string; message: string; subject: string } }>(r).error;
    expect(e.code).toBe('E_INPUT');
    expect(e.message).toMatch(/bad\.jsonl.*line 2.*model "b".*prompt 1.*ascending/);
    expect(e.subject).toBe(bad);

    const mismatch = path.join(dir, 'mismatch.jsonl');
    writeJsonl(mismatch, [
      { model: 'a', sets: [[1, 2], [3]] },
      { model: 'b', sets: [[1, 2]] },
    ]);
    const m = runCli(['similarity', '--sketches', mismatch, '--out', path.join(dir, 'x.csv'), '--json']);
    expect(parseJson<{ error: { message: string } }>(m).error.message).toContain('has 1 prompt sets, expected 2');

    const usage = runCli(['similarity', '--sketches', jsonl, '--shard', '4/4', '--out', path.join(dir, 'p.mppart'), '--json']);
    expect(usage.code).toBe(2);
    expect(parseJson<{ error: { code: string } }>(usage).error.code).toBe('E_USAGE');
    const ext = runCli(['similarity', '--sketches', jsonl, '--top', '2', '--out', path.join(dir, 'nb.csv'), '--json']);
    expect(parseJson<{ error: { code: string } }>(ext).error.code).toBe('E_USAGE');
    const missing = runCli(['similarity', '--sketches', path.join(dir, 'nope.mpsk'), '--out', path.join(dir, 'x.csv'), '--json']);
    expect(parseJson<{ error: { code: string } }>(missing).error.code).toBe('E_NOT_FOUND');

    const reason = native.cudaUnavailableReason();
    const cuda = runCli(['similarity', '--sketches', jsonl, '--device', 'cuda', '--out', path.join(dir, 'c.csv'), '--json']);
    if (reason) {
      expect(cuda.code).toBe(1);
      const ce = parseJson<{ error: { code: string; message: string } }>(cuda).error;
      expect(ce.code).toBe('E_DEVICE');
      expect(ce.message).toBe(reason);
      // auto falls back to the CPU.
      const auto = runCli(['similarity', '--sketches', jsonl, '--device', 'auto', '--out', path.join(dir, 'a.csv'), '--json']);
      expect(parseJson<{ deviceKind: string }>(auto).deviceKind).toBe('cpu');
    } else {
      expect(cuda.code, cuda.stderr).toBe(0);
      expect(parseJson<{ deviceKind: string }>(cuda).deviceKind).toBe('cuda');
    }
    // No temp files left behind by atomic writes.
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
