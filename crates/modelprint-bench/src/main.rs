//! modelprint-bench: times the all-pairs similarity engine on synthetic sketches.
//!
//! Synthetic sketches have family structure: each family has a base bottom-k set per
//! prompt; every member keeps 20–90 % of the base's ids and fills the rest with random ids.
//! For each vocabulary size and model count it times the full overlap matrix on the CPU (and
//! on CUDA when present, checking the two agree bit for bit), records peak memory, times the
//! straightforward per-pair intersection (a hash set per pair like the published Python, and
//! a sorted merge) on a subsample of pairs and scales it, and estimates the machine's limits
//! from micro-benchmarks. Prints a markdown section (or JSON with `--json`).
//!
//! ```text
//! modelprint-bench [--n 1000,4000,10000] [--vocab 32000,152000] [--prompts 32] [--k 2000]
//!                  [--device cpu|cuda|auto|all] [--threads N] [--metric overlap|jaccard]
//!                  [--no-kernels] [--naive-seconds 1.5] [--json]
//! ```

use std::time::Instant;

use modelprint_core::similarity::cpu::sliced::{self, Block, Isa};
use modelprint_core::similarity::{self as sim, reference, CpuKernel, Device, Metric, Options};
use modelprint_core::sketch::SketchCollection;
use rayon::prelude::*;
use serde_json::json;

