//! `iftcl train` and `iftcl bench train`: flags (and a TOML file) into a `TrainConfig`, a
//! progress bar over the library's loop.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use iftcl::train::{EvalMetrics, StepMetrics, TrainConfig, TrainObserver};
use indicatif::{ProgressBar, ProgressStyle};

use crate::outln;

/// Train a sentence encoder with IFTCL (or SimCSE with `--loss infonce`).
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// TOML file with any of the fields below (flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start model: a folder, or a Hugging Face Hub id (org/name, fetched into the Hugging Face
    /// cache) [default: $IFTCL_MODEL, else models/all-MiniLM-L6-v2].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training corpus, one sentence per line.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Output folder (best/, last/, metrics.jsonl, curves.svg) [default: runs/iftcl].
    #[arg(long)]
    out: Option<PathBuf>,
    /// auto | cpu | gpu | gpu:N [default: auto].
    #[arg(long)]
    device: Option<String>,
    /// infonce (SimCSE) | twins (IFTCL) [default: twins].
    #[arg(long)]
    loss: Option<String>,
    /// pull | two-sided [default: pull].
    #[arg(long)]
    twins_form: Option<String>,
    /// auto | on | off: the loss as fused WGSL kernels (auto: on for wgpu devices) [default: auto].
    #[arg(long)]
    fused_loss: Option<String>,
    /// λ, weight of the Twins Loss [default: 0.1].
    #[arg(long)]
    twins_weight: Option<f64>,
    /// β, margin scale: m = β r [default: 0.1].
    #[arg(long)]
    margin_scale: Option<f64>,
    /// τ [default: 0.05].
    #[arg(long)]
    temperature: Option<f64>,
    /// Queue capacity K [default: 256 for twins, 0 for infonce].
    #[arg(long)]
    queue_size: Option<usize>,
    /// Ignore queue entries older than this many steps [default: 4].
    #[arg(long)]
    queue_max_age: Option<u64>,
    /// Sentences per step [default: 64].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Truncate training inputs to this many tokens [default: 32].
    #[arg(long)]
    max_len: Option<usize>,
    /// Peak learning rate [default: 1e-5].
    #[arg(long)]
    lr: Option<f64>,
    /// AdamW weight decay [default: 0].
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Warm-up fraction of the steps [default: 0].
    #[arg(long)]
    warmup_ratio: Option<f64>,
    /// Passes over the corpus [default: 1].
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many steps.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Evaluate STS-B dev and checkpoint every N steps [default: 125].
    #[arg(long)]
    eval_every: Option<u64>,
    /// STS data folder for the dev evaluation [default: $IFTCL_DATA_DIR/sts or ../shared/data/sts].
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// No STS-B dev evaluation (checkpoints are still written every --eval-every steps).
    #[arg(long, conflicts_with = "eval_data")]
    no_eval: bool,
    /// Seed [default: 42].
    #[arg(long)]
    seed: Option<u64>,
    /// Continue from a checkpoint folder (OUT/last) with the checkpoint's settings, so that the
    /// continuation is exact. Only --out, --device, --fused-loss, --max-steps, --eval-every and
    /// --eval-data/--no-eval may change; another flag that differs is refused, by name.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Replace the best/ and last/ of another run found in --out (refused otherwise); they
    /// stay until this run writes its own.
    #[arg(long)]
    overwrite: bool,
    /// With --resume: continue although the corpus's bytes differ from those the checkpoint
    /// was trained on (refused otherwise: the continuation would not be exact).
    #[arg(long, requires = "resume")]
    allow_corpus_change: bool,
    /// Print only the summary at the end: no progress, no evaluation lines.
    #[arg(long)]
    pub quiet: bool,
    /// Where stderr is not a terminal (a pipe or a file), one progress line every N steps (the
    /// last step always gets one); a terminal gets a progress bar with rate and ETA instead.
    #[arg(long, default_value_t = 10)]
    progress_every: u64,
}

macro_rules! set {
    ($cfg:ident, $args:ident, $($field:ident),*) => {
        $( if let Some(v) = $args.$field.clone() { $cfg.$field = v; } )*
    };
}

