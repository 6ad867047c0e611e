//! Reading and writing `model.safetensors` in the Hugging Face naming of each family.
//!
//! The name mapping lives in one place, [`crate::model::bert::BertModel::visit_params`], which
//! walks the module tree calling a [`ParamIo`] with each Hugging Face name:
//!
//! | Hugging Face name (optionally under `bert.`, `roberta.`, `mpnet.`, `model.`) | module path |
//! |-------------------------------------------------------|------------------------------------|
//! | `embeddings.word_embeddings.weight`                   | `embeddings.word.weight`           |
//! | `embeddings.position_embeddings.weight`               | `embeddings.position.weight`       |
//! | `embeddings.token_type_embeddings.weight`             | `embeddings.token_type.weight`     |
//! | `embeddings.LayerNorm.{weight,bias}`                  | `embeddings.norm.{gamma,beta}`     |
//! | `encoder.layer.{i}.attention.self.{query,key,value}`  | `layers.{i}.{query,key,value}`     |
//! | `encoder.layer.{i}.attention.output.dense`            | `layers.{i}.attn_out`              |
//! | `encoder.layer.{i}.attention.output.LayerNorm`        | `layers.{i}.attn_norm`             |
//! | `encoder.layer.{i}.intermediate.dense`                | `layers.{i}.ffn_in`                |
//! | `encoder.layer.{i}.output.dense`                      | `layers.{i}.ffn_out`               |
//! | `encoder.layer.{i}.output.LayerNorm`                  | `layers.{i}.ffn_norm`              |
//! | `encoder.relative_attention_bias.weight` (MPNet)      | `relative_bias.weight`             |
//!
//! RoBERTa and XLM-RoBERTa use BERT's names. MPNet has no token-type table and names the
//! attention `encoder.layer.{i}.attention.attn.{q,k,v,o}` and its LayerNorm
//! `encoder.layer.{i}.attention.LayerNorm`.
//!
//! Linear weights are stored `[out, in]` by PyTorch and `[in, out]` by burn: they are transposed
//! on the way in and out. Tensors the encoder does not use (`pooler.*`, `position_ids`, the
//! `cls.*`/`lm_head.*` heads of pre-training checkpoints) are ignored on load and not written on
//! save. Tied embeddings need nothing: the encoder has no output head that shares them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Param, ParamId};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::hf_config::{BertConfig, Family};

/// Visitor of the encoder's parameters by Hugging Face name.
pub(crate) trait ParamIo {
    /// A dense layer `name.weight` `[d_out, d_in]` and `name.bias` `[d_out]`.
    fn linear(&mut self, name: &str, layer: &mut Linear, d_in: usize, d_out: usize) -> Result<()>;
    /// A LayerNorm `name.weight` and `name.bias`, both `[dim]`.
    fn layer_norm(&mut self, name: &str, layer: &mut LayerNorm, dim: usize) -> Result<()>;
    /// An embedding table `name.weight` `[rows, dim]`.
    fn embedding(&mut self, name: &str, layer: &mut Embedding, rows: usize, dim: usize) -> Result<()>;
}

/// Prefixes a base model's names carry inside a checkpoint of a model with a head
/// (`BertForMaskedLM` writes `bert.embeddings...`): stripped on load.
const PREFIXES: [&str; 4] = ["bert.", "roberta.", "mpnet.", "model."];
/// Tensors the encoder does not use: the pooler, and the heads of pre-training checkpoints.
const IGNORED: [&str; 3] = ["pooler.", "cls.", "lm_head."];

/// The tensors of a safetensors file, converted to f32, keyed by name without the prefix of
/// [`PREFIXES`].
pub(crate) struct WeightSource {
    path: PathBuf,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    device: Device,
}

