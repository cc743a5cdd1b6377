//! The all-pairs similarity engine over sketch collections (METHODS §1.4–1.5).
//!
//! The primitive is the integer intersection count `c = |A ∩ B|` of two bottom-k sets of
//! the same prompt. Scores derive from counts through one function, [`prompt_score`], and
//! are summed over prompts in prompt order in `f64`, divided by P and rounded once to
//! `f32` — so every engine (CPU kernels, CUDA) gives bit-identical numbers.
//!
//! - `M[i][j]` = mean over prompts of overlap `c / |A_i|` (A the row model's set) or
//!   Jaccard `c / |A_i ∪ B_j|`;
//! - `M[i][i] = 1`; a failed model (flagged, or without any id) gives -1 in its whole row
//!   and column, its diagonal included.
//! - An empty set is a *missing* prompt (it failed, or the model was not run on it): a pair
//!   is scored over the prompts where both sets are present, and, when the collection has
//!   anchor ranges (the §1.5 matrix protocol), over the row model's own prompts only. The
//!   engines compute the mean over all P prompts (a missing prompt contributes 0); a pair
//!   with fewer common prompts `c` is rescaled once, `(mean · P / c)` in `f64` ([`rescale`]),
//!   the same in every engine; a pair with no common prompt scores -1.
//!
//! Work is split into *stripes*: a block of at most 512 columns and a range of rows. The CPU
//! engine ([`cpu`]) builds, per prompt, a token → 512-bit column mask table for the stripe
//! and counts every row against all 512 columns at once with bit-sliced carry-save adders;
//! the CUDA engine ([`cuda`]) runs bitset AND + popcount tiles. Results flow into sinks: the
//! full matrix, a rectangular matrix, streaming top-N neighbours, or shard parts.

pub mod cpu;
pub mod gpu_layout;
pub mod output;
pub mod part;
pub mod reference;
pub mod sampled;
pub(crate) mod stripes;

#[cfg(feature = "cuda")]
pub mod cuda;

use std::fmt;
use std::time::Instant;

use rayon::prelude::*;

use crate::error::Error;
use crate::limits;
use crate::sketch::SketchCollection;
pub use part::{merge_parts, read_part, write_part, ShardPart};
use stripes::{plan_full, plan_rect, plan_shard, Stripe};
pub use stripes::{ShardSpec, BLOCK};

/// The per-prompt set score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `|A ∩ B| / |A|`, A the row (anchor) model's set; 0 when A is empty.
    Overlap,
    /// `|A ∩ B| / |A ∪ B|`; 1 when both are empty.
    Jaccard,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Overlap => "overlap",
            Metric::Jaccard => "jaccard",
        }
    }
    pub fn code(self) -> u32 {
        match self {
            Metric::Overlap => 0,
            Metric::Jaccard => 1,
        }
    }
    pub fn from_code(c: u32) -> Option<Metric> {
        match c {
            0 => Some(Metric::Overlap),
            1 => Some(Metric::Jaccard),
            _ => None,
        }
    }
}

/// `FromStr` for an option enum: the names of each variant (matched in any case) and the
/// usage error for any other string (`{:?}` stands for it).
macro_rules! from_names {
    ($t:ident, $unknown:literal, { $($($name:literal)|+ => $v:ident),+ $(,)? }) => {
        impl std::str::FromStr for $t {
            type Err = SimilarityError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.to_ascii_lowercase().as_str() {
                    $($($name)|+ => Ok($t::$v),)+
                    _ => Err(Error::usage(format!($unknown, s))),
                }
            }
        }
    };
}

from_names!(Metric, "unknown metric {:?} (overlap or jaccard)", {
    "overlap" => Overlap,
    "jaccard" => Jaccard,
});

/// Where to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// CUDA, or an error when no CUDA driver / device / NVRTC is available.
    Cuda,
    /// CUDA when available, else CPU.
    Auto,
}

