//! JSON-lines interchange for sketch collections.
//!
//! One line per model, the prompt sets in the same prompt order on every line:
//!
//! ```text
//! {"model": "org/name", "sets": [[12, 40, 977], [3, 12, 4000], ...]}
//! {"model": "org/broken", "sets": null, "error": "load_failed"}     ← a failed model
//! ```
//!
//! An empty set is a missing prompt (it failed, or the model was not run on it). A model
//! line may carry `"anchor": [start, end]`: its row is scored over prompts `start..end` only
//! (the §1.5 matrix protocol, where each model is scored on its own prompts).
//!
//! An optional first line carries the collection parameters:
//!
//! ```text
//! {"format": "modelprint-sketch", "version": 1, "vocab_size": 32000, "k": 2000,
//!  "prompts": 32, "prompt_hash": "<64 hex digits>"}
//! ```
//!
//! Without it, the vocabulary size is the largest id + 1, k the longest set and P the
//! number of sets on the first model line (each may be given in [`JsonlOptions`]).

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{write_atomic, SketchCollection, SketchError, SketchErrorKind, SketchMeta};
use crate::error::Error;
use crate::limits;

pub const FORMAT_NAME: &str = "modelprint-sketch";

/// Parameters a JSONL file without a header line cannot carry (a header line overrides
/// `None`s; a value here must agree with the header when both are given).
#[derive(Debug, Clone, Default)]
pub struct JsonlOptions {
    pub vocab_size: Option<u32>,
    pub k: Option<u32>,
    pub prompt_hash: Option<[u8; 32]>,
}

#[derive(Deserialize)]
struct Header {
    format: String,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    vocab_size: Option<u32>,
    #[serde(default)]
    k: Option<u32>,
    #[serde(default)]
    prompts: Option<u32>,
    #[serde(default)]
    prompt_hash: Option<String>,
}

#[derive(Deserialize)]
struct Line {
    model: String,
    #[serde(default)]
    sets: Option<Vec<Vec<u32>>>,
    /// The prompts this model's row is scored over (`[start, end)`; the §1.5 matrix protocol).
    #[serde(default)]
    anchor: Option<[u32; 2]>,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    format: &'a str,
    version: u32,
    vocab_size: u32,
    k: u32,
    prompts: u32,
    prompt_hash: String,
}

/// Reads a JSONL sketch file (lines parsed in parallel), validating every set. Sizes from
/// the header (prompts, vocab_size) and the inferred vocabulary are checked against the caps
/// of [`crate::limits`] before anything is allocated from them.
pub fn read_jsonl(path: &Path, opts: &JsonlOptions) -> Result<SketchCollection, Error> {
    read_jsonl_located(path, opts).map_err(Error::from)
}

