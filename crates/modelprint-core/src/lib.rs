//! modelprint-core: the numeric heart of modelprint.
//!
//! Pure Rust, no Node types: bottom-k selection over logits rows, set overlap, sketch
//! collections (binary `.mpsk` and JSON lines) and the all-pairs similarity engine.
//! The napi-rs binding (`modelprint-node`) is a thin layer over this crate.

pub mod bottomk;
pub mod error;
pub mod limits;
pub mod overlap;
pub mod scan;
pub mod similarity;
pub mod sketch;

pub use bottomk::{bottom_k, bottom_k_rows, BottomKError};
pub use error::{Error, ErrorCode};
pub use overlap::{intersection_count_sorted, jaccard_sorted, overlap_ratio_sorted};
pub use sketch::{SketchCollection, SketchError, SketchMeta};

#[cfg(test)]
mod hostile_tests;
