//! Sketch collections: the bottom-k sets of many models for the same P probe prompts.
//!
//! A *sketch* is one model's bottom-k sets, one per probe prompt, each an ascending,
//! duplicate-free list of token ids below the vocabulary size. A [`SketchCollection`]
//! holds many sketches over the same prompt list. It lives either in memory or in a
//! memory-mapped `.mpsk` file (read without copying the ids; see [`binary`]), and can be
//! exchanged as JSON lines (see [`jsonl`]).
//!
//! Every constructor validates: ids ascending and unique, below the vocabulary size, no
//! set longer than k, the same number of prompts for every model, unique model ids.

pub mod binary;
pub mod compact;
pub mod jsonl;

use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, ErrorCode};
use crate::limits;

pub use binary::{from_bytes, read_binary, to_bytes, write_binary, MAGIC, VERSION};
pub use jsonl::{read_jsonl, write_jsonl, JsonlOptions};

/// Collection-wide parameters of a sketch collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SketchMeta {
    /// Size of the id space: every id is `< vocab_size`.
    pub vocab_size: u32,
    /// The requested bottom-k size; no set is longer (sets may be shorter, e.g. when k was
    /// clipped to a smaller vocabulary).
    pub k: u32,
    /// Number of probe prompts P (sets per model).
    pub prompts: u32,
    /// Hash of the probe-prompt list (sha256 or any 32 bytes; all zero when unknown).
    pub prompt_hash: [u8; 32],
}

impl SketchMeta {
    pub fn prompt_hash_hex(&self) -> String {
        self.prompt_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Parses 64 hex digits (or an empty string → all zero).
    pub fn parse_prompt_hash(hex: &str) -> Result<[u8; 32], Error> {
        let mut out = [0u8; 32];
        if hex.is_empty() {
            return Ok(out);
        }
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            let shown: String = hex.chars().take(80).collect();
            return Err(
                Error::input(format!("prompt hash must be 64 hex digits, got {shown:?}"))
                    .subject("prompt_hash"),
            );
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex checked");
        }
        Ok(out)
    }
}

/// What is wrong, without the location (see [`SketchError`]).
#[derive(Debug)]
pub enum SketchErrorKind {
    Io(std::io::Error),
    /// `ids[pos - 1] > ids[pos]`.
    Unsorted {
        pos: usize,
        prev: u32,
        id: u32,
    },
    /// `ids[pos - 1] == ids[pos]`.
    Duplicate {
        pos: usize,
        id: u32,
    },
    OutOfRange {
        pos: usize,
        id: u32,
        vocab_size: u32,
    },
    TooLong {
        len: usize,
        k: u32,
    },
    WrongPromptCount {
        expected: usize,
        found: usize,
    },
    DuplicateModel,
    BadMagic,
    UnsupportedVersion(u32),
    Checksum {
        stored: u64,
        computed: u64,
    },
    Truncated {
        expected: u64,
        found: u64,
    },
    /// Structurally invalid content (offsets, lengths, names, JSON shape).
    Invalid(String),
    /// A JSON line that does not parse.
    Json(String),
    /// A size above a cap of [`crate::limits`] (or another coded error).
    Limit(Box<Error>),
}

/// A sketch error with its location: the file, the model (and JSONL line), the prompt index.
#[derive(Debug)]
pub struct SketchError {
    pub file: Option<PathBuf>,
    pub model: Option<String>,
    pub line: Option<usize>,
    pub prompt: Option<usize>,
    pub kind: SketchErrorKind,
}

impl SketchError {
    pub fn new(kind: SketchErrorKind) -> Self {
        SketchError {
            file: None,
            model: None,
            line: None,
            prompt: None,
            kind,
        }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::new(SketchErrorKind::Invalid(msg.into()))
    }
    pub fn in_file(mut self, file: &Path) -> Self {
        if self.file.is_none() {
            self.file = Some(file.to_path_buf());
        }
        self
    }
    pub fn model(mut self, model: &str) -> Self {
        self.model = Some(model.to_string());
        self
    }
    pub fn prompt(mut self, prompt: usize) -> Self {
        self.prompt = Some(prompt);
        self
    }
    pub fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
    /// True for errors of the file system (not of the content).
    pub fn is_io(&self) -> bool {
        matches!(self.kind, SketchErrorKind::Io(_))
    }
}

