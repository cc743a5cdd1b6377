//! The compact `.mpsk` index (format version 3): delta-coded ids plus a consistent
//! subsample, for collections of 100,000 models that must stay memory-mapped in a few GiB.
//!
//! At P = 32 and k = 2000 a model has 64,000 ids; as `u32` (versions 1–2) 100,000 models
//! take 25.6 GB. Here every set is stored as gaps: `v₀ = id₀ + 1`, `vᵢ = idᵢ − idᵢ₋₁` (all
//! ≥ 1). A gap of 1–255 is one byte; a larger one is a 0 byte and the gap as LEB128 (at most
//! 5 bytes). Bottom-k sets of k = 2000 in a 152k vocabulary have gaps of ~76 on average, so
//! an id costs ~1.07 bytes (~6.9 GB at n = 100,000).
//!
//! The *sample* section holds, per model, the sorted "columns" `p · vocab + id` of the ids
//! whose [`sample_hash`]`(p, id)` is below the header's threshold: the same `(prompt, id)`
//! pairs are kept in every model, so `|sample(A) ∩ sample(B)|` is an unbiased estimate of
//! `threshold / 2³² · Σₚ |Aₚ ∩ Bₚ|`. The two-stage engines ([`crate::similarity::sampled`])
//! find candidates on the sample and rescore them exactly from the delta-coded ids.
//!
//! ```text
//! offset size  field
//!      0    8  magic "MPSKETCH"
//!      8    4  version (u32) = 3
//!     12    4  header length (u32) = 256
//!     16    4  vocab_size      20  4  k      24  4  prompts P
//!     28    4  sample threshold (u32, ≥ 1): (p, id) is sampled iff sample_hash(p, id) < it
//!     32    8  models n (u64)
//!     40   32  prompt-set hash
//!     72    8  data offset (= 256): model blocks of delta-coded ids, model after model
//!     80    8  data length in bytes
//!     88    8  names offset: (n+1) u64 offsets into the UTF-8 name bytes that follow them
//!     96    8  names length in bytes (offset table + UTF-8)
//!    104    8  flags offset: n u32 (bit 0 = failed)
//!    112    8  lengths offset: n×P u32
//!    120    8  block offsets offset: (n+1) u64 byte offsets of the model blocks in the data
//!    128    8  block checksums offset: n u64, xxh3-64 of each model's block
//!    136    8  sample offsets offset: (n+1) u64 entry offsets into the sample
//!    144    8  sample offset: the sampled columns (u32), model after model
//!    152    8  sample count (u64)
//!    160    8  file length (footer included)
//!    168   88  reserved (0)
//!   file length − 16: footer "MPSKEND\0" + xxh3-64 of the header and of every byte from the
//!   end of the data section to the footer (the data section has its per-block checksums)
//! ```
//!
//! Every section starts at a multiple of 64. Opening checks the header, the footer checksum
//! (not the data: at n = 100,000 that would read 7 GB for a 1-model query), every table and
//! the sample; a model's block is checked against its checksum when it is decoded with
//! `verify`, and decoding is bounds-checked either way: a hostile file gives coded errors.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::{
    as_bytes, SketchCollection, SketchError, SketchErrorKind, SketchMeta, Storage, FLAG_FAILED,
};
use crate::error::Error;
use crate::limits;

pub const VERSION_COMPACT: u32 = 3;
pub const HEADER_LEN_COMPACT: usize = 256;
const FOOTER_LEN: usize = 16;
const ALIGN: u64 = 64;
/// The default sample rate, 1/128 of the (prompt, id) pairs.
pub const DEFAULT_SAMPLE_THRESHOLD: u32 = 1 << 25;

fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// The hash that decides which `(prompt, id)` pairs are sampled (a 64-bit finaliser,
/// MurmurHash3's fmix64, of `p << 32 | id`, top 32 bits). Fixed by the format.
#[inline]
pub fn sample_hash(p: u32, id: u32) -> u32 {
    let mut x = ((p as u64) << 32) | id as u64;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> 32) as u32
}

