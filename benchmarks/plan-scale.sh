#!/usr/bin/env bash
# `segsync plan` at scale: 100 exports × 365 daily partitions with a full state file.
# Release build; wall time and peak memory from /usr/bin/time -v. Baselines measured in
# the same run: `segsync validate` (manifest only) and `plan` on an empty state (no
# records, no files), so the ratios show what state, lockfile and folder scan cost.
#
#   bash benchmarks/plan-scale.sh [EXPORTS=100] [DAYS=365]
source "$(dirname "$0")/common.sh"
exports=${1:-100}
days=${2:-365}
now=2026-11-28T00:00:00Z

bench_setup segsync segsync-fixture
trap 'rm -rf "$work"' EXIT

"$bin/segsync-fixture" "$work/full" "$exports" "$days" "$now"
mkdir -p "$work/empty" && cp "$work/full/segsync.yaml" "$work/empty/"

measure() {  # label, dir, args...
  local label=$1 dir=$2; shift 2
  local log="$work/$label.time"
  (cd "$dir" && /usr/bin/time -v "$bin/segsync" "$@" >"$work/$label.out" 2>"$log") || {
    status=$?; [ $status -eq 2 ] || { cat "$log"; exit $status; }; }
  local wall rss
  read -r wall rss < <(time_of "$log")
  printf '%-28s wall %7ss   peak RSS %8s KiB   %s\n' "$label" "$wall" "$rss" "$(tail -1 "$work/$label.out")"
  eval "wall_${label//-/_}=$wall rss_${label//-/_}=$rss"
}

echo "segsync plan, $exports exports × $days daily partitions ($((exports * days)) partitions)"
measure validate "$work/full" validate
measure plan-empty-state "$work/empty" plan --now "$now" --detailed-exitcode
measure plan-full-state "$work/full" plan --now "$now" --detailed-exitcode
measure plan-full-state-checksum "$work/full" plan --now "$now" --checksum --detailed-exitcode

for name in plan_full_state plan_full_state_checksum; do
  w="wall_$name" r="rss_$name"
  echo "${name//_/-}: $(ratio "${!w}" "$wall_plan_empty_state")× the time and $(ratio "${!r}" "$rss_plan_empty_state")× the memory of plan on an empty state"
done
