#!/usr/bin/env bash
# Builds the JavaScript of the Tauri side: the plugin's TypeScript bindings (type-checked by
# `tsc`, into crates/tauri-plugin-iftcl/dist-js/) and the notes example's page (bundled by
# esbuild into examples/tauri-notes/dist/, which the app's Rust build embeds: run this before
# `cargo build --workspace`). Needs Node and npm; packages from the lock files.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd crates/tauri-plugin-iftcl && npm ci --no-audit --no-fund --silent && npm run --silent build)
(cd examples/tauri-notes && npm ci --no-audit --no-fund --silent && npm run --silent build)
echo "built crates/tauri-plugin-iftcl/dist-js and examples/tauri-notes/dist"
