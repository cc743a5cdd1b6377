//! Two-stage top-N over a compact index (`.mpsk` version 3, [`crate::sketch::compact`]):
//! what makes all-pairs top-50 at n = 100,000 (P = 32, k = 2000) fit 30 minutes and 8 GiB
//! on two cores, and `identify` against such an index well under a second.
//!
//! 1. **Candidates** from the index's sample (the `(prompt, id)` pairs whose hash is below a
//!    threshold, the same pairs in every model): the sample count `|S(A) ∩ S(B)|` is an
//!    unbiased estimate of `rate · Σₚ |Aₚ ∩ Bₚ|`. All pairs: an inverted list per sampled
//!    column, each model's counts against all n models accumulated from its columns' lists
//!    (cost Σ over columns of list length², at rate 1/64 about 1/64 of the exact work).
//!    One query: one bit test per sampled entry of the index.
//! 2. **Exact rescore** of each model's `candidates` best by sample count: its sets become a
//!    bitset over the `P · vocab` (prompt, id) pairs, each candidate's delta-coded ids are
//!    decoded and tested against it, and the score is the engines' (`prompt_score`, the
//!    in-order f64 mean, `rescale` over common prompts). The reported neighbours and scores
//!    are therefore exact; what can differ from the exact engines is only *which* models
//!    are considered: a neighbour outside the candidates is missed. With `candidates ≥ n − 1`
//!    the result equals the exact engines' (tested).
//!
//! Failed models have no neighbours and are nobody's neighbour; ties are broken by the lower
//! index, as in the other engines.

use std::time::Instant;

use rayon::prelude::*;

use crate::error::Error;
use crate::limits;
use crate::similarity::{finish_score, prompt_score, rescale, Metric, Neighbours};
use crate::sketch::compact::{sample_hash, CompactIndex, Rows};
use crate::SketchCollection;

/// Options of the two-stage engines.
#[derive(Debug, Clone)]
pub struct SampledOptions {
    /// Neighbours per model.
    pub top: usize,
    /// Candidates per model rescored exactly (at least `top`).
    pub candidates: usize,
    pub metric: Metric,
    pub threads: Option<usize>,
    /// Check every model's block checksum and sample once (all pairs), or every candidate's
    /// block (one query).
    pub verify: bool,
}

impl Default for SampledOptions {
    fn default() -> Self {
        SampledOptions {
            top: 50,
            candidates: 200,
            metric: Metric::Overlap,
            threads: None,
            verify: true,
        }
    }
}

/// Timings of a two-stage run (seconds).
#[derive(Debug, Clone, Default)]
pub struct SampledStats {
    pub index_s: f64,
    pub candidates_s: f64,
    pub rescore_s: f64,
    /// Entries of the inverted lists (all pairs) or of the sample scanned (one query).
    pub sample_entries: u64,
    pub candidates: usize,
    /// Stage-1 counter increments (Σ over sampled columns of list length², all pairs).
    pub increments: u64,
    /// Distinct pairs rescored exactly (all pairs) or models rescored (one query).
    pub rescored: u64,
}

use crate::scan::Top;

fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool, Error> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(Error::usage("threads must be at least 1"));
        }
        b = b.num_threads(t);
    }
    b.build()
        .map_err(|e| Error::internal(format!("cannot start the thread pool: {e}")))
}

/// The `want` eligible models with the highest `counts` (ties: lower index), appended to
/// `out`. `hist` is scratch; every count is ≤ `max_count`.
fn select<T: Counter>(
    counts: &[T],
    eligible: impl Fn(usize) -> bool,
    want: usize,
    max_count: usize,
    hist: &mut Vec<u32>,
    out: &mut Vec<u32>,
) {
    hist.clear();
    hist.resize(max_count + 1, 0);
    let mut total = 0usize;
    for (j, &c) in counts.iter().enumerate() {
        if eligible(j) {
            hist[c.into() as usize] += 1;
            total += 1;
        }
    }
    let want = want.min(total);
    if want == 0 {
        return;
    }
    // Threshold t: fewer than `want` above it, at least `want` at or above it.
    let mut above = 0usize;
    let mut t = max_count;
    loop {
        if above + hist[t] as usize >= want {
            break;
        }
        above += hist[t] as usize;
        t -= 1;
    }
    let mut ties = want - above;
    let start = out.len();
    for (j, &c) in counts.iter().enumerate() {
        let c: u32 = c.into();
        if (c as usize) < t || !eligible(j) {
            continue;
        }
        if c as usize > t {
            out.push(j as u32);
        } else if ties > 0 {
            out.push(j as u32);
            ties -= 1;
        }
    }
    debug_assert_eq!(out.len() - start, want);
}