fn read_jsonl_located(path: &Path, opts: &JsonlOptions) -> Result<SketchCollection, SketchError> {
    let at = |e: SketchError| e.in_file(path);
    let text = std::fs::read_to_string(path).map_err(|e| at(e.into()))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();

    let mut header: Option<Header> = None;
    let mut header_line: Option<usize> = None;
    let mut body = &lines[..];
    if let Some(&(no, first)) = lines.first() {
        let v: serde_json::Value = serde_json::from_str(first)
            .map_err(|e| at(SketchError::new(SketchErrorKind::Json(e.to_string())).line(no)))?;
        if v.get("format").is_some() && v.get("model").is_none() {
            let h: Header = serde_json::from_value(v)
                .map_err(|e| at(SketchError::new(SketchErrorKind::Json(e.to_string())).line(no)))?;
            if h.format != FORMAT_NAME {
                return Err(at(SketchError::invalid(format!(
                    "header format is {:?}, expected {FORMAT_NAME:?}",
                    h.format
                ))
                .line(no)));
            }
            if let Some(ver) = h.version {
                if ver != 1 {
                    return Err(at(SketchError::new(SketchErrorKind::UnsupportedVersion(
                        ver,
                    ))
                    .line(no)));
                }
            }
            header = Some(h);
            header_line = Some(no);
            body = &lines[1..];
        }
    }

    let parsed: Vec<Result<Line, SketchError>> = body
        .par_iter()
        .map(|&(no, l)| {
            serde_json::from_str::<Line>(l)
                .map_err(|e| SketchError::new(SketchErrorKind::Json(e.to_string())).line(no))
        })
        .collect();

    let lines_parsed: Vec<Line> = parsed.into_iter().collect::<Result<_, _>>().map_err(at)?;
    // P: from the header, else from the first model line that has sets.
    let prompts: usize = match header.as_ref().and_then(|h| h.prompts) {
        Some(p) => p as usize,
        None => lines_parsed
            .iter()
            .find_map(|l| l.sets.as_ref().map(|s| s.len()))
            .unwrap_or(0),
    };
    let limit = |e: Error| {
        let e = SketchError::from(e);
        at(match header_line {
            Some(no) => e.line(no),
            None => e,
        })
    };
    if let Some(h) = header.as_ref() {
        if let Some(v) = h.vocab_size {
            limits::check_vocab("header field vocab_size", v as u64).map_err(limit)?;
        }
    }
    limits::check_prompts("prompts", prompts as u64).map_err(limit)?;
    // Failed models hold P empty sets each: bounded by the memory cap, reserved fallibly.
    let mut lengths: Vec<u32> = limits::with_capacity(
        "set lengths (models × prompts)",
        lines_parsed.len().saturating_mul(prompts),
    )
    .map_err(limit)?;
    let mut models = Vec::with_capacity(lines_parsed.len());
    let mut failed = Vec::with_capacity(lines_parsed.len());
    let mut ids: Vec<u32> = Vec::new();
    let mut max_id: Option<u32> = None;
    let mut max_len = 0usize;
    let any_anchor = lines_parsed.iter().any(|l| l.anchor.is_some());
    let mut anchors = Vec::with_capacity(lines_parsed.len());
    for (line, &(no, _)) in lines_parsed.into_iter().zip(body) {
        anchors.push(line.anchor.unwrap_or([0, prompts as u32]));
        let ctx = |e: SketchError| at(e.line(no).model(&line.model));
        match &line.sets {
            None => {
                lengths.extend(std::iter::repeat_n(0u32, prompts));
                failed.push(true);
            }
            Some(sets) => {
                if sets.len() != prompts {
                    return Err(ctx(SketchError::new(SketchErrorKind::WrongPromptCount {
                        expected: prompts,
                        found: sets.len(),
                    })));
                }
                for s in sets.iter() {
                    ids.extend_from_slice(s);
                    if let Some(&last) = s.iter().max() {
                        max_id = Some(max_id.map_or(last, |m| m.max(last)));
                    }
                    max_len = max_len.max(s.len());
                    lengths.push(s.len() as u32);
                }
                failed.push(false);
            }
        }
        models.push(line.model);
    }

    let pick = |name: &str,
                file: Option<u32>,
                opt: Option<u32>,
                inferred: u32|
     -> Result<u32, SketchError> {
        match (file, opt) {
            (Some(a), Some(b)) if a != b => Err(at(SketchError::invalid(format!(
                "{name} is {a} in the file header but {b} was requested"
            )))),
            (Some(a), _) | (None, Some(a)) => Ok(a),
            (None, None) => Ok(inferred),
        }
    };
    let hdr = header.as_ref();
    let vocab_size = pick(
        "vocab_size",
        hdr.and_then(|h| h.vocab_size),
        opts.vocab_size,
        max_id.map_or(0, |m| m.saturating_add(1)),
    )?;
    if hdr.and_then(|h| h.vocab_size).is_none() && opts.vocab_size.is_none() {
        if let Some(m) = max_id {
            limits::check_vocab("vocab_size", m as u64 + 1).map_err(|mut e| {
                e.message
                    .push_str(&format!(" (inferred as the largest id, {m}, + 1)"));
                at(e.into())
            })?;
        }
    }
    let k = pick("k", hdr.and_then(|h| h.k), opts.k, max_len as u32)?;
    let prompt_hash = match hdr.and_then(|h| h.prompt_hash.as_deref()) {
        Some(hex) => {
            SketchMeta::parse_prompt_hash(hex).map_err(|e| at(SketchError::invalid(e.message)))?
        }
        None => opts.prompt_hash.unwrap_or([0; 32]),
    };
    let meta = SketchMeta {
        vocab_size,
        k,
        prompts: prompts as u32,
        prompt_hash,
    };
    let names = models.clone();
    let mut c =
        SketchCollection::from_parts_located(meta, models, ids, lengths, failed).map_err(|e| {
            // Point at the line of the offending model.
            let line = e
                .model
                .as_ref()
                .and_then(|m| names.iter().position(|x| x == m))
                .map(|i| body[i].0);
            let e = match line {
                Some(no) if e.line.is_none() => e.line(no),
                _ => e,
            };
            at(e)
        })?;
    if any_anchor {
        c = c.with_anchors_located(anchors).map_err(at)?;
    }
    c.source = Some(path.to_path_buf());
    Ok(c)
}

/// Writes `c` as JSON lines (header line first), atomically.
pub fn write_jsonl(c: &SketchCollection, path: &Path) -> Result<(), Error> {
    let meta = c.meta();
    write_atomic(path, |w| {
        let h = HeaderOut {
            format: FORMAT_NAME,
            version: 1,
            vocab_size: meta.vocab_size,
            k: meta.k,
            prompts: meta.prompts,
            prompt_hash: meta.prompt_hash_hex(),
        };
        serde_json::to_writer(&mut *w, &h)?;
        w.write_all(b"\n")?;
        let mut buf = String::new();
        for (m, name) in c.models().iter().enumerate() {
            buf.clear();
            buf.push_str("{\"model\":");
            buf.push_str(&serde_json::to_string(name).expect("string serialises"));
            if let Some(a) = c.anchors() {
                buf.push_str(&format!(",\"anchor\":[{},{}]", a[m][0], a[m][1]));
            }
            if c.is_flagged_failed(m) {
                buf.push_str(",\"sets\":null}\n");
            } else {
                buf.push_str(",\"sets\":[");
                for q in 0..c.prompts() {
                    if q > 0 {
                        buf.push(',');
                    }
                    buf.push('[');
                    for (i, id) in c.set(m, q).iter().enumerate() {
                        if i > 0 {
                            buf.push(',');
                        }
                        buf.push_str(itoa(*id, &mut [0u8; 10]));
                    }
                    buf.push(']');
                }
                buf.push_str("]}\n");
            }
            w.write_all(buf.as_bytes())?;
        }
        Ok(())
    })
    .map_err(|e| Error::io(path, &e))
}

fn itoa(mut v: u32, buf: &mut [u8; 10]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("digits")
}
