#![cfg_attr(test, allow(dead_code))]
//! Binding of modelprint-linalg (row-major typed arrays in, typed arrays out).

use napi::bindgen_prelude::*;
use napi_derive::napi;

fn err(e: modelprint_linalg::LinalgError) -> Error {
    Error::new(Status::InvalidArg, e.0)
}

/// Moore–Penrose pseudo-inverse of a row-major `rows × cols` matrix (result `cols × rows`).
#[napi]
pub fn pinv(data: Float64Array, rows: u32, cols: u32) -> Result<Float64Array> {
    modelprint_linalg::pinv(&data, rows as usize, cols as usize)
        .map(Float64Array::new)
        .map_err(err)
}

/// Eigenvalues of a real square matrix, interleaved `[re0, im0, re1, im1, …]`.
#[napi]
pub fn eigenvalues(data: Float64Array, n: u32) -> Result<Float64Array> {
    let e = modelprint_linalg::eigenvalues(&data, n as usize).map_err(err)?;
    Ok(Float64Array::new(
        e.into_iter().flat_map(|(r, i)| [r, i]).collect(),
    ))
}

/// input_output fingerprint (METHODS §3) from V and U, each row-major `d × n`.
#[napi]
pub fn io_fingerprint(
    v: Float64Array,
    u: Float64Array,
    d: u32,
    n: u32,
    n0: u32,
) -> Result<Float64Array> {
    modelprint_linalg::io_fingerprint(&v, &u, d as usize, n as usize, n0 as usize)
        .map(Float64Array::new)
        .map_err(err)
}

/// The `s` largest singular values of a row-major `rows × cols` matrix, descending.
#[napi]
pub fn top_singular_values(
    data: Float32Array,
    rows: u32,
    cols: u32,
    s: u32,
) -> Result<Float64Array> {
    modelprint_linalg::top_singular_values(&data, rows as usize, cols as usize, s as usize, 0x5EED)
        .map(Float64Array::new)
        .map_err(err)
}
