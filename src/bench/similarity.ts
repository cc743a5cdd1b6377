/**
 * Benchmark of the native similarity engine: runs the standalone Rust binary
 * `modelprint-bench` (crates/modelprint-bench; built with cargo when missing) and writes its
 * markdown to the `similarity` section of BENCHMARKS.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelprintError } from '../errors.js';
import { machineLine, updateBenchSection } from './markdown.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Path of the release bench binary (honours CARGO_TARGET_DIR). */
export function benchBinaryPath(): string {
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
  return path.join(target, 'release', process.platform === 'win32' ? 'modelprint-bench.exe' : 'modelprint-bench');
}

function run(cmd: string, args: string[], capture: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'] });
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', (e) =>
      reject(
        new ModelprintError('E_INTERNAL', `cannot run ${cmd}: ${e.message}`, {
          hint: cmd === 'cargo' ? 'the similarity benchmark needs a Rust toolchain (cargo) to build crates/modelprint-bench' : undefined,
          cause: e,
        }),
      ),
    );
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new ModelprintError('E_INTERNAL', `${path.basename(cmd)} ${args.join(' ')} exited with code ${code}`)),
    );
  });
}

/**
 * Runs the similarity benchmark (default: n = 1,000 / 4,000 / 10,000, vocab 32k and 152k,
 * P = 32, k = 2000; a few minutes) and updates BENCHMARKS.md. `args` are passed to the
 * binary (see `modelprint-bench --help`). Returns the markdown written.
 */
export async function benchSimilarity(args: string[] = []): Promise<string> {
  const bin = benchBinaryPath();
  if (!fs.existsSync(bin)) {
    process.stderr.write('building crates/modelprint-bench (cargo build --release -p modelprint-bench)…\n');
    await run('cargo', ['build', '--release', '-p', 'modelprint-bench'], false);
  }
  const table = await run(bin, args, true);
  const md = `## Similarity engine (native, issue 5)\n\n${machineLine()}\n\n${table.trim()}\n`;
  updateBenchSection('BENCHMARKS.md', 'similarity', md);
  return md;
}
