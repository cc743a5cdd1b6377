import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { native } from '../src/native/index.js';
import { createZoo, familyBaseWeights, MODEL_FILES, zooSpec, zooTokenizer, type ZooModel } from '../src/zoo/index.js';
import type { LlamaWeights, Matrix } from '../src/zoo/weights.js';
import { parseJson, runCli, spawnCli, tmpDir } from './helpers/cli.js';

interface CreateJson {
  dir: string;
  size: string;
  seed: number;
  reused: boolean;
  seconds: number;
  models: ZooModel[];
}

interface HfConfig {
  vocab_size: number;
  num_hidden_layers: number;
  num_key_value_heads: number;
  num_attention_heads: number;
  head_dim: number;
  hidden_size: number;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  eos_token_id: number;
  pad_token_id: number;
}

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const readConfig = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as HfConfig;
const PROMPT = 'The quick brown fox jumps over the lazy dog, and 42 cats watch it.';

/** Runs model.onnx on a (left-padded) batch; `past` continues from earlier presents. */
async function forward(
  session: ort.InferenceSession,
  cfg: HfConfig,
  ids: number[][],
  opts: { mask?: number[][]; positions?: number[][]; past?: Record<string, ort.Tensor> } = {},
): Promise<Record<string, ort.Tensor>> {
  const b = ids.length;
  const n = ids[0].length;
  const pastLen = opts.past ? opts.past['past_key_values.0.key'].dims[2] : 0;
  const mask = opts.mask ?? ids.map(() => new Array<number>(pastLen + n).fill(1));
  const positions = opts.positions ?? ids.map(() => Array.from({ length: n }, (_, i) => pastLen + i));
  const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map((x) => BigInt(x))), [rows.length, rows[0].length]);
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(mask), position_ids: i64(positions) };
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    for (const kv of ['key', 'value']) {
      feeds[`past_key_values.${i}.${kv}`] =
        opts.past?.[`past_key_values.${i}.${kv}`] ?? new ort.Tensor('float32', new Float32Array(0), [b, cfg.num_key_value_heads, 0, cfg.head_dim]);
    }
  }
  return session.run(feeds);
}

