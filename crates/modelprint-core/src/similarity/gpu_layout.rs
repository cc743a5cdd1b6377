//! The GPU side of the engine, device-independent: the bitset layout uploaded to the GPU, the
//! CUDA kernel source, the batching of stripes into tile launches, and a CPU *twin* that
//! executes the kernel's exact algorithm (same layout, tiles, shared-memory chunks, thread
//! mapping and arithmetic) so the whole GPU path is tested on machines without a GPU.
//!
//! Layout, per prompt p: the tokens used by any model in p are renumbered densely
//! (ascending), each model's set becomes a bitset of `words[p]` 32-bit words, stored
//! word-major: `bits[off[p] + w * pad + m]` (m the model, `pad` = models rounded up to 64),
//! so a tile's 64 models of one word are 64 consecutive u32 (coalesced loads).
//! `len[p * pad + m]` is the set size (0 for padding).

use rayon::prelude::*;

use super::stripes::Stripe;
use super::{prompt_score, EmitFn, Job, Metric, SimilarityError};
use crate::sketch::SketchCollection;

/// Models per tile side.
pub const TILE: usize = 64;
/// 32-bit words per shared-memory chunk.
pub const WK: usize = 32;
/// Threads per block: 16 × 16, each 4 × 4 pairs.
pub const THREADS: usize = 256;
/// u32 fields per tile entry: tr, tc, r0, r1, c0, c1, out offset lo, out offset hi.
pub const ENTRY: usize = 8;

/// The CUDA C++ source, compiled at run time by NVRTC. Counts are exact integers; scores are
/// IEEE double divisions summed in prompt order, then rounded once to float — the same
/// arithmetic as [`super::prompt_score`] and [`super::finish_score`].
pub const KERNEL_SRC: &str = r#"
#define TILE 64
#define WK 32

__device__ __forceinline__ double mp_score(int metric, unsigned int c, unsigned int la, unsigned int lb) {
    if (metric == 0) {
        return la == 0u ? 0.0 : (double)c / (double)la;
    }
    unsigned long long u = (unsigned long long)la + (unsigned long long)lb - (unsigned long long)c;
    return u == 0ull ? 0.0 : (double)c / (double)u;
}

extern "C" __global__ void __launch_bounds__(256) mp_tiles(
    const unsigned int* __restrict__ row_bits, const unsigned long long* __restrict__ row_off,
    const unsigned int* __restrict__ row_len, unsigned int row_pad,
    const unsigned int* __restrict__ col_bits, const unsigned long long* __restrict__ col_off,
    const unsigned int* __restrict__ col_len, unsigned int col_pad,
    const unsigned int* __restrict__ words, unsigned int prompts,
    const unsigned int* __restrict__ entries, int metric, int lower,
    float* __restrict__ out)
{
    __shared__ unsigned int As[WK][TILE];
    __shared__ unsigned int Bs[WK][TILE];
    const unsigned int* e = entries + 8ull * blockIdx.x;
    const unsigned int tr = e[0], tc = e[1], r0 = e[2], r1 = e[3], c0 = e[4], c1 = e[5];
    const unsigned long long base = (unsigned long long)e[6] | ((unsigned long long)e[7] << 32);
    const unsigned int tid = threadIdx.x;
    const unsigned int tx = tid & 15u, ty = tid >> 4;

    double acc_u[4][4], acc_l[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) { acc_u[i][j] = 0.0; acc_l[i][j] = 0.0; }

    for (unsigned int p = 0; p < prompts; ++p) {
        unsigned int cnt[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) cnt[i][j] = 0u;
        const unsigned int W = words[p];
        const unsigned int* rb = row_bits + row_off[p];
        const unsigned int* cb = col_bits + col_off[p];
        for (unsigned int w0 = 0; w0 < W; w0 += WK) {
            for (unsigned int k = tid; k < WK * TILE; k += 256u) {
                const unsigned int kk = k / TILE, m = k % TILE, w = w0 + kk;
                As[kk][m] = (w < W) ? rb[(unsigned long long)w * row_pad + tr + m] : 0u;
                Bs[kk][m] = (w < W) ? cb[(unsigned long long)w * col_pad + tc + m] : 0u;
            }
            __syncthreads();
#pragma unroll 8
            for (unsigned int kk = 0; kk < WK; ++kk) {
                unsigned int a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) { a[i] = As[kk][ty + 16 * i]; b[i] = Bs[kk][tx + 16 * i]; }
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) cnt[i][j] += __popc(a[i] & b[j]);
            }
            __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const unsigned int r = tr + ty + 16 * i;
            const unsigned int la = row_len[(unsigned long long)p * row_pad + r];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const unsigned int c = tc + tx + 16 * j;
                const unsigned int lb = col_len[(unsigned long long)p * col_pad + c];
                acc_u[i][j] += mp_score(metric, cnt[i][j], la, lb);
                if (lower) acc_l[i][j] += mp_score(metric, cnt[i][j], lb, la);
            }
        }
    }
    const unsigned long long w = c1 - c0;
    const unsigned long long half = (unsigned long long)(r1 - r0) * w;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const unsigned int r = tr + ty + 16 * i;
        if (r < r0 || r >= r1) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const unsigned int c = tc + tx + 16 * j;
            if (c < c0 || c >= c1) continue;
            const unsigned long long at = base + (unsigned long long)(r - r0) * w + (c - c0);
            out[at] = prompts ? (float)(acc_u[i][j] / (double)prompts) : 0.0f;
            if (lower) out[at + half] = prompts ? (float)(acc_l[i][j] / (double)prompts) : 0.0f;
        }
    }
}
"#;

