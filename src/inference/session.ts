import * as ort from 'onnxruntime-node';
import { messageOf } from '../errors.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { resolveDevice, type Device, type DeviceRequest } from './device.js';
import { ModelError } from './errors.js';
import type { OnnxVariantRequest } from './format.js';
import type { GgufActivations } from '../formats/gguf-activations.js';
import { resolveModel, type ModelFiles } from './resolve.js';
import { loadTokenizer, type LoadedTokenizer } from './tokenizer.js';
import { halfToFloat } from '../util/half.js';

export interface OpenOptions {
  device?: DeviceRequest;
  /** ONNX Runtime intra-op threads; 0 = its default (all cores). */
  threads?: number;
  tokenizer?: string;
  id?: string;
  /**
   * Max prompts per forward pass (left-padded to the longest); 0 or absent = auto: prompts of
   * equal token length share a pass (no padding), up to AUTO_PASS_TOKENS tokens and
   * AUTO_LOGITS_BYTES of logits per pass (see `planPasses`).
   */
  batchSize?: number;
  /** Which ONNX variant of a folder to open (format.ts ONNX_VARIANTS); auto = the preference list. */
  onnxVariant?: OnnxVariantRequest;
  /** Base checkpoint folder of PEFT LoRA adapters (else adapter_config.json's base_model_name_or_path). */
  adapterBase?: string;
  /** GGUF quantizations to prefer in a folder holding several (--gguf-quant, comma-separated). */
  ggufQuant?: string;
  /** GGUF: llama.cpp's rounding of the activations of F16 / quantized weights (default), or float32 (--gguf-activations). */
  ggufActivations?: GgufActivations;
  /**
   * Trade speed for memory: ONNX Runtime does not pre-pack the MatMul weights, and half-precision safetensors weights stay as stored (memory-mapped) and
   * are cast to float32 right before each use instead of once at load
   * (src/formats/hf-decoder.ts, castAtUse). Figures in BENCHMARKS.md (bench:safetensors).
   */
  lowMemory?: boolean;
}

type FloatType = 'float32' | 'float16';
type IntType = 'int32' | 'int64';

/** Auto batching: at most this many tokens in one pass (bounds the activations). */
export const AUTO_PASS_TOKENS = 2048;
/** Auto batching: at most this many bytes of float32 logits out of one pass. */
export const AUTO_LOGITS_BYTES = 64 << 20;

const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'position_ids', 'token_type_ids', 'use_cache_branch']);
const PAST_RE = /^past_key_values\.(\d+)\.(key|value)$/;

type Feeds = Record<string, ort.Tensor>;

/** KV cache between decoding steps. */
export interface DecodeState {
  batch: number;
  /** Full token sequences so far (used when the model has no KV cache). */
  sequences: number[][];
  past: Feeds | null;
}

function tensorMeta(meta: readonly ort.InferenceSession.ValueMetadata[], name: string): ort.InferenceSession.TensorValueMetadata | null {
  const m = meta.find((x) => x.name === name);
  return m && m.isTensor ? m : null;
}

/**
 * A causal language model run by ONNX Runtime: batched last-position logits (left
 * padding) and incremental decoding with the KV cache.
 */
export class CausalLM {
  readonly numLayers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly hasPast: boolean;
  logitsWidth: number | null;
  /**
   * Whether a pass returns only the last position's logits (graphs built from checkpoints,
   * src/formats) or every position's (exports); learned from the first pass, until then
   * assumed from the format.
   */
  lastPositionOnly: boolean;
  /** Element type of the logits (and of the KV cache): float32, or float16 for half-precision exports. */
  readonly dtype: FloatType;
  private readonly pastType: FloatType;
  private readonly inputNames: Set<string>;
  private readonly intTypes = new Map<string, IntType>();
  private released = false;

