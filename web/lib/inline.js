// iftcl on the calling thread (Node, or a page that runs it in its own worker): the module's
// own `init` and `Encoder`, with the SIMD check first. In a page, prefer index.js, whose
// encoder runs in a worker and leaves the page responsive.
import wasmInit, { Encoder, initSync as wasmInitSync } from "./iftcl_wasm.js";
import { simdSupported, withSimdCheck } from "./simd.js";

export { Encoder, simdSupported };

/**
 * Loads the wasm module: `init()` fetches iftcl_wasm_bg.wasm from beside this file; `init({
 * module_or_path })` takes a URL, a Response, bytes or a compiled WebAssembly.Module.
 */
export default withSimdCheck(wasmInit);

/** Synchronous form of init, for bytes or a compiled module (`initSync({ module })`). */
export const initSync = withSimdCheck(wasmInitSync);
