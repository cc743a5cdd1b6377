/**
 * Audit throughput (issue 12): `modelprint audit` of the tiny zoo's alpha base against the local
 * Hub (src/hub/fake-hub.ts on 127.0.0.1): 52 declared derivatives (the zoo's 51 other models and a
 * GGUF quant), discovered to depth 3, downloaded into a fresh Hugging Face cache within a disk
 * budget, fingerprinted (METHODS §1.5 defaults: N = 10, k = 2000) and deleted. The CLI runs as a
 * child process; its JSON summary gives the time split. Network time is loopback: the download
 * column measures the client's own work (requests, hashing, cache layout), not a real link.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeHub, buildPopulation } from '../hub/fake-hub.js';
import { machineLine, updateBenchSection } from './markdown.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Summary {
  models: number;
  scored: number;
  failed: number;
  bytes_downloaded: number;
  peak_disk_bytes: number;
  seconds: { discovery: number; download: number; waiting_for_download: number; fingerprint: number; total: number };
}

function runAudit(args: string[], env: Record<string, string>): Promise<{ wall: number; summary: Summary }> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      if (code !== 0 && code !== 3) return reject(new Error(`audit failed (${code}): ${err.slice(-2000)}`));
      resolve({ wall: (performance.now() - t) / 1000, summary: JSON.parse(out) as Summary });
    });
  });
}

export async function benchAudit(file: string, log: (m: string) => void): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modelprint-bench-audit-'));
  const hub = new FakeHub();
  try {
    const pop = await buildPopulation(hub, work, { faults: false });
    await hub.start();
    const rows: string[] = [];
    const load = os.loadavg()[0];
    for (const [label, extra] of [
      ['cold (fresh cache and registry)', 'cold'],
      ['warm registry (discovery cached, sketches reused)', 'warm'],
    ] as const) {
      const dir = path.join(work, extra);
      fs.rmSync(path.join(work, 'cache'), { recursive: true, force: true });
      fs.mkdirSync(path.join(work, 'cache'), { recursive: true });
      const env = { HF_HUB_CACHE: path.join(work, 'cache'), MODELPRINT_REGISTRY: path.join(work, 'registry.db'), MODELPRINT_CACHE_DIR: path.join(work, 'mpcache') };
      log(`audit bench: ${label}`);
      const { wall, summary: s } = await runAudit(['audit', pop.base, '--endpoint', hub.url, '--depth', '3', '--max-disk', '16M', '--output-dir', dir, '--progress', 'none', '--json'], env);
      const perMin = (s.models / wall) * 60;
      rows.push(
        `| ${label} | ${s.models} | ${s.scored} / ${s.failed} | ${s.seconds.discovery.toFixed(1)} | ${s.seconds.download.toFixed(1)} (${s.seconds.waiting_for_download.toFixed(1)}) | ${s.seconds.fingerprint.toFixed(1)} | ${wall.toFixed(1)} | **${perMin.toFixed(0)}** | ${(s.bytes_downloaded / 2 ** 20).toFixed(1)} | ${(s.peak_disk_bytes / 2 ** 20).toFixed(1)} |`,
      );
    }
    const md = [
      '## Audit throughput: discovery → download → fingerprint → delete (issue 12)',
      '',
      `${machineLine()} Load average when it started: ${load.toFixed(1)} (on a shared machine the absolute numbers move with it).`,
      '',
      `\`modelprint audit zoo/alpha-base --depth 3 --max-disk 16M\` against the local Hub (src/hub/fake-hub.ts, loopback) serving the tiny zoo: ${pop.derivatives.length} declared derivatives (the zoo's other 51 models, ONNX, ~1.2 MB each, and one truncated GGUF quant that ends \`bad_gguf\`), METHODS §1.5 defaults (N = 10 prompts, k = 2000), CPU. Seconds are the audit's own split: discovery; download = the chunks' download time summed (planning and transfers; the next chunk downloads while the current one is fingerprinted, so it overlaps), in brackets the time fingerprinting waited for downloads; fingerprint = the lineage protocol on each chunk (loading, prompts, sketches, scoring). Wall is the whole process. The second run keeps the registry: discovery comes from its cache and every sketch is found there by content hash, but every derivative is downloaded again (the first run deleted them) and hashed.`,
      '',
      '| run | models | scored / failed | discovery s | download s (waited) | fingerprint s | wall s | models/min | MiB downloaded | peak MiB on disk |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      'Reproduce: `npm run bench -- --only audit`.',
    ].join('\n');
    updateBenchSection(file, 'audit', md);
  } finally {
    await hub.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
