//! Every engine against the pair-by-pair reference, bit for bit.

use proptest::prelude::*;

use super::cpu::{CpuEngine, Isa};
use super::gpu_layout::TwinEngine;
use super::tests_support::random_collection;
use super::tests_support::uniform_collection;
use super::*;
use crate::sketch::{SketchCollection, SketchMeta};

fn engines() -> Vec<(String, Box<dyn Engine>)> {
    let mut v: Vec<(String, Box<dyn Engine>)> = Vec::new();
    for isa in Isa::available() {
        v.push((
            format!("sliced-{}", isa.name()),
            Box::new(CpuEngine::with_isa(CpuKernel::Sliced, isa)),
        ));
    }
    v.push(("bitset".into(), Box::new(CpuEngine::new(CpuKernel::Bitset))));
    v.push(("merge".into(), Box::new(CpuEngine::new(CpuKernel::Merge))));
    v.push(("twin".into(), Box::new(TwinEngine { budget: 1 << 20 })));
    v.push((
        "twin-small-batches".into(),
        Box::new(TwinEngine { budget: 4096 }),
    ));
    v
}

fn assert_same(name: &str, got: &Matrix, want: &Matrix) {
    assert_eq!(
        (got.rows, got.cols),
        (want.rows, want.cols),
        "{name}: shape"
    );
    for i in 0..want.rows {
        for j in 0..want.cols {
            let (g, w) = (got.get(i, j), want.get(i, j));
            assert!(
                g.to_bits() == w.to_bits(),
                "{name}: M[{i}][{j}] = {g} but the reference gives {w}"
            );
        }
    }
}

