#!/usr/bin/env bash
# The quality table of docs/models.md ("Precisions"): each model converted to f16, bf16 and
# int8 with `iftcl convert`, then, against the f32 model on the CPU:
# - the worst cosine over the 24 golden sentences and over the 3,000 STS-B dev sentences
#   (both sides of its 1,500 pairs);
# - the worst cosine to PyTorch's embeddings of the model's reference sentences (the 24 golden
#   ones for all-MiniLM-L6-v2, each fixture's 16 for the tiny models);
# - Spearman x 100 on the 7 STS tasks (average) and STS-B dev (`iftcl eval --dev`).
# Prints a Markdown table (and writes it, with the raw figures, to $OUT, default
# runs/precision-table/).
#
# Usage: scripts/precision-table.sh [MODEL_DIR...]   (default: models/all-MiniLM-L6-v2 and the
# four tiny fixtures). Needs the release build (CARGO_TARGET_DIR, default
# $HOME/.cache/iftcl-target), IFTCL_DATA_DIR (default ../shared/data), IFTCL_GOLDEN and
# IFTCL_GOLDEN_TINY as the tests use them. About 25 minutes on 2 CPU cores, almost all of it
# all-MiniLM-L6-v2's STS evaluations.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}"
iftcl="$target/release/iftcl"
[ -x "$iftcl" ] || { echo "$iftcl not built: cargo build --release --workspace" >&2; exit 1; }
data="${IFTCL_DATA_DIR:-../shared/data}"
golden="${IFTCL_GOLDEN:-../shared/golden/all-MiniLM-L6-v2.json}"
tiny="${IFTCL_GOLDEN_TINY:-../shared/golden/tiny}"
out="${OUT:-runs/precision-table}"
if [ $# -gt 0 ]; then models=("$@"); else models=(models/all-MiniLM-L6-v2 "$tiny"/bert-cls-normalize "$tiny"/roberta "$tiny"/xlm-roberta "$tiny"/mpnet); fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RUST_LOG=warn

# The inputs, one JSON string a line (iftcl embed --jsonl).
python3 - "$golden" "$data/sts/STSBenchmark/sts-dev.csv" "$work" <<'EOF'
import json, sys
golden, dev, work = sys.argv[1:]
with open(f"{work}/golden.jsonl", "w") as f:
    for s in json.load(open(golden))["sentences"]:
        f.write(json.dumps(s) + "\n")
with open(f"{work}/stsb-dev.jsonl", "w") as f:
    for line in open(dev, encoding="utf-8"):
        cols = line.rstrip("\n").split("\t")
        if len(cols) >= 7:
            f.write(json.dumps(cols[5]) + "\n" + json.dumps(cols[6]) + "\n")
EOF

for model in "${models[@]}"; do
  name=$(basename "$model")
  reference="$golden"
  [ -f "$tiny/$name.json" ] && reference="$tiny/$name.json"
  python3 -c 'import json,sys; [print(json.dumps(s)) for s in json.load(open(sys.argv[1]))["sentences"]]' "$reference" > "$work/$name-reference.jsonl"
  for p in f32 f16 bf16 int8; do
    dir="$model"
    if [ "$p" != f32 ]; then
      dir="$work/$name-$p"
      "$iftcl" convert --dtype "$p" "$model" "$dir" >&2
    fi
    stat -c %s "$dir/model.safetensors" > "$out/$name-$p.bytes"
    for set in golden stsb-dev reference; do
      input="$work/$set.jsonl"
      [ "$set" = reference ] && input="$work/$name-reference.jsonl"
      "$iftcl" embed --device cpu --dtype f32 --jsonl --model "$dir" --input "$input" --output "$work/$name-$p-$set.jsonl"
    done
    echo "$name $p: eval" >&2
    "$iftcl" eval --device cpu --dtype f32 --model "$dir" --data "$data/sts" --dev --json "$out/$name-$p-eval.json" > /dev/null
  done
  cp "$work/$name-reference.jsonl" "$out/$name-reference-sentences.jsonl"
  python3 - "$work" "$out" "$name" "$reference" <<'EOF'
import json, math, sys
work, out, name, reference = sys.argv[1:]
def vectors(path):
    return [json.loads(l) for l in open(path)]
def cos(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
want = json.load(open(reference))["embeddings"]
rows = {}
for p in ["f32", "f16", "bf16", "int8"]:
    row = {"bytes": int(open(f"{out}/{name}-{p}.bytes").read())}
    for s in ["golden", "stsb-dev"]:
        a, b = vectors(f"{work}/{name}-{p}-{s}.jsonl"), vectors(f"{work}/{name}-f32-{s}.jsonl")
        assert len(a) == len(b) and len(a) > 0, (p, s, len(a), len(b))
        row[f"worst_cos_f32_{s}"] = min(cos(x, y) for x, y in zip(a, b))
    got = vectors(f"{work}/{name}-{p}-reference.jsonl")
    row["worst_cos_pytorch"] = min(cos(x, y) for x, y in zip(got, want))
    ev = json.load(open(f"{out}/{name}-{p}-eval.json"))
    row["sts_avg"], row["stsb_dev"] = ev["avg"], ev["STS-B-dev"]
    rows[p] = row
json.dump(rows, open(f"{out}/{name}.json", "w"), indent=1)
EOF
done

python3 - "$out" "${models[@]}" <<'EOF' | tee "$out/table.md"
import json, os, sys
out, models = sys.argv[1], sys.argv[2:]
print("| model | precision | model.safetensors | worst cosine to f32: 24 golden | worst cosine to f32: 3,000 STS-B dev | worst cosine to PyTorch | STS avg (7 tasks) | STS-B dev |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for m in models:
    name = os.path.basename(m.rstrip("/"))
    rows = json.load(open(f"{out}/{name}.json"))
    base = rows["f32"]
    for p, r in rows.items():
        size = r["bytes"] / 1e6
        size = f"{size:.1f} MB" if size >= 1 else f"{r['bytes'] / 1e3:.0f} kB"
        d = lambda k: "" if p == "f32" else f" ({r[k] - base[k]:+.2f})"
        cf = lambda k: "1" if p == "f32" else f"{r[k]:.6f}"
        print(f"| {name} | {p} | {size} | {cf('worst_cos_f32_golden')} | {cf('worst_cos_f32_stsb-dev')} | {r['worst_cos_pytorch']:.6f} | {r['sts_avg']:.2f}{d('sts_avg')} | {r['stsb_dev']:.2f}{d('stsb_dev')} |")
EOF
