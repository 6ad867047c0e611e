//! Encoders with random weights: the shape a `config.json` describes (a BERT-base-sized
//! encoder, say) with the tokenizer and pooling head of a model folder. For measurements that
//! need a model's size but not its weights (`iftcl bench train --random-weights`), so that no
//! weight file has to exist or travel.

use std::path::Path;

use burn::tensor::Device;

use crate::device::cpu_device;
use crate::encoder::{SentenceEncoder, check_vocab};
use crate::error::{Error, Result};
use crate::hf_config::{BertConfig, parse_json};
use crate::model::BertModel;

impl SentenceEncoder {
    /// An encoder of the shape in `config_path` (a Hugging Face `config.json`) with random
    /// weights (burn's initialisers, drawn from `seed`), on `device`, taking the tokenizer and
    /// the pooling head from the model folder `tokenizer_dir`.
    ///
    /// The tokenizer's ids must fit the config's `vocab_size`; its truncation length is capped
    /// at the longest input the config's positions cover.
    pub fn random(config_path: &Path, tokenizer_dir: &Path, device: &Device, seed: u64) -> Result<Self> {
        let bytes = std::fs::read(config_path).map_err(|e| Error::io("read", config_path, e))?;
        let config: BertConfig = parse_json(&bytes, config_path)?;
        config.validate(config_path)?;
        // burn allocates every parameter at once: refuse a shape that cannot fit first.
        let bytes = crate::train::memory::parameter_count(&config).saturating_mul(4);
        if let Some(limit) = crate::train::memory::physical_memory().filter(|&m| bytes > m) {
            return Err(Error::Config {
                path: config_path.to_path_buf(),
                field: "hidden_size".into(),
                message: format!(
                    "a model of this shape (hidden_size {}, intermediate_size {}, num_hidden_layers {}, vocab_size {}) has {} of weights, \
                     more than this machine's {} of memory",
                    config.hidden_size,
                    config.intermediate_size,
                    config.num_hidden_layers,
                    config.vocab_size,
                    crate::train::memory::human_bytes(bytes),
                    crate::train::memory::human_bytes(limit)
                ),
            });
        }
        // The donor's weights stay on the CPU: only its tokenizer and head are kept.
        let donor = SentenceEncoder::load(tokenizer_dir, &cpu_device().device)?;
        let mut tokenizer = donor.tokenizer;
        check_vocab(&tokenizer, &config, &tokenizer_dir.join("tokenizer.json"))?;
        if tokenizer.max_len() > config.max_input_len() {
            tokenizer = tokenizer.with_max_len(config.max_input_len())?;
        }
        device.seed(seed);
        let model = BertModel::init(&config, device);
        Ok(SentenceEncoder::from_parts(config, model, tokenizer, donor.head, donor.extras, device))
    }
}