impl fmt::Display for SketchErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SketchErrorKind::*;
        match self {
            Io(e) => write!(f, "{e}"),
            Unsorted { pos, prev, id } => write!(
                f,
                "ids not in ascending order at position {pos} ({id} after {prev}); sets must be sorted"
            ),
            Duplicate { pos, id } => write!(f, "duplicate id {id} at position {pos}"),
            OutOfRange { pos, id, vocab_size } => {
                write!(f, "id {id} at position {pos} is not below the vocabulary size {vocab_size}")
            }
            TooLong { len, k } => write!(f, "set has {len} ids, more than k = {k}"),
            WrongPromptCount { expected, found } => {
                write!(f, "has {found} prompt sets, expected {expected} (every model needs the same prompts)")
            }
            DuplicateModel => write!(f, "model id appears more than once"),
            BadMagic => write!(f, "not a modelprint sketch file (bad magic bytes)"),
            UnsupportedVersion(v) => write!(f, "unsupported sketch format version {v} (this build reads 1 to 3)"),
            Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:016x}, computed {computed:016x}): the file is corrupt"
            ),
            Truncated { expected, found } => {
                write!(f, "file is truncated or has trailing bytes: expected {expected} bytes, found {found}")
            }
            Invalid(m) => write!(f, "{m}"),
            Json(m) => write!(f, "invalid JSON: {m}"),
            Limit(e) => write!(f, "{}", e.message),
        }
    }
}

impl fmt::Display for SketchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = &self.file {
            parts.push(p.display().to_string());
        }
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model {m:?}"));
        }
        if let Some(p) = self.prompt {
            parts.push(format!("prompt {p}"));
        }
        if parts.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", parts.join(": "), self.kind)
        }
    }
}

impl std::error::Error for SketchError {}

/// The coded form: E_INPUT for content, the file-system code for I/O errors; the subject is
/// the file (the location inside it stays in the message).
impl From<SketchError> for Error {
    fn from(e: SketchError) -> Self {
        let code = match &e.kind {
            SketchErrorKind::Io(io) => ErrorCode::of_io(io),
            SketchErrorKind::Limit(err) => err.code,
            _ => ErrorCode::Input,
        };
        let hint = match &e.kind {
            SketchErrorKind::Limit(err) => err.hint.clone(),
            SketchErrorKind::Io(_) => None,
            _ => Some(
                "fix or regenerate the file; sets must be ascending, unique and below the vocabulary size, with the same prompts for every model"
                    .to_string(),
            ),
        };
        let file = e.file.clone();
        let mut located = e;
        located.file = None;
        let mut out = Error::new(code, located.to_string());
        out.hint = hint;
        match file {
            Some(f) => out.subject(f.display().to_string()),
            None => out,
        }
    }
}

impl From<Error> for SketchError {
    fn from(e: Error) -> Self {
        SketchError::new(SketchErrorKind::Limit(Box::new(e)))
    }
}

impl From<std::io::Error> for SketchError {
    fn from(e: std::io::Error) -> Self {
        SketchError::new(SketchErrorKind::Io(e))
    }
}

/// Checks one set: ascending, unique, below `vocab_size`, at most `k` ids.
pub fn validate_set(ids: &[u32], vocab_size: u32, k: u32) -> Result<(), SketchErrorKind> {
    if ids.len() > k as usize {
        return Err(SketchErrorKind::TooLong { len: ids.len(), k });
    }
    for (pos, w) in ids.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(if w[1] == w[0] {
                SketchErrorKind::Duplicate {
                    pos: pos + 1,
                    id: w[1],
                }
            } else {
                SketchErrorKind::Unsorted {
                    pos: pos + 1,
                    prev: w[0],
                    id: w[1],
                }
            });
        }
    }
    // Sorted, so the last id is the largest.
    if let Some(&last) = ids.last() {
        if last >= vocab_size {
            let pos = ids.partition_point(|&x| x < vocab_size);
            return Err(SketchErrorKind::OutOfRange {
                pos,
                id: ids[pos],
                vocab_size,
            });
        }
    }
    Ok(())
}

pub(crate) enum Storage {
    Owned {
        ids: Vec<u32>,
        lengths: Vec<u32>,
        flags: Vec<u32>,
    },
    Mapped(binary::MappedSketches),
}

/// Model flag bit: the model failed (no sketch); it scores -1 against every other model.
pub const FLAG_FAILED: u32 = 1;

/// Many models' sketches over the same P prompts.
pub struct SketchCollection {
    meta: SketchMeta,
    models: Vec<String>,
    /// Start of set (m, p) in the id array, at index `m * P + p`; `n * P + 1` entries.
    starts: Vec<u64>,
    storage: Storage,
    failed: Vec<bool>,
    source: Option<PathBuf>,
    /// Per model, the prompts it anchors (`[start, end)`): the §1.5 matrix protocol scores row
    /// `m` over its own prompts only. `None`: every model anchors every prompt.
    anchors: Option<Vec<[u32; 2]>>,
}

