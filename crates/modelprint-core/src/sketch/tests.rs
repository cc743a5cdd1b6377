use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::similarity::tests_support::random_collection;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("mp-sketch-{tag}-{}-{k}", std::process::id()));
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

fn same(a: &SketchCollection, b: &SketchCollection) {
    assert_eq!(a.meta(), b.meta());
    assert_eq!(a.models(), b.models());
    assert_eq!(a.lengths(), b.lengths());
    assert_eq!(a.ids(), b.ids());
    for m in 0..a.len() {
        assert_eq!(a.is_failed(m), b.is_failed(m));
    }
    assert_eq!(a.fingerprint(), b.fingerprint());
}

fn meta(vocab: u32, k: u32, p: u32) -> SketchMeta {
    SketchMeta {
        vocab_size: vocab,
        k,
        prompts: p,
        prompt_hash: [7; 32],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn binary_and_jsonl_round_trip(seed in any::<u64>(), n in 0usize..20, p in 0usize..4, vocab in 1u32..500, len in 0usize..50) {
        let c = random_collection(seed, n, p, vocab, len, 20);
        let d = TempDir::new("rt");
        let bin = d.path("s.mpsk");
        c.save(&bin).unwrap();
        let b = SketchCollection::open(&bin).unwrap();
        prop_assert!(b.is_mapped());
        same(&c, &b);
        let js = d.path("s.jsonl");
        b.save(&js).unwrap();
        let j = SketchCollection::open(&js).unwrap();
        same(&c, &j);
    }
}

/// Writes `c`, then lets `edit` change the bytes, then repairs the checksum.
fn write_edited(c: &SketchCollection, path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    c.save(path).unwrap();
    let mut b = std::fs::read(path).unwrap();
    edit(&mut b);
    let f = b.len() - 8;
    let h = xxhash_rust::xxh3::xxh3_64(&b[..b.len() - 16]);
    b[f..].copy_from_slice(&h.to_le_bytes());
    std::fs::write(path, &b).unwrap();
}

fn ids_offset(b: &[u8]) -> usize {
    u64::from_le_bytes(b[96..104].try_into().unwrap()) as usize
}

fn two_models() -> SketchCollection {
    let ids = vec![1, 5, 9, 2, 3, /* model b */ 0, 4, 8, 6];
    SketchCollection::from_parts(
        meta(10, 3, 2),
        vec!["a".into(), "b".into()],
        ids,
        vec![3, 2, 3, 1],
        vec![],
    )
    .unwrap()
}

#[test]
fn binary_rejects_bad_content_naming_file_model_and_prompt() {
    let d = TempDir::new("bad");
    let c = two_models();
    let p = d.path("x.mpsk");
    // Unsorted: model b, prompt 0 = [0, 4, 8] → [0, 8, 4].
    write_edited(&c, &p, |b| {
        let o = ids_offset(b) + 4 * 6;
        b[o..o + 4].copy_from_slice(&8u32.to_le_bytes());
        b[o + 4..o + 8].copy_from_slice(&4u32.to_le_bytes());
    });
    let e = SketchCollection::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("x.mpsk")
            && e.contains("model \"b\"")
            && e.contains("prompt 0")
            && e.contains("ascending"),
        "{e}"
    );
    // Duplicate: model a prompt 1 = [2, 3] → [2, 2].
    write_edited(&c, &p, |b| {
        let o = ids_offset(b) + 4 * 4;
        b[o..o + 4].copy_from_slice(&2u32.to_le_bytes());
    });
    let e = SketchCollection::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("model \"a\"") && e.contains("prompt 1") && e.contains("duplicate id 2"),
        "{e}"
    );
    // Out of range: an id ≥ vocab (10).
    write_edited(&c, &p, |b| {
        let o = ids_offset(b) + 4 * 8;
        b[o..o + 4].copy_from_slice(&10u32.to_le_bytes());
    });
    let e = SketchCollection::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("model \"b\"") && e.contains("prompt 1") && e.contains("vocabulary size 10"),
        "{e}"
    );
}

#[test]
fn binary_rejects_corruption_and_truncation() {
    let d = TempDir::new("corrupt");
    let c = random_collection(5, 10, 3, 300, 40, 0);
    let p = d.path("c.mpsk");
    c.save(&p).unwrap();
    let good = std::fs::read(&p).unwrap();
    // A flipped bit in the ids → checksum.
    let mut b = good.clone();
    let o = ids_offset(&b) + 12;
    b[o] ^= 1;
    std::fs::write(&p, &b).unwrap();
    let e = SketchCollection::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("c.mpsk") && e.contains("checksum mismatch"),
        "{e}"
    );
    // Truncated.
    std::fs::write(&p, &good[..good.len() - 100]).unwrap();
    let e = SketchCollection::open(&p).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    std::fs::write(&p, &good[..20]).unwrap();
    assert!(SketchCollection::open(&p)
        .unwrap_err()
        .to_string()
        .contains("truncated"));
    std::fs::write(&p, &good[..4]).unwrap();
    assert!(SketchCollection::open(&p)
        .unwrap_err()
        .to_string()
        .contains("truncated"));
    // Not a sketch file / wrong version.
    std::fs::write(&p, b"hello world, this is not a sketch file at all").unwrap();
    assert!(SketchCollection::open(&p)
        .unwrap_err()
        .to_string()
        .contains("bad magic"));
    let mut b = good.clone();
    b[8] = 9;
    std::fs::write(&p, &b).unwrap();
    assert!(SketchCollection::open(&p)
        .unwrap_err()
        .to_string()
        .contains("version 9"));
    // Missing file: an I/O error naming it.
    let e = SketchCollection::open(&d.path("nope.mpsk")).unwrap_err();
    assert!(e.is_io() && e.to_string().contains("nope.mpsk"));
}

