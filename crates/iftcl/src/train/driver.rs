//! [`run_steps`]: the one loop around [`FineTuner::step`] that every front end runs: `iftcl
//! train` ([`super::train()`]), apps' in-memory fine-tunes ([`super::tune()`], the Tauri
//! plugin), `iftcl bench train` and the browser's `fineTune`. It owns what each of them needs
//! the same way: which sentences a step takes ([`Batches`]), its learning rate ([`Schedule`]),
//! reading the losses back (one read per step), stopping on a loss or weight that is not
//! finite, cancellation between steps, and progress after each step.
//!
//! What a stopped run keeps is the caller's choice, made the same way by all of them: a
//! fine-tune that is cancelled or diverges keeps nothing (the model is the one from before the
//! call), while `iftcl train` keeps its last sound checkpoint on disk.
//!
//! It is `async` because a browser's WebGPU device cannot block on a read; native callers run
//! it with `pollster::block_on`.

use std::future::Future;

use burn::tensor::Tensor;
use web_time::Instant;

use super::data::Corpus;
use super::fine_tuner::{FineTuner, StepLosses, StepOutcome};
use crate::error::{Error, Result};

/// Where each step's sentences come from.
#[derive(Debug, Clone, Copy)]
pub enum Batches<'a> {
    /// `batch` sentences of a corpus file per step, in the shuffled order that (seed, epoch)
    /// gives; the incomplete last batch of an epoch is dropped. What `iftcl train` reads.
    Corpus {
        /// The corpus.
        corpus: &'a Corpus,
        /// Seed of the epochs' order.
        seed: u64,
        /// Sentences per step.
        batch: usize,
    },
    /// `batch` sentences at a time from a list held in memory, in order, wrapping around: step
    /// `s` starts at sentence `s · batch mod len`.
    Cycle {
        /// The sentences.
        sentences: &'a [String],
        /// Sentences per step (at most the number of sentences).
        batch: usize,
    },
}

impl Batches<'_> {
    /// The sentences of step `step` (0-based, counted over the whole run).
    pub fn texts(&self, step: u64) -> Result<Vec<String>> {
        match *self {
            Batches::Corpus { corpus, seed, batch } => {
                let per_epoch = corpus.batches_per_epoch(batch) as u64;
                if per_epoch == 0 {
                    return Err(Error::Data(format!("corpus {} has fewer sentences than one batch of {batch}", corpus.path().display())));
                }
                let indices = corpus.batch_indices(seed, step / per_epoch, (step % per_epoch) as usize, batch);
                corpus.read(&indices)
            }
            Batches::Cycle { sentences, batch } => {
                if sentences.is_empty() {
                    return Err(Error::InvalidArgument("no sentences to fine-tune on".into()));
                }
                let start = (step % sentences.len() as u64) as usize * batch % sentences.len();
                Ok((0..batch).map(|i| sentences[(start + i) % sentences.len()].clone()).collect())
            }
        }
    }

    /// Sentences per step.
    pub fn batch_size(&self) -> usize {
        match *self {
            Batches::Corpus { batch, .. } | Batches::Cycle { batch, .. } => batch,
        }
    }
}

/// The learning rate of each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The same rate for every step.
    Constant(f64),
    /// Linear warm-up over `warmup` steps to `peak`, then linear decay to 0 at step `total`:
    /// `iftcl train`'s schedule.
    WarmupLinear {
        /// The highest rate, reached at the end of the warm-up.
        peak: f64,
        /// Steps of the whole run.
        total: u64,
        /// Warm-up steps.
        warmup: u64,
    },
}

impl Schedule {
    /// The rate of step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        match *self {
            Schedule::Constant(lr) => lr,
            Schedule::WarmupLinear { peak, total, warmup } => {
                if step < warmup {
                    peak * (step + 1) as f64 / warmup as f64
                } else {
                    peak * total.saturating_sub(step) as f64 / total.saturating_sub(warmup).max(1) as f64
                }
            }
        }
    }
}

/// What one finished step reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Steps the tuner has done, this one included (1-based).
    pub step: u64,
    /// The learning rate this step used.
    pub lr: f64,
    /// Its loss and terms (finite: a step whose loss is not finite ends the run instead).
    pub losses: StepLosses,
    /// Queue entries it used as negatives.
    pub queue_used: usize,
    /// Seconds from taking its sentences to reading its loss back.
    pub seconds: f64,
}

