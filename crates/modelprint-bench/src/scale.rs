//! modelprint-scale: the issue-13 scale benchmark on compact (`.mpsk` v3) indexes.
//!
//! ```text
//! modelprint-scale gen      --out F --n N [--prompts 32] [--k 2000] [--vocab 152000]
//!                           [--families N/50] [--seed 12345] [--rate 0.0078125]
//! modelprint-scale allpairs --index F [--top 50] [--candidates 64] [--threads T]
//!                           [--exact] [--out top.tsv]
//! modelprint-scale identify --index F [--top 10] [--candidates 1000] [--threads T]
//!                           [--exact] [--repeat 3]
//! ```
//!
//! Synthetic sketches with family structure (as `src/bench/hpc-index.ts`): `families`
//! families (default n / 50) of skewed sizes (family f drawn with probability ∝ log((f+2) /
//! (f+1)), a few big families and many small ones); each family has a random base k-set per
//! prompt; a member keeps each base id with probability q (20–90 %, drawn per model) and
//! fills its set up to k with uniform random ids. Model ids are `fam<f>/m<i>`.
//!
//! `gen` streams the models into a compact index (generated in parallel, written in order).
//! `allpairs` runs the two-stage top-N (`similarity::sampled`) and, with `--exact`, the exact
//! engine (`similarity::top_n` on the decoded collection, n ≲ 20,000) to report the recall of
//! its top-N. `identify` queries the index with a new member of a family (not in the
//! index), two-stage, and, with `--exact`, every model of the index rescored. Every command
//! prints one JSON document (wall and CPU seconds, peak RSS with the mapped pages).

use std::path::PathBuf;
use std::time::Instant;

use modelprint_core::similarity::sampled::{sampled_query, sampled_top_n, SampledOptions};
use modelprint_core::similarity::{self as sim, Metric, Neighbours, Options};
use modelprint_core::sketch::compact::{threshold_for_rate, CompactIndex, CompactWriter};
use modelprint_core::sketch::SketchMeta;
use modelprint_core::SketchCollection;
use rayon::prelude::*;
use serde_json::json;

fn die(msg: &str) -> ! {
    eprintln!("modelprint-scale: {msg}");
    std::process::exit(2)
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut r = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        r.next();
        r
    }
    #[inline]
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }
}

/// Fills `out` with a sorted k-set: each id of `base` kept with probability `keep`, then
/// uniform random ids up to k (`bits`: a zeroed vocab-bit scratch, left zeroed).
fn fill_set(
    rng: &mut Rng,
    base: &[u32],
    keep: f64,
    k: usize,
    vocab: u32,
    bits: &mut [u64],
    out: &mut Vec<u32>,
) {
    let mut c = 0usize;
    for &id in base {
        if rng.unit() < keep {
            bits[(id >> 6) as usize] |= 1 << (id & 63);
            c += 1;
        }
    }
    while c < k {
        let id = rng.below(vocab);
        let w = &mut bits[(id >> 6) as usize];
        if *w & (1 << (id & 63)) == 0 {
            *w |= 1 << (id & 63);
            c += 1;
        }
    }
    out.clear();
    for (wi, w) in bits.iter_mut().enumerate() {
        let mut x = *w;
        while x != 0 {
            out.push((wi as u32) << 6 | x.trailing_zeros());
            x &= x - 1;
        }
        *w = 0;
    }
}

fn family_of(rng: &mut Rng, families: usize) -> usize {
    let f = (families as f64).powf(rng.unit()).floor() as usize;
    f.saturating_sub(1).min(families - 1)
}

struct Gen {
    p: usize,
    k: usize,
    vocab: u32,
    families: usize,
    seed: u64,
    bases: Vec<u32>,
}

