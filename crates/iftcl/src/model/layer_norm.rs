//! LayerNorm for training on a GPU, with a backward pass of a few kernels.
//!
//! burn's `layer_norm` is a chain of tensor ops (mean, subtract, square, mean, add ε, square
//! root, divide, scale, shift), and autodiff differentiates each of them: on the wgpu backend
//! that is about eighteen launches per LayerNorm backward, most of them single element-wise ops
//! between reductions that fusion cannot join (`iftcl bench kernels`). Here the normalised rows
//! x̂ = (x − μ)/σ and 1/σ are computed from `x` detached, and the gradient goes through
//!
//!   z = ((x − mean(x)) − x̂ · mean(x̂ ⊙ x)) / σ       (x̂ and σ constants),
//!
//! whose vector-Jacobian product for an upstream `u` is (u − mean(u) − x̂ · mean(u ⊙ x̂)) / σ,
//! LayerNorm's exact input gradient. The output is x̂ + (z − detach(z)): its value is x̂ (the
//! difference is exactly zero), its gradient that of z. γ and β are applied as usual, so their
//! gradients are autodiff's own. CPU training and inference keep burn's op.

use burn::nn::LayerNorm;
use burn::tensor::Tensor;

use super::op_path::OpPath;

/// `norm` (with `epsilon`, its ε) of `x` over the last dimension: the form above on `path`
/// [`OpPath::Composed`] (GPU training), burn's LayerNorm otherwise.
pub fn layer_norm<const D: usize>(norm: &LayerNorm, epsilon: f64, x: Tensor<D>, path: OpPath) -> Tensor<D> {
    if path != OpPath::Composed {
        return norm.forward(x);
    }
    let last = D - 1;
    let v = x.clone().detach();
    let centered = v.clone() - v.mean_dim(last);
    let inv_std = centered.clone().powi_scalar(2).mean_dim(last).add_scalar(epsilon).sqrt().recip();
    let xhat = centered * inv_std.clone();
    let z = ((x.clone() - x.clone().mean_dim(last)) - xhat.clone() * (xhat.clone() * x).mean_dim(last)) * inv_std;
    let normalized = xhat + (z.clone() - z.detach());
    let gamma = norm.gamma.val().unsqueeze::<D>();
    let scaled = normalized * gamma;
    match &norm.beta {
        Some(beta) => scaled + beta.val().unsqueeze::<D>(),
        None => scaled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, TensorData};

    /// Values and gradients (input, γ, β) of the composed LayerNorm against burn's, on the
    /// autodiff CPU backend, for rows of very different scales and offsets.
    #[test]
    fn composed_layer_norm_matches_burns_values_and_gradients() {
        let device = Device::flex().autodiff();
        let (rows, h, eps) = (6, 24, 1e-12);
        let values: Vec<f32> = (0..rows * h).map(|i| ((i * 37 % 101) as f32 / 13.0 - 3.5) * (1.0 + (i / h) as f32 * 40.0) + (i / h) as f32 * 9.0).collect();
        let weights: Vec<f32> = (0..rows * h).map(|i| ((i * 53 % 89) as f32 / 31.0) - 1.3).collect();
        let mut norm = LayerNormConfig::new(h).with_epsilon(eps).init(&device);
        norm.gamma = Param::from_tensor(Tensor::from_data(TensorData::new((0..h).map(|i| 0.5 + i as f32 / 20.0).collect::<Vec<f32>>(), [h]), &device));
        norm.beta = Some(Param::from_tensor(Tensor::from_data(TensorData::new((0..h).map(|i| i as f32 / 7.0 - 1.0).collect::<Vec<f32>>(), [h]), &device)));
        let run = |path: OpPath| {
            let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [rows, h]), &device).require_grad();
            let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [rows, h]), &device);
            let y = layer_norm(&norm, eps, x.clone(), path);
            let grads = (y.clone() * w).sum().backward();
            let read = |t: Option<Tensor<2>>| t.expect("a gradient").try_into_vec_as::<f32>().unwrap();
            let read1 = |t: Option<Tensor<1>>| t.expect("a gradient").try_into_vec_as::<f32>().unwrap();
            (
                y.try_into_vec_as::<f32>().unwrap(),
                read(x.grad(&grads)),
                read1(norm.gamma.val().grad(&grads)),
                read1(norm.beta.as_ref().unwrap().val().grad(&grads)),
            )
        };
        let burn = run(OpPath::HostAutodiff);
        let composed = run(OpPath::Composed);
        crate::compare::assert_close("LayerNorm values", &composed.0, &burn.0, 1e-5);
        crate::compare::assert_close("LayerNorm input gradient", &composed.1, &burn.1, 1e-4);
        crate::compare::assert_close("LayerNorm γ gradient", &composed.2, &burn.2, 1e-5);
        crate::compare::assert_close("LayerNorm β gradient", &composed.3, &burn.3, 1e-6);
    }
}