from_names!(Device, "unknown device {:?} (cpu, cuda or auto)", {
    "cpu" => Cpu,
    "cuda" | "gpu" => Cuda,
    "auto" => Auto,
});

/// The CPU counting kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuKernel {
    /// The fastest: [`CpuKernel::Sliced`].
    #[default]
    Auto,
    /// Token → 512-column bitmask table, bit-sliced carry-save counting (cost ∝ k).
    Sliced,
    /// Per-pair bitset AND + popcount over the vocabulary (cost ∝ vocab / 64).
    Bitset,
    /// Per-pair sorted merge (cost ∝ 2k, branchy).
    Merge,
}

from_names!(CpuKernel, "unknown CPU kernel {:?}", {
    "auto" => Auto,
    "sliced" => Sliced,
    "bitset" => Bitset,
    "merge" => Merge,
});

/// Options of a similarity run.
#[derive(Debug, Clone)]
pub struct Options {
    pub metric: Metric,
    pub device: Device,
    /// CPU threads (None = all cores).
    pub threads: Option<usize>,
    pub cpu_kernel: CpuKernel,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            metric: Metric::Overlap,
            device: Device::Auto,
            threads: None,
            cpu_kernel: CpuKernel::Auto,
        }
    }
}

/// Which engine ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceUsed {
    Cpu {
        kernel: String,
        threads: usize,
    },
    Cuda {
        name: String,
        compute_capability: (i32, i32),
    },
}

impl DeviceUsed {
    /// "cpu" or "cuda".
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceUsed::Cpu { .. } => "cpu",
            DeviceUsed::Cuda { .. } => "cuda",
        }
    }
}

impl fmt::Display for DeviceUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceUsed::Cpu { kernel, threads } => write!(f, "cpu ({kernel}, {threads} threads)"),
            DeviceUsed::Cuda {
                name,
                compute_capability: (a, b),
            } => write!(f, "cuda ({name}, sm_{a}{b})"),
        }
    }
}

/// Errors of the similarity engine: the crate's one coded [`Error`] type.
pub type SimilarityError = Error;

/// Score of one prompt from its intersection count `c` and the set sizes (`la` the anchor's).
/// Every engine derives scores through this function (or bit-identical IEEE arithmetic).
#[inline]
pub fn prompt_score(metric: Metric, c: u32, la: u32, lb: u32) -> f64 {
    match metric {
        Metric::Overlap => {
            if la == 0 {
                0.0
            } else {
                c as f64 / la as f64
            }
        }
        Metric::Jaccard => {
            let union = la as u64 + lb as u64 - c as u64;
            if union == 0 {
                // Both sets empty: a missing prompt, excluded from the mean (see [`rescale`]).
                0.0
            } else {
                c as f64 / union as f64
            }
        }
    }
}

/// Final score from the in-order f64 sum of prompt scores.
#[inline]
pub fn finish_score(sum: f64, prompts: usize) -> f32 {
    if prompts == 0 {
        0.0
    } else {
        (sum / prompts as f64) as f32
    }
}

/// The mean over `common` prompts from the engines' mean over all `prompts` (missing prompts
/// contribute 0 to the sum): unchanged when every prompt is common, -1 when none is.
#[inline]
pub fn rescale(mean: f32, prompts: usize, common: usize) -> f32 {
    if common == prompts {
        mean
    } else if common == 0 {
        -1.0
    } else {
        (mean as f64 * prompts as f64 / common as f64) as f32
    }
}

/// Per-prompt scores of column model `j` of `b` against row model `i` of `a`: NaN where a set
/// is missing or the prompt is outside row `i`'s anchor range. Their mean (over the others)
/// equals the engines' score of the pair up to the final rounding to `f32`.
pub fn pair_prompt_scores(
    a: &SketchCollection,
    i: usize,
    b: &SketchCollection,
    j: usize,
    metric: Metric,
) -> Vec<f64> {
    (0..a.prompts())
        .map(|q| {
            let (x, y) = (a.set(i, q), b.set(j, q));
            if !a.anchors_prompt(i, q) || x.is_empty() || y.is_empty() {
                return f64::NAN;
            }
            let c = crate::overlap::intersection_count_sorted(x, y) as u32;
            prompt_score(metric, c, x.len() as u32, y.len() as u32)
        })
        .collect()
}

