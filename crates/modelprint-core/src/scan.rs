//! A few queries against a big collection (`modelprint identify`: one new model against an
//! index of 100,000): the top-N references of each query by one streaming pass over the
//! references.
//!
//! The all-pairs engines (`similarity::rect_top_n`) tile the matrix into 512-column stripes
//! and build a vocabulary-sized table per stripe and prompt; for a single query row that
//! table costs far more than the scoring. Here each query's sets become bitsets (vocab / 8
//! bytes per prompt, cache-resident) once, and every reference set is scored with one bit
//! test per id, in storage order (a memory-mapped index is read sequentially, once per
//! query batch). Cost: n · P · k bit tests, bound by reading the index.
//!
//! Scores are the engines' (`prompt_score`, the in-order f64 mean over P prompts,
//! `rescale` over the prompts both models have), ties broken by the lower reference index.

use rayon::prelude::*;

use crate::similarity::{finish_score, prompt_score, rescale, Metric, Neighbours};
use crate::{Error, SketchCollection};

/// References per parallel work item.
const CHUNK: usize = 256;

/// A bounded best-first list of (score, model) — higher score first, lower index on ties.
/// Shared with the two-stage engines in `similarity::sampled`.
#[derive(Clone)]
pub(crate) struct Top {
    cap: usize,
    pub(crate) items: Vec<(f32, u32)>,
}

impl Top {
    pub(crate) fn new(cap: usize) -> Self {
        Top {
            cap,
            items: Vec::with_capacity(cap + 1),
        }
    }
    #[inline]
    fn better(a: (f32, u32), b: (f32, u32)) -> bool {
        a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
    }
    #[inline]
    pub(crate) fn push(&mut self, it: (f32, u32)) {
        if self.cap == 0 {
            return;
        }
        if self.items.len() == self.cap && !Self::better(it, *self.items.last().unwrap()) {
            return;
        }
        let pos = self.items.partition_point(|&x| Self::better(x, it));
        self.items.insert(pos, it);
        self.items.truncate(self.cap);
    }
    fn merge(mut self, other: Top) -> Top {
        for it in other.items {
            self.push(it);
        }
        self
    }
}

/// One query's sets as bitsets (`words` u64 per prompt) and their sizes.
struct QueryBits {
    words: usize,
    bits: Vec<u64>,
    lens: Vec<u32>,
}

impl QueryBits {
    fn new(q: &SketchCollection, m: usize, vocab: u32) -> Self {
        let words = (vocab as usize).div_ceil(64);
        let p = q.prompts();
        let mut bits = vec![0u64; words * p];
        let mut lens = vec![0u32; p];
        for (pi, len) in lens.iter_mut().enumerate() {
            let set = q.set(m, pi);
            *len = set.len() as u32;
            let row = &mut bits[pi * words..(pi + 1) * words];
            for &id in set {
                row[(id >> 6) as usize] |= 1u64 << (id & 63);
            }
        }
        QueryBits { words, bits, lens }
    }

    /// Score of reference `r` (the query anchored).
    #[inline]
    fn score(&self, refs: &SketchCollection, r: usize, metric: Metric) -> f32 {
        let p = self.lens.len();
        let mut sum = 0f64;
        let mut common = 0usize;
        for pi in 0..p {
            let la = self.lens[pi];
            let b = refs.set(r, pi);
            if la == 0 || b.is_empty() {
                continue;
            }
            let row = &self.bits[pi * self.words..(pi + 1) * self.words];
            let mut c = 0u32;
            for &id in b {
                // Ids are < vocab of the references; a reference id beyond the query's
                // vocabulary is simply not in the query's set.
                if let Some(w) = row.get((id >> 6) as usize) {
                    c += ((w >> (id & 63)) & 1) as u32;
                }
            }
            sum += prompt_score(metric, c, la, b.len() as u32);
            common += 1;
        }
        rescale(finish_score(sum, p), p, common)
    }
}

