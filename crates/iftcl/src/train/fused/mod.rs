//! The fused IFTCL loss: the whole objective of a step (similarity matmul against
//! [identical twins; fraternal twins; queue], masked row log-sum-exp, diagonal gathers, the
//! Twins term) and its backward as five WGSL kernels (`shaders/`) instead of dozens of burn
//! ops. It runs on wgpu devices; the plain-ops loss (`info_nce`, `twins_loss`) stays the
//! reference and the path for every other backend. Without the `gpu` feature (the CPU-only
//! browser module) the kernels are not compiled and [`kernels_available`] is false.

#[cfg(feature = "gpu")]
mod kernels;
#[cfg(feature = "gpu")]
pub mod ops;

use std::str::FromStr;

#[cfg(feature = "gpu")]
use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[cfg(feature = "gpu")]
pub use ops::{FusedLossOps, LossSettings};

/// `--fused-loss`: whether the loss runs as the fused kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FusedLoss {
    /// On for wgpu devices, off for the CPU backend.
    #[default]
    Auto,
    /// Always (an error on a device without the kernels).
    On,
    /// Never: the plain burn-ops loss.
    Off,
}

impl FromStr for FusedLoss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(FusedLoss::Auto),
            "on" => Ok(FusedLoss::On),
            "off" => Ok(FusedLoss::Off),
            other => Err(format!("`{other}` is not a --fused-loss value (auto, on, off)")),
        }
    }
}

impl std::fmt::Display for FusedLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FusedLoss::Auto => "auto",
            FusedLoss::On => "on",
            FusedLoss::Off => "off",
        })
    }
}

impl FusedLoss {
    /// Resolves the choice for a device and an embedding width: `Ok(true)` to use the kernels.
    /// They need a wgpu device and a width that is a multiple of 4 (they read vec4 rows).
    pub fn resolve(self, is_wgpu: bool, width: usize) -> crate::Result<bool> {
        let fits = width.is_multiple_of(4);
        match self {
            FusedLoss::Off => Ok(false),
            FusedLoss::Auto => Ok(is_wgpu && fits),
            FusedLoss::On if !is_wgpu => Err(crate::Error::InvalidArgument(
                "--fused-loss on needs a wgpu device (the fused WGSL kernels do not run on the CPU backend); use --fused-loss auto or off, or --device gpu".into(),
            )),
            FusedLoss::On if !fits => Err(crate::Error::InvalidArgument(format!(
                "--fused-loss on needs an embedding width that is a multiple of 4 (this model's is {width}); use --fused-loss auto or off"
            ))),
            FusedLoss::On => Ok(true),
        }
    }
}

/// Whether `device` runs the fused kernels: a wgpu (CubeCL) device, with or without autodiff.
#[cfg(feature = "gpu")]
pub fn kernels_available(device: &Device) -> bool {
    fn cube(d: &DispatchDevice) -> bool {
        match d {
            DispatchDevice::Cube(_) => true,
            DispatchDevice::Autodiff(inner) => cube(inner),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
    cube(device.as_dispatch())
}

/// Whether `device` runs the fused kernels: never in a build without the `gpu` feature.
#[cfg(not(feature = "gpu"))]
pub fn kernels_available(_device: &Device) -> bool {
    false
}

/// The queue as the kernels read it: the whole ring buffer `[K, d]` and a per-slot mask
/// (1 usable, 0 empty or stale).
#[derive(Debug, Clone)]
pub struct MaskedQueue {
    /// `[K, d]` detached entries.
    pub buffer: Tensor<2>,
    /// `[K]` validity.
    pub mask: Tensor<1>,
}

impl MaskedQueue {
    /// From a buffer and a host mask; `None` when no slot is usable.
    pub fn new(buffer: Tensor<2>, mask: &[f32]) -> Option<Self> {
        if !mask.iter().any(|&m| m > 0.5) {
            return None;
        }
        let device = buffer.device();
        let mask = Tensor::<1>::from_data(TensorData::new(mask.to_vec(), [mask.len()]), &device);
        Some(MaskedQueue { buffer, mask })
    }
}

/// The loss terms `[2]` = (L_nce, L_twins) from the fused kernels, differentiable in `a`,
/// `p` and `f` (burn's autodiff calls the backward kernels).
///
/// - `a`, `p`: `[N, d]`; `f`: `[N, d]` fraternal twins (`None`: SimCSE, and L_twins = 0)
/// - `ratio`: `[N]` edit ratios; `queue`: the masked queue or `None`
/// - `tau`, `beta`: temperature, margin scale; `two_sided`: the two-sided Twins form (else
///   pull)
#[allow(clippy::too_many_arguments)]
#[cfg(feature = "gpu")]
pub fn fused_terms(
    a: Tensor<2>,
    p: Tensor<2>,
    f: Option<Tensor<2>>,
    ratio: Tensor<1>,
    queue: Option<&MaskedQueue>,
    tau: f64,
    beta: f64,
    two_sided: bool,
) -> Tensor<1> {
    let [n, d] = a.dims();
    let device = a.device();
    let settings = LossSettings {
        tau: tau as f32,
        beta: beta as f32,
        two_sided,
        use_fraternal: f.is_some(),
        queue_rows: queue.map_or(0, |q| q.buffer.dims()[0]),
    };
    // Placeholders the kernels bind but never read.
    let f = f.unwrap_or_else(|| Tensor::zeros([1, d], &device));
    let (q, qmask) = match queue {
        Some(q) => (q.buffer.clone().detach(), q.mask.clone()),
        None => (Tensor::zeros([1, d], &device), Tensor::zeros([1], &device)),
    };
    debug_assert_eq!(ratio.dims(), [n]);
    let out = <Dispatch as FusedLossOps>::iftcl_loss(
        a.into_dispatch(),
        p.into_dispatch(),
        f.into_dispatch(),
        q.into_dispatch(),
        qmask.into_dispatch(),
        ratio.detach().into_dispatch(),
        settings,
    );
    Tensor::from_dispatch(out)
}

#[cfg(test)]
mod tests {
    use super::FusedLoss;

    #[test]
    fn resolution_per_device_and_width() {
        assert!(FusedLoss::Auto.resolve(true, 384).unwrap());
        assert!(!FusedLoss::Auto.resolve(false, 384).unwrap());
        assert!(!FusedLoss::Auto.resolve(true, 30).unwrap());
        assert!(!FusedLoss::Off.resolve(true, 384).unwrap());
        assert!(FusedLoss::On.resolve(true, 768).unwrap());
        assert!(FusedLoss::On.resolve(false, 384).unwrap_err().to_string().contains("wgpu device"));
        assert!(FusedLoss::On.resolve(true, 30).unwrap_err().to_string().contains("multiple of 4"));
        assert_eq!("on".parse::<FusedLoss>(), Ok(FusedLoss::On));
        assert!("yes".parse::<FusedLoss>().unwrap_err().contains("auto, on, off"));
    }
}
