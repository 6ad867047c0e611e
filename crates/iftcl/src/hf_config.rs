//! Model configuration files of the Hugging Face and sentence-transformers layouts.
//!
//! `config.json` is mirrored by [`BertConfig`] (optional keys have the defaults of
//! `transformers.BertConfig`); `1_Pooling/config.json` by [`PoolingConfig`];
//! `sentence_bert_config.json` by [`SentenceBertConfig`]; `modules.json` by [`StModule`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::json::{parse_json, read_json, write_json};

/// The encoder's activation function, as `hidden_act` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiddenAct {
    /// Exact GELU, `x * Φ(x)` with erf (`"gelu"`).
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh approximation of GELU (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    #[serde(alias = "gelu_new", alias = "gelu_fast", rename = "gelu_pytorch_tanh")]
    GeluTanh,
    /// ReLU (`"relu"`).
    #[serde(rename = "relu")]
    Relu,
}

fn default_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-12
}
fn default_type_vocab() -> usize {
    2
}
fn default_max_pos() -> usize {
    512
}
fn default_pad() -> u32 {
    0
}
fn default_model_type() -> String {
    "bert".into()
}
fn default_pos_type() -> String {
    "absolute".into()
}
fn default_buckets() -> usize {
    32
}

/// The encoder families this tool runs, told apart by `model_type`. All of them are post-LayerNorm
/// transformers with the same layer shapes; they differ in the embeddings, the weight names and
/// MPNet's attention bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT and the models that share its layout (MiniLM, bge, e5, ...): positions from 0, a
    /// token-type embedding.
    Bert,
    /// RoBERTa, XLM-RoBERTa and CamemBERT: BERT's layers; positions count from the padding id
    /// plus one, one token type.
    Roberta,
    /// MPNet: RoBERTa's positions, no token type, and a relative position bias (one table for
    /// all layers) added to every attention score.
    MpNet,
}

/// `model_type`s this tool runs, for error messages.
const SUPPORTED_TYPES: &str = "bert, roberta, xlm-roberta, camembert, mpnet";

impl Family {
    /// The family of `model_type`, or why it is refused.
    fn of(model_type: &str) -> std::result::Result<Family, String> {
        match model_type {
            "bert" | "minilm" | "distilbert_as_bert" => Ok(Family::Bert),
            "roberta" | "xlm-roberta" | "camembert" => Ok(Family::Roberta),
            "mpnet" => Ok(Family::MpNet),
            "distilbert" => Err("DistilBERT names its weights differently and has no token types or pooler; \
                                 it is not supported yet".into()),
            "modernbert" => Err("ModernBERT (rotary positions, pre-LayerNorm, GeGLU) is not supported".into()),
            "gpt2" | "llama" | "mistral" | "qwen2" | "qwen3" | "gemma" | "gemma2" | "phi" | "phi3" | "t5" | "mt5" => {
                Err("it is not a BERT-style encoder (decoder and encoder-decoder models are not supported)".into())
            }
            other => Err(format!("`{other}` is not an encoder family this tool runs")),
        }
    }
}

