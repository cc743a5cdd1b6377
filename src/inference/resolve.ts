import fs from 'node:fs';
import path from 'node:path';
import { detectFormat, listOnnxCandidates, pickOnnxCandidate, variantOfFile, type ModelFormat, type OnnxVariantName, type OnnxVariantRequest } from './format.js';
import { ModelError, type ModelErrorCode } from './errors.js';
import { prepareSafetensors } from '../formats/hf-checkpoint.js';
import { parseGgufQuantList, pickGgufFile, prepareGguf } from '../formats/gguf.js';
import { DEFAULT_GGUF_ACTIVATIONS, GGUF_ACTIVATION_MODES, type GgufActivations } from '../formats/gguf-activations.js';
import { ModelprintError } from '../errors.js';
import { stableHash } from '../util/hash.js';
import { assertInsideRepo, cacheRepoOf, parseHubId, resolveHubId, snapshotOf, type HubSnapshot } from './hub.js';

/** Where a model's files are. */
export interface ModelFiles {
  /** Display id: hub id for a hub cache snapshot, else the given reference. */
  id: string;
  dir: string;
  format: ModelFormat;
  onnxPath: string | null;
  tokenizerPath: string | null;
  /** The ONNX variant used (by file name: model_fp16.onnx → fp16) and its path relative to dir. */
  onnxVariant: OnnxVariantName | null;
  onnxFile: string | null;
  /** Every ONNX variant the folder holds (relative paths, preference order). */
  onnxVariants: string[];
  /** Hugging Face cache provenance, when the model came from the cache. */
  hub: { repoId: string; revision: string; ref: string | null } | null;
}

/** `…/hub/models--org--name` (or a snapshot below it) → org/name. */
export function hubIdFromCachePath(p: string): string | null {
  const m = /(?:^|[\\/])models--([^\\/]+)(?:[\\/]snapshots[\\/][^\\/]+)?[\\/]?$/.exec(p);
  return m ? m[1].split('--').join('/') : null;
}

/**
 * Where a reference points: an existing path as is (a cache repo folder resolves to its
 * snapshot by refs/main), else a Hub id looked up in the local cache.
 */
export function locateModel(ref: string, id?: string): { abs: string; hub: HubSnapshot | null; id: string } {
  const abs = path.resolve(ref);
  if (fs.existsSync(abs)) {
    const cache = cacheRepoOf(abs);
    if (cache) {
      const display = id ?? cache.repoId;
      if (path.resolve(cache.repoFolder) === abs && fs.existsSync(path.join(abs, 'snapshots'))) {
        const snap = snapshotOf(abs, cache.repoId, null, display);
        return { abs: snap.snapshotDir, hub: snap, id: display };
      }
      if (cache.snapshot) {
        const repoDir = fs.realpathSync(cache.repoFolder);
        return { abs, hub: { repoId: cache.repoId, revision: cache.snapshot, ref: null, repoDir, snapshotDir: abs }, id: display };
      }
    }
    return { abs, hub: null, id: id ?? hubIdFromCachePath(abs) ?? ref };
  }
  if (parseHubId(ref)) {
    const snap = resolveHubId(ref);
    return { abs: snap.snapshotDir, hub: snap, id: id ?? ref };
  }
  throw new ModelError('not_found', id ?? ref, `no such file or folder ${abs}`, 'check the path (models are read from local disk, or as org/name[@revision] from the Hugging Face cache)');
}

let ggufQuantDefault: string | undefined;
/**
 * The `--gguf-quant` preference list for every model a command opens (comma-separated
 * quantization names; unset: $MODELPRINT_GGUF_QUANT, else formats/gguf.ts DEFAULT_GGUF_QUANTS).
 */
export function setGgufQuantPreference(list: string | undefined): void {
  ggufQuantDefault = list;
}

let ggufActivationsDefault: GgufActivations | undefined;
/**
 * `--gguf-activations` for every model a command opens: llama.cpp's rounding of the
 * activations of F16 / quantized weights (default) or float32 (unset: $MODELPRINT_GGUF_ACTIVATIONS).
 */
