//! The errors the plugin's commands return: serialised to JavaScript as `{ kind, message }`,
//! the message being the library's own (it names the file, field or argument at fault).

use serde::Serialize;

/// What went wrong, by kind, with the library's message.
#[derive(Debug, thiserror::Error, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum Error {
    /// No model is loaded yet (`loadModel` first).
    #[error("{0}")]
    NoModel(String),
    /// An argument the command refuses (an empty list, `k = 0`, one sentence to tune on, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// The model folder cannot be loaded, or its weights or tokenizer are unusable.
    #[error("{0}")]
    Model(String),
    /// The device asked for does not exist, or failed.
    #[error("{0}")]
    Device(String),
    /// Reading or writing a file failed (the path is named).
    #[error("{0}")]
    Io(String),
    /// The folder to write already holds a model: ask the user, then call again with
    /// `overwrite: true`.
    #[error("{0}")]
    Exists(String),
    /// The semantic index file cannot be read.
    #[error("{0}")]
    Index(String),
    /// Another call holds what this one needs (one fine-tune at a time; no model change during
    /// one).
    #[error("{0}")]
    Busy(String),
    /// The call was cancelled; what was kept is said.
    #[error("{0}")]
    Cancelled(String),
    /// Training diverged (a loss or weight that is not finite); the weights of before stay.
    #[error("{0}")]
    Diverged(String),
}

impl From<iftcl::Error> for Error {
    fn from(e: iftcl::Error) -> Self {
        use iftcl::Error as E;
        let message = e.to_string();
        match e {
            E::InvalidArgument(_) | E::Input { .. } | E::Data(_) => Error::InvalidInput(message),
            E::Device(_) | E::Execution(_) => Error::Device(message),
            E::Io { .. } => Error::Io(message),
            E::Cancelled(_) => Error::Cancelled(message),
            E::Diverged(_) | E::NonFiniteEmbedding { .. } => Error::Diverged(message),
            _ => Error::Model(message),
        }
    }
}

impl From<tauri::Error> for Error {
    fn from(e: tauri::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// Shorthand for the commands' results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
