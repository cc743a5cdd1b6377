//! The CPU engine: stripes of ≤ 512 columns, rows in parallel (rayon), one of three
//! counting kernels, and exact score tables.
//!
//! Per stripe and per group of prompts, the kernel prepares the columns once (the sliced
//! kernel: a token → 512-bit mask table per prompt; bitset: one bitset per column; merge:
//! nothing), then every row is counted against all columns of the stripe, and the counts are
//! turned into scores and added to f64 accumulators in prompt order.

pub mod bitset;
pub mod sliced;

use std::ops::Range;

use rayon::prelude::*;

use super::stripes::{Stripe, BLOCK};
use super::{
    finish_score, prompt_score, CpuKernel, DeviceUsed, EmitFn, Engine, Job, Metric, SimilarityError,
};
use crate::sketch::SketchCollection;
pub use sliced::{Block, Isa};

/// Bytes of sliced-kernel tables held at once (one table is vocab × 64 bytes); prompts are
/// processed in groups that fit. `MODELPRINT_TABLE_BUDGET_MB` overrides (for tuning).
pub const TABLE_BUDGET: usize = 16 << 20;
/// Rows per parallel task.
const ROW_BATCH: usize = 64;

pub struct CpuEngine {
    kernel: CpuKernel,
    isa: Isa,
}

impl CpuEngine {
    pub fn new(kernel: CpuKernel) -> Self {
        CpuEngine {
            kernel,
            isa: Isa::detect(),
        }
    }
    /// A given instruction set (downgraded to what this CPU supports).
    pub fn with_isa(kernel: CpuKernel, isa: Isa) -> Self {
        CpuEngine {
            kernel,
            isa: isa.supported(),
        }
    }
    fn kernel_name(&self) -> String {
        match self.kernel {
            CpuKernel::Auto | CpuKernel::Sliced => format!("sliced-{}", self.isa.name()),
            CpuKernel::Bitset => format!("bitset-{}", bitset::popcnt_isa_name()),
            CpuKernel::Merge => "merge".into(),
        }
    }
}

impl Engine for CpuEngine {
    fn run(&mut self, job: &Job, emit: &mut EmitFn) -> Result<(), SimilarityError> {
        let tables = ScoreTables::new(job);
        match self.kernel {
            CpuKernel::Auto | CpuKernel::Sliced => {
                // At least one token → column-mask table (64 bytes per token) is held.
                crate::limits::check_alloc(
                    "the CPU kernel's token table (64 bytes per vocabulary entry)",
                    job.vocab() as u64,
                    std::mem::size_of::<Block>() as u64,
                )?;
                let mut k = SlicedKernel::new(job, self.isa);
                run_stripes(&mut k, job, &tables, emit)
            }
            CpuKernel::Bitset => {
                let mut k = bitset::BitsetKernel::new(job);
                run_stripes(&mut k, job, &tables, emit)
            }
            CpuKernel::Merge => {
                let mut k = MergeKernel {
                    cols: job.cols,
                    c0: 0,
                    c1: 0,
                    p0: 0,
                };
                run_stripes(&mut k, job, &tables, emit)
            }
        }
    }

    fn device(&self) -> DeviceUsed {
        DeviceUsed::Cpu {
            kernel: self.kernel_name(),
            threads: rayon::current_num_threads(),
        }
    }
}

/// Counts row sets against the prepared columns of a stripe. The row loop, the zeroing of
/// the counters and the scoring are [`run_stripe`]'s, the same for every kernel.
pub(crate) trait CountKernel: Sync {
    /// How many prompts to prepare at once.
    fn group(&self, prompts: usize) -> usize;
    /// Prepares columns `st.c0..st.c1` for `prompts` (uses rayon inside).
    fn prepare(&mut self, st: &Stripe, prompts: Range<usize>);
    /// Adds `|row ∩ column c|` to `counts[c]` for every column `c` of the prepared stripe,
    /// prompt `p0 + gi` (`row` is a set of the row collection).
    fn count(&self, gi: usize, row: &[u32], counts: &mut [u32; BLOCK]);
}

