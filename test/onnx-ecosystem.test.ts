/**
 * ONNX exports as the ecosystem publishes them (issue 17) and Hub ids from the local
 * Hugging Face cache (issue 11 item 5). The fixtures in test/fixtures/onnx-ecosystem were
 * written by tools/gen_onnx_ecosystem_fixtures.py with transformers, onnxruntime's float16
 * converter and its quantizers; the fp32 graph and tokenizer they were made from are the
 * tiny zoo's alpha-base, rebuilt here (checked against the generator's manifest).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OnnxVariantRequest } from '../src/inference/format.js';
import { inspectModel } from '../src/inference/inspect.js';
import { halfToFloat } from '../src/util/half.js';
import { readCsvFile } from '../src/util/csv.js';
import { ROOT, parseJson, runCli, tmpDir, type CliResult } from './helpers/cli.js';
import { tinyZoo } from './helpers/zoo.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'onnx-ecosystem');
const FAST = ['--num-prompts', '4', '--k', '500', '--total-len', '24', '--progress', 'jsonl', '--device', 'cpu'];

interface Inspection {
  id: string;
  runs: boolean;
  format: string;
  repo_id: string | null;
  revision: string | null;
  head_dim: number | null;
  intermediate_size: number | null;
  onnx_file: string | null;
  onnx_variant: string | null;
  onnx_variants: string[];
  onnx_dtype: string | null;
  error: { code: string; message: string; hint?: string } | null;
}
interface Summary {
  ok: number;
  failed: number;
  failures: Array<{ model: string; code: string; message: string }>;
}

let work: string;
let zooBase: string;
/** Assembled model folders (fixture + the zoo's fp32 graph / tokenizer). */
const M: Record<string, string> = {};

const sha256 = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

function inspect(target: string, extra: string[] = [], env?: Record<string, string>): Inspection {
  const r = runCli(['models', 'inspect', target, '--device', 'cpu', '--json', ...extra], { env });
  const j = parseJson<Inspection>(r);
  expect(r.code, `${target}: ${r.stderr}`).toBe(j.runs ? 0 : 1);
  return j;
}

function lineage(base: string, derived: string[], extra: string[] = [], env?: Record<string, string>): { r: CliResult; s: Summary; rows: Record<string, string>[] } {
  const out = path.join(tmpDir('modelprint-eco-out-'), 'r.csv');
  const reg = extra.includes('--registry') ? [] : ['--registry', path.join(path.dirname(out), 'reg.db')];
  const params = extra.includes('--num-prompts') ? FAST.slice(6) : FAST;
  const r = runCli(['lineage', '--base', base, '--derived', ...derived, '--output', out, '--json', ...reg, ...params, ...extra], { env });
  expect(r.stdout, r.stderr).not.toBe('');
  const s = parseJson<Summary>(r);
  return { r, s, rows: fs.existsSync(out) ? readCsvFile(out).rows : [] };
}

/** phase=loading events with the ONNX file each model was opened with. */
function loaded(stderr: string): Record<string, { onnx_file: string; onnx_variant: string }> {
  const out: Record<string, { onnx_file: string; onnx_variant: string }> = {};
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { event: string; phase?: string; model: string; onnx_file?: string; onnx_variant: string };
    if (e.event === 'phase' && e.phase === 'loading' && e.onnx_file) out[e.model] = { onnx_file: e.onnx_file, onnx_variant: e.onnx_variant };
  }
  return out;
}

beforeAll(async () => {
  const { models } = await tinyZoo(42);
  const manifest = JSON.parse(fs.readFileSync(path.join(FIX, 'manifest.json'), 'utf8')) as { zoo: { model: string }; zoo_sha256: Record<string, string>; files: Record<string, string> };
  zooBase = models.find((m) => m.model_id === manifest.zoo.model)!.path;
  // The fixtures were derived from exactly this graph and tokenizer.
  for (const [rel, h] of Object.entries(manifest.zoo_sha256)) expect(sha256(path.join(zooBase, rel)), `zoo ${rel} changed: run tools/gen_onnx_ecosystem_fixtures.py`).toBe(h);
  for (const [rel, h] of Object.entries(manifest.files)) expect(sha256(path.join(FIX, rel)), rel).toBe(h);
  work = tmpDir('modelprint-eco-');
  for (const name of ['mistral-null-head-dim', 'gpt-neo-null-intermediate', 'fp16', 'variants', 'bf16-io']) {
    M[name] = path.join(work, name);
    fs.cpSync(path.join(FIX, name), M[name], { recursive: true });
    fs.copyFileSync(path.join(zooBase, 'tokenizer.json'), path.join(M[name], 'tokenizer.json'));
  }
  fs.mkdirSync(path.join(M['mistral-null-head-dim'], 'onnx'));
  fs.copyFileSync(path.join(zooBase, 'onnx', 'model.onnx'), path.join(M['mistral-null-head-dim'], 'onnx', 'model.onnx'));
  fs.copyFileSync(path.join(zooBase, 'onnx', 'model.onnx'), path.join(M.variants, 'onnx', 'model.onnx'));
  fs.copyFileSync(path.join(FIX, 'fp16', 'onnx', 'model.onnx'), path.join(M.variants, 'onnx', 'model_fp16.onnx'));
});