struct Args {
    ns: Vec<usize>,
    vocabs: Vec<u32>,
    prompts: usize,
    k: usize,
    device: String,
    threads: Option<usize>,
    metric: Metric,
    kernels: bool,
    naive_seconds: f64,
    json: bool,
    repeat: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: modelprint-bench [--n 1000,4000,10000] [--vocab 32000,152000] [--prompts 32] [--k 2000]\n\
         \x20                       [--device cpu|cuda|auto|all] [--threads N] [--metric overlap|jaccard]\n\
         \x20                       [--no-kernels] [--naive-seconds S] [--json]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        ns: vec![1000, 4000, 10_000],
        vocabs: vec![32_000, 152_000],
        prompts: 32,
        k: 2000,
        device: "all".into(),
        threads: None,
        metric: Metric::Overlap,
        kernels: true,
        naive_seconds: 1.5,
        json: false,
        repeat: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        let list = |s: String| -> Vec<usize> {
            s.split(',')
                .map(|x| x.trim().parse().unwrap_or_else(|_| usage()))
                .collect()
        };
        match f.as_str() {
            "--n" => a.ns = list(val()),
            "--vocab" => a.vocabs = list(val()).into_iter().map(|v| v as u32).collect(),
            "--prompts" => a.prompts = val().parse().unwrap_or_else(|_| usage()),
            "--k" => a.k = val().parse().unwrap_or_else(|_| usage()),
            "--device" => a.device = val(),
            "--threads" => a.threads = Some(val().parse().unwrap_or_else(|_| usage())),
            "--metric" => a.metric = val().parse().unwrap_or_else(|_| usage()),
            "--no-kernels" => a.kernels = false,
            "--naive-seconds" => a.naive_seconds = val().parse().unwrap_or_else(|_| usage()),
            "--json" => a.json = true,
            "--repeat" => a.repeat = val().parse().unwrap_or_else(|_| usage()),
            "--micro" => {
                for isa in Isa::available() {
                    let r = {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(1)
                            .build()
                            .unwrap();
                        pool.install(|| sliced_roof(isa, 2000))
                    };
                    println!("sliced {}: {:.3} ns/input (1 thread)", isa.name(), 1e9 / r);
                }
                std::process::exit(0);
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    a
}

// ------------------------------------------------------------------------------------------
// synthetic sketches

struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03);
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

/// Families of 2–20 models; members keep 20–90 % of the family base's ids per prompt.
fn synth(n: usize, prompts: usize, k: usize, vocab: u32, seed: u64) -> SketchCollection {
    let k = k.min(vocab as usize);
    // Family of each model.
    let mut fam = Vec::with_capacity(n);
    let mut rng = Rng::new(seed);
    let mut f = 0u64;
    while fam.len() < n {
        let size = 2 + rng.below(19) as usize;
        for _ in 0..size.min(n - fam.len()) {
            fam.push(f);
        }
        f += 1;
    }
    let draw = |rng: &mut Rng, mark: &mut Vec<u32>, stamp: u32, out: &mut Vec<u32>, want: usize| {
        while out.len() < want {
            let t = rng.below(vocab as u64) as usize;
            if mark[t] != stamp {
                mark[t] = stamp;
                out.push(t as u32);
            }
        }
    };
    let sets: Vec<Vec<u32>> = (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0u32; vocab as usize], 0u32),
            |(mark, stamp), m| {
                let mut out = Vec::with_capacity(prompts * k);
                let mut mrng = Rng::new(seed ^ (m as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let share = 0.2 + 0.7 * (mrng.below(1_000_000) as f64 / 1e6);
                let keep = ((share * k as f64).round() as usize).min(k);
                let mut base = Vec::with_capacity(k);
                let mut s = Vec::with_capacity(k);
                for p in 0..prompts {
                    // The family base for this prompt (regenerated from its seed).
                    let mut brng =
                        Rng::new(seed ^ fam[m].wrapping_mul(0x9E37_79B9) ^ ((p as u64) << 40));
                    *stamp += 1;
                    base.clear();
                    draw(&mut brng, mark, *stamp, &mut base, k);
                    // Keep a random `keep` of the base (partial Fisher–Yates), fill the rest.
                    *stamp += 1;
                    s.clear();
                    for i in 0..keep {
                        let j = i + mrng.below((k - i) as u64) as usize;
                        base.swap(i, j);
                        mark[base[i] as usize] = *stamp;
                        s.push(base[i]);
                    }
                    draw(&mut mrng, mark, *stamp, &mut s, k);
                    s.sort_unstable();
                    out.extend_from_slice(&s);
                }
                out
            },
        )
        .collect();
    let mut ids = Vec::with_capacity(n * prompts * k);
    for s in sets {
        ids.extend(s);
    }
    let models = (0..n)
        .map(|m| format!("synthetic/fam{}-m{m}", fam[m]))
        .collect();
    SketchCollection::from_uniform_sets(vocab, k, prompts, models, ids)
        .expect("valid synthetic sketches")
}

// ------------------------------------------------------------------------------------------
// measurements

/// User + system CPU seconds of this process so far (from /proc/self/stat, 10 ms ticks).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name "(…)": utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn reset_peak() {
    // Linux ≥ 4.0: "5" resets the peak RSS (VmHWM) of this process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Times `f` on random pairs for about `budget` seconds (single thread); returns
/// (pairs timed, seconds per pair).
fn per_pair(s: &SketchCollection, budget: f64, f: &dyn Fn(usize, usize) -> f32) -> (usize, f64) {
    let n = s.len();
    let mut rng = Rng::new(99);
    let t0 = Instant::now();
    let mut pairs = 0usize;
    let mut sink = 0f32;
    while pairs < 3 || (t0.elapsed().as_secs_f64() < budget && pairs < 1_000_000) {
        let i = rng.below(n as u64) as usize;
        let mut j = rng.below(n as u64) as usize;
        if j == i {
            j = (i + 1) % n;
        }
        sink += f(i, j);
        pairs += 1;
    }
    std::hint::black_box(sink);
    (pairs, t0.elapsed().as_secs_f64() / pairs as f64)
}

/// AND + POPCOUNT words per second over L1-resident bitsets, all threads (the bitset roof).
fn popcount_roof() -> f64 {
    let threads = rayon::current_num_threads();
    let words = 512; // 4 KiB per operand
    let reps = 200_000usize;
    let t0 = Instant::now();
    let total: u64 = (0..threads)
        .into_par_iter()
        .map(|t| {
            let a: Vec<u64> = (0..words as u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t as u64)
                .collect();
            let b: Vec<u64> = (0..words as u64)
                .map(|i| i.wrapping_mul(0xBF58_476D_1CE4_E5B9))
                .collect();
            let mut s = 0u64;
            for r in 0..reps {
                s += and_popcount(&a, &b) as u64 + r as u64;
            }
            s
        })
        .sum();
    std::hint::black_box(total);
    (threads * reps * words) as f64 / t0.elapsed().as_secs_f64()
}

fn and_popcount(a: &[u64], b: &[u64]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512vpopcntdq")
            && std::is_x86_feature_detected!("avx512f")
        {
            return unsafe { and_popcount_avx512(a, b) };
        }
        if std::is_x86_feature_detected!("popcnt") {
            return unsafe { and_popcount_popcnt(a, b) };
        }
    }
    a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn and_popcount_popcnt(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn and_popcount_avx512(a: &[u64], b: &[u64]) -> u32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); 4];
    let (pa, pb) = (a.as_ptr() as *const __m512i, b.as_ptr() as *const __m512i);
    let n = a.len() / 8;
    let mut i = 0;
    while i + 4 <= n {
        for (u, acc_u) in acc.iter_mut().enumerate() {
            let x = _mm512_and_si512(
                _mm512_loadu_si512(pa.add(i + u)),
                _mm512_loadu_si512(pb.add(i + u)),
            );
            *acc_u = _mm512_add_epi64(*acc_u, _mm512_popcnt_epi64(x));
        }
        i += 4;
    }
    let s = _mm512_add_epi64(
        _mm512_add_epi64(acc[0], acc[1]),
        _mm512_add_epi64(acc[2], acc[3]),
    );
    _mm512_reduce_add_epi64(s) as u32
}

