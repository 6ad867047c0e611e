//! Model configuration files of the Hugging Face and sentence-transformers layouts.
//!
//! `config.json` is mirrored by [`BertConfig`] (optional keys have the defaults of
//! `transformers.BertConfig`); `1_Pooling/config.json` by [`PoolingConfig`];
//! `sentence_bert_config.json` by [`SentenceBertConfig`]; `modules.json` by [`StModule`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
    /// `model_type` ("bert", "roberta" is refused: different position ids).
    #[serde(default = "default_model_type")]
    pub model_type: String,
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
        if !matches!(self.model_type.as_str(), "bert" | "distilbert_as_bert" | "minilm") {
            return Err(bad(
                "model_type",
                format!("`{}` is not a BERT-family encoder this tool runs (expected \"bert\")", self.model_type),
            ));
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
        ] {
            if v == 0 {
                return Err(bad(field, "must be positive".into()));
            }
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
        Ok(())
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
        }
    }

    /// The one pooling mode this file selects; several modes at once (concatenation) are refused.
    pub fn mode(&self, path: &Path) -> Result<PoolingMode> {
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

/// Reads a JSON file into `T`, with errors that name the file, line and column.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse_json(&bytes, path)
}

/// Parses the bytes of the JSON file `path` (named in errors, with line and column) into `T`.
pub fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], path: &Path) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Parse { path: PathBuf::from(path), format: "JSON", message: e.to_string() })
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serialising a config cannot fail");
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
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
