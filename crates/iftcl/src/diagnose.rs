//! Device self-check for training: small forward + backward graphs (one per kind of op the
//! trainer differentiates through, then a whole tiny encoder with the training loss), each run
//! on the device under test and on the CPU backend from the same inputs, with their gradients
//! compared.
//!
//! Why: a GPU driver or shader compiler can get an op's backward wrong while its forward (the
//! only thing inference exercises) stays right. `iftcl check-device` and the browser's
//! `Encoder.checkDevice()` run this; the test suite runs it on wgpu (lavapipe in CI).
//!
//! Error measure per case: max |g_device − g_cpu| over every gradient entry, divided by
//! max(max |g_cpu|, 1e-3). A case passes when every gradient is finite and that ratio is at
//! most [`TOLERANCE`].

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::hf_config::{HiddenAct, PoolingMode};
use crate::error::{Error, Result};
use crate::model::activation::activation;
use crate::model::bert::{BertModel, tiny_config};
use crate::model::batch::PaddedBatch;
use crate::model::pooling::{l2_normalize, pool};
use crate::model::weights::ParamIo;
use crate::train::info_nce::info_nce;
use crate::train::twins_loss::twins_loss;
use crate::train::TwinsForm;

/// Largest relative gradient error a case may show. f32 on both sides, sums over at most a few
/// hundred terms: most cases agree to ~1e-7. GELU is the loosest: wgpu's erf-GELU backward
/// differs from the CPU's by 7.7e-4 on lavapipe (`iftcl check-device --device gpu`), and the tiny
/// encoder's feed-forward weights inherit up to 5.5e-4. A broken kernel is off by O(1) or NaN.
pub const TOLERANCE: f64 = 5e-3;

/// One case's outcome.
#[derive(Debug, Clone)]
pub struct GradCheck {
    /// What was differentiated, e.g. `matmul(a, bᵀ)` or `tiny encoder: encoder.layer.0.attention.self.query.weight`.
    pub name: String,
    /// max |g_device − g_cpu| over the case's gradients.
    pub max_abs_err: f64,
    /// max |g_cpu| (the scale the error is measured against).
    pub scale: f64,
    /// Every gradient entry is finite, on the device and on the CPU.
    pub finite: bool,
}

impl GradCheck {
    /// The error relative to the gradient's size (see the module doc).
    pub fn rel_err(&self) -> f64 {
        self.max_abs_err / self.scale.max(1e-3)
    }

    /// Finite and within [`TOLERANCE`].
    pub fn passed(&self) -> bool {
        self.finite && self.rel_err() <= TOLERANCE
    }
}

/// Uniform values in [-1, 1] from a seed (splitmix64): the same on every platform.
fn uniform(seed: u64, n: usize) -> Vec<f32> {
    crate::hash::splitmix_uniform(seed.wrapping_mul(0xA076_1D64_78BD_642F), n)
}

type Graph = fn(&[Tensor<2>]) -> Tensor<2>;

/// An op graph: 2-D inputs of the given shapes (all differentiated) to one 2-D output.
struct OpCase {
    name: &'static str,
    shapes: &'static [[usize; 2]],
    graph: Graph,
}

fn attention_split(t: Tensor<2>) -> Tensor<4> {
    // [b·l, h·dh] → [b, h, l, dh] with b = 2, l = 5, h = 2, dh = 4, as BertLayer splits heads.
    t.reshape([2, 5, 2, 4]).swap_dims(1, 2)
}

