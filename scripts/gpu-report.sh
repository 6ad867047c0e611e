#!/usr/bin/env bash
# One prepared measurement of iftcl on whatever GPU wgpu sees: `iftcl devices`, check-device,
# golden parity, the 7 STS tasks and STS-B dev (GPU and CPU, timed), bench embed at batch 64
# and 256, bench train (IFTCL and SimCSE, batch 64 and 256, length 32) for all-MiniLM-L6-v2 and
# a BERT-base-sized encoder from random weights, bench loss (fused vs plain), each beside a
# PyTorch reference run on the same machine when torch imports (scripts/gpu/torch_reference.py),
# else beside fixed H100 figures. Writes report.json, report.md and log.txt into --out.
#
#   scripts/gpu-report.sh [--smoke] [--out DIR]
#
# --smoke (or SMOKE=1): tiny sizes, so that a software GPU (lavapipe) finishes in minutes.
# Environment: IFTCL_BIN (default $CARGO_TARGET_DIR/release/iftcl), IFTCL_MODEL, IFTCL_DATA_DIR,
# IFTCL_GOLDEN (as the tests read them), REPORT_DEVICE (default gpu), REPORT_PYTHON (the Python
# with torch, default python3), REPORT_<SIZE> overrides of the sizes in scripts/gpu/report.py.
# The GPU machine runs this through the package of scripts/gpu-package.sh (docs/benchmarks.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
smoke="${SMOKE:-0}"
out=gpu-report
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    *) echo "usage: $0 [--smoke] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
bin="${IFTCL_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}/release/iftcl}"
[ -x "$bin" ] || { echo "error: no iftcl binary at $bin (build it: cargo build --release --workspace --bins, or set IFTCL_BIN)" >&2; exit 1; }
# Mesa's Vulkan loader complains on every adapter probe when this is unset (headless machines).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then export XDG_RUNTIME_DIR="$(mktemp -d)"; chmod 700 "$XDG_RUNTIME_DIR"; fi
args=(--iftcl "$bin" --out "$out"
  --model "${IFTCL_MODEL:-$root/models/all-MiniLM-L6-v2}"
  --data "${IFTCL_DATA_DIR:-$root/../shared/data}"
  --golden "${IFTCL_GOLDEN:-$root/../shared/golden/all-MiniLM-L6-v2.json}")
[ "$smoke" = 1 ] && args+=(--smoke)
exec python3 "$root/scripts/gpu/report.py" "${args[@]}"