impl fmt::Debug for SketchCollection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SketchCollection")
            .field("meta", &self.meta)
            .field("models", &self.models.len())
            .field("source", &self.source)
            .finish()
    }
}

/// True for a JSON lines sketch file (`.jsonl`, `.json` or `.ndjson`, any case); anything
/// else is read and written as binary `.mpsk`.
pub fn is_jsonl_path(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    ["jsonl", "json", "ndjson"]
        .iter()
        .any(|j| ext.eq_ignore_ascii_case(j))
}

impl SketchCollection {
    /// A collection from concatenated sets: `lengths[m * P + p]` ids of model m for prompt p,
    /// all in `ids` in model-major, prompt-minor order. `failed` (may be empty = none) marks
    /// models without a sketch (their sets must be empty).
    pub fn from_parts(
        meta: SketchMeta,
        models: Vec<String>,
        ids: Vec<u32>,
        lengths: Vec<u32>,
        failed: Vec<bool>,
    ) -> Result<Self, Error> {
        Self::from_parts_located(meta, models, ids, lengths, failed).map_err(Error::from)
    }

    /// A collection in which every set has exactly `k` ids (`ids` model-major, prompt-minor),
    /// no model failed and the prompt list is unknown: synthetic data for tests and benchmarks.
    pub fn from_uniform_sets(
        vocab_size: u32,
        k: usize,
        prompts: usize,
        models: Vec<String>,
        ids: Vec<u32>,
    ) -> Result<Self, Error> {
        let meta = SketchMeta {
            vocab_size,
            k: k as u32,
            prompts: prompts as u32,
            prompt_hash: [0; 32],
        };
        let lengths = vec![k as u32; models.len() * prompts];
        Self::from_parts(meta, models, ids, lengths, vec![])
    }

    pub(crate) fn from_parts_located(
        meta: SketchMeta,
        models: Vec<String>,
        ids: Vec<u32>,
        lengths: Vec<u32>,
        failed: Vec<bool>,
    ) -> Result<Self, SketchError> {
        let flags: Vec<u32> = if failed.is_empty() {
            vec![0; models.len()]
        } else {
            failed
                .iter()
                .map(|&f| if f { FLAG_FAILED } else { 0 })
                .collect()
        };
        if flags.len() != models.len() {
            return Err(SketchError::invalid(format!(
                "{} failure flags for {} models",
                flags.len(),
                models.len()
            )));
        }
        Self::assemble(
            meta,
            models,
            Storage::Owned {
                ids,
                lengths,
                flags,
            },
            None,
        )
    }

    pub(crate) fn assemble(
        meta: SketchMeta,
        models: Vec<String>,
        storage: Storage,
        source: Option<PathBuf>,
    ) -> Result<Self, SketchError> {
        let (ids, lengths, flags) = match &storage {
            Storage::Owned {
                ids,
                lengths,
                flags,
            } => (&ids[..], &lengths[..], &flags[..]),
            Storage::Mapped(m) => (m.ids(), m.lengths(), m.flags()),
        };
        let n = models.len();
        let p = meta.prompts as usize;
        limits::check_vocab("vocab_size", meta.vocab_size as u64)?;
        limits::check_prompts("prompts", meta.prompts as u64)?;
        if Some(lengths.len()) != n.checked_mul(p) {
            return Err(SketchError::invalid(format!(
                "{} set lengths for {n} models × {p} prompts (expected {})",
                lengths.len(),
                n * p
            )));
        }
        if flags.len() != n {
            return Err(SketchError::invalid(format!(
                "{} model flags for {n} models",
                flags.len()
            )));
        }
        // Bounded by the lengths already held (2 × their size).
        let mut starts = Vec::with_capacity(lengths.len() + 1);
        let mut acc = 0u64;
        starts.push(0);
        for &l in lengths {
            acc += l as u64;
            starts.push(acc);
        }
        if acc != ids.len() as u64 {
            return Err(SketchError::invalid(format!(
                "set lengths add up to {acc} ids but {} ids are stored",
                ids.len()
            )));
        }
        // Unique model ids.
        let mut seen = std::collections::HashMap::with_capacity(n);
        for (i, m) in models.iter().enumerate() {
            if let Some(first) = seen.insert(m.as_str(), i) {
                return Err(SketchError::new(SketchErrorKind::Invalid(format!(
                    "model id appears twice (models #{first} and #{i})"
                )))
                .model(m));
            }
        }
        // A model flagged as failed has no sketch: its sets must be empty.
        for (m, &f) in flags.iter().enumerate() {
            if f & FLAG_FAILED != 0 && (0..p).any(|q| starts[m * p + q] != starts[m * p + q + 1]) {
                return Err(
                    SketchError::invalid("model is flagged as failed but has ids")
                        .model(&models[m]),
                );
            }
        }
        // Every set (in parallel: a 10,000-model collection holds ~640 M ids).
        let bad = (0..n).into_par_iter().find_map_first(|m| {
            for q in 0..p {
                let s = &ids[starts[m * p + q] as usize..starts[m * p + q + 1] as usize];
                if let Err(kind) = validate_set(s, meta.vocab_size, meta.k) {
                    return Some(SketchError::new(kind).model(&models[m]).prompt(q));
                }
            }
            None
        });
        if let Some(e) = bad {
            return Err(e);
        }
        let failed = (0..n)
            .map(|m| {
                flags[m] & FLAG_FAILED != 0
                    || (0..p).all(|q| starts[m * p + q] == starts[m * p + q + 1])
            })
            .collect();
        Ok(SketchCollection {
            meta,
            models,
            starts,
            storage,
            failed,
            source,
            anchors: None,
        })
    }

