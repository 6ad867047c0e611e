//! The AVX-512 VNNI products of [`super::int8_matmul`]: `vpdpbusd` multiplies 64 unsigned
//! bytes (the activations, shifted by +128) by 64 signed bytes (the weights) and adds each four
//! adjacent products into one of 16 i32 lanes, in one instruction: twice the products of
//! AVX-512BW's `vpmaddwd` per instruction, the add included, from operands half the size.
//!
//! The one `unsafe` of the crate: [`pulp`], whose safe wrappers the other kernels use, has the
//! feature's detection but not this instruction, so the kernel is a `#[target_feature]`
//! function (its body is safe code: Rust lets it call the intrinsics it enables) and the call
//! into it, from code compiled without the feature, is the unsafe step. [`products`] makes it
//! only after checking, at run time, that this CPU has every feature the kernel enables.
#![allow(unsafe_code)]

use core::arch::x86_64::{__m512i, _mm512_dpbusd_epi32, _mm512_set1_epi32, _mm512_setzero_si512};

use pulp::bytemuck::cast;

/// Outputs per panel (two vectors of 16 lanes) and inputs per lane: the packing of
/// `int8_matmul`, which checks that it agrees.
pub(super) const PANEL: usize = 32;
const GROUP: usize = 4;
/// Rows of `x` per step (8 rows × 2 vectors = 16 accumulators): a multiple of `int8_matmul`'s
/// row padding.
pub(super) const ROWS: usize = 8;

/// Whether this CPU runs [`products`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vnni")
}

/// `sums[r·width + p·32 + l] = Σ_k a[r][k] · w[p][k][l]` over the `words` words of each row
/// of `a` (four shifted activations each; rows a multiple of 8) and the panels of `w` (`words`
/// × 32 lanes × 4 bytes each; `width / 32` of them).
///
/// Panics where the CPU lacks AVX-512F, BW or VNNI (callers check [`available`]).
pub(super) fn products(a: &[i32], w: &[i8], words: usize, sums: &mut [i32], width: usize) {
    assert!(available(), "the VNNI kernel needs AVX-512F, AVX-512BW and AVX-512 VNNI");
    assert!(a.len() % (ROWS * words) == 0 && w.len() == width / PANEL * words * PANEL * GROUP && sums.len() == a.len() / words * width, "operand sizes");
    // SAFETY: `kernel` enables exactly avx512f, avx512bw and avx512vnni, which this CPU has
    // (checked above); its body is safe Rust, bounds-checked like any other.
    unsafe { kernel(a, w, words, sums, width) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn kernel(a: &[i32], w: &[i8], words: usize, sums: &mut [i32], width: usize) {
    let panel_len = words * PANEL * GROUP;
    for (p, panel) in w.chunks_exact(panel_len).enumerate() {
        let steps = pulp::as_arrays::<{ PANEL * GROUP }, i8>(panel).0;
        for (rows, out) in a.chunks_exact(ROWS * words).zip(sums.chunks_exact_mut(ROWS * width)) {
            let mut acc = [[_mm512_setzero_si512(); 2]; ROWS];
            for (k, step) in steps.iter().enumerate() {
                let halves: [[i8; 64]; 2] = cast(*step);
                let (w0, w1): (__m512i, __m512i) = (cast(halves[0]), cast(halves[1]));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_epi32(rows[r * words + k]);
                    acc[0] = _mm512_dpbusd_epi32(acc[0], b, w0);
                    acc[1] = _mm512_dpbusd_epi32(acc[1], b, w1);
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
