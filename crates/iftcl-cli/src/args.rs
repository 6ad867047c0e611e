//! Arguments several commands share: the model and device, the STS data folder.

use std::path::PathBuf;

use anyhow::{Context, Result};
use iftcl::SentenceEncoder;
use iftcl::device::{self, DeviceSpec};
use iftcl::eval;

/// Options shared by the commands that load a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model folder (Hugging Face layout, optionally with the sentence-transformers files).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2", env = "IFTCL_MODEL")]
    pub model: PathBuf,
    /// auto | cpu | gpu | gpu:N (see `iftcl devices`).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
}

impl ModelArgs {
    pub fn load(&self) -> Result<(SentenceEncoder, String)> {
        let spec: DeviceSpec = self.device.parse()?;
        let selected = device::select(spec)?;
        tracing::info!("device: {}", selected.description);
        let encoder = SentenceEncoder::load(&self.model, &selected.device)?.with_batch_size(self.batch_size);
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
