//! [`Head`]: what turns a transformer's token states into one sentence vector (pooling, then
//! the sentence-transformers modules the folder lists after it: Dense, LayerNorm, Normalize).

use burn::tensor::Tensor;

use super::pooling::{l2_normalize, pool};
use super::st_modules::HeadModule;
use crate::hf_config::PoolingMode;

/// How the encoder turns token states into a sentence vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Pooling over tokens.
    pub pooling: PoolingMode,
    /// The modules after pooling (Dense, LayerNorm, a Normalize that is not the last), in order.
    pub modules: Vec<HeadModule>,
    /// L2 normalisation at the end (sentence-transformers' last `Normalize` module).
    pub normalize: bool,
}

impl Head {
    /// Sentence vectors of a batch `[batch, width]`: pooled, through the modules, normalised
    /// when asked.
    pub fn apply(&self, hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let v = self.modules.iter().fold(pool(hidden, mask, self.pooling), |v, m| m.apply(v));
        if self.normalize { l2_normalize(v) } else { v }
    }

    /// Width of the sentence vectors for token states `hidden` wide.
    pub fn width(&self, hidden: usize) -> usize {
        self.modules.iter().fold(hidden, |w, m| m.spec.out_width(w))
    }
}