/// One collection's bitsets, laid out for the kernel.
pub struct Side {
    pub pad: usize,
    pub bits: Vec<u32>,
    pub off: Vec<u64>,
    pub len: Vec<u32>,
}

/// Both sides (cols is None when rows and cols are the same collection) and the words per prompt.
pub struct Layout {
    pub words: Vec<u32>,
    pub rows: Side,
    pub cols: Option<Side>,
}

impl Layout {
    pub fn cols(&self) -> &Side {
        self.cols.as_ref().unwrap_or(&self.rows)
    }
    /// Bytes the layout occupies on the device.
    pub fn device_bytes(&self) -> usize {
        let side = |s: &Side| 4 * s.bits.len() + 8 * s.off.len() + 4 * s.len.len();
        side(&self.rows) + self.cols.as_ref().map_or(0, side) + 4 * self.words.len()
    }
}

/// Dense rank of every used token of prompt p: `rank[t]` (valid where used) and the count.
fn ranks(sets: &[&SketchCollection], p: usize, vocab: usize) -> (Vec<u32>, usize) {
    let mut used = vec![0u64; vocab.div_ceil(64)];
    for s in sets {
        for m in 0..s.len() {
            for &t in s.set(m, p) {
                used[t as usize / 64] |= 1u64 << (t % 64);
            }
        }
    }
    let mut rank = vec![0u32; vocab];
    let mut r = 0u32;
    for (wi, &word) in used.iter().enumerate() {
        let mut x = word;
        while x != 0 {
            let b = x.trailing_zeros() as usize;
            rank[wi * 64 + b] = r;
            r += 1;
            x &= x - 1;
        }
    }
    (rank, r as usize)
}

fn build_side(s: &SketchCollection, ranks: &[(Vec<u32>, usize)], words: &[u32]) -> Side {
    let pad = s.len().div_ceil(TILE).max(1) * TILE;
    let prompts = words.len();
    let mut off = Vec::with_capacity(prompts);
    let mut total = 0u64;
    for &w in words {
        off.push(total);
        total += w as u64 * pad as u64;
    }
    let mut bits = vec![0u32; total as usize];
    // Split the buffer per prompt, fill in parallel.
    let mut parts: Vec<&mut [u32]> = Vec::with_capacity(prompts);
    let mut rest = bits.as_mut_slice();
    for &w in words {
        let (a, b) = rest.split_at_mut(w as usize * pad);
        parts.push(a);
        rest = b;
    }
    parts.into_par_iter().enumerate().for_each(|(p, part)| {
        let rank = &ranks[p].0;
        for m in 0..s.len() {
            for &t in s.set(m, p) {
                let r = rank[t as usize] as usize;
                part[(r / 32) * pad + m] |= 1u32 << (r % 32);
            }
        }
    });
    let mut len = vec![0u32; prompts * pad];
    for p in 0..prompts {
        for m in 0..s.len() {
            len[p * pad + m] = s.set_len(m, p);
        }
    }
    Side {
        pad,
        bits,
        off,
        len,
    }
}