/// Which prompts each row and column model has (non-empty sets), as bitmasks; `None` when
/// every pair is scored over all P prompts (no rescaling needed).
pub(crate) struct Presence {
    words: usize,
    rows: Vec<u64>,
    cols: Vec<u64>,
}

impl Presence {
    pub(crate) fn of(rows: &SketchCollection, cols: &SketchCollection) -> Option<Presence> {
        if rows.is_dense() && cols.is_dense() {
            return None;
        }
        let (words, r) = rows.presence_masks(true);
        let (_, c) = cols.presence_masks(false);
        Some(Presence {
            words,
            rows: r,
            cols: c,
        })
    }
    /// Prompts that row model `i` and column model `j` both have. In a symmetric job it is
    /// also the count of the column-anchored pair: symmetric jobs never have anchor ranges
    /// (anchored collections are computed as rectangular jobs), so rows and columns have the
    /// same masks.
    #[inline]
    pub(crate) fn common(&self, i: usize, j: usize) -> usize {
        let w = self.words;
        self.rows[i * w..(i + 1) * w]
            .iter()
            .zip(&self.cols[j * w..(j + 1) * w])
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }
}

/// Runs `job` on `engine`, rescaling every stripe's scores to the prompts each pair has in
/// common before `emit` sees them (see [`rescale`]).
fn run_job(engine: &mut dyn Engine, job: &Job, emit: &mut EmitFn) -> Result<(), SimilarityError> {
    let Some(pres) = Presence::of(job.rows, job.cols) else {
        return engine.run(job, emit);
    };
    let p = job.prompts();
    engine.run(job, &mut |st, u, l| {
        // Both directions of a pair have the same common prompts (see Presence::common).
        let rescaled = |v: &[f32]| {
            let w = st.c1 - st.c0;
            let mut out = v.to_vec();
            out.par_chunks_mut(w.max(1))
                .enumerate()
                .for_each(|(ri, row)| {
                    for (ci, v) in row.iter_mut().enumerate() {
                        *v = rescale(*v, p, pres.common(st.r0 + ri, st.c0 + ci));
                    }
                });
            out
        };
        emit(st, &rescaled(u), l.map(rescaled).as_deref())
    })
}

/// A dense row-major score matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.cols + j]
    }
}

/// Top-N neighbours of every model: model `i`'s list is
/// `index[offsets[i]..offsets[i+1]]` with `score[…]`, best first (ties: lower index first).
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub offsets: Vec<u32>,
    pub index: Vec<u32>,
    pub score: Vec<f32>,
}

impl Neighbours {
    /// Every model's list, `(score, index)` best first, in model order.
    pub fn from_lists<L: IntoIterator<Item = (f32, u32)>>(
        lists: impl IntoIterator<Item = L>,
    ) -> Neighbours {
        let mut offsets = vec![0u32];
        let (mut index, mut score) = (Vec::new(), Vec::new());
        for list in lists {
            for (s, i) in list {
                index.push(i);
                score.push(s);
            }
            offsets.push(index.len() as u32);
        }
        Neighbours {
            offsets,
            index,
            score,
        }
    }
    pub fn of(&self, i: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let r = self.offsets[i] as usize..self.offsets[i + 1] as usize;
        self.index[r.clone()]
            .iter()
            .copied()
            .zip(self.score[r].iter().copied())
    }
}

/// A completed run: the result, the device that ran it and the wall time of the compute.
#[derive(Debug, Clone)]
pub struct Run<T> {
    pub result: T,
    pub device: DeviceUsed,
    pub seconds: f64,
}

