//! `bench loss`: the fused loss kernels against the plain burn-ops loss, forward and backward,
//! on a wgpu device.

use std::time::Instant;

use burn::tensor::Device;
use serde::Serialize;

use super::median;
use crate::compare::{grad_floor, rel_err_scalar, rel_err_tensor, worst};
use crate::error::{Error, Result};
use crate::hash::random_unit_rows;

/// One shape of `bench loss`.
#[derive(Debug, Clone, Serialize)]
pub struct LossBenchCase {
    /// Anchors N.
    pub n: usize,
    /// Queue entries K.
    pub k: usize,
    /// Embedding width d.
    pub d: usize,
    /// Median forward+backward time of the fused kernels, device synchronised (ms).
    pub fused_ms: f64,
    /// The same for the plain burn-ops graph (ms).
    pub unfused_ms: f64,
    /// unfused_ms / fused_ms.
    pub speedup: f64,
    /// Largest relative error of L, L_nce, L_twins (fused vs plain, same device).
    pub max_rel_err_loss: f64,
    /// Largest relative error of dL/da, dL/dp, dL/df (max-abs norm, floor 0.01/(Nτ)).
    pub max_rel_err_grad: f64,
    /// Floating-point operations of the loss forward+backward (the three matrix products).
    pub flops: f64,
    /// Bytes any implementation must move: read a, p, f and the queue, write three gradients.
    pub min_bytes: f64,
    /// flops / fused time (GFLOP/s).
    pub fused_gflops: f64,
    /// min_bytes / fused time (GB/s).
    pub fused_gbps: f64,
}

/// Result of `bench loss`.
#[derive(Debug, Clone, Serialize)]
pub struct LossBench {
    /// Device description.
    pub device: String,
    /// Timed runs per shape (after the warm-up).
    pub runs: usize,
    /// Objective: IFTCL (fraternal twins, pull form, β 0.1, λ 1), τ 0.05, every queue slot fresh.
    pub objective: String,
    /// One entry per shape.
    pub cases: Vec<LossBenchCase>,
}

/// Values of the terms and the gradients of one forward+backward.
struct LossRun {
    terms: [f64; 3],
    grads: [Vec<f32>; 3],
}

/// Times the fused and the plain loss (forward + backward, device synchronised) on `device`
/// (a wgpu device) for each `(n, k, d)`: the median of `runs` timed runs after `warmup`.
pub fn bench_loss(device: &Device, description: &str, shapes: &[(usize, usize, usize)], warmup: usize, runs: usize) -> Result<LossBench> {
    use crate::train::fused::MaskedQueue;
    use crate::train::{LossKind, Objective, TwinsForm};
    use burn::tensor::{Tensor, TensorData};

    if !crate::train::fused::kernels_available(device) {
        return Err(Error::InvalidArgument("bench loss needs a wgpu device (--device gpu): the fused kernels do not run on the CPU backend".into()));
    }
    let train_device = device.clone().autodiff();
    let objective = Objective {
        kind: LossKind::Twins,
        temperature: 0.05,
        twins_weight: 1.0,
        margin_scale: 0.1,
        twins_form: TwinsForm::Pull,
        fused: true,
    };
    let mut cases = Vec::new();
    for &(n, k, d) in shapes {
        let t2 = |v: Vec<f32>, rows: usize| Tensor::<2>::from_data(TensorData::new(v, [rows, d]), &train_device);
        let (a0, p0, f0) = (t2(random_unit_rows(1, n, d), n), t2(random_unit_rows(2, n, d), n), t2(random_unit_rows(3, n, d), n));
        let ratio = Tensor::<1>::from_data(TensorData::new(vec![0.2f32; n], [n]), &train_device);
        let queue = (k > 0).then(|| t2(random_unit_rows(4, k, d), k));
        let masked = queue.as_ref().and_then(|q| MaskedQueue::new(q.clone(), &vec![1.0; k]));
        let run = |fused: bool, read: bool| -> Result<(f64, Option<LossRun>)> {
            let t = Instant::now();
            let (a, p, f) = (a0.clone().require_grad(), p0.clone().require_grad(), f0.clone().require_grad());
            let parts = if fused {
                objective.compute_fused(a.clone(), p.clone(), Some(f.clone()), ratio.clone(), masked.as_ref())
            } else {
                objective.compute(a.clone(), p.clone(), Some(f.clone()), ratio.clone(), queue.clone())
            };
            let grads = parts.total.clone().backward();
            let kept = [a.grad(&grads), p.grad(&grads), f.grad(&grads)];
            train_device.sync().map_err(Error::execution)?;
            let elapsed = t.elapsed().as_secs_f64();
            if !read {
                drop(kept);
                return Ok((elapsed, None));
            }
            let value = |x: Tensor<1>| -> Result<f64> { Ok(f64::from(x.into_data().convert::<f32>().try_to_vec::<f32>().map_err(Error::execution)?[0])) };
            let twins = parts.twins.clone().ok_or_else(|| Error::Execution("no twins term".into()))?;
            let terms = [value(parts.total)?, value(parts.nce)?, value(twins)?];
            let mut g = Vec::new();
            for t in kept {
                let t = t.ok_or_else(|| Error::Execution("missing gradient".into()))?;
                g.push(t.into_data().convert::<f32>().try_to_vec::<f32>().map_err(Error::execution)?);
            }
            let grads: [Vec<f32>; 3] = g.try_into().map_err(|_| Error::Execution("three gradients".into()))?;
            Ok((elapsed, Some(LossRun { terms, grads })))
        };
        let (_, fused_out) = run(true, true)?;
        let (_, plain_out) = run(false, true)?;
        let (fused_out, plain_out) = (fused_out.expect("read"), plain_out.expect("read"));
        // A NaN or infinity on either side reports NaN (JSON null), never a small error.
        let max_rel_err_loss = worst((0..3).map(|i| rel_err_scalar(fused_out.terms[i], plain_out.terms[i]).unwrap_or(f64::NAN)));
        let max_rel_err_grad =
            worst((0..3).map(|i| rel_err_tensor(&fused_out.grads[i], &plain_out.grads[i], grad_floor(n, 0.05)).unwrap_or(f64::NAN)));
        let mut times = [Vec::new(), Vec::new()];
        for i in 0..warmup + runs.max(1) {
            // Interleave the two so drift in machine load hits both alike.
            for (slot, fused) in [(0, true), (1, false)] {
                let (s, _) = run(fused, false)?;
                if i >= warmup {
                    times[slot].push(s);
                }
            }
        }
        let (fused_s, unfused_s) = (median(&times[0]), median(&times[1]));
        let m = (2 * n + k) as f64;
        let (nf, df) = (n as f64, d as f64);
        let flops = 2.0 * nf * m * df * 2.0 + 2.0 * (2.0 * nf) * nf * df;
        let min_bytes = 4.0 * ((3.0 * nf + k as f64) * df + 3.0 * nf * df);
        cases.push(LossBenchCase {
            n,
            k,
            d,
            fused_ms: fused_s * 1e3,
            unfused_ms: unfused_s * 1e3,
            speedup: unfused_s / fused_s,
            max_rel_err_loss,
            max_rel_err_grad,
            flops,
            min_bytes,
            fused_gflops: flops / fused_s / 1e9,
            fused_gbps: min_bytes / fused_s / 1e9,
        });
    }
    Ok(LossBench {
        device: description.to_string(),
        runs: runs.max(1),
        objective: "IFTCL: fraternal twins, pull form, beta 0.1, lambda 1, tau 0.05, all queue slots fresh".into(),
        cases,
    })
}

