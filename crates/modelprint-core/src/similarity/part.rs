//! Shard parts: the blocks of one shard of a full matrix, and their merge.
//!
//! Part file (`.mppart`, little-endian, version 1):
//!
//! ```text
//! magic "MPSHARD\0" | version u32 | metric u32 (0 overlap, 1 jaccard) | n u64 | prompts u32
//! | block u32 (512) | shard index u32 | shard count u32 | sketch fingerprint [16]
//! | tile count u64 | n model ids (u32 byte length + UTF-8 each)
//! | tiles: bi u32, bj u32, upper f32[rows(bi) × cols(bj)] = M[i][j],
//! |        and when bi < bj: lower f32[cols(bj) × rows(bi)] = M[j][i]
//! | footer "MPSHEND\0" + xxh3-64 of every byte before the footer
//! ```
//! Values are final (diagonal 1, failed -1), so a merge only copies.

use std::io::Write;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::stripes::{shard_tiles, ShardSpec, Stripe, BLOCK};
use super::{fixup, Matrix, Metric, SimilarityError};
use crate::error::Error;
use crate::sketch::{write_atomic, SketchCollection};

const MAGIC: &[u8; 8] = b"MPSHARD\0";
const FOOTER: &[u8; 8] = b"MPSHEND\0";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct PartTile {
    pub bi: u32,
    pub bj: u32,
    /// `M[i][j]`, i in block bi (rows), j in block bj; row-major.
    pub upper: Vec<f32>,
    /// `M[j][i]` (j rows); empty for a diagonal tile (whose `upper` is the whole square).
    pub lower: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardPart {
    pub n: usize,
    pub prompts: u32,
    pub metric: Metric,
    pub spec: ShardSpec,
    pub fingerprint: [u8; 16],
    pub models: Vec<String>,
    pub tiles: Vec<PartTile>,
    /// The file it was read from (for messages).
    pub source: Option<PathBuf>,
}

fn block_range(b: u32, n: usize) -> (usize, usize) {
    let s = b as usize * BLOCK;
    (s, (s + BLOCK).min(n))
}

impl ShardPart {
    pub(crate) fn new(
        s: &SketchCollection,
        spec: ShardSpec,
        metric: Metric,
        fingerprint: [u8; 16],
        tiles: usize,
    ) -> Self {
        ShardPart {
            n: s.len(),
            prompts: s.prompts() as u32,
            metric,
            spec,
            fingerprint,
            models: s.models().to_vec(),
            tiles: Vec::with_capacity(tiles),
            source: None,
        }
    }

    /// Cuts a finished stripe into its tiles (whole blocks of rows × one column block).
    pub(crate) fn take_stripe(
        &mut self,
        s: &SketchCollection,
        st: &Stripe,
        u: &[f32],
        l: Option<&[f32]>,
    ) {
        let n = self.n;
        let w = st.c1 - st.c0;
        let lv = l.unwrap_or(u);
        let bj = (st.c0 / BLOCK) as u32;
        let mut bi = (st.r0 / BLOCK) as u32;
        while (bi as usize) * BLOCK < st.r1 {
            let (i0, i1) = block_range(bi, n);
            let mut upper = Vec::with_capacity((i1 - i0) * w);
            let mut lower = Vec::new();
            for i in i0..i1 {
                let fi = s.is_failed(i);
                for j in st.c0..st.c1 {
                    let v = if i == j {
                        if fi {
                            -1.0
                        } else {
                            1.0
                        }
                    } else if i < j {
                        u[(i - st.r0) * w + (j - st.c0)]
                    } else {
                        // below the diagonal inside a diagonal tile: M[i][j], j < i
                        lv[(j - st.r0) * w + (i - st.c0)]
                    };
                    upper.push(if i == j {
                        v
                    } else {
                        fixup(v, fi, s.is_failed(j))
                    });
                }
            }
            if bi != bj {
                lower.reserve((i1 - i0) * w);
                for j in st.c0..st.c1 {
                    let fj = s.is_failed(j);
                    for i in i0..i1 {
                        lower.push(fixup(lv[(i - st.r0) * w + (j - st.c0)], fj, s.is_failed(i)));
                    }
                }
            }
            self.tiles.push(PartTile {
                bi,
                bj,
                upper,
                lower,
            });
            bi += 1;
        }
    }

    pub(crate) fn check_complete(&self, tiles: &[(u32, u32)]) -> Result<(), SimilarityError> {
        let mut got: Vec<(u32, u32)> = self.tiles.iter().map(|t| (t.bi, t.bj)).collect();
        got.sort_unstable();
        let mut want = tiles.to_vec();
        want.sort_unstable();
        if got != want {
            return Err(Error::input(format!(
                "internal: shard {}/{} produced {} tiles, expected {}",
                self.spec.index,
                self.spec.count,
                got.len(),
                want.len()
            )));
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: std::io::Error) -> SimilarityError {
    Error::io(path, &e)
}

/// Writes a part file atomically.
pub fn write_part(part: &ShardPart, path: &Path) -> Result<(), SimilarityError> {
    write_atomic(path, |w| {
        let mut h = Xxh3::new();
        let mut put =
            |w: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| -> std::io::Result<()> {
                h.update(b);
                w.write_all(b)
            };
        put(w, MAGIC)?;
        put(w, &VERSION.to_le_bytes())?;
        put(w, &part.metric.code().to_le_bytes())?;
        put(w, &(part.n as u64).to_le_bytes())?;
        put(w, &part.prompts.to_le_bytes())?;
        put(w, &(BLOCK as u32).to_le_bytes())?;
        put(w, &(part.spec.index as u32).to_le_bytes())?;
        put(w, &(part.spec.count as u32).to_le_bytes())?;
        put(w, &part.fingerprint)?;
        put(w, &(part.tiles.len() as u64).to_le_bytes())?;
        for m in &part.models {
            put(w, &(m.len() as u32).to_le_bytes())?;
            put(w, m.as_bytes())?;
        }
        let mut buf = Vec::new();
        for t in &part.tiles {
            put(w, &t.bi.to_le_bytes())?;
            put(w, &t.bj.to_le_bytes())?;
            for v in [&t.upper, &t.lower] {
                buf.clear();
                for x in v.iter() {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                put(w, &buf)?;
            }
        }
        let digest = h.digest();
        w.write_all(FOOTER)?;
        w.write_all(&digest.to_le_bytes())
    })
    .map_err(|e| io_err(path, e))
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.b.len() - self.at
    }
    fn take(&mut self, k: usize) -> Result<&[u8], SimilarityError> {
        if k > self.remaining() {
            return Err(
                Error::input("part file is truncated").subject(self.path.display().to_string())
            );
        }
        let s = &self.b[self.at..self.at + k];
        self.at += k;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, SimilarityError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, SimilarityError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn f32s(&mut self, k: usize) -> Result<Vec<f32>, SimilarityError> {
        let bytes = k.checked_mul(4).ok_or_else(|| {
            Error::input("part file is truncated").subject(self.path.display().to_string())
        })?;
        Ok(self
            .take(bytes)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
}

/// Reads and checks a part file. Every count in it (models, tiles, tile sizes) is checked
/// against the bytes the file still holds before anything is allocated from it.
pub fn read_part(path: &Path) -> Result<ShardPart, SimilarityError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let bad = |m: &str| {
        Error::input(m.to_string())
            .subject(path.display().to_string())
            .hint("recompute this shard with `modelprint similarity --shard i/n`")
    };
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(bad("not a modelprint shard part file (bad magic bytes)"));
    }
    if bytes.len() < 16 + 8 || &bytes[bytes.len() - 16..bytes.len() - 8] != FOOTER {
        return Err(bad("part file is truncated (no end marker)"));
    }
    let body = &bytes[..bytes.len() - 16];
    let stored = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
    if xxh3_64(body) != stored {
        return Err(bad("checksum mismatch: the part file is corrupt"));
    }
    let mut r = Reader {
        b: body,
        at: 8,
        path,
    };
    let version = r.u32()?;
    if version != VERSION {
        return Err(bad(&format!("unsupported part version {version}")));
    }
    let metric = Metric::from_code(r.u32()?).ok_or_else(|| bad("unknown metric"))?;
    let n = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
    let prompts = r.u32()?;
    let block = r.u32()? as usize;
    if block != BLOCK {
        return Err(bad(&format!("block size {block}, this build uses {BLOCK}")));
    }
    let index = r.u32()? as usize;
    let count = r.u32()? as usize;
    let spec = ShardSpec::new(index, count).map_err(|e| bad(&e.to_string()))?;
    let fingerprint: [u8; 16] = r.take(16)?.try_into().unwrap();
    let ntiles = r.u64()?;
    // A model id takes at least its 4-byte length, a tile at least its 8-byte position.
    if n > r.remaining() / 4 {
        return Err(bad(&format!(
            "corrupt header: field n ({n} models) is more than the file can hold"
        )));
    }
    if ntiles > (r.remaining() / 8) as u64 {
        return Err(bad(&format!(
            "corrupt header: field tile count ({ntiles}) is more than the file can hold"
        )));
    }
    let ntiles = ntiles as usize;
    let mut models = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.u32()? as usize;
        let s = std::str::from_utf8(r.take(len)?).map_err(|_| bad("model id is not UTF-8"))?;
        models.push(s.to_string());
    }
    let nb = n.div_ceil(BLOCK) as u32;
    let mut tiles = Vec::with_capacity(ntiles);
    for _ in 0..ntiles {
        let bi = r.u32()?;
        let bj = r.u32()?;
        if bi > bj || bj >= nb {
            return Err(bad(&format!("tile ({bi}, {bj}) outside the matrix")));
        }
        let (i0, i1) = block_range(bi, n);
        let (j0, j1) = block_range(bj, n);
        let upper = r.f32s((i1 - i0) * (j1 - j0))?;
        let lower = if bi != bj {
            r.f32s((i1 - i0) * (j1 - j0))?
        } else {
            Vec::new()
        };
        tiles.push(PartTile {
            bi,
            bj,
            upper,
            lower,
        });
    }
    if r.at != body.len() {
        return Err(bad("trailing bytes after the last tile"));
    }
    Ok(ShardPart {
        n,
        prompts,
        metric,
        spec,
        fingerprint,
        models,
        tiles,
        source: Some(path.to_path_buf()),
    })
}

fn name(p: &ShardPart) -> String {
    match &p.source {
        Some(s) => s.display().to_string(),
        None => format!("shard {}/{}", p.spec.index, p.spec.count),
    }
}

/// Assembles the full matrix from the parts of every shard (each exactly once, all from the
/// same sketches, metric and shard count). Returns the model ids and the matrix.
pub fn merge_parts(parts: &[ShardPart]) -> Result<(Vec<String>, Matrix), SimilarityError> {
    merge_checked(parts).map_err(|e| {
        e.hint("give one part of every shard, all computed with `modelprint similarity --shard i/n` from the same sketches and metric")
    })
}

fn merge_checked(parts: &[ShardPart]) -> Result<(Vec<String>, Matrix), SimilarityError> {
    let first = parts
        .first()
        .ok_or_else(|| Error::usage("no part files to merge"))?;
    let count = first.spec.count;
    for p in parts {
        let diff = |what: &str| {
            Error::input(format!(
                "{} does not belong with {}: different {what}",
                name(p),
                name(first)
            ))
        };
        if p.spec.count != count {
            return Err(diff("shard count"));
        }
        if p.n != first.n || p.models != first.models {
            return Err(diff("models"));
        }
        if p.fingerprint != first.fingerprint || p.prompts != first.prompts {
            return Err(diff("sketches (fingerprint)"));
        }
        if p.metric != first.metric {
            return Err(diff("metric"));
        }
    }
    // Each shard exactly once: compare the given indexes (never allocate by `count`, which
    // comes from the files).
    let mut given: Vec<(usize, usize)> = parts
        .iter()
        .enumerate()
        .map(|(k, p)| (p.spec.index, k))
        .collect();
    given.sort_unstable();
    for w in given.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(Error::input(format!(
                "shard {}/{count} is given twice ({} and {})",
                w[0].0,
                name(&parts[w[0].1]),
                name(&parts[w[1].1])
            )));
        }
    }
    if given.len() != count {
        let mut missing = Vec::new();
        let mut next = given.iter().map(|g| g.0).peekable();
        for i in 0..count {
            if next.peek() == Some(&i) {
                next.next();
            } else {
                missing.push(format!("{i}/{count}"));
                if missing.len() == 10 {
                    missing.push("…".into());
                    break;
                }
            }
        }
        return Err(Error::input(format!(
            "missing shard part(s): {} ({} of {count} given; run `modelprint similarity --shard i/{count}` for each)",
            missing.join(", "),
            given.len()
        )));
    }
    let n = first.n;
    // Before allocating the n × n matrix: the parts must hold exactly its n² scores.
    let held: u128 = parts
        .iter()
        .flat_map(|p| p.tiles.iter())
        .map(|t| (t.upper.len() + t.lower.len()) as u128)
        .sum();
    if held != n as u128 * n as u128 {
        let e = Error::input(format!(
            "the parts hold {held} scores but a {n} × {n} matrix needs {} (a part is incomplete or corrupt)",
            n as u128 * n as u128
        ));
        return Err(if parts.len() == 1 {
            e.subject(name(first))
        } else {
            e
        });
    }
    let mut data = crate::limits::zeroed2::<f32>("the merged n × n matrix", n, n)?;
    for p in parts {
        let mut want = shard_tiles(n, p.spec);
        want.sort_unstable();
        let mut got: Vec<(u32, u32)> = p.tiles.iter().map(|t| (t.bi, t.bj)).collect();
        got.sort_unstable();
        if got != want {
            return Err(Error::input(format!(
                "{}: holds {} tiles, shard {}/{count} should hold {}",
                name(p),
                got.len(),
                p.spec.index,
                want.len()
            )));
        }
        for t in &p.tiles {
            let (i0, i1) = block_range(t.bi, n);
            let (j0, j1) = block_range(t.bj, n);
            let w = j1 - j0;
            for i in i0..i1 {
                data[i * n + j0..i * n + j1]
                    .copy_from_slice(&t.upper[(i - i0) * w..(i - i0 + 1) * w]);
            }
            if t.bi != t.bj {
                let h = i1 - i0;
                for j in j0..j1 {
                    data[j * n + i0..j * n + i1]
                        .copy_from_slice(&t.lower[(j - j0) * h..(j - j0 + 1) * h]);
                }
            }
        }
    }
    Ok((
        first.models.clone(),
        Matrix {
            rows: n,
            cols: n,
            data,
        },
    ))
}

/// Reads part files and merges them.
pub fn merge_files(paths: &[PathBuf]) -> Result<(Vec<String>, Matrix, Metric), SimilarityError> {
    let parts = paths
        .iter()
        .map(|p| read_part(p))
        .collect::<Result<Vec<_>, _>>()?;
    let metric = parts.first().map(|p| p.metric).unwrap_or(Metric::Overlap);
    let (models, m) = merge_parts(&parts)?;
    Ok((models, m, metric))
}
