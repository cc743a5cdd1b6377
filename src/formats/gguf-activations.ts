/**
 * llama.cpp's activation rounding, emulated in the ONNX graph of a GGUF file.
 *
 * ggml's CPU matmul of a weight of type T with float32 activations first converts each
 * activation row to T's `vec_dot_type` (ggml-cpu/ggml-cpu.c type_traits_cpu; llamafile
 * sgemm and the repacked Q4_0 / Q4_K kernels take the same converted rows) and then takes
 * the dot products of the two. So a GGUF file's logits under llama.cpp are those of the
 * dequantized weights times *rounded* activations; the graph reproduces that rounding
 * before each MatMul whose weight came from an F16, BF16 or quantized tensor, with
 * standard ONNX ops on the activation x ([rows, K], blocks along K). From llama.cpp's
 * sources (the vendor/llama.cpp of llama-cpp-python 0.3.36, which made the fixtures'
 * references):
 *
 * - F16 (vec_dot_type F16): x → fp16 (ggml_cpu_fp32_to_fp16, round to nearest even).
 * - BF16 (vec_dot_type BF16): x → bf16 (round to nearest even).
 * - Q4_0, Q5_0, Q8_0 (Q8_0) and Q4_1, Q5_1 (Q8_1): blocks of 32, amax = max |x|,
 *   id = amax ? 127/amax : 0, q = round-to-nearest-even(x·id) saturated to int8, stored
 *   scale d = fp16(amax/127) — arch/x86/quants.c quantize_row_q8_0 / _q8_1 (AVX2) and
 *   repack ggml_quantize_mat_q8_0_4x8; x' = q·d. Q8_1 also stores s = fp16((amax/127)·Σq),
 *   which ggml_vec_dot_q{4,5}_1_q8_1 multiplies by the weight block's min m: the graph
 *   multiplies x' by the weight without its mins (d·q, exact in float32 like llama.cpp's
 *   integer sums; dequantized d·q + m would round) and adds s·m per block.
 * - Q4_K, Q5_K, Q6_K (Q8_K): blocks of 256, iscale = −127/max where max is the element of
 *   largest |x| (ggml-quants.c quantize_row_q8_K_ref; the sign cancels in q·d),
 *   q = nearest_int(iscale·x) (round to nearest even) capped at 127, d = 1/iscale kept in
 *   float32; x' = q·d (0 for an all-zero block).
 * - F32: no rounding.
 * - GELU (Gemma): ggml_vec_gelu_f32 looks GELU-tanh up in an fp16 table (GGML_GELU_FP16).
 */
import { DataType, type GraphBuilder } from '../zoo/onnx/graph.js';
import type { DecoderHooks } from './hf-decoder.js';

/** `--gguf-activations`: llama.cpp's rounding of the activations (default) or none. */
export const GGUF_ACTIVATION_MODES = ['llama.cpp', 'float32'] as const;
export type GgufActivations = (typeof GGUF_ACTIVATION_MODES)[number];
export const DEFAULT_GGUF_ACTIVATIONS: GgufActivations = 'llama.cpp';

type VecDot = 'f16' | 'bf16' | 'q8_0' | 'q8_1' | 'q8_K';

/** The activation format ggml's CPU backend converts to before multiplying a weight of ggml type `type` (null: float32, no rounding). */
export function vecDotTypeOf(type: string): VecDot | null {
  switch (type) {
    case 'F16':
      return 'f16';
    case 'BF16':
      return 'bf16';
    case 'Q4_0':
    case 'Q5_0':
    case 'Q8_0':
      return 'q8_0';
    case 'Q4_1':
    case 'Q5_1':
      return 'q8_1';
    case 'Q4_K':
    case 'Q5_K':
    case 'Q6_K':
      return 'q8_K';
    default:
      return null;
  }
}

/**
 * The per-block minimums of a Q4_1 / Q5_1 weight ([rows, K/32] float32 in the prepared
 * weights file); with them, the weight itself is prepared without its mins (d·q).
 */
export interface BlockMins {
  location: string;
  offset: number;
  length: number;
  rows: number;
  blocks: number;
}

/**
 * Hooks for buildDecoderGraph that make the graph compute what llama.cpp's CPU backend
 * does with a GGUF file: `types` maps each weight's transformers name to its ggml type
 * name, `mins` the Q4_1 / Q5_1 weights to their block minimums. One rounded copy of an
 * activation per vec_dot_type (q, k and v share theirs).
 */