/// How [`run_steps`] ended, when it ran without an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// Every step ran and the weights are finite.
    Completed,
    /// [`StepHooks::proceed`] said stop before step `done + 1`.
    Cancelled {
        /// Steps done in this call.
        done: u64,
    },
    /// A loss or the weights stopped being finite.
    Diverged {
        /// The step (1-based, over the whole run) whose loss was not finite, or the last step
        /// when the weights were found not finite after it.
        step: u64,
        /// That step's learning rate.
        lr: f64,
        /// What went wrong ("the loss became NaN", "the weights became inf").
        what: String,
    },
}

/// What the caller does around each step.
pub trait StepHooks {
    /// Before the step with 0-based index `step`: `false` stops the run there (cancellation).
    /// A browser yields to its event loop here, so that an abort can arrive.
    fn proceed(&mut self, step: u64) -> impl Future<Output = bool>;
    /// After each step whose loss is finite: progress, logging, evaluation, checkpoints. `texts`
    /// are the step's sentences. An error ends the run with that error.
    fn after_step(&mut self, tuner: &FineTuner, texts: &[String], report: &StepReport) -> Result<()>;
}

/// Runs steps on `tuner` until it has done `until` steps in all (a resumed tuner starts at its
/// own count), taking sentences from `batches` and rates from `schedule`, calling `hooks`
/// around each. Each step's losses are read back once (one host read per step). After the last
/// step the weights are checked once (one more read): a device that computes broken gradients
/// can leave non-finite weights behind a finite loss.
pub async fn run_steps(tuner: &mut FineTuner, batches: &Batches<'_>, schedule: &Schedule, until: u64, hooks: &mut impl StepHooks) -> Result<Ended> {
    if batches.batch_size() < 2 {
        return Err(Error::InvalidArgument(format!("a step needs at least 2 sentences (in-batch negatives), got {}", batches.batch_size())));
    }
    let first = tuner.steps_done();
    let mut lr = schedule.lr(first);
    while tuner.steps_done() < until {
        let step = tuner.steps_done();
        if !hooks.proceed(step).await {
            return Ok(Ended::Cancelled { done: step - first });
        }
        let started = Instant::now();
        let texts = batches.texts(step)?;
        lr = schedule.lr(step);
        let outcome = tuner.step(&texts, lr)?;
        let losses = read_losses(&outcome).await?;
        #[cfg(test)]
        let losses = fault::poison(step + 1, losses);
        if !losses.total.is_finite() {
            return Ok(Ended::Diverged { step: step + 1, lr, what: format!("the loss became {}", losses.total) });
        }
        let report = StepReport { step: step + 1, lr, losses, queue_used: outcome.queue_used, seconds: started.elapsed().as_secs_f64() };
        hooks.after_step(tuner, &texts, &report)?;
    }
    if tuner.steps_done() > first {
        let sum = read_values(tuner.weights_abs_sum()).await?[0];
        if !sum.is_finite() {
            return Ok(Ended::Diverged { step: tuner.steps_done(), lr, what: format!("the weights became {sum}") });
        }
    }
    Ok(Ended::Completed)
}

/// The losses of a step in one read: `[total, nce, twins?]` put side by side on the device.
pub async fn read_losses(outcome: &StepOutcome) -> Result<StepLosses> {
    let mut parts = vec![outcome.total.clone(), outcome.nce.clone()];
    parts.extend(outcome.twins.clone());
    let v = read_values(Tensor::cat(parts, 0)).await?;
    Ok(StepLosses { total: v[0], nce: v[1], twins: outcome.twins.as_ref().map(|_| v[2]) })
}

/// The values of a small tensor, read asynchronously (a CPU-GPU sync point).
async fn read_values(t: Tensor<1>) -> Result<Vec<f64>> {
    crate::host_reads::note();
    let data = t.into_data_async().await.map_err(Error::execution)?;
    let v = data.try_into_vec_as::<f32>().map_err(Error::execution)?;
    if v.is_empty() {
        return Err(Error::Execution("an empty loss tensor".into()));
    }
    Ok(v.into_iter().map(f64::from).collect())
}

/// Hooks for a loop that only stops when told: cancellation by an atomic flag, progress
/// through a closure.
pub struct Flagged<'a, F> {
    /// Checked before every step.
    pub cancel: &'a std::sync::atomic::AtomicBool,
    /// Called after every step.
    pub on_step: F,
}

impl<F: FnMut(&StepReport) -> Result<()>> StepHooks for Flagged<'_, F> {
    async fn proceed(&mut self, _step: u64) -> bool {
        !self.cancel.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn after_step(&mut self, _tuner: &FineTuner, _texts: &[String], report: &StepReport) -> Result<()> {
        (self.on_step)(report)
    }
}

