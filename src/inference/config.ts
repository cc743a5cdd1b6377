import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** The fields of a Hugging Face config.json that inference needs (others pass through). */
const ConfigSchema = z
  .object({
    model_type: z.string().nullish(),
    architectures: z.array(z.string()).nullish(),
    vocab_size: z.number().int().positive().nullish(),
    hidden_size: z.number().int().positive().nullish(),
    n_embd: z.number().int().positive().nullish(),
    num_hidden_layers: z.number().int().positive().nullish(),
    n_layer: z.number().int().positive().nullish(),
    num_attention_heads: z.number().int().positive().nullish(),
    n_head: z.number().int().positive().nullish(),
    num_layers: z.number().int().positive().nullish(),
    num_heads: z.number().int().positive().nullish(),
    n_inner: z.number().int().positive().nullish(),
    num_key_value_heads: z.number().int().positive().nullish(),
    head_dim: z.number().int().positive().nullish(),
    intermediate_size: z.number().int().positive().nullish(),
    max_position_embeddings: z.number().int().positive().nullish(),
    tie_word_embeddings: z.boolean().nullish(),
    bos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
    eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
    pad_token_id: z.union([z.number().int(), z.null()]).optional(),
    quantization_config: z.record(z.string(), z.unknown()).nullish(),
  })
  .passthrough();

export type RawConfig = z.infer<typeof ConfigSchema>;

export interface ModelConfig {
  modelType: string;
  architecture: string | null;
  vocabSize: number | null;
  hiddenSize: number | null;
  numLayers: number | null;
  numHeads: number | null;
  numKvHeads: number | null;
  headDim: number | null;
  intermediateSize: number | null;
  maxPositions: number | null;
  tieWordEmbeddings: boolean | null;
  bosTokenIds: number[];
  eosTokenIds: number[];
  padTokenId: number | null;
  raw: RawConfig;
}

/** Architectures whose MLP width defaults to 4 × hidden_size when the config leaves it null. */
const DERIVED_FFN = new Set(['gpt_neo', 'gpt2', 'gptj', 'gpt_neox', 'codegen', 'opt', 'bloom', 'falcon']);

const ids = (v: number | number[] | null | undefined): number[] =>
  v === null || v === undefined ? [] : Array.isArray(v) ? v : [v];

/** Reads config.json; returns null when absent, throws a message naming the field when invalid. */
export function readModelConfig(dir: string): ModelConfig | null {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return null;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
  const parsed = ConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: field "${issue.path.join('.')}" ${issue.message}`);
  }
  const c = parsed.data;
  // null means "derive it", as transformers does (MistralConfig writes head_dim: null,
  // GPTNeoConfig intermediate_size: null, GPT2Config n_inner: null).
  const hidden = c.hidden_size ?? c.n_embd ?? null;
  const heads = c.num_attention_heads ?? c.n_head ?? c.num_heads ?? null;
  return {
    modelType: c.model_type ?? 'unknown',
    architecture: c.architectures?.[0] ?? null,
    vocabSize: c.vocab_size ?? null,
    hiddenSize: hidden,
    numLayers: c.num_hidden_layers ?? c.n_layer ?? c.num_layers ?? null,
    numHeads: heads,
    numKvHeads: c.num_key_value_heads ?? heads,
    headDim: c.head_dim ?? (hidden && heads && hidden % heads === 0 ? hidden / heads : null),
    intermediateSize: c.intermediate_size ?? c.n_inner ?? (hidden && DERIVED_FFN.has(c.model_type ?? '') ? 4 * hidden : null),
    maxPositions: c.max_position_embeddings ?? null,
    tieWordEmbeddings: c.tie_word_embeddings ?? null,
    bosTokenIds: ids(c.bos_token_id),
    eosTokenIds: ids(c.eos_token_id),
    padTokenId: c.pad_token_id ?? null,
    raw: c,
  };
}
