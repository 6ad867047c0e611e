#!/usr/bin/env bash
# The README's test command: fetches the default model if absent, builds everything once in the
# release profile (tests reuse the same artifacts), runs every test: Rust, then the wasm API
# and the web demo.
#
# Environment: IFTCL_DATA_DIR (default ../shared/data) holds sts/ and corpus/;
# CARGO_TARGET_DIR (default $HOME/.cache/iftcl-target) keeps the build outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}"
# Mesa's Vulkan loader complains on every adapter probe when this is unset (headless machines).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then export XDG_RUNTIME_DIR="$(mktemp -d)"; chmod 700 "$XDG_RUNTIME_DIR"; fi
if [ -z "${IFTCL_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export IFTCL_DATA_DIR="$(cd ../shared/data && pwd)"
fi
./scripts/fetch-model.sh
export IFTCL_MODEL="$(pwd)/models/all-MiniLM-L6-v2"

# The Tauri example's page, which its build embeds, and the plugin's TypeScript bindings
# (type-checked on the way).
./scripts/build-tauri-ui.sh
cargo build --release --workspace --all-targets
# Tests share two cores; the model-heavy ones run one at a time to keep memory and timing sane.
cargo test --release --workspace -- --test-threads=1
# The API reference (`cargo doc`, README "From Rust") builds without a warning.
RUSTDOCFLAGS='-D warnings' cargo doc --release --workspace --no-deps
# The library example for Rust apps (load, embed, similarity, index, a few fine-tune steps, save).
"$CARGO_TARGET_DIR/release/examples/quickstart" --device cpu "$IFTCL_MODEL" "$(mktemp -d)/tuned"

# The browser side: the wasm bundle (web/pkg), then its tests: the API under Node, the demo
# page in headless Chromium (web/tests/; screenshots in web/test-results/).
./scripts/build-wasm.sh
(cd web && npm ci --no-audit --no-fund --silent && npm test)

# The Tauri example app end to end in a real WebKitGTK window, under Xvfb, driven through
# tauri-driver (installed here when missing) and WebKitWebDriver (Debian's webkit2gtk-driver).
tauri_driver_version=2.1.0
if ! cargo install --list | grep -qx "tauri-driver v$tauri_driver_version:"; then
  echo "installing tauri-driver $tauri_driver_version"
  cargo install --quiet --locked tauri-driver --version "$tauri_driver_version"
fi
export TAURI_DRIVER="${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver"
(cd examples/tauri-notes && npm test)
