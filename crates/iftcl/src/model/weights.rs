//! Reading `model.safetensors` in the Hugging Face naming of each family (writing it:
//! `weights_out`).
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
//!
//! Loading goes from the file's bytes to each tensor's buffer in one pass: a tensor's values
//! are widened from F16/BF16 (or dequantised from int8, [`super::int8`]) and, for a dense
//! layer's weight, transposed, straight into the `Vec<f32>` the device tensor is made from.
//! Saving writes f32 unless a [`Precision`](super::precision::Precision) says otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::{Param, ParamId};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::widen::{Element, Layout, widen};
use super::int8::{self, METADATA_KEY, ROWS_V1, SCALE_SUFFIX, VALUES_SUFFIX};
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
/// The embedding table an int8 file quantizes (the others, and every vector, stay f32).
pub(crate) const QUANTIZED_EMBEDDING: &str = "embeddings.word_embeddings";

/// The name the encoder asks for of the file's tensor `name` (a prefix of [`PREFIXES`] taken
/// off), or `None` for a tensor it does not use.
pub(crate) fn key_of(name: &str) -> Option<&str> {
    let key = PREFIXES.iter().find_map(|p| name.strip_prefix(p)).unwrap_or(name);
    (!IGNORED.iter().any(|p| key.starts_with(p)) && !key.ends_with("position_ids")).then_some(key)
}

/// One tensor of the file, its bytes borrowed from the file's.
enum Stored<'a> {
    /// A floating tensor (F32, F16, BF16 or F64).
    Float { name: String, dtype: Dtype, shape: Vec<usize>, data: &'a [u8] },
    /// An int8 matrix `[rows, cols]` (`X.weight.int8`) and its checked scales (`X.weight.scale`).
    Int8 { name: String, shape: Vec<usize>, values: &'a [u8], scales: Vec<f32> },
    /// A tensor (of either kind above, `int8` for the second) whose values were converted
    /// before the whole file was there.
    Converted { name: String, shape: Vec<usize>, layout: Layout, values: Vec<f32>, bad: Option<usize>, int8: bool },
}

/// A tensor's values converted before the whole file was there: in `layout`, with the position
/// of the first that is not finite.
#[derive(Debug)]
pub(crate) struct Converted {
    pub layout: Layout,
    pub values: Vec<f32>,
    pub bad: Option<usize>,
}

impl Stored<'_> {
    fn name(&self) -> &str {
        match self {
            Stored::Float { name, .. } | Stored::Int8 { name, .. } | Stored::Converted { name, .. } => name,
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            Stored::Float { shape, .. } | Stored::Int8 { shape, .. } | Stored::Converted { shape, .. } => shape,
        }
    }
}

/// The tensors of a safetensors file, keyed by name without the prefix of [`PREFIXES`] (an
/// int8 matrix under the name of the f32 tensor it stands for, `X.weight`). Nothing is
/// converted until a tensor is taken.
pub(crate) struct WeightSource<'a> {
    path: PathBuf,
    tensors: BTreeMap<String, Stored<'a>>,
    device: Device,
}

/// An int8 matrix's two tensors as the file holds them: (full name, view) of each.
type Halves<'a> = BTreeMap<String, (String, safetensors::tensor::TensorView<'a>)>;

