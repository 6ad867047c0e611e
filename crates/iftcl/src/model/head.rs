//! [`Head`]: what turns a transformer's token states into one sentence vector (pooling, then
//! sentence-transformers' `Normalize` module where the folder lists one).

use burn::tensor::Tensor;

use super::pooling::{l2_normalize, pool};
use crate::hf_config::PoolingMode;

/// How the encoder turns token states into a sentence vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    /// Pooling over tokens.
    pub pooling: PoolingMode,
    /// L2 normalisation after pooling (sentence-transformers' `Normalize` module).
    pub normalize: bool,
}

impl Head {
    /// Pooled (and normalised) sentence vectors of a batch: `[batch, hidden]`.
    pub fn apply(&self, hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let pooled = pool(hidden, mask, self.pooling);
        if self.normalize { l2_normalize(pooled) } else { pooled }
    }
}
