//! int8 dense layers for CPU inference: `y = x·Wᵀ + b` with `W` quantized per row (per output
//! channel, the layout of [`super::int8`]) and each row of `x` quantized on the fly, its
//! products summed exactly in i32 and scaled back to f32.
//!
//! Both operands are held as i16 (values in −127..=127) so that one instruction multiplies
//! pairs and adds each pair into an i32 lane: AVX-512BW's `vpmaddwd` (32 products per
//! instruction), AVX2's (16), a scalar loop elsewhere (wasm SIMD's `i32x4.dot_i16x8` is the
//! next path to add; until then the browser computes int8 files in f32). The
//! sums are exact integers (at most 127²·cols, far inside i32), so every path gives the same
//! bits: a test pins the vector paths to the scalar one. Only the final scaling rounds.
//!
//! Layout: `W` is packed once, at load, in panels of 32 outputs; within a panel, for each pair
//! of inputs, the 32 outputs' two values side by side (64 i16, two 512-bit vectors). Each row of
//! `x` is packed per call as i32 words holding two i16, so that one broadcast word times a
//! panel's vector gives 16 outputs' pair products at once: no horizontal sums, and every
//! accumulator is 16 outputs of one row. A step keeps 8 rows × 32 outputs in 16 registers
//! (AVX-512), 2 × 32 (AVX2). Rows are padded with zeros to a multiple of 8,
//! inputs to a multiple of 2 and outputs to a multiple of 32.
//!
//! Quality: per-row scales on both sides. all-MiniLM-L6-v2's figures are in docs/models.md
//! ("Precisions": `int8` compute).

use super::int8::{QuantizedRows, quantize_rows};

/// Outputs per panel of the packed `W`.
const PANEL: usize = 32;
/// Rows of `x` are padded to a multiple of this (the AVX-512 step's rows).
const ROWS: usize = 8;

/// A dense layer's weight matrix `[outputs, inputs]` in int8, widened and packed for the
/// products, with its per-row scales and its bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Matrix {
    outputs: usize,
    inputs: usize,
    /// Pairs of inputs: `inputs` rounded up to even, halved.
    pairs: usize,
    /// Panels of [`PANEL`] outputs, each `pairs` × `PANEL` × 2 values (zeros past the end).
    packed: Vec<i16>,
    /// The quantized values as given, `[outputs, inputs]` (kept for [`Self::stack`]).
    values: Vec<i8>,
    scales: Vec<f32>,
    bias: Vec<f32>,
}

impl Int8Matrix {
    /// The matrix `q` (`[outputs, inputs]`, row-major, one scale per row) with `bias`
    /// (`outputs` values, or empty for none).
    pub fn new(q: &QuantizedRows, inputs: usize, bias: Vec<f32>) -> Self {
        let outputs = q.scales.len();
        assert_eq!(q.values.len(), outputs * inputs, "a value per output and input");
        let pairs = inputs.div_ceil(2);
        let panels = outputs.div_ceil(PANEL);
        let mut packed = vec![0i16; panels * pairs * PANEL * 2];
        for o in 0..outputs {
            let (panel, lane) = (o / PANEL, o % PANEL);
            for i in 0..inputs {
                packed[(panel * pairs + i / 2) * PANEL * 2 + lane * 2 + i % 2] = i16::from(q.values[o * inputs + i]);
            }
        }
        let bias = if bias.is_empty() { vec![0.0; outputs] } else { bias };
        assert_eq!(bias.len(), outputs, "one bias per output");
        Int8Matrix { outputs, inputs, pairs, packed, values: q.values.clone(), scales: q.scales.clone(), bias }
    }

    /// The f32 matrix `w` (`[outputs, inputs]`, row-major) quantized per row, with `bias`.
    pub fn quantize(w: &[f32], inputs: usize, bias: Vec<f32>) -> Self {
        Self::new(&quantize_rows(w, inputs), inputs, bias)
    }

