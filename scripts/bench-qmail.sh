#!/usr/bin/env bash
# Time per invocation of the qmail helpers (greylag qmail-spp and
# qmail-envelope-scanner), which qmail starts once per recipient: a release
# binary linked with the Swift runtime statically (--static-swift-stdlib, as
# the README recommends for qmail sites) and, for comparison, the default
# dynamically linked release binary, each against a running daemon on a
# unix socket. Prints hyperfine's figures (-i: the scanner exits 101 to defer).
#
# Environment: BENCH_RUNS (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${BENCH_RUNS:-300}"
log() { printf 'bench-qmail.sh: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh

if ! command -v hyperfine >/dev/null; then
    log "installing hyperfine"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine >/dev/null
fi

log "building release binaries (static Swift runtime in .build-static, dynamic in .build)"
swift build -c release --static-swift-stdlib --build-path .build-static >&2
swift build -c release >&2
STATIC=".build-static/release/greylag"
DYNAMIC="$(swift build -c release --show-bin-path)/greylag"

WORK="$(mktemp -d /tmp/greylag-bench-qmail.XXXXXX)"
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

bench_config "$WORK/greylag.toml" "unix:$WORK/policy.sock" "$WORK/greylag.db" "" "" $'[log]\nlevel = "warning"'
"$STATIC" serve --config "$WORK/greylag.toml" 2>"$WORK/daemon.log" &
PID=$!
for _ in $(seq 1 100); do [[ -S "$WORK/policy.sock" ]] && break; sleep 0.1; done

export GREYLAG_SOCKET="$WORK/policy.sock" GREYLISTING=1 TCPREMOTEIP=198.51.100.7 TCPREMOTEHOST=mail.example.org \
    SMTPMAILFROM=sender@example.org SMTPRCPTTO=user@example.net
log "machine: $(nproc) cores; $RUNS runs each"
for variant in static dynamic; do
    bin="$STATIC"
    [[ "$variant" == dynamic ]] && bin="$DYNAMIC"
    echo "== $variant ($(du -h "$bin" | cut -f1))"
    hyperfine -N -i --warmup 20 --runs "$RUNS" --style basic \
        -n "qmail-spp ($variant)" "$bin qmail-spp" \
        -n "qmail-envelope-scanner ($variant)" "$bin qmail-envelope-scanner sender@example.org user@example.net" \
        -n "version only, no daemon asked ($variant)" "$bin --version" 2>&1 |
        grep -E "^Benchmark|Time \(mean|Range"
done
