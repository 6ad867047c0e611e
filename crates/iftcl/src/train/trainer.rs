//! The IFTCL training loop. It reads top to bottom in the phases of one step: batch, views,
//! forward, loss, backward, step, schedule, queue update, eval, checkpoint, log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::augment::augment;
use super::checkpoint::{Checkpoint, TrainerState, load_resume};
use super::config::TrainConfig;
use super::data::{Corpus, mix};
use super::fused::{self, MaskedQueue};
use super::hippocampus::Hippocampus;
use super::metrics::MetricsLog;
use super::objective::Objective;
use crate::device::{self, DeviceSpec};
use crate::encoder::{SentenceEncoder, encode_bucketed};
use crate::error::{Error, Result};
use crate::eval::{self, Task};
use crate::model::dropout::seed_dropout;
use crate::model::BertModel;
use crate::tokenize::TextTokenizer;

/// One logged training step.
#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    /// Steps completed (1-based).
    pub step: u64,
    /// Total steps.
    pub total_steps: u64,
    /// L.
    pub loss: f64,
    /// L_nce.
    pub nce: f64,
    /// L_twins (twins loss only).
    pub twins: Option<f64>,
    /// Learning rate used by this step.
    pub lr: f64,
    /// Queue entries used as negatives.
    pub queue_used: usize,
    /// Sentences per second of this step (three views per sentence for twins).
    pub sentences_per_s: f64,
    /// Seconds since the run (or the resume) started.
    pub elapsed_s: f64,
}

/// One STS-B dev evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics {
    /// Steps completed.
    pub step: u64,
    /// STS-B dev Spearman × 100.
    pub stsb_dev: f64,
    /// Whether this is the best so far (saved to `best/`).
    pub best: bool,
}

/// Receives progress (the CLI draws a progress bar with it).
pub trait TrainObserver {
    /// The run starts at `start_step` of `total_steps`.
    fn on_start(&mut self, _start_step: u64, _total_steps: u64, _device: &str) {}
    /// A step finished.
    fn on_step(&mut self, _m: &StepMetrics) {}
    /// An evaluation finished.
    fn on_eval(&mut self, _e: &EvalMetrics) {}
    /// A checkpoint was written.
    fn on_checkpoint(&mut self, _dir: &Path) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;
impl TrainObserver for Quiet {}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: u64,
    /// Last loss.
    pub last_loss: f64,
    /// Best STS-B dev and its step.
    pub best_dev: Option<(f64, u64)>,
    /// Folder of the last checkpoint.
    pub last_dir: PathBuf,
    /// Folder of the best model (the last one when there was no evaluation).
    pub best_dir: PathBuf,
    /// Every step's metrics of this invocation.
    pub history: Vec<StepMetrics>,
}

/// Learning rate at `step` (0-based): linear warm-up over `warmup` steps, then linear decay to 0.
pub fn learning_rate(peak: f64, step: u64, total: u64, warmup: u64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total - step) as f64 / (total - warmup).max(1) as f64
    }
}

/// Fault injection for tests of the NaN guard: `IFTCL_FAULT_NAN_AT_STEP=k` turns the loss of
/// step k into NaN.
fn injected_nan(step: u64) -> bool {
    std::env::var("IFTCL_FAULT_NAN_AT_STEP").ok().and_then(|v| v.parse::<u64>().ok()) == Some(step)
}

fn ensure_writable(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io("create the output folder", out, e))?;
    let probe = out.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(|e| Error::io("write into the output folder", out, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io("write into the output folder", out, e))
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = t.try_into_vec_as::<f32>().map_err(|e| Error::Execution(format!("{e:?}")))?;
    Ok(v[0] as f64)
}

/// Length groups a step's rows are encoded in (see [`encode_bucketed`]): on a 2-core CPU,
/// batch 64, 32 tokens, a step of the three views went from 7.9 s (one group) to 4.6 s
/// (`iftcl bench train --device cpu`); 8 or 12 groups gave no more.
const LENGTH_BUCKETS: usize = 4;

