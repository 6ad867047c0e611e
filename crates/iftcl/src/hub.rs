//! Models by Hugging Face Hub id (`sentence-transformers/all-MiniLM-L6-v2`): the files of a
//! sentence-transformers folder downloaded through the `hf-hub` crate into the standard cache,
//! the one Python's `huggingface_hub` shares (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
//!
//! The environment is read as Python reads it: `HF_HOME` (cache), `HF_ENDPOINT` (a mirror, or a
//! local server), `HF_TOKEN` (else the token file `huggingface-cli login` writes, for gated and
//! private repos), `HF_HUB_OFFLINE=1` (the cache only, no network).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::hf_config::{StModule, parse_json};
use crate::model::st_modules::ModuleClass;
use crate::model::COMPANION_FILES;

/// Files every model folder needs.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// sentence-transformers files fetched when the repo has them (the pooling module's config comes
/// from the folder `modules.json` names).
const OPTIONAL: [&str; 3] = ["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"];

/// Whether `spec` names a Hub repo rather than a folder: `org/name` (one slash, no path
/// syntax), and no such folder exists here.
pub fn is_repo_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    let plain = |p: &str| !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    // symlink_metadata: a link (even a broken one, or a loop) is a local path, not an id.
    parts.len() == 2 && parts.iter().all(|p| plain(p)) && std::fs::symlink_metadata(spec).is_err()
}

/// Where to read the Hub from: the environment's settings, which a caller may override.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Branch, tag or commit (default `main`).
    pub revision: Option<String>,
    /// Cache folder (default `$HF_HOME/hub` or `~/.cache/huggingface/hub`).
    pub cache_dir: Option<PathBuf>,
    /// Server (default `$HF_ENDPOINT` or `https://huggingface.co`).
    pub endpoint: Option<String>,
    /// Access token (default `$HF_TOKEN`, else the cache's token file).
    pub token: Option<String>,
    /// Use the cache only (default: `HF_HUB_OFFLINE` is `1`, `true` or `yes`).
    pub offline: Option<bool>,
}

impl HubOptions {
    fn cache(&self) -> Cache {
        match &self.cache_dir {
            Some(dir) => Cache::new(dir.clone()),
            None => Cache::from_env(),
        }
    }

