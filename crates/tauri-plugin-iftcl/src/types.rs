//! What the commands take and give, as JavaScript sees it (camelCase fields); the TypeScript
//! bindings in `guest-js/` declare the same shapes.

use serde::{Deserialize, Serialize};

/// The loaded model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// The folder it was loaded from.
    pub source: String,
    /// Encoder family (`Bert`, `Roberta`, `MpNet`).
    pub family: String,
    /// Width of its vectors.
    pub dim: usize,
    /// Longest input in tokens (longer texts are truncated).
    pub max_seq_length: usize,
    /// The device it runs on, e.g. `"cpu (burn flex)"` or `"wgpu: NVIDIA ... (Vulkan, DiscreteGpu)"`.
    pub device: String,
    /// Fine-tuning steps applied since it was loaded.
    pub tuned_steps: usize,
    /// Distinct texts the last fine-tune since it was loaded used (0 before one).
    pub tuned_on: usize,
    /// SHA-256 of what its embeddings depend on (weights, pooling, prompt).
    pub fingerprint: String,
    /// The languages its model card names (`README.md`'s `language`), empty when it names none.
    pub languages: Vec<String>,
    /// Set when the folder is a tuned model an app kept (`keepTunedModel`): what it was tuned
    /// from and on.
    pub kept: Option<crate::kept::KeptModel>,
}

/// What `loadModel` returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadResult {
    /// The model.
    pub model: ModelInfo,
    /// Set when the stored index came from another model and was embedded again.
    pub index: Option<IndexChange>,
    /// Set when the stored index file is damaged: the model is loaded and embeds, but the index
    /// commands refuse until `resetIndex` (which keeps the damaged file under another name).
    pub index_problem: Option<String>,
}

/// What `resetIndex` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexReset {
    /// Where the damaged file was moved to (null when there was no file).
    pub damaged_file_kept_as: Option<String>,
}

/// The index embedded again for a new model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexChange {
    /// Documents embedded again.
    pub documents: usize,
    /// Time it took.
    pub seconds: f64,
    /// Says what happened, for the user.
    pub message: String,
}

/// One GPU adapter.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Adapter {
    /// What `gpu:N` takes.
    pub index: usize,
    /// Adapter name.
    pub name: String,
    /// Vulkan, Metal, Dx12.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu, Other.
    pub device_type: String,
    /// A real GPU (not one emulated on the CPU).
    pub hardware: bool,
}

impl From<iftcl::device::AdapterInfo> for Adapter {
    fn from(a: iftcl::device::AdapterInfo) -> Self {
        Adapter { hardware: a.is_hardware(), index: a.index, name: a.name, backend: a.backend, device_type: a.device_type }
    }
}

/// What `devices` returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceList {
    /// The adapters wgpu sees.
    pub adapters: Vec<Adapter>,
    /// What `auto` runs on: the first hardware GPU, else the CPU.
    pub auto: String,
    /// The device of the loaded model, if one is loaded.
    pub current: Option<String>,
}

/// A document for the index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentInput {
    /// The caller's id (adding an id again replaces its document).
    pub id: String,
    /// The text to embed.
    pub text: String,
}

/// A stored document, as `indexDocuments` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentInfo {
    /// The caller's id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// Tokens of the text the model reads (at most the model's `maxSeqLength`).
    pub tokens: usize,
    /// The text reaches the model's limit: what lies beyond `maxSeqLength` tokens does not
    /// count toward its meaning.
    pub truncated: bool,
}

/// One step's report, sent on the `onProgress` channel of `fineTune`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Steps done.
    pub step: usize,
    /// Steps asked for.
    pub steps: usize,
    /// L.
    pub loss: f64,
    /// L_nce.
    pub nce: f64,
    /// L_twins (null for `infonce`).
    pub twins: Option<f64>,
}

impl From<&iftcl::train::TuneProgress> for Progress {
    fn from(p: &iftcl::train::TuneProgress) -> Self {
        Progress { step: p.step, steps: p.steps, loss: p.loss, nce: p.nce, twins: p.twins }
    }
}

/// Options of `fineTune` (each optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FineTuneOptions {
    /// Steps (default 10).
    pub steps: Option<usize>,
    /// Sentences per step (default 8, at least 2).
    pub batch_size: Option<usize>,
    /// Learning rate (default 1e-5).
    pub lr: Option<f64>,
    /// Seed (default 42).
    pub seed: Option<u64>,
}

impl FineTuneOptions {
    /// The library's options, defaults filled in.
    pub fn resolve(&self) -> iftcl::train::TuneOptions {
        let d = iftcl::train::TuneOptions::default();
        iftcl::train::TuneOptions {
            steps: self.steps.unwrap_or(d.steps),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            lr: self.lr.unwrap_or(d.lr),
            seed: self.seed.unwrap_or(d.seed),
            ..d
        }
    }
}

/// What `fineTune` returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FineTuneResult {
    /// Each step's loss.
    pub losses: Vec<f64>,
    /// Time the call took (steps, and the index embedded again).
    pub seconds: f64,
    /// The index, embedded again with the tuned model.
    pub index: Option<IndexChange>,
}

/// What `saveModel` returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedModel {
    /// The folder written, as an absolute path.
    pub path: String,
    /// Tuning steps in the saved weights since the model was loaded.
    pub tuned_steps: usize,
}
