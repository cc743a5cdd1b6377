//! Text comparison for the constrained-text method (METHODS §2).

/// Lowercase and collapse runs of whitespace to one space, trimmed.
pub fn normalize(s: &str) -> String {
    s.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Levenshtein distance over Unicode scalar values.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.is_empty() {
        return b.len();
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Length of a longest common subsequence, over Unicode scalar values.
pub fn lcs_len(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for ca in &a {
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = if ca == cb {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The §2 metrics of two texts (already normalised): (pal_k, lev_sim, lcs_ratio, score).
pub fn text_metrics(a: &str, b: &str, k_prefix: usize) -> (f64, f64, f64, f64) {
    let (na, nb) = (a.chars().count(), b.chars().count());
    let pa: String = a.chars().take(k_prefix).collect();
    let pb: String = b.chars().take(k_prefix).collect();
    let pal_k = if pa == pb { 1.0 } else { 0.0 };
    let max_len = na.max(nb);
    let lev_sim = if max_len == 0 {
        1.0
    } else {
        1.0 - levenshtein(a, b) as f64 / max_len as f64
    };
    let lcs_ratio = if na + nb == 0 {
        1.0
    } else {
        2.0 * lcs_len(a, b) as f64 / (na + nb) as f64
    };
    (
        pal_k,
        lev_sim,
        lcs_ratio,
        (pal_k + lev_sim + lcs_ratio) / 3.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("  Hello\n\tWORLD  x "), "hello world x");
    }

    #[test]
    fn distances() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(lcs_len("abcbdab", "bdcaba"), 4);
    }

    #[test]
    fn metrics() {
        let (p, l, c, s) = text_metrics("", "", 30);
        assert_eq!((p, l, c, s), (1.0, 1.0, 1.0, 1.0));
        let (p, l, c, _) = text_metrics("abcd", "abxd", 2);
        assert_eq!(p, 1.0);
        assert!((l - 0.75).abs() < 1e-12);
        assert!((c - 0.75).abs() < 1e-12);
    }
}
