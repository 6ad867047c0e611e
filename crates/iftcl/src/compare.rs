//! Comparing numbers against references: the measures the tests, the benchmarks and the
//! device self-check share.
//!
//! NaN never passes a comparison here. `f64::max` and `f32::max` return the non-NaN argument,
//! so a fold with them scores an all-NaN result 0, a perfect match; every measure in this
//! module instead fails on the first NaN or infinity, naming its index and which side held it.

use std::fmt;

/// Which side of a comparison held a non-finite value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The values under test.
    Value,
    /// The reference.
    Reference,
}

/// A NaN or an infinity where a comparison needs finite numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonFinite {
    /// Position of the first non-finite entry.
    pub index: usize,
    /// The entry (NaN, inf or -inf).
    pub value: f64,
    /// Which side held it.
    pub side: Side,
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Value => "value",
            Side::Reference => "reference",
        };
        write!(f, "entry {} of the {side} is {} (not finite)", self.index, self.value)
    }
}

impl std::error::Error for NonFinite {}

/// The first non-finite entry of `values`, as an error on `side`.
pub fn check_finite(values: &[f32], side: Side) -> Result<(), NonFinite> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(NonFinite { index, value: f64::from(values[index]), side }),
        None => Ok(()),
    }
}

fn check_pair(x: &[f32], reference: &[f32]) -> Result<(), NonFinite> {
    assert_eq!(x.len(), reference.len(), "compared tensors of different sizes");
    check_finite(x, Side::Value)?;
    check_finite(reference, Side::Reference)
}

/// max |x − r| over the entries; an error on the first NaN or infinity on either side.
pub fn max_abs_diff(x: &[f32], reference: &[f32]) -> Result<f64, NonFinite> {
    check_pair(x, reference)?;
    Ok(x.iter().zip(reference).map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs()).fold(0.0, f64::max))
}

/// Relative L2 error ‖x − r‖ / ‖r‖ (‖x − r‖ where ‖r‖ = 0), in f64; an error on the first NaN
/// or infinity on either side. Unlike 1 − cosine, which is quadratic in the error and lets an
/// element-wise error of 0.1 % pass a bound of 1e-6, it is linear in the error and sees a
/// change of scale.
pub fn rel_l2_err(x: &[f32], reference: &[f32]) -> Result<f64, NonFinite> {
    check_pair(x, reference)?;
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (a, b) in x.iter().zip(reference) {
        let (a, b) = (f64::from(*a), f64::from(*b));
        diff += (a - b) * (a - b);
        norm += b * b;
    }
    Ok(if norm == 0.0 { diff.sqrt() } else { (diff / norm).sqrt() })
}

/// Relative error of a loss value against a reference: |x − r| / max(|r|, 1). A loss is a
/// difference of log-sum-exps of logits as large as 1/τ (up to 100), so f32 leaves it an
/// absolute error of ~1e-6 whatever its size: below 1 the absolute error is the measure.
pub fn rel_err_scalar(x: f64, reference: f64) -> Result<f64, NonFinite> {
    if !x.is_finite() {
        return Err(NonFinite { index: 0, value: x, side: Side::Value });
    }
    if !reference.is_finite() {
        return Err(NonFinite { index: 0, value: reference, side: Side::Reference });
    }
    Ok((x - reference).abs() / reference.abs().max(1.0))
}

/// Relative error of a tensor against a reference, norm-wise: max|x − r| / max(max|r|, floor)
/// (an entry-wise ratio is meaningless where a gradient entry is ~0). `floor` is the size below
/// which only absolute error means something: a loss gradient is a difference of terms of size
/// ~1/(Nτ), so a saturated softmax leaves f32 cancellation noise of ~1e-7/(Nτ) in both paths.
pub fn rel_err_tensor(x: &[f32], reference: &[f32], floor: f64) -> Result<f64, NonFinite> {
    let diff = max_abs_diff(x, reference)?;
    let scale = reference.iter().fold(floor, |m, v| m.max(f64::from(v.abs())));
    Ok(if scale == 0.0 { diff } else { diff / scale })
}

