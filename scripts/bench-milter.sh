#!/usr/bin/env bash
# The milter path: greylag's decisions/s and latency through its milter
# listener (`greylag bench-milter`, which speaks as Postfix's milter client
# does: negotiation, then per session connect, HELO, MAIL and RCPT one at a
# time, waiting for each reply the milter did not opt out of, abort and `K`;
# only RCPT answers count) and, in the same run on the same daemon, through
# its policy listener (`greylag bench`), so the two paths' costs per decision
# can be compared. If milter-greylist is installed (or MILTER_GREYLIST names
# its binary), the same milter load is also run against it, on a loopback
# port with a private configuration, pid and dump file in a temporary
# directory.
#
# Environment: BENCH_SECONDS (default 8), BENCH_WORKLOADS (default "16:0.3 16:0.9"),
# MILTER_GREYLIST (default: milter-greylist from PATH, if any).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 16:0.9}"
POLICY_PORT=10191
MILTER_PORT=10192
MG_PORT=10193
MG_BIN="${MILTER_GREYLIST:-$(command -v milter-greylist || true)}"

swift build -c release --product greylag >&2
BIN="$(swift build -c release --show-bin-path)/greylag"
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
WORK="$(mktemp -d /tmp/greylag-bench-milter.XXXXXX)"
PID=""
MG_PID=""
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    if [[ -n "$MG_PID" ]]; then kill "$MG_PID" 2>/dev/null || true; wait "$MG_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
bench_config "$WORK/greylag.toml" "127.0.0.1:$POLICY_PORT" "$WORK/greylag.db" "inet:$MILTER_PORT@127.0.0.1"
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PID=$!
wait_port "$POLICY_PORT"
wait_port "$MILTER_PORT"
if [[ -n "$MG_BIN" ]]; then
    # Its defaults as shipped: greylist 30 minutes, auto-whitelist a day.
    cat >"$WORK/milter-greylist.conf" <<CONF
pidfile "$WORK/milter-greylist.pid"
dumpfile "$WORK/milter-greylist.db"
socket "inet:$MG_PORT@127.0.0.1"
greylist 30m
autowhite 1d
racl greylist default
CONF
    "$MG_BIN" -D -f "$WORK/milter-greylist.conf" >"$WORK/milter-greylist.log" 2>&1 &
    MG_PID=$!
    wait_port "$MG_PORT"
else
    printf 'milter-greylist not found (set MILTER_GREYLIST): greylag only\n' >&2
fi
for workload in $WORKLOADS; do
    c="${workload%%:*}"
    s="${workload##*:}"
    "$BIN" bench --target "127.0.0.1:$POLICY_PORT" --connections "$c" --new-share "$s" \
        --duration "$SECONDS_PER_RUN" --warmup 2 --label "policy"
    "$BIN" bench-milter --target "127.0.0.1:$MILTER_PORT" --connections "$c" --new-share "$s" \
        --duration "$SECONDS_PER_RUN" --warmup 2 --label "milter"
    if [[ -n "$MG_PID" ]]; then
        "$BIN" bench-milter --target "127.0.0.1:$MG_PORT" --connections "$c" --new-share "$s" \
            --duration "$SECONDS_PER_RUN" --warmup 2 --label "milter-greylist"
    fi
done
