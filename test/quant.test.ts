/**
 * GPTQ and AWQ checkpoints against the library that wrote them: the fixtures were
 * quantized and saved by gptqmodel and their reference logits computed by transformers
 * loading them (tools/gen_quant_fixtures.py, test/fixtures/quant/README.md); nothing here
 * needs Python.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CausalLM } from '../src/inference/session.js';
import { ROOT, parseJson, runCli } from './helpers/cli.js';
import { bottomK, expectCode, maxDiff, smallLineage, cacheAndWorkDirs } from './helpers/logits.js';
import { copyFixture, pokeTensor, readHeader, rewriteHeader, stFile } from './helpers/safetensors-edit.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'quant');
const HF = path.join(ROOT, 'test', 'fixtures', 'hf');

interface Reference {
  gptqmodel: string;
  prompts: string[];
  prompt_ids: number[][];
  models: Record<string, { base: string; method: string; quantization_config: Record<string, unknown>; kernel: string; logits: number[][]; logits_dequantized: number[][] }>;
}
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')) as Reference;
const hfRef = JSON.parse(fs.readFileSync(path.join(HF, 'reference.json'), 'utf8')) as { models: Record<string, { logits: number[][] }> };

/**
 * max |diff| ≤ TOLERANCE × the reference logit range. Against transformers running the
 * checkpoint with gptqmodel's CPU kernel (half-precision arithmetic inside): the f32 bar,
 * 1e-3. Against the library's own dequantizer run in float32 (then transformers in
 * float32): EXACT, since both sides compute scale · (q − zero) in float32.
 */
const TOLERANCE = 1e-3;
const EXACT = 1e-5;

const { cache, work } = cacheAndWorkDirs('modelprint-quant');


