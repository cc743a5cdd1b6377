//! The `.mpsk` binary sketch-collection format (versions 1 and 2; version 3, the compact
//! index, is in [`super::compact`] and is read here by decoding it into memory).
//!
//! Little-endian. Every section starts at a multiple of 64 bytes (zero padding between),
//! so a memory map of the file can be read as aligned `u32` arrays without copying.
//!
//! ```text
//! offset size  field
//!      0    8  magic "MPSKETCH"
//!      8    4  version (u32) = 1
//!     12    4  header length (u32) = 128
//!     16    4  vocab_size (u32): every id is < vocab_size
//!     20    4  k (u32): no set is longer
//!     24    4  prompts P (u32)
//!     28    4  reserved (0)
//!     32    8  models n (u64)
//!     40   32  prompt-set hash (32 bytes; zero = unknown)
//!     72    8  names offset: (n+1) u64 byte offsets into the name bytes that follow them
//!     80    8  flags offset: n u32 (bit 0 = model failed)
//!     88    8  lengths offset: n×P u32, set (m, p) at m×P + p
//!     96    8  ids offset: the sets' ids (u32), model-major then prompt order
//!    104    8  ids count (u64) = sum of the lengths
//!    112    8  names length in bytes (offset table + UTF-8 bytes)
//!    120    8  file length in bytes (footer included)
//!   file length − 16: footer "MPSKEND\0" + xxh3-64 (u64) of every byte before the footer
//! ```
//!
//! Version 2 is version 1 plus an anchors section (the §1.5 matrix protocol: row `m` is
//! scored over its own prompts `[start, end)` only): n × 2 u32 at the first multiple of 64
//! after the ids, the footer after it. A collection without anchors is written as version 1.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use memmap2::Mmap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::{
    as_bytes, write_atomic, SketchCollection, SketchError, SketchErrorKind, SketchMeta, Storage,
};
use crate::error::Error;
use crate::limits;

pub const MAGIC: &[u8; 8] = b"MPSKETCH";
pub const FOOTER_MAGIC: &[u8; 8] = b"MPSKEND\0";
pub const VERSION: u32 = 1;
/// The version written when the collection has anchor ranges.
pub const VERSION_ANCHORS: u32 = 2;
pub const HEADER_LEN: usize = 128;
const FOOTER_LEN: usize = 16;
const ALIGN: u64 = 64;

fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    names_offset: u64,
    names_len: u64,
    flags_offset: u64,
    lengths_offset: u64,
    ids_offset: u64,
    ids_count: u64,
    anchors_offset: u64,
    footer_offset: u64,
}

impl Layout {
    fn compute(n: u64, p: u64, names_bytes: u64, ids_count: u64, anchors: bool) -> Layout {
        let names_offset = align(HEADER_LEN as u64);
        let names_len = 8 * (n + 1) + names_bytes;
        let flags_offset = align(names_offset + names_len);
        let lengths_offset = align(flags_offset + 4 * n);
        let ids_offset = align(lengths_offset + 4 * n * p);
        let anchors_offset = align(ids_offset + 4 * ids_count);
        let footer_offset = if anchors {
            align(anchors_offset + 8 * n)
        } else {
            anchors_offset
        };
        Layout {
            names_offset,
            names_len,
            flags_offset,
            lengths_offset,
            ids_offset,
            ids_count,
            anchors_offset,
            footer_offset,
        }
    }
    fn file_len(&self) -> u64 {
        self.footer_offset + FOOTER_LEN as u64
    }
}

/// The sections of a mapped `.mpsk` file (checked when it was opened).
pub struct MappedSketches {
    map: Mmap,
    flags: (usize, usize),
    lengths: (usize, usize),
    ids: (usize, usize),
}

fn u32_slice(bytes: &[u8]) -> &[u32] {
    // SAFETY: callers pass 4-byte aligned ranges (64-byte aligned offsets in a page-aligned
    // map, checked in `read_binary`); u32 accepts any bit pattern.
    assert_eq!(bytes.as_ptr() as usize % 4, 0, "unaligned u32 section");
    unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const u32, bytes.len() / 4) }
}