/// What one step's loss needs besides the batch.
struct StepInputs<'a> {
    model: &'a BertModel,
    head: &'a crate::encoder::Head,
    tokenizer: &'a TextTokenizer,
    objective: &'a super::objective::Objective,
    augment: &'a super::augment::AugmentConfig,
}

/// One step's loss, and the twins the queue keeps afterwards.
struct StepLoss {
    parts: super::objective::LossParts,
    p: Tensor<2>,
    f: Option<Tensor<2>>,
    queue_used: usize,
}

/// Views, forward and loss of one step: the anchor and identical twin share tokens (two copies
/// in one pass), the fraternal twin is an augmented copy; the queue's fresh entries are extra
/// negatives.
#[allow(clippy::too_many_arguments)]
fn step_loss(
    x: &StepInputs<'_>,
    texts: &[String],
    rng: &mut ChaCha8Rng,
    queue: &Hippocampus,
    step: u64,
    max_age: u64,
    device: &Device,
) -> Result<StepLoss> {
    let n = texts.len();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = x.tokenizer.encode_batch(&refs)?;
    let mut batch: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    batch.extend(ids.iter().map(Vec::as_slice));
    let (frat_ids, ratios) = if x.objective.needs_fraternal() {
        let augs: Vec<_> = texts.iter().map(|t| augment(t, x.augment, rng)).collect();
        let aug_refs: Vec<&str> = augs.iter().map(|a| a.text.as_str()).collect();
        (x.tokenizer.encode_batch(&aug_refs)?, augs.iter().map(|a| a.ratio).collect::<Vec<f32>>())
    } else {
        (Vec::new(), vec![0.0; n])
    };
    batch.extend(frat_ids.iter().map(Vec::as_slice));

    // One pass over [anchors; identical twins; fraternal twins]. Dropout draws a different mask
    // per row, so the two copies of each sentence differ only by dropout noise, as two separate
    // passes would.
    let emb = encode_bucketed(x.model, x.head, &batch, device, LENGTH_BUCKETS);
    let a = emb.clone().slice([0..n]);
    let p = emb.clone().slice([n..2 * n]);
    let f = x.objective.needs_fraternal().then(|| emb.clone().slice([2 * n..3 * n]));

    let ratio = Tensor::<1>::from_data(TensorData::new(ratios, [n]), device);
    let (parts, queue_used) = if x.objective.fused {
        let (buffer, mask) = queue.buffer_and_mask(step, max_age);
        let used = mask.iter().filter(|&&m| m > 0.5).count();
        let masked = MaskedQueue::new(buffer, &mask);
        (x.objective.compute_fused(a, p.clone(), f.clone(), ratio, masked.as_ref()), used)
    } else {
        let negatives = queue.negatives(step, max_age);
        let used = negatives.as_ref().map_or(0, |q| q.dims()[0]);
        (x.objective.compute(a, p.clone(), f.clone(), ratio, negatives), used)
    };
    Ok(StepLoss { parts, p, f, queue_used })
}

