//! int8 weight matrices with one scale per row: the layout `iftcl-int8-rows-v1` of
//! docs/models.md ("Precisions").
//!
//! A matrix `W [rows, cols]` (a dense layer's weight in the checkpoint's `[out, in]`
//! orientation, so one scale per output channel, or the word-embedding table, one per token) is
//! stored as two tensors instead of `X.weight`:
//!
//! - `X.weight.int8`, I8 `[rows, cols]`: `q = clamp(round(W / s_r), -127, 127)` (ties to even);
//! - `X.weight.scale`, F32 `[rows]`: `s_r = max_c |W[r, c]| / 127`, or 1 where that is 0 (a row
//!   of zeros, or of values too small for the division), so that `q = 0` there.
//!
//! `W ≈ q * s[:, None]`. The safetensors header's `__metadata__` says
//! `"iftcl.quantization": "int8-rows-v1"`; transformers, which does not know the layout, fails
//! on the missing `X.weight`, and iftcl's loader refuses `.int8`/`.scale` tensors without that
//! key, naming both.

/// The `__metadata__` key that names the layout.
pub const METADATA_KEY: &str = "iftcl.quantization";
/// Its value for this layout.
pub const ROWS_V1: &str = "int8-rows-v1";
/// Suffix of the quantized values' tensor (`X.weight.int8`).
pub const VALUES_SUFFIX: &str = ".int8";
/// Suffix of the per-row scales' tensor (`X.weight.scale`).
pub const SCALE_SUFFIX: &str = ".scale";

/// A matrix quantized per row.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedRows {
    /// `[rows, cols]`, row-major.
    pub values: Vec<i8>,
    /// One per row, each finite and positive.
    pub scales: Vec<f32>,
}

/// The scale of a row whose largest magnitude is `max`: `max / 127`, or 1 where that is 0 or
/// not finite (so that the row's values quantize to 0).
#[inline(always)]
pub fn row_scale(max: f32) -> f32 {
    let s = max / 127.0;
    if s > 0.0 && s.is_finite() { s } else { 1.0 }
}

/// Quantizes the row-major matrix `w` (`cols` values per row) per row.
pub fn quantize_rows(w: &[f32], cols: usize) -> QuantizedRows {
    let cols = cols.max(1);
    let mut values = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(w.len() / cols);
    for row in w.chunks(cols) {
        let s = row_scale(row.iter().fold(0f32, |m, x| m.max(x.abs())));
        values.extend(row.iter().map(|x| (x / s).round_ties_even().clamp(-127.0, 127.0) as i8));
        scales.push(s);
    }
    QuantizedRows { values, scales }
}

/// Why `scales` cannot be the scales of a matrix of `rows` rows, or `None` when they can.
pub fn scales_fault(scales: &[f32], rows: usize) -> Option<String> {
    if scales.len() != rows {
        return Some(format!("holds {} scales for a matrix of {rows} rows", scales.len()));
    }
    let (i, s) = scales.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0))?;
    Some(format!("holds {s} as scale {i}; every scale must be finite and positive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_quantize_to_their_largest_magnitude() {
        let w = [1.0, -0.5, 0.25, 0.0, 0.0, 0.0, -254.0, 127.0, 1.0];
        let q = quantize_rows(&w, 3);
        assert_eq!(q.scales, vec![1.0 / 127.0, 1.0, 2.0]);
        assert_eq!(q.values, vec![127, -64, 32, 0, 0, 0, -127, 64, 0]);
        // Dequantised, each value is within half a step of its row's scale.
        for (k, (&x, &v)) in w.iter().zip(&q.values).enumerate() {
            let s = q.scales[k / 3];
            assert!((x - v as f32 * s).abs() <= s / 2.0 + 1e-6, "{k}: {x} vs {}", v as f32 * s);
        }
        assert!(scales_fault(&q.scales, 3).is_none());
    }

    #[test]
    fn bad_scales_are_named() {
        assert!(scales_fault(&[1.0], 2).unwrap().contains("1 scales for a matrix of 2 rows"));
        assert!(scales_fault(&[1.0, f32::NAN], 2).unwrap().contains("holds NaN as scale 1"));
        assert!(scales_fault(&[0.0, 1.0], 2).unwrap().contains("holds 0 as scale 0"));
        assert!(scales_fault(&[-1.0, 1.0], 2).unwrap().contains("holds -1 as scale 0"));
    }
}
