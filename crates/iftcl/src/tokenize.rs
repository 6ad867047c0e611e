//! Tokenisation with the `tokenizers` crate from a model's `tokenizer.json`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokenizers::{PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

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

/// Why `tokenizer.json` bytes that are valid JSON did not load: not a Hugging Face tokenizer
/// (the missing or wrong field).
fn unreadable(origin: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!(
        "{} is valid JSON but not a Hugging Face tokenizers file ({e}); the model folder needs the \
         tokenizer.json that `tokenizer.save_pretrained` writes",
        origin.display()
    ))
}

/// Runs a call into `tokenizers`, which panics on some tokenizer.json files it accepted (a BPE
/// `continuing_subword_prefix` of the wrong kind slices a string out of bounds): the panic
/// becomes an error instead of ending the program (where panics unwind: not in the browser).
fn guarded<T>(what: &str, call: impl FnOnce() -> tokenizers::Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(|e| Error::Tokenizer(format!("{what}: {e}"))),
        Err(panic) => {
            let why = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("");
            Err(Error::Tokenizer(format!("{what} failed inside the tokenizers library ({why}); the tokenizer.json is malformed")))
        }
    }
}

impl TextTokenizer {
    /// Parses `tokenizer.json` bytes; `origin` names the source in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path, max_len: usize, lower_case: bool) -> Result<Self> {
        // `tokenizers` panics on some malformed JSON (a truncated file: "Helper: EOF while
        // parsing"), so the syntax is checked first.
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(Error::Parse { path: origin.to_path_buf(), format: "JSON", message: e.to_string() });
        }
        let mut inner = match guarded("parsing", || Tokenizer::from_bytes(bytes)) {
            Ok(t) => t,
            Err(Error::Tokenizer(why)) => return Err(unreadable(origin, why)),
            Err(e) => return Err(e),
        };
        if max_len < 2 {
            return Err(Error::InvalidArgument(format!("max_seq_length {max_len} leaves no room for a token")));
        }
        // The special tokens the post-processor adds must leave room for one of the text's.
        let added = inner.get_post_processor().map_or(0, |p| p.added_tokens(false));
        if added >= max_len {
            return Err(Error::Tokenizer(format!(
                "{}: its post_processor adds {added} special tokens, which leaves no room for a token within max_seq_length {max_len}",
                origin.display()
            )));
        }
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", origin.display())))?;
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

    /// Whether inputs are lower-cased before tokenising (`sentence_bert_config.json`'s
    /// `do_lower_case`).
    pub fn lower_case(&self) -> bool {
        self.lower_case
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
        let encodings = guarded("tokenizing (tokenizer.json)", || self.inner.encode_batch(inputs, true))?;
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
