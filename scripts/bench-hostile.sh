#!/usr/bin/env bash
# Hostile peers: how much 1,000 connections that send nothing, and 1,000
# that send a request one byte every 100 ms, slow down the MTA connections
# beside them. Builds greylag in release, runs one daemon (SQLite default,
# logging every decision to a file) and measures, in this order:
# baseline, beside idle connections, beside byte-at-a-time connections,
# baseline again. Prints one line per run and the ratios to the mean
# baseline.
#
# Environment:
#   BENCH_SECONDS   measured seconds per run (default 8)
#   BENCH_HOSTILE   hostile connections per run (default 1000)
#   BENCH_PORT      greylag's port (default 10994)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
HOSTILE="${BENCH_HOSTILE:-1000}"
PORT="${BENCH_PORT:-10994}"
log() { printf 'bench-hostile.sh: %s\n' "$*" >&2; }

# Each hostile connection is a descriptor on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 2 * HOSTILE + 512 )); then
    log "the descriptor limit ($(ulimit -n)) is too low for $HOSTILE hostile connections"
    exit 1
fi

swift build -c release --product greylag >&2
BIN="$(swift build -c release --show-bin-path)/greylag"
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh

WORK="$(mktemp -d /tmp/greylag-hostile.XXXXXX)"
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

bench_config "$WORK/greylag.toml" "127.0.0.1:$PORT" "$WORK/greylag.db" "" "max_connections = $((HOSTILE + 100))"
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PID=$!
wait_port "$PORT"

log "machine: $(nproc) cores; ${SECONDS_PER_RUN}s per run, 16 connections, 30% new triplets"
declare -A RATE P99
for run in baseline idle trickle baseline2; do
    extra=()
    case "$run" in
        idle) extra=(--idle "$HOSTILE") ;;
        trickle) extra=(--trickle "$HOSTILE") ;;
    esac
    out="$("$BIN" bench --target "127.0.0.1:$PORT" --connections 16 --new-share 0.3 \
        --duration "$SECONDS_PER_RUN" --warmup 2 --label "$run" "${extra[@]}")"
    echo "$out"
    line="$(head -n 1 <<<"$out")"
    RATE[$run]="$(sed -E 's/.*: ([0-9]+) decisions\/s.*/\1/' <<<"$line")"
    P99[$run]="$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")"
done

base="$(awk -v a="${RATE[baseline]}" -v b="${RATE[baseline2]}" 'BEGIN { print (a + b) / 2 }')"
echo
printf '%-28s %12s %10s %14s\n' run decisions/s "p99 (ms)" "vs baseline"
for run in baseline idle trickle baseline2; do
    label="$run"
    [[ "$run" == idle ]] && label="beside $HOSTILE idle"
    [[ "$run" == trickle ]] && label="beside $HOSTILE byte-at-a-time"
    printf '%-28s %12s %10s %14s\n' "$label" "${RATE[$run]}" "${P99[$run]}" \
        "$(awk -v r="${RATE[$run]}" -v b="$base" 'BEGIN { printf "%.0f%%", 100 * r / b }')"
done
grep -c "refused" "$WORK/greylag.log" >/dev/null && log "refusals logged: $(grep -c refused "$WORK/greylag.log")" || true
