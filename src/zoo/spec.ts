/**
 * What the zoo contains: tokenizers, base families and the derivatives of each base.
 *
 * Families alpha and beta share one tokenizer AND one architecture (only the weights
 * tell them apart); gamma shares the tokenizer but ties its LM head to the embedding;
 * delta has its own, larger Qwen-style vocabulary. Every base gets the same set of
 * derivatives (12), each with a known parent and relation.
 */
import type { LlamaConfig } from './weights.js';
import type { TokenizerStyle } from './tokenizer.js';

export type ZooSize = 'tiny' | 'default';
export const ZOO_SIZES: readonly ZooSize[] = ['tiny', 'default'];
export const DEFAULT_SEED = 42;
/** Bump when the generated files change, so older zoos are rebuilt instead of reused. */
export const ZOO_FORMAT = 2;

export interface TokenizerDef {
  id: string;
  style: TokenizerStyle;
  vocabSize: number;
}

export interface FamilyDef {
  name: string;
  tokenizer: string;
  /** The architecture (vocab_size comes from the tokenizer). */
  arch: Omit<LlamaConfig, 'vocabSize'>;
}

export type Relation =
  | 'base'
  | 'finetune-light'
  | 'finetune-heavy'
  | 'lora'
  | 'quantize-int8'
  | 'quantize-int4'
  | 'prune'
  | 'vocab-extension'
  | 'reupload'
  | 'merge'
  | 'finetune-chain';

export type Recipe =
  | { op: 'noise'; rel: number }
  | { op: 'heavy'; rel: number; headFraction: number; headStrength: number }
  | { op: 'lora'; rank: number; rel: number }
  | { op: 'quantize'; bits: 4 | 8 }
  | { op: 'prune'; linear: number; head: number }
  | { op: 'vocab-extension'; tokens: number }
  | { op: 'copy' }
  | { op: 'average' };

export interface DerivativeDef {
  /** Model id suffix: `<family>-<suffix>`. */
  suffix: string;
  relation: Relation;
  /** models.csv model_type. */
  modelType: string;
  /** Parent suffixes ('base' for the family base); two for a merge. */
  parents: string[];
  recipe: Recipe;
  /** One line for lineage.json. */
  description: string;
}

export interface ZooSpec {
  size: ZooSize;
  tokenizers: TokenizerDef[];
  families: FamilyDef[];
  derivatives: DerivativeDef[];
}

function derivatives(size: ZooSize): DerivativeDef[] {
  const extra = size === 'tiny' ? 8 : 16;
  return [
    { suffix: 'ft-light', relation: 'finetune-light', modelType: 'Finetune', parents: ['base'], recipe: { op: 'noise', rel: 0.02 }, description: 'every tensor + N(0, (0.02·std)²)' },
    {
      suffix: 'ft-heavy',
      relation: 'finetune-heavy',
      modelType: 'Finetune',
      parents: ['base'],
      recipe: { op: 'heavy', rel: 0.5, headFraction: 0.25, headStrength: 1 },
      description: 'every tensor + N(0, (0.5·std)²); 25% of LM-head rows moved, all row norms drift',
    },
    { suffix: 'lora', relation: 'lora', modelType: 'Adapter', parents: ['base'], recipe: { op: 'lora', rank: 8, rel: 0.2 }, description: 'merged rank-8 update B·A on attention and MLP matrices, ‖ΔW‖ = 0.2‖W‖' },
    { suffix: 'int8', relation: 'quantize-int8', modelType: 'Quantized', parents: ['base'], recipe: { op: 'quantize', bits: 8 }, description: 'per-row symmetric int8 quantize → dequantize of every matrix (stored as float32)' },
    { suffix: 'int4', relation: 'quantize-int4', modelType: 'Quantized', parents: ['base'], recipe: { op: 'quantize', bits: 4 }, description: 'per-row symmetric int4 quantize → dequantize of every matrix (stored as float32)' },
    {
      suffix: 'pruned',
      relation: 'prune',
      modelType: 'Pruned',
      parents: ['base'],
      recipe: { op: 'prune', linear: 0.4, head: 0.3 },
      description: 'smallest 40% of each attention/MLP matrix and 30% of the output head set to zero',
    },
    {
      suffix: 'vocab-ext',
      relation: 'vocab-extension',
      modelType: 'VocabExtension',
      parents: ['base'],
      recipe: { op: 'vocab-extension', tokens: extra },
      description: `${extra} added tokens <|extra_N|>; new embedding/head rows = mean row + small noise`,
    },
    { suffix: 'reupload', relation: 'reupload', modelType: 'Reupload', parents: ['base'], recipe: { op: 'copy' }, description: 'byte-identical copy of the base' },
    { suffix: 'merge', relation: 'merge', modelType: 'Merge', parents: ['lora', 'ft-heavy'], recipe: { op: 'average' }, description: 'element-wise average of the lora and ft-heavy derivatives' },
    { suffix: 'chain-1', relation: 'finetune-chain', modelType: 'Finetune', parents: ['base'], recipe: { op: 'noise', rel: 0.25 }, description: 'fine-tune step 1: every tensor + N(0, (0.25·std)²)' },
    { suffix: 'chain-2', relation: 'finetune-chain', modelType: 'Finetune', parents: ['chain-1'], recipe: { op: 'noise', rel: 0.25 }, description: 'fine-tune step 2 of chain-1' },
    { suffix: 'chain-3', relation: 'finetune-chain', modelType: 'Finetune', parents: ['chain-2'], recipe: { op: 'noise', rel: 0.25 }, description: 'fine-tune step 3 of chain-2' },
  ];
}

export function zooSpec(size: ZooSize): ZooSpec {
  const tiny = size === 'tiny';
  const arch = (over: Partial<FamilyDef['arch']> = {}): FamilyDef['arch'] => ({
    hiddenSize: tiny ? 32 : 64,
    intermediateSize: tiny ? 64 : 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: tiny ? 8 : 16,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    maxPositions: tiny ? 512 : 2048,
    tieWordEmbeddings: false,
    ...over,
  });
  const shared = tiny ? 'llama-4k' : 'llama-32k';
  const own = tiny ? 'qwen-6k' : 'qwen-48k';
  return {
    size,
    tokenizers: [
      { id: shared, style: 'llama', vocabSize: tiny ? 4096 : 32000 },
      { id: own, style: 'qwen', vocabSize: tiny ? 6144 : 48000 },
    ],
    families: [
      { name: 'alpha', tokenizer: shared, arch: arch() },
      { name: 'beta', tokenizer: shared, arch: arch() },
      { name: 'gamma', tokenizer: shared, arch: arch({ intermediateSize: tiny ? 80 : 160, tieWordEmbeddings: true }) },
      { name: 'delta', tokenizer: own, arch: arch({ tieWordEmbeddings: true }) },
    ],
    derivatives: derivatives(size),
  };
}

/** Model ids of the zoo in build order (each family: base, then its derivatives). */
export function modelIds(spec: ZooSpec): string[] {
  return spec.families.flatMap((f) => [`${f.name}-base`, ...spec.derivatives.map((d) => `${f.name}-${d.suffix}`)]);
}
