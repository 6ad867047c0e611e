//! IFTCL training: data, augmentation, the hippocampus queue, the losses, the loop.

pub mod augment;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod fused;
pub mod hippocampus;
pub mod info_nce;
pub mod memory;
pub mod metrics;
pub mod objective;
#[cfg(test)]
pub(crate) mod reference;
pub mod trainer;
pub mod twins_loss;

pub use config::TrainConfig;
pub use objective::{LossKind, Objective};
pub use trainer::{EvalMetrics, FineTuner, Quiet, StepMetrics, StepOutcome, TrainObserver, TrainSummary, train};
pub use twins_loss::TwinsForm;
