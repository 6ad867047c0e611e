//! The sentence-transformers modules a model folder's `modules.json` lists after its Pooling
//! module: `Dense`, `LayerNorm` and `Normalize`, read from their folders and applied in the
//! order listed, as sentence-transformers applies them. Any other module is refused by name
//! (rather than skipped, which would give other vectors than the model's without a word).
//!
//! - `Dense` (`<path>/config.json`: `in_features`, `out_features`, `bias`,
//!   `activation_function`, `use_residual`; `<path>/model.safetensors`: `linear.weight`
//!   `[out, in]`, `linear.bias`, and `residual.weight` for a residual of another width):
//!   `y = act(x Wᵀ + b)`, plus `x` (or `x Rᵀ`) when `use_residual`. The activations are the
//!   `torch.nn` modules Identity, Tanh, ReLU, Sigmoid and GELU (exact, erf).
//! - `LayerNorm` (`dimension`; `norm.weight`, `norm.bias`): PyTorch's `nn.LayerNorm`, eps 1e-5.
//! - `Normalize`: L2 normalisation (`F.normalize`, norm floored at 1e-12).
//!
//! [`parse`] reads what a folder's files say (no device, no tensors: [`super::ModelFiles`]);
//! [`HeadModule::load`] puts a module's weights on a device.

use std::path::Path;

use burn::tensor::activation::{gelu, relu, sigmoid, tanh};
use burn::tensor::{Device, Tensor};
use serde::Deserialize;

use super::pooling::l2_normalize;
use super::weights::WeightSource;
use crate::error::{Error, Result};
use crate::hf_config::{StModule, parse_json};

/// The name sentence-transformers passes sentence vectors under between modules.
const SENTENCE_EMBEDDING: &str = "sentence_embedding";

/// `nn.LayerNorm`'s default epsilon, which sentence-transformers' LayerNorm module keeps.
const LAYER_NORM_EPS: f64 = 1e-5;

/// The modules this tool runs, for messages.
const SUPPORTED: &str = "Transformer, then Pooling, then any of Dense, LayerNorm and Normalize";

/// What a module of `modules.json` is, by its class name (`sentence_transformers.models.Dense`
/// and `sentence_transformers.base.modules.dense.Dense` alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleClass {
    /// The transformer (the model folder itself).
    Transformer,
    /// Pooling over tokens.
    Pooling,
    /// A linear layer with an activation.
    Dense,
    /// Layer normalisation of the sentence vector.
    LayerNorm,
    /// L2 normalisation.
    Normalize,
}

impl ModuleClass {
    /// The class of a `type` string, or None for a module this tool does not run.
    pub fn of(kind: &str) -> Option<Self> {
        match kind.rsplit('.').next().unwrap_or(kind) {
            "Transformer" => Some(ModuleClass::Transformer),
            "Pooling" => Some(ModuleClass::Pooling),
            "Dense" => Some(ModuleClass::Dense),
            "LayerNorm" => Some(ModuleClass::LayerNorm),
            "Normalize" => Some(ModuleClass::Normalize),
            _ => None,
        }
    }
}

/// A `torch.nn` activation a Dense module names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `torch.nn.Identity`.
    Identity,
    /// `torch.nn.Tanh` (sentence-transformers' default).
    Tanh,
    /// `torch.nn.ReLU`.
    Relu,
    /// `torch.nn.Sigmoid`.
    Sigmoid,
    /// `torch.nn.GELU` (exact, with erf).
    Gelu,
}

impl Activation {
    fn of(name: &str) -> Option<Self> {
        let class = name.strip_prefix("torch.nn.")?.rsplit('.').next()?;
        match class {
            "Identity" => Some(Activation::Identity),
            "Tanh" => Some(Activation::Tanh),
            "ReLU" => Some(Activation::Relu),
            "Sigmoid" => Some(Activation::Sigmoid),
            "GELU" => Some(Activation::Gelu),
            _ => None,
        }
    }

