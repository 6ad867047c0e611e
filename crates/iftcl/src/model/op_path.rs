//! [`OpPath`]: how the row-wise parts of a forward pass (GELU, dropout, which rows are computed)
//! run on a device, decided once per forward pass.

use burn::tensor::Device;

/// How the feed-forward GELU, dropout and the token rows are computed on a device.
/// - `Host`: CPU inference: the vectorised host GELU (`gelu.rs`), packed rows (`rows.rs`).
/// - `HostAutodiff`: CPU training: the same GELU with a host-computed derivative, dropout
///   masks drawn on the host (`dropout.rs`), packed rows.
/// - `Burn`: GPU inference: burn's ops, every row.
/// - `Composed`: GPU training: GELU written in tensor ops (`gelu.rs` says why: burn's GELU
///   backward is NaN for large inputs on browser WebGPU), burn's dropout, every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpPath {
    /// CPU inference.
    Host,
    /// CPU training (autodiff).
    HostAutodiff,
    /// GPU inference.
    Burn,
    /// GPU training (autodiff).
    Composed,
}

impl OpPath {
    /// The path of `device`: CPU (burn's flex backend) or not, autodiff or not.
    pub fn for_device(device: &Device) -> Self {
        let cpu = device.clone().inner() == Device::flex();
        match (cpu, device.is_autodiff()) {
            (true, false) => Self::Host,
            (true, true) => Self::HostAutodiff,
            (false, true) => Self::Composed,
            (false, false) => Self::Burn,
        }
    }

    /// Whether the row-wise parts of a layer compute only the real tokens' rows (packed rows,
    /// `rows.rs`): on the CPU, where they save a fifth of a training step's work. GPUs keep
    /// every row (not measured there yet).
    pub fn packs(self) -> bool {
        matches!(self, Self::Host | Self::HostAutodiff)
    }
}
