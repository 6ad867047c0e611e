//! `bench embed`: sentences per second of inference.

use std::time::Instant;

use serde::Serialize;

use super::median;
use crate::encoder::SentenceEncoder;
use crate::error::Result;

/// Result of `bench embed`.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    /// Device description.
    pub device: String,
    /// Sentences per timed run.
    pub sentences: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Tokens per timed run (special tokens included).
    pub tokens: usize,
    /// Seconds of each timed run.
    pub runs_s: Vec<f64>,
    /// Median sentences per second.
    pub sentences_per_s: f64,
}

/// Times embedding `sentences` (tokenisation included) `runs` times after one warm-up run.
pub fn bench_embed(encoder: &SentenceEncoder, sentences: &[&str], runs: usize, device: &str) -> Result<EmbedBench> {
    let tokens = encoder.tokenize(sentences)?.iter().map(Vec::len).sum();
    encoder.embed(sentences)?;
    let mut runs_s = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let out = encoder.embed(sentences)?;
        std::hint::black_box(out);
        runs_s.push(t.elapsed().as_secs_f64());
    }
    let med = median(&runs_s);
    Ok(EmbedBench {
        device: device.to_string(),
        sentences: sentences.len(),
        batch_size: encoder.batch_size(),
        tokens,
        runs_s,
        sentences_per_s: sentences.len() as f64 / med,
    })
}