    fn apply(self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Activation::Identity => x,
            Activation::Tanh => tanh(x),
            Activation::Relu => relu(x),
            Activation::Sigmoid => sigmoid(x),
            Activation::Gelu => gelu(x),
        }
    }
}

/// A Dense module's `config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DenseConfig {
    /// Input width.
    pub in_features: usize,
    /// Output width.
    pub out_features: usize,
    /// Whether `linear.bias` exists.
    #[serde(default = "yes")]
    pub bias: bool,
    /// The activation's class (`torch.nn.modules.activation.Tanh`; Tanh when absent).
    #[serde(default)]
    pub activation_function: Option<String>,
    /// Whether the input is added to the output (projected when the widths differ).
    #[serde(default)]
    pub use_residual: bool,
    /// Where the module reads its input (only the sentence vector is supported).
    #[serde(default)]
    pub module_input_name: Option<String>,
    /// Where it writes its output (only the sentence vector is supported).
    #[serde(default)]
    pub module_output_name: Option<String>,
}

fn yes() -> bool {
    true
}

/// A LayerNorm module's `config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LayerNormConfig {
    /// Width.
    pub dimension: usize,
}

/// What a module after pooling is, with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleKind {
    /// A Dense module and its activation.
    Dense(DenseConfig, Activation),
    /// A LayerNorm module.
    LayerNorm(LayerNormConfig),
    /// A Normalize module.
    Normalize,
}

/// A module after pooling as its folder describes it: what it is, where, and its files (kept
/// to be written back unchanged into folders saved from the model).
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSpec {
    /// Its entry of modules.json.
    pub entry: StModule,
    /// What it computes.
    pub kind: ModuleKind,
    /// `(file name, bytes)` of its folder's `config.json` and `model.safetensors`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl ModuleSpec {
    /// Width of the vectors it returns, given the width it takes.
    pub fn out_width(&self, width: usize) -> usize {
        match &self.kind {
            ModuleKind::Dense(c, _) => c.out_features,
            ModuleKind::LayerNorm(_) | ModuleKind::Normalize => width,
        }
    }

    /// `Dense`, `LayerNorm` or `Normalize`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ModuleKind::Dense(..) => "Dense",
            ModuleKind::LayerNorm(_) => "LayerNorm",
            ModuleKind::Normalize => "Normalize",
        }
    }

    /// The bytes of its file `name`, if it has one.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice())
    }
}

/// What `modules.json` says: which entry is the Pooling module, and the modules after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pipeline {
    /// The Pooling module's entry, if the list has one.
    pub pooling: Option<StModule>,
    /// The modules after pooling, in order.
    pub after_pooling: Vec<ModuleSpec>,
}

