//! `iftcl train` and `iftcl bench train`: flags (and a TOML file) into a `TrainConfig`, a
//! progress bar over the library's loop.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use iftcl::train::{EvalMetrics, StepMetrics, TrainConfig, TrainObserver};
use indicatif::{ProgressBar, ProgressStyle};

/// Train a sentence encoder with IFTCL (or SimCSE with `--loss infonce`).
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// TOML file with any of the fields below (flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start model folder [default: models/all-MiniLM-L6-v2].
    #[arg(long, env = "IFTCL_MODEL")]
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
    /// Continue from a checkpoint folder (OUT/last). The checkpoint's own config is used (only
    /// --out and --device may change), so the continuation is exact.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bar (log lines instead).
    #[arg(long)]
    quiet: bool,
}

macro_rules! set {
    ($cfg:ident, $args:ident, $($field:ident),*) => {
        $( if let Some(v) = $args.$field.clone() { $cfg.$field = v; } )*
    };
}

impl TrainArgs {
    /// The resolved config: defaults, then the TOML file, then the flags.
    pub fn resolve(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => TrainConfig::from_toml_file(p)?,
            None => TrainConfig::default(),
        };
        set!(c, self, model, corpus, out, device, twins_weight, margin_scale, temperature, queue_max_age, batch_size,
             max_len, lr, weight_decay, warmup_ratio, epochs, seed);
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
        } else if c.eval_data.is_none() {
            c.eval_data = iftcl::eval::default_sts_dir();
        }
        Ok(c)
    }
}

struct Bar {
    bar: Option<ProgressBar>,
}

impl TrainObserver for Bar {
    fn on_start(&mut self, start: u64, total: u64, device: &str) {
        tracing::info!("training on {device}: steps {start}..{total}");
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(start);
            bar.reset_eta();
        }
    }
    fn on_step(&mut self, m: &StepMetrics) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(m.step);
                bar.set_message(format!("loss {:.4}  lr {:.2e}  {:.1} sent/s", m.loss, m.lr, m.sentences_per_s));
            }
            None => tracing::info!(
                "step {}/{}  loss {:.4}  nce {:.4}  twins {}  lr {:.2e}  {:.1} sent/s",
                m.step, m.total_steps, m.loss, m.nce, m.twins.map_or("-".into(), |t| format!("{t:.5}")), m.lr, m.sentences_per_s
            ),
        }
    }
    fn on_eval(&mut self, e: &EvalMetrics) {
        let line = format!("step {}: STS-B dev {:.2}{}", e.step, e.stsb_dev, if e.best { " (best)" } else { "" });
        match &self.bar {
            Some(bar) => bar.println(line),
            None => tracing::info!("{line}"),
        }
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let config = args.resolve()?;
    let bar = (!args.quiet).then(|| {
        let b = ProgressBar::new(1);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}")
                .expect("static template"),
        );
        b.enable_steady_tick(Duration::from_millis(500));
        b
    });
    let mut observer = Bar { bar };
    let summary = iftcl::train::train(config.clone(), args.resume.as_deref(), &mut observer)
        .with_context(|| format!("training into {}", config.out.display()))?;
    if let Some(b) = &observer.bar {
        b.finish();
    }
    println!("steps: {}  last loss: {:.4}", summary.steps, summary.last_loss);
    if let Some((dev, step)) = summary.best_dev {
        println!("best STS-B dev: {dev:.2} at step {step}");
    }
    println!("best model:  {}", summary.best_dir.display());
    println!("last checkpoint: {}", summary.last_dir.display());
    println!("metrics: {}  curves: {}", config.out.join("metrics.jsonl").display(), config.out.join("curves.svg").display());
    Ok(())
}

/// Training throughput for batch 64, length 32, per device and loss.
#[derive(clap::Args, Debug)]
pub struct BenchTrainArgs {
    /// Model folder.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2", env = "IFTCL_MODEL")]
    model: PathBuf,
    /// Devices, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    device: Vec<String>,
    /// Losses, comma-separated (twins, infonce).
    #[arg(long, value_delimiter = ',', default_value = "twins,infonce")]
    loss: Vec<String>,
    /// Sentences per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Token limit.
    #[arg(long, default_value_t = 32)]
    max_len: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Corpus to draw sentences from [default: $IFTCL_DATA_DIR/corpus/senteval-sentences.txt].
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// auto | on | off: the fused loss kernels (auto: on for wgpu devices).
    #[arg(long, default_value = "auto")]
    fused_loss: String,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// PyTorch reference figures on 2 CPU cores (sentences/s): IFTCL three views, SimCSE two.
const REFERENCE_CPU: [(&str, f64); 2] = [("twins", 29.0), ("infonce", 42.0)];

pub fn bench(args: BenchTrainArgs) -> Result<()> {
    let corpus_path = match &args.corpus {
        Some(p) => p.clone(),
        None => std::env::var("IFTCL_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("../shared/data"))
            .join("corpus/senteval-sentences.txt"),
    };
    let corpus = iftcl::train::data::Corpus::open(&corpus_path)?;
    let take: Vec<usize> = (0..corpus.len().min(args.batch_size * (args.warmup + args.steps))).collect();
    let sentences = corpus.read(&take)?;
    let mut out = Vec::new();
    for d in &args.device {
        let selected = iftcl::device::select(d.parse()?)?;
        for loss in &args.loss {
            let config = TrainConfig {
                loss: loss.parse().map_err(anyhow::Error::msg)?,
                batch_size: args.batch_size,
                max_len: args.max_len,
                corpus: corpus_path.clone(),
                fused_loss: args.fused_loss.parse().map_err(anyhow::Error::msg)?,
                ..TrainConfig::default()
            };
            let times = iftcl::train::trainer::bench_train(&args.model, &selected.device, &sentences, &config, args.warmup, args.steps)?;
            let med = iftcl::bench::median(&times);
            let sps = args.batch_size as f64 / med;
            let reference = REFERENCE_CPU.iter().find(|(l, _)| l == loss).map(|(_, r)| *r).unwrap_or(f64::NAN);
            println!(
                "{:<45} {:<8} {:>7.1} sentences/s  (median step {:.2} s of {}, batch {}, len {})  ratio to PyTorch CPU {:.0}/s: {:.2}x",
                selected.description, loss, sps, med, times.len(), args.batch_size, args.max_len, reference, sps / reference
            );
            out.push(serde_json::json!({"device": selected.description, "loss": loss, "fused_loss": args.fused_loss, "sentences_per_s": sps,
                "median_step_s": med, "step_times_s": times, "batch_size": args.batch_size, "max_len": args.max_len,
                "reference_cpu_sentences_per_s": reference}));
        }
    }
    if let Some(p) = args.json {
        std::fs::write(&p, serde_json::to_string_pretty(&out)?).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}
