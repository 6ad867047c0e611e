// The bundle is a SIMD build: counted instruction by instruction (tests/wasm-ops.mjs) in the
// module that ships (web/pkg) and, by function name, in the same build before wasm-bindgen
// (Cargo's output keeps the name section that web/pkg drops): the CPU backend's matrix
// kernels (gemm) use SIMD, and so do its other kernels (burn_flex) and code elsewhere, which a
// build without `-C target-feature=+simd128` leaves scalar (measured on the build before: SIMD
// in 24 functions, all gemm's own simd128 micro-kernels; none in burn_flex).
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
    // Rust's legacy mangling: _ZN<length><first path segment>…; a trait impl's starts `_$LT$`.
    const m = /^_ZN([0-9]+)/.exec(f.name ?? "");
    const first = m ? f.name.slice(m[0].length, m[0].length + Number(m[1])).replace(/^_\$LT\$/, "") : "";
    const crate = /^[A-Za-z_][A-Za-z0-9_]*/.exec(first)?.[0] ?? "other";
    crates[crate] = (crates[crate] ?? 0) + f.simd;
  }
  const top = Object.entries(crates).sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.log(`gemm: ${sum(gemm)} SIMD instructions in ${gemm.filter((f) => f.simd > 0).length} of ${gemm.length} functions; elsewhere: ${sum(other)} in ${other.length} functions (by crate: ${top.map(([k, v]) => `${k} ${v}`).join(", ")})`);
  // The CPU backend's own kernels (reductions, softmax's max and sum, concatenation, layout
  // copies): vectorised by LLVM only when the whole build has simd128.
  const flex = c.byFunction.filter((f) => f.name && /^_ZN9burn_flex/.test(f.name));
  console.log(`burn_flex (the CPU backend): ${sum(flex)} SIMD instructions in ${flex.filter((f) => f.simd > 0).length} of ${flex.length} functions`);
  assert.ok(gemm.some((f) => f.simd > 0), "no gemm function uses SIMD");
  assert.ok(sum(flex) > 0, "no SIMD in burn_flex's kernels: built without -C target-feature=+simd128?");
  assert.ok(sum(other) > sum(gemm), "SIMD mostly in gemm's own kernels: built without -C target-feature=+simd128?");
});
