#!/usr/bin/env bash
# `segsync apply` against the emulator process: wall time, peak memory, create calls and
# state writes for a fresh folder, with the default concurrency and, as the baseline
# measured in the same run, one partition at a time (--max-in-flight 1 --parallelism 1).
# Release builds; the emulator and segsync talk over 127.0.0.1 only.
#
#   bash benchmarks/apply-scale.sh [HOURS=48] [OPERATION_SECONDS=1]
source "$(dirname "$0")/common.sh"
hours=${1:-48}
op_seconds=${2:-1}
now=2026-11-28T00:00:00Z

bench_setup segsync segsync-emulator
emulator_pid=""
cleanup() { [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin/segsync-emulator" --port 0 --api-key bench --operation-seconds "$op_seconds" \
  --rows-per-hour 600 --request-log "$work/requests.jsonl" >"$work/emulator.out" 2>/dev/null &
emulator_pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/emulator.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/emulator.out")

manifest="version: 1
exports:
  - { name: hourly-events, segment: checkout_abandoners, type: events, format: csv, window: { every: 1h, last: ${hours}h, settle: 2h } }
  - { name: hourly-people, segment: power_users, type: individuals, window: { every: 1h, last: ${hours}h, settle: 2h } }"

run() {  # label, extra args...
  local label=$1; shift
  mkdir -p "$work/$label" && printf '%s\n' "$manifest" >"$work/$label/segsync.yaml"
  local before; before=$(grep -c createExport "$work/requests.jsonl" || true)
  (cd "$work/$label" && FULLSTORY_API_URL=$url FULLSTORY_API_KEY=bench /usr/bin/time -v \
     "$bin/segsync" apply --now "$now" --poll-interval 0.25 "$@" >"$work/$label.out" 2>"$work/$label.time")
  local after; after=$(grep -c createExport "$work/requests.jsonl" || true)
  local wall rss serial
  read -r wall rss < <(time_of "$work/$label.time")
  serial=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['serial'])" "$work/$label/.segsync/state.json")
  printf '%-10s wall %7ss  peak RSS %7s KiB  creates %4d  state writes %4d  %s\n' \
    "$label" "$wall" "$rss" $((after - before)) "$serial" "$(tail -1 "$work/$label.out")"
  eval "wall_$label=$wall"
}

echo "segsync apply: 2 exports × $hours hourly partitions, operations take ${op_seconds}s"
run serial --max-in-flight 1 --parallelism 1
run default
echo "default concurrency: $(ratio "$wall_serial" "$wall_default")× faster than one partition at a time"
