//! The encoder: transformer, pooling, checkpoint I/O.

pub mod bert;
pub mod dropout;
pub mod gelu;
pub mod pooling;
pub(crate) mod weights;

pub use bert::BertModel;
pub use pooling::{l2_normalize, pool};