impl MappedSketches {
    pub fn ids(&self) -> &[u32] {
        u32_slice(&self.map[self.ids.0..self.ids.0 + 4 * self.ids.1])
    }
    pub fn lengths(&self) -> &[u32] {
        u32_slice(&self.map[self.lengths.0..self.lengths.0 + 4 * self.lengths.1])
    }
    pub fn flags(&self) -> &[u32] {
        u32_slice(&self.map[self.flags.0..self.flags.0 + 4 * self.flags.1])
    }
}

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn rd_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Opens a `.mpsk` file by memory-mapping it; checks the checksum, the structure and every
/// set. The ids are not copied. Every count in the header is checked against the file's
/// size and the caps of [`crate::limits`] before anything is allocated.
pub fn read_binary(path: &Path) -> Result<SketchCollection, Error> {
    if file_is_compact(path) {
        // Version 3 (compact index): decoded into memory for the general readers.
        return super::compact::CompactIndex::open(path)?.to_collection();
    }
    read_binary_located(path).map_err(Error::from)
}

/// True when the file starts like a compact (version 3) index.
pub fn file_is_compact(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 12];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && super::compact::is_compact(&head)
}

fn read_binary_located(path: &Path) -> Result<SketchCollection, SketchError> {
    let at = |e: SketchError| e.in_file(path);
    let file = File::open(path).map_err(|e| at(e.into()))?;
    let found = file.metadata().map_err(|e| at(e.into()))?.len();
    if found < 8 {
        return Err(at(SketchError::new(SketchErrorKind::Truncated {
            expected: (HEADER_LEN + FOOTER_LEN) as u64,
            found,
        })));
    }
    // SAFETY: the map is read-only; modelprint never writes sketch files in place (writers
    // rename a new file over the old one), so the mapped bytes do not change under us.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| at(e.into()))?;
    parse_map(map, Some(path)).map_err(at)
}

