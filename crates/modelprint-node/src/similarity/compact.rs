//! The compact index (`.mpsk` version 3) for JS: open it memory-mapped, write one from a
//! `SketchSet`, and run the two-stage engines (modelprint_core::similarity::sampled): the
//! all-pairs top-N (`compactTopN`) and `identify`'s query (`compactQueryTopN`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use modelprint_core::similarity::output;
use modelprint_core::similarity::sampled::{sampled_query, sampled_top_n, SampledOptions};
use modelprint_core::similarity::{Metric, Neighbours};
use modelprint_core::sketch::compact::{self, threshold_for_rate, CompactIndex};
use modelprint_core::{Error as CoreError, SketchCollection};
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use super::{DeviceKind, MetricName, NeighboursResult, SketchSet};
use crate::error::{js_error, Compute, CoreTask};

/// A compact sketch index (`.mpsk` version 3), memory-mapped: delta-coded ids, a hashed
/// sample for candidate search, per-model checksums.
#[napi]
pub struct CompactSketchIndex {
    inner: Arc<CompactIndex>,
}

#[napi]
impl CompactSketchIndex {
    /// Opens (maps) a compact index; checks its header, tables and sample.
    #[napi(factory)]
    pub fn open(env: Env, path: String) -> Result<Self> {
        CompactIndex::open(Path::new(&path))
            .map(|c| CompactSketchIndex { inner: Arc::new(c) })
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
        self.inner.meta().k
    }
    #[napi(getter)]
    pub fn prompt_hash(&self) -> String {
        self.inner.meta().prompt_hash_hex()
    }
    #[napi(getter)]
    pub fn model_ids(&self) -> Vec<String> {
        self.inner.models().to_vec()
    }
    /// The fraction of (prompt, id) pairs in the sample.
    #[napi(getter)]
    pub fn sample_rate(&self) -> f64 {
        self.inner.sample_rate()
    }
    /// 1 per failed model.
    #[napi(getter)]
    pub fn failed(&self) -> Uint8Array {
        Uint8Array::new(
            (0..self.inner.len())
                .map(|m| self.inner.is_failed(m) as u8)
                .collect(),
        )
    }
}

/// True when the file is a compact index (`.mpsk` version 3).
#[napi]
pub fn is_compact_sketch_file(path: String) -> bool {
    modelprint_core::sketch::binary::file_is_compact(Path::new(&path))
}

/// Writes `sketches` as a compact index (atomically); `sampleRate` default 1/128.
#[napi]
pub fn save_compact(
    env: Env,
    sketches: &SketchSet,
    path: String,
    sample_rate: Option<f64>,
) -> Result<()> {
    let r = (|| {
        let t = match sample_rate {
            Some(r) => threshold_for_rate(r)?,
            None => compact::DEFAULT_SAMPLE_THRESHOLD,
        };
        compact::write_compact(&sketches.inner, Path::new(&path), t)
    })();
    r.map_err(|e| js_error(&env, &e))
}

/// Options of the two-stage engines.
#[napi(object)]
#[derive(Default)]
pub struct CompactOptions {
    /// Default "overlap".
    pub metric: Option<MetricName>,
    /// CPU threads (default: all cores).
    pub threads: Option<u32>,
    /// Candidates rescored exactly per model (default 64 for all pairs, 1000 for a query;
    /// at least `top`). The count of models − 1 makes the result exact.
    pub candidates: Option<u32>,
    /// All pairs only: write `{"model", "neighbours"}` lines here (.jsonl) inside the task.
    pub out_path: Option<String>,
}

fn sampled_options(o: CompactOptions, top: usize, default_candidates: usize) -> SampledOptions {
    SampledOptions {
        top,
        candidates: o.candidates.map_or(default_candidates, |c| c as usize),
        metric: o.metric.map_or(Metric::Overlap, Metric::from),
        threads: o.threads.map(|t| t as usize),
        verify: true,
    }
}

fn result(
    r: Neighbours,
    seconds: f64,
    opts: &SampledOptions,
    out_path: Option<String>,
) -> NeighboursResult {
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    NeighboursResult {
        offsets: Uint32Array::new(r.offsets),
        index: Uint32Array::new(r.index),
        scores: Float32Array::new(r.score),
        device: format!(
            "cpu (sampled candidates + exact rescore of {}, {threads} threads)",
            opts.candidates
        ),
        device_kind: DeviceKind::Cpu,
        seconds,
        out_path,
    }
}

pub struct CompactTopTask {
    index: Arc<CompactIndex>,
    opts: SampledOptions,
    out_path: Option<String>,
}

impl Compute for CompactTopTask {
    type Output = NeighboursResult;
    fn run(&self) -> std::result::Result<NeighboursResult, CoreError> {
        let t = Instant::now();
        let (r, _) = sampled_top_n(&self.index, &self.opts)?;
        if let Some(p) = &self.out_path {
            let ix = &self.index;
            output::write_neighbours_jsonl(Path::new(p), ix.models(), ix.models(), &r, &|i| {
                ix.is_failed(i)
            })?;
        }
        Ok(result(
            r,
            t.elapsed().as_secs_f64(),
            &self.opts,
            self.out_path.clone(),
        ))
    }
}

/// All-pairs top-N of a compact index in two stages: candidates by sample count, then an
/// exact rescore of each model's `candidates` best (never an n × n matrix).
#[napi(ts_return_type = "Promise<NeighboursResult>")]
pub fn compact_top_n(
    index: &CompactSketchIndex,
    top: u32,
    options: Option<CompactOptions>,
) -> Result<AsyncTask<CoreTask<CompactTopTask>>> {
    let mut o = options.unwrap_or_default();
    let out_path = o.out_path.take();
    Ok(CoreTask::new(CompactTopTask {
        index: index.inner.clone(),
        opts: sampled_options(o, top as usize, 64),
        out_path,
    }))
}

pub struct CompactQueryTask {
    index: Arc<CompactIndex>,
    queries: Arc<SketchCollection>,
    opts: SampledOptions,
}

impl Compute for CompactQueryTask {
    type Output = NeighboursResult;
    fn run(&self) -> std::result::Result<NeighboursResult, CoreError> {
        let t = Instant::now();
        let lists = (0..self.queries.len())
            .map(|q| sampled_query(&self.index, &self.queries, q, &self.opts).map(|r| r.0))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(result(
            Neighbours::from_lists(lists),
            t.elapsed().as_secs_f64(),
            &self.opts,
            None,
        ))
    }
}

/// The `top` nearest models of the index to each query model: the index's sample scanned for
/// the `candidates` best (default 1000), which are rescored exactly (the query anchored, as
/// `similarityScanTopN`).
#[napi(ts_return_type = "Promise<NeighboursResult>")]
pub fn compact_query_top_n(
    queries: &SketchSet,
    top: u32,
    index: &CompactSketchIndex,
    options: Option<CompactOptions>,
) -> Result<AsyncTask<CoreTask<CompactQueryTask>>> {
    let o = options.unwrap_or_default();
    Ok(CoreTask::new(CompactQueryTask {
        index: index.inner.clone(),
        queries: queries.inner.clone(),
        opts: sampled_options(o, top as usize, 1000),
    }))
}
