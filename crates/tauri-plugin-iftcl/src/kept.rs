//! The tuned model an app keeps in its data folder, so that a fine-tune survives a restart:
//! `<data>/tuned-model/`, a sentence-transformers folder like any other, with
//! `iftcl-kept.json` beside the weights saying what it was tuned from and on how much. The
//! folder and that file are written together, atomically (staged, then renamed), so a crash
//! leaves the previous kept model or the new one, never a mix.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use iftcl::SentenceEncoder;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The kept model's folder in the data folder.
pub const KEPT_DIR: &str = "tuned-model";
/// The file inside it that says what it is.
pub const KEPT_FILE: &str = "iftcl-kept.json";

/// What a kept tuned model is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeptModel {
    /// Its folder.
    pub path: String,
    /// The folder of the model it was tuned from (the one to go back to on a reset).
    pub base: String,
    /// Texts it was tuned on, in its last fine-tune.
    pub notes: usize,
    /// Tuning steps in its weights since `base`.
    pub steps: usize,
    /// When it was kept, in seconds since 1970 (UTC).
    pub saved_at: u64,
    /// The languages the base model's card names (the kept folder has no card of its own).
    pub languages: Vec<String>,
}

/// Reads the kept-model file of `dir`; `Ok(None)` when the folder has none (a model folder of
/// another origin). A damaged file is an error naming it.
pub fn read(dir: &Path) -> Result<Option<KeptModel>> {
    let file = dir.join(KEPT_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("cannot read {}: {e}", file.display()))),
    };
    let mut kept: KeptModel = serde_json::from_str(&text).map_err(|e| Error::Model(format!("{}: {e}", file.display())))?;
    // The folder may have been moved with its file: the path is where it is now.
    kept.path = dir.display().to_string();
    Ok(Some(kept))
}

/// Writes `encoder` and its [`KeptModel`] file into `dir` atomically, replacing what was there.
/// `kept`'s `path` and `saved_at` are set here.
pub fn write(dir: &Path, encoder: &SentenceEncoder, kept: KeptModel) -> Result<KeptModel> {
    let kept = KeptModel { path: dir.display().to_string(), saved_at: unix_seconds(), ..kept };
    let json = serde_json::to_vec_pretty(&kept).map_err(|e| Error::Io(format!("cannot serialise {KEPT_FILE}: {e}")))?;
    iftcl::atomic::write_dir(dir, |tmp| {
        encoder.folder_contents().write_into(tmp)?;
        let file = tmp.join(KEPT_FILE);
        std::fs::write(&file, &json).map_err(|e| iftcl::Error::io("write", &file, e))
    })?;
    Ok(kept)
}

/// Removes the kept model's folder `dir`, only when it holds a [`KEPT_FILE`] (nothing else is
/// ever deleted); false when there was none.
pub fn forget(dir: &Path) -> Result<bool> {
    if !dir.join(KEPT_FILE).is_file() {
        if dir.exists() {
            return Err(Error::InvalidInput(format!("{} holds no {KEPT_FILE}: it is not a kept model and is left as it is", dir.display())));
        }
        return Ok(false);
    }
    std::fs::remove_dir_all(dir).map_err(|e| Error::Io(format!("cannot remove {}: {e}", dir.display())))?;
    Ok(true)
}

/// Seconds since 1970 (UTC), 0 on a clock set before it.
pub fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `<data>/tuned-model`.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join(KEPT_DIR)
}
