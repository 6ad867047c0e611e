//! The commands JavaScript invokes (`plugin:iftcl|<name>`). Each is async and does its work on
//! a blocking thread of Tauri's runtime: the window's main thread never waits for a model.

use std::path::PathBuf;

use tauri::ipc::Channel;
use tauri::path::BaseDirectory;
use tauri::{AppHandle, Manager, Runtime, State};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::kept::KeptModel;
use crate::types::{DeviceList, DocumentInfo, DocumentInput, FineTuneOptions, FineTuneResult, IndexReset, LoadResult, ModelInfo, Progress, SavedModel};

/// Runs `work` on a blocking thread with the plugin's state.
async fn blocking<R: Runtime, T: Send + 'static>(app: &AppHandle<R>, work: impl FnOnce(&Engine) -> Result<T> + Send + 'static) -> Result<T> {
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || work(&app.state::<Engine>()))
        .await
        .map_err(|e| Error::Io(format!("the worker thread failed: {e}")))?
}

/// Loads a model folder: `path` (a folder on disk) or `resource` (a folder bundled with the
/// app, relative to its resources). `device`: `auto` (default), `cpu`, `gpu` or `gpu:N`.
#[tauri::command]
pub(crate) async fn load_model<R: Runtime>(app: AppHandle<R>, path: Option<String>, resource: Option<String>, device: Option<String>) -> Result<LoadResult> {
    let dir: PathBuf = match (path, resource) {
        (Some(p), None) if !p.is_empty() => p.into(),
        (None, Some(r)) if !r.is_empty() => app.path().resolve(&r, BaseDirectory::Resource).map_err(|e| Error::Model(format!("resource `{r}`: {e}")))?,
        _ => return Err(Error::InvalidInput("loadModel: give either `path` or `resource` (a non-empty folder path)".into())),
    };
    blocking(&app, move |e| e.load_model(&dir, device.as_deref()).map(|(model, index, index_problem)| LoadResult { model, index, index_problem })).await
}

/// The loaded model, or null.
#[tauri::command]
pub(crate) fn model_info(state: State<'_, Engine>) -> Option<ModelInfo> {
    state.model_info()
}

/// The adapters wgpu sees, what `auto` picks, and the loaded model's device.
#[tauri::command]
pub(crate) async fn devices<R: Runtime>(app: AppHandle<R>) -> Result<DeviceList> {
    blocking(&app, |e| e.devices()).await
}

/// One embedding per text.
#[tauri::command]
pub(crate) async fn embed<R: Runtime>(app: AppHandle<R>, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
    blocking(&app, move |e| e.embed(&texts)).await
}

/// Cosine similarity of `a` and `b`.
#[tauri::command]
pub(crate) async fn similarity<R: Runtime>(app: AppHandle<R>, a: String, b: String) -> Result<f64> {
    blocking(&app, move |e| e.similarity(&a, &b)).await
}

/// Cosine similarity of every pair of `texts`.
#[tauri::command]
pub(crate) async fn similarity_matrix<R: Runtime>(app: AppHandle<R>, texts: Vec<String>) -> Result<Vec<Vec<f64>>> {
    blocking(&app, move |e| e.similarity_matrix(&texts)).await
}

/// Adds documents to the index (an id given again replaces its document); returns its size.
#[tauri::command]
pub(crate) async fn index_add<R: Runtime>(app: AppHandle<R>, documents: Vec<DocumentInput>) -> Result<usize> {
    blocking(&app, move |e| e.index_add(&documents)).await
}

/// The `k` documents closest to `query`, best first, with their scores.
#[tauri::command]
pub(crate) async fn index_search<R: Runtime>(app: AppHandle<R>, query: String, k: usize) -> Result<Vec<iftcl::index::Hit>> {
    blocking(&app, move |e| e.index_search(&query, k)).await
}

/// Removes documents by id; returns how many were there.
#[tauri::command]
pub(crate) async fn index_remove<R: Runtime>(app: AppHandle<R>, ids: Vec<String>) -> Result<usize> {
    blocking(&app, move |e| e.index_remove(&ids)).await
}

/// Empties the index.
#[tauri::command]
pub(crate) async fn index_clear<R: Runtime>(app: AppHandle<R>) -> Result<()> {
    blocking(&app, |e| e.index_clear()).await
}

/// The stored documents, with the tokens the model reads of each.
#[tauri::command]
pub(crate) async fn index_documents<R: Runtime>(app: AppHandle<R>) -> Result<Vec<DocumentInfo>> {
    blocking(&app, |e| e.index_documents()).await
}

/// A new, empty index in place of a damaged index file, which is kept under another name.
#[tauri::command]
pub(crate) async fn reset_index<R: Runtime>(app: AppHandle<R>) -> Result<IndexReset> {
    blocking(&app, |e| e.reset_index()).await
}

/// IFTCL steps on `sentences`; each step's loss goes to `on_progress`.
#[tauri::command]
pub(crate) async fn fine_tune<R: Runtime>(app: AppHandle<R>, sentences: Vec<String>, options: Option<FineTuneOptions>, on_progress: Channel<Progress>) -> Result<FineTuneResult> {
    let options = options.unwrap_or_default().resolve();
    blocking(&app, move |e| {
        e.fine_tune(&sentences, &options, |p| {
            if let Err(err) = on_progress.send(Progress::from(p)) {
                tracing::warn!("fineTune progress not delivered: {err}");
            }
        })
    })
    .await
}

/// Stops the running fine-tune before its next step; false when none runs.
#[tauri::command]
pub(crate) fn cancel_fine_tune(state: State<'_, Engine>) -> bool {
    state.cancel_fine_tune()
}

/// Saves the loaded model (tuned or not) as a sentence-transformers folder.
#[tauri::command]
pub(crate) async fn save_model<R: Runtime>(app: AppHandle<R>, path: String, overwrite: Option<bool>) -> Result<SavedModel> {
    blocking(&app, move |e| e.save_model(path.as_ref(), overwrite.unwrap_or(false))).await
}

/// Keeps the loaded, tuned model in the app's data folder, for the next start.
#[tauri::command]
pub(crate) async fn keep_tuned_model<R: Runtime>(app: AppHandle<R>) -> Result<KeptModel> {
    blocking(&app, |e| e.keep_tuned_model()).await
}

/// The kept tuned model, or null.
#[tauri::command]
pub(crate) async fn kept_model<R: Runtime>(app: AppHandle<R>) -> Result<Option<KeptModel>> {
    blocking(&app, |e| e.kept_model()).await
}

/// Deletes the kept tuned model; false when there was none.
#[tauri::command]
pub(crate) async fn forget_kept_model<R: Runtime>(app: AppHandle<R>) -> Result<bool> {
    blocking(&app, |e| e.forget_kept_model()).await
}