/// The gradient floor for [`rel_err_tensor`]: 1% of the loss gradients' scale 1/(Nτ).
pub fn grad_floor(n: usize, tau: f64) -> f64 {
    0.01 / (n as f64 * tau)
}

/// The largest of several errors, NaN when any is NaN (for reports, where a failed comparison
/// must not vanish into a maximum).
pub fn worst(errors: impl IntoIterator<Item = f64>) -> f64 {
    errors.into_iter().fold(0.0, |m, e| if m.is_nan() || e.is_nan() { f64::NAN } else { m.max(e) })
}

/// Panics unless every entry of `x` and `reference` is finite and max |x − r| ≤ `tol`; the
/// message names `what`, the index and the values. For tests.
#[track_caller]
pub fn assert_close(what: &str, x: &[f32], reference: &[f32], tol: f64) {
    let diff = max_abs_diff(x, reference).unwrap_or_else(|e| panic!("{what}: {e}"));
    if diff > tol {
        let (i, (a, b)) = x
            .iter()
            .zip(reference)
            .enumerate()
            .max_by(|p, q| (p.1.0 - p.1.1).abs().total_cmp(&(q.1.0 - q.1.1).abs()))
            .expect("a difference above tolerance has an entry");
        panic!("{what}: largest difference {diff:.3e} > {tol:.1e} at entry {i} ({a} vs {b})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_infinity_fail_with_their_index() {
        let good = [1.0f32, 2.0, 3.0];
        assert_eq!(max_abs_diff(&good, &good), Ok(0.0));
        let e = max_abs_diff(&[1.0, f32::NAN, 3.0], &good).unwrap_err();
        assert_eq!((e.index, e.side), (1, Side::Value));
        assert!(e.to_string().contains("entry 1 of the value is NaN"), "{e}");
        let e = rel_err_tensor(&good, &[1.0, 2.0, f32::INFINITY], 1e-3).unwrap_err();
        assert_eq!((e.index, e.side), (2, Side::Reference));
        // An all-NaN result is an error, not a zero error (what `fold(0.0, f64::max)` gave).
        assert!(rel_err_tensor(&[f32::NAN; 3], &good, 1e-3).is_err());
        assert!(rel_err_scalar(f64::NAN, 1.0).is_err());
        assert!(rel_err_scalar(1.0, f64::NEG_INFINITY).is_err());
        assert!(worst([0.1, f64::NAN, 0.2]).is_nan());
        assert_eq!(worst([0.1, 0.3, 0.2]), 0.3);
        assert!(check_finite(&[0.0, -f32::INFINITY], Side::Value).is_err());
    }

    #[test]
    fn measures_are_what_they_say() {
        assert_eq!(rel_err_scalar(2.5, 2.0), Ok(0.25));
        assert_eq!(rel_err_scalar(0.5, 0.25), Ok(0.25));
        // Norm-wise: the largest difference over the largest reference entry (or the floor).
        assert_eq!(rel_err_tensor(&[1.0, 2.5], &[1.0, 2.0], 0.0), Ok(0.25));
        assert_eq!(rel_err_tensor(&[0.5], &[0.0], 2.0), Ok(0.25));
        // ‖(3, 4) − (0, 0)‖ = 5 with a zero reference; a 1e-3 change of scale is 1e-3.
        assert_eq!(rel_l2_err(&[3.0, 4.0], &[0.0, 0.0]), Ok(5.0));
        let e = rel_l2_err(&[1.001, -2.002], &[1.0, -2.0]).unwrap();
        assert!((e - 1e-3).abs() < 1e-6, "{e}");
        assert!(rel_l2_err(&[f32::NAN, 0.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    #[should_panic(expected = "entry 0 of the value is NaN")]
    fn assert_close_rejects_nan() {
        assert_close("x", &[f32::NAN], &[0.0], 1.0);
    }

    #[test]
    #[should_panic(expected = "at entry 1")]
    fn assert_close_rejects_a_large_difference() {
        assert_close("x", &[0.0, 1.0], &[0.0, 0.0], 0.5);
    }
}