impl Gen {
    /// The families' base sets (all, or only those of family `only`).
    fn new(
        n: usize,
        p: usize,
        k: usize,
        vocab: u32,
        families: usize,
        seed: u64,
        only: Option<usize>,
    ) -> Gen {
        let words = (vocab as usize).div_ceil(64);
        // Zeroed (untouched pages cost nothing); filled per (family, prompt).
        let mut bases = vec![0u32; families * p * k];
        let range = match only {
            Some(f) => f * p..(f + 1) * p,
            None => 0..families * p,
        };
        bases[range.start * k..range.end * k]
            .par_chunks_mut(k)
            .enumerate()
            .for_each_init(
                || (vec![0u64; words], Vec::new()),
                |(bits, out), (i, dst)| {
                    let s = range.start + i;
                    let mut rng = Rng::new(seed ^ 0xba5e ^ ((s as u64) << 20));
                    fill_set(&mut rng, &[], 0.0, k, vocab, bits, out);
                    dst.copy_from_slice(out);
                },
            );
        let _ = n;
        Gen {
            p,
            k,
            vocab,
            families,
            seed,
            bases,
        }
    }
    /// Model `m` (or a query with its own seed): family and P sets (concatenated).
    fn model(
        &self,
        seed: u64,
        family: Option<usize>,
        bits: &mut [u64],
        set: &mut Vec<u32>,
    ) -> (usize, Vec<u32>) {
        let mut rng = Rng::new(seed);
        let f = family.unwrap_or_else(|| family_of(&mut rng, self.families));
        let keep = 0.2 + 0.7 * rng.unit();
        let mut ids = Vec::with_capacity(self.p * self.k);
        for q in 0..self.p {
            let b = &self.bases[(f * self.p + q) * self.k..(f * self.p + q + 1) * self.k];
            fill_set(&mut rng, b, keep, self.k, self.vocab, bits, set);
            ids.extend_from_slice(set);
        }
        (f, ids)
    }
    fn model_seed(&self, m: usize) -> u64 {
        self.seed.wrapping_mul(0x100_0000_01b3) ^ (m as u64).wrapping_mul(0x9e37_79b9)
    }
}

