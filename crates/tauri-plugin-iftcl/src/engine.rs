//! The plugin's state: the loaded model, the semantic index and the running fine-tune. Every
//! method here is synchronous and may take long (embedding, tuning): the commands call them on
//! blocking threads, never on the main thread. Locks are held only to read or swap a pointer,
//! so a long embed or fine-tune never blocks a quick call (devices, search of the index).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use iftcl::index::SemanticIndex;
use iftcl::train::{TuneOptions, TuneProgress, tune};
use iftcl::{DeviceSpec, SentenceEncoder, device};

use crate::error::{Error, Result};
use crate::kept;
use crate::model_card;
use crate::types::{DeviceList, DocumentInfo, DocumentInput, FineTuneResult, IndexChange, IndexReset, ModelInfo};

mod saving;

/// File name of the index in the plugin's data folder.
pub const INDEX_FILE: &str = "semantic-index.json";

/// A model ready to embed, with what identifies it.
pub struct Loaded {
    /// The encoder.
    pub encoder: SentenceEncoder,
    /// [`iftcl::SentenceEncoder::fingerprint`] of it.
    pub fingerprint: String,
    /// What it was loaded from, and whether it was tuned since.
    pub info: ModelInfo,
}

/// The plugin's state, managed by the app (`app.state::<Engine>()`).
pub struct Engine {
    data_dir: PathBuf,
    default_device: DeviceSpec,
    model: RwLock<Option<Arc<Loaded>>>,
    index: Mutex<Option<SemanticIndex>>,
    /// Why the index file could not be read, while it cannot (the index commands refuse, the
    /// model still embeds; `reset_index` starts a new one).
    index_problem: Mutex<Option<String>>,
    /// Set while a fine-tune runs: its cancel flag.
    tuning: Mutex<Option<Arc<AtomicBool>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on another thread cannot leave these values half-changed (they are swapped whole).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn non_empty<'a>(what: &str, texts: &'a [String]) -> Result<Vec<&'a str>> {
    if texts.is_empty() {
        return Err(Error::InvalidInput(format!("{what}: the list of texts is empty")));
    }
    Ok(texts.iter().map(String::as_str).collect())
}