describe('null config fields (transformers save_pretrained)', () => {
  it('the fixtures really hold nulls', () => {
    expect(JSON.parse(fs.readFileSync(path.join(M['mistral-null-head-dim'], 'config.json'), 'utf8')).head_dim).toBeNull();
    expect(JSON.parse(fs.readFileSync(path.join(M['gpt-neo-null-intermediate'], 'config.json'), 'utf8')).intermediate_size).toBeNull();
  });

  it('derives them as transformers does and runs lineage with a null-field base', () => {
    const a = inspect(M['mistral-null-head-dim']);
    expect(a.runs).toBe(true);
    expect(a.head_dim).toBe(8); // hidden 32 / 4 heads (and the graph's KV cache says 8)
    const b = inspect(M['gpt-neo-null-intermediate']);
    expect(b.runs).toBe(true);
    expect(b.intermediate_size).toBe(128); // GPT-Neo: 4 × hidden_size
    const { r, s, rows } = lineage(M['mistral-null-head-dim'], [M['gpt-neo-null-intermediate']]);
    expect(r.code, r.stderr).toBe(0);
    expect(s.ok).toBe(1);
    // The q8 export of the same weights stays close to the fp32 original.
    expect(Number(rows[0].avg_overlap_ratio)).toBeGreaterThan(0.9);
  });
});

describe('fp16 exports with fp16 inputs and outputs', () => {
  it('inspect reports the graph dtype and runs it', () => {
    const j = inspect(M.fp16);
    expect(j.runs).toBe(true);
    expect(j.onnx_dtype).toBe('float16');
    expect(j.onnx_variant).toBe('fp32'); // named model.onnx, as Optimum saves it; the dtype says fp16
  });

  it('bottom-k sets of the fp16 model agree with the fp32 original on ≥ 95 % (measured ≥ 99 %)', () => {
    const { r, s, rows } = lineage(M['mistral-null-head-dim'], [M.fp16], ['--num-prompts', '10', '--k', '2000', '--total-len', '64']);
    expect(r.code, r.stderr).toBe(0);
    expect(s.ok).toBe(1);
    const pairs = JSON.parse(rows[0].pair_scores_json) as number[];
    expect(pairs).toHaveLength(10);
    for (const p of pairs) expect(p).toBeGreaterThanOrEqual(0.95);
    expect(Number(rows[0].avg_overlap_ratio)).toBeGreaterThanOrEqual(0.99);
    expect(loaded(r.stderr)[M.fp16]).toEqual({ onnx_file: 'onnx/model.onnx', onnx_variant: 'fp32' });
  });

  it('half floats are widened exactly', () => {
    const bits = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00, 0xfc00, 0x0000]);
    expect(Array.from(halfToFloat(bits))).toEqual([1, -2, 65504, 2 ** -24, Math.fround(0.333251953125), Infinity, -Infinity, 0]);
    expect(halfToFloat(Uint16Array.from([0x7e00]))[0]).toBeNaN();
  });

  it('bfloat16 inputs/outputs are a coded error, the same from inspect and lineage', () => {
    const j = inspect(M['bf16-io']);
    expect(j.runs).toBe(false);
    expect(j.error?.code).toBe('unexpected_io');
    expect(j.error?.message).toContain('bfloat16');
    const { s, rows } = lineage(M['mistral-null-head-dim'], [M['bf16-io']]);
    expect(s.failed).toBe(1);
    expect(rows[0].error_code).toBe('unexpected_io');
  });

  it('an fp16 base generates prompts through its fp16 KV cache', () => {
    const { r, s, rows } = lineage(M.fp16, [M['mistral-null-head-dim']]);
    expect(r.code, r.stderr).toBe(0);
    expect(s.ok).toBe(1);
    expect(Number(rows[0].avg_overlap_ratio)).toBeGreaterThanOrEqual(0.95);
  });
});