impl TrainArgs {
    /// The resolved config: the defaults (with $IFTCL_MODEL as the start model) or, with
    /// --resume, the checkpoint's config; then the TOML file; then the flags.
    pub fn resolve(&self) -> Result<TrainConfig> {
        let mut c = match &self.resume {
            Some(dir) => iftcl::train::checkpoint::read_config(dir)?,
            None => {
                // $IFTCL_MODEL names the start model of a new run unless the TOML file or
                // --model names one; a resumed run has its own.
                let mut c = TrainConfig::default();
                if let Some(m) = std::env::var_os("IFTCL_MODEL") {
                    c.model = m.into();
                }
                c
            }
        };
        if let Some(p) = &self.config {
            c = c.with_toml_file(p)?;
        }
        set!(c, self, model, corpus, out, device, twins_weight, margin_scale, temperature, queue_max_age, batch_size,
             max_len, lr, weight_decay, warmup_ratio, epochs, seed);
        // A Hub id (org/name) is fetched into the Hugging Face cache; the run records the folder.
        if self.resume.is_none() {
            c.model = iftcl::hub::resolve(&c.model, &iftcl::hub::HubOptions::default())?;
        }
        c.overwrite |= self.overwrite;
        c.allow_corpus_change |= self.allow_corpus_change;
        if let Some(l) = &self.loss {
            c.loss = l.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(f) = &self.twins_form {
            c.twins_form = f.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(f) = &self.fused_loss {
            c.fused_loss = f.parse().map_err(anyhow::Error::msg)?;
        }
        if self.queue_size.is_some() {
            c.queue_size = self.queue_size;
        }
        if self.max_steps.is_some() {
            c.max_steps = self.max_steps;
        }
        if let Some(e) = self.eval_every {
            c.eval_every = e;
        }
        if self.eval_data.is_some() {
            c.eval_data = self.eval_data.clone();
        }
        if self.no_eval {
            c.eval_data = None;
        } else if c.eval_data.is_none() && self.resume.is_none() {
            c.eval_data = iftcl::eval::default_sts_dir();
        }
        Ok(c)
    }
}

/// How progress is shown: a bar on a terminal, a line every N steps on a pipe or file, nothing
/// with `--quiet`.
enum Progress {
    Bar(ProgressBar),
    Lines { every: u64 },
    Quiet,
}

impl Progress {
    fn new(quiet: bool, every: u64) -> Self {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Lines { every: every.max(1) };
        }
        let b = ProgressBar::new(1);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}").expect("static template"),
        );
        b.enable_steady_tick(Duration::from_millis(500));
        Progress::Bar(b)
    }
}

impl TrainObserver for Progress {
    fn on_start(&mut self, start: u64, total: u64, device: &str) {
        match self {
            Progress::Bar(bar) => {
                bar.println(format!("training on {device}: steps {start}..{total}"));
                bar.set_length(total);
                bar.set_position(start);
                bar.reset_eta();
            }
            Progress::Lines { .. } => note(format_args!("training on {device}: steps {start}..{total}")),
            Progress::Quiet => {}
        }
    }
    fn on_step(&mut self, m: &StepMetrics) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(m.step);
                bar.set_message(format!("loss {:.4}  lr {:.2e}  {:.1} sent/s", m.loss, m.lr, m.sentences_per_s));
            }
            Progress::Lines { every } if m.step % *every == 0 || m.step == m.total_steps => note(format_args!(
                "step {}/{}  loss {:.4}  nce {:.4}  twins {}  lr {:.2e}  {:.1} sent/s  {:.0} s",
                m.step,
                m.total_steps,
                m.loss,
                m.nce,
                m.twins.map_or("-".into(), |t| format!("{t:.5}")),
                m.lr,
                m.sentences_per_s,
                m.elapsed_s
            )),
            _ => {}
        }
    }
    fn on_eval(&mut self, e: &EvalMetrics) {
        let what = if e.step == 0 { " (start model)" } else if e.best { " (best)" } else { "" };
        let line = format!("step {}: STS-B dev {:.2}{what}", e.step, e.stsb_dev);
        match self {
            Progress::Bar(bar) => bar.println(line),
            Progress::Lines { .. } => note(format_args!("{line}")),
            Progress::Quiet => {}
        }
    }
}

/// A progress line on stderr. Progress is not the command's result: a stderr that cannot be
/// written loses the line and the run goes on.
fn note(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs the training the arguments describe and prints the summary.
pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.resolve()?;
    let mut progress = Progress::new(args.quiet, args.progress_every);
    let summary = iftcl::train::train(config.clone(), args.resume.as_deref(), &mut progress)
        .with_context(|| format!("training into {}", config.out.display()))?;
    if let Progress::Bar(b) = &progress {
        b.finish();
    }
    let mut out = crate::stdout::stdout();
    outln!(out, "steps: {}  last loss: {:.4}", summary.steps, summary.last_loss)?;
    if let Some((dev, step)) = summary.best_dev {
        outln!(out, "best STS-B dev: {dev:.2} at step {step}")?;
    }
    let what = if summary.best_dev.is_none() { "  (the last model: no evaluation)" } else { "" };
    outln!(out, "best model:  {}{what}", summary.best_dir.display())?;
    outln!(out, "last checkpoint: {}", summary.last_dir.display())?;
    outln!(out, "metrics: {}  curves: {}", config.out.join("metrics.jsonl").display(), config.out.join("curves.svg").display())?;
    Ok(())
}
