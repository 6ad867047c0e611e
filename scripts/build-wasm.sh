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
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
wasm_bindgen="$(./scripts/install-tools.sh wasm-bindgen)"

target_dir="${CARGO_TARGET_DIR_WASM:-$HOME/.cache/iftcl-wasm-target}"
# getrandom's browser source (crates/iftcl-wasm/Cargo.toml enables it for every version).
# simd128: 128-bit wasm SIMD, which every current browser runs (Chrome 91, Firefox 89,
# Safari 16.4); the CPU backend's matrix kernels (gemm) and LLVM's loop vectoriser use it.
# web/lib/simd.js checks for it before the module loads and says so when it is missing.
RUSTFLAGS='--cfg getrandom_backend="wasm_js" -C target-feature=+simd128' CARGO_TARGET_DIR="$target_dir" \
  cargo build --profile wasm -p iftcl-wasm --target wasm32-unknown-unknown
rm -rf web/pkg
strip_names=(--remove-name-section --remove-producers-section)
if [ "${WASM_KEEP_NAMES:-0}" = 1 ]; then strip_names=(); fi
"$wasm_bindgen" --target web --typescript "${strip_names[@]}" --out-dir web/pkg "$target_dir/wasm32-unknown-unknown/wasm/iftcl_wasm.wasm"
# The npm package around wasm-bindgen's output (web/lib/: the worker and its client, the SIMD
# check, types, README), at the workspace's version. `npm pack web/pkg` makes the tarball.
cp web/lib/index.js web/lib/index.d.ts web/lib/inline.js web/lib/inline.d.ts web/lib/worker.js web/lib/simd.js web/lib/README.md web/pkg/
crate_version=$(awk '/^\[workspace.package\]/{p=1} p && /^version *=/{gsub(/[^0-9.]/, ""); print; exit}' Cargo.toml)
sed "s/@VERSION@/$crate_version/" web/lib/package.json > web/pkg/package.json

wasm=web/pkg/iftcl_wasm_bg.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
awk -v r="$raw" -v g="$gz" 'BEGIN { printf "web/pkg/iftcl_wasm_bg.wasm: %.1f MB (%.1f MB gzipped)\n", r / 1e6, g / 1e6 }'
