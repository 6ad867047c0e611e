//! `iftcl check-device`: the trainer's gradients on a device against the CPU backend's.

use anyhow::{Result, bail};
use iftcl::device;

use crate::outln;

/// Runs every gradient check on `spec`'s device; an error when a case fails.
pub fn run(spec: &str) -> Result<()> {
    let selected = device::select(spec.parse()?)?;
    let mut out = crate::stdout::stdout();
    outln!(out, "gradients on {} against the CPU backend (relative error, tolerance {:.0e})", selected.description, iftcl::diagnose::TOLERANCE)?;
    let checks = pollster::block_on(iftcl::diagnose::check_gradients(&selected.device))?;
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
