//! int8 dense layers for CPU inference: `y = x·Wᵀ + b` with `W` quantized per row (per output
//! channel, the layout of [`super::int8`]) and each row of `x` quantized on the fly, its
//! products summed exactly in i32 and scaled back to f32.
//!
//! Kernels, the fastest the CPU runs chosen when the matrix is packed:
//! - AVX-512 VNNI (`model/int8_vnni.rs`): `vpdpbusd` multiplies 64 pairs of bytes and adds
//!   them, four at a time, into 16 i32 lanes, in one instruction. It multiplies unsigned bytes
//!   by signed ones, so the activations are shifted by +128 (to 1..=255) and each output's sum
//!   has `128·Σ W[o]` taken off again: exact.
//! - AVX-512BW and AVX2: both operands widened to i16, `vpmaddwd` multiplies pairs and adds
//!   each pair into an i32 lane (32 products per instruction on 512 bits, 16 on 256), then an
//!   add.
//! - wasm SIMD (`i32x4.dot_i16x8`, the browser's): both operands as i16 pairs, as for
//!   `vpmaddwd`, 4 outputs per vector (`int8_kernels::tile`).
//! - A scalar loop elsewhere.
//!
//! The sums are exact integers (at most 255·127·inputs, far inside i32), so every kernel gives
//! the same bits: a test pins each to the scalar one. Only the final scaling rounds.
//!
//! Layout: `W` is packed once, at load, in panels of 32 outputs; within a panel, for each group
//! of inputs (2 for the i16 kernels, 4 for VNNI), the 32 outputs' values side by side (two
//! 512-bit vectors). Each row of `x` is packed per call as i32 words holding one group, so that
//! one broadcast word times a panel's vector gives 16 outputs' group products at once: no
//! horizontal sums, and every accumulator is 16 outputs of one row. A step keeps 8 rows × 32
//! outputs in 16 registers (AVX-512), 2 × 32 (AVX2). Rows are padded with zeros to a multiple of
//! 8, inputs to a multiple of the group and outputs to a multiple of 32.
//!
//! Quality: per-row scales on both sides. all-MiniLM-L6-v2's figures are in docs/models.md
//! ("Precisions": `int8` compute).

use super::int8::{QuantizedRows, quantize_rows, row_scale};
#[cfg(target_arch = "x86_64")]
use super::int8_kernels::x86;
use super::int8_kernels::{Kernel, PANEL, ROWS, scalar};

/// A dense layer's weight matrix `[outputs, inputs]` in int8, packed for the products of one
/// kernel, with its per-row scales and its bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Matrix {
    outputs: usize,
    inputs: usize,
    /// Words per row of `x`: `inputs` in groups of the kernel's width, rounded up.
    words: usize,
    packed: Packed,
    /// Per output, what the activations' shift adds to its sum (VNNI: `128·Σ W[o]`; else 0).
    shift: Vec<i32>,
    scales: Vec<f32>,
    bias: Vec<f32>,
}

/// The packed `W` (panels of [`PANEL`] outputs, zeros past the end), for the kernel that reads it.
#[derive(Debug, Clone, PartialEq)]
enum Packed {
    /// Pairs of inputs as i16.
    Scalar(Vec<i16>),
    #[cfg(target_arch = "x86_64")]
    Avx512(Vec<i16>),
    #[cfg(target_arch = "x86_64")]
    Avx2(Vec<i16>),
    /// Groups of four inputs as i8.
    #[cfg(target_arch = "x86_64")]
    Vnni(Vec<i8>),
    /// Pairs of inputs as i16, in vectors of 4 outputs' pairs.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128(Vec<[i16; 8]>),
}

impl Int8Matrix {
    /// The matrix `q` (`[outputs, inputs]`, row-major, one scale per row) with `bias`
    /// (`outputs` values, or empty for none), packed for the fastest kernel this CPU runs.
    pub fn new(q: &QuantizedRows, inputs: usize, bias: Vec<f32>) -> Self {
        Self::for_kernel(q, inputs, bias, Kernel::best())
    }