impl WeightSource {
    /// Decodes safetensors `bytes`; `path` only names the source in errors.
    pub(crate) fn from_bytes(bytes: &[u8], path: &Path, device: &Device) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::CorruptWeights {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let key = PREFIXES.iter().find_map(|p| name.strip_prefix(p)).unwrap_or(&name).to_string();
            if IGNORED.iter().any(|p| key.starts_with(p)) || key.ends_with("position_ids") {
                continue;
            }
            if tensors.contains_key(&key) {
                return Err(Error::CorruptWeights {
                    path: path.to_path_buf(),
                    message: format!("tensor `{name}` is stored twice, with and without a prefix ({})", PREFIXES.join(" ")),
                });
            }
            let values = to_f32(view.dtype(), view.data()).ok_or_else(|| Error::UnsupportedDtype {
                path: path.to_path_buf(),
                name: name.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            // A NaN or an infinity makes every embedding NaN: refuse the file, naming the tensor.
            if let Some(index) = values.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFiniteWeights { path: path.to_path_buf(), name: name.clone(), index, value: values[index] });
            }
            tensors.insert(key, (view.shape().to_vec(), values));
        }
        Ok(WeightSource { path: path.to_path_buf(), tensors, device: device.clone() })
    }

    /// Refuses a `config.json` (at `config_path`) whose shapes need more values than the file
    /// holds, before a model of that shape is built: each tensor's shape is compared on load, but
    /// a hostile `num_hidden_layers` would allocate its layers first.
    pub(crate) fn check_fits(&self, config: &BertConfig, config_path: &Path) -> Result<()> {
        let held: u128 = self.tensors.values().map(|(_, v)| v.len() as u128).sum();
        let n = |v: usize| v as u128;
        let (h, i) = (n(config.hidden_size), n(config.intermediate_size));
        let layer = (4 * h).saturating_mul(h).saturating_add(h.saturating_mul(i).saturating_mul(2)).saturating_add(i).saturating_add(9 * h);
        let mpnet = config.family() == Family::MpNet;
        let (types, buckets) = if mpnet { (0, n(config.relative_attention_num_buckets)) } else { (n(config.type_vocab_size), 0) };
        // (field, its value, the weights it costs).
        let parts = [
            ("hidden_size", h, 2 * h),
            ("intermediate_size", i, 0),
            ("vocab_size", n(config.vocab_size), n(config.vocab_size).saturating_mul(h)),
            ("max_position_embeddings", n(config.max_position_embeddings), n(config.max_position_embeddings).saturating_mul(h)),
            ("type_vocab_size", types, types.saturating_mul(h)),
            ("num_hidden_layers", n(config.num_hidden_layers), n(config.num_hidden_layers).saturating_mul(layer)),
            ("relative_attention_num_buckets", buckets, buckets.saturating_mul(n(config.num_attention_heads))),
        ];
        let needed = parts.iter().fold(0u128, |sum, p| sum.saturating_add(p.2));
        if needed <= held {
            return Ok(());
        }
        // A field larger than the whole file is at fault, else the one that costs most.
        let at_fault = parts.iter().find(|p| p.1 > held).or_else(|| parts.iter().max_by_key(|p| p.2));
        let field = at_fault.map_or("hidden_size", |p| p.0);
        Err(Error::Config {
            path: config_path.to_path_buf(),
            field: field.into(),
            message: format!(
                "the shapes it implies need {needed} weights but {} holds {held}; the config does not belong to these weights",
                self.path.display()
            ),
        })
    }

    fn take(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let (shape, values) = self.tensors.remove(name).ok_or_else(|| Error::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        if shape != expected {
            return Err(Error::ShapeMismatch {
                path: self.path.clone(),
                name: name.to_string(),
                expected: expected.to_vec(),
                actual: shape,
            });
        }
        Ok(values)
    }

    pub(crate) fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let values = self.take(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), &self.device))
    }
}

impl ParamIo for WeightSource {
    fn linear(&mut self, name: &str, layer: &mut Linear, d_in: usize, d_out: usize) -> Result<()> {
        let w = self.take(&format!("{name}.weight"), &[d_out, d_in])?;
        let w = transpose(&w, d_out, d_in);
        let w = Tensor::from_data(TensorData::new(w, [d_in, d_out]), &self.device);
        layer.weight = param(&format!("{name}.weight"), w);
        let b = format!("{name}.bias");
        layer.bias = Some(param(&b, self.tensor(&b, [d_out])?));
        Ok(())
    }

    fn layer_norm(&mut self, name: &str, layer: &mut LayerNorm, dim: usize) -> Result<()> {
        // Old BERT checkpoints name LayerNorm parameters gamma/beta.
        let (w, b) = if self.tensors.contains_key(&format!("{name}.gamma")) {
            (format!("{name}.gamma"), format!("{name}.beta"))
        } else {
            (format!("{name}.weight"), format!("{name}.bias"))
        };
        layer.gamma = param(&w, self.tensor(&w, [dim])?);
        layer.beta = Some(param(&b, self.tensor(&b, [dim])?));
        Ok(())
    }

    fn embedding(&mut self, name: &str, layer: &mut Embedding, rows: usize, dim: usize) -> Result<()> {
        let w = format!("{name}.weight");
        layer.weight = param(&w, self.tensor(&w, [rows, dim])?);
        Ok(())
    }
}

/// Collects the encoder's parameters under Hugging Face names, ready to serialise. Nothing is
/// read from the device until [`WeightSink::to_bytes`] (blocking) or
/// [`WeightSink::to_bytes_async`] (for a browser's WebGPU device, which cannot block).
#[derive(Default)]
pub(crate) struct WeightSink {
    /// (name, checkpoint shape, flattened values, `Some((d_in, d_out))` for a linear weight
    /// stored transposed here).
    pending: Vec<(String, Vec<usize>, Tensor<1>, Option<(usize, usize)>)>,
}

