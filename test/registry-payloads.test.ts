/**
 * Registry payloads are not trusted (issue 16, item 2): a fingerprint whose sketch claims an
 * absurd prompt count, or one copied onto another model's key, is refused by `registry import`
 * (a coded error naming the row, nothing written) and, when it is in a registry already, is
 * not used by `lineage`: the model is recomputed and scores what it scored before.
 * Needs the built CLI (dist/): `npx tsc -p tsconfig.build.json`.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelKey } from '../src/methods/runner.js';
import type { ModelEntry } from '../src/methods/models-input.js';
import { native } from '../src/native/index.js';
import { payloadProblem } from '../src/registry/payloads.js';
import { readCsvFile } from '../src/util/csv.js';
import { parseJson, runCli, tmpDir, type CliResult } from './helpers/cli.js';
import { tinyZoo, type ZooModel } from './helpers/zoo.js';

const FAST = ['--num-prompts', '2', '--k', '150', '--prefix-len', '4', '--total-len', '12', '--progress', 'jsonl'];

let dir: string;
let reg: string;
let base: ZooModel;
let fam: ZooModel;
let other: ZooModel;
let derived: string;
/** Fingerprint keys of the three models. */
const key: Record<'base' | 'fam' | 'other', string> = { base: '', fam: '', other: '' };
/** Scores of the first, clean run. */
let clean: Record<string, string>;

function lineage(registry: string, out: string): { r: CliResult; scores: Record<string, string>; reused: Record<string, boolean> } {
  const r = runCli(['lineage', '--base', base.path, '--derived', derived, '--out', out, '--registry', registry, '--json', ...FAST]);
  const scores = r.code === 0 ? Object.fromEntries(readCsvFile(out).rows.map((x) => [x.derived_model_name, x.avg_overlap_ratio])) : {};
  const reused: Record<string, boolean> = {};
  for (const l of r.stderr.split('\n')) {
    if (!l.startsWith('{')) continue;
    const ev = JSON.parse(l) as { event: string; model: string; reused?: boolean };
    if (ev.event === 'model_done') reused[ev.model] = ev.reused ?? false;
  }
  return { r, scores, reused };
}

/** A copy of the clean registry with `sql` applied to it. */
function tampered(sql: string, ...params: unknown[]): string {
  const file = path.join(tmpDir(), 'r.db');
  const src = new Database(reg);
  src.pragma('wal_checkpoint(TRUNCATE)');
  src.close();
  fs.copyFileSync(reg, file);
  const db = new Database(file);
  expect(db.prepare(sql).run(...params).changes).toBe(1);
  db.close();
  return file;
}

function payloadOf(k: string): Buffer {
  const db = new Database(reg, { readonly: true });
  const row = db.prepare("SELECT payload FROM fingerprints WHERE model_key = ? AND method = 'bottomk'").get(k) as { payload: Buffer };
  db.close();
  return row.payload;
}

/** A valid one-model sketch for `k` over `prompts` prompts (every set empty), past the default prompt cap when asked. */
function sketchWithPrompts(k: string, prompts: number): Buffer {
  const before = process.env.MODELPRINT_MAX_PROMPTS;
  process.env.MODELPRINT_MAX_PROMPTS = String(prompts * 2);
  try {
    const lengths = new Uint32Array(prompts);
    lengths[0] = 2;
    return native.SketchSet.fromArrays([k], Uint32Array.from([1, 2]), lengths, { prompts, vocabSize: 1000, k: 150 }).toBytes();
  } finally {
    if (before === undefined) delete process.env.MODELPRINT_MAX_PROMPTS;
    else process.env.MODELPRINT_MAX_PROMPTS = before;
  }
}

/** The clean registry exported, with the fingerprint row of `k` given `payload`. */
function exportWith(k: string, payload: Buffer): { file: string; line: number } {
  const d = tmpDir();
  const file = path.join(d, 'export.jsonl');
  const ex = runCli(['registry', 'export', '--out', file, '--registry', reg, '--json']);
  expect(ex.code, ex.stderr).toBe(0);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes('"table":"fingerprints"') && (JSON.parse(l) as { row: { modelKey: string } }).row.modelKey === k);
  expect(i).toBeGreaterThan(0);
  const doc = JSON.parse(lines[i]) as { row: { payload: string } };
  doc.row.payload = payload.toString('base64');
  lines[i] = JSON.stringify(doc);
  fs.writeFileSync(file, lines.join('\n'));
  return { file, line: i + 1 };
}

function expectRefusedImport(file: string, line: number, k: string, what: RegExp): void {
  const target = path.join(tmpDir(), 'target.db');
  const r = runCli(['registry', 'import', file, '--registry', target, '--json']);
  expect(r.code).toBe(1);
  const err = parseJson<{ ok: false; error: { code: string; message: string } }>(r).error;
  expect(err.code).toBe('E_INPUT');
  expect(err.message).toContain(`line ${line}`);
  expect(err.message).toContain(k);
  expect(err.message).toMatch(what);
  // Nothing was written: the import checks the whole file first.
  const info = parseJson<{ counts: Record<string, number> }>(runCli(['registry', 'info', '--registry', target, '--json']));
  expect(Object.values(info.counts).every((n) => n === 0)).toBe(true);
}

