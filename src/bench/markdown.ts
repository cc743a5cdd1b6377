import fs from 'node:fs';
import os from 'node:os';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * BENCHMARKS.md is made of sections, each owned by one benchmark and replaced whole
 * when that benchmark runs again: `<!-- bench:NAME -->` … `<!-- /bench:NAME -->`.
 */
export function updateBenchSection(file: string, name: string, markdown: string): void {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${markdown.trim()}\n${end}`;
  let text = fs.existsSync(file)
    ? fs.readFileSync(file, 'utf8')
    : '# Benchmarks\n\nWritten by `npm run bench`; each section is replaced when its benchmark runs again.\n';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + end.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  writeFileAtomic(file, text);
}

/** One line naming the machine a benchmark ran on. */
export function machineLine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model?.trim() ?? 'unknown CPU';
  return `Machine: ${model}, ${cpus.length} logical cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.platform()} ${os.arch()}, Node ${process.version}; run ${new Date().toISOString()}.`;
}
