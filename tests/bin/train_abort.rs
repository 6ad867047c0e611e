//! Test helper for the resume tests: `iftcl train` through the library with the settings of a
//! TOML file (as `iftcl train --config FILE` reads it), ended abruptly once step K has been
//! logged: `std::process::abort()`, no unwinding, nothing flushed, as a kill would, but always
//! at the same point.
//!
//! Usage: `iftcl-train-abort K CONFIG.toml`. Exits with status 2 on a usage error, 1 when the
//! run fails or ends before step K.

use std::path::PathBuf;
use std::process::ExitCode;

use iftcl::train::{StepMetrics, TrainConfig, TrainObserver};

/// Aborts the process once step `at` is logged (before that step's checkpoint, if it has one).
struct AbortAt(u64);

impl TrainObserver for AbortAt {
    fn on_step(&mut self, m: &StepMetrics) {
        if m.step == self.0 {
            std::process::abort();
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(at), Some(config)) = (args.first().and_then(|k| k.parse::<u64>().ok()), args.get(1).map(PathBuf::from)) else {
        eprintln!("usage: iftcl-train-abort K CONFIG.toml");
        return ExitCode::from(2);
    };
    let config = match TrainConfig::from_toml_file(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match iftcl::train::train(config, None, &mut AbortAt(at)) {
        Ok(summary) => eprintln!("error: the run ended after {} steps, before step {at}", summary.steps),
        Err(e) => eprintln!("error: {e}"),
    }
    ExitCode::FAILURE
}
