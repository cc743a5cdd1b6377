/**
 * The experiment runner: "fingerprint these registry models with these methods, reuse
 * what exists, compare with these metrics". Config validated with zod; every error
 * names the field.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelprintError, messageOf } from '../errors.js';
import { readOnnx } from '../inference/onnx-reader.js';
import type { OnnxVariantRequest } from '../inference/format.js';
import { resolveModel } from '../inference/resolve.js';
import type { Registry } from '../registry/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { roundTo } from '../util/format.js';
import { stableHash } from '../util/hash.js';
import type { Progress } from '../ui/progress.js';
import type { StopSignal } from '../util/signals.js';
import { BottomKParamsSchema } from './params.js';
import { runMatrix, writeMatrix } from './matrix.js';
import { fingerprintFor, forEachModel, type Fingerprinter, type RunContext } from './runner.js';
import type { ModelEntry } from './models-input.js';
import { architectureFingerprint, inputOutputFingerprint, readTokenStrings, vectorSimilarity, weightFingerprint, type VectorMetric } from './vector.js';

const VECTOR_METHODS = ['input_output', 'weight', 'architecture'] as const;
const SET_METRICS = ['overlap', 'jaccard'] as const;
const VECTOR_METRICS = ['l1', 'cosine', 'euclidean'] as const;

export const ExperimentConfigSchema = z
  .object({
    name: z.string().optional(),
    models: z.array(z.union([z.string().min(1), z.number().int().nonnegative()])).min(1, 'list at least one model (registry name, Hub id or path)'),
    methods: z.array(z.enum(['bottomk', ...VECTOR_METHODS])).min(1, 'list at least one method'),
    method_args: z
      .object({
        input_output: z
          .object({
            n0: z.number().int().positive().default(40),
            target_tokens_path: z.string().min(1),
            probe_tokens_path: z.string().min(1),
          })
          .strict()
          .optional(),
        bottomk: z
          .object({
            k: z.number().int().positive().default(2000),
            num_prompts: z.number().int().positive().default(10),
            sample_k: z.number().int().positive().default(50),
            prefix_len: z.number().int().positive().default(8),
            total_len: z.number().int().positive().default(64),
            seed: z.number().int().nonnegative().default(42),
          })
          .strict()
          .optional(),
        weight: z.object({ matrices: z.number().int().positive().default(6), values: z.number().int().positive().default(8) }).strict().optional(),
        architecture: z.object({}).strict().optional(),
      })
      .strict()
      .default({}),
    metrics: z.array(z.enum([...SET_METRICS, ...VECTOR_METRICS])).min(1, 'list at least one metric'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.methods.includes('input_output') && !c.method_args.input_output) {
      ctx.addIssue({ code: 'custom', path: ['method_args', 'input_output'], message: 'input_output needs probe_tokens_path and target_tokens_path' });
    }
  });

export type ExperimentConfig = z.infer<typeof ExperimentConfigSchema>;

export function readExperimentConfig(file: string): ExperimentConfig {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelprintError('E_CONFIG', `cannot read config ${file}: ${messageOf(e)}`, { subject: file, hint: 'see configs/experiment.example.json' });
  }
  const parsed = ExperimentConfigSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    const field = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    throw new ModelprintError('E_CONFIG', `${file}: field "${field || '(root)'}": ${i.message}`, { subject: `${file}:${field}`, hint: 'see configs/experiment.example.json' });
  }
  const c = parsed.data;
  const dir = path.dirname(path.resolve(file));
  if (c.method_args.input_output) {
    c.method_args.input_output.probe_tokens_path = path.resolve(dir, c.method_args.input_output.probe_tokens_path);
    c.method_args.input_output.target_tokens_path = path.resolve(dir, c.method_args.input_output.target_tokens_path);
  }
  return c;
}

export interface ExperimentResult {
  models: Array<{ id: string; name: string; family: string | null; model_type: string | null }>;
  computed: Record<string, number>;
  reused: Record<string, number>;
  failed: Array<{ model: string; method: string; code: string; message: string }>;
  files: { fingerprints: string; similarity: string; csv: string[] };
  seconds: number;
}

export interface ExperimentOptions {
  registry: Registry;
  useExisting: boolean;
  writeToRegistry: boolean;
  outputDir: string;
  device: 'cpu' | 'cuda' | 'auto';
  /** ONNX variant to open in folders holding several (--onnx-variant). */
  onnxVariant?: OnnxVariantRequest;
  progress: Progress;
  stop: StopSignal;
  /** Write the bottom-k sketches (all models on all prompts, with anchors) here (.mpsk). */
  sketchesOut?: string;
  warn?: (msg: string) => void;
}

