//! Model folders in the Hugging Face + sentence-transformers layout: reading their files (from
//! disk or from bytes, as the browser passes them) and writing them atomically.
//!
//! A folder holds `config.json`, `model.safetensors` and `tokenizer.json` (Hugging Face), and
//! optionally `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json` and
//! `config_sentence_transformers.json` (sentence-transformers).

use std::path::{Path, PathBuf};

use super::BertModel;
use super::precision::Precision;
use super::st_modules::{self, ModuleKind, ModuleSpec, Pipeline};
use super::weights_out::WeightSink;
use super::Head;
use crate::error::{Error, Result};
use crate::hf_config::{BertConfig, PoolingConfig, SentenceBertConfig, StModule, parse_json, write_json};
use crate::tokenize::TextTokenizer;

/// The files of a model folder, read and checked for what the encoder needs from them.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: Vec<u8>,
    /// `model.safetensors`.
    pub weights: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// `1_Pooling/config.json`, if any (mean pooling otherwise).
    pub pooling: Option<Vec<u8>>,
    /// Where `pooling` was read from (the folder modules.json names), for error messages.
    pub pooling_path: PathBuf,
    /// `max_seq_length` from `sentence_bert_config.json`, if any.
    pub max_seq_length: Option<usize>,
    /// Lower-case inputs before tokenising (`sentence_bert_config.json`'s `do_lower_case`).
    pub lower_case: bool,
    /// Whether `modules.json` lists a `Normalize` module last (true when there is no
    /// modules.json).
    pub normalize: bool,
    /// The modules after pooling, in order, a last Normalize excepted (see `normalize`).
    pub modules: Vec<ModuleSpec>,
    /// Files kept for the folders saved from this one (prompts, tokenizer companions).
    pub extras: FolderExtras,
    /// Where the files came from (for error messages).
    pub origin: PathBuf,
}

/// Tokenizer files Python's `transformers` reads beside `tokenizer.json` (special tokens, the
/// tokenizer class): copied unchanged into folders saved from a model.
pub const COMPANION_FILES: [&str; 2] = ["tokenizer_config.json", "special_tokens_map.json"];

/// What a model folder holds beyond what the encoder computes with, written back into the
/// folders saved from it, so that a trained model loads in sentence-transformers as its start
/// model did: the [`COMPANION_FILES`] and `config_sentence_transformers.json` (prompts,
/// `default_prompt_name`, `similarity_fn_name`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FolderExtras {
    /// (file name, bytes) of the companion files present.
    pub companions: Vec<(String, Vec<u8>)>,
    /// `config_sentence_transformers.json`, if any.
    pub st_config: Option<serde_json::Map<String, serde_json::Value>>,
}

impl FolderExtras {
    /// Parses `config_sentence_transformers.json` (its `prompts` must map names to strings, its
    /// `default_prompt_name` name one of them); `path` names the file in errors.
    pub fn new(companions: Vec<(String, Vec<u8>)>, st_config: Option<&[u8]>, path: &Path) -> Result<Self> {
        let st_config = match st_config {
            Some(bytes) => Some(parse_json::<serde_json::Map<String, serde_json::Value>>(bytes, path)?),
            None => None,
        };
        let extras = FolderExtras { companions, st_config };
        let bad = |field: &str, message: String| Error::Config { path: path.to_path_buf(), field: field.into(), message };
        if let Some(prompts) = extras.st_config.as_ref().and_then(|c| c.get("prompts")) {
            let ok = prompts.as_object().is_some_and(|m| m.values().all(|v| v.is_string()));
            if !ok {
                return Err(bad("prompts", "must be an object mapping prompt names to strings".into()));
            }
        }
        let default = extras.st_config.as_ref().and_then(|c| c.get("default_prompt_name"));
        if default.is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(bad("default_prompt_name", "must be a prompt's name or null".into()));
        }
        if let Some(name) = extras.default_prompt_name() {
            if extras.prompt(name).is_none() {
                return Err(bad("default_prompt_name", format!("`{name}` is not one of the prompts ({})", extras.prompt_names().join(", "))));
            }
        }
        Ok(extras)
    }

    /// The text of the prompt `name` (prepended to every input when selected).
    pub fn prompt(&self, name: &str) -> Option<&str> {
        self.st_config.as_ref()?.get("prompts")?.get(name)?.as_str()
    }

    /// The names of the prompts the folder defines.
    pub fn prompt_names(&self) -> Vec<String> {
        match self.st_config.as_ref().and_then(|c| c.get("prompts")).and_then(|p| p.as_object()) {
            Some(m) => m.keys().cloned().collect(),
            None => Vec::new(),
        }
    }

    /// The prompt sentence-transformers applies when none is named.
    pub fn default_prompt_name(&self) -> Option<&str> {
        self.st_config.as_ref()?.get("default_prompt_name")?.as_str()
    }
}