export function setGgufActivations(mode: string | undefined): void {
  // A bad $MODELPRINT_GGUF_ACTIVATIONS is a usage error at the start of the command, not a per-model failure.
  const v = mode ?? (process.env.MODELPRINT_GGUF_ACTIVATIONS || undefined);
  ggufActivationsDefault = v === undefined ? undefined : parseGgufActivations(v);
}
function ggufActivationsFor(requested: GgufActivations | undefined): GgufActivations {
  return requested ?? ggufActivationsDefault ?? parseGgufActivations(process.env.MODELPRINT_GGUF_ACTIVATIONS || DEFAULT_GGUF_ACTIVATIONS);
}
function parseGgufActivations(v: string): GgufActivations {
  if ((GGUF_ACTIVATION_MODES as readonly string[]).includes(v)) return v as GgufActivations;
  throw new ModelprintError('E_USAGE', `GGUF activations "${v}" is not one of ${GGUF_ACTIVATION_MODES.join(', ')}`, { subject: '--gguf-activations', hint: 'pass --gguf-activations llama.cpp or float32' });
}

const FORMAT_ERRORS: Partial<Record<ModelFormat, [ModelErrorCode, string, string]>> = {
  mlx: ['unsupported_mlx', 'MLX weights cannot be run by ONNX Runtime', 'fingerprint the original upload, or export it to ONNX with Optimum'],
  safetensors: ['unsupported_safetensors', 'safetensors weights without an ONNX export', 'export it with `optimum-cli export onnx --model <id> <dir>` and fingerprint that folder'],
  pytorch: ['unsupported_safetensors', 'PyTorch weights without an ONNX export', 'export it with `optimum-cli export onnx --model <id> <dir>` and fingerprint that folder'],
  unknown: ['unsupported_format', 'no ONNX model found (looked for onnx/model.onnx, model.onnx, onnx/decoder_model_merged.onnx)', 'pass a folder in the Hugging Face / Optimum ONNX layout'],
};

/**
 * Resolves a model reference: a local folder (Optimum / transformers.js layout), a hub
 * cache snapshot or repo folder, a Hub id (org/name[@revision]) in the local cache, or an
 * .onnx file (tokenizer next to it, in its parent, or given explicitly). The ONNX variant
 * is the first of the preference list (format.ts ONNX_VARIANTS) unless one is requested.
 * Throws a ModelError that says precisely what it cannot run.
 */