describe('onnx/ variants', () => {
  it('auto follows the documented preference; --onnx-variant picks one; each is reported', async () => {
    const all = inspect(M.variants);
    expect(all.onnx_variant).toBe('fp32');
    expect(all.onnx_variants).toEqual([
      'onnx/model.onnx',
      'onnx/model_fp16.onnx',
      'onnx/decoder_model_merged_quantized.onnx',
      'onnx/model_int8.onnx',
      'onnx/model_q4.onnx',
      'onnx/model_bnb4.onnx',
    ]);
    const expected: Record<string, [string, string]> = {
      fp16: ['model_fp16.onnx', 'float16'],
      quantized: ['decoder_model_merged_quantized.onnx', 'float32'],
      q8: ['decoder_model_merged_quantized.onnx', 'float32'],
      int8: ['model_int8.onnx', 'float32'],
      q4: ['model_q4.onnx', 'float32'],
      bnb4: ['model_bnb4.onnx', 'float32'],
    };
    for (const [v, [file, dtype]] of Object.entries(expected)) {
      // In-process (the same code the command runs) to keep the test quick; the CLI flag is checked below.
      const j = await inspectModel(M.variants, { device: 'cpu', onnxVariant: v as OnnxVariantRequest });
      expect(j.runs, `${v}: ${JSON.stringify(j.error)}`).toBe(true);
      expect(path.basename(j.onnx_file!)).toBe(file);
      expect(j.onnx_dtype).toBe(dtype);
    }
    expect(path.basename(inspect(M.variants, ['--onnx-variant', 'q4']).onnx_file!)).toBe('model_q4.onnx');
    const missing = inspect(M.variants, ['--onnx-variant', 'uint8']);
    expect(missing.runs).toBe(false);
    expect(missing.error?.code).toBe('not_found');
    expect(missing.error?.message).toContain('model_q4.onnx');

    // Removing the preferred files moves auto down the list.
    const partial = path.join(work, 'variants-partial');
    fs.cpSync(M.variants, partial, { recursive: true });
    fs.rmSync(path.join(partial, 'onnx', 'model.onnx'));
    expect((await inspectModel(partial, { device: 'cpu' })).onnx_variant).toBe('fp16');
    fs.rmSync(path.join(partial, 'onnx', 'model_fp16.onnx'));
    expect(path.basename((await inspectModel(partial, { device: 'cpu' })).onnx_file!)).toBe('decoder_model_merged_quantized.onnx');
  });

  it('a folder holding only onnx/model_quantized.onnx runs (was unsupported_format)', () => {
    const j = inspect(M['gpt-neo-null-intermediate']);
    expect(j.onnx_variant).toBe('quantized');
    expect(j.runs).toBe(true);
  });

  it('lineage uses the flag, reports it, and keys fingerprints per variant', () => {
    const reg = path.join(tmpDir('modelprint-eco-reg-'), 'reg.db');
    const base = M['mistral-null-head-dim'];
    const auto = lineage(base, [M.variants], ['--registry', reg]);
    expect(auto.r.code, auto.r.stderr).toBe(0);
    expect(loaded(auto.r.stderr)[M.variants].onnx_file).toBe('onnx/model.onnx');
    // The same fp32 graph: identical sets.
    expect(Number(auto.rows[0].avg_overlap_ratio)).toBe(1);
    // The base folder has a single ONNX file, which it keeps under any --onnx-variant.
    const q4 = lineage(base, [M.variants], ['--registry', reg, '--onnx-variant', 'q4']);
    expect(q4.r.code, q4.r.stderr).toBe(0);
    const ev = loaded(q4.r.stderr);
    expect(ev[M.variants]).toEqual({ onnx_file: 'onnx/model_q4.onnx', onnx_variant: 'q4' });
    // The base's prompts and sets were reused; the q4 sketch was computed, not taken from the fp32 one.
    expect(ev[base]).toBeUndefined();
    expect(q4.rows[0].avg_overlap_ratio).not.toBe('1.0');
    expect(Number(q4.rows[0].avg_overlap_ratio)).toBeGreaterThan(0.5);
    const again = lineage(base, [M.variants], ['--registry', reg, '--onnx-variant', 'q4']);
    expect(again.rows[0].avg_overlap_ratio).toBe(q4.rows[0].avg_overlap_ratio);
    expect(loaded(again.r.stderr)[M.variants]).toBeUndefined(); // reused from the registry
  });

  it('models add records the variant; lineage by registry name opens it; matrix takes the flag', () => {
    const reg = path.join(tmpDir('modelprint-eco-reg-'), 'reg.db');
    const add = runCli(['models', 'add', M.variants, '--name', 'tiny-q4', '--onnx-variant', 'q4', '--registry', reg, '--json']);
    expect(add.code, add.stderr).toBe(0);
    expect(parseJson<{ tags: string[] }>(add).tags).toContain('onnx-variant:q4');
    const bad = runCli(['models', 'add', M.variants, '--name', 'tiny-u8', '--onnx-variant', 'uint8', '--registry', reg, '--json']);
    expect(bad.code).toBe(1);
    const l = lineage(M['mistral-null-head-dim'], ['tiny-q4'], ['--registry', reg]);
    expect(l.s.ok, l.r.stderr).toBe(1);
    expect(loaded(l.r.stderr)['tiny-q4'].onnx_variant).toBe('q4');
    const out = tmpDir('modelprint-eco-mx-');
    const m = runCli(['matrix', '--models', M['mistral-null-head-dim'], M.variants, '--onnx-variant', 'bnb4', '--output-dir', out, '--registry', reg, '--json', ...FAST]);
    expect(m.code, m.stderr).toBe(0);
    expect(parseJson<{ failed: number }>(m).failed).toBe(0);
    expect(loaded(m.stderr)[M.variants].onnx_variant).toBe('bnb4');
  });

  it('inspect agrees with lineage, for models that run and for ones that do not', () => {
    const broken = path.join(work, 'broken');
    fs.cpSync(M['mistral-null-head-dim'], broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'onnx', 'model.onnx'), fs.readFileSync(path.join(broken, 'onnx', 'model.onnx')).subarray(0, 5000));
    const targets = [M['gpt-neo-null-intermediate'], M.fp16, M.variants, broken];
    const { rows } = lineage(M['mistral-null-head-dim'], targets);
    for (const t of targets) {
      const row = rows.find((x) => x.derived_model_name === t)!;
      const j = inspect(t);
      expect(j.runs, t).toBe(row.error_code === '');
      if (!j.runs) expect(j.error?.code).toBe(row.error_code);
    }
    expect(rows.find((x) => x.derived_model_name === broken)!.error_code).toBe('corrupt_onnx');
  });
});

