//! `iftcl train`: set-up (output folder, resume, corpus, device, model), then the steps of
//! [`run_steps`] (the loop every front end shares) with logging, evaluation and checkpoints
//! after each.

use std::path::Path;

use web_time::Instant;

use super::checkpoint::{STATE_FILE, TrainerState, load_resume};
use super::checkpointer::Checkpointer;
use super::config::TrainConfig;
use super::data::Corpus;
use super::driver::{Batches, Ended, Schedule, StepHooks, StepReport, run_steps};
use super::fine_tuner::FineTuner;
use super::metrics::{EvalMetrics, MetricsLog, StepMetrics, TrainObserver, TrainSummary};
use super::out_dir::OutputFolder;
use super::resume_check;
use crate::device::{self, DeviceSpec};
use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::eval::{self, Task};

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

    // --- the steps: the loop every front end shares, with logging, evaluation and checkpoints
    // after each step ----------------------------------------------------------------------------
    let batches = Batches::Corpus { corpus: &corpus, seed: config.seed, batch: config.batch_size };
    let schedule = Schedule::WarmupLinear { peak: config.lr, total: total_steps, warmup };
    let mut around = AroundSteps {
        config: &config,
        total_steps,
        state,
        log,
        checkpoints,
        observer,
        dev_task: dev_task.as_ref(),
        started: Instant::now(),
        history: Vec::new(),
        last_loss: f64::NAN,
    };
    match pollster::block_on(run_steps(&mut tuner, &batches, &schedule, total_steps, &mut around))? {
        Ended::Completed => {}
        Ended::Diverged { step, lr, what } => return Err(around.checkpoints.stop(step, lr, &what)),
        Ended::Cancelled { done } => return Err(Error::Cancelled(format!("after {done} steps"))),
    }
    let AroundSteps { state, checkpoints, history, last_loss, .. } = around;
    drop(folder);
    let Checkpointer { last_dir, best_dir, .. } = checkpoints;
    Ok(TrainSummary { steps: state.step, last_loss, best_dev: state.best_dev, last_dir, best_dir, history })
}

/// The step of the checkpoint in `dir`, if there is a readable one.
fn checkpoint_step(dir: &Path) -> Option<u64> {
    crate::hf_config::read_json::<TrainerState>(&dir.join(STATE_FILE)).ok().map(|s| s.step)
}

/// What `iftcl train` does after each step: log it, tell the observer, and at evaluation
/// boundaries (and after the last step) evaluate and write checkpoints, only from a sound model.
struct AroundSteps<'a> {
    config: &'a TrainConfig,
    total_steps: u64,
    state: TrainerState,
    log: MetricsLog,
    checkpoints: Checkpointer,
    observer: &'a mut dyn TrainObserver,
    dev_task: Option<&'a Task>,
    started: Instant,
    history: Vec<StepMetrics>,
    last_loss: f64,
}

impl StepHooks for AroundSteps<'_> {
    async fn proceed(&mut self, _step: u64) -> bool {
        true
    }

    fn after_step(&mut self, tuner: &FineTuner, texts: &[String], r: &StepReport) -> Result<()> {
        let (config, total_steps) = (self.config, self.total_steps);
        self.state.step = r.step;
        self.last_loss = r.losses.total;

        // --- log ------------------------------------------------------------------------------
        let m = StepMetrics {
            step: r.step,
            total_steps,
            loss: r.losses.total,
            nce: r.losses.nce,
            twins: r.losses.twins,
            lr: r.lr,
            queue_used: r.queue_used,
            sentences_per_s: config.batch_size as f64 / r.seconds,
            elapsed_s: self.started.elapsed().as_secs_f64(),
        };
        if r.step % config.log_every.max(1) == 0 || r.step == total_steps {
            self.log.step(&m)?;
        }
        self.observer.on_step(&m);
        self.history.push(m);

        // --- eval + checkpoint: only from a sound model ----------------------------------------
        let boundary = config.eval_every > 0 && r.step % config.eval_every == 0;
        if boundary || r.step == total_steps {
            if let Some(why) = self.checkpoints.unsound(tuner, texts)? {
                return Err(self.checkpoints.stop(r.step, r.lr, &why));
            }
            // Without evaluation (in this run and before its resume) the last model is the best
            // known: best/ is written with every checkpoint, before last/, so that both are this
            // run's from its first checkpoint on and a kill between them leaves a resumable state.
            let mut best = self.dev_task.is_none() && self.state.best_dev.is_none();
            if let Some(task) = self.dev_task {
                let enc = tuner.encoder();
                let score = eval::evaluate(std::slice::from_ref(task), |s| enc.embed(s))?[0].spearman;
                best = self.state.best_dev.is_none_or(|(b, _)| score > b);
                if best {
                    self.state.best_dev = Some((score, r.step));
                }
                let e = EvalMetrics { step: r.step, stsb_dev: score, best };
                self.log.eval(&e)?;
                self.observer.on_eval(&e);
            }
            self.checkpoints.write(tuner, config, &self.state, best, true)?;
            self.observer.on_checkpoint(&self.checkpoints.last_dir);
            self.log.write_curves()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu_device;
    use crate::test_fixtures::{Scratch, sentences, tiny_model_dir};
    use crate::train::Quiet;
    use crate::train::driver::fault;

    #[test]
    fn a_nan_loss_stops_the_run_with_the_last_good_checkpoint_intact() {
        let t = Scratch::new("nan");
        let corpus = t.0.join("corpus.txt");
        std::fs::write(&corpus, sentences(40).join("\n")).unwrap();
        let out = t.0.join("out");
        let config = TrainConfig {
            model: tiny_model_dir("bert-cls-normalize"),
            corpus,
            out: out.clone(),
            device: "cpu".into(),
            batch_size: 4,
            max_len: 16,
            max_steps: Some(8),
            eval_every: 2,
            seed: 7,
            queue_size: Some(16),
            ..TrainConfig::default()
        };
        fault::nan_at_step(Some(5));
        let result = train(config, None, &mut Quiet);
        fault::nan_at_step(None);
        let e = result.expect_err("a NaN loss stops the run").to_string();
        let newest = format!("the newest good checkpoint is {} (step 4), intact", out.join("last").display());
        assert!(e.contains("the loss became NaN at step 5 (lr 5.000e-6)") && e.contains(&newest), "{e}");
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("last/trainer_state.json")).unwrap()).unwrap();
        assert_eq!(state["step"], 4, "the checkpoint of step 4 is the last one written");
        SentenceEncoder::load(&out.join("last"), &cpu_device().device).expect("the last checkpoint loads");
        let steps = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().filter(|l| l.contains("\"kind\":\"step\"")).count();
        assert_eq!(steps, 4, "steps 1..4 are logged, the NaN step is not");
    }
}