function floatPayload(v: number[]): Buffer {
  const f = Float64Array.from(v);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength);
}

function fromPayload(b: Buffer): number[] {
  return Array.from(new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}

export async function runExperiment(cfg: ExperimentConfig, o: ExperimentOptions): Promise<ExperimentResult> {
  const t0 = Date.now();
  const runCtx: RunContext = {
    params: BottomKParamsSchema.parse({}),
    open: { device: o.device, onnxVariant: o.onnxVariant },
    registry: o.registry,
    reuse: o.useExisting,
    registryWrite: o.writeToRegistry ? 'write' : 'read-only',
    progress: o.progress,
    stop: o.stop,
    resumeHint: 'modelprint experiment run …',
    warn: o.warn,
  };
  const records = [];
  for (const [i, ref] of cfg.models.entries()) {
    // A registry name (Hub id) or id, else a model folder registered from that path.
    const src = path.resolve(String(ref));
    const m = (await o.registry.getModel(String(ref))) ?? (await o.registry.listModels()).find((x) => x.source === src) ?? null;
    if (!m) throw new ModelprintError('E_CONFIG', `field "models[${i}]": no model "${ref}" in the registry (by name, id or path)`, { subject: `models[${i}]`, hint: 'name models by Hub id / registry name or by the path they were registered from; register them with `modelprint models add` or `models import` (see `modelprint models list`)' });
    records.push(m);
  }
  fs.mkdirSync(o.outputDir, { recursive: true });
  const computed: Record<string, number> = {};
  const reused: Record<string, number> = {};
  const failed: ExperimentResult['failed'] = [];
  const fingerprints: Record<string, Record<string, unknown>> = {};
  const matrices: Record<string, Record<string, { matrix: number[][]; models: string[] }>> = {};
  const names = records.map((m) => m.name);
  const n = records.length;
  const entries: ModelEntry[] = records.map((m) => ({ id: m.name, path: m.source, meta: {}, contentHash: m.contentHash, registryId: m.id }));

  for (const method of cfg.methods) {
    computed[method] = 0;
    reused[method] = 0;
    fingerprints[method] = {};
    matrices[method] = {};
    if (method === 'bottomk') {
      const a = cfg.method_args.bottomk ?? BottomKParamsSchema.parse({});
      const args = 'num_prompts' in a ? { k: a.k, numPrompts: a.num_prompts, sampleK: a.sample_k, prefixLen: a.prefix_len, totalLen: a.total_len, seed: a.seed } : {};
      const metrics = cfg.metrics.filter((x): x is (typeof SET_METRICS)[number] => (SET_METRICS as readonly string[]).includes(x));
      for (const metric of metrics.length ? metrics : ['overlap' as const]) {
        const params = BottomKParamsSchema.parse({ ...args, metric });
        const ctx: RunContext = { ...runCtx, params };
        const first = metric === (metrics[0] ?? 'overlap');
        const r = await runMatrix(ctx, entries, path.join(o.outputDir, `bottomk_${metric}`), { sketchesOut: first ? o.sketchesOut : undefined });
        r.status.forEach((s, i) => {
          if (!s.ok) failed.push({ model: names[i], method, code: s.code ?? 'failed', message: s.message ?? '' });
          else if (metric === (metrics[0] ?? 'overlap')) {
            if (s.reused_prompts && s.reused_sketch) reused[method]++;
            else computed[method]++;
            fingerprints[method][names[i]] = { prompts: r.ranges[i] ? r.ranges[i]![1] - r.ranges[i]![0] : 0, sets: r.sketches.prompts, k: params.k };
          }
        });
        matrices[method][metric] = { models: names, matrix: Array.from({ length: n }, (_, i) => Array.from(r.matrix.subarray(i * n, (i + 1) * n), (v) => roundTo(v, 6))) };
      }
      continue;
    }
    const args = cfg.method_args[method] ?? {};
    let tokenHashes = {};
    let probes: string[] = [];
    let targets: string[] = [];
    if (method === 'input_output') {
      const io = cfg.method_args.input_output!;
      probes = readTokenStrings(io.probe_tokens_path);
      targets = readTokenStrings(io.target_tokens_path);
      tokenHashes = { probes: stableHash(probes), targets: stableHash(targets) };
    }
    const configHash = stableHash({ method, args, ...tokenHashes, v: 1 });
    const fp: Fingerprinter<number[]> = {
      method,
      configHash,
      encode: floatPayload,
      decode: (payload) => (payload.byteLength % 8 === 0 && payload.byteLength > 0 ? fromPayload(payload).filter(Number.isFinite) : null),
    };
    const vectors = await forEachModel(
      runCtx,
      entries,
      async (e, lm) => {
        const r = await fingerprintFor(runCtx, e, fp, async () => {
          const files = resolveModel(e.path!, { id: e.id, onnxVariant: o.onnxVariant });
          const info = readOnnx(files.onnxPath!, e.id);
          if (method === 'weight') return weightFingerprint(files.onnxPath!, args as { matrices?: number; values?: number }, info);
          if (method === 'architecture') return architectureFingerprint(files.onnxPath!, info);
          return inputOutputFingerprint(await lm.get(), probes, targets, cfg.method_args.input_output!.n0, info);
        });
        if (r.reused) reused[method]++;
        else computed[method]++;
        fingerprints[method][e.id] = r.value;
        return { value: r.value, reused: r.reused };
      },
      (e, f) => {
        failed.push({ model: e.id, method, ...f });
      },
    );
    for (const metric of cfg.metrics.filter((x): x is VectorMetric => (VECTOR_METRICS as readonly string[]).includes(x))) {
      const matrix = vectors.map((a, i) => vectors.map((b, j) => (!a || !b ? -1 : i === j ? 1 : roundTo(vectorSimilarity(a, b, metric), 6))));
      matrices[method][metric] = { models: names, matrix };
    }
  }

  const files = { fingerprints: path.join(o.outputDir, 'fingerprints.json'), similarity: path.join(o.outputDir, 'similarity_matrices.json'), csv: [] as string[] };
  writeFileAtomic(files.fingerprints, `${JSON.stringify({ config: cfg, models: names, fingerprints }, null, 1)}\n`);
  writeFileAtomic(files.similarity, `${JSON.stringify({ similarity_matrices: matrices }, null, 1)}\n`);
  for (const [method, byMetric] of Object.entries(matrices)) {
    for (const [metric, { matrix, models }] of Object.entries(byMetric)) {
      const f = path.join(o.outputDir, `similarity_${method}_${metric}.csv`);
      writeMatrix(f, models, models, Float32Array.from(matrix.flat()));
      files.csv.push(f);
    }
  }
  return {
    models: records.map((m) => ({ id: String(m.id), name: m.name, family: m.family, model_type: m.modelType })),
    computed,
    reused,
    failed,
    files,
    seconds: (Date.now() - t0) / 1000,
  };
}