/// Checks and opens the bytes of a `.mpsk` file held in `map`.
fn parse_map(map: Mmap, path: Option<&Path>) -> Result<SketchCollection, SketchError> {
    let at = |e: SketchError| e;
    let found = map.len() as u64;
    if found < 8 {
        return Err(at(SketchError::new(SketchErrorKind::Truncated {
            expected: (HEADER_LEN + FOOTER_LEN) as u64,
            found,
        })));
    }
    let b: &[u8] = &map;
    if &b[..8] != MAGIC {
        return Err(at(SketchError::new(SketchErrorKind::BadMagic)));
    }
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return Err(at(SketchError::new(SketchErrorKind::Truncated {
            expected: (HEADER_LEN + FOOTER_LEN) as u64,
            found,
        })));
    }
    let version = rd_u32(b, 8);
    if version != VERSION && version != VERSION_ANCHORS {
        return Err(at(SketchError::new(SketchErrorKind::UnsupportedVersion(
            version,
        ))));
    }
    let header_len = rd_u32(b, 12) as usize;
    if header_len != HEADER_LEN {
        return Err(at(SketchError::invalid(format!(
            "header length {header_len}, expected {HEADER_LEN}"
        ))));
    }
    let file_len = rd_u64(b, 120);
    if file_len != found {
        return Err(at(SketchError::new(SketchErrorKind::Truncated {
            expected: file_len,
            found,
        })));
    }
    let footer = b.len() - FOOTER_LEN;
    if &b[footer..footer + 8] != FOOTER_MAGIC {
        return Err(at(SketchError::invalid(
            "missing end marker (file truncated or corrupt)",
        )));
    }
    let stored = rd_u64(b, footer + 8);
    let computed = xxh3_64(&b[..footer]);
    if stored != computed {
        return Err(at(SketchError::new(SketchErrorKind::Checksum {
            stored,
            computed,
        })));
    }

    let meta = SketchMeta {
        vocab_size: rd_u32(b, 16),
        k: rd_u32(b, 20),
        prompts: rd_u32(b, 24),
        prompt_hash: b[40..72].try_into().unwrap(),
    };
    let n = rd_u64(b, 32);
    let p = meta.prompts as u64;
    let names_offset = rd_u64(b, 72);
    let flags_offset = rd_u64(b, 80);
    let lengths_offset = rd_u64(b, 88);
    let ids_offset = rd_u64(b, 96);
    let ids_count = rd_u64(b, 104);
    let names_len = rd_u64(b, 112);
    let bad = |what: &str| at(SketchError::invalid(format!("corrupt header: {what}")));
    limits::check_vocab("header field vocab_size", meta.vocab_size as u64)
        .map_err(|e| at(e.into()))?;
    limits::check_prompts("header field prompts", p).map_err(|e| at(e.into()))?;
    // Every count must fit in the file before any arithmetic or allocation uses it: a model
    // takes 8 bytes of name offsets, a set 4 bytes of length, an id 4 bytes.
    if n > found / 8 {
        return Err(bad(&format!(
            "models count {n} is more than the file can hold"
        )));
    }
    if ids_count > found / 4 {
        return Err(bad(&format!(
            "ids count {ids_count} is more than the file can hold"
        )));
    }
    if p.saturating_mul(n) > found / 4 {
        return Err(bad(&format!(
            "{n} models × {p} prompts is more than the file can hold"
        )));
    }
    if names_len > found {
        return Err(bad("names length is more than the file can hold"));
    }
    // The layout is fully determined by (n, P, name bytes, ids count): recompute and compare,
    // which also bounds every section inside the file.
    let name_bytes = names_len
        .checked_sub(8 * (n + 1))
        .ok_or_else(|| bad("names length"))?;
    let expect = Layout::compute(n, p, name_bytes, ids_count, version == VERSION_ANCHORS);
    if expect.names_offset != names_offset
        || expect.flags_offset != flags_offset
        || expect.lengths_offset != lengths_offset
        || expect.ids_offset != ids_offset
        || expect.file_len() != file_len
    {
        return Err(bad("section offsets do not match the counts"));
    }
    // Names.
    let n_us = n as usize;
    let no = names_offset as usize;
    let name_base = no + 8 * (n_us + 1);
    let mut models = Vec::with_capacity(n_us);
    let mut prev = rd_u64(b, no);
    if prev != 0 {
        return Err(bad("first name offset is not 0"));
    }
    for i in 0..n_us {
        let next = rd_u64(b, no + 8 * (i + 1));
        if next < prev || next > name_bytes {
            return Err(bad("name offsets"));
        }
        let s = std::str::from_utf8(&b[name_base + prev as usize..name_base + next as usize])
            .map_err(|_| at(SketchError::invalid(format!("model #{i}: id is not UTF-8"))))?;
        models.push(s.to_string());
        prev = next;
    }
    if prev != name_bytes {
        return Err(bad("names length"));
    }
    let anchors = (version == VERSION_ANCHORS).then(|| {
        let ao = expect.anchors_offset as usize;
        (0..n_us)
            .map(|i| [rd_u32(b, ao + 8 * i), rd_u32(b, ao + 8 * i + 4)])
            .collect::<Vec<_>>()
    });
    let storage = Storage::Mapped(MappedSketches {
        flags: (flags_offset as usize, n_us),
        lengths: (lengths_offset as usize, (n * p) as usize),
        ids: (ids_offset as usize, ids_count as usize),
        map,
    });
    let c = SketchCollection::assemble(meta, models, storage, path.map(Path::to_path_buf))?;
    match anchors {
        Some(a) => c.with_anchors_located(a),
        None => Ok(c),
    }
}

/// The `.mpsk` bytes of a collection (the registry stores single-model sketches this way).
pub fn to_bytes(c: &SketchCollection) -> Vec<u8> {
    let mut out = Vec::new();
    encode(c, &mut out).expect("writing to memory cannot fail");
    out
}

/// A collection from `.mpsk` bytes (copied into memory; checked like a file, with the same
/// size checks and caps).
pub fn from_bytes(bytes: &[u8]) -> Result<SketchCollection, Error> {
    if super::compact::is_compact(bytes) {
        return super::compact::CompactIndex::from_bytes(bytes)?.to_collection();
    }
    from_bytes_located(bytes).map_err(Error::from)
}