/// The raw bytes of a model folder's files, as a caller without a file system has them (the
/// browser API): the required three and the optional sentence-transformers files.
#[derive(Debug, Clone, Default)]
pub struct RawModelFiles {
    /// `config.json`.
    pub config: Vec<u8>,
    /// `model.safetensors`.
    pub weights: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer: Vec<u8>,
    /// `modules.json`.
    pub modules: Option<Vec<u8>>,
    /// The pooling module's `config.json` (`1_Pooling/config.json`).
    pub pooling: Option<Vec<u8>>,
    /// `sentence_bert_config.json`.
    pub sentence_bert_config: Option<Vec<u8>>,
    /// `config_sentence_transformers.json`.
    pub st_config: Option<Vec<u8>>,
    /// The files of the modules after pooling that modules.json lists, by path in the folder
    /// (`2_Dense/config.json`, `2_Dense/model.safetensors`).
    pub module_files: Vec<(String, Vec<u8>)>,
    /// The [`COMPANION_FILES`] present: (name, bytes).
    pub companions: Vec<(String, Vec<u8>)>,
}

fn require(path: PathBuf, what: &str) -> Result<PathBuf> {
    let hint = "the model folder needs config.json, model.safetensors and tokenizer.json \
                (Hugging Face layout); scripts/fetch-model.sh fetches the default model";
    require_file(path, what, hint)
}

