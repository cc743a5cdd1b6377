import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LINEAGE_COLUMNS, TEXT_COLUMNS } from '../src/methods/results.js';
import { readCsvFile } from '../src/util/csv.js';
import { readNpyFloat32 } from '../src/util/npy.js';
import { parseJson, runCli, spawnCli, tmpDir } from './helpers/cli.js';
import { copyModel, tinyZoo, type ZooModel } from './helpers/zoo.js';

// Small parameters keep the suite fast on 2 cores; the method is the same.
const FAST = ['--num-prompts', '3', '--k', '200', '--prefix-len', '4', '--total-len', '20', '--progress', 'jsonl'];

let models: ZooModel[];
let base: ZooModel;
let family: ZooModel[];

beforeAll(async () => {
  ({ models } = await tinyZoo());
  base = models.find((m) => !m.base_model)!;
  family = models.filter((m) => m.family === base.family && m.model_id !== base.model_id);
});

function readCsv(file: string): Record<string, string>[] {
  return readCsvFile(file).rows;
}

function familyCsv(dir: string, list: ZooModel[]): string {
  const f = path.join(dir, 'derived.csv');
  fs.writeFileSync(f, `model_id,path,relation\n${list.map((m) => `${m.model_id},${m.path},${m.relation}`).join('\n')}\n`);
  return f;
}

