//! Hostile inputs (issue 16): regression tests for the allocation bombs, and fuzz-style
//! property tests of every binary parser (`.mpsk`, `.mppart`, JSONL sketches).
//!
//! The fuzz tests run `PROPTEST_CASES` cases each (proptest's default, 256, when unset);
//! `PROPTEST_CASES=100000 cargo test -p modelprint-core hostile` is the longer run
//! documented in SECURITY.md.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use crate::error::ErrorCode;
use crate::similarity::part::{merge_parts, read_part, write_part};
use crate::similarity::tests_support::random_collection;
use crate::similarity::{shard, Device, Options, ShardSpec};
use crate::sketch::{read_jsonl, JsonlOptions, SketchCollection};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("mp-hostile-{tag}-{}-{k}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Recomputes the xxh3 footer of an `.mpsk` or `.mppart` file (checksum of every byte
/// before the 16-byte footer), so a mutation gets past the checksum to the parsers.
fn reseal(b: &mut [u8]) {
    if b.len() < 16 {
        return;
    }
    let f = b.len() - 16;
    let h = xxh3_64(&b[..f]);
    b[f + 8..].copy_from_slice(&h.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn valid_mpsk(d: &TempDir, seed: u64) -> Vec<u8> {
    let c = random_collection(seed, 5, 3, 300, 20, 20);
    let p = d.path("valid.mpsk");
    c.save(&p).unwrap();
    std::fs::read(&p).unwrap()
}

/// A valid version-2 file (with anchor ranges), as bytes (the registry's form).
fn valid_mpsk_v2(seed: u64) -> Vec<u8> {
    let c = random_collection(seed, 4, 4, 300, 20, 0)
        .with_anchors(vec![[0, 2], [1, 3], [2, 4], [0, 4]])
        .unwrap();
    crate::sketch::to_bytes(&c)
}

fn cpu() -> Options {
    Options {
        device: Device::Cpu,
        threads: Some(1),
        ..Options::default()
    }
}

/// A valid part file (shard `index` of `count`) of a small collection.
fn valid_part(d: &TempDir, seed: u64, n: usize, index: usize, count: usize) -> Vec<u8> {
    let c = random_collection(seed, n, 2, 200, 10, 10);
    let run = shard(&c, ShardSpec::new(index, count).unwrap(), &cpu()).unwrap();
    let p = d.path(&format!("valid-{index}.mppart"));
    write_part(&run.result, &p).unwrap();
    std::fs::read(&p).unwrap()
}

fn assert_input(e: &crate::Error, file: &Path, words: &[&str]) {
    assert_eq!(e.code, ErrorCode::Input, "{e}");
    assert_eq!(
        e.subject.as_deref(),
        Some(file.display().to_string().as_str()),
        "{e}"
    );
    for w in words {
        assert!(e.message.contains(w), "{w:?} not in {e}");
    }
}

// ---- regressions: the allocation bombs of issue 16 -------------------------------------

#[test]
fn jsonl_id_near_2_pow_32_is_an_input_error() {
    let d = TempDir::new("jsonl-id");
    let f = d.write(
        "s.jsonl",
        b"{\"model\":\"a\",\"sets\":[[1,4294967294]]}\n{\"model\":\"b\",\"sets\":[[1,2]]}\n",
    );
    let e = SketchCollection::open(&f).unwrap_err();
    assert_input(&e, &f, &["vocab_size", "4294967295", "limit"]);
    assert!(e.hint.as_deref().unwrap().contains("MODELPRINT_MAX_VOCAB"));
}

#[test]
fn jsonl_header_with_huge_vocab_or_prompts_is_an_input_error() {
    let d = TempDir::new("jsonl-hdr");
    let f = d.write(
        "v.jsonl",
        b"{\"format\":\"modelprint-sketch\",\"vocab_size\":4294967295,\"k\":2,\"prompts\":1}\n{\"model\":\"a\",\"sets\":[[1]]}\n",
    );
    assert_input(
        &read_jsonl(&f, &JsonlOptions::default()).unwrap_err(),
        &f,
        &["vocab_size"],
    );
    // Failed models hold P empty sets: P from the header must not size an allocation.
    let f = d.write(
        "p.jsonl",
        b"{\"format\":\"modelprint-sketch\",\"vocab_size\":10,\"k\":2,\"prompts\":4000000000}\n{\"model\":\"a\",\"sets\":null}\n{\"model\":\"b\",\"sets\":null}\n",
    );
    assert_input(
        &read_jsonl(&f, &JsonlOptions::default()).unwrap_err(),
        &f,
        &["prompts", "4000000000"],
    );
}

#[test]
fn mpsk_with_valid_checksum_and_huge_vocab_is_an_input_error() {
    let d = TempDir::new("mpsk-vocab");
    let mut b = valid_mpsk(&d, 1);
    put_u32(&mut b, 16, u32::MAX);
    reseal(&mut b);
    let f = d.write("v.mpsk", &b);
    let e = SketchCollection::open(&f).unwrap_err();
    assert_input(&e, &f, &["vocab_size", "4294967295"]);
}

#[test]
fn mpsk_counts_beyond_the_file_are_input_errors() {
    let d = TempDir::new("mpsk-counts");
    let good = valid_mpsk(&d, 2);
    for (at, v, word) in [
        (32usize, u64::MAX, "models"),
        (32, 1 << 40, "models"),
        (104, u64::MAX / 2, "ids count"),
        (112, u64::MAX, "names length"),
    ] {
        let mut b = good.clone();
        put_u64(&mut b, at, v);
        reseal(&mut b);
        let f = d.write("c.mpsk", &b);
        let e = SketchCollection::open(&f).unwrap_err();
        assert_input(&e, &f, &[word]);
    }
    let mut b = good.clone();
    put_u32(&mut b, 24, u32::MAX);
    reseal(&mut b);
    let f = d.write("p.mpsk", &b);
    assert_input(&SketchCollection::open(&f).unwrap_err(), &f, &["prompts"]);
}

#[test]
fn part_with_huge_shard_count_fails_without_allocating() {
    let d = TempDir::new("part-count");
    let mut b = valid_part(&d, 3, 7, 0, 1);
    // magic 8 | version 4 | metric 4 | n 8 | prompts 4 | block 4 | index 4 | count 4
    put_u32(&mut b, 36, u32::MAX);
    reseal(&mut b);
    let f = d.write("c.mppart", &b);
    let part = read_part(&f).unwrap();
    let e = merge_parts(&[part]).unwrap_err();
    assert_eq!(e.code, ErrorCode::Input);
    assert!(
        e.message.contains("missing shard part(s): 1/4294967295"),
        "{e}"
    );
    assert!(e.message.contains("1 of 4294967295 given"), "{e}");
}

#[test]
fn part_with_many_models_and_no_tiles_fails_without_allocating() {
    let d = TempDir::new("part-n");
    // n = 100,000 models with empty ids, no tiles: a 40 GB matrix from a 400 kB file.
    let n = 100_000u64;
    let mut b = Vec::new();
    b.extend_from_slice(b"MPSHARD\0");
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&n.to_le_bytes());
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&512u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 16]);
    b.extend_from_slice(&0u64.to_le_bytes());
    for _ in 0..n {
        b.extend_from_slice(&0u32.to_le_bytes());
    }
    b.extend_from_slice(b"MPSHEND\0");
    b.extend_from_slice(&[0u8; 8]);
    reseal(&mut b);
    let f = d.write("n.mppart", &b);
    let part = read_part(&f).unwrap();
    assert_eq!(part.n, n as usize);
    let e = merge_parts(&[part]).unwrap_err();
    assert_input(&e, &f, &["hold 0 scores", "100000 × 100000"]);

    // n beyond what the file can hold is refused by the reader itself.
    let mut b2 = b.clone();
    put_u64(&mut b2, 16, 1 << 40);
    reseal(&mut b2);
    let f2 = d.write("n2.mppart", &b2);
    assert_input(&read_part(&f2).unwrap_err(), &f2, &["field n"]);
    let mut b3 = b.clone();
    let tiles_at = 8 + 4 + 4 + 8 + 4 + 4 + 4 + 4 + 16;
    put_u64(&mut b3, tiles_at, u64::MAX);
    reseal(&mut b3);
    let f3 = d.write("t.mppart", &b3);
    assert_input(&read_part(&f3).unwrap_err(), &f3, &["tile count"]);
}

