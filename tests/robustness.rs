//! Nothing silently lost or corrupted: an output folder owned by one run, no embed over its own
//! input, no checkpoint from a diverged model, no model with non-finite weights used, STS files
//! that must pair up, no panic on a closed or full stdout, resumes that must agree with their
//! checkpoint, no other run's best/ passed off as this one's, no staging folders left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::common::*;

fn bin(args: &[&str]) -> Command {
    let mut cmd = Command::new(iftcl_bin());
    cmd.args(args).env("IFTCL_MODEL", model_dir()).env("RUST_LOG", "warn");
    cmd
}

fn spawn(args: &[&str]) -> Child {
    bin(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn fails_with(o: &Output, what: &[&str]) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "expected an error exit: {e}");
    assert!(!e.contains("panicked"), "{e}");
    for w in what {
        assert!(e.contains(w), "`{w}` missing from: {e}");
    }
    e
}

/// The names of the entries of `dir` ending in `.partial`, at any depth below it.
fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(".partial") {
            found.push(p.clone());
        }
        if p.is_dir() {
            found.extend(partials(&p));
        }
    }
    found
}

fn step_lines(out: &Path) -> Vec<u64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "step")
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

fn checkpoint_step(dir: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("trainer_state.json")).unwrap()).unwrap();
    v["step"].as_u64().unwrap()
}

#[path = "robustness/io.rs"]
mod io;
#[path = "robustness/training.rs"]
mod training;
#[path = "robustness/ownership.rs"]
mod ownership;
#[path = "robustness/hostile_inputs.rs"]
mod hostile_inputs;
#[path = "robustness/st_modules.rs"]
mod st_modules;
