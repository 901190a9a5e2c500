#!/usr/bin/env bash
# Policy benchmark: greylag (release build, SQLite default store) against a
# do-nothing DUNNO responder (the ceiling of this machine and load
# generator), Debian's gross (a greylisting daemon in C), Debian's postgrey
# and Debian's sqlgrey (SQLite database), in one run and on the same
# workloads, so the ratios hold on a noisy machine. Prints one line per run,
# tables of rates, p99 and the CPU time each server and the load generator
# spent per decision (read from /proc: they share the machine's cores), and
# per workload greylag's CPU per decision against the responder's CPU per
# request (issue 21's target: at most 2.5 times at 16 connections, 30% new);
# record the figures in BENCHMARKS.md.
#
# gross keys IPv4 clients only and lets IPv6 clients pass unexamined, while
# the load generator sends half its new triplets from IPv6 clients; so gross
# is loaded with IPv4 clients only (`greylag bench --ipv4-only`), and so is
# a second run against the same greylag ("greylag-v4"), which "vs gross"
# compares with it. Before the runs, each greylister is asked about a brand
# new triplet and must answer with a defer (so gross is known to greylist,
# not merely to answer); each gross run must count deferrals among its
# answers, or the script stops.
#
# Environment:
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_WARMUP       warm-up seconds per run, not counted (default 2)
#   BENCH_WORKLOADS    "CONNECTIONS:NEW_SHARE ..." (default "16:0.3 16:0.9 64:0.3 64:0.9")
#   BENCH_BUILD        release (default) or debug: which build of greylag is
#                      measured (debug only to try the script out; its
#                      figures mean nothing)
#   BENCH_SKIP_GROSS=1     leave gross (and greylag-v4) out
#   BENCH_SKIP_POSTGREY=1  leave postgrey out
#   BENCH_SKIP_SQLGREY=1   leave sqlgrey out
#   BENCH_SKIP_FULL=1      leave out the second greylag (store.synchronous = "full")
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 16:0.9 64:0.3 64:0.9}"
BUILD="${BENCH_BUILD:-release}"
DUNNO_PORT=10096
GREYLAG_PORT=10097
POSTGREY_PORT=10098
SQLGREY_PORT=10099
FULL_PORT=10095
GROSS_PORT=10094

log() { printf 'bench.sh: %s\n' "$*" >&2; }
skip() { [[ "${!1:-0}" == 1 ]]; }

# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
check_build_and_workloads "$BUILD" "$WORKLOADS"

if ! skip BENCH_SKIP_POSTGREY || ! skip BENCH_SKIP_SQLGREY || ! skip BENCH_SKIP_GROSS; then
    bash scripts/install-test-deps.sh
fi
log "building greylag ($BUILD)"
swift build -c "$BUILD" --product greylag >&2
BIN="$(swift build -c "$BUILD" --show-bin-path)/greylag"

# shellcheck source=scripts/lib/postgrey.sh
source scripts/lib/postgrey.sh
# shellcheck source=scripts/lib/sqlgrey.sh
source scripts/lib/sqlgrey.sh
# shellcheck source=scripts/lib/gross.sh
source scripts/lib/gross.sh

WORK="$(mktemp -d /tmp/greylag-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    postgrey_stop "$WORK/postgrey" >/dev/null 2>&1 || true
    sqlgrey_stop "$WORK/sqlgrey" >/dev/null 2>&1 || true
    gross_stop "$WORK/gross" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# The runs, in order per workload: NAME, and for each its port, the pid whose
# CPU is read, and extra arguments of `greylag bench`.
declare -A PORT PID ARGS
TARGETS=()
target() { TARGETS+=("$1"); PORT[$1]="$2"; PID[$1]="$3"; ARGS[$1]="${4:-}"; }

"$BIN" bench-responder --listen "127.0.0.1:$DUNNO_PORT" >/dev/null 2>&1 &
PIDS+=($!)
target dunno "$DUNNO_PORT" $!

bench_config "$WORK/greylag.toml" "127.0.0.1:$GREYLAG_PORT" "$WORK/greylag.db"
# Default settings, logging every decision (info) to a file, as in production.
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PIDS+=($!)
target greylag "$GREYLAG_PORT" $!
GREYLAG_PID=$!

