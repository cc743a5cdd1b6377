import fs from 'node:fs';
import path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, type Tensor } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../src/native/index.js';
import { createZoo } from '../src/zoo/index.js';
import { tmpDir } from './helpers/cli.js';

interface HfConfig {
  vocab_size: number;
  num_hidden_layers: number;
  num_key_value_heads: number;
  head_dim: number;
  eos_token_id: number;
}

const TEXTS = [
  'The quick brown fox jumps over the lazy dog.',
  'Hello, world! 3 models (v1.2) said: "lineage is 100% recoverable" -- maybe.',
  '  leading spaces,\ttabs\nand newlines\n\n',
  'café déjà vu — naïve “quotes”',
];

/** Logits of model.onnx run directly with onnxruntime-node (empty past). */
async function ortLogits(session: ort.InferenceSession, cfg: HfConfig, ids: number[]): Promise<Float32Array> {
  const n = ids.length;
  const i64 = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map((x) => BigInt(x))), [1, n]);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: i64(ids),
    attention_mask: i64(ids.map(() => 1)),
    position_ids: i64(ids.map((_, i) => i)),
  };
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    for (const kv of ['key', 'value']) {
      feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, cfg.num_key_value_heads, 0, cfg.head_dim]);
    }
  }
  const out = await session.run(feeds);
  return out.logits.data as Float32Array;
}

const idsOf = (t: Tensor): number[] => Array.from(t.data as BigInt64Array, (x) => Number(x));

describe('transformers.js runs the zoo models', () => {
  let zoo: string;

  beforeAll(async () => {
    zoo = path.join(tmpDir('modelprint-zoo-tjs-'), 'zoo');
    await createZoo(zoo, { size: 'tiny', seed: 42 });
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${zoo}/`;
  });

  afterAll(() => {
    fs.rmSync(path.dirname(zoo), { recursive: true, force: true });
  });

  it('tokenizes exactly like the HF Rust tokenizers', async () => {
    for (const id of ['alpha-base', 'delta-base', 'alpha-vocab-ext', 'delta-vocab-ext']) {
      const tjs = await AutoTokenizer.from_pretrained(id);
      const rust = native.Tokenizer.fromFile(path.join(zoo, id, 'tokenizer.json'));
      for (const text of [...TEXTS, 'say <|extra_2|> twice <|extra_2|>']) {
        const expected = Array.from(rust.encode(text, true));
        const got = tjs.encode(text);
        expect(got, `${id}: ${JSON.stringify(text)}`).toEqual(expected);
        expect(tjs.decode(got, { skip_special_tokens: true })).toBe(rust.decode(Uint32Array.from(expected), true));
      }
    }
  });

  it('gives the logits of running model.onnx directly', async () => {
    for (const id of ['alpha-base', 'gamma-base', 'delta-base', 'alpha-int4', 'delta-vocab-ext']) {
      const dir = path.join(zoo, id);
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as HfConfig;
      const tokenizer = await AutoTokenizer.from_pretrained(id);
      const model = await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp32', device: 'cpu' });
      const inputs = tokenizer(TEXTS[0]);
      const ids = idsOf(inputs.input_ids as Tensor);
      const out = (await model(inputs)) as { logits: Tensor };
      expect(out.logits.dims).toEqual([1, ids.length, cfg.vocab_size]);
      const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'));
      const direct = await ortLogits(session, cfg, ids);
      const got = out.logits.data as Float32Array;
      let diff = 0;
      for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - direct[i]));
      expect(diff, id).toBeLessThan(1e-4);

      // Greedy generation through transformers.js' KV cache = greedy by full recomputation.
      const generated = idsOf((await model.generate({ ...inputs, max_new_tokens: 6, do_sample: false })) as Tensor);
      const seq = [...ids];
      while (seq.length < generated.length) {
        const logits = await ortLogits(session, cfg, seq);
        const last = logits.subarray((seq.length - 1) * cfg.vocab_size);
        let best = 0;
        for (let t = 1; t < cfg.vocab_size; t++) if (last[t] > last[best]) best = t;
        seq.push(best);
        if (best === cfg.eos_token_id) break;
      }
      expect(generated, id).toEqual(seq);
      await session.release();
      await model.dispose();
    }
  });
});
