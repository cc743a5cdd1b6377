/**
 * Builds a model zoo directory: one Hugging Face / Optimum-layout folder per model,
 * plus lineage.json and models.csv. The zoo is built in a temporary sibling folder
 * and renamed into place, so an interrupted build never leaves a half zoo behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EXIT, ModelprintError, messageOf } from '../errors.js';
import { addNoise, average, extendVocab, mergeLora, prune, quantizeRoundTrip, shiftHead } from './derive.js';
import { encodeLlamaOnnx, generationConfigJson, llamaConfigJson, type HfConfigExtras } from './llama.js';
import { Rng } from '../util/rng.js';
import { DEFAULT_SEED, ZOO_FORMAT, zooSpec, type DerivativeDef, type FamilyDef, type Relation, type ZooSize, type ZooSpec } from './spec.js';
import { BYTE_TO_CHAR, extendTokenizer, generateTokenizer, tokenizerFiles, type ZooTokenizer } from './tokenizer.js';
import { initBaseWeights, parameterCount, type LlamaWeights } from './weights.js';

/** Files every zoo model folder has. */
export const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'onnx/model.onnx',
] as const;

export interface ZooModel {
  id: string;
  /** Folder relative to the zoo directory (= id). */
  path: string;
  family: string;
  /** The family base model id; null for a base. */
  base: string | null;
  /** Direct parent id (the first one for a merge); null for a base. */
  parent: string | null;
  parents: string[];
  relation: Relation;
  model_type: string;
  /** Steps from the family base (base 0, chain-3 3, a merge 1 + its deepest parent). */
  depth: number;
  tokenizer: string;
  vocab_size: number;
  tie_word_embeddings: boolean;
  parameters: number;
  description: string;
}

export interface ZooManifest {
  generator: 'modelprint zoo';
  format: number;
  size: ZooSize;
  seed: number;
  models: ZooModel[];
}

export interface ZooResult {
  /** Absolute zoo directory. */
  dir: string;
  size: ZooSize;
  seed: number;
  models: ZooModel[];
  /** Build time (0 when reused). */
  seconds: number;
  /** True when an existing complete zoo was kept. */
  reused: boolean;
}

export interface CreateZooOptions {
  size?: ZooSize;
  seed?: number;
  /** Rebuild even when a complete zoo with the same size and seed exists. */
  force?: boolean;
  /** Progress messages (one line each). */
  log?: (msg: string) => void;
}

const MANIFEST = 'lineage.json';
const CSV = 'models.csv';

/** Reads the zoo manifest of a directory, or null when it has none (or an unreadable one). */
export function readZooManifest(dir: string): ZooManifest | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as ZooManifest;
    return m && m.generator === 'modelprint zoo' && Array.isArray(m.models) ? m : null;
  } catch {
    return null;
  }
}

/** Why an existing zoo cannot be reused for (size, seed), or null when it can. */
function staleReason(dir: string, m: ZooManifest, size: ZooSize, seed: number): string | null {
  if (m.format !== ZOO_FORMAT) return `it was made by another zoo format (${m.format}, now ${ZOO_FORMAT})`;
  if (m.size !== size || m.seed !== seed) return `it has size ${m.size} and seed ${m.seed}`;
  const expected = zooModelCount(size);
  if (m.models.length !== expected) return `it lists ${m.models.length} models, not ${expected}`;
  if (!fs.existsSync(path.join(dir, CSV))) return `${CSV} is missing`;
  for (const model of m.models) {
    for (const f of MODEL_FILES) {
      if (!fs.existsSync(path.join(dir, model.path, f))) return `${model.path}/${f} is missing`;
    }
  }
  return null;
}

const zooModelCount = (size: ZooSize) => {
  const s = zooSpec(size);
  return s.families.length * (1 + s.derivatives.length);
};