/// Read bandwidth (bytes/s), all threads, over a 1 GiB buffer.
fn bandwidth() -> f64 {
    let len = (1usize << 30) / 8;
    let buf: Vec<u64> = (0..len as u64)
        .into_par_iter()
        .map(|i| i ^ 0x5555)
        .collect();
    let mut best = 0f64;
    for _ in 0..3 {
        let t0 = Instant::now();
        let s: u64 = buf
            .par_chunks(1 << 16)
            .map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x)))
            .sum();
        std::hint::black_box(s);
        best = best.max((len * 8) as f64 / t0.elapsed().as_secs_f64());
    }
    best
}

/// Sliced-kernel inputs (table rows) per second with an L1/L2-resident table, all threads:
/// the compute roof of the CPU engine.
fn sliced_roof(isa: Isa, k: usize) -> f64 {
    let threads = rayon::current_num_threads();
    let vocab = 256u32; // 16 KiB table: L1-resident
    let reps = 20_000usize;
    let t0 = Instant::now();
    let total: u64 = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut rng = Rng::new(t as u64 + 5);
            let table: Vec<Block> = (0..vocab)
                .map(|_| Block(std::array::from_fn(|_| rng.next())))
                .collect();
            let set: Vec<u32> = (0..k).map(|_| rng.below(vocab as u64) as u32).collect();
            let mut out = [0u32; 512];
            let mut s = 0u64;
            for _ in 0..reps {
                out.fill(0);
                sliced::counts(isa, &table, &set, &mut out);
                s += out[3] as u64;
            }
            s
        })
        .sum();
    std::hint::black_box(total);
    (threads * reps * k) as f64 / t0.elapsed().as_secs_f64()
}

// ------------------------------------------------------------------------------------------

fn fmt_secs(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0}")
    } else if s >= 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.2}")
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e9 {
        format!("{:.2} G", r / 1e9)
    } else if r >= 1e6 {
        format!("{:.1} M", r / 1e6)
    } else {
        format!("{:.0} k", r / 1e3)
    }
}

fn gib(b: u64) -> String {
    format!("{:.2}", b as f64 / (1u64 << 30) as f64)
}