impl<'a> WeightSource<'a> {
    /// Reads the header of the safetensors `bytes` and checks every tensor's dtype and the
    /// int8 layout's scales; `path` only names the source in errors.
    pub(crate) fn from_bytes(bytes: &'a [u8], path: &Path, device: &Device) -> Result<Self> {
        let corrupt = |e: safetensors::SafeTensorError| Error::CorruptWeights { path: path.to_path_buf(), message: e.to_string() };
        let st = SafeTensors::deserialize(bytes).map_err(corrupt)?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
        let layout = header.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)).cloned();
        let mut tensors = BTreeMap::new();
        let (mut values, mut scales): (Halves<'a>, Halves<'a>) = (BTreeMap::new(), BTreeMap::new());
        for (name, view) in st.tensors() {
            let Some(key) = key_of(&name) else { continue };
            let key = key.to_string();
            let twice = || Error::CorruptWeights {
                path: path.to_path_buf(),
                message: format!("tensor `{name}` is stored twice, with and without a prefix ({})", PREFIXES.join(" ")),
            };
            let half = |suffix: &str| key.strip_suffix(suffix).filter(|base| base.ends_with(".weight")).map(str::to_string);
            if let Some(base) = half(VALUES_SUFFIX) {
                values.insert(base, (name.clone(), view)).map_or(Ok(()), |_| Err(twice()))?;
                continue;
            }
            if let Some(base) = half(SCALE_SUFFIX) {
                scales.insert(base, (name.clone(), view)).map_or(Ok(()), |_| Err(twice()))?;
                continue;
            }
            if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64) {
                return Err(Error::UnsupportedDtype { path: path.to_path_buf(), name, dtype: format!("{:?}", view.dtype()) });
            }
            if tensors.contains_key(&key) {
                return Err(twice());
            }
            let stored = Stored::Float { name, dtype: view.dtype(), shape: view.shape().to_vec(), data: view.data() };
            tensors.insert(key, stored);
        }
        let bad = |name: &str, message: String| Error::InvalidTensor { path: path.to_path_buf(), name: name.to_string(), message };
        // The int8 layout is read only when the header names it.
        if let Some((name, _)) = values.values().chain(scales.values()).next() {
            let found = match &layout {
                None => "has no such key".to_string(),
                Some(v) => format!("says \"{v}\", a layout this iftcl does not read"),
            };
            if layout.as_deref() != Some(ROWS_V1) {
                return Err(bad(name, format!(
                    "is part of an int8 weight matrix, but the file's __metadata__ key `{METADATA_KEY}` {found} (expected \"{ROWS_V1}\"); the file is damaged or was written by another tool"
                )));
            }
        }
        for (base, (name, view)) in values {
            let Some((scale_name, scale)) = scales.remove(&base) else {
                let want = name.strip_suffix(VALUES_SUFFIX).map_or(base.clone(), str::to_string) + SCALE_SUFFIX;
                return Err(bad(&name, format!("has no scales beside it: tensor `{want}` is missing")));
            };
            if view.dtype() != Dtype::I8 || view.shape().len() != 2 {
                return Err(bad(&name, format!("must be an I8 matrix, not {:?} of shape {:?}", view.dtype(), view.shape())));
            }
            if scale.dtype() != Dtype::F32 {
                return Err(bad(&scale_name, format!("must hold F32 scales, not {:?}", scale.dtype())));
            }
            let rows = view.shape()[0];
            let s: Vec<f32> = scale.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if scale.shape().len() != 1 {
                return Err(bad(&scale_name, format!("has shape {:?}; the scales of a matrix of {rows} rows have shape [{rows}]", scale.shape())));
            }
            if let Some(fault) = int8::scales_fault(&s, rows) {
                return Err(bad(&scale_name, fault));
            }
            if tensors.contains_key(&base) {
                return Err(bad(&name, format!("and `{base}` are both stored: the file holds the matrix twice")));
            }
            tensors.insert(base, Stored::Int8 { name, shape: view.shape().to_vec(), values: view.data(), scales: s });
        }
        if let Some((_, (name, _))) = scales.into_iter().next() {
            let want = name.strip_suffix(SCALE_SUFFIX).map_or(String::new(), str::to_string) + VALUES_SUFFIX;
            return Err(bad(&name, format!("has no int8 values beside it: tensor `{want}` is missing")));
        }
        Ok(WeightSource { path: path.to_path_buf(), tensors, device: device.clone() })
    }

    /// Whether the file holds int8 matrices.
    pub(crate) fn holds_int8(&self) -> bool {
        self.tensors.values().any(|t| matches!(t, Stored::Int8 { .. } | Stored::Converted { int8: true, .. }))
    }

    /// Refuses a `config.json` (at `config_path`) whose shapes need more values than the file
    /// holds, before a model of that shape is built: each tensor's shape is compared on load, but
    /// a hostile `num_hidden_layers` would allocate its layers first.
    pub(crate) fn check_fits(&self, config: &BertConfig, config_path: &Path) -> Result<()> {
        let held: u128 = self.tensors.values().map(|t| t.shape().iter().map(|&d| d as u128).product::<u128>()).sum();
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

    /// The values of tensor `name` (of checkpoint shape `expected`) as f32, transposed to
    /// `[cols, rows]` when `transpose`: one pass from the file's bytes into the returned buffer
    /// (none when [`Self::adopt`] gave the values already).
    pub(crate) fn take(&mut self, name: &str, expected: &[usize], transpose: bool) -> Result<Vec<f32>> {
        let stored = self.tensors.remove(name).ok_or_else(|| Error::MissingTensor { path: self.path.clone(), name: name.to_string() })?;
        if stored.shape() != expected {
            return Err(Error::ShapeMismatch { path: self.path.clone(), name: stored.name().to_string(), expected: expected.to_vec(), actual: stored.shape().to_vec() });
        }
        let layout = Layout::of(expected, transpose);
        let (name, values, bad) = match stored {
            Stored::Int8 { values, scales, .. } => return Ok(widen(Element::Int8 { scales: &scales }, values, layout).0),
            Stored::Float { name, dtype, data, .. } => {
                let element = Element::float(dtype).ok_or_else(|| Error::UnsupportedDtype { path: self.path.clone(), name: name.clone(), dtype: format!("{dtype:?}") })?;
                let (values, bad) = widen(element, data, layout);
                (name, values, bad)
            }
            Stored::Converted { name, values, layout: had, bad, int8, .. } => {
                if had != layout {
                    let values = relayout(&values, had, layout);
                    let bad = values.iter().position(|x| !x.is_finite());
                    (name, values, bad)
                } else if int8 {
                    return Ok(values);
                } else {
                    (name, values, bad)
                }
            }
        };
        // A NaN or an infinity makes every embedding NaN: refuse the file, naming the tensor and
        // the value's position in it.
        if let Some(k) = bad {
            let index = if layout.transpose { (k % layout.rows) * layout.cols + k / layout.rows } else { k };
            return Err(Error::NonFiniteWeights { path: self.path.clone(), name, index, value: values[k] });
        }
        Ok(values)
    }

    /// Takes the values of tensors converted while the file arrived
    /// ([`super::weights_stream::IncomingWeights`]), by the file's tensor name: a tensor whose
    /// stored shape matches is served from them instead of from the bytes.
    pub(crate) fn adopt(&mut self, converted: BTreeMap<String, Converted>) {
        let mut converted = converted;
        for stored in self.tensors.values_mut() {
            let Some(c) = converted.get(stored.name()) else { continue };
            if Layout::of(stored.shape(), c.layout.transpose) != c.layout {
                continue;
            }
            let Converted { layout, values, bad } = converted.remove(stored.name()).expect("looked up above");
            let int8 = matches!(stored, Stored::Int8 { .. });
            *stored = Stored::Converted { name: stored.name().to_string(), shape: stored.shape().to_vec(), layout, values, bad, int8 };
        }
    }

    pub(crate) fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let values = self.take(name, &shape, false)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), &self.device))
    }
}

