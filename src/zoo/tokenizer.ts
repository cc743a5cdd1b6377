/**
 * Synthetic byte-level BPE tokenizers (GPT-2 / Llama-3 / Qwen style) for the zoo.
 *
 * The vocabulary is the 256 byte symbols plus tokens made by merging two existing
 * tokens, listed in rank order, so the files load in the Hugging Face `tokenizers`
 * crate and in transformers.js, and encode → decode round-trips any text. The merges
 * come from BPE training on a seeded synthetic corpus of English-like words (bpe.ts),
 * so tokens are word-like pieces, most frequent first.
 */
import { syntheticWordCounts, trainBpe } from './bpe.js';
import { Rng } from '../util/rng.js';

export type TokenizerStyle = 'llama' | 'qwen';

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

export interface ZooTokenizer {
  style: TokenizerStyle;
  /** Every id, added tokens included: the model's vocab_size. */
  vocabSize: number;
  /** Byte-level token strings of the BPE model by id (added tokens not in the BPE vocab are absent). */
  vocab: Map<string, number>;
  /** Merges in rank order, as "left right". */
  merges: string[];
  added: AddedToken[];
  bos: string | null;
  eos: string;
  pad: string;
  unk: string | null;
  bosId: number | null;
  eosId: number;
  padId: number;
  unkId: number | null;
  modelMaxLength: number;
}

/** GPT-2's reversible byte → printable character map. */
export const BYTE_TO_CHAR: string[] = (() => {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map: string[] = new Array(256);
  const set = new Set(printable);
  for (const b of printable) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!set.has(b)) map[b] = String.fromCharCode(256 + n++);
  return map;
})();


/** The byte-level form of a text (what the ByteLevel pre-tokenizer produces). */
export function byteLevel(text: string): string {
  let s = '';
  for (const b of Buffer.from(text, 'utf8')) s += BYTE_TO_CHAR[b];
  return s;
}

const LLAMA_SPECIALS = ['<unk>', '<s>', '</s>'];
const QWEN_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/**
 * `count` merges of a byte-level BPE, trained on a seeded synthetic corpus (see bpe.ts).
 * If the corpus runs out of pairs, word pieces are extended letter by letter.
 */
export function generateMerges(count: number, rng: Rng): Array<[string, string]> {
  const words = new Map<string, number>();
  for (const [w, c] of syntheticWordCounts(rng, Math.ceil(count * 0.9) + 500)) words.set(byteLevel(w), c);
  const merges = trainBpe(words, count, BYTE_TO_CHAR);
  if (merges.length < count) {
    const known = new Set<string>([...BYTE_TO_CHAR, ...merges.map(([a, b]) => a + b)]);
    const pieces = merges.map(([a, b]) => a + b).filter((t) => /^\u0120?[a-z]+$/.test(t));
    for (let i = 0; merges.length < count; i++) {
      const t = pieces[i % pieces.length] ?? BYTE_TO_CHAR[0x61];
      for (const ch of 'etaoinshrdlcumwfgypbvkjxqz') {
        if (merges.length >= count) break;
        if (known.has(t + ch)) continue;
        known.add(t + ch);
        merges.push([t, ch]);
        pieces.push(t + ch);
      }
    }
  }
  return merges;
}

export interface TokenizerSpec {
  style: TokenizerStyle;
  /** Total vocabulary, special tokens included (≥ 512). */
  vocabSize: number;
  /** Labels that seed the merge generator. */
  seed: Array<string | number>;
  modelMaxLength?: number;
}

