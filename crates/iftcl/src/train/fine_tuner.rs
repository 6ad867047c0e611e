//! [`FineTuner`]: a model in training with its optimizer and queue, and the one IFTCL training
//! step that every front end runs (through [`super::driver::run_steps`]). It reads top
//! to bottom in the phases of a step: random streams, views, forward, loss, backward,
//! optimizer step, queue update.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::augment::{AugmentConfig, augment};
use super::config::TrainConfig;
use super::hippocampus::{Hippocampus, QueueState, sentence_key};
use super::objective::{LossParts, Objective};
use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::hash::mix;
use crate::hf_config::BertConfig;
use crate::model::{BertModel, FolderExtras, Head};
use crate::model::dropout::seed_dropout;
use crate::model::encode_grouped;
use crate::model::op_path::OpPath;
use crate::tokenize::TextTokenizer;

/// Length groups a step's rows are encoded in on the CPU (see [`encode_grouped`]). With packed
/// rows the groups save only attention work there: 1, 2 and 4 groups measured the same within
/// noise (`iftcl bench train --device cpu`). GPUs encode the step in one group: each group is a
/// whole forward and backward pass of its own, so four groups launch about four times the
/// kernels (`iftcl bench kernels --any-length`), while the padding one group adds (about a third
/// more tokens on a SentEval batch) is cheap at these sizes on a GPU.
const LENGTH_GROUPS: usize = 4;

/// Salt of the dropout stream, so that it differs from the augmentation stream of the same
/// (seed, step).
const DROPOUT_SALT: u64 = 0xd50;

/// IFTCL steps on sentences held in memory. Every random stream of a step derives from
/// (seed, step), so the same steps give the same weights, and a resumed run continues exactly.
pub struct FineTuner {
    model: BertModel,
    config: BertConfig,
    head: Head,
    /// The start folder's files kept for checkpoints (prompts, tokenizer companions).
    extras: FolderExtras,
    tokenizer: TextTokenizer,
    inference_tokenizer: TextTokenizer,
    optim: ModuleOptimizer,
    queue: Hippocampus,
    objective: Objective,
    augment: AugmentConfig,
    settings: TrainConfig,
    device: Device,
    step: u64,
}

/// One step's loss tensors (`[1]` each, not yet read: [`super::driver::read_losses`] reads them
/// in one go).
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// L.
    pub total: Tensor<1>,
    /// L_nce.
    pub nce: Tensor<1>,
    /// L_twins (absent for `infonce`).
    pub twins: Option<Tensor<1>>,
    /// Queue entries the step used as negatives.
    pub queue_used: usize,
}

/// One step's loss values, read from the device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    /// L.
    pub total: f64,
    /// L_nce.
    pub nce: f64,
    /// L_twins (absent for `infonce`).
    pub twins: Option<f64>,
}

