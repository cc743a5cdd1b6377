/**
 * Issue 13 scale benchmark, one child process per step (so each step's peak memory is its
 * own): `gen` writes a synthetic sketch index with family structure (.mpsk); `measure`
 * memory-maps it (`SketchSet.open`), times a 1 × n identify query and the streamed
 * all-pairs top-50 (the engine's stripe-by-stripe top-N: no n × n matrix), and reports
 * peak RSS and peak anonymous memory (RSS without the mapped index's pages).
 *
 *   node dist/bench/hpc-index.js gen     '{"file": "...", "n": 100000, "P": 32, "k": 200, "vocab": 152000}'
 *   node dist/bench/hpc-index.js measure '{"file": "...", "top": 50, "out": "top50.jsonl"}'
 *
 * Synthetic sketches: a family's base has one random k-set per prompt; a member keeps each
 * base id with probability q (20–90 %, drawn per model) and fills the set up to k with
 * random ids; family sizes are skewed (a few big families, many small ones), as on the Hub.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { native } from '../native/index.js';
import type { NeighboursResult } from '../../native/index.js';

export interface GenOptions {
  file: string;
  n: number;
  P: number;
  k: number;
  vocab: number;
  /** Number of families (default n / 50). */
  families?: number;
  seed?: number;
}

export interface GenResult {
  file: string;
  n: number;
  P: number;
  k: number;
  vocab: number;
  families: number;
  bytes: number;
  seconds: number;
  peak_rss_gib: number;
}

export interface MeasureOptions {
  file: string;
  top: number;
  out: string;
  threads?: number;
  /** Skip the all-pairs top-N (identify only). */
  identifyOnly?: boolean;
}

export interface MeasureResult {
  n: number;
  P: number;
  k: number;
  mapped: boolean;
  open_s: number;
  /** Wall and CPU seconds (all threads) of the 1 × n query: the scan, the tiled engine and its merge kernel. */
  identify: Array<{ kernel: string; wall_s: number; cpu_s: number }>;
  /** Of the identify query's top 10, how many are in the query's family. */
  identify_top10_in_family: number;
  all_pairs_s: number | null;
  all_pairs_cpu_s: number | null;
  /** Models (in families of 2 or more) whose best neighbour is in their family. */
  nearest_in_family: number;
  device: string;
  peak_rss_gib: number;
  peak_anon_gib: number;
  out_bytes: number | null;
}

/** mulberry32: a small seeded PRNG (the data only has to be reproducible). */
function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Family of model m: skewed sizes (family f has weight ∝ 1/(f+1)), deterministic. */
function familyOf(rnd: () => number, families: number): number {
  return Math.min(families - 1, Math.floor(families ** rnd()) - 1);
}

export function generateIndex(o: GenOptions): GenResult {
  const t0 = Date.now();
  const { n, P, k, vocab } = o;
  const F = o.families ?? Math.max(2, Math.round(n / 50));
  const rnd = prng(o.seed ?? 12345);
  const stamp = new Uint32Array(vocab);
  let gen = 0;
  const fill = (out: Uint32Array, base: Uint32Array | null, keep: number) => {
    gen++;
    let c = 0;
    if (base) {
      for (let i = 0; i < base.length; i++) {
        if (rnd() < keep) {
          stamp[base[i]] = gen;
          out[c++] = base[i];
        }
      }
    }
    while (c < k) {
      const id = Math.floor(rnd() * vocab);
      if (stamp[id] !== gen) {
        stamp[id] = gen;
        out[c++] = id;
      }
    }
    out.sort();
  };
  const bases = new Uint32Array(F * P * k);
  for (let s = 0; s < F * P; s++) fill(bases.subarray(s * k, (s + 1) * k), null, 0);
  const ids = new Uint32Array(n * P * k);
  const names: string[] = [];
  for (let m = 0; m < n; m++) {
    const f = familyOf(rnd, F);
    const keep = 0.2 + 0.7 * rnd();
    for (let p = 0; p < P; p++) fill(ids.subarray((m * P + p) * k, (m * P + p + 1) * k), bases.subarray((f * P + p) * k, (f * P + p + 1) * k), keep);
    names.push(`fam${f}/m${m}`);
  }
  native.SketchSet.fromArrays(names, ids, new Uint32Array(n * P).fill(k), { prompts: P, vocabSize: vocab, k }).save(o.file);
  return { file: o.file, n, P, k, vocab, families: F, bytes: fs.statSync(o.file).size, seconds: (Date.now() - t0) / 1000, peak_rss_gib: process.resourceUsage().maxRSS / 2 ** 20 };
}