/// Reads `modules.json` (`bytes`; `origin` is the model folder, for messages): the modules must
/// be the Transformer, then Pooling, then Dense, LayerNorm and Normalize modules only, each
/// once configured by its folder. `file(folder, name)` returns a module folder's file, if it
/// exists.
pub fn parse(bytes: &[u8], origin: &Path, file: &dyn Fn(&str, &str) -> Result<Option<Vec<u8>>>) -> Result<Pipeline> {
    let path = origin.join("modules.json");
    let entries: Vec<StModule> = parse_json(bytes, &path)?;
    let mut pipeline = Pipeline::default();
    for (i, entry) in entries.into_iter().enumerate() {
        let bad = |message: String| Error::Config { path: path.clone(), field: format!("[{i}] `{}`", entry.kind), message };
        let Some(class) = ModuleClass::of(&entry.kind) else {
            return Err(bad(format!(
                "module `{}` (folder `{}`) is not one this tool runs ({SUPPORTED}); its vectors would not be the model's",
                entry.name, entry.path
            )));
        };
        let place = match (i, class, pipeline.pooling.is_some()) {
            (0, ModuleClass::Transformer, _) => Ok(()),
            (0, _, _) => Err("the first module must be the Transformer".to_string()),
            (_, ModuleClass::Transformer, _) => Err("only the first module may be a Transformer".into()),
            (_, ModuleClass::Pooling, true) => Err("there is already a Pooling module".into()),
            (_, ModuleClass::Pooling, false) => Ok(()),
            (_, _, false) => Err("it comes before the Pooling module (it works on sentence vectors)".into()),
            (_, _, true) => Ok(()),
        };
        place.map_err(|why| bad(format!("module `{}` is out of place: {why} ({SUPPORTED})", entry.name)))?;
        if class == ModuleClass::Pooling {
            pipeline.pooling = Some(entry);
            continue;
        }
        if class == ModuleClass::Transformer {
            continue;
        }
        let folder = origin.join(&entry.path);
        let config_path = folder.join("config.json");
        let config = file(&entry.path, "config.json")?;
        let weights = file(&entry.path, "model.safetensors")?;
        let kind = match class {
            ModuleClass::Dense | ModuleClass::LayerNorm => {
                let Some(config) = &config else {
                    return Err(Error::Missing {
                        what: format!("config of the {class:?} module `{}`", entry.name),
                        path: config_path,
                        hint: "restore the module's folder, or correct its `path` in modules.json".into(),
                    });
                };
                if weights.is_none() {
                    let hint = if file(&entry.path, "pytorch_model.bin")?.is_some() {
                        "only pytorch_model.bin is present; save the model again with sentence-transformers (safe_serialization=True)"
                    } else {
                        "restore the module's folder, or correct its `path` in modules.json"
                    };
                    return Err(Error::Missing { what: format!("weights of the {class:?} module `{}`", entry.name), path: folder.join("model.safetensors"), hint: hint.into() });
                }
                if class == ModuleClass::Dense {
                    dense_kind(config, &config_path)?
                } else {
                    ModuleKind::LayerNorm(parse_json(config, &config_path)?)
                }
            }
            _ => ModuleKind::Normalize,
        };
        let files = [("config.json", config), ("model.safetensors", weights)].into_iter().filter_map(|(n, b)| b.map(|b| (n.to_string(), b))).collect();
        pipeline.after_pooling.push(ModuleSpec { entry, kind, files });
    }
    Ok(pipeline)
}

fn dense_kind(bytes: &[u8], path: &Path) -> Result<ModuleKind> {
    let config: DenseConfig = parse_json(bytes, path)?;
    let bad = |field: &str, message: String| Error::Config { path: path.to_path_buf(), field: field.into(), message };
    for (field, name) in [("module_input_name", &config.module_input_name), ("module_output_name", &config.module_output_name)] {
        if let Some(name) = name.as_deref().filter(|n| *n != SENTENCE_EMBEDDING) {
            return Err(bad(field, format!("`{name}`: only modules that read and write the sentence vector (`{SENTENCE_EMBEDDING}`) are supported")));
        }
    }
    if config.in_features == 0 || config.out_features == 0 {
        return Err(bad("out_features", "in_features and out_features must be positive".into()));
    }
    let activation = match config.activation_function.as_deref() {
        None => Activation::Tanh,
        Some(name) => Activation::of(name).ok_or_else(|| {
            bad("activation_function", format!("`{name}` is not an activation this tool runs (torch.nn Identity, Tanh, ReLU, Sigmoid, GELU)"))
        })?,
    };
    Ok(ModuleKind::Dense(config, activation))
}

/// A module after pooling with its weights on a device.
#[derive(Clone)]
pub struct HeadModule {
    /// What its folder says (written back by saves).
    pub spec: ModuleSpec,
    weights: Weights,
}

/// The module as its folder describes it, files included (so the weights, as they were read):
/// what a model's fingerprint hashes, and no read-back from a device.
impl std::fmt::Debug for HeadModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadModule").field("spec", &self.spec).finish_non_exhaustive()
    }
}

