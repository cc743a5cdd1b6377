/**
 * Benchmarks of the inference layer and the bottom-k pipeline on the default zoo, each
 * compared in the same run with the straightforward implementation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CausalLM } from '../inference/session.js';
import { native } from '../native/index.js';
import { ensureZoo } from '../zoo/index.js';
import { resolveModelList } from '../methods/models-input.js';
import { runBaseVsDerived, type RunContext } from '../methods/lineage.js';
import { runMatrix } from '../methods/matrix.js';
import { BottomKParamsSchema } from '../methods/params.js';
import { labelsFromEntries, lineageQuality } from '../methods/quality.js';
import { modelAllowedTokens } from '../methods/bottomk.js';
import { architectureFingerprint, inputOutputFingerprint, readTokenStrings, vectorSimilarity, weightFingerprint, type VectorMetric } from '../methods/vector.js';
import { readOnnx } from '../inference/onnx-reader.js';
import { openRegistry } from '../registry/index.js';
import { Progress } from '../ui/progress.js';
import { StopSignal } from '../util/signals.js';
import { Rng } from '../util/rng.js';
import { machineLine, updateBenchSection } from './markdown.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeIt(fn: () => Promise<unknown> | unknown, reps: number): Promise<number> {
  await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    ts.push(performance.now() - t);
  }
  return median(ts) / 1000;
}

/** The straightforward bottom-k: sort every index of the row by value in JS. */
export function jsSortBottomK(row: Float32Array, k: number): Uint32Array {
  const idx = Array.from(row.keys()).sort((a, b) => row[a] - row[b] || a - b);
  return Uint32Array.from(idx.slice(0, k)).sort();
}

export async function benchInference(zooDir: string): Promise<string> {
  const models = await resolveModelList([path.join(zooDir, 'models.csv')], null);
  const bases = models.filter((m) => !m.meta.base_model);
  const lines = [
    '| model | vocab | layers × hidden | batch 16 × 64 tokens: s/batch | prompts/s | native bottom-k (k=2000) per row | JS sort per row | speed-up |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const b of bases) {
    const lm = await CausalLM.open(b.path!, { device: 'cpu', batchSize: 16 });
    const allowed = modelAllowedTokens(lm);
    const rng = new Rng(7);
    const prompts = Array.from({ length: 16 }, () => Array.from({ length: 64 }, () => allowed[rng.int(allowed.length)]));
    let out = await lm.lastLogits(prompts);
    const t = await timeIt(async () => (out = await lm.lastLogits(prompts)), 5);
    const { logits, width } = out;
    const tNative = (await timeIt(() => native.bottomKRowsSorted(logits, width, 2000), 10)) / 16;
    const tJs = (await timeIt(() => {
      for (let r = 0; r < 16; r++) jsSortBottomK(logits.subarray(r * width, (r + 1) * width), 2000);
    }, 3)) / 16;
    // Both give the same sets.
    const a = native.bottomKRowsSorted(logits.subarray(0, width), width, 2000);
    const bjs = jsSortBottomK(logits.subarray(0, width), 2000);
    if (a.some((v, i) => v !== bjs[i])) throw new Error('native and JS bottom-k disagree');
    const cfg = lm.config!;
    lines.push(
      `| ${b.id} | ${width} | ${cfg.numLayers} × ${cfg.hiddenSize} | ${t.toFixed(3)} | ${(16 / t).toFixed(1)} | ${(tNative * 1000).toFixed(3)} ms | ${(tJs * 1000).toFixed(2)} ms | ${(tJs / tNative).toFixed(1)}× |`,
    );
    await lm.release();
  }
  return lines.join('\n');
}

function ctxFor(registry: RunContext['registry'], params: ReturnType<typeof BottomKParamsSchema.parse>, reuse: boolean): RunContext {
  return { params, open: { device: 'cpu' }, registry, reuse, progress: new Progress([]), stop: new StopSignal(), resumeHint: '' };
}

