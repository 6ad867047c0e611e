//! `iftcl train`: set-up (config, corpus, device, model, resume), then a loop over the same
//! step the [`FineTuner`] runs, with logging, evaluation and checkpoints around it.

use std::path::Path;
use std::time::Instant;

use super::checkpoint::{Checkpoint, TrainerState, load_resume};
use super::config::TrainConfig;
use super::data::Corpus;
use super::fine_tuner::FineTuner;
use super::metrics::{EvalMetrics, MetricsLog, StepMetrics, TrainObserver, TrainSummary};
use crate::device::{self, DeviceSpec};
use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::eval::{self, Task};

/// Learning rate at `step` (0-based): linear warm-up over `warmup` steps, then linear decay to 0.
pub fn learning_rate(peak: f64, step: u64, total: u64, warmup: u64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total - step) as f64 / (total - warmup).max(1) as f64
    }
}

/// Fault injection for tests: `IFTCL_FAULT_<what>=k` is set for step k.
fn fault_at(what: &str, step: u64) -> bool {
    std::env::var(format!("IFTCL_FAULT_{what}")).ok().and_then(|v| v.parse::<u64>().ok()) == Some(step)
}

fn ensure_writable(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io("create the output folder", out, e))?;
    let probe = out.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(|e| Error::io("write into the output folder", out, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io("write into the output folder", out, e))
}

/// Writes a checkpoint of `tuner`'s model: with the optimizer (a resumable `last/`) or
/// without it (a model-only `best/`).
fn save_checkpoint(tuner: &FineTuner, config: &TrainConfig, state: &TrainerState, with_optimizer: bool, dir: &Path) -> Result<()> {
    let encoder = tuner.encoder();
    let queue = tuner.queue_state()?;
    let state = TrainerState { queue_stamps: queue.stamps.clone(), queue_head: queue.head, ..state.clone() };
    Checkpoint {
        model: encoder.folder_contents(),
        optimizer: with_optimizer.then(|| tuner.optimizer()),
        state: &state,
        queue: &queue,
        config,
    }
    .save(dir)
}

