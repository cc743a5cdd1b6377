#!/usr/bin/env node
/**
 * Issue 13 scale check: synthetic sketches with family structure (P prompts, k ids of a
 * vocab), saved as .mpsk and memory-mapped back; times the streamed all-pairs top-50
 * (no n × n matrix) and a 1 × n identify query against the index, with peak RSS.
 *
 *   node tools/bench-index.mjs <work dir> [--n 10000] [--P 32] [--k 2000] [--vocab 152000] [--families 100]
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const native = require(path.join(root, 'native', 'index.node'));
const [work, ...rest] = process.argv.slice(2);
const opt = (name, def) => {
  const i = rest.indexOf(`--${name}`);
  return Number(i >= 0 ? rest[i + 1] : def);
};
const n = opt('n', 10000);
const P = opt('P', 32);
const k = opt('k', 2000);
const vocab = opt('vocab', 152000);
const F = opt('families', 100);
fs.mkdirSync(work, { recursive: true });

// mulberry32
let seed = 12345;
const rnd = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
// A set: the family's base set for the prompt with 30–90 % of its ids swapped for random ones.
function setFrom(base, keep) {
  const mark = new Uint8Array(vocab);
  const out = [];
  for (const id of base) if (rnd() < keep) {
    mark[id] = 1;
    out.push(id);
  }
  while (out.length < k) {
    const id = Math.floor(rnd() * vocab);
    if (!mark[id]) {
      mark[id] = 1;
      out.push(id);
    }
  }
  return Uint32Array.from(out).sort();
}
const bases = [];
for (let f = 0; f < F; f++) {
  const ps = [];
  for (let p = 0; p < P; p++) ps.push(setFrom([], 0));
  bases.push(ps);
}
const file = path.join(work, `synthetic-v2-${n}.mpsk`);
const t0 = Date.now();
if (!fs.existsSync(file)) {
  const ids = new Uint32Array(n * P * k);
  const lens = new Uint32Array(n * P).fill(k);
  const names = [];
  for (let m = 0; m < n; m++) {
    const f = m % F;
    const keep = 0.1 + 0.6 * rnd();
    for (let p = 0; p < P; p++) ids.set(setFrom(bases[f][p], keep), (m * P + p) * k);
    names.push(`fam${f}/model${m}`);
  }
  native.SketchSet.fromArrays(names, ids, lens, { prompts: P, vocabSize: vocab, k }).save(file);
}
const tGen = (Date.now() - t0) / 1000;
const index = native.SketchSet.open(file);
const query = native.SketchSet.fromArrays(['query'], (() => {
  const a = new Uint32Array(P * k);
  for (let p = 0; p < P; p++) a.set(setFrom(bases[7][p], 0.5), p * k);
  return a;
})(), new Uint32Array(P).fill(k), { prompts: P, vocabSize: vocab, k });
const rss = () => process.resourceUsage().maxRSS / 1024 / 1024;
const q0 = Date.now();
const q = await native.similarityTopN(query, 10, index, { device: 'cpu', returnScores: true });
const tQuery = (Date.now() - q0) / 1000;
const q1 = Date.now();
await native.similarityTopN(query, 10, index, { device: 'cpu' });
const tQueryWarm = (Date.now() - q1) / 1000;
const best = Array.from(q.index.slice(0, 3)).map((i) => index.modelIds[i]);
const a0 = Date.now();
const all = await native.similarityTopN(index, 50, null, { device: 'cpu', outPath: path.join(work, 'top50.jsonl'), returnScores: false });
const tAll = (Date.now() - a0) / 1000;
console.log(JSON.stringify({ n, P, k, vocab, families: F, file_gib: fs.statSync(file).size / 2 ** 30, generate_s: tGen, identify_query_s: tQuery, identify_query_warm_s: tQueryWarm, identify_best: best, all_pairs_top50_s: tAll, device: all.device, peak_rss_gib: rss() }));
