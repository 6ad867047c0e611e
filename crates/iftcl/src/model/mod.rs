//! The encoder: transformer, pooling, batching, weights and model folders.
//!
//! - [`bert`]: the transformer of every family ([`BertModel`]; MPNet's attention bias in
//!   `relative_position`); `rows` and [`op_path`] say which rows and
//!   which op implementations a device computes; [`activation`], [`gelu`] and [`dropout`] are
//!   the row-wise parts with CPU-specific paths; [`layer_norm`] has a GPU-training form.
//! - [`batch`]: padding token ids and the forward pass from ids to sentence vectors.
//! - [`pooling`]: token states to one vector per sentence; [`head`]: pooling and
//!   normalisation as a model folder configures them, with the sentence-transformers modules
//!   after pooling ([`st_modules`]: Dense, LayerNorm, Normalize).
//! - `weights`: `model.safetensors` in, `weights_out` out, in every [`precision`] ([`int8`]:
//!   the int8 layout; `widen`: stored elements to f32) and [`weights_stream`], the same file converted
//!   while it arrives; [`folder`]: whole model folders.

pub mod activation;
pub mod batch;
pub mod bert;
pub mod dropout;
pub mod folder;
pub mod gelu;
pub mod head;
pub mod int8;
pub mod int8_layers;
pub(crate) mod int8_kernels;
pub mod int8_matmul;
#[cfg(target_arch = "x86_64")]
mod int8_vnni;
pub mod layer_norm;
pub mod op_path;
pub mod pooling;
pub mod precision;
pub mod st_modules;
pub(crate) mod relative_position;
pub(crate) mod rows;
pub(crate) mod weights;
pub(crate) mod weights_out;
pub mod weights_stream;
pub(crate) mod widen;

pub use batch::{PaddedBatch, encode, encode_grouped, encode_int8, pad_batch};
pub use bert::BertModel;
pub use head::Head;
pub use int8_layers::Int8Layers;
pub use folder::{COMPANION_FILES, FolderContents, FolderExtras, ModelFiles, RawModelFiles};
pub use op_path::OpPath;
pub use pooling::{l2_normalize, pool};
pub use precision::Precision;
