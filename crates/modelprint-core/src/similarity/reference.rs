//! Straightforward reference implementations: the definition, pair by pair. Used by tests
//! (every engine must match them bit for bit) and by the benchmark as the naive baseline.

use std::collections::HashSet;

use super::{finish_score, prompt_score, rescale, Matrix, Metric, Neighbours};
use crate::overlap::intersection_count_sorted;
use crate::sketch::SketchCollection;

/// Score of row model `i` of `a` against model `j` of `b` (anchor: `i`), counting each
/// prompt's intersection with `count` ([`sorted_count`] or [`hashset_count`]).
pub fn pair_score_by(
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

/// `|x ∩ y|` of ascending sets by sorted merge.
pub fn sorted_count(x: &[u32], y: &[u32]) -> u32 {
    intersection_count_sorted(x, y) as u32
}

/// `|x ∩ y|` like the published Python: a hash set per set.
pub fn hashset_count(x: &[u32], y: &[u32]) -> u32 {
    let hx: HashSet<u32> = x.iter().copied().collect();
    let hy: HashSet<u32> = y.iter().copied().collect();
    hx.intersection(&hy).count() as u32
}

/// Score of row model `i` of `a` against model `j` of `b` (anchor: `i`), by sorted merge.
pub fn pair_score(
    a: &SketchCollection,
    i: usize,
    b: &SketchCollection,
    j: usize,
    metric: Metric,
) -> f32 {
    pair_score_by(a, i, b, j, metric, sorted_count)
}

/// Prompts where row `i` (inside its anchor range) and column `j` both have a set.
pub fn common_prompts(a: &SketchCollection, i: usize, b: &SketchCollection, j: usize) -> usize {
    (0..a.prompts())
        .filter(|&q| a.anchors_prompt(i, q) && !a.set(i, q).is_empty() && !b.set(j, q).is_empty())
        .count()
}

/// The `rows × cols` matrix of `score(i, j)`, entry by entry.
fn by_pairs(rows: usize, cols: usize, score: impl Fn(usize, usize) -> f32) -> Matrix {
    let data = (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| score(i, j))
        .collect();
    Matrix { rows, cols, data }
}

/// The full matrix, pair by pair (diagonal 1, failed models -1).
pub fn full_matrix(s: &SketchCollection, metric: Metric) -> Matrix {
    by_pairs(s.len(), s.len(), |i, j| {
        if s.is_failed(i) || s.is_failed(j) {
            -1.0
        } else if i == j {
            1.0
        } else {
            pair_score(s, i, s, j, metric)
        }
    })
}

/// Queries × references, pair by pair (failed models -1).
pub fn rect_matrix(q: &SketchCollection, r: &SketchCollection, metric: Metric) -> Matrix {
    by_pairs(q.len(), r.len(), |i, j| {
        if q.is_failed(i) || r.is_failed(j) {
            -1.0
        } else {
            pair_score(q, i, r, j, metric)
        }
    })
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
    Neighbours::from_lists((0..m.rows).map(|i| {
        let mut row: Vec<(f32, u32)> = if row_failed(i) {
            Vec::new()
        } else {
            (0..m.cols)
                .filter(|&j| (!skip_diagonal || j != i) && !col_failed(j))
                .map(|j| (m.get(i, j), j as u32))
                .collect()
        };
        row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        row.truncate(top);
        row
    }))
}

pub fn top_n(s: &SketchCollection, top: usize, metric: Metric) -> Neighbours {
    let m = full_matrix(s, metric);
    top_n_of(&m, top, true, &|i| s.is_failed(i), &|j| s.is_failed(j))
}
