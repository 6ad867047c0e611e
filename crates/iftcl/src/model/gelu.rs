//! GELU: exact (erf) for CPU inference, and the forms training on a GPU differentiates.
//!
//! burn's CPU backend evaluates GELU one element at a time through libm's `erff`, which took a
//! fifth of an inference pass. Here erf is a rational function the compiler vectorises:
//! erf(x) ≈ x·P(x²)/Q(x²) on x clamped to [-4, 4] (beyond that erf is ±1 in f32), with
//! degree-6 and degree-4 polynomials in x² (the minimax fit used by Eigen and XLA for f32);
//! its largest error is 7e-8 against the true erf. Training on the CPU uses the same erf and a
//! vectorised exp for the derivative ([`gelu_host_autodiff`]).
//!
//! Training on a GPU uses [`gelu_composed`] / [`gelu_tanh_composed`] instead of burn's ops:
//! burn's generic GELU backward (what the wgpu backend runs) is the derivative of the tanh
//! approximation, and on browser WebGPU (SwiftShader) it returns NaN for large inputs (|x| ≤ 24
//! was enough in `Encoder.checkDevice()`). MiniLM's layer-3 feed-forward has such an input: one
//! NaN gradient row there spread to every weight below it on the first fine-tune step.

use burn::tensor::{Device, Tensor, TensorData};

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

/// e^a for a ≤ 0 (a below −87 gives about 1e-38), relative error about 2e-7, in a form the
/// compiler vectorises: a = n·ln2 + r with |r| ≤ ½ln2, e^r by its degree-7 Taylor polynomial,
/// 2^n from the exponent bits.
#[inline]
fn exp_nonpositive(a: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let a = a.clamp(-87.0, 0.0);
    let n = (a * std::f32::consts::LOG2_E + SHIFTER) - SHIFTER;
    let r = a - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0].iter().fold(0.0f32, |acc, &c| acc * r + c);
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// GELU(x) and its derivative Φ(x) + x·φ(x).
#[inline]
pub fn gelu_and_derivative(x: f32) -> (f32, f32) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = INV_SQRT_2PI * exp_nonpositive(-0.5 * x * x);
    (x * cdf, cdf + x * pdf)
}

/// Exact GELU for training on the CPU: the values and the derivative are computed on the host
/// in one vectorised pass, and the result is `(x − detach(x))·GELU'(x) + GELU(x)`, whose value
/// is GELU(x) (the first term is exactly zero) and whose gradient autodiff takes as
/// GELU'(x)·upstream. burn's CPU GELU calls libm's `erff` per element forward and backward
/// (a tenth of a training step).
pub fn gelu_host_autodiff<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let (values, dims, device) = host_values(x.clone());
    let mut value = vec![0.0f32; values.len()];
    let mut slope = vec![0.0f32; values.len()];
    for ((v, y), d) in values.iter().zip(value.iter_mut()).zip(slope.iter_mut()) {
        (*y, *d) = gelu_and_derivative(*v);
    }
    let (value, slope) = (from_host(value, dims, &device), from_host(slope, dims, &device));
    (x.clone() - x.detach()) * slope + value
}

/// GELU of a tensor on the host (for a device whose memory is host memory).
pub fn gelu_host<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let (mut values, dims, device) = host_values(x);
    for v in values.iter_mut() {
        *v = gelu_scalar(*v);
    }
    from_host(values, dims, &device)
}

/// The values, shape and device of a tensor on a device whose memory is host memory.
fn host_values<const D: usize>(x: Tensor<D>) -> (Vec<f32>, [usize; D], Device) {
    let (dims, device) = (x.dims(), x.device());
    (x.try_into_vec_as::<f32>().expect("reading a CPU tensor cannot fail"), dims, device)
}

fn from_host<const D: usize>(values: Vec<f32>, dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, dims), device)
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
        crate::compare::assert_close("host GELU vs burn's", &a, &b, 2e-6);
    }

    #[test]
    fn exp_nonpositive_matches_std() {
        for i in 0..=20_000 {
            let a = -(i as f32) * 0.005; // 0 to −100
            let (got, want) = (exp_nonpositive(a), a.exp());
            let tolerance = 4e-7 * want + 1e-37;
            assert!((got - want).abs() <= tolerance, "e^{a}: {got} vs {want}");
        }
    }
}