export function llamaCppHooks(types: ReadonlyMap<string, string>, mins: ReadonlyMap<string, BlockMins>): DecoderHooks {
  const done = new Map<string, Rounded>();
  return {
    linear(g, x, weight, inn) {
      const t = types.get(weight);
      const vd = t ? vecDotTypeOf(t) : null;
      if (!vd) return { x };
      const key = `${x}\u0000${vd}`;
      let r = done.get(key);
      if (!r) done.set(key, (r = roundActivation(g, x, vd, inn)));
      const m = mins.get(weight);
      if (!m || !r.q8_1) return { x: r.x };
      // Q4_1 / Q5_1 weights d·q + m: the weight initializer holds d·q (exact in float32, as
      // llama.cpp's integer dot product is), and the mins enter as llama.cpp adds them: each
      // block's m times the block sum s = fp16(d·Σq) stored with the activation quants.
      const minsT = g.externalInitializer(`${weight}#ggml_block_min`, DataType.FLOAT, [m.rows, m.blocks], { location: m.location, offset: m.offset, length: m.length });
      const s = r.q8_1;
      return { x: r.x, output: (y: string) => g.op('Add', [y, g.op('Gemm', [s, minsT], { transB: 1 })]) };
    },
    activation(g, x, act) {
      if (act !== 'gelu_tanh') return null;
      // ggml_vec_gelu_f32 (GGML_GELU_FP16): 0 at x ≤ −10, x at x ≥ 10, else the fp16 table of
      // GELU-tanh at fp16(x), i.e. fp16(gelu(fp16(x))).
      const F = DataType.FLOAT;
      const f16 = (t: string) => g.op('Cast', [g.op('Cast', [t], { to: DataType.FLOAT16 })], { to: F });
      const h = f16(x);
      const cube = g.op('Mul', [g.op('Mul', [h, h]), h]);
      const inner = g.op('Mul', [g.op('Add', [h, g.op('Mul', [cube, g.float([0.044715], [])])]), g.float([Math.fround(0.7978845608028654)], [])]);
      const gelu = f16(g.op('Mul', [g.op('Mul', [h, g.float([0.5], [])]), g.op('Add', [g.op('Tanh', [inner]), g.float([1], [])])]));
      const low = g.op('Where', [g.op('LessOrEqual', [x, g.float([-10], [])]), g.float([0], []), gelu]);
      return g.op('Where', [g.op('GreaterOrEqual', [x, g.float([10], [])]), x, low]);
    },
  };
}

interface Rounded {
  x: string;
  /** Q8_1 only: per row and block, the block sum s = fp16(d·Σq) ([rows, K/32]). */
  q8_1?: string;
}

function roundActivation(g: GraphBuilder, x: string, vd: VecDot, inn: number): Rounded {
  const F = DataType.FLOAT;
  const f16 = (t: string) => g.op('Cast', [g.op('Cast', [t], { to: DataType.FLOAT16 })], { to: F });
  if (vd === 'f16') return { x: f16(x) };
  if (vd === 'bf16') return { x: g.op('Cast', [g.op('Cast', [x], { to: DataType.BFLOAT16 })], { to: F }) };
  const B = vd === 'q8_K' ? 256 : 32;
  if (inn % B !== 0) return { x }; // ggml needs whole blocks; such a weight cannot be of this type
  const xb = g.op('Reshape', [x, g.int64([-1, inn / B, B])]);
  const amax = g.op('ReduceMax', [g.op('Abs', [xb])], { axes: [-1], keepdims: 1 });
  const zero = g.op('Equal', [amax, g.float([0], [])]);
  const scale = g.op('Where', [zero, g.float([0], []), g.op('Div', [g.float([127], []), amax])]);
  const q = g.op('Clip', [g.op('Round', [g.op('Mul', [xb, scale])]), g.float([-128], []), g.float([127], [])]);
  if (vd === 'q8_K') {
    const d = g.op('Where', [zero, g.float([0], []), g.op('Div', [g.float([1], []), scale])]);
    return { x: g.op('Reshape', [g.op('Mul', [q, d]), g.int64([-1, inn])]) };
  }
  const d32 = g.op('Div', [amax, g.float([127], [])]);
  const d = f16(d32);
  const out: Rounded = { x: g.op('Reshape', [g.op('Mul', [q, d]), g.int64([-1, inn])]) };
  if (vd === 'q8_1') {
    const sq = g.op('ReduceSum', [q, g.int64([-1])], { keepdims: 1 });
    out.q8_1 = g.op('Reshape', [f16(g.op('Mul', [d32, sq])), g.int64([-1, inn / B])]);
  }
  return out;
}