/// Exact per-prompt score tables: `table[c] = prompt_score(metric, c, la, lb)` for every
/// count c that can occur, keyed by `la` (overlap) or `la + lb` (Jaccard). A lookup gives
/// exactly the value of the division, only faster.
pub(crate) struct ScoreTables {
    metric: Metric,
    by_key: Vec<Option<Box<[f64]>>>,
}

const TABLE_ENTRIES_MAX: usize = 8 << 20;

impl ScoreTables {
    pub fn new(job: &Job) -> Self {
        let mut lens: Vec<u32> = job.rows.lengths().to_vec();
        if !std::ptr::eq(job.rows, job.cols) {
            lens.extend_from_slice(job.cols.lengths());
        }
        lens.sort_unstable();
        lens.dedup();
        let mut keys: Vec<(u32, u32)> = Vec::new(); // (key, max count)
        match job.metric {
            Metric::Overlap => keys.extend(lens.iter().map(|&l| (l, l))),
            Metric::Jaccard => {
                if lens.len() <= 64 {
                    for &a in &lens {
                        for &b in &lens {
                            keys.push((a + b, a.min(b)));
                        }
                    }
                }
            }
        }
        keys.sort_unstable();
        let mut by_key: Vec<Option<Box<[f64]>>> = Vec::new();
        let mut entries = 0usize;
        for (i, &(key, maxc)) in keys.iter().enumerate() {
            if keys.get(i + 1).is_some_and(|n| n.0 == key) {
                continue; // keep the last (largest max count) of equal keys
            }
            let size = maxc as usize + 1;
            if entries + size > TABLE_ENTRIES_MAX {
                break;
            }
            entries += size;
            if by_key.len() <= key as usize {
                by_key.resize(key as usize + 1, None);
            }
            let (la, lb) = match job.metric {
                Metric::Overlap => (key, key),
                // Any split with la + lb = key gives the same Jaccard value.
                Metric::Jaccard => (key - maxc, maxc),
            };
            by_key[key as usize] = Some(
                (0..size as u32)
                    .map(|c| prompt_score(job.metric, c, la, lb))
                    .collect(),
            );
        }
        ScoreTables {
            metric: job.metric,
            by_key,
        }
    }

    #[inline]
    fn table(&self, key: u32) -> Option<&[f64]> {
        self.by_key.get(key as usize).and_then(|t| t.as_deref())
    }

