//! Thin napi-rs binding: converts between JS typed arrays and the core crates.
//! No algorithm lives here.

mod error;
mod linalg;
mod similarity;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

/// A core error (or one convertible into it) → a JS Error with `code`, `subject`, `hint`.
fn to_napi<E: Into<modelprint_core::Error>>(env: &Env) -> impl Fn(E) -> Error + '_ {
    move |e| error::js_error(env, &e.into())
}

/// Every `code` the addon's errors can carry (modelprint_core::ErrorCode), e.g. "E_INPUT".
#[napi]
pub fn error_codes() -> Vec<String> {
    modelprint_core::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect()
}

/// The `k` ids with the lowest values of a logits row, ascending by (value, id).
#[napi]
pub fn bottom_k(env: Env, values: Float32Array, k: u32) -> Result<Uint32Array> {
    modelprint_core::bottom_k(&values, k as usize)
        .map(Uint32Array::new)
        .map_err(to_napi(&env))
}

/// Bottom-k of every row of a row-major `rows × width` buffer, concatenated
/// (each row contributes `min(k, width)` ids).
#[napi]
pub fn bottom_k_rows(env: Env, data: Float32Array, width: u32, k: u32) -> Result<Uint32Array> {
    let rows =
        modelprint_core::bottom_k_rows(&data, width as usize, k as usize).map_err(to_napi(&env))?;
    Ok(Uint32Array::new(rows.concat()))
}

/// Like `bottomKRows`, but each row's ids are returned in ascending id order (the
/// form set overlap works on).
#[napi]
pub fn bottom_k_rows_sorted(
    env: Env,
    data: Float32Array,
    width: u32,
    k: u32,
) -> Result<Uint32Array> {
    let mut rows =
        modelprint_core::bottom_k_rows(&data, width as usize, k as usize).map_err(to_napi(&env))?;
    for r in rows.iter_mut() {
        r.sort_unstable();
    }
    Ok(Uint32Array::new(rows.concat()))
}

/// `|A ∩ B| / |A|` of two ascending id lists.
#[napi]
pub fn overlap_ratio(a: Uint32Array, b: Uint32Array) -> f64 {
    modelprint_core::overlap_ratio_sorted(&a, &b)
}

/// `|A ∩ B| / |A ∪ B|` of two ascending id lists.
#[napi]
pub fn jaccard(a: Uint32Array, b: Uint32Array) -> f64 {
    modelprint_core::jaccard_sorted(&a, &b)
}

/// §2 text metrics of two normalised texts.
#[napi(object)]
pub struct TextMetrics {
    /// PAL_k: agreement of the first k characters.
    pub pal_k: f64,
    /// Levenshtein similarity.
    pub lev_sim: f64,
    /// Longest-common-subsequence ratio.
    pub lcs_ratio: f64,
    /// The combined score.
    pub score: f64,
}

/// §2 text metrics of two normalised texts.
#[napi]
pub fn text_metrics(a: String, b: String, k_prefix: u32) -> TextMetrics {
    let (pal_k, lev_sim, lcs_ratio, score) =
        modelprint_text::compare::text_metrics(&a, &b, k_prefix as usize);
    TextMetrics {
        pal_k,
        lev_sim,
        lcs_ratio,
        score,
    }
}

/// A Hugging Face tokenizer loaded from tokenizer.json.
#[napi]
pub struct Tokenizer {
    inner: modelprint_text::Tokenizer,
}

#[napi]
impl Tokenizer {
    #[napi(factory)]
    pub fn from_file(env: Env, path: String) -> Result<Self> {
        modelprint_text::Tokenizer::from_file(std::path::Path::new(&path))
            .map(|inner| Tokenizer { inner })
            .map_err(to_napi(&env))
    }

    #[napi]
    pub fn encode(&self, env: Env, text: String, add_special_tokens: bool) -> Result<Uint32Array> {
        self.inner
            .encode(&text, add_special_tokens)
            .map(Uint32Array::new)
            .map_err(to_napi(&env))
    }

    #[napi]
    pub fn decode(&self, env: Env, ids: Uint32Array, skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(&ids, skip_special_tokens)
            .map_err(to_napi(&env))
    }

    #[napi(getter)]
    pub fn vocab_size(&self) -> u32 {
        self.inner.vocab_size() as u32
    }

    #[napi]
    pub fn special_token_ids(&self) -> Uint32Array {
        Uint32Array::new(self.inner.special_token_ids())
    }

    #[napi]
    pub fn token_to_id(&self, token: String) -> Option<u32> {
        self.inner.token_to_id(&token)
    }

    #[napi]
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}
