//! Identical-twin InfoNCE with in-batch, other-fraternal and queue negatives.
//!
//! L_nce = -1/N Σ_i log( exp(s(a_i,p_i)/τ) / Z_i ),
//! Z_i = Σ_j exp(s(a_i,p_j)/τ) + Σ_{j≠i} exp(s(a_i,f_j)/τ) + Σ_{q∈Q} exp(s(a_i,q)/τ).
//! With no fraternal twins and no queue this is SimCSE's unsupervised loss.

use burn::tensor::{Bool, Int, Tensor};

/// Added to a logit to take it out of the softmax (exp underflows to exactly 0).
pub const MASKED: f64 = -1e9;

/// Row-wise log-sum-exp, max-subtracted so it is stable at small temperatures: `[n, m] -> [n]`.
pub fn log_sum_exp(x: Tensor<2>) -> Tensor<1> {
    let [n, _] = x.dims();
    let max = x.clone().max_dim(1).detach();
    ((x - max.clone()).exp().sum_dim(1).log() + max).reshape([n])
}

/// `[n, n]` boolean identity.
pub fn eye_mask(n: usize, device: &burn::tensor::Device) -> Tensor<2, Bool> {
    let idx = Tensor::<1, Int>::arange(0..n as i64, device);
    idx.clone().reshape([n, 1]).equal(idx.reshape([1, n]))
}

/// Logits `[N, 2N+K]` of each anchor against identical twins, fraternal twins (own fraternal
/// masked) and queue entries, already divided by τ.
pub fn logits(a: Tensor<2>, p: Tensor<2>, f: Option<Tensor<2>>, q: Option<Tensor<2>>, tau: f64) -> Tensor<2> {
    let [n, _] = a.dims();
    let device = a.device();
    let mut blocks = vec![a.clone().matmul(p.transpose())];
    if let Some(f) = f {
        blocks.push(a.clone().matmul(f.transpose()).mask_fill(eye_mask(n, &device), MASKED * tau));
    }
    if let Some(q) = q {
        if q.dims()[0] > 0 {
            blocks.push(a.matmul(q.transpose()));
        }
    }
    Tensor::cat(blocks, 1).div_scalar(tau)
}

/// The InfoNCE loss, a scalar tensor `[1]`.
///
/// - `a`, `p`: `[N, d]` anchors and identical twins (L2-normalised)
/// - `f`: optional `[N, d]` fraternal twins used as extra negatives (each anchor's own is masked)
/// - `q`: optional `[K, d]` queue entries (detached)
/// - `tau`: temperature
pub fn info_nce(a: Tensor<2>, p: Tensor<2>, f: Option<Tensor<2>>, q: Option<Tensor<2>>, tau: f64) -> Tensor<1> {
    let [n, _] = a.dims();
    let positive = (a.clone() * p.clone()).sum_dim(1).reshape([n]).div_scalar(tau);
    let lse = log_sum_exp(logits(a, p, f, q, tau));
    (lse - positive).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::reference::{self, Inputs};

    #[test]
    fn value_and_gradients_match_finite_differences() {
        for (seed, with_f, k, tau) in [(1u64, false, 0usize, 0.5), (2, true, 0, 0.2), (3, true, 5, 0.1), (4, false, 3, 0.05)] {
            let x = Inputs::random(seed, 4, 6, k);
            let (loss, grads) = reference::check_against_burn(&x, |a, p, f, q| {
                info_nce(a, p, with_f.then_some(f), (k > 0).then_some(q), tau)
            });
            let f64_loss = |x: &Inputs| reference::info_nce(x, with_f, k > 0, tau);
            reference::assert_close(loss, f64_loss(&x), 1e-4, "loss");
            reference::assert_grads_match(&x, &grads, f64_loss, 2e-3);
        }
    }

    #[test]
    fn stable_at_small_temperature() {
        let x = Inputs::random(7, 8, 16, 4);
        let (loss, _) = reference::check_against_burn(&x, |a, p, f, q| info_nce(a, p, Some(f), Some(q), 0.01));
        assert!(loss.is_finite());
        reference::assert_close(loss, reference::info_nce(&x, true, true, 0.01), 1e-3, "loss at tau 0.01");
    }
}
