//! Bottom-k selection: the `k` indices of the lowest values of a row.
//!
//! Order of the result: ascending by value, ties broken by the lower index first
//! (METHODS §1.3). NaN or infinite values are an error, never a silent result.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BottomKError {
    /// A value that is NaN or ±inf, at (row, column).
    NonFinite { row: usize, col: usize },
    /// `data.len()` is not a multiple of the row width.
    Shape { len: usize, width: usize },
}

impl fmt::Display for BottomKError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BottomKError::NonFinite { row, col } => {
                write!(
                    f,
                    "non-finite logit (NaN or infinity) at row {row}, token id {col}"
                )
            }
            BottomKError::Shape { len, width } => {
                write!(
                    f,
                    "buffer of {len} values is not a whole number of rows of width {width}"
                )
            }
        }
    }
}

impl std::error::Error for BottomKError {}

impl From<BottomKError> for crate::Error {
    fn from(e: BottomKError) -> Self {
        crate::Error::input(e.to_string())
    }
}

#[inline]
fn key_cmp(values: &[f32], a: u32, b: u32) -> Ordering {
    // Finite values only (checked before), so partial_cmp never fails.
    match values[a as usize].partial_cmp(&values[b as usize]) {
        Some(Ordering::Equal) | None => a.cmp(&b),
        Some(o) => o,
    }
}

/// The `k` indices of the lowest values of `values`, ascending by (value, index).
/// `k` is clipped to `values.len()`.
pub fn bottom_k(values: &[f32], k: usize) -> Result<Vec<u32>, crate::Error> {
    let mut scratch = Vec::new();
    bottom_k_into(values, k, 0, &mut scratch)
}

/// Same as [`bottom_k`] with a caller-provided scratch buffer (reused across rows).
pub fn bottom_k_into(
    values: &[f32],
    k: usize,
    row: usize,
    scratch: &mut Vec<u32>,
) -> Result<Vec<u32>, crate::Error> {
    if let Some(col) = values.iter().position(|v| !v.is_finite()) {
        return Err(BottomKError::NonFinite { row, col }.into());
    }
    let n = values.len();
    let k = k.min(n);
    if k == 0 {
        return Ok(Vec::new());
    }
    // Pre-filter: a threshold from a cheap pass keeps only candidates, then an exact
    // selection on the candidates. For k ≪ n this touches each value once.
    scratch.clear();
    scratch.extend(0..n as u32);
    if k < n {
        scratch.select_nth_unstable_by(k - 1, |&a, &b| key_cmp(values, a, b));
        scratch.truncate(k);
    }
    scratch.sort_unstable_by(|&a, &b| key_cmp(values, a, b));
    Ok(scratch.clone())
}

/// Bottom-k of each row of a row-major `rows × width` buffer.
pub fn bottom_k_rows(data: &[f32], width: usize, k: usize) -> Result<Vec<Vec<u32>>, crate::Error> {
    if width == 0 || !data.len().is_multiple_of(width) {
        return Err(BottomKError::Shape {
            len: data.len(),
            width,
        }
        .into());
    }
    let mut scratch = Vec::with_capacity(width);
    data.chunks_exact(width)
        .enumerate()
        .map(|(row, values)| bottom_k_into(values, k, row, &mut scratch))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[f32], k: usize) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..values.len() as u32).collect();
        idx.sort_by(|&a, &b| {
            values[a as usize]
                .partial_cmp(&values[b as usize])
                .unwrap()
                .then(a.cmp(&b))
        });
        idx.truncate(k.min(values.len()));
        idx
    }

    #[test]
    fn picks_lowest_values_in_order() {
        let v = [3.0, -1.0, 2.0, -5.0, 0.5];
        assert_eq!(bottom_k(&v, 3).unwrap(), vec![3, 1, 4]);
    }

    #[test]
    fn ties_go_to_lower_index() {
        let v = [1.0, 0.0, 0.0, 0.0, 2.0];
        assert_eq!(bottom_k(&v, 2).unwrap(), vec![1, 2]);
        assert_eq!(bottom_k(&v, 4).unwrap(), vec![1, 2, 3, 0]);
    }

    #[test]
    fn k_larger_than_row_is_clipped() {
        let v = [2.0, 1.0];
        assert_eq!(bottom_k(&v, 10).unwrap(), vec![1, 0]);
        assert!(bottom_k(&v, 0).unwrap().is_empty());
        assert!(bottom_k(&[], 3).unwrap().is_empty());
    }

    #[test]
    fn non_finite_is_an_error() {
        let v = [1.0, f32::NAN, 0.0];
        assert_eq!(
            bottom_k(&v, 1),
            Err(BottomKError::NonFinite { row: 0, col: 1 }.into())
        );
        let rows = [0.0, 1.0, f32::INFINITY, 2.0];
        assert_eq!(
            bottom_k_rows(&rows, 2, 1),
            Err(BottomKError::NonFinite { row: 1, col: 0 }.into())
        );
    }

    #[test]
    fn rows_shape_is_checked() {
        let e = bottom_k_rows(&[1.0; 5], 2, 1).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::Input);
        assert_eq!(
            e.message,
            BottomKError::Shape { len: 5, width: 2 }.to_string()
        );
    }

    #[test]
    fn agrees_with_naive_sort_on_random_rows() {
        // xorshift; values drawn from a small range so ties are frequent.
        let mut s: u64 = 0x9E3779B97F4A7C15;
        for trial in 0..200 {
            let n = 1 + (trial * 37) % 500;
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s % 64) as f32) / 8.0 - 4.0
                })
                .collect();
            for k in [1usize, 2, 7, n / 2, n, n + 3] {
                assert_eq!(
                    bottom_k(&values, k).unwrap(),
                    naive(&values, k),
                    "n={n} k={k}"
                );
            }
        }
    }
}
