//! modelprint-text: Hugging Face tokenizers (tokenizer.json) and text comparison.
//!
//! Wraps the `tokenizers` crate so the rest of modelprint sees a small surface:
//! encode, decode, vocabulary size and the special tokens (METHODS §1.1).

pub mod compare;

use std::path::Path;
use tokenizers::Tokenizer as HfTokenizer;

use modelprint_core::{Error, ErrorCode};

/// Errors of this crate: modelprint's one coded error type (E_TOKENIZER, E_NOT_FOUND).
pub type TextError = Error;

fn tokenizer_error(msg: String) -> TextError {
    Error::new(ErrorCode::Tokenizer, msg)
}

pub struct Tokenizer {
    inner: HfTokenizer,
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Self, TextError> {
        HfTokenizer::from_file(path)
            .map(|inner| Tokenizer { inner })
            .map_err(|e| {
                let code = if path.exists() {
                    ErrorCode::Tokenizer
                } else {
                    ErrorCode::NotFound
                };
                Error::new(code, format!("cannot read tokenizer: {e}"))
                    .subject(path.display().to_string())
            })
    }

    pub fn from_json(json: &str) -> Result<Self, TextError> {
        json.parse::<HfTokenizer>()
            .map(|inner| Tokenizer { inner })
            .map_err(|e| tokenizer_error(format!("invalid tokenizer.json: {e}")))
    }

    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TextError> {
        self.inner
            .encode(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| tokenizer_error(format!("tokenization failed: {e}")))
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TextError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| tokenizer_error(format!("decoding failed: {e}")))
    }

    /// The width of the id space the tokenizer can produce: its largest id + 1 (vocabulary
    /// and added tokens). Not a count of tokens: ids may be sparse, or all lie high.
    pub fn vocab_size(&self) -> usize {
        self.inner
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .map_or(0, |m| m as usize + 1)
    }

    /// Ids of every special token (added tokens flagged `special`), ascending.
    pub fn special_token_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORD_LEVEL: &str = r#"{
      "version": "1.0",
      "truncation": null, "padding": null,
      "added_tokens": [
        {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
      ],
      "normalizer": null,
      "pre_tokenizer": {"type": "Whitespace"},
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
      "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "<s>": 1, "hello": 2, "world": 3}, "unk_token": "<unk>"}
    }"#;

    #[test]
    fn vocab_size_is_the_largest_id_not_the_token_count() {
        let high = WORD_LEVEL.replace(
            r#""hello": 2, "world": 3"#,
            r#""hello": 70000, "world": 70001"#,
        );
        let t = Tokenizer::from_json(&high).unwrap();
        assert_eq!(t.vocab_size(), 70002);
        assert_eq!(t.encode("hello world", false).unwrap(), vec![70000, 70001]);
    }

    #[test]
    fn encodes_decodes_and_lists_specials() {
        let t = Tokenizer::from_json(WORD_LEVEL).unwrap();
        assert_eq!(t.encode("hello world", true).unwrap(), vec![1, 2, 3]);
        assert_eq!(t.encode("hello world", false).unwrap(), vec![2, 3]);
        assert_eq!(t.decode(&[1, 2, 3], true).unwrap(), "hello world");
        assert_eq!(t.vocab_size(), 4);
        assert_eq!(t.special_token_ids(), vec![0, 1]);
        assert_eq!(t.token_to_id("world"), Some(3));
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(Tokenizer::from_json("{").is_err());
    }
}
