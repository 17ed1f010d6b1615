# Shared by the benchmark scripts: source it, then call bench_setup with the products
# to build. Gives $bin (release binaries) and $work (a temporary folder, removed on exit
# by bench_cleanup, which scripts may extend).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bench_setup() {  # products...
  [ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
  local product
  for product in "$@"; do swift build -c release --product "$product" >/dev/null; done
  bin=$(swift build -c release --show-bin-path)
  work=$(mktemp -d)
}

# "SECONDS KIB" from a /usr/bin/time -v log: wall clock time and peak resident memory.
time_of() {  # log
  awk '/Elapsed \(wall clock\)/ { n = split($NF, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
       /Maximum resident set size/ { rss = $NF }
       END { printf "%.2f %d\n", s, rss }' "$1"
}

# "2.50" for numerator / denominator.
ratio() {  # numerator denominator
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 0.001) }'
}