/// Refuses a text that is empty or only white space: there is nothing in it to compare.
fn has_words(what: &str, text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

impl Engine {
    /// State whose index lives in `data_dir`, loading models on `default_device` unless a call
    /// says otherwise.
    pub fn new(data_dir: PathBuf, default_device: DeviceSpec) -> Self {
        Engine { data_dir, default_device, model: RwLock::new(None), index: Mutex::new(None), index_problem: Mutex::new(None), tuning: Mutex::new(None) }
    }

    /// Where the index is kept.
    pub fn index_path(&self) -> PathBuf {
        self.data_dir.join(INDEX_FILE)
    }

    /// Where a tuned model is kept between runs (`keep_tuned_model`).
    pub fn kept_path(&self) -> PathBuf {
        kept::dir_in(&self.data_dir)
    }

    /// The loaded model, or [`Error::NoModel`].
    pub fn model(&self) -> Result<Arc<Loaded>> {
        self.model.read().unwrap_or_else(|p| p.into_inner()).clone().ok_or_else(|| Error::NoModel("no model is loaded: call loadModel first".into()))
    }

    /// What is loaded, if anything.
    pub fn model_info(&self) -> Option<ModelInfo> {
        self.model.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| m.info.clone())
    }

    /// The adapters wgpu sees, what `auto` picks, and the device of the loaded model.
    pub fn devices(&self) -> Result<DeviceList> {
        let adapters = device::list_adapters().into_iter().map(Into::into).collect();
        let auto = device::select(DeviceSpec::Auto)?.description;
        Ok(DeviceList { adapters, auto, current: self.model_info().map(|m| m.device) })
    }

    fn refuse_while_tuning(&self, what: &str) -> Result<()> {
        if lock(&self.tuning).is_some() {
            return Err(Error::Busy(format!("{what}: a fine-tune is running; cancel it or wait for it to end")));
        }
        Ok(())
    }

    /// Loads the model folder `dir` on `device` (default: the plugin's), replacing the loaded
    /// one, and brings the index in line with it (re-embedding its texts when it came from
    /// another model).
    /// A damaged index file does not stop the model from loading: the third value says what is
    /// wrong with it, and the index commands refuse until [`Self::reset_index`].
    pub fn load_model(&self, dir: &Path, device: Option<&str>) -> Result<(ModelInfo, Option<IndexChange>, Option<String>)> {
        self.refuse_while_tuning("loadModel")?;
        let spec = match device {
            Some(d) => d.parse::<DeviceSpec>()?,
            None => self.default_device,
        };
        let selected = device::select(spec)?;
        let encoder = SentenceEncoder::load(dir, &selected.device)?;
        let fingerprint = encoder.fingerprint()?;
        let info = ModelInfo {
            source: dir.display().to_string(),
            dim: encoder.dim(),
            family: format!("{:?}", encoder.config.family()),
            max_seq_length: encoder.tokenizer.max_len(),
            device: selected.description,
            tuned_steps: 0,
            tuned_on: 0,
            fingerprint: fingerprint.clone(),
            languages: Vec::new(),
            kept: kept::read(dir).unwrap_or_else(|e| {
                tracing::warn!("{e}: the model loads, without what it was tuned from");
                None
            }),
        };
        let card = model_card::languages(dir);
        let info = ModelInfo { languages: if card.is_empty() { info.kept.as_ref().map(|k| k.languages.clone()).unwrap_or_default() } else { card }, ..info };
        let loaded = Arc::new(Loaded { encoder, fingerprint, info: info.clone() });
        let change = self.align_index(&loaded)?;
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
        Ok((info, change, lock(&self.index_problem).clone()))
    }

    /// Reads the index file once; re-embeds its texts when they come from another model than
    /// `model` (saving the result), or starts an empty index for it.
    fn align_index(&self, model: &Loaded) -> Result<Option<IndexChange>> {
        let mut slot = lock(&self.index);
        let current = match slot.take() {
            Some(ix) => Some(ix),
            None => match SemanticIndex::load(&self.index_path()) {
                Ok(ix) => ix,
                Err(e) => {
                    // The file is left exactly as it is; nothing is embedded or saved.
                    *lock(&self.index_problem) = Some(e.to_string());
                    return Ok(None);
                }
            },
        };
        *lock(&self.index_problem) = None;
        let Some(mut ix) = current else {
            *slot = Some(SemanticIndex::new(model.fingerprint.clone(), model.encoder.dim()));
            return Ok(None);
        };
        if ix.model() == model.fingerprint {
            *slot = Some(ix);
            return Ok(None);
        }
        let before = ix.clone();
        let start = Instant::now();
        let rebuilt = ix.rebuild(&model.encoder, model.fingerprint.clone()).and_then(|()| ix.save(&self.index_path()));
        if let Err(e) = rebuilt {
            *slot = Some(before);
            return Err(e.into());
        }
        let change = IndexChange {
            documents: ix.len(),
            seconds: start.elapsed().as_secs_f64(),
            message: format!("the model changed: the index's {} documents were embedded again with {}", ix.len(), model.info.source),
        };
        tracing::info!("{}", change.message);
        *slot = Some(ix);
        Ok(Some(change))
    }

    /// Embeddings of `texts`, one row per text.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let refs = non_empty("embed", texts)?;
        Ok(self.model()?.encoder.embed(&refs)?)
    }

    /// Cosine similarity of two texts.
    pub fn similarity(&self, a: &str, b: &str) -> Result<f64> {
        has_words("similarity: the first text", a)?;
        has_words("similarity: the second text", b)?;
        let v = self.model()?.encoder.embed(&[a, b])?;
        Ok(iftcl::cosine(&v[0], &v[1]))
    }

    /// The matrix of cosine similarities of `texts` (row i, column j: text i with text j).
    pub fn similarity_matrix(&self, texts: &[String]) -> Result<Vec<Vec<f64>>> {
        let refs = non_empty("similarityMatrix", texts)?;
        let v = self.model()?.encoder.embed(&refs)?;
        Ok(v.iter().map(|a| v.iter().map(|b| iftcl::cosine(a, b)).collect()).collect())
    }

    /// Runs `change` on a copy of the index, saves the copy, then keeps it: a failed save leaves
    /// the index as it was, in memory and on disk.
    fn change_index<T>(&self, model: &Loaded, change: impl FnOnce(&mut SemanticIndex) -> Result<T>) -> Result<T> {
        let mut slot = lock(&self.index);
        let ix = slot.as_ref().ok_or_else(|| self.no_index())?;
        if ix.model() != model.fingerprint {
            return Err(Error::Busy("the model changed during this call: call again".into()));
        }
        let mut copy = ix.clone();
        let out = change(&mut copy)?;
        copy.save(&self.index_path())?;
        *slot = Some(copy);
        Ok(out)
    }

    /// Adds documents (or replaces those with the same ids); returns the index's size.
    pub fn index_add(&self, documents: &[DocumentInput]) -> Result<usize> {
        if documents.is_empty() {
            return Err(Error::InvalidInput("indexAdd: the list of documents is empty".into()));
        }
        if let Some(d) = documents.iter().find(|d| d.text.trim().is_empty()) {
            return Err(Error::InvalidInput(format!("indexAdd: the text of document `{}` is empty", d.id)));
        }
        let model = self.model()?;
        self.usable_index()?;
        let texts: Vec<&str> = documents.iter().map(|d| d.text.as_str()).collect();
        let vectors = model.encoder.embed(&texts)?;
        self.change_index(&model, |ix| {
            for (d, v) in documents.iter().zip(vectors) {
                ix.upsert(d.id.clone(), d.text.clone(), v)?;
            }
            Ok(ix.len())
        })
    }

    /// The `k` documents closest in meaning to `query`, best first.
    pub fn index_search(&self, query: &str, k: usize) -> Result<Vec<iftcl::index::Hit>> {
        if k == 0 {
            return Err(Error::InvalidInput("indexSearch: k must be at least 1".into()));
        }
        has_words("indexSearch: the query", query)?;
        let model = self.model()?;
        self.usable_index()?;
        let q = model.encoder.embed(&[query])?.remove(0);
        let slot = lock(&self.index);
        let ix = slot.as_ref().filter(|ix| ix.model() == model.fingerprint).ok_or_else(|| Error::Busy("the model changed during this call: call again".into()))?;
        Ok(ix.search(&q, k)?)
    }

    /// Removes documents by id; returns how many were there.
    pub fn index_remove(&self, ids: &[String]) -> Result<usize> {
        let model = self.model()?;
        self.change_index(&model, |ix| Ok(ix.remove(ids)))
    }

    /// Removes every document.
    pub fn index_clear(&self) -> Result<()> {
        let model = self.model()?;
        self.change_index(&model, |ix| {
            ix.clear();
            Ok(())
        })
    }

    /// The stored documents, in the order they were added, with the tokens the loaded model
    /// reads of each.
    pub fn index_documents(&self) -> Result<Vec<DocumentInfo>> {
        let model = self.model()?;
        let docs: Vec<(String, String)> = {
            let slot = lock(&self.index);
            let ix = slot.as_ref().ok_or_else(|| self.no_index())?;
            ix.documents().iter().map(|d| (d.id.clone(), d.text.clone())).collect()
        };
        let texts: Vec<&str> = docs.iter().map(|(_, t)| t.as_str()).collect();
        let ids = if texts.is_empty() { Vec::new() } else { model.encoder.tokenize(&texts)? };
        let limit = model.info.max_seq_length;
        Ok(docs.into_iter().zip(ids).map(|((id, text), ids)| DocumentInfo { id, text, tokens: ids.len(), truncated: ids.len() >= limit }).collect())
    }

    /// The error of an index command when there is no index: the damaged file's, or no model.
    fn no_index(&self) -> Error {
        match lock(&self.index_problem).as_ref() {
            Some(p) => Error::Index(format!("{p}; the notes in it cannot be read (resetIndex starts a new index and keeps the damaged file)")),
            None => Error::NoModel("no model is loaded: call loadModel first".into()),
        }
    }

    /// Refuses before any work when the index file is damaged.
    fn usable_index(&self) -> Result<()> {
        if lock(&self.index).is_none() {
            return Err(self.no_index());
        }
        Ok(())
    }

    /// Starts a new, empty index for the loaded model when the index file is damaged; the
    /// damaged file is kept beside it as `semantic-index.damaged-<seconds>.json` (never
    /// deleted, never overwritten).
    pub fn reset_index(&self) -> Result<IndexReset> {
        let model = self.model()?;
        let mut slot = lock(&self.index);
        if slot.is_some() {
            return Err(Error::InvalidInput("resetIndex: the index is not damaged (indexClear empties it)".into()));
        }
        let file = self.index_path();
        let mut moved = None;
        if file.exists() {
            let stamp = kept::unix_seconds();
            let target = (0..)
                .map(|n| self.data_dir.join(if n == 0 { format!("semantic-index.damaged-{stamp}.json") } else { format!("semantic-index.damaged-{stamp}-{n}.json") }))
                .find(|p| !p.exists())
                .expect("an unused name");
            std::fs::rename(&file, &target).map_err(|e| Error::Io(format!("cannot move {} to {}: {e}", file.display(), target.display())))?;
            moved = Some(target.display().to_string());
        }
        let ix = SemanticIndex::new(model.fingerprint.clone(), model.encoder.dim());
        ix.save(&file)?;
        *slot = Some(ix);
        *lock(&self.index_problem) = None;
        Ok(IndexReset { damaged_file_kept_as: moved })
    }

    /// Tunes the loaded model on `sentences`, reporting each step to `on_step`; on success the
    /// tuned model replaces it and the index is embedded again. A failed or cancelled call
    /// leaves the model and the index as they were.
    pub fn fine_tune(&self, sentences: &[String], options: &TuneOptions, on_step: impl FnMut(&TuneProgress)) -> Result<FineTuneResult> {
        let model = self.model()?;
        let cancel = {
            let mut t = lock(&self.tuning);
            if t.is_some() {
                return Err(Error::Busy("fineTune: a fine-tune is already running".into()));
            }
            let flag = Arc::new(AtomicBool::new(false));
            *t = Some(flag.clone());
            flag
        };
        let start = Instant::now();
        let out = tune(&model.encoder, sentences, options, &cancel, on_step).map_err(Error::from).and_then(|tuned| {
            let fingerprint = tuned.encoder.fingerprint()?;
            let distinct: std::collections::HashSet<&str> = sentences.iter().map(String::as_str).collect();
            let info = ModelInfo { tuned_steps: model.info.tuned_steps + tuned.losses.len(), tuned_on: distinct.len(), fingerprint: fingerprint.clone(), ..model.info.clone() };
            let loaded = Arc::new(Loaded { encoder: tuned.encoder, fingerprint, info });
            let change = self.align_index(&loaded)?;
            *self.model.write().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
            Ok(FineTuneResult { losses: tuned.losses, seconds: start.elapsed().as_secs_f64(), index: change })
        });
        *lock(&self.tuning) = None;
        out
    }

    /// Asks the running fine-tune to stop before its next step; false when none runs.
    pub fn cancel_fine_tune(&self) -> bool {
        match lock(&self.tuning).as_ref() {
            Some(flag) => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}
