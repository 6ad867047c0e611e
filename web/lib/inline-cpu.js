// iftcl's CPU-only module on the calling thread: as inline.js, but with the build that has no
// WebGPU code (iftcl_wasm_cpu_bg.wasm, 4.3 MB against 19.0). `device: "auto"` is the
// CPU here; `"webgpu"` is refused with a message that names the full module.
import wasmInit, { Encoder, initSync as wasmInitSync } from "./iftcl_wasm_cpu.js";
import { simdSupported, withSimdCheck } from "./simd.js";

export { Encoder, simdSupported };

/** Loads the module (`init()` fetches iftcl_wasm_cpu_bg.wasm from beside this file), as inline.js's init. */
export default withSimdCheck(wasmInit);

/** Synchronous form of init, for bytes or a compiled module (`initSync({ module })`). */
export const initSync = withSimdCheck(wasmInitSync);