export async function benchPipeline(zooDir: string, work: string): Promise<string> {
  const models = await resolveModelList([path.join(zooDir, 'models.csv')], null);
  const base = models.find((m) => !m.meta.base_model)!;
  const family = models.filter((m) => m.meta.base_model === base.id);
  const registry = await openRegistry(path.join(work, 'bench-registry.db'));
  const params = BottomKParamsSchema.parse({});
  // Base vs derived, defaults (N=10, k=2000), nothing reused.
  const t0 = performance.now();
  const s = await runBaseVsDerived(ctxFor(registry, params, false), base, family, path.join(work, 'bench-lineage.csv'), {});
  const tLineage = (performance.now() - t0) / 1000;
  // Same run again with registry reuse: no model loaded.
  fs.rmSync(path.join(work, 'bench-lineage.csv'));
  const t1 = performance.now();
  await runBaseVsDerived(ctxFor(registry, params, true), base, family, path.join(work, 'bench-lineage.csv'), {});
  const tReuse = (performance.now() - t1) / 1000;
  await registry.close();
  const prompts = (family.length + 1) * params.numPrompts;
  return [
    `Base vs derived on the default zoo: base \`${base.id}\` against its ${family.length} derivatives, N = ${params.numPrompts} prompts, k = ${params.k}, CPU, registry reuse off (every model loaded, prompts generated with the KV cache).`,
    '',
    '| measure | value |',
    '|---|---|',
    `| wall time | ${tLineage.toFixed(1)} s |`,
    `| models/min | ${((family.length + 1) / (tLineage / 60)).toFixed(1)} |`,
    `| sketch prompts/s (incl. model load, tokenization, bottom-k) | ${(prompts / tLineage).toFixed(1)} |`,
    `| rows ok / failed | ${s.ok} / ${s.failed} |`,
    `| same run with \`--reuse\` (sketches from the registry) | ${tReuse.toFixed(2)} s (${(tLineage / tReuse).toFixed(0)}× faster) |`,
  ].join('\n');
}

export async function benchQuality(zooDir: string, work: string, numPrompts = 5): Promise<string> {
  const models = await resolveModelList([path.join(zooDir, 'models.csv')], null);
  const registry = await openRegistry(path.join(work, 'bench-registry.db'));
  const params = BottomKParamsSchema.parse({ numPrompts });
  const t0 = performance.now();
  const r = await runMatrix(ctxFor(registry, params, true), models, path.join(work, 'bench-matrix'));
  const t = (performance.now() - t0) / 1000;
  await registry.close();
  const labels = labelsFromEntries(models);
  const tokOf = (id: string) => {
    const m = models.find((x) => x.id === id);
    return m?.path ? fs.readFileSync(path.join(m.path, 'tokenizer.json'), 'utf8').length.toString() : '';
  };
  const q = lineageQuality(r.models, r.matrix, labels, { tokenizerOf: tokOf });
  const lines = [
    `Pairwise matrix of all ${r.models.length} default-zoo models (N = ${numPrompts} prompts per model, k = ${params.k}): ${t.toFixed(1)} s. Score of each derivative against its base (M[base][model]):`,
    '',
    '| relation | n | mean | min | max |',
    '|---|---|---|---|---|',
    ...q.relations.map((x) => `| ${x.relation} | ${x.count} | ${x.mean.toFixed(4)} | ${x.min.toFixed(4)} | ${x.max.toFixed(4)} |`),
    '',
    `Unrelated pairs (each base vs every model of another family): ${q.negatives}, of which ${q.same_tokenizer_negatives} share the base's tokenizer.`,
    `ROC AUC derivatives vs unrelated: **${q.auc_without_hard?.toFixed(4)}** over all relations except the deliberately hard ones (${q.hard_relations.join(', ')}); **${q.auc_all?.toFixed(4)}** with them.`,
    `Nearest relative (symmetrised score) in the same family for ${(q.nearest_same_family_rate * 100).toFixed(1)} % of models. Exact re-uploads: ${q.reupload_scores.map((x) => x.toFixed(4)).join(', ') || 'none'}.`,
  ];
  return lines.join('\n');
}