/// The threshold for a sample rate (a fraction in (0, 1]).
pub fn threshold_for_rate(rate: f64) -> Result<u32, Error> {
    if !(rate > 0.0 && rate <= 1.0) {
        return Err(Error::usage(format!(
            "sample rate must be in (0, 1], got {rate}"
        )));
    }
    Ok(((rate * 4294967296.0).round() as u64).clamp(1, u32::MAX as u64) as u32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    data_offset: u64,
    data_len: u64,
    names_offset: u64,
    names_len: u64,
    flags_offset: u64,
    lengths_offset: u64,
    blocks_offset: u64,
    sums_offset: u64,
    sample_offsets_offset: u64,
    sample_offset: u64,
    sample_count: u64,
    footer_offset: u64,
}

impl Layout {
    fn compute(n: u64, p: u64, name_bytes: u64, data_len: u64, sample_count: u64) -> Layout {
        let data_offset = HEADER_LEN_COMPACT as u64;
        let names_offset = align(data_offset + data_len);
        let names_len = 8 * (n + 1) + name_bytes;
        let flags_offset = align(names_offset + names_len);
        let lengths_offset = align(flags_offset + 4 * n);
        let blocks_offset = align(lengths_offset + 4 * n * p);
        let sums_offset = align(blocks_offset + 8 * (n + 1));
        let sample_offsets_offset = align(sums_offset + 8 * n);
        let sample_offset = align(sample_offsets_offset + 8 * (n + 1));
        let footer_offset = align(sample_offset + 4 * sample_count);
        Layout {
            data_offset,
            data_len,
            names_offset,
            names_len,
            flags_offset,
            lengths_offset,
            blocks_offset,
            sums_offset,
            sample_offsets_offset,
            sample_offset,
            sample_count,
            footer_offset,
        }
    }
    fn file_len(&self) -> u64 {
        self.footer_offset + FOOTER_LEN as u64
    }
    fn tail_start(&self) -> u64 {
        self.data_offset + self.data_len
    }
}

fn header_bytes(meta: &SketchMeta, threshold: u32, n: u64, l: &Layout) -> [u8; HEADER_LEN_COMPACT] {
    let mut h = [0u8; HEADER_LEN_COMPACT];
    h[..8].copy_from_slice(super::binary::MAGIC);
    h[8..12].copy_from_slice(&VERSION_COMPACT.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_LEN_COMPACT as u32).to_le_bytes());
    h[16..20].copy_from_slice(&meta.vocab_size.to_le_bytes());
    h[20..24].copy_from_slice(&meta.k.to_le_bytes());
    h[24..28].copy_from_slice(&meta.prompts.to_le_bytes());
    h[28..32].copy_from_slice(&threshold.to_le_bytes());
    h[32..40].copy_from_slice(&n.to_le_bytes());
    h[40..72].copy_from_slice(&meta.prompt_hash);
    for (at, v) in [
        (72, l.data_offset),
        (80, l.data_len),
        (88, l.names_offset),
        (96, l.names_len),
        (104, l.flags_offset),
        (112, l.lengths_offset),
        (120, l.blocks_offset),
        (128, l.sums_offset),
        (136, l.sample_offsets_offset),
        (144, l.sample_offset),
        (152, l.sample_count),
        (160, l.file_len()),
    ] {
        h[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    h
}

/// Appends the delta code of one ascending set to `out`.
fn encode_set(ids: &[u32], out: &mut Vec<u8>) {
    let mut base = 0u64;
    for &id in ids {
        let v = id as u64 + 1 - base;
        if v <= 255 {
            out.push(v as u8);
        } else {
            out.push(0);
            let mut x = v;
            while x >= 0x80 {
                out.push((x as u8) | 0x80);
                x >>= 7;
            }
            out.push(x as u8);
        }
        base = id as u64 + 1;
    }
}

/// Writes a compact index model by model (the ids of one model at a time in memory, plus the
/// tables: ~0.5 KB per model and the sample), atomically (temp file, then rename).
pub struct CompactWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<File>,
    meta: SketchMeta,
    threshold: u32,
    names: Vec<String>,
    seen: std::collections::HashSet<String>,
    flags: Vec<u32>,
    lengths: Vec<u32>,
    blocks: Vec<u64>,
    sums: Vec<u64>,
    sample_offsets: Vec<u64>,
    sample: Vec<u32>,
    buf: Vec<u8>,
}

impl CompactWriter {
    pub fn create(path: &Path, meta: SketchMeta, threshold: u32) -> Result<Self, Error> {
        limits::check_vocab("vocab_size", meta.vocab_size as u64)?;
        limits::check_prompts("prompts", meta.prompts as u64)?;
        if threshold == 0 {
            return Err(Error::usage("the sample threshold must be at least 1"));
        }
        if (meta.prompts as u64) * (meta.vocab_size as u64) > u32::MAX as u64 {
            return Err(Error::input(format!(
                "{} prompts × vocabulary {} is more than a compact index can address (2³² prompt-id pairs)",
                meta.prompts, meta.vocab_size
            )));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, &e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, &e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 22, file);
        out.write_all(&[0u8; HEADER_LEN_COMPACT])
            .map_err(|e| Error::io(&tmp, &e))?;
        Ok(CompactWriter {
            path: path.to_path_buf(),
            tmp,
            out,
            meta,
            threshold,
            names: Vec::new(),
            seen: Default::default(),
            flags: Vec::new(),
            lengths: Vec::new(),
            blocks: vec![0],
            sums: Vec::new(),
            sample_offsets: vec![0],
            sample: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Adds a model: its P sets (each ascending, unique, below the vocabulary, at most k).
    pub fn push<S: AsRef<[u32]>>(
        &mut self,
        name: &str,
        failed: bool,
        sets: &[S],
    ) -> Result<(), Error> {
        let p = self.meta.prompts as usize;
        let located = |e: SketchErrorKind| Error::from(SketchError::new(e).model(name));
        if sets.len() != p {
            return Err(located(SketchErrorKind::WrongPromptCount {
                expected: p,
                found: sets.len(),
            }));
        }
        if !self.seen.insert(name.to_string()) {
            return Err(located(SketchErrorKind::DuplicateModel));
        }
        self.buf.clear();
        for (pi, s) in sets.iter().enumerate() {
            let s = s.as_ref();
            super::validate_set(s, self.meta.vocab_size, self.meta.k)
                .map_err(|e| Error::from(SketchError::new(e).model(name).prompt(pi)))?;
            if failed && !s.is_empty() {
                return Err(Error::from(
                    SketchError::invalid("model is flagged as failed but has ids").model(name),
                ));
            }
            self.lengths.push(s.len() as u32);
            encode_set(s, &mut self.buf);
            let base = pi as u32 * self.meta.vocab_size;
            for &id in s {
                if sample_hash(pi as u32, id) < self.threshold {
                    self.sample.push(base + id);
                }
            }
        }
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io(&self.tmp, &e))?;
        self.blocks
            .push(self.blocks.last().unwrap() + self.buf.len() as u64);
        self.sums.push(xxh3_64(&self.buf));
        self.sample_offsets.push(self.sample.len() as u64);
        self.names.push(name.to_string());
        self.flags.push(if failed { FLAG_FAILED } else { 0 });
        Ok(())
    }

    /// Writes the tables, the header and the footer, and renames the file into place.
    pub fn finish(self) -> Result<(), Error> {
        let tmp = self.tmp.clone();
        let r = self.finish_inner();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    fn finish_inner(mut self) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::io(&self.tmp, &e);
        let n = self.names.len() as u64;
        let p = self.meta.prompts as u64;
        let name_bytes: u64 = self.names.iter().map(|m| m.len() as u64).sum();
        let data_len = *self.blocks.last().unwrap();
        let l = Layout::compute(n, p, name_bytes, data_len, self.sample.len() as u64);
        let mut pos = l.tail_start();
        let mut tail = Xxh3::new();
        let mut put = |w: &mut std::io::BufWriter<File>, pos: &mut u64, at: u64, b: &[u8]| {
            let zeros = [0u8; 64];
            while *pos < at {
                let k = ((at - *pos) as usize).min(64);
                w.write_all(&zeros[..k])?;
                tail.update(&zeros[..k]);
                *pos += k as u64;
            }
            w.write_all(b)?;
            tail.update(b);
            *pos += b.len() as u64;
            std::io::Result::Ok(())
        };
        let w = &mut self.out;
        let mut names = Vec::with_capacity(l.names_len as usize);
        let mut off = 0u64;
        names.extend_from_slice(&off.to_le_bytes());
        for m in &self.names {
            off += m.len() as u64;
            names.extend_from_slice(&off.to_le_bytes());
        }
        for m in &self.names {
            names.extend_from_slice(m.as_bytes());
        }
        put(w, &mut pos, l.names_offset, &names).map_err(io)?;
        put(w, &mut pos, l.flags_offset, as_bytes(&self.flags)).map_err(io)?;
        put(w, &mut pos, l.lengths_offset, as_bytes(&self.lengths)).map_err(io)?;
        put(w, &mut pos, l.blocks_offset, u64_bytes(&self.blocks)).map_err(io)?;
        put(w, &mut pos, l.sums_offset, u64_bytes(&self.sums)).map_err(io)?;
        put(
            w,
            &mut pos,
            l.sample_offsets_offset,
            u64_bytes(&self.sample_offsets),
        )
        .map_err(io)?;
        for chunk in self.sample.chunks(1 << 20) {
            let at = pos.max(l.sample_offset);
            put(w, &mut pos, at, as_bytes(chunk)).map_err(io)?;
        }
        put(w, &mut pos, l.footer_offset, &[]).map_err(io)?;
        debug_assert_eq!(pos, l.footer_offset);
        let header = header_bytes(&self.meta, self.threshold, n, &l);
        let mut h = Xxh3::new();
        h.update(&header);
        // Xxh3 has no "prepend": hash the header, then the tail digest (fixed-size).
        h.update(&tail.digest128().to_le_bytes());
        let digest = h.digest();
        w.write_all(super::binary::FOOTER_MAGIC).map_err(io)?;
        w.write_all(&digest.to_le_bytes()).map_err(io)?;
        w.flush().map_err(io)?;
        let file = w.get_mut();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, &e))
    }
}

fn u64_bytes(v: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding and any byte pattern is a valid u8 (little-endian only, as
    // `as_bytes`).
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// Writes a collection as a compact index (version 3). Anchored collections (the §1.5 matrix
/// protocol, hundreds of models) keep version 2.
pub fn write_compact(c: &SketchCollection, path: &Path, threshold: u32) -> Result<(), Error> {
    if c.anchors().is_some() {
        return Err(Error::usage(
            "anchored collections (the §1.5 matrix protocol) are written as version 2, not as a compact index",
        ));
    }
    let mut w = CompactWriter::create(path, c.meta().clone(), threshold)?;
    let p = c.prompts();
    let mut sets: Vec<&[u32]> = Vec::with_capacity(p);
    for m in 0..c.len() {
        sets.clear();
        sets.extend((0..p).map(|q| c.set(m, q)));
        w.push(&c.models()[m], c.is_flagged_failed(m), &sets)?;
    }
    w.finish()
}

impl std::fmt::Debug for CompactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactIndex")
            .field("meta", &self.meta)
            .field("models", &self.models.len())
            .field("source", &self.source)
            .finish()
    }
}

/// A compact index, memory-mapped.
pub struct CompactIndex {
    map: Mmap,
    meta: SketchMeta,
    threshold: u32,
    models: Vec<String>,
    failed: Vec<bool>,
    layout: Layout,
    source: Option<PathBuf>,
}

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn typed<T>(b: &[u8], at: u64, count: u64) -> &[T] {
    let size = std::mem::size_of::<T>();
    let bytes = &b[at as usize..at as usize + count as usize * size];
    assert_eq!(bytes.as_ptr() as usize % size, 0, "unaligned section");
    // SAFETY: bounds checked by the slice above, alignment asserted; u32/u64 accept any bits.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, count as usize) }
}

/// True when the bytes start like a compact (version 3) `.mpsk`.
pub fn is_compact(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..8] == super::binary::MAGIC && rd_u32(bytes, 8) == VERSION_COMPACT
}