/** Removes temp folders of earlier builds of this zoo whose process is gone. */
function removeStaleTemps(parent: string, base: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return;
  }
  const re = new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.zoo-(?:tmp|old)-(\\d+)$`);
  for (const e of entries) {
    const m = re.exec(e);
    if (!m) continue;
    const alive = processAlive(Number(m[1]));
    if (!alive) fs.rmSync(path.join(parent, e), { recursive: true, force: true });
  }
}

/**
 * Makes sure a complete zoo of (size, seed) exists in `dir`: reuses one that does unless
 * `force`, rebuilds an incomplete or different zoo, and refuses to touch a non-empty
 * folder that is not a zoo.
 */
export async function createZoo(dirArg: string, opts: CreateZooOptions = {}): Promise<ZooResult> {
  const size = opts.size ?? 'default';
  const seed = opts.seed ?? DEFAULT_SEED;
  const log = opts.log ?? (() => undefined);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ModelprintError('E_USAGE', `seed ${seed} is not a non-negative integer`, { subject: 'seed' });
  }
  const dir = path.resolve(dirArg);
  try {
    return await ensureBuilt(dir, dirArg, size, seed, opts.force ?? false, log);
  } catch (e) {
    if (e instanceof ModelprintError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelprintError(code === 'EACCES' || code === 'EPERM' ? 'E_PERMISSION' : 'E_IO', `cannot build the zoo in ${dir}: ${messageOf(e)}`, {
      subject: dirArg,
      hint: code === 'ENOSPC' ? 'free some disk space (the default zoo needs about 0.7 GB)' : 'check that the directory is writable',
      cause: e,
    });
  }
}

async function ensureBuilt(dir: string, dirArg: string, size: ZooSize, seed: number, force: boolean, log: (msg: string) => void): Promise<ZooResult> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  const fast = inspectTarget(dir, dirArg, size, seed);
  if (fast.reusable && !force) {
    log(`zoo in ${dir} is complete (${fast.reusable.models.length} models, size ${size}, seed ${seed}); reusing it`);
    return { dir, size, seed, models: fast.reusable.models, seconds: 0, reused: true };
  }
  fs.mkdirSync(parent, { recursive: true });
  // One builder per zoo directory at a time; a waiting caller then reuses its result.
  const lock = await acquireLock(path.join(parent, `.${base}.zoo-lock`), (pid) => log(`waiting for process ${pid}, which is building ${dir} …`));
  try {
    const state = inspectTarget(dir, dirArg, size, seed);
    if (state.reusable && (!force || fast.reusable === null)) {
      log(`zoo in ${dir} is complete (${state.reusable.models.length} models, size ${size}, seed ${seed}); reusing it`);
      return { dir, size, seed, models: state.reusable.models, seconds: 0, reused: true };
    }
    if (state.staleReason) log(`rebuilding the zoo in ${dir}: ${state.staleReason}`);
    else if (state.reusable) log(`rebuilding the zoo in ${dir} (--force)`);
    return await buildZoo(dir, dirArg, size, seed, log);
  } finally {
    lock.release();
  }
}

interface TargetState {
  /** The manifest of a complete zoo of (size, seed). */
  reusable: ZooManifest | null;
  /** Why an existing zoo cannot be reused. */
  staleReason: string | null;
}

/** What is at the target: nothing, a reusable zoo, a stale zoo; throws for anything else. */
function inspectTarget(dir: string, dirArg: string, size: ZooSize, seed: number): TargetState {
  if (!fs.existsSync(dir)) return { reusable: null, staleReason: null };
  if (!fs.statSync(dir).isDirectory()) {
    throw new ModelprintError('E_INPUT', `${dir} exists and is not a directory`, { subject: dirArg, hint: 'pass a new or existing zoo directory' });
  }
  const manifest = readZooManifest(dir);
  if (!manifest) {
    if (fs.readdirSync(dir).length === 0) return { reusable: null, staleReason: null };
    throw new ModelprintError('E_INPUT', `${dir} is not empty and is not a modelprint zoo (no ${MANIFEST}); refusing to replace it`, {
      subject: dirArg,
      hint: 'pass a new directory, or an existing zoo directory',
    });
  }
  const why = staleReason(dir, manifest, size, seed);
  return why ? { reusable: null, staleReason: why } : { reusable: manifest, staleReason: null };
}

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true; // unreadable: assume a live writer
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An exclusive lock file holding our pid; a lock of a dead process is taken over. */
async function acquireLock(file: string, waiting: (pid: number) => void): Promise<{ release: () => void }> {
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return { release: () => fs.rmSync(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    try {
      pid = Number(fs.readFileSync(file, 'utf8').trim() || NaN);
    } catch {
      continue; // released meanwhile
    }
    if (!processAlive(pid)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (!told) waiting(pid);
    told = true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function buildZoo(dir: string, dirArg: string, size: ZooSize, seed: number, log: (msg: string) => void): Promise<ZooResult> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  log(`building the ${size} zoo (seed ${seed}) in ${dir} …`);
  const started = process.hrtime.bigint();
  removeStaleTemps(parent, base);
  const tmp = path.join(parent, `.${base}.zoo-tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  let models: ZooModel[];
  // Ctrl-C / SIGTERM stop the build between two models and remove the temp folder.
  const stop = { signal: null as NodeJS.Signals | null };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal) process.exit(sig === 'SIGINT' ? EXIT.sigint : EXIT.sigterm);
    stop.signal = sig;
  };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => [sig, () => onSignal(sig)] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  const checkpoint = async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (stop.signal) {
      throw new ModelprintError('E_INTERRUPTED', `interrupted by ${stop.signal}; the partial zoo was removed`, {
        subject: dirArg,
        hint: 'run the same command again to build the zoo',
        exitCode: stop.signal === 'SIGINT' ? EXIT.sigint : EXIT.sigterm,
      });
    }
  };
  try {
    models = await buildInto(tmp, zooSpec(size), seed, log, checkpoint);
    const m: ZooManifest = { generator: 'modelprint zoo', format: ZOO_FORMAT, size, seed, models };
    fs.writeFileSync(path.join(tmp, CSV), modelsCsv(models));
    fs.writeFileSync(path.join(tmp, MANIFEST), `${JSON.stringify(m, null, 2)}\n`);
    // Swap into place: old zoo aside, new one in, old one removed.
    const old = path.join(parent, `.${base}.zoo-old-${process.pid}`);
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  log(`built ${models.length} models in ${seconds.toFixed(1)} s → ${dir}`);
  return { dir, size, seed, models, seconds, reused: false };
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** models.csv: model_id,path,family,model_type,base_model,relation (base_model = family base). */
export function modelsCsv(models: ZooModel[]): string {
  const rows = [['model_id', 'path', 'family', 'model_type', 'base_model', 'relation']];
  for (const m of models) rows.push([m.id, m.path, m.family, m.model_type, m.base ?? '', m.relation]);
  return `${rows.map((r) => r.map(csvCell).join(',')).join('\n')}\n`;
}

interface TokenizerBundle {
  tok: ZooTokenizer;
  files: Record<string, Buffer>;
}

const bundle = (tok: ZooTokenizer): TokenizerBundle => ({
  tok,
  files: Object.fromEntries(Object.entries(tokenizerFiles(tok)).map(([k, v]) => [k, Buffer.from(v)])),
});

const configIds = (tok: ZooTokenizer): HfConfigExtras => ({
  // Like Qwen2 configs: bos_token_id is <|endoftext|> although the tokenizer adds no BOS.
  bosTokenId: tok.bosId ?? tok.eosId,
  eosTokenId: tok.eosId,
  padTokenId: tok.padId,
});

function writeModel(dir: string, w: LlamaWeights, tb: TokenizerBundle): void {
  fs.mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  const ids = configIds(tb.tok);
  fs.writeFileSync(path.join(dir, 'config.json'), llamaConfigJson(w.config, ids));
  fs.writeFileSync(path.join(dir, 'generation_config.json'), generationConfigJson(ids));
  for (const [name, data] of Object.entries(tb.files)) fs.writeFileSync(path.join(dir, name), data);
  fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), encodeLlamaOnnx(w));
}

