//! GELU: exact (erf) for CPU inference, and the forms training on a GPU differentiates.
//!
//! burn's CPU backend evaluates GELU one element at a time through libm's `erff`, which took a
//! fifth of an inference pass. Here erf is a rational function the compiler vectorises:
//! erf(x) ≈ x·P(x²)/Q(x²) on x clamped to [-4, 4] (beyond that erf is ±1 in f32), with
//! degree-6 and degree-4 polynomials in x² (the minimax fit used by Eigen and XLA for f32);
//! its largest error is 7e-8 against the true erf. Training on the CPU keeps burn's op, whose
//! backward autodiff knows.
//!
//! Training on a GPU uses [`gelu_composed`] / [`gelu_tanh_composed`] instead of burn's ops:
//! burn's generic GELU backward (what the wgpu backend runs) is the derivative of the tanh
//! approximation, and on browser WebGPU (SwiftShader) it returns NaN for large inputs (|x| ≤ 24
//! was enough in `Encoder.checkDevice()`). MiniLM's layer-3 feed-forward has such an input: one
//! NaN gradient row there spread to every weight below it on the first fine-tune step.

use burn::tensor::{Tensor, TensorData};

const ALPHA: [f32; 7] = [
    -2.726_142_2e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_599_8e-3,
    -1.609_603_3e-2,
];
const BETA: [f32; 5] = [-1.456_607_2e-5, -2.133_740_6e-4, -1.682_827e-3, -7.373_329_2e-3, -1.426_474e-2];

/// erf(x), absolute error below 1e-6 in f32.
#[inline]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().fold(0.0f32, |acc, &c| acc * x2 + c);
    let q = BETA.iter().fold(0.0f32, |acc, &c| acc * x2 + c);
    x * p / q
}

/// GELU(x) = x·Φ(x) = ½x(1 + erf(x/√2)).
#[inline]
pub fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU of a tensor on the host (for a device whose memory is host memory).
pub fn gelu_host<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let dims = x.dims();
    let device = x.device();
    let mut values = x.try_into_vec_as::<f32>().expect("reading a CPU tensor cannot fail");
    for v in values.iter_mut() {
        *v = gelu_scalar(*v);
    }
    Tensor::from_data(TensorData::new(values, dims), &device)
}

/// Exact GELU, ½x(1 + erf(x/√2)), as tensor ops: autodiff differentiates erf (2/√π·e^(−z²),
/// finite for every input) and the products, giving the exact derivative on any backend.
pub fn gelu_composed<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cdf = x.clone().mul_scalar(std::f64::consts::FRAC_1_SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5);
    x * cdf
}

/// The tanh GELU, ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as tensor ops, with tanh's argument
/// clamped to [−15, 15] (tanh is ±1 in f32 beyond ±9; some GPU compilers' tanh is NaN far out).
pub fn gelu_tanh_composed<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let inner = (x.clone() + x.clone().powi_scalar(3).mul_scalar(0.044_715)).mul_scalar((2.0 / std::f64::consts::PI).sqrt());
    let cdf = inner.clamp(-15.0, 15.0).tanh().add_scalar(1.0).mul_scalar(0.5);
    x * cdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use burn::tensor::activation::gelu;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [(0.0f32, 0.0f32), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.0, 0.999_977_9), (9.0, 1.0)] {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {} vs {want}", erf(x));
        }
    }

    #[test]
    fn host_gelu_matches_burns_gelu() {
        let device = Device::flex();
        let values: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) / 250.0).collect();
        let t = Tensor::<2>::from_data(TensorData::new(values.clone(), [1, values.len()]), &device);
        let a = gelu_host(t.clone()).try_into_vec_as::<f32>().unwrap();
        let b = gelu(t).try_into_vec_as::<f32>().unwrap();
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 2e-6, "largest difference {worst}");
    }

    #[test]
    fn every_activation_path_gives_the_same_values() {
        use crate::model::bert::{ActivationPath, activation_with};
        let device = Device::flex();
        assert_eq!(ActivationPath::for_device(&device), ActivationPath::Host);
        assert_eq!(ActivationPath::for_device(&device.clone().autodiff()), ActivationPath::Burn);
        let values: Vec<f32> = (0..801).map(|i| (i as f32 - 400.0) / 20.0).collect();
        let t = Tensor::<2>::from_data(TensorData::new(values.clone(), [1, values.len()]), &device);
        for act in [0, 1] {
            let burn = activation_with(t.clone(), act, ActivationPath::Burn).try_into_vec_as::<f32>().unwrap();
            for path in [ActivationPath::Host, ActivationPath::Composed] {
                // The host path has only the exact GELU; for the tanh form it falls back to burn's.
                let got = activation_with(t.clone(), act, path).try_into_vec_as::<f32>().unwrap();
                let worst = got.iter().zip(&burn).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(worst < 2e-5, "act {act}, {path:?}: largest difference {worst}");
            }
        }
    }
}
