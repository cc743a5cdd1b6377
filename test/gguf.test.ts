/**
 * GGUF files against llama.cpp itself: the fixtures were converted by llama.cpp's
 * convert_hf_to_gguf.py, quantized by llama.cpp (llama-cpp-python's llama_model_quantize)
 * and their reference logits computed by llama.cpp (tools/gen_gguf_fixtures.py, see
 * test/fixtures/gguf/README.md); the dequantizers are checked against gguf-py's. Nothing
 * here needs Python.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CausalLM } from '../src/inference/session.js';
import { fingerprintKey, resolveModel, setGgufActivations } from '../src/inference/resolve.js';
import { dequantize, readGguf } from '../src/formats/gguf-file.js';
import { prepareGguf, quantOfFileName, tokenizerFromGguf } from '../src/formats/gguf.js';
import { llamaCppHooks, vecDotTypeOf } from '../src/formats/gguf-activations.js';
import { DataType, GraphBuilder } from '../src/zoo/onnx/graph.js';
import * as ort from 'onnxruntime-node';
import { ROOT, parseJson, runCli } from './helpers/cli.js';
import { bottomK, expectCode, maxDiff, smallLineage, cacheAndWorkDirs } from './helpers/logits.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'gguf');
const HF = path.join(ROOT, 'test', 'fixtures', 'hf');

interface Reference {
  llama_cpp_python: string;
  prompts: string[];
  hf_prompt_ids: number[][];
  files: Record<string, { arch: string; source: string; type: string; tensor_types: Record<string, number>; prompt_ids: number[][]; logits_f32_b64: string[]; dequantized_logits_f32_b64: string[] }>;
}
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')) as Reference;
const hfRef = JSON.parse(fs.readFileSync(path.join(HF, 'reference.json'), 'utf8')) as { models: Record<string, { logits: number[][] }> };

const f32s = (rows: string[]): Float32Array[] =>
  rows.map((b) => {
    const raw = Buffer.from(b, 'base64');
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  });

/**
 * Two references per file, both llama.cpp (CPU, KV cache in F32), each against the mode of
 * modelprint that computes it (--gguf-activations):
 * - `native` (default mode llama.cpp): llama.cpp on the file as it is. llama.cpp rounds the
 *   activations before each matmul with an F16 / quantized weight (fp16, or Q8_0 / Q8_1 /
 *   Q8_K blocks: ggml's vec_dot_type), and Gemma's GELU through an fp16 table; the graph
 *   does the same (src/formats/gguf-activations.ts).
 * - `dequantized` (mode float32): llama.cpp on a copy whose tensors gguf-py dequantized to
 *   F32, i.e. the dequantized weights in float32 arithmetic.
 *
 * `dequantized`: every file and prompt ≤ 1e-3 × the logit range (measured ≤ 4.4e-7, Gemma
 * 2.4e-5: llama.cpp's fp16 GELU table) and bottom-k agreement ≥ 99.5 % (measured 100 %).
 *
 * `native`: the emulation reproduces llama.cpp to float32 noise (≤ 1e-6 × range) on all but
 * a few prompts; on those, one activation lands on the other side of a rounding boundary of
 * its Q8 grid (the float32 sums before it differ from llama.cpp's in the last bit: ggml sums
 * integer block products, ONNX Runtime float products in another order), which moves the
 * logits by up to 3.7e-3 × range and, at k = 128 (vocabulary 512), can swap one token at the
 * edge of the bottom-k set (99.22 %): 3 of the 180 file × prompt pairs. So each prompt is held
 * to max |diff| ≤ 5e-3 × range and at most one swapped token, each file (its prompts pooled)
 * to ≥ 99.5 %, and all quantized files together to float32 noise (≤ 1e-5 × range) on ≥ 90 %
 * of their prompts (measured 133 of 140; the float32 path matches it on none). F16 and BF16
 * files flip fp16 / bf16 roundings the same way (≤ 2e-4 × range, always 100 %).
 */
const TOLERANCE = { native: 5e-3, dequantized: 1e-3 } as const;
const MIN_AGREEMENT = 0.995;
/** Per quantized file and prompt: max |diff| / range vs llama.cpp as is (collected for the aggregate check). */
const nativeDiffs: Array<{ name: string; prompt: number; rel: number }> = [];

