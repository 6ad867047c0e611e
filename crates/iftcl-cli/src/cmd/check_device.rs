//! `iftcl check-device`: the trainer's gradients on a device against the CPU backend's.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use iftcl::atomic::AtomicFile;
use iftcl::device;

use crate::outln;

/// Runs every gradient check on `spec`'s device, prints one line per case and writes them to
/// `json` when given; an error when a case fails (after the JSON is written).
pub fn run(spec: &str, json: Option<&Path>) -> Result<()> {
    // The JSON file is opened first: a path that cannot be written fails before the work.
    let mut json_file = json.map(AtomicFile::create).transpose()?;
    let selected = device::select(spec.parse()?)?;
    let mut out = crate::stdout::stdout();
    outln!(out, "gradients on {} against the CPU backend (relative error, tolerance {:.0e})", selected.description, iftcl::diagnose::TOLERANCE)?;
    let checks = pollster::block_on(iftcl::diagnose::check_gradients(&selected.device))?;
    if let Some(mut file) = json_file.take() {
        let cases: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name, "rel_err": c.rel_err(), "max_abs_err": c.max_abs_err, "scale": c.scale,
                    "finite": c.finite, "passed": c.passed(),
                })
            })
            .collect();
        let doc = serde_json::json!({ "device": selected.description, "tolerance": iftcl::diagnose::TOLERANCE, "cases": cases });
        let path = file.path().display().to_string();
        file.write_all(serde_json::to_string_pretty(&doc)?.as_bytes()).with_context(|| format!("cannot write {path}"))?;
        file.commit()?;
    }
    let failed: Vec<&str> = checks.iter().filter(|c| !c.passed()).map(|c| c.name.as_str()).collect();
    for c in &checks {
        let verdict = if c.passed() { "ok" } else if c.finite { "WRONG" } else { "NOT FINITE" };
        outln!(out, "{:<10} {:>9.2e}  {}", verdict, c.rel_err(), c.name)?;
    }
    if !failed.is_empty() {
        bail!("{} of {} gradient checks failed on {}: {}", failed.len(), checks.len(), selected.description, failed.join("; "));
    }
    outln!(out, "all {} gradient checks passed", checks.len())?;
    Ok(())
}
