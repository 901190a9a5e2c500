#!/usr/bin/env bash
# Store size scaling: greylag's decisions/s, p99, CPU per decision (the
# daemon's, read from /proc) and resident memory with 10 thousand, 1
# million and 10 million records in its SQLite store. For each size:
# `greylag bench-fill` writes the records (half passed, half waiting), the
# daemon starts on that file with its defaults, and `greylag bench`
# measures 16 connections with 30% new triplets, first for the warm-up
# (the daemon's first seconds on a file it has not read yet: its page cache
# filling, the first checkpoints) and then for the counted run. Prints one
# line per run and a table with the counted rate and CPU per decision
# relative to the smallest size (issue 21's target: the rate at 10 million
# at least 90% of the rate at 10 thousand, the CPU per decision within 10%
# of it) and the warm-up's figures beside them.
#
# Environment:
#   BENCH_SIZES     record counts, smallest first (default "10000 1000000 10000000")
#   BENCH_SECONDS   measured seconds per size (default 10)
#   BENCH_WARMUP    seconds of load before the measured ones (default 20; 0 for none)
#   BENCH_BUILD     release (default) or debug (only to try the script out)
#   BENCH_PORT      greylag's port (default 10995)
#   BENCH_MORE      more configuration lines after [store], e.g. 'flush_interval = 0'
#                   to compare with retries written through (default none)
#   GREYLAG_SQLITE_PAGE_CACHE=plain  SQLite's own page cache, for comparison
#   BENCH_DIR       where the store files go (default a new directory in /tmp;
#                   10 million records take about 1.5 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${BENCH_SIZES:-10000 1000000 10000000}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-20}"
PORT="${BENCH_PORT:-10995}"
BUILD="${BENCH_BUILD:-release}"
log() { printf 'bench-scale.sh: %s\n' "$*" >&2; }
if [[ "$BUILD" != release && "$BUILD" != debug ]]; then
    log "BENCH_BUILD must be release or debug, not '$BUILD'"
    exit 2
fi
if [[ ! "$WARMUP" =~ ^[0-9]+$ ]]; then
    log "BENCH_WARMUP: '$WARMUP' is not a number of seconds"
    exit 2
fi
for n in $SIZES; do
    if [[ ! "$n" =~ ^[0-9]+$ ]]; then
        log "BENCH_SIZES: '$n' is not a record count"
        exit 2
    fi
done

swift build -c "$BUILD" --product greylag >&2
BIN="$(swift build -c "$BUILD" --show-bin-path)/greylag"
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh

WORK="${BENCH_DIR:-$(mktemp -d /tmp/greylag-scale.XXXXXX)}"
mkdir -p "$WORK"
PID=""
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    [[ -z "${BENCH_DIR:-}" ]] && rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

log "machine: $(nproc) cores; greylag $BUILD build; ${WARMUP}s of warm-up and ${SECONDS_PER_RUN}s counted per size, 16 connections, 30% new triplets"
declare -A RATE P99 CPU RSS0 RSS1 FILL SIZE WRATE WCPU
for n in $SIZES; do
    db="$WORK/greylag-$n.db"
    rm -f "$db" "$db-wal" "$db-shm"
    FILL[$n]="$("$BIN" bench-fill --path "$db" --records "$n" | sed -E 's/.* in ([0-9.]+) s/\1/')"
    bench_config "$WORK/greylag.toml" "127.0.0.1:$PORT" "$db" "" "" "${BENCH_MORE:-}"
    "$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag-$n.log" 2>&1 &
    PID=$!
    wait_port "$PORT"
    RSS0[$n]="$(rss_mib "$PID")"
    if (( WARMUP > 0 )); then
        warm="$("$BIN" bench --target "127.0.0.1:$PORT" --connections 16 --new-share 0.3 \
            --duration "$WARMUP" --warmup 0 --label "greylag with $n records, warm-up" --server-pid "$PID")"
        echo "$warm"
        WRATE[$n]="$(head -n 1 <<<"$warm" | sed -E 's/.*: ([0-9]+) decisions\/s.*/\1/')"
        WCPU[$n]="$(sed -nE 's/.*cpu per answer: server ([0-9.]+) us.*/\1/p' <<<"$warm")"
    fi
    out="$("$BIN" bench --target "127.0.0.1:$PORT" --connections 16 --new-share 0.3 \
        --duration "$SECONDS_PER_RUN" --warmup 2 --label "greylag with $n records" --server-pid "$PID")"
    echo "$out"
    line="$(head -n 1 <<<"$out")"
    CPU[$n]="$(sed -nE 's/.*cpu per answer: server ([0-9.]+) us.*/\1/p' <<<"$out")"
    RSS1[$n]="$(rss_mib "$PID")"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
    SIZE[$n]="$(du -m "$db" | cut -f1)"
    RATE[$n]="$(sed -E 's/.*: ([0-9]+) decisions\/s.*/\1/' <<<"$line")"
    P99[$n]="$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")"
    rm -f "$db" "$db-wal" "$db-shm"
done

first="${SIZES%% *}"
# ratio A B: 100 * A / B as a percentage, or "-" if either is missing or B is 0.
ratio() {
    if [[ -z "$1" || -z "$2" || "$2" == 0 ]]; then printf -- '-'; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; fi
}
echo
printf '%12s %10s %10s %12s %10s %10s %14s %12s %12s %14s %14s\n' records "file MiB" "fill (s)" decisions/s "p99 (ms)" \
    "CPU (us)" "RSS MiB" "rate vs $first" "CPU vs $first" "warm-up dec/s" "warm-up CPU"
for n in $SIZES; do
    printf '%12s %10s %10s %12s %10s %10s %14s %12s %12s %14s %14s\n' "$n" "${SIZE[$n]}" "${FILL[$n]}" "${RATE[$n]}" \
        "${P99[$n]}" "${CPU[$n]:--}" "${RSS0[$n]} -> ${RSS1[$n]}" "$(ratio "${RATE[$n]}" "${RATE[$first]}")" \
        "$(ratio "${CPU[$n]:-}" "${CPU[$first]:-}")" "${WRATE[$n]:--}" "${WCPU[$n]:--}"
done
last="${SIZES##* }"
if [[ "$last" != "$first" ]]; then
    r="$(ratio "${RATE[$last]}" "${RATE[$first]}")"
    c="$(ratio "${CPU[$last]:-}" "${CPU[$first]:-}")"
    verdict() { awk -v v="${1%\%}" -v lo="$2" -v hi="$3" 'BEGIN { if (v == "-") print "unknown"; else if (v + 0 >= lo && v + 0 <= hi) print "met"; else print "not met" }'; }
    echo
    echo "$last against $first records: rate $r (target at least 90%: $(verdict "$r" 90 1e9)), CPU per decision $c (target at most 110%: $(verdict "$c" 0 110))"
fi