/// What an engine computes: rows against columns of one prompt list.
pub(crate) struct Job<'a> {
    pub rows: &'a SketchCollection,
    pub cols: &'a SketchCollection,
    pub metric: Metric,
    /// rows and cols are the same collection: only `j > i` entries are read.
    pub symmetric: bool,
    /// Compute the column-anchored scores `M[j][i]` too (symmetric overlap with unequal sizes).
    pub lower: bool,
    /// The work, stripe by stripe (each handed to `emit` as it completes).
    pub stripes: Vec<Stripe>,
}

impl<'a> Job<'a> {
    /// A collection against itself over `stripes` of the upper triangle. Never with anchor
    /// ranges (the §1.5 protocol is a rectangular job): [`Presence::common`] relies on it.
    pub fn symmetric(s: &'a SketchCollection, metric: Metric, stripes: Vec<Stripe>) -> Self {
        debug_assert!(
            s.anchors().is_none(),
            "an anchored collection in a symmetric job"
        );
        Job {
            rows: s,
            cols: s,
            metric,
            symmetric: true,
            lower: metric == Metric::Overlap && !uniform_lengths(s),
            stripes,
        }
    }
    /// Every row model against every column model.
    pub fn rect(rows: &'a SketchCollection, cols: &'a SketchCollection, metric: Metric) -> Self {
        Job {
            rows,
            cols,
            metric,
            symmetric: false,
            lower: false,
            stripes: plan_rect(rows.len(), cols.len()),
        }
    }
    pub fn prompts(&self) -> usize {
        self.rows.prompts()
    }
    pub fn vocab(&self) -> u32 {
        self.rows.vocab_size().max(self.cols.vocab_size())
    }
}

/// One finished stripe: `u[r * w + c]` = raw mean score of (row r0 + r, column c0 + c);
/// `l` (when computed) the column-anchored score of the same pair, i.e. `M[c0+c][r0+r]`.
pub(crate) type EmitFn<'e> =
    dyn FnMut(&Stripe, &[f32], Option<&[f32]>) -> Result<(), SimilarityError> + 'e;

/// An engine runs a job's stripes and hands each finished one to `emit`.
pub(crate) trait Engine {
    fn run(&mut self, job: &Job, emit: &mut EmitFn) -> Result<(), SimilarityError>;
    fn device(&self) -> DeviceUsed;
}

fn uniform_lengths(c: &SketchCollection) -> bool {
    let mut it = (0..c.len())
        .filter(|&m| !c.is_failed(m))
        .flat_map(|m| (0..c.prompts()).map(move |p| (m, p)));
    match it.next() {
        None => true,
        Some((m, p)) => {
            let l = c.set_len(m, p);
            it.all(|(m, p)| c.set_len(m, p) == l)
        }
    }
}

fn check_compatible(a: &SketchCollection, b: &SketchCollection) -> Result<(), SimilarityError> {
    if a.prompts() != b.prompts() {
        return Err(Error::input(format!(
            "the collections have {} and {} prompts; sketches must come from the same prompts",
            a.prompts(),
            b.prompts()
        )));
    }
    let zero = [0u8; 32];
    if a.meta().prompt_hash != zero
        && b.meta().prompt_hash != zero
        && a.meta().prompt_hash != b.meta().prompt_hash
    {
        return Err(Error::input(format!(
            "the collections were made from different prompt sets (prompt hash {} vs {})",
            a.meta().prompt_hash_hex(),
            b.meta().prompt_hash_hex()
        )));
    }
    Ok(())
}

fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, SimilarityError> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(Error::usage("threads must be at least 1"));
        }
        b = b.num_threads(t);
    }
    b.build()
        .map_err(|e| Error::internal(format!("cannot start CPU threads: {e}")))
}

