/**
 * The interface every decoder graph modelprint builds shares with an Optimum / transformers.js
 * "text-generation-with-past" export (see zoo/llama.ts for the table), and its additive
 * attention mask. Used by the zoo's Llama builder and by the safetensors decoder builder
 * (formats/hf-decoder.ts), so both graphs take and give the same tensors.
 */
import { DataType, type GraphBuilder } from './graph.js';

/** Added to masked attention scores: -1e9, never -inf, so no NaN even in fully masked rows. */
export const MASK_VALUE = -1e9;

export interface DecoderDims {
  /** Layers. */
  layers: number;
  /** Key/value heads. */
  kvHeads: number;
  /** Head size. */
  headDim: number;
}

export interface DecoderInputs {
  inputIds: string;
  attentionMask: string;
  positionIds: string;
  /** Past keys and values of each layer, [batch, kv_heads, past_sequence_length, head_dim]. */
  past: Array<{ key: string; value: string }>;
}

/** Declares input_ids, attention_mask, position_ids and past_key_values.{i}.key/value. */
export function decoderInputs(g: GraphBuilder, d: DecoderDims): DecoderInputs {
  const inputIds = g.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const past: Array<{ key: string; value: string }> = [];
  for (let i = 0; i < d.layers; i++) {
    const shape = ['batch_size', d.kvHeads, 'past_sequence_length', d.headDim];
    past.push({ key: g.input(`past_key_values.${i}.key`, DataType.FLOAT, shape), value: g.input(`past_key_values.${i}.value`, DataType.FLOAT, shape) });
  }
  return { inputIds, attentionMask, positionIds, past };
}

/**
 * Declares the outputs: `logits` [batch, seq, vocab] (the graph must hold a value of that name)
 * and present.{i}.key/value, the values the attention concatenated under those names.
 */
export function decoderOutputs(g: GraphBuilder, d: DecoderDims, vocab: number): void {
  g.output('logits', DataType.FLOAT, ['batch_size', 'sequence_length', vocab]);
  for (let i = 0; i < d.layers; i++) {
    const shape = ['batch_size', d.kvHeads, 'total_sequence_length', d.headDim];
    g.output(`present.${i}.key`, DataType.FLOAT, shape);
    g.output(`present.${i}.value`, DataType.FLOAT, shape);
  }
}

export interface CausalMask {
  /** Absolute key positions 0 … total−1, [1, total]. */
  keyIdx: string;
  /** Absolute query positions past … total−1, [seq, 1]. */
  queryIdx: string;
  /** Key j visible from query i: j ≤ i and attention_mask[b, j] = 1; [batch, 1, 1, seq, total]. */
  allowed: string;
  /** The additive mask of `allowed`: 0 where visible, MASK_VALUE elsewhere. */
  bias: string;
}

/**
 * The causal + padding mask over absolute positions (the past may be empty; left-padded
 * batches work), shaped to broadcast over grouped-query scores [batch, kv, rep, seq, total].
 */
export function causalMask(g: GraphBuilder, inputs: Pick<DecoderInputs, 'inputIds' | 'attentionMask'>): CausalMask {
  const total = g.op('Shape', [inputs.attentionMask], { start: 1, end: 2 });
  const seq = g.op('Shape', [inputs.inputIds], { start: 1, end: 2 });
  const pastLen = g.op('Sub', [total, seq]);
  const zero = g.int64([0], []);
  const one = g.int64([1], []);
  // The op order is part of the zoo's model bytes (and so of their content hashes): keep it.
  const keyRange = g.op('Range', [zero, g.op('Squeeze', [total, g.int64([0])]), one]);
  const queryRange = g.op('Range', [g.op('Squeeze', [pastLen, g.int64([0])]), g.op('Squeeze', [total, g.int64([0])]), one]);
  const keyIdx = g.op('Unsqueeze', [keyRange, g.int64([0])]);
  const queryIdx = g.op('Unsqueeze', [queryRange, g.int64([1])]);
  const causal = g.op('LessOrEqual', [keyIdx, queryIdx]);
  const keep = g.op('Unsqueeze', [g.op('Cast', [inputs.attentionMask], { to: DataType.BOOL }), g.int64([1, 2, 3])]);
  const allowed = g.op('And', [causal, keep]);
  return { keyIdx, queryIdx, allowed, bias: maskBias(g, allowed) };
}

/** 0 where `allowed`, MASK_VALUE elsewhere. */
export function maskBias(g: GraphBuilder, allowed: string): string {
  return g.op('Where', [allowed, g.float([0], []), g.float([MASK_VALUE], [])]);
}