/// Stores this step's identical (and fraternal) twins in the queue.
fn push_twins(queue: &mut Hippocampus, p: Tensor<2>, f: Option<Tensor<2>>, step: u64) {
    if queue.capacity() > 0 {
        let rows = match f {
            Some(f) => Tensor::cat(vec![p, f], 0),
            None => p,
        };
        queue.push(rows, step);
    }
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
    let infer_device = selected.device.clone();
    let train_device = selected.device.clone().autodiff();

    let model_dir = match &resumed {
        Some((dir, _)) => dir.clone(),
        None => config.model.clone(),
    };
    let start = SentenceEncoder::load(&model_dir, &train_device)?;
    let (bert_config, head) = (start.config.clone(), start.head);
    let eval_tokenizer = start.tokenizer.clone();
    let train_tokenizer: TextTokenizer = start.tokenizer.with_max_len(config.max_len)?;
    let mut model: BertModel = start.model.set_require_grad(true).train();
    let mut optim: ModuleOptimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_epsilon(1e-8)
        .init();
    let mut queue = Hippocampus::new(config.queue_capacity(), bert_config.hidden_size, &train_device);
    let mut state = TrainerState { step: 0, total_steps, best_dev: None, queue_stamps: vec![], queue_head: 0 };
    if let Some((dir, r)) = &resumed {
        optim = optim
            .from_bytes(r.optimizer.clone())
            .map_err(|e| Error::CorruptWeights { path: dir.join("optimizer.bpk"), message: format!("{e:?}") })?;
        queue.restore(&r.queue)?;
        state = r.state.clone();
        tracing::info!("resuming from {} at step {}", dir.display(), state.step);
    }
    let fused = config.fused_loss.resolve(fused::kernels_available(&train_device), bert_config.hidden_size)?;
    let objective = Objective { fused, ..config.objective() };
    if objective.fused {
        tracing::info!("loss: fused WGSL kernels");
    }
    let aug_config = config.augment();
    let warmup = (config.warmup_ratio * total_steps as f64).round() as u64;
    let dev_task: Option<Task> = match &config.eval_data {
        Some(dir) => Some(eval::load_task(dir, "STS-B-dev")?),
        None => None,
    };
    let last_dir = config.out.join("last");
    let best_dir = config.out.join("best");
    let mut log = MetricsLog::open(&config.out, state.step)?;
    observer.on_start(state.step, total_steps, &selected.description);
    let t0 = Instant::now();
    let mut history = Vec::new();
    let mut last_loss = f64::NAN;
    let n = config.batch_size;

    while state.step < total_steps {
        let step = state.step;
        let t_step = Instant::now();

        // --- batch: position and every random stream derive from (seed, step) ---------------
        let epoch = step / per_epoch;
        let indices = corpus.batch_indices(config.seed, epoch, (step % per_epoch) as usize, n);
        let texts = corpus.read(&indices)?;
        let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed, step));
        seed_dropout(&train_device, mix(config.seed ^ 0xd50_u64, step));

        // --- views + forward + loss (shared with `bench train`) --------------------------
        let StepLoss { parts, p, f, queue_used } = step_loss(
            &StepInputs { model: &model, head: &head, tokenizer: &train_tokenizer, objective: &objective, augment: &aug_config },
            &texts,
            &mut rng,
            &queue,
            step,
            config.queue_max_age,
            &train_device,
        )?;
        // A CPU-GPU sync point: the loss is read every step to catch NaN before it spreads.
        let mut loss = scalar(parts.total.clone())?;
        if injected_nan(step + 1) {
            loss = f64::NAN;
        }
        if !loss.is_finite() {
            return Err(Error::Execution(format!(
                "the loss became {loss} at step {} (lr {:.3e}); training stopped, the last good checkpoint in {} is intact. \
                 Lower --lr or raise --temperature",
                step + 1,
                learning_rate(config.lr, step, total_steps, warmup),
                last_dir.display()
            )));
        }
        let nce = scalar(parts.nce.clone())?;
        let twins = match parts.twins.clone() {
            Some(t) => Some(scalar(t)?),
            None => None,
        };

        // --- backward + step + schedule -----------------------------------------------------
        let lr = learning_rate(config.lr, step, total_steps, warmup);
        let grads = GradientsParams::from_grads(parts.total.backward(), &model);
        model = optim.step(lr, model, grads);

        // --- queue update: this step's twins become negatives for the next steps -----------
        push_twins(&mut queue, p, f, step);
        state.step += 1;
        last_loss = loss;

        // --- log ----------------------------------------------------------------------------
        let m = StepMetrics {
            step: state.step,
            total_steps,
            loss,
            nce,
            twins,
            lr,
            queue_used,
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
            let stamps = queue.state()?;
            state.queue_stamps = stamps.stamps.clone();
            state.queue_head = stamps.head;
            if let Some(task) = &dev_task {
                let eval_model = model.valid();
                let enc = SentenceEncoder::from_parts(bert_config.clone(), eval_model, eval_tokenizer.clone(), head, &infer_device);
                let score = eval::evaluate(std::slice::from_ref(task), |s| enc.embed(s))?[0].spearman;
                let best = state.best_dev.is_none_or(|(b, _)| score > b);
                if best {
                    state.best_dev = Some((score, state.step));
                }
                let e = EvalMetrics { step: state.step, stsb_dev: score, best };
                log.eval(&e)?;
                observer.on_eval(&e);
                if best {
                    save(&config, &model, &bert_config, head, &eval_tokenizer, None, &state, &stamps, &best_dir)?;
                }
            }
            save(&config, &model, &bert_config, head, &eval_tokenizer, Some(&optim), &state, &stamps, &last_dir)?;
            observer.on_checkpoint(&last_dir);
            log.write_curves()?;
        }
    }
    if dev_task.is_none() && !best_dir.exists() && last_dir.exists() {
        // No evaluation: the last model is the best we know of.
        let state = state.clone();
        let stamps = queue.state()?;
        save(&config, &model, &bert_config, head, &eval_tokenizer, None, &state, &stamps, &best_dir)?;
    }
    Ok(TrainSummary { steps: state.step, last_loss, best_dev: state.best_dev, last_dir, best_dir, history })
}

