#!/usr/bin/env bash
# Runs the attacks of issue 17 against a release build of greylag and
# prints, for each, what happened and whether the daemon was alive and
# answering a well-behaved client afterwards. Exit status 1 if any attack
# got through or the daemon died.
#
#   scripts/hostile.sh              # builds the release binary first
#   GREYLAG_BINARY=path scripts/hostile.sh [ATTACK...]   # an existing binary, some attacks
#
# The daemon runs on loopback ports chosen at random, under the descriptor
# limit systemd gives a service by default (1024), with an HTTP token, a
# milter listener and a qmail helper socket; it is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'hostile.sh: %s\n' "$*" >&2; }

if [[ -z "${GREYLAG_BINARY:-}" ]]; then
    log "building the release binary"
    swift build -c release --product greylag >&2
    GREYLAG_BINARY="$(swift build -c release --show-bin-path)/greylag"
fi
command -v python3 >/dev/null || { log "python3 is needed"; exit 2; }

WORK="$(mktemp -d /tmp/greylag-hostile.XXXXXX)"
PID=""
cleanup() {
    local status=$?
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -f "$WORK/daemon.log" ]]; then
        log "daemon log (last 30 lines):"
        tail -n 30 "$WORK/daemon.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
POLICY_PORT=$(port); MILTER_PORT=$(port); HTTP_PORT=$(port)
TOKEN="hostile-$RANDOM$RANDOM$RANDOM$RANDOM"
cat > "$WORK/greylag.toml" <<TOML
[policy]
listen = ["127.0.0.1:$POLICY_PORT"]
helper_listen = ["unix:$WORK/helper.sock"]
[milter]
listen = ["inet:$MILTER_PORT@127.0.0.1"]
[http]
listen = "127.0.0.1:$HTTP_PORT"
token = "$TOKEN"
[store]
path = "$WORK/greylag.db"
[reload]
watch_interval = 0
[whitelist]
senders = ['/^(a+)+\$/', '/(a|aa)*b\$/', '/^(x+x+)+y\$/', '/^(.*a){20}\$/']
TOML
"$GREYLAG_BINARY" check-config --config "$WORK/greylag.toml" >&2
log "starting $GREYLAG_BINARY (policy $POLICY_PORT, milter $MILTER_PORT, http $HTTP_PORT, ulimit -n 1024)"
( ulimit -n 1024 && exec "$GREYLAG_BINARY" serve --config "$WORK/greylag.toml" ) > "$WORK/daemon.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
    grep -q "serving policy" "$WORK/daemon.log" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || { log "the daemon did not start"; exit 1; }
    sleep 0.1
done

export HOSTILE_POLICY_PORT=$POLICY_PORT HOSTILE_MILTER_PORT=$MILTER_PORT HOSTILE_HTTP_PORT=$HTTP_PORT
export HOSTILE_HELPER_SOCKET="$WORK/helper.sock" HOSTILE_TOKEN=$TOKEN HOSTILE_PID=$PID
export HOSTILE_BINARY=$GREYLAG_BINARY HOSTILE_WORK=$WORK
status=0
python3 scripts/lib/hostile.py "$@" || status=$?
log "daemon log: $(grep -c . "$WORK/daemon.log") lines, of which warnings/errors:"
grep -E " (warning|error|critical) " "$WORK/daemon.log" | cut -c1-220 | sort | uniq -c | sort -rn | head -20 >&2 || true
exit $status
