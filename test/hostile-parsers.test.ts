/**
 * Issue 16, item 1: sizes read from sketch (.mpsk, JSONL) and shard part (.mppart) files
 * are checked against what the file can hold and against the caps of SECURITY.md before
 * anything is allocated. Each hostile file must end in a coded E_INPUT error (exit 1, JSON
 * error with the file as subject) with no output written — never an abort.
 *
 * The CLI runs under `ulimit -v` (4 GB of address space), as in the issue's reproduction, so
 * a regression fails fast with an allocation abort instead of taking the machine down.
 * Binary fixtures (valid xxh3 checksums) come from tools/hostile_fixtures.py.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, parseJson, tmpDir, type CliResult } from './helpers/cli.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'hostile');
const fixture = (name: string) => path.join(FIX, name);

/** `modelprint <args>` with at most 4 GB of virtual memory. */
function runLimited(args: string[], env: Record<string, string> = {}): CliResult {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('/bin/sh', ['-c', `ulimit -v 4000000 && exec ${quoted}`], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface JsonError {
  ok: boolean;
  error: { code: string; message: string; subject?: string; hint?: string };
}

/** Exit 1, one JSON error document with `code` E_INPUT naming `file`, and nothing written in `dir`. */
function expectInputError(r: CliResult, file: string, dir: string, words: string[]): JsonError['error'] {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).not.toMatch(/memory allocation of|panicked|Aborted/);
  const e = parseJson<JsonError>(r).error;
  expect(e.code).toBe('E_INPUT');
  expect(e.subject).toBe(file);
  for (const w of words) expect(e.message).toContain(w);
  expect(fs.readdirSync(dir)).toEqual([]);
  return e;
}

describe('hostile sketch and part files (issue 16)', () => {
  it('a JSONL id near 2^32 is an E_INPUT error, not a 256 GiB allocation', () => {
    const src = tmpDir();
    const out = tmpDir();
    const file = path.join(src, 'bomb.jsonl');
    fs.writeFileSync(file, '{"model":"a","sets":[[1,4294967294]]}\n{"model":"b","sets":[[1,2]]}\n');
    const e = expectInputError(runLimited(['similarity', '--sketches', file, '--out', path.join(out, 'm.csv'), '--json']), file, out, [
      'vocab_size',
      '4294967295',
    ]);
    expect(e.hint).toContain('MODELPRINT_MAX_VOCAB');

    // The same ids below the cap are fine (the test can fail: the cap is what differs).
    const fine = path.join(src, 'fine.jsonl');
    fs.writeFileSync(fine, '{"model":"a","sets":[[1,40000]]}\n{"model":"b","sets":[[1,2]]}\n');
    const ok = runLimited(['similarity', '--sketches', fine, '--out', path.join(out, 'm.csv'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'm.csv'), 'utf8')).toBe(',a,b\na,1.000000,0.500000\nb,0.500000,1.000000\n');
  });

  it('a JSONL header with four billion prompts for failed models is an E_INPUT error', () => {
    const src = tmpDir();
    const out = tmpDir();
    const file = path.join(src, 'prompts.jsonl');
    fs.writeFileSync(
      file,
      '{"format":"modelprint-sketch","vocab_size":10,"k":2,"prompts":4000000000}\n{"model":"a","sets":null}\n{"model":"b","sets":null}\n',
    );
    expectInputError(runLimited(['similarity', '--sketches', file, '--out', path.join(out, 'm.csv'), '--json']), file, out, ['prompts', '4000000000']);
  });

  it('a valid-checksum .mpsk with vocab_size 2^32-1 is an E_INPUT error; the cap is overridable', () => {
    const out = tmpDir();
    const file = fixture('vocab-2-32.mpsk');
    expectInputError(runLimited(['similarity', '--sketches', file, '--out', path.join(out, 'm.csv'), '--json']), file, out, ['vocab_size', '4294967295']);

    // Its twin with vocab_size 1000 is read and scored.
    const ok = runLimited(['similarity', '--sketches', fixture('vocab-ok.mpsk'), '--out', path.join(out, 'm.csv'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'm.csv'), 'utf8')).toBe(',a,b\na,1.000000,0.666667\nb,0.666667,1.000000\n');
    fs.rmSync(path.join(out, 'm.csv'));

    // MODELPRINT_MAX_VOCAB moves the cap.
    const low = runLimited(['similarity', '--sketches', fixture('vocab-ok.mpsk'), '--out', path.join(out, 'm.csv'), '--json'], { MODELPRINT_MAX_VOCAB: '500' });
    expectInputError(low, fixture('vocab-ok.mpsk'), out, ['vocab_size 1000', 'limit of 500']);
  });

  it('merging a part whose shard count is 2^32-1 is an E_INPUT error, not a 64 GB allocation', () => {
    const out = tmpDir();
    const r = runLimited(['similarity', 'merge', fixture('part-count-2-32.mppart'), '--out', path.join(out, 'm.csv'), '--json']);
    expect(r.code, r.stderr).toBe(1);
    const e = parseJson<JsonError>(r).error;
    expect(e.code).toBe('E_INPUT');
    expect(e.message).toContain('missing shard part(s): 1/4294967295');
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it('merging a part with n = 100,000 and no tiles is an E_INPUT error, not a 40 GB allocation', () => {
    const out = tmpDir();
    const file = fixture('part-n-100000.mppart');
    expectInputError(runLimited(['similarity', 'merge', file, '--out', path.join(out, 'm.csv'), '--json']), file, out, ['hold 0 scores', '100000 × 100000']);

    // A complete part of the same format merges.
    const ok = runLimited(['similarity', 'merge', fixture('part-ok.mppart'), '--out', path.join(out, 'm.csv'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'm.csv'), 'utf8')).toBe(',a,b\na,1.000000,0.500000\nb,0.250000,1.000000\n');
  });

  it('MODELPRINT_MAX_MEMORY caps the matrix a sketch file asks for', () => {
    const src = tmpDir();
    const out = tmpDir();
    const file = path.join(src, 'many.jsonl');
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ model: `m${i}`, sets: [[i, i + 1]] }));
    fs.writeFileSync(file, lines.join('\n') + '\n');
    // 300 × 300 × 4 bytes = 360,000 bytes: above a 100 kB cap, below the default.
    const r = runLimited(['similarity', '--sketches', file, '--out', path.join(out, 'm.npy'), '--json'], { MODELPRINT_MAX_MEMORY: '100K' });
    expect(r.code, r.stderr).toBe(1);
    const e = parseJson<JsonError>(r).error;
    expect(e.code).toBe('E_INPUT');
    expect(e.message).toContain('360000 bytes');
    expect(e.hint).toContain('MODELPRINT_MAX_MEMORY');
    expect(fs.readdirSync(out)).toEqual([]);
    const ok = runLimited(['similarity', '--sketches', file, '--out', path.join(out, 'm.npy'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});
