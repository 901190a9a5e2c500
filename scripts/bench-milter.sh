#!/usr/bin/env bash
# The policy path and the milter path side by side, in one run, on one
# greylag daemon (same build, same defaults, same store): greylag's
# decisions/s, p99 and CPU per decision (the daemon's, read from /proc)
# through its policy listener (`greylag bench`) and through its milter
# listener (`greylag bench-milter`, which speaks as Postfix's milter client
# does: negotiation, then per session connect, HELO, MAIL and RCPT one at a
# time, waiting for each reply the milter did not opt out of, abort and `K`;
# only RCPT answers count), at the same connections and share of new
# triplets. The do-nothing policy responder (`greylag bench-responder`) is
# run first in each workload as the reference: its CPU per request is the
# floor that issue 21 measures greylag's CPU per decision against (at most
# 2.5 times, on both paths). If milter-greylist is installed (or
# MILTER_GREYLIST names its binary), the same milter load is also run
# against it, on a loopback port with a private configuration, pid and dump
# file in a temporary directory.
#
# Environment:
#   BENCH_SECONDS     measured seconds per run (default 8)
#   BENCH_WARMUP      warm-up seconds per run, not counted (default 2)
#   BENCH_WORKLOADS   "CONNECTIONS:NEW_SHARE ..." (default "16:0.3 16:0.9")
#   BENCH_BUILD       release (default) or debug (only to try the script out)
#   MILTER_GREYLIST   milter-greylist's binary (default: milter-greylist from PATH, if any)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
WARMUP="${BENCH_WARMUP:-2}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 16:0.9}"
BUILD="${BENCH_BUILD:-release}"
DUNNO_PORT=10190
POLICY_PORT=10191
MILTER_PORT=10192
MG_PORT=10193
MG_BIN="${MILTER_GREYLIST:-$(command -v milter-greylist || true)}"

log() { printf 'bench-milter.sh: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
check_build_and_workloads "$BUILD" "$WORKLOADS"
if [[ -n "$MG_BIN" && ! -x "$MG_BIN" ]]; then
    log "MILTER_GREYLIST: '$MG_BIN' is not an executable"
    exit 2
fi

swift build -c "$BUILD" --product greylag >&2
BIN="$(swift build -c "$BUILD" --show-bin-path)/greylag"
WORK="$(mktemp -d /tmp/greylag-bench-milter.XXXXXX)"
PID=""
DUNNO_PID=""
MG_PID=""
cleanup() {
    for p in "$PID" "$DUNNO_PID" "$MG_PID"; do
        if [[ -n "$p" ]]; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$BIN" bench-responder --listen "127.0.0.1:$DUNNO_PORT" >/dev/null 2>&1 &
DUNNO_PID=$!
bench_config "$WORK/greylag.toml" "127.0.0.1:$POLICY_PORT" "$WORK/greylag.db" "inet:$MILTER_PORT@127.0.0.1"
# Default settings, logging every decision (info) to a file, as in production.
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PID=$!
wait_port "$DUNNO_PORT"
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
    # -D: in the foreground, so $! is the milter itself (its CPU is read).
    "$MG_BIN" -D -f "$WORK/milter-greylist.conf" >"$WORK/milter-greylist.log" 2>&1 &
    MG_PID=$!
    wait_port "$MG_PORT"
else
    log "milter-greylist not found (set MILTER_GREYLIST): greylag only"
fi

log "machine: $(nproc) cores, $(uname -r); greylag $BUILD build; ${SECONDS_PER_RUN}s per run after ${WARMUP}s warm-up"
declare -A RATE P99 CPU
# run NAME WORKLOAD COMMAND...: runs one benchmark, prints its output and
# keeps its rate, p99 and server CPU per decision.
run() {
    local name="$1" workload="$2" out line
    shift 2
    out="$("$@")"
    echo "$out"
    line="$(head -n 1 <<<"$out")"
    RATE["$name $workload"]="$(sed -nE 's/.*: ([0-9]+) decisions\/s.*/\1/p' <<<"$line")"
    P99["$name $workload"]="$(sed -nE 's/.*p99 ([0-9.]+) ms.*/\1/p' <<<"$line")"
    CPU["$name $workload"]="$(sed -nE 's/.*cpu per answer: server ([0-9.]+) us.*/\1/p' <<<"$out")"
}
for workload in $WORKLOADS; do
    c="${workload%%:*}"
    s="${workload##*:}"
    common=(--connections "$c" --new-share "$s" --duration "$SECONDS_PER_RUN" --warmup "$WARMUP")
    run responder "$workload" "$BIN" bench --target "127.0.0.1:$DUNNO_PORT" "${common[@]}" \
        --label "responder" --server-pid "$DUNNO_PID"
    run policy "$workload" "$BIN" bench --target "127.0.0.1:$POLICY_PORT" "${common[@]}" \
        --label "policy" --server-pid "$PID"
    run milter "$workload" "$BIN" bench-milter --target "127.0.0.1:$MILTER_PORT" "${common[@]}" \
        --label "milter" --server-pid "$PID"
    if [[ -n "$MG_PID" ]]; then
        run milter-greylist "$workload" "$BIN" bench-milter --target "127.0.0.1:$MG_PORT" "${common[@]}" \
            --label "milter-greylist" --server-pid "$MG_PID"
    fi
done

# ratio A B: A / B with two decimals and an x, or "-" if either is missing or B is 0.
ratio() {
    if [[ -z "$1" || -z "$2" || "$2" == 0 ]]; then printf -- '-'; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; fi
}
names=(responder policy milter)
[[ -n "$MG_PID" ]] && names+=(milter-greylist)
echo
echo "Decisions/s, p99 (ms) and the server's CPU per decision (us, from /proc) of each path:"
printf '%-18s' workload
for n in "${names[@]}"; do printf ' %27s' "$n"; done
printf ' %14s %14s' "milter/policy" "milter/policy"
[[ -n "$MG_PID" ]] && printf ' %14s' "greylag/m-g"
echo
printf '%-18s' ""
for n in "${names[@]}"; do printf ' %27s' "rate, p99, cpu"; done
printf ' %14s %14s' rate cpu
[[ -n "$MG_PID" ]] && printf ' %14s' rate
echo
for workload in $WORKLOADS; do
    printf '%-18s' "$(workload_label "$workload")"
    for n in "${names[@]}"; do
        printf ' %27s' "${RATE[$n $workload]:--}, ${P99[$n $workload]:--}, ${CPU[$n $workload]:--}"
    done
    printf ' %14s %14s' "$(ratio "${RATE[milter $workload]:-}" "${RATE[policy $workload]:-}")" \
        "$(ratio "${CPU[milter $workload]:-}" "${CPU[policy $workload]:-}")"
    [[ -n "$MG_PID" ]] && printf ' %14s' "$(ratio "${RATE[milter $workload]:-}" "${RATE[milter-greylist $workload]:-}")"
    echo
done
echo
echo "greylag's CPU per decision against the do-nothing responder's CPU per request (target: at most 2.5x):"
for workload in $WORKLOADS; do
    d="${CPU[responder $workload]:-}"
    printf '%-18s responder %s us; policy %s us: %s; milter %s us: %s\n' "$(workload_label "$workload")" "${d:-?}" \
        "${CPU[policy $workload]:-?}" "$(ratio "${CPU[policy $workload]:-}" "$d")" \
        "${CPU[milter $workload]:-?}" "$(ratio "${CPU[milter $workload]:-}" "$d")"
done
