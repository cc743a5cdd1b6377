//! Sketch collections and the all-pairs similarity engine, for JS.
//!
//! Big data crosses the boundary as typed arrays (Uint32Array in, Float32Array out), never
//! as JS arrays of numbers. Long computations (matrix, rectangular, top-N, shard, merge) run
//! as `AsyncTask`s on the libuv thread pool (they return Promises and keep the JS main thread
//! free); inside, the engine uses its own rayon thread pool (`threads`) or the GPU. Results
//! can be written to a file inside the same task (`outPath`, atomically) so a CLI never has
//! to hold an n × n matrix in JS. Errors are JS `Error`s with `code`, `subject` and `hint`
//! properties (see `error.rs`); option names are typed string unions in index.d.ts.

// napi registers the exports only outside `cfg(test)`; there they look unused.
#![cfg_attr(test, allow(dead_code))]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use modelprint_core::similarity::{
    self as sim, output, part, CpuKernel, Device, Matrix, Metric, Neighbours, Options, ShardSpec,
};
use modelprint_core::sketch::{JsonlOptions, SketchCollection, SketchMeta};
use modelprint_core::{Error as CoreError, ErrorCode};
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::error::{coded, js_error, Compute, CoreTask};

mod compact;
mod scan;

/// The per-prompt set score.
#[napi(string_enum = "lowercase")]
pub enum MetricName {
    Overlap,
    Jaccard,
}

impl From<MetricName> for Metric {
    fn from(m: MetricName) -> Metric {
        match m {
            MetricName::Overlap => Metric::Overlap,
            MetricName::Jaccard => Metric::Jaccard,
        }
    }
}

/// Where to compute: "cuda" fails when CUDA is unavailable, "auto" falls back to the CPU.
#[napi(string_enum = "lowercase")]
pub enum DeviceRequest {
    Cpu,
    Cuda,
    Auto,
}

impl From<DeviceRequest> for Device {
    fn from(d: DeviceRequest) -> Device {
        match d {
            DeviceRequest::Cpu => Device::Cpu,
            DeviceRequest::Cuda => Device::Cuda,
            DeviceRequest::Auto => Device::Auto,
        }
    }
}

/// The CPU counting kernel.
#[napi(string_enum = "lowercase")]
pub enum CpuKernelName {
    Auto,
    Sliced,
    Bitset,
    Merge,
}

impl From<CpuKernelName> for CpuKernel {
    fn from(k: CpuKernelName) -> CpuKernel {
        match k {
            CpuKernelName::Auto => CpuKernel::Auto,
            CpuKernelName::Sliced => CpuKernel::Sliced,
            CpuKernelName::Bitset => CpuKernel::Bitset,
            CpuKernelName::Merge => CpuKernel::Merge,
        }
    }
}

/// Which engine ran.
#[napi(string_enum = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

fn device_kind(d: &sim::DeviceUsed) -> DeviceKind {
    match d {
        sim::DeviceUsed::Cpu { .. } => DeviceKind::Cpu,
        sim::DeviceUsed::Cuda { .. } => DeviceKind::Cuda,
    }
}

fn metric_name(m: Metric) -> MetricName {
    match m {
        Metric::Overlap => MetricName::Overlap,
        Metric::Jaccard => MetricName::Jaccard,
    }
}

/// A collection of bottom-k sketches (many models × the same P prompts), in memory or
/// memory-mapped from a `.mpsk` file.
#[napi]
pub struct SketchSet {
    inner: Arc<SketchCollection>,
}

/// Parameters of [`SketchSet::from_arrays`].
#[napi(object)]
pub struct SketchSetInit {
    /// Number of prompts P (sets per model).
    pub prompts: u32,
    /// Every id must be below this.
    pub vocab_size: u32,
    /// Longest allowed set (default: the longest given).
    pub k: Option<u32>,
    /// 64 hex digits identifying the prompt list (default: unknown, all zero).
    pub prompt_hash: Option<String>,
    /// Models without a sketch (their sets must be empty); default none.
    pub failed: Option<Vec<bool>>,
    /// The §1.5 matrix protocol: per model `[start, end)` of the prompts its row is scored
    /// over (2 values per model); default: every model scores over every prompt.
    pub anchors: Option<Uint32Array>,
}

