#![cfg_attr(test, allow(dead_code))]
//! Binding of modelprint-linalg (row-major typed arrays in, typed arrays out).

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::error::js_error;

/// Moore–Penrose pseudo-inverse of a row-major `rows × cols` matrix (result `cols × rows`).
#[napi]
pub fn pinv(env: Env, data: Float64Array, rows: u32, cols: u32) -> Result<Float64Array> {
    modelprint_linalg::pinv(&data, rows as usize, cols as usize)
        .map(Float64Array::new)
        .map_err(|e| js_error(&env, &e))
}

/// Eigenvalues of a real square matrix, interleaved `[re0, im0, re1, im1, …]`.
#[napi]
pub fn eigenvalues(env: Env, data: Float64Array, n: u32) -> Result<Float64Array> {
    let e = modelprint_linalg::eigenvalues(&data, n as usize).map_err(|e| js_error(&env, &e))?;
    Ok(Float64Array::new(
        e.into_iter().flat_map(|(r, i)| [r, i]).collect(),
    ))
}

/// input_output fingerprint (METHODS §3) from V and U, each row-major `d × n`.
#[napi]
pub fn io_fingerprint(
    env: Env,
    v: Float64Array,
    u: Float64Array,
    d: u32,
    n: u32,
    n0: u32,
) -> Result<Float64Array> {
    modelprint_linalg::io_fingerprint(&v, &u, d as usize, n as usize, n0 as usize)
        .map(Float64Array::new)
        .map_err(|e| js_error(&env, &e))
}

/// The `s` largest singular values of a row-major `rows × cols` matrix, descending.
#[napi]
pub fn top_singular_values(
    env: Env,
    data: Float32Array,
    rows: u32,
    cols: u32,
    s: u32,
) -> Result<Float64Array> {
    modelprint_linalg::top_singular_values(&data, rows as usize, cols as usize, s as usize, 0x5EED)
        .map(Float64Array::new)
        .map_err(|e| js_error(&env, &e))
}
