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
import { machineLine } from './markdown.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ChildRun {
  wallS: number;
  peakRssBytes: number;
  stdout: string;
}

/** Runs the modelprint CLI in a child that reports its own peak RSS on exit. */
function runCliMeasured(args: string[], env: Record<string, string>): ChildRun {
  const bin = path.join(ROOT, 'bin', 'run.js');
  const code = `process.on('exit', () => process.stderr.write('\\nMAXRSS_KB ' + process.resourceUsage().maxRSS + '\\n')); process.argv.splice(1, 0, ${JSON.stringify(bin)}); await import(${JSON.stringify(`file://${bin}`)});`;
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 256 << 20 });
  const wallS = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`modelprint ${args[0]} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const m = /MAXRSS_KB (\d+)/.exec(r.stderr);
  return { wallS, peakRssBytes: m ? Number(m[1]) * 1024 : NaN, stdout: r.stdout };
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
  const cache = path.join(work, 'hf-graph-cache');
  fs.rmSync(cache, { recursive: true, force: true });
  const env = { MODELPRINT_CACHE_DIR: cache };

  // Load time: a cold open builds and caches the graph; a warm one reads headers only.
  const openArgs = ['models', 'inspect', models[0], '--json'];
  const cold = runCliMeasured(openArgs, env);
  const warm = runCliMeasured(openArgs, env);

  fs.rmSync(cache, { recursive: true, force: true });
  const out = path.join(work, 'safetensors-lineage.csv');
  fs.rmSync(out, { force: true });
  const reg = path.join(work, 'safetensors-bench.db');
  fs.rmSync(reg, { force: true });
  log('modelprint: base vs 3 derivatives (N = 10, k = 2000)');
  const mp = runCliMeasured(['lineage', '--base', models[0], '--derived', ...models.slice(1), '--output', out, '--registry', reg, '--no-reuse', '--progress', 'none', '--json'], env);

  log('modelprint --low-memory: the same job without weight pre-packing');
  fs.rmSync(cache, { recursive: true, force: true });
  fs.rmSync(out, { force: true });
  fs.rmSync(reg, { force: true });
  const lean = runCliMeasured(['lineage', '--base', models[0], '--derived', ...models.slice(1), '--output', out, '--registry', reg, '--no-reuse', '--low-memory', '--progress', 'none', '--json'], env);

  log('transformers + PyTorch: the same job');
  const t = performance.now();
  const pr = spawnSync(py, [path.join(ROOT, 'tools', 'bench_torch_lineage.py'), models[0], ...models.slice(1), '--num-prompts', '10', '--k', '2000'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const torchWall = (performance.now() - t) / 1000;
  if (pr.status !== 0) throw new Error(`tools/bench_torch_lineage.py failed: ${pr.stderr.slice(-2000)}`);
  const torch = JSON.parse(pr.stdout) as { engine: string; wall_s: number; load_s: Record<string, number>; peak_rss_bytes: number };
  // The cache holds hard links to the checkpoints: drop it so deleting them frees the space.
  fs.rmSync(cache, { recursive: true, force: true });
  const torchLoads = Object.values(torch.load_s);
  const torchLoad = torchLoads.reduce((a, b) => a + b, 0) / torchLoads.length;

  return [
    '## safetensors checkpoints vs transformers + PyTorch (issue 11)',
    '',
    machineLine(),
    `Inputs: 4 checkpoints with Qwen2.5-0.5B's config (494 M parameters, vocab 151,936, tied head), random init, bf16 safetensors (${gib(weightBytes)} each), written by \`tools/gen_hf_fixtures.py --bench\`; a word-level tokenizer as wide as the vocabulary. Job: METHODS §1.5 base vs 3 derivatives, N = 10 prompts generated from the base (64 tokens, KV cache), k = 2000. modelprint: ONNX Runtime CPU, float32 compute (bf16 weights cast at load), graph cache empty at the start. transformers + PyTorch: \`tools/bench_torch_lineage.py\` (${torch.engine}), the same job with its own prompts.`,
    '',
    '| | modelprint | transformers + PyTorch | ratio (PyTorch / modelprint) |',
    '|---|---|---|---|',
    `| load one checkpoint | ${cold.wallS.toFixed(1)} s cold (builds the graph), ${warm.wallS.toFixed(1)} s cached (process start included) | ${torchLoad.toFixed(1)} s (from_pretrained, mean of 4) | ${(torchLoad / warm.wallS).toFixed(2)}× |`,
    `| base-vs-derived job, wall | ${mp.wallS.toFixed(0)} s | ${torch.wall_s.toFixed(0)} s (${torchWall.toFixed(0)} s with interpreter start) | ${(torchWall / mp.wallS).toFixed(2)}× |`,
    `| peak RSS | ${gib(mp.peakRssBytes)} (${(mp.peakRssBytes / weightBytes).toFixed(2)} × the bf16 weights) | ${gib(torch.peak_rss_bytes)} (${(torch.peak_rss_bytes / weightBytes).toFixed(2)} ×) | |`,
    `| with \`--low-memory\` | ${lean.wallS.toFixed(0)} s wall (${(torchWall / lean.wallS).toFixed(2)}× PyTorch), peak RSS ${gib(lean.peakRssBytes)} (${(lean.peakRssBytes / weightBytes).toFixed(2)} ×) | | |`,
    '',
    'What bounds it: both engines compute in float32, so a bf16 checkpoint needs its weights as float32 in memory (2 × the file) — the issue\'s target of ≤ 1.5 × the weights\' size is not reachable without a bf16/int8 compute path; ONNX Runtime additionally pre-packs the MatMul weights at load (a second copy, faster kernels); `--low-memory` turns that off and leaves the float32 copy as the floor. Wall time is dominated by the forward passes (full-vocabulary logits at every position, as Optimum exports compute them) on 2 shared cores.',
  ].join('\n');
}