#[napi]
impl SketchSet {
    /// Builds a collection from concatenated sets: `lengths[m * prompts + p]` ascending ids of
    /// model m for prompt p, all in `ids` (model-major). Validates every set.
    #[napi(factory)]
    pub fn from_arrays(
        env: Env,
        models: Vec<String>,
        ids: Uint32Array,
        lengths: Uint32Array,
        init: SketchSetInit,
    ) -> Result<Self> {
        let k = init
            .k
            .unwrap_or_else(|| lengths.iter().copied().max().unwrap_or(0));
        let prompt_hash = match init.prompt_hash.as_deref() {
            Some(h) => SketchMeta::parse_prompt_hash(h).map_err(|e| js_error(&env, &e))?,
            None => [0; 32],
        };
        let meta = SketchMeta {
            vocab_size: init.vocab_size,
            k,
            prompts: init.prompts,
            prompt_hash,
        };
        let n = models.len();
        let mut c = SketchCollection::from_parts(
            meta,
            models,
            ids.to_vec(),
            lengths.to_vec(),
            init.failed.unwrap_or_default(),
        )
        .map_err(|e| js_error(&env, &e))?;
        if let Some(a) = init.anchors {
            if a.len() != 2 * n {
                return Err(coded(
                    &env,
                    ErrorCode::Usage,
                    format!(
                        "anchors needs 2 values per model ({} for {n} models)",
                        a.len()
                    ),
                ));
            }
            c = c
                .with_anchors(a.chunks(2).map(|r| [r[0], r[1]]).collect())
                .map_err(|e| js_error(&env, &e))?;
        }
        Ok(SketchSet { inner: Arc::new(c) })
    }

    /// A collection from the bytes of a `.mpsk` file (how the registry stores sketches),
    /// checked like a file.
    #[napi(factory)]
    pub fn from_bytes(env: Env, bytes: Buffer) -> Result<Self> {
        modelprint_core::sketch::from_bytes(&bytes)
            .map(|c| SketchSet { inner: Arc::new(c) })
            .map_err(|e| js_error(&env, &e))
    }

    /// The `.mpsk` bytes of the collection.
    #[napi]
    pub fn to_bytes(&self) -> Buffer {
        modelprint_core::sketch::to_bytes(&self.inner).into()
    }

    /// All ids, model-major and prompt-minor (a copy).
    #[napi(getter)]
    pub fn ids(&self) -> Uint32Array {
        Uint32Array::new(self.inner.ids().to_vec())
    }
    /// `lengths[m * prompts + p]` = size of set (m, p); 0 = a missing prompt.
    #[napi(getter)]
    pub fn lengths(&self) -> Uint32Array {
        Uint32Array::new(self.inner.lengths().to_vec())
    }
    /// Anchor ranges (2 values per model), or null when every row scores every prompt.
    #[napi(getter)]
    pub fn anchors(&self) -> Option<Uint32Array> {
        self.inner
            .anchors()
            .map(|a| Uint32Array::new(a.iter().flat_map(|r| [r[0], r[1]]).collect()))
    }

    /// Opens a `.jsonl` / `.json` / `.ndjson` (JSON lines) or a binary `.mpsk` file (mapped,
    /// not copied). `vocabSize` / `k` apply to JSON lines without a header line.
    #[napi(factory)]
    pub fn open(env: Env, path: String, vocab_size: Option<u32>, k: Option<u32>) -> Result<Self> {
        let p = Path::new(&path);
        let c = if modelprint_core::sketch::is_jsonl_path(p) {
            modelprint_core::sketch::read_jsonl(
                p,
                &JsonlOptions {
                    vocab_size,
                    k,
                    prompt_hash: None,
                },
            )
        } else {
            SketchCollection::open(p)
        };
        c.map(|c| SketchSet { inner: Arc::new(c) })
            .map_err(|e| js_error(&env, &e))
    }

