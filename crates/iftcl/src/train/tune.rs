//! [`tune`]: a few IFTCL steps on sentences held in memory, for apps that fine-tune on their
//! user's own text (the Tauri plugin, the library example). Progress after every step,
//! cancellation between steps, and the caller's encoder is never touched: the tuned weights
//! come back as a new encoder only when every step ran and the weights are finite. The loop is
//! [`run_steps`], the one every front end runs.

use std::sync::atomic::AtomicBool;

use super::config::TrainConfig;
use super::driver::{Batches, Ended, Flagged, Schedule, StepReport, run_steps};
use super::fine_tuner::FineTuner;
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
/// `batch_size` at a time, wrapping around: [`Batches::Cycle`]), calling `on_step` after each.
/// Checks `cancel` before every step: once set, stops with [`Error::Cancelled`]. A loss or
/// weight that is not finite stops with [`Error::Diverged`]. All or nothing: `encoder` is never
/// changed, and the tuned weights come back only when every step ran and they are finite; a
/// cancelled or failed call keeps nothing of its steps.
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
    let steps = options.steps;
    let mut hooks = Flagged {
        cancel,
        on_step: |r: &StepReport| {
            losses.push(r.losses.total);
            on_step(&TuneProgress { step: r.step as usize, steps, loss: r.losses.total, nce: r.losses.nce, twins: r.losses.twins });
            Ok(())
        },
    };
    let batches = Batches::Cycle { sentences, batch };
    let ended = pollster::block_on(run_steps(&mut tuner, &batches, &Schedule::Constant(options.lr), steps as u64, &mut hooks))?;
    match ended {
        Ended::Completed => Ok(Tuned { encoder: tuner.encoder(), losses }),
        Ended::Cancelled { done } => Err(Error::Cancelled(format!("after {done} of {steps} steps; the weights are those of before the call"))),
        Ended::Diverged { step, what, .. } => Err(Error::Diverged(format!("{what} at step {step}; the weights are those of before the call"))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::test_fixtures::{sentences, tiny_encoder};
    use crate::train::driver::fault;

    fn options(steps: usize) -> TuneOptions {
        TuneOptions { steps, batch_size: 4, lr: 1e-3, seed: 3, recipe: TrainConfig { max_len: 16, queue_size: Some(8), ..TrainConfig::default() } }
    }

    #[test]
    fn a_completed_tune_reports_every_step_and_moves_the_weights() {
        let encoder = tiny_encoder();
        let texts = sentences(10);
        let before = encoder.embed(&[texts[0].as_str()]).unwrap();
        let mut seen = Vec::new();
        let tuned = tune(&encoder, &texts, &options(3), &AtomicBool::new(false), |p| seen.push((p.step, p.steps, p.twins.is_some()))).unwrap();
        assert_eq!(seen, vec![(1, 3, true), (2, 3, true), (3, 3, true)]);
        assert_eq!(tuned.losses.len(), 3);
        assert!(tuned.losses.iter().all(|l| l.is_finite() && *l > 0.0), "{:?}", tuned.losses);
        let after = tuned.encoder.embed(&[texts[0].as_str()]).unwrap();
        let moved = crate::compare::max_abs_diff(&after[0], &before[0]).unwrap();
        assert!(moved > 1e-4, "3 steps at lr 1e-3 moved the embedding by only {moved:e}");
        // The caller's encoder is untouched.
        assert_eq!(encoder.embed(&[texts[0].as_str()]).unwrap(), before);
    }

    #[test]
    fn a_cancelled_tune_keeps_nothing() {
        let encoder = tiny_encoder();
        let texts = sentences(10);
        let before = encoder.embed(&[texts[0].as_str()]).unwrap();
        let cancel = AtomicBool::new(false);
        let mut steps_seen = 0;
        let e = tune(&encoder, &texts, &options(5), &cancel, |p| {
            steps_seen = p.step;
            cancel.store(true, Ordering::Relaxed);
        })
        .expect_err("a cancelled tune gives back no encoder");
        assert_eq!(steps_seen, 1, "the flag is read before every step");
        assert!(matches!(e, Error::Cancelled(_)), "{e}");
        assert_eq!(e.to_string(), "cancelled after 1 of 5 steps; the weights are those of before the call");
        assert_eq!(encoder.embed(&[texts[0].as_str()]).unwrap(), before);
    }

    #[test]
    fn a_diverged_tune_keeps_nothing() {
        let encoder = tiny_encoder();
        fault::nan_at_step(Some(2));
        let result = tune(&encoder, &sentences(10), &options(4), &AtomicBool::new(false), |_| {});
        fault::nan_at_step(None);
        let e = result.expect_err("a NaN loss stops the tune");
        assert_eq!(e.to_string(), "the loss became NaN at step 2; the weights are those of before the call");
    }
}