/// The `top` best references of every query (failed queries get none; failed references
/// are nobody's neighbour), by one pass over the references per query.
pub fn scan_top_n(
    queries: &SketchCollection,
    refs: &SketchCollection,
    top: usize,
    metric: Metric,
    threads: Option<usize>,
) -> Result<Neighbours, Error> {
    if queries.prompts() != refs.prompts() {
        return Err(Error::input(format!(
            "the collections have {} and {} prompts; sketches must come from the same prompts",
            queries.prompts(),
            refs.prompts()
        )));
    }
    let zero = [0u8; 32];
    let (qh, rh) = (queries.meta().prompt_hash, refs.meta().prompt_hash);
    if qh != zero && rh != zero && qh != rh {
        return Err(Error::input(format!(
            "the collections were made from different prompt sets (prompt hash {} vs {})",
            queries.meta().prompt_hash_hex(),
            refs.meta().prompt_hash_hex()
        )));
    }
    if queries.anchors().is_some() || refs.anchors().is_some() {
        return Err(Error::usage(
            "anchored collections (the §1.5 matrix protocol) are scored by the matrix engines, not by a scan",
        ));
    }
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(Error::usage("threads must be at least 1"));
        }
        pool = pool.num_threads(t);
    }
    let pool = pool
        .build()
        .map_err(|e| Error::internal(format!("cannot start the thread pool: {e}")))?;
    let cap = top.min(refs.len());
    let n = refs.len();
    let mut offsets = vec![0u32];
    let mut index = Vec::new();
    let mut score = Vec::new();
    for q in 0..queries.len() {
        if !queries.is_failed(q) {
            let bits = QueryBits::new(queries, q, queries.vocab_size().max(1));
            let best = pool.install(|| {
                (0..n.div_ceil(CHUNK))
                    .into_par_iter()
                    .map(|c| {
                        let mut t = Top::new(cap);
                        for r in c * CHUNK..((c + 1) * CHUNK).min(n) {
                            if !refs.is_failed(r) {
                                t.push((bits.score(refs, r, metric), r as u32));
                            }
                        }
                        t
                    })
                    .reduce(|| Top::new(cap), Top::merge)
            });
            for (s, i) in best.items {
                index.push(i);
                score.push(s);
            }
        }
        offsets.push(index.len() as u32);
    }
    Ok(Neighbours {
        offsets,
        index,
        score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::tests_support::test_collection;
    use crate::similarity::{rect_top_n, Device, Options};

    /// Random sets with family structure, some missing prompts and a failed model.
    fn collection(
        n: usize,
        p: usize,
        k: usize,
        vocab: u32,
        seed: u64,
        names: &str,
    ) -> SketchCollection {
        let mut s = seed;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut ids = Vec::new();
        let mut lengths = Vec::new();
        // Model 3 failed; every fifth model misses prompt 0.
        let failed: Vec<bool> = (0..n).map(|m| m == 3).collect();
        for (m, &dead) in failed.iter().enumerate() {
            for q in 0..p {
                let mut set: Vec<u32> = Vec::new();
                let missing = m % 5 == 1 && q == 0;
                if !(dead || missing) {
                    let fam = (m % 4) as u64;
                    while set.len() < k {
                        // Half the ids from a small per-family pool: related models overlap.
                        let id = if rnd() % 2 == 0 {
                            ((fam * 1000 + q as u64 * 37 + rnd() % (2 * k as u64)) % vocab as u64)
                                as u32
                        } else {
                            (rnd() % vocab as u64) as u32
                        };
                        if !set.contains(&id) {
                            set.push(id);
                        }
                    }
                    set.sort_unstable();
                }
                lengths.push(set.len() as u32);
                ids.extend(set);
            }
        }
        let models = (0..n).map(|m| format!("{names}{m}")).collect();
        test_collection(vocab, k as u32, p, models, ids, lengths, failed)
    }

    #[test]
    fn scan_equals_the_engines_top_n() {
        let refs = collection(700, 6, 40, 5000, 7, "r");
        let queries = collection(5, 6, 40, 5000, 99, "q");
        for metric in [Metric::Overlap, Metric::Jaccard] {
            let got = scan_top_n(&queries, &refs, 25, metric, Some(2)).unwrap();
            let opts = Options {
                metric,
                device: Device::Cpu,
                ..Options::default()
            };
            let want = rect_top_n(&queries, &refs, 25, &opts).unwrap().result;
            assert_eq!(got.offsets, want.offsets);
            assert_eq!(got.index, want.index, "{metric:?}");
            for (a, b) in got.score.iter().zip(&want.score) {
                assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
            }
            // The failed query has no neighbours; the failed reference is nobody's.
            assert_eq!(got.offsets[4], got.offsets[3]);
            assert!(!got.index.contains(&3));
        }
    }

    #[test]
    fn refuses_other_prompts() {
        let refs = collection(10, 6, 10, 500, 1, "r");
        let queries = collection(1, 5, 10, 500, 2, "q");
        assert!(scan_top_n(&queries, &refs, 3, Metric::Overlap, None).is_err());
    }
}
