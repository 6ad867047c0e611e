//! `bench load`: where the time of loading a model folder goes, phase by phase, up to its
//! first embedding.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use serde::Serialize;

use crate::encoder::PreparedEncoder;
use crate::error::Result;
use crate::model::ModelFiles;

/// The phases of one load, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LoadPhases {
    /// Reading the folder's files from disk (`ModelFiles::read_dir`).
    pub read_ms: f64,
    /// config.json, the pooling files and tokenizer.json parsed ([`PreparedEncoder::new`]).
    pub prepare_ms: f64,
    /// model.safetensors into the device's tensors ([`PreparedEncoder::load`]).
    pub weights_ms: f64,
    /// The weights' fingerprint, which the Tauri plugin's `loadModel` computes to match its
    /// semantic index to the model ([`crate::SentenceEncoder::fingerprint`]).
    pub fingerprint_ms: f64,
    /// [`crate::SentenceEncoder::warm_up`]: the tokenizer's special tokens through the model.
    pub warm_up_ms: f64,
    /// The first embedding of one sentence after that.
    pub first_embedding_ms: f64,
}

impl LoadPhases {
    /// What the Tauri plugin's `loadModel` does: read, prepare, weights, fingerprint, warm-up.
    pub fn load_model_ms(&self) -> f64 {
        self.read_ms + self.prepare_ms + self.weights_ms + self.fingerprint_ms + self.warm_up_ms
    }
}

/// Result of `bench load` for one model folder.
#[derive(Debug, Clone, Serialize)]
pub struct LoadBench {
    /// The folder.
    pub model: String,
    /// Device description.
    pub device: String,
    /// Size of its model.safetensors.
    pub weights_bytes: u64,
    /// Each run's phases; the first run of a process is the only one that pays its one-time
    /// costs (thread pools, allocator growth).
    pub runs: Vec<LoadPhases>,
}

/// Loads `dir` on `device` `runs` times, timing each phase.
pub fn bench_load(dir: &Path, device: &Device, device_name: &str, runs: usize) -> Result<LoadBench> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let mut out = LoadBench { model: dir.display().to_string(), device: device_name.to_string(), weights_bytes: 0, runs: Vec::new() };
    for _ in 0..runs.max(1) {
        let mut p = LoadPhases::default();
        let t = Instant::now();
        let mut files = ModelFiles::read_dir(dir)?;
        p.read_ms = ms(t);
        out.weights_bytes = files.weights.len() as u64;
        let weights = std::mem::take(&mut files.weights);
        let t = Instant::now();
        let prepared = PreparedEncoder::new(files)?;
        p.prepare_ms = ms(t);
        let t = Instant::now();
        let encoder = prepared.load(&weights, device)?;
        drop(weights);
        p.weights_ms = ms(t);
        let t = Instant::now();
        std::hint::black_box(encoder.fingerprint()?);
        p.fingerprint_ms = ms(t);
        let t = Instant::now();
        encoder.warm_up()?;
        p.warm_up_ms = ms(t);
        let t = Instant::now();
        std::hint::black_box(encoder.embed(&["A man is playing a guitar."])?);
        p.first_embedding_ms = ms(t);
        out.runs.push(p);
    }
    Ok(out)
}
