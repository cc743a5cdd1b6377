/**
 * --low-memory on half-precision safetensors checkpoints: the matrices stay as stored
 * (bf16 / f16 external data) and each is cast to float32 right before its product, the
 * head in vocabulary chunks (src/formats/hf-decoder.ts, castAtUse). Checked against the
 * transformers reference logits (test/fixtures/hf), against the default graph, and, in an
 * ONNX Runtime profile, for the order that bounds the memory: no layer's casts before the
 * previous layer's products, one head chunk at a time.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareSafetensors } from '../src/formats/hf-checkpoint.js';
import { CausalLM } from '../src/inference/session.js';
import { DataType, decodeModel } from '../src/onnx/codec.js';
import { ROOT, tmpDir } from './helpers/cli.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'hf');

interface Reference {
  prompt_ids: number[][];
  models: Record<string, { dtype: string; logits: number[][] }>;
}
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')) as Reference;
const cfg = JSON.parse(fs.readFileSync(path.join(FIX, 'llama-bf16', 'config.json'), 'utf8')) as { num_hidden_layers: number; num_key_value_heads: number; head_dim: number; vocab_size: number; hidden_size: number };

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};
const range = (a: number[]) => Math.max(...a) - Math.min(...a);

let work: string;
beforeAll(() => {
  process.env.MODELPRINT_CACHE_DIR = tmpDir('modelprint-lowmem-cache-');
  work = tmpDir('modelprint-lowmem-');
});

describe('--low-memory casts half-precision weights at use', () => {
  for (const name of ['llama-bf16', 'llama-f16']) {
    it(`${name}: the reference logits, the default graph's logits, and the KV cache path`, async () => {
      const dir = path.join(FIX, name);
      const lean = await CausalLM.open(dir, { device: 'cpu', lowMemory: true });
      const full = await CausalLM.open(dir, { device: 'cpu' });
      try {
        expect(lean.files.onnxPath).not.toBe(full.files.onnxPath);
        for (const [p, ids] of ref.prompt_ids.entries()) {
          const want = ref.models[name].logits[p];
          const a = await lean.lastLogits([ids]);
          const b = await full.lastLogits([ids]);
          expect(a.width).toBe(want.length);
          expect(maxDiff(a.logits, want)).toBeLessThanOrEqual(1e-3 * range(want));
          // The same float32 weights either way: only the kernels' summation order differs.
          expect(maxDiff(a.logits, b.logits)).toBeLessThanOrEqual(1e-5 * range(want));
        }
        const seq = ref.prompt_ids[0];
        const { state } = await lean.startDecode([seq.slice(0, 3)]);
        let step: Float32Array | null = null;
        for (const t of seq.slice(3)) step = await lean.stepDecode(state, [t]);
        expect(maxDiff(step!, (await full.lastLogits([seq])).logits)).toBeLessThanOrEqual(1e-5 * range(ref.models[name].logits[0]));
      } finally {
        await lean.release();
        await full.release();
      }
    });
  }

  it('llama-bf16: equal-length prompts in one pass (auto batching) give the logits of one prompt a pass', async () => {
    const dir = path.join(FIX, 'llama-bf16');
    const auto = await CausalLM.open(dir, { device: 'cpu', lowMemory: true });
    const single = await CausalLM.open(dir, { device: 'cpu', lowMemory: true, batchSize: 1 });
    try {
      const n = Math.min(...ref.prompt_ids.map((p) => p.length));
      const prompts = [...ref.prompt_ids.map((p) => p.slice(0, n)), ref.prompt_ids[0].slice(0, n - 1)];
      expect(auto.lastPositionOnly).toBe(true);
      expect(auto.planPasses(prompts.map((p) => p.length))).toEqual([ref.prompt_ids.map((_, i) => i), [ref.prompt_ids.length]]);
      const a = await auto.lastLogits(prompts);
      const b = await single.lastLogits(prompts);
      const want = ref.models['llama-bf16'].logits[0];
      expect(a.width).toBe(b.width);
      expect(maxDiff(a.logits, b.logits)).toBeLessThanOrEqual(1e-5 * range(want));
    } finally {
      await auto.release();
      await single.release();
    }
  });

  const chunkRows = 100;
  const prepared = () => prepareSafetensors(path.join(FIX, 'llama-bf16'), 'llama-bf16', { castAtUse: true, headChunkBytes: chunkRows * cfg.hidden_size * 4 });

  it('keeps every matrix as stored and casts it after the activation it multiplies', () => {
    const g = decodeModel(fs.readFileSync(prepared().onnxPath)).graph!;
    const nodes = g.node ?? [];
    const producer = new Map<string, (typeof nodes)[number]>();
    for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n);
    const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
    const matrices = [...inits.values()].filter((t) => (t.dims ?? []).length === 2);
    expect(matrices.length).toBeGreaterThan(10);
    const headChunks = matrices.filter((t) => t.name!.includes('['));
    expect(headChunks).toHaveLength(Math.ceil(cfg.vocab_size / chunkRows));
    for (const t of matrices) {
      // As stored: bf16 external data, no float32 copy in the graph.
      expect(t.dataType, t.name!).toBe(DataType.BFLOAT16);
      expect((t.externalData ?? []).length, t.name!).toBeGreaterThan(0);
      const users = nodes.filter((n) => (n.input ?? []).includes(t.name!));
      expect(users.length, t.name!).toBeGreaterThan(0);
      for (const u of users) {
        if (u.opType === 'Gather') continue; // embedding rows: gathered in bf16, then cast
        expect(u.opType, `${t.name} → ${u.opType}`).toBe('Reshape');
        const keep = producer.get(u.input![1])!;
        expect(keep.opType).toBe('Mul');
        const shape = producer.get(keep.input![0])!;
        expect(shape.opType).toBe('Shape');
        // The shape of a computed activation, never of a constant.
        expect(inits.has(shape.input![0])).toBe(false);
        expect(producer.has(shape.input![0])).toBe(true);
        const casts = nodes.filter((n) => (n.input ?? []).includes(u.output![0]));
        expect(casts.map((c) => c.opType)).toEqual(['Cast']);
      }
    }
  });

  it('runs each layer\'s casts after the previous layer and one head chunk at a time (ONNX Runtime profile)', async () => {
    const prefix = path.join(work, 'profile');
    const session = await ort.InferenceSession.create(prepared().onnxPath, { enableProfiling: true, profileFilePrefix: prefix, enableCpuMemArena: false, enableMemPattern: false, logSeverityLevel: 4 });
    const ids = ref.prompt_ids[0];
    const n = ids.length;
    const i64 = (v: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), dims);
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids, [1, n]), attention_mask: i64(new Array(n).fill(1), [1, n]), position_ids: i64([...ids.keys()], [1, n]) };
    for (let i = 0; i < cfg.num_hidden_layers; i++) {
      for (const kind of ['key', 'value']) feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, cfg.num_key_value_heads, 0, cfg.head_dim]);
    }
    const out = await session.run(feeds);
    expect(out.logits.dims).toEqual([1, 1, cfg.vocab_size]);
    const want = ref.models['llama-bf16'].logits[0];
    expect(maxDiff(out.logits.data as Float32Array, want)).toBeLessThanOrEqual(1e-3 * range(want));
    await session.release();

    const file = fs.readdirSync(work).find((f) => f.startsWith('profile') && f.endsWith('.json'));
    const events = (JSON.parse(fs.readFileSync(path.join(work, file!), 'utf8')) as Array<{ cat?: string; name: string; ts: number; dur: number; args?: { op_name?: string } }>)
      .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'))
      .sort((a, b) => a.ts - b.ts);
    const of = (scope: string, op: string) => events.filter((e) => e.name.startsWith(`/${scope}/`) && e.args?.op_name === op);
    for (let i = 1; i < cfg.num_hidden_layers; i++) {
      const casts = of(`layers.${i}`, 'Cast');
      const prevGemms = of(`layers.${i - 1}`, 'Gemm');
      expect(casts.length).toBeGreaterThan(0);
      expect(prevGemms.length).toBeGreaterThan(0);
      const lastPrev = Math.max(...prevGemms.map((e) => e.ts + e.dur));
      for (const c of casts) expect(c.ts, c.name).toBeGreaterThanOrEqual(lastPrev);
    }
    // Head: cast, product, cast, product, …
    const head = events.filter((e) => e.name.startsWith('/head/') && (e.args?.op_name === 'Cast' || e.args?.op_name === 'Gemm')).map((e) => e.args!.op_name);
    const chunks = Math.ceil(cfg.vocab_size / chunkRows);
    expect(head).toEqual(Array.from({ length: chunks }, () => ['Cast', 'Gemm']).flat());
  });
});