/// The subset of a BERT-family `config.json` this encoder uses. Unknown keys are kept in
/// `extra` so a saved checkpoint writes them back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`hidden_size` must be a multiple).
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Activation of the feed-forward block.
    #[serde(default = "default_act")]
    pub hidden_act: HiddenAct,
    /// Dropout after embeddings, attention output and feed-forward output.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Rows of the position-embedding table: the longest input the model takes.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    /// `model_type`: which [`Family`] (see [`Self::family`]).
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Buckets of MPNet's relative position bias (unused by the other families).
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    /// Only "absolute" is supported.
    #[serde(default = "default_pos_type")]
    pub position_embedding_type: String,
    /// Every other key of the file, written back on save.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let config: BertConfig = read_json(path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Rejects values this encoder cannot run, naming the field.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, message: String| Error::Config {
            path: path.to_path_buf(),
            field: field.into(),
            message,
        };
        if let Err(why) = Family::of(&self.model_type) {
            return Err(bad("model_type", format!("{why} (supported: {SUPPORTED_TYPES})")));
        }
        if self.position_embedding_type != "absolute" {
            return Err(bad(
                "position_embedding_type",
                format!("only \"absolute\" is supported, got \"{}\"", self.position_embedding_type),
            ));
        }
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
            ("relative_attention_num_buckets", self.relative_attention_num_buckets),
        ] {
            if v == 0 {
                return Err(bad(field, "must be positive".into()));
            }
        }
        // Fewer buckets leave MPNet's bucketing no exact distances (a division by zero).
        if self.family() == Family::MpNet && self.relative_attention_num_buckets < 4 {
            return Err(bad("relative_attention_num_buckets", format!("{} is fewer than the 4 MPNet needs", self.relative_attention_num_buckets)));
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(bad(
                "num_attention_heads",
                format!("hidden_size {} is not a multiple of {}", self.hidden_size, self.num_attention_heads),
            ));
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(field, format!("{p} is not in [0, 1)")));
            }
        }
        if !(self.layer_norm_eps > 0.0) {
            return Err(bad("layer_norm_eps", "must be positive".into()));
        }
        if self.max_input_len() == 0 {
            return Err(bad(
                "max_position_embeddings",
                format!("{} leaves no position after the padding id {}", self.max_position_embeddings, self.pad_token_id),
            ));
        }
        Ok(())
    }

    /// The model's family (`model_type` is checked by [`Self::validate`]; an unknown one reads
    /// as BERT here).
    pub fn family(&self) -> Family {
        Family::of(&self.model_type).unwrap_or(Family::Bert)
    }

    /// Row of the position table the first token takes: 0 for BERT, the padding id + 1 for
    /// RoBERTa and MPNet (Hugging Face's `create_position_ids_from_input_ids`).
    pub fn position_offset(&self) -> usize {
        match self.family() {
            Family::Bert => 0,
            Family::Roberta | Family::MpNet => self.pad_token_id as usize + 1,
        }
    }

    /// The longest input, in tokens, the position table covers.
    pub fn max_input_len(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// How token states become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingMode {
    /// Mean over the tokens the attention mask keeps.
    Mean,
    /// The first token's state (`[CLS]`).
    Cls,
    /// Element-wise maximum over the kept tokens.
    Max,
    /// Sum over kept tokens divided by the square root of their count.
    MeanSqrtLen,
}

/// `1_Pooling/config.json` of the sentence-transformers layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolingConfig {
    /// Width of the token states.
    pub word_embedding_dimension: usize,
    /// CLS pooling.
    #[serde(default)]
    pub pooling_mode_cls_token: bool,
    /// Mean pooling.
    #[serde(default)]
    pub pooling_mode_mean_tokens: bool,
    /// Max pooling.
    #[serde(default)]
    pub pooling_mode_max_tokens: bool,
    /// Mean-sqrt-length pooling.
    #[serde(default)]
    pub pooling_mode_mean_sqrt_len_tokens: bool,
    /// Position-weighted mean pooling (not supported: refused rather than ignored).
    #[serde(default)]
    pub pooling_mode_weightedmean_tokens: bool,
    /// Last-token pooling (not supported: refused rather than ignored).
    #[serde(default)]
    pub pooling_mode_lasttoken: bool,
}

impl PoolingConfig {
    /// The configuration sentence-transformers writes for `mode`.
    pub fn for_mode(mode: PoolingMode, dim: usize) -> Self {
        PoolingConfig {
            word_embedding_dimension: dim,
            pooling_mode_cls_token: mode == PoolingMode::Cls,
            pooling_mode_mean_tokens: mode == PoolingMode::Mean,
            pooling_mode_max_tokens: mode == PoolingMode::Max,
            pooling_mode_mean_sqrt_len_tokens: mode == PoolingMode::MeanSqrtLen,
            pooling_mode_weightedmean_tokens: false,
            pooling_mode_lasttoken: false,
        }
    }

