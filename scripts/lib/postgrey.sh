# shellcheck shell=bash
# Helpers to run a throwaway postgrey (reference greylisting policy server)
# on loopback. Source this file; it defines functions only.
#
#   postgrey_start DIR PORT [extra postgrey args...]   e.g. --delay=2
#   postgrey_stop DIR
#
# PORT is either a bare port (listens on 127.0.0.1:PORT) or HOST:PORT.
# Layout under DIR (created if missing; DIR and its parents must be
# traversable by the "postgrey" user, so DIR itself is chmod'ed 755):
#   DIR/db                    Berkeley DB files, owned by postgrey
#   DIR/whitelist_clients     empty whitelists, so the distribution's lists
#   DIR/whitelist_recipients  (/etc/postgrey/...) do not affect the tests
#   DIR/postgrey.log          postgrey's log (it runs in the foreground and
#                             logs to stderr; no syslog is needed)
#   DIR/postgrey.pid          pid of the running postgrey
#
# Default passed before the extra args: --auto-whitelist-clients=0, so that
# the many triplets of a test run from 127.0.0.1 / ::1 never get the client
# auto-whitelisted (a later --auto-whitelist-clients=N in the extra args
# overrides it). Everything else is stock postgrey (e.g. triplets keyed on
# the /24 or /64 network; add --lookup-by-host to key on the exact address).
#
# Requires root (postgrey binds as root and then switches to user postgrey).

POSTGREY_BIN="${POSTGREY_BIN:-/usr/sbin/postgrey}"
# Seconds to wait for postgrey to accept connections after start.
POSTGREY_START_TIMEOUT="${POSTGREY_START_TIMEOUT:-30}"

_pg_log() { printf 'postgrey.sh: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/daemon.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemon.sh"

postgrey_start() {
    if (($# < 2)); then
        _pg_log "usage: postgrey_start DIR PORT [extra postgrey args...]"
        return 2
    fi
    local dir="$1" listen="$2"
    shift 2

    daemon_preflight postgrey "$POSTGREY_BIN" "$dir" "run scripts/install-test-deps.sh" || return

    # HOST:PORT or bare PORT; derive the address to probe for readiness.
    local LISTEN_HOST LISTEN_PORT
    split_listen "$listen"
    local probe_host="$LISTEN_HOST" port="$LISTEN_PORT"
    [[ "$listen" == *:* ]] || listen="127.0.0.1:$port"

    claim_port postgrey "$dir/postgrey.pid" "$probe_host" "$port" || return 1

    mkdir -p "$dir/db"
    chmod 755 "$dir"
    chown postgrey:postgrey "$dir/db"
    chmod 700 "$dir/db"
    : >"$dir/whitelist_clients"
    : >"$dir/whitelist_recipients"
    chmod 644 "$dir/whitelist_clients" "$dir/whitelist_recipients"

    # Foreground mode (no --daemonize): logs go to stderr, captured in the
    # log file, and $! is postgrey's own pid. stdin/stdout are redirected so
    # that a caller using $(...) does not hang on the inherited pipe.
    "$POSTGREY_BIN" \
        --inet="$listen" \
        --dbdir="$dir/db" \
        --user=postgrey --group=postgrey \
        --whitelist-clients="$dir/whitelist_clients" \
        --whitelist-recipients="$dir/whitelist_recipients" \
        --auto-whitelist-clients=0 \
        "$@" \
        </dev/null >>"$dir/postgrey.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/postgrey.pid"

    await_listening postgrey "$dir/postgrey.pid" "$probe_host" "$port" "$POSTGREY_START_TIMEOUT" "$dir/postgrey.log" || return 1
    _pg_log "postgrey up: pid $pid on $listen, dbdir $dir/db"
}

postgrey_stop() {
    local dir="${1:?usage: postgrey_stop DIR}"
    stop_pidfile postgrey "$dir/postgrey.pid"
}
