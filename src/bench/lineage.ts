import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ModelprintError } from '../errors.js';
import { loadMatrix } from '../analysis/input.js';
import { type LineageOptions, analyzeLineage, parseBases, scoreLineage } from '../analysis/lineage.js';
import { readCsvFile } from '../util/csv.js';
import { ensureZoo } from '../zoo/index.js';
import { machineLine, updateBenchSection } from './markdown.js';

/**
 * Lineage recovery benchmark (issue 14): predicted-parent precision / recall on the real
 * dev matrix (152 models, declared bases as the answer key) for the method and its
 * ablations, next to the Tukey-fence baseline; and parent recovery on the default zoo's
 * matrix (N = 3 probe prompts) against its lineage.json, chains included.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'run.js');
const DEV = path.join(ROOT, 'test', 'fixtures', 'lineage');

const pct = (x: number) => x.toFixed(3);

interface Variant {
  name: string;
  options: LineageOptions;
}

const VARIANTS: Variant[] = [
  { name: '**hub (default)**: learned τ, copy groups, rank = copies → centrality among neighbours, window 0.6, chain step 0.1', options: {} },
  { name: 'hub, centrality over the whole family instead of the neighbours', options: { centrality: 'family' } },
  { name: 'hub, chain step 0.05 (recovers every zoo chain)', options: { chainMargin: 0.05 } },
  { name: 'hub without the chain step', options: { chainMargin: 0 } },
  { name: 'hub without the copy-count prior (rank = centrality)', options: { copyCountPrior: false } },
  { name: 'hub without the publisher prior among exact copies', options: { namePrior: false } },
  { name: 'hub, best-scoring (not top-ranked) candidate above the model', options: { parentChoice: 'score' } },
  { name: 'hub, τ fixed at 0.1 instead of learned', options: { threshold: 0.1 } },
  { name: 'maximum spanning arborescence (Chu-Liu/Edmonds) on directed scores, same τ and copy groups', options: { method: 'arborescence' } },
  { name: 'nearest neighbour above τ (same copy groups)', options: { method: 'nearest' } },
];

export function benchLineageDev(): string {
  const m = loadMatrix(path.join(DEV, 'lineage_dev_overlap_matrix.csv'));
  const declared = new Map(readCsvFile(path.join(DEV, 'lineage_dev_relationships.csv')).rows.map((r) => [r.model_id, parseBases(r.base_model)]));
  const base = scoreLineage(m, declared);
  const nn = new Map(readCsvFile(path.join(DEV, 'nearest_parents.csv')).rows.map((r) => [r.model, r.parent || null]));
  const nnScore = scoreLineage(m, declared, nn).predicted!;
  const rows: string[] = [
    '| method | predicted-parent precision | recall of declared bases | parents predicted | time |',
    '|---|---:|---:|---:|---:|',
    `| Tukey fences per row (baseline; flagged pairs, not parents — lineage_eval.py) | ${pct(base.tukey.precision)} | ${pct(base.tukey.recall)} (base hit rate ${base.tukey.base_hits}/${base.tukey.base_eligible}) | – | – |`,
    `| nearest neighbour as parent, no threshold | ${nnScore.correct}/${nnScore.with_parent} = ${pct(nnScore.precision)} | ${nnScore.found}/${nnScore.needed} = ${pct(nnScore.recall)} | ${nnScore.with_parent} | – |`,
  ];
  let tau = NaN;
  for (const v of VARIANTS) {
    const t0 = performance.now();
    const r = analyzeLineage(m, v.options);
    const ms = performance.now() - t0;
    if (!v.options.threshold) tau = r.threshold.value;
    const s = scoreLineage(m, declared, new Map(r.parents.map((p) => [p.model, p.parent]))).predicted!;
    rows.push(`| ${v.name} | ${s.correct}/${s.with_parent} = ${pct(s.precision)} | ${s.found}/${s.needed} = ${pct(s.recall)} | ${s.with_parent} | ${(ms / 1000).toFixed(2)} s |`);
  }
  // Ceiling: declared bases whose score is below the learned threshold cannot be found by any
  // rule that trusts the threshold.
  const S = (a: number, b: number) => (m.values[a][b] + m.values[b][a]) / 2;
  const idx = new Map(m.models.map((x, i) => [x, i]));
  const needed = m.models.filter((x) => (declared.get(x) ?? []).length && declared.get(x)!.every((b) => idx.has(b)));
  const below = needed.filter((x) => Math.max(...declared.get(x)!.map((b) => S(idx.get(x)!, idx.get(b)!))) < tau);
  return (
    `Inputs: test/fixtures/lineage/lineage_dev_overlap_matrix.csv (the published bottom-k matrix of 152 real models, k = 2000, N = 5) and lineage_dev_relationships.csv (declared bases: the answer key, never an input). Scored by the TypeScript twin of lineage_eval.py (same numbers as the script). Learned same/different threshold τ = ${tau.toFixed(4)}.\n\n` +
    `${rows.join('\n')}\n\n` +
    `Recall ceiling: ${below.length} of the ${needed.length} declared bases score below τ with their derived model (${below.map((x) => x.split('/').pop()).join(', ')}), so a rule that trusts τ finds at most ${needed.length - below.length}/${needed.length} = ${pct((needed.length - below.length) / needed.length)}.`
  );
}

interface ZooLineageModel {
  id: string;
  parents: string[];
  relation: string;
}

export async function benchLineageZoo(work: string): Promise<string> {
  const zooDir = path.join(work, 'zoo');
  await ensureZoo(zooDir, { size: 'default', seed: 42 });
  const outDir = path.join(work, 'lineage-matrix');
  const matrixFile = path.join(outDir, 'overlap_matrix.csv');
  let matrixSeconds: number | null = null;
  if (!fs.existsSync(matrixFile)) {
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      [BIN, 'matrix', '--models', path.join(zooDir, 'models.csv'), '--out-dir', outDir, '--num-prompts', '3', '--progress', 'none', '--registry', path.join(work, 'lineage-registry.db'), '-q'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (r.status !== 0) throw new ModelprintError('E_INTERNAL', `matrix of the zoo failed: ${r.stderr.slice(-500)}`);
    matrixSeconds = (performance.now() - t0) / 1000;
  }
  const m = loadMatrix(matrixFile);
  const lineage = JSON.parse(fs.readFileSync(path.join(zooDir, 'lineage.json'), 'utf8')) as { models: ZooLineageModel[] };
  const rows = ['| method | parents recovered | chains (chain-1…3) | merges (either parent) | bases left as roots |', '|---|---:|---:|---:|---:|'];
  for (const v of [VARIANTS[0], VARIANTS[2], VARIANTS[3], VARIANTS[8], VARIANTS[9]]) {
    const r = analyzeLineage(m, v.options);
    const pred = new Map(r.parents.map((p) => [p.model, p.parent]));
    let ok = 0;
    let total = 0;
    let chain = 0;
    let chains = 0;
    let merge = 0;
    let merges = 0;
    let roots = 0;
    let rootsOk = 0;
    for (const x of lineage.models) {
      const p = pred.get(x.id) ?? null;
      if (!x.parents.length) {
        roots++;
        if (!p) rootsOk++;
        continue;
      }
      total++;
      const good = p !== null && x.parents.includes(p);
      if (good) ok++;
      if (x.relation === 'finetune-chain') {
        chains++;
        if (good) chain++;
      }
      if (x.relation === 'merge') {
        merges++;
        if (good) merge++;
      }
    }
    rows.push(`| ${v.name} | ${ok}/${total} = ${pct(ok / total)} | ${chain}/${chains} | ${merge}/${merges} | ${rootsOk}/${roots} |`);
  }
  return (
    `Inputs: the default zoo (seed 42, 52 models: 4 families × base + 12 derivatives) and its matrix \`modelprint matrix --num-prompts 3\`` +
    `${matrixSeconds !== null ? ` (computed in ${matrixSeconds.toFixed(0)} s)` : ' (reused from a previous run)'}; truth: lineage.json (a merge counts as recovered when either parent is predicted).\n\n${rows.join('\n')}`
  );
}

export async function runLineageBench(file = 'BENCHMARKS.md'): Promise<void> {
  const work = path.resolve('.modelprint', 'bench');
  fs.mkdirSync(work, { recursive: true });
  const dev = benchLineageDev();
  const zoo = await benchLineageZoo(work);
  updateBenchSection(
    file,
    'lineage',
    `## Lineage recovery: families and parents from a matrix (issue 14)\n\n${machineLine()}\n\nMethod: docs/lineage-recovery.md. Target on the dev data: precision ≥ 0.6 with recall ≥ 0.9.\n\n### Real dev data (152 models)\n\n${dev}\n\n### Default zoo\n\n${zoo}`,
  );
}
