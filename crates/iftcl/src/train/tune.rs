//! [`tune`]: a few IFTCL steps on sentences held in memory, for apps that fine-tune on their
//! user's own text (the Tauri plugin, the library example). Progress after every step,
//! cancellation between steps, and the caller's encoder is never touched: the tuned weights
//! come back as a new encoder only when every step ran and the weights are finite.

use std::sync::atomic::{AtomicBool, Ordering};

use super::config::TrainConfig;
use super::fine_tuner::{FineTuner, scalar};
use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};

/// What [`tune`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneOptions {
    /// Steps to run (at least 1).
    pub steps: usize,
    /// Sentences per step (at least 2: in-batch negatives), cut to the number of sentences.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// Seed of the augmentation and dropout streams.
    pub seed: u64,
    /// The rest of the recipe (loss, queue, temperature, max length); its `batch_size`, `lr`
    /// and `seed` are replaced by the fields above.
    pub recipe: TrainConfig,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions { steps: 10, batch_size: 8, lr: 1e-5, seed: 42, recipe: TrainConfig::default() }
    }
}

/// After each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuneProgress {
    /// Steps done (1-based).
    pub step: usize,
    /// Steps asked for.
    pub steps: usize,
    /// L.
    pub loss: f64,
    /// L_nce.
    pub nce: f64,
    /// L_twins (absent for `infonce`).
    pub twins: Option<f64>,
}

/// What [`tune`] gives back.
#[derive(Debug)]
pub struct Tuned {
    /// The tuned model, on the device of the encoder it started from.
    pub encoder: SentenceEncoder,
    /// The loss of each step.
    pub losses: Vec<f64>,
}

/// Runs `options.steps` IFTCL steps from `encoder`'s weights on `sentences` (taken in order,
/// `batch_size` at a time, wrapping around), calling `on_step` after each. Checks `cancel`
/// before every step: once set, stops with [`Error::Cancelled`]. A loss or weight that is not
/// finite stops with [`Error::Diverged`]. `encoder` is unchanged whatever happens.
pub fn tune(encoder: &SentenceEncoder, sentences: &[String], options: &TuneOptions, cancel: &AtomicBool, mut on_step: impl FnMut(&TuneProgress)) -> Result<Tuned> {
    if sentences.len() < 2 {
        return Err(Error::InvalidArgument(format!("fine-tuning needs at least 2 sentences (in-batch negatives), got {}", sentences.len())));
    }
    if options.steps == 0 || options.batch_size < 2 || !(options.lr > 0.0 && options.lr.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "steps must be at least 1 (got {}), batch size at least 2 (got {}), lr a positive number (got {})",
            options.steps, options.batch_size, options.lr
        )));
    }
    if let Some((i, _)) = sentences.iter().enumerate().find(|(_, s)| s.trim().is_empty()) {
        return Err(Error::InvalidArgument(format!("sentence {i} is empty")));
    }
    let batch = options.batch_size.min(sentences.len());
    let settings = TrainConfig { batch_size: batch, lr: options.lr, seed: options.seed, ..options.recipe.clone() };
    let mut tuner = FineTuner::new(encoder, settings)?;
    let mut losses = Vec::with_capacity(options.steps);
    for k in 0..options.steps {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled(format!("after {k} of {} steps; the weights are those of before the call", options.steps)));
        }
        let start = k * batch % sentences.len();
        let texts: Vec<String> = (0..batch).map(|i| sentences[(start + i) % sentences.len()].clone()).collect();
        let step = tuner.step(&texts, options.lr)?.read()?;
        if !step.total.is_finite() {
            return Err(Error::Diverged(format!("the loss became {} at step {}; the weights are those of before the call", step.total, k + 1)));
        }
        losses.push(step.total);
        on_step(&TuneProgress { step: k + 1, steps: options.steps, loss: step.total, nce: step.nce, twins: step.twins });
    }
    // A device with broken gradients can leave NaN weights behind a finite loss.
    let sum = scalar(tuner.weights_abs_sum())?;
    if !sum.is_finite() {
        return Err(Error::Diverged(format!("the weights became {sum} after {} steps; the weights are those of before the call", options.steps)));
    }
    Ok(Tuned { encoder: tuner.encoder(), losses })
}
