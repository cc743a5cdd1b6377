//! The CUDA engine: the kernel of [`super::gpu_layout`] compiled at run time with NVRTC and
//! launched through the driver API. Both libraries are loaded dynamically (cudarc's
//! `dynamic-loading`), so this builds everywhere and reports "no CUDA" cleanly on machines
//! without a driver, a device or NVRTC.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};

use super::gpu_layout::{
    build_layout, run_batched, KernelArgs, Layout, TileExecutor, ENTRY, KERNEL_SRC, THREADS,
};
use super::{DeviceUsed, EmitFn, Engine, Job, SimilarityError};
use crate::error::Error;

pub struct CudaEngine {
    _ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    func: CudaFunction,
    name: String,
    cc: (i32, i32),
    free_bytes: usize,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "unknown panic".into()
    }
}

/// Runs CUDA calls, turning driver errors and cudarc's panics (a library or a symbol that
/// cannot be loaded) into messages.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(p) => Err(format!("{what}: {}", panic_message(p))),
    }
}

impl CudaEngine {
    /// Loads the driver and NVRTC, opens device 0 and compiles the kernel.
    pub fn new() -> Result<Self, String> {
        if std::env::var_os("MODELPRINT_DISABLE_CUDA").is_some_and(|v| !v.is_empty() && v != "0") {
            return Err("CUDA is disabled by MODELPRINT_DISABLE_CUDA".into());
        }
        // SAFETY: only tries to dlopen the libraries.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(
                "no CUDA driver: libcuda.so could not be loaded (no NVIDIA driver on this machine)"
                    .into(),
            );
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(
                "the CUDA driver is present but NVRTC (libnvrtc.so, CUDA 12) could not be loaded; install the CUDA runtime compiler or put it on LD_LIBRARY_PATH"
                    .into(),
            );
        }
        guarded("CUDA initialisation failed", || {
            let count = CudaContext::device_count().map_err(|e| e.to_string())?;
            if count < 1 {
                return Err("no CUDA device found".into());
            }
            let ctx = CudaContext::new(0).map_err(|e| e.to_string())?;
            let name = ctx.name().map_err(|e| e.to_string())?;
            let cc = ctx.compute_capability().map_err(|e| e.to_string())?;
            let free_bytes = ctx.mem_get_info().map_err(|e| e.to_string())?.0;
            let opts = CompileOptions {
                fmad: Some(false),
                prec_div: Some(true),
                name: Some("modelprint_similarity.cu".into()),
                ..Default::default()
            };
            let ptx = compile_ptx_with_opts(KERNEL_SRC, opts).map_err(|e| format!("NVRTC: {e}"))?;
            let module = ctx.load_module(ptx).map_err(|e| e.to_string())?;
            let func = module
                .load_function("mp_tiles")
                .map_err(|e| e.to_string())?;
            let stream = ctx.default_stream();
            Ok(CudaEngine {
                _ctx: ctx,
                stream,
                func,
                name,
                cc,
                free_bytes,
            })
        })
    }
}

struct DeviceSide {
    bits: CudaSlice<u32>,
    off: CudaSlice<u64>,
    len: CudaSlice<u32>,
    pad: u32,
}

struct DeviceExec<'a> {
    eng: &'a CudaEngine,
    rows: DeviceSide,
    cols: Option<DeviceSide>,
    words: CudaSlice<u32>,
    args: KernelArgs,
}

/// Copies `v` to the device; an empty buffer is one zero (it still needs a valid allocation).
fn htod<T: DeviceRepr + Default>(
    stream: &Arc<CudaStream>,
    v: &[T],
) -> Result<CudaSlice<T>, String> {
    let zero = [T::default()];
    let src = if v.is_empty() { &zero[..] } else { v };
    stream.clone_htod(src).map_err(|e| e.to_string())
}

fn upload(stream: &Arc<CudaStream>, s: &super::gpu_layout::Side) -> Result<DeviceSide, String> {
    Ok(DeviceSide {
        bits: htod(stream, &s.bits)?,
        off: htod(stream, &s.off)?,
        len: htod(stream, &s.len)?,
        pad: s.pad as u32,
    })
}

impl TileExecutor for DeviceExec<'_> {
    fn execute(&mut self, entries: &[u32], out_len: usize) -> Result<Vec<f32>, SimilarityError> {
        let stream = &self.eng.stream;
        let dev = |e: String| Error::device(format!("CUDA kernel failed: {e}"));
        guarded("CUDA", || {
            let d_entries = stream.clone_htod(entries).map_err(|e| e.to_string())?;
            let mut d_out = stream
                .alloc_zeros::<f32>(out_len.max(1))
                .map_err(|e| e.to_string())?;
            let prompts = self.args.prompts as u32;
            let metric_i = self.args.metric.code() as i32;
            let lower_i = self.args.lower as i32;
            let cols = self.cols.as_ref().unwrap_or(&self.rows);
            let blocks = (entries.len() / ENTRY) as u32;
            let mut b = stream.launch_builder(&self.eng.func);
            b.arg(&self.rows.bits)
                .arg(&self.rows.off)
                .arg(&self.rows.len)
                .arg(&self.rows.pad)
                .arg(&cols.bits)
                .arg(&cols.off)
                .arg(&cols.len)
                .arg(&cols.pad)
                .arg(&self.words)
                .arg(&prompts)
                .arg(&d_entries)
                .arg(&metric_i)
                .arg(&lower_i)
                .arg(&mut d_out);
            let cfg = LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (THREADS as u32, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the argument list matches the kernel signature in KERNEL_SRC, every
            // tile reads inside the uploaded buffers (pads are multiples of the tile) and
            // writes inside `out` (offsets from run_batched).
            unsafe { b.launch(cfg) }.map_err(|e| e.to_string())?;
            let mut out = stream.clone_dtoh(&d_out).map_err(|e| e.to_string())?;
            stream.synchronize().map_err(|e| e.to_string())?;
            out.truncate(out_len);
            Ok(out)
        })
        .map_err(dev)
    }
}

impl Engine for CudaEngine {
    fn run(&mut self, job: &Job, emit: &mut EmitFn) -> Result<(), SimilarityError> {
        let layout: Layout = build_layout(job);
        let need = layout.device_bytes();
        if need + (64 << 20) > self.free_bytes {
            return Err(Error::device(format!(
                "the sketches need {:.1} GiB of GPU memory as bitsets but {} has {:.1} GiB free; use --device cpu",
                need as f64 / (1u64 << 30) as f64,
                self.name,
                self.free_bytes as f64 / (1u64 << 30) as f64
            )));
        }
        let stream = self.stream.clone();
        let mut exec = guarded("CUDA upload", || {
            Ok(DeviceExec {
                eng: self,
                rows: upload(&stream, &layout.rows)?,
                cols: match &layout.cols {
                    Some(c) => Some(upload(&stream, c)?),
                    None => None,
                },
                words: htod(&stream, &layout.words)?,
                args: KernelArgs::of(job),
            })
        })
        .map_err(Error::device)?;
        drop(layout);
        // Output batches: up to a quarter of what is left, at most 2 GiB.
        let budget = ((self.free_bytes.saturating_sub(need)) / 4).clamp(64 << 20, 2 << 30);
        run_batched(&mut exec, job, budget, emit)
    }

    fn device(&self) -> DeviceUsed {
        DeviceUsed::Cuda {
            name: self.name.clone(),
            compute_capability: self.cc,
        }
    }
}