fn main() {
    let args = parse_args();
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = args.threads {
        b = b.num_threads(t);
    }
    b.build_global().expect("thread pool");
    let threads = rayon::current_num_threads();
    let cuda_reason = sim::cuda_unavailable_reason();
    let want_cpu = args.device != "cuda";
    let want_cuda =
        matches!(args.device.as_str(), "cuda" | "all" | "auto") && cuda_reason.is_none();
    if args.device == "cuda" && cuda_reason.is_some() {
        eprintln!(
            "error: CUDA requested but unavailable: {}",
            cuda_reason.unwrap_or_default()
        );
        std::process::exit(1);
    }
    let isa = Isa::detect();
    let t_start = Instant::now();
    let log = |m: String| eprintln!("[{:6.1}s] {m}", t_start.elapsed().as_secs_f64());

    log(format!(
        "micro-benchmarks ({threads} threads, {})",
        isa.name()
    ));
    let pop = popcount_roof();
    let bw = bandwidth();
    let roof = sliced_roof(isa, args.k.min(4080));
    log(format!(
        "AND+POPCNT {:.2} G words/s, read bandwidth {:.1} GB/s, sliced kernel {:.2} G inputs/s",
        pop / 1e9,
        bw / 1e9,
        roof / 1e9
    ));

    let mut rows = Vec::new();
    let mut kernel_rows = Vec::new();
    let base_opts = Options {
        metric: args.metric,
        device: Device::Cpu,
        threads: args.threads,
        cpu_kernel: CpuKernel::Auto,
    };
    for &vocab in &args.vocabs {
        for &n in &args.ns {
            let p = args.prompts;
            let t = Instant::now();
            let s = synth(n, p, args.k, vocab, 42 + vocab as u64);
            log(format!(
                "vocab {vocab} n {n}: generated {} ids in {:.1}s",
                s.ids().len(),
                t.elapsed().as_secs_f64()
            ));
            let pairs = (n * (n - 1) / 2) as f64;
            let pair_prompts = pairs * p as f64;
            let k = s.k() as f64;
            // Roofs for this size.
            let inputs = (p as f64) * k * (n as f64) * (n as f64) / 2.0 / 512.0;
            let compute_roof_s = inputs / roof;
            let bytes_streamed = (n as f64 / 512.0).ceil() * (n as f64 / 2.0) * p as f64 * k * 4.0;
            let memory_roof_s = bytes_streamed / bw;
            let bitset_roof_s = pair_prompts * (vocab as f64 / 64.0) / pop;
            // Naive per-pair baselines on a subsample (1 thread).
            let budget = args.naive_seconds;
            let (hs_pairs, hs_per) = per_pair(&s, budget, &|i, j| {
                reference::pair_score_by(&s, i, &s, j, args.metric, reference::hashset_count)
            });
            let (mg_pairs, mg_per) = per_pair(&s, budget, &|i, j| {
                reference::pair_score(&s, i, &s, j, args.metric)
            });
            let naive_hs = hs_per * pairs;
            let naive_mg = mg_per * pairs;
            log(format!(
                "  naive: hash sets {:.1} µs/pair ({hs_pairs} pairs) → {:.0} s; sorted merge {:.1} µs/pair ({mg_pairs} pairs) → {:.0} s (1 thread)",
                hs_per * 1e6,
                naive_hs,
                mg_per * 1e6,
                naive_mg
            ));
            let mut cpu_matrix = None;
            if want_cpu {
                reset_peak();
                for _ in 1..args.repeat {
                    let c0 = cpu_seconds();
                    let run = sim::full_matrix(&s, &base_opts).expect("cpu run");
                    log(format!(
                        "  (repeat) {:.2}s wall, {:.2}s CPU",
                        run.seconds,
                        cpu_seconds() - c0
                    ));
                }
                let c0 = cpu_seconds();
                let run = sim::full_matrix(&s, &base_opts).expect("cpu run");
                let cpu_s = cpu_seconds() - c0;
                let peak = peak_rss_bytes().unwrap_or(0);
                log(format!(
                    "  cpu {}: {:.2}s wall, {cpu_s:.2}s CPU, peak RSS {} GiB",
                    run.device,
                    run.seconds,
                    gib(peak)
                ));
                let bound = compute_roof_s.max(memory_roof_s);
                rows.push(json!({
                    "vocab": vocab, "n": n, "prompts": p, "k": s.k(), "metric": args.metric.name(),
                    "device": run.device.to_string(), "seconds": run.seconds, "cpu_seconds": cpu_s,
                    "pair_prompts_per_s": pair_prompts / run.seconds, "peak_rss_bytes": peak,
                    "naive_hashset_s": naive_hs, "naive_hashset_pairs_timed": hs_pairs,
                    "naive_merge_s": naive_mg, "naive_merge_pairs_timed": mg_pairs,
                    "compute_roof_s": compute_roof_s, "memory_roof_s": memory_roof_s,
                    "bitset_popcount_roof_s": bitset_roof_s, "efficiency": bound / run.seconds,
                    "identical_to_cpu": serde_json::Value::Null,
                }));
                cpu_matrix = Some(run.result);
            }
            if want_cuda {
                reset_peak();
                match sim::full_matrix(
                    &s,
                    &Options {
                        device: Device::Cuda,
                        ..base_opts.clone()
                    },
                ) {
                    Ok(run) => {
                        let peak = peak_rss_bytes().unwrap_or(0);
                        let same = cpu_matrix.as_ref().map(|m| {
                            m.data
                                .iter()
                                .zip(&run.result.data)
                                .all(|(a, b)| a.to_bits() == b.to_bits())
                        });
                        log(format!(
                            "  {}: {:.2}s, identical to CPU: {same:?}",
                            run.device, run.seconds
                        ));
                        rows.push(json!({
                            "vocab": vocab, "n": n, "prompts": p, "k": s.k(), "metric": args.metric.name(),
                            "device": run.device.to_string(), "seconds": run.seconds,
                            "pair_prompts_per_s": pair_prompts / run.seconds, "peak_rss_bytes": peak,
                            "naive_hashset_s": naive_hs, "naive_hashset_pairs_timed": hs_pairs,
                            "naive_merge_s": naive_mg, "naive_merge_pairs_timed": mg_pairs,
                            "compute_roof_s": serde_json::Value::Null, "memory_roof_s": serde_json::Value::Null,
                            "bitset_popcount_roof_s": serde_json::Value::Null, "efficiency": serde_json::Value::Null,
                            "identical_to_cpu": same,
                        }));
                    }
                    Err(e) => log(format!("  cuda failed: {e}")),
                }
            }
            drop(cpu_matrix);
            // Kernel comparison at the smallest size.
            if args.kernels && want_cpu && n == *args.ns.iter().min().unwrap() {
                for kernel in [CpuKernel::Sliced, CpuKernel::Bitset] {
                    let c0 = cpu_seconds();
                    let run = sim::full_matrix(
                        &s,
                        &Options {
                            cpu_kernel: kernel,
                            ..base_opts.clone()
                        },
                    )
                    .expect("kernel run");
                    log(format!(
                        "  kernel {}: {:.2}s wall, {:.2}s CPU",
                        run.device,
                        run.seconds,
                        cpu_seconds() - c0
                    ));
                    kernel_rows.push(json!({
                        "vocab": vocab, "n": n, "kernel": run.device.to_string(), "seconds": run.seconds,
                        "pair_prompts_per_s": pair_prompts / run.seconds, "estimated": false,
                    }));
                }
                // The merge kernel, timed on a subsample of pairs, all threads, scaled.
                let t0 = Instant::now();
                let sample = 20_000.min(n * (n - 1) / 2);
                let got: u64 = (0..sample)
                    .into_par_iter()
                    .map(|x| {
                        let mut r = Rng::new(x as u64);
                        let i = r.below(n as u64) as usize;
                        let j = (i + 1 + r.below(n as u64 - 1) as usize) % n;
                        (0..p)
                            .map(|q| sim::cpu::merge_count(s.set(i, q), s.set(j, q)) as u64)
                            .sum::<u64>()
                    })
                    .sum();
                std::hint::black_box(got);
                let est = t0.elapsed().as_secs_f64() / sample as f64 * pairs;
                log(format!(
                    "  kernel merge (sampled {sample} pairs): est. {est:.1}s"
                ));
                kernel_rows.push(json!({
                    "vocab": vocab, "n": n, "kernel": format!("merge ({threads} threads, {sample} pairs sampled)"),
                    "seconds": est, "pair_prompts_per_s": pair_prompts / est, "estimated": true,
                }));
            }
        }
    }

    if args.json {
        let out = json!({
            "threads": threads, "isa": isa.name(), "prompts": args.prompts, "k": args.k, "metric": args.metric.name(),
            "cuda": cuda_reason.clone().map_or_else(|| "available".to_string(), |r| format!("unavailable: {r}")),
            "popcount_words_per_s": pop, "bandwidth_bytes_per_s": bw, "sliced_inputs_per_s": roof,
            "runs": rows, "kernels": kernel_rows, "total_seconds": t_start.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
        return;
    }

    // Markdown.
    let mut md = String::new();
    md.push_str(&format!(
        "### Similarity engine: full {} matrix on synthetic sketches (P = {}, k = {})\n\n",
        args.metric.name(),
        args.prompts,
        args.k
    ));
    md.push_str(&format!(
        "CPU: {threads} threads, kernel ISA {}. ",
        isa.name()
    ));
    match &cuda_reason {
        None => md.push_str("CUDA: available (rows marked cuda).\n\n"),
        Some(r) => md.push_str(&format!(
            "**No GPU was available for this run, so there are no CUDA figures** (`{r}`).\n\n"
        )),
    }
    md.push_str("| vocab | n | device | time (s) | pair·prompts/s | peak RSS (GiB) | naive hash sets, 1 thread (s, est.) | sorted merge, 1 thread (s, est.) | speed-up vs hash sets | machine bound (s) | of bound |\n");
    md.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &rows {
        let secs = r["seconds"].as_f64().unwrap();
        let bound = match (r["compute_roof_s"].as_f64(), r["memory_roof_s"].as_f64()) {
            (Some(a), Some(b)) => a.max(b),
            _ => f64::NAN,
        };
        md.push_str(&format!(
            "| {} | {} | {}{} | {} | {} | {} | {} | {} | {:.0}× | {} | {} |\n",
            r["vocab"],
            r["n"],
            r["device"].as_str().unwrap(),
            match r["identical_to_cpu"].as_bool() {
                Some(true) => " (= CPU bit for bit)",
                Some(false) => " (**differs from CPU**)",
                None => "",
            },
            fmt_secs(secs),
            fmt_rate(r["pair_prompts_per_s"].as_f64().unwrap()),
            gib(r["peak_rss_bytes"].as_u64().unwrap_or(0)),
            fmt_secs(r["naive_hashset_s"].as_f64().unwrap()),
            fmt_secs(r["naive_merge_s"].as_f64().unwrap()),
            r["naive_hashset_s"].as_f64().unwrap() / secs,
            if bound.is_nan() {
                "–".into()
            } else {
                fmt_secs(bound)
            },
            if bound.is_nan() {
                "–".into()
            } else {
                format!("{:.0} %", 100.0 * bound / secs)
            },
        ));
    }
    if !kernel_rows.is_empty() {
        md.push_str("\nCPU kernels compared (same counts, same scores):\n\n| vocab | n | kernel | time (s) | pair·prompts/s |\n|---:|---:|---|---:|---:|\n");
        for r in &kernel_rows {
            md.push_str(&format!(
                "| {} | {} | {} | {}{} | {} |\n",
                r["vocab"],
                r["n"],
                r["kernel"].as_str().unwrap(),
                fmt_secs(r["seconds"].as_f64().unwrap()),
                if r["estimated"].as_bool() == Some(true) {
                    " (est.)"
                } else {
                    ""
                },
                fmt_rate(r["pair_prompts_per_s"].as_f64().unwrap()),
            ));
        }
    }
    md.push_str(&format!(
        "\nMachine limits (micro-benchmarks, {threads} threads): AND+POPCOUNT {:.2} G words/s from L1; read bandwidth {:.1} GB/s; \
         sliced kernel {:.2} G table rows/s with an L1-resident table. *Machine bound* = max(compute bound, memory bound): \
         compute bound = P·k·n²/2/512 table rows at the sliced-kernel rate; memory bound = row sets streamed once per \
         512-column stripe at the read bandwidth. Any bitset AND+POPCOUNT engine needs at least P·n²/2·vocab/64 words at \
         the popcount rate: ",
        pop / 1e9,
        bw / 1e9,
        roof / 1e9
    ));
    let bitset: Vec<String> = rows
        .iter()
        .filter(|r| r["bitset_popcount_roof_s"].as_f64().is_some())
        .map(|r| {
            format!(
                "{} s at n = {}, vocab {}",
                fmt_secs(r["bitset_popcount_roof_s"].as_f64().unwrap()),
                r["n"],
                r["vocab"]
            )
        })
        .collect();
    md.push_str(&bitset.join("; "));
    md.push_str(&format!(
        ".\nNaive baselines are timed single-threaded on random pairs for ~{}s each and scaled to all n(n−1)/2 pairs. \
         Whole benchmark: {:.0} s.\n",
        args.naive_seconds,
        t_start.elapsed().as_secs_f64()
    ));
    print!("{md}");
}