    /// Stacks matrices of the same width into one whose outputs are theirs in order (the
    /// query, key and value projections as one product).
    pub fn stack(parts: &[Int8Matrix]) -> Self {
        let inputs = parts.first().map_or(0, |p| p.inputs);
        assert!(parts.iter().all(|p| p.inputs == inputs), "stacked matrices share their width");
        let q = QuantizedRows { values: parts.iter().flat_map(|p| p.values.iter().copied()).collect(), scales: parts.iter().flat_map(|p| p.scales.iter().copied()).collect() };
        Self::new(&q, inputs, parts.iter().flat_map(|p| p.bias.iter().copied()).collect())
    }

    /// Outputs (rows of `W`).
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Inputs (columns of `W`).
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// `x·Wᵀ + b` for `x` of `x.len() / inputs` rows, row-major; the result has `outputs`
    /// values per row.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.apply_with(x, Kernel::best())
    }

    fn apply_with(&self, x: &[f32], kernel: Kernel) -> Vec<f32> {
        if self.inputs == 0 || self.outputs == 0 {
            return Vec::new();
        }
        // The quantization and the scaling run under the same CPU features as the products
        // (vectorised rounding and conversions; without them `round_ties_even` is a libm call).
        match kernel {
            Kernel::Scalar => self.apply_using(x, scalar),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                let simd = pulp::x86::V4::try_new().expect("checked by Kernel::best");
                simd.vectorize(
                    #[inline(always)]
                    || self.apply_using(x, |a, w, pairs, sums, width| x86::avx512(simd, a, w, pairs, sums, width)),
                )
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                let simd = pulp::x86::V3::try_new().expect("checked by Kernel::best");
                simd.vectorize(
                    #[inline(always)]
                    || self.apply_using(x, |a, w, pairs, sums, width| x86::avx2(simd, a, w, pairs, sums, width)),
                )
            }
        }
    }

    /// Quantizes `x`, runs `products` (`sums[r·width + o]` for `x`'s rows of pair words and the
    /// panels of `W`) and scales the sums back.
    #[inline(always)]
    fn apply_using(&self, x: &[f32], products: impl Fn(&[i32], &[i16], usize, &mut [i32], usize)) -> Vec<f32> {
        let m = x.len() / self.inputs;
        let (words, act_scales) = quantize_acts(x, self.inputs, self.pairs);
        let width = self.outputs.div_ceil(PANEL) * PANEL;
        let mut sums = vec![0i32; m.div_ceil(ROWS) * ROWS * width];
        products(&words, &self.packed, self.pairs, &mut sums, width);
        let mut out = vec![0f32; m * self.outputs];
        for ((row, sums), &sa) in out.chunks_exact_mut(self.outputs).zip(sums.chunks_exact(width)).zip(&act_scales) {
            for (((y, &s), &sw), &b) in row.iter_mut().zip(sums).zip(&self.scales).zip(&self.bias) {
                *y = s as f32 * (sa * sw) + b;
            }
        }
        out
    }
}

/// Each row of `x` (`cols` values) quantized to its largest magnitude and packed as `pairs`
/// i32 words of two i16 (the even input in the low half), rows padded with zeros to a multiple
/// of [`ROWS`]; and each row's scale.
#[inline(always)]
fn quantize_acts(x: &[f32], cols: usize, pairs: usize) -> (Vec<i32>, Vec<f32>) {
    let m = x.len() / cols;
    let mut words = vec![0i32; m.div_ceil(ROWS) * ROWS * pairs];
    let mut scales = Vec::with_capacity(m);
    let mut q = vec![0i16; pairs * 2];
    for (row, dst) in x.chunks_exact(cols).zip(words.chunks_exact_mut(pairs)) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = max / 127.0;
        let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
        let inv = 1.0 / s;
        for (d, &v) in q.iter_mut().zip(row) {
            *d = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i16;
        }
        for (w, pair) in dst.iter_mut().zip(q.chunks_exact(2)) {
            *w = i32::from(pair[0] as u16) | (i32::from(pair[1]) << 16);
        }
        scales.push(s);
    }
    (words, scales)
}

