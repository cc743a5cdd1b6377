/**
 * GGUF files against llama.cpp: Q8_0 and Q4_K_M quantizations of the safetensors bench's
 * base checkpoint (Qwen2.5-0.5B's config, written by tools/gen_gguf_bench.py with
 * llama.cpp's converter and quantizer), opened by modelprint (dequantized into the ONNX
 * path, src/formats/gguf.ts) and, in the same run, by llama-cpp-python running the same
 * job (tools/bench_llamacpp_lineage.py). Needs the safetensors bench's checkpoints (or the
 * two GGUF files already made) and Python with gguf, numpy and llama-cpp-python
 * (MODELPRINT_GGUF_PYTHON, else python3; LLAMA_CPP_DIR for the converter); without them
 * the section is skipped (and left as it was).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCsvFile } from '../util/csv.js';
import { machineLine } from './markdown.js';
import { runCliMeasured, type ChildRun } from './safetensors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const QUANTS = ['Q8_0', 'Q4_K_M'] as const;

function python(modules: string): string | null {
  const py = process.env.MODELPRINT_GGUF_PYTHON ?? 'python3';
  return spawnSync(py, ['-c', `import ${modules}`], { encoding: 'utf8' }).status === 0 ? py : null;
}

interface LlamaCppRun {
  engine: string;
  wall_s: number;
  cpu_s: number;
  load_s: Record<string, number>;
  peak_rss_bytes: number;
  scores: Record<string, number>;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** Returns the markdown of the section, or null (with the reason logged) when skipped. */