#[allow(clippy::too_many_arguments)]
fn save(
    config: &TrainConfig,
    model: &BertModel,
    bert_config: &crate::config::BertConfig,
    head: crate::encoder::Head,
    tokenizer: &TextTokenizer,
    optim: Option<&ModuleOptimizer>,
    state: &TrainerState,
    queue: &super::hippocampus::QueueState,
    dir: &Path,
) -> Result<()> {
    let model = model.valid();
    Checkpoint {
        model: &model,
        bert_config,
        head,
        max_seq_length: tokenizer.max_len(),
        tokenizer_json: tokenizer.json_bytes(),
        optimizer: optim,
        state,
        queue,
        config,
    }
    .save(dir)
}

/// IFTCL steps on sentences held in memory, without files, checkpoints or evaluation: what
/// `bench train` times and what the browser's `fineTune` runs. Every random stream derives from
/// (seed, step), as in [`train`].
pub struct FineTuner {
    model: BertModel,
    config: crate::config::BertConfig,
    head: crate::encoder::Head,
    tokenizer: TextTokenizer,
    inference_tokenizer: TextTokenizer,
    optim: ModuleOptimizer,
    queue: Hippocampus,
    objective: Objective,
    augment: super::augment::AugmentConfig,
    settings: TrainConfig,
    device: Device,
    step: u64,
}

/// One fine-tuning step's loss tensors (`[1]` each, not yet read: read them synchronously or,
/// on a browser's WebGPU device, with `into_data_async`).
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// L.
    pub total: Tensor<1>,
    /// L_nce.
    pub nce: Tensor<1>,
    /// L_twins (absent for `infonce`).
    pub twins: Option<Tensor<1>>,
}

impl std::fmt::Debug for FineTuner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FineTuner").field("step", &self.step).field("objective", &self.objective).field("device", &self.device).finish_non_exhaustive()
    }
}

