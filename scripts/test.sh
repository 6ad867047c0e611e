#!/usr/bin/env bash
# The README's test command: fetches the default model if absent, builds everything once in the
# release profile (tests reuse the same artifacts), runs every test: Rust, then the wasm API
# and the web demo, then the Tauri example app. Each phase prints `phase NAME: N s` and the
# last line the total (docs/development.md has the table and how to measure it).
#
# Environment: IFTCL_DATA_DIR (default ../shared/data) holds sts/ and corpus/;
# CARGO_TARGET_DIR (default $HOME/.cache/iftcl-target) keeps the build outside the clone,
# CARGO_TARGET_DIR_WASM (default $HOME/.cache/iftcl-wasm-target) the wasm build, IFTCL_TOOLS
# (default $HOME/.cache/iftcl-tools) the tools compiled from crates.io (wasm-bindgen-cli,
# tauri-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}"
# Mesa's Vulkan loader complains on every adapter probe when this is unset (headless machines).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then export XDG_RUNTIME_DIR="$(mktemp -d)"; chmod 700 "$XDG_RUNTIME_DIR"; fi
if [ -z "${IFTCL_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export IFTCL_DATA_DIR="$(cd ../shared/data && pwd)"
fi
started=$(date +%s)
# `phase NAME COMMAND...`: runs COMMAND and prints how long it took.
phase() {
  local name=$1 t
  shift
  t=$(date +%s)
  "$@"
  echo "phase $name: $(( $(date +%s) - t )) s"
}

# Every system package a test needs (Vulkan/lavapipe, WebKitGTK, Chromium, WebKitWebDriver, Xvfb,
# Node), installed through apt when root; otherwise the missing ones are listed and the run
# stops here, not after the Rust tests.
phase system-packages ./scripts/system-packages.sh test
./scripts/fetch-model.sh
export IFTCL_MODEL="$(pwd)/models/all-MiniLM-L6-v2"

# The Tauri example's page, which its build embeds, and the plugin's TypeScript bindings
# (type-checked on the way).
phase tauri-ui ./scripts/build-tauri-ui.sh
# The library's modules import each other in one direction only (no import circle).
python3 scripts/dev/import-cycles.py crates/iftcl/src
phase build cargo build --release --workspace --all-targets

# Three jobs that need no test's result run in the background while the Rust tests run, one
# after another: the browser bundle (web/pkg, in its own build folder,
# wasm-bindgen-cli compiled once per machine), tauri-driver for the app's end-to-end test
# (compiled once per machine into $IFTCL_TOOLS), and the API reference (`cargo doc`, README
# "From Rust", which must build without a warning). Their output is shown once the tests are
# done, and a failure stops the run there.
background_log=$(mktemp)
(
  set -e
  phase wasm-build ./scripts/build-wasm.sh
  phase tauri-driver bash -c './scripts/install-tools.sh tauri-driver >/dev/null'
  phase doc env RUSTDOCFLAGS='-D warnings' cargo doc --release --workspace --no-deps --quiet
) >"$background_log" 2>&1 &
background_job=$!

# The Rust tests: the crates' unit tests, the Tauri plugin's IPC tests and tests/ (one binary,
# tests/main.rs), in two streams at once (the wgpu tests and the others), each a test at a time
# to keep memory and timing sane; each test's time is printed, the slowest listed at the end
# (scripts/rust-tests.sh says how). Then the doc tests.
phase rust-tests ./scripts/rust-tests.sh
phase doc-tests cargo test --release --workspace --doc
# The library example for Rust apps (load, embed, similarity, index, a few fine-tune steps, save).
phase quickstart "$CARGO_TARGET_DIR/release/examples/quickstart" --device cpu "$IFTCL_MODEL" "$(mktemp -d)/tuned"

background_status=0
wait "$background_job" || background_status=$?
cat "$background_log"
[ "$background_status" = 0 ] || { echo "error: a background job (wasm build, tauri-driver, cargo doc) failed (exit $background_status)" >&2; exit "$background_status"; }

# The browser side's tests: the API under Node, the demo page in headless Chromium (web/tests/;
# screenshots in web/test-results/).
phase web-tests bash -c 'cd web && npm ci --no-audit --no-fund --silent && npm test'

# The Tauri example app end to end in a real WebKitGTK window, under Xvfb, driven through
# tauri-driver (installed above) and WebKitWebDriver (Debian's webkit2gtk-driver).
export TAURI_DRIVER="$(./scripts/install-tools.sh tauri-driver)"
phase tauri-e2e bash -c 'cd examples/tauri-notes && npm test'

echo "test.sh finished in $(( $(date +%s) - started )) s"