beforeAll(async () => {
  const { models } = await tinyZoo();
  base = models.find((m) => m.model_id === 'alpha-base')!;
  fam = models.find((m) => m.model_id === 'alpha-ft-light')!;
  other = models.find((m) => m.model_id === 'beta-base')!;
  dir = tmpDir();
  reg = path.join(dir, 'r.db');
  derived = path.join(dir, 'derived.csv');
  fs.writeFileSync(derived, `model_id,path\n${fam.model_id},${fam.path}\n${other.model_id},${other.path}\n`);
  for (const [name, m] of [['base', base], ['fam', fam], ['other', other]] as const) key[name] = await modelKey({ id: m.model_id, path: m.path } as ModelEntry);
  const first = lineage(reg, path.join(dir, 'clean.csv'));
  expect(first.r.code, first.r.stderr).toBe(0);
  clean = first.scores;
  expect(Number(clean[other.model_id])).toBeLessThan(0.5);
  expect(Number(clean[fam.model_id])).toBeGreaterThan(0.5);
  // The registry holds the three sketches, each named by its model's key.
  for (const k of Object.values(key)) expect(native.SketchSet.fromBytes(payloadOf(k)).modelIds).toEqual([k]);
}, 120_000);

describe('a fingerprint copied onto another model’s key', () => {
  it('is refused by registry import with E_INPUT naming the row, and nothing is imported', () => {
    const { file, line } = exportWith(key.other, payloadOf(key.base));
    expectRefusedImport(file, line, key.other, /is the sketch of/);
  });

  it('is not used by lineage: the model is recomputed and keeps its score (never a 1.0 from the base’s own sketch)', () => {
    const bad = tampered('UPDATE fingerprints SET payload = ? WHERE model_key = ?', payloadOf(key.base), key.other);
    const { r, scores, reused } = lineage(bad, path.join(tmpDir(), 'l.csv'));
    expect(r.code, r.stderr).toBe(0);
    expect(scores[other.model_id]).toBe(clean[other.model_id]);
    expect(scores[fam.model_id]).toBe(clean[fam.model_id]);
    expect(reused[other.model_id]).toBe(false);
    expect(reused[fam.model_id]).toBe(true);
  }, 60_000);
});

describe('a fingerprint whose sketch claims an absurd prompt count', () => {
  const ABSURD = (1 << 20) + 1; // past the default cap of 2^20 prompts a sketch

  it('is refused by registry import with E_INPUT naming the row, and nothing is imported', () => {
    const { file, line } = exportWith(key.fam, sketchWithPrompts(key.fam, ABSURD));
    expectRefusedImport(file, line, key.fam, /not a valid sketch.*prompts/i);
  }, 60_000);

  it.each([
    ['past the cap', ABSURD],
    ['within the cap but not the run’s prompts', 5000],
  ])('%s is not used by lineage: no crash, the model is recomputed and keeps its score', (_name, prompts) => {
    const bad = tampered('UPDATE fingerprints SET payload = ? WHERE model_key = ?', sketchWithPrompts(key.fam, prompts), key.fam);
    const t = Date.now();
    const { r, scores, reused } = lineage(bad, path.join(tmpDir(), 'l.csv'));
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - t).toBeLessThan(30_000);
    expect(scores).toEqual(clean);
    expect(reused[fam.model_id]).toBe(false);
    expect(reused[other.model_id]).toBe(true);
  }, 60_000);
});

describe('payload checks on mutated payloads', () => {
  it('never throw, and accept a mutated sketch only when it still is a one-model sketch of its key', () => {
    const valid = native.SketchSet.fromArrays(['key-a'], Uint32Array.from([1, 5, 9, 2, 3]), Uint32Array.from([3, 2]), { prompts: 2, vocabSize: 100, k: 3 }).toBytes();
    expect(payloadProblem('bottomk', 'key-a', valid)).toBeNull();
    expect(payloadProblem('bottomk', 'key-b', valid)).toMatch(/is the sketch of "key-a"/);
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(valid);
      for (let j = 0, n = 1 + rand(4); j < n; j++) b[rand(b.length)] = rand(256);
      const cut = rand(8) === 0 ? b.subarray(0, rand(b.length)) : b;
      const problem = payloadProblem('bottomk', 'key-a', cut);
      if (problem === null) {
        accepted++;
        const s = native.SketchSet.fromBytes(cut);
        expect([s.count, s.modelIds[0]]).toEqual([1, 'key-a']);
      }
    }
    // The checksum makes almost every mutation a refusal.
    expect(accepted).toBeLessThan(20);
    for (const n of [0, 1, 7, 9]) expect(payloadProblem('weight', 'k', Buffer.alloc(n))).toMatch(/float64/);
    expect(payloadProblem('weight', 'k', Buffer.alloc(16))).toBeNull();
  });
});
