import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUTO_LOGITS_BYTES, AUTO_PASS_TOKENS, CausalLM } from '../src/inference/session.js';
import { computeSketch } from '../src/methods/bottomk.js';
import { ModelError } from '../src/inference/errors.js';
import { resolveModel } from '../src/inference/resolve.js';
import { parseJson, runCli, tmpDir } from './helpers/cli.js';
import { copyModel, tinyZoo, type ZooModel } from './helpers/zoo.js';

let models: ZooModel[];
let base: ZooModel;
let work: string;

beforeAll(async () => {
  ({ models } = await tinyZoo());
  base = models.find((m) => !m.base_model)!;
  work = tmpDir('modelprint-inf-');
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

async function expectCode(ref: string, code: string, opts: { tokenizer?: string } = {}): Promise<void> {
  const err = await CausalLM.open(ref, { device: 'cpu', ...opts }).then(
    async (lm) => {
      await lm.release();
      return null;
    },
    (e: unknown) => e,
  );
  expect(err, `expected ${code} for ${ref}`).toBeInstanceOf(ModelError);
  expect((err as ModelError).modelCode).toBe(code);
}

describe('inference on the zoo', () => {
  it('gives identical logits across runs and sessions', async () => {
    const a = await CausalLM.open(base.path, { device: 'cpu' });
    const b = await CausalLM.open(base.path, { device: 'cpu' });
    const ids = a.encode('the quick brown fox jumps over the lazy dog');
    const r1 = await a.lastLogits([ids]);
    const r2 = await a.lastLogits([ids]);
    const r3 = await b.lastLogits([ids]);
    expect(r1.width).toBeGreaterThan(1000);
    expect(Array.from(r1.logits.slice(0, 50))).toEqual(Array.from(r2.logits.slice(0, 50)));
    expect(maxAbsDiff(r1.logits, r3.logits)).toBe(0);
    expect(r1.logits.every(Number.isFinite)).toBe(true);
    await a.release();
    await b.release();
  });

  it('cached decoding equals full recomputation', async () => {
    const lm = await CausalLM.open(base.path, { device: 'cpu' });
    expect(lm.hasPast).toBe(true);
    const seq = [11, 42, 300, 7, 99, 1000, 23, 500, 64, 77, 901, 5];
    const { state, logits: first } = await lm.startDecode([seq.slice(0, 6)]);
    let cached = first;
    for (const t of seq.slice(6)) cached = await lm.stepDecode(state, [t]);
    const full = await lm.lastLogits([seq]);
    expect(maxAbsDiff(cached, full.logits)).toBeLessThan(1e-4);
    // and the first step equals the prefix run alone
    const prefix = await lm.lastLogits([seq.slice(0, 6)]);
    expect(maxAbsDiff(first, prefix.logits)).toBeLessThan(1e-5);
    await lm.release();
  });

  it('a left-padded batch equals single prompts', async () => {
    const lm = await CausalLM.open(base.path, { device: 'cpu', batchSize: 8 });
    const prompts = [lm.encode('hello world'), lm.encode('a much longer prompt with many more tokens than the first one'), lm.encode('x')];
    const batch = await lm.lastLogits(prompts);
    for (let i = 0; i < prompts.length; i++) {
      const single = await lm.lastLogits([prompts[i]]);
      expect(maxAbsDiff(batch.logits.subarray(i * batch.width, (i + 1) * batch.width), single.logits)).toBeLessThan(1e-4);
    }
    await lm.release();
  });

  it('auto batching (the default): equal-length prompts share a pass, within the token and logits bounds', async () => {
    const lm = await CausalLM.open(base.path, { device: 'cpu' });
    try {
      expect(lm.batchSize).toBe(0);
      expect(lm.lastPositionOnly).toBe(false); // an export: every position's logits
      const W = lm.logitsWidth!;
      expect(lm.planPasses([5, 3, 5, 5, 3, 7])).toEqual([[0, 2, 3], [1, 4], [5]]);
      // Tokens: at most AUTO_PASS_TOKENS per pass (a prompt longer than that runs alone).
      expect(lm.planPasses(new Array(5).fill(1000))).toEqual([[0, 1], [2, 3], [4]]);
      expect(lm.planPasses([3000, 3000])).toEqual([[0], [1]]);
      // Logits: every position's rows of an export count against AUTO_LOGITS_BYTES, one row per
      // prompt of a graph built from a checkpoint. With a 100,000-wide vocabulary and 16 tokens:
      lm.logitsWidth = 100_000;
      const perPass = (last: boolean) => {
        lm.lastPositionOnly = last;
        return lm.planPasses(new Array(130).fill(16)).map((p) => p.length);
      };
      expect(Math.floor(AUTO_LOGITS_BYTES / (16 * 100_000 * 4))).toBe(10);
      expect(perPass(false)).toEqual(new Array(13).fill(10));
      expect(Math.floor(AUTO_PASS_TOKENS / 16)).toBe(128);
      expect(perPass(true)).toEqual([128, 2]);
      lm.logitsWidth = W;
    } finally {
      await lm.release();
    }
    const one = await CausalLM.open(base.path, { device: 'cpu', batchSize: 2 });
    expect(one.planPasses([5, 3, 5, 5, 3])).toEqual([[0, 1], [2, 3], [4]]);
    await one.release();
  });

  it('auto batching gives the sketches of one prompt a pass, in the prompts\' order, in one pass per length', async () => {
    const auto = await CausalLM.open(base.path, { device: 'cpu' });
    const single = await CausalLM.open(base.path, { device: 'cpu', batchSize: 1 });
    try {
      const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
      const prompts = words.map((_, i) => Array.from({ length: 2 + (i % 3) }, (_, j) => words[(i + j) % 8]).join(' '));
      const lengths = prompts.map((p) => auto.encode(p).length);
      const distinct = new Set(lengths).size;
      expect(distinct).toBeGreaterThan(1);
      expect(distinct).toBeLessThan(prompts.length);
      let runs = 0;
      const session = (auto as unknown as { session: { run: (...a: unknown[]) => unknown } }).session;
      const run = session.run.bind(session);
      session.run = (...a: unknown[]) => {
        runs++;
        return run(...a);
      };
      const a = await computeSketch(auto, prompts, 50, 'm');
      const b = await computeSketch(single, prompts, 50, 'm');
      expect(runs).toBe(distinct);
      expect(Array.from(a.set.lengths)).toEqual(Array.from(b.set.lengths));
      expect(Array.from(a.set.ids)).toEqual(Array.from(b.set.ids));
      const la = await auto.lastLogits(prompts.map((p) => auto.encode(p)));
      const lb = await single.lastLogits(prompts.map((p) => single.encode(p)));
      expect(maxAbsDiff(la.logits, lb.logits)).toBeLessThan(1e-4);
    } finally {
      await auto.release();
      await single.release();
    }
  });

  it('finds the ONNX file and tokenizer in a Hugging Face cache snapshot', () => {
    const repo = path.join(work, 'hub', 'models--org--tiny-model');
    const snap = path.join(repo, 'snapshots', 'abc123');
    copyModel(base.path, snap);
    fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'refs', 'main'), 'abc123');
    const viaSnap = resolveModel(snap);
    expect(viaSnap.id).toBe('org/tiny-model');
    expect(viaSnap.onnxPath).toBe(path.join(snap, 'onnx', 'model.onnx'));
    const viaRepo = resolveModel(repo);
    expect(viaRepo.dir).toBe(snap);
    const viaFile = resolveModel(path.join(snap, 'onnx', 'model.onnx'));
    expect(viaFile.tokenizerPath).toBe(path.join(snap, 'tokenizer.json'));
  });

  it('says precisely what it cannot run, each with its own code', async () => {
    const mk = (name: string, files: Record<string, string | Buffer>) => {
      const d = path.join(work, name);
      fs.mkdirSync(d, { recursive: true });
      for (const [f, c] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
        fs.writeFileSync(path.join(d, f), c);
      }
      return d;
    };
    await expectCode(mk('gguf', { 'model-Q4_K_M.gguf': 'GGUF\u0003' }), 'bad_gguf');
    await expectCode(mk('mlx', { 'config.json': '{"model_type":"llama","quantization":{"group_size":64,"bits":4}}', 'model.safetensors': 'x' }), 'unsupported_mlx');
    await expectCode(mk('st', { 'config.json': '{"model_type":"mamba"}', 'model.safetensors': 'x' }), 'unsupported_architecture');
    await expectCode(mk('st-corrupt', { 'config.json': '{"model_type":"llama","vocab_size":8,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":1}', 'model.safetensors': 'x' }), 'corrupt_safetensors');
    await expectCode(
      mk('bnb', { 'config.json': '{"model_type":"llama","quantization_config":{"quant_method":"bitsandbytes","load_in_4bit":true}}', 'model.safetensors': 'x' }),
      'corrupt_safetensors',
    );
    await expectCode(path.join(work, 'does-not-exist'), 'not_found');

    const noTok = copyModel(base.path, path.join(work, 'no-tokenizer'));
    fs.rmSync(path.join(noTok, 'tokenizer.json'));
    await expectCode(noTok, 'missing_tokenizer');

    const other = models.find((m) => m.family !== base.family && !m.base_model && fs.readFileSync(path.join(m.path, 'tokenizer.json'), 'utf8') !== fs.readFileSync(path.join(base.path, 'tokenizer.json'), 'utf8'));
    expect(other, 'the zoo has a family with another vocabulary').toBeDefined();
    const bigTokVocab = JSON.parse(fs.readFileSync(path.join(other!.path, 'config.json'), 'utf8')).vocab_size as number;
    const baseVocab = JSON.parse(fs.readFileSync(path.join(base.path, 'config.json'), 'utf8')).vocab_size as number;
    const [small, big] = bigTokVocab > baseVocab ? [base, other!] : [other!, base];
    const mismatch = copyModel(small.path, path.join(work, 'mismatch'));
    fs.copyFileSync(path.join(big.path, 'tokenizer.json'), path.join(mismatch, 'tokenizer.json'));
    await expectCode(mismatch, 'tokenizer_mismatch');

    const corrupt = copyModel(base.path, path.join(work, 'corrupt'));
    const onnx = path.join(corrupt, 'onnx', 'model.onnx');
    const bytes = fs.readFileSync(onnx);
    fs.writeFileSync(onnx, bytes.subarray(0, Math.floor(bytes.length / 3)));
    await expectCode(corrupt, 'corrupt_onnx');

    const garbage = copyModel(base.path, path.join(work, 'garbage'));
    fs.writeFileSync(path.join(garbage, 'onnx', 'model.onnx'), Buffer.from('this is not a protobuf at all'.repeat(10)));
    await expectCode(garbage, 'corrupt_onnx');
  });

  it('rejects a model with unexpected inputs/outputs', async () => {
    const { writeIdentityModel } = await import('./helpers/onnx-fixtures.js');
    const d = copyModel(base.path, path.join(work, 'odd-io'));
    writeIdentityModel(path.join(d, 'onnx', 'model.onnx'));
    await expectCode(d, 'unexpected_io');
  });

  it('models inspect --json succeeds on every zoo model', () => {
    const r = runCli(['models', 'inspect', ...models.map((m) => m.path), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const all = parseJson<{ models: Array<{ runs: boolean; format: string; layers: number; vocab_size: number; logits_width: number; special_token_ids: number[] }> }>(r).models;
    expect(all).toHaveLength(models.length);
    for (const j of all) {
      expect(j).toMatchObject({ runs: true, format: 'onnx' });
      expect(j.layers).toBeGreaterThan(0);
      expect(j.logits_width).toBe(j.vocab_size);
      expect(j.special_token_ids.length).toBeGreaterThan(0);
    }
  });

  it('models inspect says why a model does not run (exit 1)', () => {
    const d = path.join(work, 'gguf2');
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'm.gguf'), 'GGUF');
    const r = runCli(['models', 'inspect', d, '--json']);
    expect(r.code).toBe(1);
    expect(parseJson<{ runs: boolean; error: { code: string } }>(r)).toMatchObject({ runs: false, error: { code: 'bad_gguf' } });
  });

  it('--device cuda without a CUDA provider is a clear error; auto falls back to the CPU', async () => {
    const err = await CausalLM.open(base.path, { device: 'cuda' }).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('E_DEVICE');
    const lm = await CausalLM.open(base.path, { device: 'auto' });
    expect(lm.device).toBe('cpu');
    await lm.release();
  });
});
