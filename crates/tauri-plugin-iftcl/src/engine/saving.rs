//! What the engine writes to disk of the model: a folder the app names (`save_model`) and the
//! tuned model it keeps in its data folder between runs (`keep_tuned_model` and its readers).

use std::path::Path;

use super::Engine;
use crate::error::{Error, Result};
use crate::kept::{self, KeptModel};
use crate::types::SavedModel;

impl Engine {
    /// Saves the loaded model as a sentence-transformers folder at `dir`, an absolute path
    /// (written atomically). An existing folder is replaced only when `overwrite` is set and it
    /// holds a model (`config.json`); without `overwrite` that is an [`Error::Exists`], so the
    /// app can ask. Nothing else is ever deleted.
    pub fn save_model(&self, dir: &Path, overwrite: bool) -> Result<SavedModel> {
        let model = self.model()?;
        if dir.as_os_str().is_empty() {
            return Err(Error::InvalidInput("saveModel: the folder path is empty".into()));
        }
        if !dir.is_absolute() {
            return Err(Error::InvalidInput(format!("saveModel: `{}` is not an absolute path (a relative one would land wherever the app was started)", dir.display())));
        }
        if let Ok(mut entries) = std::fs::read_dir(dir) {
            if entries.next().is_some() {
                if !dir.join("config.json").is_file() {
                    return Err(Error::InvalidInput(format!("saveModel: {} holds other files and no model (no config.json); it is not replaced", dir.display())));
                }
                if !overwrite {
                    return Err(Error::Exists(format!("saveModel: {} already holds a model; pass overwrite: true to replace it", dir.display())));
                }
            }
        } else if dir.exists() {
            return Err(Error::InvalidInput(format!("saveModel: {} is not a folder", dir.display())));
        }
        model.encoder.save(dir)?;
        let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        Ok(SavedModel { path: path.display().to_string(), tuned_steps: model.info.tuned_steps })
    }

    /// Keeps the loaded, tuned model in the data folder (`<data>/tuned-model`, atomically,
    /// replacing the one kept before), so that an app can open it again at its next start.
    pub fn keep_tuned_model(&self) -> Result<KeptModel> {
        self.refuse_while_tuning("keepTunedModel")?;
        let model = self.model()?;
        let (base, steps_before) = match &model.info.kept {
            Some(k) => (k.base.clone(), k.steps),
            None => (model.info.source.clone(), 0),
        };
        if model.info.tuned_steps == 0 {
            return Err(Error::InvalidInput("keepTunedModel: the loaded model has not been tuned since it was loaded (fineTune first)".into()));
        }
        let kept = KeptModel { path: String::new(), base, notes: model.info.tuned_on, steps: steps_before + model.info.tuned_steps, saved_at: 0, languages: model.info.languages.clone() };
        kept::write(&self.kept_path(), &model.encoder, kept)
    }

    /// The kept tuned model, if there is one.
    pub fn kept_model(&self) -> Result<Option<KeptModel>> {
        let dir = self.kept_path();
        if !dir.join("config.json").is_file() {
            return Ok(None);
        }
        kept::read(&dir)
    }

    /// Deletes the kept tuned model (the loaded model, even if it is that one, stays loaded
    /// until another is); false when none was kept.
    pub fn forget_kept_model(&self) -> Result<bool> {
        self.refuse_while_tuning("forgetKeptModel")?;
        kept::forget(&self.kept_path())
    }
}
