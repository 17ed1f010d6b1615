#!/usr/bin/env bash
# Reading the whole state of 100 exports × 365 daily partitions (36,500 records) from
# each engine, best of 5, release build: SQLite beside the manifest, and PostgreSQL on
# loopback (SEGSYNC_DATABASE_URL, or a throwaway server from .ci/postgres). The ratio
# is PostgreSQL ÷ SQLite, measured in the same run. Then a no-op `plan` on each, which
# reads neither segsync.lock nor SHA256SUMS while they are as segsync wrote them.
#
#   bash benchmarks/state-load.sh [EXPORTS=100] [DAYS=365]
source "$(dirname "$0")/common.sh"
exports=${1:-100}
days=${2:-365}
now=2026-11-28T00:00:00Z

bench_setup segsync segsync-fixture
pg_dir=
cleanup() { [ -n "$pg_dir" ] && bash .ci/postgres stop "$pg_dir"; rm -rf "$work"; }
trap cleanup EXIT
if [ -z "${SEGSYNC_DATABASE_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/segsync-bench-pg.XXXXXX)
  SEGSYNC_DATABASE_URL=$(bash .ci/postgres start "$pg_dir")
fi
export SEGSYNC_DATABASE_URL

workspace="bench-$$"
"$bin/segsync-fixture" "$work/sqlite" "$exports" "$days" "$now" >/dev/null
SEGSYNC_FIXTURE_WORKSPACE=$workspace "$bin/segsync-fixture" "$work/postgres" "$exports" "$days" "$now" >/dev/null

read -r sqlite_load count < <("$bin/segsync-fixture" --load "$work/sqlite")
read -r pg_load _ < <("$bin/segsync-fixture" --load "$work/postgres")
echo "state load, $count partitions, best of 5"
printf '  %-34s %7ss   (goal < 0.2 s)\n' "SQLite (.segsync/state.sqlite)" "$sqlite_load"
printf '  %-34s %7ss   %s× SQLite (goal ≤ 2×)\n' "PostgreSQL on loopback" "$pg_load" "$(ratio "$pg_load" "$sqlite_load")"

for engine in sqlite postgres; do
  dir="$work/$engine"
  (cd "$dir" && "$bin/segsync" apply --now "$now" >/dev/null)   # a no-op apply records the lockfile mark
  (cd "$dir" && strace -f -e trace=openat -o "$work/$engine.strace" "$bin/segsync" plan --now "$now" --offline >/dev/null 2>&1) || true
  /usr/bin/time -v "$bin/segsync" plan --now "$now" --offline -f "$dir/segsync.yaml" >/dev/null 2>"$work/$engine.time"
  read -r wall rss < <(time_of "$work/$engine.time")
  reads=$(grep -cE 'segsync\.lock"|SHA256SUMS"' "$work/$engine.strace" 2>/dev/null || echo "?")
  printf '  no-op plan on %-20s wall %5ss   peak RSS %7s KiB   opens of segsync.lock/SHA256SUMS: %s\n' "$engine" "$wall" "$rss" "$reads"
done