describe('GPTQ / AWQ checkpoints match gptqmodel + transformers', () => {
  const names = Object.keys(ref.models);
  it('covers the variants the libraries write', () => {
    const q = names.map((n) => ({ n, ...ref.models[n].quantization_config }) as Record<string, unknown>);
    const gptq = q.filter((c) => c.quant_method === 'gptq');
    const awq = q.filter((c) => c.quant_method === 'awq');
    for (const bits of [2, 4, 8]) expect(gptq.some((c) => c.bits === bits), `gptq ${bits}-bit`).toBe(true);
    for (const v of [true, false]) {
      expect(gptq.some((c) => c.sym === v), `sym ${v}`).toBe(true);
      expect(gptq.some((c) => c.desc_act === v), `desc_act ${v}`).toBe(true);
    }
    for (const gs of [-1, 32, 64, 128]) expect(gptq.some((c) => c.group_size === gs), `group_size ${gs}`).toBe(true);
    expect(new Set(gptq.map((c) => c.checkpoint_format ?? c.format))).toEqual(new Set(['gptq', 'gptq_v2']));
    // a quantized head, which gptqmodel writes as a per-module `dynamic` override (8-bit lm_head)
    expect(gptq.some((c) => c.lm_head === true && c.dynamic && typeof c.dynamic === 'object')).toBe(true);
    // gptqmodel's AWQ: sym writes zero_point false (qzeros all 8), asym zero_point true
    expect(new Set(awq.map((c) => c.zero_point))).toEqual(new Set([true, false]));
    expect(awq.every((c) => (c.version ?? c.format) === 'gemm')).toBe(true);
    expect(new Set(names.map((n) => ref.models[n].base))).toEqual(new Set(['llama', 'qwen2', 'gpt_neox']));
  });

  for (const name of names) {
    it(`${name}: last-position logits and bottom-k sets`, async () => {
      const m = ref.models[name];
      const lm = await CausalLM.open(path.join(FIX, name), { device: 'cpu' });
      expect(lm.files.format).toBe('safetensors');
      const V = m.logits[0].length;
      const k = Math.min(2000, Math.floor(V / 4));
      for (let p = 0; p < ref.prompts.length; p++) {
        const { logits, width } = await lm.lastLogits([ref.prompt_ids[p]]);
        expect(width).toBe(V);
        const r = m.logits[p];
        const range = Math.max(...r) - Math.min(...r);
        expect(range).toBeGreaterThan(1);
        const diff = maxDiff(logits, r);
        const exact = maxDiff(logits, m.logits_dequantized[p]);
        if (process.env.QUANT_DIFFS) console.log(`DIFF ${name} ${p} kernel ${(diff / range).toExponential(2)} dequantized ${(exact / range).toExponential(2)}`);
        expect(diff, `${name} prompt ${p}: max |diff| ${diff} vs range ${range} (${m.kernel})`).toBeLessThanOrEqual(TOLERANCE * range);
        expect(exact, `${name} prompt ${p}: max |diff| ${exact} vs the library's float32 dequantization`).toBeLessThanOrEqual(EXACT * range);
        // Bottom-k against the float32 dequantization: the kernel's half-precision noise
        // (≈ 2e-4 × range) can swap a near-tie at the k-th place (one of 128 = 0.8 %).
        const a = bottomK(logits, k);
        const b = bottomK(m.logits_dequantized[p], k);
        const agree = [...a].filter((x) => b.has(x)).length / k;
        expect(agree, `${name} prompt ${p}: bottom-${k} agreement`).toBeGreaterThanOrEqual(0.995);
      }
      await lm.release();
    });
  }

  it('the quantized logits differ from the float base (the checkpoints are really quantized)', () => {
    for (const name of names) {
      const m = ref.models[name];
      expect(maxDiff(m.logits[0], hfRef.models[m.base].logits[0]), name).toBeGreaterThan(1e-3);
    }
  });

  it('--low-memory (dequantized right before use) gives the same logits', async () => {
    const name = names.find((n) => ref.models[n].quantization_config.desc_act === true)!;
    const dir = path.join(FIX, name);
    const a = await CausalLM.open(dir, { device: 'cpu' });
    const b = await CausalLM.open(dir, { device: 'cpu', lowMemory: true });
    const x = await a.lastLogits([ref.prompt_ids[0]]);
    const y = await b.lastLogits([ref.prompt_ids[0]]);
    expect(maxDiff(x.logits, y.logits)).toBeLessThan(1e-5);
    await a.release();
    await b.release();
    // two graphs, one dequantized file on disk (hard-linked into both folders)
    expect(a.files.onnxPath).not.toBe(b.files.onnxPath);
    const [da, db] = [a, b].map((m) => fs.statSync(path.join(path.dirname(m.files.onnxPath!), 'dequantized.bin')));
    expect(da.ino).toBe(db.ino);
    expect(da.nlink).toBeGreaterThanOrEqual(3);
  });

  for (const method of ['gptq', 'awq']) {
    it(`${method}: the float32 file is written once next to the cached graph, then reused`, async () => {
      const name = names.find((n) => ref.models[n].method === method)!;
      const d = path.join(work, `cached-${name}`);
      fs.cpSync(path.join(FIX, name), d, { recursive: true });
      const want = ref.models[name].logits_dequantized[0];
      const range = Math.max(...want) - Math.min(...want);
      const open = async () => {
        const lm = await CausalLM.open(d, { device: 'cpu' });
        const r = await lm.lastLogits([ref.prompt_ids[0]]);
        await lm.release();
        expect(maxDiff(r.logits, want)).toBeLessThanOrEqual(EXACT * range);
        return lm.files.onnxPath!;
      };
      const onnx = await open();
      expect(onnx.startsWith(cache)).toBe(true);
      const deq = path.join(path.dirname(onnx), 'dequantized.bin');
      // one float32 [out, in] per packed layer (64-byte aligned), sizes from the packed tensors' headers
      const j = readHeader(stFile(d)).json;
      const layers = Object.keys(j).filter((k) => k.endsWith('.qweight')).map((k) => k.slice(0, -8));
      expect(layers.length).toBeGreaterThan(0);
      const weights = layers.reduce((a, l) => a + j[`${l}.scales`].shape[1] * (method === 'gptq' ? j[`${l}.g_idx`].shape[0] : j[`${l}.qweight`].shape[0]), 0);
      const size = fs.statSync(deq).size;
      expect(size).toBeGreaterThanOrEqual(4 * weights);
      expect(size).toBeLessThan(4 * weights + 64 * layers.length);
      // the graph reads float32 weights: no packed tensor, no unpacking op
      const graph = fs.readFileSync(onnx);
      expect(graph.includes('qweight')).toBe(false);
      expect(graph.includes('BitShift')).toBe(false);
      const mtime = fs.statSync(deq).mtimeMs;
      expect(await open()).toBe(onnx);
      expect(fs.statSync(deq).mtimeMs).toBe(mtime);
    });
  }
});

