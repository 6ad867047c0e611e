//! The i16-pair kernels of the int8 products ([`Kernel`]: which this CPU runs; [`super::int8_matmul`] packs the operands and
//! picks one; AVX-512 VNNI is `int8_vnni`): `sums[row][o] = Σ a[row][k]·w[o][k]`, each
//! word of `a` holding two i16 inputs and each panel of `w` the pairs of [`PANEL`] outputs side
//! by side. Exact in i32, so every kernel gives the scalar one's bits.

/// Outputs per panel of the packed `W`.
pub(crate) const PANEL: usize = 32;
/// Rows of `x` are padded to a multiple of this (the AVX-512 step's rows).
pub(crate) const ROWS: usize = 8;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(PANEL == super::int8_vnni::PANEL && ROWS % super::int8_vnni::ROWS == 0, "the VNNI kernel reads this packing");

/// Which instructions compute the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// One value at a time (and the reference of the others).
    Scalar,
    /// AVX-512BW, 512-bit vectors of i16.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2, 256-bit vectors of i16.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 VNNI, 512-bit vectors of bytes.
    #[cfg(target_arch = "x86_64")]
    Vnni,
    /// wasm SIMD (`i32x4.dot_i16x8`), 128-bit vectors of i16: the browser's.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
}

impl Kernel {
    /// The fastest this CPU runs.
    pub(crate) fn best() -> Self {
        Self::available().pop().unwrap_or(Kernel::Scalar)
    }

    /// Every kernel this CPU runs, slowest first.
    pub(crate) fn available() -> Vec<Self> {
        #[cfg_attr(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))), allow(unused_mut))]
        let mut all = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V3::is_available() {
                all.push(Kernel::Avx2);
            }
            if pulp::x86::V4::is_available() {
                all.push(Kernel::Avx512);
                if super::int8_vnni::available() {
                    all.push(Kernel::Vnni);
                }
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        all.push(Kernel::Simd128);
        all
    }

    /// Inputs per word of the packed operands.
    pub(crate) fn group(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => 4,
            _ => 2,
        }
    }
}

