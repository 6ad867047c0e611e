//! [`SentenceEncoder::fingerprint`]: what an encoder's vectors depend on, as one hash. A
//! semantic index records it so that a caller knows when stored vectors come from another model
//! (another folder, or the same one after a fine-tune) and must be computed again.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use sha2::{Digest, Sha256};

use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::hf_config::PoolingConfig;

/// Hashes every float parameter's shape and values, in the module's visiting order.
struct ParamHasher {
    hash: Sha256,
    failed: Option<Error>,
}

impl ModuleVisitor for ParamHasher {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.failed.is_some() {
            return;
        }
        let tensor = param.val();
        for d in tensor.dims() {
            self.hash.update((d as u64).to_le_bytes());
        }
        crate::host_reads::note();
        match tensor.into_data().try_into_vec_as::<f32>() {
            Ok(values) => {
                for v in values {
                    self.hash.update(v.to_le_bytes());
                }
            }
            Err(e) => self.failed = Some(Error::execution(e)),
        }
    }
}

impl SentenceEncoder {
    /// SHA-256 (hex) over what this encoder's vectors depend on: every weight's shape and value
    /// (read from the device once: on a GPU that is a read-back of the whole model), the
    /// config, the pooling, the modules after it and normalisation, the prompt and the truncation
    /// length. Two encoders
    /// with the same fingerprint give the same vectors on the same device. Not cached: compute
    /// it once per model and keep it.
    pub fn fingerprint(&self) -> Result<String> {
        let mut hasher = ParamHasher { hash: Sha256::new(), failed: None };
        self.model.visit(&mut hasher);
        if let Some(e) = hasher.failed {
            return Err(e);
        }
        let mut hash = hasher.hash;
        let describe = |what: &str, v: serde_json::Result<Vec<u8>>| v.map_err(|e| Error::Execution(format!("fingerprint: cannot serialise the {what}: {e}")));
        hash.update(describe("config", serde_json::to_vec(&self.config))?);
        hash.update(describe("pooling", serde_json::to_vec(&PoolingConfig::for_mode(self.head.pooling, self.config.hidden_size)))?);
        // The modules after pooling: their folders' files, weights included, as they were read.
        for m in &self.head.modules {
            hash.update(m.spec.kind_name().as_bytes());
            for (name, bytes) in &m.spec.files {
                hash.update(name.as_bytes());
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(bytes);
            }
        }
        hash.update([u8::from(self.head.normalize)]);
        hash.update((self.tokenizer.max_len() as u64).to_le_bytes());
        match self.prompt() {
            Some(p) => {
                hash.update([1]);
                hash.update(p.as_bytes());
            }
            None => hash.update([0]),
        }
        Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}
