#!/usr/bin/env bash
# Runs where the package of scripts/gpu-package.sh lands (the GPU machine): unpacks it into a
# scratch folder and runs the report (scripts/gpu/report.py). Needs only bash and python3 with
# numpy (torch and tokenizers too for the PyTorch reference); dpkg where the Vulkan loader is
# missing. From the repository root there:
#
#   bash .gpu-pack/run.sh --out "$OUT"          # full sizes (the device tool's run)
#   bash .gpu-pack/run.sh --smoke --out DIR     # tiny sizes (lavapipe)
#
# Environment: PACK_WORK (scratch, default /tmp/iftcl-pack, emptied first), PACK_VK (auto |
# system | root | private: where the Vulkan loader comes from; auto takes the system's, else
# unpacks the package's .debs into / as root, else into the scratch folder), REPORT_* (sizes,
# device, Python: see scripts/gpu/report.py).
set -euo pipefail
pack="$(cd "$(dirname "$0")" && pwd)"
out=gpu-report
smoke=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=(--smoke) ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    *) echo "usage: $0 [--smoke] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "[pack] $*" >&2; }
work="${PACK_WORK:-/tmp/iftcl-pack}"
rm -rf "$work"
mkdir -p "$work" "$out"
[ -f "$pack/MANIFEST.txt" ] && cat "$pack/MANIFEST.txt" >&2
say "machine: $(uname -m), $(ldd --version 2>/dev/null | head -1), python3 $(python3 -c 'import sys; print(sys.version.split()[0])')"

# 1. The Vulkan loader (wgpu opens libvulkan.so.1), and NVIDIA's driver manifest.
vk="${PACK_VK:-auto}"
if [ "$vk" = auto ]; then
  if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then vk=system
  elif [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then vk=root
  else vk=private; fi
fi
case "$vk" in
  system) ;;
  root) for f in "$pack"/debs/*.deb; do dpkg -x "$f" /; done; ldconfig ;;
  private)
    for f in "$pack"/debs/*.deb; do dpkg -x "$f" "$work/vk"; done
    export LD_LIBRARY_PATH="$work/vk/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  *) echo "error: PACK_VK=$vk is not one of auto, system, root, private" >&2; exit 2 ;;
esac
say "Vulkan loader: $vk"
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ ! -f "$nv_icd" ]; then  # elsewhere on other images, if anywhere
  nv_icd="$(find /usr/local/nvidia /usr/share/vulkan /etc/vulkan -maxdepth 4 -name 'nvidia_icd*.json' 2>/dev/null | head -1 || true)"
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -n "$nv_icd" ] && [ -f "$nv_icd" ]; then
  export VK_DRIVER_FILES="$nv_icd" __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  say "VK_DRIVER_FILES=$nv_icd"
fi
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then export XDG_RUNTIME_DIR="$work/xdg"; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"; fi

# 2. The binary, the model (float16 in the package, float32 here) and the data.
python3 - "$pack" "$work" <<'PY'
import hashlib, lzma, os, shutil, sys, tarfile
pack, work = sys.argv[1:3]
def unxz(src, dst):
    with lzma.open(src) as s, open(dst, "wb") as d:
        shutil.copyfileobj(s, d, 1 << 20)
os.makedirs(f"{work}/bin")
unxz(f"{pack}/iftcl.xz", f"{work}/bin/iftcl")
os.chmod(f"{work}/bin/iftcl", 0o755)
shutil.copytree(f"{pack}/model", f"{work}/model", ignore=shutil.ignore_patterns("*.xz"))
unxz(f"{pack}/model/model.f16.safetensors.xz", f"{work}/model.f16.safetensors")
with tarfile.open(f"{pack}/data.tar.xz") as t:
    t.extractall(f"{work}/data", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
PY
python3 "$pack/scripts/gpu/safetensors_dtype.py" "$work/model.f16.safetensors" "$work/model/model.safetensors" --to f32 >&2
want="$(sed -n 's/^model.safetensors (float32, after unpacking) sha256 //p' "$pack/MANIFEST.txt")"
got="$(sha256sum "$work/model/model.safetensors" | cut -d' ' -f1)"
if [ -n "$want" ] && [ "$want" != "$got" ]; then
  echo "error: the unpacked model.safetensors has sha256 $got, the package says $want" >&2; exit 1
fi
say "unpacked into $work: $(du -sh "$work" | cut -f1)"

# 3. The report: report.json, report.md, log.txt into $out.
exec python3 "$pack/scripts/gpu/report.py" --iftcl "$work/bin/iftcl" --model "$work/model" --data "$work/data" \
  --golden "$work/data/golden/all-MiniLM-L6-v2.json" --out "$out" --work "$work/scratch" "${smoke[@]}"