export function resolveModel(
  ref: string,
  opts: { tokenizer?: string; id?: string; onnxVariant?: OnnxVariantRequest; adapterBase?: string; ggufQuant?: string; ggufActivations?: GgufActivations; castAtUse?: boolean } = {},
): ModelFiles {
  const { abs, hub, id } = locateModel(ref, opts.id);
  let dir = abs;
  let onnxPath: string | null = null;
  let onnxVariant: OnnxVariantName | null = null;
  let onnxFile: string | null = null;
  let onnxVariants: string[] = [];
  const st = fs.statSync(abs);
  if (st.isFile()) {
    dir = path.dirname(abs);
    if (abs.endsWith('.onnx')) {
      onnxPath = abs;
      onnxVariant = variantOfFile(abs);
      onnxFile = path.basename(abs);
      onnxVariants = [onnxFile];
    }
  } else {
    const cands = listOnnxCandidates(dir);
    onnxVariants = cands.map((c) => c.file);
    const request = opts.onnxVariant ?? 'auto';
    // A folder with a single ONNX file has no choice to make: it uses that file under any request.
    const c = cands.length === 1 ? cands[0] : pickOnnxCandidate(cands, request);
    if (!c && cands.length > 0) {
      throw new ModelError(
        'not_found',
        id,
        `no ${request} ONNX variant in ${dir} (it has: ${cands.map((x) => `${x.file} [${x.variant}]`).join(', ')})`,
        'pick one of those with --onnx-variant, or --onnx-variant auto',
      );
    }
    if (c) {
      onnxPath = path.join(dir, c.file);
      onnxVariant = c.variant;
      onnxFile = c.file;
    }
  }
  const format = onnxPath ? 'onnx' : detectFormat(st.isFile() ? abs : dir);
  if (!onnxPath && (format === 'safetensors' || format === 'bitsandbytes')) {
    // A transformers checkpoint or PEFT LoRA adapter: the graph is built from config.json (src/formats);
    // bitsandbytes checkpoints are dequantized into a file first (src/formats/quant-bnb.ts).
    const prepared = prepareSafetensors(dir, id, { adapterBase: opts.adapterBase, castAtUse: opts.castAtUse });
    const tokenizerPath =
      [opts.tokenizer ? path.resolve(opts.tokenizer) : null, path.join(dir, 'tokenizer.json'), path.join(prepared.weightsDir, 'tokenizer.json')].find(
        (p): p is string => !!p && fs.existsSync(p) && fs.statSync(p).isFile(),
      ) ?? null;
    // A LoRA adapter without its own tokenizer reads config and tokenizer from its base.
    const filesDir = tokenizerPath && path.dirname(tokenizerPath) === prepared.weightsDir ? prepared.weightsDir : dir;
    return {
      id,
      dir: filesDir,
      format,
      onnxPath: prepared.onnxPath,
      tokenizerPath,
      onnxVariant: null,
      onnxFile: null,
      onnxVariants: [],
      hub: hub ? { repoId: hub.repoId, revision: hub.revision, ref: hub.ref } : null,
    };
  }
  if (!onnxPath && format === 'gguf') {
    // GGUF: dequantized to float32 into the ONNX path (src/formats/gguf.ts); a folder of quants picks one file.
    const prefs = parseGgufQuantList(opts.ggufQuant ?? ggufQuantDefault ?? process.env.MODELPRINT_GGUF_QUANT);
    const file = st.isFile() ? abs : pickGgufFile(dir, prefs, id);
    if (hub) assertInsideRepo(id, hub.repoDir, file);
    const prepared = prepareGguf(file, id, { activations: ggufActivationsFor(opts.ggufActivations) });
    const all = st.isFile() ? [path.basename(file)] : fs.readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.gguf')).sort();
    return {
      id,
      dir: prepared.dir,
      format: 'gguf',
      onnxPath: prepared.onnxPath,
      tokenizerPath: opts.tokenizer ? path.resolve(opts.tokenizer) : prepared.tokenizerPath,
      onnxVariant: null,
      // The GGUF file used: with several in a folder, fingerprints are keyed by it (fingerprintKey).
      onnxFile: path.basename(file),
      onnxVariants: all,
      hub: hub ? { repoId: hub.repoId, revision: hub.revision, ref: hub.ref } : null,
    };
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
  if (hub) {
    // Snapshot files are links into ../../blobs: allowed, as long as they stay in the repo folder.
    for (const p of [onnxPath, tokenizerPath && !opts.tokenizer ? tokenizerPath : null, path.join(modelDir, 'config.json')]) {
      if (p && (p === onnxPath || fs.existsSync(p))) assertInsideRepo(id, hub.repoDir, p);
    }
  }
  return {
    id,
    dir: modelDir,
    format: 'onnx',
    onnxPath,
    tokenizerPath,
    onnxVariant,
    onnxFile: onnxFile && path.basename(path.dirname(onnxPath)) === 'onnx' && !onnxFile.startsWith('onnx/') ? `onnx/${onnxFile}` : onnxFile,
    onnxVariants,
    hub: hub ? { repoId: hub.repoId, revision: hub.revision, ref: hub.ref } : null,
  };
}

/**
 * The key fingerprints of a model are stored under: its content hash, or — for a folder
 * holding several ONNX variants — a hash of the content hash and the variant file used, so
 * fp32 and q4 sketches of one upload never stand in for each other. A path that does not
 * resolve keys by its content hash (opening it will say why it cannot run).
 */
export function fingerprintKey(modelPath: string, hash: string, onnxVariant: OnnxVariantRequest = 'auto'): string {
  let files: ModelFiles;
  try {
    files = resolveModel(modelPath, { onnxVariant });
  } catch {
    return hash;
  }
  const several = files.onnxVariants.length > 1 && !!files.onnxFile;
  // GGUF under llama.cpp's activation rounding (the default) computes other logits than the
  // float32 path that fingerprints stored before it used (and --gguf-activations float32 uses): its own key.
  const mode = files.format === 'gguf' ? ggufActivationsFor(undefined) : null;
  if (mode && mode !== 'float32') return stableHash({ content: hash, ...(several ? { onnx_file: files.onnxFile } : {}), gguf_activations: mode });
  if (!several) return hash;
  return stableHash({ content: hash, onnx_file: files.onnxFile });
}

/** The ONNX file and variant a model path opens with, or null when it does not resolve (opening it says why). */
export function onnxFileOf(modelPath: string, onnxVariant: OnnxVariantRequest = 'auto'): Pick<ModelFiles, 'onnxFile' | 'onnxVariant'> | null {
  try {
    const f = resolveModel(modelPath, { onnxVariant });
    return { onnxFile: f.onnxFile, onnxVariant: f.onnxVariant };
  } catch {
    return null;
  }
}
