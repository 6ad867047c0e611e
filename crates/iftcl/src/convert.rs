//! A model folder rewritten in another [`Precision`] (`iftcl convert`): the same folder, file
//! for file, with `model.safetensors` in f16, bf16, int8 or f32 and `config.json`'s
//! `torch_dtype` saying which.
//!
//! The model is loaded first (so a folder iftcl cannot run is refused before anything is
//! written), and its weights are written from the loaded encoder: the tensors the encoder uses,
//! under their Hugging Face names, as [`SentenceEncoder::save`] writes them (the pooler and
//! pre-training heads are left out). Every other file of the folder, sub-folders included, is
//! copied unchanged, except other copies of the weights ([`OTHER_WEIGHTS`]), which would not
//! match the new file. The output is written atomically (`OUT.partial`, then renamed).

use std::path::{Component, Path, PathBuf};

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::hf_config::parse_json;
use crate::model::folder::set_torch_dtype;
use crate::model::{ModelFiles, Precision};
use crate::{SentenceEncoder, atomic};

/// The weights file written.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Files and folders of a model folder that hold its weights in other formats: not copied.
pub const OTHER_WEIGHTS: [&str; 8] =
    ["pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "rust_model.ot", "model.onnx", "onnx", "openvino", "model.safetensors.index.json"];

/// What [`convert`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The precision written.
    pub precision: Precision,
    /// Size of the source's `model.safetensors`, in bytes.
    pub bytes_before: u64,
    /// Size of the written one.
    pub bytes_after: u64,
    /// The other files copied, relative to the folder, sorted.
    pub copied: Vec<String>,
}

/// `path` made absolute, with `.` and `..` resolved and the links of the part that exists
/// followed.
fn resolved(path: &Path) -> Result<PathBuf> {
    let absolute = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?.join(path);
    let mut lexical = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let (mut base, mut rest) = (lexical.clone(), Vec::new());
    loop {
        if let Ok(mut real) = std::fs::canonicalize(&base) {
            real.extend(rest.iter().rev());
            return Ok(real);
        }
        match (base.file_name().map(|n| n.to_os_string()), base.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                base = parent.to_path_buf();
            }
            _ => return Ok(lexical),
        }
    }
}

/// Refuses an output folder that would overwrite or hold the model being read, one that
/// exists with files in it unless `overwrite`, and, even then, one that holds anything but a
/// model folder.
fn check_output(model: &Path, out: &Path, overwrite: bool) -> Result<()> {
    let (m, o) = (resolved(model)?, resolved(out)?);
    let refuse = |why: &str| Err(Error::InvalidArgument(format!("output folder {}: {why}; choose another output folder", out.display())));
    if o == m {
        return refuse(&format!("it is the model folder {}", model.display()));
    }
    if o.starts_with(&m) {
        return refuse(&format!("it is inside the model folder {}", model.display()));
    }
    if m.starts_with(&o) {
        return refuse(&format!("it holds the model folder {}, which replacing it would delete", model.display()));
    }
    if out.is_file() {
        return Err(Error::NotAFolder { what: "output folder".into(), path: out.to_path_buf(), hint: "choose a new folder name".into() });
    }
    let empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(true);
    if !empty && !out.join("config.json").is_file() {
        return refuse("it exists and holds no model (no config.json), so it is not replaced");
    }
    if !empty && !overwrite {
        return refuse("it exists and holds a model folder; --overwrite replaces it (atomically, once the new one is written)");
    }
    Ok(())
}