    /// Writes the collection atomically: JSON lines for `.jsonl` / `.json` / `.ndjson`,
    /// the binary `.mpsk` format otherwise.
    #[napi]
    pub fn save(&self, env: Env, path: String) -> Result<()> {
        self.inner
            .save(Path::new(&path))
            .map_err(|e| js_error(&env, &e))
    }

    #[napi(getter)]
    pub fn count(&self) -> u32 {
        self.inner.len() as u32
    }
    #[napi(getter)]
    pub fn prompts(&self) -> u32 {
        self.inner.prompts() as u32
    }
    #[napi(getter)]
    pub fn vocab_size(&self) -> u32 {
        self.inner.vocab_size()
    }
    #[napi(getter)]
    pub fn k(&self) -> u32 {
        self.inner.k()
    }
    #[napi(getter)]
    pub fn prompt_hash(&self) -> String {
        self.inner.meta().prompt_hash_hex()
    }
    #[napi(getter)]
    pub fn model_ids(&self) -> Vec<String> {
        self.inner.models().to_vec()
    }
    /// 1 where the model failed (flagged, or without any id), else 0.
    #[napi(getter)]
    pub fn failed(&self) -> Uint8Array {
        Uint8Array::new(
            (0..self.inner.len())
                .map(|m| self.inner.is_failed(m) as u8)
                .collect(),
        )
    }
    /// True when the ids are memory-mapped from a `.mpsk` file.
    #[napi(getter)]
    pub fn mapped(&self) -> bool {
        self.inner.is_mapped()
    }
    /// Content fingerprint (32 hex digits): equal collections, equal fingerprints.
    #[napi(getter)]
    pub fn fingerprint(&self) -> String {
        self.inner
            .fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
    /// The set of model `model` for prompt `prompt`.
    #[napi]
    pub fn set(&self, env: Env, model: u32, prompt: u32) -> Result<Uint32Array> {
        if model as usize >= self.inner.len() || prompt as usize >= self.inner.prompts() {
            return Err(coded(
                &env,
                ErrorCode::Usage,
                format!("no set ({model}, {prompt})"),
            ));
        }
        Ok(Uint32Array::new(
            self.inner.set(model as usize, prompt as usize).to_vec(),
        ))
    }
}

/// How to compute.
#[napi(object)]
#[derive(Default)]
pub struct SimilarityOptions {
    /// Default "overlap".
    pub metric: Option<MetricName>,
    /// Default "auto": CUDA when available, else CPU.
    pub device: Option<DeviceRequest>,
    /// CPU threads (default: all cores).
    pub threads: Option<u32>,
    /// Default "auto".
    pub cpu_kernel: Option<CpuKernelName>,
    /// Write the result here inside the task (atomically): `.csv` / `.npy` for matrices,
    /// `.jsonl` for neighbours.
    pub out_path: Option<String>,
    /// Return the scores to JS (default true; set false with `outPath` for big results).
    pub return_scores: Option<bool>,
}

fn options(o: SimilarityOptions) -> (Options, Option<String>, bool) {
    let opts = Options {
        metric: o.metric.map_or(Metric::Overlap, Metric::from),
        device: o.device.map_or(Device::Auto, Device::from),
        threads: o.threads.map(|t| t as usize),
        cpu_kernel: o.cpu_kernel.map_or(CpuKernel::Auto, CpuKernel::from),
    };
    (opts, o.out_path, o.return_scores.unwrap_or(true))
}

/// A computed matrix (row-major `rows × cols` float32 scores).
#[napi(object)]
pub struct MatrixResult {
    pub rows: u32,
    pub cols: u32,
    /// Empty when `returnScores` was false.
    pub scores: Float32Array,
    /// e.g. "cpu (sliced-avx512, 8 threads)" or "cuda (NVIDIA H100, sm_90)".
    pub device: String,
    pub device_kind: DeviceKind,
    /// Compute time (file writing excluded).
    pub seconds: f64,
    /// The file written, if any.
    pub out_path: Option<String>,
}

/// Top-N neighbours: model i's are `index[offsets[i]..offsets[i+1]]` with `scores[…]`.
#[napi(object)]
pub struct NeighboursResult {
    pub offsets: Uint32Array,
    pub index: Uint32Array,
    pub scores: Float32Array,
    pub device: String,
    pub device_kind: DeviceKind,
    pub seconds: f64,
    pub out_path: Option<String>,
}

fn matrix_ext(path: &str) -> std::result::Result<&'static str, CoreError> {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Ok("csv"),
        "npy" => Ok("npy"),
        _ => Err(
            CoreError::usage(format!("{path}: a matrix is written as .csv or .npy"))
                .subject("outPath"),
        ),
    }
}