/// A rescored pair: (a, b, score of b for a, score of a for b).
type ScoredPair = (u32, u32, f32, f32);

/// A stage-1 counter (u16 while no model has 65,535 sampled entries, else u32).
trait Counter: Copy + Default + Send + Into<u32> {
    fn inc(&mut self);
}
impl Counter for u16 {
    #[inline]
    fn inc(&mut self) {
        *self += 1;
    }
}
impl Counter for u32 {
    #[inline]
    fn inc(&mut self) {
        *self += 1;
    }
}

/// Stage 1 of the all-pairs engine: per chunk of `chunk` models, their `cand` best models
/// by sample count (concatenated) and each model's number of candidates.
fn candidates_by_count<T: Counter>(
    ix: &CompactIndex,
    starts: &[u64],
    lists: &[u32],
    cand: usize,
    chunk: usize,
) -> Vec<(Vec<u32>, Vec<u32>)> {
    let n = ix.len();
    (0..n.div_ceil(chunk))
        .into_par_iter()
        .map_init(
            || (vec![T::default(); n], Vec::<u32>::new()),
            |(counts, hist), c| {
                let mut out = Vec::with_capacity(chunk * cand);
                let mut lens = Vec::with_capacity(chunk);
                for i in c * chunk..((c + 1) * chunk).min(n) {
                    let before = out.len();
                    if !ix.is_failed(i) {
                        let s = ix.sample(i);
                        for &col in s {
                            let (a, b) = (starts[col as usize], starts[col as usize + 1]);
                            for &m in &lists[a as usize..b as usize] {
                                counts[m as usize].inc();
                            }
                        }
                        select(
                            counts,
                            |j| j != i && !ix.is_failed(j),
                            cand,
                            s.len(),
                            hist,
                            &mut out,
                        );
                        counts.fill(T::default());
                    }
                    lens.push((out.len() - before) as u32);
                }
                (out, lens)
            },
        )
        .collect()
}

/// A bitset over the sampled columns `p · vocab + id`.
struct ColBits(Vec<u64>);

impl ColBits {
    fn new(cols: u64) -> Result<ColBits, Error> {
        Ok(ColBits(limits::zeroed(
            "a (prompt, id) bitset",
            cols.div_ceil(64) as usize,
        )?))
    }
    #[inline]
    fn set(&mut self, c: u32) {
        self.0[(c >> 6) as usize] |= 1u64 << (c & 63);
    }
    #[inline]
    fn get(&self, c: u32) -> u32 {
        ((self.0[(c >> 6) as usize] >> (c & 63)) & 1) as u32
    }
}

/// The engines' score from per-prompt intersection counts and the set sizes (`la` the
/// anchor's).
#[inline]
fn score_of(counts: &[u32], la: &[u32], lb: &[u32], metric: Metric) -> f32 {
    let p = la.len();
    let mut sum = 0f64;
    let mut common = 0usize;
    for q in 0..p {
        if la[q] == 0 || lb[q] == 0 {
            continue;
        }
        sum += prompt_score(metric, counts[q], la[q], lb[q]);
        common += 1;
    }
    rescale(finish_score(sum, p), p, common)
}

