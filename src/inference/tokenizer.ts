import fs from 'node:fs';
import path from 'node:path';
import { native, type Tokenizer } from '../native/index.js';
import { messageOf } from '../errors.js';
import { ModelError } from './errors.js';
import type { ModelConfig } from './config.js';

export interface LoadedTokenizer {
  tokenizer: Tokenizer;
  vocabSize: number;
  /** bos, eos, pad, unk and every added special token, ascending. */
  specialIds: number[];
  /** Named special tokens, for `models inspect`. */
  specialTokens: Record<string, string | null>;
  padId: number | null;
}

function readJson(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

const tokenString = (v: unknown): string | null =>
  typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : null;

/**
 * Largest tokenizer.json modelprint parses (SECURITY.md): 256 MiB by default, far above real
 * ones (tens of MB), overridable with MODELPRINT_MAX_TOKENIZER_BYTES. Parsing a file costs
 * many times its size in memory, so the cap is checked before reading.
 */
export function maxTokenizerBytes(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.MODELPRINT_MAX_TOKENIZER_BYTES);
  return Number.isSafeInteger(v) && v > 0 ? v : 256 * 2 ** 20;
}

export function loadTokenizer(id: string, tokenizerPath: string | null, dir: string, config: ModelConfig | null): LoadedTokenizer {
  if (!tokenizerPath) {
    throw new ModelError('missing_tokenizer', id, `no tokenizer.json in ${dir}`, 'copy the tokenizer.json of the model (or its base) next to the ONNX file, or pass --tokenizer');
  }
  const cap = maxTokenizerBytes();
  let size = 0;
  try {
    size = fs.statSync(tokenizerPath).size;
  } catch {
    // a missing file is reported by the reader below, with its own message
  }
  if (size > cap) {
    throw new ModelError(
      'input_too_large',
      id,
      `tokenizer ${tokenizerPath} is ${size} bytes, over the ${cap}-byte limit`,
      'a real tokenizer.json is tens of MB; if this one is genuine, raise MODELPRINT_MAX_TOKENIZER_BYTES',
    );
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = native.Tokenizer.fromFile(tokenizerPath);
  } catch (e) {
    throw new ModelError('missing_tokenizer', id, `tokenizer ${tokenizerPath} cannot be read: ${messageOf(e)}`, 'replace it with a valid Hugging Face tokenizer.json', e);
  }
  const tc = readJson(path.join(dir, 'tokenizer_config.json')) ?? {};
  const sm = readJson(path.join(dir, 'special_tokens_map.json')) ?? {};
  const named: Record<string, string | null> = {};
  for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) named[k] = tokenString(tc[k]) ?? tokenString(sm[k]);
  const special = new Set<number>(Array.from(tokenizer.specialTokenIds()));
  for (const t of Object.values(named)) {
    if (t === null) continue;
    const tid = tokenizer.tokenToId(t);
    if (tid !== null) special.add(tid);
  }
  for (const x of [...(config?.bosTokenIds ?? []), ...(config?.eosTokenIds ?? [])]) special.add(x);
  if (config?.padTokenId !== null && config?.padTokenId !== undefined) special.add(config.padTokenId);
  const padName = named.pad_token ? tokenizer.tokenToId(named.pad_token) : null;
  const padId = padName ?? config?.padTokenId ?? config?.eosTokenIds[0] ?? null;
  return {
    tokenizer,
    vocabSize: tokenizer.vocabSize,
    specialIds: [...special].filter((x) => x >= 0).sort((a, b) => a - b),
    specialTokens: named,
    padId,
  };
}

/** METHODS §1.1: ids in [0, min(vocab, logits width)) minus every special token. */
export function allowedTokens(vocabSize: number, logitsWidth: number, specialIds: number[]): Uint32Array {
  const n = Math.min(vocabSize, logitsWidth);
  const special = new Set(specialIds);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!special.has(i)) out.push(i);
  return Uint32Array.from(out);
}