fn const_mask(rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    // Row r keeps its first cols − (r mod 3) entries (padding at the end, as in a batch).
    let v: Vec<f32> = (0..rows).flat_map(|r| (0..cols).map(move |c| if c + r % 3 < cols { 1.0 } else { 0.0 })).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

const OPS: &[OpCase] = &[
    OpCase { name: "matmul(a, b)", shapes: &[[8, 16], [16, 12]], graph: |x| x[0].clone().matmul(x[1].clone()) },
    OpCase { name: "matmul(a, bᵀ)", shapes: &[[8, 16], [12, 16]], graph: |x| x[0].clone().matmul(x[1].clone().transpose()) },
    OpCase { name: "matmul(aᵀ, b)", shapes: &[[16, 8], [16, 12]], graph: |x| x[0].clone().transpose().matmul(x[1].clone()) },
    OpCase {
        name: "linear with bias (x w + b)",
        shapes: &[[8, 16], [16, 12], [1, 12]],
        graph: |x| x[0].clone().matmul(x[1].clone()) + x[2].clone(),
    },
    OpCase {
        name: "attention scores (4-D matmul, swapped dims)",
        shapes: &[[10, 8], [10, 8]],
        graph: |x| attention_split(x[0].clone()).matmul(attention_split(x[1].clone()).swap_dims(2, 3)).reshape([20, 5]),
    },
    OpCase {
        name: "attention (scores, padding bias, softmax, context)",
        shapes: &[[10, 8], [10, 8], [10, 8]],
        graph: |x| {
            let device = x[0].device();
            let bias = (const_mask(2, 5, &device) - 1.0).mul_scalar(1e9).reshape([2, 1, 1, 5]);
            let scores = attention_split(x[0].clone()).matmul(attention_split(x[1].clone()).swap_dims(2, 3)).mul_scalar(0.5) + bias;
            softmax(scores, 3).matmul(attention_split(x[2].clone())).swap_dims(1, 2).reshape([10, 8])
        },
    },
    OpCase { name: "softmax", shapes: &[[8, 12]], graph: |x| softmax(x[0].clone().mul_scalar(3.0), 1) },
    OpCase { name: "log_softmax", shapes: &[[8, 12]], graph: |x| log_softmax(x[0].clone().mul_scalar(3.0), 1) },
    OpCase {
        name: "layer norm",
        shapes: &[[8, 16]],
        graph: |x| {
            let norm: LayerNorm = LayerNormConfig::new(16).with_epsilon(1e-12).init(&x[0].device());
            norm.forward(x[0].clone())
        },
    },
    OpCase { name: "GELU as trained (erf)", shapes: &[[8, 16]], graph: |x| activation(x[0].clone().mul_scalar(3.0), HiddenAct::Gelu) },
    OpCase { name: "GELU as trained (erf), |x| up to 24", shapes: &[[8, 16]], graph: |x| activation(x[0].clone().mul_scalar(24.0), HiddenAct::Gelu) },
    OpCase { name: "GELU as trained (tanh)", shapes: &[[8, 16]], graph: |x| activation(x[0].clone().mul_scalar(3.0), HiddenAct::GeluTanh) },
    OpCase { name: "GELU as trained (tanh), |x| up to 24", shapes: &[[8, 16]], graph: |x| activation(x[0].clone().mul_scalar(24.0), HiddenAct::GeluTanh) },
    OpCase { name: "exp", shapes: &[[8, 16]], graph: |x| x[0].clone().exp() },
    OpCase { name: "log", shapes: &[[8, 16]], graph: |x| (x[0].clone().powi_scalar(2) + 0.5).log() },
    OpCase { name: "sqrt", shapes: &[[8, 16]], graph: |x| (x[0].clone().powi_scalar(2) + 0.5).sqrt() },
    OpCase { name: "tanh", shapes: &[[8, 16]], graph: |x| x[0].clone().mul_scalar(2.0).tanh() },
    OpCase { name: "erf", shapes: &[[8, 16]], graph: |x| x[0].clone().mul_scalar(2.0).erf() },
    OpCase { name: "powf 1.5", shapes: &[[8, 16]], graph: |x| (x[0].clone().abs() + 0.1).powf_scalar(1.5) },
    OpCase { name: "a / b (broadcast)", shapes: &[[8, 16], [8, 1]], graph: |x| x[0].clone() / (x[1].clone().abs() + 0.5) },
    OpCase { name: "a · b (broadcast)", shapes: &[[8, 16], [1, 16]], graph: |x| x[0].clone() * x[1].clone() },
    OpCase { name: "sum_dim", shapes: &[[8, 16]], graph: |x| x[0].clone().sum_dim(1) },
    OpCase { name: "mean_dim", shapes: &[[8, 16]], graph: |x| x[0].clone().mean_dim(0) },
    OpCase { name: "max_dim", shapes: &[[8, 16]], graph: |x| x[0].clone().max_dim(1) },
    OpCase { name: "sum", shapes: &[[8, 16]], graph: |x| x[0].clone().powi_scalar(2).sum().reshape([1, 1]) },
    OpCase { name: "clamp_min", shapes: &[[8, 16]], graph: |x| x[0].clone().clamp_min(0.1) },
    OpCase {
        name: "mask_fill",
        shapes: &[[8, 8]],
        graph: |x| {
            let device = x[0].device();
            let eye = Tensor::<2>::eye(8, &device).equal_elem(1.0);
            x[0].clone().mask_fill(eye, -1e9)
        },
    },
    OpCase {
        name: "cat, slice, swap_dims",
        shapes: &[[4, 6], [4, 6]],
        graph: |x| Tensor::cat(vec![x[0].clone(), x[1].clone()], 0).slice([2..7]).swap_dims(0, 1),
    },
    OpCase {
        name: "embedding gather",
        shapes: &[[20, 8]],
        graph: |x| {
            let device = x[0].device();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 5, 5, 19, 0, 3, 1, 7, 5, 2, 0, 0], [3, 4]), &device);
            burn::tensor::module::embedding(x[0].clone(), ids).reshape([12, 8])
        },
    },
    OpCase {
        name: "mean pooling + L2 normalise",
        shapes: &[[10, 8]],
        graph: |x| {
            let device = x[0].device();
            l2_normalize(pool(x[0].clone().reshape([2, 5, 8]), const_mask(2, 5, &device), PoolingMode::Mean))
        },
    },
    OpCase {
        name: "InfoNCE (in-batch, fraternal and queue negatives)",
        shapes: &[[6, 8], [6, 8], [6, 8], [4, 8]],
        graph: |x| {
            let [a, p, f, q] = [0, 1, 2, 3].map(|i| l2_normalize(x[i].clone()));
            info_nce(a, p, Some(f), Some(q), 0.05).reshape([1, 1])
        },
    },
    OpCase {
        name: "Twins Loss (pull)",
        shapes: &[[6, 8], [6, 8], [6, 8]],
        graph: |x| {
            let [a, p, f] = [0, 1, 2].map(|i| l2_normalize(x[i].clone()));
            let ratio = Tensor::<1>::from_data(TensorData::new(vec![0.1f32, 0.2, 0.3, 0.1, 0.5, 0.25], [6]), &a.device());
            twins_loss(a, p, f, ratio, 1.0, TwinsForm::Pull).reshape([1, 1])
        },
    },
];

