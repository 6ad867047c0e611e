//! `bench kernels`: the GPU work of a training step and of an embedding batch, counted exactly.
//!
//! Kernel launches come from CubeCL's launch observer (`cubecl_runtime::logging`), which is
//! told of every launch synchronously, on the thread that issues it, so a count taken between
//! two steps holds exactly the launches of the steps in between (the profiling logger's file,
//! written by a detached thread, is not ordered against the caller). Host reads come from
//! [`crate::host_reads`]. Counts are the same from run to run, unlike times, which is what
//! lets a test pin them. The CPU backend launches no CubeCL kernels: its counts are zero.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use cubecl_runtime::logging::{LaunchObservation, LaunchObserver};
use serde::Serialize;

use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::host_reads;
use crate::train::driver::{Batches, Ended, Flagged, Schedule, StepReport, run_steps};
use crate::train::{FineTuner, TrainConfig};

/// Launches by kernel name, as the kernels name themselves.
#[derive(Default)]
struct Tally(Mutex<HashMap<&'static str, u64>>);

impl LaunchObserver for Tally {
    fn launched(&self, kernel: &'static str) {
        // A poisoned lock only means another thread panicked while counting; the map is
        // still a map.
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(kernel).or_default() += 1;
    }
}

/// Counts every kernel launched in this process from [`LaunchCounter::start`] until it is
/// dropped. One at a time: starting a second replaces the first until the second is dropped.
pub struct LaunchCounter {
    tally: Arc<Tally>,
    _observation: LaunchObservation,
}

impl std::fmt::Debug for LaunchCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchCounter").field("launches", &self.snapshot().total()).finish()
    }
}

impl LaunchCounter {
    /// Starts counting. Start it before the device is first used to see its start-up work.
    pub fn start() -> Self {
        let tally = Arc::new(Tally::default());
        let observation = LaunchObservation::new(tally.clone());
        Self { tally, _observation: observation }
    }

    /// What has been counted so far: launches by kernel, and host reads.
    pub fn snapshot(&self) -> Counts {
        let map = self.tally.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut launches = BTreeMap::new();
        for (name, n) in map.iter() {
            *launches.entry(short_name(name)).or_default() += n;
        }
        Counts { launches, host_reads: host_reads::total() }
    }
}

/// Launches by kernel and host reads over some stretch of work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Launches by kernel name (the type name without its path and generics).
    pub launches: BTreeMap<String, u64>,
    /// Device→host reads ([`crate::host_reads`]).
    pub host_reads: u64,
}

impl Counts {
    /// All launches.
    pub fn total(&self) -> u64 {
        self.launches.values().sum()
    }

    /// What happened between `earlier` and `self` (both snapshots of one counter).
    pub fn since(&self, earlier: &Counts) -> Counts {
        let launches = self
            .launches
            .iter()
            .map(|(k, &n)| (k.clone(), n - earlier.launches.get(k).copied().unwrap_or(0)))
            .filter(|&(_, n)| n > 0)
            .collect();
        Counts { launches, host_reads: self.host_reads - earlier.host_reads }
    }

    /// Launches grouped by [`kind`].
    pub fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for (name, &n) in &self.launches {
            *out.entry(kind(name)).or_default() += n;
        }
        out
    }
}

/// A kernel's type name without its module path and generic arguments.
fn short_name(name: &str) -> String {
    let base = name.split('<').next().unwrap_or(name);
    base.rsplit("::").next().unwrap_or(base).trim().to_string()
}

/// What a kernel does, by its name: the groups of docs/benchmarks.md's kernel table.
pub fn kind(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    let has = |s: &str| n.contains(s);
    if has("launchoverhead") || has("throughput") || has("primebuffer") {
        "start-up probe"
    } else if n == "sourcekernel" {
        // The fused loss's hand-written WGSL kernels (train/fused) are CubeCL source kernels.
        "fused loss (WGSL)"
    } else if has("sliceassign") || has("selectassign") || has("slice") || has("select") || has("gather") || has("scatter") {
        "indexing"
    } else if has("full") {
        "fill"
    } else if has("matmul") || has("gemm") || has("batch_matmul") {
        "matmul"
    } else if has("reduce") {
        "reduction"
    } else if has("fuse") {
        "fused element-wise"
    } else if has("copy") || has("pack") || has("into_contiguous") {
        "layout copy"
    } else if has("random") || has("bernoulli") || has("prng") {
        "random"
    } else if has("binop") || has("unary") || has("elemwise") || has("scalar") || has("cmp") || has("mask") {
        "unfused element-wise"
    } else {
        "other"
    }
}

