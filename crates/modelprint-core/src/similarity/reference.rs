//! Straightforward reference implementations: the definition, pair by pair. Used by tests
//! (every engine must match them bit for bit) and by the benchmark as the naive baseline.

use std::collections::HashSet;

use super::{finish_score, prompt_score, rescale, Matrix, Metric, Neighbours};
use crate::overlap::intersection_count_sorted;
use crate::sketch::SketchCollection;

/// Score of row model `i` of `a` against model `j` of `b` (anchor: `i`), counting each
/// prompt's intersection with `count`.
fn pair_score_with(
    a: &SketchCollection,
    i: usize,
    b: &SketchCollection,
    j: usize,
    metric: Metric,
    count: impl Fn(&[u32], &[u32]) -> u32,
) -> f32 {
    let p = a.prompts();
    let mut sum = 0f64;
    for q in 0..p {
        let x: &[u32] = if a.anchors_prompt(i, q) {
            a.set(i, q)
        } else {
            &[]
        };
        let y = b.set(j, q);
        sum += prompt_score(metric, count(x, y), x.len() as u32, y.len() as u32);
    }
    rescale(finish_score(sum, p), p, common_prompts(a, i, b, j))
}

/// Score of row model `i` of `a` against model `j` of `b` (anchor: `i`), by sorted merge.
pub fn pair_score(
    a: &SketchCollection,
    i: usize,
    b: &SketchCollection,
    j: usize,
    metric: Metric,
) -> f32 {
    pair_score_with(a, i, b, j, metric, |x, y| {
        intersection_count_sorted(x, y) as u32
    })
}

/// Like the published Python: a hash set per pair and prompt.
pub fn pair_score_hashset(
    a: &SketchCollection,
    i: usize,
    b: &SketchCollection,
    j: usize,
    metric: Metric,
) -> f32 {
    pair_score_with(a, i, b, j, metric, |x, y| {
        let hx: HashSet<u32> = x.iter().copied().collect();
        let hy: HashSet<u32> = y.iter().copied().collect();
        hx.intersection(&hy).count() as u32
    })
}

/// Prompts where row `i` (inside its anchor range) and column `j` both have a set.
pub fn common_prompts(a: &SketchCollection, i: usize, b: &SketchCollection, j: usize) -> usize {
    (0..a.prompts())
        .filter(|&q| a.anchors_prompt(i, q) && !a.set(i, q).is_empty() && !b.set(j, q).is_empty())
        .count()
}

/// The full matrix, pair by pair (diagonal 1, failed models -1).
pub fn full_matrix(s: &SketchCollection, metric: Metric) -> Matrix {
    let n = s.len();
    let mut data = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            data[i * n + j] = if s.is_failed(i) || s.is_failed(j) {
                -1.0
            } else if i == j {
                1.0
            } else {
                pair_score(s, i, s, j, metric)
            };
        }
    }
    Matrix {
        rows: n,
        cols: n,
        data,
    }
}

/// Queries × references, pair by pair (failed models -1).
pub fn rect_matrix(q: &SketchCollection, r: &SketchCollection, metric: Metric) -> Matrix {
    let (nq, nr) = (q.len(), r.len());
    let mut data = vec![0f32; nq * nr];
    for i in 0..nq {
        for j in 0..nr {
            data[i * nr + j] = if q.is_failed(i) || r.is_failed(j) {
                -1.0
            } else {
                pair_score(q, i, r, j, metric)
            };
        }
    }
    Matrix {
        rows: nq,
        cols: nr,
        data,
    }
}

/// Top-N of every row of a matrix: skip the diagonal (when `skip_diagonal`) and -1 entries
/// of failed models; best score first, ties by lower index.
pub fn top_n_of(
    m: &Matrix,
    top: usize,
    skip_diagonal: bool,
    row_failed: &dyn Fn(usize) -> bool,
    col_failed: &dyn Fn(usize) -> bool,
) -> Neighbours {
    let mut offsets = vec![0u32];
    let mut index = Vec::new();
    let mut score = Vec::new();
    for i in 0..m.rows {
        if !row_failed(i) {
            let mut row: Vec<(f32, u32)> = (0..m.cols)
                .filter(|&j| (!skip_diagonal || j != i) && !col_failed(j))
                .map(|j| (m.get(i, j), j as u32))
                .collect();
            row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (s, j) in row.into_iter().take(top) {
                index.push(j);
                score.push(s);
            }
        }
        offsets.push(index.len() as u32);
    }
    Neighbours {
        offsets,
        index,
        score,
    }
}

pub fn top_n(s: &SketchCollection, top: usize, metric: Metric) -> Neighbours {
    let m = full_matrix(s, metric);
    top_n_of(&m, top, true, &|i| s.is_failed(i), &|j| s.is_failed(j))
}