    /// The one pooling mode this file selects; several modes at once (concatenation) are refused.
    pub fn mode(&self, path: &Path) -> Result<PoolingMode> {
        for (field, on) in [("pooling_mode_weightedmean_tokens", self.pooling_mode_weightedmean_tokens), ("pooling_mode_lasttoken", self.pooling_mode_lasttoken)] {
            if on {
                let message = "this pooling is not supported (mean, cls, max and mean_sqrt_len are)".into();
                return Err(Error::Config { path: path.into(), field: field.into(), message });
            }
        }
        let modes: Vec<PoolingMode> = [
            (self.pooling_mode_mean_tokens, PoolingMode::Mean),
            (self.pooling_mode_cls_token, PoolingMode::Cls),
            (self.pooling_mode_max_tokens, PoolingMode::Max),
            (self.pooling_mode_mean_sqrt_len_tokens, PoolingMode::MeanSqrtLen),
        ]
        .into_iter()
        .filter_map(|(on, m)| on.then_some(m))
        .collect();
        match modes.as_slice() {
            [m] => Ok(*m),
            [] => Err(Error::Config {
                path: path.into(),
                field: "pooling_mode_*".into(),
                message: "no pooling mode is enabled".into(),
            }),
            _ => Err(Error::Config {
                path: path.into(),
                field: "pooling_mode_*".into(),
                message: format!("several pooling modes at once ({modes:?}) are not supported"),
            }),
        }
    }
}

/// `sentence_bert_config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceBertConfig {
    /// Inputs are truncated to this many tokens (special tokens included).
    pub max_seq_length: usize,
    /// Lower-casing done by sentence-transformers before the tokenizer.
    #[serde(default)]
    pub do_lower_case: bool,
}

/// One entry of `modules.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StModule {
    /// Position in the pipeline.
    pub idx: usize,
    /// Module name.
    pub name: String,
    /// Sub-folder holding the module's files ("" for the transformer).
    pub path: String,
    /// Python class, e.g. `sentence_transformers.models.Pooling`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minilm_config_parses_with_defaults() {
        let json = r#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
            "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu",
            "layer_norm_eps": 1e-12, "architectures": ["BertModel"]}"#;
        let c: BertConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.head_dim(), 32);
        assert_eq!(c.max_position_embeddings, 512);
        assert_eq!(c.hidden_act, HiddenAct::Gelu);
        assert!(c.extra.contains_key("architectures"));
        c.validate(Path::new("config.json")).unwrap();
    }

    #[test]
    fn families_and_refusals() {
        let parse = |model_type: &str| -> BertConfig {
            serde_json::from_str(&format!(r#"{{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 8, "pad_token_id": 1,
                "max_position_embeddings": 66, "model_type": "{model_type}"}}"#)).unwrap()
        };
        for (t, family, offset) in [("bert", Family::Bert, 0), ("roberta", Family::Roberta, 2), ("xlm-roberta", Family::Roberta, 2), ("mpnet", Family::MpNet, 2)] {
            let c = parse(t);
            c.validate(Path::new("config.json")).unwrap();
            assert_eq!((c.family(), c.position_offset(), c.max_input_len()), (family, offset, 66 - offset), "{t}");
        }
        for (t, says) in [("modernbert", "ModernBERT"), ("llama", "decoder"), ("distilbert", "DistilBERT"), ("electra", "`electra`")] {
            let err = parse(t).validate(Path::new("config.json")).unwrap_err().to_string();
            assert!(err.contains("model_type") && err.contains(says) && err.contains("supported: bert"), "{t}: {err}");
        }
    }

    #[test]
    fn heads_must_divide_hidden() {
        let json = r#"{"vocab_size": 10, "hidden_size": 10, "num_hidden_layers": 1,
            "num_attention_heads": 3, "intermediate_size": 8}"#;
        let c: BertConfig = serde_json::from_str(json).unwrap();
        let err = c.validate(Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("num_attention_heads"), "{err}");
    }

    #[test]
    fn pooling_mode_is_exactly_one() {
        let p = PoolingConfig::for_mode(PoolingMode::Cls, 8);
        assert_eq!(p.mode(Path::new("p")).unwrap(), PoolingMode::Cls);
        let mut both = p.clone();
        both.pooling_mode_mean_tokens = true;
        assert!(both.mode(Path::new("p")).is_err());
    }
}