/// Two modules are the same when their folders say the same (weights included).
impl PartialEq for HeadModule {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

#[derive(Clone)]
enum Weights {
    /// `weight` is stored transposed, `[in, out]`, so that `x.matmul(weight)` applies it.
    Dense { weight: Tensor<2>, bias: Option<Tensor<1>>, residual: Option<Tensor<2>> },
    LayerNorm { weight: Tensor<1>, bias: Tensor<1> },
    Normalize,
}

impl HeadModule {
    /// Puts `spec`'s weights on `device`; `width` is the width of the vectors it receives,
    /// which must be what its config says it takes. `folder` is the model folder (messages).
    pub fn load(spec: &ModuleSpec, width: usize, folder: &Path, device: &Device) -> Result<Self> {
        let dir = folder.join(&spec.entry.path);
        let config_path = dir.join("config.json");
        let wrong_width = |field: &str, n: usize| Error::Config {
            path: config_path.clone(),
            field: field.into(),
            message: format!("{n}, but the vectors the module receives have {width} values (from the modules before it)"),
        };
        let source = |device: &Device| match spec.file("model.safetensors") {
            Some(bytes) => WeightSource::from_bytes(bytes, &dir.join("model.safetensors"), device),
            None => Err(Error::Missing { what: "module weights".into(), path: dir.join("model.safetensors"), hint: "restore the module's folder".into() }),
        };
        let weights = match &spec.kind {
            ModuleKind::Dense(c, _) => {
                if c.in_features != width {
                    return Err(wrong_width("in_features", c.in_features));
                }
                let mut w = source(device)?;
                let weight = w.tensor::<2>("linear.weight", [c.out_features, c.in_features])?.transpose();
                let bias = c.bias.then(|| w.tensor::<1>("linear.bias", [c.out_features])).transpose()?;
                let residual = (c.use_residual && c.in_features != c.out_features)
                    .then(|| w.tensor::<2>("residual.weight", [c.out_features, c.in_features]).map(Tensor::transpose))
                    .transpose()?;
                Weights::Dense { weight, bias, residual }
            }
            ModuleKind::LayerNorm(c) => {
                if c.dimension != width {
                    return Err(wrong_width("dimension", c.dimension));
                }
                let mut w = source(device)?;
                Weights::LayerNorm { weight: w.tensor::<1>("norm.weight", [width])?, bias: w.tensor::<1>("norm.bias", [width])? }
            }
            ModuleKind::Normalize => Weights::Normalize,
        };
        Ok(HeadModule { spec: spec.clone(), weights })
    }