    pub(crate) fn for_kernel(q: &QuantizedRows, inputs: usize, bias: Vec<f32>, kernel: Kernel) -> Self {
        let outputs = q.scales.len();
        assert_eq!(q.values.len(), outputs * inputs, "a value per output and input");
        let group = kernel.group();
        let words = inputs.div_ceil(group);
        let packed = match kernel {
            Kernel::Scalar => Packed::Scalar(pack(q, inputs, group)),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => Packed::Avx512(pack(q, inputs, group)),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => Packed::Avx2(pack(q, inputs, group)),
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => Packed::Vnni(pack(q, inputs, group)),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernel::Simd128 => Packed::Simd128(pulp::as_arrays::<8, i16>(&pack::<i16>(q, inputs, group)).0.to_vec()),
        };
        let shift = match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => q.values.chunks_exact(inputs.max(1)).map(|row| 128 * row.iter().map(|&v| i32::from(v)).sum::<i32>()).collect(),
            _ => vec![0; outputs],
        };
        let bias = if bias.is_empty() { vec![0.0; outputs] } else { bias };
        assert_eq!(bias.len(), outputs, "one bias per output");
        Int8Matrix { outputs, inputs, words, packed, shift, scales: q.scales.clone(), bias }
    }

    /// The f32 matrix `w` (`[outputs, inputs]`, row-major) quantized per row, with `bias`.
    pub fn quantize(w: &[f32], inputs: usize, bias: Vec<f32>) -> Self {
        Self::new(&quantize_rows(w, inputs), inputs, bias)
    }

    /// Matrices of the same width, each with its bias, as one whose outputs are theirs in order
    /// (the query, key and value projections as one product).
    pub fn stacked(parts: &[(QuantizedRows, Vec<f32>)], inputs: usize) -> Self {
        let q = QuantizedRows { values: parts.iter().flat_map(|(q, _)| q.values.iter().copied()).collect(), scales: parts.iter().flat_map(|(q, _)| q.scales.iter().copied()).collect() };
        let outputs = q.scales.len();
        let bias: Vec<f32> = parts.iter().flat_map(|(q, b)| if b.is_empty() { vec![0.0; q.scales.len()] } else { b.clone() }).collect();
        assert_eq!(bias.len(), outputs, "one bias per output of each part");
        Self::new(&q, inputs, bias)
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
        if self.inputs == 0 || self.outputs == 0 {
            return Vec::new();
        }
        let words = self.words;
        // Taken out of the thread's slot (and put back below) rather than borrowed inside the
        // vectorised closures: a call through `LocalKey::with` there would not be inlined, and
        // the SIMD wrappers would lose their CPU features.
        let mut scratch = SCRATCH.take();
        let s = &mut scratch;
        // The quantization and the scaling run under the same CPU features as the products
        // (vectorised rounding and conversions; without them `round_ties_even` is a libm call).
        let out = match &self.packed {
            Packed::Scalar(w) => self.apply_using(x, 2, s, |a, sums, width| scalar(a, w, words, sums, width)),
            #[cfg(target_arch = "x86_64")]
            Packed::Avx512(w) => {
                let simd = pulp::x86::V4::try_new().expect("packed for AVX-512 only where the CPU runs it");
                simd.vectorize(
                    #[inline(always)]
                    || self.apply_using(x, 2, s, |a, sums, width| x86::avx512(simd, a, w, words, sums, width)),
                )
            }
            #[cfg(target_arch = "x86_64")]
            Packed::Avx2(w) => {
                let simd = pulp::x86::V3::try_new().expect("packed for AVX2 only where the CPU runs it");
                simd.vectorize(
                    #[inline(always)]
                    || self.apply_using(x, 2, s, |a, sums, width| x86::avx2(simd, a, w, words, sums, width)),
                )
            }
            #[cfg(target_arch = "x86_64")]
            Packed::Vnni(w) => {
                let simd = pulp::x86::V4::try_new().expect("packed for AVX-512 VNNI only where the CPU runs it");
                simd.vectorize(
                    #[inline(always)]
                    || self.apply_using(x, 4, s, |a, sums, width| super::int8_vnni::products(a, w, words, sums, width)),
                )
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Packed::Simd128(w) => self.apply_using(x, 2, s, |a, sums, width| super::int8_kernels::tile::products::<core::arch::wasm32::v128>(a, w, words, sums, width)),
        };
        SCRATCH.set(scratch);
        out
    }

    /// Quantizes `x` in words of `group` inputs, runs `products` (`sums[r·width + o]` for
    /// `x`'s rows of words and the panels of `W`; every kernel writes each sum, so the buffer
    /// needs no zeroing) and scales the sums back. `scratch` holds the packed rows and the
    /// sums: buffers of the thread, kept from call to call (no page faults or clearing per
    /// product).
    #[inline(always)]
    fn apply_using(&self, x: &[f32], group: usize, scratch: &mut Scratch, products: impl Fn(&[i32], &mut [i32], usize)) -> Vec<f32> {
        let m = x.len() / self.inputs;
        let width = self.outputs.div_ceil(PANEL) * PANEL;
        let rows = m.div_ceil(ROWS) * ROWS;
        let (words, sums) = scratch;
        let act_scales = quantize_acts(x, self.inputs, self.words, group, words);
        let sums = grown(sums, rows * width);
        products(&words[..rows * self.words], sums, width);
        let mut out = vec![0f32; m * self.outputs];
        for ((row, sums), &sa) in out.chunks_exact_mut(self.outputs).zip(sums.chunks_exact(width)).zip(&act_scales) {
            for ((((y, &s), &shift), &sw), &b) in row.iter_mut().zip(sums).zip(&self.shift).zip(&self.scales).zip(&self.bias) {
                *y = (s - shift) as f32 * (sa * sw) + b;
            }
        }
        out
    }
}

/// The packed rows of `x` and the sums of a product.
type Scratch = (Vec<i32>, Vec<i32>);