if ! skip BENCH_SKIP_FULL; then
    # The same with every commit synced (safe against power loss too).
    bench_config "$WORK/greylag-full.toml" "127.0.0.1:$FULL_PORT" "$WORK/greylag-full.db" "" "" 'synchronous = "full"'
    "$BIN" serve --config "$WORK/greylag-full.toml" >"$WORK/greylag-full.log" 2>&1 &
    PIDS+=($!)
    target greylag-full "$FULL_PORT" $!
fi
if ! skip BENCH_SKIP_GROSS; then
    # gross as a plain greylister (no DNS checks, every new triplet
    # greylisted for 300 s, /24 keys), logging every decision to a file.
    gross_start "$WORK/gross" "127.0.0.1:$GROSS_PORT" >&2
    target greylag-v4 "$GREYLAG_PORT" "$GREYLAG_PID" --ipv4-only
    target gross "$GROSS_PORT" "$(cat "$WORK/gross/grossd.pid")" --ipv4-only
fi
if ! skip BENCH_SKIP_POSTGREY; then
    # postgrey with its defaults (auto-whitelist after 5, /24 keys), logging
    # every decision to a file like greylag.
    postgrey_start "$WORK/postgrey" "127.0.0.1:$POSTGREY_PORT" --auto-whitelist-clients=5 >&2
    target postgrey "$POSTGREY_PORT" "$(cat "$WORK/postgrey/postgrey.pid")"
fi
if ! skip BENCH_SKIP_SQLGREY; then
    # sqlgrey with its defaults but /24 keys like the others, SQLite in the
    # same file system as greylag's store.
    sqlgrey_start "$WORK/sqlgrey" "127.0.0.1:$SQLGREY_PORT" >&2
    target sqlgrey "$SQLGREY_PORT" "$(cat "$WORK/sqlgrey/sqlgrey.pid")"
fi
wait_port "$DUNNO_PORT"
wait_port "$GREYLAG_PORT"
skip BENCH_SKIP_FULL || wait_port "$FULL_PORT"

# Each greylister must defer a triplet it never saw, twice in a row (the
# retry comes before the delay is over). The probe's client and sender share
# nothing with the load generator's triplets.
for name in "${TARGETS[@]}"; do
    [[ "$name" == dunno || "$name" == greylag-v4 ]] && continue
    for attempt in first retry; do
        answer="$(policy_ask "${PORT[$name]}" 192.0.2.77 "probe-$$@probe.example" "postmaster@example.net")"
        if [[ ! "${answer,,}" =~ ^action=defer ]]; then
            log "$name does not greylist: its answer to a new triplet ($attempt) was '$answer'"
            exit 1
        fi
    done
    log "$name greylists: a new triplet and its immediate retry were both answered '$answer'"
done

log "machine: $(nproc) cores, $(uname -r); greylag $BUILD build; ${SECONDS_PER_RUN}s per run after ${WARMUP}s warm-up"
declare -A RATE P99 CPU SERVER_CPU
for workload in $WORKLOADS; do
    connections="${workload%%:*}"
    share="${workload##*:}"
    for name in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086 # ARGS holds zero or more words
        out="$("$BIN" bench --target "127.0.0.1:${PORT[$name]}" --connections "$connections" --new-share "$share" \
            --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --label "$name" --server-pid "${PID[$name]}" ${ARGS[$name]})"
        echo "$out"
        line="$(head -n 1 <<<"$out")"
        RATE["$name $workload"]="$(sed -nE 's/.*: ([0-9]+) decisions\/s.*/\1/p' <<<"$line")"
        P99["$name $workload"]="$(sed -nE 's/.*p99 ([0-9.]+) ms.*/\1/p' <<<"$line")"
        CPU["$name $workload"]="$(sed -nE 's/.*server ([0-9.?]+) us, load generator ([0-9.]+) us.*/\1 + \2/p' <<<"$out")"
        SERVER_CPU["$name $workload"]="$(sed -nE 's/.*server ([0-9.]+) us, load generator.*/\1/p' <<<"$out")"
        if [[ "$name" == gross ]] && ! grep -Eq '; .*defer[a-z_]*=[1-9]' <<<"$line"; then
            log "gross answered no deferral in this run: it is not greylisting; stopping"
            exit 1
        fi
    done