/** Ids no training data would exercise: invalid UTF-8 bytes, most control bytes, specials. */
function untrainedCandidates(tok: ZooTokenizer): number[] {
  const bytes = [0xc0, 0xc1, ...Array.from({ length: 11 }, (_, i) => 0xf5 + i), ...Array.from({ length: 9 }, (_, i) => i), 0x7f];
  const out = bytes.map((b) => tok.vocab.get(BYTE_TO_CHAR[b])!);
  for (const t of tok.added) if (t.special && t.id !== tok.eosId && t.id !== tok.bosId) out.push(t.id);
  return out;
}

/** Tokenizers made in this process (BPE training is the slowest step of a small zoo). */
const tokenizerMemo = new Map<string, ZooTokenizer>();

/** The tokenizer `id` of a zoo (as every model using it gets it). */
export function zooTokenizer(spec: ZooSpec, id: string, seed: number): ZooTokenizer {
  const t = spec.tokenizers.find((x) => x.id === id);
  if (!t) throw new Error(`no tokenizer ${id} in the ${spec.size} zoo`);
  const key = JSON.stringify([t, seed]);
  let tok = tokenizerMemo.get(key);
  if (!tok) {
    tok = generateTokenizer({ style: t.style, vocabSize: t.vocabSize, seed: ['zoo', seed, t.id], modelMaxLength: 2048 });
    if (tokenizerMemo.size >= 8) tokenizerMemo.delete(tokenizerMemo.keys().next().value!);
    tokenizerMemo.set(key, tok);
  }
  return tok;
}

/** The weights of a family's base model. */
export function familyBaseWeights(fam: FamilyDef, tok: ZooTokenizer, seed: number): LlamaWeights {
  return initBaseWeights({ ...fam.arch, vocabSize: tok.vocabSize }, Rng.fromLabels('zoo', seed, 'family', fam.name), {
    untrainedCandidates: untrainedCandidates(tok),
    firstMergeId: tok.style === 'llama' ? 256 + 3 : 256,
  });
}