thread_local! {
    /// This thread's [`Scratch`], kept between products.
    static SCRATCH: std::cell::Cell<Scratch> = const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// The first `len` values of `buf`, grown with zeros where it is shorter (what it held before
/// is left: callers overwrite it).
#[inline(always)]
fn grown(buf: &mut Vec<i32>, len: usize) -> &mut [i32] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// `q`'s rows packed in panels of [`PANEL`] outputs, `group` inputs side by side per output.
fn pack<T: Copy + Default + From<i8>>(q: &QuantizedRows, inputs: usize, group: usize) -> Vec<T> {
    let outputs = q.scales.len();
    let words = inputs.div_ceil(group);
    let mut packed = vec![T::default(); outputs.div_ceil(PANEL) * words * PANEL * group];
    for o in 0..outputs {
        let (panel, lane) = (o / PANEL, o % PANEL);
        for i in 0..inputs {
            packed[(panel * words + i / group) * PANEL * group + lane * group + i % group] = T::from(q.values[o * inputs + i]);
        }
    }
    packed
}

/// Each row of `x` (`cols` values) quantized to its largest magnitude and packed into `buf` as
/// `words` i32 words of `group` inputs (the first in the low bits): two i16 (`group` 2), or
/// four bytes shifted by +128 to be unsigned (`group` 4); rows padded to a multiple of
/// [`ROWS`] (the padding rows' products are never read). Returns each row's scale.
#[inline(always)]
fn quantize_acts(x: &[f32], cols: usize, words: usize, group: usize, buf: &mut Vec<i32>) -> Vec<f32> {
    let m = x.len() / cols;
    let packed = grown(buf, m.div_ceil(ROWS) * ROWS * words);
    let mut scales = Vec::with_capacity(m);
    let mut q = vec![0i32; words * group];
    for (row, dst) in x.chunks_exact(cols).zip(packed.chunks_exact_mut(words)) {
        let s = row_scale(row.iter().fold(0f32, |m, v| m.max(v.abs())));
        let inv = 1.0 / s;
        for (d, &v) in q.iter_mut().zip(row) {
            *d = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i32;
        }
        if group == 4 {
            for (w, g) in dst.iter_mut().zip(q.chunks_exact(4)) {
                *w = i32::from_le_bytes([g[0], g[1], g[2], g[3]].map(|v| (v + 128) as u8));
            }
        } else {
            for (w, g) in dst.iter_mut().zip(q.chunks_exact(2)) {
                *w = (g[0] & 0xffff) | (g[1] << 16);
            }
        }
        scales.push(s);
    }
    scales
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
        // Odd sizes: rows and columns that are not multiples of the tile, the panel or a group.
        for (m, n, k) in [(1, 1, 1), (5, 7, 33), (13, 10, 384), (4, 4, 64), (9, 1536 / 8, 95), (17, 70, 6)] {
            let q = quantize_rows(&matrix(n, k, 0.3), k);
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
            let x = matrix(m, k, 1.7);
            let want = Int8Matrix::for_kernel(&q, k, bias.clone(), Kernel::Scalar).apply(&x);
            assert_eq!(want.len(), m * n);
            for kernel in Kernel::available() {
                let got = Int8Matrix::for_kernel(&q, k, bias.clone(), kernel).apply(&x);
                assert_eq!(got, want, "{kernel:?} at {m}×{k}·{k}×{n}");
            }
        }
    }

    #[test]
    fn the_extremes_of_both_operands_are_summed_exactly() {
        // ±127 everywhere (the largest products, the VNNI shift's largest correction), over
        // the widest layer of the models (1536 inputs) and an odd width.
        for k in [1536, 1531] {
            let w: Vec<f32> = (0..40 * k).map(|i| if (i / 3) % 2 == 0 { 1.0 } else { -1.0 }).collect();
            let x: Vec<f32> = (0..3 * k).map(|i| if i % 5 < 2 { -2.0 } else { 2.0 }).collect();
            let q = quantize_rows(&w, k);
            let want = Int8Matrix::for_kernel(&q, k, Vec::new(), Kernel::Scalar).apply(&x);
            for kernel in Kernel::available() {
                assert_eq!(Int8Matrix::for_kernel(&q, k, Vec::new(), kernel).apply(&x), want, "{kernel:?}, {k} inputs");
            }
            // And the scalar sums are the exact products of ±1 and ±2 (the scales undo 127).
            for i in 0..3 {
                for j in 0..40 {
                    let exact: f32 = (0..k).map(|c| x[i * k + c] * w[j * k + c]).sum();
                    assert!((want[i * 40 + j] - exact).abs() <= exact.abs() * 1e-6 + 1e-3, "[{i},{j}]: {} vs {exact}", want[i * 40 + j]);
                }
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
        let parts: Vec<(QuantizedRows, Vec<f32>)> = (0..3).map(|p| (quantize_rows(&matrix(5, k, p as f32), k), if p == 1 { Vec::new() } else { vec![p as f32; 5] })).collect();
        let stacked = Int8Matrix::stacked(&parts, k);
        assert_eq!((stacked.outputs(), stacked.inputs()), (15, k));
        let x = matrix(3, k, 4.0);
        let all = stacked.apply(&x);
        for (p, (q, bias)) in parts.iter().enumerate() {
            let own = Int8Matrix::new(q, k, bias.clone()).apply(&x);
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
