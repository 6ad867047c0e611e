//! iftcl: sentence encoders trained and run with the IFTCL recipe (Identical and Fraternal
//! Twins contrastive learning) on any GPU through wgpu, with a CPU fallback.
//!
//! - [`SentenceEncoder`]: load a model folder (Hugging Face + sentence-transformers layout) of
//!   a supported family (BERT, RoBERTa, XLM-RoBERTa, MPNet: [`hf_config::Family`]), embed
//!   sentences, save; [`SentenceEncoder::random`] gives one of any shape with random weights.
//! - `hub` (not in the browser build): models by Hugging Face Hub id, through the standard cache.
//! - [`device`]: `auto | cpu | gpu | gpu:N` selection and the adapter listing.
//! - [`train`]: the IFTCL trainer ([`train::train`]) and in-memory fine-tuning
//!   ([`train::FineTuner`]).
//! - [`index`]: a semantic index (documents, embeddings, top-k search) saved atomically.
//! - [`eval`]: STS benchmarks in SentEval's layout, Spearman × 100; [`similarity`]: cosine.
//! - [`diagnose`]: gradients on a device checked against the CPU backend.
//! - [`host_reads`]: device→host reads the library issued (sync points), counted.
//! - [`bench`](mod@bench): throughput measurements printed by `iftcl bench`.
//! - [`convert`]: a model folder rewritten with f16, bf16 or int8 weights ([`Precision`]).
//! - [`atomic`]: files and folders written atomically (temporary name, then rename);
//!   [`inputs`]: no output over an input.
//!
//! ```no_run
//! use iftcl::{DeviceSpec, SentenceEncoder, cosine, device};
//! # fn main() -> iftcl::Result<()> {
//! let selected = device::select(DeviceSpec::Cpu)?;
//! let encoder = SentenceEncoder::load("models/all-MiniLM-L6-v2".as_ref(), &selected.device)?;
//! let v = encoder.embed(&["A man is playing a guitar.", "A man plays the guitar on stage."])?;
//! println!("{:.4}", cosine(&v[0], &v[1]));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod atomic;
pub mod bench;
pub mod compare;
pub mod compute;
pub mod convert;
pub mod device;
pub mod diagnose;
pub mod encoder;
pub mod error;
pub mod eval;
mod fingerprint;
pub mod hash;
pub mod host_reads;
pub mod hf_config;
#[cfg(not(target_family = "wasm"))]
pub mod hub;
pub mod index;
pub mod inputs;
mod json;
pub mod model;
mod random_encoder;
pub mod similarity;
#[cfg(test)]
mod test_fixtures;
pub mod tokenize;
pub mod train;

pub use burn;
pub use compute::Compute;
pub use device::{DeviceSpec, SelectedDevice};
pub use encoder::{PreparedEncoder, SentenceEncoder};
pub use error::{Error, Result};
pub use model::weights_stream::IncomingWeights;
pub use model::{Head, ModelFiles, Precision, RawModelFiles};
pub use similarity::cosine;
