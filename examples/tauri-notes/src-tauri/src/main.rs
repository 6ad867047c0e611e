//! iftcl notes: a desktop app that keeps notes, searches them by meaning, compares two texts and
//! fine-tunes its model on the notes, all through `tauri-plugin-iftcl`; folders are chosen
//! through Tauri's dialog plugin. Its page is in `ui/`.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::path::PathBuf;

use tauri::Manager;
use tauri::path::BaseDirectory;

/// The model folder the page opens at start: `IFTCL_MODEL` if set, else a `model` folder
/// bundled with the app as a resource, if there is one.
#[tauri::command]
fn default_model(app: tauri::AppHandle) -> Option<String> {
    if let Ok(dir) = std::env::var("IFTCL_MODEL") {
        return Some(dir);
    }
    let bundled: PathBuf = app.path().resolve("model", BaseDirectory::Resource).ok()?;
    bundled.join("config.json").is_file().then(|| bundled.display().to_string())
}

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_iftcl::init())
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(tauri::generate_handler![default_model])
        .run(tauri::generate_context!())
        .expect("error while running iftcl notes");
}
