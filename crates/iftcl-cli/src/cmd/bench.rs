//! `iftcl bench`: throughput of embedding, of training steps, and of the loss kernels.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use iftcl::{SentenceEncoder, eval};
use iftcl::burn::module::Module;
use iftcl::inputs::{Input, refuse_input_as_output};
use iftcl::train::TrainConfig;

use crate::args::{ModelArgs, sts_dir};
use crate::outln;

/// Refuses a `--json` file that is one of the benchmark's inputs (the model folder, the data).
pub(crate) fn refuse_json_over_inputs(json: Option<&std::path::Path>, inputs: &[(&str, &std::path::Path)]) -> Result<()> {
    let Some(json) = json else { return Ok(()) };
    let inputs: Vec<Input> = inputs.iter().map(|(flag, p)| Input::new(format!("a file of {flag} {}", p.display()), p)).collect();
    Ok(refuse_input_as_output("--json", json, &inputs)?)
}

/// What to measure.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Sentences/s encoding the STS-B dev sentences (both columns, 3,000 sentences).
    Embed(BenchEmbedArgs),
    /// Training sentences/s (batch 64, length 32) per device and loss, from the model's weights
    /// or (--random-weights) from random weights of any config's shape.
    Train(BenchTrainArgs),
    /// The loss alone: fused WGSL kernels vs the plain burn-ops graph, forward + backward.
    Loss(BenchLossArgs),
    /// Loading model folders, phase by phase (read, tokenizer, weights into tensors, the Tauri
    /// plugin's fingerprint, warm-up), to the first embedding. Run 1 of a process is the cold one.
    Load(BenchLoadArgs),
    /// Kernel launches and host reads per training step and per embedding batch on a wgpu
    /// device, counted exactly: start-up, the first step, the steady state.
    Kernels(super::kernels::BenchKernelsArgs),
}

