//! What a training step needs in memory, estimated before it runs, so that a step too large
//! for the machine (a browser tab's 4 GiB wasm heap, a WebGPU adapter's buffer limits) is
//! refused with a message that says what to lower, instead of failing mid-step.
//!
//! The estimate counts, for the worst-case padded batch (every view at `max_len` tokens):
//! - what autodiff keeps for the backward pass, per token and layer: the layer input, q, k, v,
//!   the attention context and output, both LayerNorms' inputs and outputs, the feed-forward
//!   block's input, activation and output, the dropout masks, and per head the attention
//!   scores, probabilities and their dropout mask;
//! - the same again for the gradients flowing back through one layer at a time (a bound on the
//!   backward pass's transient tensors);
//! - the optimizer: one gradient, AdamW's two moments and the updated copy per parameter.
//!
//! It errs on the high side: burn frees what it can earlier than this assumes.

use crate::hf_config::BertConfig;

/// Bytes per value (f32 throughout training).
const F32: u64 = 4;

/// The memory one training step needs, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepMemory {
    /// Activations kept for the backward pass, plus the backward pass's transients.
    pub activations: u64,
    /// Gradients, AdamW moments and the updated parameters (not counting the parameters the
    /// model already holds).
    pub optimizer: u64,
    /// The largest single tensor of the step (what a GPU buffer must be able to hold).
    pub largest_tensor: u64,
}

impl StepMemory {
    /// Everything the step adds to what the loaded model takes.
    pub fn total(&self) -> u64 {
        self.activations + self.optimizer
    }
}

/// Parameters of a BERT encoder of this shape.
pub fn parameter_count(c: &BertConfig) -> u64 {
    let (h, i) = (c.hidden_size as u64, c.intermediate_size as u64);
    let embeddings = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) as u64 * h + 2 * h;
    let layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h;
    embeddings + c.num_hidden_layers as u64 * layer
}

/// The estimate for a step of `batch` sentences, `views` encoder passes per sentence (3 with
/// fraternal twins, 2 without), at most `max_len` tokens each.
pub fn step_memory(c: &BertConfig, batch: usize, views: usize, max_len: usize) -> StepMemory {
    let (h, i, heads, len) = (c.hidden_size as u64, c.intermediate_size as u64, c.num_attention_heads as u64, max_len as u64);
    let tokens = (batch * views) as u64 * len;
    // Per token and layer: x, q, k, v, ctx, attn_out, 2 dropout masks, 2 LayerNorm in/out,
    // ffn out, 2 more LayerNorm in/out (12 h); the feed-forward input and activation (2 i);
    // scores, probabilities and the attention dropout mask per head (3 · heads · len).
    let per_token_layer = 12 * h + 2 * i + 3 * heads * len;
    let kept = tokens * (per_token_layer * c.num_hidden_layers as u64 + 3 * h) * F32;
    let backward = tokens * per_token_layer * F32;
    let optimizer = 4 * parameter_count(c) * F32;
    let largest_tensor = (tokens * i.max(heads * len) * F32).max(c.vocab_size as u64 * h * F32);
    StepMemory { activations: kept + backward, optimizer, largest_tensor }
}

/// `bytes` as "1.2 GB".
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.0} MB", (b / 1e6).max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> BertConfig {
        serde_json::from_str(r#"{"vocab_size":30522,"hidden_size":384,"num_hidden_layers":6,"num_attention_heads":12,"intermediate_size":1536}"#).unwrap()
    }

    #[test]
    fn parameter_count_matches_minilm() {
        // all-MiniLM-L6-v2's BertModel without the pooler: 22,565,376 parameters (PyTorch's
        // `sum(p.numel())` over the encoder is 22,713,216 with the pooler's 147,840).
        assert_eq!(parameter_count(&minilm()), 22_565_376);
    }

    #[test]
    fn estimate_scales_with_the_batch_and_names_the_largest_tensor() {
        let c = minilm();
        let one = step_memory(&c, 8, 3, 32);
        let two = step_memory(&c, 16, 3, 32);
        assert_eq!(two.activations, 2 * one.activations);
        assert_eq!(two.optimizer, one.optimizer);
        // Small batches: the word-embedding gradient; large ones: the feed-forward activation.
        assert_eq!(step_memory(&c, 8, 3, 32).largest_tensor, c.vocab_size as u64 * 384 * 4);
        assert_eq!(step_memory(&c, 512, 3, 32).largest_tensor, 512 * 3 * 32 * 1536 * 4);
        assert!(one.total() > 4 * parameter_count(&c) * 4);
        assert_eq!(human_bytes(1_234_000_000), "1.2 GB");
        assert_eq!(human_bytes(12_300_000), "12 MB");
    }

    #[test]
    fn settings_give_the_views_and_length_of_their_loss() {
        use crate::train::{LossKind, TrainConfig};
        let c = minilm();
        let twins = TrainConfig { loss: LossKind::Twins, max_len: 32, ..TrainConfig::default() };
        let infonce = TrainConfig { loss: LossKind::Infonce, max_len: 64, ..TrainConfig::default() };
        assert_eq!(twins.step_memory(&c, 8), step_memory(&c, 8, 3, 32));
        assert_eq!(infonce.step_memory(&c, 8), step_memory(&c, 8, 2, 64));
    }
}