done

# ratio A B FORMAT [SCALE]: SCALE * A / B printed with FORMAT, or "-" if
# either is missing or B is 0.
ratio() {
    if [[ -z "$1" || -z "$2" || "$2" == 0 || "$2" == "?" || "$1" == "?" ]]; then
        printf -- '-'
    else
        awk -v a="$1" -v b="$2" -v f="$3" -v s="${4:-1}" 'BEGIN { printf f, s * a / b }'
    fi
}
has() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
row() { printf '%-18s' "$1"; }

echo
echo "Decisions per second (greylag-v4 and gross: IPv4 clients only):"
row workload
for name in "${TARGETS[@]}"; do printf ' %12s' "$name"; done
printf ' %9s' "vs dunno"
has gross && printf ' %9s' "vs gross"
has postgrey && printf ' %11s' "vs postgrey"
has sqlgrey && printf ' %10s' "vs sqlgrey"
has postgrey && printf ' %14s' "dunno/postgrey"
echo
for workload in $WORKLOADS; do
    row "$(workload_label "$workload")"
    for name in "${TARGETS[@]}"; do printf ' %12s' "${RATE[$name $workload]:--}"; done
    g="${RATE[greylag $workload]:-}"
    printf ' %9s' "$(ratio "$g" "${RATE[dunno $workload]:-}" '%.0f%%' 100)"
    has gross && printf ' %9s' "$(ratio "${RATE[greylag-v4 $workload]:-}" "${RATE[gross $workload]:-}" '%.1fx')"
    has postgrey && printf ' %11s' "$(ratio "$g" "${RATE[postgrey $workload]:-}" '%.1fx')"
    has sqlgrey && printf ' %10s' "$(ratio "$g" "${RATE[sqlgrey $workload]:-}" '%.1fx')"
    # The ceiling of "vs postgrey": a server that does nothing gets this far.
    has postgrey && printf ' %14s' "$(ratio "${RATE[dunno $workload]:-}" "${RATE[postgrey $workload]:-}" '%.1fx')"
    echo
done
echo
echo "p99 latency in milliseconds:"
row workload
for name in "${TARGETS[@]}"; do printf ' %12s' "$name"; done
echo
for workload in $WORKLOADS; do
    row "$(workload_label "$workload")"
    for name in "${TARGETS[@]}"; do printf ' %12s' "${P99[$name $workload]:--}"; done
    echo
done

echo
echo "CPU per decision in microseconds, server (from /proc) + load generator (both share the machine's $(nproc) cores):"
row workload
for name in "${TARGETS[@]}"; do printf ' %15s' "$name"; done
has gross && printf ' %16s' "gross/greylag-v4"
echo
for workload in $WORKLOADS; do
    row "$(workload_label "$workload")"
    for name in "${TARGETS[@]}"; do printf ' %15s' "${CPU[$name $workload]:--}"; done
    has gross && printf ' %16s' "$(ratio "${SERVER_CPU[gross $workload]:-}" "${SERVER_CPU[greylag-v4 $workload]:-}" '%.2fx')"
    echo
done

echo
echo "greylag's CPU per decision against the do-nothing responder's CPU per request (target: at most 2.5x at 16 conn, 30% new):"
if [[ "$BUILD" == debug ]]; then
    echo "(a debug build of greylag and of the responder: these figures say nothing about the target)"
fi
for workload in $WORKLOADS; do
    g="${SERVER_CPU[greylag $workload]:-}"
    d="${SERVER_CPU[dunno $workload]:-}"
    r="$(ratio "$g" "$d" '%.2f')"
    verdict=""
    if [[ "$r" != - ]]; then
        if [[ "$BUILD" == release ]]; then
            if awk -v r="$r" 'BEGIN { exit !(r <= 2.5) }'; then verdict="within 2.5x"; else verdict="over 2.5x"; fi
        fi
        r="${r}x"
    fi
    printf '%-18s greylag %s us, responder %s us: %s%s\n' "$(workload_label "$workload")" "${g:-?}" "${d:-?}" "$r" \
        "${verdict:+ ($verdict)}"
done