/** input_output, weight and architecture fingerprints on the default zoo, scored like bottom-k. */
export async function benchVectorQuality(zooDir: string, configsDir: string): Promise<string> {
  const models = await resolveModelList([path.join(zooDir, 'models.csv')], null);
  const probes = readTokenStrings(path.join(configsDir, 'probe_tokens.txt'));
  const targets = readTokenStrings(path.join(configsDir, 'target_tokens.txt'));
  const vecs: Record<string, number[][]> = { input_output: [], weight: [], architecture: [] };
  const secs: Record<string, number> = { input_output: 0, weight: 0, architecture: 0 };
  for (const m of models) {
    const lm = await CausalLM.open(m.path!, { device: 'cpu' });
    const info = readOnnx(lm.files.onnxPath!);
    let t = performance.now();
    vecs.input_output.push(await inputOutputFingerprint(lm, probes, targets, 40, info));
    secs.input_output += (performance.now() - t) / 1000;
    await lm.release();
    t = performance.now();
    vecs.weight.push(weightFingerprint(lm.files.onnxPath!, {}, info));
    secs.weight += (performance.now() - t) / 1000;
    t = performance.now();
    vecs.architecture.push(architectureFingerprint(lm.files.onnxPath!, info));
    secs.architecture += (performance.now() - t) / 1000;
  }
  const ids = models.map((m) => m.id);
  const labels = labelsFromEntries(models);
  const n = ids.length;
  const lines = [
    `The vector methods of METHODS §3 on the same ${n} default-zoo models (input_output: ${probes.length} probe and ${targets.length} target strings from configs/, n0 = 40; weight: top 8 singular values of the 6 largest matrices). Same protocol as the bottom-k table: derivatives against their base vs each base against every model of another family.`,
    '',
    '| method | metric | ROC AUC without hard relations | ROC AUC with them | mean score of derivatives | mean score of unrelated | time per model |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const method of ['input_output', 'weight', 'architecture']) {
    for (const metric of ['cosine', 'l1'] as VectorMetric[]) {
      const m = new Float32Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] = vectorSimilarity(vecs[method][i], vecs[method][j], metric);
      const q = lineageQuality(ids, m, labels);
      const posMean = q.relations.reduce((a, r) => a + r.mean * r.count, 0) / Math.max(1, q.positives);
      let negSum = 0;
      for (const b of labels.filter((l) => l.base === l.id)) for (const l of labels) if (l.family !== b.family) negSum += m[ids.indexOf(b.id) * n + ids.indexOf(l.id)];
      lines.push(`| ${method} | ${metric} | ${q.auc_without_hard?.toFixed(4)} | ${q.auc_all?.toFixed(4)} | ${posMean.toFixed(4)} | ${(negSum / q.negatives).toFixed(4)} | ${((secs[method] / n) * 1000).toFixed(0)} ms |`);
    }
  }
  lines.push('', 'architecture is (by construction) identical for every zoo model of the same shape, so it tells architectures apart, not lineage.');
  return lines.join('\n');
}

export async function runPipelineBenches(file = 'BENCHMARKS.md', only?: string[]): Promise<void> {
  const work = path.resolve('.modelprint', 'bench');
  fs.mkdirSync(work, { recursive: true });
  const zooDir = path.join(work, 'zoo');
  const tz = performance.now();
  await ensureZoo(zooDir, { size: 'default', seed: 42 });
  const zooSeconds = (performance.now() - tz) / 1000;
  const want = (x: string) => !only || only.includes(x);
  if (want('inference')) {
    const md = await benchInference(zooDir);
    updateBenchSection(file, 'inference', `## Inference (issue 3)\n\n${machineLine()}\nInputs: the default zoo (seed 42; built/reused in ${zooSeconds.toFixed(1)} s), one base model per family, ONNX Runtime on the CPU, batch of 16 random prompts × 64 tokens, median of 5 runs. Bottom-k per logits row: the Rust core vs a plain JS sort of the row (same sets), median of repeated runs.\n\n${md}`);
  }
  if (want('pipeline')) {
    const md = await benchPipeline(zooDir, work);
    updateBenchSection(file, 'pipeline', `## Fingerprinting throughput (issue 4)\n\n${machineLine()}\n\n${md}`);
  }
  if (want('quality')) {
    const md = await benchQuality(zooDir, work);
    updateBenchSection(file, 'quality', `## Detection quality on the zoo (issue 4)\n\n${machineLine()}\n\n${md}`);
  }
  if (want('vector')) {
    const md = await benchVectorQuality(zooDir, path.resolve('configs'));
    updateBenchSection(file, 'vector', `## Vector fingerprints next to bottom-k (issue 7)\n\n${machineLine()}\n\n${md}`);
  }
}