/// All-pairs top-N neighbours of a compact index, in two stages (see the module docs).
pub fn sampled_top_n(
    ix: &CompactIndex,
    opts: &SampledOptions,
) -> Result<(Neighbours, SampledStats), Error> {
    let n = ix.len();
    let p = ix.prompts();
    let vocab = ix.vocab_size();
    let top = opts.top.min(n.saturating_sub(1));
    let cand = opts.candidates.max(top).min(n.saturating_sub(1));
    let pool = pool(opts.threads)?;
    let mut stats = SampledStats {
        candidates: cand,
        ..Default::default()
    };

    // Inverted lists of the sample: column → models (ascending).
    let t0 = Instant::now();
    let cols = p as u64 * vocab as u64;
    let (so, sample) = ix.sample_table();
    let mut starts: Vec<u64> = limits::zeroed("the inverted lists' offsets", cols as usize + 1)?;
    for &c in sample {
        starts[c as usize + 1] += 1;
    }
    for c in 0..cols as usize {
        starts[c + 1] += starts[c];
    }
    let mut lists: Vec<u32> = limits::zeroed("the inverted lists", sample.len())?;
    {
        let mut fill = starts.clone();
        for m in 0..n {
            if ix.is_failed(m) {
                continue;
            }
            for &c in &sample[so[m] as usize..so[m + 1] as usize] {
                lists[fill[c as usize] as usize] = m as u32;
                fill[c as usize] += 1;
            }
        }
    }
    stats.sample_entries = sample.len() as u64;
    stats.increments = starts
        .windows(2)
        .map(|w| (w[1] - w[0]) * (w[1] - w[0]))
        .sum();
    stats.index_s = t0.elapsed().as_secs_f64();

    // Stage 1: candidates by sample count.
    let t1 = Instant::now();
    limits::check_alloc("the candidate lists", (n * cand) as u64, 4)?;
    let chunk = 64usize;
    let widest = (0..n).map(|m| ix.sample(m).len()).max().unwrap_or(0);
    let cand_lists = pool.install(|| {
        if widest < u16::MAX as usize {
            candidates_by_count::<u16>(ix, &starts, &lists, cand, chunk)
        } else {
            candidates_by_count::<u32>(ix, &starts, &lists, cand, chunk)
        }
    });
    drop(lists);
    drop(starts);
    stats.candidates_s = t1.elapsed().as_secs_f64();

    // Stage 2: exact rescore of every candidate pair once (both directions from one count).
    let t2 = Instant::now();
    let mut pairs: Vec<u64> = Vec::with_capacity(cand_lists.iter().map(|c| c.0.len()).sum());
    {
        let mut i = 0usize;
        for (list, lens) in &cand_lists {
            let mut at = 0usize;
            for &l in lens {
                for &j in &list[at..at + l as usize] {
                    let (x, y) = (i.min(j as usize) as u64, i.max(j as usize) as u64);
                    pairs.push(x << 32 | y);
                }
                at += l as usize;
                i += 1;
            }
        }
    }
    drop(cand_lists);
    pool.install(|| pairs.par_sort_unstable());
    pairs.dedup();
    stats.rescored = pairs.len() as u64;
    let mut first = vec![0usize; n + 1];
    for &pr in &pairs {
        first[(pr >> 32) as usize + 1] += 1;
    }
    for i in 0..n {
        first[i + 1] += first[i];
    }
    let scored: Vec<Result<Vec<ScoredPair>, Error>> = pool.install(|| {
        (0..n.div_ceil(chunk))
            .into_par_iter()
            .map_init(
                || Rows::new(p, vocab).map(|r| (r, vec![0u32; p])),
                |state, c| {
                    let (rows, counts) = match state {
                        Ok(s) => (&mut s.0, &mut s.1),
                        Err(e) => return Err(e.clone()),
                    };
                    let mut out = Vec::new();
                    for a in c * chunk..((c + 1) * chunk).min(n) {
                        if opts.verify {
                            ix.verify_model(a)?;
                        }
                        let mine = &pairs[first[a]..first[a + 1]];
                        if mine.is_empty() || ix.is_failed(a) {
                            continue;
                        }
                        ix.for_each_id(a, |q, id| rows.set(q, id))?;
                        let la = ix.set_lens(a);
                        for &pr in mine {
                            let b = (pr & 0xffff_ffff) as usize;
                            ix.count_in_rows(b, rows, counts)?;
                            let lb = ix.set_lens(b);
                            out.push((
                                a as u32,
                                b as u32,
                                score_of(counts, la, lb, opts.metric),
                                score_of(counts, lb, la, opts.metric),
                            ));
                        }
                        rows.clear();
                    }
                    Ok(out)
                },
            )
            .collect()
    });
    drop(pairs);
    let mut tops = vec![Top::new(top); n];
    for r in scored {
        for (a, b, sab, sba) in r? {
            tops[a as usize].push((sab, b));
            tops[b as usize].push((sba, a));
        }
    }
    stats.rescore_s = t2.elapsed().as_secs_f64();
    Ok((
        Neighbours::from_lists(tops.into_iter().map(|t| t.items)),
        stats,
    ))
}

