#!/usr/bin/env bash
# `segsync plan` at scale: 100 exports × 365 daily partitions with a full state file.
# Release build; wall time and peak memory from /usr/bin/time -v. Baselines measured in
# the same run: `segsync validate` (manifest only) and `plan` on an empty state (no
# records, no files), so the ratios show what state, lockfile and folder scan cost.
#
#   bash benchmarks/plan-scale.sh [EXPORTS=100] [DAYS=365]
set -euo pipefail
cd "$(dirname "$0")/.."
exports=${1:-100}
days=${2:-365}
now=2026-11-28T00:00:00Z
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }

swift build -c release --product segsync >/dev/null
swift build -c release --product segsync-fixture >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin/segsync-fixture" "$work/full" "$exports" "$days" "$now"
mkdir -p "$work/empty" && cp "$work/full/segsync.yaml" "$work/empty/"

measure() {  # label, dir, args...
  local label=$1 dir=$2; shift 2
  local log="$work/$label.time"
  (cd "$dir" && /usr/bin/time -v "$bin/segsync" "$@" >"$work/$label.out" 2>"$log") || {
    status=$?; [ $status -eq 2 ] || { cat "$log"; exit $status; }; }
  local wall rss
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  printf '%-28s wall %8s   peak RSS %8s KiB   %s\n' "$label" "$wall" "$rss" "$(tail -1 "$work/$label.out")"
  echo "$label $wall $rss" >>"$work/results"
}

echo "segsync plan, $exports exports × $days daily partitions ($((exports * days)) partitions)"
measure validate "$work/full" validate
measure plan-empty-state "$work/empty" plan --now "$now" --detailed-exitcode
measure plan-full-state "$work/full" plan --now "$now" --detailed-exitcode
measure plan-full-state-checksum "$work/full" plan --now "$now" --checksum --detailed-exitcode

python3 - "$work/results" <<'PY'
import sys
def seconds(text):
    parts = [float(p) for p in text.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rows = {l.split()[0]: (seconds(l.split()[1]), int(l.split()[2])) for l in open(sys.argv[1])}
base = rows["plan-empty-state"]
for name in ("plan-full-state", "plan-full-state-checksum"):
    t, m = rows[name]
    print(f"{name}: {t / max(base[0], 1e-3):.2f}× the time and {m / base[1]:.2f}× the memory of plan on an empty state")
PY
