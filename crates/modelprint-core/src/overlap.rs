//! Set scores between bottom-k sets held as ascending, duplicate-free id lists.

/// `|A ∩ B|` of two ascending, duplicate-free lists (merge walk).
pub fn intersection_count_sorted(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

use crate::similarity::{prompt_score, Metric};

fn score(metric: Metric, a: &[u32], b: &[u32]) -> f64 {
    let c = intersection_count_sorted(a, b) as u32;
    prompt_score(metric, c, a.len() as u32, b.len() as u32)
}

/// Overlap ratio `|A ∩ B| / |A|` (A the reference set); 0 when A is empty.
/// Same arithmetic as the similarity engine ([`prompt_score`]).
pub fn overlap_ratio_sorted(a: &[u32], b: &[u32]) -> f64 {
    score(Metric::Overlap, a, b)
}

/// Jaccard `|A ∩ B| / |A ∪ B|`; 1 when both are empty.
pub fn jaccard_sorted(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    score(Metric::Jaccard, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_common_ids() {
        assert_eq!(
            intersection_count_sorted(&[1, 3, 5, 7], &[2, 3, 4, 7, 9]),
            2
        );
        assert_eq!(intersection_count_sorted(&[], &[1]), 0);
    }

    #[test]
    fn ratios() {
        assert_eq!(overlap_ratio_sorted(&[1, 2, 3, 4], &[3, 4, 5, 6]), 0.5);
        assert!((jaccard_sorted(&[1, 2, 3, 4], &[3, 4, 5, 6]) - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(overlap_ratio_sorted(&[], &[1]), 0.0);
        assert_eq!(jaccard_sorted(&[], &[]), 1.0);
    }
}
