#!/usr/bin/env bash
# Ablation table: start model, SimCSE (--loss infonce), + queue and fraternal negatives (twins
# weight 0), full IFTCL (pull Twins Loss, lambda 0.1 = the default, and lambda 1), IFTCL with the
# two-sided Twins form. Same hyper-parameters as the PyTorch reference
# (batch 64, lr 1e-5, max length 32, tau 0.05), seed 13. Prints a Markdown table of the 7 STS
# tasks, their average and STS-B dev, and writes runs/ablation/table.md.
#
#   STEPS=300 DEVICE=cpu scripts/ablation.sh      (STEPS defaults to 300, DEVICE to auto)
#   RUNS="simcse iftcl-l01" scripts/ablation.sh     (a subset; default: all five training runs:
#                                                    simcse queue iftcl-l01 iftcl twosided)
#   IFTCL_BIN=path/to/iftcl scripts/ablation.sh     (a binary built earlier; no build, so the runs of one
#                                                    table share one build while you edit the code)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}"
data="${IFTCL_DATA_DIR:-../shared/data}"
steps="${STEPS:-300}"
device="${DEVICE:-auto}"
seed="${SEED:-13}"
out="${OUT:-runs/ablation}"
runs="${RUNS:-simcse queue iftcl-l01 iftcl twosided}"
./scripts/fetch-model.sh >/dev/null
if [ -n "${IFTCL_BIN:-}" ]; then
  iftcl="$IFTCL_BIN"
  [ -x "$iftcl" ] || { echo "IFTCL_BIN: $iftcl is not an executable file" >&2; exit 2; }
else
  # The whole workspace's feature set (`--workspace`), as scripts/test.sh builds it: with
  # `-p iftcl-cli` alone Cargo unifies fewer features (futures-util's `std` comes from the wasm
  # crate), and the tests would then rebuild burn, CubeCL and wgpu a second time.
  cargo build --release --workspace --bins
  iftcl="$CARGO_TARGET_DIR/release/iftcl"
fi
model=models/all-MiniLM-L6-v2
mkdir -p "$out"
common=(--model "$model" --corpus "$data/corpus/senteval-sentences.txt" --device "$device" --max-steps "$steps"
        --batch-size 64 --lr 1e-5 --max-len 32 --temperature 0.05 --seed "$seed" --eval-every 0
        --eval-data "$data/sts" --quiet)

[ -f "$out/start.json" ] || "$iftcl" eval --model "$model" --device "$device" --data "$data/sts" --dev --json "$out/start.json"
run() {
  local name="$1"; shift
  if [ ! -f "$out/$name.json" ]; then
    # --overwrite: a run whose figures are missing did not finish; start it again.
    "$iftcl" train "${common[@]}" --out "$out/$name" --overwrite "$@"
    "$iftcl" eval --model "$out/$name/best" --device "$device" --data "$data/sts" --dev --json "$out/$name.json"
  fi
}
for name in $runs; do
  case "$name" in
    simcse) run simcse --loss infonce ;;
    queue) run queue --loss twins --twins-weight 0 ;;
    iftcl) run iftcl --loss twins --twins-form pull --margin-scale 0.1 --twins-weight 1 ;;
    iftcl-l01) run iftcl-l01 --loss twins --twins-form pull --margin-scale 0.1 --twins-weight 0.1 ;;
    twosided) run twosided --loss twins --twins-form two-sided --margin-scale 0.1 --twins-weight 1 ;;
    *) echo "RUNS: unknown run '$name' (simcse, queue, iftcl, iftcl-l01, twosided)" >&2; exit 2 ;;
  esac
done

python3 - "$out" "$steps" "$device" "$seed" <<'PY'
import json, os, platform, sys
out, steps, device, seed = sys.argv[1:5]
rows = [("start model (all-MiniLM-L6-v2)", "start"), ("SimCSE (--loss infonce)", "simcse"),
        ("+ queue & fraternal negatives (twins weight 0)", "queue"), ("IFTCL (pull, beta 0.1, lambda 1)", "iftcl"),
        ("IFTCL (pull, beta 0.1, lambda 0.1: the default)", "iftcl-l01"),
        ("IFTCL, two-sided Twins form (beta 0.1, lambda 1)", "twosided")]
tasks = ["STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R", "avg", "STS-B-dev"]
lines = [f"{steps} steps, batch 64, seed {seed}, device {device}, {os.cpu_count()} CPU cores ({platform.machine()})", "",
         "| run | " + " | ".join(tasks) + " |", "|---|" + "---:|" * len(tasks)]
for label, key in rows:
    if not os.path.exists(os.path.join(out, key + ".json")):
        continue
    r = json.load(open(os.path.join(out, key + ".json")))
    lines.append(f"| {label} | " + " | ".join(f"{r[t]:.2f}" for t in tasks) + " |")
text = "\n".join(lines)
open(os.path.join(out, "table.md"), "w").write(text + "\n")
print(text)
PY