/// `path` when it is a file; otherwise an error that says what it is instead: missing, a
/// folder, or unreachable (a loop of links, no permission), with the system's reason.
fn require_file(path: PathBuf, what: &str, hint: &str) -> Result<PathBuf> {
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(m) if m.is_dir() => Err(Error::Io {
            action: "read",
            path,
            cause: std::io::Error::new(std::io::ErrorKind::IsADirectory, format!("{what} must be a file, and this is a folder")),
        }),
        Ok(_) => Err(Error::io("read", path, std::io::Error::other(format!("{what} must be a regular file (this is a device, a FIFO or a socket)")))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Missing { what: what.into(), path, hint: hint.into() }),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// The config of the pooling module that modules.json names (its folder `folder`).
fn require_named(path: PathBuf, folder: &str) -> Result<PathBuf> {
    require_file(path, &format!("pooling config (modules.json names the Pooling module's folder `{folder}`)"), "restore the folder, or correct its `path` in modules.json")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

fn read_if_file(path: &Path) -> Result<Option<Vec<u8>>> {
    if path.is_file() { read(path).map(Some) } else { Ok(None) }
}

impl ModelFiles {
    /// Reads a model folder in the Hugging Face layout, with or without the sentence-transformers
    /// files on top.
    pub fn read_dir(dir: &Path) -> Result<Self> {
        if dir.is_file() {
            return Err(Error::NotAFolder {
                what: "model".into(),
                path: dir.to_path_buf(),
                hint: "pass the folder that holds config.json, model.safetensors and tokenizer.json".into(),
            });
        }
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("read the model folder", dir, e)),
            _ => {
                return Err(Error::Missing {
                    what: "model folder".into(),
                    path: dir.to_path_buf(),
                    hint: "run scripts/fetch-model.sh to fetch all-MiniLM-L6-v2, or pass --model DIR".into(),
                });
            }
        }
        let config = read(&require(dir.join("config.json"), "config.json")?)?;
        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() && dir.join("pytorch_model.bin").is_file() {
            return Err(Error::Missing {
                what: "model.safetensors".into(),
                path: weights_path,
                hint: "only pytorch_model.bin is present; convert it with \
                       `python -c \"from sentence_transformers import SentenceTransformer as S; \
                       S('DIR').save('DIR', safe_serialization=True)\"`"
                    .into(),
            });
        }
        let weights = read(&require(weights_path, "model.safetensors")?)?;
        let tokenizer = read(&require(dir.join("tokenizer.json"), "tokenizer.json")?)?;

        // modules.json names the pooling folder, which must then be there, and the modules
        // after it, whose files are read here; without modules.json, 1_Pooling is optional
        // (mean pooling otherwise).
        let modules_path = dir.join("modules.json");
        let modules = read_if_file(&modules_path)?;
        let on_disk = |folder: &str, name: &str| read_if_file(&dir.join(folder).join(name));
        let pipeline = match &modules {
            Some(bytes) => st_modules::parse(bytes, dir, &on_disk)?,
            None => Pipeline::default(),
        };
        let module_files = pipeline.after_pooling.iter().flat_map(|m| m.files.iter().map(|(name, bytes)| (format!("{}/{name}", m.entry.path), bytes.clone()))).collect();
        let (pooling, pooling_path) = match pipeline.pooling {
            Some(m) => {
                let path = require_named(dir.join(&m.path).join("config.json"), &m.path)?;
                (Some(read(&path)?), path)
            }
            None => (read_if_file(&dir.join("1_Pooling/config.json"))?, dir.join("1_Pooling/config.json")),
        };
        let raw = RawModelFiles {
            config,
            weights,
            tokenizer,
            modules,
            pooling,
            sentence_bert_config: read_if_file(&dir.join("sentence_bert_config.json"))?,
            st_config: read_if_file(&dir.join("config_sentence_transformers.json"))?,
            module_files,
            companions: COMPANION_FILES
                .iter()
                .filter_map(|name| read_if_file(&dir.join(name)).transpose().map(|bytes| bytes.map(|b| (name.to_string(), b))))
                .collect::<Result<_>>()?,
        };
        Ok(ModelFiles { pooling_path, ..Self::from_raw(raw, dir)? })
    }

    /// Checks and reads the sentence-transformers files of `raw`; `origin` names the folder in
    /// error messages.
    pub fn from_raw(raw: RawModelFiles, origin: &Path) -> Result<Self> {
        let given = |folder: &str, name: &str| Ok(raw.module_files.iter().find(|(p, _)| *p == format!("{folder}/{name}")).map(|(_, b)| b.clone()));
        let (mut modules, normalize, pooling_folder) = match &raw.modules {
            Some(bytes) => {
                let pipeline = st_modules::parse(bytes, origin, &given)?;
                (pipeline.after_pooling, false, pipeline.pooling.map(|p| p.path))
            }
            // Without modules.json: normalised, like the default model.
            None => (Vec::new(), true, None),
        };
        // A last Normalize module is the head's final normalisation (which `--normalize` also
        // asks for); one between other modules stays in its place.
        let normalize = normalize || modules.last().is_some_and(|m| m.kind == ModuleKind::Normalize);
        if normalize && raw.modules.is_some() {
            modules.pop();
        }
        let (max_seq_length, lower_case) = match &raw.sentence_bert_config {
            Some(bytes) => {
                let s: SentenceBertConfig = parse_json(bytes, &origin.join("sentence_bert_config.json"))?;
                (Some(s.max_seq_length), s.do_lower_case)
            }
            None => (None, false),
        };
        let extras = FolderExtras::new(raw.companions, raw.st_config.as_deref(), &origin.join("config_sentence_transformers.json"))?;
        Ok(ModelFiles {
            config: raw.config,
            weights: raw.weights,
            tokenizer: raw.tokenizer,
            pooling: raw.pooling,
            pooling_path: origin.join(pooling_folder.as_deref().unwrap_or("1_Pooling")).join("config.json"),
            max_seq_length,
            lower_case,
            normalize,
            modules,
            extras,
            origin: origin.to_path_buf(),
        })
    }
}

/// What a model folder is written from: the transformer, its config, the head and the
/// tokenizer.
#[derive(Debug, Clone, Copy)]
pub struct FolderContents<'a> {
    /// The transformer (its weights are read back from the device).
    pub model: &'a BertModel,
    /// Its `config.json`.
    pub config: &'a BertConfig,
    /// Pooling, the modules after it, and normalisation.
    pub head: &'a Head,
    /// The tokenizer (its `max_len` becomes `max_seq_length`).
    pub tokenizer: &'a TextTokenizer,
    /// Files of the folder the model came from, written back unchanged.
    pub extras: &'a FolderExtras,
    /// The number format of `model.safetensors` (f32 unless asked otherwise).
    pub precision: Precision,
}

