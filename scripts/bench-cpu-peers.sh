#!/usr/bin/env bash
# `iftcl embed` (f32, and --dtype int8) beside what a CPU user picks instead (issue 32), in one run,
# alternating rounds:
# PyTorch sentence-transformers, ONNX Runtime fp32 (the graph with ORT's BERT fusions) and ONNX
# Runtime dynamic int8 (per output channel), all on all-MiniLM-L6-v2, 2 threads each, the 3,000
# STS-B dev sentences in batches of 64. Each contender is a fresh process per round: the whole
# process's wall time, and its start-up + load and encode times as it reports them (for iftcl,
# `iftcl bench embed`'s median); then medians, quality (worst cosine to PyTorch's vectors,
# STS-B dev Spearman x100 from each contender's own vectors) and the ratios to ORT.
#
#   scripts/bench-cpu-peers.sh [ROUNDS]     (default 5; the release build must exist)
#
# The peers install once into $IFTCL_PEERS (default ~/.cache/iftcl-peers: a Python venv from
# PyPI, about 6 GB because PyPI's torch wheel is the CUDA one) and the ONNX files into
# $IFTCL_PEERS/onnx (exported with torch.onnx from the same model folder, then ORT's BERT
# optimizer and quantize_dynamic). Environment as scripts/test.sh: CARGO_TARGET_DIR,
# IFTCL_DATA_DIR, IFTCL_MODEL. Run it on a quiet machine: it prints the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
bin="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}/release/iftcl"
data="${IFTCL_DATA_DIR:-../shared/data}"
model="${IFTCL_MODEL:-$(pwd)/models/all-MiniLM-L6-v2}"
peers="${IFTCL_PEERS:-$HOME/.cache/iftcl-peers}"
py="$peers/venv/bin/python"
[ -x "$bin" ] || { echo "no release build at $bin: cargo build --release --workspace first" >&2; exit 1; }

if [ ! -x "$py" ]; then
  python3 -m venv "$peers/venv"
  "$py" -m pip install -q torch==2.15.0 sentence-transformers==6.3.0 transformers==5.25.0 \
    onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2 numpy
fi
if [ ! -f "$peers/onnx/model-int8.onnx" ]; then
  "$py" scripts/peers/cpu_embed.py export "$model" "$peers/onnx" 2>&1 | tail -1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dev="$data/sts/STSBenchmark/sts-dev.csv"
awk -F'\t' '{print $6; print $7}' "$dev" > "$work/dev.txt"
export PEER_MODEL="$model" PEER_ONNX="$peers/onnx" IFTCL_MODEL="$model"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %5s %8s %10s %9s\n' contender round wall_s startup_s encode_s
for r in $(seq "$rounds"); do
  for c in iftcl iftcl-int8 torch ort-fp32 ort-int8; do
    if [ "${c#iftcl}" != "$c" ]; then
      dtype=f32; [ "$c" = iftcl-int8 ] && dtype=int8
      /usr/bin/time -f "%e" -o "$work/time" "$bin" embed --device cpu --dtype "$dtype" --input "$work/dev.txt" --output "$work/$c.jsonl" 2> "$work/err" \
        || { cat "$work/err" >&2; exit 1; }
      # Start-up + load: the same command with no input (process start, model load, exit).
      : > "$work/empty.txt"
      /usr/bin/time -f "%e" -o "$work/startup" "$bin" embed --device cpu --dtype "$dtype" --input "$work/empty.txt" --output "$work/empty.jsonl" 2> "$work/err" \
        || { cat "$work/err" >&2; exit 1; }
      startup=$(cat "$work/startup")
      "$bin" bench embed --device cpu --dtype "$dtype" --runs 3 --data "$data/sts" > "$work/bench" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
      encode=$(awk '/sentences\/s/ {for (i = 1; i <= NF; i++) if ($(i + 1) == "sentences/s") print 3000 / $i}' "$work/bench")
    else
      /usr/bin/time -f "%e" -o "$work/time" "$py" scripts/peers/cpu_embed.py embed "$c" "$work/dev.txt" "$work/$c.npy" > "$work/out" 2> "$work/err" \
        || { cat "$work/err" >&2; exit 1; }
      startup=$("$py" -c 'import json,sys; print(json.load(sys.stdin)["startup_s"])' < "$work/out")
      encode=$("$py" -c 'import json,sys; print(json.load(sys.stdin)["encode_s"])' < "$work/out")
    fi
    wall=$(cat "$work/time")
    printf '%-9s %5s %8.2f %10.3f %9.2f\n' "$c" "$r" "$wall" "$startup" "$encode"
    echo "$c $wall $startup $encode" >> "$work/all"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" scripts/peers/cpu_embed.py score "$dev" "$work/torch.npy" \
  "$work/iftcl.jsonl" "$work/iftcl-int8.jsonl" "$work/torch.npy" "$work/ort-fp32.npy" "$work/ort-int8.npy" > "$work/quality"
"$py" - "$work/all" "$work/quality" <<'EOF'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
quality = [json.loads(l) for l in open(sys.argv[2])]
names = ["iftcl", "iftcl-int8", "torch", "ort-fp32", "ort-int8"]
label = {"iftcl": "`iftcl embed`", "iftcl-int8": "`iftcl embed --dtype int8`", "torch": "PyTorch sentence-transformers",
         "ort-fp32": "ONNX Runtime fp32 (BERT-fused graph)", "ort-int8": "ONNX Runtime int8 (dynamic, per channel)"}
med = {}
for n in names:
    sel = [r for r in rows if r[0] == n]
    med[n] = [statistics.median(float(r[i]) for r in sel) for i in (1, 2, 3)]
n_sent = 3000
print()
print("| contender | whole process, sentences/s | encode only, sentences/s | start-up + load, s | worst cosine to PyTorch | STS-B dev |")
print("|---|---:|---:|---:|---:|---:|")
for n, q in zip(names, quality):
    wall, startup, encode = med[n]
    print(f"| {label[n]} | {n_sent / wall:.0f} | {n_sent / encode:.0f} | {startup:.2f} | {q['min_cosine_to_ref']:.6f} | {q['sts_b_dev']:.2f} |")
print()
w = {n: n_sent / med[n][0] for n in names}
print(f"whole process, iftcl / ORT fp32: {w['iftcl'] / w['ort-fp32']:.2f}x; iftcl / ORT int8: {w['iftcl'] / w['ort-int8']:.2f}x; "
      f"iftcl / PyTorch: {w['iftcl'] / w['torch']:.2f}x")
print(f"whole process, iftcl int8 / ORT int8: {w['iftcl-int8'] / w['ort-int8']:.2f}x; iftcl int8 / ORT fp32: {w['iftcl-int8'] / w['ort-fp32']:.2f}x; "
      f"iftcl int8 / iftcl f32: {w['iftcl-int8'] / w['iftcl']:.2f}x")
print(f"iftcl whole process / its encode-only: {med['iftcl'][2] / med['iftcl'][0]:.2f}")
EOF
