//! Writing a run's checkpoints, and only good ones: before each write one reduction checks that
//! every weight is finite and a two-sentence forward pass that the embeddings are (weights of
//! 1e30 are finite, yet overflow every forward pass). A model that fails is not written; the
//! run stops with a message naming the newest checkpoint that is good, or saying there is none.

use std::path::{Path, PathBuf};

use super::checkpoint::{Checkpoint, TrainerState};
use super::config::TrainConfig;
use super::fine_tuner::{FineTuner, scalar};
use super::out_dir::OutputFolder;
use super::run_lock::LockRecord;
use crate::error::{Error, Result};

/// The run's checkpoint folders and the newest good checkpoint it can resume from.
#[derive(Debug)]
pub struct Checkpointer {
    /// `OUT/last`: model, optimizer, queue and step.
    pub last_dir: PathBuf,
    /// `OUT/best`: the model with the best STS-B dev so far.
    pub best_dir: PathBuf,
    /// The newest checkpoint known good (folder, step): the one resumed from, then each one
    /// written.
    newest: Option<(PathBuf, u64)>,
    /// Where the temporary names of each write are recorded (the output folder's lock file).
    journal: LockRecord,
}

impl Checkpointer {
    /// Checkpoints go to `OUT/last` and `OUT/best` of the run's output folder; `resumed_from`
    /// is the checkpoint the run continues, if any.
    pub fn new(out: &OutputFolder, resumed_from: Option<(PathBuf, u64)>) -> Self {
        let dir = out.dir();
        Checkpointer { last_dir: dir.join("last"), best_dir: dir.join("best"), newest: resumed_from, journal: out.journal() }
    }

    /// Why the tuner's model must not be saved, if it must not: a weight that is not finite,
    /// or an embedding of the `probe` sentences (the first two) that is not.
    pub fn unsound(&self, tuner: &FineTuner, probe: &[String]) -> Result<Option<String>> {
        let sum = scalar(tuner.weights_abs_sum())?;
        if !sum.is_finite() {
            return Ok(Some(format!("the weights became non-finite (sum of |w| = {sum})")));
        }
        let probe: Vec<&str> = probe.iter().take(2).map(String::as_str).collect();
        match tuner.encoder().embed(&probe) {
            Ok(_) => Ok(None),
            Err(Error::NonFiniteEmbedding { value, .. }) => Ok(Some(format!("the weights became so large that the embeddings overflow (to {value})"))),
            Err(e) => Err(e),
        }
    }

    /// Writes `OUT/best` (when `best`), then `OUT/last` (when `last`): a kill between the two
    /// leaves `last/` at an earlier step, which a resume redoes. Call [`Self::unsound`] first.
    pub fn write(&mut self, tuner: &FineTuner, config: &TrainConfig, state: &TrainerState, best: bool, last: bool) -> Result<()> {
        if best {
            save(tuner, config, state, false, &self.best_dir, &self.journal)?;
        }
        if last {
            save(tuner, config, state, true, &self.last_dir, &self.journal)?;
            self.newest = Some((self.last_dir.clone(), state.step));
        }
        Ok(())
    }

    /// The error that stops a run at `step` (learning rate `lr`) because of `why`, naming the
    /// newest good checkpoint.
    pub fn stop(&self, step: u64, lr: f64, why: &str) -> Error {
        let newest = match &self.newest {
            Some((dir, s)) => format!("the newest good checkpoint is {} (step {s}), intact", dir.display()),
            None => "no checkpoint was written, so there is none to resume from".to_string(),
        };
        Error::Diverged(format!("{why} at step {step} (lr {lr:.3e}); training stopped: {newest}. Lower --lr or raise --temperature"))
    }
}

/// Writes a checkpoint of `tuner`'s model: with the optimizer (a resumable `last/`) or
/// without it (a model-only `best/`).
fn save(tuner: &FineTuner, config: &TrainConfig, state: &TrainerState, with_optimizer: bool, dir: &Path, journal: &LockRecord) -> Result<()> {
    let encoder = tuner.encoder();
    let queue = tuner.queue_state()?;
    let state = TrainerState { queue_stamps: queue.stamps.clone(), queue_head: queue.head, ..state.clone() };
    Checkpoint { model: encoder.folder_contents(), optimizer: with_optimizer.then(|| tuner.optimizer()), state: &state, queue: &queue, config }.save(dir, journal)
}
