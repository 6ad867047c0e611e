//! The library's error type: every variant names the file, line, field or tensor at fault so a
//! user can act on the message without a backtrace.

use std::path::PathBuf;

/// Errors raised by the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model folder or one of its required files is absent.
    #[error("{what} not found: {path} ({hint})")]
    Missing {
        /// What was looked for ("model folder", "config.json", ...).
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// What the user can do about it.
        hint: String,
    },
    /// A folder was expected and a file was found (or the other way round).
    #[error("{what} {path} is a file, not a folder ({hint})")]
    NotAFolder {
        /// What was looked for ("model folder", "output folder", ...).
        what: String,
        /// The path given.
        path: PathBuf,
        /// What the user can do about it.
        hint: String,
    },
    /// Reading or writing a file failed. The OS error is part of the message (and not a
    /// `source()`), so that a report of the whole chain names it once.
    #[error("cannot {action} {path}: {cause}")]
    Io {
        /// "read", "write", "create", ...
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A JSON/TOML file could not be parsed.
    #[error("{path} is not a valid {format} file: {message}")]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// "JSON", "TOML", ...
        format: &'static str,
        /// The parser's message (it includes the line and column).
        message: String,
    },
    /// A model could not be fetched from the Hugging Face Hub (`--model org/name`).
    #[error("Hugging Face Hub model {repo}{}: {message} (and there is no folder named {repo} here; scripts/fetch-model.sh fetches the default model)", file.as_ref().map(|f| format!(", file {f}")).unwrap_or_default())]
    Hub {
        /// The repo id.
        repo: String,
        /// The file being fetched, if one.
        file: Option<String>,
        /// What went wrong and what to do.
        message: String,
    },
    /// A configuration field holds a value this tool cannot use.
    #[error("{path}: field `{field}`: {message}")]
    Config {
        /// The file concerned.
        path: PathBuf,
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The weights file cannot be decoded (truncated, corrupt, wrong format).
    #[error("{path} is truncated or corrupt ({message}); fetch the model again (scripts/fetch-model.sh)")]
    CorruptWeights {
        /// The weights file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// A tensor the architecture needs is absent from the weights file.
    #[error("{path}: tensor `{name}` is missing (the checkpoint does not match config.json)")]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor's checkpoint name.
        name: String,
    },
    /// A tensor's shape disagrees with what config.json implies.
    #[error("{path}: tensor `{name}` has shape {actual:?} but config.json implies {expected:?}")]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The tensor's checkpoint name.
        name: String,
        /// The shape config.json implies.
        expected: Vec<usize>,
        /// The shape found in the file.
        actual: Vec<usize>,
    },
    /// A tensor has a dtype this tool cannot convert to f32.
    #[error("{path}: tensor `{name}` has unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor's checkpoint name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A tensor of the weights file cannot be used as stored (an int8 matrix whose scales are
    /// missing or not positive, a layout the file's header does not name, ...).
    #[error("{path}: tensor `{name}` {message}")]
    InvalidTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor's checkpoint name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A weights file holds a value that is NaN or infinite: a model saved after its training
    /// diverged.
    #[error("{path}: tensor `{name}` holds {value} at position {index}: the weights are not finite (saved after training diverged?); use an earlier checkpoint")]
    NonFiniteWeights {
        /// The weights file.
        path: PathBuf,
        /// The tensor's checkpoint name.
        name: String,
        /// Flat position of the first bad value.
        index: usize,
        /// The value found there.
        value: f32,
    },
    /// The model computed an embedding that is not finite: weights so large that the forward
    /// pass overflows.
    #[error("the model gives a non-finite embedding ({value}) for input {}: its weights overflow (a model saved after training diverged?)", .index + 1)]
    NonFiniteEmbedding {
        /// 0-based position of the input in the call.
        index: usize,
        /// The first bad value.
        value: f32,
    },
    /// Training diverged (a loss, weight or embedding that is not finite) and stopped.
    #[error("{0}")]
    Diverged(String),
    /// An output folder is owned by another training run.
    #[error("{dir} is in use by another `iftcl train` run ({holder}); wait for it to end or choose another output folder")]
    Locked {
        /// The output folder.
        dir: PathBuf,
        /// Who holds it ("pid 1234", ...).
        holder: String,
    },
    /// A training checkpoint cannot be used (its parts disagree, or disagree with the run).
    #[error("{path}: {message}")]
    Checkpoint {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer and the model disagree (vocabulary larger than the embedding table, ...).
    #[error("tokenizer/model mismatch: {0}")]
    TokenizerMismatch(String),
    /// The tokenizer failed.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// An input line is not valid UTF-8, malformed, or otherwise unusable.
    #[error("{source_name}:{line}: {message}")]
    Input {
        /// The file name, or `"<stdin>"`.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A data set could not be used.
    #[error("data: {0}")]
    Data(String),
    /// The requested device is not available.
    #[error("device: {0}")]
    Device(String),
    /// A tensor computation failed on the device.
    #[error("device execution failed: {0}")]
    Execution(String),
    /// The caller cancelled the work (what was kept is said).
    #[error("cancelled {0}")]
    Cancelled(String),
    /// A caller passed an argument this library rejects.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), cause }
    }

    /// An [`Error::Execution`] from a backend's error (a failed read-back or sync), which
    /// burn reports through `Debug` only.
    pub fn execution(source: impl std::fmt::Debug) -> Self {
        Error::Execution(format!("{source:?}"))
    }
}
