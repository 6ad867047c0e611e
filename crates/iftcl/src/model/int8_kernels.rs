//! The i16-pair kernels of the int8 products ([`super::int8_matmul`] packs the operands and
//! picks one; AVX-512 VNNI is `int8_vnni`): `sums[row][o] = Σ a[row][k]·w[o][k]`, each
//! word of `a` holding two i16 inputs and each panel of `w` the pairs of [`PANEL`] outputs side
//! by side. Exact in i32, so every kernel gives the scalar one's bits.

/// Outputs per panel of the packed `W`.
pub(crate) const PANEL: usize = 32;
/// Rows of `x` are padded to a multiple of this (the AVX-512 step's rows).
pub(crate) const ROWS: usize = 8;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(PANEL == super::int8_vnni::PANEL && ROWS % super::int8_vnni::ROWS == 0, "the VNNI kernel reads this packing");

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
