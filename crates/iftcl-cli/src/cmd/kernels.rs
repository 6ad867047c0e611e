//! `iftcl bench kernels`: kernel launches and host reads per training step and per embedding
//! batch, counted exactly (docs/benchmarks.md "GPU work per step").

use std::path::PathBuf;

use anyhow::{Result, bail};
use iftcl::SentenceEncoder;
use iftcl::bench::kernels::{Counts, LaunchCounter, count_embed, count_train};
use iftcl::train::TrainConfig;

use crate::outln;

/// Kernel launches and host reads per step and per embedding batch.
#[derive(clap::Args, Debug)]
pub struct BenchKernelsArgs {
    /// Model folder.
    #[arg(long, default_value = "models/all-MiniLM-L6-v2", env = "IFTCL_MODEL")]
    model: PathBuf,
    /// A wgpu device (gpu, gpu:N); the CPU backend launches no CubeCL kernels.
    #[arg(long, default_value = "gpu")]
    device: String,
    /// twins (IFTCL) or infonce (SimCSE).
    #[arg(long, default_value = "twins")]
    loss: String,
    /// Sentences per step and per embedding batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Token limit of the training inputs.
    #[arg(long, default_value_t = 32)]
    max_len: usize,
    /// Training steps counted one by one (at least 3: the first compiles and tunes, the last
    /// two must agree for a steady state).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Embedding runs of one batch counted one by one (at least 3, as for steps; 0: none).
    #[arg(long, default_value_t = 3)]
    embed_runs: usize,
    /// Corpus to draw sentences from [default: $IFTCL_DATA_DIR/corpus/senteval-sentences.txt].
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Take the corpus's sentences in order, of any length, instead of the first ones at least
    /// 1.5 × --max-len tokens long: each step then has its own padded length, as in a real run,
    /// and the last two steps need not agree (each step's count is still exact).
    #[arg(long)]
    any_length: bool,
    /// auto | on | off: the fused loss kernels (auto: on for wgpu devices).
    #[arg(long, default_value = "auto")]
    fused_loss: String,
    /// Write the counts as JSON here (every kernel by name, per phase).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Runs the count and prints a table by kind of kernel.
pub fn run(args: BenchKernelsArgs) -> Result<()> {
    if args.steps < 3 || (args.embed_runs != 0 && args.embed_runs < 3) || args.batch_size < 2 {
        bail!("--steps must be at least 3, --embed-runs 0 or at least 3, --batch-size at least 2");
    }
    let corpus_path = match &args.corpus {
        Some(p) => p.clone(),
        None => std::env::var("IFTCL_DATA_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("../shared/data")).join("corpus/senteval-sentences.txt"),
    };
    super::bench::refuse_json_over_inputs(args.json.as_deref(), &[("--model", &args.model), ("--corpus", &corpus_path)])?;
    let config = TrainConfig {
        loss: args.loss.parse().map_err(anyhow::Error::msg)?,
        batch_size: args.batch_size,
        max_len: args.max_len,
        corpus: corpus_path.clone(),
        fused_loss: args.fused_loss.parse().map_err(anyhow::Error::msg)?,
        ..TrainConfig::default()
    };

    // Counting starts before the device is first touched, so that its start-up work counts.
    let counter = LaunchCounter::start();
    let selected = iftcl::device::select(args.device.parse()?)?;
    let start = SentenceEncoder::load(&args.model, &selected.device)?.with_batch_size(args.batch_size);
    let sentences = if args.any_length {
        let corpus = iftcl::train::data::Corpus::open(&corpus_path)?;
        corpus.read(&(0..corpus.len().min(args.batch_size * args.steps)).collect::<Vec<_>>())?
    } else {
        long_sentences(&start, &corpus_path, args.max_len, args.batch_size * args.steps)?
    };
    let startup = counter.snapshot();
    let train = count_train(&counter, &start, &sentences, &config, args.steps)?;
    let batch: Vec<&str> = sentences.iter().take(args.batch_size).map(String::as_str).collect();
    let embed = if args.embed_runs == 0 { Vec::new() } else { count_embed(&counter, &start, &batch, args.embed_runs)? };
    drop(counter);

    let mut out = crate::stdout::stdout();
    let steady = train.steady();
    let embed_steady = match embed.as_slice() {
        [.., a, b] if a == b => Some(b),
        _ => None,
    };
    let mut columns: Vec<(&str, &Counts)> = vec![("start-up", &startup), ("tuner set-up", &train.setup), ("step 1", &train.steps[0])];
    if let Some(s) = steady {
        columns.push(("step (steady)", s));
    }
    if let Some(e) = embed.first() {
        columns.push(("embed 1", e));
    }
    if let Some(e) = embed_steady {
        columns.push(("embed (steady)", e));
    }
    let mut kinds: Vec<&str> = columns.iter().flat_map(|(_, c)| c.by_kind().into_keys()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    outln!(out, "{} on {}: {} loss, batch {}, length {}; kernel launches by kind", args.model.display(), selected.description, args.loss, args.batch_size, args.max_len)?;
    let header: String = columns.iter().map(|(name, _)| format!(" {name:>14}")).collect();
    outln!(out, "{:<22}{header}", "kind")?;
    for k in &kinds {
        let row: String = columns.iter().map(|(_, c)| format!(" {:>14}", c.by_kind().get(k).copied().unwrap_or(0))).collect();
        outln!(out, "{k:<22}{row}")?;
    }
    let totals: String = columns.iter().map(|(_, c)| format!(" {:>14}", c.total())).collect();
    outln!(out, "{:<22}{totals}", "launches")?;
    let reads: String = columns.iter().map(|(_, c)| format!(" {:>14}", c.host_reads)).collect();
    outln!(out, "{:<22}{reads}", "host reads")?;
    outln!(out, "per step: {:?} launches", train.steps.iter().map(Counts::total).collect::<Vec<_>>())?;
    if steady.is_none() {
        outln!(out, "(the last two steps differ: no steady state after {} steps)", args.steps)?;
    }
    if args.embed_runs > 0 && embed_steady.is_none() {
        outln!(out, "(the last two embedding runs differ: {:?})", embed.iter().map(Counts::total).collect::<Vec<_>>())?;
    }
    if let Some(p) = args.json {
        let report = serde_json::json!({
            "model": args.model, "device": selected.description, "loss": args.loss, "fused_loss": args.fused_loss,
            "batch_size": args.batch_size, "max_len": args.max_len, "any_length": args.any_length,
            "startup": startup, "tuner_setup": train.setup, "steps": train.steps, "steady_step": steady,
            "embed_runs": embed, "steady_embed": embed_steady,
        });
        iftcl::atomic::write_file(&p, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(())
}

/// The first `n` sentences of the corpus at least 1.5 × `max_len` tokens long, so that every
/// view of every step (the augmented ones included, which delete up to 30% of the words) is
/// truncated to `max_len`: each step then has the same shapes, hence the same kernels, and the
/// count of one step stands for all. Sentences of any length would change the padded length
/// from step to step, and with it what fusion and autotune pick.
fn long_sentences(encoder: &SentenceEncoder, corpus: &std::path::Path, max_len: usize, n: usize) -> Result<Vec<String>> {
    let corpus = iftcl::train::data::Corpus::open(corpus)?;
    let all: Vec<usize> = (0..corpus.len()).collect();
    let mut out = Vec::with_capacity(n);
    for chunk in all.chunks(4096) {
        let texts = corpus.read(chunk)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for (text, ids) in texts.iter().zip(encoder.tokenize(&refs)?) {
            if ids.len() * 2 >= max_len * 3 {
                out.push(text.clone());
                if out.len() == n {
                    return Ok(out);
                }
            }
        }
    }
    bail!("{}: only {} sentences are at least {} tokens long; {n} are needed", corpus.path().display(), out.len(), max_len * 3 / 2)
}