/// One value at a time: the reference every other kernel must equal.
#[inline(always)]
pub(crate) fn scalar(a: &[i32], w: &[i16], pairs: usize, sums: &mut [i32], width: usize) {
    let panel_len = pairs * PANEL * 2;
    for (row, out) in a.chunks_exact(pairs).zip(sums.chunks_exact_mut(width)) {
        for (panel, out) in w.chunks_exact(panel_len).zip(out.chunks_exact_mut(PANEL)) {
            let mut acc = [0i32; PANEL];
            for (&word, step) in row.iter().zip(panel.chunks_exact(PANEL * 2)) {
                let (lo, hi) = (i32::from(word as i16), word >> 16);
                for (s, pair) in acc.iter_mut().zip(step.chunks_exact(2)) {
                    *s += lo * i32::from(pair[0]) + hi * i32::from(pair[1]);
                }
            }
            out.copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use core::arch::x86_64::{__m256i, __m512i};

    use pulp::bytemuck::cast;
    use pulp::x86::{V3, V4};

    use super::{PANEL, ROWS};

    /// 8 rows × 32 outputs per step: 16 accumulators, 2 panel vectors, 1 broadcast.
    #[inline(always)]
    pub(crate) fn avx512(simd: V4, a: &[i32], w: &[i16], pairs: usize, sums: &mut [i32], width: usize) {
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
    pub(crate) fn avx2(simd: V3, a: &[i32], w: &[i16], pairs: usize, sums: &mut [i32], width: usize) {
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

/// The tile kernel of wasm SIMD (`i32x4.dot_i16x8`), written over the three vector operations
/// it uses (`PairLanes`) so that the same tiling also runs natively, on a portable
/// stand-in, in the tests. The module is built with `simd128` on (scripts/build-wasm.sh), which
/// every current browser runs, so the wasm kernel needs no run-time check.
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
pub(crate) mod tile {
    use super::PANEL;

    /// Vectors of one step of a panel: the 32 outputs' pairs, 4 outputs per vector.
    const STEP: usize = PANEL / 4;
    /// Rows per tile.
    const R: usize = 4;

    /// Four i32 lanes, each the sum of two i16 products.
    pub(crate) trait PairLanes: Copy {
        fn zero() -> Self;
        /// One word of `a` (two i16 inputs) in every lane.
        fn splat(word: i32) -> Self;
        /// Four outputs' pairs.
        fn pairs(v: [i16; 8]) -> Self;
        /// `self` plus, per lane, the dot product of `b`'s pair and `y`'s.
        fn add_dot(self, b: Self, y: Self) -> Self;
        fn lanes(self) -> [i32; 4];
    }

    /// 4 rows × 8 outputs per tile: 8 accumulators, 2 panel vectors and a splat (V8 gives a
    /// function 15 vector registers on x86-64; more live values spill to the stack). Written
    /// out by hand, as named values: the browser build's `opt-level = "s"` leaves a loop over
    /// an array of accumulators rolled, with them in memory (about a third of the speed at
    /// opt-level 3, under Node). Iterators: no bounds checks in the loop.
    /// Rows come in multiples of 4 ([`super::ROWS`] is 8).
    #[inline(always)]
    pub(crate) fn products<V: PairLanes>(a: &[i32], w: &[[i16; 8]], pairs: usize, sums: &mut [i32], width: usize) {
        for (p, panel) in w.chunks_exact(pairs * STEP).enumerate() {
            let steps = pulp::as_arrays::<STEP, [i16; 8]>(panel).0;
            for (rows, out) in a.chunks_exact(R * pairs).zip(sums.chunks_exact_mut(R * width)) {
                let (x0, rest) = rows.split_at(pairs);
                let (x1, rest) = rest.split_at(pairs);
                let (x2, x3) = rest.split_at(pairs);
                for quarter in 0..STEP / 2 {
                    let z = V::zero();
                    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21, mut c30, mut c31) = (z, z, z, z, z, z, z, z);
                    for ((((step, &a0), &a1), &a2), &a3) in steps.iter().zip(x0).zip(x1).zip(x2).zip(x3) {
                        let (y0, y1) = (V::pairs(step[quarter * 2]), V::pairs(step[quarter * 2 + 1]));
                        let b = V::splat(a0);
                        c00 = c00.add_dot(b, y0);
                        c01 = c01.add_dot(b, y1);
                        let b = V::splat(a1);
                        c10 = c10.add_dot(b, y0);
                        c11 = c11.add_dot(b, y1);
                        let b = V::splat(a2);
                        c20 = c20.add_dot(b, y0);
                        c21 = c21.add_dot(b, y1);
                        let b = V::splat(a3);
                        c30 = c30.add_dot(b, y0);
                        c31 = c31.add_dot(b, y1);
                    }
                    for (r, (lo, hi)) in [(c00, c01), (c10, c11), (c20, c21), (c30, c31)].into_iter().enumerate() {
                        let start = r * width + p * PANEL + quarter * 8;
                        out[start..start + 4].copy_from_slice(&lo.lanes());
                        out[start + 4..start + 8].copy_from_slice(&hi.lanes());
                    }
                }
            }
        }
    }

    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    impl PairLanes for core::arch::wasm32::v128 {
        #[inline(always)]
        fn zero() -> Self {
            core::arch::wasm32::i32x4_splat(0)
        }
        #[inline(always)]
        fn splat(word: i32) -> Self {
            core::arch::wasm32::i32x4_splat(word)
        }
        #[inline(always)]
        fn pairs(v: [i16; 8]) -> Self {
            pulp::bytemuck::cast(v)
        }
        #[inline(always)]
        fn add_dot(self, b: Self, y: Self) -> Self {
            core::arch::wasm32::i32x4_add(self, core::arch::wasm32::i32x4_dot_i16x8(b, y))
        }
        #[inline(always)]
        fn lanes(self) -> [i32; 4] {
            pulp::bytemuck::cast(self)
        }
    }

    /// The same lanes in plain integers (each lane's word: low i16, high i16), computed as the
    /// wasm instruction does: the tests run the tiling on it.
    #[cfg(test)]
    #[derive(Clone, Copy)]
    pub(crate) struct Portable([i32; 4]);

    #[cfg(test)]
    impl PairLanes for Portable {
        fn zero() -> Self {
            Portable([0; 4])
        }
        fn splat(word: i32) -> Self {
            Portable([word; 4])
        }
        fn pairs(v: [i16; 8]) -> Self {
            Portable(core::array::from_fn(|i| (i32::from(v[2 * i]) & 0xffff) | (i32::from(v[2 * i + 1]) << 16)))
        }
        fn add_dot(self, b: Self, y: Self) -> Self {
            let half = |w: i32| (i32::from(w as i16), w >> 16);
            Portable(core::array::from_fn(|i| {
                let ((b0, b1), (y0, y1)) = (half(b.0[i]), half(y.0[i]));
                self.0[i] + b0 * y0 + b1 * y1
            }))
        }
        fn lanes(self) -> [i32; 4] {
            self.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasm_tiling_gives_the_scalar_sums() {
        // Rows in multiples of ROWS (what the packing pads to), panels of 32 outputs, odd pair
        // counts, and the extremes of the i16 products.
        for (rows, pairs, panels) in [(8, 1, 1), (8, 3, 2), (16, 192, 3), (24, 17, 1)] {
            let word = |i: usize| ((i * 37 % 255) as i32 - 127) & 0xffff | (((i * 91 % 255) as i32 - 127) << 16);
            let a: Vec<i32> = (0..rows * pairs).map(word).collect();
            let w: Vec<i16> = (0..panels * pairs * PANEL * 2).map(|i| if i % 11 == 0 { -127 } else { (i * 53 % 255) as i16 - 127 }).collect();
            let width = panels * PANEL;
            let mut want = vec![0; rows * width];
            scalar(&a, &w, pairs, &mut want, width);
            let mut got = vec![i32::MIN; rows * width];
            tile::products::<tile::Portable>(&a, pulp::as_arrays::<8, i16>(&w).0, pairs, &mut got, width);
            assert_eq!(got, want, "{rows} rows, {pairs} pairs, {panels} panels");
        }
    }
}