fn write_matrix(
    path: &str,
    rows: &[String],
    cols: &[String],
    m: &Matrix,
) -> std::result::Result<(), CoreError> {
    match matrix_ext(path)? {
        "csv" => output::write_matrix_csv(Path::new(path), rows, cols, m),
        _ => output::write_matrix_npy(Path::new(path), m),
    }
}

enum MatrixJob {
    Full(Arc<SketchCollection>),
    Rect(Arc<SketchCollection>, Arc<SketchCollection>),
}

pub struct MatrixTask {
    job: MatrixJob,
    opts: Options,
    out_path: Option<String>,
    return_scores: bool,
}

impl Compute for MatrixTask {
    type Output = MatrixResult;

    fn run(&self) -> std::result::Result<MatrixResult, CoreError> {
        let run = match &self.job {
            MatrixJob::Full(s) => sim::full_matrix(s, &self.opts),
            MatrixJob::Rect(q, r) => sim::rect_matrix(q, r, &self.opts),
        }?;
        if let Some(p) = &self.out_path {
            let (rows, cols) = match &self.job {
                MatrixJob::Full(s) => (s.models(), s.models()),
                MatrixJob::Rect(q, r) => (q.models(), r.models()),
            };
            write_matrix(p, rows, cols, &run.result)?;
        }
        let Matrix { rows, cols, data } = run.result;
        Ok(MatrixResult {
            rows: rows as u32,
            cols: cols as u32,
            scores: Float32Array::new(if self.return_scores { data } else { Vec::new() }),
            device: run.device.to_string(),
            device_kind: device_kind(&run.device),
            seconds: run.seconds,
            out_path: self.out_path.clone(),
        })
    }
}

fn matrix_task(
    env: &Env,
    job: MatrixJob,
    o: Option<SimilarityOptions>,
) -> Result<AsyncTask<CoreTask<MatrixTask>>> {
    let (opts, out_path, return_scores) = options(o.unwrap_or_default());
    if let Some(p) = &out_path {
        matrix_ext(p).map_err(|e| js_error(env, &e))?;
    }
    Ok(CoreTask::new(MatrixTask {
        job,
        opts,
        out_path,
        return_scores,
    }))
}

/// The full n × n matrix (`M[i][j]`: row model i anchored; diagonal 1; failed models -1).
#[napi(ts_return_type = "Promise<MatrixResult>")]
pub fn similarity_matrix(
    env: Env,
    sketches: &SketchSet,
    options: Option<SimilarityOptions>,
) -> Result<AsyncTask<CoreTask<MatrixTask>>> {
    matrix_task(&env, MatrixJob::Full(sketches.inner.clone()), options)
}

