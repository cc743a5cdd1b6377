import fs from 'node:fs';
import path from 'node:path';
import { detectFormat, findOnnxFile, type ModelFormat } from './format.js';
import { ModelError, type ModelErrorCode } from './errors.js';
import { prepareSafetensors } from '../formats/hf-checkpoint.js';

/** Where a model's files are. */
export interface ModelFiles {
  /** Display id: hub id for a hub cache snapshot, else the given reference. */
  id: string;
  dir: string;
  format: ModelFormat;
  onnxPath: string | null;
  tokenizerPath: string | null;
}

/** `…/hub/models--org--name` (or a snapshot below it) → org/name. */
export function hubIdFromCachePath(p: string): string | null {
  const m = /(?:^|[\\/])models--([^\\/]+)(?:[\\/]snapshots[\\/][^\\/]+)?[\\/]?$/.exec(p);
  return m ? m[1].split('--').join('/') : null;
}

/** A hub cache repo folder (models--org--name) resolves to the snapshot named by refs/main. */
function resolveHubCacheRoot(dir: string): string {
  const snapshots = path.join(dir, 'snapshots');
  if (!fs.existsSync(snapshots)) return dir;
  const refMain = path.join(dir, 'refs', 'main');
  if (fs.existsSync(refMain)) {
    const rev = fs.readFileSync(refMain, 'utf8').trim();
    if (fs.existsSync(path.join(snapshots, rev))) return path.join(snapshots, rev);
  }
  const revs = fs.readdirSync(snapshots);
  if (revs.length === 1) return path.join(snapshots, revs[0]);
  throw new ModelError(
    'not_found',
    dir,
    `hub cache folder has ${revs.length} snapshots and no refs/main`,
    'pass the snapshot folder itself (…/snapshots/<revision>)',
  );
}

const FORMAT_ERRORS: Partial<Record<ModelFormat, [ModelErrorCode, string, string]>> = {
  gguf: ['unsupported_gguf', 'GGUF (llama.cpp) weights cannot be run by ONNX Runtime', 'fingerprint the original (unquantized) upload, or export it to ONNX with Optimum'],
  mlx: ['unsupported_mlx', 'MLX weights cannot be run by ONNX Runtime', 'fingerprint the original upload, or export it to ONNX with Optimum'],
  bitsandbytes: ['unsupported_bitsandbytes', 'bitsandbytes 4/8-bit weights cannot be exported to ONNX', 'fingerprint the full-precision base of this quantization'],
  safetensors: ['unsupported_safetensors', 'safetensors weights without an ONNX export', 'export it with `optimum-cli export onnx --model <id> <dir>` and fingerprint that folder'],
  pytorch: ['unsupported_safetensors', 'PyTorch weights without an ONNX export', 'export it with `optimum-cli export onnx --model <id> <dir>` and fingerprint that folder'],
  unknown: ['unsupported_format', 'no ONNX model found (looked for onnx/model.onnx, model.onnx, onnx/decoder_model_merged.onnx)', 'pass a folder in the Hugging Face / Optimum ONNX layout'],
};

/**
 * Resolves a model reference: a local folder (Optimum layout), a hub cache snapshot,
 * a hub cache repo folder, or an .onnx file (tokenizer next to it, in its parent, or
 * given explicitly). Throws a ModelError that says precisely what it cannot run.
 */
export function resolveModel(ref: string, opts: { tokenizer?: string; id?: string; adapterBase?: string } = {}): ModelFiles {
  const abs = path.resolve(ref);
  if (!fs.existsSync(abs)) {
    throw new ModelError('not_found', opts.id ?? ref, `no such file or folder ${abs}`, 'check the path (models are read from local disk or a Hugging Face cache)');
  }
  let dir = abs;
  let onnxPath: string | null = null;
  const st = fs.statSync(abs);
  if (st.isFile()) {
    dir = path.dirname(abs);
    if (abs.endsWith('.onnx')) onnxPath = abs;
  } else {
    dir = resolveHubCacheRoot(abs);
    onnxPath = findOnnxFile(dir);
  }
  const id = opts.id ?? hubIdFromCachePath(abs) ?? ref;
  const format = onnxPath ? 'onnx' : detectFormat(st.isFile() ? abs : dir);
  if (!onnxPath && format === 'safetensors') {
    // A transformers checkpoint: the graph is built from config.json (src/formats).
    const prepared = prepareSafetensors(dir, id, { adapterBase: opts.adapterBase });
    const tokenizerPath =
      [opts.tokenizer ? path.resolve(opts.tokenizer) : null, path.join(dir, 'tokenizer.json'), path.join(prepared.weightsDir, 'tokenizer.json')].find(
        (p): p is string => !!p && fs.existsSync(p) && fs.statSync(p).isFile(),
      ) ?? null;
    // A LoRA adapter without its own tokenizer reads config and tokenizer from its base.
    const filesDir = tokenizerPath && path.dirname(tokenizerPath) === prepared.weightsDir ? prepared.weightsDir : dir;
    return { id, dir: filesDir, format: 'safetensors', onnxPath: prepared.onnxPath, tokenizerPath };
  }
  if (!onnxPath) {
    const [code, msg, hint] = FORMAT_ERRORS[format] ?? FORMAT_ERRORS.unknown!;
    throw new ModelError(code, id, msg, hint);
  }
  const candidates = opts.tokenizer
    ? [path.resolve(opts.tokenizer)]
    : [path.join(path.dirname(onnxPath), 'tokenizer.json'), path.join(dir, 'tokenizer.json'), path.join(path.dirname(onnxPath), '..', 'tokenizer.json')];
  const tokenizerPath = candidates.find((p) => fs.existsSync(p) && fs.statSync(p).isFile()) ?? null;
  const modelDir = path.basename(path.dirname(onnxPath)) === 'onnx' ? path.dirname(path.dirname(onnxPath)) : dir;
  return { id, dir: modelDir, format: 'onnx', onnxPath, tokenizerPath };
}
