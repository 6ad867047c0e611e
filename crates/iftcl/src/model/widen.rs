//! A stored tensor's elements as f32: widened from F16/BF16/F64, read from F32, or dequantised
//! from int8 rows ([`super::int8`]), and for a dense layer's weight transposed on the way.
//!
//! One routine for the whole tensor at once ([`WeightSource`](super::weights)'s files in
//! memory) and for rows as they arrive ([`super::weights_stream`]): both give the same bits.

use std::ops::Range;

use burn::tensor::{bf16, f16};
use safetensors::Dtype;

/// How one stored element becomes an f32.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Element<'s> {
    F32,
    F16,
    Bf16,
    F64,
    /// Int8 values, each row times its scale.
    Int8 { scales: &'s [f32] },
}

impl<'s> Element<'s> {
    /// The element of a floating `dtype`; `None` for other dtypes.
    pub(crate) fn float(dtype: Dtype) -> Option<Element<'static>> {
        match dtype {
            Dtype::F32 => Some(Element::F32),
            Dtype::F16 => Some(Element::F16),
            Dtype::BF16 => Some(Element::Bf16),
            Dtype::F64 => Some(Element::F64),
            _ => None,
        }
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            Element::F32 => 4,
            Element::F16 | Element::Bf16 => 2,
            Element::F64 => 8,
            Element::Int8 { .. } => 1,
        }
    }
}

/// The shape of the conversion: the tensor as `[rows, cols]` in the file (a vector is `[n, 1]`),
/// written out in that order or, when `transpose`, as `[cols, rows]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub transpose: bool,
}

impl Layout {
    /// `shape` as `[rows, cols]`: its first dimension and the product of the others.
    pub(crate) fn of(shape: &[usize], transpose: bool) -> Layout {
        let rows = shape.first().copied().unwrap_or(1);
        let cols = shape.iter().skip(1).product::<usize>();
        Layout { rows, cols, transpose: transpose && shape.len() == 2 }
    }

    pub(crate) fn len(self) -> usize {
        self.rows * self.cols
    }
}