async fn read(t: Tensor<2>) -> Result<Vec<f32>> {
    crate::host_reads::note();
    let data = t.into_data_async().await.map_err(|e| Error::Device(format!("reading a gradient back: {e:?}")))?;
    data.try_into_vec_as::<f32>().map_err(|e| Error::Device(format!("reading a gradient back: {e:?}")))
}

async fn read_any<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let n = t.shape().num_elements();
    read(t.reshape([1, n])).await
}

fn compare(name: String, got: &[f32], want: &[f32]) -> GradCheck {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
    // A NaN or infinity on either side (the CPU's too) fails the case.
    match crate::compare::max_abs_diff(got, want) {
        Ok(max_abs_err) => GradCheck { name, max_abs_err, scale, finite: true },
        Err(_) => GradCheck { name, max_abs_err: f64::NAN, scale, finite: false },
    }
}

/// The input gradients of `sum(graph(inputs) ⊙ r)` (r fixed random) on `device` (autodiff on).
async fn op_grads(case: &OpCase, seed: u64, device: &Device) -> Result<Vec<f32>> {
    let inputs: Vec<Tensor<2>> = case
        .shapes
        .iter()
        .enumerate()
        .map(|(i, &[r, c])| Tensor::<2>::from_data(TensorData::new(uniform(seed + i as u64, r * c), [r, c]), device).require_grad())
        .collect();
    let out = (case.graph)(&inputs);
    let [r, c] = out.dims();
    let weights = Tensor::<2>::from_data(TensorData::new(uniform(seed + 100, r * c), [r, c]), device);
    let grads = (out * weights).sum().backward();
    let mut all = Vec::new();
    for x in &inputs {
        // An input behind a stop-gradient (the Twins Loss's positive) has none: zeros.
        match x.grad(&grads) {
            Some(g) => all.extend(read(g).await?),
            None => all.extend(std::iter::repeat_n(0.0, x.shape().num_elements())),
        }
    }
    Ok(all)
}

/// Collects every parameter with its Hugging Face name.
struct Collect(Vec<(String, Param<Tensor<2>>)>, Vec<(String, Param<Tensor<1>>)>);