/// Load time per model folder, by phase.
#[derive(clap::Args, Debug)]
pub struct BenchLoadArgs {
    /// Model folders, comma-separated (an `iftcl convert` output each, say).
    #[arg(long, value_delimiter = ',', default_value = "models/all-MiniLM-L6-v2", env = "IFTCL_MODEL")]
    model: Vec<PathBuf>,
    /// auto | cpu | gpu | gpu:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Loads per folder, one after the other in this process.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Embedding throughput on the STS-B dev sentences.
#[derive(clap::Args, Debug)]
pub struct BenchEmbedArgs {
    /// Model folder.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2", env = "IFTCL_MODEL")]
    model: PathBuf,
    /// Devices to measure, comma-separated (auto, cpu, gpu, gpu:N).
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    device: Vec<String>,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Timed runs per device (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// What the dense layers compute in, comma-separated (f32, int8: each measured on every
    /// device that runs it). Default: what the model file computes in (int8 for an int8 file
    /// on the CPU).
    #[arg(long, value_delimiter = ',', value_name = "f32|int8")]
    dtype: Vec<iftcl::Compute>,
    /// STS data folder (default: $IFTCL_DATA_DIR/sts or ../shared/data/sts).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Reference throughput to compare with (PyTorch sentence-transformers on 2 CPU cores).
    #[arg(long, default_value_t = 410.0)]
    reference: f64,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
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
    /// Train an encoder of this config.json's shape from random weights instead of the model's
    /// weights (the tokenizer and pooling head still come from --model).
    #[arg(long, value_name = "CONFIG.json")]
    random_weights: Option<PathBuf>,
    /// auto | on | off: the fused loss kernels (auto: on for wgpu devices).
    #[arg(long, default_value = "auto")]
    fused_loss: String,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The loss alone, fused against plain.
#[derive(clap::Args, Debug)]
pub struct BenchLossArgs {
    /// A wgpu device (gpu, gpu:N; auto picks a hardware adapter).
    #[arg(long, default_value = "gpu")]
    device: String,
    /// Anchors per batch N.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Queue sizes K, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,4096")]
    k: Vec<usize>,
    /// Embedding widths d, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "384,768")]
    d: Vec<usize>,
    /// Untimed runs first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Print JSON (fused_ms, unfused_ms, speedup, max_rel_err_loss, max_rel_err_grad, ...) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark `what` names.
pub fn run(what: BenchCommand) -> Result<()> {
    match what {
        BenchCommand::Embed(args) => embed(args),
        BenchCommand::Train(args) => train(args),
        BenchCommand::Loss(args) => loss(args),
        BenchCommand::Load(args) => load(args),
        BenchCommand::Kernels(args) => super::kernels::run(args),
    }
}

fn load(args: BenchLoadArgs) -> Result<()> {
    let mut out = crate::stdout::stdout();
    let selected = iftcl::device::select(args.device.parse()?)?;
    let mut results = Vec::new();
    outln!(out, "{:<40} {:>8} {:>4} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10}", "model", "MB", "run", "read", "prepare", "weights", "finger.", "warm-up", "1st emb.", "loadModel")?;
    for model in &args.model {
        let r = iftcl::bench::bench_load(model, &selected.device, &selected.description, args.runs)?;
        for (i, p) in r.runs.iter().enumerate() {
            outln!(out,
                "{:<40} {:>8.1} {:>4} {:>7.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>10.1}",
                model.display(), r.weights_bytes as f64 / 1e6, i + 1, p.read_ms, p.prepare_ms, p.weights_ms, p.fingerprint_ms, p.warm_up_ms, p.first_embedding_ms, p.load_model_ms()
            )?;
        }
        results.push(r);
    }
    outln!(out, "(milliseconds on {}; loadModel = read + prepare + weights + fingerprint + warm-up, what the Tauri plugin does)", selected.description)?;
    if let Some(path) = args.json {
        iftcl::atomic::write_file(&path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    }
    Ok(())
}

fn embed(args: BenchEmbedArgs) -> Result<()> {
    let mut out = crate::stdout::stdout();
    let dir = sts_dir(&args.data)?;
    refuse_json_over_inputs(args.json.as_deref(), &[("--model", &args.model), ("--data", &dir)])?;
    let task = eval::load_task(&dir, "STS-B-dev")?;
    let sentences: Vec<&str> = task.pairs.iter().flat_map(|p| [p.a.as_str(), p.b.as_str()]).collect();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut results = Vec::new();
    let dtypes: Vec<Option<iftcl::Compute>> = if args.dtype.is_empty() { vec![None] } else { args.dtype.iter().copied().map(Some).collect() };
    for d in &args.device {
      for &dtype in &dtypes {
        let model = ModelArgs { model: args.model.clone(), device: d.clone(), batch_size: args.batch_size, revision: None, normalize: false, prompt_name: None, dtype };
        let (encoder, description) = model.load()?;
        let description = format!("{description}, {}", encoder.compute());
        let r = iftcl::bench::bench_embed(&encoder, &sentences, args.runs, &description)?;
        outln!(out,
            "{:<50} {:>8.1} sentences/s  (median of {} runs, {} sentences, {} tokens, batch {})  ratio to reference {:.0}/s: {:.2}x",
            r.device, r.sentences_per_s, r.runs_s.len(), r.sentences, r.tokens, args.batch_size, args.reference,
            r.sentences_per_s / args.reference
        )?;
        results.push(serde_json::json!({ "result": r, "compute": encoder.compute().name(), "reference_sentences_per_s": args.reference,
            "ratio": r.sentences_per_s / args.reference }));
      }
    }
    if let Some(path) = args.json {
        iftcl::atomic::write_file(&path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    }
    Ok(())
}
/// PyTorch reference figures on 2 CPU cores (sentences/s): IFTCL three views, SimCSE two.
const REFERENCE_CPU: [(&str, f64); 2] = [("twins", 29.0), ("infonce", 42.0)];

/// Seed of the weights `--random-weights` draws.
const RANDOM_WEIGHTS_SEED: u64 = 42;

fn train(args: BenchTrainArgs) -> Result<()> {
    if args.steps == 0 || args.batch_size == 0 {
        bail!("--steps and --batch-size must be at least 1");
    }
    let mut out = crate::stdout::stdout();
    let corpus_path = match &args.corpus {
        Some(p) => p.clone(),
        None => std::env::var("IFTCL_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("../shared/data"))
            .join("corpus/senteval-sentences.txt"),
    };
    let mut inputs = vec![("--model", args.model.as_path()), ("--corpus", corpus_path.as_path())];
    inputs.extend(args.random_weights.as_deref().map(|c| ("--random-weights", c)));
    refuse_json_over_inputs(args.json.as_deref(), &inputs)?;
    let corpus = iftcl::train::data::Corpus::open(&corpus_path)?;
    let take: Vec<usize> = (0..corpus.len().min(args.batch_size * (args.warmup + args.steps))).collect();
    let sentences = corpus.read(&take)?;
    let weights = match &args.random_weights {
        Some(c) => format!("random weights, shape of {}", c.display()),
        None => args.model.display().to_string(),
    };
    let mut rows = Vec::new();
    for d in &args.device {
        let selected = iftcl::device::select(d.parse()?)?;
        let start = match &args.random_weights {
            Some(config) => SentenceEncoder::random(config, &args.model, &selected.device, RANDOM_WEIGHTS_SEED)?,
            None => SentenceEncoder::load(&args.model, &selected.device)?,
        };
        let parameters = start.model.num_params();
        let on_cpu = selected.description.starts_with("cpu");
        for loss in &args.loss {
            let config = TrainConfig {
                loss: loss.parse().map_err(anyhow::Error::msg)?,
                batch_size: args.batch_size,
                max_len: args.max_len,
                corpus: corpus_path.clone(),
                fused_loss: args.fused_loss.parse().map_err(anyhow::Error::msg)?,
                ..TrainConfig::default()
            };
            let times = iftcl::bench::bench_train(&start, &sentences, &config, args.warmup, args.steps)?;
            let med = iftcl::bench::median(&times);
            let sps = args.batch_size as f64 / med;
            // The PyTorch figures were taken on 2 CPU cores with all-MiniLM-L6-v2's weights.
            let reference = REFERENCE_CPU.iter().find(|(l, _)| l == loss).map(|(_, r)| *r).filter(|_| on_cpu && args.random_weights.is_none());
            let ratio = reference.map(|r| format!("  ratio to PyTorch CPU {r:.0}/s: {:.2}x", sps / r)).unwrap_or_default();
            outln!(out,
                "{:<45} {:<8} {:>7.1} sentences/s  (median step {:.3} s of {}, batch {}, len {}, {:.1}M parameters){ratio}",
                selected.description, loss, sps, med, times.len(), args.batch_size, args.max_len, parameters as f64 / 1e6
            )?;
            rows.push(serde_json::json!({"device": selected.description, "loss": loss, "fused_loss": args.fused_loss, "sentences_per_s": sps,
                "median_step_s": med, "step_times_s": times, "batch_size": args.batch_size, "max_len": args.max_len,
                "weights": weights, "parameters": parameters, "reference_cpu_sentences_per_s": reference}));
        }
    }
    if let Some(p) = args.json {
        iftcl::atomic::write_file(&p, serde_json::to_string_pretty(&rows)?.as_bytes())?;
    }
    Ok(())
}

fn loss(args: BenchLossArgs) -> Result<()> {
    let mut out = crate::stdout::stdout();
    if args.n == 0 || args.k.is_empty() || args.d.iter().any(|&d| d == 0) {
        bail!("--n and every --d must be at least 1, and --k needs a value");
    }
    let selected = iftcl::device::select(args.device.parse()?)?;
    let shapes: Vec<(usize, usize, usize)> = args.d.iter().flat_map(|&d| args.k.iter().map(move |&k| (args.n, k, d))).collect();
    let r = iftcl::bench::bench_loss(&selected.device, &selected.description, &shapes, args.warmup, args.runs)?;
    if args.json {
        outln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(());
    }
    outln!(out, "{} ({} timed runs, median; {})", r.device, r.runs, r.objective)?;
    outln!(out, "{:>5} {:>5} {:>5} {:>10} {:>11} {:>8} {:>10} {:>10} {:>9} {:>8}", "N", "K", "d", "fused ms", "unfused ms", "speedup", "err loss", "err grad", "GFLOP/s", "GB/s")?;
    for c in &r.cases {
        outln!(out,
            "{:>5} {:>5} {:>5} {:>10.3} {:>11.3} {:>7.2}x {:>10.1e} {:>10.1e} {:>9.1} {:>8.2}",
            c.n, c.k, c.d, c.fused_ms, c.unfused_ms, c.speedup, c.max_rel_err_loss, c.max_rel_err_grad, c.fused_gflops, c.fused_gbps
        )?;
    }
    Ok(())
}
