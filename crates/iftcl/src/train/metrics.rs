//! Watching a run: metrics as JSONL (`metrics.jsonl`) and loss / STS-B dev curves as SVG
//! (`curves.svg`) next to the checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Serialize;

use super::trainer::{EvalMetrics, StepMetrics};
use crate::error::{Error, Result};

/// The metrics file of a run, and the series the curves are drawn from.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    curves: PathBuf,
    losses: Vec<(u64, f64)>,
    evals: Vec<(u64, f64)>,
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
                    Some("step") => log.losses.push((step, v["loss"].as_f64().unwrap_or(f64::NAN))),
                    Some("eval") => log.evals.push((step, v["stsb_dev"].as_f64().unwrap_or(f64::NAN))),
                    _ => {}
                }
                kept.push_str(line);
                kept.push('\n');
            }
        }
        std::fs::write(&path, kept).map_err(|e| Error::io("write", &path, e))?;
        Ok(log)
    }

    fn append<T: Serialize>(&self, kind: &str, data: &T) -> Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        let line = serde_json::to_string(&Line { kind, data }).expect("metrics serialise");
        writeln!(f, "{line}").map_err(|e| Error::io("write", &self.path, e))
    }

    /// Records a step.
    pub fn step(&mut self, m: &StepMetrics) -> Result<()> {
        self.losses.push((m.step, m.loss));
        self.append("step", m)
    }

    /// Records an evaluation.
    pub fn eval(&mut self, e: &EvalMetrics) -> Result<()> {
        self.evals.push((e.step, e.stsb_dev));
        self.append("eval", e)
    }

    /// Redraws `curves.svg`: training loss (and its 20-step moving average), STS-B dev.
    pub fn write_curves(&self) -> Result<()> {
        draw(&self.curves, &self.losses, &self.evals).map_err(|e| Error::Execution(format!("drawing {}: {e}", self.curves.display())))
    }
}

fn range(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = v.clone().filter(|x| x.is_finite()).fold(f64::INFINITY, f64::min);
    let hi = v.filter(|x| x.is_finite()).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

fn draw(path: &Path, losses: &[(u64, f64)], evals: &[(u64, f64)]) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(350);
    let max_step = losses.iter().chain(evals).map(|(s, _)| *s).max().unwrap_or(1).max(1);

    let (lo, hi) = range(losses.iter().map(|(_, l)| *l));
    let mut chart = ChartBuilder::on(&top)
        .caption("training loss", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0u64..max_step, lo..hi)?;
    chart.configure_mesh().x_desc("step").y_desc("loss").draw()?;
    chart.draw_series(LineSeries::new(losses.iter().copied(), RGBColor(160, 190, 230)))?;
    let smooth: Vec<(u64, f64)> = losses
        .iter()
        .enumerate()
        .map(|(i, (s, _))| {
            let w = &losses[i.saturating_sub(19)..=i];
            (*s, w.iter().map(|(_, l)| l).sum::<f64>() / w.len() as f64)
        })
        .collect();
    chart.draw_series(LineSeries::new(smooth, BLUE.stroke_width(2)))?;

    let (lo, hi) = range(evals.iter().map(|(_, e)| *e));
    let mut chart = ChartBuilder::on(&bottom)
        .caption("STS-B dev Spearman x 100", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0u64..max_step, lo..hi)?;
    chart.configure_mesh().x_desc("step").y_desc("Spearman").draw()?;
    chart.draw_series(LineSeries::new(evals.iter().copied(), RED.stroke_width(2)))?;
    chart.draw_series(evals.iter().map(|&(s, e)| Circle::new((s, e), 4, RED.filled())))?;
    root.present()?;
    Ok(())
}