impl FineTuner {
    /// Starts from `encoder` (its weights, tokenizer and head) with the loss, queue, batch and
    /// learning-rate settings of `settings` (its model, corpus and output paths are not used).
    pub fn new(encoder: &SentenceEncoder, settings: TrainConfig) -> Result<Self> {
        settings.validate_hyperparameters()?;
        let device = encoder.device().clone().autodiff();
        // A validation module moves onto the autodiff device once put in training mode.
        let model = encoder.model.clone().train().fork(&device).set_require_grad(true).train();
        let fused = settings.fused_loss.resolve(fused::kernels_available(&device), encoder.config.hidden_size)?;
        Ok(FineTuner {
            model,
            config: encoder.config.clone(),
            head: encoder.head,
            tokenizer: encoder.tokenizer.clone().with_max_len(settings.max_len)?,
            inference_tokenizer: encoder.tokenizer.clone(),
            optim: AdamWConfig::new().with_weight_decay(settings.weight_decay as f32).with_epsilon(1e-8).init(),
            queue: Hippocampus::new(settings.queue_capacity(), encoder.config.hidden_size, &device),
            objective: Objective { fused, ..settings.objective() },
            augment: settings.augment(),
            settings,
            device,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// The settings this tuner was made with.
    pub fn settings(&self) -> &TrainConfig {
        &self.settings
    }

    /// One step on `texts` (a batch) at learning rate `lr`: three views, loss, backward, AdamW
    /// update, queue update.
    pub fn step(&mut self, texts: &[String], lr: f64) -> Result<StepOutcome> {
        if texts.len() < 2 {
            return Err(Error::InvalidArgument(format!("a step needs at least 2 sentences (in-batch negatives), got {}", texts.len())));
        }
        let step = self.step;
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.settings.seed, step));
        seed_dropout(&self.device, mix(self.settings.seed ^ 0xd50_u64, step));
        let inputs = StepInputs { model: &self.model, head: &self.head, tokenizer: &self.tokenizer, objective: &self.objective, augment: &self.augment };
        let StepLoss { parts, p, f, .. } = step_loss(&inputs, texts, &mut rng, &self.queue, step, self.settings.queue_max_age, &self.device)?;
        let grads = GradientsParams::from_grads(parts.total.backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        push_twins(&mut self.queue, p, f, step);
        self.step += 1;
        Ok(StepOutcome { total: parts.total.detach(), nce: parts.nce.detach(), twins: parts.twins.map(|t| t.detach()) })
    }

    /// Σ |w| over every weight, as a one-element tensor on the device: finite exactly when every
    /// weight is. One small read-back checks a whole model (a device that computes NaN
    /// gradients can still report a finite loss for the step that broke the weights).
    pub fn weights_abs_sum(&self) -> Tensor<1> {
        struct AbsSum(Option<Tensor<1>>);
        impl ModuleVisitor for AbsSum {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let s = param.val().inner().abs().sum();
                self.0 = Some(match self.0.take() {
                    Some(acc) => acc + s,
                    None => s,
                });
            }
        }
        let mut sum = AbsSum(None);
        self.model.visit(&mut sum);
        sum.0.expect("an encoder has weights")
    }

    /// The model as it stands, as an inference encoder on the same device.
    pub fn encoder(&self) -> SentenceEncoder {
        let inner = self.device.clone().inner();
        SentenceEncoder::from_parts(self.config.clone(), self.model.valid(), self.inference_tokenizer.clone(), self.head, &inner)
    }
}

/// Sentences per second of training steps on `device` (median of `steps` timed steps after
/// `warmup` steps), three views per sentence for `twins`, two for `infonce`.
pub fn bench_train(
    encoder_dir: &Path,
    device: &Device,
    sentences: &[String],
    config: &TrainConfig,
    warmup: usize,
    steps: usize,
) -> Result<Vec<f64>> {
    let start = SentenceEncoder::load(encoder_dir, device)?;
    let mut tuner = FineTuner::new(&start, config.clone())?;
    let n = config.batch_size;
    let mut times = Vec::new();
    for step in 0..(warmup + steps) {
        let t = Instant::now();
        let texts: Vec<String> = (0..n).map(|i| sentences[(step * n + i) % sentences.len()].clone()).collect();
        let out = tuner.step(&texts, config.lr)?;
        // Synchronise so the step's device work is inside its time.
        scalar(out.total)?;
        if step >= warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}