impl FolderContents<'_> {
    /// Writes the folder atomically: into `<dir>.partial` first, then renamed over `dir`, so a
    /// crash never leaves a half-written model under the final name.
    pub fn save(&self, dir: &Path) -> Result<()> {
        crate::atomic::write_dir(dir, |tmp| self.write_into(tmp))
    }

    /// Writes the files of the Hugging Face + sentence-transformers layout into `dir` (no
    /// atomicity: callers stage into a `.partial` folder).
    pub fn write_into(&self, dir: &Path) -> Result<()> {
        let head = self.head;
        let mut config = self.config.clone();
        set_torch_dtype(&mut config.extra, self.precision);
        std::fs::create_dir_all(dir.join("1_Pooling")).map_err(|e| Error::io("create", dir, e))?;
        let bytes = weights_bytes(self.model, &config, self.precision)?;
        let write = |name: &str, data: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, data).map_err(|e| Error::io("write", &p, e))
        };
        write("model.safetensors", &bytes)?;
        write("tokenizer.json", self.tokenizer.json_bytes())?;
        write_json(&dir.join("config.json"), &config)?;
        write_json(&dir.join("1_Pooling/config.json"), &PoolingConfig::for_mode(head.pooling, config.hidden_size))?;
        write_json(
            &dir.join("sentence_bert_config.json"),
            &SentenceBertConfig { max_seq_length: self.tokenizer.max_len(), do_lower_case: self.tokenizer.lower_case() },
        )?;
        let module = |idx: usize, path: &str, kind: &str| StModule {
            idx,
            name: idx.to_string(),
            path: path.into(),
            kind: format!("sentence_transformers.models.{kind}"),
        };
        let mut modules = vec![module(0, "", "Transformer"), module(1, "1_Pooling", "Pooling")];
        // The modules after pooling, with their folders' files as they were read.
        let after = head.modules.iter().map(|m| (m.spec.kind_name(), m.spec.files.as_slice()));
        let last = head.normalize.then_some(("Normalize", &[][..]));
        for (class, files) in after.chain(last) {
            let idx = modules.len();
            let folder = format!("{idx}_{class}");
            std::fs::create_dir_all(dir.join(&folder)).map_err(|e| Error::io("create", dir.join(&folder), e))?;
            for (name, bytes) in files {
                write(&format!("{folder}/{name}"), bytes)?;
            }
            modules.push(module(idx, &folder, class));
        }
        write_json(&dir.join("modules.json"), &modules)?;
        for (name, bytes) in &self.extras.companions {
            write(name, bytes)?;
        }
        // The start model's prompts and similarity function are kept; the version says who wrote it.
        let mut st = self.extras.st_config.clone().unwrap_or_else(|| {
            serde_json::json!({"prompts": {}, "default_prompt_name": null, "similarity_fn_name": "cosine"}).as_object().cloned().unwrap_or_default()
        });
        let mut version = st.get("__version__").and_then(|v| v.as_object()).cloned().unwrap_or_default();
        version.entry("sentence_transformers").or_insert_with(|| "3.0.0".into());
        version.insert("iftcl".into(), env!("CARGO_PKG_VERSION").into());
        st.insert("__version__".into(), version.into());
        write_json(&dir.join("config_sentence_transformers.json"), &st)
    }
}

/// Sets `config.json`'s `torch_dtype` (in `config`, its keys; transformers 5 names it `dtype`)
/// for a folder of `precision`: each of the two keys that is there, and `torch_dtype` for half
/// precision when neither is (f32, which int8 computes in, is what a reader assumes).
pub fn set_torch_dtype(config: &mut serde_json::Map<String, serde_json::Value>, precision: Precision) {
    let mut set = false;
    for key in ["torch_dtype", "dtype"] {
        if config.contains_key(key) {
            config.insert(key.into(), precision.torch_dtype().into());
            set = true;
        }
    }
    if !set && matches!(precision, Precision::F16 | Precision::Bf16) {
        config.insert("torch_dtype".into(), precision.torch_dtype().into());
    }
}

/// `model.safetensors` bytes of `model`: Hugging Face tensor names, in `precision`.
pub fn weights_bytes(model: &BertModel, config: &BertConfig, precision: Precision) -> Result<Vec<u8>> {
    collect_weights(model, config)?.to_bytes(precision)
}

/// [`weights_bytes`] with asynchronous reads (a browser's WebGPU device cannot block).
pub async fn weights_bytes_async(model: &BertModel, config: &BertConfig, precision: Precision) -> Result<Vec<u8>> {
    collect_weights(model, config)?.to_bytes_async(precision).await
}

fn collect_weights(model: &BertModel, config: &BertConfig) -> Result<WeightSink> {
    let mut sink = WeightSink::default();
    let mut m = model.clone();
    m.visit_params(config, &mut sink)?;
    Ok(sink)
}
