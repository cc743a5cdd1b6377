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
import { z } from 'zod';
import { messageOf } from '../errors.js';
import { ModelError } from '../inference/errors.js';
import { hubCacheDir, parseHubId, resolveHubId } from '../inference/hub.js';
import { writeFileAtomic } from '../util/atomic.js';
import { buildDecoderGraph, decoderSpec, type DecoderGraphOptions, type LoraSpec } from './hf-decoder.js';
import { DEQUANT_FILE, type DequantizedCheckpoint } from './dequantized.js';
import { isBitsandbytesConfig, openBnbCheckpoint } from './quant-bnb.js';
import { openGptqCheckpoint, parseQuantConfig } from './quant-gptq.js';
import { openCheckpoint, readSafetensorsHeader, type TensorEntry } from './safetensors.js';

/** Bumped whenever the graph a checkpoint builds to changes. */
export const GRAPH_VERSION = 3;

/** `$MODELPRINT_CACHE_DIR`, else `$XDG_CACHE_HOME/modelprint`, else `~/.cache/modelprint`. */
export function cacheRoot(): string {
  if (process.env.MODELPRINT_CACHE_DIR) return path.resolve(process.env.MODELPRINT_CACHE_DIR);
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.cache'), 'modelprint');
}

export interface PreparedCheckpoint {
  onnxPath: string;
  /** The folder that holds config.json and the (base) weights. */
  weightsDir: string;
  modelType: string;
  /** Whether the graph was taken from the cache. */
  cached: boolean;
}

/**
 * The base of a LoRA adapter: `explicit` (--adapter-base), else `base_model_name_or_path`
 * as a folder (absolute or relative to the adapter), else that repo id's snapshot in the
 * local Hugging Face cache (refs/main).
 */
export function findAdapterBase(adapterDir: string, baseRef: string | null, id: string, explicit?: string): string {
  if (explicit) {
    const p = path.resolve(explicit);
    if (!fs.existsSync(p)) throw new ModelError('missing_base_model', id, `--adapter-base ${p} does not exist`, 'pass the folder of the base checkpoint');
    return p;
  }
  if (!baseRef) throw new ModelError('missing_base_model', id, 'adapter_config.json names no base_model_name_or_path', 'pass the base checkpoint with --adapter-base');
  const local = path.resolve(adapterDir, baseRef);
  if (fs.existsSync(path.join(local, 'config.json'))) return local;
  if (parseHubId(baseRef)) {
    try {
      const snap = resolveHubId(baseRef).snapshotDir;
      if (fs.existsSync(path.join(snap, 'config.json'))) return snap;
    } catch (e) {
      if (!(e instanceof ModelError && e.modelCode === 'not_found')) throw e;
    }
  }
  throw new ModelError(
    'missing_base_model',
    id,
    `the LoRA adapter's base model "${baseRef}" is neither a local folder nor in the Hugging Face cache ${hubCacheDir()}`,
    `fetch it (\`huggingface-cli download ${baseRef}\`) or pass its folder with --adapter-base`,
  );
}