/// Picks and starts the engine for `opts.device`.
fn with_engine<T>(
    opts: &Options,
    body: impl FnOnce(&mut dyn Engine) -> Result<T, SimilarityError> + Send,
) -> Result<Run<T>, SimilarityError>
where
    T: Send,
{
    let pool = thread_pool(opts.threads)?;
    pool.install(|| {
        let t0 = Instant::now();
        let mut engine: Box<dyn Engine> = match opts.device {
            Device::Cpu => Box::new(cpu::CpuEngine::new(opts.cpu_kernel)),
            Device::Cuda => cuda_engine().map_err(Error::device)?,
            Device::Auto => match cuda_engine() {
                Ok(e) => e,
                Err(_) => Box::new(cpu::CpuEngine::new(opts.cpu_kernel)),
            },
        };
        let result = body(engine.as_mut())?;
        Ok(Run {
            result,
            device: engine.device(),
            seconds: t0.elapsed().as_secs_f64(),
        })
    })
}

#[cfg(feature = "cuda")]
fn cuda_engine() -> Result<Box<dyn Engine>, String> {
    cuda::CudaEngine::new().map(|e| Box::new(e) as Box<dyn Engine>)
}

#[cfg(not(feature = "cuda"))]
fn cuda_engine() -> Result<Box<dyn Engine>, String> {
    Err("CUDA support is not compiled in (build modelprint-core with the `cuda` feature)".into())
}

/// Why CUDA is unavailable here (None when it is available).
pub fn cuda_unavailable_reason() -> Option<String> {
    cuda_engine().err()
}

/// Raw value → reported value: diagonal 1, failed models -1.
#[inline]
fn fixup(v: f32, i_failed: bool, j_failed: bool) -> f32 {
    if i_failed || j_failed {
        -1.0
    } else {
        v
    }
}

/// The full n × n matrix of a collection.
pub fn full_matrix(s: &SketchCollection, opts: &Options) -> Result<Run<Matrix>, SimilarityError> {
    with_engine(opts, |engine| full_with(s, opts.metric, engine))
}

pub(crate) fn full_with(
    s: &SketchCollection,
    metric: Metric,
    engine: &mut dyn Engine,
) -> Result<Matrix, SimilarityError> {
    let n = s.len();
    let mut data = limits::zeroed2::<f32>("the n × n similarity matrix", n, n)?;
    if s.anchors().is_some() {
        // The §1.5 protocol: row i over model i's own prompts, against every model.
        let rows = s.anchored_rows();
        let m = rect_with(&rows, s, metric, engine)?;
        data.copy_from_slice(&m.data);
    } else {
        let job = Job::symmetric(s, metric, plan_full(n));
        run_job(engine, &job, &mut |st, u, l| {
            emit_full(s, &mut data, st, u, l);
            Ok(())
        })?;
    }
    finish_full(s, &mut data);
    Ok(Matrix {
        rows: n,
        cols: n,
        data,
    })
}

/// Hands every score of a symmetric job's stripe to the matrix row it belongs to, rows in
/// parallel: `dest` holds `per_row` items per model (row-major). Row r of the stripe
/// (`r0..r1`) gets `put(its items, r, c, M[r][c])` for the stripe's columns c > r; then row c
/// of the stripe's columns (`c0..c1`) gets `put(its items, c, r, M[c][r])` for the stripe's
/// rows r < c (from `l`, or `u` when the scores are symmetric).
fn scatter_symmetric<T: Send>(
    st: &Stripe,
    u: &[f32],
    l: Option<&[f32]>,
    dest: &mut [T],
    per_row: usize,
    put: impl Fn(&mut [T], usize, usize, f32) + Sync,
) {
    let w = st.c1 - st.c0;
    dest[st.r0 * per_row..st.r1 * per_row]
        .par_chunks_mut(per_row)
        .enumerate()
        .for_each(|(ri, row)| {
            let r = st.r0 + ri;
            for c in st.c0.max(r + 1)..st.c1 {
                put(row, r, c, u[ri * w + (c - st.c0)]);
            }
        });
    let lv = l.unwrap_or(u);
    dest[st.c0 * per_row..st.c1 * per_row]
        .par_chunks_mut(per_row)
        .enumerate()
        .for_each(|(ci, row)| {
            let c = st.c0 + ci;
            for r in st.r0..st.r1.min(c) {
                put(row, c, r, lv[(r - st.r0) * w + ci]);
            }
        });
}

