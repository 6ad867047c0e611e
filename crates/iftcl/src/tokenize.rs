//! Tokenisation with the `tokenizers` crate from a model's `tokenizer.json`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

/// A `tokenizer.json` tokenizer that truncates to the model's maximum sequence length and warns,
/// once per tokenizer, when it has to.
#[derive(Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
    json: Arc<[u8]>,
    max_len: usize,
    lower_case: bool,
    warned: AtomicBool,
}

impl Clone for TextTokenizer {
    fn clone(&self) -> Self {
        TextTokenizer {
            inner: self.inner.clone(),
            json: self.json.clone(),
            max_len: self.max_len,
            lower_case: self.lower_case,
            warned: AtomicBool::new(self.warned.load(Ordering::Relaxed)),
        }
    }
}

/// Why `tokenizer.json` bytes did not load: not JSON at all (the parser's line and column), or
/// JSON that is not a Hugging Face tokenizer (the missing or wrong field).
fn unreadable(bytes: &[u8], origin: &Path, e: impl std::fmt::Display) -> Error {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(json) => Error::Parse { path: origin.to_path_buf(), format: "JSON", message: json.to_string() },
        Ok(_) => Error::Tokenizer(format!(
            "{} is valid JSON but not a Hugging Face tokenizers file ({e}); the model folder needs the \
             tokenizer.json that `tokenizer.save_pretrained` writes",
            origin.display()
        )),
    }
}

impl TextTokenizer {
    /// Parses `tokenizer.json` bytes; `origin` names the source in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path, max_len: usize, lower_case: bool) -> Result<Self> {
        let mut inner = Tokenizer::from_bytes(bytes).map_err(|e| unreadable(bytes, origin, e))?;
        if max_len < 2 {
            return Err(Error::InvalidArgument(format!("max_seq_length {max_len} leaves no room for a token")));
        }
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        Ok(TextTokenizer { inner, json: Arc::from(bytes), max_len, lower_case, warned: AtomicBool::new(false) })
    }

    /// Reads `tokenizer.json` from `path`.
    pub fn from_file(path: &Path, max_len: usize, lower_case: bool) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        Self::from_bytes(&bytes, path, max_len, lower_case)
    }

    /// The same tokenizer truncating to `max_len` tokens instead.
    pub fn with_max_len(&self, max_len: usize) -> Result<Self> {
        Self::from_bytes(&self.json, Path::new("tokenizer.json"), max_len, self.lower_case)
    }

    /// The `tokenizer.json` bytes it was built from (written unchanged into saved models).
    pub fn json_bytes(&self) -> &[u8] {
        &self.json
    }

    /// Number of ids the tokenizer can produce (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Largest id the tokenizer can produce, plus one.
    pub fn id_bound(&self) -> usize {
        let vocab = self.inner.get_vocab(true);
        vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0)
    }

    /// Maximum tokens per input, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Token ids (with `[CLS]`/`[SEP]`) of each text, truncated to [`Self::max_len`].
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let owned: Vec<String>;
        let inputs: Vec<&str> = if self.lower_case {
            owned = texts.iter().map(|t| t.to_lowercase()).collect();
            owned.iter().map(String::as_str).collect()
        } else {
            texts.to_vec()
        };
        let encodings = self
            .inner
            .encode_batch(inputs, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut out = Vec::with_capacity(encodings.len());
        for enc in encodings {
            if !enc.get_overflowing().is_empty() && !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "an input is longer than max_seq_length = {} tokens and was truncated \
                     (further truncations are not reported)",
                    self.max_len
                );
            }
            out.push(enc.get_ids().to_vec());
        }
        Ok(out)
    }

    /// Whether a truncation has been reported.
    pub fn truncation_warned(&self) -> bool {
        self.warned.load(Ordering::Relaxed)
    }
}
