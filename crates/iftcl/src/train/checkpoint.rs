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
use super::hippocampus::{QueueState, UNKNOWN_KEY};
use crate::error::{Error, Result};
use crate::hf_config::{read_json, write_json};
use crate::model::folder::FolderContents;

/// File names inside a checkpoint.
pub const STATE_FILE: &str = "trainer_state.json";
/// Optimizer state (burnpack).
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Queue values (tensor `queue`, `[slots, width]` f32) and the sentence key of each slot
/// (tensor `keys`, `[slots]` u64; absent from checkpoints written before keys were kept).
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
        let failed = |e: safetensors::SafeTensorError| Error::Execution(format!("serialising the queue: {e}"));
        let slots = self.queue.stamps.len();
        let bytes: Vec<u8> = self.queue.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let dim = if slots == 0 { 0 } else { self.queue.values.len() / slots };
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![slots, dim], &bytes).map_err(failed)?;
        let key_bytes: Vec<u8> = self.queue.keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        let keys = safetensors::tensor::TensorView::new(safetensors::Dtype::U64, vec![self.queue.keys.len()], &key_bytes).map_err(failed)?;
        let data = safetensors::serialize(vec![("queue", view), ("keys", keys)], None).map_err(failed)?;
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
    // A checkpoint written before keys were kept: its entries match no sentence, as before.
    let keys = match st.tensor("keys") {
        Ok(k) if k.dtype() == safetensors::Dtype::U64 => k.data().chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect(),
        Ok(k) => return Err(Error::Checkpoint { path: qp.clone(), message: format!("its `keys` tensor is {:?}, not U64", k.dtype()) }),
        Err(safetensors::SafeTensorError::TensorNotFound(_)) => vec![UNKNOWN_KEY; state.queue_stamps.len()],
        Err(e) => return Err(corrupt(e)),
    };
    let queue = QueueState { values, stamps: state.queue_stamps.clone(), keys, head: state.queue_head };
    Ok(Resumed { state, queue, optimizer, config })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{Scratch, tiny_encoder};

    fn saved_checkpoint(dir: &Path, queue: &QueueState) {
        let encoder = tiny_encoder();
        let config = TrainConfig { queue_size: Some(queue.stamps.len()), ..TrainConfig::default() };
        let optimizer = crate::train::FineTuner::new(&encoder, config.clone()).unwrap();
        let state = TrainerState { step: 2, total_steps: 4, best_dev: None, queue_stamps: queue.stamps.clone(), queue_head: queue.head, corpus: None };
        Checkpoint { model: encoder.folder_contents(), optimizer: Some(optimizer.optimizer()), state: &state, queue, config: &config }.save(dir, &crate::atomic::NoJournal).unwrap();
    }

    #[test]
    fn queue_keys_round_trip_and_old_queue_files_load() {
        let scratch = Scratch::new("checkpoint-keys");
        let dir = scratch.0.join("last");
        let queue = QueueState { values: vec![0.5; 3 * 2], stamps: vec![0, 1, -1], keys: vec![7, u64::MAX, UNKNOWN_KEY], head: 2 };
        saved_checkpoint(&dir, &queue);
        assert_eq!(load_resume(&dir).unwrap().queue, queue);

        // A queue file as checkpoints wrote it before keys were kept: the values alone.
        let bytes: Vec<u8> = queue.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, 2], &bytes).unwrap();
        std::fs::write(dir.join(QUEUE_FILE), safetensors::serialize(vec![("queue", view)], None).unwrap()).unwrap();
        let old = load_resume(&dir).unwrap().queue;
        assert_eq!(old, QueueState { keys: vec![UNKNOWN_KEY; 3], ..queue.clone() }, "no key matches any sentence");

        // Keys of another type are a damaged file, named.
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, 2], &bytes).unwrap();
        let keys = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3], &bytes[..12]).unwrap();
        std::fs::write(dir.join(QUEUE_FILE), safetensors::serialize(vec![("queue", view), ("keys", keys)], None).unwrap()).unwrap();
        let e = load_resume(&dir).unwrap_err().to_string();
        assert!(e.contains("queue.safetensors") && e.contains("not U64"), "{e}");
    }
}
