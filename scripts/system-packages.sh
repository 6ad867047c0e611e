#!/usr/bin/env bash
# The system packages the README's two commands need, in one list, and what needs each:
#   scripts/system-packages.sh run    what scripts/run.sh needs (the build and wgpu)
#   scripts/system-packages.sh test   what scripts/test.sh needs (the build, wgpu and every test)
# Installs the missing ones through apt when this runs as root on a machine with apt-get (as
# CI and a fresh development VM do); otherwise prints the missing ones with the command that
# installs them and exits 1, so that a test run stops at once instead of failing after the
# Rust tests. Debian/Ubuntu package names.
set -euo pipefail

mode="${1:-}"
# package: what needs it
run_packages=(
  "libvulkan1:the Vulkan loader wgpu opens (GPU or lavapipe)"
  "mesa-vulkan-drivers:lavapipe, a Vulkan device on the CPU, so that wgpu runs where no GPU is"
  "pkg-config:the Tauri crates find WebKitGTK through it"
  "libwebkit2gtk-4.1-dev:the Tauri plugin and the notes app link GTK and WebKitGTK"
)
test_packages=(
  "chromium:the web demo's tests in headless Chromium (web/tests)"
  "webkit2gtk-driver:WebKitWebDriver, which drives the notes app's window in its end-to-end test"
  "xvfb:the X server the notes app's window opens on in its end-to-end test"
)
case "$mode" in
  run) wanted=("${run_packages[@]}") ;;
  test) wanted=("${run_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

# Without dpkg (Fedora, Arch, macOS) nothing here can tell what is installed: say what is
# needed, by its Debian name, and go on; a missing library then stops the build with its own
# error.
if ! command -v dpkg-query >/dev/null; then
  {
    echo "note: no dpkg-query here, so the system packages are not checked; these are needed (Debian names):"
    for entry in "${wanted[@]}"; do echo "  ${entry%%:*}: ${entry#*:}"; done
  } >&2
  command -v npm >/dev/null || echo "  nodejs, npm: the Tauri page's build (esbuild, tsc), wasm-opt for the browser bundle, the web and app tests" >&2
  exit 0
fi

missing=() why=()
for entry in "${wanted[@]}"; do
  pkg=${entry%%:*}
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
    why+=("  $pkg: ${entry#*:}")
  fi
done
# Node and npm build the Tauri page and run the web and app tests; any install of them will do.
if ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
  why+=("  nodejs, npm: the Tauri page's build (esbuild, tsc), wasm-opt for the browser bundle, the web and app tests")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing system packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
{
  echo "missing system packages (scripts/$(basename "$0") $mode):"
  printf '%s\n' "${why[@]}"
  echo "install them with: sudo apt-get install ${missing[*]}"
} >&2
exit 1
