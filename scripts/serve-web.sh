#!/usr/bin/env bash
# Serves the demo page (web/) on http://localhost:${1:-8080}/ with the default model beside it
# in half precision, the browser's default download: web/model -> models/converted/
# all-MiniLM-L6-v2-f16, written by `iftcl convert --dtype f16` (again when the model is newer).
# IFTCL_DTYPE=bf16|int8 serves that precision instead, f32 the model folder as it is. Build
# the wasm first: scripts/build-wasm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-8080}"
model="${IFTCL_MODEL:-models/all-MiniLM-L6-v2}"
dtype="${IFTCL_DTYPE:-f16}"
[ -d web/pkg ] || { echo "web/pkg missing: run scripts/build-wasm.sh first" >&2; exit 1; }
[ -f "$model/model.safetensors" ] || ./scripts/fetch-model.sh
if [ "$dtype" != f32 ]; then
  served="models/converted/$(basename "$model")-$dtype"
  iftcl="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}/release/iftcl"
  [ -x "$iftcl" ] || CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}" cargo build --release --workspace --bin iftcl
  if [ ! -f "$served/model.safetensors" ] || [ "$model/model.safetensors" -nt "$served/model.safetensors" ]; then
    mkdir -p models/converted
    "$iftcl" convert --overwrite --dtype "$dtype" "$model" "$served"
  fi
  model="$served"
fi
ln -sfn "$(cd "$model" && pwd)" web/model
echo "http://localhost:$port/ (model: $model)"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory web