const AdapterConfigSchema = z
  .object({
    peft_type: z.string().optional(),
    base_model_name_or_path: z.string().nullable().optional(),
    r: z.number().int().positive(),
    lora_alpha: z.number(),
    use_rslora: z.boolean().optional(),
    use_dora: z.boolean().optional(),
    rank_pattern: z.record(z.string(), z.unknown()).optional(),
    alpha_pattern: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

interface Adapter {
  file: string;
  lora: LoraSpec;
  /** Adapter tensors that replace base tensors (modules_to_save). */
  overrides: Map<string, TensorEntry>;
  loraTensors: TensorEntry[];
  fingerprint: string[];
}

function openAdapter(dir: string, id: string): { adapter: Adapter; baseRef: string | null } {
  const cfgFile = path.join(dir, 'adapter_config.json');
  let parsed;
  try {
    parsed = AdapterConfigSchema.safeParse(JSON.parse(fs.readFileSync(cfgFile, 'utf8')));
  } catch (e) {
    throw new ModelError('load_failed', id, `${cfgFile} is not valid JSON (${messageOf(e)})`);
  }
  if (!parsed.success) throw new ModelError('load_failed', id, `adapter_config.json: ${parsed.error.issues[0].path.join('.')} ${parsed.error.issues[0].message}`);
  const c = parsed.data;
  const refuse = (what: string) => new ModelError('unsupported_safetensors', id, `PEFT adapter with ${what} is not supported`, 'merge it into its base with peft (merge_and_unload) and fingerprint the merged checkpoint');
  if (c.peft_type && c.peft_type !== 'LORA') throw refuse(`peft_type ${c.peft_type}`);
  if (c.use_dora) throw refuse('DoRA (use_dora)');
  if (Object.keys(c.rank_pattern ?? {}).length || Object.keys(c.alpha_pattern ?? {}).length) throw refuse('per-module rank_pattern / alpha_pattern');
  const file = path.join(dir, 'adapter_model.safetensors');
  if (!fs.existsSync(file)) throw new ModelError('not_found', id, 'adapter_config.json without adapter_model.safetensors', 'download the adapter weights');
  const h = readSafetensorsHeader(file, id);
  const modules = new Map<string, { a: string; b: string }>();
  const overrides = new Map<string, TensorEntry>();
  const loraTensors: TensorEntry[] = [];
  for (const t of h.tensors) {
    const name = t.name.replace(/^base_model\.model\./, '');
    const m = /^(.*)\.lora_([AB])(?:\.[\w-]+)?\.weight$/.exec(name);
    if (m) {
      const e = modules.get(m[1]) ?? { a: '', b: '' };
      e[m[2] === 'A' ? 'a' : 'b'] = t.name;
      modules.set(m[1], e);
      loraTensors.push(t);
    } else if (/lora_|\.magnitude/.test(name)) {
      throw refuse(`tensor ${t.name}`);
    } else {
      overrides.set(name, t);
    }
  }
  for (const [mod, e] of modules) if (!e.a || !e.b) throw new ModelError('corrupt_safetensors', id, `adapter_model.safetensors: module ${mod} has lora_${e.a ? 'A' : 'B'} only`);
  const scale = c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
  return {
    adapter: { file, lora: { modules, scale, used: new Set() }, overrides, loraTensors, fingerprint: [fs.readFileSync(cfgFile, 'utf8'), `${h.size}:${h.mtimeMs}:${h.header.toString('utf8')}`] },
    baseRef: c.base_model_name_or_path ?? null,
  };
}

/** What dequantizing each quant_method would take (GPTQ and AWQ: quant-gptq.ts, bitsandbytes: quant-bnb.ts; each names what its unsupported variants need). */
const QUANT_NEEDS: Record<string, string> = {
  bitsandbytes: 'the bitsandbytes layout of its quantization_config (NF4 / FP4 with quant_state, or LLM.int8() with SCB)',
};

/** `unsupported_quantization` (or `unsupported_bitsandbytes`) naming the method and what running it would need. */
export function quantizationError(q: Record<string, unknown>, id: string): ModelError {
  const method = String(q.quant_method ?? (q.load_in_4bit || q.load_in_8bit ? 'bitsandbytes' : 'unknown')).toLowerCase();
  const bits = typeof q.bits === 'number' ? `, ${q.bits}-bit` : q.load_in_4bit ? ', 4-bit' : q.load_in_8bit ? ', 8-bit' : '';
  const group = typeof q.group_size === 'number' ? `, group size ${q.group_size}` : '';
  const need = QUANT_NEEDS[method] ?? `a dequantizer for quant_method "${method}"`;
  return new ModelError(
    method === 'bitsandbytes' ? 'unsupported_bitsandbytes' : 'unsupported_quantization',
    id,
    `${method.toUpperCase()} quantized checkpoint (quantization_config: ${method}${bits}${group}) cannot be run: that needs ${need}`,
    'fingerprint the full-precision base of this quantization, or dequantize it with transformers (model.dequantize(), then save_pretrained) and fingerprint that folder',
  );
}

export interface PrepareOptions extends DecoderGraphOptions {
  /** The base checkpoint of a LoRA adapter (else found from adapter_config.json). */
  adapterBase?: string;
}

/**
 * Builds (or finds in the cache) the ONNX graph of a safetensors checkpoint folder, or of
 * a PEFT LoRA adapter folder on its base (the LoRA products are added in the graph, so
 * neither file is rewritten).
 */
export function prepareSafetensors(dir: string, id: string, opts: PrepareOptions = {}): PreparedCheckpoint {
  let adapter: Adapter | null = null;
  let weightsDir = dir;
  if (fs.existsSync(path.join(dir, 'adapter_config.json'))) {
    const a = openAdapter(dir, id);
    adapter = a.adapter;
    weightsDir = findAdapterBase(dir, a.baseRef, id, opts.adapterBase);
  }
  const cfgFile = path.join(weightsDir, 'config.json');
  if (!fs.existsSync(cfgFile)) {
    throw new ModelError('load_failed', id, `safetensors weights without config.json in ${weightsDir}`, 'download the config.json of the checkpoint next to its weights');
  }
  const cfgText = fs.readFileSync(cfgFile, 'utf8');
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(cfgText) as Record<string, unknown>;
  } catch (e) {
    throw new ModelError('load_failed', id, `${cfgFile} is not valid JSON (${messageOf(e)})`, 'fix or replace config.json');
  }
  // Quantized checkpoints (bitsandbytes: quant-bnb.ts, GPTQ / AWQ: quant-gptq.ts) are
  // dequantized to float32 into a file next to the graph (dequantized.ts); other methods: a coded error.
  const qcfg = cfg.quantization_config as Record<string, unknown> | undefined;
  let deq: DequantizedCheckpoint | null = null;
  if (qcfg) {
    if (typeof qcfg !== 'object' || Array.isArray(qcfg)) throw quantizationError(qcfg, id);
    if (isBitsandbytesConfig(qcfg)) {
      const conv1d = cfg.model_type === 'gpt2' ? (n: string) => /\.(c_attn|c_proj|c_fc)\.weight$/.test(n) : undefined;
      deq = openBnbCheckpoint(weightsDir, qcfg, id, { conv1d });
    } else {
      const qspec = parseQuantConfig(qcfg, id);
      if (!qspec) throw quantizationError(qcfg, id);
      deq = openGptqCheckpoint(weightsDir, qspec, id, decoderSpec(cfg, id).arch);
    }
  }
  const spec = decoderSpec(cfg, id);
  const ckpt = deq ? deq.ckpt : openCheckpoint(weightsDir, id);
  if (adapter) {
    ckpt.files.push(adapter.file);
    for (const [name, t] of adapter.overrides) {
      if (!ckpt.tensors.has(name)) throw new ModelError('load_failed', id, `the adapter's tensor "${name}" has no counterpart in the base ${weightsDir}`, 'pass the right base with --adapter-base');
      ckpt.tensors.set(name, t);
    }
    for (const t of adapter.loraTensors) ckpt.tensors.set(t.name, t);
    ckpt.fingerprint.push(...adapter.fingerprint);
  }
  const real = ckpt.files.map((f) => fs.realpathSync(f));
  const digest = (o: object) => crypto.createHash('sha256').update(JSON.stringify(o)).digest('hex').slice(0, 32);
  const key = digest({ v: GRAPH_VERSION, cfg: cfgText, files: real, headers: ckpt.fingerprint, castAtUse: opts.castAtUse === true, headChunk: opts.headChunkBytes ?? null });
  // The dequantized weights do not depend on the graph's options (--low-memory): one file
  // per checkpoint, hard-linked into each of its graphs' folders.
  const dequantKey = digest({ v: GRAPH_VERSION, cfg: cfgText, files: real, headers: ckpt.fingerprint, method: deq?.method ?? null, bytes: deq?.bytes ?? 0 });
  const encode = (location: (file: string) => string): Buffer => {
    const lora = adapter ? { ...adapter.lora, used: new Set<string>() } : undefined;
    const graph = buildDecoderGraph(spec, ckpt, cfg, id, location, lora, undefined, { castAtUse: opts.castAtUse, headChunkBytes: opts.headChunkBytes });
    const unused = lora ? [...lora.modules.keys()].filter((m) => !lora.used.has(m)) : [];
    if (unused.length) {
      throw new ModelError('unsupported_safetensors', id, `LoRA on module ${unused[0]} is not supported (${unused.length} module(s) unused by the ${spec.arch} graph)`, 'merge the adapter with peft (merge_and_unload) and fingerprint the merged checkpoint');
    }
    return graph.encode({
      producerName: 'modelprint',
      producerVersion: String(GRAPH_VERSION),
      docString: `${spec.arch} decoder built by modelprint from ${dir}`,
      metadata: { source: dir, model_type: spec.arch },
    });
  };

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
  if (fs.existsSync(onnxPath) && linksOk()) return { onnxPath, weightsDir, modelType: spec.arch, cached: true };
  const index = new Map(ckpt.files.map((f, i) => [f, i]));
  const dequantName = (file: string): string | null => (deq && file === deq.dequantFile ? DEQUANT_FILE : null);
  const tmp = `${graphDir}.tmp-${process.pid}-${Date.now()}`;
  let linkError: unknown = null;
  try {
    fs.mkdirSync(tmp, { recursive: true });
    real.forEach((f, i) => fs.linkSync(f, path.join(tmp, linkName(i))));
    if (deq) placeDequantized(deq, path.join(cacheRoot(), 'hf-graphs', `dequantized-${dequantKey}.bin`), path.join(tmp, DEQUANT_FILE));
    fs.writeFileSync(path.join(tmp, 'model.onnx'), encode((file) => dequantName(file) ?? linkName(index.get(file)!)));
    fs.rmSync(graphDir, { recursive: true, force: true });
    fs.renameSync(tmp, graphDir);
    return { onnxPath, weightsDir, modelType: spec.arch, cached: false };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // A checkpoint the graph builder refuses (a coded error) is not a placement problem.
    if (e instanceof ModelError) throw e;
    // Another process may have published the same graph meanwhile.
    if (fs.existsSync(onnxPath) && linksOk()) return { onnxPath, weightsDir, modelType: spec.arch, cached: true };
    linkError = e;
  }
  const realDirs = new Set(real.map((f) => path.dirname(f)));
  if (realDirs.size === 1) {
    const side = path.join([...realDirs][0], `.modelprint-${key}.onnx`);
    if (fs.existsSync(side)) return { onnxPath: side, weightsDir, modelType: spec.arch, cached: true };
    const realOf = new Map(ckpt.files.map((f, i) => [f, real[i]]));
    // Quantized checkpoints: the dequantized weights go next to the graph (written before it, so a graph found there has them).
    const sideDequant = `.modelprint-${dequantKey}.${DEQUANT_FILE}`;
    const sideTmp = path.join(path.dirname(side), `${sideDequant}.tmp-${process.pid}`);
    try {
      if (deq && sizeOf(path.join(path.dirname(side), sideDequant)) !== deq.bytes) {
        deq.write(sideTmp);
        fs.renameSync(sideTmp, path.join(path.dirname(side), sideDequant));
      }
      writeFileAtomic(side, encode((file) => (dequantName(file) ? sideDequant : path.basename(realOf.get(file)!))));
      return { onnxPath: side, weightsDir, modelType: spec.arch, cached: false };
    } catch (e) {
      fs.rmSync(sideTmp, { force: true });
      if (e instanceof ModelError) throw e;
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

function sizeOf(file: string): number | null {
  try {
    return fs.statSync(file).size;
  } catch {
    return null;
  }
}

/**
 * Gives `dest` the dequantized weights: a hard link to `store` (the checkpoint's one
 * dequantized file, shared by its default and --low-memory graphs) when that is complete,
 * else written (complete before it is linked as `store`, so a store file is never partial).
 */
function placeDequantized(deq: DequantizedCheckpoint, store: string, dest: string): void {
  const have = sizeOf(store);
  if (have === deq.bytes) {
    try {
      fs.linkSync(store, dest);
      return;
    } catch {
      // removed meanwhile, or not linkable: write it below
    }
  }
  deq.write(dest);
  try {
    if (have !== null && have !== deq.bytes) fs.rmSync(store, { force: true });
    fs.linkSync(dest, store);
  } catch {
    // another process published it meanwhile (or the folder is read-only): dest is complete either way
  }
}