export async function benchGguf(work: string, log: (msg: string) => void): Promise<string | null> {
  const dir = path.join(work, 'gguf');
  const files = Object.fromEntries(QUANTS.map((q) => [q, path.join(dir, `base-${q}.gguf`)])) as Record<(typeof QUANTS)[number], string>;
  if (!QUANTS.every((q) => fs.existsSync(files[q]))) {
    const base = path.join(work, 'qwen2.5-0.5b-shaped', 'base');
    const py = python('gguf, numpy, llama_cpp');
    if (!fs.existsSync(path.join(base, 'model.safetensors')) || !py || !process.env.LLAMA_CPP_DIR) {
      log('gguf bench skipped: needs the safetensors bench checkpoints (run --only safetensors first), LLAMA_CPP_DIR and a python with gguf, numpy, llama-cpp-python (MODELPRINT_GGUF_PYTHON)');
      return null;
    }
    log(`writing ${QUANTS.join(', ')} GGUF files of ${base} to ${dir} (llama.cpp's converter and quantizer)`);
    const g = spawnSync(py, [path.join(ROOT, 'tools', 'gen_gguf_bench.py'), base, dir, '--types', QUANTS.join(',')], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (g.status !== 0) throw new Error('tools/gen_gguf_bench.py failed');
  }
  const loadStart = os.loadavg()[0];
  const cache = path.join(work, 'gguf-graph-cache');
  const env = { MODELPRINT_CACHE_DIR: cache };

  // Load: a cold open dequantizes into the cache and builds the graph; a cached one reads it back.
  const loads = QUANTS.map((q) => {
    fs.rmSync(cache, { recursive: true, force: true });
    const args = ['models', 'inspect', files[q], '--json'];
    log(`modelprint: load ${q}`);
    const cold = runCliMeasured(args, env);
    const warm = runCliMeasured(args, env);
    return { q, size: fs.statSync(files[q]).size, cold, warm };
  });

  const out = path.join(work, 'gguf-lineage.csv');
  const reg = path.join(work, 'gguf-bench.db');
  const job = (extra: string[]): ChildRun & { score: number } => {
    for (const f of [cache, out, reg]) fs.rmSync(f, { recursive: true, force: true });
    const r = runCliMeasured(['lineage', '--base', files.Q8_0, '--derived', files.Q4_K_M, '--output', out, '--registry', reg, '--no-reuse', '--progress', 'none', '--json', ...extra], env);
    return { ...r, score: Number(readCsvFile(out).rows[0]?.avg_overlap_ratio) };
  };
  log('modelprint: Q8_0 base vs its Q4_K_M (N = 10, k = 2000)');
  const mp = job([]);
  log('modelprint --low-memory: the same job');
  const lean = job(['--low-memory']);
  fs.rmSync(cache, { recursive: true, force: true });

  let lc: LlamaCppRun | null = null;
  let lcWall = NaN;
  const lpy = python('numpy, llama_cpp');
  if (lpy) {
    log('llama-cpp-python: the same job');
    const t = performance.now();
    const r = spawnSync(lpy, [path.join(ROOT, 'tools', 'bench_llamacpp_lineage.py'), files.Q8_0, files.Q4_K_M, '--num-prompts', '10', '--k', '2000', '--threads', String(os.availableParallelism())], { encoding: 'utf8', maxBuffer: 64 << 20 });
    lcWall = (performance.now() - t) / 1000;
    if (r.status !== 0) throw new Error(`tools/bench_llamacpp_lineage.py failed: ${r.stderr.slice(-2000)}`);
    lc = JSON.parse(r.stdout) as LlamaCppRun;
  } else {
    log('llama-cpp-python not found (MODELPRINT_GGUF_PYTHON): modelprint rows only');
  }
  const loadEnd = os.loadavg()[0];

  const x = (a: number, b: number) => (lc ? `${(a / b).toFixed(2)}×` : 'n/a');
  const q8 = loads[0].size;
  const row = (label: string, r: ChildRun & { score: number }) =>
    `| ${label} | ${r.wallS.toFixed(0)} s | ${r.cpuS.toFixed(0)} s | ${mib(r.peakRssBytes)} (${(r.peakRssBytes / q8).toFixed(2)} × the Q8_0 file) | ${x(lcWall, r.wallS)} | ${x(lc?.cpu_s ?? NaN, r.cpuS)} | ${r.score.toFixed(3)} |`;
  return [
    '## GGUF files vs llama.cpp (issue 11)',
    '',
    machineLine(),
    `Load average (1 min) at the start ${loadStart.toFixed(1)}, at the end ${loadEnd.toFixed(1)}.`,
    `Inputs: the base checkpoint of the safetensors bench (Qwen2.5-0.5B's config, random init, bf16) converted by llama.cpp's \`convert_hf_to_gguf.py\` and quantized by llama.cpp (\`tools/gen_gguf_bench.py\`): ${loads.map((l) => `${l.q} ${mib(l.size)}`).join(', ')} (at hidden 896 llama.cpp falls back from Q4_K/Q6_K to Q5_0/Q8_0 for the tensors whose rows are not a multiple of 256, as for the real Qwen2.5-0.5B). Their tokenizer is the fixtures' byte-level BPE (512 tokens; the converter's padding to the 151,936 rows is typed as control tokens, which neither engine samples), since GGUF cannot hold the bench's word-level one. Job: METHODS §1.5 with the Q8_0 file as base and the Q4_K_M file as the one derivative, N = 10, k = 2000; modelprint starts each job with an empty cache, so its wall includes dequantizing both files. modelprint dequantizes every tensor to float32 into its graph cache (src/formats/gguf.ts) and runs the float32 ONNX graph; llama.cpp runs the quantized blocks as stored (memory-mapped). ${lc ? `llama-cpp-python: \`tools/bench_llamacpp_lineage.py\` (${lc.engine}), the same job with its own prompts (one at a time).` : 'llama-cpp-python was not available in this run: modelprint rows only.'}`,
    '',
    '| load one file (`models inspect`, process start included) | cold: dequantize + build the graph | cached | peak RSS, cold | peak RSS, cached |',
    '|---|---|---|---|---|',
    ...loads.map((l) => `| ${l.q} (${mib(l.size)}) | ${l.cold.wallS.toFixed(1)} s | ${l.warm.wallS.toFixed(1)} s | ${mib(l.cold.peakRssBytes)} (${(l.cold.peakRssBytes / l.size).toFixed(2)} × the file) | ${mib(l.warm.peakRssBytes)} (${(l.warm.peakRssBytes / l.size).toFixed(2)} ×) |`),
    ...(lc ? [`| llama-cpp-python \`Llama()\` | ${QUANTS.map((q) => `${q} ${lc!.load_s[files[q]].toFixed(1)} s`).join(', ')} | | | |`] : []),
    '',
    '| engine | wall | CPU | peak RSS | llama.cpp / it, wall | llama.cpp / it, CPU | score Q4_K_M vs Q8_0 |',
    '|---|---|---|---|---|---|---|',
    row('modelprint (default)', mp),
    row('modelprint `--low-memory`', lean),
    ...(lc ? [`| llama-cpp-python | ${lc.wall_s.toFixed(0)} s (${lcWall.toFixed(0)} s with interpreter start) | ${lc.cpu_s.toFixed(0)} s | ${mib(lc.peak_rss_bytes)} (${(lc.peak_rss_bytes / q8).toFixed(2)} ×) | 1× | 1× | ${lc.scores[files.Q4_K_M].toFixed(3)} |`] : []),
    '',
    'What bounds it: modelprint computes in float32 on dequantized weights, so its memory is set by the float32 size of the model (1.9 GiB here: about 4 × a Q8_0 file, 5 × a Q4_K_M one) whatever the quantization, plus ONNX Runtime\'s pre-packed copies unless `--low-memory` (whose cast at use applies to bf16 / f16 weights only: dequantized weights are float32), and each job\'s peak includes dequantizing into the emptied cache; llama.cpp keeps the blocks as stored and multiplies them with its quantized kernels, so its memory follows the file. On the CPU llama.cpp rounds the activations to 8-bit blocks for the products with quantized weights; modelprint emulates that by default (`--gguf-activations llama.cpp`, src/formats/gguf-activations.ts), and the score column compares the two engines\' results.',
  ].join('\n');
}
