//! Sentence pooling and L2 normalisation: the one implementation the CLI, the trainer and the
//! browser all use.

use burn::tensor::Tensor;

use crate::hf_config::PoolingMode;

/// Pools token states into one vector per sentence.
///
/// - `hidden`: `[batch, len, dim]`
/// - `mask`: `[batch, len]`, 1.0 for tokens, 0.0 for padding (padding never contributes)
/// - returns `[batch, dim]`
pub fn pool(hidden: Tensor<3>, mask: Tensor<2>, mode: PoolingMode) -> Tensor<2> {
    let [b, l, d] = hidden.dims();
    match mode {
        PoolingMode::Cls => hidden.slice([0..b, 0..1, 0..d]).reshape([b, d]),
        PoolingMode::Mean | PoolingMode::MeanSqrtLen => {
            let m = mask.reshape([b, l, 1]);
            let summed = (hidden * m.clone()).sum_dim(1).reshape([b, d]);
            // sentence-transformers clamps the count at 1e-9 (an empty mask cannot happen:
            // [CLS] and [SEP] are always there).
            let count = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
            if mode == PoolingMode::Mean { summed / count } else { summed / count.sqrt() }
        }
        PoolingMode::Max => {
            let m = mask.reshape([b, l, 1]);
            // Padding gets -1e9 so it never wins the maximum, as in sentence-transformers.
            let masked = hidden * m.clone() + (m - 1.0).mul_scalar(1e9);
            masked.max_dim(1).reshape([b, d])
        }
    }
}

/// Divides each row by its L2 norm (floored at 1e-12, like `torch.nn.functional.normalize`).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn dev() -> Device {
        Device::flex()
    }

    fn hidden() -> (Tensor<3>, Tensor<2>) {
        // batch 1, len 3 (last is padding), dim 2
        let h = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, -4.0, 100.0, 100.0], [1, 3, 2]), &dev());
        let m = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 1.0, 0.0], [1, 3]), &dev());
        (h, m)
    }

    fn vals(t: Tensor<2>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn mean_ignores_padding() {
        let (h, m) = hidden();
        assert_eq!(vals(pool(h, m, PoolingMode::Mean)), vec![2.0, -1.0]);
    }

    #[test]
    fn max_ignores_padding_and_cls_takes_first() {
        let (h, m) = hidden();
        assert_eq!(vals(pool(h.clone(), m.clone(), PoolingMode::Max)), vec![3.0, 2.0]);
        assert_eq!(vals(pool(h.clone(), m.clone(), PoolingMode::Cls)), vec![1.0, 2.0]);
        let s = vals(pool(h, m, PoolingMode::MeanSqrtLen));
        assert!((s[0] - 4.0 / 2f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn normalised_rows_have_unit_norm() {
        let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]), &dev());
        assert_eq!(vals(l2_normalize(x)), vec![0.6, 0.8, 0.0, 0.0]);
    }
}
