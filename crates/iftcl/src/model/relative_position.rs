//! MPNet's relative position attention bias: every (query, key) pair of positions falls in a
//! bucket of their signed distance, and a learned table `[buckets, heads]` (one for all layers)
//! gives each head's bias for that bucket, added to the attention scores.
//!
//! The buckets are those of Hugging Face's `MPNetEncoder.relative_position_bucket` (from T5):
//! half of them for keys after the query; in each half, distances below a quarter of the buckets
//! have one bucket each, longer ones share logarithmically wider buckets up to `MAX_DISTANCE`.

use burn::nn::Embedding;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Distance from which every pair shares the last bucket of its half.
const MAX_DISTANCE: usize = 128;

/// Bucket of a key at `key` seen from a query at `query`, with `buckets` buckets in all.
pub(crate) fn bucket(query: usize, key: usize, buckets: usize) -> usize {
    let half = buckets / 2;
    // Hugging Face's n = -(key - query): keys after the query use the upper half.
    let (base, distance) = if key > query { (half, key - query) } else { (0, query - key) };
    let exact = half / 2;
    if distance < exact {
        return base + distance;
    }
    // f64 here and f32 in PyTorch give the same truncated values for every distance below 1024
    // (checked with numpy); the truncation toward zero is PyTorch's `.to(torch.long)`.
    let scaled = (distance as f64 / exact as f64).ln() / (MAX_DISTANCE as f64 / exact as f64).ln() * (half - exact) as f64;
    base + (exact + scaled as usize).min(half - 1)
}

/// The bias `[1, heads, len, len]` for inputs of `len` tokens from the table `[buckets, heads]`.
pub(crate) fn position_bias(table: &Embedding, len: usize, device: &Device) -> Tensor<4> {
    let [buckets, heads] = table.weight.dims();
    let ids: Vec<i64> = (0..len).flat_map(|q| (0..len).map(move |k| bucket(q, k, buckets) as i64)).collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [len * len]), device);
    table.weight.val().select(0, ids).reshape([len, len, heads]).permute([2, 0, 1]).reshape([1, heads, len, len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_reference() {
        // Values of Hugging Face's relative_position_bucket(key - query) with 32 buckets.
        let cases = [
            (0usize, 0usize, 0usize),
            (5, 0, 5),
            (7, 0, 7),
            (8, 0, 8),
            (15, 0, 9),
            (16, 0, 10),
            (31, 0, 11),
            (32, 0, 12),
            (127, 0, 15),
            (500, 0, 15),
            (0, 1, 17),
            (0, 7, 23),
            (0, 8, 24),
            (0, 16, 26),
            (0, 300, 31),
        ];
        for (q, k, want) in cases {
            assert_eq!(bucket(q, k, 32), want, "query {q}, key {k}");
        }
    }
}