/// The counts of a short training run: what came before the first step, each step.
#[derive(Debug, Clone, Serialize)]
pub struct TrainCounts {
    /// Setting the tuner up (weights onto the autodiff graph, optimizer, queue).
    pub setup: Counts,
    /// Each step, in order; the first carries the compilation and autotune of every kernel.
    pub steps: Vec<Counts>,
}

impl TrainCounts {
    /// The steady state: the last step, if the last two steps launched the same kernels the
    /// same number of times (otherwise the run has not settled and the figures say so).
    pub fn steady(&self) -> Option<&Counts> {
        match self.steps.as_slice() {
            [.., a, b] if a == b => Some(b),
            _ => None,
        }
    }
}

/// Runs `steps` training steps of `start` (its device) with `config`'s loss, batch and queue on
/// `sentences` taken in order, and counts each step's launches and reads with `counter`.
pub fn count_train(counter: &LaunchCounter, start: &SentenceEncoder, sentences: &[String], config: &TrainConfig, steps: usize) -> Result<TrainCounts> {
    if sentences.is_empty() || steps == 0 {
        return Err(Error::InvalidArgument("counting kernels needs at least one sentence and one step".into()));
    }
    let before = counter.snapshot();
    let mut tuner = FineTuner::new(start, config.clone())?;
    let mut last = counter.snapshot();
    let setup = last.since(&before);
    let mut counted = Vec::with_capacity(steps);
    let never = std::sync::atomic::AtomicBool::new(false);
    let mut hooks = Flagged {
        cancel: &never,
        on_step: |_: &StepReport| {
            let now = counter.snapshot();
            counted.push(now.since(&last));
            last = now;
            Ok(())
        },
    };
    let batches = Batches::Cycle { sentences, batch: config.batch_size };
    match pollster::block_on(run_steps(&mut tuner, &batches, &Schedule::Constant(config.lr), steps as u64, &mut hooks))? {
        Ended::Completed => Ok(TrainCounts { setup, steps: counted }),
        Ended::Cancelled { .. } => Err(Error::Cancelled("while counting kernels".into())),
        Ended::Diverged { step, what, .. } => Err(Error::Diverged(format!("{what} at step {step} while counting kernels"))),
    }
}

/// Embeds `sentences` (one batch of them: at most the encoder's batch size) `runs` times and
/// counts each run; the first carries compilation and autotune.
pub fn count_embed(counter: &LaunchCounter, encoder: &SentenceEncoder, sentences: &[&str], runs: usize) -> Result<Vec<Counts>> {
    if sentences.is_empty() || sentences.len() > encoder.batch_size() {
        return Err(Error::InvalidArgument(format!(
            "counting an embedding batch needs 1 to {} sentences (the batch size), got {}",
            encoder.batch_size(),
            sentences.len()
        )));
    }
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let before = counter.snapshot();
        std::hint::black_box(encoder.embed(sentences)?);
        out.push(counter.snapshot().since(&before));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_path_and_generics() {
        assert_eq!(short_name("cubecl_std::tensor::layout::CopyKernel<R, F>"), "CopyKernel");
        assert_eq!(short_name("ElemwiseFuse"), "ElemwiseFuse");
    }

    #[test]
    fn since_subtracts_per_kernel_and_drops_zeros() {
        let a = Counts { launches: [("A".to_string(), 2), ("B".to_string(), 1)].into(), host_reads: 1 };
        let b = Counts { launches: [("A".to_string(), 5), ("B".to_string(), 1), ("C".to_string(), 3)].into(), host_reads: 2 };
        let d = b.since(&a);
        assert_eq!(d.launches, [("A".to_string(), 3), ("C".to_string(), 3)].into());
        assert_eq!(d.host_reads, 1);
        assert_eq!(d.total(), 6);
    }

    #[test]
    fn steady_needs_two_equal_last_steps() {
        let c = |n| Counts { launches: [("A".to_string(), n)].into(), host_reads: 1 };
        let t = TrainCounts { setup: Counts::default(), steps: vec![c(9), c(4), c(4)] };
        assert_eq!(t.steady(), Some(&c(4)));
        let t = TrainCounts { setup: Counts::default(), steps: vec![c(9), c(4)] };
        assert_eq!(t.steady(), None);
    }
}
