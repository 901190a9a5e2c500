#!/usr/bin/env bash
# Policy benchmark: greylag (release build, SQLite default store) against a
# do-nothing DUNNO responder (the ceiling of this machine and load
# generator) and Debian's postgrey, in one run and on the same workloads,
# so the ratios hold on a noisy machine. Prints one line per run and a
# summary table; record the figures in BENCHMARKS.md.
#
# Environment:
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_WARMUP       warm-up seconds per run, not counted (default 2)
#   BENCH_WORKLOADS    "CONNECTIONS:NEW_SHARE ..." (default "16:0.3 16:0.9 64:0.3 64:0.9")
#   BENCH_SKIP_POSTGREY=1  leave postgrey out
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 16:0.9 64:0.3 64:0.9}"
DUNNO_PORT=10096
GREYLAG_PORT=10097
POSTGREY_PORT=10098

log() { printf 'bench.sh: %s\n' "$*" >&2; }

if [[ "${BENCH_SKIP_POSTGREY:-0}" != 1 ]]; then
    bash scripts/install-test-deps.sh
fi
log "building greylag (release)"
swift build -c release >&2
BIN="$(swift build -c release --show-bin-path)/greylag"

# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
# shellcheck source=scripts/lib/postgrey.sh
source scripts/lib/postgrey.sh

WORK="$(mktemp -d /tmp/greylag-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    postgrey_stop "$WORK/postgrey" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$BIN" bench-responder --listen "127.0.0.1:$DUNNO_PORT" >/dev/null 2>&1 &
PIDS+=($!)

cat >"$WORK/greylag.toml" <<TOML
[policy]
listen = ["127.0.0.1:$GREYLAG_PORT"]
[http]
listen = "none"
[store]
path = "$WORK/greylag.db"
TOML
# Default settings, logging every decision (info) to a file, as in production.
"$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag.log" 2>&1 &
PIDS+=($!)

TARGETS="dunno:$DUNNO_PORT greylag:$GREYLAG_PORT"
if [[ "${BENCH_SKIP_POSTGREY:-0}" != 1 ]]; then
    # postgrey with its defaults (auto-whitelist after 5, /24 keys), logging
    # every decision to a file like greylag.
    postgrey_start "$WORK/postgrey" "127.0.0.1:$POSTGREY_PORT" --auto-whitelist-clients=5 >&2
    TARGETS="$TARGETS postgrey:$POSTGREY_PORT"
fi
wait_port "$DUNNO_PORT"
wait_port "$GREYLAG_PORT"

log "machine: $(nproc) cores, $(uname -r); ${SECONDS_PER_RUN}s per run after ${WARMUP}s warm-up"
declare -A RATE P99
for workload in $WORKLOADS; do
    connections="${workload%%:*}"
    share="${workload##*:}"
    for target in $TARGETS; do
        name="${target%%:*}"
        port="${target##*:}"
        line="$("$BIN" bench --target "127.0.0.1:$port" --connections "$connections" --new-share "$share" \
            --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --label "$name")"
        echo "$line"
        RATE["$name $workload"]="$(sed -E 's/.*: ([0-9]+) decisions\/s.*/\1/' <<<"$line")"
        P99["$name $workload"]="$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")"
    done
done

echo
printf '%-14s %12s %12s %12s %10s %12s %14s\n' workload dunno/s greylag/s postgrey/s "p99 (ms)" "vs dunno" "vs postgrey"
for workload in $WORKLOADS; do
    d="${RATE[dunno $workload]}"
    g="${RATE[greylag $workload]}"
    p="${RATE[postgrey $workload]:-}"
    vs_d="$(awk -v g="$g" -v d="$d" 'BEGIN { printf "%.0f%%", 100 * g / d }')"
    vs_p="-"
    [[ -n "$p" && "$p" != 0 ]] && vs_p="$(awk -v g="$g" -v p="$p" 'BEGIN { printf "%.1fx", g / p }')"
    printf '%-14s %12s %12s %12s %10s %12s %14s\n' "${workload/:/ conn, }" "$d" "$g" "${p:--}" \
        "${P99[greylag $workload]}" "$vs_d" "$vs_p"
done
