/**
 * A Llama-style decoder as an ONNX graph with the inputs and outputs of an Optimum /
 * transformers.js "text-generation-with-past" export:
 *
 *   inputs   input_ids                   int64   [batch_size, sequence_length]
 *            attention_mask              int64   [batch_size, total_sequence_length]
 *            position_ids                int64   [batch_size, sequence_length]
 *            past_key_values.{i}.key     float32 [batch_size, num_kv_heads, past_sequence_length, head_dim]
 *            past_key_values.{i}.value   float32 [batch_size, num_kv_heads, past_sequence_length, head_dim]
 *   outputs  logits                      float32 [batch_size, sequence_length, vocab_size]
 *            present.{i}.key             float32 [batch_size, num_kv_heads, total_sequence_length, head_dim]
 *            present.{i}.value           float32 [batch_size, num_kv_heads, total_sequence_length, head_dim]
 *
 * total = past + sequence; the past may be empty ([b, h, 0, d]). Query i (absolute
 * position past + i) attends to key j when j ≤ past + i and attention_mask[b, j] = 1, so
 * left-padded batches work; masked scores get -1e9 (never -inf, so no NaN even in fully
 * masked rows). RoPE uses position_ids with HF's rotate_half convention.
 */
import { DataType, GraphBuilder } from './onnx/graph.js';
import { causalMask, decoderInputs, decoderOutputs } from './onnx/decoder-io.js';
import type { LlamaConfig, LlamaWeights, Matrix } from './weights.js';

export { MASK_VALUE } from './onnx/decoder-io.js';

/** [rows, cols] → [cols, rows] (HF linear weight → MatMul right operand). */
export function transpose(m: Matrix): Float32Array {
  const { rows, cols, data } = m;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c];
  }
  return out;
}

function ropeInvFreq(headDim: number, theta: number): number[] {
  // HF: 1 / theta^(arange(0, dim, 2) / dim), in float32.
  const inv: number[] = [];
  for (let i = 0; i < headDim; i += 2) inv.push(Math.fround(1 / Math.fround(theta ** (i / headDim))));
  return inv;
}

