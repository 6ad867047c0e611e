//! `bench train`: sentences per second of training steps: the steps of [`run_steps`], the loop
//! `iftcl train` runs.

use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::train::driver::{Batches, Ended, Flagged, Schedule, StepReport, run_steps};
use crate::train::{FineTuner, TrainConfig};

/// Seconds of each of `steps` timed training steps of `start` (on its device) after `warmup`
/// untimed ones, with the batch, loss and queue of `config`, on `sentences` taken in order. A
/// step's time runs from taking its sentences to reading its loss back, so its device work is
/// inside it.
pub fn bench_train(start: &SentenceEncoder, sentences: &[String], config: &TrainConfig, warmup: usize, steps: usize) -> Result<Vec<f64>> {
    if sentences.is_empty() || steps == 0 {
        return Err(Error::InvalidArgument("bench train needs at least one sentence and one timed step".into()));
    }
    let mut tuner = FineTuner::new(start, config.clone())?;
    let mut times = Vec::with_capacity(steps);
    let never = std::sync::atomic::AtomicBool::new(false);
    let mut hooks = Flagged {
        cancel: &never,
        on_step: |r: &StepReport| {
            if r.step > warmup as u64 {
                times.push(r.seconds);
            }
            Ok(())
        },
    };
    let batches = Batches::Cycle { sentences, batch: config.batch_size };
    match pollster::block_on(run_steps(&mut tuner, &batches, &Schedule::Constant(config.lr), (warmup + steps) as u64, &mut hooks))? {
        Ended::Completed => Ok(times),
        Ended::Cancelled { .. } => Err(Error::Cancelled("during bench train".into())),
        Ended::Diverged { step, what, .. } => Err(Error::Diverged(format!("{what} at step {step} of the benchmark"))),
    }
}
