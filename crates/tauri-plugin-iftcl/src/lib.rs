//! `tauri-plugin-iftcl`: sentence embeddings, a semantic index and IFTCL fine-tuning for Tauri 2
//! apps, on the user's GPU through wgpu or on the CPU, with no server and no Python. A thin
//! layer over the [`iftcl`] library: the model, the index and the training are the library's;
//! this crate holds them in the app's state, runs them off the main thread and speaks IPC.
//!
//! In the app's `main.rs` (with `tauri-plugin-iftcl` in its Cargo dependencies):
//!
//! ```text
//! fn main() {
//!     tauri::Builder::default()
//!         .plugin(tauri_plugin_iftcl::init())
//!         .run(tauri::generate_context!())
//!         .expect("error while running the app");
//! }
//! ```
//!
//! The app's capability grants the commands (`"permissions": ["iftcl:default"]`), and its
//! pages call them through the `tauri-plugin-iftcl-api` package (`guest-js/`):
//! `loadModel`, `devices`, `embed`, `similarity`, `similarityMatrix`, `indexAdd`,
//! `indexSearch`, `indexRemove`, `indexClear`, `indexDocuments`, `fineTune` (with progress),
//! `cancelFineTune`, `saveModel`, `modelInfo`, `resetIndex` (a new index in place of a damaged
//! file), `keepTunedModel`, `keptModel` and `forgetKeptModel` (a tuned model that survives a
//! restart, in the app's data folder).
//!
//! The semantic index lives in the app's data folder (`<app data>/iftcl/semantic-index.json`,
//! written atomically), so it survives a restart; when the loaded model differs from the one
//! its vectors came from (another model, or this one tuned), its texts are embedded again and
//! the call says so.

mod commands;
pub mod engine;
pub mod error;
pub mod kept;
mod model_card;
pub mod types;

use std::path::PathBuf;

use iftcl::DeviceSpec;
use tauri::plugin::TauriPlugin;
use tauri::{Manager, Runtime};

pub use engine::Engine;
pub use error::{Error, Result};

/// The plugin with its defaults: models on `auto` (a hardware GPU if there is one, else the
/// CPU), the index in the app's data folder.
pub fn init<R: Runtime>() -> TauriPlugin<R> {
    Builder::default().build()
}

/// The plugin with settings.
#[derive(Debug, Default)]
pub struct Builder {
    data_dir: Option<PathBuf>,
    device: DeviceSpec,
}

impl Builder {
    /// Keeps the semantic index in `dir` instead of `<app data>/iftcl`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The device models load on when `loadModel` names none (default `auto`).
    pub fn device(mut self, device: DeviceSpec) -> Self {
        self.device = device;
        self
    }

    /// The plugin, to give to `tauri::Builder::plugin`.
    pub fn build<R: Runtime>(self) -> TauriPlugin<R> {
        tauri::plugin::Builder::new("iftcl")
            .invoke_handler(tauri::generate_handler![
                commands::load_model,
                commands::model_info,
                commands::devices,
                commands::embed,
                commands::similarity,
                commands::similarity_matrix,
                commands::index_add,
                commands::index_search,
                commands::index_remove,
                commands::index_clear,
                commands::index_documents,
                commands::fine_tune,
                commands::cancel_fine_tune,
                commands::save_model,
                commands::reset_index,
                commands::keep_tuned_model,
                commands::kept_model,
                commands::forget_kept_model,
            ])
            .setup(move |app, _api| {
                let dir = match self.data_dir {
                    Some(d) => d,
                    None => app.path().app_data_dir()?.join("iftcl"),
                };
                std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                app.manage(Engine::new(dir, self.device));
                Ok(())
            })
            .build()
    }
}