impl CompactIndex {
    /// Opens (memory-maps) a compact index; see the module docs for what is checked.
    pub fn open(path: &Path) -> Result<CompactIndex, Error> {
        let at = |e: SketchError| Error::from(e.in_file(path));
        let file = File::open(path).map_err(|e| at(e.into()))?;
        // SAFETY: read-only map; modelprint never rewrites sketch files in place.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| at(e.into()))?;
        let mut ix = Self::parse(map).map_err(at)?;
        ix.source = Some(path.to_path_buf());
        Ok(ix)
    }

    /// A compact index from bytes (copied into memory).
    pub fn from_bytes(bytes: &[u8]) -> Result<CompactIndex, Error> {
        let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1))
            .map_err(|e| Error::from(SketchError::from(e)))?;
        map[..bytes.len()].copy_from_slice(bytes);
        let map = map
            .make_read_only()
            .map_err(|e| Error::from(SketchError::from(e)))?;
        if bytes.is_empty() {
            return Err(SketchError::new(SketchErrorKind::Truncated {
                expected: (HEADER_LEN_COMPACT + FOOTER_LEN) as u64,
                found: 0,
            })
            .into());
        }
        Self::parse(map).map_err(Error::from)
    }

    fn parse(map: Mmap) -> Result<CompactIndex, SketchError> {
        let b: &[u8] = &map;
        let found = b.len() as u64;
        let trunc = SketchError::new(SketchErrorKind::Truncated {
            expected: (HEADER_LEN_COMPACT + FOOTER_LEN) as u64,
            found,
        });
        if b.len() < 8 {
            return Err(trunc);
        }
        if &b[..8] != super::binary::MAGIC {
            return Err(SketchError::new(SketchErrorKind::BadMagic));
        }
        if b.len() < HEADER_LEN_COMPACT + FOOTER_LEN {
            return Err(trunc);
        }
        let version = rd_u32(b, 8);
        if version != VERSION_COMPACT {
            return Err(SketchError::new(SketchErrorKind::UnsupportedVersion(
                version,
            )));
        }
        if rd_u32(b, 12) as usize != HEADER_LEN_COMPACT {
            return Err(SketchError::invalid(format!(
                "header length {}, expected {HEADER_LEN_COMPACT}",
                rd_u32(b, 12)
            )));
        }
        let file_len = rd_u64(b, 160);
        if file_len != found {
            return Err(SketchError::new(SketchErrorKind::Truncated {
                expected: file_len,
                found,
            }));
        }
        let footer = b.len() - FOOTER_LEN;
        if &b[footer..footer + 8] != super::binary::FOOTER_MAGIC {
            return Err(SketchError::invalid(
                "missing end marker (file truncated or corrupt)",
            ));
        }
        let bad = |what: &str| SketchError::invalid(format!("corrupt header: {what}"));
        let data_len = rd_u64(b, 80);
        if rd_u64(b, 72) != HEADER_LEN_COMPACT as u64 || data_len > found {
            return Err(bad("data section"));
        }
        let tail_start = HEADER_LEN_COMPACT + data_len as usize;
        if tail_start > footer {
            return Err(bad("data section is longer than the file"));
        }
        let mut tail = Xxh3::new();
        tail.update(&b[tail_start..footer]);
        let mut h = Xxh3::new();
        h.update(&b[..HEADER_LEN_COMPACT]);
        h.update(&tail.digest128().to_le_bytes());
        let (stored, computed) = (rd_u64(b, footer + 8), h.digest());
        if stored != computed {
            return Err(SketchError::new(SketchErrorKind::Checksum {
                stored,
                computed,
            }));
        }
        if b[168..HEADER_LEN_COMPACT].iter().any(|&x| x != 0) {
            return Err(bad("reserved bytes are not zero"));
        }
        let meta = SketchMeta {
            vocab_size: rd_u32(b, 16),
            k: rd_u32(b, 20),
            prompts: rd_u32(b, 24),
            prompt_hash: b[40..72].try_into().unwrap(),
        };
        let threshold = rd_u32(b, 28);
        let n = rd_u64(b, 32);
        let p = meta.prompts as u64;
        limits::check_vocab("header field vocab_size", meta.vocab_size as u64)?;
        limits::check_prompts("header field prompts", p)?;
        if threshold == 0 {
            return Err(bad("sample threshold 0"));
        }
        if p * meta.vocab_size as u64 > u32::MAX as u64 {
            return Err(bad("prompts × vocabulary does not fit 32 bits"));
        }
        let sample_count = rd_u64(b, 152);
        let names_len = rd_u64(b, 96);
        if n > found / 8
            || sample_count > found / 4
            || p.saturating_mul(n) > found / 4
            || names_len > found
        {
            return Err(bad("counts are more than the file can hold"));
        }
        let name_bytes = names_len
            .checked_sub(8 * (n + 1))
            .ok_or_else(|| bad("names length"))?;
        let l = Layout::compute(n, p, name_bytes, data_len, sample_count);
        let stored_offsets = [88, 104, 112, 120, 128, 136, 144].map(|at| rd_u64(b, at));
        let expected = [
            l.names_offset,
            l.flags_offset,
            l.lengths_offset,
            l.blocks_offset,
            l.sums_offset,
            l.sample_offsets_offset,
            l.sample_offset,
        ];
        if stored_offsets != expected || l.file_len() != file_len {
            return Err(bad("section offsets do not match the counts"));
        }
        // Names.
        let n_us = n as usize;
        let no = l.names_offset as usize;
        let name_base = no + 8 * (n_us + 1);
        let mut models = Vec::with_capacity(n_us);
        let mut prev = rd_u64(b, no);
        if prev != 0 {
            return Err(bad("first name offset is not 0"));
        }
        let mut seen = std::collections::HashSet::with_capacity(n_us);
        for i in 0..n_us {
            let next = rd_u64(b, no + 8 * (i + 1));
            if next < prev || next > name_bytes {
                return Err(bad("name offsets"));
            }
            let s = std::str::from_utf8(&b[name_base + prev as usize..name_base + next as usize])
                .map_err(|_| SketchError::invalid(format!("model #{i}: id is not UTF-8")))?;
            if !seen.insert(s) {
                return Err(SketchError::new(SketchErrorKind::DuplicateModel).model(s));
            }
            models.push(s.to_string());
            prev = next;
        }
        if prev != name_bytes {
            return Err(bad("names length"));
        }
        let flags: &[u32] = typed(b, l.flags_offset, n);
        let lengths: &[u32] = typed(b, l.lengths_offset, n * p);
        let blocks: &[u64] = typed(b, l.blocks_offset, n + 1);
        let so: &[u64] = typed(b, l.sample_offsets_offset, n + 1);
        let sample: &[u32] = typed(b, l.sample_offset, sample_count);
        if blocks[0] != 0 || blocks[n_us] != data_len || blocks.windows(2).any(|w| w[1] < w[0]) {
            return Err(bad("block offsets"));
        }
        if so[0] != 0 || so[n_us] != sample_count || so.windows(2).any(|w| w[1] < w[0]) {
            return Err(bad("sample offsets"));
        }
        let cols = p * meta.vocab_size as u64;
        let mut failed = Vec::with_capacity(n_us);
        for m in 0..n_us {
            let name = &models[m];
            let lens = &lengths[m * p as usize..(m + 1) * p as usize];
            if let Some(q) = lens.iter().position(|&x| x > meta.k) {
                return Err(SketchError::new(SketchErrorKind::TooLong {
                    len: lens[q] as usize,
                    k: meta.k,
                })
                .model(name)
                .prompt(q));
            }
            let total: u64 = lens.iter().map(|&x| x as u64).sum();
            // A set of `len` ids takes at least `len` and at most 6·len bytes.
            let size = blocks[m + 1] - blocks[m];
            if size < total || size > 6 * total {
                return Err(SketchError::invalid(format!(
                    "block of {size} bytes cannot hold {total} ids"
                ))
                .model(name));
            }
            if flags[m] & !FLAG_FAILED != 0 {
                return Err(SketchError::invalid("unknown model flags").model(name));
            }
            if flags[m] & FLAG_FAILED != 0 && total != 0 {
                return Err(
                    SketchError::invalid("model is flagged as failed but has ids").model(name),
                );
            }
            let s = &sample[so[m] as usize..so[m + 1] as usize];
            if s.len() as u64 > total
                || s.windows(2).any(|w| w[1] <= w[0])
                || s.last().is_some_and(|&c| c as u64 >= cols)
            {
                return Err(SketchError::invalid(
                    "sample entries are not ascending prompt-id pairs of the model",
                )
                .model(name));
            }
            failed.push(flags[m] & FLAG_FAILED != 0 || total == 0);
        }
        Ok(CompactIndex {
            map,
            meta,
            threshold,
            models,
            failed,
            layout: l,
            source: None,
        })
    }

    pub fn meta(&self) -> &SketchMeta {
        &self.meta
    }
    pub fn len(&self) -> usize {
        self.models.len()
    }
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
    pub fn prompts(&self) -> usize {
        self.meta.prompts as usize
    }
    pub fn vocab_size(&self) -> u32 {
        self.meta.vocab_size
    }
    pub fn models(&self) -> &[String] {
        &self.models
    }
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }
    pub fn sample_threshold(&self) -> u32 {
        self.threshold
    }
    /// The sample rate (threshold / 2³²).
    pub fn sample_rate(&self) -> f64 {
        self.threshold as f64 / 4294967296.0
    }
    #[inline]
    pub fn is_failed(&self, m: usize) -> bool {
        self.failed[m]
    }
    pub fn is_flagged_failed(&self, m: usize) -> bool {
        self.flags()[m] & FLAG_FAILED != 0
    }
    fn flags(&self) -> &[u32] {
        typed(&self.map, self.layout.flags_offset, self.len() as u64)
    }
    /// `lengths()[m * P + p]` = size of set (m, p).
    pub fn lengths(&self) -> &[u32] {
        typed(
            &self.map,
            self.layout.lengths_offset,
            (self.len() * self.prompts()) as u64,
        )
    }
    pub fn set_lens(&self, m: usize) -> &[u32] {
        let p = self.prompts();
        &self.lengths()[m * p..(m + 1) * p]
    }
    fn blocks(&self) -> &[u64] {
        typed(&self.map, self.layout.blocks_offset, self.len() as u64 + 1)
    }
    fn sums(&self) -> &[u64] {
        typed(&self.map, self.layout.sums_offset, self.len() as u64)
    }
    /// The bytes of the data section (every model's block).
    pub fn data(&self) -> &[u8] {
        let o = self.layout.data_offset as usize;
        &self.map[o..o + self.layout.data_len as usize]
    }
    pub fn data_len(&self) -> u64 {
        self.layout.data_len
    }
    /// Model `m`'s delta-coded block.
    pub fn block(&self, m: usize) -> &[u8] {
        let b = self.blocks();
        &self.data()[b[m] as usize..b[m + 1] as usize]
    }
    /// Sample offsets (n + 1 entries) and all sampled columns.
    pub fn sample_table(&self) -> (&[u64], &[u32]) {
        (
            typed(
                &self.map,
                self.layout.sample_offsets_offset,
                self.len() as u64 + 1,
            ),
            typed(
                &self.map,
                self.layout.sample_offset,
                self.layout.sample_count,
            ),
        )
    }
    /// Model `m`'s sampled columns (`p · vocab + id`, ascending).
    pub fn sample(&self, m: usize) -> &[u32] {
        let (o, s) = self.sample_table();
        &s[o[m] as usize..o[m + 1] as usize]
    }

    /// Checks model `m`'s block against its checksum.
    pub fn verify_block(&self, m: usize) -> Result<(), Error> {
        let computed = xxh3_64(self.block(m));
        let stored = self.sums()[m];
        if computed != stored {
            return Err(self.located(
                m,
                SketchError::new(SketchErrorKind::Checksum { stored, computed }),
            ));
        }
        Ok(())
    }

    fn located(&self, m: usize, e: SketchError) -> Error {
        let e = e.model(&self.models[m]);
        Error::from(match &self.source {
            Some(p) => e.in_file(p),
            None => e,
        })
    }

    /// Decodes model `m`'s ids, calling `f(prompt, id)` for each (prompt order, ascending
    /// ids). Bounds-checked: a corrupt block gives an error (after some calls of `f`).
    #[inline]
    pub fn for_each_id<F: FnMut(usize, u32)>(&self, m: usize, f: F) -> Result<(), Error> {
        decode_block(self.block(m), self.set_lens(m), self.meta.vocab_size, f)
            .map_err(|(q, kind)| self.located(m, SketchError::new(kind).prompt(q)))
    }

    /// Counts, per prompt `q`, how many of model `m`'s ids are set in row `q` of `rows`
    /// (`rows.words_per_row` words each, at least `ROW_PAD` bits beyond the vocabulary).
    /// Bounds-checked like [`Self::for_each_id`]; the common case (8 one-byte gaps) is
    /// decoded 8 ids at a time.
    #[inline]
    pub fn count_in_rows(&self, m: usize, rows: &Rows, counts: &mut [u32]) -> Result<(), Error> {
        count_block(
            self.block(m),
            self.set_lens(m),
            self.meta.vocab_size,
            rows,
            counts,
        )
        .map_err(|(q, kind)| self.located(m, SketchError::new(kind).prompt(q)))
    }

    /// Model `m`'s ids, concatenated in prompt order, into `out` (cleared first).
    pub fn decode_into(&self, m: usize, out: &mut Vec<u32>) -> Result<(), Error> {
        out.clear();
        self.for_each_id(m, |_, id| out.push(id))
    }

    /// Checks model `m`'s block (checksum, decoding) and that its sample is the hash-selected
    /// part of its ids.
    pub fn verify_model(&self, m: usize) -> Result<(), Error> {
        self.verify_block(m)?;
        let s = self.sample(m);
        let (v, t) = (self.meta.vocab_size, self.threshold);
        let mut at = 0usize;
        let mut ok = true;
        self.for_each_id(m, |p, id| {
            if sample_hash(p as u32, id) < t {
                ok &= s.get(at) == Some(&(p as u32 * v + id));
                at += 1;
            }
        })?;
        if !ok || at != s.len() {
            return Err(self.located(
                m,
                SketchError::invalid("the sample does not match the model's ids"),
            ));
        }
        Ok(())
    }

    /// The whole index as an in-memory collection (every block verified): what the
    /// general readers (`SketchSet.open`, the exact engines) see.
    pub fn to_collection(&self) -> Result<SketchCollection, Error> {
        let n = self.len();
        let total: u64 = self.lengths().iter().map(|&x| x as u64).sum();
        let mut ids = limits::with_capacity::<u32>("the decoded ids", total as usize)?;
        for m in 0..n {
            self.verify_model(m)?;
            self.for_each_id(m, |_, id| ids.push(id))?;
        }
        let flags = self.flags().to_vec();
        let storage = Storage::Owned {
            ids,
            lengths: self.lengths().to_vec(),
            flags,
        };
        SketchCollection::assemble(
            self.meta.clone(),
            self.models.clone(),
            storage,
            self.source.clone(),
        )
        .map_err(Error::from)
    }
}