#[test]
fn writes_are_atomic_and_leave_no_temp_files() {
    let d = TempDir::new("atomic");
    let c = random_collection(2, 5, 2, 100, 20, 0);
    let p = d.path("a.mpsk");
    c.save(&p).unwrap();
    c.save(&p).unwrap();
    let names: Vec<String> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["a.mpsk".to_string()]);
}

fn jsonl(d: &TempDir, text: &str) -> Result<SketchCollection, crate::Error> {
    let p = d.path("t.jsonl");
    std::fs::write(&p, text).unwrap();
    SketchCollection::open(&p)
}

#[test]
fn jsonl_plain_lines_header_and_failures() {
    let d = TempDir::new("jsonl");
    let c = jsonl(&d, "{\"model\": \"a\", \"sets\": [[1, 5], [2]]}\n\n{\"model\": \"b\", \"sets\": [[0, 5], []]}\n{\"model\": \"c\", \"sets\": null, \"error\": \"load_failed\"}\n").unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!((c.prompts(), c.vocab_size(), c.k()), (2, 6, 2));
    assert_eq!(c.set(1, 0), &[0, 5]);
    assert!(c.is_failed(2) && c.is_flagged_failed(2) && !c.is_failed(1));
    // A failed line first, before P is known.
    let c = jsonl(
        &d,
        "{\"model\": \"x\", \"sets\": null}\n{\"model\": \"a\", \"sets\": [[1], [2], [3]]}\n",
    )
    .unwrap();
    assert_eq!((c.prompts(), c.lengths()), (3, &[0, 0, 0, 1, 1, 1][..]));
    // A header line.
    let h = format!(
        "{{\"format\": \"modelprint-sketch\", \"version\": 1, \"vocab_size\": 100, \"k\": 4, \"prompts\": 1, \"prompt_hash\": \"{}\"}}\n{{\"model\": \"a\", \"sets\": [[1, 2, 99]]}}\n",
        "ab".repeat(32)
    );
    let c = jsonl(&d, &h).unwrap();
    assert_eq!(
        (c.vocab_size(), c.k(), c.meta().prompt_hash[0]),
        (100, 4, 0xab)
    );
}

#[test]
fn jsonl_errors_name_the_line_model_and_prompt() {
    let d = TempDir::new("jsonl-err");
    let e = jsonl(
        &d,
        "{\"model\": \"a\", \"sets\": [[1, 5], [2]]}\n{\"model\": \"b\", \"sets\": [[0, 5]]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("t.jsonl")
            && e.contains("line 2")
            && e.contains("model \"b\"")
            && e.contains("has 1 prompt sets, expected 2"),
        "{e}"
    );
    let e = jsonl(&d, "{\"model\": \"a\", \"sets\": [[1, 5], [7, 2]]}\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 1")
            && e.contains("model \"a\"")
            && e.contains("prompt 1")
            && e.contains("ascending"),
        "{e}"
    );
    let e = jsonl(&d, "{\"model\": \"a\", \"sets\": [[1, 1]]}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("duplicate id 1"), "{e}");
    let e = jsonl(
        &d,
        "{\"format\": \"modelprint-sketch\", \"vocab_size\": 10, \"k\": 5}\n{\"model\": \"a\", \"sets\": [[3]]}\n{\"model\": \"z\", \"sets\": [[3, 10]]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 3")
            && e.contains("model \"z\"")
            && e.contains("prompt 0")
            && e.contains("not below the vocabulary size 10"),
        "{e}"
    );
    let e = jsonl(
        &d,
        "{\"format\": \"modelprint-sketch\", \"k\": 1}\n{\"model\": \"a\", \"sets\": [[3, 4]]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("more than k = 1"), "{e}");
    let e = jsonl(
        &d,
        "{\"model\": \"a\", \"sets\": [[3]]}\n{\"model\": \"a\", \"sets\": [[4]]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("appears twice") && e.contains("line 1"), "{e}");
    let e = jsonl(&d, "{\"model\": \"a\", \"sets\": [[3]]}\nnot json\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("invalid JSON"), "{e}");
    let e = jsonl(&d, "{\"model\": \"a\", \"sets\": [[-3]]}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1") && e.contains("invalid JSON"), "{e}");
}

#[test]
fn k_larger_than_vocabulary_and_empty_sets_are_fine() {
    let c = SketchCollection::from_parts(
        meta(3, 2000, 2),
        vec!["a".into()],
        vec![0, 1, 2],
        vec![3, 0],
        vec![],
    )
    .unwrap();
    assert_eq!(c.set(0, 0), &[0, 1, 2]);
    assert!(c.set(0, 1).is_empty());
    assert!(!c.is_failed(0));
    let empty =
        SketchCollection::from_parts(meta(3, 5, 2), vec!["e".into()], vec![], vec![0, 0], vec![])
            .unwrap();
    assert!(empty.is_failed(0));
    // A failed model must not have ids.
    let e = SketchCollection::from_parts(
        meta(3, 5, 1),
        vec!["e".into()],
        vec![1],
        vec![1],
        vec![true],
    )
    .unwrap_err();
    assert!(e.to_string().contains("flagged as failed"), "{e}");
    // Failure flags for a different number of models.
    assert!(SketchCollection::from_parts(
        meta(3, 5, 1),
        vec!["e".into()],
        vec![],
        vec![0],
        vec![true, false]
    )
    .is_err());
    // Lengths that do not add up.
    assert!(SketchCollection::from_parts(
        meta(3, 5, 1),
        vec!["e".into()],
        vec![1],
        vec![0],
        vec![]
    )
    .is_err());
    assert!(SketchMeta::parse_prompt_hash("zz").is_err());
}