/// Rows `rows` of the tensor, whose bytes are `data` (those rows' bytes, from the first of
/// them), into `out`, the tensor's values so far: in file order they are appended (`out` holds
/// the rows before `rows.start`); transposed they are put in their places (`out` is sized to
/// the whole tensor on the first call). Returns the first position in `out` of a value that
/// is not finite among those written.
pub(crate) fn widen_rows(element: Element<'_>, data: &[u8], layout: Layout, rows: Range<usize>, out: &mut Vec<f32>) -> Option<usize> {
    match element {
        Element::F32 => rows_with(data, 4, layout, rows, out, |b, _| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Element::F16 => rows_with(data, 2, layout, rows, out, |b, _| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        Element::Bf16 => rows_with(data, 2, layout, rows, out, |b, _| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        Element::F64 => rows_with(data, 8, layout, rows, out, |b, _| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32),
        Element::Int8 { scales } => rows_with(data, 1, layout, rows, out, |b, r| b[0] as i8 as f32 * scales[r]),
    }
}

/// The whole tensor's values, and the position of the first that is not finite.
pub(crate) fn widen(element: Element<'_>, data: &[u8], layout: Layout) -> (Vec<f32>, Option<usize>) {
    let mut out = Vec::with_capacity(layout.len());
    let bad = widen_rows(element, data, layout, 0..layout.rows, &mut out);
    (out, bad)
}

/// [`widen_rows`] with `at(bytes, row)` converting one element of row `row`.
fn rows_with(data: &[u8], size: usize, layout: Layout, rows: Range<usize>, out: &mut Vec<f32>, at: impl Fn(&[u8], usize) -> f32) -> Option<usize> {
    let Layout { rows: total, cols, transpose } = layout;
    if cols == 0 {
        return None;
    }
    let data = &data[..rows.len() * cols * size];
    if !transpose {
        // Appended, never zeroed first: each page of a fresh allocation is written once.
        let from = out.len();
        for (i, row) in data.chunks_exact(cols * size).enumerate() {
            out.extend(row.chunks_exact(size).map(|b| at(b, rows.start + i)));
        }
        return out[from..].iter().position(|x| !x.is_finite()).map(|k| from + k);
    }
    if out.is_empty() {
        out.resize(layout.len(), 0.0);
    }
    // In 32 x 32 tiles: reads and writes both stay within a few cache lines per row.
    const TILE: usize = 32;
    let mut bad: Option<usize> = None;
    for r0 in rows.clone().step_by(TILE) {
        let r1 = (r0 + TILE).min(rows.end);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for r in r0..r1 {
                let row = &data[(r - rows.start) * cols * size..(r - rows.start + 1) * cols * size];
                for c in c0..c1 {
                    out[c * total + r] = at(&row[c * size..(c + 1) * size], r);
                }
            }
            // The tile just written, while it is in cache.
            for c in c0..c1 {
                if let Some(k) = out[c * total + r0..c * total + r1].iter().position(|x| !x.is_finite()) {
                    let at = c * total + r0 + k;
                    bad = Some(bad.map_or(at, |b| b.min(at)));
                }
            }
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn rows_converted_in_pieces_give_the_whole_tensors_bits() {
        // 70 x 45: more than two tiles each way, neither a multiple of 32.
        let (rows, cols) = (70, 45);
        let values: Vec<f32> = (0..rows * cols).map(|k| (k as f32 * 0.37).sin() * 10.0).collect();
        let bytes = f32_bytes(&values);
        let halves: Vec<u8> = values.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect();
        let ints: Vec<u8> = (0..rows * cols).map(|k| (k % 255) as u8).collect();
        let scales: Vec<f32> = (0..rows).map(|r| 0.01 * (r + 1) as f32).collect();
        let cases: [(Element<'_>, &[u8]); 3] = [(Element::F32, &bytes), (Element::F16, &halves), (Element::Int8 { scales: &scales }, &ints)];
        for (element, data) in cases {
            for transpose in [false, true] {
                let layout = Layout { rows, cols, transpose };
                let (whole, bad) = widen(element, data, layout);
                assert_eq!(bad, None);
                let mut pieces = Vec::new();
                let size = element.size();
                for range in [0..1, 1..32, 32..33, 33..64, 64..70] {
                    assert_eq!(widen_rows(element, &data[range.start * cols * size..range.end * cols * size], layout, range, &mut pieces), None);
                }
                let same = whole.iter().zip(&pieces).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{element:?} transpose {transpose}: the pieces differ from the whole");
                // Spot checks against the definition.
                let at = |r: usize, c: usize| if transpose { whole[c * rows + r] } else { whole[r * cols + c] };
                if let Element::F32 = element {
                    assert_eq!(at(69, 44), values[69 * cols + 44]);
                    assert_eq!(at(3, 7), values[3 * cols + 7]);
                }
                if let Element::Int8 { .. } = element {
                    assert_eq!(at(2, 5), ((2 * cols + 5) % 255) as u8 as i8 as f32 * scales[2]);
                }
            }
        }
    }

    #[test]
    fn the_first_value_that_is_not_finite_is_found_in_output_order() {
        // 40 x 3: in the transposed output, (row 35, col 0) comes before (row 2, col 1).
        let (rows, cols) = (40, 3);
        let mut values = vec![1.0f32; rows * cols];
        values[2 * cols + 1] = f32::NAN;
        values[35 * cols] = f32::INFINITY;
        let bytes = f32_bytes(&values);
        assert_eq!(widen(Element::F32, &bytes, Layout { rows, cols, transpose: false }).1, Some(2 * cols + 1));
        assert_eq!(widen(Element::F32, &bytes, Layout { rows, cols, transpose: true }).1, Some(35));
        // In pieces, the later piece holding the earlier position.
        let layout = Layout { rows, cols, transpose: true };
        let mut out = Vec::new();
        assert_eq!(widen_rows(Element::F32, &bytes[..32 * cols * 4], layout, 0..32, &mut out), Some(rows + 2));
        assert_eq!(widen_rows(Element::F32, &bytes[32 * cols * 4..], layout, 32..40, &mut out), Some(35));
        // A finite f64 beyond f32's range is not finite once converted.
        let big: Vec<u8> = [1.0f64, 1e300].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(widen(Element::F64, &big, Layout::of(&[2], false)).1, Some(1));
    }

    #[test]
    fn a_vector_is_one_column() {
        let layout = Layout::of(&[3], true);
        assert_eq!(layout, Layout { rows: 3, cols: 1, transpose: false });
        assert_eq!(widen(Element::F32, &f32_bytes(&[1.0, -2.0, 3.5]), layout), (vec![1.0, -2.0, 3.5], None));
        assert_eq!(Layout::of(&[2, 3, 4], false), Layout { rows: 2, cols: 12, transpose: false });
    }
}