fn emit_full(s: &SketchCollection, data: &mut [f32], st: &Stripe, u: &[f32], l: Option<&[f32]>) {
    scatter_symmetric(st, u, l, data, s.len(), |row, _, j, v| row[j] = v);
}

fn finish_full(s: &SketchCollection, data: &mut [f32]) {
    let n = s.len();
    data.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(i, row)| {
            let fi = s.is_failed(i);
            for (j, v) in row.iter_mut().enumerate() {
                *v = if i == j && !fi {
                    1.0
                } else {
                    fixup(*v, fi, s.is_failed(j))
                };
            }
        });
}

/// The rectangular matrix: every query against every reference (`M[q][r]`, the query anchored
/// for overlap). No diagonal rule; failed models give -1.
pub fn rect_matrix(
    queries: &SketchCollection,
    refs: &SketchCollection,
    opts: &Options,
) -> Result<Run<Matrix>, SimilarityError> {
    check_compatible(queries, refs)?;
    with_engine(opts, |engine| rect_with(queries, refs, opts.metric, engine))
}

pub(crate) fn rect_with(
    queries: &SketchCollection,
    refs: &SketchCollection,
    metric: Metric,
    engine: &mut dyn Engine,
) -> Result<Matrix, SimilarityError> {
    check_compatible(queries, refs)?;
    let (nq, nr) = (queries.len(), refs.len());
    let mut data = limits::zeroed2::<f32>("the queries × references matrix", nq, nr)?;
    run_job(
        engine,
        &Job::rect(queries, refs, metric),
        &mut |st, u, _| {
            let w = st.c1 - st.c0;
            data[st.r0 * nr..st.r1 * nr]
                .par_chunks_mut(nr.max(1))
                .enumerate()
                .for_each(|(ri, row)| {
                    let q = st.r0 + ri;
                    let qf = queries.is_failed(q);
                    for c in st.c0..st.c1 {
                        row[c] = fixup(u[ri * w + (c - st.c0)], qf, refs.is_failed(c));
                    }
                });
            Ok(())
        },
    )?;
    Ok(Matrix {
        rows: nq,
        cols: nr,
        data,
    })
}

/// Keeps the best `cap` (score desc, index asc) of what is pushed.
#[derive(Clone)]
struct TopList {
    items: Vec<(f32, u32)>,
    cap: usize,
}

impl TopList {
    fn new(cap: usize) -> Self {
        TopList {
            items: Vec::with_capacity(cap + 1),
            cap,
        }
    }
    #[inline]
    fn better(a: (f32, u32), b: (f32, u32)) -> bool {
        a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
    }
    #[inline]
    fn push(&mut self, score: f32, idx: u32) {
        if self.cap == 0 {
            return;
        }
        let it = (score, idx);
        if self.items.len() == self.cap {
            let worst = *self.items.last().unwrap();
            if !Self::better(it, worst) {
                return;
            }
            self.items.pop();
        }
        let pos = self.items.partition_point(|&x| Self::better(x, it));
        self.items.insert(pos, it);
    }
}

/// The `top` best-scoring other models of every model, streamed stripe by stripe (the n × n
/// matrix is never held). Failed models have no neighbours and are nobody's neighbour.
pub fn top_n(
    s: &SketchCollection,
    top: usize,
    opts: &Options,
) -> Result<Run<Neighbours>, SimilarityError> {
    with_engine(opts, |engine| top_n_with(s, top, opts.metric, engine))
}

