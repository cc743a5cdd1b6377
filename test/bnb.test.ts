/**
 * bitsandbytes checkpoints (NF4, NF4 + double quant, FP4, LLM.int8()) against transformers
 * + bitsandbytes: the fixtures and their reference logits were written by
 * tools/gen_bnb_fixtures.py (see test/fixtures/bnb/README.md); nothing here needs Python.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CausalLM } from '../src/inference/session.js';
import { halfBytes, roundBf16, roundF16 } from '../src/formats/quant-bnb.js';
import { readCsvFile } from '../src/util/csv.js';
import { ROOT, parseJson, runCli } from './helpers/cli.js';
import { bottomK, expectCode, maxDiff, smallLineage, cacheAndWorkDirs } from './helpers/logits.js';
import { copyFixture, pokeTensor, readHeader, rewriteHeader, stFile } from './helpers/safetensors-edit.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'bnb');
const HF = path.join(ROOT, 'test', 'fixtures', 'hf');

interface Reference {
  prompts: string[];
  prompt_ids: number[][];
  /** bnb_logits: bitsandbytes' own forward where it differs from the dequantized model's (null: identical). */
  models: Record<string, { quant: string | null; arch?: string; adapter?: boolean; logits: number[][]; bnb_logits?: number[][] | null }>;
}
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')) as Reference;
const hfRef = JSON.parse(fs.readFileSync(path.join(HF, 'reference.json'), 'utf8')) as Reference;

/**
 * max |Δlogit| allowed against the dequantized float32 reference, as a fraction of its logit
 * range: the dequantization is bit-exact, so only float32 summation order differs (measured
 * ≤ 3e-7 of the range).
 */
const TOLERANCE = 1e-5;
/**
 * Against transformers + bitsandbytes' own forward: equal to the dequantized one for 4-bit
 * (the CPU backend dequantizes, then multiplies in float32); LLM.int8() also quantizes the
 * activations to int8 (outliers above 6 kept in float16), measured ≤ 0.9 % of the range.
 */
const BNB_TOLERANCE: Record<string, number> = { nf4: 1e-3, 'nf4-dq': 1e-3, fp4: 1e-3, int8: 2e-2, 'nf4-bf16': 1e-2, 'fp4-f16': 1e-2 };
/** Bottom-k agreement with bitsandbytes' own forward: LLM.int8()'s int8 activations move a token or two of 128 (measured ≥ 0.984). */
const BNB_AGREEMENT: Record<string, number> = { nf4: 0.995, 'nf4-dq': 0.995, fp4: 0.995, int8: 0.98, 'nf4-bf16': 0.98, 'fp4-f16': 0.98 };

const { cache, work } = cacheAndWorkDirs('modelprint-bnb');

const range = (r: number[]) => Math.max(...r) - Math.min(...r);

const quantized = Object.keys(ref.models).filter((n) => ref.models[n].quant);

