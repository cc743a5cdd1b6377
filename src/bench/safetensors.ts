/**
 * safetensors checkpoints against the published pipeline's engine: a checkpoint with
 * Qwen2.5-0.5B's config (random init, bf16, written by tools/gen_hf_fixtures.py --bench),
 * a base and 3 derivatives; the base-vs-derived job (METHODS §1.5, N = 10, k = 2000) run by
 * modelprint (ONNX Runtime, CPU) and, in the same run, by transformers + PyTorch on the
 * CPU (tools/bench_torch_lineage.py). Needs Python with torch, transformers, safetensors
 * and tokenizers; without them the section is skipped (and left as it was).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { machineLine } from './markdown.js';
import { readCsvFile } from '../util/csv.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ChildRun {
  wallS: number;
  /** User + system CPU seconds of the child (less sensitive than wall time to other work on the machine). */
  cpuS: number;
  peakRssBytes: number;
  stdout: string;
}

/** Runs the modelprint CLI in a child that reports its own peak RSS on exit. */
export function runCliMeasured(args: string[], env: Record<string, string>): ChildRun {
  const bin = path.join(ROOT, 'bin', 'run.js');
  const code = `process.on('exit', () => { const u = process.resourceUsage(); process.stderr.write('\\nMAXRSS_KB ' + u.maxRSS + ' CPU_US ' + (u.userCPUTime + u.systemCPUTime) + '\\n'); }); process.argv.splice(1, 0, ${JSON.stringify(bin)}); await import(${JSON.stringify(`file://${bin}`)});`;
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 256 << 20 });
  const wallS = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`modelprint ${args[0]} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const m = /MAXRSS_KB (\d+) CPU_US (\d+)/.exec(r.stderr);
  return { wallS, cpuS: m ? Number(m[2]) / 1e6 : NaN, peakRssBytes: m ? Number(m[1]) * 1024 : NaN, stdout: r.stdout };
}

function python(): string | null {
  const py = process.env.MODELPRINT_PYTHON ?? 'python3';
  const r = spawnSync(py, ['-c', 'import torch, transformers, safetensors, tokenizers'], { encoding: 'utf8' });
  return r.status === 0 ? py : null;
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

/** Returns the markdown of the section, or null (with the reason logged) when skipped. */
export async function benchSafetensors(work: string, log: (msg: string) => void): Promise<string | null> {
  const py = python();
  if (!py) {
    log('safetensors bench skipped: needs python3 with torch, transformers, safetensors, tokenizers (set MODELPRINT_PYTHON to choose the interpreter)');
    return null;
  }
  const dir = path.join(work, 'qwen2.5-0.5b-shaped');
  const models = ['base', 'derived-1', 'derived-2', 'derived-3'].map((m) => path.join(dir, m));
  if (!models.every((m) => fs.existsSync(path.join(m, 'model.safetensors')))) {
    log(`writing the Qwen2.5-0.5B-shaped bf16 checkpoints to ${dir} (random init)`);
    const g = spawnSync(py, [path.join(ROOT, 'tools', 'gen_hf_fixtures.py'), dir, '--bench', '--derived', '3'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (g.status !== 0) throw new Error('tools/gen_hf_fixtures.py --bench failed');
  }
  const weightBytes = fs.statSync(path.join(models[0], 'model.safetensors')).size;
  const loadStart = os.loadavg()[0];
  const cache = path.join(work, 'hf-graph-cache');
  fs.rmSync(cache, { recursive: true, force: true });
  const env = { MODELPRINT_CACHE_DIR: cache };

  // Load time: a cold open builds and caches the graph; a warm one reads headers only.
  const openArgs = ['models', 'inspect', models[0], '--json'];
  const cold = runCliMeasured(openArgs, env);
  const warm = runCliMeasured(openArgs, env);

  const out = path.join(work, 'safetensors-lineage.csv');
  const reg = path.join(work, 'safetensors-bench.db');
  /** The job in a fresh process, graph cache empty; returns the run and the scores in derived order. */
  const job = (extra: string[]): ChildRun & { scores: number[] } => {
    for (const f of [cache, out, reg]) fs.rmSync(f, { recursive: true, force: true });
    const r = runCliMeasured(['lineage', '--base', models[0], '--derived', ...models.slice(1), '--output', out, '--registry', reg, '--no-reuse', '--progress', 'none', '--json', ...extra], env);
    const rows = readCsvFile(out).rows;
    return { ...r, scores: models.slice(1).map((m) => Number(rows.find((x) => x.derived_model_name === m)?.avg_overlap_ratio)) };
  };
  log('modelprint: base vs 3 derivatives (N = 10, k = 2000)');
  const mp = job([]);
  log('modelprint --low-memory: the same job, bf16 weights memory-mapped and cast at use');
  const lean = job(['--low-memory']);
  log('modelprint --low-memory --batch-size 1: one prompt a pass (the default before auto batching)');
  const leanOne = job(['--low-memory', '--batch-size', '1']);

  log('transformers + PyTorch: the same job');
  const t = performance.now();
  const pr = spawnSync(py, [path.join(ROOT, 'tools', 'bench_torch_lineage.py'), models[0], ...models.slice(1), '--num-prompts', '10', '--k', '2000'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const torchWall = (performance.now() - t) / 1000;
  if (pr.status !== 0) throw new Error(`tools/bench_torch_lineage.py failed: ${pr.stderr.slice(-2000)}`);
  const torch = JSON.parse(pr.stdout) as { engine: string; wall_s: number; cpu_s: number; load_s: Record<string, number>; peak_rss_bytes: number; scores: Record<string, number> };
  // The cache holds hard links to the checkpoints: drop it so deleting them frees the space.
  fs.rmSync(cache, { recursive: true, force: true });
  const torchLoads = Object.values(torch.load_s);
  const torchLoad = torchLoads.reduce((a, b) => a + b, 0) / torchLoads.length;
  const loadEnd = os.loadavg()[0];

  const x = (r: number) => `${r.toFixed(2)}×`;
  const rss = (b: number) => `${gib(b)} (${(b / weightBytes).toFixed(2)} × the weights)`;
  const scores = (v: number[]) => v.map((n) => n.toFixed(3)).join(' / ');
  const target = (label: string, r: ChildRun) => {
    const speed = torchWall / r.wallS;
    const mem = r.peakRssBytes / weightBytes;
    return `${label}: ${speed.toFixed(2)}× ${speed >= 2 ? 'meets' : 'misses'} the speed, ${mem.toFixed(2)} × ${mem <= 1.5 ? 'meets' : 'misses'} the memory`;
  };
  const row = (label: string, r: ChildRun & { scores: number[] }) =>
    `| ${label} | ${r.wallS.toFixed(0)} s | ${r.cpuS.toFixed(0)} s | ${rss(r.peakRssBytes)} | ${x(torchWall / r.wallS)} | ${x(torch.cpu_s / r.cpuS)} | ${scores(r.scores)} |`;
  return [
    '## safetensors checkpoints vs transformers + PyTorch (issue 11)',
    '',
    machineLine(),
    `Load average (1 min) at the start ${loadStart.toFixed(1)}, at the end ${loadEnd.toFixed(1)}: other work on the machine slows the engines unequally; CPU seconds (user + system of the whole process) are the steadier comparison.`,
    `Inputs: 4 checkpoints with Qwen2.5-0.5B's config (494 M parameters, vocab 151,936, tied head), random init, bf16 safetensors (${gib(weightBytes)} each), written by \`tools/gen_hf_fixtures.py --bench\`; a word-level tokenizer as wide as the vocabulary. Job: METHODS §1.5 base vs 3 derivatives, N = 10 prompts generated from the base (8 + 56 tokens, KV cache, all 10 in one batch), then the sketch passes, k = 2000: by default (auto batching, \`--batch-size 0\`) the 10 prompts of a model, all 64 tokens long, in one pass; with \`--batch-size 1\` one pass per prompt and model. modelprint: ONNX Runtime CPU, float32 compute, graph cache empty at the start of each run, one process per run (4 model loads included). transformers + PyTorch: \`tools/bench_torch_lineage.py\` (${torch.engine}), the same job with its own prompts (one at a time).`,
    '',
    '| engine | wall | CPU | peak RSS | PyTorch / it, wall | PyTorch / it, CPU | scores derived-1 / 2 / 3 |',
    '|---|---|---|---|---|---|---|',
    row('modelprint (default: bf16 → float32 at load, pre-packed)', mp),
    row('modelprint `--low-memory` (bf16 memory-mapped, cast at use)', lean),
    row('modelprint `--low-memory --batch-size 1` (one prompt a pass)', leanOne),
    `| transformers + PyTorch | ${torch.wall_s.toFixed(0)} s (${torchWall.toFixed(0)} s with interpreter start) | ${torch.cpu_s.toFixed(0)} s | ${rss(torch.peak_rss_bytes)} | 1× | 1× | ${scores(models.slice(1).map((m) => torch.scores[m]))} |`,
    '',
    `Targets (issue 11): ≥ 2× PyTorch's wall and ≤ 1.5 × the weights' size. ${target('default', mp)}; ${target('`--low-memory`', lean)}.`,
    '',
    `Load one checkpoint (default mode, \`models inspect\`, process start included): ${cold.wallS.toFixed(1)} s cold (builds the graph), ${warm.wallS.toFixed(1)} s with the graph cached; PyTorch \`from_pretrained\` ${torchLoad.toFixed(1)} s (mean of 4).`,
    '',
    'What bounds it. Default: ONNX Runtime folds each bf16 → float32 Cast at load (the float32 weights, 2 × the file) and pre-packs the MatMul weights (a second copy, the fast kernels), so the peak is about 3 × the weights. `--low-memory`: the bf16 bytes stay memory-mapped from the safetensors file (1 × the weights, as the pages are touched) and each matrix is cast to float32 right before its product, one layer at a time, the tied head in 16 MiB vocabulary chunks; what is left above 1 × is the Node + ONNX Runtime process (~0.15 GiB), the tokenizer and the transient float32 copies, which ONNX Runtime\'s arena reuses from layer to layer (with plain malloc instead, a 640-row pass left about 0.5 GiB of freed heap behind: 1.67 against 1.16 GiB). Its price is the cast and the packing of each matrix on every forward pass. Auto batching cuts the passes from 96 to 60 (the base\'s 1 + 55 decoding steps, then one sketch pass per model instead of 10); the 56 passes of prompt generation are sequential (each step needs the previous token) and now take most of the time: each multiplies 10 rows by all 494 M weights, so it is bound by memory traffic (a bf16 read, a float32 write and a float32 read per weight, against one float32 read of the pre-packed copy by default), and ONNX Runtime\'s bf16 → float32 Cast is a single-threaded Eigen loop (its float16 → float32 Cast uses MLAS on all threads). Casting in cache-sized row chunks (1 MiB of float32, so the Cast\'s output is read back from the cache) made a decoding step up to 2.8× faster in a trial, but ONNX Runtime took 12–25 s to create the session of that graph (about 2,000 chunks) and the chunked products slowed the 640-row sketch passes, so it is not used. ONNX Runtime\'s CPU kernels have no bf16 matrix product that reads the weights as stored. On a loaded machine PyTorch slows down more than modelprint (compare the load average and the CPU columns with a quiet run), so the ratios to PyTorch are highest there. Both modes compute only the last position\'s logits (the one the method reads).',
  ].join('\n');
}