const { cache, work } = cacheAndWorkDirs('modelprint-gguf');


describe('GGUF dequantization matches gguf-py (ggml-quants.c)', () => {
  it('every supported type, bit for bit', () => {
    const want = JSON.parse(fs.readFileSync(path.join(FIX, 'dequant.json'), 'utf8')) as { tensors: Record<string, { type: string; shape: number[]; values_f32_b64: string }> };
    const g = readGguf(path.join(FIX, 'dequant.gguf'));
    const types = Object.values(want.tensors).map((t) => t.type);
    for (const t of ['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K']) expect(types).toContain(t);
    const fd = fs.openSync(g.file, 'r');
    try {
      for (const [name, r] of Object.entries(want.tensors)) {
        const t = g.tensors.get(name)!;
        expect(t.typeName).toBe(r.type);
        expect([...t.dims].reverse()).toEqual(r.shape);
        const buf = Buffer.alloc(t.length);
        fs.readSync(fd, buf, 0, t.length, t.offset);
        const y = dequantize(buf, t.type, t.elements, { id: 'x', file: g.file, tensor: name });
        const raw = Buffer.from(r.values_f32_b64, 'base64');
        const e = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        expect(y.length).toBe(e.length);
        let bad = -1;
        for (let i = 0; i < e.length && bad < 0; i++) if (y[i] !== e[i]) bad = i;
        expect(bad, `${r.type}: element ${bad}: ${y[bad]} vs ${e[bad]}`).toBe(-1);
      }
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('GGUF files match llama.cpp', () => {
  const names = Object.keys(ref.files).sort();
  it('covers every architecture and type', () => {
    const types = ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K_M', 'Q5_K_M', 'Q6_K'];
    for (const a of ['llama', 'qwen2', 'mistral', 'gemma']) {
      for (const t of types) expect(names).toContain(`${a}-${t}.gguf`);
      // The wide checkpoints carry real K-quant blocks (rows of 256), not only llama.cpp's fallbacks.
      expect(ref.files[`${a}-wide-Q4_K_M.gguf`].tensor_types).toHaveProperty('Q4_K');
      expect(ref.files[`${a}-wide-Q4_K_M.gguf`].tensor_types).toHaveProperty('Q6_K');
      expect(ref.files[`${a}-wide-Q5_K_M.gguf`].tensor_types).toHaveProperty('Q5_K');
      // …and the small ones llama.cpp's fallbacks for rows of 64: Q5_0 (Q4_K_M), Q5_1 (Q5_K_M), Q8_0 (Q6_K).
      expect(ref.files[`${a}-Q4_K_M.gguf`].tensor_types).toHaveProperty('Q5_0');
      expect(ref.files[`${a}-Q5_K_M.gguf`].tensor_types).toHaveProperty('Q5_1');
      expect(ref.files[`${a}-Q4_0.gguf`].tensor_types).toHaveProperty('Q4_0');
    }
    for (const t of types.slice(1)) expect(names).toContain(`qwen3-${t}.gguf`);
    // BF16 and Q4_1 weights (activations to bf16, Q8_1 blocks): llama only.
    expect(ref.files['llama-BF16.gguf'].tensor_types).toHaveProperty('BF16');
    expect(ref.files['llama-Q4_1.gguf'].tensor_types).toHaveProperty('Q4_1');
    expect(names).toContain('llama-spm-Q8_0.gguf');
  });

  for (const name of names) {
    it(`${name}: tokenizer from the metadata, last-position logits and bottom-k sets`, async () => {
      const m = ref.files[name];
      let pooled = 0;
      let pooledK = 0;
      for (const [kind, mode, rows] of [
        ['native', undefined, f32s(m.logits_f32_b64)],
        ['dequantized', 'float32', f32s(m.dequantized_logits_f32_b64)],
      ] as const) {
        const lm = await CausalLM.open(path.join(FIX, name), { device: 'cpu', ggufActivations: mode });
        try {
          expect(lm.files.format).toBe('gguf');
          expect(lm.hasPast).toBe(true);
          const V = rows[0].length;
          const k = Math.min(2000, Math.floor(V / 4));
          for (let p = 0; p < ref.prompts.length; p++) {
            // the tokenizer.json built from tokenizer.ggml.* tokenizes as llama.cpp does
            expect(lm.encode(ref.prompts[p], false)).toEqual(m.prompt_ids[p]);
            const { logits, width } = await lm.lastLogits([m.prompt_ids[p]]);
            expect(width).toBe(V);
            const r = rows[p];
            let lo = Infinity;
            let hi = -Infinity;
            for (const x of r) {
              lo = Math.min(lo, x);
              hi = Math.max(hi, x);
            }
            const range = hi - lo;
            expect(range).toBeGreaterThan(1);
            const diff = maxDiff(r, logits);
            expect(diff, `${name} prompt ${p} vs ${kind}: max |diff| ${diff} vs range ${range}`).toBeLessThanOrEqual(TOLERANCE[kind] * range);
            const a = bottomK(r, k);
            const b = bottomK(logits, k);
            const same = [...a].filter((x) => b.has(x)).length;
            if (kind === 'dequantized') {
              expect(same / k, `${name} prompt ${p} vs ${kind}: bottom-${k} agreement`).toBeGreaterThanOrEqual(MIN_AGREEMENT);
            } else {
              expect(k - same, `${name} prompt ${p} vs ${kind}: tokens out of the bottom-${k} set`).toBeLessThanOrEqual(Math.max(1, Math.floor((1 - MIN_AGREEMENT) * k)));
              pooled += same;
              pooledK += k;
              if (!['F32', 'F16', 'BF16'].includes(m.type)) nativeDiffs.push({ name, prompt: p, rel: diff / range });
            }
          }
        } finally {
          await lm.release();
        }
      }
      expect(pooled / pooledK, `${name}: bottom-k agreement of its prompts pooled vs llama.cpp as is`).toBeGreaterThanOrEqual(MIN_AGREEMENT);
    });
  }

  it('the emulation reproduces llama.cpp on quantized files to float32 noise on ≥ 90 % of the prompts', () => {
    expect(nativeDiffs.length).toBeGreaterThan(100);
    const exact = nativeDiffs.filter((d) => d.rel <= 1e-5);
    const off = nativeDiffs.filter((d) => d.rel > 1e-5).map((d) => `${d.name}#${d.prompt}: ${d.rel.toExponential(2)}`);
    expect(exact.length / nativeDiffs.length, `off by a rounding flip: ${off.join(', ')}`).toBeGreaterThanOrEqual(0.9);
  });

  it('F32 GGUFs also match transformers on the source checkpoint (Q/K permutation, llama3 rope_freqs, Gemma norms undone)', async () => {
    for (const a of ['llama', 'qwen2', 'gemma']) {
      const lm = await CausalLM.open(path.join(FIX, `${a}-F32.gguf`), { device: 'cpu' });
      try {
        for (let p = 0; p < ref.prompts.length; p++) {
          const { logits } = await lm.lastLogits([ref.hf_prompt_ids[p]]);
          const r = hfRef.models[a].logits[p];
          const range = Math.max(...r) - Math.min(...r);
          expect(maxDiff(r, logits), `${a} prompt ${p}`).toBeLessThanOrEqual(1e-3 * range);
        }
      } finally {
        await lm.release();
      }
    }
  });

  it('the second open reuses the cached float32 weights and graph', () => {
    const f = path.join(FIX, 'llama-Q4_0.gguf');
    const first = prepareGguf(f, 'x');
    const second = prepareGguf(f, 'x');
    expect(second.cached).toBe(true);
    expect(second.onnxPath).toBe(first.onnxPath);
    expect(first.quant).toBe('Q4_0');
    expect(fs.existsSync(path.join(first.dir, 'tokenizer.json'))).toBe(true);
  });
});

/** Round half to even (x86 _mm256_round_ps / nearest_int under the default rounding mode). */
function rne(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}
/** float32 → fp16 → float32, round half to even (normal and subnormal halves). */
function f16(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  let e = Math.floor(Math.log2(Math.abs(v)));
  if (2 ** e > Math.abs(v)) e--;
  if (2 ** (e + 1) <= Math.abs(v)) e++;
  const q = 2 ** (Math.max(e, -14) - 10);
  return rne(v / q) * q;
}
/** ggml-cpu arch/x86/quants.c quantize_row_q8_0 (AVX2), dequantized: one block of 32. */
function q8_0Ref(x: Float32Array): number[] {
  const amax = Math.max(...Array.from(x, Math.abs));
  const d = f16(Math.fround(amax / 127));
  const id = amax !== 0 ? Math.fround(127 / amax) : 0;
  return Array.from(x, (v) => Math.fround(Math.max(-128, Math.min(127, rne(Math.fround(v * id)))) * d));
}
/** ggml-quants.c quantize_row_q8_K_ref, dequantized: one block of 256. */
function q8_KRef(x: Float32Array): number[] {
  let amax = 0;
  let max = 0;
  for (const v of x) {
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  if (!amax) return Array.from(x, () => 0);
  const iscale = Math.fround(-127 / max);
  const d = Math.fround(1 / iscale);
  return Array.from(x, (v) => Math.fround(Math.min(127, rne(Math.fround(iscale * v))) * d));
}

describe('llama.cpp activation rounding (ONNX ops vs a port of ggml)', () => {
  it('Q8_0, Q8_1 and Q8_K blocks, fp16 and bf16, with ties, zero blocks and negative maxima', async () => {
    expect([vecDotTypeOf('Q4_0'), vecDotTypeOf('Q5_1'), vecDotTypeOf('Q6_K'), vecDotTypeOf('F16'), vecDotTypeOf('F32')]).toEqual(['q8_0', 'q8_1', 'q8_K', 'f16', null]);
    const K = 512;
    const rows = 3;
    const x = new Float32Array(rows * K);
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    for (let i = 0; i < x.length; i++) x[i] = Math.fround(rand() * 3 * (1 + (i % 7)));
    // row 1: exact ties of the Q8 grids (amax 127 → scale 1), a zero block of 32, a zero block of 256
    for (let i = 0; i < K; i++) x[K + i] = [127, 2.5, -3.5, 0.5, -0.5, 126.5, 1.5][i % 7];
    for (let i = 64; i < 96; i++) x[K + i] = 0;
    for (let i = 256; i < 512; i++) x[K + i] = 0;
    // row 2: the largest |x| negative (Q8_K's iscale = -127/max is positive then)
    x[2 * K + 3] = -50;
    x[2 * K + 300] = -60;
    const types = new Map([
      ['w.q8_0', 'Q8_0'],
      ['w.q8_1', 'Q5_1'],
      ['w.q8_K', 'Q4_K'],
      ['w.f16', 'F16'],
      ['w.bf16', 'BF16'],
      ['w.f32', 'F32'],
    ]);
    const g = new GraphBuilder('t');
    const input = g.input('x', DataType.FLOAT, [rows, K]);
    const hooks = llamaCppHooks(types, new Map());
    for (const w of types.keys()) g.output(w, DataType.FLOAT, [rows, K], hooks.linear!(g, input, w, K).x);
    // the same activation and type give the same rounded tensor (q, k and v share one)
    expect(hooks.linear!(g, input, 'w.q8_0', K).x).toBe(hooks.linear!(g, input, 'w.q8_0', K).x);
    const s = await ort.InferenceSession.create(g.encode({ producerName: 't', producerVersion: '1' }));
    const out = await s.run({ x: new ort.Tensor('float32', x, [rows, K]) });
    // int8 quants have no −0 (ONNX Round keeps the sign of −0.3 → −0; it multiplies the same)
    const z = (a: ArrayLike<number>) => Array.from(a, (v) => (v === 0 ? 0 : v));
    const got = (w: string) => Float32Array.from(z(out[w].data as Float32Array));
    const want = (B: number, f: (b: Float32Array) => number[]) => {
      const r: number[] = [];
      for (let i = 0; i < x.length; i += B) r.push(...f(x.subarray(i, i + B)));
      return r;
    };
    const q80 = z(want(32, q8_0Ref));
    expect(Array.from(got('w.q8_0'))).toEqual(q80);
    expect(Array.from(got('w.q8_1'))).toEqual(q80);
    expect(Array.from(got('w.q8_K'))).toEqual(z(want(256, q8_KRef)));
    expect(Array.from(got('w.f16'))).toEqual(Array.from(x, f16));
    const bf16 = (v: number) => {
      const b = new Float32Array([v]);
      const u = new Uint32Array(b.buffer);
      u[0] = (u[0] + 0x7fff + ((u[0] >> 16) & 1)) & 0xffff0000; // ggml_compute_fp32_to_bf16
      return b[0];
    };
    expect(Array.from(got('w.bf16'))).toEqual(Array.from(x, bf16));
    expect(got('w.f32')).toEqual(x);
    // the ties went to even, the zero blocks stayed 0 (not NaN)
    expect(Array.from(got('w.q8_0').subarray(K, K + 7))).toEqual([127, 2, -4, 0, 0, 126, 2]);
    expect(Array.from(got('w.q8_K').subarray(K + 256, 2 * K)).every((v) => v === 0)).toBe(true);
    expect(Array.from(got('w.q8_0').subarray(K + 64, K + 96)).every((v) => v === 0)).toBe(true);
    await s.release();
  });
});

describe('--gguf-activations', () => {
  it('llama.cpp (default) and float32 build different graphs, cached apart, and key fingerprints apart', async () => {
    const f = path.join(FIX, 'qwen2-Q4_K_M.gguf');
    const def = prepareGguf(f, 'x');
    const f32 = prepareGguf(f, 'x', { activations: 'float32' });
    expect(def.activations).toBe('llama.cpp');
    expect(f32.activations).toBe('float32');
    expect(f32.dir).not.toBe(def.dir);
    const onnx = (p: string) => fs.readFileSync(p).toString('latin1');
    // Round (the Q8_0 quants) and the fp16 scale only in the emulating graph.
    expect(onnx(def.onnxPath)).toContain('Round');
    expect(onnx(f32.onnxPath)).not.toContain('Round');
    // An F32 file has nothing to round (except Gemma's GELU table).
    expect(onnx(prepareGguf(path.join(FIX, 'llama-F32.gguf'), 'x').onnxPath)).not.toContain('Round');
    // The two modes give different logits on a quantized file.
    const m = ref.files['qwen2-Q4_K_M.gguf'];
    const logits: Float32Array[] = [];
    for (const mode of ['llama.cpp', 'float32'] as const) {
      const lm = await CausalLM.open(f, { device: 'cpu', ggufActivations: mode });
      try {
        logits.push(Float32Array.from((await lm.lastLogits([m.prompt_ids[0]])).logits));
      } finally {
        await lm.release();
      }
    }
    expect(maxDiff(logits[0], logits[1])).toBeGreaterThan(1e-4);
    // Fingerprints stored before the emulation (float32) keep their key; the default gets its own.
    try {
      setGgufActivations('float32');
      expect(fingerprintKey(f, 'h')).toBe('h');
      setGgufActivations('llama.cpp');
      expect(fingerprintKey(f, 'h')).not.toBe('h');
      expect(() => setGgufActivations('int8')).toThrow(/GGUF activations "int8"/);
    } finally {
      setGgufActivations(undefined);
    }
    expect(fingerprintKey(f, 'h')).toBe(fingerprintKey(f, 'h'));
    expect(fingerprintKey(path.join(HF, 'llama'), 'h')).toBe('h');
  });

  it('the CLI flag reaches the GGUF preparation; an unknown mode is refused', () => {
    const f = path.join(FIX, 'llama-Q8_0.gguf');
    const r = runCli(['models', 'inspect', f, '--gguf-activations', 'float32', '--json'], { env: { MODELPRINT_CACHE_DIR: cache } });
    expect(r.code, r.stderr).toBe(0);
    expect(prepareGguf(f, 'x', { activations: 'float32' }).cached).toBe(true);
    const bad = runCli(['models', 'inspect', f, '--gguf-activations', 'int8', '--json'], { env: { MODELPRINT_CACHE_DIR: cache } });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/int8/);
    const env = runCli(['models', 'inspect', f, '--json'], { env: { MODELPRINT_CACHE_DIR: cache, MODELPRINT_GGUF_ACTIVATIONS: 'fp8' } });
    expect(env.code).not.toBe(0);
    expect(env.stdout + env.stderr).toMatch(/GGUF activations "fp8"/);
  });
});

describe('GGUF tokenizer token types', () => {
  it('marks control and unused (padding) tokens special, so prompt generation never samples them', () => {
    const g = readGguf(path.join(FIX, 'llama-Q8_0.gguf'));
    const n = (g.metadata.get('tokenizer.ggml.tokens') as string[]).length;
    const types = Array.from({ length: n }, () => 1);
    types[n - 1] = 5; // UNUSED, as convert_hf_to_gguf.py writes the [PAD…] rows
    types[n - 2] = 3; // CONTROL
    types[n - 3] = 4; // USER_DEFINED: added, not special
    g.metadata.set('tokenizer.ggml.token_type', types);
    const t = tokenizerFromGguf(g, 'llama')!.tokenizer as { added_tokens: { id: number; special: boolean }[] };
    const byId = new Map(t.added_tokens.map((a) => [a.id, a.special]));
    expect(byId.get(n - 1)).toBe(true);
    expect(byId.get(n - 2)).toBe(true);
    expect(byId.get(n - 3)).toBe(false);
    expect(byId.has(0)).toBe(false);
  });
});

describe('a folder of GGUF quantizations', () => {
  it('picks one file by --gguf-quant (default: full precision first)', () => {
    const d = path.join(work, 'quants');
    fs.mkdirSync(d, { recursive: true });
    for (const t of ['Q4_0', 'Q8_0', 'F16']) fs.copyFileSync(path.join(FIX, `llama-${t}.gguf`), path.join(d, `tiny-llama.${t}.gguf`));
    expect(quantOfFileName('Qwen2.5-0.5B-Instruct-Q4_K_M.gguf')).toBe('Q4_K_M');
    expect(quantOfFileName('model-f16.gguf')).toBe('F16');
    expect(resolveModel(d).onnxFile).toBe('tiny-llama.F16.gguf');
    expect(resolveModel(d, { ggufQuant: 'q4_k_m,Q8_0' }).onnxFile).toBe('tiny-llama.Q8_0.gguf');
    expect(resolveModel(d, { ggufQuant: 'Q4_0' }).onnxFile).toBe('tiny-llama.Q4_0.gguf');
    expect(() => resolveModel(d, { ggufQuant: 'Q2_K' })).toThrow(/none of the GGUF files.*Q2_K/);
    // The CLI flag reaches the resolver: inspect reports the file it picked.
    const r = runCli(['models', 'inspect', d, '--gguf-quant', 'Q4_0', '--json'], { env: { MODELPRINT_CACHE_DIR: cache } });
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson<{ format: string; runs: boolean }>(r)).toMatchObject({ format: 'gguf', runs: true });
  });
});

describe('GGUF in the registry and the Hugging Face cache', () => {
  it('models add --gguf-quant registers the file it picks', () => {
    const d = path.join(work, 'quants-add');
    fs.mkdirSync(d, { recursive: true });
    for (const t of ['Q4_0', 'Q8_0']) fs.copyFileSync(path.join(FIX, `llama-${t}.gguf`), path.join(d, `tiny.${t}.gguf`));
    const r = runCli(['models', 'add', d, '--gguf-quant', 'Q4_0', '--name', 'tiny-q4', '--registry', path.join(work, 'add.db'), '--json'], { env: { MODELPRINT_CACHE_DIR: cache } });
    expect(r.code, r.stderr).toBe(0);
    expect(parseJson<{ source: string; format: string }>(r)).toMatchObject({ source: path.join(d, 'tiny.Q4_0.gguf'), format: 'gguf' });
  });

  it('a Hub id whose snapshot holds GGUF files (links into blobs) resolves in the cache', async () => {
    const hub = path.join(work, 'hub');
    const repo = path.join(hub, 'models--someorg--tiny-gguf');
    const snap = path.join(repo, 'snapshots', 'r1');
    fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
    fs.mkdirSync(snap, { recursive: true });
    fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'refs', 'main'), 'r1');
    for (const t of ['Q8_0', 'F16']) {
      fs.copyFileSync(path.join(FIX, `qwen2-${t}.gguf`), path.join(repo, 'blobs', `blob-${t}`));
      fs.symlinkSync(path.join('..', '..', 'blobs', `blob-${t}`), path.join(snap, `tiny-gguf-${t}.gguf`));
    }
    const old = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = hub;
    try {
      const lm = await CausalLM.open('someorg/tiny-gguf', { device: 'cpu', ggufQuant: 'Q8_0' });
      try {
        expect(lm.id).toBe('someorg/tiny-gguf');
        expect(lm.files.format).toBe('gguf');
        expect(lm.files.onnxFile).toBe('tiny-gguf-Q8_0.gguf');
        expect(lm.files.hub).toMatchObject({ repoId: 'someorg/tiny-gguf', revision: 'r1' });
        const m = ref.files['qwen2-Q8_0.gguf'];
        const { logits } = await lm.lastLogits([m.prompt_ids[0]]);
        const r = f32s(m.logits_f32_b64)[0];
        expect(maxDiff(r, logits)).toBeLessThan(TOLERANCE.native * (Math.max(...r) - Math.min(...r)));
      } finally {
        await lm.release();
      }
    } finally {
      if (old === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = old;
    }
  });
});

describe('hostile GGUF files give coded errors', () => {
  const src = () => fs.readFileSync(path.join(FIX, 'llama-F32.gguf'));
  const write = (name: string, buf: Buffer) => {
    const f = path.join(work, 'hostile', `${name}.gguf`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, buf);
    return f;
  };
  /** Byte position just after the tensor name `name` in the tensor infos (n_dims follows). */
  const afterName = (buf: Buffer, name: string) => {
    const needle = Buffer.concat([Buffer.from([name.length, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(name)]);
    const at = buf.indexOf(needle);
    expect(at).toBeGreaterThan(0);
    return at + needle.length;
  };

  it('truncated, bad magic, bad version, absurd counts and lengths', async () => {
    const b = src();
    await expectCode(write('tiny', b.subarray(0, 10)), 'bad_gguf', /fewer than a GGUF header/);
    await expectCode(write('cut-header', b.subarray(0, 2000)), 'bad_gguf', /past the end of the file|more than the rest/);
    await expectCode(write('cut-data', b.subarray(0, b.length - 5000)), 'bad_gguf', /outside the data section/);
    const magic = Buffer.from(b);
    magic.write('GGML', 0);
    await expectCode(write('magic', magic), 'bad_gguf', /bad magic/);
    const v = Buffer.from(b);
    v.writeUInt32LE(7, 4);
    await expectCode(write('version', v), 'bad_gguf', /version 7/);
    const tc = Buffer.from(b);
    tc.writeBigUInt64LE(1n << 60n, 8);
    await expectCode(write('tensor-count', tc), 'bad_gguf', /tensor count/);
    const kv = Buffer.from(b);
    kv.writeBigUInt64LE(0xffffffffffffffffn, 16);
    await expectCode(write('kv-count', kv), 'bad_gguf', /key\/value count/);
    const sl = Buffer.from(b);
    sl.writeBigUInt64LE(1n << 40n, 24);
    await expectCode(write('string-length', sl), 'bad_gguf', /length of key #0/);
    // tokenizer.ggml.tokens: key, type u32 (9 = array), element type u32 (8 = string), count u64
    const key = Buffer.from('tokenizer.ggml.tokens');
    const countAt = b.indexOf(key) + key.length + 8;
    expect(b.readUInt32LE(countAt - 8)).toBe(9);
    const arr = Buffer.from(b);
    arr.writeBigUInt64LE(1n << 40n, countAt);
    await expectCode(write('array-count', arr), 'bad_gguf', /element count of tokenizer\.ggml\.tokens/);
  });

  it('tensor dims, offsets, alignment and types are checked', async () => {
    const b = src();
    const name = 'blk.0.ffn_down.weight';
    // n_dims u32, then dims (2 × u64), type u32, offset u64
    const at = afterName(b, name);
    const dims = Buffer.from(b);
    dims.writeBigUInt64LE(1n << 40n, at + 4);
    await expectCode(write('dims', dims), 'bad_gguf', /ffn_down.*impossible|ffn_down.*more elements/);
    const nd = Buffer.from(b);
    nd.writeUInt32LE(9, at);
    await expectCode(write('ndims', nd), 'bad_gguf', /ffn_down.*9 dimensions/);
    const off = Buffer.from(b);
    off.writeBigUInt64LE(1n << 50n, at + 4 + 16 + 4);
    await expectCode(write('offset', off), 'bad_gguf', /ffn_down.*outside the data section/);
    const mis = Buffer.from(b);
    mis.writeBigUInt64LE(mis.readBigUInt64LE(at + 24) + 4n, at + 24);
    await expectCode(write('misaligned', mis), 'bad_gguf', /ffn_down.*not aligned/);
    const unknown = Buffer.from(b);
    unknown.writeUInt32LE(99, at + 20);
    await expectCode(write('unknown-type', unknown), 'unsupported_gguf_type', /ffn_down.*unknown ggml type 99/);
    const q81 = Buffer.from(b);
    q81.writeUInt32LE(9, at + 20); // Q8_1: a real type modelprint does not dequantize
    await expectCode(write('q8_1', q81), 'unsupported_gguf_type', /ffn_down.*Q8_1/);
  });

  it('an unsupported architecture is named', async () => {
    const b = src();
    const at = b.indexOf(Buffer.from('general.architecture'));
    const arch = Buffer.from(b);
    // value: type u32 (8 = string), length u64 (5), "llama"
    const valueAt = at + 'general.architecture'.length + 4 + 8;
    expect(arch.subarray(valueAt, valueAt + 5).toString()).toBe('llama');
    arch.write('mamba', valueAt);
    await expectCode(write('arch', arch), 'unsupported_architecture', /GGUF architecture "mamba"/);
  });
});

describe('lineage through the CLI on GGUF files', () => {
  it('a GGUF quantization of the llama checkpoint scores against its safetensors base above unrelated models', () => {
    const out = path.join(work, 'lineage.csv');
    const derived = ['llama-Q8_0.gguf', 'llama-Q4_K_M.gguf', 'qwen2-F16.gguf', 'gemma-Q8_0.gguf'].map((n) => path.join(FIX, n));
    const scoreOf = smallLineage(path.join(HF, 'llama'), derived, { out, cache, registry: path.join(work, 'reg.db') });
    const score = (n: string) => scoreOf(path.join(FIX, n));
    expect(score('llama-Q8_0.gguf')).toBeGreaterThan(0.9);
    expect(score('llama-Q4_K_M.gguf')).toBeGreaterThan(0.6);
    expect(score('llama-Q4_K_M.gguf')).toBeGreaterThan(score('qwen2-F16.gguf') + 0.2);
    expect(score('llama-Q4_K_M.gguf')).toBeGreaterThan(score('gemma-Q8_0.gguf') + 0.2);
  });
});

describe('GPTQ / AWQ / bitsandbytes checkpoints', () => {
  const mk = (name: string, quant: Record<string, unknown>) => {
    const d = path.join(work, 'quant', name);
    fs.mkdirSync(d, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(HF, 'llama', 'config.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...cfg, quantization_config: quant }));
    fs.copyFileSync(path.join(HF, 'llama', 'model.safetensors'), path.join(d, 'model.safetensors'));
    return d;
  };
  it('each is detected and named, with what running it would need', async () => {
    // GPTQ and AWQ GEMM run (test/quant.test.ts); their unsupported variants are named.
    const gptq = await expectCode(mk('gptq', { quant_method: 'gptq', bits: 3, group_size: 128, desc_act: false }), 'unsupported_quantization', /GPTQ.*bits 3.*3-bit GPTQ values/);
    expect(gptq.hint).toMatch(/full-precision base|dequantize/);
    await expectCode(mk('awq', { quant_method: 'awq', bits: 4, group_size: 128, version: 'gemv' }), 'unsupported_quantization', /AWQ.*"gemv"/);
    await expectCode(mk('bnb4', { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4' }), 'unsupported_bitsandbytes', /BITSANDBYTES.*4-bit.*NF4/);
    await expectCode(mk('bnb8', { load_in_8bit: true }), 'unsupported_bitsandbytes', /8-bit/);
    await expectCode(mk('hqq', { quant_method: 'hqq' }), 'unsupported_quantization', /HQQ/);
  });
});
