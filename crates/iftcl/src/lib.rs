//! iftcl: sentence encoders trained and run with the IFTCL recipe on any GPU through wgpu, with
//! a CPU fallback.
//!
//! - [`SentenceEncoder`]: load a BERT-family model folder (Hugging Face + sentence-transformers
//!   layout), embed sentences, save.
//! - [`device`]: `auto | cpu | gpu | gpu:N` selection and the adapter listing.
//! - [`eval`]: STS benchmarks in SentEval's layout, Spearman × 100.
//! - [`diagnose`]: gradients on a device checked against the CPU backend.
//! - [`bench`]: throughput measurements printed by `iftcl bench`.

pub mod bench;
pub mod config;
pub mod device;
pub mod diagnose;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod model;
pub mod tokenize;
pub mod train;

pub use burn;
pub use device::{DeviceSpec, SelectedDevice};
pub use encoder::{Head, ModelFiles, SentenceEncoder};
pub use error::{Error, Result};
