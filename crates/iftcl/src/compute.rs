//! [`Compute`]: the number format an encoder's dense layers compute in, chosen per encoder.
//!
//! f32 everywhere by default. On the CPU backend an encoder can compute its dense layers in
//! int8 instead ([`crate::model::Int8Layers`]: weights per output channel, activations per row,
//! exact integer sums), about a quarter of an f32 pass's multiply-add time; an int8 model file
//! loaded on the CPU computes that way unless told otherwise. GPUs compute in f32.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::encoder::SentenceEncoder;
use crate::error::{Error, Result};
use crate::model::OpPath;

/// What an encoder's dense layers compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Compute {
    /// 32-bit floats (every device; the default).
    #[default]
    F32,
    /// int8 × int8 products summed in i32 (the CPU backend's inference path).
    Int8,
}

impl Compute {
    /// The name `--dtype` takes and prints.
    pub fn name(self) -> &'static str {
        match self {
            Compute::F32 => "f32",
            Compute::Int8 => "int8",
        }
    }
}

impl fmt::Display for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compute {
    type Err = Error;

    /// `f32` or `int8` (also `float32`, `fp32`, `i8`).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Ok(Compute::F32),
            "int8" | "i8" => Ok(Compute::Int8),
            _ => Err(Error::InvalidArgument(format!("compute type `{s}` is not f32 or int8 (weight files in f16 or bf16 compute in f32)"))),
        }
    }
}

impl SentenceEncoder {
    /// The same encoder computing in `compute`: `Int8` quantizes its dense layers from its
    /// current weights (an int8 file's own values come back unchanged) and needs the CPU
    /// backend; `F32` drops them. Replacing [`SentenceEncoder::model`] afterwards leaves the
    /// int8 layers of the old weights: call this again.
    pub fn with_compute(mut self, compute: Compute) -> Result<Self> {
        self.int8 = match compute {
            Compute::F32 => None,
            Compute::Int8 if OpPath::for_device(self.device()) == OpPath::Host => Some(Arc::new(self.model.int8_layers())),
            Compute::Int8 => return Err(Error::InvalidArgument("int8 compute runs on the CPU backend only (--device cpu); GPUs compute in f32".into())),
        };
        Ok(self)
    }

    /// What the dense layers compute in.
    pub fn compute(&self) -> Compute {
        if self.int8.is_some() { Compute::Int8 } else { Compute::F32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in [Compute::F32, Compute::Int8] {
            assert_eq!(c.name().parse::<Compute>().unwrap(), c);
        }
        let e = "f16".parse::<Compute>().unwrap_err().to_string();
        assert!(e.contains("`f16`") && e.contains("f32 or int8"), "{e}");
    }
}
