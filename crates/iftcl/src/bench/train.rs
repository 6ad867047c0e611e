//! `bench train`: sentences per second of training steps, the same step `iftcl train` runs.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;

use crate::encoder::SentenceEncoder;
use crate::error::Result;
use crate::train::{FineTuner, TrainConfig};

/// Seconds of each of `steps` timed training steps on `device` after `warmup` untimed ones,
/// with the batch, loss and queue of `config`, on `sentences` taken in order.
pub fn bench_train(encoder_dir: &Path, device: &Device, sentences: &[String], config: &TrainConfig, warmup: usize, steps: usize) -> Result<Vec<f64>> {
    let start = SentenceEncoder::load(encoder_dir, device)?;
    let mut tuner = FineTuner::new(&start, config.clone())?;
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