  private constructor(
    readonly id: string,
    readonly files: ModelFiles,
    readonly config: ModelConfig | null,
    readonly tok: LoadedTokenizer,
    private readonly session: ort.InferenceSession,
    readonly device: Device,
    readonly batchSize: number,
  ) {
    this.inputNames = new Set(session.inputNames);
    const pastLayers = new Set<number>();
    for (const name of session.inputNames) {
      const m = PAST_RE.exec(name);
      if (m) pastLayers.add(Number(m[1]));
      else if (!KNOWN_INPUTS.has(name)) {
        throw new ModelError('unexpected_io', id, `unexpected model input "${name}"`, 'modelprint runs decoder-only causal LMs exported by Optimum (text-generation-with-past)');
      }
    }
    if (!this.inputNames.has('input_ids')) throw new ModelError('unexpected_io', id, 'the model has no input_ids input', 'export it with Optimum for text generation');
    if (!session.outputNames.includes('logits')) throw new ModelError('unexpected_io', id, `the model has no logits output (outputs: ${session.outputNames.join(', ')})`, 'export it with Optimum for text generation');
    this.numLayers = pastLayers.size;
    this.hasPast = pastLayers.size > 0;
    for (let i = 0; i < this.numLayers; i++) {
      for (const kind of ['key', 'value']) {
        if (!session.inputNames.includes(`past_key_values.${i}.${kind}`) || !session.outputNames.includes(`present.${i}.${kind}`)) {
          throw new ModelError('unexpected_io', id, `KV cache input/output pair for layer ${i} (${kind}) is incomplete`, 'export it again with Optimum (text-generation-with-past)');
        }
      }
    }
    const pastMeta = tensorMeta(session.inputMetadata, 'past_key_values.0.key');
    const dim = (d: unknown, fallback: number | null) => (typeof d === 'number' && d > 0 ? d : fallback);
    this.kvHeads = dim(pastMeta?.shape[1], config?.numKvHeads ?? null) ?? 0;
    this.headDim = dim(pastMeta?.shape[3], config?.headDim ?? null) ?? 0;
    if (this.hasPast && (!this.kvHeads || !this.headDim)) {
      throw new ModelError('unexpected_io', id, 'cannot tell the KV cache shape (no static dims and no config.json num_key_value_heads/head_dim)', 'add the model\'s config.json next to the ONNX file');
    }
    const logitsMeta = tensorMeta(session.outputMetadata, 'logits');
    this.logitsWidth = dim(logitsMeta?.shape[2], config?.vocabSize ?? null);
    this.lastPositionOnly = files.format !== 'onnx';
    // Every input is fed in the element type the graph declares (fp16 exports take an fp16 cache).
    const floatType = (what: string, t: unknown): FloatType => {
      if (t === 'float32' || t === 'float16') return t;
      throw new ModelError(
        'unexpected_io',
        id,
        `${what} has element type ${t === undefined ? 'bfloat16 or another type onnxruntime-node cannot exchange' : String(t)}`,
        'modelprint feeds float32 and float16 graphs; convert the export to float16 or float32 (onnxruntime-node has no bfloat16 tensors)',
      );
    };
    this.dtype = floatType('output logits', logitsMeta ? logitsMeta.type : 'float32');
    this.pastType = this.hasPast ? floatType('input past_key_values.0.key', pastMeta ? pastMeta.type : 'float32') : 'float32';
    for (const name of ['input_ids', 'attention_mask', 'position_ids', 'token_type_ids']) {
      const t = tensorMeta(session.inputMetadata, name)?.type;
      if (t !== undefined && t !== 'int32' && t !== 'int64') throw new ModelError('unexpected_io', id, `input ${name} has element type ${t}`, 'modelprint feeds int64 or int32 token ids');
      this.intTypes.set(name, t === 'int32' ? 'int32' : 'int64');
    }
  }

