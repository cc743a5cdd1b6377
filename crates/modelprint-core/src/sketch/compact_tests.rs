//! Tests of the compact index (`.mpsk` v3) and of the two-stage engines over it.

use std::path::PathBuf;

use proptest::prelude::*;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::*;
use crate::error::ErrorCode;
use crate::scan::scan_top_n;
use crate::similarity::sampled::{sampled_query, sampled_top_n, SampledOptions};
use crate::similarity::tests_support::random_collection;
use crate::similarity::{self as sim, Metric, Options};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("mp-compact-{tag}-{}-{k}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn compact_bytes(c: &SketchCollection, threshold: u32) -> Vec<u8> {
    let d = TempDir::new("bytes");
    let p = d.path("c.mpsk");
    write_compact(c, &p, threshold).unwrap();
    std::fs::read(&p).unwrap()
}

/// Recomputes the footer checksum of a compact file (header + digest of the tail).
fn reseal(b: &mut [u8]) {
    if b.len() < HEADER_LEN_COMPACT + FOOTER_LEN {
        return;
    }
    let footer = b.len() - FOOTER_LEN;
    let data_len = u64::from_le_bytes(b[80..88].try_into().unwrap());
    let tail_start = (HEADER_LEN_COMPACT as u64).saturating_add(data_len);
    if tail_start > footer as u64 {
        return;
    }
    let mut tail = Xxh3::new();
    tail.update(&b[tail_start as usize..footer]);
    let mut h = Xxh3::new();
    h.update(&b[..HEADER_LEN_COMPACT]);
    h.update(&tail.digest128().to_le_bytes());
    let d = h.digest();
    b[footer + 8..].copy_from_slice(&d.to_le_bytes());
}

fn same(a: &SketchCollection, b: &SketchCollection) {
    assert_eq!(a.meta(), b.meta());
    assert_eq!(a.models(), b.models());
    assert_eq!(a.lengths(), b.lengths());
    assert_eq!(a.ids(), b.ids());
    for m in 0..a.len() {
        assert_eq!(a.is_failed(m), b.is_failed(m));
        assert_eq!(a.is_flagged_failed(m), b.is_flagged_failed(m));
    }
    assert_eq!(a.fingerprint(), b.fingerprint());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn compact_round_trip(seed in any::<u64>(), n in 0usize..20, p in 0usize..4, vocab in 1u32..100_000, len in 0usize..60, rate in 1u32..5) {
        let c = random_collection(seed, n, p, vocab, len, 20);
        let d = TempDir::new("rt");
        let f = d.path("s.mpsk");
        write_compact(&c, &f, u32::MAX >> rate).unwrap();
        // The general readers decode it.
        let b = SketchCollection::open(&f).unwrap();
        same(&c, &b);
        same(&c, &crate::sketch::from_bytes(&std::fs::read(&f).unwrap()).unwrap());
        // The index: lengths, sample = the hash-selected pairs, blocks verified.
        let ix = CompactIndex::open(&f).unwrap();
        prop_assert_eq!(ix.len(), c.len());
        let thr = ix.sample_threshold();
        for m in 0..c.len() {
            ix.verify_model(m).unwrap();
            let mut expect = Vec::new();
            for q in 0..p {
                for &id in c.set(m, q) {
                    if sample_hash(q as u32, id) < thr {
                        expect.push(q as u32 * vocab + id);
                    }
                }
            }
            prop_assert_eq!(ix.sample(m), &expect[..]);
            prop_assert_eq!(ix.is_failed(m), c.is_failed(m));
        }
    }

    /// `count_in_rows` (the 8-at-a-time decoder) equals the sorted intersection counts.
    #[test]
    fn row_counts_equal_intersections(seed in any::<u64>(), vocab in 1u32..20_000, len in 0usize..300) {
        let c = random_collection(seed, 6, 3, vocab, len, 0);
        let ix = CompactIndex::from_bytes(&compact_bytes(&c, 1 << 30)).unwrap();
        let mut rows = Rows::new(3, vocab).unwrap();
        let mut counts = vec![0u32; 3];
        for a in 0..c.len() {
            rows.clear();
            for q in 0..3 {
                for &id in c.set(a, q) {
                    rows.set(q, id);
                }
            }
            for b in 0..c.len() {
                ix.count_in_rows(b, &rows, &mut counts).unwrap();
                for (q, &got) in counts.iter().enumerate() {
                    let e = crate::overlap::intersection_count_sorted(c.set(a, q), c.set(b, q)) as u32;
                    prop_assert_eq!(got, e);
                }
            }
        }
    }
}

