//! Device selection: `auto`, `cpu`, `gpu`, `gpu:N`.
//!
//! `auto` takes the first wgpu hardware adapter (Vulkan, Metal, DX12: a discrete, integrated or
//! virtual GPU) and otherwise the CPU backend. The CPU backend is burn's `flex` (pure Rust,
//! SIMD `gemm` with rayon), the fastest CPU backend burn 0.22 offers without native libraries.
//! Software adapters such as Mesa's lavapipe are listed and usable with `gpu`/`gpu:N`, but
//! `auto` does not choose them: the CPU backend is faster than a GPU emulated on the CPU.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, DeviceKind};

use crate::error::{Error, Result};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// First hardware GPU adapter, else the CPU backend.
    #[default]
    Auto,
    /// The CPU backend.
    Cpu,
    /// A wgpu adapter: the first hardware one (else any, software included) or the N-th listed.
    Gpu(Option<usize>),
}

impl FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "gpu" => Ok(DeviceSpec::Gpu(None)),
            other => other
                .strip_prefix("gpu:")
                .and_then(|n| n.parse().ok())
                .map(|n| DeviceSpec::Gpu(Some(n)))
                .ok_or_else(|| Error::Device(format!("`{other}` is not one of auto, cpu, gpu, gpu:N"))),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Gpu(None) => write!(f, "gpu"),
            DeviceSpec::Gpu(Some(n)) => write!(f, "gpu:{n}"),
        }
    }
}

/// One wgpu adapter as the listing shows it.
#[derive(Debug, Clone)]
pub struct AdapterInfo {
    /// Position in the listing (what `gpu:N` takes).
    pub index: usize,
    /// Adapter name, e.g. "NVIDIA H100" or "llvmpipe (LLVM 15.0.7, 256 bits)".
    pub name: String,
    /// Graphics API: Vulkan, Metal, Dx12, Gl, BrowserWebGpu.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu or Other.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    kind: DeviceKind,
}

impl AdapterInfo {
    /// A real GPU (not a CPU-emulated one).
    pub fn is_hardware(&self) -> bool {
        matches!(self.device_type.as_str(), "DiscreteGpu" | "IntegratedGpu" | "VirtualGpu")
    }
}

/// Lists the adapters wgpu sees through Vulkan, Metal and DX12 (GL is left out: burn's wgpu
/// runtime needs compute shaders with storage buffers the GL path lacks on most drivers).
///
/// The drivers are probed once per process and the list kept: a probe loads every driver, and
/// some print to stderr on each (Mesa's, without a `XDG_RUNTIME_DIR`: "XDG_RUNTIME_DIR is
/// invalid or not set"). `--device cpu` never probes.
#[cfg(not(target_family = "wasm"))]
pub fn list_adapters() -> Vec<AdapterInfo> {
    static ADAPTERS: std::sync::OnceLock<Vec<AdapterInfo>> = std::sync::OnceLock::new();
    ADAPTERS.get_or_init(probe_adapters).clone()
}

#[cfg(not(target_family = "wasm"))]
fn probe_adapters() -> Vec<AdapterInfo> {
    use burn::tensor::wgpu::wgpu;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let mut per_type = std::collections::HashMap::<String, usize>::new();
    adapters
        .into_iter()
        .enumerate()
        .map(|(index, adapter)| {
            let info = adapter.get_info();
            let device_type = format!("{:?}", info.device_type);
            let n = per_type.entry(device_type.clone()).or_insert(0);
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(*n),
                wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(*n),
                wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(*n),
                wgpu::DeviceType::Cpu => DeviceKind::Cpu,
                wgpu::DeviceType::Other => DeviceKind::DefaultDevice,
            };
            *n += 1;
            AdapterInfo {
                index,
                name: info.name,
                backend: format!("{:?}", info.backend),
                device_type,
                driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
                kind,
            }
        })
        .collect()
}

/// A device ready for tensors, with a description for logs and reports.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The burn device.
    pub device: Device,
    /// `"cpu (flex)"` or `"wgpu: <adapter> (<api>, <type>)"`.
    pub description: String,
    /// Whether this is a wgpu device.
    pub is_wgpu: bool,
}

/// The CPU backend.
pub fn cpu_device() -> SelectedDevice {
    SelectedDevice { device: Device::flex(), description: "cpu (burn flex)".into(), is_wgpu: false }
}

/// In a browser the WebGPU device is set up asynchronously (by `iftcl-wasm`'s `Encoder.load`),
/// so only the CPU backend can be selected here.
#[cfg(target_family = "wasm")]
pub fn select(spec: DeviceSpec) -> Result<SelectedDevice> {
    match spec {
        DeviceSpec::Cpu | DeviceSpec::Auto => Ok(cpu_device()),
        DeviceSpec::Gpu(_) => Err(Error::Device("in a browser the WebGPU device is set up asynchronously: load through iftcl-wasm".into())),
    }
}

/// Resolves a [`DeviceSpec`] against the adapters this machine has.
#[cfg(not(target_family = "wasm"))]
pub fn select(spec: DeviceSpec) -> Result<SelectedDevice> {
    let wgpu_device = |a: &AdapterInfo| SelectedDevice {
        device: Device::wgpu(a.kind.clone()),
        description: format!("wgpu: {} ({}, {})", a.name, a.backend, a.device_type),
        is_wgpu: true,
    };
    match spec {
        DeviceSpec::Cpu => Ok(cpu_device()),
        DeviceSpec::Auto => {
            let adapters = list_adapters();
            Ok(adapters.iter().find(|a| a.is_hardware()).map(wgpu_device).unwrap_or_else(cpu_device))
        }
        DeviceSpec::Gpu(None) => {
            let adapters = list_adapters();
            adapters
                .iter()
                .find(|a| a.is_hardware())
                .or_else(|| adapters.first())
                .map(wgpu_device)
                .ok_or_else(|| {
                    Error::Device(
                        "wgpu found no Vulkan/Metal/DX12 adapter; on Linux without a GPU install \
                         mesa-vulkan-drivers for lavapipe, or use --device cpu"
                            .into(),
                    )
                })
        }
        DeviceSpec::Gpu(Some(n)) => {
            let adapters = list_adapters();
            adapters.get(n).map(wgpu_device).ok_or_else(|| {
                Error::Device(format!(
                    "gpu:{n} does not exist: wgpu lists {} adapter(s) (see `iftcl devices`)",
                    adapters.len()
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("gpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Gpu(None));
        assert_eq!("gpu:2".parse::<DeviceSpec>().unwrap(), DeviceSpec::Gpu(Some(2)));
        assert!("gpu:x".parse::<DeviceSpec>().is_err());
        assert!("cuda".parse::<DeviceSpec>().is_err());
        assert_eq!(DeviceSpec::Gpu(Some(1)).to_string(), "gpu:1");
    }
}
