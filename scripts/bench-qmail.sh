#!/usr/bin/env bash
# Time per call of the qmail helpers, which qmail starts once per recipient
# or connection, against the floor: a trivial C client
# (scripts/bench/qmail-floor.c, compiled here with cc -O2) that sends the
# request `qmail-spp` sends to the same daemon on the same unix socket and
# reads the answer. In one hyperfine run, on a plain release build:
#
#   the C client                                   the floor
#   greylag-qmail qmail-spp                        a defer (E451 printed)
#   greylag-qmail qmail-envelope-scanner A B       a defer (exit 101)
#   greylag-qmail qmail-wrap /bin/true             a pass, then exec /bin/true:
#                                                  the exec is included
#   /bin/true                                      what that exec costs alone
#   greylag qmail-spp                              the same helper in the big binary
#
# and then each one's ratio to the C client: of the mean and median wall
# time, and of the CPU time (user + system) hyperfine reads for each call.
# The goal (issue 21) is at most 2 for the greylag-qmail helpers.
#
# Environment: BENCH_RUNS (default 500), BENCH_WARMUP (default 30),
# BENCH_NO_BUILD=1 to use the release binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${BENCH_RUNS:-500}"
WARMUP="${BENCH_WARMUP:-30}"
log() { printf 'bench-qmail.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/lib/bench.sh
source scripts/lib/bench.sh

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number"
if ! command -v hyperfine >/dev/null; then
    log "installing hyperfine"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine >/dev/null
fi
command -v cc >/dev/null || die "no C compiler (apt-get install gcc)"
command -v python3 >/dev/null || die "python3 is missing (it reads hyperfine's results)"

if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    log "building the release binaries greylag and greylag-qmail (swift build -c release)"
    swift build -c release --product greylag >&2
    swift build -c release --product greylag-qmail >&2
fi
BIN_DIR="$(swift build -c release --show-bin-path)"
GREYLAG="$BIN_DIR/greylag"
SMALL="$BIN_DIR/greylag-qmail"
[[ -x "$GREYLAG" && -x "$SMALL" ]] || die "no release greylag and greylag-qmail in $BIN_DIR"

WORK="$(mktemp -d /tmp/greylag-bench-qmail.XXXXXX)"
PID=""
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cc -O2 -o "$WORK/qmail-floor" scripts/bench/qmail-floor.c
FLOOR="$WORK/qmail-floor"

# The helpers' socket is a helper_listen listener, as docs/qmail.md sets it
# up: only there does the wrapper's hold time (0 here: a pass) count.
bench_config "$WORK/greylag.toml" "unix:$WORK/plain.sock" "$WORK/greylag.db" "" \
    "helper_listen = [\"unix:$WORK/policy.sock\"]" $'[log]\nlevel = "warning"'
"$GREYLAG" serve --config "$WORK/greylag.toml" 2>"$WORK/daemon.log" &
PID=$!
for _ in $(seq 1 100); do [[ -S "$WORK/policy.sock" ]] && break; sleep 0.1; done
[[ -S "$WORK/policy.sock" ]] || { cat "$WORK/daemon.log" >&2; die "the daemon did not make its socket"; }

export GREYLAG_SOCKET="$WORK/policy.sock" GREYLISTING=1 TCPREMOTEIP=198.51.100.7 TCPREMOTEHOST=mail.example.org \
    SMTPHELOHOST=mail.example.org SMTPMAILFROM=sender@example.org SMTPRCPTTO=user@example.net JGREYLIST_HOLDTIME=0

# Each command once, to check that it gets the answer it is timed for.
out="$("$FLOOR")"
[[ "$out" == "E451 "* ]] || die "the C client got no defer: '$out'"
out="$("$SMALL" qmail-spp)"
[[ "$out" == "E451 "* ]] || die "greylag-qmail qmail-spp did not defer: '$out'"
status=0; "$SMALL" qmail-envelope-scanner sender@example.org user@example.net || status=$?
[[ $status -eq 101 ]] || die "greylag-qmail qmail-envelope-scanner exited $status, not 101 (defer)"
out="$("$SMALL" qmail-wrap /bin/echo passed </dev/null)"
[[ "$out" == passed ]] || die "greylag-qmail qmail-wrap did not pass the connection: '$out'"
out="$("$GREYLAG" qmail-spp)"
[[ "$out" == "E451 "* ]] || die "greylag qmail-spp did not defer: '$out'"

log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs each after $WARMUP warm-up runs"
log "greylag-qmail: $(du -h "$SMALL" | cut -f1), $(file -b "$SMALL" | grep -oE 'static-pie linked|statically linked|dynamically linked' || echo '?'); greylag: $(du -h "$GREYLAG" | cut -f1)"
hyperfine -N -i --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$WORK/results.json" \
    -n "C client (floor)" "$FLOOR" \
    -n "greylag-qmail qmail-spp" "$SMALL qmail-spp" \
    -n "greylag-qmail qmail-envelope-scanner" "$SMALL qmail-envelope-scanner sender@example.org user@example.net" \
    -n "greylag-qmail qmail-wrap /bin/true (pass + exec)" "$SMALL qmail-wrap /bin/true" \
    -n "/bin/true alone (the exec above)" "/bin/true" \
    -n "greylag qmail-spp (big binary)" "$GREYLAG qmail-spp" 2>&1 </dev/null |
    grep -E "^Benchmark|Time \(mean|Range"

python3 - "$WORK/results.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor = results[0]
def cpu(r): return r["user"] + r["system"]
print("\nper call, ms (mean, median, CPU = user + system) and ratio to the C client:")
print(f"{'':48} {'mean':>6} {'median':>6} {'CPU':>6}   {'x mean':>6} {'x median':>8} {'x CPU':>6}")
for r in results:
    print(f"{r['command']:48} {r['mean'] * 1e3:6.2f} {r['median'] * 1e3:6.2f} {cpu(r) * 1e3:6.2f}   "
          f"{r['mean'] / floor['mean']:6.2f} {r['median'] / floor['median']:8.2f} {cpu(r) / cpu(floor):6.2f}")
wrap, true = results[3], results[4]
decision = wrap["median"] - true["median"]
print(f"\nqmail-wrap's decision without the exec of /bin/true (median of the one less the other's): "
      f"{decision * 1e3:.2f} ms, {decision / floor['median']:.2f} x the C client's median")
EOF
