// The bundle is a SIMD build: counted instruction by instruction (tests/wasm-ops.mjs) in the
// module that ships (web/pkg) and, by function name, in the same build before wasm-bindgen
// (Cargo's output keeps the name section that web/pkg drops): the CPU backend's matrix
// kernels (gemm) use SIMD, and so does code outside them, which a build without
// `-C target-feature=+simd128` leaves scalar (there, only gemm's own simd128 kernels have it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { web } from "./common.mjs";
import { simdCounts } from "./wasm-ops.mjs";

const shipped = path.join(web, "pkg/iftcl_wasm_bg.wasm");
const targetDir = process.env.CARGO_TARGET_DIR_WASM || path.join(os.homedir(), ".cache/iftcl-wasm-target");
const named = path.join(targetDir, "wasm32-unknown-unknown/wasm/iftcl_wasm.wasm");
// The gemm crates' hand-written simd128 micro-kernels and packing code: the matrix products.
const GEMM = /gemm/;

test("the shipped module uses SIMD instructions", () => {
  const c = simdCounts(readFileSync(shipped));
  const using = c.byFunction.filter((f) => f.simd > 0).length;
  console.log(`web/pkg/iftcl_wasm_bg.wasm: ${c.simd} SIMD instructions in ${using} of ${c.functions} functions`);
  assert.ok(c.simd > 0, "no SIMD instruction in the module");
});

test("the matrix kernels and the code around them use SIMD (by function name)", () => {
  assert.ok(existsSync(named), `${named} not found: scripts/build-wasm.sh builds it (set CARGO_TARGET_DIR_WASM to its build folder)`);
  // The same build as web/pkg: Cargo wrote it before wasm-bindgen read it.
  assert.ok(statSync(named).mtimeMs <= statSync(shipped).mtimeMs, `${named} is newer than web/pkg: run scripts/build-wasm.sh`);
  const c = simdCounts(readFileSync(named));
  assert.ok(c.byFunction.filter((f) => f.name).length > c.functions / 2, "the module has no function names");
  const sum = (fs) => fs.reduce((s, f) => s + f.simd, 0);
  const gemm = c.byFunction.filter((f) => f.name && GEMM.test(f.name));
  const other = c.byFunction.filter((f) => f.simd > 0 && !(f.name && GEMM.test(f.name)));
  const crates = {};
  for (const f of other) {
    const crate = /^_ZN[0-9]+([a-z_][a-z0-9_]*)/.exec(f.name ?? "")?.[1] ?? /^_ZN[0-9]+_\$LT\$([a-z_][a-z0-9_]*)/.exec(f.name ?? "")?.[1] ?? "other";
    crates[crate] = (crates[crate] ?? 0) + f.simd;
  }
  const top = Object.entries(crates).sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.log(`gemm: ${sum(gemm)} SIMD instructions in ${gemm.filter((f) => f.simd > 0).length} of ${gemm.length} functions; elsewhere: ${sum(other)} in ${other.length} functions (by crate: ${top.map(([k, v]) => `${k} ${v}`).join(", ")})`);
  assert.ok(gemm.some((f) => f.simd > 0), "no gemm function uses SIMD");
  assert.ok(sum(other) > 0, "SIMD only in gemm's own kernels: built without -C target-feature=+simd128?");
});