/** Builds the graph of a Llama model with its weights as float32 initializers. */
export function buildLlamaGraph(w: LlamaWeights, name = 'llama'): GraphBuilder {
  const c: LlamaConfig = w.config;
  const { vocabSize: V, hiddenSize: E, numHeads: H, numKvHeads: KV, headDim: D, numLayers: L } = c;
  if (H % KV !== 0) throw new Error(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}`);
  if (D % 2 !== 0) throw new Error(`head_dim ${D} must be even for rotary embeddings`);
  const rep = H / KV;
  const g = new GraphBuilder(name);

  const dims = { layers: L, kvHeads: KV, headDim: D };
  const { inputIds, attentionMask, positionIds, past } = decoderInputs(g, dims);

  const embedName = g.initializer('model.embed_tokens.weight', w.embed.data, [V, E]);
  const linear = (x: string, m: Matrix, wname: string) => g.op('MatMul', [x, g.initializer(`${wname}.T`, transpose(m), [m.cols, m.rows])]);
  const rmsNorm = (x: string, weight: Float32Array, wname: string) => {
    const wt = g.initializer(wname, weight, [E]);
    const sq = g.op('Pow', [x, g.float([2], [])]);
    const mean = g.op('ReduceMean', [sq], { axes: [-1], keepdims: 1 });
    const std = g.op('Sqrt', [g.op('Add', [mean, g.float([c.rmsNormEps], [])])]);
    return g.op('Mul', [g.op('Div', [x, std]), wt]);
  };

  // Rotary tables from position_ids: [batch, 1, seq, head_dim].
  g.scope = 'rotary/';
  const pos = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: DataType.FLOAT }), g.int64([2])]);
  const freqs = g.op('Mul', [pos, g.float(ropeInvFreq(D, c.ropeTheta))]);
  const emb = g.op('Concat', [freqs, freqs], { axis: -1 });
  const cos = g.op('Unsqueeze', [g.op('Cos', [emb]), g.int64([1])]);
  const sin = g.op('Unsqueeze', [g.op('Sin', [emb]), g.int64([1])]);
  const half = g.int64([D / 2, D / 2]);
  const rope = (x: string) => {
    const [x1, x2] = g.opN('Split', [x, half], 2, { axis: -1 });
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };

  // Additive mask [batch, 1, 1, seq, total]: causal over absolute positions and padding.
  g.scope = 'mask/';
  const { bias } = causalMask(g, { inputIds, attentionMask });
  const scale = g.float([1 / Math.sqrt(D)], []);

  g.scope = 'model/';
  let x = g.op('Gather', [embedName, inputIds], { axis: 0 });
  const toHeads = (t: string, n: number) => g.op('Transpose', [g.op('Reshape', [t, g.int64([0, 0, n, D])])], { perm: [0, 2, 1, 3] });
  for (let i = 0; i < L; i++) {
    const lw = w.layers[i];
    const p = `model.layers.${i}`;
    g.scope = `${p}/attn/`;
    const h = rmsNorm(x, lw.inputNorm, `${p}.input_layernorm.weight`);
    const q = rope(toHeads(linear(h, lw.q, `${p}.self_attn.q_proj.weight`), H));
    const k = rope(toHeads(linear(h, lw.k, `${p}.self_attn.k_proj.weight`), KV));
    const v = toHeads(linear(h, lw.v, `${p}.self_attn.v_proj.weight`), KV);
    const keyAll = g.op('Concat', [past[i].key, k], { axis: 2 }, `present.${i}.key`);
    const valueAll = g.op('Concat', [past[i].value, v], { axis: 2 }, `present.${i}.value`);
    // Grouped-query attention without copying K/V: queries as [b, kv, rep, s, d].
    const q5 = g.op('Mul', [g.op('Reshape', [q, g.int64([0, KV, rep, -1, D])]), scale]);
    const k5 = g.op('Transpose', [g.op('Unsqueeze', [keyAll, g.int64([2])])], { perm: [0, 1, 2, 4, 3] });
    const scores = g.op('Add', [g.op('MatMul', [q5, k5]), bias]);
    const probs = g.op('Softmax', [scores], { axis: -1 });
    const ctx5 = g.op('MatMul', [probs, g.op('Unsqueeze', [valueAll, g.int64([2])])]);
    const ctx = g.op('Reshape', [g.op('Transpose', [g.op('Reshape', [ctx5, g.int64([0, H, -1, D])])], { perm: [0, 2, 1, 3] }), g.int64([0, 0, H * D])]);
    x = g.op('Add', [x, linear(ctx, lw.o, `${p}.self_attn.o_proj.weight`)]);
    g.scope = `${p}/mlp/`;
    const h2 = rmsNorm(x, lw.postNorm, `${p}.post_attention_layernorm.weight`);
    const gate = linear(h2, lw.gate, `${p}.mlp.gate_proj.weight`);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
    const up = linear(h2, lw.up, `${p}.mlp.up_proj.weight`);
    x = g.op('Add', [x, linear(g.op('Mul', [act, up]), lw.down, `${p}.mlp.down_proj.weight`)]);
  }
  g.scope = 'model/';
  const hidden = rmsNorm(x, w.finalNorm, 'model.norm.weight');
  const head = w.lmHead
    ? g.initializer('lm_head.weight.T', transpose(w.lmHead), [E, V])
    : g.op('Transpose', [embedName], { perm: [1, 0] }, 'lm_head.weight.T');

  g.op('MatMul', [hidden, head], {}, 'logits');
  decoderOutputs(g, dims, V);
  return g;
}

/** The model.onnx bytes of a Llama model. */
export function encodeLlamaOnnx(w: LlamaWeights, meta: Record<string, string> = {}): Buffer {
  return buildLlamaGraph(w, 'modelprint-zoo-llama').encode({
    producerName: 'modelprint-zoo',
    producerVersion: '1',
    docString: 'Synthetic Llama-style causal LM generated by `modelprint zoo create` (not trained).',
    metadata: meta,
  });
}

export interface HfConfigExtras {
  bosTokenId: number | null;
  eosTokenId: number;
  padTokenId: number;
}

/** config.json of a LlamaForCausalLM. */
export function llamaConfigJson(c: LlamaConfig, ids: HfConfigExtras): string {
  const cfg = {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: ids.bosTokenId,
    eos_token_id: ids.eosTokenId,
    head_dim: c.headDim,
    hidden_act: 'silu',
    hidden_size: c.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.maxPositions,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: c.numHeads,
    num_hidden_layers: c.numLayers,
    num_key_value_heads: c.numKvHeads,
    pad_token_id: ids.padTokenId,
    pretraining_tp: 1,
    rms_norm_eps: c.rmsNormEps,
    rope_scaling: null,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tieWordEmbeddings,
    torch_dtype: 'float32',
    transformers_version: '4.46.3',
    use_cache: true,
    vocab_size: c.vocabSize,
  };
  return `${JSON.stringify(cfg, null, 2)}\n`;
}

/** generation_config.json. */
export function generationConfigJson(ids: HfConfigExtras): string {
  const cfg: Record<string, unknown> = { _from_model_config: true };
  if (ids.bosTokenId !== null) cfg.bos_token_id = ids.bosTokenId;
  cfg.eos_token_id = ids.eosTokenId;
  cfg.pad_token_id = ids.padTokenId;
  cfg.transformers_version = '4.46.3';
  return `${JSON.stringify(cfg, null, 2)}\n`;
}
