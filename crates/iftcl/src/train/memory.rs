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

/// Parameters of a BERT encoder of this shape (`u64::MAX` when that does not fit: a hostile
/// config's sizes).
pub fn parameter_count(c: &BertConfig) -> u64 {
    let (h, i) = (c.hidden_size as u128, c.intermediate_size as u128);
    let embeddings = (c.vocab_size as u128 + c.max_position_embeddings as u128 + c.type_vocab_size as u128) * h + 2 * h;
    let layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h;
    u64::try_from(embeddings.saturating_add((c.num_hidden_layers as u128).saturating_mul(layer))).unwrap_or(u64::MAX)
}

/// This machine's physical memory in bytes, where the system says (Linux's `/proc/meminfo`).
/// A size past it cannot be allocated, whatever else runs.
pub fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses, before anything is allocated, what cannot fit in this machine's memory (`limit`,
/// normally [`physical_memory`]): the queue (`queue_size` slots of the embedding width, on every
/// device: checkpoints read it back to the host), and on the CPU the model with its training
/// step (`batch` sentences of up to `max_len` tokens). The message names the figure and the
/// setting to lower.
pub fn check_fits(settings: &crate::train::TrainConfig, model: &BertConfig, batch: usize, max_len: usize, on_cpu: bool, limit: u64) -> crate::Result<()> {
    let too_big = |what: String, need: f64, lower: &str| {
        Err(crate::Error::InvalidArgument(format!(
            "{what} needs {}, more than this machine's {} of memory: {lower}",
            human_bytes(need.min(u64::MAX as f64) as u64),
            human_bytes(limit)
        )))
    };
    let width = model.hidden_size as f64;
    let queue = settings.queue_capacity() as f64 * width * F32 as f64;
    if queue > limit as f64 {
        let what = format!("a queue of {} slots × {} values (--queue-size)", settings.queue_capacity(), model.hidden_size);
        return too_big(what, queue, "lower --queue-size");
    }
    if !on_cpu {
        return Ok(());
    }
    let views = if settings.objective().needs_fraternal() { 3.0 } else { 2.0 };
    // In f64 first: hostile sizes would overflow the exact estimate's integers.
    let per_token_layer = 12.0 * width + 2.0 * model.intermediate_size as f64 + 3.0 * model.num_attention_heads as f64 * max_len as f64;
    let rough = batch as f64 * views * max_len as f64 * per_token_layer * (model.num_hidden_layers as f64 + 1.0) * F32 as f64;
    let params = parameter_count(model) as f64 * F32 as f64;
    let need = if rough + 5.0 * params < 1e18 {
        let step = step_memory(model, batch, views as usize, max_len);
        step.total() as f64 + params + queue
    } else {
        rough + 5.0 * params
    };
    if need > limit as f64 {
        let what = format!("a training step of --batch-size {batch} × --max-len {max_len} on this model (with its weights, gradients and optimizer state)");
        return too_big(what, need, "lower --batch-size or --max-len");
    }
    Ok(())
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
    fn what_cannot_fit_is_refused_with_the_figure_and_the_flag() {
        use crate::train::TrainConfig;
        let c = minilm();
        let gb = 1_000_000_000;
        let queue = TrainConfig { queue_size: Some(1_000_000_000), ..TrainConfig::default() };
        let e = check_fits(&queue, &c, 64, 32, false, 24 * gb).unwrap_err().to_string();
        assert!(e.contains("a queue of 1000000000 slots × 384 values (--queue-size) needs 1536.0 GB") && e.contains("lower --queue-size"), "{e}");
        let e = check_fits(&TrainConfig::default(), &c, 1 << 40, 32, true, 24 * gb).unwrap_err().to_string();
        assert!(e.contains("--batch-size 1099511627776 × --max-len 32") && e.contains("lower --batch-size or --max-len"), "{e}");
        check_fits(&TrainConfig::default(), &c, 1 << 40, 32, false, 24 * gb).expect("a GPU step is not checked against the host");
        check_fits(&TrainConfig::default(), &c, 64, 32, true, 24 * gb).unwrap();
        let huge: BertConfig = serde_json::from_str(r#"{"vocab_size":1000000000000,"hidden_size":1000000000000,"num_hidden_layers":1000000000000,"num_attention_heads":1,"intermediate_size":1000000000000}"#).unwrap();
        assert_eq!(parameter_count(&huge), u64::MAX, "saturates instead of wrapping");
        assert!(physical_memory().is_none_or(|m| m > 1 << 20));
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
