//! `iftcl devices`: the wgpu adapters and what `--device auto` picks.

use anyhow::Result;
use iftcl::device::{self, DeviceSpec};

use crate::outln;

/// Prints every adapter, the CPU backend and the `auto` choice.
pub fn run() -> Result<()> {
    let mut out = crate::stdout::stdout();
    let adapters = device::list_adapters();
    if adapters.is_empty() {
        outln!(out, "wgpu sees no Vulkan/Metal/DX12 adapter.")?;
    }
    for a in &adapters {
        let hw = if a.is_hardware() { "" } else { "  [software]" };
        outln!(out, "gpu:{}  {}  ({}, {}, {}){hw}", a.index, a.name, a.backend, a.device_type, a.driver)?;
    }
    outln!(out, "cpu    burn flex (pure Rust, SIMD gemm + rayon, {} threads)", std::thread::available_parallelism().map_or(1, |n| n.get()))?;
    let auto = device::select(DeviceSpec::Auto)?;
    outln!(out, "auto -> {}", auto.description)?;
    Ok(())
}