#[test]
fn large_gaps_use_the_escape_and_round_trip() {
    // Ids 0, vocab − 1 and gaps of every size class (1 byte, escape + 2–3 LEB bytes).
    let vocab = 1u32 << 22;
    let sets: Vec<Vec<u32>> = vec![
        vec![0, 1, 255, 256, 511, 70_000, vocab - 1],
        vec![254, 255, 256 + 254],
        vec![],
        vec![vocab - 2, vocab - 1],
    ];
    let ids: Vec<u32> = sets.concat();
    let lengths: Vec<u32> = sets.iter().map(|s| s.len() as u32).collect();
    let meta = SketchMeta {
        vocab_size: vocab,
        k: 10,
        prompts: 2,
        prompt_hash: [1; 32],
    };
    let c = SketchCollection::from_parts(meta, vec!["a".into(), "b".into()], ids, lengths, vec![])
        .unwrap();
    let b = compact_bytes(&c, u32::MAX);
    same(&c, &crate::sketch::from_bytes(&b).unwrap());
    let ix = CompactIndex::from_bytes(&b).unwrap();
    // Rate 1: the sample is every (prompt, id).
    assert_eq!(ix.sample(0).len(), 10);
}

#[test]
fn v1_files_still_open_and_v3_is_smaller() {
    let c = random_collection(9, 30, 4, 152_000, 2000, 0);
    let d = TempDir::new("v1");
    let (v1, v3) = (d.path("a.mpsk"), d.path("b.mpsk"));
    c.save(&v1).unwrap();
    write_compact(&c, &v3, DEFAULT_SAMPLE_THRESHOLD).unwrap();
    same(&c, &SketchCollection::open(&v1).unwrap());
    same(&c, &SketchCollection::open(&v3).unwrap());
    let (s1, s3) = (
        std::fs::metadata(&v1).unwrap().len(),
        std::fs::metadata(&v3).unwrap().len(),
    );
    assert!(s3 * 3 < s1, "compact {s3} bytes vs {s1}");
    assert!(CompactIndex::open(&v1).is_err());
}

#[test]
fn anchored_collections_are_refused() {
    let c = random_collection(3, 4, 4, 300, 20, 0)
        .with_anchors(vec![[0, 1], [1, 2], [2, 3], [3, 4]])
        .unwrap();
    let d = TempDir::new("anch");
    let e = write_compact(&c, &d.path("a.mpsk"), 1 << 26).unwrap_err();
    assert_eq!(e.code, ErrorCode::Usage);
}

#[test]
fn a_corrupt_block_is_a_coded_error_not_a_panic() {
    let c = random_collection(5, 6, 3, 5000, 200, 0);
    let mut b = compact_bytes(&c, 1 << 28);
    // Flip a byte in the data section (not covered by the footer checksum).
    b[HEADER_LEN_COMPACT + 10] ^= 0x5a;
    let ix = CompactIndex::from_bytes(&b).unwrap();
    let e = ix.verify_model(0).unwrap_err();
    assert_eq!(e.code, ErrorCode::Input);
    assert!(e.message.contains("checksum"), "{}", e.message);
    assert!(crate::sketch::from_bytes(&b).is_err());
    // The unverified decoders stay in bounds whatever the bytes are.
    let mut rows = Rows::new(3, 5000).unwrap();
    let mut counts = vec![0u32; 3];
    let _ = ix.count_in_rows(0, &rows, &mut counts);
    rows.set(0, 1);
    let _ = ix.for_each_id(0, |_, _| {});
}