impl WeightSink {
    fn push<const D: usize>(&mut self, name: String, shape: Vec<usize>, t: Tensor<D>, transposed: Option<(usize, usize)>) {
        let n = shape.iter().product::<usize>();
        self.pending.push((name, shape, t.reshape([n]), transposed));
    }
}

fn finish(values: Vec<f32>, transposed: Option<(usize, usize)>) -> Vec<f32> {
    match transposed {
        Some((d_in, d_out)) => transpose(&values, d_in, d_out),
        None => values,
    }
}

impl ParamIo for WeightSink {
    fn linear(&mut self, name: &str, layer: &mut Linear, d_in: usize, d_out: usize) -> Result<()> {
        self.push(format!("{name}.weight"), vec![d_out, d_in], layer.weight.val(), Some((d_in, d_out)));
        if let Some(b) = &layer.bias {
            self.push(format!("{name}.bias"), vec![d_out], b.val(), None);
        }
        Ok(())
    }

    fn layer_norm(&mut self, name: &str, layer: &mut LayerNorm, dim: usize) -> Result<()> {
        self.push(format!("{name}.weight"), vec![dim], layer.gamma.val(), None);
        if let Some(b) = &layer.beta {
            self.push(format!("{name}.bias"), vec![dim], b.val(), None);
        }
        Ok(())
    }

    fn embedding(&mut self, name: &str, layer: &mut Embedding, rows: usize, dim: usize) -> Result<()> {
        self.push(format!("{name}.weight"), vec![rows, dim], layer.weight.val(), None);
        Ok(())
    }
}

impl WeightSink {
    /// Reads every tensor (blocking) and serialises them as safetensors bytes (f32).
    pub(crate) fn to_bytes(self) -> Result<Vec<u8>> {
        let mut values = Vec::with_capacity(self.pending.len());
        for (name, shape, t, transposed) in self.pending {
            let v = t.try_into_vec_as::<f32>().map_err(|e| Error::Execution(format!("reading {name}: {e:?}")))?;
            values.push((name, shape, finish(v, transposed)));
        }
        serialize(values)
    }

    /// [`Self::to_bytes`] with asynchronous reads.
    pub(crate) async fn to_bytes_async(self) -> Result<Vec<u8>> {
        let mut values = Vec::with_capacity(self.pending.len());
        for (name, shape, t, transposed) in self.pending {
            let data = t.into_data_async().await.map_err(|e| Error::Execution(format!("reading {name}: {e:?}")))?;
            let v = data.try_into_vec_as::<f32>().map_err(|e| Error::Execution(format!("reading {name}: {e:?}")))?;
            values.push((name, shape, finish(v, transposed)));
        }
        serialize(values)
    }
}

/// safetensors bytes (f32, little-endian, sorted by name) of (name, shape, values).
fn serialize(mut tensors: Vec<(String, Vec<usize>, Vec<f32>)>) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.into_iter().map(|(name, shape, v)| (name, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let views = raw
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Execution(format!("serialising {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Execution(format!("serialising weights: {e}")))
}

/// A parameter whose id is derived from its checkpoint name, so the same model loaded twice has
/// the same ids: optimizer state saved by one run applies to the resumed one.
fn param<const D: usize>(name: &str, tensor: Tensor<D>) -> Param<Tensor<D>> {
    Param::initialized(ParamId::from(stable_id(name)), tensor)
}

/// FNV-1a of the name: stable across runs and platforms.
pub(crate) fn stable_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Row-major `[rows, cols]` -> `[cols, rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let v = match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| burn::tensor::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| burn::tensor::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32)
            .collect(),
        _ => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_round_trips() {
        let v: Vec<f32> = (0..6).map(|x| x as f32).collect();
        let t = transpose(&v, 2, 3);
        assert_eq!(t, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(transpose(&t, 3, 2), v);
    }

    #[test]
    fn non_finite_weights_are_refused_by_name() {
        let good = ("embeddings.LayerNorm.bias".to_string(), vec![2], vec![0.5, -1.0]);
        let bad = ("encoder.layer.3.output.dense.bias".to_string(), vec![3], vec![0.0, 1.0, f32::INFINITY]);
        let bytes = serialize(vec![good.clone(), bad]).unwrap();
        let path = Path::new("m/model.safetensors");
        let e = WeightSource::from_bytes(&bytes, path, &Device::flex()).err().expect("an infinity is refused").to_string();
        assert!(e.contains("m/model.safetensors") && e.contains("encoder.layer.3.output.dense.bias") && e.contains("inf at position 2"), "{e}");
        WeightSource::from_bytes(&serialize(vec![good]).unwrap(), path, &Device::flex()).expect("finite weights load");
    }

    #[test]
    fn half_precision_converts() {
        let one = burn::tensor::f16::from_f32(1.5).to_le_bytes();
        assert_eq!(to_f32(Dtype::F16, &one).unwrap(), vec![1.5]);
        assert!(to_f32(Dtype::I64, &[0; 8]).is_none());
    }
}
