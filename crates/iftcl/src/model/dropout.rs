//! Dropout for training on the CPU backend.
//!
//! burn's dropout draws a Bernoulli tensor from its ChaCha generator one element at a time and
//! multiplies twice (a fourteenth of a CPU training step). Here the mask, already scaled by
//! 1/(1 − p), comes from a counter-based hash of (step seed, call number, element index) in one
//! pass the compiler vectorises, and is applied with one multiply. Nothing but the seed and a
//! call counter is kept, so a step's masks depend only on the seed the trainer sets for that step
//! ([`seed_dropout`]): resumed runs repeat them exactly. GPU devices keep burn's dropout (their
//! random numbers are drawn on the device).

use burn::nn::Dropout;
use burn::tensor::{Device, Tensor, TensorData};
use std::cell::Cell;

use super::op_path::OpPath;
use crate::hash::{fmix32, mix};

thread_local! {
    /// (seed of the current step, dropout calls made since it was set).
    static STREAM: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Seeds every dropout mask of the coming step: the device's generator (burn's dropout, on
/// GPUs) and the host stream (CPU training, this module).
pub fn seed_dropout(device: &Device, seed: u64) {
    device.seed(seed);
    STREAM.with(|s| s.set((seed, 0)));
}

fn next_key() -> u64 {
    STREAM.with(|s| {
        let (seed, calls) = s.get();
        s.set((seed, calls + 1));
        mix(seed, calls)
    })
}

/// `n` mask values for drop probability `prob` under `key`: 1/(1 − prob) with probability
/// 1 − prob, else 0.
pub fn keep_mask(key: u64, n: usize, prob: f64) -> Vec<f32> {
    assert!(n <= u32::MAX as usize, "dropout over {n} elements");
    let threshold = ((1.0 - prob) * 4_294_967_296.0) as u64;
    let scale = (1.0 / (1.0 - prob)) as f32;
    let (lo, hi) = (key as u32, (key >> 32) as u32);
    (0..n as u32)
        .map(|i| if (fmix32(fmix32(i ^ lo).wrapping_add(hi)) as u64) < threshold { scale } else { 0.0 })
        .collect()
}

/// `module`'s dropout of `x`: on the host stream when training on the CPU (`path` is
/// [`OpPath::HostAutodiff`]), burn's otherwise. Off outside training, as burn's.
pub fn dropout<const D: usize>(module: &Dropout, x: Tensor<D>, path: OpPath) -> Tensor<D> {
    if path != OpPath::HostAutodiff || module.prob == 0.0 || !module.training.is_enabled() {
        return module.forward(x);
    }
    let dims = x.dims();
    let device: Device = x.device();
    let mask = keep_mask(next_key(), x.shape().num_elements(), module.prob);
    x * Tensor::from_data(TensorData::new(mask, dims), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;

    #[test]
    fn masks_keep_the_right_share_and_scale() {
        for prob in [0.1, 0.5] {
            let mask = keep_mask(7, 1_000_000, prob);
            let kept = mask.iter().filter(|&&v| v != 0.0).count() as f64 / mask.len() as f64;
            assert!((kept - (1.0 - prob)).abs() < 2e-3, "p {prob}: kept {kept}");
            assert!(mask.iter().all(|&v| v == 0.0 || (v - (1.0 / (1.0 - prob)) as f32).abs() < 1e-6));
            // Mean of the scaled mask is 1, so dropout keeps the expectation.
            let mean = mask.iter().map(|&v| v as f64).sum::<f64>() / mask.len() as f64;
            assert!((mean - 1.0).abs() < 5e-3, "p {prob}: mean {mean}");
        }
    }

    #[test]
    fn masks_are_uncorrelated_across_keys_and_neighbours() {
        let (a, b) = (keep_mask(1, 200_000, 0.5), keep_mask(2, 200_000, 0.5));
        let both = a.iter().zip(&b).filter(|(x, y)| **x != 0.0 && **y != 0.0).count() as f64 / a.len() as f64;
        assert!((both - 0.25).abs() < 5e-3, "two keys agree too often: {both}");
        let next = a.windows(2).filter(|w| w[0] != 0.0 && w[1] != 0.0).count() as f64 / (a.len() - 1) as f64;
        assert!((next - 0.25).abs() < 5e-3, "neighbouring elements are correlated: {next}");
    }

    #[test]
    fn a_seeded_step_repeats_its_masks_and_the_gradient_is_the_mask() {
        let device = Device::flex().autodiff();
        let module = DropoutConfig::new(0.3).init();
        let x = || Tensor::<2>::ones([8, 64], &device).require_grad();
        let run = |seed| {
            seed_dropout(&device, seed);
            let (x1, x2) = (x(), x());
            let y1 = dropout(&module, x1.clone(), OpPath::HostAutodiff);
            let y2 = dropout(&module, x2, OpPath::HostAutodiff);
            let g = x1.grad(&y1.clone().sum().backward()).unwrap().try_into_vec_as::<f32>().unwrap();
            (y1.try_into_vec_as::<f32>().unwrap(), y2.try_into_vec_as::<f32>().unwrap(), g)
        };
        let (a1, a2, ga) = run(5);
        let (b1, b2, _) = run(5);
        let (c1, _, _) = run(6);
        assert_eq!((&a1, &a2), (&b1, &b2), "same seed, same masks");
        assert_ne!(a1, a2, "each call of a step draws a new mask");
        assert_ne!(a1, c1, "another step seed draws other masks");
        assert_eq!(ga, a1, "d(x·mask)/dx is the mask");
        // Outside training (an inference device) dropout is the identity.
        let plain = Tensor::<2>::ones([2, 3], &Device::flex());
        assert_eq!(dropout(&module, plain.clone(), OpPath::Host).try_into_vec_as::<f32>().unwrap(), vec![1.0; 6]);
    }
}
