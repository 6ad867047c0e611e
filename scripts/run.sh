#!/usr/bin/env bash
# The README's main job, end to end on whatever device this machine has:
#   fetch all-MiniLM-L6-v2 -> build -> evaluate the 7 STS tasks -> train with IFTCL on the
#   corpus -> evaluate again -> print the before/after table and where the model and curves are.
#
# Environment:
#   IFTCL_DATA_DIR  data folder with sts/ and corpus/ (default ../shared/data: sts/ in SentEval's layout
#                   and corpus/senteval-sentences.txt)
#   IFTCL_STEPS     training steps (default: 100 on the CPU, one epoch = 821 steps on a GPU)
#   IFTCL_DEVICE    auto | cpu | gpu | gpu:N (default auto)
#   IFTCL_OUT       output folder (default runs/main; each run replaces the last one's checkpoints)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}"
# Mesa's Vulkan loader complains on every adapter probe when this is unset (headless machines).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then export XDG_RUNTIME_DIR="$(mktemp -d)"; chmod 700 "$XDG_RUNTIME_DIR"; fi
data="${IFTCL_DATA_DIR:-../shared/data}"
out="${IFTCL_OUT:-runs/main}"
device="${IFTCL_DEVICE:-auto}"
[ -d "$data/sts" ] || { echo "error: no STS data in $data/sts (set IFTCL_DATA_DIR to a folder with sts/ in SentEval's layout and corpus/)" >&2; exit 1; }
[ -f "$data/corpus/senteval-sentences.txt" ] || { echo "error: no corpus at $data/corpus/senteval-sentences.txt" >&2; exit 1; }

# System packages (scripts/system-packages.sh says what needs each), installed through apt where
# this runs as root: the Vulkan loader and Mesa's drivers, so that wgpu sees a GPU (or lavapipe);
# WebKitGTK's development files and Node, so that the build below is exactly scripts/test.sh's
# (next comment). Elsewhere it lists what is missing, and the build goes on without them.
./scripts/system-packages.sh run || true

./scripts/fetch-model.sh
# scripts/test.sh's build: the whole workspace, every target, so that test.sh after this
# compiles no dependency again. The Tauri plugin and its example app link GTK and WebKitGTK
# (libwebkit2gtk-4.1-dev) and embed the app's page (built with npm); where those are missing
# the build leaves the two crates out, and as they turn on more features of shared dependencies
# (serde, uuid, regex, ...), test.sh will then compile burn, CubeCL and wgpu once more.
if pkg-config --exists webkit2gtk-4.1 2>/dev/null && command -v npm >/dev/null; then
  ./scripts/build-tauri-ui.sh
  cargo build --release --workspace --all-targets
else
  echo "note: WebKitGTK (pkg-config webkit2gtk-4.1) or npm is missing, so this build leaves out the Tauri crates; scripts/test.sh, which needs them, will compile the dependency tree once more (about 26 minutes on 2 cores). apt-get install libwebkit2gtk-4.1-dev nodejs npm avoids that." >&2
  cargo build --release --workspace --all-targets --exclude tauri-plugin-iftcl --exclude iftcl-notes
fi
iftcl="$CARGO_TARGET_DIR/release/iftcl"
model=models/all-MiniLM-L6-v2
mkdir -p "$out"

"$iftcl" devices
picked=$("$iftcl" devices | sed -n 's/^auto -> //p')
if [ "$device" = auto ] && [[ "$picked" == cpu* ]]; then steps="${IFTCL_STEPS:-100}"; else steps="${IFTCL_STEPS:-821}"; fi

echo "== STS before training ($model)"
"$iftcl" eval --model "$model" --device "$device" --data "$data/sts" --dev --json "$out/before.json"

echo "== IFTCL training: $steps steps on $device"
"$iftcl" train --model "$model" --corpus "$data/corpus/senteval-sentences.txt" --out "$out" \
  --device "$device" --max-steps "$steps" --eval-every 50 --eval-data "$data/sts" --overwrite

echo "== STS after training ($out/best)"
"$iftcl" eval --model "$out/best" --device "$device" --data "$data/sts" --dev --json "$out/after.json"

python3 - "$out/before.json" "$out/after.json" <<'PY'
import json, sys
b, a = (json.load(open(p)) for p in sys.argv[1:3])
print(f"\n{'task':<10} {'before':>8} {'after':>8} {'delta':>7}")
order = ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R", "avg", "STS-B-dev"]
for k in [t for t in order if t in b]:
    print(f"{k:<10} {b[k]:>8.2f} {a[k]:>8.2f} {a[k]-b[k]:>+7.2f}")
PY
echo
echo "trained model: $out/best   (sentence-transformers layout)"
echo "checkpoint:    $out/last   (resume with: iftcl train --resume $out/last --out $out)"
echo "curves:        $out/curves.svg   metrics: $out/metrics.jsonl"