/// The `top` nearest models of the index to model `qm` of `queries` (one `identify` query),
/// in two stages: a scan of the index's sample for the `candidates` best by sample count,
/// then their exact scores (the query anchored, as `scan::scan_top_n`).
pub fn sampled_query(
    ix: &CompactIndex,
    queries: &SketchCollection,
    qm: usize,
    opts: &SampledOptions,
) -> Result<(Vec<(f32, u32)>, SampledStats), Error> {
    if queries.prompts() != ix.prompts() {
        return Err(Error::input(format!(
            "the query has {} prompts and the index {}; sketches must come from the same prompts",
            queries.prompts(),
            ix.prompts()
        )));
    }
    let zero = [0u8; 32];
    let (qh, rh) = (queries.meta().prompt_hash, ix.meta().prompt_hash);
    if qh != zero && rh != zero && qh != rh {
        return Err(Error::input(format!(
            "the query and the index were made from different prompt sets (prompt hash {} vs {})",
            queries.meta().prompt_hash_hex(),
            ix.meta().prompt_hash_hex()
        )));
    }
    if queries.anchors().is_some() {
        return Err(Error::usage(
            "anchored collections (the §1.5 matrix protocol) cannot query an index",
        ));
    }
    let n = ix.len();
    let p = ix.prompts();
    let vocab = ix.vocab_size();
    let mut stats = SampledStats::default();
    if queries.is_failed(qm) {
        return Ok((Vec::new(), stats));
    }
    let pool = pool(opts.threads)?;
    let thr = ix.sample_threshold();
    let mut sbits = ColBits::new(p as u64 * vocab as u64)?;
    let mut qsample = 0usize;
    let mut la = vec![0u32; p];
    let mut bits = Rows::new(p, vocab)?;
    for (q, l) in la.iter_mut().enumerate() {
        let set = queries.set(qm, q);
        *l = set.len() as u32;
        // An id beyond the index's vocabulary is in none of its sets.
        for &id in set.iter().filter(|&&id| id < vocab) {
            bits.set(q, id);
            if sample_hash(q as u32, id) < thr {
                sbits.set(q as u32 * vocab + id);
                qsample += 1;
            }
        }
    }
    let cand = opts.candidates.max(opts.top).min(n);
    stats.candidates = cand;

    let t1 = Instant::now();
    let (so, sample) = ix.sample_table();
    stats.sample_entries = sample.len() as u64;
    const CHUNK: usize = 4096;
    let mut counts = vec![0u32; n];
    pool.install(|| {
        counts
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                for (k, o) in out.iter_mut().enumerate() {
                    let m = c * CHUNK + k;
                    let s = &sample[so[m] as usize..so[m + 1] as usize];
                    *o = s.iter().map(|&col| sbits.get(col)).sum();
                }
            })
    });
    let mut picked = Vec::with_capacity(cand);
    select::<u32>(
        &counts,
        |j| !ix.is_failed(j),
        cand,
        qsample,
        &mut Vec::new(),
        &mut picked,
    );
    stats.candidates_s = t1.elapsed().as_secs_f64();

    let t2 = Instant::now();
    let metric = opts.metric;
    let scored: Vec<Result<(f32, u32), Error>> = pool.install(|| {
        picked
            .par_iter()
            .map_init(
                || vec![0u32; p],
                |cnt, &j| {
                    if opts.verify {
                        ix.verify_block(j as usize)?;
                    }
                    ix.count_in_rows(j as usize, &bits, cnt)?;
                    Ok((score_of(cnt, &la, ix.set_lens(j as usize), metric), j))
                },
            )
            .collect()
    });
    stats.rescored = picked.len() as u64;
    let mut t = Top::new(opts.top.min(n));
    for s in scored {
        t.push(s?);
    }
    stats.rescore_s = t2.elapsed().as_secs_f64();
    Ok((t.items, stats))
}