/** The presents of one run as the next run's past. */
function asPast(out: Record<string, ort.Tensor>, layers: number): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`];
  return past;
}

/** Logits row of (batch b, position p). */
function row(logits: ort.Tensor, b: number, p: number): Float32Array {
  const [, n, v] = logits.dims;
  return (logits.data as Float32Array).subarray((b * n + p) * v, (b * n + p + 1) * v);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A plain float64 Llama forward pass with Hugging Face semantics (one sequence, no cache). */
function referenceLogits(w: LlamaWeights, ids: number[]): Float64Array[] {
  const c = w.config;
  const { hiddenSize: E, numHeads: H, numKvHeads: KV, headDim: D } = c;
  const rep = H / KV;
  const matvec = (m: Matrix, x: ArrayLike<number>) => {
    const y = new Float64Array(m.rows);
    for (let r = 0; r < m.rows; r++) {
      let s = 0;
      for (let j = 0; j < m.cols; j++) s += m.data[r * m.cols + j] * x[j];
      y[r] = s;
    }
    return y;
  };
  const rms = (x: Float64Array, wt: Float32Array) => {
    let s = 0;
    for (const v of x) s += v * v;
    const inv = 1 / Math.sqrt(s / x.length + c.rmsNormEps);
    return x.map((v, j) => v * inv * wt[j]);
  };
  const rope = (v: Float64Array, pos: number) => {
    const out = new Float64Array(v.length);
    for (let j = 0; j < D; j++) {
      const i = j % (D / 2);
      const angle = pos / c.ropeTheta ** ((2 * i) / D);
      const rot = j < D / 2 ? -v[j + D / 2] : v[j - D / 2];
      out[j] = v[j] * Math.cos(angle) + rot * Math.sin(angle);
    }
    return out;
  };
  let xs = ids.map((t) => Float64Array.from(w.embed.data.subarray(t * E, (t + 1) * E)));
  for (const l of w.layers) {
    const hs = xs.map((x) => rms(x, l.inputNorm));
    const qs = hs.map((h, p) => Array.from({ length: H }, (_, hd) => rope(matvec(l.q, h).subarray(hd * D, (hd + 1) * D), p)));
    const ks = hs.map((h, p) => Array.from({ length: KV }, (_, hd) => rope(matvec(l.k, h).subarray(hd * D, (hd + 1) * D), p)));
    const vs = hs.map((h) => Array.from({ length: KV }, (_, hd) => matvec(l.v, h).subarray(hd * D, (hd + 1) * D)));
    xs = xs.map((x, p) => {
      const ctx = new Float64Array(H * D);
      for (let hd = 0; hd < H; hd++) {
        const kv = Math.floor(hd / rep);
        const scores = Array.from({ length: p + 1 }, (_, j) => {
          let s = 0;
          for (let d = 0; d < D; d++) s += qs[p][hd][d] * ks[j][kv][d];
          return s / Math.sqrt(D);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= p; j++) for (let d = 0; d < D; d++) ctx[hd * D + d] += (e[j] / z) * vs[j][kv][d];
      }
      const attn = matvec(l.o, ctx);
      const x2 = x.map((v, j) => v + attn[j]);
      const h2 = rms(x2, l.postNorm);
      const g = matvec(l.gate, h2);
      const u = matvec(l.up, h2);
      const act = g.map((v, j) => (v / (1 + Math.exp(-v))) * u[j]);
      const down = matvec(l.down, act);
      return x2.map((v, j) => v + down[j]);
    });
  }
  const head = w.lmHead ?? w.embed;
  return xs.map((x) => matvec(head, rms(x, w.finalNorm)));
}

describe('modelprint zoo create (tiny)', () => {
  let root: string;
  let zoo: string;
  let created: CreateJson;
  const byId = new Map<string, ZooModel>();

  beforeAll(() => {
    root = tmpDir('modelprint-zoo-');
    zoo = path.join(root, 'zoo');
    const r = runCli(['zoo', 'create', zoo, '--size', 'tiny', '--json']);
    expect(r.code, r.stderr).toBe(0);
    created = parseJson<CreateJson>(r);
    for (const m of created.models) byId.set(m.id, m);
  });

  it('writes every model folder with the Hugging Face / Optimum files', () => {
    expect(created).toMatchObject({ dir: zoo, size: 'tiny', seed: 42, reused: false });
    const spec = zooSpec('tiny');
    expect(created.models).toHaveLength(spec.families.length * (1 + spec.derivatives.length));
    for (const m of created.models) {
      for (const f of MODEL_FILES) expect(fs.existsSync(path.join(zoo, m.path, f)), `${m.id}/${f}`).toBe(true);
      const cfg = readConfig(path.join(zoo, m.path)) as unknown as Record<string, unknown>;
      expect(cfg).toMatchObject({ architectures: ['LlamaForCausalLM'], model_type: 'llama', torch_dtype: 'float32', use_cache: true, vocab_size: m.vocab_size });
      for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'max_position_embeddings', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings', 'bos_token_id', 'eos_token_id', 'pad_token_id', 'transformers_version']) {
        expect(cfg[k], `${m.id} config.${k}`).not.toBeUndefined();
      }
      const tc = JSON.parse(fs.readFileSync(path.join(zoo, m.path, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      expect(tc).toHaveProperty('added_tokens_decoder');
      expect(tc).toHaveProperty('model_max_length');
      expect(typeof tc.eos_token).toBe('string');
    }
    expect(fs.existsSync(path.join(zoo, 'lineage.json'))).toBe(true);
    // No temp folders left next to the zoo.
    expect(fs.readdirSync(root)).toEqual(['zoo']);
  });

  it('has a consistent models.csv and lineage.json', () => {
    const lineage = JSON.parse(fs.readFileSync(path.join(zoo, 'lineage.json'), 'utf8')) as { size: string; seed: number; models: ZooModel[] };
    expect(lineage).toMatchObject({ size: 'tiny', seed: 42 });
    expect(lineage.models).toEqual(created.models);
    const lines = fs.readFileSync(path.join(zoo, 'models.csv'), 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('model_id,path,family,model_type,base_model,relation');
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows).toHaveLength(lineage.models.length);
    for (const [id, p, family, type, base, relation] of rows) {
      const m = byId.get(id)!;
      expect(m).toBeDefined();
      expect([p, family, type, base, relation]).toEqual([m.path, m.family, m.model_type, m.base ?? '', m.relation]);
    }
    const families = new Set(lineage.models.map((m) => m.family));
    expect(families.size).toBeGreaterThanOrEqual(4);
    for (const fam of families) {
      const members = lineage.models.filter((m) => m.family === fam);
      const bases = members.filter((m) => m.relation === 'base');
      expect(bases).toHaveLength(1);
      expect(bases[0]).toMatchObject({ id: `${fam}-base`, base: null, parent: null, depth: 0 });
      expect(members.length - 1).toBeGreaterThanOrEqual(8);
      for (const m of members.filter((x) => x.relation !== 'base')) {
        expect(m.base).toBe(`${fam}-base`);
        expect(m.parent).toBe(m.parents[0]);
        const parents = m.parents.map((p) => byId.get(p)!);
        for (const p of parents) expect(p.family).toBe(fam);
        expect(m.depth).toBe(1 + Math.max(...parents.map((p) => p.depth)));
      }
      expect(new Set(members.map((m) => m.relation))).toEqual(
        new Set(['base', 'finetune-light', 'finetune-heavy', 'lora', 'quantize-int8', 'quantize-int4', 'prune', 'vocab-extension', 'reupload', 'merge', 'finetune-chain']),
      );
      expect(byId.get(`${fam}-chain-3`)).toMatchObject({ parent: `${fam}-chain-2`, depth: 3 });
      expect(byId.get(`${fam}-merge`)!.parents).toHaveLength(2);
    }
    // alpha and beta: same tokenizer and architecture, different weights; ties mixed; delta has its own vocabulary.
    const file = (id: string, f: string) => fs.readFileSync(path.join(zoo, id, f));
    expect(file('alpha-base', 'tokenizer.json').equals(file('beta-base', 'tokenizer.json'))).toBe(true);
    expect(file('alpha-base', 'config.json').equals(file('beta-base', 'config.json'))).toBe(true);
    expect(sha256(path.join(zoo, 'alpha-base/onnx/model.onnx'))).not.toBe(sha256(path.join(zoo, 'beta-base/onnx/model.onnx')));
    expect(byId.get('delta-base')!.vocab_size).not.toBe(byId.get('alpha-base')!.vocab_size);
    expect(new Set(created.models.map((m) => m.tie_word_embeddings))).toEqual(new Set([true, false]));
  });

  it('is deterministic in the seed; reuses a complete zoo, rebuilds an incomplete one or with --force', async () => {
    const again = await createZoo(path.join(root, 'again'), { size: 'tiny', seed: 42 });
    const other = await createZoo(path.join(root, 'other'), { size: 'tiny', seed: 7 });
    const onnx = (dir: string, id: string) => sha256(path.join(dir, id, 'onnx', 'model.onnx'));
    for (const m of created.models) {
      expect(onnx(again.dir, m.path), m.id).toBe(onnx(zoo, m.path));
      expect(onnx(other.dir, m.path), m.id).not.toBe(onnx(zoo, m.path));
    }
    expect(fs.readFileSync(path.join(again.dir, 'lineage.json'), 'utf8')).toBe(fs.readFileSync(path.join(zoo, 'lineage.json'), 'utf8'));
    expect(sha256(path.join(other.dir, 'alpha-base', 'tokenizer.json'))).not.toBe(sha256(path.join(zoo, 'alpha-base', 'tokenizer.json')));
    fs.rmSync(other.dir, { recursive: true, force: true });

    const file = path.join(again.dir, 'alpha-base', 'onnx', 'model.onnx');
    const before = fs.statSync(file).mtimeMs;
    const reuse = runCli(['zoo', 'create', again.dir, '--size', 'tiny', '--json']);
    expect(reuse.code, reuse.stderr).toBe(0);
    expect(parseJson<CreateJson>(reuse)).toMatchObject({ reused: true, seconds: 0 });
    expect(fs.statSync(file).mtimeMs).toBe(before);
    // --force rebuilds a complete zoo (in-process here: its tokenizers are memoised).
    expect((await createZoo(again.dir, { size: 'tiny', seed: 42, force: true })).reused).toBe(false);
    expect(fs.statSync(file).mtimeMs).not.toBe(before);

    fs.rmSync(path.join(again.dir, 'beta-int4', 'tokenizer.json'));
    const rebuilt = runCli(['zoo', 'create', again.dir, '--size', 'tiny', '--json']);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(parseJson<CreateJson>(rebuilt).reused).toBe(false);
    expect(fs.existsSync(path.join(again.dir, 'beta-int4', 'tokenizer.json'))).toBe(true);
    expect(onnx(again.dir, 'alpha-base')).toBe(onnx(zoo, 'alpha-base'));
    expect(fs.readdirSync(root).filter((e) => e.includes('.zoo-'))).toEqual([]);
    fs.rmSync(again.dir, { recursive: true, force: true });
  });

  it('refuses to replace a folder that is not a zoo, and bad flags', () => {
    const foreign = path.join(root, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    const refused = runCli(['zoo', 'create', foreign, '--size', 'tiny', '--force', '--json']);
    expect(refused.code).toBe(1);
    expect(parseJson<{ ok: boolean; error: { code: string } }>(refused).error.code).toBe('E_INPUT');
    expect(fs.readdirSync(foreign)).toEqual(['notes.txt']);
    expect(runCli(['zoo', 'create', path.join(root, 'x'), '--size', 'huge']).code).toBe(2);
    expect(runCli(['zoo', 'create', path.join(root, 'x'), '--seed', '-3']).code).toBe(2);
    expect(fs.existsSync(path.join(root, 'x'))).toBe(false);
  });

  it('leaves no half zoo when interrupted', async () => {
    const target = path.join(root, 'interrupted');
    const child = spawnCli(['zoo', 'create', target, '--size', 'tiny', '--verbose']);
    let stderr = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // Interrupt once the first model is written.
        if (stderr.includes('alpha-base') && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('E_INTERRUPTED');
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(root).filter((e) => e.includes('interrupted'))).toEqual([]);
  });

  it('lets concurrent creates of one directory build it once', async () => {
    const target = path.join(root, 'concurrent');
    const run = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawnCli(['zoo', 'create', target, '--size', 'tiny', '--json']);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      });
    const results = await Promise.all([run(), run()]);
    for (const r of results) expect(r.code, r.out).toBe(0);
    const reused = results.map((r) => (JSON.parse(r.out) as CreateJson).reused).sort();
    expect(reused).toEqual([false, true]);
    expect(sha256(path.join(target, 'gamma-base', 'onnx', 'model.onnx'))).toBe(sha256(path.join(zoo, 'gamma-base', 'onnx', 'model.onnx')));
    expect(fs.readdirSync(root).filter((e) => e.includes('.zoo-'))).toEqual([]);
    fs.rmSync(target, { recursive: true, force: true });
  });

  it('makes the re-upload byte-identical to its base', () => {
    for (const fam of ['alpha', 'beta', 'gamma', 'delta']) {
      for (const f of MODEL_FILES) {
        expect(sha256(path.join(zoo, `${fam}-reupload`, f)), `${fam} ${f}`).toBe(sha256(path.join(zoo, `${fam}-base`, f)));
      }
    }
  });

  it('writes tokenizers that load in the HF Rust tokenizers and round-trip text', () => {
    const text = 'Hello, world! The 3 models (v1.2) said: "lineage is 100% recoverable" -- maybe.\n\tIndented   spaces';
    for (const id of ['alpha-base', 'delta-base', 'alpha-vocab-ext', 'delta-vocab-ext']) {
      const dir = path.join(zoo, id);
      const cfg = readConfig(dir);
      const tok = native.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
      expect(tok.vocabSize, id).toBe(cfg.vocab_size);
      const ids = tok.encode(text, true);
      expect(Array.from(ids).every((x) => x < cfg.vocab_size)).toBe(true);
      expect(tok.decode(ids, true), id).toBe(text);
      // Word-like merges: well under one token per character.
      expect(ids.length).toBeLessThan(text.length * 0.75);
      const special = Array.from(tok.specialTokenIds());
      expect(special).toContain(cfg.eos_token_id);
      if (id.startsWith('alpha')) {
        expect(ids[0]).toBe(cfg.bos_token_id);
        expect([tok.tokenToId('<unk>'), tok.tokenToId('<s>'), tok.tokenToId('</s>')]).toEqual([0, 1, 2]);
      } else {
        expect(ids[0]).not.toBe(cfg.bos_token_id);
        expect(tok.tokenToId('<|im_end|>')).toBe(cfg.vocab_size - (id.endsWith('vocab-ext') ? 9 : 1));
      }
    }
  });

  it('extends the vocabulary of the vocab-ext models', () => {
    for (const fam of ['alpha', 'delta']) {
      const base = readConfig(path.join(zoo, `${fam}-base`));
      const dir = path.join(zoo, `${fam}-vocab-ext`);
      const ext = readConfig(dir);
      expect(ext.vocab_size).toBe(base.vocab_size + 8);
      const tok = native.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
      for (let i = 0; i < 8; i++) expect(tok.tokenToId(`<|extra_${i}|>`)).toBe(base.vocab_size + i);
      const ids = Array.from(tok.encode('say <|extra_3|> now', false));
      expect(ids).toContain(base.vocab_size + 3);
      const tc = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as { added_tokens_decoder: Record<string, { content: string }> };
      expect(tc.added_tokens_decoder[String(base.vocab_size + 7)].content).toBe('<|extra_7|>');
    }
  });

  it('runs every model in onnxruntime: shapes, finite logits, cached decoding = full recomputation', async () => {
    const tokenizers = new Map<string, ReturnType<typeof native.Tokenizer.fromFile>>();
    for (const m of created.models) {
      const dir = path.join(zoo, m.path);
      const cfg = readConfig(dir);
      const tokFile = path.join(dir, 'tokenizer.json');
      const key = sha256(tokFile);
      if (!tokenizers.has(key)) tokenizers.set(key, native.Tokenizer.fromFile(tokFile));
      const ids = Array.from(tokenizers.get(key)!.encode(PROMPT, true)).slice(0, 10);
      expect(ids).toHaveLength(10);
      const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'));
      expect(session.inputNames).toEqual([
        'input_ids',
        'attention_mask',
        'position_ids',
        ...Array.from({ length: cfg.num_hidden_layers }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat(),
      ]);
      expect(session.outputNames).toEqual([
        'logits',
        ...Array.from({ length: cfg.num_hidden_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat(),
      ]);
      const full = await forward(session, cfg, [ids]);
      expect(full.logits.dims).toEqual([1, 10, cfg.vocab_size]);
      expect((full.logits.data as Float32Array).every(Number.isFinite), m.id).toBe(true);
      for (let i = 0; i < cfg.num_hidden_layers; i++) {
        expect(full[`present.${i}.key`].dims).toEqual([1, cfg.num_key_value_heads, 10, cfg.head_dim]);
        expect(full[`present.${i}.value`].dims).toEqual([1, cfg.num_key_value_heads, 10, cfg.head_dim]);
      }
      const first = await forward(session, cfg, [ids.slice(0, 6)]);
      const rest = await forward(session, cfg, [ids.slice(6)], { past: asPast(first, cfg.num_hidden_layers) });
      expect(rest.logits.dims).toEqual([1, 4, cfg.vocab_size]);
      expect(rest['present.0.key'].dims).toEqual([1, cfg.num_key_value_heads, 10, cfg.head_dim]);
      for (let p = 0; p < 4; p++) expect(maxAbsDiff(row(rest.logits, 0, p), row(full.logits, 0, 6 + p)), `${m.id} pos ${6 + p}`).toBeLessThan(1e-4);
      await session.release();
    }
  });

  it('gives a left-padded batch the logits of the single prompts', async () => {
    for (const fam of ['alpha', 'gamma', 'delta']) {
      const dir = path.join(zoo, `${fam}-base`);
      const cfg = readConfig(dir);
      const tok = native.Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
      const a = Array.from(tok.encode(PROMPT, true)).slice(0, 10);
      const b = Array.from(tok.encode('Small models, big lineage.', true)).slice(0, 6);
      const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'));
      const pad = 10 - b.length;
      const batch = await forward(session, cfg, [a, [...new Array<number>(pad).fill(cfg.pad_token_id), ...b]], {
        mask: [new Array<number>(10).fill(1), [...new Array<number>(pad).fill(0), ...new Array<number>(b.length).fill(1)]],
        // transformers: cumsum(mask) - 1, padding positions set to 1.
        positions: [Array.from({ length: 10 }, (_, i) => i), Array.from({ length: 10 }, (_, i) => (i < pad ? 1 : i - pad))],
      });
      expect((batch.logits.data as Float32Array).every(Number.isFinite)).toBe(true);
      const single = [await forward(session, cfg, [a]), await forward(session, cfg, [b])];
      for (let p = 0; p < 10; p++) expect(maxAbsDiff(row(batch.logits, 0, p), row(single[0].logits, 0, p))).toBeLessThan(1e-4);
      for (let p = 0; p < b.length; p++) expect(maxAbsDiff(row(batch.logits, 1, pad + p), row(single[1].logits, 0, p)), `${fam} pos ${p}`).toBeLessThan(1e-4);
      // And one more token for the padded batch through the cache.
      const next = await forward(session, cfg, [[a[1]], [b[1]]], {
        mask: [new Array<number>(11).fill(1), [...new Array<number>(pad).fill(0), ...new Array<number>(b.length + 1).fill(1)]],
        positions: [[10], [b.length]],
        past: asPast(batch, cfg.num_hidden_layers),
      });
      const fullB = await forward(session, cfg, [[...b, b[1]]]);
      expect(maxAbsDiff(row(next.logits, 1, 0), row(fullB.logits, 0, b.length))).toBeLessThan(1e-4);
      await session.release();
    }
  });

  it('computes what a Hugging Face Llama computes (float64 reference forward pass)', async () => {
    const spec = zooSpec('tiny');
    for (const fam of spec.families.filter((f) => f.name === 'alpha' || f.name === 'gamma')) {
      const tok = zooTokenizer(spec, fam.tokenizer, 42);
      const weights = familyBaseWeights(fam, tok, 42);
      const dir = path.join(zoo, `${fam.name}-base`);
      const cfg = readConfig(dir);
      const ids = Array.from(native.Tokenizer.fromFile(path.join(dir, 'tokenizer.json')).encode(PROMPT, true)).slice(0, 8);
      const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'));
      const out = await forward(session, cfg, [ids]);
      const ref = referenceLogits(weights, ids);
      for (let p = 0; p < ids.length; p++) expect(maxAbsDiff(row(out.logits, 0, p), ref[p]), `${fam.name} pos ${p}`).toBeLessThan(2e-3);
      await session.release();
    }
  });
});
