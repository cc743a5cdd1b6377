#!/usr/bin/env node
/**
 * Issue 13 benchmark: the probe-bank protocol (`probes make` + `sketch` + `similarity`)
 * against the full METHODS §1.5 matrix protocol (`matrix`) on the zoo. Prints, per protocol,
 * the forward passes, wall time, AUC of same-family vs different-family pair scores and the
 * rate at which each model's nearest other model is in its family, as a Markdown table.
 *
 *   node tools/bench-bank.mjs <zoo dir> <work dir> [--num-prompts 5] [--per-model 8] [--k 2000]
 *
 * Runs the built CLI (dist/); pair score = mean of M[i][j] and M[j][i].
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'run.js');
const [zoo, work, ...rest] = process.argv.slice(2);
if (!zoo || !work) {
  console.error('usage: node tools/bench-bank.mjs <zoo dir> <work dir> [--num-prompts 5] [--per-model 8] [--k 2000]');
  process.exit(2);
}
const opt = (name, def) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : def;
};
const N = opt('num-prompts', '5');
const perModel = opt('per-model', '8');
const k = opt('k', '2000');
fs.mkdirSync(work, { recursive: true });
const csv = path.join(zoo, 'models.csv');

function cli(args) {
  const t = process.hrtime.bigint();
  const progress = args[0] === 'similarity' ? [] : ['--progress', 'none'];
  const r = spawnSync(process.execPath, [bin, ...args, ...progress, '--json'], { cwd: work, encoding: 'utf8', maxBuffer: 1 << 28 });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0 && r.status !== 3) throw new Error(`modelprint ${args.join(' ')}: exit ${r.status}\n${r.stderr}\n${r.stdout}`);
  return { json: JSON.parse(r.stdout), seconds: s };
}

function readMatrix(file) {
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  const ids = lines[0].split(',').slice(1);
  const m = lines.slice(1).map((l) => l.split(',').slice(1).map(Number));
  return { ids, m };
}

const rows = fs.readFileSync(csv, 'utf8').trim().split('\n');
const head = rows[0].split(',');
const fam = new Map(rows.slice(1).map((l) => {
  const c = l.split(',');
  return [c[head.indexOf('model_id')], c[head.indexOf('family')]];
}));
const bases = rows.slice(1).map((l) => l.split(',')).filter((c) => c[head.indexOf('relation')] === 'base').map((c) => path.resolve(zoo, c[head.indexOf('path')]));

function metrics({ ids, m }) {
  const n = ids.length;
  const same = [];
  const diff = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = (m[i][j] + m[j][i]) / 2;
      (fam.get(ids[i]) === fam.get(ids[j]) ? same : diff).push(s);
    }
  }
  // AUC = P(same > diff) + P(tie)/2 (Mann-Whitney).
  const all = [...same.map((v) => [v, 1]), ...diff.map((v) => [v, 0])].sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j][0] === all[i][0]) j++;
    const r = (i + j + 1) / 2;
    for (let t = i; t < j; t++) if (all[t][1]) rankSum += r;
    i = j;
  }
  const auc = (rankSum - (same.length * (same.length + 1)) / 2) / (same.length * diff.length);
  let hit = 0;
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    let arg = -1;
    for (let j = 0; j < n; j++) if (j !== i && m[i][j] > best) [best, arg] = [m[i][j], j];
    if (fam.get(ids[arg]) === fam.get(ids[i])) hit++;
  }
  const minSame = Math.min(...same);
  const maxDiff = Math.max(...diff);
  return { n, auc, nearest: hit / n, minSame, maxDiff, meanSame: same.reduce((a, b) => a + b, 0) / same.length, meanDiff: diff.reduce((a, b) => a + b, 0) / diff.length };
}

const out = [];
const nModels = fam.size;
// 1. The full matrix protocol.
{
  // A finished matrix in <work>/matrix is reused (its time from matrix_seconds.txt).
  const done = path.join(work, 'matrix', 'matrix_seconds.txt');
  const r = fs.existsSync(done) ? { seconds: Number(fs.readFileSync(done, 'utf8')) } : cli(['matrix', '--models', csv, '--out-dir', 'matrix', '--num-prompts', N, '--k', k, '--no-reuse', '--registry', path.join(work, 'reg.db')]);
  fs.writeFileSync(done, String(r.seconds));
  const mm = metrics(readMatrix(path.join(work, 'matrix', 'overlap_matrix.csv')));
  out.push({ protocol: `matrix (§1.5), N = ${N}`, passes: nModels * nModels * Number(N) + nModels * (64 - 8), seconds: r.seconds, ...mm });
}
// 2. Banks: one source per family, two families, one family.
for (const [label, from] of [
  [`bank: ${perModel} prompts × ${bases.length} bases (one per family)`, bases],
  [`bank: ${perModel} prompts × 2 bases (alpha, gamma)`, bases.filter((b) => /alpha-base|gamma-base/.test(b))],
  [`bank: ${Number(perModel) * 2} prompts × 1 base (alpha)`, bases.filter((b) => /alpha-base/.test(b))],
]) {
  const tag = `bank-${from.length}`;
  const pm = from.length === 1 ? String(Number(perModel) * 2) : perModel;
  const b = cli(['probes', 'make', '--from', ...from, '--per-model', pm, '--out', `${tag}.json`]);
  const s = cli(['sketch', '--probes', `${tag}.json`, '--models', csv, '--out', `${tag}.mpsk`, '--k', k, '--shard', 'none']);
  const sim = cli(['similarity', '--sketches', `${tag}.mpsk`, '--out', `${tag}.csv`, '--device', 'cpu']);
  const P = s.json.prompts;
  const mm = metrics(readMatrix(path.join(work, `${tag}.csv`)));
  out.push({ protocol: label, passes: nModels * P + from.length * (64 - 8), seconds: b.seconds + s.seconds + sim.seconds, ...mm });
}
const f = (x, d = 3) => x.toFixed(d);
console.log(`| protocol | models | forward passes | wall (s) | AUC same vs different family | nearest other model in family | min same / max different |`);
console.log(`|---|---:|---:|---:|---:|---:|---|`);
for (const r of out) console.log(`| ${r.protocol} | ${r.n} | ${r.passes.toLocaleString('en-US')} | ${f(r.seconds, 1)} | ${f(r.auc, 4)} | ${f(r.nearest * 100, 1)} % | ${f(r.minSame)} / ${f(r.maxDiff)} |`);