    /// `acc[c] += score(cnt[c], la, lb[c])` for the anchored-at-row direction, and (when
    /// `acc_l` is given) `acc_l[c] += score(cnt[c], lb[c], la)`.
    #[inline]
    fn accumulate(
        &self,
        cnt: &[u32],
        la: u32,
        lb: &[u32],
        lb_uniform: Option<u32>,
        acc: &mut [f64],
        acc_l: Option<&mut [f64]>,
    ) {
        debug_assert!(cnt.len() == lb.len() && acc.len() == cnt.len());
        let m = self.metric;
        match m {
            Metric::Overlap => {
                match self.table(la) {
                    Some(t) => {
                        for (a, &c) in acc.iter_mut().zip(cnt) {
                            *a += t[c as usize];
                        }
                    }
                    None => {
                        for (i, (a, &c)) in acc.iter_mut().zip(cnt).enumerate() {
                            *a += prompt_score(m, c, la, lb[i]);
                        }
                    }
                }
                if let Some(al) = acc_l {
                    match lb_uniform.and_then(|l| self.table(l)) {
                        Some(t) => {
                            for (a, &c) in al.iter_mut().zip(cnt) {
                                *a += t[c as usize];
                            }
                        }
                        None => {
                            for (i, (a, &c)) in al.iter_mut().zip(cnt).enumerate() {
                                *a += match self.table(lb[i]) {
                                    Some(t) => t[c as usize],
                                    None => prompt_score(m, c, lb[i], la),
                                };
                            }
                        }
                    }
                }
            }
            Metric::Jaccard => {
                // Symmetric: acc_l is never requested.
                match lb_uniform.and_then(|l| self.table(la + l)) {
                    Some(t) => {
                        for (a, &c) in acc.iter_mut().zip(cnt) {
                            *a += t[c as usize];
                        }
                    }
                    None => {
                        for (i, (a, &c)) in acc.iter_mut().zip(cnt).enumerate() {
                            *a += match self.table(la + lb[i]) {
                                Some(t) => t[c as usize],
                                None => prompt_score(m, c, la, lb[i]),
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Runs every stripe of the job with kernel `k`, emitting each as it completes.
pub(crate) fn run_stripes<K: CountKernel>(
    k: &mut K,
    job: &Job,
    tables: &ScoreTables,
    emit: &mut EmitFn,
) -> Result<(), SimilarityError> {
    for st in &job.stripes {
        let (u, l) = run_stripe(k, job, st, tables);
        emit(st, &u, l.as_deref())?;
    }
    Ok(())
}

fn run_stripe<K: CountKernel>(
    k: &mut K,
    job: &Job,
    st: &Stripe,
    tables: &ScoreTables,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let w = st.c1 - st.c0;
    let rows = st.r1 - st.r0;
    let prompts = job.prompts();
    let lower = job.lower;
    let stride = if lower { 2 * w } else { w };
    let mut acc = vec![0f64; rows * stride];
    let g = k.group(prompts).max(1);
    let mut p0 = 0;
    while p0 < prompts && w > 0 && rows > 0 {
        let p1 = (p0 + g).min(prompts);
        k.prepare(st, p0..p1);
        let col_lens: Vec<Vec<u32>> = (p0..p1)
            .map(|p| (st.c0..st.c1).map(|c| job.cols.set_len(c, p)).collect())
            .collect();
        let uniform: Vec<Option<u32>> = col_lens
            .iter()
            .map(|l| {
                if l.iter().all(|&x| x == l[0]) {
                    Some(l[0])
                } else {
                    None
                }
            })
            .collect();
        let kr = &*k;
        acc.par_chunks_mut(stride * ROW_BATCH)
            .enumerate()
            .for_each(|(bi, acc_b)| {
                let r_start = st.r0 + bi * ROW_BATCH;
                // Rows that need work, with the first column they need (symmetric: c > r).
                let active: Vec<(usize, usize)> = (0..acc_b.len() / stride)
                    .filter_map(|lr| {
                        let r = r_start + lr;
                        if job.rows.is_failed(r) {
                            return None;
                        }
                        let cs = if job.symmetric {
                            (r + 1).saturating_sub(st.c0).min(w)
                        } else {
                            0
                        };
                        (cs < w).then_some((lr, cs))
                    })
                    .collect();
                if active.is_empty() {
                    return;
                }
                let mut cnt = [0u32; BLOCK];
                for gi in 0..p1 - p0 {
                    let p = p0 + gi;
                    for &(lr, cs) in &active {
                        let set = job.rows.set(r_start + lr, p);
                        cnt.fill(0);
                        kr.count(gi, set, &mut cnt);
                        let (au, al) = acc_b[lr * stride..(lr + 1) * stride].split_at_mut(w);
                        let al = if lower { Some(&mut al[cs..w]) } else { None };
                        tables.accumulate(
                            &cnt[cs..w],
                            set.len() as u32,
                            &col_lens[gi][cs..w],
                            uniform[gi],
                            &mut au[cs..w],
                            al,
                        );
                    }
                }
            });
        p0 = p1;
    }
    let mut u = vec![0f32; rows * w];
    let mut l = if lower {
        vec![0f32; rows * w]
    } else {
        Vec::new()
    };
    u.par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(ri, row)| {
            for (c, v) in row.iter_mut().enumerate() {
                *v = finish_score(acc[ri * stride + c], prompts);
            }
        });
    if lower {
        l.par_chunks_mut(w.max(1))
            .enumerate()
            .for_each(|(ri, row)| {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = finish_score(acc[ri * stride + w + c], prompts);
                }
            });
    }
    (u, if lower { Some(l) } else { None })
}

/// The sliced kernel (see [`sliced`]): one token → column-mask table per prompt.
pub(crate) struct SlicedKernel<'a> {
    cols: &'a SketchCollection,
    isa: Isa,
    vocab: usize,
    tables: Vec<Vec<Block>>,
    budget: usize,
}

impl<'a> SlicedKernel<'a> {
    pub fn new(job: &Job<'a>, isa: Isa) -> Self {
        let budget = std::env::var("MODELPRINT_TABLE_BUDGET_MB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map(|mb| mb << 20)
            .unwrap_or(TABLE_BUDGET);
        SlicedKernel {
            cols: job.cols,
            isa,
            vocab: job.vocab() as usize,
            tables: Vec::new(),
            budget,
        }
    }
}

impl CountKernel for SlicedKernel<'_> {
    fn group(&self, prompts: usize) -> usize {
        let one = self.vocab.max(1) * std::mem::size_of::<Block>();
        (self.budget / one).clamp(1, prompts.max(1))
    }

    fn prepare(&mut self, st: &Stripe, prompts: Range<usize>) {
        let g = prompts.len();
        self.tables.truncate(g);
        while self.tables.len() < g {
            self.tables.push(Vec::new());
        }
        let cols = self.cols;
        let vocab = self.vocab;
        const TOKENS: usize = 8192;
        // Split every table into token ranges; each range is zeroed and filled by one task.
        let mut jobs: Vec<(usize, usize, &mut [Block])> = Vec::new();
        for (gi, t) in self.tables.iter_mut().enumerate() {
            t.resize(vocab, Block::default());
            for (ci, ch) in t.chunks_mut(TOKENS).enumerate() {
                jobs.push((prompts.start + gi, ci * TOKENS, ch));
            }
        }
        jobs.into_par_iter().for_each(|(p, t0, ch)| {
            ch.fill(Block::default());
            let sets: Vec<&[u32]> = (st.c0..st.c1).map(|c| cols.set(c, p)).collect();
            sliced::fill_table(ch, t0, &sets);
        });
    }

    #[inline]
    fn count(&self, gi: usize, row: &[u32], counts: &mut [u32; BLOCK]) {
        let table = &self.tables[gi];
        debug_assert!(row.last().is_none_or(|&t| (t as usize) < table.len()));
        // SAFETY: validated sets are ascending and below the row collection's vocabulary, and
        // the table spans max(rows, cols) vocabulary; `isa` was checked against the CPU
        // (Isa::detect / Isa::supported).
        unsafe { sliced::counts_unchecked(self.isa, table, row, counts) };
    }
}

/// Sorted-merge kernel (baseline): one merge walk per pair.
pub(crate) struct MergeKernel<'a> {
    cols: &'a SketchCollection,
    c0: usize,
    c1: usize,
    p0: usize,
}

/// `|a ∩ b|` of ascending lists, branch-free merge.
#[inline]
pub fn merge_count(a: &[u32], b: &[u32]) -> u32 {
    let (mut i, mut j, mut n) = (0usize, 0usize, 0u32);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        i += (x <= y) as usize;
        j += (y <= x) as usize;
        n += (x == y) as u32;
    }
    n
}

impl CountKernel for MergeKernel<'_> {
    fn group(&self, prompts: usize) -> usize {
        prompts.max(1)
    }
    fn prepare(&mut self, st: &Stripe, prompts: Range<usize>) {
        self.c0 = st.c0;
        self.c1 = st.c1;
        self.p0 = prompts.start;
    }
    fn count(&self, gi: usize, row: &[u32], counts: &mut [u32; BLOCK]) {
        for (c, o) in (self.c0..self.c1).zip(counts.iter_mut()) {
            *o += merge_count(row, self.cols.set(c, self.p0 + gi));
        }
    }
}
