/**
 * Bottom-k constrained text (METHODS §2): base and derived model each greedily
 * generate up to 64 new tokens after the probe prompt, every token outside the base's
 * bottom-k set of that prompt forced to −∞; the two texts are compared.
 */
import { ModelprintError } from '../errors.js';
import { ModelError } from '../inference/errors.js';
import type { CausalLM } from '../inference/session.js';
import { native } from '../native/index.js';
import { checkParamsSidecar, readPromptFile, type LineageSummary } from './lineage.js';
import { forEachModel, lazyModel, modelKey, promptsFor, type RunContext } from './runner.js';
import { promptParamsHash } from './params.js';
import { stableHash } from '../util/hash.js';
import type { ModelEntry } from './models-input.js';
import { ResultCsv, TEXT_COLUMNS, formatScore } from './results.js';

export const TEXT_NEW_TOKENS = 64;
export const K_PREFIX = 30;

export function normalizeText(s: string): string {
  return s.toLowerCase().split(/\s+/).filter(Boolean).join(' ');
}

/** Greedy generation restricted to `allowed` token ids. */
async function constrainedGenerate(lm: CausalLM, prompt: string, allowed: Uint32Array, maxNew: number): Promise<string> {
  const ids = lm.encode(prompt, true);
  const width = lm.logitsWidth ?? 0;
  const usable = allowed.filter((t) => width === 0 || t < width);
  if (usable.length === 0 || ids.length === 0) return '';
  const eos = new Set(lm.config?.eosTokenIds ?? []);
  const start = await lm.startDecode([ids]);
  const state = start.state;
  let logits = start.logits;
  const out: number[] = [];
  for (let step = 0; step < maxNew; step++) {
    let best = usable[0];
    let bestV = -Infinity;
    for (const t of usable) {
      const v = logits[t];
      if (Number.isNaN(v)) throw new ModelError('non_finite_logits', lm.id, 'NaN logits during constrained generation');
      if (v > bestV || (v === bestV && t < best)) {
        bestV = v;
        best = t;
      }
    }
    out.push(best);
    if (eos.has(best) || step === maxNew - 1) break;
    logits = await lm.stepDecode(state, [best]);
  }
  return lm.decode(out, true);
}

/** The base's bottom-k set for each prompt (ascending ids). */
async function baseSets(lm: CausalLM, prompts: string[], k: number): Promise<Uint32Array[]> {
  const { logits, width } = await lm.lastLogits(prompts.map((p) => lm.encode(p, true)));
  const kk = Math.min(k, width);
  const rows = native.bottomKRowsSorted(logits, width, kk);
  return prompts.map((_, i) => rows.slice(i * kk, (i + 1) * kk));
}

