// The bundle is built with wasm SIMD (simd128): a browser without it cannot compile the
// module, and would otherwise fail with a bare CompileError. This checks first, on a
// 31-byte module whose one function uses two SIMD instructions (i8x16.splat, i8x16.popcnt).
const PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Whether this JavaScript engine runs WebAssembly SIMD (simd128). */
export function simdSupported() {
  return typeof WebAssembly === "object" && typeof WebAssembly.validate === "function" && WebAssembly.validate(PROBE);
}

/** Throws a clear error where WebAssembly SIMD is missing. */
export function requireSimd() {
  if (typeof WebAssembly !== "object") {
    throw new Error("iftcl needs WebAssembly, which this browser does not offer");
  }
  if (!simdSupported()) {
    throw new Error(
      "iftcl needs WebAssembly SIMD (simd128), which this browser does not support or has switched off: " +
        "use Chrome or Edge 91+, Firefox 89+ or Safari 16.4+",
    );
  }
}

/** `init` (a module's init or initSync) with the SIMD check first: what inline.js and
 * inline-cpu.js export. */
export function withSimdCheck(init) {
  return (options) => {
    requireSimd();
    return init(options);
  };
}
