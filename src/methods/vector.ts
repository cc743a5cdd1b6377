/**
 * Vector fingerprint methods (METHODS §3): input_output (linear approximation of the
 * model's input→output map), weight (top singular values of the largest weight
 * matrices) and architecture (ONNX graph operator and shape statistics), with the
 * vector metrics cosine, l1 and euclidean.
 */
import fs from 'node:fs';
import { native } from '../native/index.js';
import { ModelError } from '../inference/errors.js';
import { findEmbedding, readOnnx, type OnnxGraphInfo } from '../inference/onnx-reader.js';
import type { CausalLM } from '../inference/session.js';
import { ModelprintError } from '../errors.js';

export type VectorMetric = 'cosine' | 'l1' | 'euclidean';

/** Pads the shorter vector with leading zeros (fingerprints are ascending). */
function align(a: ArrayLike<number>, b: ArrayLike<number>): [number[], number[]] {
  const n = Math.max(a.length, b.length);
  const pad = (x: ArrayLike<number>) => [...new Array(n - x.length).fill(0), ...Array.from(x)];
  return [pad(a), pad(b)];
}

/** Similarity in [0, 1], 1 = identical (§3). */
export function vectorSimilarity(a: ArrayLike<number>, b: ArrayLike<number>, metric: VectorMetric): number {
  const [x, y] = align(a, b);
  if (metric === 'cosine') {
    let dot = 0;
    let nx = 0;
    let ny = 0;
    for (let i = 0; i < x.length; i++) {
      dot += x[i] * y[i];
      nx += x[i] * x[i];
      ny += y[i] * y[i];
    }
    if (nx === 0 || ny === 0) return nx === ny ? 1 : 0;
    return Math.max(0, Math.min(1, dot / Math.sqrt(nx * ny)));
  }
  if (metric === 'l1') {
    let d = 0;
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      d += Math.abs(x[i] - y[i]);
      s += Math.abs(x[i]) + Math.abs(y[i]);
    }
    return s === 0 ? 1 : 1 - d / s;
  }
  let d2 = 0;
  for (let i = 0; i < x.length; i++) d2 += (x[i] - y[i]) ** 2;
  return 1 / (1 + Math.sqrt(d2));
}

/** Reads a token-strings file: one string a line, duplicates dropped keeping order. */
export function readTokenStrings(file: string): string[] {
  if (!fs.existsSync(file)) throw new ModelprintError('E_NOT_FOUND', `token file ${file} does not exist`, { subject: file, hint: 'see configs/ for example probe and target token files' });
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    if (line === '' || seen.has(line)) continue;
    seen.add(line);
    out.push(line);
  }
  if (out.length === 0) throw new ModelprintError('E_INPUT', `token file ${file} has no strings`, { subject: file, hint: 'one string a line' });
  return out;
}

function l2normalize(v: number[]): number[] {
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return n > 0 ? v.map((x) => x / n) : v;
}

/** input_output fingerprint (§3) of a loaded model. */
export async function inputOutputFingerprint(lm: CausalLM, probes: string[], targets: string[], n0: number, info?: OnnxGraphInfo): Promise<number[]> {
  const graph = info ?? readOnnx(lm.files.onnxPath!, lm.id);
  const embInit = findEmbedding(graph);
  if (!embInit) throw new ModelError('unexpected_io', lm.id, 'cannot find the input embedding (a Gather on input_ids) in the ONNX graph', 'input_output needs the embedding matrix as an initializer');
  const [vocabRows, d] = embInit.dims;
  const emb = embInit.floats();
  const inVocab = (ids: number[]) => ids.filter((t) => t >= 0 && t < vocabRows);
  const probeIds = probes.map((p) => inVocab(lm.encode(p, false))).filter((x) => x.length > 0);
  const T = targets.flatMap((t) => inVocab(lm.encode(t, false)));
  if (probeIds.length === 0) throw new ModelError('inference_failed', lm.id, 'no probe string tokenizes to in-vocabulary ids');
  if (T.length === 0) throw new ModelError('inference_failed', lm.id, 'no target string tokenizes to in-vocabulary ids');
  const N = probeIds.length;
  const V = new Float64Array(d * N);
  const U = new Float64Array(d * N);
  const { logits, width } = await lm.lastLogits(probeIds);
  for (let i = 0; i < N; i++) {
    const ids = probeIds[i];
    for (let j = 0; j < ids.length; j++) {
      const s = Math.sin(j);
      const off = ids[j] * d;
      for (let c = 0; c < d; c++) V[c * N + i] += (emb[off + c] + s) / ids.length;
    }
    const row = logits.subarray(i * width, (i + 1) * width);
    let max = -Infinity;
    for (let t = 0; t < width; t++) if (row[t] > max) max = row[t];
    let z = 0;
    for (let t = 0; t < width; t++) z += Math.exp(row[t] - max);
    for (const t of T) {
      if (t >= width) continue;
      const p = Math.exp(row[t] - max) / z;
      const off = t * d;
      for (let c = 0; c < d; c++) U[c * N + i] += p * emb[off + c];
    }
  }
  return Array.from(native.ioFingerprint(V, U, d, N, n0));
}

