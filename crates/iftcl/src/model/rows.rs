//! Packed rows: which rows of the `[batch·len, hidden]` token states the row-wise parts of a
//! layer (dense layers, LayerNorm, GELU, dropout) compute.
//!
//! On the CPU only the real tokens: padding is about a fifth of a training step's tokens even
//! after length grouping, and all of it went through every matrix product. Attention alone
//! needs the padded `[batch, len]` layout, so its query, key and value rows are scattered into
//! zeros before it and its output rows gathered back after it (a copy each, against a quarter
//! of a layer's multiply-adds saved on a SentEval batch). GPUs keep every row.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

/// The rows a forward pass computes.
pub(crate) struct Rows {
    /// Positions of the real tokens in `[batch·len]`, when some rows are padding and the device
    /// packs.
    real: Option<Tensor<1, Int>>,
    padded: usize,
}

impl Rows {
    /// The rows of a batch padded to `len` whose rows have `lengths` real tokens; every row
    /// unless `pack`.
    pub(crate) fn new(lengths: &[usize], len: usize, pack: bool, device: &Device) -> Self {
        let padded = lengths.len() * len;
        let real_tokens: usize = lengths.iter().sum();
        let real = (pack && real_tokens > 0 && real_tokens < padded).then(|| {
            let positions: Vec<i64> = lengths.iter().enumerate().flat_map(|(row, &n)| (0..n).map(move |t| (row * len + t) as i64)).collect();
            Tensor::<1, Int>::from_data(TensorData::new(positions, [real_tokens]), device)
        });
        Rows { real, padded }
    }

    /// `[batch·len, w]` → the rows this device computes.
    pub(crate) fn pack(&self, x: Tensor<2>) -> Tensor<2> {
        match &self.real {
            Some(real) => x.select(0, real.clone()),
            None => x,
        }
    }

    /// The rows this device computes → `[batch·len, w]`, zeros at padding.
    pub(crate) fn unpack(&self, x: Tensor<2>) -> Tensor<2> {
        match &self.real {
            Some(real) => {
                let w = x.dims()[1];
                Tensor::zeros([self.padded, w], &x.device()).select_assign(0, real.clone(), x, IndexingUpdateOp::Add)
            }
            None => x,
        }
    }
}
