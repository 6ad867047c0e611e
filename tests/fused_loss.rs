//! The fused WGSL loss against the plain burn-ops loss (the reference), on wgpu: lavapipe in
//! CI, any adapter elsewhere. The reference runs on the CPU backend from the same inputs.
//!
//! Error measure (`iftcl::compare::rel_err_*`): for the loss terms |fused − ref| / max(|ref|, 1)
//! (a loss is a difference of log-sum-exps of logits up to 1/τ, so below 1 the absolute error
//! is what f32 can promise); for a gradient tensor max|fused − ref| / max(max|ref|, 0.01/(Nτ))
//! (an entry-wise ratio is meaningless where a gradient entry is ~0, and a saturated softmax
//! leaves both paths f32 cancellation noise of ~1e-7/(Nτ)). Both must stay within 1e-4.
//!
//! The twins are built at a set cosine to their anchors, chosen per d and τ so the positive
//! logit competes with the largest negatives (an O(1) loss, neither saturated nor flat).

use iftcl::burn;
use burn::tensor::{Device, Tensor, TensorData};
use iftcl::compare::{NonFinite, grad_floor, rel_err_scalar, rel_err_tensor};
use iftcl::hash::random_unit_rows;
use iftcl::device::{DeviceSpec, select};
use iftcl::train::fused::MaskedQueue;
use iftcl::train::{LossKind, Objective, TwinsForm};

const TOL: f64 = 1e-4;

struct Case {
    n: usize,
    k: usize,
    d: usize,
    tau: f64,
    form: TwinsForm,
    fraternal: bool,
    /// Every this-many-th queue slot is stale (0: none).
    stale_every: usize,
    /// All anchors, twins and queue entries the same vector.
    all_equal: bool,
    seed: u64,
}

/// Rows at cosine `c` to the rows of `a`: c a_i + sqrt(1 − c²) u_i, u_i a random unit vector
/// orthogonal to a_i.
fn near(a: &[f32], d: usize, c: f64, seed: u64) -> Vec<f32> {
    let noise = random_unit_rows(seed, a.len() / d, d);
    let mut out = Vec::with_capacity(a.len());
    for (ra, rn) in a.chunks(d).zip(noise.chunks(d)) {
        let dot: f64 = ra.iter().zip(rn).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        let u: Vec<f64> = ra.iter().zip(rn).map(|(x, y)| f64::from(*y) - dot * f64::from(*x)).collect();
        let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        let s = (1.0 - c * c).max(0.0).sqrt();
        out.extend(ra.iter().zip(&u).map(|(x, y)| (c * f64::from(*x) + s * y / norm) as f32));
    }
    out
}

struct Data {
    a: Vec<f32>,
    p: Vec<f32>,
    f: Vec<f32>,
    q: Vec<f32>,
    mask: Vec<f32>,
    ratio: Vec<f32>,
}

impl Case {
    fn data(&self) -> Data {
        let (n, d, k, seed) = (self.n, self.d, self.k, self.seed * 10);
        let ratio: Vec<f32> = (0..n).map(|i| ((i * 7 + seed as usize) % 9) as f32 * 0.05).collect();
        if self.all_equal {
            let one = random_unit_rows(seed, 1, d);
            let rep = |rows: usize| one.iter().copied().cycle().take(rows * d).collect::<Vec<_>>();
            return Data { a: rep(n), p: rep(n), f: rep(n), q: rep(k), mask: vec![1.0; k], ratio: vec![0.2; n] };
        }
        let a = random_unit_rows(seed, n, d);
        // Random negatives have cosines of spread 1/sqrt(d); put the identical twin a few
        // spreads above them (plus a couple of τ) and the fraternal twin a little lower.
        let c_p = (2.5 / (d as f64).sqrt() + 2.0 * self.tau).min(0.9);
        let (p, f) = (near(&a, d, c_p, seed + 1), near(&a, d, c_p - 0.1, seed + 2));
        let q = random_unit_rows(seed + 3, k, d);
        let mask = (0..k).map(|i| if self.stale_every > 0 && i % self.stale_every == 0 { 0.0 } else { 1.0 }).collect();
        Data { a, p, f, q, mask, ratio }
    }

    fn objective(&self) -> Objective {
        Objective {
            kind: if self.fraternal { LossKind::Twins } else { LossKind::Infonce },
            temperature: self.tau,
            twins_weight: 0.7,
            margin_scale: 0.5,
            twins_form: self.form,
            fused: false,
        }
    }
}

/// (nce, twins, total, grad a, grad p, grad f) from one side.
type Outcome = (f64, f64, f64, Vec<f32>, Vec<f32>, Vec<f32>);

fn tensor2(v: &[f32], rows: usize, d: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, d]), device)
}

fn values(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] as f64
}