/// Trains per `config`, resuming from `resume` (a checkpoint folder) when given.
pub fn train(mut config: TrainConfig, resume: Option<&Path>, observer: &mut dyn TrainObserver) -> Result<TrainSummary> {
    // --- set-up -------------------------------------------------------------------------------
    let resumed = match resume {
        Some(dir) => {
            let r = load_resume(dir)?;
            // The schedule, data order and RNG streams are the checkpoint's; keep its config
            // (output folder, device and loss implementation may differ).
            let (out, dev, fused_loss) = (config.out.clone(), config.device.clone(), config.fused_loss);
            config = TrainConfig { out, device: dev, fused_loss, ..r.config.clone() };
            Some((dir.to_path_buf(), r))
        }
        None => None,
    };
    config.validate()?;
    ensure_writable(&config.out)?;
    let corpus = Corpus::open(&config.corpus)?;
    if corpus.len() < config.batch_size {
        return Err(Error::Data(format!(
            "corpus {} has {} sentences, fewer than one batch of {}: lower --batch-size",
            config.corpus.display(),
            corpus.len(),
            config.batch_size
        )));
    }
    if corpus.blank_lines > 0 {
        tracing::info!("corpus: {} sentences, {} blank lines skipped", corpus.len(), corpus.blank_lines);
    }
    let per_epoch = corpus.batches_per_epoch(config.batch_size) as u64;
    let total_steps = config.max_steps.unwrap_or(per_epoch * config.epochs as u64);
    let selected = device::select(config.device.parse::<DeviceSpec>()?)?;

    let model_dir = match &resumed {
        Some((dir, _)) => dir.clone(),
        None => config.model.clone(),
    };
    let start = SentenceEncoder::load(&model_dir, &selected.device)?;
    let mut tuner = FineTuner::new(&start, config.clone())?;
    drop(start);
    let mut state = TrainerState { step: 0, total_steps, best_dev: None, queue_stamps: vec![], queue_head: 0 };
    if let Some((dir, r)) = resumed {
        let optimizer_path = dir.join(super::checkpoint::OPTIMIZER_FILE);
        tuner = tuner
            .restore(r.state.step, r.optimizer, &r.queue)
            .map_err(|e| Error::CorruptWeights { path: optimizer_path, message: e.to_string() })?;
        state = r.state;
        tracing::info!("resuming from {} at step {}", dir.display(), state.step);
    }
    if tuner.objective().fused {
        tracing::info!("loss: fused WGSL kernels");
    }
    let warmup = (config.warmup_ratio * total_steps as f64).round() as u64;
    let dev_task: Option<Task> = match &config.eval_data {
        Some(dir) => Some(eval::load_task(dir, "STS-B-dev")?),
        None => None,
    };
    let last_dir = config.out.join("last");
    let best_dir = config.out.join("best");
    let mut log = MetricsLog::open(&config.out, state.step)?;
    observer.on_start(state.step, total_steps, &selected.description);
    if let (Some(task), 0) = (&dev_task, state.step) {
        // The start model's score: step 0 of the curves, the baseline of every later score.
        let enc = tuner.encoder();
        let score = eval::evaluate(std::slice::from_ref(task), |s| enc.embed(s))?[0].spearman;
        let e = EvalMetrics { step: 0, stsb_dev: score, best: false };
        log.eval(&e)?;
        observer.on_eval(&e);
    }
    let t0 = Instant::now();
    let mut history = Vec::new();
    let mut last_loss = f64::NAN;
    let n = config.batch_size;

    while state.step < total_steps {
        let step = state.step;
        let t_step = Instant::now();

        // --- batch: its position in the corpus derives from (seed, step) ---------------------
        let epoch = step / per_epoch;
        let indices = corpus.batch_indices(config.seed, epoch, (step % per_epoch) as usize, n);
        let texts = corpus.read(&indices)?;

        // --- the step (shared with `bench train` and the browser's fine-tune) -----------------
        let lr = learning_rate(config.lr, step, total_steps, warmup);
        let outcome = tuner.step(&texts, lr)?;
        // A CPU-GPU sync point: the loss is read every step to catch NaN before it is saved.
        let mut losses = outcome.read()?;
        // Tests of the NaN guard: `IFTCL_FAULT_NAN_AT_STEP=k` turns the loss of step k into NaN.
        if fault_at("NAN_AT_STEP", step + 1) {
            losses.total = f64::NAN;
        }
        if !losses.total.is_finite() {
            return Err(Error::Execution(format!(
                "the loss became {} at step {} (lr {lr:.3e}); training stopped, the last good checkpoint in {} is intact. \
                 Lower --lr or raise --temperature",
                losses.total,
                step + 1,
                last_dir.display()
            )));
        }
        state.step += 1;
        last_loss = losses.total;

        // --- log ----------------------------------------------------------------------------
        let m = StepMetrics {
            step: state.step,
            total_steps,
            loss: losses.total,
            nce: losses.nce,
            twins: losses.twins,
            lr,
            queue_used: outcome.queue_used,
            sentences_per_s: n as f64 / t_step.elapsed().as_secs_f64(),
            elapsed_s: t0.elapsed().as_secs_f64(),
        };
        if state.step % config.log_every.max(1) == 0 || state.step == total_steps {
            log.step(&m)?;
        }
        observer.on_step(&m);
        history.push(m);

        // --- eval + checkpoint ----------------------------------------------------------------
        let boundary = config.eval_every > 0 && state.step % config.eval_every == 0;
        if boundary || state.step == total_steps {
            if let Some(task) = &dev_task {
                let enc = tuner.encoder();
                let score = eval::evaluate(std::slice::from_ref(task), |s| enc.embed(s))?[0].spearman;
                let best = state.best_dev.is_none_or(|(b, _)| score > b);
                if best {
                    state.best_dev = Some((score, state.step));
                }
                let e = EvalMetrics { step: state.step, stsb_dev: score, best };
                log.eval(&e)?;
                observer.on_eval(&e);
                if best {
                    save_checkpoint(&tuner, &config, &state, false, &best_dir)?;
                }
            }
            save_checkpoint(&tuner, &config, &state, true, &last_dir)?;
            observer.on_checkpoint(&last_dir);
            log.write_curves()?;
        }
        // Tests of resume: `IFTCL_FAULT_ABORT_AFTER_STEP=k` ends the process abruptly (no
        // unwinding, no flush: as a kill would) once step k is done, at the same point every
        // time.
        if fault_at("ABORT_AFTER_STEP", state.step) {
            std::process::abort();
        }
    }
    if dev_task.is_none() && !best_dir.exists() && last_dir.exists() {
        // No evaluation: the last model is the best we know of.
        save_checkpoint(&tuner, &config, &state, false, &best_dir)?;
    }
    Ok(TrainSummary { steps: state.step, last_loss, best_dev: state.best_dev, last_dir, best_dir, history })
}
