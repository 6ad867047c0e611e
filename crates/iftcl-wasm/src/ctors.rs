//! Static constructors, run once when the module is instantiated.
//!
//! CubeCL registers its IR dialects and compiler ops through `inventory`, whose constructors
//! live in `.init_array`. wasm-ld runs them from a synthetic `__wasm_call_ctors`, and when no
//! code calls that function it treats the module as a "command" and calls it at the top of
//! *every* export: each call from JavaScript into the module (every string of an array
//! argument, every allocation, every WebGPU callback) re-ran all of them, about 0.25 ms
//! each (20,000 sentences took 10 s to convert before any work). Calling it once here, from
//! the start function, tells the linker the module runs its own constructors.

#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// Runs the static constructors; called once, from the module's start function.
#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
pub(crate) fn run_once() {
    // SAFETY: wasm-ld synthesises this function; it only runs the registered constructors
    // (`inventory` submissions, which are idempotent), and the start function calls it
    // once, before any other Rust code of the module runs.
    unsafe { __wasm_call_ctors() }
}

#[cfg(not(target_family = "wasm"))]
pub(crate) fn run_once() {}