/** A byte-level BPE tokenizer of exactly `vocabSize` ids. */
export function generateTokenizer(spec: TokenizerSpec): ZooTokenizer {
  const { style, vocabSize } = spec;
  if (vocabSize < 512) throw new Error(`vocabulary of ${vocabSize} is too small (need ≥ 512)`);
  const specials = style === 'llama' ? LLAMA_SPECIALS : QWEN_SPECIALS;
  const nMerges = vocabSize - 256 - specials.length;
  const merges = generateMerges(nMerges, Rng.fromLabels('tokenizer', ...spec.seed));
  const vocab = new Map<string, number>();
  const added: AddedToken[] = [];
  let next = 0;
  if (style === 'llama') {
    // Llama-2 style: the specials are ids 0..2 of the BPE vocab and added tokens.
    for (const s of specials) {
      added.push({ id: next, content: s, special: true });
      vocab.set(s, next++);
    }
  }
  for (let b = 0; b < 256; b++) vocab.set(BYTE_TO_CHAR[b], next++);
  for (const [a, b] of merges) vocab.set(a + b, next++);
  if (style === 'qwen') for (const s of specials) added.push({ id: next++, content: s, special: true });
  if (next !== vocabSize) throw new Error(`internal: built ${next} ids, wanted ${vocabSize}`);
  const id = (s: string) => added.find((t) => t.content === s)!.id;
  const llama = style === 'llama';
  return {
    style,
    vocabSize,
    vocab,
    merges: merges.map(([a, b]) => `${a} ${b}`),
    added,
    bos: llama ? '<s>' : null,
    eos: llama ? '</s>' : '<|endoftext|>',
    pad: llama ? '<unk>' : '<|endoftext|>',
    unk: llama ? '<unk>' : null,
    bosId: llama ? id('<s>') : null,
    eosId: llama ? id('</s>') : id('<|endoftext|>'),
    padId: llama ? id('<unk>') : id('<|endoftext|>'),
    unkId: llama ? id('<unk>') : null,
    modelMaxLength: spec.modelMaxLength ?? 2048,
  };
}

/** The tokenizer with `tokens` appended as (non-special) added tokens. */
export function extendTokenizer(tok: ZooTokenizer, tokens: string[]): ZooTokenizer {
  const added = [...tok.added];
  let next = tok.vocabSize;
  for (const content of tokens) {
    if (tok.vocab.has(content) || added.some((t) => t.content === content)) throw new Error(`token ${content} already exists`);
    added.push({ id: next++, content, special: false });
  }
  return { ...tok, added, vocabSize: next };
}

const addedTokenJson = (t: AddedToken) => ({
  id: t.id,
  content: t.content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: t.special,
});

/** tokenizer.json (Hugging Face `tokenizers` format). */
export function tokenizerJson(tok: ZooTokenizer): string {
  const llama = tok.style === 'llama';
  const postProcessor = llama
    ? {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: tok.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: tok.bos, type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: tok.bos, type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { [tok.bos!]: { id: tok.bos, ids: [tok.bosId], tokens: [tok.bos] } },
      }
    : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tok.added.map(addedTokenJson),
    normalizer: llama ? null : { type: 'NFC' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(tok.vocab),
      merges: tok.merges,
    },
  };
  return JSON.stringify(json);
}

const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** tokenizer_config.json (transformers format). */
export function tokenizerConfigJson(tok: ZooTokenizer): string {
  const decoder: Record<string, unknown> = {};
  for (const t of tok.added) {
    decoder[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: t.special };
  }
  const llama = tok.style === 'llama';
  const cfg: Record<string, unknown> = llama
    ? {
        add_bos_token: true,
        add_eos_token: false,
        added_tokens_decoder: decoder,
        bos_token: tok.bos,
        clean_up_tokenization_spaces: false,
        eos_token: tok.eos,
        model_max_length: tok.modelMaxLength,
        pad_token: tok.pad,
        padding_side: 'left',
        tokenizer_class: 'PreTrainedTokenizerFast',
        unk_token: tok.unk,
      }
    : {
        add_prefix_space: false,
        added_tokens_decoder: decoder,
        additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
        bos_token: null,
        chat_template: CHATML_TEMPLATE,
        clean_up_tokenization_spaces: false,
        eos_token: tok.eos,
        errors: 'replace',
        model_max_length: tok.modelMaxLength,
        pad_token: tok.pad,
        padding_side: 'left',
        split_special_tokens: false,
        tokenizer_class: 'Qwen2Tokenizer',
        unk_token: null,
      };
  return `${JSON.stringify(cfg, null, 2)}\n`;
}

/** special_tokens_map.json. */
export function specialTokensMapJson(tok: ZooTokenizer): string {
  const entry = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });
  const map: Record<string, unknown> = {};
  if (tok.style === 'qwen') map.additional_special_tokens = ['<|im_start|>', '<|im_end|>'];
  if (tok.bos) map.bos_token = entry(tok.bos);
  map.eos_token = entry(tok.eos);
  map.pad_token = entry(tok.pad);
  if (tok.unk) map.unk_token = entry(tok.unk);
  return `${JSON.stringify(map, null, 2)}\n`;
}

/** The three tokenizer files of a model directory, by file name. */
export function tokenizerFiles(tok: ZooTokenizer): Record<string, string> {
  return {
    'tokenizer.json': tokenizerJson(tok),
    'tokenizer_config.json': tokenizerConfigJson(tok),
    'special_tokens_map.json': specialTokensMapJson(tok),
  };
}