/// Per-prompt bitsets over the vocabulary, each row padded by [`ROW_PAD`] bits so that
/// sixteen one-byte gaps past the last valid id stay inside the row.
pub struct Rows {
    pub words_per_row: usize,
    pub words: Vec<u64>,
}

/// Padding bits after the vocabulary in each row of [`Rows`].
pub const ROW_PAD: usize = 16 * 255 + 64;

impl Rows {
    pub fn new(prompts: usize, vocab: u32) -> Result<Rows, Error> {
        let wpr = (vocab as usize + ROW_PAD).div_ceil(64);
        Ok(Rows {
            words_per_row: wpr,
            words: limits::zeroed("a per-prompt bitset", prompts * wpr)?,
        })
    }
    #[inline]
    pub fn set(&mut self, q: usize, id: u32) {
        self.words[q * self.words_per_row + (id >> 6) as usize] |= 1u64 << (id & 63);
    }
    pub fn clear(&mut self) {
        self.words.fill(0);
    }
}

#[inline]
fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(0x0101_0101_0101_0101) & !w & 0x8080_8080_8080_8080 != 0
}

/// The per-prompt counts of a block's ids in `rows` (see [`CompactIndex::count_in_rows`]).
#[inline]
fn count_block(
    bytes: &[u8],
    lens: &[u32],
    vocab: u32,
    rows: &Rows,
    counts: &mut [u32],
) -> Result<(), (usize, SketchErrorKind)> {
    let vocab = vocab as u64;
    let wpr = rows.words_per_row;
    if wpr * 64 < vocab as usize + ROW_PAD
        || rows.words.len() < wpr * lens.len()
        || counts.len() < lens.len()
    {
        return Err((
            0,
            SketchErrorKind::Invalid("bitset rows do not fit the index".into()),
        ));
    }
    let mut pos = 0usize;
    let corrupt = |q: usize, what: &str| {
        (
            q,
            SketchErrorKind::Invalid(format!("corrupt id data: {what}")),
        )
    };
    let out_of_range = |q: usize, id: u64| {
        (
            q,
            SketchErrorKind::OutOfRange {
                pos: 0,
                id: id.min(u32::MAX as u64) as u32,
                vocab_size: vocab as u32,
            },
        )
    };
    #[cfg(target_arch = "x86_64")]
    let simd = simd::available() && vocab + 4096 < (1 << 31);
    for (q, &len) in lens.iter().enumerate() {
        let row = &rows.words[q * wpr..(q + 1) * wpr];
        let mut base = 0u64;
        let mut c = 0u32;
        let mut left = len as usize;
        while left > 0 {
            #[cfg(target_arch = "x86_64")]
            if simd && left >= 16 {
                // SAFETY: AVX-512 F/BW checked at run time; the kernel reads `bytes` only
                // below its length and `row` only below vocab + 16·255 bits (inside the
                // row's padding), and stops once an id reaches the vocabulary.
                let (p2, b2, c2, l2) = unsafe { simd::count16(bytes, pos, row, vocab, left, base) };
                if b2 > vocab {
                    return Err(out_of_range(q, b2 - 1));
                }
                (pos, base, left) = (p2, b2, l2);
                c += c2;
                if left == 0 {
                    break;
                }
            }
            if left >= 8 && pos + 8 <= bytes.len() {
                let w = u64::from_le_bytes(bytes[pos..pos + 8].try_into().unwrap());
                if !has_zero_byte(w) {
                    // base − 1 < vocab here, so these 8 ids are < vocab + 8·255 (in the row).
                    let mut x = w;
                    for _ in 0..8 {
                        base += x & 0xff;
                        x >>= 8;
                        let id = base - 1;
                        c += ((row[(id >> 6) as usize] >> (id & 63)) & 1) as u32;
                    }
                    if base > vocab {
                        return Err(out_of_range(q, base - 1));
                    }
                    pos += 8;
                    left -= 8;
                    continue;
                }
            }
            let v = read_gap(bytes, &mut pos).map_err(|what| corrupt(q, what))?;
            base += v;
            if base > vocab {
                return Err(out_of_range(q, base - 1));
            }
            let id = base - 1;
            c += ((row[(id >> 6) as usize] >> (id & 63)) & 1) as u32;
            left -= 1;
        }
        counts[q] = c;
    }
    if pos != bytes.len() {
        return Err(corrupt(
            lens.len().saturating_sub(1),
            "trailing bytes in a block",
        ));
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
    }

    /// Decodes groups of 16 one-byte gaps (stopping at a group with an escape, at the end of
    /// the set or of the block, or once an id reaches the vocabulary) and counts the ids set
    /// in `row`. Returns the new (pos, base, count, left); base > vocab means out of range.
    ///
    /// # Safety
    /// AVX-512 F and BW must be available; `row` must hold at least
    /// `(vocab + 16·255).div_ceil(64)` words.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn count16(
        bytes: &[u8],
        mut pos: usize,
        row: &[u64],
        vocab: u64,
        mut left: usize,
        mut base: u64,
    ) -> (usize, u64, u32, usize) {
        debug_assert!(row.len() * 64 >= vocab as usize + 16 * 255);
        let zero = _mm512_setzero_si512();
        let one = _mm512_set1_epi32(1);
        let mut acc = zero;
        let last = _mm512_set1_epi32(15);
        let mut basev = _mm512_set1_epi32(base as i32);
        let rowp = row.as_ptr() as *const i32;
        while left >= 16 && pos + 16 <= bytes.len() && base <= vocab {
            let raw = _mm_loadu_si128(bytes.as_ptr().add(pos) as *const __m128i);
            if _mm_movemask_epi8(_mm_cmpeq_epi8(raw, _mm_setzero_si128())) != 0 {
                break;
            }
            let mut x = _mm512_cvtepu8_epi32(raw);
            x = _mm512_add_epi32(x, _mm512_alignr_epi32::<15>(x, zero));
            x = _mm512_add_epi32(x, _mm512_alignr_epi32::<14>(x, zero));
            x = _mm512_add_epi32(x, _mm512_alignr_epi32::<12>(x, zero));
            x = _mm512_add_epi32(x, _mm512_alignr_epi32::<8>(x, zero));
            // ids + 1 (base ≤ vocab < 2²⁴, sums < 2²⁴ + 4080: no overflow).
            let plus1 = _mm512_add_epi32(x, basev);
            let id = _mm512_sub_epi32(plus1, one);
            let words = _mm512_i32gather_epi32::<4>(_mm512_srli_epi32::<5>(id), rowp);
            let bit = _mm512_and_si512(
                _mm512_srlv_epi32(words, _mm512_and_si512(id, _mm512_set1_epi32(31))),
                one,
            );
            acc = _mm512_add_epi32(acc, bit);
            basev = _mm512_permutexvar_epi32(last, plus1);
            base = _mm_cvtsi128_si32(_mm512_castsi512_si128(basev)) as u32 as u64;
            pos += 16;
            left -= 16;
        }
        (pos, base, _mm512_reduce_add_epi32(acc) as u32, left)
    }
}