fn run(case: &Case, x: &Data, device: &Device, fused: bool) -> Outcome {
    let (n, d, k) = (case.n, case.d, case.k);
    let a = tensor2(&x.a, n, d, device).require_grad();
    let p = tensor2(&x.p, n, d, device).require_grad();
    let f = tensor2(&x.f, n, d, device).require_grad();
    let ratio = Tensor::<1>::from_data(TensorData::new(x.ratio.clone(), [n]), device);
    let objective = case.objective();
    let f_in = case.fraternal.then(|| f.clone());
    let parts = if fused {
        let queue = (k > 0).then(|| MaskedQueue::new(tensor2(&x.q, k, d, device), &x.mask)).flatten();
        objective.compute_fused(a.clone(), p.clone(), f_in, ratio, queue.as_ref())
    } else {
        // The plain path gathers the fresh entries.
        let fresh: Vec<f32> = x.q.chunks(d).zip(&x.mask).filter(|(_, m)| **m > 0.5).flat_map(|(r, _)| r.to_vec()).collect();
        let rows = fresh.len() / d;
        let queue = (rows > 0).then(|| tensor2(&fresh, rows, d, device));
        objective.compute(a.clone(), p.clone(), f_in, ratio, queue)
    };
    let nce = values(parts.nce.clone());
    let twins = parts.twins.clone().map_or(0.0, values);
    let total = values(parts.total.clone());
    let grads = parts.total.backward();
    let grad = |t: &Tensor<2>| -> Vec<f32> {
        t.grad(&grads).map(|g| g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()).unwrap_or_else(|| vec![0.0; n * d])
    };
    (nce, twins, total, grad(&a), grad(&p), grad(&f))
}

fn gpu() -> Device {
    let selected = select(DeviceSpec::Gpu(None)).expect("a wgpu adapter (lavapipe: apt-get install mesa-vulkan-drivers)");
    selected.device
}

fn check(case: &Case, gpu: &Device) -> f64 {
    let x = case.data();
    let reference = run(case, &x, &Device::flex().autodiff(), false);
    let fused = run(case, &x, &gpu.clone().autodiff(), true);
    let label = format!(
        "N={} K={} d={} tau={} form={:?} fraternal={} stale_every={} all_equal={}",
        case.n, case.k, case.d, case.tau, case.form, case.fraternal, case.stale_every, case.all_equal
    );
    let floor = grad_floor(case.n, case.tau);
    // Without fraternal twins the fused L_twins must be exactly 0 and dL/df all zeros.
    let zero = vec![0.0f32; fused.5.len()];
    let errs: [(&str, Result<f64, NonFinite>); 6] = [
        ("L_nce", rel_err_scalar(fused.0, reference.0)),
        ("L_twins", if case.fraternal { rel_err_scalar(fused.1, reference.1) } else { rel_err_scalar(fused.1, 0.0) }),
        ("L", rel_err_scalar(fused.2, reference.2)),
        ("dL/da", rel_err_tensor(&fused.3, &reference.3, floor)),
        ("dL/dp", rel_err_tensor(&fused.4, &reference.4, floor)),
        ("dL/df", rel_err_tensor(&fused.5, if case.fraternal { &reference.5 } else { &zero }, floor)),
    ];
    let mut worst: f64 = 0.0;
    for (what, e) in errs {
        let e = e.unwrap_or_else(|e| panic!("{label}: {what}: {e}"));
        assert!(e <= TOL, "{label}: {what} relative error {e:.3e} > {TOL:e} (fused {fused:?} vs reference {reference:?})", fused = (fused.0, fused.1, fused.2), reference = (reference.0, reference.1, reference.2));
        worst = worst.max(e);
    }
    worst
}

#[test]
fn fused_matches_plain_over_the_grid() {
    let gpu = gpu();
    let mut worst: f64 = 0.0;
    let mut seed = 1;
    for n in [1usize, 7, 64, 257] {
        for k in [0usize, 100, 4096] {
            for d in [32usize, 384, 768] {
                for tau in [0.05, 0.01] {
                    seed += 1;
                    // Alternate the form and the stale pattern over the grid; the fraternal
                    // (IFTCL) objective throughout, SimCSE in its own test.
                    let form = if seed % 2 == 0 { TwinsForm::Pull } else { TwinsForm::TwoSided };
                    let case = Case { n, k, d, tau, form, fraternal: true, stale_every: if seed % 3 == 0 { 0 } else { 7 }, all_equal: false, seed };
                    worst = worst.max(check(&case, &gpu));
                }
            }
        }
    }
    eprintln!("fused vs plain, 72 cases: worst relative error {worst:.3e}");
}

#[test]
fn simcse_objective_and_both_forms() {
    let gpu = gpu();
    for (i, (fraternal, form)) in [(false, TwinsForm::Pull), (true, TwinsForm::Pull), (true, TwinsForm::TwoSided)].into_iter().enumerate() {
        for (n, k) in [(7usize, 0usize), (64, 100)] {
            check(&Case { n, k, d: 384, tau: 0.05, form, fraternal, stale_every: 5, all_equal: false, seed: 100 + i as u64 }, &gpu);
        }
    }
}

#[test]
fn edge_cases() {
    let gpu = gpu();
    // One anchor: its only negatives are the queue's (and none at all with K = 0).
    for k in [0usize, 100] {
        check(&Case { n: 1, k, d: 32, tau: 0.05, form: TwinsForm::Pull, fraternal: true, stale_every: 0, all_equal: false, seed: 200 }, &gpu);
    }
    // Every embedding the same vector: a flat softmax, a pull hinge at exactly beta * r.
    for form in [TwinsForm::Pull, TwinsForm::TwoSided] {
        check(&Case { n: 7, k: 100, d: 384, tau: 0.01, form, fraternal: true, stale_every: 0, all_equal: true, seed: 201 }, &gpu);
    }
    // A queue whose slots are all stale is no queue.
    check(&Case { n: 7, k: 100, d: 32, tau: 0.05, form: TwinsForm::Pull, fraternal: true, stale_every: 1, all_equal: false, seed: 202 }, &gpu);
}