/// The value of a one-element tensor (a CPU-GPU sync point).
pub(crate) fn scalar(t: Tensor<1>) -> Result<f64> {
    crate::host_reads::note();
    let v = t.try_into_vec_as::<f32>().map_err(Error::execution)?;
    v.first().map(|&x| f64::from(x)).ok_or_else(|| Error::Execution("an empty loss tensor".into()))
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
        // The trainer's optimizer and queue cover the transformer's weights and width only:
        // a model whose vectors pass through more modules is refused, not trained without them.
        if let Some(m) = encoder.head.modules.first() {
            return Err(Error::InvalidArgument(format!(
                "the model's modules.json lists a {} module after pooling (folder `{}`): training such a model is not supported \
                 (its weights would stay as they are, outside the optimizer); embed and eval run it",
                m.spec.kind_name(),
                m.spec.entry.path
            )));
        }
        let device = encoder.device().clone().autodiff();
        // A validation module moves onto the autodiff device once put in training mode.
        let model = encoder.model.clone().train().fork(&device).set_require_grad(true).train();
        let objective = settings.objective_on(&device, encoder.config.hidden_size)?;
        // Training inputs are never longer than the model's own inputs (its max_seq_length,
        // within what its position table covers).
        let max_len = settings.max_len.min(encoder.tokenizer.max_len());
        if max_len < settings.max_len {
            tracing::warn!("--max-len {} is longer than the model's max_seq_length: training truncates at {max_len} tokens", settings.max_len);
        }
        // The queue and (on the CPU) the step must fit in memory: refused here, before either is
        // allocated, rather than ended by the system's out-of-memory killer.
        if let Some(limit) = super::memory::physical_memory() {
            super::memory::check_fits(&settings, &encoder.config, settings.batch_size, max_len, *encoder.device() == Device::flex(), limit)?;
        }
        Ok(FineTuner {
            model,
            config: encoder.config.clone(),
            head: encoder.head.clone(),
            extras: encoder.extras.clone(),
            tokenizer: encoder.tokenizer.clone().with_max_len(max_len)?,
            inference_tokenizer: encoder.tokenizer.clone(),
            optim: AdamWConfig::new().with_weight_decay(settings.weight_decay as f32).with_epsilon(1e-8).init(),
            queue: Hippocampus::new(settings.queue_capacity(), encoder.config.hidden_size, &device),
            objective,
            augment: settings.augment(),
            settings,
            device,
            step: 0,
        })
    }

    /// Continues a run at `step` with the optimizer state and queue a checkpoint kept.
    pub fn restore(mut self, step: u64, optimizer: Bytes, queue: &QueueState) -> Result<Self> {
        self.optim = self.optim.from_bytes(optimizer).map_err(|e| Error::Execution(format!("optimizer state: {e:?}")))?;
        self.queue.restore(queue)?;
        self.step = step;
        Ok(self)
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// The settings this tuner was made with.
    pub fn settings(&self) -> &TrainConfig {
        &self.settings
    }

    /// The loss as this tuner computes it (fused kernels or plain ops, and its weights).
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// One step on `texts` (a batch) at learning rate `lr`: three views, loss, backward, AdamW
    /// update, queue update.
    pub fn step(&mut self, texts: &[String], lr: f64) -> Result<StepOutcome> {
        if texts.len() < 2 {
            return Err(Error::InvalidArgument(format!("a step needs at least 2 sentences (in-batch negatives), got {}", texts.len())));
        }
        let step = self.step;
        // --- random streams: everything derives from (seed, step) ------------------------------
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.settings.seed, step));
        seed_dropout(&self.device, mix(self.settings.seed ^ DROPOUT_SALT, step));

        // --- views + forward + loss -----------------------------------------------------------
        let keys: Vec<u64> = texts.iter().map(|t| sentence_key(t)).collect();
        let (parts, p, f, queue_used) = self.loss(texts, &keys, &mut rng, step)?;

        // --- backward + optimizer step --------------------------------------------------------
        let grads = GradientsParams::from_grads(parts.total.backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);

        // --- queue update: this step's twins become negatives for the next steps ----------------
        // (for batches without their sentences: each row keeps its sentence's key)
        if self.queue.capacity() > 0 {
            let (rows, row_keys) = match f {
                Some(f) => (Tensor::cat(vec![p, f], 0), [keys.as_slice(), keys.as_slice()].concat()),
                None => (p, keys),
            };
            self.queue.push(rows, &row_keys, step);
        }
        self.step += 1;
        Ok(StepOutcome { total: parts.total.detach(), nce: parts.nce.detach(), twins: parts.twins.map(|t| t.detach()), queue_used })
    }

    /// Views, forward and loss of one step: the anchor and identical twin share tokens (two
    /// copies in one pass), the fraternal twin is an augmented copy; the queue's fresh entries
    /// are extra negatives, except those of the batch's own sentences (`keys`). Returns the loss,
    /// the identical and fraternal twins (for the queue) and the queue entries used.
    fn loss(&self, texts: &[String], keys: &[u64], rng: &mut ChaCha8Rng, step: u64) -> Result<(LossParts, Tensor<2>, Option<Tensor<2>>, usize)> {
        let n = texts.len();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = self.tokenizer.encode_batch(&refs)?;
        let mut batch: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        batch.extend(ids.iter().map(Vec::as_slice));
        let (frat_ids, ratios) = if self.objective.needs_fraternal() {
            let augs: Vec<_> = texts.iter().map(|t| augment(t, &self.augment, rng)).collect();
            let aug_refs: Vec<&str> = augs.iter().map(|a| a.text.as_str()).collect();
            (self.tokenizer.encode_batch(&aug_refs)?, augs.iter().map(|a| a.ratio).collect::<Vec<f32>>())
        } else {
            (Vec::new(), vec![0.0; n])
        };
        batch.extend(frat_ids.iter().map(Vec::as_slice));

        // One pass over [anchors; identical twins; fraternal twins]. Dropout draws a different
        // mask per row, so the two copies of each sentence differ only by dropout noise, as two
        // separate passes would.
        let groups = if OpPath::for_device(&self.device).packs() { LENGTH_GROUPS } else { 1 };
        let emb = encode_grouped(&self.model, &self.head, &batch, &self.device, groups);
        let a = emb.clone().slice([0..n]);
        let p = emb.clone().slice([n..2 * n]);
        let f = self.objective.needs_fraternal().then(|| emb.clone().slice([2 * n..3 * n]));
        let ratio = Tensor::<1>::from_data(TensorData::new(ratios, [n]), &self.device);
        let (parts, used) = self.objective.loss(a, p.clone(), f.clone(), ratio, &self.queue, keys, step, self.settings.queue_max_age);
        Ok((parts, p, f, used))
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
        SentenceEncoder::from_parts(self.config.clone(), self.model.valid(), self.inference_tokenizer.clone(), self.head.clone(), self.extras.clone(), &inner)
    }

    /// The optimizer (for checkpoints).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }

    /// The queue's entries, stamps and sentence keys (for checkpoints).
    pub fn queue_state(&self) -> Result<QueueState> {
        self.queue.state()
    }
}
