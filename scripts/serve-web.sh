#!/usr/bin/env bash
# Serves the demo page (web/) on http://localhost:${1:-8080}/ with the default model beside it
# (web/model -> models/all-MiniLM-L6-v2). Build the wasm first: scripts/build-wasm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-8080}"
model="${IFTCL_MODEL:-models/all-MiniLM-L6-v2}"
[ -d web/pkg ] || { echo "web/pkg missing: run scripts/build-wasm.sh first" >&2; exit 1; }
[ -f "$model/model.safetensors" ] || ./scripts/fetch-model.sh
ln -sfn "$(cd "$model" && pwd)" web/model
echo "http://localhost:$port/"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory web