#[test]
fn valid_files_still_merge() {
    let d = TempDir::new("merge-ok");
    let parts: Vec<_> = (0..3)
        .map(|i| {
            let b = valid_part(&d, 9, 1100, i, 3);
            read_part(&d.write(&format!("p{i}.mppart"), &b)).unwrap()
        })
        .collect();
    let (models, m) = merge_parts(&parts).unwrap();
    assert_eq!(models.len(), 1100);
    assert_eq!(m.data.len(), 1100 * 1100);
    let e = merge_parts(&parts[..2]).unwrap_err();
    assert!(e.message.contains("missing shard part(s): 2/3"), "{e}");
    let e = merge_parts(&[parts[0].clone(), parts[0].clone(), parts[1].clone()]).unwrap_err();
    assert!(e.message.contains("given twice"), "{e}");
}

// ---- fuzz-style property tests ------------------------------------------------------------

/// Up to `k` (position, byte) mutations; positions are taken modulo the file length.
fn mutations(k: usize) -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 1..=k)
}

fn apply(b: &mut [u8], muts: &[(usize, u8)]) {
    if b.is_empty() {
        return;
    }
    let len = b.len();
    for &(at, v) in muts {
        b[at % len] = v;
    }
}

/// Header fields set to extreme values (the mutations most likely to reach allocations).
fn extreme() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u32::MAX as u64),
        Just(u32::MAX as u64 + 1),
        Just(u64::MAX),
        Just(1 << 40),
        any::<u64>(),
        0u64..100_000,
    ]
}

