//! Training checkpoints: a model folder in the Hugging Face + sentence-transformers layout (so
//! `iftcl embed/eval` and Python's sentence-transformers load it) plus what an exact resume
//! needs: optimizer moments (`optimizer.bpk`), the queue (`queue.safetensors` +
//! `trainer_state.json`), the step (which fixes data position and every RNG), and the resolved
//! config (`train_config.toml`). Written into `<dir>.partial`, then renamed: atomic.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::data::CorpusIdentity;
use super::hippocampus::QueueState;
use crate::error::{Error, Result};
use crate::hf_config::{read_json, write_json};
use crate::model::folder::FolderContents;

/// File names inside a checkpoint.
pub const STATE_FILE: &str = "trainer_state.json";
/// Optimizer state (burnpack).
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Queue values.
pub const QUEUE_FILE: &str = "queue.safetensors";
/// The resolved config.
pub const CONFIG_FILE: &str = "train_config.toml";

/// What the loop needs besides weights and optimizer to continue exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Steps completed.
    pub step: u64,
    /// Total steps of the schedule.
    pub total_steps: u64,
    /// Best STS-B dev Spearman so far, and its step.
    pub best_dev: Option<(f64, u64)>,
    /// Queue slot stamps (-1 empty) and write position.
    pub queue_stamps: Vec<i64>,
    /// Next queue slot.
    pub queue_head: usize,
    /// The corpus the run reads (a resume on other bytes would not continue exactly); absent
    /// from checkpoints written before it was recorded.
    #[serde(default)]
    pub corpus: Option<CorpusIdentity>,
}

/// Everything one checkpoint holds.
pub struct Checkpoint<'a> {
    /// The model folder's contents: transformer, config, head, tokenizer.
    pub model: FolderContents<'a>,
    /// Optimizer (None for a model-only `best/`).
    pub optimizer: Option<&'a ModuleOptimizer>,
    /// Loop state.
    pub state: &'a TrainerState,
    /// Queue values.
    pub queue: &'a QueueState,
    /// The run's config.
    pub config: &'a TrainConfig,
}

impl Checkpoint<'_> {
    /// Writes the checkpoint atomically to `dir`, recording its temporary names in `journal`.
    pub fn save(&self, dir: &Path, journal: &dyn crate::atomic::Journal) -> Result<()> {
        crate::atomic::write_dir_journaled(dir, journal, |tmp| self.write_into(tmp))
    }

    fn write_into(&self, tmp: &Path) -> Result<()> {
        self.model.write_into(tmp)?;
        if let Some(optim) = self.optimizer {
            let bytes = optim.into_bytes().map_err(|e| Error::Execution(format!("serialising the optimizer: {e:?}")))?;
            let p = tmp.join(OPTIMIZER_FILE);
            std::fs::write(&p, &bytes[..]).map_err(|e| Error::io("write", &p, e))?;
        }
        write_json(&tmp.join(STATE_FILE), self.state)?;
        let p = tmp.join(CONFIG_FILE);
        std::fs::write(&p, self.config.to_toml()).map_err(|e| Error::io("write", &p, e))?;
        let bytes: Vec<u8> = self.queue.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let dim = if self.queue.stamps.is_empty() { 0 } else { self.queue.values.len() / self.queue.stamps.len() };
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![self.queue.stamps.len(), dim], &bytes)
            .map_err(|e| Error::Execution(format!("serialising the queue: {e}")))?;
        let data = safetensors::serialize(vec![("queue", view)], None)
            .map_err(|e| Error::Execution(format!("serialising the queue: {e}")))?;
        let p = tmp.join(QUEUE_FILE);
        std::fs::write(&p, data).map_err(|e| Error::io("write", &p, e))
    }
}

/// A checkpoint read back for resuming.
#[derive(Debug)]
pub struct Resumed {
    /// Loop state.
    pub state: TrainerState,
    /// Queue values.
    pub queue: QueueState,
    /// Optimizer bytes.
    pub optimizer: Bytes,
    /// The config the checkpoint was written with.
    pub config: TrainConfig,
}

/// `dir/name`, a file a resumable checkpoint must hold.
fn need(dir: &Path, name: &str) -> Result<PathBuf> {
    if dir.is_file() {
        return Err(Error::NotAFolder {
            what: "checkpoint".into(),
            path: dir.to_path_buf(),
            hint: "--resume takes a checkpoint folder written by `iftcl train` (e.g. OUT/last)".into(),
        });
    }
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Missing {
            what: format!("checkpoint file {name}"),
            path: p,
            hint: "--resume takes a checkpoint folder written by `iftcl train` (e.g. OUT/last)".into(),
        })
    }
}

/// The config the checkpoint `dir` was written with: what a resumed run starts from.
pub fn read_config(dir: &Path) -> Result<TrainConfig> {
    need(dir, STATE_FILE)?;
    TrainConfig::from_toml_file(&need(dir, CONFIG_FILE)?)
}

/// Reads the resume files of `dir` (the model itself loads as any model folder).
pub fn load_resume(dir: &Path) -> Result<Resumed> {
    let state: TrainerState = read_json(&need(dir, STATE_FILE)?)?;
    let config = read_config(dir)?;
    let opt_path = need(dir, OPTIMIZER_FILE)?;
    let optimizer = Bytes::from_bytes_vec(std::fs::read(&opt_path).map_err(|e| Error::io("read", &opt_path, e))?);
    let qp = need(dir, QUEUE_FILE)?;
    let qbytes = std::fs::read(&qp).map_err(|e| Error::io("read", &qp, e))?;
    let corrupt = |e: safetensors::SafeTensorError| Error::Checkpoint { path: qp.clone(), message: format!("cannot be read ({e})") };
    let st = safetensors::SafeTensors::deserialize(&qbytes).map_err(corrupt)?;
    let view = st.tensor("queue").map_err(corrupt)?;
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let queue = QueueState { values, stamps: state.queue_stamps.clone(), head: state.queue_head };
    Ok(Resumed { state, queue, optimizer, config })
}