describe('hostile and unsupported GPTQ / AWQ checkpoints', () => {
  const gptqName = () => Object.keys(ref.models).find((n) => ref.models[n].method === 'gptq' && ref.models[n].base === 'llama' && ref.models[n].quantization_config.bits === 4)!;
  const awqName = () => Object.keys(ref.models).find((n) => ref.models[n].method === 'awq')!;
  let n = 0;
  const mk = (src: string, edit: (dir: string) => void): string => copyFixture(path.join(FIX, src), path.join(work, `case-${n++}`), edit);
  const editConfig = (d: string, f: (q: Record<string, unknown>) => void) => {
    const file = path.join(d, 'config.json');
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as { quantization_config: Record<string, unknown> };
    f(c.quantization_config);
    fs.writeFileSync(file, JSON.stringify(c));
  };
  const T = 'model.layers.0.mlp.up_proj';

  it('qweight / qzeros / scales shapes are checked against config.json and each other, naming the tensor', async () => {
    const qw = mk(gptqName(), (d) =>
      rewriteHeader(stFile(d), (j) => {
        const [r, c] = j[`${T}.qweight`].shape;
        j[`${T}.qweight`].shape = [r * 2, c / 2];
      }),
    );
    await expectCode(qw, 'corrupt_safetensors', new RegExp(`"${T}\\.qweight" has shape .* implies`));
    const sc = mk(gptqName(), (d) =>
      rewriteHeader(stFile(d), (j) => {
        const [r, c] = j[`${T}.scales`].shape;
        j[`${T}.scales`].shape = [c, r];
      }),
    );
    await expectCode(sc, 'corrupt_safetensors', new RegExp(`"${T}\\.scales" has shape`));
    // 8 bits in config.json for 4-bit tensors: qweight has half the rows it should
    const bits = mk(gptqName(), (d) => editConfig(d, (q) => (q.bits = 8)));
    await expectCode(bits, 'corrupt_safetensors', /qweight" has shape .* gptq 8-bit/);
    const gs = mk(awqName(), (d) => editConfig(d, (q) => (q.group_size = 16)));
    await expectCode(gs, 'corrupt_safetensors', /qzeros" has shape|scales" has shape/);
    const dt = mk(gptqName(), (d) => rewriteHeader(stFile(d), (j) => (j[`${T}.qweight`].dtype = 'F32')));
    await expectCode(dt, 'corrupt_safetensors', new RegExp(`"${T}\\.qweight" has dtype F32, GPTQ stores I32`));
    // gptqmodel's per-module dynamic overrides: 8 bits for up_proj, whose tensors are 4-bit
    const dyn = mk(gptqName(), (d) => editConfig(d, (q) => (q.dynamic = { 'lm_head': { bits: 8 }, '+:.*\\.up_proj': { bits: 8, group_size: 32 } })));
    await expectCode(dyn, 'corrupt_safetensors', new RegExp(`"${T}\\.qweight" has shape .*8-bit group 32 by dynamic "\\+:\\.\\*\\\\\\.up_proj"`));
    const redos = mk(gptqName(), (d) => editConfig(d, (q) => (q.dynamic = { '-:(model|layers+)+x': {} })));
    await expectCode(redos, 'load_failed', /dynamic pattern "\(model\|layers\+\)\+x" nests quantifiers/);
    const missing = mk(gptqName(), (d) => rewriteHeader(stFile(d), (j) => delete j[`${T}.g_idx`]));
    await expectCode(missing, 'load_failed', new RegExp(`no tensor "${T}\\.g_idx"`));
  });

  it('non-finite scales and a float weight next to a packed one are named', async () => {
    const nan = mk(gptqName(), (dir) => {
      expect(readHeader(stFile(dir)).json[`${T}.scales`].dtype).toBe('F16');
      pokeTensor(stFile(dir), `${T}.scales`, (b) => b.writeUInt16LE(0x7e00, 2 * 3));
    });
    await expectCode(nan, 'corrupt_safetensors', new RegExp(`"${T}\\.scales": non-finite value at element 3`));
    const both = mk(gptqName(), (d) =>
      rewriteHeader(stFile(d), (j) => {
        j[`${T}.weight`] = { ...j[`${T}.scales`] };
      }),
    );
    await expectCode(both, 'corrupt_safetensors', new RegExp(`"${T}\\.weight": a float weight next to the packed "${T}\\.qweight"`));
  });

  it('g_idx values are checked against the number of groups', async () => {
    const d = mk(gptqName(), (dir) => pokeTensor(stFile(dir), `${T}.g_idx`, (b) => b.writeInt32LE(99, 4 * 5)));
    await expectCode(d, 'corrupt_safetensors', new RegExp(`"${T}\\.g_idx" row 5 names group 99, outside \\[0, 2\\)`));
  });

  it('unsupported bits, formats and versions keep a coded error naming what would be needed', async () => {
    await expectCode(mk(gptqName(), (d) => editConfig(d, (q) => (q.bits = 3))), 'unsupported_quantization', /3-bit GPTQ values, which straddle int32 words/);
    await expectCode(mk(gptqName(), (d) => editConfig(d, (q) => (q.bits = 6))), 'unsupported_quantization', /6-bit GPTQ unpacker/);
    await expectCode(mk(gptqName(), (d) => editConfig(d, (q) => ((q.checkpoint_format = 'marlin'), (q.format = 'marlin')))), 'unsupported_quantization', /checkpoint_format "marlin".*marlin weight layout/);
    await expectCode(mk(gptqName(), (d) => editConfig(d, (q) => (q.pack_dtype = 'int16'))), 'unsupported_quantization', /pack_dtype int16/);
    await expectCode(mk(gptqName(), (d) => editConfig(d, (q) => (q.dynamic = { '.*down_proj.*': { bits: 3 } }))), 'unsupported_quantization', /dynamic override ".\*down_proj\.\*" sets bits 3/);
    await expectCode(mk(awqName(), (d) => editConfig(d, (q) => ((q.version = 'gemv'), (q.format = 'gemv'), (q.checkpoint_format = 'gemv')))), 'unsupported_quantization', /AWQ checkpoint in version "gemv".*gemm/);
    await expectCode(mk(gptqName(), (d) => editConfig(d, (q) => (q.quant_method = 'hqq'))), 'unsupported_quantization', /HQQ/);
    // GPT-2 (Conv1D): no library loads gptqmodel's GPT-2 checkpoints to check against
    const gpt2 = path.join(work, 'gpt2-gptq');
    fs.cpSync(path.join(HF, 'gpt2'), gpt2, { recursive: true });
    const cfgFile = path.join(gpt2, 'config.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), quantization_config: { quant_method: 'gptq', bits: 4, group_size: 32 } }));
    await expectCode(gpt2, 'unsupported_quantization', /GPTQ checkpoint of model_type gpt2.*Conv1D/);
  });

  it('a GPTQ config.json over float weights is named, not run as if quantized', async () => {
    const d = path.join(work, 'float-with-gptq-config');
    fs.cpSync(path.join(HF, 'llama'), d, { recursive: true });
    const file = path.join(d, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), quantization_config: { quant_method: 'gptq', bits: 4, group_size: 32 } }));
    await expectCode(d, 'load_failed', /no tensor of the checkpoint is packed/);
  });
});