/// Builds the device layout of a job.
pub(crate) fn build_layout(job: &Job) -> Layout {
    let vocab = job.vocab() as usize;
    let same = std::ptr::eq(job.rows, job.cols);
    let sets: Vec<&SketchCollection> = if same {
        vec![job.rows]
    } else {
        vec![job.rows, job.cols]
    };
    let ranks: Vec<(Vec<u32>, usize)> = (0..job.prompts())
        .into_par_iter()
        .map(|p| ranks(&sets, p, vocab))
        .collect();
    let words: Vec<u32> = ranks.iter().map(|r| r.1.div_ceil(32) as u32).collect();
    let rows = build_side(job.rows, &ranks, &words);
    let cols = if same {
        None
    } else {
        Some(build_side(job.cols, &ranks, &words))
    };
    Layout { words, rows, cols }
}

/// Output floats of a stripe (u, and l when `lower`).
pub fn stripe_out_len(st: &Stripe, lower: bool) -> usize {
    (st.r1 - st.r0) * (st.c1 - st.c0) * if lower { 2 } else { 1 }
}

/// Tile entries of a batch of stripes whose outputs are laid out back to back (stripe i's
/// output starts at `offsets[i]`). Symmetric jobs skip tiles entirely below the diagonal.
pub fn tile_entries(stripes: &[Stripe], offsets: &[usize], symmetric: bool) -> Vec<u32> {
    let mut e = Vec::new();
    for (st, &base) in stripes.iter().zip(offsets) {
        let mut tr = st.r0 / TILE * TILE;
        while tr < st.r1 {
            let mut tc = st.c0 / TILE * TILE;
            while tc < st.c1 {
                if !symmetric || tr <= tc {
                    e.extend_from_slice(&[
                        tr as u32,
                        tc as u32,
                        st.r0 as u32,
                        st.r1 as u32,
                        st.c0 as u32,
                        st.c1 as u32,
                        base as u32,
                        (base as u64 >> 32) as u32,
                    ]);
                }
                tc += TILE;
            }
            tr += TILE;
        }
    }
    e
}

/// The kernel's scalar arguments of a job (the same for every launch).
#[derive(Debug, Clone, Copy)]
pub struct KernelArgs {
    pub prompts: usize,
    pub metric: Metric,
    /// Also the column-anchored scores (`out` holds u, then l, per stripe).
    pub lower: bool,
}

impl KernelArgs {
    pub(crate) fn of(job: &Job) -> Self {
        KernelArgs {
            prompts: job.prompts(),
            metric: job.metric,
            lower: job.lower,
        }
    }
}

/// Runs a batch of tile entries (on the device, or the twin) into an output of `out_len`.
pub(crate) trait TileExecutor {
    fn execute(&mut self, entries: &[u32], out_len: usize) -> Result<Vec<f32>, SimilarityError>;
}

/// Drives an executor over all stripes of the job: batches of at most `budget` output bytes.
pub(crate) fn run_batched(
    exec: &mut dyn TileExecutor,
    job: &Job,
    budget: usize,
    emit: &mut EmitFn,
) -> Result<(), SimilarityError> {
    let stripes = &job.stripes[..];
    let mut i = 0;
    while i < stripes.len() {
        let mut offsets = Vec::new();
        let mut total = 0usize;
        let mut j = i;
        while j < stripes.len() {
            let len = stripe_out_len(&stripes[j], job.lower);
            if j > i && 4 * (total + len) > budget {
                break;
            }
            offsets.push(total);
            total += len;
            j += 1;
        }
        let batch = &stripes[i..j];
        let entries = tile_entries(batch, &offsets, job.symmetric);
        let out = if entries.is_empty() {
            vec![0f32; total]
        } else {
            exec.execute(&entries, total)?
        };
        for (st, &base) in batch.iter().zip(&offsets) {
            let half = (st.r1 - st.r0) * (st.c1 - st.c0);
            let u = &out[base..base + half];
            let l = if job.lower {
                Some(&out[base + half..base + 2 * half])
            } else {
                None
            };
            emit(st, u, l)?;
        }
        i = j;
    }
    Ok(())
}

/// The kernel's algorithm on the CPU, block by block and thread by thread.
pub struct Twin<'a> {
    pub layout: &'a Layout,
    pub args: KernelArgs,
}

