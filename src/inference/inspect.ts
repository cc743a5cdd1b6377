import fs from 'node:fs';
import path from 'node:path';
import { readModelConfig, type ModelConfig } from './config.js';
import { isModelError, ModelError } from './errors.js';
import { detectFormat, type OnnxVariantRequest } from './format.js';
import { locateModel, resolveModel, type ModelFiles } from './resolve.js';
import { CausalLM } from './session.js';
import { messageOf } from '../errors.js';
import { quantLabel } from '../formats/quant-gptq.js';
import type { DeviceRequest } from './device.js';

export interface ModelInspection {
  path: string;
  id: string;
  format: string;
  /** config.json's quantization_config in one line (e.g. "gptq 4-bit group 32 sym (format gptq)"), else null. */
  quantization: string | null;
  /** Hugging Face cache provenance (a Hub id or a cache folder), else null. */
  repo_id: string | null;
  revision: string | null;
  model_type: string | null;
  architecture: string | null;
  layers: number | null;
  hidden_size: number | null;
  heads: number | null;
  kv_heads: number | null;
  head_dim: number | null;
  intermediate_size: number | null;
  vocab_size: number | null;
  tokenizer_vocab_size: number | null;
  logits_width: number | null;
  tie_word_embeddings: boolean | null;
  special_tokens: Record<string, string | null>;
  special_token_ids: number[];
  onnx_file: string | null;
  onnx_bytes: number | null;
  /** The ONNX variant used (fp32, fp16, quantized, int8, uint8, q4, q4f16, bnb4) and every one the folder holds. */
  onnx_variant: string | null;
  onnx_variants: string[];
  /** Element type of the graph's logits / KV cache (float32 or float16). */
  onnx_dtype: string | null;
  kv_cache: boolean | null;
  runs: boolean;
  device: string | null;
  error: { code: string; message: string; hint?: string } | null;
}

function quantizationOf(dir: string): string | null {
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    return quantLabel(cfg.quantization_config);
  } catch {
    return null;
  }
}

function finite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

/**
 * The calls lineage makes, on a tiny input: a last-position forward (the sketch) and a
 * prompt-generation start plus one KV-cache decode step. A model passes only if all run
 * and give finite logits, so `runs: true` means lineage will not fail for the same reason.
 */
export async function smokeTest(lm: CausalLM): Promise<void> {
  let ids = lm.encode('The quick brown fox', true);
  if (ids.length === 0) ids = [lm.tok.padId ?? 0];
  const { logits: sketchRow } = await lm.lastLogits([ids]);
  if (!finite(sketchRow)) throw new ModelError('non_finite_logits', lm.id, 'the forward pass gives NaN or infinite logits', 'check the weights (an fp16 conversion that overflows?)');
  const start = await lm.startDecode([ids.slice(0, Math.max(1, Math.min(ids.length, 4)))]);
  if (!finite(start.logits)) throw new ModelError('non_finite_logits', lm.id, 'prompt generation gives NaN or infinite logits', 'check the weights');
  let next = 0;
  for (let i = 1; i < start.logits.length; i++) if (start.logits[i] < start.logits[next]) next = i;
  const step = await lm.stepDecode(start.state, [next]);
  if (!finite(step)) throw new ModelError('non_finite_logits', lm.id, 'a KV-cache decode step gives NaN or infinite logits', 'check the weights');
}

/** Everything `models inspect` shows; a real tiny forward and decode step tells whether it runs. */
export async function inspectModel(
  target: string,
  opts: { device?: DeviceRequest; tokenizer?: string; onnxVariant?: OnnxVariantRequest } = {},
): Promise<ModelInspection> {
  let dir: string | null = null;
  let id = target;
  let hub: ModelFiles['hub'] = null;
  let locateError: unknown = null;
  try {
    const loc = locateModel(target);
    id = loc.id;
    dir = fs.statSync(loc.abs).isDirectory() ? loc.abs : path.dirname(loc.abs);
    hub = loc.hub ? { repoId: loc.hub.repoId, revision: loc.hub.revision, ref: loc.hub.ref } : null;
  } catch (e) {
    locateError = e;
  }
  let files: ModelFiles | null = null;
  try {
    files = resolveModel(target, { tokenizer: opts.tokenizer, onnxVariant: opts.onnxVariant });
    dir = files.dir;
  } catch {
    // reported below, by opening the model
  }
  let config: ModelConfig | null = null;
  let configError: string | null = null;
  try {
    config = dir ? readModelConfig(dir) : null;
  } catch (e) {
    configError = messageOf(e);
  }
  const r: ModelInspection = {
    path: target,
    id,
    format: files?.format ?? (dir ? detectFormat(dir) : 'unknown'),
    quantization: dir ? quantizationOf(dir) : null,
    repo_id: hub?.repoId ?? null,
    revision: hub?.revision ?? null,
    model_type: config?.modelType ?? null,
    architecture: config?.architecture ?? null,
    layers: config?.numLayers ?? null,
    hidden_size: config?.hiddenSize ?? null,
    heads: config?.numHeads ?? null,
    kv_heads: config?.numKvHeads ?? null,
    head_dim: config?.headDim ?? null,
    intermediate_size: config?.intermediateSize ?? null,
    vocab_size: config?.vocabSize ?? null,
    tokenizer_vocab_size: null,
    logits_width: null,
    tie_word_embeddings: config?.tieWordEmbeddings ?? null,
    special_tokens: {},
    special_token_ids: [],
    onnx_file: files?.onnxPath ?? null,
    onnx_bytes: null,
    onnx_variant: files?.onnxVariant ?? null,
    onnx_variants: files?.onnxVariants ?? [],
    onnx_dtype: null,
    kv_cache: null,
    runs: false,
    device: null,
    error: configError ? { code: 'load_failed', message: configError } : null,
  };
  if (locateError) {
    r.error = isModelError(locateError) ? { code: locateError.modelCode, message: locateError.message, hint: locateError.hint } : { code: 'not_found', message: messageOf(locateError) };
    return r;
  }
  try {
    const lm = await CausalLM.open(target, { device: opts.device ?? 'auto', tokenizer: opts.tokenizer, batchSize: 1, onnxVariant: opts.onnxVariant });
    try {
      await smokeTest(lm);
      Object.assign(r, {
        format: lm.files.format,
        // The graph is what runs: its KV-cache shape wins over the config where both exist.
        layers: lm.hasPast ? lm.numLayers : r.layers,
        kv_heads: lm.hasPast ? lm.kvHeads : r.kv_heads,
        head_dim: lm.hasPast ? lm.headDim : r.head_dim,
        tokenizer_vocab_size: lm.tok.vocabSize,
        logits_width: lm.logitsWidth,
        special_tokens: lm.tok.specialTokens,
        special_token_ids: lm.tok.specialIds,
        onnx_file: lm.files.onnxPath,
        onnx_bytes: lm.files.onnxPath ? fs.statSync(lm.files.onnxPath).size : null,
        onnx_variant: lm.files.onnxVariant,
        onnx_variants: lm.files.onnxVariants,
        onnx_dtype: lm.dtype,
        kv_cache: lm.hasPast,
        runs: true,
        device: lm.device,
        error: null,
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
