#!/usr/bin/env bash
# The Rust tests (scripts/test.sh's `rust-tests` phase): the crates' unit tests, the Tauri
# plugin's IPC tests and tests/ (one binary, tests/main.rs), in two streams at once, each a test
# at a time:
#   - the tests that run on wgpu (lavapipe here): every test whose path holds `wgpu` or
#     `fused_loss::`, in one process per test binary, so that they share CubeCL's compiled and
#     tuned kernels;
#   - every other test (`--skip` the same words), most of them CPU runs of a child `iftcl`.
# The same filter splits every binary, so each test runs exactly once, in one of the two. On
# lavapipe the wgpu stream keeps one to one and a half cores busy; the other stream fills the
# rest. Each test's line ends with its time (libtest's --report-time) and the slowest are listed
# at the end (scripts/dev/test-times.py). The stable harness takes --report-time with
# RUSTC_BOOTSTRAP=1 in the test binaries' environment, which the runner set below gives them
# alone: set for cargo, it would rebuild every crate whose build script watches it (proc-macro2
# and what depends on it).
#
#   scripts/rust-tests.sh   (CARGO_TARGET_DIR as scripts/test.sh sets it; after its build)
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${host}_RUNNER=env RUSTC_BOOTSTRAP=1"
on_wgpu=(wgpu fused_loss::)
skip_wgpu=()
for word in "${on_wgpu[@]}"; do skip_wgpu+=(--skip "$word"); done

tests() {
  cargo test --release --workspace --lib --bins --tests -- --test-threads=1 -Z unstable-options --report-time "$@"
}
logs=$(mktemp -d)
echo "rust-tests: the wgpu stream runs in the background (its output follows the other's)"
tests "${on_wgpu[@]}" >"$logs/wgpu.log" 2>&1 &
wgpu_job=$!
cpu_status=0
tests "${skip_wgpu[@]}" 2>&1 | tee "$logs/other.log" || cpu_status=${PIPESTATUS[0]}
wgpu_status=0
wait "$wgpu_job" || wgpu_status=$?
echo "== the wgpu stream"
cat "$logs/wgpu.log"
python3 scripts/dev/test-times.py "$logs/other.log" "$logs/wgpu.log" --top 25 || true
if [ "$cpu_status" != 0 ] || [ "$wgpu_status" != 0 ]; then
  echo "error: the Rust tests failed (other stream: exit $cpu_status, wgpu stream: exit $wgpu_status)" >&2
  exit 1
fi
