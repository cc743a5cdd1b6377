/**
 * transformers checkpoints (safetensors) against transformers itself: the fixtures and
 * their reference logits were written by tools/gen_hf_fixtures.py (see
 * test/fixtures/hf/README.md); nothing here needs Python.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CausalLM } from '../src/inference/session.js';
import { prepareSafetensors } from '../src/formats/hf-checkpoint.js';
import { readCsvFile } from '../src/util/csv.js';
import { ROOT, runCli } from './helpers/cli.js';
import { bottomK, expectCode, maxDiff, smallLineage, cacheAndWorkDirs } from './helpers/logits.js';
import { copyFixture, rewriteHeader, stFile } from './helpers/safetensors-edit.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'hf');

interface Reference {
  transformers: string;
  prompts: string[];
  prompt_ids: number[][];
  models: Record<string, { dtype: string; logits: number[][] }>;
}
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')) as Reference;

/** max |diff| allowed, as a fraction of the reference logit range. */
const TOLERANCE: Record<string, number> = { float32: 1e-3, float16: 1e-3, bfloat16: 1e-3 };

const { cache, work } = cacheAndWorkDirs('modelprint-hf');


describe('safetensors checkpoints match transformers', () => {
  const names = Object.keys(ref.models);
  it('covers every architecture and format', () => {
    for (const a of ['llama', 'qwen2', 'mistral', 'qwen3', 'gemma', 'gemma2', 'gemma3_text', 'phi3', 'gpt2', 'gpt_neox', 'llama-f16', 'llama-bf16', 'qwen2-sharded', 'llama-lora', 'gpt2-lora']) {
      expect(names).toContain(a);
    }
    expect(fs.existsSync(path.join(FIX, 'qwen2-sharded', 'model.safetensors.index.json'))).toBe(true);
  });

  for (const name of names) {
    it(`${name}: last-position logits and bottom-k sets`, async () => {
      const m = ref.models[name];
      const dir = path.join(FIX, name);
      const lm = await CausalLM.open(dir, { device: 'cpu' });
      expect(lm.files.format).toBe('safetensors');
      expect(lm.hasPast).toBe(true);
      const V = m.logits[0].length;
      const k = Math.min(2000, Math.floor(V / 4));
      for (let p = 0; p < ref.prompts.length; p++) {
        // the tokenizer in the folder gives the ids transformers used
        expect(lm.encode(ref.prompts[p], false)).toEqual(ref.prompt_ids[p]);
        const { logits, width } = await lm.lastLogits([ref.prompt_ids[p]]);
        expect(width).toBe(V);
        const r = m.logits[p];
        const range = Math.max(...r) - Math.min(...r);
        expect(range).toBeGreaterThan(1);
        let diff = 0;
        for (let i = 0; i < V; i++) diff = Math.max(diff, Math.abs(logits[i] - r[i]));
        expect(diff, `${name} prompt ${p}: max |diff| ${diff} vs range ${range}`).toBeLessThanOrEqual(TOLERANCE[m.dtype] * range);
        const a = bottomK(logits, k);
        const b = bottomK(r, k);
        const agree = [...a].filter((x) => b.has(x)).length / k;
        expect(agree, `${name} prompt ${p}: bottom-${k} agreement`).toBeGreaterThanOrEqual(0.995);
      }
      await lm.release();
    });
  }

  it('half-precision weights differ from the float32 ones (the dtype variants are not copies)', () => {
    const f32 = ref.models.llama.logits[0];
    for (const v of ['llama-f16', 'llama-bf16']) {
      const h = ref.models[v].logits[0];
      expect(Math.max(...h.map((x, i) => Math.abs(x - f32[i])))).toBeGreaterThan(0);
    }
  });
});

