#!/usr/bin/env bash
# Shared-store benchmark: greylag (release build with the MariaDB trait) on
# PostgreSQL and on MariaDB, each a throwaway server on loopback started
# here, measured with greylag's own load generator on the same workloads as
# scripts/bench.sh. The servers run with durability relaxed (PostgreSQL
# fsync=off, InnoDB flush at commit=2), so the figures are the cost of the
# round trips and of the servers' work, not of this machine's disk. Prints
# one line per run and a summary table; record the figures in BENCHMARKS.md.
#
# Must run as root (the servers run as their own users).
#
# Environment:
#   BENCH_SECONDS      measured seconds per run (default 10)
#   BENCH_WARMUP       warm-up seconds per run, not counted (default 2)
#   BENCH_WORKLOADS    "CONNECTIONS:NEW_SHARE ..." (default "16:0.3 64:0.9")
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
WORKLOADS="${BENCH_WORKLOADS:-16:0.3 64:0.9}"
PG_PORT=15433
MARIADB_PORT=13307
GREYLAG_PORT=10087

log() { printf 'bench-shared.sh: %s\n' "$*" >&2; }

bash scripts/install-test-deps.sh
log "building greylag (release, --traits MariaDB)"
swift build -c release --traits MariaDB >&2
BIN="$(swift build -c release --traits MariaDB --show-bin-path)/greylag"

# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/mariadb.sh
source scripts/lib/mariadb.sh

WORK="$(mktemp -d /tmp/greylag-bench-shared.XXXXXX)"
chmod 755 "$WORK"
GREYLAG_PID=""
cleanup() {
    [[ -n "$GREYLAG_PID" ]] && kill "$GREYLAG_PID" 2>/dev/null || true
    postgres_stop "$WORK/postgres" >/dev/null 2>&1 || true
    mariadb_stop "$WORK/mariadb" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

postgres_start "$WORK/postgres" "$PG_PORT" bench-pw
mariadb_start "$WORK/mariadb" "$MARIADB_PORT" bench-pw

log "machine: $(nproc) cores, $(uname -r); ${SECONDS_PER_RUN}s per run after ${WARMUP}s warm-up"
declare -A RATE P50 P99
for backend in postgresql mysql; do
    port="$PG_PORT"
    [[ "$backend" == mysql ]] && port="$MARIADB_PORT"
    cat >"$WORK/greylag.toml" <<TOML
[policy]
listen = ["127.0.0.1:$GREYLAG_PORT"]
[http]
listen = "none"
[milter]
listen = []
[store]
backend = "$backend"
host = "127.0.0.1"
port = $port
user = "greylag"
password = "bench-pw"
database = "greylag"
path = "$WORK/admin"
TOML
    # Default settings, logging every decision (info) to a file, as in production.
    "$BIN" serve --config "$WORK/greylag.toml" >"$WORK/greylag-$backend.log" 2>&1 &
    GREYLAG_PID=$!
    wait_port "$GREYLAG_PORT"
    for workload in $WORKLOADS; do
        connections="${workload%%:*}"
        share="${workload##*:}"
        line="$("$BIN" bench --target "127.0.0.1:$GREYLAG_PORT" --connections "$connections" --new-share "$share" \
            --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --label "greylag-$backend")"
        echo "$line"
        RATE["$backend $workload"]="$(sed -E 's/.*: ([0-9]+) decisions\/s.*/\1/' <<<"$line")"
        P50["$backend $workload"]="$(sed -E 's/.*p50 ([0-9.]+) ms.*/\1/' <<<"$line")"
        P99["$backend $workload"]="$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")"
    done
    if grep -q "store degraded" "$WORK/greylag-$backend.log"; then
        log "greylag on $backend answered some decisions by the failure mode:"
        grep "store degraded\|store recovered" "$WORK/greylag-$backend.log" >&2
    fi
    kill "$GREYLAG_PID"
    wait "$GREYLAG_PID" 2>/dev/null || true
    GREYLAG_PID=""
done

echo
printf '%-10s %-16s %14s %10s %10s\n' backend workload decisions/s "p50 (ms)" "p99 (ms)"
for backend in postgresql mysql; do
    for workload in $WORKLOADS; do
        printf '%-10s %-16s %14s %10s %10s\n' "$backend" "${workload/:/ conn, }" "${RATE[$backend $workload]}" \
            "${P50[$backend $workload]}" "${P99[$backend $workload]}"
    done
done