  /** Opens a model folder / hub snapshot / ONNX file; every failure is a ModelError with its code. */
  static async open(ref: string, opts: OpenOptions = {}): Promise<CausalLM> {
    const device = resolveDevice(opts.device ?? 'auto');
    const files = resolveModel(ref, { tokenizer: opts.tokenizer, id: opts.id, onnxVariant: opts.onnxVariant, adapterBase: opts.adapterBase, ggufQuant: opts.ggufQuant, ggufActivations: opts.ggufActivations, castAtUse: opts.lowMemory });
    let config: ModelConfig | null;
    try {
      config = readModelConfig(files.dir);
    } catch (e) {
      throw new ModelError('load_failed', files.id, messageOf(e), 'fix or replace config.json');
    }
    const tok = loadTokenizer(files.id, files.tokenizerPath, files.dir, config);
    let session: ort.InferenceSession;
    ort.env.logLevel = 'fatal'; // before the first session creates ONNX Runtime's environment
    try {
      session = await ort.InferenceSession.create(files.onnxPath!, {
        executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
        intraOpNumThreads: opts.threads ?? 0,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        // Fatal only: ONNX Runtime's own (coloured) log lines would break --json's clean
        // stderr; every error it raises reaches the user as this exception's message.
        logSeverityLevel: 4,
        // --low-memory: no pre-packed weight copies and no memory pattern (a decoding step's
        // shapes change every step). The arena stays on: it reuses the freed float32 casts of
        // one layer for the next; with malloc instead, a 640-row pass (auto batching) left
        // ~0.5 GiB of freed heap behind (1.67 against 1.16 GiB peak RSS on the bench checkpoint).
        ...(opts.lowMemory ? { enableMemPattern: false, extra: { session: { disable_prepacking: '1' } } } : {}),
      });
    } catch (e) {
      const msg = messageOf(e);
      if (/Unsupported data type: 16\b/.test(msg)) {
        throw new ModelError(
          'unexpected_io',
          files.id,
          `the graph ${files.onnxPath} has bfloat16 inputs or outputs, which onnxruntime-node cannot exchange (${msg.split('\n')[0]})`,
          'convert the export to float16 (onnxruntime.transformers.float16, keep_io_types=False) or float32',
          e,
        );
      }
      const corrupt = /protobuf|INVALID_PROTOBUF|parsing failed|truncated|Failed to load model|ModelProto/i.test(msg);
      throw new ModelError(
        corrupt ? 'corrupt_onnx' : 'load_failed',
        files.id,
        `${corrupt ? 'corrupt or truncated ONNX file' : 'ONNX Runtime cannot load the model'} ${files.onnxPath}: ${msg.split('\n')[0]}`,
        corrupt ? 'download or export the model again' : 'check that it is a standard Optimum export; re-run with --verbose for details',
        e,
      );
    }
    let lm: CausalLM;
    try {
      lm = new CausalLM(files.id, files, config, tok, session, device, opts.batchSize ?? 0);
    } catch (e) {
      await session.release();
      throw e;
    }
    if (lm.logitsWidth !== null) lm.checkVocab(lm.logitsWidth);
    return lm;
  }

  /** A tokenizer that can produce ids the model has no logits (embedding) for is a mismatch. */
  private checkVocab(width: number): void {
    if (this.tok.vocabSize > width) {
      throw new ModelError(
        'tokenizer_mismatch',
        this.id,
        `tokenizer ids reach ${this.tok.vocabSize - 1} but the model's logits have width ${width}`,
        'the tokenizer.json does not belong to these weights (extended vocabulary without resized embeddings?); use the matching tokenizer',
      );
    }
  }

  encode(text: string, addSpecialTokens = true): number[] {
    return Array.from(this.tok.tokenizer.encode(text, addSpecialTokens));
  }

  decode(ids: ArrayLike<number>, skipSpecialTokens = true): string {
    return this.tok.tokenizer.decode(Uint32Array.from(ids as ArrayLike<number>), skipSpecialTokens);
  }