/// One gap of a set: a byte 1..=255, or 0 and the escaped varint that follows.
#[inline]
fn read_gap(bytes: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let Some(&byte) = bytes.get(*pos) else {
        return Err("block ends inside a set");
    };
    *pos += 1;
    if byte != 0 {
        Ok(byte as u64)
    } else {
        read_escaped_gap(bytes, pos)
    }
}

/// The escaped form of a gap (after its 0 byte): a LEB128 varint of at most 5 bytes whose
/// value does not fit the one-byte form. `Err` names what is wrong; `pos` moves past it.
#[inline]
fn read_escaped_gap(bytes: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let Some(&x) = bytes.get(*pos) else {
            return Err("block ends inside a gap");
        };
        *pos += 1;
        v |= ((x & 0x7f) as u64) << shift;
        if x & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err("gap longer than 5 bytes");
        }
    }
    if v < 256 {
        return Err("non-canonical gap");
    }
    Ok(v)
}

/// Decodes one model's block; `Err((prompt, what))` on corrupt data.
#[inline]
fn decode_block<F: FnMut(usize, u32)>(
    bytes: &[u8],
    lens: &[u32],
    vocab: u32,
    mut f: F,
) -> Result<(), (usize, SketchErrorKind)> {
    let mut pos = 0usize;
    let corrupt = |q: usize, what: &str| {
        (
            q,
            SketchErrorKind::Invalid(format!("corrupt id data: {what}")),
        )
    };
    for (q, &len) in lens.iter().enumerate() {
        let mut base = 0u64;
        for i in 0..len as usize {
            let v = read_gap(bytes, &mut pos).map_err(|what| corrupt(q, what))?;
            let id = base + v - 1;
            if id >= vocab as u64 {
                return Err((
                    q,
                    SketchErrorKind::OutOfRange {
                        pos: i,
                        id: id.min(u32::MAX as u64) as u32,
                        vocab_size: vocab,
                    },
                ));
            }
            f(q, id as u32);
            base = id + 1;
        }
    }
    if pos != bytes.len() {
        return Err(corrupt(
            lens.len().saturating_sub(1),
            "trailing bytes in a block",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod tests;