    /// Sets the prompts each model anchors (`[start, end)` per model, within `0..P`).
    pub fn with_anchors(self, anchors: Vec<[u32; 2]>) -> Result<Self, Error> {
        self.with_anchors_located(anchors).map_err(Error::from)
    }

    pub(crate) fn with_anchors_located(
        mut self,
        anchors: Vec<[u32; 2]>,
    ) -> Result<Self, SketchError> {
        if anchors.len() != self.models.len() {
            return Err(SketchError::invalid(format!(
                "{} anchor ranges for {} models",
                anchors.len(),
                self.models.len()
            )));
        }
        for (m, a) in anchors.iter().enumerate() {
            if a[0] > a[1] || a[1] > self.meta.prompts {
                return Err(SketchError::invalid(format!(
                    "anchor range [{}, {}) is not within the {} prompts",
                    a[0], a[1], self.meta.prompts
                ))
                .model(&self.models[m]));
            }
        }
        self.anchors = Some(anchors);
        Ok(self)
    }

    /// The anchor ranges, if the collection has them.
    pub fn anchors(&self) -> Option<&[[u32; 2]]> {
        self.anchors.as_deref()
    }

    /// Set `(m, p)` counts for model `m`'s row: non-empty and inside its anchor range.
    #[inline]
    pub fn anchors_prompt(&self, m: usize, p: usize) -> bool {
        match &self.anchors {
            None => true,
            Some(a) => (a[m][0] as usize..a[m][1] as usize).contains(&p),
        }
    }

    /// True when every set of every usable model is non-empty and no anchors restrict rows:
    /// every pair is then scored over all P prompts.
    pub fn is_dense(&self) -> bool {
        self.anchors.is_none()
            && (0..self.len())
                .filter(|&m| !self.is_failed(m))
                .all(|m| (0..self.prompts()).all(|p| self.set_len(m, p) > 0))
    }

    /// Per model, a bitmask of its prompts with a non-empty set (`words` u64 per model);
    /// with `anchored`, only the prompts inside its anchor range.
    pub fn presence_masks(&self, anchored: bool) -> (usize, Vec<u64>) {
        let p = self.prompts();
        let words = p.div_ceil(64).max(1);
        let mut out = vec![0u64; words * self.len()];
        for m in 0..self.len() {
            for q in 0..p {
                if self.set_len(m, q) > 0 && (!anchored || self.anchors_prompt(m, q)) {
                    out[m * words + q / 64] |= 1u64 << (q % 64);
                }
            }
        }
        (words, out)
    }

    /// The rows of the §1.5 protocol: a copy in which every set outside its model's anchor
    /// range is empty (no anchors: a copy of the collection).
    pub fn anchored_rows(&self) -> SketchCollection {
        let p = self.prompts();
        let mut ids = Vec::new();
        let mut lengths = Vec::with_capacity(self.len() * p);
        for m in 0..self.len() {
            for q in 0..p {
                if self.anchors_prompt(m, q) {
                    let s = self.set(m, q);
                    ids.extend_from_slice(s);
                    lengths.push(s.len() as u32);
                } else {
                    lengths.push(0);
                }
            }
        }
        let flags = self.flags().to_vec();
        SketchCollection::assemble(
            self.meta.clone(),
            self.models.clone(),
            Storage::Owned {
                ids,
                lengths,
                flags,
            },
            None,
        )
        .expect("a subset of a valid collection is valid")
    }