/** Anonymous resident memory now (bytes), from /proc/self/status (Linux). */
function rssAnon(): number {
  const m = /^RssAnon:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export async function measureIndex(o: MeasureOptions): Promise<MeasureResult> {
  let peakAnon = rssAnon();
  const sampler = setInterval(() => (peakAnon = Math.max(peakAnon, rssAnon())), 50);
  try {
    const t0 = Date.now();
    const index = native.SketchSet.open(o.file);
    const open = (Date.now() - t0) / 1000;
    const ids = index.modelIds;
    const fam = ids.map((s) => s.slice(0, s.indexOf('/')));
    const P = index.prompts;
    const k = index.k;
    // The query: a new member of the family of model 0 (not itself in the index).
    const rnd = prng(777);
    const qf = fam[0];
    const keep = 0.5;
    const qids = new Uint32Array(P * k);
    const stamp = new Set<number>();
    for (let p = 0; p < P; p++) {
      stamp.clear();
      const base = index.set(0, p);
      const out: number[] = [];
      for (const id of base) {
        if (rnd() < keep) {
          stamp.add(id);
          out.push(id);
        }
      }
      while (out.length < k) {
        const id = Math.floor(rnd() * index.vocabSize);
        if (!stamp.has(id)) {
          stamp.add(id);
          out.push(id);
        }
      }
      qids.set(Uint32Array.from(out).sort(), p * k);
    }
    const query = native.SketchSet.fromArrays(['query'], qids, new Uint32Array(P).fill(k), { prompts: P, vocabSize: index.vocabSize, k });
    const opts = { device: 'cpu' as const, ...(o.threads ? { threads: o.threads } : {}) };
    const timed = async <T>(f: () => Promise<T>): Promise<{ r: T; wall: number; cpu: number }> => {
      const c0 = process.cpuUsage();
      const t = Date.now();
      const r = await f();
      const c = process.cpuUsage(c0);
      return { r, wall: (Date.now() - t) / 1000, cpu: (c.user + c.system) / 1e6 };
    };
    const identify: MeasureResult['identify'] = [];
    let inFam = 0;
    // The streaming scan (what identify runs on the CPU), then the tiled engine: default
    // kernel and the merge kernel.
    const runs: Array<() => Promise<NeighboursResult>> = [
      () => native.similarityScanTopN(query, 10, index, o.threads ? { threads: o.threads } : {}),
      () => native.similarityTopN(query, 10, index, opts),
      () => native.similarityTopN(query, 10, index, { ...opts, cpuKernel: 'merge' }),
    ];
    let first: number[] | null = null;
    for (const run of runs) {
      const q = await timed(run);
      identify.push({ kernel: q.r.device, wall_s: q.wall, cpu_s: q.cpu });
      const top = Array.from(q.r.index.subarray(q.r.offsets[0], q.r.offsets[1]));
      inFam = top.filter((i) => fam[i] === qf).length;
      if (first && top.join() !== first.join()) throw new Error(`${q.r.device} ranks the query's neighbours differently from the scan`);
      first ??= top;
    }
    let allPairs: number | null = null;
    let allCpu: number | null = null;
    let nearest = 0;
    let device = identify[0].kernel;
    if (!o.identifyOnly) {
      const a = await timed(() => native.similarityTopN(index, o.top, null, { ...opts, outPath: o.out, returnScores: true }));
      const all = a.r;
      [allPairs, allCpu, device] = [a.wall, a.cpu, all.device];
      const size = new Map<string, number>();
      for (const f of fam) size.set(f, (size.get(f) ?? 0) + 1);
      let eligible = 0;
      let hit = 0;
      for (let m = 0; m < ids.length; m++) {
        if ((size.get(fam[m]) ?? 0) < 2 || all.offsets[m + 1] === all.offsets[m]) continue;
        eligible++;
        if (fam[all.index[all.offsets[m]]] === fam[m]) hit++;
      }
      nearest = eligible ? hit / eligible : 0;
    }
    peakAnon = Math.max(peakAnon, rssAnon());
    return {
      n: index.count,
      P,
      k,
      mapped: index.mapped,
      open_s: open,
      identify,
      identify_top10_in_family: inFam,
      all_pairs_s: allPairs,
      all_pairs_cpu_s: allCpu,
      nearest_in_family: nearest,
      device,
      peak_rss_gib: process.resourceUsage().maxRSS / 2 ** 20,
      peak_anon_gib: peakAnon / 2 ** 30,
      out_bytes: o.identifyOnly ? null : fs.statSync(o.out).size,
    };
  } finally {
    clearInterval(sampler);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const [mode, json] = process.argv.slice(2);
  const run = mode === 'gen' ? Promise.resolve(generateIndex(JSON.parse(json) as GenOptions)) : measureIndex(JSON.parse(json) as MeasureOptions);
  run.then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