    fn offline(&self) -> bool {
        self.offline.unwrap_or_else(|| std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")))
    }

    fn repo(&self, id: &str) -> Repo {
        Repo::with_revision(id.to_string(), RepoType::Model, self.revision.clone().unwrap_or_else(|| "main".into()))
    }
}

/// The folder `spec` names: itself when it exists (or does not look like a repo id), else the
/// Hub model of that id ([`model_dir`]).
pub fn resolve(spec: &Path, options: &HubOptions) -> Result<PathBuf> {
    match spec.to_str() {
        Some(id) if is_repo_id(id) => model_dir(id, options),
        _ => Ok(spec.to_path_buf()),
    }
}

/// The local folder of the model `id`: downloaded into the cache (only what is not there yet),
/// or, offline, found there. The folder is the cache's snapshot of the revision.
pub fn model_dir(id: &str, options: &HubOptions) -> Result<PathBuf> {
    let repo = options.repo(id);
    let fail = |file: Option<&str>, message: String| Error::Hub { repo: id.to_string(), file: file.map(str::to_string), message };
    if options.offline() {
        let cached = options.cache().repo(repo);
        let mut dir = None;
        for file in REQUIRED {
            let path = cached.get(file).ok_or_else(|| {
                fail(Some(file), format!("not in the cache {} (HF_HUB_OFFLINE is set, so nothing is downloaded)", options.cache().path().display()))
            })?;
            dir = path.parent().map(Path::to_path_buf);
        }
        return dir.ok_or_else(|| fail(None, "the cache holds no snapshot".into()));
    }
    let mut builder = ApiBuilder::from_cache(options.cache()).with_progress(false);
    if let Some(endpoint) = options.endpoint.clone().or_else(|| std::env::var("HF_ENDPOINT").ok()) {
        builder = builder.with_endpoint(endpoint);
    }
    // hf-hub reads the token file; HF_TOKEN, as Python reads it, comes first.
    if let Some(token) = options.token.clone().or_else(|| std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty())) {
        builder = builder.with_token(Some(token));
    }
    let api = builder.build().map_err(|e| fail(None, format!("cannot set up the download: {e}")))?;
    let remote = api.repo(repo);
    let fetch = |file: &str| remote.get(file).map_err(|e| explain(id, file, e));
    let mut dir = PathBuf::new();
    for file in REQUIRED {
        let path = fetch(file)?;
        dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    let optional = |file: &str| -> Result<Option<PathBuf>> {
        match remote.get(file) {
            Ok(path) => Ok(Some(path)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(explain(id, file, e)),
        }
    };
    for file in OPTIONAL.iter().chain(COMPANION_FILES.iter()) {
        optional(file)?;
    }
    // The files of the modules after the transformer, in the folders modules.json names
    // (1_Pooling by default): each module's config, and the weights of Dense and LayerNorm.
    let modules_path = dir.join("modules.json");
    let folders: Vec<(String, bool)> = match std::fs::read(&modules_path) {
        Ok(bytes) => parse_json::<Vec<StModule>>(&bytes, &modules_path)?
            .into_iter()
            .filter_map(|m| match ModuleClass::of(&m.kind) {
                Some(ModuleClass::Transformer) => None,
                Some(ModuleClass::Dense | ModuleClass::LayerNorm) => Some((m.path, true)),
                _ => Some((m.path, false)),
            })
            .collect(),
        Err(_) => vec![("1_Pooling".to_string(), false)],
    };
    for (folder, weights) in folders.iter().filter(|(f, _)| !f.is_empty()) {
        optional(&format!("{folder}/config.json"))?;
        if *weights {
            optional(&format!("{folder}/model.safetensors"))?;
        }
    }
    Ok(dir)
}

impl SentenceEncoder {
    /// Loads the Hub model `id` (`org/name`) onto `device`, downloading what the cache lacks.
    pub fn from_hub(id: &str, options: &HubOptions, device: &Device) -> Result<Self> {
        SentenceEncoder::load(&model_dir(id, options)?, device)
    }
}

fn status(e: &ApiError) -> Option<u16> {
    match e {
        ApiError::RequestError(inner) => match inner.as_ref() {
            ureq::Error::Status(code, _) => Some(*code),
            ureq::Error::Transport(_) => None,
        },
        _ => None,
    }
}

/// A message that says what went wrong and what to do about it.
fn explain(id: &str, file: &str, e: ApiError) -> Error {
    let message = match &e {
        ApiError::RequestError(inner) => match inner.as_ref() {
            ureq::Error::Status(code, response) => {
                let code_name = response.header("x-error-code").unwrap_or("").to_string();
                match (*code, code_name.as_str()) {
                    (401 | 403, _) | (_, "GatedRepo") => format!(
                        "access denied (HTTP {code}): the repo is gated or private; accept its terms on the Hub and set HF_TOKEN \
                         (or run `huggingface-cli login`)"
                    ),
                    (404, "RepositoryNotFound") => "no such repository on the Hub (or a private one: set HF_TOKEN)".to_string(),
                    (404, "RevisionNotFound") => "no such revision (branch, tag or commit)".to_string(),
                    (404, _) => "the repository has no such file (a model folder needs config.json, model.safetensors and tokenizer.json)".to_string(),
                    (code, _) => format!("the server answered HTTP {code}"),
                }
            }
            ureq::Error::Transport(t) => format!(
                "network error ({t}); HF_ENDPOINT selects another server, HF_HUB_OFFLINE=1 uses the cache only"
            ),
        },
        other => other.to_string(),
    };
    Error::Hub { repo: id.to_string(), file: Some(file.to_string()), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_and_paths() {
        assert!(is_repo_id("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(is_repo_id("BAAI/bge-small-en-v1.5"));
        for path in ["models/../x", "./a/b", "/abs/path", "a", "a/b/c", "a//b", "a/.b"] {
            assert!(!is_repo_id(path), "{path}");
        }
    }
}