function events(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('lineage (base vs derived)', () => {
  it('writes the METHODS §1.7 CSV, one row per derived model, and resumes without recomputing', () => {
    const dir = tmpDir();
    const derived = familyCsv(dir, family);
    const out = path.join(dir, 'results.csv');
    const reg = path.join(dir, 'reg.db');
    const r = runCli(['lineage', '--base', base.path, '--derived', derived, '--output', out, '--registry', reg, '--prompts-out', path.join(dir, 'p.json'), '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    const summary = parseJson<{ ok: number; failed: number; rows: number }>(r);
    expect(summary).toMatchObject({ ok: family.length, failed: 0, rows: family.length });
    const header = readCsvFile(out).header;
    expect(header.slice(0, LINEAGE_COLUMNS.length)).toEqual([...LINEAGE_COLUMNS]);
    expect(header).toContain('relation');
    const rows = readCsv(out);
    expect(rows.map((x) => x.derived_model_name).sort()).toEqual(family.map((m) => m.model_id).sort());
    for (const row of rows) {
      expect(row.base_model_name).toBe(base.path);
      expect(row.num_pairs).toBe('3');
      expect(row.bottom_k_vocab_size).toBe('200');
      const scores = JSON.parse(row.pair_scores_json) as number[];
      expect(scores).toHaveLength(3);
      expect(Number(row.avg_overlap_ratio)).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / 3, 4);
    }
    const reupload = rows.find((x) => /re-?upload/.test(x.relation));
    expect(reupload && Number(reupload.avg_overlap_ratio)).toBe(1);
    const prompts = JSON.parse(fs.readFileSync(path.join(dir, 'p.json'), 'utf8')) as { prompts: string[]; params: { seed: number } };
    expect(prompts.prompts).toHaveLength(3);
    expect(prompts.params.seed).toBe(42);

    // Same command again: nothing recomputed, file unchanged.
    const before = fs.readFileSync(out, 'utf8');
    const again = runCli(['lineage', '--base', base.path, '--derived', derived, '--output', out, '--registry', reg, '--json', ...FAST]);
    expect(again.code).toBe(0);
    expect(parseJson<{ skipped: number }>(again).skipped).toBe(family.length);
    expect(events(again.stderr).filter((e) => e.phase === 'loading')).toHaveLength(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(before);

    // Other parameters into the same file: refused, file untouched.
    const other = runCli(['lineage', '--base', base.path, '--derived', derived, '--output', out, '--registry', reg, ...FAST.map((a) => (a === '200' ? '300' : a))]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('E_CONFIG');
    expect(fs.readFileSync(out, 'utf8')).toBe(before);

    // --prompts-in reproduces the rows exactly; a new derivative costs one model load.
    const out2 = path.join(dir, 'r2.csv');
    const extra = copyModel(family[0].path, path.join(dir, 'new-upload'));
    const r2 = runCli(['lineage', '--base', base.path, '--derived', derived, extra, '--output', out2, '--registry', reg, '--json', ...FAST]);
    expect(r2.code, r2.stderr).toBe(0);
    const loads = events(r2.stderr).filter((e) => e.phase === 'loading').map((e) => e.model);
    expect(loads).toEqual([]); // the new upload has the same content hash as family[0]: reused
    const rows2 = readCsv(out2);
    expect(rows2.find((x) => x.derived_model_name === extra)?.avg_overlap_ratio).toBe(rows.find((x) => x.derived_model_name === family[0].model_id)?.avg_overlap_ratio);
  });

  it('survives SIGKILL half-way: the re-run gives the same rows as an uninterrupted run, no duplicates', async () => {
    const dir = tmpDir();
    const derived = familyCsv(dir, family);
    const full = path.join(dir, 'full.csv');
    expect(runCli(['lineage', '--base', base.path, '--derived', derived, '--output', full, '--registry', path.join(dir, 'a.db'), ...FAST]).code).toBe(0);

    const out = path.join(dir, 'killed.csv');
    const args = ['lineage', '--base', base.path, '--derived', derived, '--output', out, '--registry', path.join(dir, 'b.db'), ...FAST];
    const child = spawnCli([...args, '--batch-size', '1']);
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    let killed = false;
    const t = setInterval(() => {
      const n = fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length - 1 : 0;
      if (n >= 2 && !killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    }, 10);
    await exited;
    clearInterval(t);
    expect(killed, 'the run was killed half-way').toBe(true);
    const partial = readCsv(out).length;
    expect(partial).toBeLessThan(family.length);
    const resumed = runCli(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    const a = readCsv(full).sort((x, y) => x.derived_model_name.localeCompare(y.derived_model_name));
    const b = readCsv(out).sort((x, y) => x.derived_model_name.localeCompare(y.derived_model_name));
    expect(b).toEqual(a);
    expect(new Set(b.map((x) => x.derived_model_name)).size).toBe(b.length);
  });

  it('gives a row for every model of a mixed good/broken batch, -1 with codes, and exits 3', () => {
    const dir = tmpDir();
    const good = family.slice(0, 2).map((m) => m.path);
    const gguf = path.join(dir, 'some-gguf');
    fs.mkdirSync(gguf);
    fs.writeFileSync(path.join(gguf, 'model.Q4_K_M.gguf'), 'GGUF');
    const noTok = copyModel(family[0].path, path.join(dir, 'no-tok'));
    fs.rmSync(path.join(noTok, 'tokenizer.json'));
    const corrupt = copyModel(family[1].path, path.join(dir, 'corrupt'));
    fs.truncateSync(path.join(corrupt, 'onnx', 'model.onnx'), 1000);
    const missing = path.join(dir, 'nowhere');
    const out = path.join(dir, 'mixed.csv');
    const r = runCli(['lineage', '--base', base.path, '--derived', ...good, gguf, noTok, corrupt, missing, '--output', out, '--registry', path.join(dir, 'r.db'), '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(3);
    const rows = readCsv(out);
    expect(rows).toHaveLength(6);
    const byName = Object.fromEntries(rows.map((x) => [x.derived_model_name, x]));
    for (const g of good) expect(Number(byName[g].avg_overlap_ratio)).toBeGreaterThan(0);
    const expectFail = (name: string, code: string) => {
      expect(byName[name]).toMatchObject({ avg_overlap_ratio: '-1.0', num_pairs: '0', pair_scores_json: '[]', error_code: code });
      expect(byName[name].error_message.length).toBeGreaterThan(10);
    };
    expectFail(gguf, 'bad_gguf');
    expectFail(noTok, 'missing_tokenizer');
    expectFail(corrupt, 'corrupt_onnx');
    expectFail(missing, 'not_found');
    expect(parseJson<{ failed: number; failures: unknown[] }>(r).failed).toBe(4);
  });

  it('stops on SIGTERM after the current row, says how to resume, exits 143', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'term.csv');
    const child = spawnCli(['lineage', '--base', base.path, '--derived', familyCsv(dir, family), '--output', out, '--registry', path.join(dir, 'r.db'), ...FAST]);
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && stderr.includes('"model_done"')) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(143);
    expect(stderr).toContain('E_INTERRUPTED');
    expect(stderr).toMatch(/resume with: modelprint lineage/);
    const rows = readCsv(out);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.length).toBeLessThan(family.length);
    expect(rows.every((x) => x.avg_overlap_ratio !== '')).toBe(true);
  });

  it('runs the constrained-text method (§2) with its CSV columns', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'text.csv');
    const pick = [family.find((m) => /re-?upload/.test(m.relation))!, models.find((m) => m.family !== base.family)!];
    const r = runCli(['lineage', '--method', 'text', '--base', base.path, '--derived', ...pick.map((m) => m.path), '--output', out, '--registry', path.join(dir, 'r.db'), ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    const header = readCsvFile(out).header;
    expect(header).toEqual([...TEXT_COLUMNS]);
    const rows = readCsv(out);
    expect(rows[0]).toMatchObject({ avg_pal_k: '1.0', avg_lev_sim: '1.0', avg_lcs_ratio: '1.0', avg_score: '1.0' });
    expect(JSON.parse(rows[1].pair_metrics_json)).toHaveLength(3);
    expect(Number(rows[1].avg_score)).toBeLessThanOrEqual(1);
  });
});

describe('matrix (pairwise protocol)', () => {
  it('writes CSV, NPY and status; each model loaded at most twice; failed models are -1', () => {
    const dir = tmpDir();
    const pick = [base, ...family.slice(0, 3), ...models.filter((m) => m.family !== base.family && !m.base_model).slice(0, 2)];
    const broken = path.join(dir, 'broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, 'x.gguf'), 'GGUF');
    const outDir = path.join(dir, 'm');
    const r = runCli(['matrix', '--models', ...pick.map((m) => m.path), broken, '--output-dir', outDir, '--registry', path.join(dir, 'r.db'), '--no-reuse', '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(3);
    const loads = new Map<string, number>();
    for (const e of events(r.stderr)) if (e.phase === 'loading') loads.set(String(e.model), (loads.get(String(e.model)) ?? 0) + 1);
    expect(loads.size).toBe(pick.length + 1);
    for (const [, c] of loads) expect(c).toBeLessThanOrEqual(2);

    // The dashboard is written next to the matrix.
    const out = parseJson<{ files: { dashboard: string } }>(r);
    expect(out.files.dashboard).toBe(path.join(outDir, 'dashboard.html'));
    expect(fs.readFileSync(out.files.dashboard, 'utf8')).toContain('bottom-k overlap matrix');
    const n = pick.length + 1;
    const lines = fs.readFileSync(path.join(outDir, 'overlap_matrix.csv'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(n + 1);
    expect(lines[0].split(',').slice(1)).toEqual([...pick.map((m) => m.path), broken]);
    for (const line of lines.slice(1)) for (const v of line.split(',').slice(1)) expect(v).toMatch(/^-?\d+\.\d{6}$/);
    const { data, shape } = readNpyFloat32(path.join(outDir, 'overlap_matrix.npy'));
    expect(shape).toEqual([n, n]);
    for (let i = 0; i < n - 1; i++) expect(data[i * n + i]).toBe(1);
    for (let j = 0; j < n; j++) {
      expect(data[(n - 1) * n + j]).toBe(-1);
      expect(data[j * n + n - 1]).toBe(-1);
    }
    // the re-upload-like nearest structure: base vs its own derivatives beats base vs other families
    const sameFam = data[1];
    const otherFam = data[n - 2];
    expect(sameFam).toBeGreaterThan(otherFam);
    const status = JSON.parse(fs.readFileSync(path.join(outDir, 'matrix_models.json'), 'utf8')) as { models: Array<{ ok: boolean; code?: string }> };
    expect(status.models[n - 1]).toMatchObject({ ok: false, code: 'bad_gguf' });
    // CSV and NPY agree
    const csvRow0 = lines[1].split(',').slice(1).map(Number);
    csvRow0.forEach((v, j) => expect(v).toBeCloseTo(data[j], 5));
  });
});

describe('matrix scores from the native engine', () => {
  it('equal the straightforward per-pair, per-prompt mean (METHODS §1.5)', async () => {
    const { collectSketches } = await import('../src/methods/bottomk.js');
    const { native } = await import('../src/native/index.js');
    let s = 99;
    const rnd = (n: number) => ((s = (s * 1103515245 + 12345) % 2 ** 31), s % n);
    const n = 7;
    const N = 3;
    const P = n * N;
    const vocab = 500;
    const base = Array.from({ length: P }, () => new Set(Array.from({ length: 60 }, () => rnd(vocab))));
    const sketches = Array.from({ length: n }, (_, i) =>
      i === 4
        ? null
        : {
            k: 80,
            errors: new Array(P).fill(null),
            sets: base.map((b) => {
              const set = new Set([...b].filter(() => rnd(10) < 3 + i));
              for (let t = 0; t < 20 + i; t++) set.add(rnd(vocab));
              return Uint32Array.from([...set].sort((a, c) => a - c));
            }),
          },
    );
    const ranges = Array.from({ length: n }, (_, i) => [i * N, (i + 1) * N] as [number, number]);
    const ids = Array.from({ length: n }, (_, i) => `m${i}`);
    const prompts = Array.from({ length: P }, (_, p) => `prompt ${p}`);
    const sets = sketches.map((sk, i) => {
      if (!sk) return null;
      const flat = Uint32Array.from(sk.sets.flatMap((x) => [...x]));
      return native.SketchSet.fromArrays([ids[i]], flat, Uint32Array.from(sk.sets.map((x) => x.length)), { prompts: P, vocabSize: vocab, k: 80 });
    });
    const collection = collectSketches(ids, sets, prompts, ranges);
    for (const metric of ['overlap', 'jaccard'] as const) {
      const m = (await native.similarityMatrix(collection, { metric, device: 'cpu' })).scores;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          const v = m[i * n + j];
          if (!sketches[i] || !sketches[j]) {
            expect(v).toBe(-1);
            continue;
          }
          if (i === j) {
            expect(v).toBe(1);
            continue;
          }
          let sum = 0;
          for (let p = ranges[i][0]; p < ranges[i][1]; p++) {
            const a = new Set(sketches[i]!.sets[p]);
            const b = sketches[j]!.sets[p];
            const inter = [...b].filter((x) => a.has(x)).length;
            sum += metric === 'overlap' ? inter / a.size : inter / (a.size + b.length - inter);
          }
          expect(v).toBeCloseTo(sum / N, 6);
        }
      }
    }
  });
});
