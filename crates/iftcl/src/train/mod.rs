//! IFTCL training.
//!
//! - Inputs: [`config`] (every setting, from flags or TOML), [`data`] (the corpus and its
//!   order), [`augment`] (fraternal twins).
//! - The loss: [`objective`] (which terms; plain ops or the [`fused`] kernels), [`info_nce`],
//!   [`twins_loss`], and [`hippocampus`] (the queue of earlier embeddings as negatives).
//! - The step: [`fine_tuner`] ([`FineTuner`]: views, forward, loss, backward, optimizer, queue);
//!   [`driver`] ([`run_steps`]): the one loop around it (batches, learning rate, loss read,
//!   finite checks, cancellation, progress) that every front end runs; [`tune()`] runs a few
//!   steps on sentences in memory, for apps.
//! - The run: [`trainer`] ([`train()`]: set-up and the loop), [`out_dir`] (the output folder,
//!   owned by one run: [`run_lock`]), [`checkpoint`] (its files), [`checkpointer`] (written only
//!   from a sound model), [`resume_check`] (what a resume must agree with), [`metrics`] and
//!   `curves`; [`memory`] estimates what a step needs.

pub mod augment;
pub mod checkpoint;
pub mod checkpointer;
pub mod config;
pub(crate) mod curves;
pub mod data;
pub mod driver;
pub mod fine_tuner;
pub mod fused;
pub mod hippocampus;
pub mod info_nce;
pub mod memory;
pub mod metrics;
pub mod objective;
pub mod out_dir;
#[cfg(test)]
pub(crate) mod reference;
pub mod resume_check;
pub mod run_lock;
pub mod trainer;
pub mod tune;
pub mod twins_form;
pub mod twins_loss;

pub use config::TrainConfig;
pub use driver::{Batches, Ended, Schedule, StepHooks, StepReport, run_steps};
pub use fine_tuner::{FineTuner, StepLosses, StepOutcome};
pub use metrics::{EvalMetrics, Quiet, StepMetrics, TrainObserver, TrainSummary};
pub use objective::{LossKind, Objective};
pub use trainer::train;
pub use tune::{TuneOptions, TuneProgress, Tuned, tune};
pub use twins_form::TwinsForm;