export async function runTextMethod(
  ctx: RunContext,
  base: ModelEntry,
  derived: ModelEntry[],
  out: string,
  opts: { promptsIn?: string; promptsOut?: string; retryFailed?: boolean },
): Promise<LineageSummary> {
  const t0 = Date.now();
  const csv = new ResultCsv(out, TEXT_COLUMNS, 'derived_model_name');
  csv.extendHeader([...new Set(derived.flatMap((d) => Object.keys(d.meta)))]);
  const p = ctx.params;
  checkParamsSidecar(
    out,
    { method: 'text', base: base.id, base_key: await modelKey(base).catch(() => base.id), k: p.k, prompts: promptParamsHash(p), prompts_in: opts.promptsIn ? stableHash(readPromptFile(opts.promptsIn).prompts) : null, new_tokens: TEXT_NEW_TOKENS, k_prefix: K_PREFIX },
    csv.done.size > 0,
  );
  const isDone = (d: ModelEntry) => csv.isDone(d.id, 'avg_score', opts.retryFailed);
  const todo = derived.filter((d) => !isDone(d));
  const summary: LineageSummary = { base: base.id, out, rows: derived.length, ok: 0, failed: 0, skipped: derived.length - todo.length, reused: 0, seconds: 0, failures: [], prompts: 0 };
  ctx.progress.emit({ event: 'start', run: `text lineage vs ${base.id}`, models: derived.length, total_prompts: ctx.params.numPrompts * derived.length });
  if (todo.length === 0) {
    summary.seconds = (Date.now() - t0) / 1000;
    ctx.progress.emit({ event: 'done', ok: 0, failed: 0, skipped: summary.skipped, seconds: summary.seconds });
    return summary;
  }

  const bm = lazyModel(base, ctx);
  let prompts: string[];
  let sets: Uint32Array[];
  const baseTexts: string[] = [];
  try {
    prompts = opts.promptsIn ? readPromptFile(opts.promptsIn).prompts : (await promptsFor(ctx, base, bm.get)).prompts;
    const lm = await bm.get();
    sets = await baseSets(lm, prompts, ctx.params.k);
    for (let i = 0; i < prompts.length; i++) baseTexts.push(normalizeText(await constrainedGenerate(lm, prompts[i], sets[i], TEXT_NEW_TOKENS)));
  } catch (e) {
    if (e instanceof ModelError) throw new ModelprintError(e.code, `base model ${e.message}`, { subject: base.id, hint: e.hint, cause: e });
    throw e;
  } finally {
    await bm.release();
  }
  summary.prompts = prompts.length;

  const rowOf = (d: ModelEntry): Record<string, unknown> => ({ base_model_name: base.id, derived_model_name: d.id, ...d.meta });
  await forEachModel(
    ctx,
    todo,
    async (d, lm) => {
      const model = await lm.get();
      const metrics: Array<{ pal_k: number; lev_sim: number; lcs_ratio: number; score: number }> = [];
      for (let i = 0; i < prompts.length; i++) {
        const text = normalizeText(await constrainedGenerate(model, prompts[i], sets[i], TEXT_NEW_TOKENS));
        const tm = native.textMetrics(baseTexts[i], text, K_PREFIX);
        metrics.push({ pal_k: tm.palK, lev_sim: tm.levSim, lcs_ratio: tm.lcsRatio, score: tm.score });
        ctx.progress.emit({ event: 'phase', model: d.id, phase: 'scoring', done: i + 1, total: prompts.length });
      }
      const mean = (f: (m: (typeof metrics)[number]) => number) => metrics.reduce((a, m) => a + f(m), 0) / metrics.length;
      const round = (x: number) => Number(x.toFixed(4));
      csv.append({
        ...rowOf(d),
        num_pairs: metrics.length,
        avg_pal_k: formatScore(mean((m) => m.pal_k)),
        avg_lev_sim: formatScore(mean((m) => m.lev_sim)),
        avg_lcs_ratio: formatScore(mean((m) => m.lcs_ratio)),
        avg_score: formatScore(mean((m) => m.score)),
        pair_metrics_json: JSON.stringify(metrics.map((m) => ({ pal_k: m.pal_k, lev_sim: round(m.lev_sim), lcs_ratio: round(m.lcs_ratio), score: round(m.score) }))),
        error_code: '',
        error_message: '',
      });
      summary.ok++;
      return { value: null, reused: false, score: mean((m) => m.score) };
    },
    (d, f) => {
      csv.append({ ...rowOf(d), num_pairs: 0, avg_pal_k: '-1.0', avg_lev_sim: '-1.0', avg_lcs_ratio: '-1.0', avg_score: '-1.0', pair_metrics_json: '[]', error_code: f.code, error_message: f.message });
      summary.failed++;
      summary.failures.push({ model: d.id, ...f });
    },
  );
  summary.seconds = (Date.now() - t0) / 1000;
  ctx.progress.emit({ event: 'done', ok: summary.ok, failed: summary.failed, skipped: summary.skipped, seconds: summary.seconds });
  return summary;
}
