#!/usr/bin/env bash
# Transparent huge pages in mimalloc, on and off, for embed, eval and train (issue 32): each
# command runs ROUNDS times with MIMALLOC_ALLOW_THP=1 and =0 alternately, in fresh processes,
# and prints wall, user and system seconds per run, then the medians.
#
#   scripts/dev/allocator-thp.sh [ROUNDS] [COMMAND...]   (default 3 rounds of embed eval train)
#
# The order alternates too (odd rounds with huge pages first, even rounds without first), so a
# machine that gets busier during the run does not favour one setting. The release build must
# exist.
#
# Environment as scripts/test.sh: CARGO_TARGET_DIR, IFTCL_DATA_DIR, IFTCL_MODEL.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
shift || true
[ $# -gt 0 ] && names=("$@") || names=(embed eval train)
bin="${CARGO_TARGET_DIR:-$HOME/.cache/iftcl-target}/release/iftcl"
data="${IFTCL_DATA_DIR:-../shared/data}"
export IFTCL_MODEL="${IFTCL_MODEL:-$(pwd)/models/all-MiniLM-L6-v2}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The 3,000 STS-B dev sentences, one per line, as `bench embed` embeds them.
awk -F'\t' '{print $6; print $7}' "$data/sts/STSBenchmark/sts-dev.csv" > "$work/dev.txt"

declare -A cmds=(
  [embed]="$bin embed --device cpu --input $work/dev.txt --output $work/out.jsonl"
  [eval]="$bin eval --device cpu --data $data/sts --dev"
  [train]="$bin bench train --device cpu --loss twins --warmup 1 --steps 3"
)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-4s %5s %8s %8s %8s %9s\n' command thp round wall_s user_s sys_s maxrss_MB
for name in "${names[@]}"; do
  for r in $(seq "$rounds"); do
    order="1 0"; [ $((r % 2)) -eq 0 ] && order="0 1"
    for thp in $order; do
      /usr/bin/time -f "%e %U %S %M" -o "$work/time" env MIMALLOC_ALLOW_THP=$thp ${cmds[$name]} > "$work/stdout" 2> "$work/stderr" \
        || { cat "$work/stderr" >&2; exit 1; }
      read -r wall user sys rss < "$work/time"
      printf '%-6s %-4s %5s %8s %8s %8s %9d\n' "$name" "$thp" "$r" "$wall" "$user" "$sys" $((rss / 1024))
      echo "$name $thp $wall $user $sys" >> "$work/all"
      if [ "$name" = train ]; then grep -h 'sentences/s' "$work/stdout" | sed "s/^/  thp=$thp: /"; fi
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians (wall / user / sys seconds):"
python3 - "$work/all" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for name in dict.fromkeys(r[0] for r in rows):
    for thp in ("1", "0"):
        sel = [r for r in rows if r[0] == name and r[1] == thp]
        med = [statistics.median(float(r[i]) for r in sel) for i in (2, 3, 4)]
        print(f"  {name:<6} MIMALLOC_ALLOW_THP={thp}: {med[0]:.2f} / {med[1]:.2f} / {med[2]:.2f}")
EOF
