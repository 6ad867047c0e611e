//! `iftcl`: the command-line tool. A thin layer: each subcommand turns its arguments into library
//! calls and prints the result.

mod embed_cmd;

/// mimalloc keeps freed pages for reuse: with the system allocator every large tensor buffer
/// was a fresh mmap whose pages the kernel zeroed on first touch (a quarter of a CPU training
/// step went to page faults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
mod train_cmd;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use iftcl::device::{self, DeviceSpec};
use iftcl::eval::{self, TEST_TASKS};
use iftcl::SentenceEncoder;

/// Sentence encoders trained and run with the IFTCL recipe on any GPU (wgpu) or the CPU.
#[derive(Parser, Debug)]
#[command(name = "iftcl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the wgpu adapters (Vulkan, Metal, DX12) and what `--device auto` picks.
    Devices,
    /// Embed sentences: one input line in, one JSON array of floats out, same order.
    Embed(embed_cmd::EmbedArgs),
    /// Cosine similarity of two sentences, or the matrix for more than two.
    Similarity(SimilarityArgs),
    /// Evaluate on the STS tasks (SentEval layout): Spearman x 100.
    Eval(EvalArgs),
    /// Train with IFTCL (identical and fraternal twins, Twins Loss, hippocampus queue) or SimCSE.
    Train(train_cmd::TrainArgs),
    /// Check that a device computes the trainer's gradients right: small forward + backward
    /// graphs (each op kind, then a tiny encoder) on the device and on the CPU backend,
    /// compared. Exits with status 1 when a case fails.
    CheckDevice {
        /// auto | cpu | gpu | gpu:N (see `iftcl devices`).
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Throughput benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

/// Options shared by the commands that load a model.
#[derive(clap::Args, Debug, Clone)]
struct ModelArgs {
    /// Model folder (Hugging Face layout, optionally with the sentence-transformers files).
    #[arg(long, default_value = "models/all-MiniLM-L6-v2", env = "IFTCL_MODEL")]
    model: PathBuf,
    /// auto | cpu | gpu | gpu:N (see `iftcl devices`).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

impl ModelArgs {
    fn load(&self) -> Result<(SentenceEncoder, String)> {
        let spec: DeviceSpec = self.device.parse()?;
        let selected = device::select(spec)?;
        tracing::info!("device: {}", selected.description);
        let encoder = SentenceEncoder::load(&self.model, &selected.device)?.with_batch_size(self.batch_size);
        Ok((encoder, selected.description))
    }
}

#[derive(clap::Args, Debug)]
struct SimilarityArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Two or more sentences.
    #[arg(required = true, num_args = 2..)]
    sentences: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// STS data folder in SentEval's layout (default: $IFTCL_DATA_DIR/sts or ../shared/data/sts).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also report STS-B dev (the model-selection set).
    #[arg(long)]
    dev: bool,
    /// Only these tasks (comma-separated: STS12,...,STS16,STS-B,SICK-R,STS-B-dev).
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Sentences/s encoding the STS-B dev sentences (both columns, 3,000 sentences).
    Embed(BenchEmbedArgs),
    /// Training sentences/s (batch 64, length 32) per device and loss.
    Train(train_cmd::BenchTrainArgs),
    /// The loss alone: fused WGSL kernels vs the plain burn-ops graph, forward + backward.
    Loss(BenchLossArgs),
}

#[derive(clap::Args, Debug)]
struct BenchLossArgs {
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

#[derive(clap::Args, Debug)]
struct BenchEmbedArgs {
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

fn sts_dir(data: &Option<PathBuf>) -> Result<PathBuf> {
    match data {
        Some(d) => Ok(d.clone()),
        None => eval::default_sts_dir().context(
            "no STS data: pass --data DIR (SentEval layout, as SentEval's get_transfer_data.bash writes it) or set IFTCL_DATA_DIR",
        ),
    }
}

/// mimalloc returns freed memory to the OS 10 ms after it is freed by default; a training step
/// frees and re-allocates hundreds of MB each time, and re-faulting those pages cost 20% of a
/// CPU step. mimalloc reads its options from the environment when the process starts, so the
/// first start sets `MIMALLOC_PURGE_DELAY=-1` (never purge) and re-executes itself, unless the
/// user chose a value.
#[cfg(unix)]
fn keep_allocator_pages() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MIMALLOC_PURGE_DELAY", "-1")
        .exec();
    // exec only returns on failure: carry on with the default setting.
    eprintln!("note: could not re-execute with MIMALLOC_PURGE_DELAY=-1 ({err}); continuing");
}

#[cfg(not(unix))]
fn keep_allocator_pages() {}

fn main() {
    keep_allocator_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,wgpu=warn,cubecl=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Devices => devices(),
        Command::Embed(args) => embed_cmd::run(args),
        Command::Similarity(args) => similarity(args),
        Command::Eval(args) => eval_cmd(args),
        Command::Train(args) => train_cmd::run(args),
        Command::CheckDevice { device } => check_device(&device),
        Command::Bench { what: BenchCommand::Embed(args) } => bench_embed(args),
        Command::Bench { what: BenchCommand::Train(args) } => train_cmd::bench(args),
        Command::Bench { what: BenchCommand::Loss(args) } => bench_loss(args),
    }
}

fn devices() -> Result<()> {
    let adapters = device::list_adapters();
    if adapters.is_empty() {
        println!("wgpu sees no Vulkan/Metal/DX12 adapter.");
    }
    for a in &adapters {
        let hw = if a.is_hardware() { "" } else { "  [software]" };
        println!("gpu:{}  {}  ({}, {}, {}){hw}", a.index, a.name, a.backend, a.device_type, a.driver);
    }
    println!("cpu    burn flex (pure Rust, SIMD gemm + rayon, {} threads)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    let auto = device::select(DeviceSpec::Auto)?;
    println!("auto -> {}", auto.description);
    Ok(())
}

fn check_device(spec: &str) -> Result<()> {
    let selected = device::select(spec.parse()?)?;
    println!("gradients on {} against the CPU backend (relative error, tolerance {:.0e})", selected.description, iftcl::diagnose::TOLERANCE);
    let checks = pollster::block_on(iftcl::diagnose::check_gradients(&selected.device))?;
    let failed: Vec<&str> = checks.iter().filter(|c| !c.passed()).map(|c| c.name.as_str()).collect();
    for c in &checks {
        let verdict = if c.passed() { "ok" } else if c.finite { "WRONG" } else { "NOT FINITE" };
        println!("{:<10} {:>9.2e}  {}", verdict, c.rel_err(), c.name);
    }
    if !failed.is_empty() {
        bail!("{} of {} gradient checks failed on {}: {}", failed.len(), checks.len(), selected.description, failed.join("; "));
    }
    println!("all {} gradient checks passed", checks.len());
    Ok(())
}

fn similarity(args: SimilarityArgs) -> Result<()> {
    let (encoder, _) = args.model.load()?;
    let texts: Vec<&str> = args.sentences.iter().map(String::as_str).collect();
    let v = encoder.embed(&texts)?;
    let n = v.len();
    let m: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| eval::cosine(&v[i], &v[j])).collect()).collect();
    if args.json {
        let out = if n == 2 { serde_json::json!({ "cosine": m[0][1] }) } else { serde_json::json!({ "sentences": texts, "matrix": m }) };
        println!("{out}");
    } else if n == 2 {
        println!("{:.6}", m[0][1]);
    } else {
        for (i, row) in m.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|x| format!("{x:7.4}")).collect();
            println!("[{i}] {}  {}", cells.join(" "), texts[i]);
        }
    }
    Ok(())
}

