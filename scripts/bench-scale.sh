#!/usr/bin/env bash
# Store size scaling: greylag's decisions/s, p99 and resident memory with
# 10 thousand, 1 million and 10 million records in its SQLite store. For
# each size: `greylag bench-fill` writes the records (half passed, half
# waiting), the daemon starts on that file with its defaults, and
# `greylag bench` measures 16 connections with 30% new triplets. Prints one
# line per size and a table with the rate relative to the smallest size.
#
# Environment:
#   BENCH_SIZES     record counts (default "10000 1000000 10000000")
#   BENCH_SECONDS   measured seconds per size (default 10)
#   BENCH_PORT      greylag's port (default 10995)
#   BENCH_DIR       where the store files go (default a new directory in /tmp;
#                   10 million records take about 1.5 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${BENCH_SIZES:-10000 1000000 10000000}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
PORT="${BENCH_PORT:-10995}"
log() { printf 'bench-scale.sh: %s\n' "$*" >&2; }

swift build -c release --product greylag >&2
BIN="$(swift build -c release --show-bin-path)/greylag"
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

log "machine: $(nproc) cores; ${SECONDS_PER_RUN}s per size, 16 connections, 30% new triplets"
declare -A RATE P99 RSS0 RSS1 FILL SIZE
for n in $SIZES; do
    db="$WORK/greylag-$n.db"
    rm -f "$db" "$db-wal" "$db-shm"
    FILL[$n]="$("$BIN" bench-fill --path "$db" --records "$n" | sed -E 's/.* in ([0-9.]+) s/\1/')"
    bench_config "$WORK/greylag.toml" "127.0.0.1:$PORT" "$db"
    "$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag-$n.log" 2>&1 &
    PID=$!
    wait_port "$PORT"
    RSS0[$n]="$(rss_mib "$PID")"
    line="$("$BIN" bench --target "127.0.0.1:$PORT" --connections 16 --new-share 0.3 \
        --duration "$SECONDS_PER_RUN" --warmup 2 --label "greylag with $n records")"
    echo "$line"
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
echo
printf '%12s %10s %10s %12s %10s %14s %12s\n' records "file MiB" "fill (s)" decisions/s "p99 (ms)" "RSS MiB" "vs $first"
for n in $SIZES; do
    printf '%12s %10s %10s %12s %10s %14s %12s\n' "$n" "${SIZE[$n]}" "${FILL[$n]}" "${RATE[$n]}" "${P99[$n]}" \
        "${RSS0[$n]} -> ${RSS1[$n]}" "$(awk -v r="${RATE[$n]}" -v b="${RATE[$first]}" 'BEGIN { printf "%.0f%%", 100 * r / b }')"
done
