/**
 * Issue 13 without a cluster: probe bank, sketch on a bank (resume, shards from the Slurm
 * environment), merge completeness checks, identify, batch-log progress and the generated
 * Slurm scripts. Real tiny zoo models, real ONNX Runtime, the real native engine.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { native } from '../src/native/index.js';
import { JsonlSink, type ProgressEvent, type ProgressInput } from '../src/ui/progress.js';
import { resolveShard, shardIndices } from '../src/hpc/shard.js';
import { parseJson, runCli, spawnCli, tmpDir } from './helpers/cli.js';
import { tinyZoo, type ZooModel } from './helpers/zoo.js';

let dir: string;
let models: ZooModel[];
let csv: string;
let bank: string;
const K = '200';

function writeCsv(file: string, rows: ZooModel[], extra: Array<{ id: string; path: string; family: string }> = []): string {
  const lines = ['model_id,path,family', ...rows.map((m) => `${m.model_id},${m.path},${m.family}`), ...extra.map((e) => `${e.id},${e.path},${e.family}`)];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function fingerprint(file: string): string {
  return native.SketchSet.open(file).fingerprint;
}

beforeAll(async () => {
  const zoo = await tinyZoo();
  models = zoo.models;
  dir = tmpDir('modelprint-hpc-');
  // Two families (alpha, gamma) and a missing model: 13 entries.
  const fam = (f: string) => models.filter((m) => m.family === f && !['alpha-ft-light', 'gamma-lora'].includes(m.model_id)).slice(0, 6);
  const pick = [...fam('alpha'), ...fam('gamma')];
  csv = writeCsv(path.join(dir, 'models.csv'), pick, [{ id: 'ghost-model', path: path.join(dir, 'no-such-model'), family: 'alpha' }]);
  bank = path.join(dir, 'bank.json');
  const bases = models.filter((m) => m.relation === 'base').map((m) => m.path);
  const r = runCli(['probes', 'make', '--from', ...bases, '--per-model', '3', '--total-len', '16', '--threads', '1', '--output', bank, '--json']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

describe('probes make', () => {
  it('writes a hashed, validated bank', () => {
    const b = JSON.parse(fs.readFileSync(bank, 'utf8'));
    expect(b.format).toBe('modelprint-probe-bank');
    expect(b.prompts).toHaveLength(12);
    expect(b.sources.map((s: { model: string }) => path.basename(s.model)).sort()).toEqual(['alpha-base', 'beta-base', 'delta-base', 'gamma-base']);
    expect(b.hash).toMatch(/^[0-9a-f]{64}$/);
    // An edited prompt no longer matches the hash: sketch refuses the bank.
    const edited = path.join(dir, 'edited.json');
    b.prompts[0].text += ' x';
    fs.writeFileSync(edited, JSON.stringify(b));
    const r = runCli(['sketch', '--probes', edited, '--models', csv, '--output', path.join(dir, 'never.mpsk'), '--json']);
    expect(r.code).toBe(1);
    expect(parseJson<{ error: { code: string; message: string } }>(r).error).toMatchObject({ code: 'E_INPUT' });
    expect(r.stdout).toContain('hash');
    // Schema errors name the field.
    fs.writeFileSync(edited, JSON.stringify({ ...b, prompts: 'nope' }));
    const r2 = runCli(['sketch', '--probes', edited, '--models', csv, '--json']);
    expect(parseJson<{ error: { message: string } }>(r2).error.message).toContain('prompts');
  });
});

describe('sketch, merge, identify', () => {
  let single: string;

  beforeAll(() => {
    single = path.join(dir, 'single.mpsk');
    const r = runCli(['sketch', '--probes', bank, '--models', csv, '--output', single, '--k', K, '--threads', '1', '--progress', 'jsonl', '--json'], { env: { SLURM_ARRAY_TASK_ID: '' } });
    expect(r.code, r.stderr).toBe(3); // the ghost model fails, the batch goes on
    const s = parseJson<{ models: number; ok: number; failed: number; failures: Array<{ model: string; code: string }> }>(r);
    expect(s).toMatchObject({ models: 13, ok: 12, failed: 1 });
    expect(s.failures[0]).toMatchObject({ model: 'ghost-model', code: 'not_found' });
    // Batch-log progress: a few lines per model, never one per prompt.
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; model?: string; phase?: string });
    const phases = lines.filter((l) => l.event === 'phase').map((l) => `${l.model}/${l.phase}`);
    expect(new Set(phases).size).toBe(phases.length);
    expect(lines.length).toBeLessThanOrEqual(13 * 3 + 2);
  }, 120_000);

  it('writes a collection with a sidecar: bank, families, failures', () => {
    const set = native.SketchSet.open(single);
    expect(set.count).toBe(13);
    expect(set.prompts).toBe(12);
    expect(set.k).toBe(Number(K));
    expect(Array.from(set.failed)).toEqual([...new Array(12).fill(0), 1]);
    const side = JSON.parse(fs.readFileSync(`${single}.json`, 'utf8'));
    expect(set.promptHash).toBe(side.bank.hash);
    expect(side.models[0]).toMatchObject({ family: 'alpha', ok: true, index: 0 });
    expect(side.models[6]).toMatchObject({ family: 'gamma', ok: true, index: 6 });
    expect(side.models[12]).toMatchObject({ model: 'ghost-model', ok: false, error_code: 'not_found' });
    expect(fs.existsSync(`${single}.parts`)).toBe(false);
  });

  it('resumes after SIGTERM: finished models are kept, the result equals an uninterrupted run', async () => {
    const out = path.join(dir, 'resumed.mpsk');
    const child = spawnCli(['sketch', '--probes', bank, '--models', csv, '--output', out, '--k', K, '--threads', '1', '--progress', 'jsonl']);
    let err = '';
    const code = await new Promise<number>((resolve) => {
      let sent = false;
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (!sent && (err.match(/"model_done"/g) ?? []).length >= 2) {
          sent = true;
          child.kill('SIGTERM');
        }
      });
      child.on('exit', (c) => resolve(c ?? -1));
    });
    expect(code, err).toBe(143);
    expect(err).toContain('"interrupted"');
    expect(fs.existsSync(out)).toBe(false);
    const parts = fs.readdirSync(`${out}.parts`).filter((f) => f.endsWith('.mpsk'));
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(parts.length).toBeLessThan(12);
    const r = runCli(['sketch', '--probes', bank, '--models', csv, '--output', out, '--k', K, '--threads', '1', '--progress', 'none', '--json']);
    expect(r.code).toBe(3);
    const s = parseJson<{ resumed: number; computed: number }>(r);
    expect(s.resumed).toBe(parts.length);
    expect(s.computed).toBe(13 - parts.length);
    expect(fingerprint(out)).toBe(fingerprint(single));
    // A finished collection is not computed again.
    const again = parseJson<{ resumed: number; computed: number }>(runCli(['sketch', '--probes', bank, '--models', csv, '--output', out, '--k', K, '--progress', 'none', '--json']));
    expect(again).toMatchObject({ resumed: 13, computed: 0 });
  }, 120_000);

  it('shards from SLURM_ARRAY_* merge into the single-process result; merge names missing and duplicated shards', () => {
    const out = path.join(dir, 'sharded.mpsk');
    // An array submitted as --array=1-3: task ids 1, 2, 3 are shards 0, 1, 2.
    for (const id of ['1', '2', '3']) {
      const r = runCli(['sketch', '--probes', bank, '--models', csv, '--output', out, '--k', K, '--threads', '1', '--progress', 'none', '--json'], {
        env: { SLURM_ARRAY_TASK_ID: id, SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '1' },
      });
      const s = parseJson<{ out: string; models: number; shard: { index: number; count: number } }>(r);
      expect(s.shard).toEqual({ index: Number(id) - 1, count: 3 });
      expect(s.out).toBe(path.join(dir, `sharded.shard-${Number(id) - 1}-of-3.mpsk`));
      expect(s.models).toBe(shardIndices(13, s.shard).length);
    }
    const shard = (i: number) => path.join(dir, `sharded.shard-${i}-of-3.mpsk`);
    const missing = runCli(['merge', shard(0), shard(2), '--output', out, '--json']);
    expect(missing.code).toBe(1);
    expect(parseJson<{ error: { message: string } }>(missing).error.message).toContain('missing shard 1 of 3 (sharded.shard-1-of-3.mpsk)');
    const dup = runCli(['merge', shard(0), shard(1), shard(2), shard(1), '--output', out, '--json']);
    expect(parseJson<{ error: { message: string } }>(dup).error.message).toContain(`shard 1 given 2 times (${shard(1)}, ${shard(1)})`);
    const wrong = runCli(['merge', '--output', out, '--shards', '4', '--json']);
    expect(parseJson<{ error: { message: string } }>(wrong).error.message).toContain('expected 4 shards');
    const ok = runCli(['merge', '--output', out, '--shards', '3', '--json']);
    expect(ok.code).toBe(3); // one failed model is carried over
    expect(parseJson<{ models: number; failed: number; fingerprint: string }>(ok)).toMatchObject({ models: 13, failed: 1, fingerprint: fingerprint(single) });
    expect(fingerprint(out)).toBe(fingerprint(single));
  }, 120_000);

  it('identify: an unindexed derivative finds its family; the JSON lists scores and families', () => {
    const unknown = models.find((m) => m.model_id === 'alpha-ft-light')!;
    const r = runCli(['identify', unknown.path, '--index', single, '--top', '5', '--threads', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = parseJson<{ neighbours: Array<{ rank: number; model: string; score: number; family: string }>; likely_family: string; index_models: number }>(r);
    expect(j.index_models).toBe(13);
    expect(j.neighbours).toHaveLength(5);
    expect(j.likely_family).toBe('alpha');
    expect(j.neighbours[0].family).toBe('alpha');
    const scores = j.neighbours.map((n) => n.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    // The best alpha neighbour scores above every gamma model.
    const all = parseJson<{ neighbours: Array<{ model: string; score: number; family: string }> }>(runCli(['identify', unknown.path, '--index', single, '--top', '13', '--json']));
    const bestGamma = Math.max(...all.neighbours.filter((n) => n.family === 'gamma').map((n) => n.score));
    expect(all.neighbours[0].score).toBeGreaterThan(bestGamma);
    expect(all.neighbours.some((n) => n.model === 'ghost-model')).toBe(false);
    const other = models.find((m) => m.model_id === 'gamma-lora')!;
    expect(parseJson<{ likely_family: string }>(runCli(['identify', other.path, '--index', single, '--json'])).likely_family).toBe('gamma');
  }, 120_000);

  it('merge --compact writes a compact index (.mpsk v3) that identify reads with the same answer', () => {
    const compact = path.join(dir, 'compact.mpsk');
    const shards = [0, 1, 2].map((i) => path.join(dir, `sharded.shard-${i}-of-3.mpsk`));
    const r = runCli(['merge', ...shards, '--output', compact, '--compact', '--json']);
    expect(r.code, r.stderr).toBe(3); // the failed model is carried over
    expect(native.isCompactSketchFile(compact)).toBe(true);
    expect(fingerprint(compact)).toBe(fingerprint(single));
    const unknown = models.find((m) => m.model_id === 'alpha-ft-light')!;
    type Out = { neighbours: Array<{ model: string; score: number; family: string }>; device: string };
    const a = parseJson<Out>(runCli(['identify', unknown.path, '--index', single, '--top', '13', '--threads', '1', '--json']));
    const b = parseJson<Out>(runCli(['identify', unknown.path, '--index', compact, '--top', '13', '--threads', '1', '--json']));
    expect(b.device).toContain('sampled');
    expect(b.neighbours).toEqual(a.neighbours);
  }, 120_000);
});

describe('lineage --shard and CSV merge', () => {
  it('shards the derived list; concurrent tasks do not lock each other out; merge restores the single-process CSV and names a missing shard', async () => {
    const betas = models.filter((m) => m.family === 'beta').slice(0, 5);
    const sub = { file: writeCsv(path.join(dir, 'lineage-models.csv'), betas), rows: betas.map((m) => m.model_id) };
    const base = models.find((m) => m.model_id === 'beta-base')!.path;
    const common = ['lineage', '--base', base, '--derived', sub.file, '--num-prompts', '2', '--total-len', '16', '--k', K, '--threads', '1', '--no-reuse', '--registry', path.join(dir, 'reg.db'), '--progress', 'none', '--json'];
    const single = path.join(dir, 'lineage-single.csv');
    expect(runCli([...common, '--output', single, '--shard', 'none']).code).toBe(0);
    const out = path.join(dir, 'lineage.csv');
    // Both array tasks at once, as Slurm runs them: each locks only its own shard file.
    const tasks = await Promise.all(
      ['0', '1'].map(
        (i) =>
          new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
            const child = spawnCli([...common, '--output', out, '--sketches-out', path.join(dir, 'lineage-sk.mpsk')], { env: { SLURM_ARRAY_TASK_ID: i, SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '0' } });
            let stdout = '';
            let stderr = '';
            child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
            child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
            child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
          }),
      ),
    );
    for (const i of ['0', '1']) {
      const r = tasks[Number(i)];
      expect(r.code, r.stderr).toBe(0);
      expect(parseJson<{ out: string; rows: number }>(r)).toMatchObject({ out: path.join(dir, `lineage.shard-${i}-of-2.csv`), rows: i === '0' ? 3 : 2 });
      // --sketches-out is sharded too (tasks never write one file): the base and this shard's models.
      const sk = native.SketchSet.open(path.join(dir, `lineage-sk.shard-${i}-of-2.mpsk`));
      expect(sk.modelIds.slice(1)).toEqual(shardIndices(5, { index: Number(i), count: 2 }).map((m) => sub.rows[m]));
    }
    expect(fs.existsSync(path.join(dir, 'lineage-sk.mpsk'))).toBe(false);
    const missing = runCli(['merge', path.join(dir, 'lineage.shard-1-of-2.csv'), '--output', out, '--json']);
    expect(parseJson<{ error: { message: string } }>(missing).error.message).toContain('missing shard 0 of 2 (lineage.shard-0-of-2.csv)');
    const ok = runCli(['merge', '--output', out, '--shards', '2', '--json']);
    expect(ok.code, ok.stdout).toBe(0);
    expect(parseJson<{ rows: number }>(ok).rows).toBe(5);
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(single, 'utf8'));
  }, 120_000);
});

describe('shard selection', () => {
  it('takes --shard over SLURM_ARRAY_*, checks the range', () => {
    expect(resolveShard(undefined, {})).toBeNull();
    expect(resolveShard('2/5', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ index: 2, count: 5 });
    expect(resolveShard('none', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' })).toBeNull();
    expect(resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '7', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '4' })).toEqual({ index: 3, count: 4 });
    expect(() => resolveShard(undefined, { SLURM_ARRAY_TASK_ID: '9', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '0' })).toThrow(/contiguous/);
    expect(() => resolveShard('4/4')).toThrow(/0 ≤ i < n/);
    const all = [0, 1, 2].flatMap((i) => shardIndices(10, { index: i, count: 3 })).sort((a, b) => a - b);
    expect(all).toEqual([...Array(10).keys()]);
  });
});

describe('JSON-lines progress for batch logs', () => {
  it('one line per model and phase, a heartbeat with where the run is', async () => {
    const lines: string[] = [];
    const sink = new JsonlSink(0.05, (l) => lines.push(l));
    const ev = (e: ProgressInput) => sink.emit({ ...e, time: new Date().toISOString() } as ProgressEvent);
    ev({ event: 'start', run: 'x', models: 2, total_prompts: 200 });
    for (const m of ['a', 'b']) {
      ev({ event: 'phase', model: m, phase: 'loading', done: 0, total: 0 });
      for (let i = 1; i <= 100; i++) ev({ event: 'phase', model: m, phase: 'sketch', done: i, total: 100 });
      if (m === 'a') {
        ev({ event: 'phase', model: m, phase: 'loading', done: 0, total: 0 });
        ev({ event: 'phase', model: m, phase: 'sketch', done: 1, total: 100 });
        await new Promise((r) => setTimeout(r, 120));
        ev({ event: 'model_done', model: m, score: null, reused: false, seconds: 1 });
      } else ev({ event: 'model_failed', model: m, code: 'x', message: 'y' });
    }
    ev({ event: 'done', ok: 1, failed: 1, skipped: 0, seconds: 1 });
    sink.close();
    const parsed = lines.map((l) => JSON.parse(l) as { event: string; model?: string; phase?: string; done?: number; models_done?: number });
    const nonHb = parsed.filter((p) => p.event !== 'heartbeat');
    expect(nonHb.map((p) => `${p.event}:${p.model ?? ''}:${p.phase ?? ''}`)).toEqual([
      'start::',
      'phase:a:loading',
      'phase:a:sketch',
      'phase:a:loading',
      'phase:a:sketch',
      'model_done:a:',
      'phase:b:loading',
      'phase:b:sketch',
      'model_failed:b:',
      'done::',
    ]);
    const hb = parsed.filter((p) => p.event === 'heartbeat');
    expect(hb.length).toBeGreaterThanOrEqual(1);
    expect(hb[0]).toMatchObject({ model: 'a', phase: 'sketch', done: 1, models_done: 0 });
    const n = lines.length;
    await new Promise((r) => setTimeout(r, 120));
    expect(lines.length).toBe(n); // closed: no more heartbeats
  });
});

describe('matrix progress in a batch log', () => {
  it('4 models write one line per model and phase (was 306 lines), not one per step', () => {
    const four = ['alpha-base', 'beta-base', 'alpha-int8', 'gamma-base'].map((id) => models.find((m) => m.model_id === id)!.path);
    const r = runCli(['matrix', '--models', ...four, '--num-prompts', '5', '--k', K, '--threads', '1', '--output-dir', path.join(dir, 'm4'), '--progress', 'jsonl', '--no-reuse', '--registry', path.join(dir, 'm4.db'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    // start, per model: loading + prompts (pass 1), loading + sketch + model_done (pass 2), done.
    expect(lines.length).toBe(1 + 4 * 5 + 1);
    expect(lines.filter((l) => l.event === 'model_done')).toHaveLength(4);
  }, 120_000);
});

describe('slurm script', () => {
  it('writes an array script with the signal trap, a merge job and an afterok submit', () => {
    const work = tmpDir('modelprint-slurm-script-');
    const r = runCli(['slurm', 'script', '--array', '8', '--time', '01:30:00', '--cpus', '4', '--gpus', '1', '--signal-seconds', '120', '--json', '--', 'sketch', '--probes', 'bank.json', '--models', 'my models.csv', '--output', 'out/s.mpsk'], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    const j = parseJson<{ script: string; merge_script: string; submit: string; merge: string[] }>(r);
    expect(j.merge).toEqual(['merge', '--output', 'out/s.mpsk', '--shards', '8']);
    const s = fs.readFileSync(j.script, 'utf8');
    for (const want of ['#SBATCH --array=0-7', '#SBATCH --time=01:30:00', '#SBATCH --cpus-per-task=4', '#SBATCH --gpus=1', '#SBATCH --signal=B:TERM@120', '#SBATCH --requeue', '#SBATCH --open-mode=append', "sketch --probes bank.json --models 'my models.csv' --output out/s.mpsk --progress jsonl", 'trap on_term TERM', 'scontrol requeue']) {
      expect(s).toContain(want);
    }
    expect(fs.readFileSync(j.merge_script, 'utf8')).toContain('merge --output out/s.mpsk --shards 8');
    expect(fs.readFileSync(j.submit, 'utf8')).toContain('--dependency=afterok:"$array"');
    for (const f of [j.script, j.merge_script, j.submit]) expect(spawnSync('bash', ['-n', f]).status).toBe(0);
    const bad = runCli(['slurm', 'script', '--array', '4', '--json', '--', 'matrix', '--models', 'm.csv'], { cwd: work });
    expect(parseJson<{ error: { code: string } }>(bad).error.code).toBe('E_USAGE');
    const shardGiven = runCli(['slurm', 'script', '--array', '4', '--json', '--', 'sketch', '--probes', 'b.json', '--models', 'm.csv', '--shard', '0/4'], { cwd: work });
    expect(parseJson<{ error: { message: string } }>(shardGiven).error.message).toContain('--shard');
  });
});
