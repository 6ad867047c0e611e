//! The number formats a model folder's `model.safetensors` can be written in.
//!
//! Every precision loads on every front end; computation stays f32 (values are widened, or
//! int8 matrices dequantised, on load). The files (see docs/models.md, "Precisions"):
//!
//! | precision | floating tensors | the encoder's weight matrices | `config.json` `torch_dtype` |
//! |---|---|---|---|
//! | [`Precision::F32`] (every save's default) | F32 | F32 | `"float32"` |
//! | [`Precision::F16`] | F16 | F16 | `"float16"` |
//! | [`Precision::Bf16`] | BF16 | BF16 | `"bfloat16"` |
//! | [`Precision::Int8`] | F32 | I8 + one F32 scale per row ([`super::int8`]) | `"float32"` |

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The number format of the weights a model folder is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    /// 32-bit floats: what the encoder computes with; the default of every save.
    #[default]
    F32,
    /// IEEE half precision: half the bytes, about 3 decimal digits (values beyond ±65504
    /// cannot be written).
    F16,
    /// bfloat16: half the bytes, f32's range with about 2 decimal digits.
    Bf16,
    /// int8 weight matrices with one f32 scale per row (per output channel); embeddings of
    /// positions and token types, LayerNorms and biases stay f32. About a quarter of the bytes.
    Int8,
}

impl Precision {
    /// Every precision, in the order the docs list them.
    pub const ALL: [Precision; 4] = [Precision::F32, Precision::F16, Precision::Bf16, Precision::Int8];

    /// The name `iftcl convert --dtype` takes and prints.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    /// `config.json`'s `torch_dtype` for a folder of this precision, as transformers writes it
    /// (int8 files compute in f32 once dequantised).
    pub fn torch_dtype(self) -> &'static str {
        match self {
            Precision::F32 | Precision::Int8 => "float32",
            Precision::F16 => "float16",
            Precision::Bf16 => "bfloat16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    /// `f32`, `f16`, `bf16` or `int8` (also `float32`, `float16`/`fp16`, `bfloat16`).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Ok(Precision::F32),
            "f16" | "float16" | "fp16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "int8" | "i8" => Ok(Precision::Int8),
            _ => Err(Error::InvalidArgument(format!("precision `{s}` is not f32, f16, bf16 or int8"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("float16".parse::<Precision>().unwrap(), Precision::F16);
        let e = "int4".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("`int4`") && e.contains("f16"), "{e}");
    }
}