    /// Opens a `.jsonl` (JSON lines) or a binary `.mpsk` file, chosen by extension
    /// (anything not ending in `.jsonl`/`.json`/`.ndjson` is read as binary).
    pub fn open(path: &Path) -> Result<Self, Error> {
        if is_jsonl_path(path) {
            read_jsonl(path, &JsonlOptions::default())
        } else {
            read_binary(path)
        }
    }

    /// Writes `.jsonl` / `.json` / `.ndjson` as JSON lines, anything else as binary.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        if is_jsonl_path(path) {
            write_jsonl(self, path)
        } else {
            write_binary(self, path)
        }
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
    pub fn k(&self) -> u32 {
        self.meta.k
    }
    pub fn models(&self) -> &[String] {
        &self.models
    }
    /// The file this collection was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }
    /// True when the collection is memory-mapped from a file (no copy of the ids).
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }

    /// All ids, model-major and prompt-minor.
    pub fn ids(&self) -> &[u32] {
        match &self.storage {
            Storage::Owned { ids, .. } => ids,
            Storage::Mapped(m) => m.ids(),
        }
    }
    /// `lengths()[m * P + p]` = size of set (m, p).
    pub fn lengths(&self) -> &[u32] {
        match &self.storage {
            Storage::Owned { lengths, .. } => lengths,
            Storage::Mapped(m) => m.lengths(),
        }
    }
    pub(crate) fn flags(&self) -> &[u32] {
        match &self.storage {
            Storage::Owned { flags, .. } => flags,
            Storage::Mapped(m) => m.flags(),
        }
    }

    /// The bottom-k set of model `m` for prompt `p` (ascending ids).
    #[inline]
    pub fn set(&self, m: usize, p: usize) -> &[u32] {
        let i = m * self.meta.prompts as usize + p;
        &self.ids()[self.starts[i] as usize..self.starts[i + 1] as usize]
    }
    #[inline]
    pub fn set_len(&self, m: usize, p: usize) -> u32 {
        let i = m * self.meta.prompts as usize + p;
        (self.starts[i + 1] - self.starts[i]) as u32
    }

    /// A model without a usable sketch: flagged as failed, or with only empty sets.
    #[inline]
    pub fn is_failed(&self, m: usize) -> bool {
        self.failed[m]
    }
    pub fn failed_count(&self) -> usize {
        self.failed.iter().filter(|&&f| f).count()
    }
    /// True when the model was explicitly flagged as failed (not only empty).
    pub fn is_flagged_failed(&self, m: usize) -> bool {
        self.flags()[m] & FLAG_FAILED != 0
    }

    pub fn max_set_len(&self) -> u32 {
        self.lengths().iter().copied().max().unwrap_or(0)
    }

    /// A 128-bit content fingerprint (model ids, metadata, lengths and ids); equal
    /// collections have equal fingerprints wherever they were read from.
    pub fn fingerprint(&self) -> [u8; 16] {
        use xxhash_rust::xxh3::Xxh3;
        let mut h = Xxh3::new();
        h.update(b"modelprint-sketch-fingerprint-v1");
        h.update(&self.meta.vocab_size.to_le_bytes());
        h.update(&self.meta.k.to_le_bytes());
        h.update(&self.meta.prompts.to_le_bytes());
        h.update(&self.meta.prompt_hash);
        h.update(&(self.models.len() as u64).to_le_bytes());
        for m in &self.models {
            h.update(&(m.len() as u64).to_le_bytes());
            h.update(m.as_bytes());
        }
        for &f in self.flags() {
            h.update(&f.to_le_bytes());
        }
        h.update(as_bytes(self.lengths()));
        h.update(as_bytes(self.ids()));
        if let Some(a) = &self.anchors {
            h.update(b"anchors");
            for r in a {
                h.update(&r[0].to_le_bytes());
                h.update(&r[1].to_le_bytes());
            }
        }
        h.digest128().to_le_bytes()
    }
}

/// The bytes of a u32 slice (little-endian targets only; checked at compile time).
pub(crate) fn as_bytes(v: &[u32]) -> &[u8] {
    #[cfg(not(target_endian = "little"))]
    compile_error!("modelprint sketch files are little-endian; big-endian targets are unsupported");
    // SAFETY: u32 has no padding and any byte pattern is a valid u8.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// Writes a file atomically: a temp file beside it, fsync, rename over the target.
pub fn write_atomic<F>(path: &Path, write: F) -> std::io::Result<()>
where
    F: FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
{
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
