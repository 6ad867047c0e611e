//! `iftcl eval`: Spearman × 100 on the STS tasks in SentEval's layout.

use std::path::PathBuf;

use std::io::Write;

use anyhow::{Context, Result, bail};
use iftcl::atomic::AtomicFile;
use iftcl::eval::{self, TEST_TASKS};
use iftcl::inputs::{Input, refuse_input_as_output};

use crate::args::{ModelArgs, sts_dir};
use crate::outln;

/// `iftcl eval` arguments.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
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
    /// Write the figures as JSON here (with the device and the seconds the evaluation took).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Evaluates the model on the tasks, prints the table and writes the JSON.
pub fn run(args: EvalArgs) -> Result<()> {
    let dir = sts_dir(&args.data)?;
    // The JSON file is opened first: a path that cannot be written, or that is one of the files
    // read, fails before the work.
    let mut json_file = match &args.json {
        Some(p) => {
            let mut inputs = vec![Input::new(format!("a file of the STS data (--data {})", dir.display()), &dir)];
            inputs.extend(args.model.local_folder().map(|m| Input::new(format!("a file of the model folder (--model {})", m.display()), m)));
            refuse_input_as_output("--json", p, &inputs)?;
            Some(AtomicFile::create(p)?)
        }
        None => None,
    };
    let mut names: Vec<String> = if args.tasks.is_empty() {
        TEST_TASKS.iter().map(|s| s.to_string()).collect()
    } else {
        args.tasks.clone()
    };
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            bail!("--tasks names {name} more than once: each task is scored once (and counted once in the average)");
        }
    }
    if args.dev && !names.iter().any(|n| n == "STS-B-dev") {
        names.push("STS-B-dev".into());
    }
    let tasks = names.iter().map(|n| eval::load_task(&dir, n)).collect::<iftcl::Result<Vec<_>>>()?;
    let (encoder, device) = args.model.load()?;
    let t = std::time::Instant::now();
    let scores = eval::evaluate(&tasks, |s| encoder.embed(s))?;
    let seconds = t.elapsed().as_secs_f64();
    tracing::info!("evaluated in {seconds:.1} s on {device}");
    // The JSON is written before the table is printed: a closed stdout does not lose it.
    let mut json = serde_json::Map::new();
    let mut lines = vec![format!("{:<10} {:>6} {:>9}", "task", "pairs", "spearman")];
    for s in &scores {
        lines.push(format!("{:<10} {:>6} {:>9.2}", s.name, s.pairs, s.spearman));
        json.insert(s.name.clone(), serde_json::json!((s.spearman * 100.0).round() / 100.0));
    }
    // The average covers the seven test tasks (each once: duplicates are refused above), and
    // only when all seven were scored; its line names them.
    let test: Vec<f64> = scores.iter().filter(|s| TEST_TASKS.contains(&s.name.as_str())).map(|s| s.spearman).collect();
    if test.len() == TEST_TASKS.len() {
        let avg = test.iter().sum::<f64>() / test.len() as f64;
        lines.push(format!("{:<10} {:>6} {:>9.2}  (of {})", "avg", "", avg, TEST_TASKS.join(", ")));
        json.insert("avg".into(), serde_json::json!((avg * 100.0).round() / 100.0));
        json.insert("avg_tasks".into(), serde_json::json!(TEST_TASKS));
    }
    // Beside the figures: the device and the time the evaluation took (model load excluded).
    json.insert("device".into(), serde_json::json!(device));
    json.insert("seconds".into(), serde_json::json!((seconds * 100.0).round() / 100.0));
    if let Some(mut file) = json_file.take() {
        let path = file.path().display().to_string();
        file.write_all(serde_json::to_string_pretty(&json)?.as_bytes()).with_context(|| format!("cannot write {path}"))?;
        file.commit()?;
    }
    let mut out = crate::stdout::stdout();
    for line in lines {
        outln!(out, "{line}")?;
    }
    Ok(())
}
