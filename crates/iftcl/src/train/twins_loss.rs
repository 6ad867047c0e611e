//! The Twins Loss: margin preservation for fraternal twins.
//!
//! m_i = β r_i, target_i = stopgrad(s(a_i,p_i)) − m_i, and one of two forms:
//! - pull:      L = 1/N Σ_i max(0, target_i − s(a_i,f_i))²  (never pushes a twin away)
//! - two-sided: L = 1/N Σ_i (s(a_i,f_i) − target_i)²

use burn::tensor::Tensor;

pub use super::twins_form::TwinsForm;

/// The Twins Loss, a scalar tensor `[1]`.
///
/// - `a`, `p`, `f`: `[N, d]` anchors, identical twins, fraternal twins (L2-normalised)
/// - `ratio`: `[N]` edit ratios r_i of the fraternal twins
/// - `beta`: margin scale
pub fn twins_loss(a: Tensor<2>, p: Tensor<2>, f: Tensor<2>, ratio: Tensor<1>, beta: f64, form: TwinsForm) -> Tensor<1> {
    let [n, _] = a.dims();
    let s_ap = (a.clone() * p).sum_dim(1).reshape([n]).detach();
    let s_af = (a * f).sum_dim(1).reshape([n]);
    let target = s_ap - ratio.mul_scalar(beta);
    let gap = match form {
        TwinsForm::Pull => (target - s_af).clamp_min(0.0),
        TwinsForm::TwoSided => s_af - target,
    };
    gap.powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::reference::{self, Inputs};

    #[test]
    fn value_and_gradients_match_finite_differences() {
        for form in [TwinsForm::Pull, TwinsForm::TwoSided] {
            for (seed, beta) in [(11u64, 0.1), (12, 1.0), (13, 3.0)] {
                let x = Inputs::random(seed, 5, 6, 0);
                let r = x.ratio.clone();
                let (loss, grads) = reference::check_against_burn(&x, |a, p, f, _q| {
                    let dev = a.device();
                    let ratio = Tensor::<1>::from_data(burn::tensor::TensorData::new(r.clone(), [r.len()]), &dev);
                    twins_loss(a, p, f, ratio, beta, form)
                });
                let f64_loss = |x: &Inputs| reference::twins(x, beta, form);
                reference::assert_close(loss, f64_loss(&x), 1e-5, "loss");
                // The stop-gradient on s(a, p): the reference differentiates with s(a, p) frozen.
                reference::assert_grads_match(&x, &grads, |y: &Inputs| reference::twins_frozen(y, &x, beta, form), 2e-3);
            }
        }
    }

    #[test]
    fn pull_never_pushes_away() {
        // A fraternal twin already closer than its target has zero loss and zero gradient.
        let x = Inputs::identical(3, 4);
        let (loss, grads) = reference::check_against_burn(&x, |a, p, f, _q| {
            let dev = a.device();
            let ratio = Tensor::<1>::from_data(burn::tensor::TensorData::new(vec![0.5f32; 3], [3]), &dev);
            twins_loss(a, p, f, ratio, 0.1, TwinsForm::Pull)
        });
        assert_eq!(loss, 0.0);
        assert!(grads.iter().flatten().all(|g| *g == 0.0));
    }
}
