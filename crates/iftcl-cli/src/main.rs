//! `iftcl`: the command-line tool. A thin layer: each subcommand turns its arguments into library
//! calls and prints the result.

mod alloc;
mod args;
mod cmd;
mod signals;
mod stdout;

use std::io::Write;

use anyhow::Result;
use clap::{Parser, Subcommand};

use cmd::{bench, check_device, convert, devices, embed, eval, similarity, train};

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
    Embed(embed::EmbedArgs),
    /// Cosine similarity of two sentences, or the matrix for more than two.
    Similarity(similarity::SimilarityArgs),
    /// Evaluate on the STS tasks (SentEval layout): Spearman x 100.
    Eval(eval::EvalArgs),
    /// Train with IFTCL (identical and fraternal twins, Twins Loss, hippocampus queue) or SimCSE.
    Train(train::TrainArgs),
    /// Check that a device computes the trainer's gradients right: small forward + backward
    /// graphs (each op kind, then a tiny encoder) on the device and on the CPU backend,
    /// compared. Exits with status 1 when a case fails.
    CheckDevice {
        /// auto | cpu | gpu | gpu:N (see `iftcl devices`).
        #[arg(long, default_value = "auto")]
        device: String,
        /// Also write each case as JSON here: name, rel_err, max_abs_err, scale (max |CPU
        /// gradient|), finite, passed (what the browser's checkDevice() reports).
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Write a model folder with its weights in f16, bf16 or int8 (or back in f32): the same
    /// folder, file for file, with a smaller model.safetensors.
    Convert(convert::ConvertArgs),
    /// Throughput benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

fn main() {
    alloc::configure_allocator();
    let cli = Cli::parse();
    signals::install();
    // `train --quiet` prints the summary and nothing else: warnings and errors only.
    let level = if matches!(&cli.command, Command::Train(a) if a.quiet) { "warn" } else { "info,wgpu=warn,cubecl=warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    if let Err(e) = run(cli) {
        if stdout::is_broken_pipe(&e) {
            // The reader of stdout has gone (`iftcl ... | head`): nothing to report to anyone.
            std::process::exit(stdout::BROKEN_PIPE_STATUS);
        }
        let _ = writeln!(std::io::stderr(), "error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Devices => devices::run(),
        Command::Embed(args) => embed::run(args),
        Command::Similarity(args) => similarity::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Train(args) => train::run(args),
        Command::CheckDevice { device, json } => check_device::run(&device, json.as_deref()),
        Command::Convert(args) => convert::run(args),
        Command::Bench { what } => bench::run(what),
    }
}