/** A Hugging Face cache as huggingface_hub lays it out: blobs + symlinked snapshots + refs. */
function fakeCache(root: string, repo: string, snapshots: Record<string, string>, refs: Record<string, string>): string {
  const repoDir = path.join(root, `models--${repo.replace('/', '--')}`);
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  for (const [commit, src] of Object.entries(snapshots)) {
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'onnx/model.onnx'].filter((f) => fs.existsSync(path.join(src, f)));
    for (const f of files) {
      const data = fs.readFileSync(path.join(src, f));
      const blob = crypto.createHash('sha256').update(data).digest('hex');
      fs.writeFileSync(path.join(repoDir, 'blobs', blob), data);
      const link = path.join(repoDir, 'snapshots', commit, f);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.relative(path.dirname(link), path.join(repoDir, 'blobs', blob)), link);
    }
  }
  for (const [ref, content] of Object.entries(refs)) {
    fs.mkdirSync(path.dirname(path.join(repoDir, 'refs', ref)), { recursive: true });
    fs.writeFileSync(path.join(repoDir, 'refs', ref), content);
  }
  return repoDir;
}

describe('Hub ids from the local Hugging Face cache', () => {
  const C1 = 'a'.repeat(40);
  const C2 = 'b'.repeat(40);
  let hub: string;
  let env: Record<string, string>;
  let repoDir: string;

  beforeAll(() => {
    hub = path.join(tmpDir('modelprint-hf-'), 'hub');
    repoDir = fakeCache(hub, 'org/tiny', { [C1]: zooBase, [C2]: M.fp16 }, { main: `${C1}\n`, v2: C2, evil: '../../../../etc', gone: 'c'.repeat(40) });
    env = { HF_HUB_CACHE: hub, HF_HUB_OFFLINE: '1' };
  });

  it('snapshot files are symlinks into ../../blobs (as huggingface_hub makes them)', () => {
    const link = path.join(repoDir, 'snapshots', C1, 'onnx', 'model.onnx');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link).startsWith('../../../blobs/')).toBe(true);
  });

  it('org/name resolves refs/main; @ref and @commit pick their snapshot; the repo id is the name', () => {
    const main = inspect('org/tiny', [], env);
    expect(main).toMatchObject({ runs: true, id: 'org/tiny', repo_id: 'org/tiny', revision: C1, onnx_dtype: 'float32' });
    expect(inspect('org/tiny@v2', [], env)).toMatchObject({ runs: true, revision: C2, onnx_dtype: 'float16' });
    expect(inspect(`org/tiny@${C2}`, [], env)).toMatchObject({ runs: true, revision: C2 });
    // The cache folder given as a path records the same provenance.
    expect(inspect(repoDir, [], env)).toMatchObject({ runs: true, repo_id: 'org/tiny', revision: C1 });
    // HF_HOME/hub when HF_HUB_CACHE is not set.
    expect(inspect('org/tiny', [], { HF_HUB_CACHE: '', HF_HOME: path.dirname(hub) })).toMatchObject({ runs: true, revision: C1 });
  });

  it('a refs file that is not a plain revision, or names a missing snapshot, is a coded error', () => {
    expect(inspect('org/tiny@evil', [], env).error?.code).toBe('unsafe_path');
    const gone = inspect('org/tiny@gone', [], env);
    expect(gone.error?.code).toBe('not_found');
    expect(gone.error?.message).toContain('c'.repeat(40));
    expect(inspect('org/tiny@nope', [], env).error?.code).toBe('not_found');
    const absent = inspect('org/absent', [], env);
    expect(absent.error?.code).toBe('not_found');
    expect(absent.error?.hint).toContain('HF_HUB_OFFLINE=1');
  });

  it('the same checks apply to a cache repo folder given as a path (no fallback to its only snapshot)', () => {
    const stale = fakeCache(hub, 'org/stale', { [C1]: zooBase }, { main: C2 });
    const j = inspect(stale, [], env);
    expect(j.error?.code).toBe('not_found');
    expect(j.error?.message).toContain(C2);
    const bad = fakeCache(hub, 'org/badref', { [C1]: zooBase }, { main: 'snapshots/../../x' });
    expect(inspect(bad, [], env).error?.code).toBe('unsafe_path');
    expect(inspect('org/badref', [], env).error?.code).toBe('unsafe_path');
    // A repo without refs/main and a single snapshot uses it (huggingface_hub writes refs only for branches).
    const noref = fakeCache(hub, 'org/noref', { [C1]: zooBase }, {});
    expect(inspect('org/noref', [], env)).toMatchObject({ runs: true, revision: C1 });
    expect(inspect(noref, [], env)).toMatchObject({ runs: true, revision: C1 });
  });

  it('a snapshot file linking outside the repo folder is unsafe_path', () => {
    const evilRepo = fakeCache(hub, 'org/escape', { [C1]: zooBase }, { main: C1 });
    const link = path.join(evilRepo, 'snapshots', C1, 'onnx', 'model.onnx');
    fs.rmSync(link);
    fs.symlinkSync(path.join(zooBase, 'onnx', 'model.onnx'), link);
    expect(inspect('org/escape', [], env).error?.code).toBe('unsafe_path');
  });

  it('lineage takes Hub ids for base and derived, names rows by them, and gives unsafe refs a coded row', () => {
    const { r, s, rows } = lineage('org/tiny', ['org/tiny@v2', 'org/tiny@evil'], [], env);
    expect(r.code).toBe(3);
    expect(s.ok).toBe(1);
    expect(rows.map((x) => [x.base_model_name, x.derived_model_name, x.error_code])).toEqual([
      ['org/tiny', 'org/tiny@v2', ''],
      ['org/tiny', 'org/tiny@evil', 'unsafe_path'],
    ]);
    expect(Number(rows[0].avg_overlap_ratio)).toBeGreaterThanOrEqual(0.95); // fp16 of the same weights
  });

  it('models add records repo id, revision and format', () => {
    const reg = path.join(tmpDir('modelprint-hf-reg-'), 'reg.db');
    const r = runCli(['models', 'add', 'org/tiny@v2', '--registry', reg, '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson(r)).toMatchObject({ name: 'org/tiny', revision: C2, format: 'onnx' });
    const bad = runCli(['models', 'add', 'org/tiny@evil', '--registry', reg, '--json'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toContain('refs/evil');
    // Registered by name, it runs in lineage.
    const l = lineage('org/tiny', ['org/tiny'], ['--registry', reg], env);
    expect(l.s.ok).toBe(1);
  });
});
