#!/usr/bin/env bash
# The milter path: greylag's decisions/s and latency through its milter
# listener (`greylag bench-milter`: per message connect, MAIL and RCPT in one
# write, wait for the RCPT reply, abort, as Postfix 3.7 speaks protocol 6)
# and, in the same run on the same daemon, through its policy listener
# (`greylag bench`), so the two paths' costs per decision can be compared.
#
# Environment: BENCH_SECONDS (default 8), BENCH_WORKLOADS (default "16:0.3 16:0.9").
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 16:0.9}"
POLICY_PORT=10191
MILTER_PORT=10192

swift build -c release --product greylag >&2
BIN="$(swift build -c release --show-bin-path)/greylag"
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
WORK="$(mktemp -d /tmp/greylag-bench-milter.XXXXXX)"
PID=""
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
bench_config "$WORK/greylag.toml" "127.0.0.1:$POLICY_PORT" "$WORK/greylag.db" "inet:$MILTER_PORT@127.0.0.1"
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PID=$!
wait_port "$POLICY_PORT"
wait_port "$MILTER_PORT"
for workload in $WORKLOADS; do
    c="${workload%%:*}"
    s="${workload##*:}"
    "$BIN" bench --target "127.0.0.1:$POLICY_PORT" --connections "$c" --new-share "$s" \
        --duration "$SECONDS_PER_RUN" --warmup 2 --label "policy"
    "$BIN" bench-milter --target "127.0.0.1:$MILTER_PORT" --connections "$c" --new-share "$s" \
        --duration "$SECONDS_PER_RUN" --warmup 2 --label "milter"
done
