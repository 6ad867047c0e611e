//! Watching a run: what each step and evaluation reports, the observer that receives it, and the
//! log: metrics as JSONL (`metrics.jsonl`) and loss / STS-B dev curves as SVG
//! (`curves.svg`) next to the checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::curves::{self, LossPoint};
use crate::error::{Error, Result};

/// One logged training step.
#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    /// Steps completed (1-based).
    pub step: u64,
    /// Total steps.
    pub total_steps: u64,
    /// L.
    pub loss: f64,
    /// L_nce.
    pub nce: f64,
    /// L_twins (twins loss only).
    pub twins: Option<f64>,
    /// Learning rate used by this step.
    pub lr: f64,
    /// Queue entries used as negatives.
    pub queue_used: usize,
    /// Sentences per second of this step (three views per sentence for twins).
    pub sentences_per_s: f64,
    /// Seconds since the run (or the resume) started.
    pub elapsed_s: f64,
}

/// One STS-B dev evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics {
    /// Steps completed.
    pub step: u64,
    /// STS-B dev Spearman × 100.
    pub stsb_dev: f64,
    /// Whether this is the best so far (saved to `best/`); never for step 0, the start model's
    /// score, which is logged before training as the baseline.
    pub best: bool,
}

/// Receives progress (the CLI draws a progress bar with it).
pub trait TrainObserver {
    /// The run starts at `start_step` of `total_steps`.
    fn on_start(&mut self, _start_step: u64, _total_steps: u64, _device: &str) {}
    /// A step finished.
    fn on_step(&mut self, _m: &StepMetrics) {}
    /// An evaluation finished.
    fn on_eval(&mut self, _e: &EvalMetrics) {}
    /// A checkpoint was written.
    fn on_checkpoint(&mut self, _dir: &Path) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;
impl TrainObserver for Quiet {}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: u64,
    /// Last loss.
    pub last_loss: f64,
    /// Best STS-B dev and its step.
    pub best_dev: Option<(f64, u64)>,
    /// Folder of the last checkpoint.
    pub last_dir: PathBuf,
    /// Folder of the best model (the last one when there was no evaluation).
    pub best_dir: PathBuf,
    /// Every step's metrics of this invocation.
    pub history: Vec<StepMetrics>,
}

/// The metrics file of a run, and the series the curves are drawn from.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    curves: PathBuf,
    losses: Vec<LossPoint>,
    evals: Vec<(u64, f64)>,
}

/// The `step` field of a metrics record, for messages.
fn step_of<T: Serialize>(data: &T) -> String {
    serde_json::to_value(data).ok().and_then(|v| v["step"].as_u64()).map_or_else(|| "?".into(), |s| s.to_string())
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    kind: &'a str,
    #[serde(flatten)]
    data: &'a T,
}

impl MetricsLog {
    /// Opens `out/metrics.jsonl`, keeping the lines of steps up to `resume_step` (a resumed run
    /// rewrites what came after its checkpoint).
    pub fn open(out: &Path, resume_step: u64) -> Result<Self> {
        let path = out.join("metrics.jsonl");
        let mut log = MetricsLog { path: path.clone(), curves: out.join("curves.svg"), losses: Vec::new(), evals: Vec::new() };
        let mut kept = String::new();
        if resume_step > 0 && path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            for line in text.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
                let step = v["step"].as_u64().unwrap_or(u64::MAX);
                if step > resume_step {
                    continue;
                }
                match v["kind"].as_str() {
                    Some("step") => log.losses.push(LossPoint {
                        step,
                        total: v["loss"].as_f64().unwrap_or(f64::NAN),
                        nce: v["nce"].as_f64().unwrap_or(f64::NAN),
                        twins: v["twins"].as_f64(),
                    }),
                    Some("eval") => log.evals.push((step, v["stsb_dev"].as_f64().unwrap_or(f64::NAN))),
                    _ => {}
                }
                kept.push_str(line);
                kept.push('\n');
            }
        }
        crate::atomic::write_file(&path, kept.as_bytes())?;
        Ok(log)
    }

    fn append<T: Serialize>(&self, kind: &str, data: &T) -> Result<()> {
        // A metrics file removed while the run goes on (by a user tidying up) is started again:
        // the run is not ended for it.
        if !self.path.exists() {
            tracing::warn!("{} was removed during the run: a new one starts with the {kind} line of step {}", self.path.display(), step_of(data));
        }
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        let line = serde_json::to_string(&Line { kind, data }).expect("metrics serialise");
        writeln!(f, "{line}").map_err(|e| Error::io("write", &self.path, e))
    }

    /// Records a step.
    pub fn step(&mut self, m: &StepMetrics) -> Result<()> {
        self.losses.push(LossPoint { step: m.step, total: m.loss, nce: m.nce, twins: m.twins });
        self.append("step", m)
    }

    /// Records an evaluation.
    pub fn eval(&mut self, e: &EvalMetrics) -> Result<()> {
        self.evals.push((e.step, e.stsb_dev));
        self.append("eval", e)
    }

    /// Redraws `curves.svg`: the training loss and its terms, STS-B dev from step 0.
    pub fn write_curves(&self) -> Result<()> {
        curves::draw(&self.curves, &self.losses, &self.evals).map_err(|e| Error::Execution(format!("drawing {}: {e}", self.curves.display())))
    }
}
