import fs from 'node:fs';
import { readModelConfig } from './config.js';
import { isModelError } from './errors.js';
import { detectFormat } from './format.js';
import { hubIdFromCachePath } from './resolve.js';
import { CausalLM } from './session.js';
import { messageOf } from '../errors.js';
import type { DeviceRequest } from './device.js';

export interface ModelInspection {
  path: string;
  id: string;
  format: string;
  model_type: string | null;
  architecture: string | null;
  layers: number | null;
  hidden_size: number | null;
  heads: number | null;
  kv_heads: number | null;
  head_dim: number | null;
  vocab_size: number | null;
  tokenizer_vocab_size: number | null;
  logits_width: number | null;
  tie_word_embeddings: boolean | null;
  special_tokens: Record<string, string | null>;
  special_token_ids: number[];
  onnx_file: string | null;
  onnx_bytes: number | null;
  kv_cache: boolean | null;
  runs: boolean;
  device: string | null;
  error: { code: string; message: string; hint?: string } | null;
}

/** Everything `models inspect` shows; opening the model in ONNX Runtime tells whether it runs. */
export async function inspectModel(target: string, opts: { device?: DeviceRequest; tokenizer?: string } = {}): Promise<ModelInspection> {
  const format = detectFormat(target);
  let config = null;
  let configError: string | null = null;
  try {
    config = fs.existsSync(target) && fs.statSync(target).isDirectory() ? readModelConfig(target) : null;
  } catch (e) {
    configError = messageOf(e);
  }
  const r: ModelInspection = {
    path: target,
    id: hubIdFromCachePath(target) ?? target,
    format,
    model_type: config?.modelType ?? null,
    architecture: config?.architecture ?? null,
    layers: config?.numLayers ?? null,
    hidden_size: config?.hiddenSize ?? null,
    heads: config?.numHeads ?? null,
    kv_heads: config?.numKvHeads ?? null,
    head_dim: config?.headDim ?? null,
    vocab_size: config?.vocabSize ?? null,
    tokenizer_vocab_size: null,
    logits_width: null,
    tie_word_embeddings: config?.tieWordEmbeddings ?? null,
    special_tokens: {},
    special_token_ids: [],
    onnx_file: null,
    onnx_bytes: null,
    kv_cache: null,
    runs: false,
    device: null,
    error: configError ? { code: 'load_failed', message: configError } : null,
  };
  try {
    const lm = await CausalLM.open(target, { device: opts.device ?? 'auto', tokenizer: opts.tokenizer, batchSize: 1 });
    try {
      if (lm.logitsWidth === null) await lm.lastLogits([[0]]);
      Object.assign(r, {
        format: lm.files.format,
        layers: r.layers ?? lm.numLayers,
        kv_heads: r.kv_heads ?? lm.kvHeads,
        head_dim: r.head_dim ?? lm.headDim,
        tokenizer_vocab_size: lm.tok.vocabSize,
        logits_width: lm.logitsWidth,
        special_tokens: lm.tok.specialTokens,
        special_token_ids: lm.tok.specialIds,
        onnx_file: lm.files.onnxPath,
        onnx_bytes: lm.files.onnxPath ? fs.statSync(lm.files.onnxPath).size : null,
        kv_cache: lm.hasPast,
        runs: true,
        device: lm.device,
      });
    } finally {
      await lm.release();
    }
  } catch (e) {
    r.runs = false;
    r.error = isModelError(e) ? { code: e.modelCode, message: e.message, hint: e.hint } : { code: 'load_failed', message: messageOf(e) };
  }
  return r;
}
