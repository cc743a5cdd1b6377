//! `similarityScanTopN`: a few queries against a big collection by one streaming pass
//! (modelprint_core::scan), for `modelprint identify`. A child module of `similarity` so it
//! reads `SketchSet`'s collection directly.

use std::sync::Arc;
use std::time::Instant;

use modelprint_core::scan::scan_top_n;
use modelprint_core::similarity::{Metric, Neighbours};
use modelprint_core::{Error as CoreError, SketchCollection};
use napi::bindgen_prelude::*;
use napi::{Env, Task};
use napi_derive::napi;

use super::{DeviceKind, MetricName, NeighboursResult, SketchSet};
use crate::error::Pending;

/// Options of [`similarity_scan_top_n`].
#[napi(object)]
#[derive(Default)]
pub struct ScanOptions {
    /// Default "overlap".
    pub metric: Option<MetricName>,
    /// CPU threads (default: all cores).
    pub threads: Option<u32>,
}

pub struct ScanTask {
    queries: Arc<SketchCollection>,
    refs: Arc<SketchCollection>,
    top: usize,
    metric: Metric,
    threads: Option<usize>,
    failed: Pending,
}

impl Task for ScanTask {
    type Output = (Neighbours, f64);
    type JsValue = NeighboursResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let t = Instant::now();
        scan_top_n(
            &self.queries,
            &self.refs,
            self.top,
            self.metric,
            self.threads,
        )
        .map(|r| (r, t.elapsed().as_secs_f64()))
        .map_err(|e: CoreError| self.failed.keep(e))
    }

    fn resolve(&mut self, _env: Env, (r, seconds): Self::Output) -> Result<Self::JsValue> {
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Ok(NeighboursResult {
            offsets: Uint32Array::new(r.offsets),
            index: Uint32Array::new(r.index),
            scores: Float32Array::new(r.score),
            device: format!("cpu (scan, {threads} threads)"),
            device_kind: DeviceKind::Cpu,
            seconds,
            out_path: None,
        })
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<Self::JsValue> {
        self.failed.reject(&env, err)
    }
}

/// The `top` best references of each of a few queries, by one streaming pass over the
/// references (bitsets of the query, one bit test per reference id): for `identify`'s
/// 1 × n query against a big, memory-mapped index, where the tiled engines of
/// `similarityTopN` pay a per-stripe table for a single row. Same scores and order as
/// `similarityTopN(queries, top, references)`.
#[napi(ts_return_type = "Promise<NeighboursResult>")]
pub fn similarity_scan_top_n(
    queries: &SketchSet,
    top: u32,
    references: &SketchSet,
    options: Option<ScanOptions>,
) -> AsyncTask<ScanTask> {
    let o = options.unwrap_or_default();
    AsyncTask::new(ScanTask {
        queries: queries.inner.clone(),
        refs: references.inner.clone(),
        top: top as usize,
        metric: o.metric.map_or(Metric::Overlap, Metric::from),
        threads: o.threads.map(|t| t as usize),
        failed: Pending::default(),
    })
}
