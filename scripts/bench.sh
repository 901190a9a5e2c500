#!/usr/bin/env bash
# Policy benchmark: greylag (release build, SQLite default store) against a
# do-nothing DUNNO responder (the ceiling of this machine and load
# generator), Debian's postgrey and Debian's sqlgrey (SQLite database), in
# one run and on the same workloads,
# so the ratios hold on a noisy machine. Prints one line per run, a
# summary table, and the CPU time each server and the load generator spent
# per decision (they share the machine's cores); record the figures in
# BENCHMARKS.md.
#
# Environment:
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_WARMUP       warm-up seconds per run, not counted (default 2)
#   BENCH_WORKLOADS    "CONNECTIONS:NEW_SHARE ..." (default "16:0.3 16:0.9 64:0.3 64:0.9")
#   BENCH_SKIP_POSTGREY=1  leave postgrey out
#   BENCH_SKIP_SQLGREY=1   leave sqlgrey out
#   BENCH_SKIP_FULL=1      leave out the second greylag (store.synchronous = "full")
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 16:0.9 64:0.3 64:0.9}"
DUNNO_PORT=10096
GREYLAG_PORT=10097
POSTGREY_PORT=10098
SQLGREY_PORT=10099
FULL_PORT=10095

log() { printf 'bench.sh: %s\n' "$*" >&2; }

if [[ "${BENCH_SKIP_POSTGREY:-0}" != 1 || "${BENCH_SKIP_SQLGREY:-0}" != 1 ]]; then
    bash scripts/install-test-deps.sh
fi
log "building greylag (release)"
swift build -c release >&2
BIN="$(swift build -c release --show-bin-path)/greylag"

# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
# shellcheck source=scripts/lib/postgrey.sh
source scripts/lib/postgrey.sh
# shellcheck source=scripts/lib/sqlgrey.sh
source scripts/lib/sqlgrey.sh

WORK="$(mktemp -d /tmp/greylag-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    postgrey_stop "$WORK/postgrey" >/dev/null 2>&1 || true
    sqlgrey_stop "$WORK/sqlgrey" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

declare -A PID
"$BIN" bench-responder --listen "127.0.0.1:$DUNNO_PORT" >/dev/null 2>&1 &
PIDS+=($!)
PID[dunno]=$!

bench_config "$WORK/greylag.toml" "127.0.0.1:$GREYLAG_PORT" "$WORK/greylag.db"
# Default settings, logging every decision (info) to a file, as in production.
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PIDS+=($!)
PID[greylag]=$!

TARGETS="dunno:$DUNNO_PORT greylag:$GREYLAG_PORT"
if [[ "${BENCH_SKIP_FULL:-0}" != 1 ]]; then
    # The same with every commit synced (safe against power loss too).
    bench_config "$WORK/greylag-full.toml" "127.0.0.1:$FULL_PORT" "$WORK/greylag-full.db" "" "" 'synchronous = "full"'
    "$BIN" serve --config "$WORK/greylag-full.toml" >"$WORK/greylag-full.log" 2>&1 &
    PIDS+=($!)
    PID[greylag-full]=$!
    TARGETS="$TARGETS greylag-full:$FULL_PORT"
fi
if [[ "${BENCH_SKIP_POSTGREY:-0}" != 1 ]]; then
    # postgrey with its defaults (auto-whitelist after 5, /24 keys), logging
    # every decision to a file like greylag.
    postgrey_start "$WORK/postgrey" "127.0.0.1:$POSTGREY_PORT" --auto-whitelist-clients=5 >&2
    PID[postgrey]="$(cat "$WORK/postgrey/postgrey.pid")"
    TARGETS="$TARGETS postgrey:$POSTGREY_PORT"
fi
if [[ "${BENCH_SKIP_SQLGREY:-0}" != 1 ]]; then
    # sqlgrey with its defaults but /24 keys like the others, SQLite in the
    # same file system as greylag's store.
    sqlgrey_start "$WORK/sqlgrey" "127.0.0.1:$SQLGREY_PORT" >&2
    PID[sqlgrey]="$(cat "$WORK/sqlgrey/sqlgrey.pid")"
    TARGETS="$TARGETS sqlgrey:$SQLGREY_PORT"
fi
wait_port "$DUNNO_PORT"
wait_port "$GREYLAG_PORT"
[[ "${BENCH_SKIP_FULL:-0}" != 1 ]] && wait_port "$FULL_PORT"

log "machine: $(nproc) cores, $(uname -r); ${SECONDS_PER_RUN}s per run after ${WARMUP}s warm-up"
declare -A RATE P99 CPU
for workload in $WORKLOADS; do
    connections="${workload%%:*}"
    share="${workload##*:}"
    for target in $TARGETS; do
        name="${target%%:*}"
        port="${target##*:}"
        out="$("$BIN" bench --target "127.0.0.1:$port" --connections "$connections" --new-share "$share" \
            --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --label "$name" --server-pid "${PID[$name]}")"
        echo "$out"
        line="$(head -n 1 <<<"$out")"
        RATE["$name $workload"]="$(sed -E 's/.*: ([0-9]+) decisions\/s.*/\1/' <<<"$line")"
        P99["$name $workload"]="$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")"
        CPU["$name $workload"]="$(sed -nE 's/.*server ([0-9.?]+) us, load generator ([0-9.]+) us.*/\1 + \2/p' <<<"$out")"
    done
done

echo
printf '%-14s %10s %10s %9s %10s %9s %11s %10s %9s %12s %11s %13s\n' workload dunno/s greylag/s "p99 (ms)" \
    "full/s" "full p99" postgrey/s sqlgrey/s "vs dunno" "vs postgrey" "vs sqlgrey" "dunno/postgrey"
for workload in $WORKLOADS; do
    d="${RATE[dunno $workload]}"
    g="${RATE[greylag $workload]}"
    f="${RATE[greylag-full $workload]:-}"
    p="${RATE[postgrey $workload]:-}"
    q="${RATE[sqlgrey $workload]:-}"
    vs_d="$(awk -v g="$g" -v d="$d" 'BEGIN { printf "%.0f%%", 100 * g / d }')"
    vs_p="-"
    [[ -n "$p" && "$p" != 0 ]] && vs_p="$(awk -v g="$g" -v p="$p" 'BEGIN { printf "%.1fx", g / p }')"
    vs_q="-"
    [[ -n "$q" && "$q" != 0 ]] && vs_q="$(awk -v g="$g" -v q="$q" 'BEGIN { printf "%.1fx", g / q }')"
    # The ceiling of "vs postgrey": a server that does nothing gets this far.
    d_p="-"
    [[ -n "$p" && "$p" != 0 ]] && d_p="$(awk -v d="$d" -v p="$p" 'BEGIN { printf "%.1fx", d / p }')"
    printf '%-14s %10s %10s %9s %10s %9s %11s %10s %9s %12s %11s %13s\n' "${workload/:/ conn, }" "$d" "$g" \
        "${P99[greylag $workload]}" "${f:--}" "${P99[greylag-full $workload]:--}" "${p:--}" "${q:--}" \
        "$vs_d" "$vs_p" "$vs_q" "$d_p"
done

echo
echo "CPU per decision in microseconds, server + load generator (both share the machine's $(nproc) cores):"
printf '%-14s' workload
for target in $TARGETS; do printf ' %17s' "${target%%:*}"; done
echo
for workload in $WORKLOADS; do
    printf '%-14s' "${workload/:/ conn, }"
    for target in $TARGETS; do printf ' %17s' "${CPU[${target%%:*} $workload]:--}"; done
    echo
done
