//! Random collections for tests.

use crate::sketch::{SketchCollection, SketchMeta};

pub(crate) struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// A random collection with family structure, empty sets, unequal lengths and failed models.
pub(crate) fn random_collection(
    seed: u64,
    n: usize,
    p: usize,
    vocab: u32,
    max_len: usize,
    fail_pct: u64,
) -> SketchCollection {
    let mut rng = Rng::new(seed);
    let k = max_len.min(vocab as usize) as u32;
    let mut models = Vec::new();
    let mut ids = Vec::new();
    let mut lengths = Vec::new();
    let mut failed = Vec::new();
    let mut base: Vec<Vec<u32>> = Vec::new();
    for m in 0..n {
        models.push(format!("org/model-{m}"));
        if rng.below(100) < fail_pct {
            failed.push(true);
            lengths.extend(std::iter::repeat_n(0, p));
            continue;
        }
        failed.push(false);
        if m % 5 == 0 || base.is_empty() {
            base = (0..p)
                .map(|_| {
                    let len = rng.below(k as u64 + 1) as usize;
                    let mut s: Vec<u32> =
                        (0..len).map(|_| rng.below(vocab as u64) as u32).collect();
                    s.sort_unstable();
                    s.dedup();
                    s
                })
                .collect();
        }
        let keep = rng.below(101);
        for b in base.iter() {
            let mut s: Vec<u32> = b
                .iter()
                .copied()
                .filter(|_| rng.below(100) < keep)
                .collect();
            let extra = rng.below(k as u64 + 1 - s.len().min(k as usize) as u64);
            for _ in 0..extra {
                s.push(rng.below(vocab as u64) as u32);
            }
            s.sort_unstable();
            s.dedup();
            s.truncate(k as usize);
            if rng.below(10) == 0 {
                s.clear();
            }
            lengths.push(s.len() as u32);
            ids.extend(s);
        }
    }
    test_collection(vocab, k, p, models, ids, lengths, failed)
}

/// A collection from its parts with a zero prompt hash (test data).
pub(crate) fn test_collection(
    vocab: u32,
    k: u32,
    p: usize,
    models: Vec<String>,
    ids: Vec<u32>,
    lengths: Vec<u32>,
    failed: Vec<bool>,
) -> SketchCollection {
    let meta = SketchMeta {
        vocab_size: vocab,
        k,
        prompts: p as u32,
        prompt_hash: [0; 32],
    };
    SketchCollection::from_parts(meta, models, ids, lengths, failed).unwrap()
}

/// Equal-length sets (the usual case: every set has exactly k ids).
pub(crate) fn uniform_collection(
    seed: u64,
    n: usize,
    p: usize,
    vocab: u32,
    k: usize,
) -> SketchCollection {
    let mut rng = Rng::new(seed);
    let mut ids = Vec::new();
    let mut mark = vec![0u32; vocab as usize];
    let mut stamp = 0;
    for _ in 0..n * p {
        stamp += 1;
        let mut s = Vec::new();
        while s.len() < k {
            let t = rng.below(vocab as u64) as usize;
            if mark[t] != stamp {
                mark[t] = stamp;
                s.push(t as u32);
            }
        }
        s.sort_unstable();
        ids.extend(s);
    }
    let models = (0..n).map(|m| format!("m{m}")).collect();
    SketchCollection::from_uniform_sets(vocab, k, p, models, ids).unwrap()
}
