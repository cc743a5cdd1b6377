/**
 * The experiment runner: "fingerprint these registry models with these methods, reuse
 * what exists, compare with these metrics". Config validated with zod; every error
 * names the field.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelprintError, messageOf } from '../errors.js';
import { CausalLM } from '../inference/session.js';
import { readOnnx } from '../inference/onnx-reader.js';
import { resolveModel } from '../inference/resolve.js';
import type { Registry, FingerprintRecord } from '../registry/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { contentHash, stableHash } from '../util/hash.js';
import type { Progress } from '../ui/progress.js';
import type { StopSignal } from '../util/signals.js';
import { BottomKParamsSchema } from './params.js';
import { runMatrix, matrixCsv } from './matrix.js';
import type { RunContext } from './lineage.js';
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
  progress: Progress;
  stop: StopSignal;
}

function floatPayload(v: number[]): Buffer {
  const f = Float64Array.from(v);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength);
}

function fromPayload(b: Buffer): number[] {
  return Array.from(new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}

/** A registry view that reads but never writes (runs without --write-to-registry). */
function readOnlyView(r: Registry): Registry {
  return new Proxy(r, {
    get(target, prop, recv) {
      if (prop === 'putFingerprint') return async (f: Parameters<Registry['putFingerprint']>[0]): Promise<FingerprintRecord> => ({ ...f, id: -1, createdAt: new Date().toISOString() });
      if (prop === 'putProbeSet') return async (p: Parameters<Registry['putProbeSet']>[0]) => ({ ...p, id: -1, createdAt: new Date().toISOString() });
      if (prop === 'recordError') return async () => undefined;
      return Reflect.get(target, prop, recv) as unknown;
    },
  });
}

export async function runExperiment(cfg: ExperimentConfig, o: ExperimentOptions): Promise<ExperimentResult> {
  const t0 = Date.now();
  const reg = o.writeToRegistry ? o.registry : readOnlyView(o.registry);
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
        const ctx: RunContext = { params, open: { device: o.device }, registry: reg, reuse: o.useExisting, progress: o.progress, stop: o.stop, resumeHint: 'modelprint experiment run …' };
        const entries: ModelEntry[] = records.map((m) => ({ id: m.name, path: m.source, meta: {}, contentHash: m.contentHash, registryId: m.id }));
        const r = await runMatrix(ctx, entries, path.join(o.outputDir, `bottomk_${metric}`));
        r.status.forEach((s, i) => {
          if (!s.ok) failed.push({ model: names[i], method, code: s.code ?? 'failed', message: s.message ?? '' });
          else if (metric === (metrics[0] ?? 'overlap')) {
            if (s.reused_prompts && s.reused_sketch) reused[method]++;
            else computed[method]++;
            fingerprints[method][names[i]] = { prompts: r.ranges[i] ? r.ranges[i]![1] - r.ranges[i]![0] : 0, sets: r.sketches[i]?.sets.length ?? 0, k: params.k };
          }
        });
        matrices[method][metric] = { models: names, matrix: Array.from({ length: n }, (_, i) => Array.from(r.matrix.subarray(i * n, (i + 1) * n), (v) => Number(v.toFixed(6)))) };
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
    const vectors: (number[] | null)[] = [];
    for (const m of records) {
      o.stop.check('re-run the same command; stored fingerprints are reused with --use-existing');
      try {
        const key = m.contentHash ?? (await contentHash(m.source));
        const existing = o.useExisting ? await o.registry.findFingerprint(key, method, configHash) : null;
        let vec: number[];
        if (existing) {
          vec = fromPayload(existing.payload);
          reused[method]++;
          o.progress.emit({ event: 'model_done', model: m.name, score: null, reused: true, seconds: 0 });
        } else {
          const t = Date.now();
          o.progress.emit({ event: 'phase', model: m.name, phase: 'loading', done: 0, total: 1 });
          const files = resolveModel(m.source, { id: m.name });
          const info = readOnnx(files.onnxPath!);
          if (method === 'weight') vec = weightFingerprint(files.onnxPath!, args as { matrices?: number; values?: number }, info);
          else if (method === 'architecture') vec = architectureFingerprint(files.onnxPath!, info);
          else {
            const lm = await CausalLM.open(m.source, { device: o.device, id: m.name });
            try {
              vec = await inputOutputFingerprint(lm, probes, targets, cfg.method_args.input_output!.n0, info);
            } finally {
              await lm.release();
            }
          }
          await reg.putFingerprint({ modelKey: key, modelId: m.id, method, configHash, payload: floatPayload(vec) });
          computed[method]++;
          o.progress.emit({ event: 'model_done', model: m.name, score: null, reused: false, seconds: (Date.now() - t) / 1000 });
        }
        vectors.push(vec);
        fingerprints[method][m.name] = vec;
      } catch (e) {
        if (e instanceof ModelprintError && (e.code === 'E_INTERRUPTED' || e.code === 'E_PERMISSION' || e.code === 'E_REGISTRY')) throw e;
        const code = (e as { modelCode?: string }).modelCode ?? 'inference_failed';
        failed.push({ model: m.name, method, code, message: messageOf(e) });
        o.progress.emit({ event: 'model_failed', model: m.name, code, message: messageOf(e) });
        vectors.push(null);
      }
    }
    for (const metric of cfg.metrics.filter((x): x is VectorMetric => (VECTOR_METRICS as readonly string[]).includes(x))) {
      const matrix = vectors.map((a, i) => vectors.map((b, j) => (!a || !b ? -1 : i === j ? 1 : Number(vectorSimilarity(a, b, metric).toFixed(6)))));
      matrices[method][metric] = { models: names, matrix };
    }
  }

  const files = { fingerprints: path.join(o.outputDir, 'fingerprints.json'), similarity: path.join(o.outputDir, 'similarity_matrices.json'), csv: [] as string[] };
  writeFileAtomic(files.fingerprints, `${JSON.stringify({ config: cfg, models: names, fingerprints }, null, 1)}\n`);
  writeFileAtomic(files.similarity, `${JSON.stringify({ similarity_matrices: matrices }, null, 1)}\n`);
  for (const [method, byMetric] of Object.entries(matrices)) {
    for (const [metric, { matrix, models }] of Object.entries(byMetric)) {
      const f = path.join(o.outputDir, `similarity_${method}_${metric}.csv`);
      writeFileAtomic(f, matrixCsv(models, Float32Array.from(matrix.flat())));
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