fn check_all(s: &SketchCollection, metric: Metric) {
    let want = reference::full_matrix(s, metric);
    for (name, mut e) in engines() {
        let got = full_with(s, metric, e.as_mut()).unwrap();
        assert_same(&format!("{name} {metric:?} full"), &got, &want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn full_matrix_matches_reference(
        seed in any::<u64>(), n in 1usize..40, p in 0usize..4, vocab in 1u32..400,
        max_len in 0usize..120, fail in 0u64..30, jaccard in any::<bool>(),
    ) {
        let s = random_collection(seed, n, p, vocab, max_len, fail);
        check_all(&s, if jaccard { Metric::Jaccard } else { Metric::Overlap });
    }

    #[test]
    fn rectangular_matches_reference(
        seed in any::<u64>(), nq in 1usize..30, nr in 1usize..30, p in 1usize..4,
        vocab in 1u32..300, max_len in 0usize..80, jaccard in any::<bool>(),
    ) {
        let q = random_collection(seed, nq, p, vocab, max_len, 10);
        let r = random_collection(seed ^ 0xabc, nr, p, vocab + 7, max_len, 10);
        let metric = if jaccard { Metric::Jaccard } else { Metric::Overlap };
        let want = reference::rect_matrix(&q, &r, metric);
        for (name, mut e) in engines() {
            let got = rect_with(&q, &r, metric, e.as_mut()).unwrap();
            assert_same(&format!("{name} rect"), &got, &want);
            let top = rect_top_n_with(&q, &r, 5, metric, e.as_mut()).unwrap();
            let want_top = reference::top_n_of(&want, 5, false, &|i| q.is_failed(i), &|j| r.is_failed(j));
            prop_assert_eq!(&top, &want_top, "{} rect top-n", name);
        }
    }

    #[test]
    fn top_n_matches_reference(
        seed in any::<u64>(), n in 1usize..40, p in 1usize..4, vocab in 1u32..200,
        max_len in 0usize..60, top in 0usize..8, jaccard in any::<bool>(),
    ) {
        let s = random_collection(seed, n, p, vocab, max_len, 15);
        let metric = if jaccard { Metric::Jaccard } else { Metric::Overlap };
        let want = reference::top_n(&s, top, metric);
        for (name, mut e) in engines() {
            let got = top_n_with(&s, top, metric, e.as_mut()).unwrap();
            prop_assert_eq!(&got, &want, "{}", name);
        }
    }

    /// The §1.5 protocol: each row over its own prompts (anchor ranges), every engine against
    /// the pair-by-pair definition; top-N from the same scores; the .mpsk round trip keeps it.
    #[test]
    fn anchored_matrix_matches_reference(
        seed in any::<u64>(), n in 1usize..30, per in 1usize..4, vocab in 1u32..300,
        max_len in 0usize..80, jaccard in any::<bool>(), top in 0usize..6,
    ) {
        let p = n * per;
        let s = random_collection(seed, n, p, vocab, max_len, 10)
            .with_anchors((0..n).map(|m| [(m * per) as u32, ((m + 1) * per) as u32]).collect())
            .unwrap();
        let metric = if jaccard { Metric::Jaccard } else { Metric::Overlap };
        check_all(&s, metric);
        let want = reference::full_matrix(&s, metric);
        let want_top = reference::top_n_of(&want, top, true, &|i| s.is_failed(i), &|j| s.is_failed(j));
        let back = crate::sketch::from_bytes(&crate::sketch::to_bytes(&s)).unwrap();
        prop_assert_eq!(back.anchors(), s.anchors());
        for (name, mut e) in engines() {
            let got = top_n_with(&s, top, metric, e.as_mut()).unwrap();
            prop_assert_eq!(&got, &want_top, "{} anchored top-n", name);
            assert_same(&format!("{name} anchored round trip"), &full_with(&back, metric, e.as_mut()).unwrap(), &want);
        }
    }
}

/// A pair is scored over the prompts both models have: a missing (empty) prompt neither
/// lowers nor raises the score; no common prompt gives -1.
#[test]
fn missing_prompts_are_left_out_of_the_mean() {
    let meta = SketchMeta {
        vocab_size: 10,
        k: 3,
        prompts: 3,
        prompt_hash: [0; 32],
    };
    let s = SketchCollection::from_parts(
        meta,
        vec!["a".into(), "b".into(), "c".into()],
        // a: {1,2} {3,4} {5,6}; b: {1,2} {} {5,9}; c: {} {3} {}
        vec![1, 2, 3, 4, 5, 6, 1, 2, 5, 9, 3],
        vec![2, 2, 2, 2, 0, 2, 0, 1, 0],
        vec![],
    )
    .unwrap();
    for (name, mut e) in engines() {
        let m = full_with(&s, Metric::Overlap, e.as_mut()).unwrap();
        assert_eq!(
            m.get(0, 1),
            0.75,
            "{name}: mean of 1 and 0.5 over the 2 common prompts"
        );
        assert_eq!(m.get(0, 2), 0.5, "{name}: only prompt 1 is common");
        assert_eq!(m.get(1, 2), -1.0, "{name}: no common prompt");
    }
}

#[test]
fn many_stripes_and_row_chunks_match_reference() {
    // > 2 column blocks and > 1 row chunk (ROW_CHUNK is 1024 in tests).
    let s = random_collection(7, 1300, 2, 150, 24, 5);
    check_all(&s, Metric::Overlap);
    check_all(&s, Metric::Jaccard);
    let u = uniform_collection(8, 1100, 2, 300, 40);
    check_all(&u, Metric::Overlap);
}

#[test]
fn shards_merge_into_the_full_matrix() {
    let s = random_collection(11, 1200, 2, 120, 30, 5);
    for metric in [Metric::Overlap, Metric::Jaccard] {
        let want = reference::full_matrix(&s, metric);
        for count in [1usize, 2, 3, 5, 8] {
            for (name, mut e) in engines()
                .into_iter()
                .filter(|(n, _)| n.starts_with("sliced") || n == "twin")
            {
                let parts: Vec<ShardPart> = (0..count)
                    .map(|i| {
                        shard_with(&s, ShardSpec::new(i, count).unwrap(), metric, e.as_mut())
                            .unwrap()
                    })
                    .collect();
                let (models, got) = merge_parts(&parts).unwrap();
                assert_eq!(models, s.models());
                assert_same(&format!("{name} shards {count}"), &got, &want);
            }
        }
    }
}

#[test]
fn part_files_round_trip_and_merge_checks() {
    let dir = std::env::temp_dir().join(format!("mp-parts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = random_collection(3, 700, 2, 90, 20, 5);
    let mut e = CpuEngine::new(CpuKernel::Auto);
    let mut paths = Vec::new();
    for i in 0..3 {
        let part = shard_with(&s, ShardSpec::new(i, 3).unwrap(), Metric::Overlap, &mut e).unwrap();
        let path = dir.join(format!("p{i}.mppart"));
        write_part(&part, &path).unwrap();
        let back = read_part(&path).unwrap();
        assert_eq!(back.tiles, part.tiles);
        paths.push(path);
    }
    let (_, m, metric) = part::merge_files(&paths).unwrap();
    assert_eq!(metric, Metric::Overlap);
    assert_same("parts", &m, &reference::full_matrix(&s, Metric::Overlap));
    // A missing shard is named.
    let err = part::merge_files(&paths[..2]).unwrap_err().to_string();
    assert!(err.contains("missing shard part(s): 2/3"), "{err}");
    // The same shard twice.
    let err = part::merge_files(&[paths[0].clone(), paths[0].clone(), paths[1].clone()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("given twice"), "{err}");
    // Parts of different sketches.
    let other = random_collection(4, 700, 2, 90, 20, 5);
    let p = shard_with(
        &other,
        ShardSpec::new(2, 3).unwrap(),
        Metric::Overlap,
        &mut e,
    )
    .unwrap();
    let op = dir.join("other.mppart");
    write_part(&p, &op).unwrap();
    let err = part::merge_files(&[paths[0].clone(), paths[1].clone(), op.clone()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not belong"), "{err}");
    // Corruption.
    let mut bytes = std::fs::read(&paths[1]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&op, &bytes).unwrap();
    assert!(read_part(&op).unwrap_err().to_string().contains("checksum"));
    std::fs::write(&op, &bytes[..bytes.len() - 5]).unwrap();
    assert!(read_part(&op)
        .unwrap_err()
        .to_string()
        .contains("truncated"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn edge_cases() {
    // One model.
    let one = random_collection(1, 1, 3, 50, 10, 0);
    let m = full_with(&one, Metric::Overlap, &mut CpuEngine::new(CpuKernel::Auto)).unwrap();
    assert_eq!(m.data, vec![1.0]);
    let nb = top_n_with(
        &one,
        3,
        Metric::Overlap,
        &mut CpuEngine::new(CpuKernel::Auto),
    )
    .unwrap();
    assert_eq!(nb.offsets, vec![0, 0]);
    // No models.
    let none = random_collection(1, 0, 3, 50, 10, 0);
    assert_eq!(
        full_with(&none, Metric::Overlap, &mut CpuEngine::new(CpuKernel::Auto))
            .unwrap()
            .data,
        Vec::<f32>::new()
    );
    // k larger than the vocabulary: every set is the whole vocabulary → all 1.
    let meta = SketchMeta {
        vocab_size: 6,
        k: 2000,
        prompts: 2,
        prompt_hash: [0; 32],
    };
    let ids: Vec<u32> = (0..3 * 2).flat_map(|_| 0..6u32).collect();
    let s = SketchCollection::from_parts(
        meta,
        vec!["a".into(), "b".into(), "c".into()],
        ids,
        vec![6; 6],
        vec![],
    )
    .unwrap();
    for (name, mut e) in engines() {
        let m = full_with(&s, Metric::Jaccard, e.as_mut()).unwrap();
        assert!(m.data.iter().all(|&v| v == 1.0), "{name}");
    }
    // A failed model: -1 in its row and column, 1 on the diagonal.
    let s = random_collection(5, 6, 2, 40, 10, 0);
    let mut failed = vec![false; 6];
    failed[2] = true;
    let mut lengths = s.lengths().to_vec();
    let mut ids = Vec::new();
    for m in 0..6 {
        for q in 0..2 {
            if m == 2 {
                lengths[m * 2 + q] = 0;
            } else {
                ids.extend_from_slice(s.set(m, q));
            }
        }
    }
    let f =
        SketchCollection::from_parts(s.meta().clone(), s.models().to_vec(), ids, lengths, failed)
            .unwrap();
    let m = full_with(&f, Metric::Overlap, &mut CpuEngine::new(CpuKernel::Auto)).unwrap();
    for j in 0..6 {
        // A failed model is -1 in its whole row and column, its diagonal included.
        assert_eq!(m.get(2, j), -1.0);
        assert_eq!(m.get(j, 2), -1.0);
    }
    // Mismatched prompt counts are an error.
    let a = random_collection(1, 3, 2, 50, 10, 0);
    let b = random_collection(2, 3, 3, 50, 10, 0);
    let err = rect_with(
        &a,
        &b,
        Metric::Overlap,
        &mut CpuEngine::new(CpuKernel::Auto),
    )
    .unwrap_err();
    assert_eq!(err.code.as_str(), "E_INPUT");
    assert!(err.to_string().contains("2 and 3 prompts"), "{err}");
}

#[test]
fn public_api_reports_the_device() {
    let s = random_collection(9, 20, 2, 100, 30, 0);
    let opts = Options {
        device: Device::Cpu,
        threads: Some(2),
        ..Options::default()
    };
    let run = full_matrix(&s, &opts).unwrap();
    assert_eq!(run.device.kind(), "cpu");
    assert_same(
        "public",
        &run.result,
        &reference::full_matrix(&s, Metric::Overlap),
    );
    // Auto falls back to the CPU here when there is no CUDA; cuda alone is a clear error.
    let auto = full_matrix(
        &s,
        &Options {
            device: Device::Auto,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_same("auto", &auto.result, &run.result);
    if let Some(reason) = cuda_unavailable_reason() {
        assert_eq!(auto.device.kind(), "cpu");
        let err = full_matrix(
            &s,
            &Options {
                device: Device::Cuda,
                ..opts.clone()
            },
        )
        .unwrap_err();
        assert_eq!(err.code.as_str(), "E_DEVICE");
        assert!(!reason.is_empty());
    }
    assert!(full_matrix(
        &s,
        &Options {
            threads: Some(0),
            ..opts
        }
    )
    .is_err());
}

#[test]
fn hashset_reference_agrees_with_merge_reference() {
    let s = random_collection(21, 12, 3, 200, 50, 0);
    for i in 0..12 {
        for j in 0..12 {
            for metric in [Metric::Overlap, Metric::Jaccard] {
                assert_eq!(
                    reference::pair_score(&s, i, &s, j, metric).to_bits(),
                    reference::pair_score_by(&s, i, &s, j, metric, reference::hashset_count)
                        .to_bits()
                );
            }
        }
    }
}

/// Shims that let the CUDA source compile as C++20 on the host: 256 real threads per block,
/// `__syncthreads()` a barrier, blocks one after another.
const CUDA_SHIM: &str = r#"
#include <barrier>
#include <thread>
#include <vector>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <string>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__
#define __launch_bounds__(x)
struct dim3 { unsigned int x, y, z; };
static thread_local dim3 threadIdx;
static dim3 blockIdx;
static std::barrier<>* BAR;
static inline unsigned int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline void __syncthreads() { BAR->arrive_and_wait(); }

"#;

/// Reads a dumped case, runs `mp_tiles` on every block, compares with the expected floats.
const CUDA_HARNESS: &str = r#"template <class T> std::vector<T> rd(const std::string& d, const char* f) {
  std::string p = d + "/" + f; FILE* fp = fopen(p.c_str(), "rb"); std::vector<T> v;
  fseek(fp, 0, SEEK_END); long n = ftell(fp); fseek(fp, 0, SEEK_SET); v.resize(n / sizeof(T)); fread(v.data(), 1, n, fp); fclose(fp); return v;
}
int main(int argc, char** argv) {
  std::string d = argv[1];
  unsigned prompts, row_pad, col_pad, blocks, out_len, metric, lower;
  FILE* m = fopen((d + "/meta").c_str(), "r"); fscanf(m, "%u %u %u %u %u %u %u", &prompts, &row_pad, &col_pad, &blocks, &out_len, &metric, &lower); fclose(m);
  auto rb = rd<unsigned>(d, "row_bits"); auto ro = rd<unsigned long long>(d, "row_off"); auto rl = rd<unsigned>(d, "row_len");
  auto cb = rd<unsigned>(d, "col_bits"); auto co = rd<unsigned long long>(d, "col_off"); auto cl = rd<unsigned>(d, "col_len");
  auto words = rd<unsigned>(d, "words"); auto entries = rd<unsigned>(d, "entries"); auto expected = rd<float>(d, "expected");
  std::vector<float> out(out_len, 0.0f);
  std::barrier<> bar(256); BAR = &bar;
  for (unsigned b = 0; b < blocks; ++b) {
    blockIdx.x = b;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < 256; ++t) ts.emplace_back([&, t] {
      threadIdx.x = t;
      mp_tiles(rb.data(), ro.data(), rl.data(), row_pad, cb.data(), co.data(), cl.data(), col_pad, words.data(), prompts, entries.data(), (int)metric, (int)lower, out.data());
    });
    for (auto& t : ts) t.join();
  }
  size_t bad = 0;
  for (size_t i = 0; i < out_len; ++i) if (memcmp(&out[i], &expected[i], 4) != 0) { if (bad < 5) printf("mismatch at %zu: kernel %.9g twin %.9g\n", i, out[i], expected[i]); bad++; }
  printf("%s: %u blocks, %u outputs, %zu mismatches\n", d.c_str(), blocks, out_len, bad);
  return bad != 0;
}
"#;

/// The real kernel source (KERNEL_SRC), compiled with the host C++ compiler behind a small
/// CUDA shim and run with 256 threads per block, must give exactly the twin's output. Skipped
/// when no `g++` with C++20 is installed. (On a GPU machine the bench checks CUDA == CPU.)
#[test]
fn cuda_kernel_source_runs_like_the_twin() {
    use super::gpu_layout::*;
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("mp-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("kernel.cpp");
    std::fs::write(&src, format!("{CUDA_SHIM}{KERNEL_SRC}{CUDA_HARNESS}")).unwrap();
    let exe = dir.join("kernel");
    let built = Command::new("g++")
        .args([
            "-std=c++20",
            "-O1",
            "-pthread",
            "-Wno-unknown-pragmas",
            "-o",
        ])
        .arg(&exe)
        .arg(&src)
        .output();
    match built {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            // A compiler that cannot build it: only a syntax error in KERNEL_SRC is our bug.
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !err.contains("kernel.cpp") || err.contains("<barrier>"),
                "kernel source does not compile:\n{err}"
            );
            eprintln!("skipped: g++ cannot build the harness:\n{err}");
            return;
        }
        Err(_) => {
            eprintln!("skipped: no g++ on this machine");
            return;
        }
    }
    let q = random_collection(5, 150, 3, 300, 90, 10);
    let r = random_collection(6, 97, 3, 320, 70, 10);
    let cases: Vec<(&str, Job)> = vec![
        (
            "sym",
            Job {
                rows: &q,
                cols: &q,
                metric: Metric::Overlap,
                symmetric: true,
                lower: true,
                stripes: stripes::plan_full(150),
            },
        ),
        ("rect", Job::rect(&q, &r, Metric::Jaccard)),
    ];
    for (name, job) in cases {
        let sts = &job.stripes;
        let layout = build_layout(&job);
        let mut offsets = Vec::new();
        let mut total = 0;
        for st in sts {
            offsets.push(total);
            total += stripe_out_len(st, job.lower);
        }
        let entries = tile_entries(sts, &offsets, job.symmetric);
        let mut twin = Twin {
            layout: &layout,
            args: KernelArgs::of(&job),
        };
        let out = twin.execute(&entries, total).unwrap();
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let bytes32 = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let bytes64 = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let c = layout.cols();
        std::fs::write(d.join("row_bits"), bytes32(&layout.rows.bits)).unwrap();
        std::fs::write(d.join("row_off"), bytes64(&layout.rows.off)).unwrap();
        std::fs::write(d.join("row_len"), bytes32(&layout.rows.len)).unwrap();
        std::fs::write(d.join("col_bits"), bytes32(&c.bits)).unwrap();
        std::fs::write(d.join("col_off"), bytes64(&c.off)).unwrap();
        std::fs::write(d.join("col_len"), bytes32(&c.len)).unwrap();
        std::fs::write(d.join("words"), bytes32(&layout.words)).unwrap();
        std::fs::write(d.join("entries"), bytes32(&entries)).unwrap();
        std::fs::write(
            d.join("expected"),
            out.iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let meta = format!(
            "{} {} {} {} {} {} {}\n",
            job.prompts(),
            layout.rows.pad,
            c.pad,
            entries.len() / ENTRY,
            total,
            job.metric.code(),
            job.lower as u32
        );
        std::fs::write(d.join("meta"), meta).unwrap();
        let run = Command::new(&exe).arg(&d).output().unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && stdout.contains(" 0 mismatches"),
            "{name}: {stdout}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
