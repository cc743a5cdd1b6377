/**
 * A transformers checkpoint folder (config.json + safetensors) → an ONNX model file that
 * ONNX Runtime can open: the graph is built from config.json and its initializers point
 * into the safetensors files (external data through links in the graph's folder, so
 * nothing is copied). Built graphs are cached under the modelprint cache folder, keyed by
 * a digest of config.json and every shard's header, size and mtime, so a second open
 * only reads the headers.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { messageOf } from '../errors.js';
import { ModelError } from '../inference/errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { buildDecoderGraph, decoderSpec } from './hf-decoder.js';
import { openCheckpoint } from './safetensors.js';

/** Bumped whenever the graph a checkpoint builds to changes. */
export const GRAPH_VERSION = 1;

/** `$MODELPRINT_CACHE_DIR`, else `$XDG_CACHE_HOME/modelprint`, else `~/.cache/modelprint`. */
export function cacheRoot(): string {
  if (process.env.MODELPRINT_CACHE_DIR) return path.resolve(process.env.MODELPRINT_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.cache'), 'modelprint');
}

export interface PreparedCheckpoint {
  onnxPath: string;
  modelType: string;
  /** Whether the graph was taken from the cache. */
  cached: boolean;
}

/** Builds (or finds in the cache) the ONNX graph of a safetensors checkpoint folder. */
export function prepareSafetensors(dir: string, id: string): PreparedCheckpoint {
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile)) {
    throw new ModelError('load_failed', id, `safetensors weights without config.json in ${dir}`, 'download the config.json of the checkpoint next to its weights');
  }
  const cfgText = fs.readFileSync(cfgFile, 'utf8');
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(cfgText) as Record<string, unknown>;
  } catch (e) {
    throw new ModelError('load_failed', id, `${cfgFile} is not valid JSON (${messageOf(e)})`, 'fix or replace config.json');
  }
  if (cfg.quantization_config) {
    const method = String((cfg.quantization_config as Record<string, unknown>).quant_method ?? 'unknown');
    throw new ModelError('unsupported_safetensors', id, `quantized checkpoint (quant_method ${method}) cannot be run yet`, 'fingerprint the full-precision base of this quantization');
  }
  const spec = decoderSpec(cfg, id);
  const ckpt = openCheckpoint(dir, id);
  const real = ckpt.files.map((f) => fs.realpathSync(f));
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify({ v: GRAPH_VERSION, cfg: cfgText, files: real, headers: ckpt.fingerprint }))
    .digest('hex')
    .slice(0, 32);
  const encode = (location: (file: string) => string): Buffer =>
    buildDecoderGraph(spec, ckpt, cfg, id, location).encode({
      producerName: 'modelprint',
      producerVersion: String(GRAPH_VERSION),
      docString: `${spec.arch} decoder built by modelprint from ${dir}`,
      metadata: { source: dir, model_type: spec.arch },
    });

  // ONNX Runtime only reads external data inside the model file's folder (after resolving
  // symlinks), so the graph's folder holds hard links to the weights; where that is not
  // possible (another file system), the graph is written next to the weights themselves.
  const graphDir = path.join(cacheRoot(), 'hf-graphs', key);
  const onnxPath = path.join(graphDir, 'model.onnx');
  const linkName = (i: number) => `weights-${i}.safetensors`;
  const sameFile = (a: string, b: string) => {
    try {
      const x = fs.statSync(a);
      const y = fs.statSync(b);
      return x.ino === y.ino && x.dev === y.dev;
    } catch {
      return false;
    }
  };
  const linksOk = () => real.every((f, i) => sameFile(path.join(graphDir, linkName(i)), f));
  if (fs.existsSync(onnxPath) && linksOk()) return { onnxPath, modelType: spec.arch, cached: true };
  const index = new Map(ckpt.files.map((f, i) => [f, i]));
  const tmp = `${graphDir}.tmp-${process.pid}-${Date.now()}`;
  let linkError: unknown = null;
  try {
    fs.mkdirSync(tmp, { recursive: true });
    real.forEach((f, i) => fs.linkSync(f, path.join(tmp, linkName(i))));
    fs.writeFileSync(path.join(tmp, 'model.onnx'), encode((file) => linkName(index.get(file)!)));
    fs.rmSync(graphDir, { recursive: true, force: true });
    fs.renameSync(tmp, graphDir);
    return { onnxPath, modelType: spec.arch, cached: false };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // Another process may have published the same graph meanwhile.
    if (fs.existsSync(onnxPath) && linksOk()) return { onnxPath, modelType: spec.arch, cached: true };
    linkError = e;
  }
  const realDirs = new Set(real.map((f) => path.dirname(f)));
  if (realDirs.size === 1) {
    const side = path.join([...realDirs][0], `.modelprint-${key}.onnx`);
    if (fs.existsSync(side)) return { onnxPath: side, modelType: spec.arch, cached: true };
    const realOf = new Map(ckpt.files.map((f, i) => [f, real[i]]));
    try {
      writeFileAtomic(side, encode((file) => path.basename(realOf.get(file)!)));
      return { onnxPath: side, modelType: spec.arch, cached: false };
    } catch {
      // fall through to the error below
    }
  }
  throw new ModelError(
    'load_failed',
    id,
    `cannot place the model graph next to its weights: ${messageOf(linkError)}`,
    'set MODELPRINT_CACHE_DIR to a writable folder on the file system that holds the weights',
  );
}
