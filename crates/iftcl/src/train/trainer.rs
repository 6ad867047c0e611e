//! `iftcl train`: set-up (output folder, resume, corpus, device, model), then a loop over the
//! same step the [`FineTuner`] runs, with logging, evaluation and checkpoints around it.

use std::path::Path;
use std::time::Instant;

use super::checkpoint::{STATE_FILE, TrainerState, load_resume};
use super::checkpointer::Checkpointer;
use super::config::TrainConfig;
use super::data::Corpus;
use super::fine_tuner::FineTuner;
use super::metrics::{EvalMetrics, MetricsLog, StepMetrics, TrainObserver, TrainSummary};
use super::out_dir::OutputFolder;
use super::resume_check;
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

/// Trains per `config`, resuming from `resume` (a checkpoint folder) when given.
///
/// The output folder belongs to this run alone while it lasts (another run into it is refused,
/// naming it) and must not hold another run's checkpoints unless `config.overwrite`. A resumed
/// run keeps the checkpoint's settings (start from [`super::checkpoint::read_config`]): only
/// those of [`resume_check::MAY_CHANGE`] may differ. Checkpoints are written only from a model
/// that computes finite embeddings.
pub fn train(config: TrainConfig, resume: Option<&Path>, observer: &mut dyn TrainObserver) -> Result<TrainSummary> {
    // --- set-up: every input is read and checked before anything in the output folder changes
    config.validate()?;
    let folder = OutputFolder::open(&config.out)?;
    let eval_data = config.eval_data.as_deref();
    let model_input = if resume.is_some() { None } else { Some(("--model", config.model.as_path())) };
    let inputs: Vec<(&str, &Path)> = model_input
        .into_iter()
        .chain([("--corpus", config.corpus.as_path())])
        .chain(eval_data.map(|d| ("--eval-data", d)))
        .chain(resume.map(|r| ("--resume", r)))
        .collect();
    folder.check_inputs(&inputs, resume)?;
    let resumed = match resume {
        Some(dir) => {
            let r = load_resume(dir)?;
            resume_check::check_config(dir, &r.config, &config)?;
            Some((dir.to_path_buf(), r))
        }
        None => None,
    };
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
    let total_steps = match config.max_steps {
        Some(m) => m,
        None => per_epoch.checked_mul(config.epochs as u64).ok_or_else(|| {
            Error::InvalidArgument(format!("epochs: {} passes of {per_epoch} steps are more steps than can be counted; use --max-steps", config.epochs))
        })?,
    };
    let selected = device::select(config.device.parse::<DeviceSpec>()?)?;

    let model_dir = match &resumed {
        Some((dir, _)) => dir.clone(),
        None => config.model.clone(),
    };
    let start = SentenceEncoder::load(&model_dir, &selected.device)?;
    let dev_task: Option<Task> = match eval_data {
        Some(dir) => Some(eval::load_task(dir, "STS-B-dev")?),
        None => None,
    };
    let mut tuner = FineTuner::new(&start, config.clone())?;
    // Only now, with every input good, may the run take the folder over (nothing is removed:
    // another run's checkpoints stay until this run writes its own).
    folder.claim(resume, config.overwrite)?;
    let mut state = TrainerState { step: 0, total_steps, best_dev: None, queue_stamps: vec![], queue_head: 0, corpus: Some(corpus.identity().clone()) };
    let mut checkpoints = Checkpointer::new(&folder, None);
    if let Some((dir, r)) = resumed {
        resume_check::check_parts(&dir, &r, &start)?;
        resume_check::check_corpus(&dir, r.state.corpus.as_ref(), &config.corpus, corpus.identity(), config.allow_corpus_change)?;
        let finished = r.state.step >= total_steps;
        // A run without evaluation writes best/ with each checkpoint, before last/; a best/
        // missing or behind a finished last/ (a kill during the final write of an older
        // version) is completed from it rather than declared done.
        let best_behind = finished && r.state.best_dev.is_none() && checkpoint_step(&checkpoints.best_dir) != Some(r.state.step);
        if finished && !best_behind {
            return Err(Error::Checkpoint {
                path: dir,
                message: format!("the run is already at step {} of {total_steps}: nothing to do (a larger --max-steps continues it)", r.state.step),
            });
        }
        if total_steps != r.state.total_steps && !finished {
            tracing::warn!("the schedule now spans {total_steps} steps instead of {}: the learning rate of the steps after {} follows it", r.state.total_steps, r.state.step);
        }
        tuner = tuner.restore(r.state.step, r.optimizer, &r.queue)?;
        state = TrainerState { total_steps: total_steps.max(r.state.step), corpus: state.corpus, ..r.state };
        checkpoints = Checkpointer::new(&folder, Some((dir.clone(), state.step)));
        if best_behind {
            checkpoints.write(&tuner, &config, &state, true, false)?;
            tracing::warn!("{} was missing or behind {} (step {}): written from it", checkpoints.best_dir.display(), dir.display(), state.step);
            let Checkpointer { last_dir, best_dir, .. } = checkpoints;
            return Ok(TrainSummary { steps: state.step, last_loss: f64::NAN, best_dev: None, last_dir, best_dir, history: Vec::new() });
        }
        tracing::info!("resuming from {} at step {}", dir.display(), state.step);
    }
    drop(start);
    if tuner.objective().fused {
        tracing::info!("loss: fused WGSL kernels");
    }
    let warmup = (config.warmup_ratio * total_steps as f64).round() as u64;
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
            return Err(checkpoints.stop(step + 1, lr, &format!("the loss became {}", losses.total)));
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

        // --- eval + checkpoint: only from a sound model ----------------------------------------
        let boundary = config.eval_every > 0 && state.step % config.eval_every == 0;
        if boundary || state.step == total_steps {
            if let Some(why) = checkpoints.unsound(&tuner, &texts)? {
                return Err(checkpoints.stop(state.step, lr, &why));
            }
            // Without evaluation (in this run and before its resume) the last model is the best
            // known: best/ is written with every checkpoint, before last/, so that both are this
            // run's from its first checkpoint on and a kill between them leaves a resumable state.
            let mut best = dev_task.is_none() && state.best_dev.is_none();
            if let Some(task) = &dev_task {
                let enc = tuner.encoder();
                let score = eval::evaluate(std::slice::from_ref(task), |s| enc.embed(s))?[0].spearman;
                best = state.best_dev.is_none_or(|(b, _)| score > b);
                if best {
                    state.best_dev = Some((score, state.step));
                }
                let e = EvalMetrics { step: state.step, stsb_dev: score, best };
                log.eval(&e)?;
                observer.on_eval(&e);
            }
            checkpoints.write(&tuner, &config, &state, best, true)?;
            observer.on_checkpoint(&checkpoints.last_dir);
            log.write_curves()?;
        }
        // Tests of resume: `IFTCL_FAULT_ABORT_AFTER_STEP=k` ends the process abruptly (no
        // unwinding, no flush: as a kill would) once step k is done, at the same point every
        // time.
        if fault_at("ABORT_AFTER_STEP", state.step) {
            std::process::abort();
        }
    }
    drop(folder);
    let Checkpointer { last_dir, best_dir, .. } = checkpoints;
    Ok(TrainSummary { steps: state.step, last_loss, best_dev: state.best_dev, last_dir, best_dir, history })
}

/// The step of the checkpoint in `dir`, if there is a readable one.
fn checkpoint_step(dir: &Path) -> Option<u64> {
    crate::hf_config::read_json::<TrainerState>(&dir.join(STATE_FILE)).ok().map(|s| s.step)
}