/// `values` in layout `from` rearranged into `to` (the same tensor, transposed or not).
fn relayout(values: &[f32], from: Layout, to: Layout) -> Vec<f32> {
    let file_order = if from.transpose { transpose(values, from.cols, from.rows) } else { values.to_vec() };
    if to.transpose { transpose(&file_order, to.rows, to.cols) } else { file_order }
}

impl ParamIo for WeightSource<'_> {
    fn linear(&mut self, name: &str, layer: &mut Linear, d_in: usize, d_out: usize) -> Result<()> {
        let w = self.take(&format!("{name}.weight"), &[d_out, d_in], true)?;
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

/// The names of the dense layers' weights (`X.weight`), which a load transposes.
#[derive(Default)]
pub(crate) struct DenseWeights(pub BTreeSet<String>);

impl ParamIo for DenseWeights {
    fn linear(&mut self, name: &str, _: &mut Linear, _: usize, _: usize) -> Result<()> {
        self.0.insert(format!("{name}.weight"));
        Ok(())
    }

    fn layer_norm(&mut self, _: &str, _: &mut LayerNorm, _: usize) -> Result<()> {
        Ok(())
    }

    fn embedding(&mut self, _: &str, _: &mut Embedding, _: usize, _: usize) -> Result<()> {
        Ok(())
    }
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
pub(crate) fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
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

    const PATH: &str = "m/model.safetensors";

    fn source(bytes: &[u8]) -> Result<WeightSource<'_>> {
        WeightSource::from_bytes(bytes, Path::new(PATH), &Device::flex())
    }

    /// A safetensors file of raw tensors with `__metadata__` `meta`.
    fn raw_file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: Option<(&str, &str)>) -> Vec<u8> {
        let views: Vec<_> = tensors.iter().map(|(n, d, s, b)| (n.to_string(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
        let meta = meta.map(|(k, v)| std::collections::HashMap::from([(k.to_string(), v.to_string())]));
        safetensors::serialize(views, meta).unwrap()
    }

    fn scales(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn damaged_int8_files_are_refused_by_name() {
        let q = ("l.weight.int8", Dtype::I8, vec![2, 2], vec![1u8, 2, 3, 4]);
        let s = |v: &[f32]| ("l.weight.scale", Dtype::F32, vec![v.len()], scales(v));
        let v1 = Some((METADATA_KEY, ROWS_V1));
        let refused = |tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: Option<(&str, &str)>, says: &[&str]| {
            let bytes = raw_file(tensors, meta);
            let e = source(&bytes).err().unwrap_or_else(|| panic!("accepted: {says:?}")).to_string();
            assert!(e.contains(PATH) && says.iter().all(|w| e.contains(w)), "{e}\nshould say {says:?}");
        };
        // The key is missing or names another layout: refused naming the tensor and the key.
        refused(&[q.clone(), s(&[1.0, 1.0])], None, &["`l.weight.int8`", "iftcl.quantization", "has no such key", "int8-rows-v1"]);
        refused(&[q.clone(), s(&[1.0, 1.0])], Some((METADATA_KEY, "int4-v9")), &["iftcl.quantization", "says \"int4-v9\""]);
        refused(&[s(&[1.0, 1.0])], None, &["`l.weight.scale`", "iftcl.quantization"]);
        // Scales missing, not finite, not positive, of the wrong length or dtype.
        refused(&[q.clone()], v1, &["`l.weight.int8`", "tensor `l.weight.scale` is missing"]);
        refused(&[s(&[1.0, 1.0])], v1, &["`l.weight.scale`", "tensor `l.weight.int8` is missing"]);
        refused(&[q.clone(), s(&[1.0, f32::NAN])], v1, &["`l.weight.scale`", "holds NaN as scale 1"]);
        refused(&[q.clone(), s(&[f32::INFINITY, 1.0])], v1, &["`l.weight.scale`", "holds inf as scale 0"]);
        refused(&[q.clone(), s(&[0.0, 1.0])], v1, &["`l.weight.scale`", "holds 0 as scale 0", "positive"]);
        refused(&[q.clone(), s(&[-0.5, 1.0])], v1, &["holds -0.5 as scale 0"]);
        refused(&[q.clone(), s(&[1.0])], v1, &["`l.weight.scale`", "1 scales for a matrix of 2 rows"]);
        refused(&[q.clone(), ("l.weight.scale", Dtype::F16, vec![2], vec![0, 60, 0, 60])], v1, &["`l.weight.scale`", "F32"]);
        refused(&[("l.weight.int8", Dtype::U8, vec![2, 2], vec![1, 2, 3, 4]), s(&[1.0, 1.0])], v1, &["`l.weight.int8`", "I8 matrix"]);
        // The matrix stored twice.
        let f = ("l.weight", Dtype::F32, vec![2, 2], scales(&[1.0; 4]));
        refused(&[q.clone(), s(&[1.0, 1.0]), f], v1, &["`l.weight.int8`", "`l.weight` are both stored"]);
        // Whole: the values dequantised.
        let bytes = raw_file(&[q, s(&[0.5, 2.0])], v1);
        assert_eq!(source(&bytes).unwrap().take("l.weight", &[2, 2], false).unwrap(), vec![0.5, 1.0, 6.0, 8.0]);
    }
}