fn check_opened(r: Result<SketchCollection, crate::Error>) {
    match r {
        // Whatever opens must be fully usable.
        Ok(c) => {
            let _ = c.fingerprint();
            for m in 0..c.len() {
                for p in 0..c.prompts() {
                    let _ = c.set(m, p);
                }
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

    #[test]
    fn fuzz_mpsk_arbitrary_bytes(mut bytes in prop::collection::vec(any::<u8>(), 0..600), magic in any::<bool>(), seal in any::<bool>()) {
        let d = TempDir::new("fz-mpsk-any");
        if magic && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(b"MPSKETCH");
        }
        if seal {
            reseal(&mut bytes);
        }
        check_opened(SketchCollection::open(&d.write("a.mpsk", &bytes)));
    }

    #[test]
    fn fuzz_mpsk_mutated(seed in any::<u64>(), muts in mutations(8), field in 0usize..13, value in extreme(), seal in any::<bool>(), cut in any::<Option<usize>>(), v2 in any::<bool>()) {
        let d = TempDir::new("fz-mpsk-mut");
        let mut b = if v2 { valid_mpsk_v2(seed) } else { valid_mpsk(&d, seed) };
        apply(&mut b, &muts);
        // One header field (u32 fields at 16..28, u64 fields at 32 and 72..128) set extreme.
        let fields = [16usize, 20, 24, 32, 72, 80, 88, 96, 104, 112, 120, 12, 8];
        let at = fields[field];
        if at < 32 { put_u32(&mut b, at, value as u32) } else { put_u64(&mut b, at, value) }
        if let Some(c) = cut { let l = b.len(); b.truncate(c % (l + 1)); }
        if seal { reseal(&mut b); }
        check_opened(SketchCollection::open(&d.write("m.mpsk", &b)));
        // The registry's path: the same bytes from memory.
        check_opened(crate::sketch::from_bytes(&b));
    }

    #[test]
    fn fuzz_jsonl_arbitrary_text(text in "[\\[\\]{}\",:0-9a-z \\n-]{0,300}") {
        let d = TempDir::new("fz-jsonl-any");
        check_opened(SketchCollection::open(&d.write("a.jsonl", text.as_bytes())));
    }

    #[test]
    fn fuzz_jsonl_mutated(seed in any::<u64>(), muts in mutations(6), number in extreme(), header in any::<bool>()) {
        let d = TempDir::new("fz-jsonl-mut");
        let c = random_collection(seed, 4, 2, 100, 8, 25);
        let p = d.path("v.jsonl");
        c.save(&p).unwrap();
        let mut text = std::fs::read_to_string(&p).unwrap();
        if !header {
            text = text.split_once('\n').map(|x| x.1.to_string()).unwrap_or_default();
        }
        // Replace one number with an extreme one, then flip a few bytes.
        let digits: Vec<usize> = text.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
        if let Some(&at) = digits.get(muts[0].0 % digits.len().max(1)) {
            text.replace_range(at..at + 1, &number.to_string());
        }
        let mut b = text.into_bytes();
        apply(&mut b, &muts[1..]);
        check_opened(SketchCollection::open(&d.write("m.jsonl", &b)));
    }

    #[test]
    fn fuzz_part_arbitrary_bytes(mut bytes in prop::collection::vec(any::<u8>(), 0..600), seal in any::<bool>()) {
        let d = TempDir::new("fz-part-any");
        if bytes.len() >= 8 {
            bytes[..8].copy_from_slice(b"MPSHARD\0");
        }
        if seal && bytes.len() >= 16 {
            let l = bytes.len();
            bytes[l - 16..l - 8].copy_from_slice(b"MPSHEND\0");
            reseal(&mut bytes);
        }
        if let Ok(p) = read_part(&d.write("a.mppart", &bytes)) {
            let _ = merge_parts(&[p]);
        }
    }

    #[test]
    fn fuzz_part_mutated(seed in any::<u64>(), muts in mutations(8), field in 0usize..7, value in extreme(), seal in any::<bool>()) {
        let d = TempDir::new("fz-part-mut");
        let mut b = valid_part(&d, seed, 9, 0, 1);
        let body = b.len() - 16;
        apply(&mut b[..body], &muts);
        // version 8, metric 12, n 16 (u64), prompts 24, block 28, index 32, count 36, tiles 56 (u64)
        match [8usize, 12, 16, 24, 32, 36, 56][field] {
            16 => put_u64(&mut b, 16, value),
            56 => put_u64(&mut b, 56, value),
            at => put_u32(&mut b, at, value as u32),
        }
        if seal { reseal(&mut b); }
        match read_part(&d.write("m.mppart", &b)) {
            Ok(p) => {
                if let Err(e) = merge_parts(&[p]) {
                    prop_assert_eq!(e.code, ErrorCode::Input, "{}", e);
                }
            }
            Err(e) => prop_assert_eq!(e.code, ErrorCode::Input, "{}", e),
        }
    }
}