impl ParamIo for Collect {
    fn linear(&mut self, name: &str, layer: &mut Linear, _: usize, _: usize) -> Result<()> {
        self.0.push((format!("{name}.weight"), layer.weight.clone()));
        if let Some(b) = &layer.bias {
            self.1.push((format!("{name}.bias"), b.clone()));
        }
        Ok(())
    }
    fn layer_norm(&mut self, name: &str, layer: &mut LayerNorm, _: usize) -> Result<()> {
        self.1.push((format!("{name}.weight"), layer.gamma.clone()));
        if let Some(b) = &layer.beta {
            self.1.push((format!("{name}.bias"), b.clone()));
        }
        Ok(())
    }
    fn embedding(&mut self, name: &str, layer: &mut Embedding, _: usize, _: usize) -> Result<()> {
        self.0.push((format!("{name}.weight"), layer.weight.clone()));
        Ok(())
    }
}

/// Every parameter gradient (by name) of the tiny encoder under the InfoNCE loss of two
/// batches of 3 sentences (padded), starting from `model` moved to `device` (autodiff on).
async fn encoder_grads(model: &BertModel, device: &Device) -> Result<Vec<(String, Vec<f32>)>> {
    let config = tiny_config();
    // As the fine-tuner moves a module onto an autodiff device.
    let mut model = model.clone().train().fork(device).set_require_grad(true).train();
    let ids: Vec<i64> = (0..24).map(|i| (i * 7 + 3) % 30).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [6, 4]), device);
    let mask = const_mask(6, 4, device);
    let hidden = model.forward(&PaddedBatch { ids, mask: mask.clone(), lengths: (0..6).map(|r| 4 - r % 3).collect() });
    let e = l2_normalize(pool(hidden, mask, PoolingMode::Mean));
    let a = e.clone().slice([0..3]);
    let p = e.slice([3..6]);
    let loss = info_nce(a, p, None, None, 0.05);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut params = Collect(Vec::new(), Vec::new());
    model.visit_params(&config, &mut params)?;
    let mut out = Vec::new();
    for (name, p) in params.0 {
        let g = grads.get::<2>(p.id).ok_or_else(|| Error::Device(format!("tiny encoder: {name} got no gradient")))?;
        out.push((name, read_any(g).await?));
    }
    for (name, p) in params.1 {
        let g = grads.get::<1>(p.id).ok_or_else(|| Error::Device(format!("tiny encoder: {name} got no gradient")))?;
        out.push((name, read_any(g).await?));
    }
    Ok(out)
}

/// Runs every case on `device` and on the CPU backend; one [`GradCheck`] per op case, then one
/// per parameter of the tiny encoder. `device` is the plain device (autodiff is turned on here).
/// Asynchronous, so it runs on a browser's WebGPU device too.
pub async fn check_gradients(device: &Device) -> Result<Vec<GradCheck>> {
    let cpu = Device::flex().autodiff();
    let dev = device.clone().autodiff();
    let mut out = Vec::new();
    for (i, case) in OPS.iter().enumerate() {
        let seed = 1000 * (i as u64 + 1);
        let want = op_grads(case, seed, &cpu).await?;
        let got = op_grads(case, seed, &dev).await?;
        out.push(compare(case.name.to_string(), &got, &want));
    }
    let model = BertModel::init(&tiny_config(), &Device::flex());
    let want = encoder_grads(&model, &cpu).await?;
    let got = encoder_grads(&model, &dev).await?;
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        out.push(compare(format!("tiny encoder: {name}"), g, w));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_backend_agrees_with_itself_and_a_wrong_gradient_is_caught() {
        let checks = pollster::block_on(check_gradients(&Device::flex())).unwrap();
        assert!(checks.len() > OPS.len() + 10, "op cases and encoder parameters: {}", checks.len());
        for c in &checks {
            assert!(c.passed(), "{c:?}");
            assert!(c.scale > 0.0, "{}: a zero gradient checks nothing", c.name);
        }
        let bad = compare("x".into(), &[1.0, 2.0], &[1.0, 2.1]);
        assert!(!bad.passed() && bad.finite);
        let nan = compare("x".into(), &[f32::NAN, 2.0], &[1.0, 2.0]);
        assert!(!nan.passed() && !nan.finite);
    }
}