pub(crate) fn top_n_with(
    s: &SketchCollection,
    top: usize,
    metric: Metric,
    engine: &mut dyn Engine,
) -> Result<Neighbours, SimilarityError> {
    let n = s.len();
    if s.anchors().is_some() {
        // The §1.5 protocol (matrix files: n is hundreds, not thousands): from the full matrix.
        let m = full_with(s, metric, engine)?;
        let failed = |i: usize| s.is_failed(i);
        return Ok(reference::top_n_of(&m, top, true, &failed, &failed));
    }
    let cap = top.min(n.saturating_sub(1));
    limits::check_alloc(
        "the top-N lists",
        (n as u64).saturating_mul(cap as u64 + 1),
        8,
    )?;
    let mut lists = vec![TopList::new(cap); n];
    let job = Job::symmetric(s, metric, plan_full(n));
    run_job(engine, &job, &mut |st, u, l| {
        scatter_symmetric(st, u, l, &mut lists, 1, |list, i, j, v| {
            if !s.is_failed(i) && !s.is_failed(j) {
                list[0].push(v, j as u32);
            }
        });
        Ok(())
    })?;
    Ok(Neighbours::from_lists(lists.into_iter().map(|l| l.items)))
}

/// Top-N references of every query (rectangular).
pub fn rect_top_n(
    queries: &SketchCollection,
    refs: &SketchCollection,
    top: usize,
    opts: &Options,
) -> Result<Run<Neighbours>, SimilarityError> {
    check_compatible(queries, refs)?;
    with_engine(opts, |engine| {
        rect_top_n_with(queries, refs, top, opts.metric, engine)
    })
}

pub(crate) fn rect_top_n_with(
    queries: &SketchCollection,
    refs: &SketchCollection,
    top: usize,
    metric: Metric,
    engine: &mut dyn Engine,
) -> Result<Neighbours, SimilarityError> {
    check_compatible(queries, refs)?;
    let cap = top.min(refs.len());
    limits::check_alloc(
        "the top-N lists",
        (queries.len() as u64).saturating_mul(cap as u64 + 1),
        8,
    )?;
    let mut lists = vec![TopList::new(cap); queries.len()];
    run_job(
        engine,
        &Job::rect(queries, refs, metric),
        &mut |st, u, _| {
            let w = st.c1 - st.c0;
            lists[st.r0..st.r1]
                .par_iter_mut()
                .enumerate()
                .for_each(|(ri, list)| {
                    if queries.is_failed(st.r0 + ri) {
                        return;
                    }
                    for c in st.c0..st.c1 {
                        if !refs.is_failed(c) {
                            list.push(u[ri * w + (c - st.c0)], c as u32);
                        }
                    }
                });
            Ok(())
        },
    )?;
    Ok(Neighbours::from_lists(lists.into_iter().map(|l| l.items)))
}

/// Shard `spec.index` of `spec.count` of the full matrix: a balanced share of the
/// upper-triangle blocks (each with both of its directions). [`merge_parts`] assembles the
/// parts of all shards into the full matrix.
pub fn shard(
    s: &SketchCollection,
    spec: ShardSpec,
    opts: &Options,
) -> Result<Run<ShardPart>, SimilarityError> {
    with_engine(opts, |engine| shard_with(s, spec, opts.metric, engine))
}

pub(crate) fn shard_with(
    s: &SketchCollection,
    spec: ShardSpec,
    metric: Metric,
    engine: &mut dyn Engine,
) -> Result<ShardPart, SimilarityError> {
    if s.anchors().is_some() {
        return Err(Error::usage(
            "this sketch file has anchor ranges (written by `matrix`); sharding is for collections without them: compute it whole",
        ));
    }
    let plan = plan_shard(s.len(), spec)?;
    let mut part = ShardPart::new(s, spec, metric, s.fingerprint(), plan.tiles.len());
    let job = Job::symmetric(s, metric, plan.stripes);
    run_job(engine, &job, &mut |st, u, l| {
        part.take_stripe(s, st, u, l);
        Ok(())
    })?;
    part.check_complete(&plan.tiles)?;
    Ok(part)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_support;