fn eval_cmd(args: EvalArgs) -> Result<()> {
    let dir = sts_dir(&args.data)?;
    let mut names: Vec<String> = if args.tasks.is_empty() {
        TEST_TASKS.iter().map(|s| s.to_string()).collect()
    } else {
        args.tasks.clone()
    };
    if args.dev && !names.iter().any(|n| n == "STS-B-dev") {
        names.push("STS-B-dev".into());
    }
    let tasks = names.iter().map(|n| eval::load_task(&dir, n)).collect::<iftcl::Result<Vec<_>>>()?;
    let (encoder, device) = args.model.load()?;
    let t = std::time::Instant::now();
    let scores = eval::evaluate(&tasks, |s| encoder.embed(s))?;
    tracing::info!("evaluated in {:.1} s on {device}", t.elapsed().as_secs_f64());
    let mut json = serde_json::Map::new();
    println!("{:<10} {:>6} {:>9}", "task", "pairs", "spearman");
    for s in &scores {
        println!("{:<10} {:>6} {:>9.2}", s.name, s.pairs, s.spearman);
        json.insert(s.name.clone(), serde_json::json!((s.spearman * 100.0).round() / 100.0));
    }
    let test: Vec<f64> = scores.iter().filter(|s| TEST_TASKS.contains(&s.name.as_str())).map(|s| s.spearman).collect();
    if test.len() == TEST_TASKS.len() {
        let avg = test.iter().sum::<f64>() / test.len() as f64;
        println!("{:<10} {:>6} {:>9.2}", "avg", "", avg);
        json.insert("avg".into(), serde_json::json!((avg * 100.0).round() / 100.0));
    }
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&json)?).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn bench_loss(args: BenchLossArgs) -> Result<()> {
    if args.n == 0 || args.k.is_empty() || args.d.iter().any(|&d| d == 0) {
        bail!("--n and every --d must be at least 1, and --k needs a value");
    }
    let selected = iftcl::device::select(args.device.parse()?)?;
    let shapes: Vec<(usize, usize, usize)> = args.d.iter().flat_map(|&d| args.k.iter().map(move |&k| (args.n, k, d))).collect();
    let r = iftcl::bench::bench_loss(&selected.device, &selected.description, &shapes, args.warmup, args.runs)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("{} ({} timed runs, median; {})", r.device, r.runs, r.objective);
    println!("{:>5} {:>5} {:>5} {:>10} {:>11} {:>8} {:>10} {:>10} {:>9} {:>8}", "N", "K", "d", "fused ms", "unfused ms", "speedup", "err loss", "err grad", "GFLOP/s", "GB/s");
    for c in &r.cases {
        println!(
            "{:>5} {:>5} {:>5} {:>10.3} {:>11.3} {:>7.2}x {:>10.1e} {:>10.1e} {:>9.1} {:>8.2}",
            c.n, c.k, c.d, c.fused_ms, c.unfused_ms, c.speedup, c.max_rel_err_loss, c.max_rel_err_grad, c.fused_gflops, c.fused_gbps
        );
    }
    Ok(())
}

fn bench_embed(args: BenchEmbedArgs) -> Result<()> {
    let dir = sts_dir(&args.data)?;
    let task = eval::load_task(&dir, "STS-B-dev")?;
    let sentences: Vec<&str> = task.pairs.iter().flat_map(|p| [p.a.as_str(), p.b.as_str()]).collect();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut results = Vec::new();
    for d in &args.device {
        let model = ModelArgs { model: args.model.clone(), device: d.clone(), batch_size: args.batch_size };
        let (encoder, description) = model.load()?;
        let r = iftcl::bench::bench_embed(&encoder, &sentences, args.runs, &description)?;
        println!(
            "{:<50} {:>8.1} sentences/s  (median of {} runs, {} sentences, {} tokens, batch {})  ratio to reference {:.0}/s: {:.2}x",
            r.device, r.sentences_per_s, r.runs_s.len(), r.sentences, r.tokens, args.batch_size, args.reference,
            r.sentences_per_s / args.reference
        );
        results.push(serde_json::json!({ "result": r, "reference_sentences_per_s": args.reference,
            "ratio": r.sentences_per_s / args.reference }));
    }
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&results)?).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