/// Per-prompt scores of model `b` of `other` against model `a` of this set (the anchor):
/// NaN where either set is missing. Their mean is what the engine reports for the pair.
#[napi]
pub fn prompt_scores(
    env: Env,
    anchor: &SketchSet,
    a: u32,
    other: &SketchSet,
    b: u32,
    metric: Option<MetricName>,
) -> Result<Float64Array> {
    let metric = metric.map_or(Metric::Overlap, Metric::from);
    let (x, y) = (&anchor.inner, &other.inner);
    if a as usize >= x.len() || b as usize >= y.len() || x.prompts() != y.prompts() {
        return Err(coded(
            &env,
            ErrorCode::Usage,
            format!("no pair ({a}, {b}) with the same prompts"),
        ));
    }
    Ok(Float64Array::new(sim::pair_prompt_scores(
        x, a as usize, y, b as usize, metric,
    )))
}

/// Writes a matrix as `.csv` (pandas layout, six decimals) or `.npy` (float32), atomically:
/// the one writer of matrix files.
#[napi]
pub fn write_matrix_file(
    env: Env,
    path: String,
    rows: Vec<String>,
    cols: Vec<String>,
    scores: Float32Array,
) -> Result<()> {
    let m = Matrix {
        rows: rows.len(),
        cols: cols.len(),
        data: scores.to_vec(),
    };
    write_matrix(&path, &rows, &cols, &m).map_err(|e| js_error(&env, &e))
}

/// Queries × references (`M[q][r]`, the query anchored; failed models -1).
#[napi(ts_return_type = "Promise<MatrixResult>")]
pub fn similarity_rect(
    env: Env,
    queries: &SketchSet,
    references: &SketchSet,
    options: Option<SimilarityOptions>,
) -> Result<AsyncTask<CoreTask<MatrixTask>>> {
    matrix_task(
        &env,
        MatrixJob::Rect(queries.inner.clone(), references.inner.clone()),
        options,
    )
}

pub struct TopTask {
    rows: Arc<SketchCollection>,
    refs: Option<Arc<SketchCollection>>,
    top: usize,
    opts: Options,
    out_path: Option<String>,
}

impl Compute for TopTask {
    type Output = NeighboursResult;

    fn run(&self) -> std::result::Result<NeighboursResult, CoreError> {
        let run = match &self.refs {
            None => sim::top_n(&self.rows, self.top, &self.opts),
            Some(r) => sim::rect_top_n(&self.rows, r, self.top, &self.opts),
        }?;
        if let Some(p) = &self.out_path {
            let cols = self.refs.as_ref().unwrap_or(&self.rows);
            let rows = &self.rows;
            output::write_neighbours_jsonl(
                Path::new(p),
                rows.models(),
                cols.models(),
                &run.result,
                &|i| rows.is_failed(i),
            )?;
        }
        let Neighbours {
            offsets,
            index,
            score,
        } = run.result;
        Ok(NeighboursResult {
            offsets: Uint32Array::new(offsets),
            index: Uint32Array::new(index),
            scores: Float32Array::new(score),
            device: run.device.to_string(),
            device_kind: device_kind(&run.device),
            seconds: run.seconds,
            out_path: self.out_path.clone(),
        })
    }
}

/// The `top` best other models of every model, streamed (no n × n matrix is held). With
/// `references`, the best references of every query. `outPath` (.jsonl) writes
/// `{"model", "neighbours": [{"model", "score"}…]}` lines.
#[napi(ts_return_type = "Promise<NeighboursResult>")]
pub fn similarity_top_n(
    sketches: &SketchSet,
    top: u32,
    references: Option<&SketchSet>,
    options: Option<SimilarityOptions>,
) -> Result<AsyncTask<CoreTask<TopTask>>> {
    let (opts, out_path, _) = self::options(options.unwrap_or_default());
    Ok(CoreTask::new(TopTask {
        rows: sketches.inner.clone(),
        refs: references.map(|r| r.inner.clone()),
        top: top as usize,
        opts,
        out_path,
    }))
}

/// A written shard part.
#[napi(object)]
pub struct ShardResult {
    pub shard_index: u32,
    pub shard_count: u32,
    /// Upper-triangle tiles (512 × 512 blocks) in this part.
    pub tiles: u32,
    pub n: u32,
    pub device: String,
    pub device_kind: DeviceKind,
    pub seconds: f64,
    pub out_path: String,
}

