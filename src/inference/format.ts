import fs from 'node:fs';
import path from 'node:path';

export type ModelFormat =
  | 'onnx'
  | 'gguf'
  | 'mlx'
  | 'safetensors'
  | 'bitsandbytes'
  | 'pytorch'
  | 'unknown';

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * ONNX variants as transformers.js / Optimum publish them, in the order `auto` prefers them:
 * full precision first (the fingerprint of the weights as trained), then half precision,
 * then 8-bit, then 4-bit. Each variant is `model<suffix>.onnx` or the merged decoder
 * `decoder_model_merged<suffix>.onnx`, in `onnx/` or at the top of the folder.
 */
export const ONNX_VARIANTS = [
  { name: 'fp32', suffix: '' },
  { name: 'fp16', suffix: '_fp16' },
  { name: 'quantized', suffix: '_quantized' },
  { name: 'int8', suffix: '_int8' },
  { name: 'uint8', suffix: '_uint8' },
  { name: 'q4', suffix: '_q4' },
  { name: 'q4f16', suffix: '_q4f16' },
  { name: 'bnb4', suffix: '_bnb4' },
] as const;

export type OnnxVariantName = (typeof ONNX_VARIANTS)[number]['name'];
/** Values of --onnx-variant: auto, a variant name, or q8 (transformers.js' name for quantized). */
export const ONNX_VARIANT_CHOICES = ['auto', ...ONNX_VARIANTS.map((v) => v.name), 'q8'] as const;
export type OnnxVariantRequest = (typeof ONNX_VARIANT_CHOICES)[number];

export interface OnnxCandidate {
  /** Path relative to the model folder, with forward slashes. */
  file: string;
  variant: OnnxVariantName;
  merged: boolean;
}

const BASES = ['onnx/model', 'onnx/decoder_model_merged', 'model', 'decoder_model_merged'];

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Every ONNX variant present in a model folder, in preference order. */
export function listOnnxCandidates(dir: string): OnnxCandidate[] {
  const out: OnnxCandidate[] = [];
  for (const v of ONNX_VARIANTS) {
    for (const b of BASES) {
      const file = `${b}${v.suffix}.onnx`;
      if (isFile(path.join(dir, file))) out.push({ file, variant: v.name, merged: b.endsWith('merged') });
    }
  }
  // Older Optimum exports: a decoder that always takes a past (empty on the first step).
  for (const file of ['onnx/decoder_with_past_model.onnx', 'decoder_with_past_model.onnx']) {
    if (isFile(path.join(dir, file))) out.push({ file, variant: 'fp32', merged: false });
  }
  return out;
}

/** The variant an .onnx file name stands for (model_fp16.onnx → fp16), fp32 when it has no suffix. */
export function variantOfFile(file: string): OnnxVariantName {
  const stem = path.basename(file).replace(/\.onnx$/, '');
  for (const v of [...ONNX_VARIANTS].reverse()) if (v.suffix && stem.endsWith(v.suffix)) return v.name;
  return 'fp32';
}

/** The candidate picked for a request: the first of the preference list, or the named variant (null if absent). */
export function pickOnnxCandidate(cands: OnnxCandidate[], request: OnnxVariantRequest = 'auto'): OnnxCandidate | null {
  const want = request === 'q8' ? 'quantized' : request;
  if (want === 'auto') return cands[0] ?? null;
  return cands.find((c) => c.variant === want) ?? null;
}

/** The ONNX file of a model directory in the Optimum / transformers.js layout, if any (preferred variant). */
export function findOnnxFile(dir: string, request: OnnxVariantRequest = 'auto'): string | null {
  const c = pickOnnxCandidate(listOnnxCandidates(dir), request);
  return c ? path.join(dir, c.file) : null;
}

/** Tells what a model path holds, from its files alone (nothing is loaded). */
export function detectFormat(target: string): ModelFormat {
  if (!fs.existsSync(target)) return 'unknown';
  const st = fs.statSync(target);
  if (st.isFile()) {
    if (target.endsWith('.onnx')) return 'onnx';
    if (target.endsWith('.gguf')) return 'gguf';
    if (target.endsWith('.safetensors')) return 'safetensors';
    return 'unknown';
  }
  const files = fs.readdirSync(target);
  if (findOnnxFile(target)) return 'onnx';
  if (files.some((f) => f.endsWith('.gguf'))) return 'gguf';
  const config = readJson(path.join(target, 'config.json'));
  const quant = (config?.quantization_config ?? null) as Record<string, unknown> | null;
  if (files.includes('weights.npz') || (config && 'quantization' in config && !quant)) return 'mlx';
  const hasSafetensors = files.some((f) => f.endsWith('.safetensors'));
  if (quant && (quant.quant_method === 'bitsandbytes' || quant.load_in_4bit === true || quant.load_in_8bit === true))
    return 'bitsandbytes';
  if (hasSafetensors) return 'safetensors';
  if (files.some((f) => f.endsWith('.bin') && f.startsWith('pytorch_model'))) return 'pytorch';
  return 'unknown';
}
