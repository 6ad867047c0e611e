//! Arguments several commands share: the model and device, the STS data folder.

use std::path::PathBuf;

use anyhow::{Context, Result};
use iftcl::{Compute, SentenceEncoder};
use iftcl::device::{self, DeviceSpec};
use iftcl::eval;
use iftcl::hub::HubOptions;

/// Options shared by the commands that load a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model folder (Hugging Face layout, optionally with the sentence-transformers files), or a
    /// Hugging Face Hub id (org/name) when no such folder exists: fetched into the Hugging Face
    /// cache ($HF_HOME/hub; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE=1 are honoured).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2", env = "IFTCL_MODEL")]
    pub model: PathBuf,
    /// Branch, tag or commit of a Hub model (default: main).
    #[arg(long)]
    pub revision: Option<String>,
    /// auto | cpu | gpu | gpu:N (see `iftcl devices`).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// L2-normalise every vector (sentence-transformers' `normalize_embeddings=True`). Without
    /// it the model folder decides, as sentence-transformers does: unit vectors only when its
    /// modules.json lists a Normalize module. Cosine similarity (`similarity`, `eval`) is the
    /// same either way; dot products and vector lengths are not.
    #[arg(long)]
    pub normalize: bool,
    /// Put the model's prompt NAME before every input (a prompt of its
    /// config_sentence_transformers.json: e5's `query`, say), as sentence-transformers'
    /// `prompt_name` does. Without it the folder's `default_prompt_name` applies, if it has
    /// one; `--prompt-name none` uses no prompt at all.
    #[arg(long, value_name = "NAME")]
    pub prompt_name: Option<String>,
    /// What the dense layers compute in: f32, or int8 (CPU only: weights per output channel,
    /// activations per row; docs/models.md, "int8 compute"). Default: int8 for an int8 model
    /// file (`iftcl convert --dtype int8`) on the CPU, f32 otherwise.
    #[arg(long, value_name = "f32|int8")]
    pub dtype: Option<Compute>,
}

impl ModelArgs {
    /// The model folder, when `--model` names one here (not a Hub id): what `--output` and
    /// `--json` may not write over.
    pub fn local_folder(&self) -> Option<&std::path::Path> {
        self.model.is_dir().then_some(self.model.as_path())
    }

    pub fn load(&self) -> Result<(SentenceEncoder, String)> {
        let spec: DeviceSpec = self.device.parse()?;
        let selected = device::select(spec)?;
        tracing::info!("device: {}", selected.description);
        let hub = HubOptions { revision: self.revision.clone(), ..HubOptions::default() };
        let dir = iftcl::hub::resolve(&self.model, &hub)?;
        let mut encoder = SentenceEncoder::load(&dir, &selected.device)?.with_batch_size(self.batch_size);
        encoder.head.normalize |= self.normalize;
        if let Some(name) = &self.prompt_name {
            encoder = encoder.with_prompt_name((name != "none").then_some(name.as_str()))?;
        }
        if let Some(prompt) = encoder.prompt() {
            tracing::info!("prompt before every input: {prompt:?}");
        }
        if let Some(compute) = self.dtype {
            encoder = encoder.with_compute(compute)?;
        }
        tracing::info!("computing in {}", encoder.compute());
        Ok((encoder, selected.description))
    }
}

/// The STS folder: `--data`, else `$IFTCL_DATA_DIR/sts` (or `../shared/data/sts`).
pub fn sts_dir(data: &Option<PathBuf>) -> Result<PathBuf> {
    match data {
        Some(d) => Ok(d.clone()),
        None => eval::default_sts_dir().context(
            "no STS data: pass --data DIR (SentEval layout, as SentEval's get_transfer_data.bash writes it) or set IFTCL_DATA_DIR",
        ),
    }
}