/// Which instructions compute the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// One value at a time (and the reference of the others).
    Scalar,
    /// AVX-512BW, 512-bit vectors.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2, 256-bit vectors.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest this CPU runs.
    pub(crate) fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V4::is_available() {
                return Kernel::Avx512;
            }
            if pulp::x86::V3::is_available() {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    /// Every kernel this CPU runs.
    #[cfg(test)]
    fn available() -> Vec<Self> {
        let mut all = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V4::is_available() {
                all.push(Kernel::Avx512);
            }
            if pulp::x86::V3::is_available() {
                all.push(Kernel::Avx2);
            }
        }
        all
    }
}

#[inline(always)]
fn scalar(a: &[i32], w: &[i16], pairs: usize, sums: &mut [i32], width: usize) {
    let panel_len = pairs * PANEL * 2;
    for (row, out) in a.chunks_exact(pairs).zip(sums.chunks_exact_mut(width)) {
        for (panel, out) in w.chunks_exact(panel_len).zip(out.chunks_exact_mut(PANEL)) {
            for (&word, step) in row.iter().zip(panel.chunks_exact(PANEL * 2)) {
                let (lo, hi) = (i32::from(word as i16), word >> 16);
                for (s, pair) in out.iter_mut().zip(step.chunks_exact(2)) {
                    *s += lo * i32::from(pair[0]) + hi * i32::from(pair[1]);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{__m256i, __m512i};

    use pulp::bytemuck::cast;
    use pulp::x86::{V3, V4};

    use super::{PANEL, ROWS};

    /// 8 rows × 32 outputs per step: 16 accumulators, 2 panel vectors, 1 broadcast.
    #[inline(always)]
    pub(super) fn avx512(simd: V4, a: &[i32], w: &[i16], pairs: usize, sums: &mut [i32], width: usize) {
        let (f, bw) = (simd.avx512f, simd.avx512bw);
        let panel_len = pairs * PANEL * 2;
        for (p, panel) in w.chunks_exact(panel_len).enumerate() {
            let steps = pulp::as_arrays::<{ PANEL * 2 }, i16>(panel).0;
            for (rows, out) in a.chunks_exact(ROWS * pairs).zip(sums.chunks_exact_mut(ROWS * width)) {
                let mut acc = [[f._mm512_setzero_si512(); 2]; ROWS];
                for (k, step) in steps.iter().enumerate() {
                    let halves: [[i16; PANEL]; 2] = cast(*step);
                    let (w0, w1): (__m512i, __m512i) = (cast(halves[0]), cast(halves[1]));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let b = f._mm512_set1_epi32(rows[r * pairs + k]);
                        acc[0] = f._mm512_add_epi32(acc[0], bw._mm512_madd_epi16(b, w0));
                        acc[1] = f._mm512_add_epi32(acc[1], bw._mm512_madd_epi16(b, w1));
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    let dst = &mut out[r * width + p * PANEL..r * width + p * PANEL + PANEL];
                    let v: [[i32; 16]; 2] = [cast(acc[0]), cast(acc[1])];
                    dst[..16].copy_from_slice(&v[0]);
                    dst[16..].copy_from_slice(&v[1]);
                }
            }
        }
    }

    /// 2 rows × 32 outputs per step: 8 accumulators, 4 panel vectors, 1 broadcast.
    #[inline(always)]
    pub(super) fn avx2(simd: V3, a: &[i32], w: &[i16], pairs: usize, sums: &mut [i32], width: usize) {
        const R: usize = 2;
        let avx2 = simd.avx2;
        let panel_len = pairs * PANEL * 2;
        for (p, panel) in w.chunks_exact(panel_len).enumerate() {
            let steps = pulp::as_arrays::<{ PANEL * 2 }, i16>(panel).0;
            for (rows, out) in a.chunks_exact(R * pairs).zip(sums.chunks_exact_mut(R * width)) {
                let zero: __m256i = cast([0i32; 8]);
                let mut acc = [[zero; 4]; R];
                for (k, step) in steps.iter().enumerate() {
                    let quarters: [[i16; 16]; 4] = cast(*step);
                    let wv: [__m256i; 4] = quarters.map(cast);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let b = simd.avx._mm256_set1_epi32(rows[r * pairs + k]);
                        for (acc, &y) in acc.iter_mut().zip(&wv) {
                            *acc = avx2._mm256_add_epi32(*acc, avx2._mm256_madd_epi16(b, y));
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    let v: [[i32; 8]; 4] = acc.map(cast);
                    let dst = &mut out[r * width + p * PANEL..r * width + p * PANEL + PANEL];
                    for (d, v) in dst.chunks_exact_mut(8).zip(&v) {
                        d.copy_from_slice(v);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic matrix with varied magnitudes (and a row of zeros).
    fn matrix(rows: usize, cols: usize, seed: f32) -> Vec<f32> {
        (0..rows * cols).map(|i| if i / cols == 2 { 0.0 } else { ((i as f32 * 0.618 + seed).sin() * (1.0 + (i % 7) as f32)).powi(3) }).collect()
    }

    #[test]
    fn every_kernel_gives_the_same_bits() {
        // Odd sizes: rows and columns that are not multiples of the tile or the block.
        for (m, n, k) in [(1, 1, 1), (5, 7, 33), (13, 10, 384), (4, 4, 64), (9, 1536 / 8, 95)] {
            let w = Int8Matrix::quantize(&matrix(n, k, 0.3), k, (0..n).map(|j| j as f32 * 0.01).collect());
            let x = matrix(m, k, 1.7);
            let want = w.apply_with(&x, Kernel::Scalar);
            assert_eq!(want.len(), m * n);
            for kernel in Kernel::available() {
                assert_eq!(w.apply_with(&x, kernel), want, "{kernel:?} at {m}×{k}·{k}×{n}");
            }
        }
    }

    #[test]
    fn products_match_f32_within_the_quantization_error() {
        let (m, n, k) = (6, 9, 100);
        let wf = matrix(n, k, 0.9);
        let bias: Vec<f32> = (0..n).map(|j| 0.5 - j as f32 * 0.1).collect();
        let w = Int8Matrix::quantize(&wf, k, bias.clone());
        let x = matrix(m, k, 2.2);
        let got = w.apply(&x);
        for i in 0..m {
            let xr = &x[i * k..(i + 1) * k];
            let sx = xr.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            for j in 0..n {
                let wr = &wf[j * k..(j + 1) * k];
                let sw = wr.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
                let exact: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>() + bias[j];
                // Each factor is off by at most half its step: |Δ(xw)| ≤ |x|·sw/2 + |w|·sx/2 + sx·sw/4.
                let bound: f32 = xr.iter().zip(wr).map(|(a, b)| a.abs() * sw / 2.0 + b.abs() * sx / 2.0 + sx * sw / 4.0).sum::<f32>() + 1e-4;
                let g = got[i * n + j];
                assert!((g - exact).abs() <= bound, "[{i},{j}]: {g} vs {exact} (bound {bound})");
                if j == 2 {
                    assert_eq!(g, bias[j], "a row of zeros gives its bias");
                }
            }
        }
    }

    #[test]
    fn stacking_gives_each_part_its_own_outputs() {
        let k = 40;
        let parts: Vec<Int8Matrix> = (0..3).map(|p| Int8Matrix::quantize(&matrix(5, k, p as f32), k, vec![p as f32; 5])).collect();
        let stacked = Int8Matrix::stack(&parts);
        assert_eq!((stacked.outputs(), stacked.inputs()), (15, k));
        let x = matrix(3, k, 4.0);
        let all = stacked.apply(&x);
        for (p, part) in parts.iter().enumerate() {
            let own = part.apply(&x);
            for i in 0..3 {
                assert_eq!(&all[i * 15 + p * 5..i * 15 + p * 5 + 5], &own[i * 5..i * 5 + 5], "part {p}, row {i}");
            }
        }
    }

    #[test]
    fn no_rows_give_no_outputs() {
        let w = Int8Matrix::quantize(&matrix(3, 8, 0.0), 8, Vec::new());
        assert!(w.apply(&[]).is_empty());
    }
}
