#!/usr/bin/env bash
# Lays the notes example app out as an installed Linux app under PREFIX, with its model
# bundled: PREFIX/bin/iftcl-notes, and PREFIX/lib/iftcl notes/model/ (the app's resource folder,
# where Tauri looks for an installed app's resources: <exe>/../lib/<productName>) holding MODEL
# with its weights in float16 (45 MB for all-MiniLM-L6-v2 instead of 91 MB; quality in
# docs/models.md). Started from there, the app opens that model on its first start, with no
# IFTCL_MODEL and no folder to choose.
#
#   scripts/package-notes.sh PREFIX [MODEL]     (MODEL: default models/all-MiniLM-L6-v2)
#
# Needs the release build (scripts/build-tauri-ui.sh, then cargo build --release --workspace).
# A .deb or AppImage made by Tauri's bundler has the same layout.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:?usage: scripts/package-notes.sh PREFIX [MODEL]}
model=${2:-models/all-MiniLM-L6-v2}
release=${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}/release
for bin in iftcl-notes iftcl; do
  [ -x "$release/$bin" ] || { echo "error: $release/$bin is not built (scripts/build-tauri-ui.sh, then cargo build --release --workspace)" >&2; exit 1; }
done
[ -f "$model/config.json" ] || { echo "error: no model at $model (scripts/fetch-model.sh)" >&2; exit 1; }
resources="$prefix/lib/iftcl notes"
mkdir -p "$prefix/bin" "$resources"
# A hard link where the build folder is on the same file system (the binary is ~140 MB).
ln -f "$release/iftcl-notes" "$prefix/bin/iftcl-notes" 2>/dev/null || cp -f "$release/iftcl-notes" "$prefix/bin/iftcl-notes"
overwrite=()
[ -f "$resources/model/config.json" ] && overwrite=(--overwrite)
RUST_LOG=warn "$release/iftcl" convert --dtype f16 "${overwrite[@]}" "$model" "$resources/model" >/dev/null
echo "$prefix/bin/iftcl-notes, with the model in f16 in $resources/model ($(du -sh "$resources/model" | cut -f1))"