describe('GPTQ / AWQ through the CLI', () => {
  it('models inspect shows the format and the quantization', () => {
    const name = Object.keys(ref.models).find((n) => ref.models[n].method === 'gptq')!;
    const r = runCli(['models', 'inspect', path.join(FIX, name), '--json'], { env: { MODELPRINT_CACHE_DIR: cache } });
    expect(r.code, r.stderr).toBe(0);
    const j = parseJson<{ format: string; quantization: string; runs: boolean; logits_width: number }>(r);
    expect(j).toMatchObject({ format: 'safetensors', runs: true, logits_width: 512 });
    expect(j.quantization).toMatch(/^gptq \d-bit group/);
  });

  it('lineage finds each quantization derived from its float base', () => {
    const out = path.join(work, 'lineage.csv');
    const llamaQ = Object.keys(ref.models).filter((n) => ref.models[n].base === 'llama');
    const derived = [...llamaQ.map((n) => path.join(FIX, n)), path.join(HF, 'qwen2'), path.join(HF, 'gpt2')];
    const score = smallLineage(path.join(HF, 'llama'), derived, { out, cache });
    const unrelated = Math.max(score(path.join(HF, 'qwen2')), score(path.join(HF, 'gpt2')));
    for (const n of llamaQ) {
      const s = score(path.join(FIX, n));
      expect(s, n).toBeGreaterThan(unrelated + 0.2);
    }
  });
});