impl<F> std::fmt::Debug for Flagged<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flagged").field("cancel", &self.cancel).finish_non_exhaustive()
    }
}

/// Faults for the library's own unit tests: a loss made NaN at a chosen step, to exercise the
/// guard that stops a run. Compiled only into `cargo test`'s build of this crate.
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::Cell;

    use super::StepLosses;

    thread_local! {
        static NAN_AT_STEP: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// Makes the loss of step `step` (1-based) NaN on this thread until reset with `None`.
    pub(crate) fn nan_at_step(step: Option<u64>) {
        NAN_AT_STEP.with(|c| c.set(step));
    }

    pub(super) fn poison(step: u64, mut losses: StepLosses) -> StepLosses {
        if NAN_AT_STEP.with(Cell::get) == Some(step) {
            losses.total = f64::NAN;
        }
        losses
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{sentences, tiny_encoder};
    use crate::train::hippocampus::QueueState;
    use crate::train::TrainConfig;

    fn settings() -> TrainConfig {
        TrainConfig { batch_size: 4, lr: 1e-3, seed: 5, max_len: 16, queue_size: Some(16), queue_max_age: 4, ..TrainConfig::default() }
    }

    /// Runs steps `from..to` of a cycle over `texts`, returning each step's loss and queue use.
    fn run(tuner: &mut FineTuner, texts: &[String], from: u64, to: u64) -> Vec<(f64, usize)> {
        let batches = Batches::Cycle { sentences: texts, batch: 4 };
        (from..to)
            .map(|s| {
                let out = tuner.step(&batches.texts(s).unwrap(), 1e-3).unwrap();
                (pollster::block_on(read_losses(&out)).unwrap().total, out.queue_used)
            })
            .collect()
    }

    #[test]
    fn a_restored_tuner_continues_exactly_on_repeating_sentences() {
        // Four sentences in batches of four: every queue entry is of a sentence of the batch,
        // so none is a negative, and only the sentence keys say so.
        let (encoder, texts) = (tiny_encoder(), sentences(4));
        let mut full = FineTuner::new(&encoder, settings()).unwrap();
        let reference = run(&mut full, &texts, 0, 6);
        assert!(reference.iter().all(|&(l, used)| l.is_finite() && used == 0), "{reference:?}");

        let mut first = FineTuner::new(&encoder, settings()).unwrap();
        assert_eq!(run(&mut first, &texts, 0, 3), reference[..3]);
        let (optimizer, queue) = (first.optimizer().into_bytes().unwrap(), first.queue_state().unwrap());
        assert_eq!(queue.keys.iter().filter(|&&k| k != crate::train::hippocampus::UNKNOWN_KEY).count(), 16, "the full ring holds keys");
        let mut resumed = FineTuner::new(&first.encoder(), settings()).unwrap().restore(3, optimizer.clone(), &queue).unwrap();
        assert_eq!(run(&mut resumed, &texts, 3, 6), reference[3..], "restored with its keys: the same losses");

        // Without the keys (a checkpoint written before they were kept) the same entries count
        // as negatives of their own sentences, and the run is another one.
        let unkeyed = QueueState { keys: vec![crate::train::hippocampus::UNKNOWN_KEY; queue.keys.len()], ..queue };
        let mut other = FineTuner::new(&first.encoder(), settings()).unwrap().restore(3, optimizer, &unkeyed).unwrap();
        let steps = run(&mut other, &texts, 3, 4);
        assert!(steps[0].1 > 0 && steps[0].0 > reference[3].0, "{steps:?} vs {:?}", reference[3]);
    }

    #[test]
    fn schedules() {
        let s = Schedule::WarmupLinear { peak: 1.0, total: 10, warmup: 2 };
        let lrs: Vec<f64> = (0..10).map(|k| s.lr(k)).collect();
        assert_eq!(lrs, vec![0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]);
        assert_eq!(Schedule::WarmupLinear { peak: 2.0, total: 4, warmup: 0 }.lr(0), 2.0);
        assert_eq!(Schedule::Constant(3e-5).lr(1_000), 3e-5);
    }

    #[test]
    fn cycles_wrap_around_the_sentences() {
        let sentences: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        let b = Batches::Cycle { sentences: &sentences, batch: 2 };
        let got: Vec<Vec<String>> = (0..4).map(|s| b.texts(s).unwrap()).collect();
        assert_eq!(got, vec![vec!["a", "b"], vec!["c", "d"], vec!["e", "a"], vec!["b", "c"]]);
        // Far into a long run the start stays in range.
        assert_eq!(b.texts(u64::MAX).unwrap().len(), 2);
    }
}
