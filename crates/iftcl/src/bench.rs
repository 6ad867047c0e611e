//! Throughput benchmarks behind `iftcl bench`: medians over repeated timed runs after a warm-up.

use std::time::Instant;

use serde::Serialize;

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

/// Median of `v` (NaN for an empty slice).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
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
        batch_size: crate::encoder::DEFAULT_BATCH_SIZE,
        tokens,
        runs_s,
        sentences_per_s: sentences.len() as f64 / med,
    })
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
