//! The training objective: which terms make up the loss (docs/method.md).
//!
//! - `infonce` (SimCSE): L = L_nce(a, p, [queue if asked]).
//! - `twins` (IFTCL): L = L_nce(a, p, f, queue) + λ L_twins(a, p, f, r).

use std::str::FromStr;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

#[cfg(feature = "gpu")]
use super::fused::{MaskedQueue, fused_terms};
use super::hippocampus::Hippocampus;
use super::info_nce::info_nce;
use super::twins_form::TwinsForm;
use super::twins_loss::twins_loss;

/// Which objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// SimCSE: identical-twin InfoNCE, no fraternal twins (queue only when asked).
    Infonce,
    /// IFTCL: InfoNCE with fraternal and queue negatives, plus the Twins Loss.
    #[default]
    Twins,
}

impl FromStr for LossKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "infonce" => Ok(LossKind::Infonce),
            "twins" => Ok(LossKind::Twins),
            other => Err(format!("`{other}` is not a loss (infonce, twins)")),
        }
    }
}

/// The loss hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// Which terms.
    pub kind: LossKind,
    /// Temperature τ.
    pub temperature: f64,
    /// λ, the Twins Loss weight.
    pub twins_weight: f64,
    /// β, the margin scale.
    pub margin_scale: f64,
    /// Twins Loss form.
    pub twins_form: TwinsForm,
    /// Run the loss as the fused WGSL kernels (wgpu devices only; see `fused`). Ignored in a
    /// build without the `gpu` feature, which has no kernels (the plain loss runs).
    pub fused: bool,
}

/// The loss and its parts.
#[derive(Debug, Clone)]
pub struct LossParts {
    /// L, the scalar to differentiate `[1]`.
    pub total: Tensor<1>,
    /// L_nce `[1]`.
    pub nce: Tensor<1>,
    /// L_twins `[1]` (absent for `infonce`).
    pub twins: Option<Tensor<1>>,
}

impl Objective {
    /// The loss of a training step and the number of queue entries it used as negatives: the
    /// fresh entries of `queue` (at most `max_age` steps old at `step`) are extra negatives,
    /// except those of the batch's own sentences (`batch_keys`: the [`sentence_key`] of each
    /// anchor). Runs the fused kernels when `self.fused` (the whole ring buffer, the other slots
    /// masked in the kernel), the plain burn-ops loss otherwise (the usable entries gathered).
    ///
    /// [`sentence_key`]: super::hippocampus::sentence_key
    #[allow(clippy::too_many_arguments)]
    pub fn loss(&self, a: Tensor<2>, p: Tensor<2>, f: Option<Tensor<2>>, ratio: Tensor<1>, queue: &Hippocampus, batch_keys: &[u64], step: u64, max_age: u64) -> (LossParts, usize) {
        #[cfg(feature = "gpu")]
        if self.fused {
            let (buffer, mask) = queue.buffer_and_mask(step, max_age, batch_keys);
            let used = mask.iter().filter(|&&m| m > 0.5).count();
            let masked = MaskedQueue::new(buffer, &mask);
            return (self.compute_fused(a, p, f, ratio, masked.as_ref()), used);
        }
        let negatives = queue.negatives(step, max_age, batch_keys);
        let used = negatives.as_ref().map_or(0, |q| q.dims()[0]);
        (self.compute(a, p, f, ratio, negatives), used)
    }

    /// Whether the fraternal view is computed at all.
    pub fn needs_fraternal(&self) -> bool {
        self.kind == LossKind::Twins
    }

    /// The loss from embeddings (not the model), so it can be tested on hand-made tensors.
    ///
    /// - `a`, `p`: `[N, d]`; `f`: `[N, d]` (ignored for `infonce`); `ratio`: `[N]`;
    ///   `queue`: `[K, d]` detached fresh entries.
    pub fn compute(&self, a: Tensor<2>, p: Tensor<2>, f: Option<Tensor<2>>, ratio: Tensor<1>, queue: Option<Tensor<2>>) -> LossParts {
        match (self.kind, f) {
            (LossKind::Twins, Some(f)) => {
                let nce = info_nce(a.clone(), p.clone(), Some(f.clone()), queue, self.temperature);
                let twins = twins_loss(a, p, f, ratio, self.margin_scale, self.twins_form);
                let total = if self.twins_weight == 0.0 { nce.clone() } else { nce.clone() + twins.clone().mul_scalar(self.twins_weight) };
                LossParts { total, nce, twins: Some(twins) }
            }
            _ => {
                let nce = info_nce(a, p, None, queue, self.temperature);
                LossParts { total: nce.clone(), nce, twins: None }
            }
        }
    }

    /// The same loss from the fused kernels (wgpu devices): the queue is the whole ring
    /// buffer with its stale slots masked in the kernel instead of gathered.
    #[cfg(feature = "gpu")]
    pub fn compute_fused(&self, a: Tensor<2>, p: Tensor<2>, f: Option<Tensor<2>>, ratio: Tensor<1>, queue: Option<&MaskedQueue>) -> LossParts {
        let f = if self.kind == LossKind::Twins { f } else { None };
        let with_twins = f.is_some();
        let terms = fused_terms(a, p, f, ratio, queue, self.temperature, self.margin_scale, self.twins_form == TwinsForm::TwoSided);
        let nce = terms.clone().slice([0..1]);
        if !with_twins {
            return LossParts { total: nce.clone(), nce, twins: None };
        }
        let twins = terms.slice([1..2]);
        let total = if self.twins_weight == 0.0 { nce.clone() } else { nce.clone() + twins.clone().mul_scalar(self.twins_weight) };
        LossParts { total, nce, twins: Some(twins) }
    }
}
