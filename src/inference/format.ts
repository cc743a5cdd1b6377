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

/** The ONNX file of a model directory in the Optimum layout, if any. */
export function findOnnxFile(dir: string): string | null {
  const candidates = [
    'onnx/model.onnx',
    'onnx/decoder_model_merged.onnx',
    'model.onnx',
    'decoder_model_merged.onnx',
    'onnx/decoder_with_past_model.onnx',
  ];
  for (const c of candidates) {
    const p = path.join(dir, c);
    if (fs.existsSync(p) && fs.statSync(p).isFile()) return p;
  }
  return null;
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