/** weight fingerprint: top singular values of the largest 2-D weight matrices, L2-normalised. */
export function weightFingerprint(onnxPath: string, opts: { matrices?: number; values?: number } = {}, info?: OnnxGraphInfo): number[] {
  const graph = info ?? readOnnx(onnxPath);
  const m = opts.matrices ?? 6;
  const s = opts.values ?? 8;
  const mats = graph.initializers
    .filter((i) => i.dims.length === 2 && [1, 10, 11, 16].includes(i.dataType) && i.dims[0] > 1 && i.dims[1] > 1)
    .sort((a, b) => b.dims[0] * b.dims[1] - a.dims[0] * a.dims[1] || a.name.localeCompare(b.name))
    .slice(0, m);
  const out: number[] = [];
  for (const init of mats) {
    const sv = Array.from(native.topSingularValues(init.floats(), init.dims[0], init.dims[1], s));
    while (sv.length < s) sv.push(0);
    out.push(...sv);
  }
  while (out.length < m * s) out.push(0);
  return l2normalize(out);
}

const OPS = [
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Neg', 'Exp', 'Erf', 'Tanh', 'Sigmoid', 'Softmax', 'MatMul', 'Gemm', 'Gather', 'Concat',
  'Reshape', 'Transpose', 'Unsqueeze', 'Squeeze', 'Slice', 'Split', 'Shape', 'Cast', 'Where', 'Equal', 'Less', 'LessOrEqual', 'Greater',
  'Range', 'Expand', 'ReduceMean', 'ReduceSum', 'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'Cos', 'Sin', 'Trilu', 'ConstantOfShape', 'Constant', 'Identity', 'DequantizeLinear', 'QuantizeLinear', 'MatMulInteger', 'MatMulNBits',
  'GroupQueryAttention', 'MultiHeadAttention', 'RotaryEmbedding', 'And', 'Or', 'Not', 'Min', 'Max',
];

/** architecture fingerprint: operator counts and shape statistics of the ONNX graph, L2-normalised. */
export function architectureFingerprint(onnxPath: string, info?: OnnxGraphInfo): number[] {
  const graph = info ?? readOnnx(onnxPath);
  const counts = new Map<string, number>();
  for (const n of graph.nodes) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
  const other = [...counts.entries()].filter(([k]) => !OPS.includes(k)).reduce((a, [, v]) => a + v, 0);
  const params = graph.initializers.reduce((a, i) => a + i.dims.reduce((x, y) => x * y, 1), 0);
  const emb = findEmbedding(graph);
  const past = graph.inputs.filter((x) => x.startsWith('past_key_values.')).length / 2;
  const v = [
    ...OPS.map((op) => Math.log1p(counts.get(op) ?? 0)),
    Math.log1p(other),
    Math.log1p(graph.nodes.length),
    Math.log1p(graph.initializers.length),
    Math.log10(1 + params),
    Math.log1p(emb?.dims[0] ?? 0),
    Math.log1p(emb?.dims[1] ?? 0),
    Math.log1p(past),
    Math.log1p(graph.inputs.length),
    Math.log1p(graph.outputs.length),
  ];
  return l2normalize(v);
}