impl TileExecutor for Twin<'_> {
    // Index loops on purpose: they mirror the kernel's thread / register indexing.
    #[allow(clippy::needless_range_loop)]
    fn execute(&mut self, entries: &[u32], out_len: usize) -> Result<Vec<f32>, SimilarityError> {
        let (rows, cols, words) = (&self.layout.rows, self.layout.cols(), &self.layout.words);
        let KernelArgs {
            prompts,
            metric,
            lower,
        } = self.args;
        // Blocks are independent: run them in parallel, collect their writes.
        let writes: Vec<Vec<(usize, f32)>> = entries
            .par_chunks(ENTRY)
            .map(|e| {
                let (tr, tc, r0, r1, c0, c1) = (
                    e[0] as usize,
                    e[1] as usize,
                    e[2] as usize,
                    e[3] as usize,
                    e[4] as usize,
                    e[5] as usize,
                );
                let base = e[6] as usize | ((e[7] as usize) << 32);
                let mut a_s = [[0u32; TILE]; WK];
                let mut b_s = [[0u32; TILE]; WK];
                let mut acc_u = vec![[[0f64; 4]; 4]; THREADS];
                let mut acc_l = vec![[[0f64; 4]; 4]; THREADS];
                for p in 0..prompts {
                    let mut cnt = vec![[[0u32; 4]; 4]; THREADS];
                    let w_p = words[p] as usize;
                    let rb = &rows.bits[rows.off[p] as usize..];
                    let cb = &cols.bits[cols.off[p] as usize..];
                    let mut w0 = 0;
                    while w0 < w_p {
                        // cooperative load (every thread's share, in any order: same result)
                        for k in 0..WK * TILE {
                            let (kk, m) = (k / TILE, k % TILE);
                            let w = w0 + kk;
                            a_s[kk][m] = if w < w_p {
                                rb[w * rows.pad + tr + m]
                            } else {
                                0
                            };
                            b_s[kk][m] = if w < w_p {
                                cb[w * cols.pad + tc + m]
                            } else {
                                0
                            };
                        }
                        for (tid, ct) in cnt.iter_mut().enumerate() {
                            let (tx, ty) = (tid & 15, tid >> 4);
                            for kk in 0..WK {
                                let a: [u32; 4] = std::array::from_fn(|i| a_s[kk][ty + 16 * i]);
                                let b: [u32; 4] = std::array::from_fn(|j| b_s[kk][tx + 16 * j]);
                                for i in 0..4 {
                                    for j in 0..4 {
                                        ct[i][j] += (a[i] & b[j]).count_ones();
                                    }
                                }
                            }
                        }
                        w0 += WK;
                    }
                    for tid in 0..THREADS {
                        let (tx, ty) = (tid & 15, tid >> 4);
                        for i in 0..4 {
                            let r = tr + ty + 16 * i;
                            let la = rows.len[p * rows.pad + r];
                            for j in 0..4 {
                                let c = tc + tx + 16 * j;
                                let lb = cols.len[p * cols.pad + c];
                                acc_u[tid][i][j] += prompt_score(metric, cnt[tid][i][j], la, lb);
                                if lower {
                                    acc_l[tid][i][j] +=
                                        prompt_score(metric, cnt[tid][i][j], lb, la);
                                }
                            }
                        }
                    }
                }
                let w = c1 - c0;
                let half = (r1 - r0) * w;
                let mut wr = Vec::new();
                let fin = |s: f64| {
                    if prompts > 0 {
                        (s / prompts as f64) as f32
                    } else {
                        0.0
                    }
                };
                for tid in 0..THREADS {
                    let (tx, ty) = (tid & 15, tid >> 4);
                    for i in 0..4 {
                        let r = tr + ty + 16 * i;
                        if r < r0 || r >= r1 {
                            continue;
                        }
                        for j in 0..4 {
                            let c = tc + tx + 16 * j;
                            if c < c0 || c >= c1 {
                                continue;
                            }
                            let at = base + (r - r0) * w + (c - c0);
                            wr.push((at, fin(acc_u[tid][i][j])));
                            if lower {
                                wr.push((at + half, fin(acc_l[tid][i][j])));
                            }
                        }
                    }
                }
                wr
            })
            .collect();
        let mut out = vec![0f32; out_len];
        for ws in writes {
            for (at, v) in ws {
                out[at] = v;
            }
        }
        Ok(out)
    }
}

/// An engine that runs the GPU path with the twin in place of the device (tests, and a
/// reference for the CUDA engine's host side).
pub struct TwinEngine {
    /// Output bytes per batch (small values exercise batching).
    pub budget: usize,
}

impl super::Engine for TwinEngine {
    fn run(&mut self, job: &Job, emit: &mut EmitFn) -> Result<(), SimilarityError> {
        let layout = build_layout(job);
        let mut twin = Twin {
            layout: &layout,
            args: KernelArgs::of(job),
        };
        run_batched(&mut twin, job, self.budget, emit)
    }
    fn device(&self) -> super::DeviceUsed {
        super::DeviceUsed::Cpu {
            kernel: "cuda-twin".into(),
            threads: rayon::current_num_threads(),
        }
    }
}
