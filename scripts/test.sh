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

cargo build --release --workspace --all-targets
# Tests share two cores; the model-heavy ones run one at a time to keep memory and timing sane.
cargo test --release --workspace -- --test-threads=1
# The API reference (`cargo doc`, README "From Rust") builds without a warning.
RUSTDOCFLAGS='-D warnings' cargo doc --release --workspace --no-deps

# The browser side: the wasm bundle (web/pkg), then its tests: the API under Node, the demo
# page in headless Chromium (web/tests/; screenshots in web/test-results/).
./scripts/build-wasm.sh
(cd web && npm ci --no-audit --no-fund --silent && npm test)