fn status_kib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}
fn peak_rss_gib() -> f64 {
    status_kib("VmHWM:") / (1u64 << 20) as f64
}
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime: fields 14 and 15 of stat (11 and 12 after the command name and state).
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Args(Vec<String>);
impl Args {
    fn get(&self, name: &str) -> Option<String> {
        self.0.iter().position(|a| a == name).map(|i| {
            self.0
                .get(i + 1)
                .cloned()
                .unwrap_or_else(|| die(&format!("{name} needs a value")))
        })
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.get(name)
            .map(|v| v.parse().unwrap_or_else(|_| die(&format!("bad {name}"))))
            .unwrap_or(default)
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}

fn family(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

fn gen(a: &Args) -> serde_json::Value {
    let out = PathBuf::from(a.get("--out").unwrap_or_else(|| die("--out is required")));
    let n: usize = a.num("--n", 10_000);
    let p: usize = a.num("--prompts", 32);
    let k: usize = a.num("--k", 2000);
    let vocab: u32 = a.num("--vocab", 152_000);
    let families: usize = a.num("--families", (n / 50).max(2));
    let seed: u64 = a.num("--seed", 12345);
    let rate: f64 = a.num("--rate", 1.0 / 128.0);
    let t0 = Instant::now();
    let c0 = cpu_s();
    let g = Gen::new(n, p, k, vocab, families, seed, None);
    let meta = SketchMeta {
        vocab_size: vocab,
        k: k as u32,
        prompts: p as u32,
        prompt_hash: [0; 32],
    };
    let mut w = CompactWriter::create(
        &out,
        meta,
        threshold_for_rate(rate).unwrap_or_else(|e| die(&e.message)),
    )
    .unwrap_or_else(|e| die(&e.message));
    let words = (vocab as usize).div_ceil(64);
    let batch = 512;
    for b in (0..n).step_by(batch) {
        let models: Vec<(usize, Vec<u32>)> = (b..(b + batch).min(n))
            .into_par_iter()
            .map_init(
                || (vec![0u64; words], Vec::new()),
                |(bits, set), m| g.model(g.model_seed(m), None, bits, set),
            )
            .collect();
        for (i, (f, ids)) in models.iter().enumerate() {
            let sets: Vec<&[u32]> = ids.chunks(k).collect();
            w.push(&format!("fam{f}/m{}", b + i), false, &sets)
                .unwrap_or_else(|e| die(&e.message));
        }
    }
    w.finish().unwrap_or_else(|e| die(&e.message));
    json!({
        "file": out, "n": n, "P": p, "k": k, "vocab": vocab, "families": families, "rate": rate,
        "bytes": std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0),
        "wall_s": t0.elapsed().as_secs_f64(), "cpu_s": cpu_s() - c0,
        "peak_rss_gib": peak_rss_gib(), "loadavg": loadavg(),
    })
}

fn recall(
    approx: &Neighbours,
    exact: &Neighbours,
    n: usize,
    same: impl Fn(usize, usize) -> bool,
) -> (f64, f64, f64) {
    // Share of the exact lists' entries found; of their same-family entries; and of models
    // whose lists are identical.
    let (mut hit, mut tot, mut fhit, mut ftot, mut equal) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for i in 0..n {
        let a: std::collections::HashSet<u32> = approx.of(i).map(|(j, _)| j).collect();
        let e: Vec<(u32, f32)> = exact.of(i).collect();
        for &(j, _) in &e {
            tot += 1;
            hit += a.contains(&j) as u64;
            if same(i, j as usize) {
                ftot += 1;
                fhit += a.contains(&j) as u64;
            }
        }
        equal += approx.of(i).eq(e.iter().copied()) as u64;
    }
    (
        hit as f64 / tot.max(1) as f64,
        fhit as f64 / ftot.max(1) as f64,
        equal as f64 / n.max(1) as f64,
    )
}

fn allpairs(a: &Args) -> serde_json::Value {
    let path = PathBuf::from(
        a.get("--index")
            .unwrap_or_else(|| die("--index is required")),
    );
    let opts = SampledOptions {
        top: a.num("--top", 50),
        candidates: a.num("--candidates", 64),
        metric: Metric::Overlap,
        threads: a
            .get("--threads")
            .map(|t| t.parse().unwrap_or_else(|_| die("bad --threads"))),
        verify: !a.flag("--no-verify"),
    };
    let load0 = loadavg();
    let t0 = Instant::now();
    let c0 = cpu_s();
    let ix = CompactIndex::open(&path).unwrap_or_else(|e| die(&e.message));
    let open_s = t0.elapsed().as_secs_f64();
    let (nb, st) = sampled_top_n(&ix, &opts).unwrap_or_else(|e| die(&e.message));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_s() - c0;
    let peak = peak_rss_gib();
    let n = ix.len();
    let fam: Vec<&str> = ix.models().iter().map(|m| family(m)).collect();
    let mut size = std::collections::HashMap::new();
    for f in &fam {
        *size.entry(*f).or_insert(0usize) += 1;
    }
    let eligible: Vec<usize> = (0..n).filter(|&i| size[fam[i]] >= 2).collect();
    let best_in_family = eligible
        .iter()
        .filter(|&&i| {
            nb.of(i)
                .next()
                .is_some_and(|(j, _)| fam[j as usize] == fam[i])
        })
        .count() as f64
        / eligible.len().max(1) as f64;
    if let Some(out) = a.get("--out") {
        let mut s = String::new();
        for i in 0..n {
            for (j, v) in nb.of(i) {
                s.push_str(&format!(
                    "{}\t{}\t{v}\n",
                    ix.models()[i],
                    ix.models()[j as usize]
                ));
            }
        }
        std::fs::write(&out, s).unwrap_or_else(|e| die(&e.to_string()));
    }
    let mut doc = json!({
        "index": path, "n": n, "P": ix.prompts(), "k": ix.meta().k, "vocab": ix.vocab_size(),
        "rate": ix.sample_rate(), "index_bytes": std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        "top": opts.top, "candidates": st.candidates, "threads": rayon::current_num_threads(),
        "open_s": open_s, "inverted_s": st.index_s, "candidates_s": st.candidates_s, "rescore_s": st.rescore_s,
        "wall_s": wall, "cpu_s": cpu, "peak_rss_gib": peak, "sample_entries": st.sample_entries,
        "increments": st.increments, "pairs_rescored": st.rescored,
        "best_neighbour_in_family": best_in_family, "loadavg_before": load0, "loadavg_after": loadavg(),
    });
    if a.flag("--exact") {
        let t1 = Instant::now();
        let c1 = cpu_s();
        let c = ix.to_collection().unwrap_or_else(|e| die(&e.message));
        let run = sim::top_n(&c, opts.top, &Options::default()).unwrap_or_else(|e| die(&e.message));
        let (r, rf, eq) = recall(&nb, &run.result, n, |i, j| fam[i] == fam[j]);
        doc["exact"] = json!({
            "wall_s": t1.elapsed().as_secs_f64(), "cpu_s": cpu_s() - c1, "device": run.device.kind(),
            "recall_top": r, "recall_same_family": rf, "lists_identical": eq,
        });
    }
    doc
}

fn identify(a: &Args) -> serde_json::Value {
    let path = PathBuf::from(
        a.get("--index")
            .unwrap_or_else(|| die("--index is required")),
    );
    let top: usize = a.num("--top", 10);
    let opts = SampledOptions {
        top,
        candidates: a.num("--candidates", 1000),
        metric: Metric::Overlap,
        threads: a
            .get("--threads")
            .map(|t| t.parse().unwrap_or_else(|_| die("bad --threads"))),
        verify: true,
    };
    let repeat: usize = a.num("--repeat", 3);
    let load0 = loadavg();
    let t0 = Instant::now();
    let ix = CompactIndex::open(&path).unwrap_or_else(|e| die(&e.message));
    let open_s = t0.elapsed().as_secs_f64();
    let (n, p, k, vocab) = (
        ix.len(),
        ix.prompts(),
        ix.meta().k as usize,
        ix.vocab_size(),
    );
    // The generator's families, rebuilt (same seed): a new member of family 3.
    let families: usize = a.num("--families", (n / 50).max(2));
    let seed: u64 = a.num("--seed", 12345);
    let qf = a.num("--family", 3usize);
    let g = Gen::new(0, p, k, vocab, families, seed, Some(qf));
    let (_, ids) = g.model(
        0xdead_beef,
        Some(qf),
        &mut vec![0u64; (vocab as usize).div_ceil(64)],
        &mut Vec::new(),
    );
    let q = SketchCollection::from_uniform_sets(vocab, k, p, vec!["query".into()], ids)
        .unwrap_or_else(|e| die(&e.message));
    let mut runs = Vec::new();
    let mut result = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let c = cpu_s();
        let (r, st) = sampled_query(&ix, &q, 0, &opts).unwrap_or_else(|e| die(&e.message));
        runs.push(
            json!({"wall_s": t.elapsed().as_secs_f64(), "cpu_s": cpu_s() - c,
            "candidates_s": st.candidates_s, "rescore_s": st.rescore_s}),
        );
        result = r;
    }
    let fam = format!("fam{qf}");
    let in_family = result
        .iter()
        .filter(|(_, j)| family(&ix.models()[*j as usize]) == fam)
        .count();
    let mut doc = json!({
        "index": path, "n": n, "top": top, "candidates": opts.candidates, "open_s": open_s,
        "runs": runs, "top_in_family": in_family, "peak_rss_gib": peak_rss_gib(),
        "loadavg_before": load0, "loadavg_after": loadavg(),
    });
    if a.flag("--exact") {
        let t = Instant::now();
        let c = cpu_s();
        let exact_opts = SampledOptions {
            candidates: n,
            ..opts.clone()
        };
        let (e, _) = sampled_query(&ix, &q, 0, &exact_opts).unwrap_or_else(|e| die(&e.message));
        doc["exact"] = json!({"wall_s": t.elapsed().as_secs_f64(), "cpu_s": cpu_s() - c,
            "identical": e == result});
    }
    doc
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        die("usage: modelprint-scale gen|allpairs|identify [options]")
    };
    let a = Args(argv[1..].to_vec());
    if let Some(t) = a.get("--threads") {
        let t: usize = t.parse().unwrap_or_else(|_| die("bad --threads"));
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .ok();
    }
    let doc = match cmd.as_str() {
        "gen" => gen(&a),
        "allpairs" => allpairs(&a),
        "identify" => identify(&a),
        _ => die("usage: modelprint-scale gen|allpairs|identify [options]"),
    };
    println!("{}", serde_json::to_string_pretty(&doc).unwrap());
}
