#!/usr/bin/env bash
# Builds crates/iftcl-wasm for the browser into web/pkg/ (wasm-bindgen, --target web, with
# TypeScript types), an npm package (web/lib/README.md), and reports the bundle size, raw and
# gzipped.
#
# Needs: rustup's wasm32-unknown-unknown target and wasm-bindgen-cli of the same version as
# the wasm-bindgen crate in Cargo.lock (both installed here when missing: the CLI into
# $IFTCL_TOOLS, see scripts/install-tools.sh, so that a machine compiles it once per version).
# CARGO_TARGET_DIR_WASM (default $HOME/.cache/iftcl-wasm-target): its own build folder, since
# the wasm build needs RUSTFLAGS the native one must not see.
# WASM_KEEP_NAMES=1 keeps the function-name section (9 MB) so that scripts/wasm-size.py can
# attribute code to crates (same build, only wasm-bindgen's output differs).
# The CPU-only module, the one a page on the CPU downloads, then goes through binaryen's
# optimiser (`wasm-opt -Oz`, binaryen 132 from npm, installed once per machine by
# scripts/install-tools.sh: about 80 s here); IFTCL_WASM_OPT=0 leaves it out for a quicker
# build (the module is then about 0.55 MB larger, and web/tests/page.test.mjs's bound on the
# bytes a page downloads fails).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
wasm_bindgen="$(./scripts/install-tools.sh wasm-bindgen)"

target_dir="${CARGO_TARGET_DIR_WASM:-$HOME/.cache/iftcl-wasm-target}"
# getrandom's browser source (crates/iftcl-wasm/Cargo.toml enables it for every version).
# simd128: 128-bit wasm SIMD, which every current browser runs (Chrome 91, Firefox 89,
# Safari 16.4); the CPU backend's matrix kernels (gemm) and LLVM's loop vectoriser use it.
# web/lib/simd.js checks for it before the module loads and says so when it is missing.
# Two modules from one crate: the full one (WebGPU and the CPU: iftcl_wasm*) and the CPU-only
# one (iftcl_wasm_cpu*: built without the `webgpu` feature, so no wgpu or CubeCL code, a third
# of the bytes), which the worker loads for `device: "cpu"` or where the browser has no WebGPU.
# Each keeps its own compiled dependencies in the same folder (Cargo hashes the features).
# The source paths that panic messages carry are written relative to the crates' own folders
# (`burn-flex-0.22.1/src/...`, not `$HOME/.cargo/registry/src/index.crates.io-.../burn-flex-...`):
# fewer bytes, and no path of the machine that built it in the module.
rustflags=(--cfg 'getrandom_backend="wasm_js"' -C target-feature=+simd128)
for registry in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  [ -d "$registry" ] && rustflags+=("--remap-path-prefix=$registry=")
done
encoded_rustflags=$(IFS=$'\x1f'; echo "${rustflags[*]}")
build_module() { # FEATURE_ARGS OUT_NAME
  CARGO_ENCODED_RUSTFLAGS="$encoded_rustflags" CARGO_TARGET_DIR="$target_dir" \
    cargo build --profile wasm -p iftcl-wasm --target wasm32-unknown-unknown $1
  "$wasm_bindgen" --target web --typescript "${strip_names[@]}" --out-dir web/pkg --out-name "$2" "$target_dir/wasm32-unknown-unknown/wasm/iftcl_wasm.wasm"
}
rm -rf web/pkg
strip_names=(--remove-name-section --remove-producers-section)
if [ "${WASM_KEEP_NAMES:-0}" = 1 ]; then strip_names=(); fi
# The full module last: Cargo's output is then its, as scripts/wasm-size.py and
# web/tests/simd.test.mjs read it.
build_module --no-default-features iftcl_wasm_cpu
if [ "${IFTCL_WASM_OPT:-1}" != 0 ]; then
  wasm_opt="$(./scripts/install-tools.sh wasm-opt)"
  # -g keeps the function names where WASM_KEEP_NAMES asks for them (web/tools/hot-functions.mjs).
  keep_names=()
  if [ "${WASM_KEEP_NAMES:-0}" = 1 ]; then keep_names=(-g); fi
  # The features rustc's wasm32 target emits by default, and SIMD (RUSTFLAGS above).
  "$wasm_opt" -Oz "${keep_names[@]}" --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    web/pkg/iftcl_wasm_cpu_bg.wasm -o web/pkg/iftcl_wasm_cpu_bg.wasm.opt
  mv web/pkg/iftcl_wasm_cpu_bg.wasm.opt web/pkg/iftcl_wasm_cpu_bg.wasm
fi
build_module "" iftcl_wasm
# The npm package around wasm-bindgen's output (web/lib/: the worker and its client, the SIMD
# check, types, README), at the workspace's version. `npm pack web/pkg` makes the tarball.
cp web/lib/index.js web/lib/index.d.ts web/lib/inline.js web/lib/inline.d.ts web/lib/inline-cpu.js web/lib/inline-cpu.d.ts web/lib/worker.js web/lib/worker-cpu.js web/lib/worker-core.js web/lib/simd.js web/lib/README.md web/pkg/
crate_version=$(awk '/^\[workspace.package\]/{p=1} p && /^version *=/{gsub(/[^0-9.]/, ""); print; exit}' Cargo.toml)
sed "s/@VERSION@/$crate_version/" web/lib/package.json > web/pkg/package.json

for wasm in web/pkg/iftcl_wasm_bg.wasm web/pkg/iftcl_wasm_cpu_bg.wasm; do
  raw=$(stat -c %s "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  awk -v w="$wasm" -v r="$raw" -v g="$gz" 'BEGIN { printf "%s: %.1f MB (%.1f MB gzipped)\n", w, r / 1e6, g / 1e6 }'
done
