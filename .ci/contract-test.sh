#!/usr/bin/env bash
# Checks the emulator against the API contract (shared/api/segments-export-openapi.yml)
# with schemathesis: every answer must be documented, well-typed and never a 5xx.
#
# Runs in positive mode (valid requests only): the contract documents no 400 for
# listing segments, so an invalid `limit` (which the emulator rightly refuses with 400)
# would be reported as an undocumented status.
set -euo pipefail

root="$(git rev-parse --show-toplevel)"
spec="$root/../shared/api/segments-export-openapi.yml"
venv="${SCHEMATHESIS_VENV:-/tmp/st-venv}"
examples="${CONTRACT_MAX_EXAMPLES:-40}"
api_key="contract-test-key"

if [ ! -f "$spec" ]; then
    echo "contract-test: the API contract is missing at $spec" >&2
    exit 1
fi

if [ ! -x "$venv/bin/st" ]; then
    echo "contract-test: installing schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q schemathesis
fi
echo "contract-test: $("$venv/bin/st" --version)"

cd "$root"
swift build --product segsync-emulator
bin="$(swift build --show-bin-path)/segsync-emulator"

workdir="$(mktemp -d)"
emulator_pid=""
cleanup() {
    if [ -n "$emulator_pid" ] && kill -0 "$emulator_pid" 2>/dev/null; then
        kill "$emulator_pid"
        wait "$emulator_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

# No fault rates: the contract test checks conformance, not resilience.
"$bin" --port 0 --api-key "$api_key" --operation-seconds 0 >"$workdir/emulator.out" 2>"$workdir/emulator.err" &
emulator_pid=$!

port=""
for _ in $(seq 1 300); do
    if line="$(head -n 1 "$workdir/emulator.out" 2>/dev/null)" && [[ "$line" == "listening on http://"* ]]; then
        port="${line##*:}"
        break
    fi
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
        echo "contract-test: the emulator exited before listening:" >&2
        cat "$workdir/emulator.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "contract-test: the emulator did not report its port within 30 s" >&2
    exit 1
fi
echo "contract-test: emulator listening on port $port"

# From the scratch folder: schemathesis keeps a cache in its working directory.
cd "$workdir"
"$venv/bin/st" run "$spec" \
    --url "http://127.0.0.1:$port" \
    --header "Authorization: Basic $api_key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --mode positive \
    --max-examples "$examples" \
    --seed 20261128 \
    --workers 1 \
    --request-timeout 20