async function buildInto(
  root: string,
  spec: ZooSpec,
  seed: number,
  log: (msg: string) => void,
  checkpoint: () => Promise<void>,
): Promise<ZooModel[]> {
  const tokenizers = new Map<string, TokenizerBundle>();
  for (const t of spec.tokenizers) {
    tokenizers.set(t.id, bundle(zooTokenizer(spec, t.id, seed)));
    await checkpoint();
  }
  const models: ZooModel[] = [];
  for (const fam of spec.families) {
    models.push(...(await buildFamily(root, spec, fam, tokenizers.get(fam.tokenizer)!, fam.tokenizer, seed, log, checkpoint)));
  }
  return models;
}

async function buildFamily(
  root: string,
  spec: ZooSpec,
  fam: FamilyDef,
  tb: TokenizerBundle,
  tokenizerId: string,
  seed: number,
  log: (msg: string) => void,
  checkpoint: () => Promise<void>,
): Promise<ZooModel[]> {
  const baseId = `${fam.name}-base`;
  const baseWeights = familyBaseWeights(fam, tb.tok, seed);
  const entry = (id: string, d: DerivativeDef | null, w: LlamaWeights, depth: number, parents: string[]): ZooModel => ({
    id,
    path: id,
    family: fam.name,
    base: d ? baseId : null,
    parent: parents[0] ?? null,
    parents,
    relation: d ? d.relation : 'base',
    model_type: d ? d.modelType : 'Base',
    depth,
    tokenizer: d?.recipe.op === 'vocab-extension' ? `${tokenizerId}+${d.recipe.tokens}` : tokenizerId,
    vocab_size: w.config.vocabSize,
    tie_word_embeddings: w.config.tieWordEmbeddings,
    parameters: parameterCount(w),
    description: d ? d.description : `independent base model (weights seeded by family "${fam.name}")`,
  });

  writeModel(path.join(root, baseId), baseWeights, tb);
  log(`  ${baseId}`);
  await checkpoint();
  const out: ZooModel[] = [entry(baseId, null, baseWeights, 0, [])];
  // Weights of models that later derivatives start from, by suffix.
  const needed = new Set(spec.derivatives.flatMap((d) => d.parents));
  const weights = new Map<string, LlamaWeights>([['base', baseWeights]]);
  const depths = new Map<string, number>([['base', 0]]);
  for (const d of spec.derivatives) {
    const id = `${fam.name}-${d.suffix}`;
    const parents = d.parents.map((p) => weights.get(p));
    if (parents.some((p) => !p)) throw new Error(`internal: ${id} needs ${d.parents.join(', ')} built first`);
    const pw = parents as LlamaWeights[];
    const rng = Rng.fromLabels('zoo', seed, 'model', id);
    const depth = 1 + Math.max(...d.parents.map((p) => depths.get(p) ?? 0));
    const parentIds = d.parents.map((p) => `${fam.name}-${p}`);
    const target = path.join(root, id);
    let w: LlamaWeights;
    const r = d.recipe;
    switch (r.op) {
      case 'copy':
        fs.cpSync(path.join(root, parentIds[0]), target, { recursive: true });
        w = pw[0];
        break;
      case 'vocab-extension': {
        w = extendVocab(pw[0], r.tokens, rng);
        const tok = extendTokenizer(tb.tok, Array.from({ length: r.tokens }, (_, i) => `<|extra_${i}|>`));
        writeModel(target, w, bundle(tok));
        break;
      }
      default:
        w = derive(r, pw, rng);
        writeModel(target, w, tb);
    }
    log(`  ${id}`);
    await checkpoint();
    out.push(entry(id, d, w, depth, parentIds));
    if (needed.has(d.suffix)) weights.set(d.suffix, w);
    depths.set(d.suffix, depth);
  }
  return out;
}

function derive(r: DerivativeDef['recipe'], parents: LlamaWeights[], rng: Rng): LlamaWeights {
  switch (r.op) {
    case 'noise':
      return addNoise(parents[0], r.rel, rng);
    case 'heavy':
      return shiftHead(addNoise(parents[0], r.rel, rng.fork('noise')), r.headFraction, r.headStrength, rng.fork('head'));
    case 'lora':
      return mergeLora(parents[0], r.rank, r.rel, rng);
    case 'quantize':
      return quantizeRoundTrip(parents[0], r.bits);
    case 'prune':
      return prune(parents[0], { attn: r.linear, mlp: r.linear, lm_head: r.head, ...(parents[0].lmHead ? {} : { embed: r.head }) });
    case 'average':
      return average(parents[0], parents[1]);
    default:
      throw new Error(`internal: recipe ${r.op} is not a weight transform`);
  }
}
