//! The feed-forward activation of an encoder layer, computed the way the device's [`OpPath`]
//! says.

use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, gelu_approximate, relu};

use super::gelu::{gelu_composed, gelu_host, gelu_host_autodiff, gelu_tanh_composed};
use super::op_path::OpPath;
use crate::hf_config::HiddenAct;

/// `act` of `x` on `path`: the same values on every path (tested), computed by the host on the
/// CPU and composed of tensor ops for GPU training.
pub fn activation_with<const D: usize>(x: Tensor<D>, act: HiddenAct, path: OpPath) -> Tensor<D> {
    use OpPath::*;
    match (act, path) {
        (HiddenAct::Gelu, Host) => gelu_host(x),
        (HiddenAct::Gelu, HostAutodiff) => gelu_host_autodiff(x),
        (HiddenAct::Gelu, Composed) => gelu_composed(x),
        (HiddenAct::Gelu, Burn) => gelu(x),
        (HiddenAct::GeluTanh, Composed) => gelu_tanh_composed(x),
        (HiddenAct::GeluTanh, _) => gelu_approximate(x),
        (HiddenAct::Relu, _) => relu(x),
    }
}

/// [`activation_with`] on the path of `x`'s device.
pub fn activation<const D: usize>(x: Tensor<D>, act: HiddenAct) -> Tensor<D> {
    let path = OpPath::for_device(&x.device());
    activation_with(x, act, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn every_activation_path_gives_the_same_values() {
        let device = Device::flex();
        assert_eq!(OpPath::for_device(&device), OpPath::Host);
        assert_eq!(OpPath::for_device(&device.clone().autodiff()), OpPath::HostAutodiff);
        let values: Vec<f32> = (0..801).map(|i| (i as f32 - 400.0) / 20.0).collect();
        let t = Tensor::<2>::from_data(TensorData::new(values.clone(), [1, values.len()]), &device);
        for act in [HiddenAct::Gelu, HiddenAct::GeluTanh] {
            let burn = activation_with(t.clone(), act, OpPath::Burn).try_into_vec_as::<f32>().unwrap();
            for path in [OpPath::Host, OpPath::HostAutodiff, OpPath::Composed] {
                // The host path has only the exact GELU; for the tanh form it falls back to burn's.
                let got = activation_with(t.clone(), act, path).try_into_vec_as::<f32>().unwrap();
                crate::compare::assert_close(&format!("{act:?}, {path:?}"), &got, &burn, 2e-5);
            }
        }
    }

    #[test]
    fn cpu_training_gelu_has_burns_gradient() {
        let device = Device::flex().autodiff();
        let values: Vec<f32> = (0..801).map(|i| (i as f32 - 400.0) / 20.0).collect();
        let weights: Vec<f32> = (0..801).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let grad_of = |path| {
            let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [1, values.len()]), &device).require_grad();
            let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [1, weights.len()]), &device);
            let grads = (activation_with(x.clone(), HiddenAct::Gelu, path) * w).sum().backward();
            x.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap()
        };
        let (ours, burn) = (grad_of(OpPath::HostAutodiff), grad_of(OpPath::Burn));
        crate::compare::assert_close("GELU gradient, host vs burn's", &ours, &burn, 2e-6);
    }
}
