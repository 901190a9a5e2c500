#!/usr/bin/env bash
# Heap allocations per decision, on the policy path and on the milter path
# of one greylag daemon with bench.sh's configuration: a uprobe on glibc's
# malloc counts every allocation of the daemon (`perf stat -e
# probe_libc:malloc -p PID`) while `greylag bench` and then `greylag
# bench-milter` load it, and the count is divided by the decisions logged
# meanwhile (one line each). Unlike CPU time, the count does not move with
# the machine's load: it is the figure to compare when a change removes
# work from a decision. Allocations outside decisions (the flush of retry
# counts, the checkpointer, log writes) are counted too.
#
# Needs perf and the right to add a uprobe (root, or
# kernel.perf_event_paranoid and tracefs permissions that allow it). The
# probe is added if missing and removed at the end.
#
# Environment:
#   BENCH_SECONDS     counted seconds per run (default 4)
#   BENCH_WORKLOADS   "CONNECTIONS:NEW_SHARE ..." (default "16:0.3 16:0.9")
#   BENCH_BUILD       release (default) or debug (only to try the script out)
#   BENCH_BIN         a greylag binary to measure instead of building one
#                     (another commit's, to compare)
#   BENCH_RETAINS=1   also count swift_retain calls (a uprobe in
#                     libswiftCore.so): reference counting of copies that
#                     allocate nothing. The probe slows the daemon a lot,
#                     so commit groups are smaller than in a free run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-4}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 16:0.9}"
BUILD="${BENCH_BUILD:-release}"
POLICY_PORT=10194
MILTER_PORT=10195

log() { printf 'bench-allocs.sh: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
check_build_and_workloads "$BUILD" "$WORKLOADS"
if ! command -v perf >/dev/null; then
    log "perf is not installed (Debian: apt-get install linux-perf)"
    exit 2
fi

if [[ -n "${BENCH_BIN:-}" ]]; then
    BIN="$BENCH_BIN"
    [[ -x "$BIN" ]] || { log "BENCH_BIN: '$BIN' is not an executable"; exit 2; }
else
    swift build -c "$BUILD" --product greylag >&2
    BIN="$(swift build -c "$BUILD" --show-bin-path)/greylag"
fi
LIBC="$(ldd "$BIN" | awk '$1 == "libc.so.6" { print $3 }')"
ADDED_PROBE=""
ADDED_RETAIN_PROBE=""
EVENTS=(-e probe_libc:malloc)
if [[ -n "${BENCH_RETAINS:-}" ]]; then
    CORE="$(ldd "$BIN" | awk '$1 == "libswiftCore.so" { print $3 }')"
    if ! perf probe --list 2>/dev/null | grep -q 'probe_libswiftCore:swift_retain'; then
        if [[ -z "$CORE" ]] || ! perf probe -q -x "$CORE" --add swift_retain 2>/dev/null; then
            log "cannot add a uprobe on swift_retain in '$CORE' (run as root)"
            exit 2
        fi
        ADDED_RETAIN_PROBE=1
    fi
    EVENTS+=(-e probe_libswiftCore:swift_retain)
fi
if ! perf probe --list 2>/dev/null | grep -q 'probe_libc:malloc'; then
    if [[ -z "$LIBC" ]] || ! perf probe -q -x "$LIBC" --add malloc 2>/dev/null; then
        log "cannot add a uprobe on malloc in '$LIBC' (run as root)"
        exit 2
    fi
    ADDED_PROBE=1
fi
WORK="$(mktemp -d /tmp/greylag-bench-allocs.XXXXXX)"
PID=""
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    if [[ -n "$ADDED_PROBE" ]]; then perf probe -q --del probe_libc:malloc 2>/dev/null || true; fi
    if [[ -n "$ADDED_RETAIN_PROBE" ]]; then perf probe -q --del probe_libswiftCore:swift_retain 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

bench_config "$WORK/greylag.toml" "127.0.0.1:$POLICY_PORT" "$WORK/greylag.db" "127.0.0.1:$MILTER_PORT" "" ""
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PID=$!
wait_port "$POLICY_PORT"
wait_port "$MILTER_PORT"

# count PATH(policy|milter) CONNECTIONS SHARE: allocations per decision
count() {
    local path=$1 connections=$2 share=$3 command=bench port=$POLICY_PORT
    if [[ $path == milter ]]; then command=bench-milter; port=$MILTER_PORT; fi
    # A short run first, so the counted one finds the store, caches and
    # connections' buffers as they are under load.
    "$BIN" "$command" --target "127.0.0.1:$port" --connections "$connections" --new-share "$share" \
        --duration 2 --warmup 0 >/dev/null
    sleep 0.5
    local before after allocations
    before=$(grep -c '' "$WORK/greylag.log")
    perf stat -x, "${EVENTS[@]}" -p "$PID" -o "$WORK/perf.csv" &
    local perf_pid=$!
    sleep 0.2
    "$BIN" "$command" --target "127.0.0.1:$port" --connections "$connections" --new-share "$share" \
        --duration "$SECONDS_PER_RUN" --warmup 0 >/dev/null
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    sleep 0.3
    after=$(grep -c '' "$WORK/greylag.log")
    allocations=$(awk -F, '/probe_libc:malloc/ { print $1 }' "$WORK/perf.csv")
    if [[ -z "$allocations" || "$allocations" == "<not counted>" || $((after - before)) -le 0 ]]; then
        log "no count for $path at $connections connections, $share new"
        exit 1
    fi
    retains=$(awk -F, '/probe_libswiftCore:swift_retain/ { print $1 }' "$WORK/perf.csv")
    awk -v a="$allocations" -v r="$retains" -v d=$((after - before)) -v p="$path" -v c="$connections" -v s="$share" \
        'BEGIN { printf "%s: %s connections, %d%% new: %.1f allocations per decision (%d in %d decisions)",
                 p, c, s * 100 + 0.5, a / d, a, d
                 if (r != "" && r != "<not counted>") printf ", %.1f retains per decision", r / d
                 printf "\n" }'
}

for workload in $WORKLOADS; do
    connections=${workload%%:*}
    share=${workload##*:}
    count policy "$connections" "$share"
    count milter "$connections" "$share"
done
