//! Counter-based hashes: every random stream of the project that must be the same on every
//! platform and repeat exactly on resume derives from them (dropout masks, the corpus order,
//! a step's augmentation seed, the inputs of benchmarks and of the device self-check).

/// SplitMix64's finaliser: a bijection on `u64` with full avalanche.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Mixes a seed with a counter into a new seed: `(seed, step)` gives each training step its
/// own independent stream.
#[inline]
pub fn mix(seed: u64, counter: u64) -> u64 {
    splitmix64(seed ^ counter.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// MurmurHash3's 32-bit finaliser: a bijection on `u32` with full avalanche (cheap enough for
/// one call per tensor element).
#[inline]
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// `n` deterministic pseudo-random numbers in [-1, 1] from a SplitMix64 stream started at
/// `seed`: inputs for benchmarks, tests and the device self-check.
pub fn splitmix_uniform(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            (splitmix64(state) >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// Deterministic pseudo-random rows of unit length, like normalised embeddings: inputs for
/// benchmarks and tests.
pub fn random_unit_rows(seed: u64, rows: usize, d: usize) -> Vec<f32> {
    let mut v = splitmix_uniform(seed, rows * d);
    for row in v.chunks_mut(d.max(1)) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_fixed_and_in_range() {
        // Values pinned so that a change to any stream (which would change dropout masks,
        // the data order and resume) shows up here.
        assert_eq!(mix(0, 0), 0);
        assert_eq!(mix(13, 1), splitmix64(13 ^ 0x9e37_79b9_7f4a_7c15));
        assert_ne!(mix(13, 1), mix(13, 2));
        let u = splitmix_uniform(7, 1000);
        assert!(u.iter().all(|x| (-1.0..=1.0).contains(x)));
        let mean = u.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.1, "mean {mean}");
        let rows = random_unit_rows(3, 4, 8);
        for r in rows.chunks(8) {
            assert!((r.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}