describe('PEFT LoRA adapters', () => {
  const copyAdapter = (name: string, base: string): string => {
    const d = path.join(work, name);
    fs.cpSync(path.join(FIX, 'llama-lora'), d, { recursive: true });
    const f = path.join(d, 'adapter_config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), base_model_name_or_path: base }));
    return d;
  };

  it('the adapters change the logits of their base (the LoRA path is not a no-op)', () => {
    expect(maxDiff(ref.models['llama-lora'].logits[0], ref.models.llama.logits[0])).toBeGreaterThan(0.5);
    expect(maxDiff(ref.models['gpt2-lora'].logits[0], ref.models.gpt2.logits[0])).toBeGreaterThan(0.5);
  });

  it('a base that is not available is a coded error naming it; the Hugging Face cache and --adapter-base find it', async () => {
    const d = copyAdapter('lora-missing', 'someorg/tiny-llama');
    const hub = path.join(work, 'hub');
    const old = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = hub;
    try {
      const e = await expectCode(d, 'missing_base_model', /"someorg\/tiny-llama"/);
      expect(e.hint).toContain('huggingface-cli download someorg/tiny-llama');
      // in the hub cache layout
      const repo = path.join(hub, 'models--someorg--tiny-llama');
      fs.cpSync(path.join(FIX, 'llama'), path.join(repo, 'snapshots', 'rev1'), { recursive: true });
      fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
      fs.writeFileSync(path.join(repo, 'refs', 'main'), 'rev1');
      const viaCache = await CausalLM.open(d, { device: 'cpu' });
      const r1 = await viaCache.lastLogits([ref.prompt_ids[1]]);
      await viaCache.release();
      expect(maxDiff(r1.logits, ref.models['llama-lora'].logits[1])).toBeLessThan(1e-3 * 10);
    } finally {
      if (old === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = old;
    }
    const explicit = copyAdapter('lora-explicit', 'someorg/elsewhere');
    const lm = await CausalLM.open(explicit, { device: 'cpu', adapterBase: path.join(FIX, 'llama') });
    const r2 = await lm.lastLogits([ref.prompt_ids[2]]);
    await lm.release();
    expect(maxDiff(r2.logits, ref.models['llama-lora'].logits[2])).toBeLessThan(1e-3 * 10);
  });

  it('refuses adapters it cannot apply exactly', async () => {
    const dora = copyAdapter('lora-dora', '../llama');
    const f = path.join(dora, 'adapter_config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), base_model_name_or_path: path.join(FIX, 'llama'), use_dora: true }));
    await expectCode(dora, 'unsupported_safetensors', /DoRA/);
    const wrongBase = copyAdapter('lora-wrong-base', path.join(FIX, 'gpt2'));
    await expectCode(wrongBase, 'load_failed', /has no counterpart|no tensor/);
  });
});

describe('graphs, cache and KV cache', () => {
  it('caches the built graph: the second open reads only headers, and refers to the weights without copying them', () => {
    const dir = path.join(FIX, 'gemma2');
    const first = prepareSafetensors(dir, 'gemma2');
    const second = prepareSafetensors(dir, 'gemma2');
    expect(second.cached).toBe(true);
    expect(second.onnxPath).toBe(first.onnxPath);
    // the graph holds no weights (external data), so it is far smaller than the checkpoint
    expect(fs.statSync(first.onnxPath).size).toBeLessThan(fs.statSync(path.join(dir, 'model.safetensors')).size / 5);
    const link = fs.readdirSync(path.dirname(first.onnxPath)).find((f) => f.endsWith('.safetensors'))!;
    expect(fs.statSync(path.join(path.dirname(first.onnxPath), link)).ino).toBe(fs.statSync(path.join(dir, 'model.safetensors')).ino);
  });

  it('runs a Hugging Face cache snapshot whose files are symlinks to blobs, and falls back to a graph next to the blobs across file systems', async () => {
    const repo = path.join(work, 'hub2', 'models--org--qwen2-sharded');
    const snap = path.join(repo, 'snapshots', 'r1');
    fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
    fs.mkdirSync(snap, { recursive: true });
    fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'refs', 'main'), 'r1');
    for (const f of fs.readdirSync(path.join(FIX, 'qwen2-sharded'))) {
      const blob = path.join(repo, 'blobs', `sha-${f}`);
      fs.copyFileSync(path.join(FIX, 'qwen2-sharded', f), blob);
      fs.symlinkSync(path.join('..', '..', 'blobs', `sha-${f}`), path.join(snap, f));
    }
    const check = async () => {
      const lm = await CausalLM.open(repo, { device: 'cpu' });
      expect(lm.id).toBe('org/qwen2-sharded');
      const r = await lm.lastLogits([ref.prompt_ids[0]]);
      await lm.release();
      const want = ref.models['qwen2-sharded'].logits[0];
      const range = Math.max(...want) - Math.min(...want);
      expect(Math.max(...want.map((x, i) => Math.abs(x - r.logits[i])))).toBeLessThan(1e-3 * range);
      return lm.files.onnxPath!;
    };
    expect((await check()).startsWith(cache)).toBe(true);
    // A cache folder on another file system (tmpfs) cannot hold hard links to the weights.
    if (fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').dev !== fs.statSync(repo).dev) {
      const shm = fs.mkdtempSync('/dev/shm/modelprint-test-');
      process.env.MODELPRINT_CACHE_DIR = shm;
      try {
        const onnx = await check();
        expect(path.dirname(onnx)).toBe(path.join(repo, 'blobs'));
        expect(path.basename(onnx)).toMatch(/^\.modelprint-[0-9a-f]+\.onnx$/);
      } finally {
        process.env.MODELPRINT_CACHE_DIR = cache;
        fs.rmSync(shm, { recursive: true, force: true });
      }
    }
  });

  for (const name of ['gemma3_text', 'gpt2', 'mistral']) {
    it(`${name}: cached decoding equals full recomputation; a left-padded batch equals single prompts`, async () => {
      const lm = await CausalLM.open(path.join(FIX, name), { device: 'cpu', batchSize: 4 });
      const seq = ref.prompt_ids[3];
      const { state, logits: first } = await lm.startDecode([seq.slice(0, 5)]);
      let cached = first;
      for (const t of seq.slice(5)) cached = await lm.stepDecode(state, [t]);
      const full = await lm.lastLogits([seq]);
      let d = 0;
      for (let i = 0; i < full.width; i++) d = Math.max(d, Math.abs(cached[i] - full.logits[i]));
      expect(d).toBeLessThan(1e-3);
      const batch = await lm.lastLogits(ref.prompt_ids);
      for (let p = 0; p < ref.prompt_ids.length; p++) {
        const single = await lm.lastLogits([ref.prompt_ids[p]]);
        let e = 0;
        for (let i = 0; i < single.width; i++) e = Math.max(e, Math.abs(batch.logits[p * batch.width + i] - single.logits[i]));
        expect(e, `prompt ${p}`).toBeLessThan(1e-3);
      }
      await lm.release();
    });
  }
});

describe('hostile and unsupported checkpoints', () => {
  const mk = (name: string, from: string, edit: (dir: string) => void): string => copyFixture(path.join(FIX, from), path.join(work, name), edit);

  it('checks the header length against the file', async () => {
    const d = mk('hdr', 'llama', (x) => {
      const b = fs.readFileSync(stFile(x));
      b.writeBigUInt64LE(1n << 40n, 0);
      fs.writeFileSync(stFile(x), b);
    });
    await expectCode(d, 'corrupt_safetensors', /model\.safetensors: header length/);
    const tiny = mk('tiny', 'llama', (x) => fs.writeFileSync(stFile(x), Buffer.from([1, 2, 3])));
    await expectCode(tiny, 'corrupt_safetensors', /fewer than the 8-byte/);
  });

  it('checks each tensor against the data section, its shape and dtype, naming file and tensor', async () => {
    const trunc = mk('trunc', 'llama', (x) => {
      const b = fs.readFileSync(stFile(x));
      fs.writeFileSync(stFile(x), b.subarray(0, b.length - 100));
    });
    await expectCode(trunc, 'corrupt_safetensors', /model\.safetensors: tensor ".*": data_offsets .* outside the data section/);
    const shape = mk('shape', 'llama', (x) => rewriteHeader(stFile(x), (j) => (j['model.norm.weight'].shape = [65])));
    await expectCode(shape, 'corrupt_safetensors', /tensor "model\.norm\.weight": 256 bytes for shape \[65\]/);
    const dtype = mk('dtype', 'llama', (x) => rewriteHeader(stFile(x), (j) => (j['model.norm.weight'] = { ...j['model.norm.weight'], dtype: 'I32' })));
    await expectCode(dtype, 'unsupported_safetensors', /"model\.norm\.weight" has dtype I32/);
    const neg = mk('neg', 'llama', (x) => rewriteHeader(stFile(x), (j) => (j['model.norm.weight'].data_offsets = [10, 5])));
    await expectCode(neg, 'corrupt_safetensors', /"model\.norm\.weight": data_offsets \[10, 5\]/);
    const wrongShape = mk('wrongshape', 'llama', (x) => {
      const c = JSON.parse(fs.readFileSync(path.join(x, 'config.json'), 'utf8'));
      c.intermediate_size = 128;
      fs.writeFileSync(path.join(x, 'config.json'), JSON.stringify(c));
    });
    await expectCode(wrongShape, 'load_failed', /config\.json implies/);
    const missing = mk('missing', 'llama', (x) => rewriteHeader(stFile(x), (j) => delete j['model.layers.1.mlp.up_proj.weight']));
    await expectCode(missing, 'load_failed', /no tensor "model\.layers\.1\.mlp\.up_proj\.weight"/);
  });

  it('refuses shard names that leave the folder, and missing shards', async () => {
    const esc = mk('esc', 'qwen2-sharded', (x) => {
      const f = path.join(x, 'model.safetensors.index.json');
      const idx = JSON.parse(fs.readFileSync(f, 'utf8'));
      idx.weight_map['model.norm.weight'] = '../llama/model.safetensors';
      fs.writeFileSync(f, JSON.stringify(idx));
    });
    await expectCode(esc, 'corrupt_safetensors', /not a plain file name/);
    const gone = mk('gone', 'qwen2-sharded', (x) => fs.rmSync(path.join(x, 'model-00002-of-00002.safetensors')));
    await expectCode(gone, 'not_found', /model-00002-of-00002\.safetensors/);
  });

  it('names an unsupported model_type', async () => {
    const d = mk('mamba', 'llama', (x) => {
      const c = JSON.parse(fs.readFileSync(path.join(x, 'config.json'), 'utf8'));
      c.model_type = 'mamba';
      fs.writeFileSync(path.join(x, 'config.json'), JSON.stringify(c));
    });
    const e = await expectCode(d, 'unsupported_architecture', /model_type "mamba"/);
    expect(e.code).toBe('E_MODEL_FORMAT');
  });
});

describe('lineage through the CLI on safetensors checkpoints', () => {
  it('scores a derivative and the half-precision copies above an unrelated model', () => {
    const out = path.join(work, 'lineage.csv');
    const derived = ['llama-derived', 'llama-bf16', 'qwen2', 'gpt2', 'llama-lora'].map((n) => path.join(FIX, n));
    const scoreOf = smallLineage(path.join(FIX, 'llama'), derived, { out, cache, registry: path.join(work, 'reg.db') });
    const score = (n: string) => scoreOf(path.join(FIX, n));
    expect(score('llama-bf16')).toBeGreaterThan(0.95);
    expect(score('llama-derived')).toBeGreaterThan(0.6);
    expect(score('llama-derived')).toBeGreaterThan(score('qwen2') + 0.2);
    expect(score('llama-derived')).toBeGreaterThan(score('gpt2') + 0.2);
  });

  it('--low-memory (no weight pre-packing) gives the same scores', () => {
    const run = (name: string, extra: string[]) => {
      const out = path.join(work, name);
      const r = runCli(
        ['lineage', '--base', path.join(FIX, 'llama'), '--derived', path.join(FIX, 'llama-derived'), path.join(FIX, 'qwen2'), '--output', out, '--registry-write', 'off', '--json', '--num-prompts', '2', '--k', '128', '--prefix-len', '4', '--total-len', '16', '--progress', 'none', ...extra],
        { env: { MODELPRINT_CACHE_DIR: cache } },
      );
      expect(r.code, r.stderr).toBe(0);
      return readCsvFile(out).rows.map((x) => [x.derived_model_name, x.avg_overlap_ratio, x.pair_scores_json]);
    };
    const lean = run('lineage-lean.csv', ['--low-memory']);
    expect(lean).toHaveLength(2);
    expect(lean).toEqual(run('lineage-default.csv', []));
  });
});
