//! Batching token ids for the transformer: padding to a block, and the forward pass from token
//! ids to sentence vectors, whole or in length groups.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::BertModel;
use super::Head;
use super::int8_layers::Int8Layers;

/// A batch of token-id lists padded to its longest: what [`BertModel::forward`] takes.
#[derive(Debug, Clone)]
pub struct PaddedBatch {
    /// `[batch, len]` token ids, padding filled with the pad id.
    pub ids: Tensor<2, Int>,
    /// `[batch, len]`: 1.0 at real tokens, 0.0 at padding.
    pub mask: Tensor<2>,
    /// The real length of each row (on the host, so no read-back is needed to know them).
    pub lengths: Vec<usize>,
}

impl PaddedBatch {
    /// `(batch, len)`.
    pub fn dims(&self) -> [usize; 2] {
        self.ids.dims()
    }
}

/// Pads a batch of token-id lists with `pad_id` to its longest row (at least 1 token).
pub fn pad_batch(batch: &[&[u32]], pad_id: u32, device: &Device) -> PaddedBatch {
    let len = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(batch.len() * len);
    let mut mask = Vec::with_capacity(batch.len() * len);
    for seq in batch {
        ids.extend(seq.iter().map(|&t| t as i64));
        ids.extend(std::iter::repeat_n(pad_id as i64, len - seq.len()));
        mask.extend(std::iter::repeat_n(1.0f32, seq.len()));
        mask.extend(std::iter::repeat_n(0.0f32, len - seq.len()));
    }
    let shape = [batch.len(), len];
    PaddedBatch {
        ids: Tensor::<2, Int>::from_data(TensorData::new(ids, shape), device),
        mask: Tensor::<2>::from_data(TensorData::new(mask, shape), device),
        lengths: batch.iter().map(|b| b.len()).collect(),
    }
}

/// Sentence vectors `[batch, hidden]` of a tokenised batch through `model`: the forward pass the
/// CLI, the evaluator and the trainer share (dropout acts when `model` is training on an
/// autodiff device).
pub fn encode(model: &BertModel, head: &Head, batch: &[&[u32]], device: &Device) -> Tensor<2> {
    encode_int8(model, None, head, batch, device)
}

/// [`encode`] with the int8 dense layers of `int8` on the CPU backend's inference path.
pub fn encode_int8(model: &BertModel, int8: Option<&Int8Layers>, head: &Head, batch: &[&[u32]], device: &Device) -> Tensor<2> {
    let padded = pad_batch(batch, 0, device);
    let mask = padded.mask.clone();
    let hidden = model.forward_int8(&padded, int8);
    head.apply(hidden, mask)
}

/// Rows per group below which [`encode_grouped`] does not split further: small matrix products
/// cost more per row than the padding they save.
const MIN_GROUP_ROWS: usize = 8;

/// [`encode`] with the rows sorted by length and split into up to `groups` groups, each padded
/// only to its own longest row, then put back in input order. The vectors are the same
/// (padding is masked out of attention and pooling; dropout is drawn per row either way) for
/// fewer padded tokens: a training batch of SentEval sentences padded as one block (32 tokens)
/// is about 45% padding.
pub fn encode_grouped(model: &BertModel, head: &Head, batch: &[&[u32]], device: &Device, groups: usize) -> Tensor<2> {
    let n = batch.len();
    let groups = groups.min(n / MIN_GROUP_ROWS).max(1);
    let (shortest, longest) = batch.iter().fold((usize::MAX, 0), |(lo, hi), b| (lo.min(b.len()), hi.max(b.len())));
    if groups == 1 || shortest == longest {
        return encode(model, head, batch, device);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| batch[i].len());
    let parts: Vec<Tensor<2>> = order
        .chunks(n.div_ceil(groups))
        .map(|group| {
            let rows: Vec<&[u32]> = group.iter().map(|&i| batch[i]).collect();
            encode(model, head, &rows, device)
        })
        .collect();
    let sorted = Tensor::cat(parts, 0);
    // Where each input row sits in `sorted`.
    let mut position = vec![0i64; n];
    for (at, &i) in order.iter().enumerate() {
        position[i] = at as i64;
    }
    sorted.select(0, Tensor::<1, Int>::from_data(TensorData::new(position, [n]), device))
}
