//! Training hyper-parameters: one struct, read from a TOML file, overridden by flags, validated
//! once, and saved with every checkpoint.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::augment::AugmentConfig;
use super::fused::FusedLoss;
use super::objective::{LossKind, Objective};
use super::twins_form::TwinsForm;
use crate::error::{Error, Result};

/// Queue capacity used by `--loss twins` when `queue_size` is not given.
pub const DEFAULT_QUEUE_SIZE: usize = 256;

/// Every field of a training run. A TOML file holds the same keys (kebab-case or snake_case).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Start model folder.
    pub model: PathBuf,
    /// Training corpus: one sentence per line.
    pub corpus: PathBuf,
    /// Output folder: `best/`, `last/`, metrics.jsonl, curves.svg.
    pub out: PathBuf,
    /// auto | cpu | gpu | gpu:N.
    pub device: String,
    /// infonce (SimCSE) or twins (IFTCL).
    pub loss: LossKind,
    /// pull or two-sided.
    pub twins_form: TwinsForm,
    /// λ. Default 0.1: at the full 820-step budget it beat SimCSE with three seeds, where λ = 1
    /// fell behind it (README, Ablation).
    pub twins_weight: f64,
    /// β: margin m_i = β r_i.
    pub margin_scale: f64,
    /// τ.
    pub temperature: f64,
    /// Queue capacity K; default 256 for `twins`, 0 for `infonce`.
    pub queue_size: Option<usize>,
    /// Queue entries older than this many steps are ignored.
    pub queue_max_age: u64,
    /// Sentences per step.
    pub batch_size: usize,
    /// Training inputs are truncated to this many tokens.
    pub max_len: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Fraction of the steps spent warming the learning rate up linearly (then linear decay to 0).
    pub warmup_ratio: f64,
    /// Passes over the corpus.
    pub epochs: usize,
    /// Stop after this many steps (the schedule spans them).
    pub max_steps: Option<u64>,
    /// Evaluate on STS-B dev and checkpoint every this many steps (0: only at the end).
    pub eval_every: u64,
    /// STS data folder for the dev evaluation (SentEval layout); none: no evaluation.
    pub eval_data: Option<PathBuf>,
    /// Seed of the data order, augmentation and dropout.
    pub seed: u64,
    /// Smallest fraction of words the augmenter edits.
    pub aug_min_rate: f64,
    /// Largest fraction of words the augmenter edits.
    pub aug_max_rate: f64,
    /// Log a metrics line every this many steps.
    pub log_every: u64,
    /// The loss as fused WGSL kernels: auto (on for wgpu), on, off.
    pub fused_loss: FusedLoss,
    /// Replace the checkpoints of another run found in the output folder (otherwise such a
    /// folder is refused). Not saved with a checkpoint: it concerns one invocation.
    #[serde(skip_serializing)]
    pub overwrite: bool,
    /// Resume on a corpus whose bytes differ from the checkpoint's (otherwise refused: the
    /// continuation would not be exact). Not saved: it concerns one invocation.
    #[serde(skip_serializing)]
    pub allow_corpus_change: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: PathBuf::from("models/all-MiniLM-L6-v2"),
            corpus: PathBuf::new(),
            out: PathBuf::from("runs/iftcl"),
            device: "auto".into(),
            loss: LossKind::Twins,
            twins_form: TwinsForm::Pull,
            twins_weight: 0.1,
            margin_scale: 0.1,
            temperature: 0.05,
            queue_size: None,
            queue_max_age: 4,
            batch_size: 64,
            max_len: 32,
            lr: 1e-5,
            weight_decay: 0.0,
            warmup_ratio: 0.0,
            epochs: 1,
            max_steps: None,
            eval_every: 125,
            eval_data: None,
            seed: 42,
            aug_min_rate: 0.1,
            aug_max_rate: 0.3,
            log_every: 1,
            fused_loss: FusedLoss::Auto,
            overwrite: false,
            allow_corpus_change: false,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file (missing keys take the defaults).
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        TrainConfig::default().with_toml_file(path)
    }

    /// This config with the keys of a TOML file on top (the keys it lacks keep their values).
    pub fn with_toml_file(&self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let parse_error = |e: toml::de::Error| Error::Parse { path: path.to_path_buf(), format: "TOML", message: e.to_string() };
        let given: toml::Table = toml::from_str(&text).map_err(parse_error)?;
        let mut table = toml::Table::try_from(self).map_err(|e| Error::InvalidArgument(format!("a config that does not serialise: {e}")))?;
        // Accept the flags' kebab-case spelling as well as snake_case.
        table.extend(given.into_iter().map(|(k, v)| (k.replace('-', "_"), v)));
        table.try_into().map_err(parse_error)
    }

    /// The config as TOML text (what each checkpoint stores).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a TrainConfig always serialises")
    }

    /// Queue capacity after defaults.
    pub fn queue_capacity(&self) -> usize {
        self.queue_size.unwrap_or(match self.loss {
            LossKind::Twins => DEFAULT_QUEUE_SIZE,
            LossKind::Infonce => 0,
        })
    }

    /// The loss hyper-parameters.
    pub fn objective(&self) -> Objective {
        Objective {
            kind: self.loss,
            temperature: self.temperature,
            twins_weight: self.twins_weight,
            margin_scale: self.margin_scale,
            twins_form: self.twins_form,
            fused: false,
        }
    }

    /// The loss as it runs on `device` for embeddings `width` wide: `--fused-loss` resolved
    /// (the fused kernels on wgpu devices when auto or on, the plain ops otherwise).
    pub fn objective_on(&self, device: &burn::tensor::Device, width: usize) -> Result<Objective> {
        let fused = self.fused_loss.resolve(super::fused::kernels_available(device), width)?;
        Ok(Objective { fused, ..self.objective() })
    }

    /// The memory a step of `batch` sentences takes with these settings (two encoder passes per
    /// sentence, three with fraternal twins, at most `max_len` tokens each) on a model of shape
    /// `model`; see [`super::memory`].
    pub fn step_memory(&self, model: &crate::hf_config::BertConfig, batch: usize) -> super::memory::StepMemory {
        let views = if self.objective().needs_fraternal() { 3 } else { 2 };
        super::memory::step_memory(model, batch, views, self.max_len)
    }

    /// Augmentation strength.
    pub fn augment(&self) -> AugmentConfig {
        AugmentConfig { min_rate: self.aug_min_rate, max_rate: self.aug_max_rate }
    }

    /// Rejects unusable values, naming the field.
    pub fn validate(&self) -> Result<()> {
        self.validate_hyperparameters()?;
        if self.epochs == 0 && self.max_steps.is_none() {
            return Err(Error::InvalidArgument("epochs: must be at least 1".into()));
        }
        if self.max_steps == Some(0) {
            return Err(Error::InvalidArgument("max-steps: must be at least 1".into()));
        }
        if self.corpus.as_os_str().is_empty() {
            return Err(Error::InvalidArgument("corpus: a corpus file is required".into()));
        }
        Ok(())
    }

    /// Rejects unusable loss, optimizer and batch settings (what a run without files needs).
    pub fn validate_hyperparameters(&self) -> Result<()> {
        let bad = |field: &str, message: String| Err(Error::InvalidArgument(format!("{field}: {message}")));
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad("temperature", format!("{} must be a positive number", self.temperature));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", format!("{} must be a positive number", self.lr));
        }
        if !(self.twins_weight >= 0.0 && self.twins_weight.is_finite()) {
            return bad("twins-weight", format!("{} must be >= 0", self.twins_weight));
        }
        if !(self.margin_scale >= 0.0 && self.margin_scale.is_finite()) {
            return bad("margin-scale", format!("{} must be >= 0", self.margin_scale));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad("warmup-ratio", format!("{} must be in [0, 1)", self.warmup_ratio));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight-decay", format!("{} must be a finite number >= 0", self.weight_decay));
        }
        if self.batch_size < 2 {
            return bad("batch-size", format!("{} must be at least 2 (in-batch negatives)", self.batch_size));
        }
        if self.max_len < 3 {
            return bad("max-len", format!("{} leaves no room for a word between [CLS] and [SEP]", self.max_len));
        }
        self.augment().validate().map_err(|m| Error::InvalidArgument(format!("aug-min-rate/aug-max-rate: {m}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trips_and_accepts_kebab_case() {
        let c = TrainConfig { corpus: "c.txt".into(), queue_size: Some(10), ..Default::default() };
        let p = std::env::temp_dir().join(format!("iftcl-cfg-{}.toml", std::process::id()));
        std::fs::write(&p, c.to_toml()).unwrap();
        assert_eq!(TrainConfig::from_toml_file(&p).unwrap(), c);
        std::fs::write(&p, "loss = \"infonce\"\ntwins-form = \"two-sided\"\nbatch-size = 8\n").unwrap();
        let d = TrainConfig::from_toml_file(&p).unwrap();
        assert_eq!((d.loss, d.twins_form, d.batch_size), (LossKind::Infonce, TwinsForm::TwoSided, 8));
        assert_eq!(d.queue_capacity(), 0, "SimCSE has no queue unless asked");
        std::fs::write(&p, "batch_sise = 8\n").unwrap();
        let e = TrainConfig::from_toml_file(&p).unwrap_err().to_string();
        assert!(e.contains("batch_sise"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let c = TrainConfig { corpus: "c".into(), temperature: 0.0, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("temperature"));
        let c = TrainConfig { corpus: "c".into(), batch_size: 1, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("batch-size"));
        let c = TrainConfig { corpus: "c".into(), weight_decay: f64::INFINITY, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("weight-decay: inf must be a finite number"));
        TrainConfig { corpus: "c".into(), ..Default::default() }.validate().unwrap();
    }
}
