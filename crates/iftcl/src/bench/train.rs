//! `bench train`: sentences per second of training steps, the same step `iftcl train` runs.

use std::time::Instant;

use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::train::{FineTuner, TrainConfig};

/// Seconds of each of `steps` timed training steps of `start` (on its device) after `warmup`
/// untimed ones, with the batch, loss and queue of `config`, on `sentences` taken in order.
pub fn bench_train(start: &SentenceEncoder, sentences: &[String], config: &TrainConfig, warmup: usize, steps: usize) -> Result<Vec<f64>> {
    if sentences.is_empty() || steps == 0 {
        return Err(Error::InvalidArgument("bench train needs at least one sentence and one timed step".into()));
    }
    let mut tuner = FineTuner::new(start, config.clone())?;
    let n = config.batch_size;
    let mut times = Vec::new();
    for step in 0..(warmup + steps) {
        let t = Instant::now();
        let texts: Vec<String> = (0..n).map(|i| sentences[(step * n + i) % sentences.len()].clone()).collect();
        let out = tuner.step(&texts, config.lr)?;
        // Synchronise so the step's device work is inside its time.
        out.read()?;
        if step >= warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}