/// Copies the files of `from` (recursively) into `to`, except `config.json`, the weights and
/// [`OTHER_WEIGHTS`]; returns their paths relative to `root`.
fn copy_companions(from: &Path, to: &Path, root: &Path, copied: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(from).map_err(|e| Error::io("read", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read", from, e))?;
        let (src, name) = (entry.path(), entry.file_name());
        let top = from == root;
        let skip = name.to_string_lossy().ends_with(atomic::PARTIAL_SUFFIX)
            || (top && (name == "config.json" || name == WEIGHTS_FILE || OTHER_WEIGHTS.iter().any(|w| name == *w)));
        if skip {
            continue;
        }
        // Links are followed (the Hugging Face cache links every file to a blob).
        let meta = std::fs::metadata(&src).map_err(|e| Error::io("read", &src, e))?;
        let dst = to.join(&name);
        if meta.is_dir() {
            std::fs::create_dir_all(&dst).map_err(|e| Error::io("create", &dst, e))?;
            copy_companions(&src, &dst, root, copied)?;
        } else if meta.is_file() {
            // Read and written rather than copied: the copy gets the permissions of a new file,
            // not a read-only source's.
            let bytes = std::fs::read(&src).map_err(|e| Error::io("read", &src, e))?;
            std::fs::write(&dst, bytes).map_err(|e| Error::io("write", &dst, e))?;
            copied.push(src.strip_prefix(root).unwrap_or(&src).to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Writes the model folder `model` to `out` with its weights in `precision`. `out` must not be
/// `model`, lie inside it or hold it; an existing `out` is replaced only when it is empty, or
/// when `overwrite` is set and it is a model folder (it holds `config.json`).
pub fn convert(model: &Path, out: &Path, precision: Precision, overwrite: bool) -> Result<Converted> {
    check_output(model, out, overwrite)?;
    let files = ModelFiles::read_dir(model)?;
    let (bytes_before, config) = (files.weights.len() as u64, files.config.clone());
    let encoder = SentenceEncoder::from_files(files, &Device::flex())?;
    let weights = encoder.safetensors_bytes_as(precision)?;
    let config_path = model.join("config.json");
    let mut config: serde_json::Map<String, serde_json::Value> = parse_json(&config, &config_path)?;
    set_torch_dtype(&mut config, precision);
    let mut copied = Vec::new();
    atomic::write_dir(out, |tmp| {
        copy_companions(model, tmp, model, &mut copied)?;
        let path = tmp.join(WEIGHTS_FILE);
        std::fs::write(&path, &weights).map_err(|e| Error::io("write", &path, e))?;
        crate::hf_config::write_json(&tmp.join("config.json"), &config)
    })?;
    copied.sort();
    Ok(Converted { precision, bytes_before, bytes_after: weights.len() as u64, copied })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_over_or_inside_the_model_are_refused() {
        let root = std::env::temp_dir().join(format!("iftcl-convert-paths-{}", std::process::id()));
        let model = root.join("m");
        std::fs::create_dir_all(model.join("1_Pooling")).unwrap();
        std::fs::write(model.join("config.json"), b"{}").unwrap();
        let refused = |out: PathBuf, says: &str| {
            let e = check_output(&model, &out, true).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("choose another output folder"), "{}: {e}", out.display());
        };
        refused(model.clone(), "it is the model folder");
        refused(root.join("m/../m"), "it is the model folder");
        refused(model.join("f16"), "inside the model folder");
        refused(model.join("1_Pooling/new/deeper"), "inside the model folder");
        refused(root.clone(), "holds the model folder");
        std::fs::create_dir_all(root.join("notes")).unwrap();
        std::fs::write(root.join("notes/todo.txt"), b"keep me").unwrap();
        refused(root.join("notes"), "holds no model");
        check_output(&model, &root.join("m-f16"), false).expect("a new sibling folder");
        check_output(&model, &root.join("m-f16/../m2"), false).expect("a path through a missing folder");
        // A model folder that exists is replaced only when asked.
        std::fs::create_dir_all(root.join("m-int8")).unwrap();
        std::fs::write(root.join("m-int8/config.json"), b"{}").unwrap();
        let e = check_output(&model, &root.join("m-int8"), false).unwrap_err().to_string();
        assert!(e.contains("--overwrite replaces it"), "{e}");
        check_output(&model, &root.join("m-int8"), true).expect("a model folder, with overwrite");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
