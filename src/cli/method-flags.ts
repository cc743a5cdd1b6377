import { Flags } from '@oclif/core';
import fs from 'node:fs';
import path from 'node:path';
import { readModelConfig, type ModelConfig } from '../inference/config.js';
import { BottomKParamsSchema, type BottomKParams } from '../methods/params.js';
import { ModelprintError } from '../errors.js';
import { ONNX_VARIANT_CHOICES } from '../inference/format.js';
import { DEFAULT_GGUF_QUANTS } from '../formats/gguf.js';
import { DEFAULT_GGUF_ACTIVATIONS, GGUF_ACTIVATION_MODES } from '../formats/gguf-activations.js';

/** --onnx-variant, for every command that opens models. */
export const onnxVariantFlag = Flags.string({
  description:
    'ONNX file of a folder holding several (transformers.js onnx/ layout): auto takes the first present of fp32 (model.onnx), fp16, quantized (q8), int8, uint8, q4, q4f16, bnb4; a name takes that one (model_<name>.onnx or decoder_model_merged_<name>.onnx).',
  options: [...ONNX_VARIANT_CHOICES],
  default: 'auto',
});

/** --gguf-quant, for every command that opens models: which file of a folder of GGUF quantizations. */
export const ggufQuantFlag = Flags.string({
  description: `GGUF file of a folder holding several quantizations: a comma-separated preference list of the quantization names in the file names (e.g. Q8_0,Q6_K,Q4_K_M); default ${DEFAULT_GGUF_QUANTS.join(',')} (also $MODELPRINT_GGUF_QUANT). A .gguf file path is used as is.`,
});

/** --gguf-activations, for every command that runs models: llama.cpp's arithmetic on GGUF files, or float32. */
export const ggufActivationsFlag = Flags.string({
  description: `GGUF files: llama.cpp rounds the activations of F16 and quantized weights as llama.cpp's CPU backend does (to fp16, or to Q8_0 / Q8_K blocks), so the logits are llama.cpp's on the file as is; float32 keeps them in float32 (the logits of the dequantized weights). Default ${DEFAULT_GGUF_ACTIVATIONS} (also $MODELPRINT_GGUF_ACTIVATIONS).`,
  options: [...GGUF_ACTIVATION_MODES],
});

/** Flags shared by the bottom-k pipeline commands (lineage, matrix). */
export const bottomKFlags = {
  'num-prompts': Flags.integer({ description: 'Probe prompts per source model (N).', default: 10, min: 1 }),
  k: Flags.integer({ description: 'Size of each bottom-k set (clipped to the vocabulary).', default: 2000, min: 1 }),
  'sample-k': Flags.integer({ description: 'Prompt generation samples among this many least likely tokens.', default: 50, min: 1 }),
  'prefix-len': Flags.integer({ description: 'Random prefix length of a probe prompt (tokens).', default: 8, min: 1 }),
  'total-len': Flags.integer({ description: 'Total probe prompt length (tokens).', default: 64, min: 1 }),
  seed: Flags.integer({ description: 'PRNG seed (recorded with the prompts).', default: 42, min: 0 }),
  metric: Flags.string({ description: 'Set score.', options: ['overlap', 'jaccard'], default: 'overlap' }),
  device: Flags.string({ description: 'Inference device: cuda fails if absent, auto falls back to the CPU.', options: ['cpu', 'cuda', 'auto'], default: 'auto' }),
  threads: Flags.integer({ description: 'ONNX Runtime threads per model (0 = all cores).', default: 0, min: 0 }),
  'low-memory': Flags.boolean({ description: 'Trade speed for memory: no ONNX Runtime weight pre-packing; bf16/f16 safetensors weights stay memory-mapped and are cast to float32 at each use (peak RSS about 1.4 × a bf16 checkpoint instead of 3.3 ×, about 1.3 × slower than the default; with the default auto batching still ≥ 2× faster than transformers + PyTorch on the CPU in BENCHMARKS.md).', default: false }),
  'batch-size': Flags.integer({ description: 'Prompts per forward pass. 0 (default) = auto: prompts of equal token length share a pass (no padding), up to 2048 tokens and 64 MiB of logits a pass; N ≥ 1 = up to N prompts a pass, left-padded to the longest.', default: 0, min: 0 }),
  reuse: Flags.boolean({ description: 'Reuse probe sets and sketches stored in the registry.', default: true, allowNo: true }),
  'registry-write': Flags.string({
    description: 'What the run stores in the registry: write (default; a refused write, e.g. as a PostgreSQL reader, turns the run read-only with a warning), read-only (use what is stored, write nothing) or off (neither read nor write).',
    options: ['write', 'read-only', 'off'],
    default: 'write',
  }),
  'sketches-out': Flags.string({ description: 'Also write the bottom-k sketches as a sketch collection (.mpsk, or .jsonl) that `modelprint similarity --sketches` reads.' }),
  progress: Flags.string({ description: 'Progress display: a live table on a TTY, JSON lines otherwise.', options: ['auto', 'tty', 'jsonl', 'plain', 'none'], default: 'auto' }),
  'onnx-variant': onnxVariantFlag,
  'gguf-quant': ggufQuantFlag,
  'gguf-activations': ggufActivationsFlag,
};

export function bottomKParamsFrom(flags: Record<string, unknown>): BottomKParams {
  const parsed = BottomKParamsSchema.safeParse({
    k: flags.k,
    numPrompts: flags['num-prompts'],
    sampleK: flags['sample-k'],
    prefixLen: flags['prefix-len'],
    totalLen: flags['total-len'],
    seed: flags.seed,
    metric: flags.metric,
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ModelprintError('E_USAGE', `--${String(i.path[0])}: ${i.message}`, { hint: 'see --help' });
  }
  if (parsed.data.totalLen < parsed.data.prefixLen) {
    throw new ModelprintError('E_USAGE', `--total-len (${parsed.data.totalLen}) must be at least --prefix-len (${parsed.data.prefixLen})`, { hint: 'the defaults are 64 and 8' });
  }
  return parsed.data;
}

/** config.json of a model path (a folder, or an .onnx file in `<dir>` or `<dir>/onnx`), or null. */
function configOf(modelPath: string): ModelConfig | null {
  try {
    const st = fs.statSync(modelPath);
    const dirs = st.isDirectory() ? [modelPath] : [path.dirname(modelPath), path.dirname(path.dirname(modelPath))];
    for (const d of dirs) {
      const c = readModelConfig(d);
      if (c) return c;
    }
  } catch {
    // unreadable or invalid: opening the model reports it as that model's failure
  }
  return null;
}

/**
 * --total-len against each model's context (config.json max_position_embeddings), before
 * any work: a prompt longer than the positions a model has would fail or, worse, score
 * garbage for every prompt. Models without the field are not checked.
 */
export function checkTotalLen(models: Array<{ id: string; path: string | null }>, totalLen: number): void {
  for (const m of models) {
    const max = m.path ? configOf(m.path)?.maxPositions : null;
    if (max && totalLen > max) {
      throw new ModelprintError('E_USAGE', `--total-len ${totalLen} is longer than the context of ${m.id} (max_position_embeddings ${max} in its config.json)`, {
        subject: '--total-len',
        hint: `pass --total-len ${max} or less`,
      });
    }
  }
}