pub struct ShardTask {
    s: Arc<SketchCollection>,
    spec: ShardSpec,
    opts: Options,
    out_path: String,
}

impl Compute for ShardTask {
    type Output = ShardResult;

    fn run(&self) -> std::result::Result<ShardResult, CoreError> {
        let run = sim::shard(&self.s, self.spec, &self.opts)?;
        part::write_part(&run.result, Path::new(&self.out_path))?;
        Ok(ShardResult {
            shard_index: self.spec.index as u32,
            shard_count: self.spec.count as u32,
            tiles: run.result.tiles.len() as u32,
            n: self.s.len() as u32,
            device: run.device.to_string(),
            device_kind: device_kind(&run.device),
            seconds: run.seconds,
            out_path: self.out_path.clone(),
        })
    }
}

/// Computes shard `index` (0-based) of `count` of the full matrix and writes its part file
/// (atomically). `similarityMerge` combines the parts of all shards.
#[napi(ts_return_type = "Promise<ShardResult>")]
pub fn similarity_shard(
    env: Env,
    sketches: &SketchSet,
    index: u32,
    count: u32,
    out_path: String,
    options: Option<SimilarityOptions>,
) -> Result<AsyncTask<CoreTask<ShardTask>>> {
    let spec = ShardSpec::new(index as usize, count as usize)
        .map_err(|e| js_error(&env, &e.subject("shard")))?;
    let (opts, _, _) = self::options(options.unwrap_or_default());
    Ok(CoreTask::new(ShardTask {
        s: sketches.inner.clone(),
        spec,
        opts,
        out_path,
    }))
}

/// A merged matrix.
#[napi(object)]
pub struct MergeResult {
    pub model_ids: Vec<String>,
    pub n: u32,
    pub metric: MetricName,
    pub parts: u32,
    /// Empty when `returnScores` was false.
    pub scores: Float32Array,
    pub seconds: f64,
    pub out_path: Option<String>,
}

pub struct MergeTask {
    paths: Vec<PathBuf>,
    out_path: Option<String>,
    return_scores: bool,
}

impl Compute for MergeTask {
    type Output = MergeResult;

    fn run(&self) -> std::result::Result<MergeResult, CoreError> {
        let t0 = std::time::Instant::now();
        let (models, m, metric) = part::merge_files(&self.paths)?;
        if let Some(p) = &self.out_path {
            write_matrix(p, &models, &models, &m)?;
        }
        Ok(MergeResult {
            n: models.len() as u32,
            model_ids: models,
            metric: metric_name(metric),
            parts: self.paths.len() as u32,
            scores: Float32Array::new(if self.return_scores {
                m.data
            } else {
                Vec::new()
            }),
            seconds: t0.elapsed().as_secs_f64(),
            out_path: self.out_path.clone(),
        })
    }
}

/// Merges the part files of every shard into the full matrix; writes it to `outPath`
/// (.csv or .npy) when given.
#[napi(ts_return_type = "Promise<MergeResult>")]
pub fn similarity_merge(
    env: Env,
    parts: Vec<String>,
    out_path: Option<String>,
    return_scores: Option<bool>,
) -> Result<AsyncTask<CoreTask<MergeTask>>> {
    if let Some(p) = &out_path {
        matrix_ext(p).map_err(|e| js_error(&env, &e))?;
    }
    Ok(CoreTask::new(MergeTask {
        paths: parts.into_iter().map(PathBuf::from).collect(),
        out_path,
        return_scores: return_scores.unwrap_or(true),
    }))
}

/// Why CUDA cannot be used here, or null when it can.
#[napi]
pub fn cuda_unavailable_reason() -> Option<String> {
    sim::cuda_unavailable_reason()
}

/// The metric names the engine accepts (for CLI validation).
#[napi]
pub fn similarity_metrics() -> Vec<MetricName> {
    vec![MetricName::Overlap, MetricName::Jaccard]
}