describe('bitsandbytes checkpoints match transformers + bitsandbytes', () => {
  it('covers NF4, NF4 + double quant, FP4 and LLM.int8() on llama, qwen2 and gpt2 (Conv1D), and bfloat16 / float16 quant_states', () => {
    for (const n of ['llama-nf4', 'llama-int8', 'qwen2-nf4-dq', 'qwen2-int8', 'qwen2-nf4-bf16', 'qwen2-fp4-f16', 'qwen2-nf4-dq-qlora', 'gpt2-nf4']) expect(quantized).toContain(n);
    expect(JSON.parse(fs.readFileSync(path.join(FIX, 'qwen2-fp4-f16', 'config.json'), 'utf8')).quantization_config).toMatchObject({ bnb_4bit_compute_dtype: 'float16' });
    const st = JSON.parse(fs.readFileSync(path.join(FIX, 'qwen2-nf4-bf16', 'config.json'), 'utf8')).quantization_config;
    expect(st).toMatchObject({ bnb_4bit_compute_dtype: 'bfloat16', bnb_4bit_use_double_quant: true });
    // The float base the generator quantized is the float32 fixture of test/fixtures/hf (same configs and seed).
    for (const a of ['llama', 'qwen2', 'gpt2']) expect(maxDiff(ref.models[a].logits[0], hfRef.models[a].logits[0])).toBeLessThan(1e-4);
  });

  it('quantization changes the logits (the fixtures are not float copies) and the variants differ', () => {
    for (const n of quantized) expect(maxDiff(ref.models[n].logits[0], ref.models[ref.models[n].arch!].logits[0]), n).toBeGreaterThan(0.01);
    expect(maxDiff(ref.models['qwen2-nf4-dq'].logits[0], ref.models['qwen2-fp4-f16'].logits[0])).toBeGreaterThan(0.01);
    expect(maxDiff(ref.models['qwen2-nf4-dq'].logits[0], ref.models['qwen2-nf4-bf16'].logits[0])).toBeGreaterThan(0);
    // bitsandbytes' own forward equals the dequantized model's for 4-bit in float32, not for LLM.int8() or half-precision compute.
    for (const n of ['llama-nf4', 'qwen2-nf4-dq', 'gpt2-nf4']) expect(ref.models[n].bnb_logits, n).toBeNull();
    for (const n of ['llama-int8', 'qwen2-int8', 'qwen2-nf4-bf16', 'qwen2-fp4-f16']) expect(ref.models[n].bnb_logits, n).toHaveLength(ref.prompts.length);
  });

  for (const name of quantized) {
    it(`${name}: last-position logits and bottom-k sets`, async () => {
      const m = ref.models[name];
      const lm = await CausalLM.open(path.join(FIX, name), { device: 'cpu' });
      // A (Q)LoRA adapter folder is a PEFT adapter; its base is the bitsandbytes checkpoint.
      expect(lm.files.format).toBe(m.adapter ? 'safetensors' : 'bitsandbytes');
      const V = m.logits[0].length;
      const k = Math.min(2000, Math.floor(V / 4));
      for (let p = 0; p < ref.prompts.length; p++) {
        expect(lm.encode(ref.prompts[p], false)).toEqual(ref.prompt_ids[p]);
        const { logits, width } = await lm.lastLogits([ref.prompt_ids[p]]);
        expect(width).toBe(V);
        for (const [which, r, tol, minAgree] of [
          ['dequantized', m.logits[p], TOLERANCE, 0.995],
          ['bitsandbytes forward', (m.bnb_logits ?? m.logits)[p], BNB_TOLERANCE[m.quant!], BNB_AGREEMENT[m.quant!]],
        ] as const) {
          const rg = range(r);
          expect(rg).toBeGreaterThan(1);
          const diff = maxDiff(logits, r);
          expect(diff, `${name} prompt ${p} vs ${which}: max |diff| ${diff} vs range ${rg}`).toBeLessThanOrEqual(tol * rg);
          const a = bottomK(logits, k);
          const b = bottomK(r, k);
          const agree = [...a].filter((x) => b.has(x)).length / k;
          expect(agree, `${name} prompt ${p}: bottom-${k} agreement with the ${which}`).toBeGreaterThanOrEqual(minAgree);
        }
      }
      await lm.release();
    });
  }

  it('the QLoRA adapter moves the logits of its 4-bit base (the LoRA path is not a no-op)', () => {
    expect(maxDiff(ref.models['qwen2-nf4-dq-qlora'].logits[0], ref.models['qwen2-nf4-dq'].logits[0])).toBeGreaterThan(0.5);
  });

  it('caches the dequantized graph, and writes it next to the weights when the cache is on another file system', async () => {
    const d = path.join(work, 'side-nf4');
    fs.cpSync(path.join(FIX, 'qwen2-nf4-dq'), d, { recursive: true });
    const want = ref.models['qwen2-nf4-dq'].logits[0];
    const check = async () => {
      const lm = await CausalLM.open(d, { device: 'cpu' });
      const r = await lm.lastLogits([ref.prompt_ids[0]]);
      await lm.release();
      expect(maxDiff(r.logits, want)).toBeLessThan(TOLERANCE * range(want));
      return lm.files.onnxPath!;
    };
    const onnx = await check();
    expect(onnx.startsWith(cache)).toBe(true);
    const deq = path.join(path.dirname(onnx), 'dequantized.bin');
    const mtime = fs.statSync(deq).mtimeMs;
    expect(await check()).toBe(onnx);
    expect(fs.statSync(deq).mtimeMs).toBe(mtime);
    if (fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').dev !== fs.statSync(d).dev) {
      const shm = fs.mkdtempSync('/dev/shm/modelprint-test-');
      process.env.MODELPRINT_CACHE_DIR = shm;
      try {
        const side = await check();
        expect(path.dirname(side)).toBe(d);
        const written = () => fs.readdirSync(d).filter((f) => f.startsWith('.modelprint-')).sort();
        expect(written()).toHaveLength(2);
        expect(written()).toContain(path.basename(side));
        const sideDeq = written().find((f) => f.endsWith('.dequantized.bin'))!;
        expect(sideDeq).toBeDefined();
        // --low-memory: another graph next to the weights, the same dequantized file (not rewritten)
        const mtime = fs.statSync(path.join(d, sideDeq)).mtimeMs;
        const lean = await CausalLM.open(d, { device: 'cpu', lowMemory: true });
        const r = await lean.lastLogits([ref.prompt_ids[0]]);
        await lean.release();
        expect(maxDiff(r.logits, want)).toBeLessThan(TOLERANCE * range(want));
        expect(path.dirname(lean.files.onnxPath!)).toBe(d);
        expect(lean.files.onnxPath).not.toBe(side);
        expect(written()).toHaveLength(3);
        expect(written().filter((f) => f.endsWith('.dequantized.bin'))).toEqual([sideDeq]);
        expect(fs.statSync(path.join(d, sideDeq)).mtimeMs).toBe(mtime);
      } finally {
        process.env.MODELPRINT_CACHE_DIR = cache;
        fs.rmSync(shm, { recursive: true, force: true });
      }
    }
  });

  it('writes the dequantized weights in the quant_state dtype: 2 bytes per weight for bfloat16 / float16, 4 for float32 and LLM.int8()', async () => {
    const perWeight: Record<string, number> = { 'qwen2-nf4-bf16': 2, 'qwen2-fp4-f16': 2, 'qwen2-nf4-dq': 4, 'qwen2-int8': 4 };
    for (const [name, bytes] of Object.entries(perWeight)) {
      const lm = await CausalLM.open(path.join(FIX, name), { device: 'cpu' });
      await lm.release();
      const h = readHeader(stFile(path.join(FIX, name))).json;
      // The quantized weights: packed uint8 ([n/2, 1], 4-bit) or int8 ([out, in]).
      let n = 0;
      for (const [k, t] of Object.entries(h)) if (/\.weight$/.test(k) && (t.dtype === 'U8' || t.dtype === 'I8')) n += t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'U8' ? 2 : 1);
      const size = fs.statSync(path.join(path.dirname(lm.files.onnxPath!), 'dequantized.bin')).size;
      expect(n).toBeGreaterThan(0);
      // Each tensor starts at a multiple of 64 bytes.
      expect(size, name).toBeGreaterThanOrEqual(n * bytes);
      expect(size, name).toBeLessThan(n * bytes + 64 * 40);
    }
  });

  it('--low-memory (each weight dequantized right before its use) gives the same logits, for every variant', async () => {
    for (const name of quantized) {
      const m = ref.models[name];
      const lm = await CausalLM.open(path.join(FIX, name), { device: 'cpu', lowMemory: true });
      const { logits } = await lm.lastLogits([ref.prompt_ids[1]]);
      await lm.release();
      const diff = maxDiff(logits, m.logits[1]);
      expect(diff, `${name}: max |diff| ${diff}`).toBeLessThanOrEqual(TOLERANCE * range(m.logits[1]));
    }
  });

  it('rounds to float16 / bfloat16 as torch does (ties to even, subnormals, overflow)', () => {
    expect(roundF16(1 + 2 ** -11)).toBe(1); // tie → even
    expect(roundF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundF16(Math.fround(0.1))).toBe(0.0999755859375);
    expect(roundF16(2 ** -24 * 0.6)).toBe(2 ** -24);
    expect(roundF16(65519)).toBe(65504);
    expect(roundF16(-65520)).toBe(-Infinity);
    expect(roundBf16(Math.fround(0.1))).toBe(0.10009765625);
    expect(roundBf16(1 + 2 ** -8)).toBe(1); // tie → even
    expect(roundBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
  });

  it('writes rounded values as their float16 / bfloat16 bits (normals, subnormals, signed zero, the largest half)', () => {
    const bits = (b: Buffer) => Array.from({ length: b.length / 2 }, (_, i) => b.readUInt16LE(2 * i));
    const h = [1, -(2 ** -14), 2 ** -24, -3 * 2 ** -24, 65504, 0, -0, roundF16(Math.fround(0.1))];
    expect(bits(halfBytes(Float32Array.from(h), 'F16'))).toEqual([0x3c00, 0x8400, 0x0001, 0x8003, 0x7bff, 0x0000, 0x8000, 0x2e66]);
    const b = [1, -2, roundBf16(Math.fround(0.1)), 2 ** -133, -0];
    expect(bits(halfBytes(Float32Array.from(b), 'BF16'))).toEqual([0x3f80, 0xc000, 0x3dcd, 0x0001, 0x8000]);
  });
});

