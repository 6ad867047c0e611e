//! Test-only f64 references of the losses, written as plain loops straight from the equations,
//! and central finite differences on them: the burn implementations (and the fused kernels)
//! are checked against these.

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::twins_form::TwinsForm;

/// Hand-made embeddings: anchors, identical and fraternal twins `[n, d]`, queue `[k, d]`.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub n: usize,
    pub d: usize,
    pub k: usize,
    pub a: Vec<f64>,
    pub p: Vec<f64>,
    pub f: Vec<f64>,
    pub q: Vec<f64>,
    pub ratio: Vec<f32>,
}

fn unit_rows(rng: &mut ChaCha8Rng, rows: usize, d: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..rows * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    for r in 0..rows {
        let norm = v[r * d..(r + 1) * d].iter().map(|x| x * x).sum::<f64>().sqrt();
        v[r * d..(r + 1) * d].iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl Inputs {
    pub fn random(seed: u64, n: usize, d: usize, k: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Twins close to their anchors, as in training.
        let a = unit_rows(&mut rng, n, d);
        let noise = unit_rows(&mut rng, n, d);
        let p: Vec<f64> = a.iter().zip(&noise).map(|(x, e)| x + 0.3 * e).collect();
        let noise = unit_rows(&mut rng, n, d);
        let f: Vec<f64> = a.iter().zip(&noise).map(|(x, e)| x + 0.6 * e).collect();
        let q = unit_rows(&mut rng, k, d);
        let ratio = (0..n).map(|_| rng.random_range(0.0..1.0)).collect();
        Inputs { n, d, k, a, p, f, q, ratio }
    }

    pub fn identical(n: usize, d: usize) -> Self {
        let mut x = Self::random(99, n, d, 0);
        x.p = x.a.clone();
        x.f = x.a.clone();
        x
    }

    fn dot(u: &[f64], i: usize, v: &[f64], j: usize, d: usize) -> f64 {
        (0..d).map(|c| u[i * d + c] * v[j * d + c]).sum()
    }
}

/// InfoNCE from the equation.
pub fn info_nce(x: &Inputs, with_f: bool, with_q: bool, tau: f64) -> f64 {
    let d = x.d;
    let mut total = 0.0;
    for i in 0..x.n {
        let mut terms = Vec::new();
        for j in 0..x.n {
            terms.push(Inputs::dot(&x.a, i, &x.p, j, d) / tau);
        }
        if with_f {
            for j in (0..x.n).filter(|&j| j != i) {
                terms.push(Inputs::dot(&x.a, i, &x.f, j, d) / tau);
            }
        }
        if with_q {
            for j in 0..x.k {
                terms.push(Inputs::dot(&x.a, i, &x.q, j, d) / tau);
            }
        }
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln();
        total += lse - Inputs::dot(&x.a, i, &x.p, i, d) / tau;
    }
    total / x.n as f64
}

fn twins_with(x: &Inputs, s_ap_from: &Inputs, beta: f64, form: TwinsForm) -> f64 {
    let d = x.d;
    let mut total = 0.0;
    for i in 0..x.n {
        let target = Inputs::dot(&s_ap_from.a, i, &s_ap_from.p, i, d) - beta * x.ratio[i] as f64;
        let s_af = Inputs::dot(&x.a, i, &x.f, i, d);
        let gap = match form {
            TwinsForm::Pull => (target - s_af).max(0.0),
            TwinsForm::TwoSided => s_af - target,
        };
        total += gap * gap;
    }
    total / x.n as f64
}

/// Twins Loss from the equation.
pub fn twins(x: &Inputs, beta: f64, form: TwinsForm) -> f64 {
    twins_with(x, x, beta, form)
}

/// Twins Loss with s(a, p) taken from `frozen`: the function whose gradient the stop-gradient
/// gives.
pub fn twins_frozen(x: &Inputs, frozen: &Inputs, beta: f64, form: TwinsForm) -> f64 {
    twins_with(x, frozen, beta, form)
}

fn tensor(v: &[f64], rows: usize, d: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(data, [rows, d]), device)
}

/// Runs `loss` on f32 autodiff tensors (CPU backend) and returns the value and the gradients of
/// `a`, `p`, `f` (in that order).
pub fn check_against_burn(
    x: &Inputs,
    loss: impl Fn(Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>) -> Tensor<1>,
) -> (f64, [Vec<f64>; 3]) {
    let device = Device::flex().autodiff();
    run_on(x, loss, &device)
}

/// As [`check_against_burn`], on `device` (which must have autodiff on).
pub fn run_on(
    x: &Inputs,
    loss: impl Fn(Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>) -> Tensor<1>,
    device: &Device,
) -> (f64, [Vec<f64>; 3]) {
    let a = tensor(&x.a, x.n, x.d, device).require_grad();
    let p = tensor(&x.p, x.n, x.d, device).require_grad();
    let f = tensor(&x.f, x.n, x.d, device).require_grad();
    let q = tensor(&x.q, x.k, x.d, device);
    let l = loss(a.clone(), p.clone(), f.clone(), q);
    let grads = l.backward();
    let value = l.into_data().try_to_vec::<f32>().unwrap()[0] as f64;
    let g = |t: &Tensor<2>| -> Vec<f64> {
        match t.grad(&grads) {
            Some(g) => g.into_data().try_to_vec::<f32>().unwrap().into_iter().map(f64::from).collect(),
            None => vec![0.0; x.n * x.d],
        }
    };
    (value, [g(&a), g(&p), g(&f)])
}

pub fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
    assert!((got - want).abs() <= rel * want.abs().max(1.0), "{what}: {got} vs reference {want}");
}

/// Central finite differences of `loss` with respect to every element of a, p, f, compared to
/// `grads` (absolute tolerance `tol`, scaled by the largest gradient).
pub fn assert_grads_match(x: &Inputs, grads: &[Vec<f64>; 3], loss: impl Fn(&Inputs) -> f64, tol: f64) {
    let h = 1e-6;
    let scale = grads.iter().flatten().fold(1e-3f64, |m, g| m.max(g.abs()));
    for (which, name) in ["a", "p", "f"].iter().enumerate() {
        for i in 0..x.n * x.d {
            let mut plus = x.clone();
            let mut minus = x.clone();
            let (vp, vm) = match which {
                0 => (&mut plus.a, &mut minus.a),
                1 => (&mut plus.p, &mut minus.p),
                _ => (&mut plus.f, &mut minus.f),
            };
            vp[i] += h;
            vm[i] -= h;
            let fd = (loss(&plus) - loss(&minus)) / (2.0 * h);
            let g = grads[which][i];
            assert!((g - fd).abs() <= tol * scale, "d loss / d {name}[{i}]: autodiff {g} vs finite difference {fd}");
        }
    }
}
