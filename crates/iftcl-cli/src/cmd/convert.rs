//! `iftcl convert`: a model folder rewritten with its weights in f16, bf16, int8 or f32.

use std::path::PathBuf;

use anyhow::Result;
use iftcl::Precision;
use iftcl::hub::HubOptions;

use crate::outln;

/// `iftcl convert` arguments.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// f16 | bf16 | int8 | f32: the number format of the written model.safetensors (int8: one
    /// scale per row of each weight matrix; see docs/models.md).
    #[arg(long, value_name = "DTYPE")]
    dtype: Precision,
    /// Branch, tag or commit when MODEL is a Hugging Face Hub id.
    #[arg(long)]
    revision: Option<String>,
    /// Replace OUT when it exists and holds a model folder (it is replaced once the new folder
    /// is written; a folder that holds no config.json is never replaced).
    #[arg(long)]
    overwrite: bool,
    /// The model folder (or a Hugging Face Hub id) to convert.
    model: PathBuf,
    /// The folder to write: a new or empty one (a model folder with --overwrite); never MODEL
    /// or a folder inside it.
    out: PathBuf,
}

/// Converts and prints what was written.
pub fn run(args: ConvertArgs) -> Result<()> {
    let hub = HubOptions { revision: args.revision.clone(), ..HubOptions::default() };
    let dir = iftcl::hub::resolve(&args.model, &hub)?;
    let done = iftcl::convert::convert(&dir, &args.out, args.dtype, args.overwrite)?;
    let mb = |b: u64| b as f64 / 1e6;
    let mut out = crate::stdout::stdout();
    outln!(
        out,
        "{}: model.safetensors in {} ({:.1} MB, {:.0} % of the {:.1} MB of {}), {} other files copied",
        args.out.display(),
        done.precision,
        mb(done.bytes_after),
        100.0 * done.bytes_after as f64 / done.bytes_before.max(1) as f64,
        mb(done.bytes_before),
        dir.display(),
        done.copied.len()
    )?;
    Ok(())
}