describe('hostile and unsupported bitsandbytes checkpoints', () => {
  const mk = (name: string, from: string, edit: (dir: string) => void): string => copyFixture(path.join(FIX, from), path.join(work, name), edit);
  const Q = 'model.layers.0.self_attn.q_proj.weight';
  const STATE = `${Q}.quant_state.bitsandbytes__nf4`;
  /** Replaces the quant_state JSON (padded with spaces to its stored length). */
  const setState = (d: string, edit: (s: Record<string, unknown>) => void, file = stFile(d)) =>
    pokeTensor(file, STATE, (bytes) => {
      const s = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      edit(s);
      const text = Buffer.from(JSON.stringify(s));
      expect(text.length).toBeLessThanOrEqual(bytes.length);
      bytes.fill(0x20);
      text.copy(bytes);
    });
  const setConfig = (d: string, edit: (q: Record<string, unknown>) => void) => {
    const f = path.join(d, 'config.json');
    const c = JSON.parse(fs.readFileSync(f, 'utf8'));
    edit(c.quantization_config);
    fs.writeFileSync(f, JSON.stringify(c));
  };

  it('checks the quant_state JSON with its schema, naming file, tensor and field', async () => {
    await expectCode(mk('notjson', 'llama-nf4', (d) => pokeTensor(stFile(d), STATE, (b) => b.fill(0x7b))), 'corrupt_safetensors', /model\.safetensors: tensor ".*q_proj\.weight\.quant_state\.bitsandbytes__nf4": the quant_state is not JSON/);
    await expectCode(mk('noblock', 'llama-nf4', (d) => setState(d, (s) => delete s.blocksize)), 'corrupt_safetensors', /quant_state field blocksize/);
    await expectCode(mk('negblock', 'llama-nf4', (d) => setState(d, (s) => (s.blocksize = -64))), 'corrupt_safetensors', /quant_state field blocksize/);
    await expectCode(mk('badshape', 'llama-nf4', (d) => setState(d, (s) => (s.shape = [64, 'x']))), 'corrupt_safetensors', /quant_state field shape\.1/);
    await expectCode(mk('extra', 'qwen2-nf4-dq', (d) => setState(d, (s) => (s.evil = 1))), 'corrupt_safetensors', /quant_state field \(root\)/);
    await expectCode(mk('typename', 'llama-nf4', (d) => setState(d, (s) => (s.quant_type = 'fp4'))), 'corrupt_safetensors', /says quant_type fp4, its name says nf4/);
    await expectCode(mk('int3', 'llama-nf4', (d) => setState(d, (s) => (s.quant_type = 'int3'))), 'unsupported_bitsandbytes', /quant_type "int3".*needs a dequantizer/);
    await expectCode(mk('f64', 'llama-nf4', (d) => setState(d, (s) => (s.dtype = 'float64'))), 'unsupported_bitsandbytes', /dtype "float64"/);
  });

  it('checks shape, blocksize and absmax lengths against each other before allocating', async () => {
    // A shape that claims 2^40 values: refused from the packed weight's size, nothing allocated.
    await expectCode(mk('huge', 'qwen2-nf4-dq', (d) => setState(d, (s) => (s.shape = [1 << 20, 1 << 20]))), 'corrupt_safetensors', /q_proj\.weight": 2048 packed bytes, quant_state shape \[1048576, 1048576\] needs 549755813888/);
    await expectCode(mk('shape', 'llama-nf4', (d) => setState(d, (s) => (s.shape = [64, 65]))), 'corrupt_safetensors', /2048 packed bytes.*needs 2080/);
    await expectCode(mk('block', 'llama-nf4', (d) => setState(d, (s) => (s.blocksize = 32))), 'corrupt_safetensors', /q_proj\.weight\.absmax": 64 values, the quant_state implies 128/);
    await expectCode(mk('nblock', 'qwen2-nf4-dq', (d) => setState(d, (s) => (s.nested_blocksize = 16))), 'corrupt_safetensors', /nested_absmax": 1 values, the quant_state implies 4/);
    await expectCode(mk('half-nested', 'qwen2-nf4-dq', (d) => setState(d, (s) => delete s.nested_offset)), 'corrupt_safetensors', /nested_\* fields but not nested_blocksize and nested_offset/);
    await expectCode(mk('noabsmax', 'llama-nf4', (d) => rewriteHeader(stFile(d), (j) => delete j[`${Q}.absmax`])), 'corrupt_safetensors', /q_proj\.weight": its quantization state has no tensor ".*q_proj\.weight\.absmax"/);
    await expectCode(mk('absdtype', 'qwen2-nf4-dq', (d) => rewriteHeader(stFile(d), (j) => (j[`${Q}.nested_absmax`].dtype = 'I32'))), 'corrupt_safetensors', /nested_absmax": dtype I32, bitsandbytes writes F32/);
    await expectCode(mk('nan', 'llama-nf4', (d) => pokeTensor(stFile(d), `${Q}.absmax`, (b) => b.writeFloatLE(NaN, 8))), 'corrupt_safetensors', /q_proj\.weight\.absmax": non-finite value at element 2/);
    await expectCode(mk('qmnan', 'qwen2-nf4-dq', (d) => pokeTensor(stFile(d), `${Q}.nested_quant_map`, (b) => b.writeFloatLE(Infinity, 4 * 7))), 'corrupt_safetensors', /q_proj\.weight\.nested_quant_map": non-finite value at element 7/);
    // Finite codes and scales whose product overflows the dtype.
    await expectCode(mk('overflow', 'llama-nf4', (d) => (pokeTensor(stFile(d), `${Q}.quant_map`, (b) => b.writeFloatLE(3e38, 0)), pokeTensor(stFile(d), `${Q}.absmax`, (b) => { for (let i = 0; i < b.length; i += 4) b.writeFloatLE(10, i); }))), 'corrupt_safetensors', /model\.safetensors: tensor ".*q_proj\.weight": dequantizes to a non-finite value at element/);
    await expectCode(mk('overflow16', 'qwen2-fp4-f16', (d) => pokeTensor(stFile(d), 'model.layers.0.self_attn.q_proj.weight.absmax', (b) => b.writeFloatLE(1e5, 0))), 'corrupt_safetensors', /q_proj\.weight": dequantizes to a non-finite value at element/);
    // A quant_state shape with the right number of values but not the layer's shape.
    await expectCode(mk('reshaped', 'llama-nf4', (d) => setState(d, (s) => (s.shape = [32, 128]))), 'load_failed', /tensor ".*q_proj\.weight" has shape \[32, 128\], config\.json implies \[64, 64\]/);
    await expectCode(mk('orphan', 'llama-nf4', (d) => rewriteHeader(stFile(d), (j) => delete j[STATE])), 'unsupported_bitsandbytes', /packed weight ".*q_proj\.weight" without its quant_state/);
  });

  it('LLM.int8(): SCB, weight_format and the int8 weight checked', async () => {
    const W = 'model.layers.0.mlp.down_proj';
    await expectCode(mk('noscb', 'llama-int8', (d) => rewriteHeader(stFile(d), (j) => delete j[`${W}.SCB`])), 'unsupported_bitsandbytes', /int8 weight ".*down_proj\.weight" without its SCB/);
    await expectCode(mk('scblen', 'llama-int8', (d) => rewriteHeader(stFile(d), (j) => (j[`${W}.SCB`].dtype = 'I32'))), 'corrupt_safetensors', /down_proj\.SCB": SCB holds one float32 scale per row: 64, it is I32/);
    await expectCode(mk('turing', 'llama-int8', (d) => pokeTensor(stFile(d), `${W}.weight_format`, (b) => (b[0] = 2))), 'unsupported_bitsandbytes', /weight_format 2 \(col_turing\)/);
    await expectCode(mk('w8', 'llama-int8', (d) => rewriteHeader(stFile(d), (j) => (j[`${W}.weight`].dtype = 'U8'))), 'corrupt_safetensors', /down_proj\.weight": an LLM\.int8\(\) weight is a 2-D int8 tensor/);
    await expectCode(mk('scbinf', 'llama-int8', (d) => pokeTensor(stFile(d), `${W}.SCB`, (b) => b.writeFloatLE(Infinity, 0))), 'corrupt_safetensors', /down_proj\.SCB": non-finite value at element 0/);
  });

  it('variants it does not read keep a coded error naming what they need', async () => {
    const storage = await expectCode(mk('storage', 'llama-nf4', (d) => setConfig(d, (q) => (q.bnb_4bit_quant_storage = 'bfloat16'))), 'unsupported_bitsandbytes', /4-bit NF4.*bnb_4bit_quant_storage "bfloat16".*non-uint8 storage/);
    expect(storage.hint).toMatch(/full-precision base|dequantize/);
    await expectCode(mk('neither', 'llama-nf4', (d) => setConfig(d, (q) => ((q.load_in_4bit = false), (q.load_in_8bit = false)))), 'unsupported_bitsandbytes', /neither load_in_4bit nor load_in_8bit/);
    await expectCode(mk('unknown-dtype', 'llama-int8', (d) => rewriteHeader(stFile(d), (j) => (j['model.norm.weight'].dtype = 'I32'))), 'unsupported_bitsandbytes', /tensor "model\.norm\.weight" of dtype I32/);
    await expectCode(
      mk('pt-bin', 'llama-int8', (d) => fs.renameSync(stFile(d), path.join(d, 'pytorch_model.bin'))),
      'unsupported_bitsandbytes',
      /8-bit LLM\.int8\(\) checkpoint with PyTorch \.bin weights.*needs the checkpoint in safetensors/,
    );
    await expectCode(mk('badcfg', 'llama-nf4', (d) => setConfig(d, (q) => (q.load_in_4bit = 'yes'))), 'load_failed', /quantization_config\.load_in_4bit/);
  });

  it('a batch goes on past a broken bitsandbytes checkpoint (a coded row)', () => {
    const broken = mk('batch-broken', 'llama-nf4', (d) => setState(d, (s) => (s.blocksize = 32)));
    const out = path.join(work, 'batch.csv');
    const r = runCli(
      ['lineage', '--base', path.join(HF, 'llama'), '--derived', broken, path.join(FIX, 'llama-int8'), '--output', out, '--registry-write', 'off', '--json', '--num-prompts', '2', '--k', '128', '--prefix-len', '4', '--total-len', '16', '--progress', 'none'],
      { env: { MODELPRINT_CACHE_DIR: cache } },
    );
    expect(r.code, r.stderr).toBe(3);
    const rows = readCsvFile(out).rows;
    expect(rows.find((x) => x.derived_model_name === broken)?.error_code).toBe('corrupt_safetensors');
    expect(Number(rows.find((x) => x.derived_model_name === path.join(FIX, 'llama-int8'))?.avg_overlap_ratio)).toBeGreaterThan(0.5);
  });
});

describe('bitsandbytes checkpoints through the CLI', () => {
  it('models inspect names the format and runs it', () => {
    const r = runCli(['models', 'inspect', path.join(FIX, 'qwen2-nf4-dq'), '--json'], { env: { MODELPRINT_CACHE_DIR: cache } });
    expect(r.code, r.stderr).toBe(0);
    const j = parseJson<Record<string, unknown>>(r);
    expect(j).toMatchObject({ format: 'bitsandbytes', model_type: 'qwen2', runs: true, logits_width: 512, error: null });
  });

  it('lineage scores each quantization of llama above the quantizations of qwen2 and gpt2', () => {
    const out = path.join(work, 'lineage.csv');
    const derived = ['llama-nf4', 'llama-int8', 'qwen2-nf4-dq', 'gpt2-nf4'].map((n) => path.join(FIX, n));
    const scoreOf = smallLineage(path.join(HF, 'llama'), derived, { out, cache, registry: path.join(work, 'reg.db') });
    const score = (n: string) => scoreOf(path.join(FIX, n));
    expect(score('llama-int8')).toBeGreaterThan(0.9);
    for (const n of ['llama-nf4', 'llama-int8']) for (const q of ['qwen2-nf4-dq', 'gpt2-nf4']) expect(score(n), `${n} vs ${q}`).toBeGreaterThan(score(q) + 0.2);
  });
});