fn check(r: Result<CompactIndex, crate::Error>) {
    match r {
        Ok(ix) => {
            let p = ix.prompts();
            let mut rows = Rows::new(p, ix.vocab_size()).unwrap();
            let mut counts = vec![0u32; p];
            for m in 0..ix.len() {
                let _ = ix.verify_model(m);
                let _ = ix.count_in_rows(m, &rows, &mut counts);
                let _ = ix.for_each_id(m, |q, id| rows.set(q, id));
                let _ = ix.sample(m);
            }
            if let Err(e) = ix.to_collection() {
                assert!(matches!(e.code, ErrorCode::Input), "{e}");
            }
            let opts = SampledOptions {
                top: 3,
                candidates: 4,
                threads: Some(1),
                ..Default::default()
            };
            if let Err(e) = sampled_top_n(&ix, &opts) {
                assert!(matches!(e.code, ErrorCode::Input), "{e}");
            }
        }
        Err(e) => assert!(
            matches!(e.code, ErrorCode::Input | ErrorCode::Io),
            "unexpected code {:?}: {e}",
            e.code
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::default())]
    /// Hostile compact files: mutated bytes, extreme header fields, truncation, with and
    /// without a valid footer checksum: coded errors (or a usable index), never a panic.
    #[test]
    fn fuzz_compact_mutated(seed in any::<u64>(), muts in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                            field in 0usize..20, value in prop_oneof![Just(0u64), Just(1), Just(u32::MAX as u64), Just(u64::MAX), Just(1 << 40), any::<u64>(), 0u64..5000],
                            seal in any::<bool>(), cut in any::<Option<usize>>()) {
        let c = random_collection(seed, 5, 3, 3000, 40, 20);
        let mut b = compact_bytes(&c, 1 << 30);
        let len = b.len();
        for &(at, v) in &muts {
            b[at % len] = v;
        }
        let fields = [16usize, 20, 24, 28, 32, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 12, 8, 200];
        let at = fields[field];
        if at < 32 {
            b[at..at + 4].copy_from_slice(&(value as u32).to_le_bytes());
        } else {
            b[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        if let Some(cut) = cut {
            let l = b.len();
            b.truncate(cut % (l + 1));
        }
        if seal {
            reseal(&mut b);
        }
        check(CompactIndex::from_bytes(&b));
        let _ = crate::sketch::from_bytes(&b).map_err(|e| assert!(matches!(e.code, ErrorCode::Input | ErrorCode::Io), "{e}"));
    }

    #[test]
    fn fuzz_compact_arbitrary(mut bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        if bytes.len() >= 12 {
            bytes[..8].copy_from_slice(b"MPSKETCH");
            bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
        }
        reseal(&mut bytes);
        check(CompactIndex::from_bytes(&bytes));
    }
}

#[test]
fn checksum_covers_the_tables() {
    let c = random_collection(2, 5, 3, 3000, 40, 0);
    let mut b = compact_bytes(&c, 1 << 30);
    let l = b.len();
    b[l - FOOTER_LEN - 1] ^= 1;
    let e = CompactIndex::from_bytes(&b).unwrap_err();
    assert_eq!(e.code, ErrorCode::Input);
    let _ = xxh3_64(&b);
}

/// With every other model a candidate, the two-stage all-pairs top-N is the exact engine's
/// (failed models, missing prompts, unequal lengths, both metrics).
#[test]
fn sampled_top_n_with_all_candidates_equals_the_exact_engine() {
    for (seed, metric) in [
        (1u64, Metric::Overlap),
        (2, Metric::Jaccard),
        (3, Metric::Overlap),
    ] {
        let c = random_collection(seed, 40, 5, 3000, 200, 10);
        let ix = CompactIndex::from_bytes(&compact_bytes(&c, 1 << 28)).unwrap();
        let exact = sim::top_n(
            &c,
            7,
            &Options {
                metric,
                ..Options::default()
            },
        )
        .unwrap()
        .result;
        let opts = SampledOptions {
            top: 7,
            candidates: 39,
            metric,
            threads: Some(2),
            verify: true,
        };
        let (got, _) = sampled_top_n(&ix, &opts).unwrap();
        assert_eq!(got, exact, "seed {seed}");
    }
}

/// With fewer candidates every listed score is still the exact one, lists are sorted, and
/// same-family neighbours are found.
#[test]
fn sampled_scores_are_exact_on_the_candidates() {
    let c = random_collection(11, 60, 6, 5000, 300, 0);
    let ix = CompactIndex::from_bytes(&compact_bytes(&c, 1 << 29)).unwrap();
    let exact = sim::top_n(&c, 59, &Options::default()).unwrap().result;
    let opts = SampledOptions {
        top: 5,
        candidates: 10,
        ..Default::default()
    };
    let (got, _) = sampled_top_n(&ix, &opts).unwrap();
    for i in 0..c.len() {
        let all: std::collections::HashMap<u32, f32> = exact.of(i).collect();
        let mine: Vec<(u32, f32)> = got.of(i).collect();
        assert_eq!(mine.len(), 5);
        for w in mine.windows(2) {
            assert!(w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0));
        }
        for (j, s) in mine {
            assert_eq!(all[&j], s, "model {i} neighbour {j}");
        }
    }
}

/// One query: with every model a candidate it equals the exact scan; with fewer, every
/// listed score is the exact scan's.
#[test]
fn sampled_query_equals_the_scan() {
    let c = random_collection(21, 80, 4, 4000, 250, 10);
    let q = random_collection(21, 81, 4, 4000, 250, 0);
    // The query: the last model of a collection from the same generator (shares families).
    let qi = q.len() - 1;
    let ids: Vec<u32> = (0..4).flat_map(|p| q.set(qi, p).to_vec()).collect();
    let lengths: Vec<u32> = (0..4).map(|p| q.set_len(qi, p)).collect();
    let query =
        SketchCollection::from_parts(c.meta().clone(), vec!["q".into()], ids, lengths, vec![])
            .unwrap();
    let ix = CompactIndex::from_bytes(&compact_bytes(&c, 1 << 28)).unwrap();
    for metric in [Metric::Overlap, Metric::Jaccard] {
        let scan = scan_top_n(&query, &c, c.len(), metric, Some(2)).unwrap();
        let all: Vec<(f32, u32)> = scan.of(0).map(|(j, s)| (s, j)).collect();
        let opts = SampledOptions {
            top: 10,
            candidates: c.len(),
            metric,
            threads: Some(2),
            verify: true,
        };
        let (got, _) = sampled_query(&ix, &query, 0, &opts).unwrap();
        assert_eq!(got, all[..10].to_vec());
        let few = SampledOptions {
            candidates: 12,
            ..opts
        };
        let (got, _) = sampled_query(&ix, &query, 0, &few).unwrap();
        assert_eq!(got.len(), 10);
        let exact: std::collections::HashMap<u32, f32> = all.iter().map(|&(s, j)| (j, s)).collect();
        for (s, j) in got {
            assert_eq!(exact[&j], s);
        }
    }
}
