#!/usr/bin/env bash
# Builds .gpu-pack/ (git ignores it): everything scripts/gpu-report.sh needs on a GPU machine
# that can download nothing and takes at most 64 MiB with a call, the repository included.
#
#   scripts/gpu-package.sh          # then, with the device tool (docs/benchmarks.md, On a GPU):
#   run  command: bash .gpu-pack/run.sh --out "$OUT"   carry: [".gpu-pack"]   timeout_s: 600
#
# What goes in: the release iftcl binary (stripped, xz), all-MiniLM-L6-v2 as float16
# safetensors (xz; converted back to float32 there) with its tokenizer and config files, the STS
# data, a slice of the corpus, the golden file, the Vulkan loader's Debian packages, the report
# scripts, and run.sh (scripts/gpu/pack-run.sh), which unpacks and runs it all.
#
# Environment: CARGO_TARGET_DIR, IFTCL_MODEL, IFTCL_DATA_DIR, IFTCL_GOLDEN (as the tests read
# them), PACK_CORPUS_LINES (default 8192), PACK_DEBS (a folder of .debs to take instead of
# downloading), PACK_LIMIT_BYTES (default 64 MiB).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}"
model="${IFTCL_MODEL:-$root/models/all-MiniLM-L6-v2}"
data="${IFTCL_DATA_DIR:-$root/../shared/data}"
golden="${IFTCL_GOLDEN:-$root/../shared/golden/all-MiniLM-L6-v2.json}"
limit="${PACK_LIMIT_BYTES:-67108864}"
pack="$root/.gpu-pack"
for p in "$model/model.safetensors" "$model/tokenizer.json" "$data/sts" "$data/corpus/senteval-sentences.txt" "$golden"; do
  [ -e "$p" ] || { echo "error: $p is missing (see the variables at the top of $0)" >&2; exit 1; }
done
git check-ignore -q .gpu-pack/ || { echo "error: .gpu-pack is not ignored by git (.gitignore)" >&2; exit 1; }
python3 -c 'import numpy' 2>/dev/null || { echo "error: python3 needs numpy here (pip install numpy)" >&2; exit 1; }

# The workspace's feature set, as scripts/run.sh builds it (no second build of burn).
cargo build --release --workspace --bins
rm -rf "$pack"
mkdir -p "$pack/model" "$pack/debs" "$pack/scripts/gpu"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== binary"
strip --strip-all -o "$tmp/iftcl" "$CARGO_TARGET_DIR/release/iftcl"
glibc="$(objdump -T "$tmp/iftcl" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
xz -9 -T2 -c "$tmp/iftcl" > "$pack/iftcl.xz"

echo "== model"
(cd "$model" && find . -type f \( -name '*.json' -o -name 'vocab.txt' \) ! -name 'data_config.json' -print0 | xargs -0 cp --parents -t "$pack/model")
python3 scripts/gpu/safetensors_dtype.py "$model/model.safetensors" "$tmp/model.f16.safetensors" --to f16
python3 scripts/gpu/safetensors_dtype.py "$tmp/model.f16.safetensors" "$tmp/model.f32.safetensors" --to f32
model_sha="$(sha256sum "$tmp/model.f32.safetensors" | cut -d' ' -f1)"
xz -9 -T2 -c "$tmp/model.f16.safetensors" > "$pack/model/model.f16.safetensors.xz"

echo "== data"
mkdir -p "$tmp/data/corpus" "$tmp/data/golden"
cp -r "$data/sts" "$tmp/data/sts"
head -n "${PACK_CORPUS_LINES:-8192}" "$data/corpus/senteval-sentences.txt" > "$tmp/data/corpus/senteval-sentences.txt"
cp "$golden" "$tmp/data/golden/all-MiniLM-L6-v2.json"
tar -C "$tmp/data" -cf - sts corpus golden | xz -9 -T2 > "$pack/data.tar.xz"

echo "== Vulkan loader packages"
debs=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
if [ -n "${PACK_DEBS:-}" ]; then
  cp "$PACK_DEBS"/*.deb "$pack/debs/"
else
  # As the device tool's notes say: amd64 lists of their own, whatever this machine is.
  mkdir -p "$tmp/lists/partial"
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$tmp/lists")
  apt-get "${o[@]}" update -qq
  (cd "$pack/debs" && apt-get "${o[@]}" download "${debs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
fi
for d in "${debs[@]}"; do ls "$pack/debs/${d}_"*.deb >/dev/null 2>&1 || { echo "error: no $d package in $pack/debs" >&2; exit 1; }; done

echo "== scripts"
cp scripts/gpu/*.py scripts/gpu/bert-base-config.json "$pack/scripts/gpu/"
cp scripts/gpu/pack-run.sh "$pack/run.sh"
chmod +x "$pack/run.sh"

# What travels with a device call: the package and the repository's files (tracked, and
# untracked ones git does not ignore; links count as links).
pack_bytes="$(du -sb "$pack" | cut -f1)"
tree_bytes="$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')"
total=$((pack_bytes + tree_bytes))
{
  echo "iftcl GPU package, built $(date -u '+%Y-%m-%d %H:%M UTC') from $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
  echo "iftcl binary: needs glibc ${glibc#GLIBC_} or newer, $(stat -c %s "$tmp/iftcl") bytes stripped, $(stat -c %s "$pack/iftcl.xz") xz"
  echo "model.safetensors (float32, after unpacking) sha256 $model_sha"
  echo "package $pack_bytes bytes + repository files $tree_bytes bytes = $total of $limit"
} > "$pack/MANIFEST.txt"
cat "$pack/MANIFEST.txt"
du -ab "$pack" | sort -n | tail -6
if [ "$total" -gt "$limit" ]; then
  echo "error: $total bytes would travel, over the limit of $limit" >&2
  exit 1
fi
echo "ok: run it on the device with: bash .gpu-pack/run.sh --out \"\$OUT\"   (carry: [\".gpu-pack\"])"
