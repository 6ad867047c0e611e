#!/usr/bin/env bash
# Installs a tool that test.sh needs and that no reachable registry has prebuilt for this machine,
# pinned, once per machine and version, and prints the path of its binary:
#   scripts/install-tools.sh wasm-bindgen   wasm-bindgen-cli of the version of the wasm-bindgen
#                                           crate in Cargo.lock (scripts/build-wasm.sh)
#   scripts/install-tools.sh tauri-driver   tauri-driver 2.1.0 (the Tauri app's end-to-end test)
#   scripts/install-tools.sh wasm-opt       binaryen's wasm-opt 132 from npm (the `binaryen`
#                                           package: binaryen compiled to wasm, run by Node;
#                                           scripts/build-wasm.sh shrinks the CPU-only module)
#
# IFTCL_TOOLS (default $HOME/.cache/iftcl-tools): outside the clone, kept between runs on one
# machine like the build folders; bin/ holds the binaries, build/ Cargo's build folder (a new
# version recompiles only what changed), binaryen-VERSION/ npm's binaryen. No reachable registry
# has the two Rust tools prebuilt in a form that works here (docs/development.md#tools), so they
# are compiled once per machine; binaryen's native releases are not reachable either, and npm's
# package, compiled to wasm, runs wherever Node does. wasm-bindgen-cli
# goes without its default `rustls-tls` feature: TLS serves only wasm-bindgen-test-runner's
# downloads, which this project does not use, and leaving it out saves compiling ring and rustls.
# The two compile at opt-level 1 (Cargo's release profile is 3): they run for seconds per test run,
# and level 1 compiles in less CPU time (figures in docs/development.md#tools).
set -euo pipefail
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1
cd "$(dirname "$0")/.."
tools="${IFTCL_TOOLS:-$HOME/.cache/iftcl-tools}"

case "${1:-}" in
  wasm-bindgen)
    version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
    bin="$tools/bin/wasm-bindgen"
    if [ ! -x "$bin" ] || [ "$("$bin" --version | awk '{print $2}')" != "$version" ]; then
      echo "installing wasm-bindgen-cli $version into $tools" >&2
      CARGO_TARGET_DIR="$tools/build" cargo install --quiet --force --no-default-features \
        --root "$tools" wasm-bindgen-cli --version "=$version" >&2
    fi
    echo "$bin"
    ;;
  tauri-driver)
    version=2.1.0
    bin="$tools/bin/tauri-driver"
    if [ ! -x "$bin" ] || ! grep -q "^\"tauri-driver $version " "$tools/.crates.toml" 2>/dev/null; then
      echo "installing tauri-driver $version into $tools" >&2
      CARGO_TARGET_DIR="$tools/build" cargo install --quiet --locked --force --root "$tools" tauri-driver --version "=$version" >&2
    fi
    echo "$bin"
    ;;
  wasm-opt)
    version=132.0.0
    dir="$tools/binaryen-$version"
    bin="$dir/node_modules/.bin/wasm-opt"
    if [ ! -x "$bin" ]; then
      echo "installing binaryen $version (npm) into $dir" >&2
      rm -rf "$dir.partial" && mkdir -p "$dir.partial"
      npm install --prefix "$dir.partial" --no-audit --no-fund --silent "binaryen@$version" >&2
      rm -rf "$dir" && mv "$dir.partial" "$dir"
    fi
    echo "$bin"
    ;;
  *)
    echo "usage: $0 wasm-bindgen|tauri-driver|wasm-opt" >&2
    exit 2
    ;;
esac