fn from_bytes_located(bytes: &[u8]) -> Result<SketchCollection, SketchError> {
    let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1))?;
    map[..bytes.len()].copy_from_slice(bytes);
    let map = map.make_read_only()?;
    if map.len() != bytes.len() {
        // An empty input (map_anon needs one byte): report it like an empty file.
        return Err(SketchError::new(SketchErrorKind::Truncated {
            expected: (HEADER_LEN + FOOTER_LEN) as u64,
            found: 0,
        }));
    }
    parse_map(map, None)
}

/// Writes `c` as a `.mpsk` file, atomically (temp file + rename).
pub fn write_binary(c: &SketchCollection, path: &Path) -> Result<(), Error> {
    write_atomic(path, |w| encode(c, w)).map_err(|e| Error::io(path, &e))
}

fn encode<W: Write>(c: &SketchCollection, w: &mut W) -> std::io::Result<()> {
    let n = c.len() as u64;
    let p = c.prompts() as u64;
    let name_bytes: u64 = c.models().iter().map(|m| m.len() as u64).sum();
    let ids = c.ids();
    let layout = Layout::compute(n, p, name_bytes, ids.len() as u64, c.anchors().is_some());
    let meta = c.meta();
    let version = if c.anchors().is_some() {
        VERSION_ANCHORS
    } else {
        VERSION
    };

    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&version.to_le_bytes());
    header[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    header[16..20].copy_from_slice(&meta.vocab_size.to_le_bytes());
    header[20..24].copy_from_slice(&meta.k.to_le_bytes());
    header[24..28].copy_from_slice(&meta.prompts.to_le_bytes());
    header[32..40].copy_from_slice(&n.to_le_bytes());
    header[40..72].copy_from_slice(&meta.prompt_hash);
    for (at, v) in [
        (72, layout.names_offset),
        (80, layout.flags_offset),
        (88, layout.lengths_offset),
        (96, layout.ids_offset),
        (104, layout.ids_count),
        (112, layout.names_len),
        (120, layout.file_len()),
    ] {
        header[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    {
        let mut hw = HashingWriter {
            inner: w,
            hash: Xxh3::new(),
            pos: 0,
        };
        hw.write_all(&header)?;
        hw.pad_to(layout.names_offset)?;
        let mut off = 0u64;
        hw.write_all(&off.to_le_bytes())?;
        for m in c.models() {
            off += m.len() as u64;
            hw.write_all(&off.to_le_bytes())?;
        }
        for m in c.models() {
            hw.write_all(m.as_bytes())?;
        }
        hw.pad_to(layout.flags_offset)?;
        hw.write_all(as_bytes(c.flags()))?;
        hw.pad_to(layout.lengths_offset)?;
        hw.write_all(as_bytes(c.lengths()))?;
        hw.pad_to(layout.ids_offset)?;
        for chunk in ids.chunks(1 << 20) {
            hw.write_all(as_bytes(chunk))?;
        }
        if let Some(a) = c.anchors() {
            hw.pad_to(layout.anchors_offset)?;
            for r in a {
                hw.write_all(&r[0].to_le_bytes())?;
                hw.write_all(&r[1].to_le_bytes())?;
            }
        }
        hw.pad_to(layout.footer_offset)?;
        let digest = hw.hash.digest();
        hw.inner.write_all(FOOTER_MAGIC)?;
        hw.inner.write_all(&digest.to_le_bytes())?;
        Ok(())
    }
}

struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hash: Xxh3,
    pos: u64,
}

impl<W: Write> HashingWriter<'_, W> {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hash.update(b);
        self.pos += b.len() as u64;
        self.inner.write_all(b)
    }
    fn pad_to(&mut self, offset: u64) -> std::io::Result<()> {
        debug_assert!(offset >= self.pos);
        let zeros = [0u8; 64];
        while self.pos < offset {
            let k = ((offset - self.pos) as usize).min(64);
            self.write_all(&zeros[..k])?;
        }
        Ok(())
    }
}