  private idsTensor(values: number[], dims: number[], input = 'input_ids'): ort.Tensor {
    return this.intTypes.get(input) === 'int32'
      ? new ort.Tensor('int32', Int32Array.from(values), dims)
      : new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
  }

  private emptyPast(batch: number): Feeds {
    const feeds: Feeds = {};
    for (let i = 0; i < this.numLayers; i++) {
      for (const kind of ['key', 'value']) {
        const empty = this.pastType === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), [batch, this.kvHeads, 0, this.headDim]) : new ort.Tensor('float32', new Float32Array(0), [batch, this.kvHeads, 0, this.headDim]);
        feeds[`past_key_values.${i}.${kind}`] = empty;
      }
    }
    return feeds;
  }

  private async run(feeds: Feeds, outputs?: string[]): Promise<ort.InferenceSession.ReturnType> {
    if (this.released) throw new Error('model already released');
    try {
      return outputs ? await this.session.run(feeds, outputs) : await this.session.run(feeds);
    } catch (e) {
      throw new ModelError('inference_failed', this.id, `forward pass failed: ${messageOf(e).split('\n')[0]}`, 're-run with --verbose; the model may need inputs modelprint does not provide', e);
    }
  }

  /**
   * One forward pass over a batch of token sequences (left-padded to the longest) with
   * the given past; returns the last-position logits rows (batch × width) and presents.
   */
  private async forward(seqs: number[][], past: Feeds | null, pastLen: number, wantPresent = true): Promise<{ logits: Float32Array; present: Feeds }> {
    const b = seqs.length;
    const len = Math.max(...seqs.map((s) => s.length));
    const pad = this.tok.padId ?? 0;
    const ids: number[] = [];
    const mask: number[] = [];
    const pos: number[] = [];
    for (const s of seqs) {
      const padN = len - s.length;
      const rowMask = [...new Array(pastLen).fill(1), ...new Array(padN).fill(0), ...new Array(s.length).fill(1)];
      for (let j = 0; j < padN; j++) ids.push(pad);
      ids.push(...s);
      mask.push(...rowMask);
      // HF convention: position = cumsum(mask) - 1, padding positions set to 1.
      let c = 0;
      const cum = rowMask.map((m) => (c += m));
      for (let j = pastLen; j < pastLen + len; j++) pos.push(rowMask[j] === 0 ? 1 : cum[j] - 1);
    }
    const feeds: Feeds = { input_ids: this.idsTensor(ids, [b, len]) };
    if (this.inputNames.has('attention_mask')) feeds.attention_mask = this.idsTensor(mask, [b, pastLen + len], 'attention_mask');
    if (this.inputNames.has('position_ids')) feeds.position_ids = this.idsTensor(pos, [b, len], 'position_ids');
    if (this.inputNames.has('token_type_ids')) feeds.token_type_ids = this.idsTensor(new Array(b * len).fill(0), [b, len], 'token_type_ids');
    if (this.inputNames.has('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', [pastLen > 0], [1]);
    if (this.hasPast) Object.assign(feeds, past ?? this.emptyPast(b));
    const out = await this.run(feeds, wantPresent ? undefined : ['logits']);
    const logits = out.logits;
    const [ob, os, width] = logits.dims as number[];
    // Exports give every position's logits; graphs built from checkpoints (src/formats) only the last one's.
    if (ob !== b || (os !== len && os !== 1)) throw new ModelError('unexpected_io', this.id, `logits have shape [${logits.dims.join(', ')}], expected [${b}, ${len}, vocab]`);
    if (len > 1) this.lastPositionOnly = os === 1;
    if (this.logitsWidth === null) {
      this.logitsWidth = width;
      this.checkVocab(width);
    }
    const data = logits.type === 'float16' ? halfToFloat(logits.data as Uint16Array) : (logits.data as Float32Array);
    const rows = new Float32Array(b * width);
    for (let i = 0; i < b; i++) rows.set(data.subarray((i * os + os - 1) * width, (i * os + os) * width), i * width);
    const present: Feeds = {};
    for (let i = 0; wantPresent && i < this.numLayers; i++) {
      present[`past_key_values.${i}.key`] = out[`present.${i}.key`];
      present[`past_key_values.${i}.value`] = out[`present.${i}.value`];
    }
    logits.dispose?.();
    return { logits: rows, present };
  }

  /**
   * Prompt indices of each forward pass for prompts of these token lengths. A batch size
   * ≥ 1: consecutive runs of that many (left-padded to the longest). Auto (0): prompts of
   * equal length together, in order of first appearance, so no pass pads; a pass holds at
   * most AUTO_PASS_TOKENS tokens and AUTO_LOGITS_BYTES of float32 logits (every position's
   * for exports, one row per prompt for graphs built from checkpoints), and at least one prompt.
   */
  planPasses(lengths: readonly number[]): number[][] {
    const passes: number[][] = [];
    if (this.batchSize >= 1) {
      for (let i = 0; i < lengths.length; i += this.batchSize) passes.push(Array.from({ length: Math.min(this.batchSize, lengths.length - i) }, (_, j) => i + j));
      return passes;
    }
    const groups = new Map<number, number[]>();
    lengths.forEach((len, i) => {
      const g = groups.get(len);
      if (g) g.push(i);
      else groups.set(len, [i]);
    });
    const width = this.logitsWidth ?? 0;
    for (const [len, idx] of groups) {
      const byTokens = Math.floor(AUTO_PASS_TOKENS / Math.max(1, len));
      const byLogits = width > 0 ? Math.floor(AUTO_LOGITS_BYTES / ((this.lastPositionOnly ? 1 : Math.max(1, len)) * width * 4)) : 1;
      const n = Math.max(1, Math.min(byTokens, byLogits));
      for (let i = 0; i < idx.length; i += n) passes.push(idx.slice(i, i + n));
    }
    return passes;
  }

  /** Last-position logits for many prompts (token id sequences): rows × width, in the prompts' order, in the passes of `planPasses`. */
  async lastLogits(prompts: number[][]): Promise<{ logits: Float32Array; width: number }> {
    const done: { idx: number[]; logits: Float32Array }[] = [];
    for (const idx of this.planPasses(prompts.map((p) => p.length))) {
      const { logits } = await this.forward(idx.map((i) => prompts[i]), null, 0, false);
      done.push({ idx, logits });
    }
    const width = this.logitsWidth ?? 0;
    const all = new Float32Array(prompts.length * width);
    for (const { idx, logits } of done) idx.forEach((p, r) => all.set(logits.subarray(r * width, (r + 1) * width), p * width));
    return { logits: all, width };
  }

  /** Starts incremental decoding for equal-length sequences; returns last logits. */
  async startDecode(seqs: number[][]): Promise<{ state: DecodeState; logits: Float32Array }> {
    const lens = new Set(seqs.map((s) => s.length));
    if (lens.size !== 1) throw new Error('startDecode needs sequences of equal length');
    const { logits, present } = await this.forward(seqs, null, 0);
    return { state: { batch: seqs.length, sequences: seqs.map((s) => [...s]), past: this.hasPast ? present : null }, logits };
  }

  /** Appends one token per sequence and returns the next last-position logits (KV cache when present). */
  async stepDecode(state: DecodeState, next: number[]): Promise<Float32Array> {
    next.forEach((t, i) => state.sequences[i].push(t));
    if (!this.hasPast) {
      const { logits } = await this.forward(state.sequences, null, 0);
      return logits;
    }
    const pastLen = state.sequences[0].length - 1;
    const { logits, present } = await this.forward(next.map((t) => [t]), state.past, pastLen);
    state.past = present;
    return logits;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}