    /// The module applied to sentence vectors `[batch, width]`.
    pub fn apply(&self, x: Tensor<2>) -> Tensor<2> {
        match (&self.weights, &self.spec.kind) {
            (Weights::Dense { weight, bias, residual }, ModuleKind::Dense(c, activation)) => {
                let mut y = x.clone().matmul(weight.clone());
                if let Some(b) = bias {
                    y = y + b.clone().unsqueeze_dim(0);
                }
                let y = activation.apply(y);
                match (c.use_residual, residual) {
                    (false, _) => y,
                    (true, Some(r)) => y + x.matmul(r.clone()),
                    (true, None) => y + x,
                }
            }
            (Weights::LayerNorm { weight, bias }, _) => {
                let [_, d] = x.dims();
                let mean = x.clone().mean_dim(1);
                let centred = x - mean;
                let var = centred.clone().powi_scalar(2).sum_dim(1).div_scalar(d as f64);
                let normed = centred / (var + LAYER_NORM_EPS).sqrt();
                normed * weight.clone().unsqueeze_dim(0) + bias.clone().unsqueeze_dim(0)
            }
            _ => l2_normalize(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, path: &str) -> String {
        format!(r#"{{"idx": 0, "name": "{path}", "path": "{path}", "type": "{kind}"}}"#)
    }

    fn parse_list(entries: &[String], files: &[(&str, &str, &str)]) -> Result<Pipeline> {
        let json = format!("[{}]", entries.join(","));
        let lookup = |folder: &str, name: &str| Ok(files.iter().find(|f| f.0 == folder && f.1 == name).map(|f| f.2.as_bytes().to_vec()));
        parse(json.as_bytes(), Path::new("m"), &lookup)
    }

    #[test]
    fn modules_are_read_in_order_and_others_refused_by_name() {
        let st = "sentence_transformers.models";
        let dense = r#"{"in_features": 4, "out_features": 2, "activation_function": "torch.nn.modules.activation.Tanh"}"#;
        let p = parse_list(
            &[entry(&format!("{st}.Transformer"), ""), entry(&format!("{st}.Pooling"), "1_Pooling"), entry("sentence_transformers.base.modules.dense.Dense", "2_Dense"), entry(&format!("{st}.Normalize"), "3_Normalize")],
            &[("2_Dense", "config.json", dense), ("2_Dense", "model.safetensors", "not read here")],
        )
        .unwrap();
        assert_eq!(p.pooling.unwrap().path, "1_Pooling");
        assert_eq!(p.after_pooling.len(), 2);
        assert!(matches!(&p.after_pooling[0].kind, ModuleKind::Dense(c, Activation::Tanh) if c.out_features == 2 && c.bias));
        assert_eq!(p.after_pooling[1].kind, ModuleKind::Normalize);

        let e = parse_list(&[entry(&format!("{st}.Transformer"), ""), entry(&format!("{st}.Pooling"), "1_Pooling"), entry(&format!("{st}.LSTM"), "2_LSTM")], &[]).unwrap_err().to_string();
        assert!(e.contains("`sentence_transformers.models.LSTM`") && e.contains("is not one this tool runs"), "{e}");
        let e = parse_list(&[entry(&format!("{st}.Transformer"), ""), entry(&format!("{st}.WeightedLayerPooling"), "1_W")], &[]).unwrap_err().to_string();
        assert!(e.contains("WeightedLayerPooling"), "a class that merely ends in Pooling is not Pooling: {e}");
        let e = parse_list(&[entry(&format!("{st}.Transformer"), ""), entry(&format!("{st}.Dense"), "1_Dense"), entry(&format!("{st}.Pooling"), "2_Pooling")], &[]).unwrap_err().to_string();
        assert!(e.contains("comes before the Pooling module"), "{e}");
        let e = parse_list(&[entry(&format!("{st}.Transformer"), ""), entry(&format!("{st}.Pooling"), "1_Pooling"), entry(&format!("{st}.Dense"), "2_Dense")], &[]).unwrap_err().to_string();
        assert!(e.contains("config of the Dense module") && e.contains("2_Dense/config.json"), "{e}");
        let swish = r#"{"in_features": 4, "out_features": 2, "activation_function": "my.own.Swish"}"#;
        let e = parse_list(
            &[entry(&format!("{st}.Transformer"), ""), entry(&format!("{st}.Pooling"), "1_Pooling"), entry(&format!("{st}.Dense"), "2_Dense")],
            &[("2_Dense", "config.json", swish), ("2_Dense", "model.safetensors", "")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("activation_function") && e.contains("my.own.Swish"), "{e}");
    }

    #[test]
    fn layer_norm_matches_the_definition() {
        let device = Device::flex();
        let spec = ModuleSpec {
            entry: StModule { idx: 2, name: "2".into(), path: "2_LayerNorm".into(), kind: "LayerNorm".into() },
            kind: ModuleKind::LayerNorm(LayerNormConfig { dimension: 4 }),
            files: Vec::new(),
        };
        let weights = Weights::LayerNorm {
            weight: Tensor::from_data(burn::tensor::TensorData::new(vec![1.0f32, 2.0, 1.0, 1.0], [4]), &device),
            bias: Tensor::from_data(burn::tensor::TensorData::new(vec![0.0f32, 0.0, 0.0, 1.0], [4]), &device),
        };
        let m = HeadModule { spec, weights };
        let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 4]), &device);
        let y = m.apply(x).try_into_vec_as::<f32>().unwrap();
        // mean 2.5, variance 1.25 (biased): (x - 2.5) / sqrt(1.25 + 1e-5), then × w + b.
        let s = (1.25f64 + 1e-5).sqrt();
        let want = [-1.5 / s, 2.0 * -0.5 / s, 0.5 / s, 1.5 / s + 1.0];
        for (a, b) in y.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{y:?} vs {want:?}");
        }
    }
}
