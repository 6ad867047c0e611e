//! Throughput benchmarks behind `iftcl bench`: medians over repeated timed runs after a
//! warm-up.
//!
//! - [`embed`]: sentences per second of inference.
//! - [`load`]: a model folder's load, phase by phase, to its first embedding.
//! - [`train`]: sentences per second of training steps.
//! - [`loss`]: the fused loss kernels against the plain burn-ops loss.
//! - `kernels` (not in the browser build): kernel launches and host reads per step, counted.

pub mod embed;
#[cfg(not(target_family = "wasm"))]
pub mod kernels;
pub mod load;
#[cfg(feature = "gpu")]
pub mod loss;
pub mod train;

pub use embed::{EmbedBench, bench_embed};
pub use load::{LoadBench, LoadPhases, bench_load};
#[cfg(feature = "gpu")]
pub use loss::{LossBench, LossBenchCase, bench_loss};
pub use train::bench_train;

/// Median of `v` (NaN for an empty slice).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
