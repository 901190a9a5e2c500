# shellcheck shell=bash
# Helpers to run a throwaway gross (Debian's C greylisting daemon, grossd)
# as a Postfix policy server on loopback. Source this file; it defines
# functions only.
#
#   gross_start DIR PORT [extra grossd.conf lines...]   e.g. "grey_delay = 2"
#   gross_stop DIR
#
# PORT is either a bare port (listens on 127.0.0.1:PORT) or HOST:PORT
# (IPv4 only: grossd knows no IPv6).
# Layout under DIR (created if missing and chmod'ed 755: grossd drops to
# the "gross" user before it reads its configuration again, so DIR and its
# parents must be traversable):
#   DIR/grossd.conf   its configuration (mode 644), nothing from /etc
#   DIR/grossd.log    its log: in the foreground (-d) it logs every
#                     decision to standard output ("a=greylist ...",
#                     "a=match ..."); no syslog is needed
#   DIR/grossd.pid    pid of the running grossd, written by gross_start
#                     (grossd's own pid file is written after it dropped
#                     its privileges, so it cannot create one in DIR)
#
# The configuration: the Postfix policy protocol only, no checks at all (no
# DNSBL, RHSBL or DNSWL look-ups: grossd is then a plain greylister), and
# grey_threshold = 0, so that every new triplet is greylisted (gross
# otherwise greylists only clients that a check found suspicious);
# replication off (-r). gross keeps its triplets in Bloom filters in memory
# (no state file): a triplet seen more than grey_delay seconds ago (default
# here 300, as greylag's and postgrey's delay) is let through; addresses are
# matched on their /24 (grey_mask, its default). Extra lines come after
# these and can override them.
#
# Limits of gross worth knowing when reading its figures: it keys only IPv4
# clients; to an IPv6 client it answers "dunno" without greylisting (logging
# "not a valid ip address"), so load it with IPv4 clients only (`greylag
# bench --ipv4-only`). Its status server always listens on 127.0.0.1:5522
# (not configurable in gross 1.0.2; "status_port" is rejected); if that port
# is taken, grossd still serves policy requests and only logs "Bind failed
# in statmgr".
#
# Requires root (grossd runs as the "gross" user that the Debian package
# creates; run scripts/install-test-deps.sh, which installs the package
# without starting its system service).

GROSS_BIN="${GROSS_BIN:-/usr/sbin/grossd}"
# Seconds to wait for grossd to accept connections after start.
GROSS_START_TIMEOUT="${GROSS_START_TIMEOUT:-30}"

_gross_log() { printf 'gross.sh: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/daemon.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemon.sh"

gross_start() {
    if (($# < 2)); then
        _gross_log "usage: gross_start DIR PORT [extra grossd.conf lines...]"
        return 2
    fi
    local dir="$1" listen="$2"
    shift 2

    daemon_preflight gross "$GROSS_BIN" "$dir" "run scripts/install-test-deps.sh" || return

    local LISTEN_HOST LISTEN_PORT
    split_listen "$listen"
    local host="$LISTEN_HOST" port="$LISTEN_PORT"
    if [[ ! "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        _gross_log "PORT must be a number from 1 to 65535: '$port'"
        return 2
    fi
    if [[ ! "$host" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        _gross_log "grossd listens on IPv4 addresses only: '$host'"
        return 2
    fi

    claim_port gross "$dir/grossd.pid" "$host" "$port" || return 1

    mkdir -p "$dir"
    chmod 755 "$dir"
    {
        printf '# Written by scripts/lib/gross.sh: a plain greylister on loopback.\n'
        printf 'host = %s\nport = %s\n' "$host" "$port"
        printf 'protocol = postfix\n'
        printf 'grey_threshold = 0\n'
        printf 'grey_delay = 300\n'
        printf 'sync_listen = %s\n' "$host"
        local line
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$dir/grossd.conf"
    chmod 644 "$dir/grossd.conf"
    if grep -Eq '^[[:space:]]*(check|dnsbl|rhsbl|dnswl|blocker_host|sync_peer)[[:space:]]*=' "$dir/grossd.conf"; then
        _gross_log "refusing checks or a sync peer in $dir/grossd.conf: they would reach the network"
        return 2
    fi
    # grossd reads its configuration as the gross user; one it cannot read
    # is silently taken as empty ("No protocols configured", and it waits
    # forever without listening).
    if ! runuser -u gross -- test -r "$dir/grossd.conf"; then
        _gross_log "the gross user cannot read $dir/grossd.conf: make DIR's parents traversable (chmod 755)"
        return 1
    fi

    # Foreground (-d), replication off (-r), as the gross user (-u). $! is
    # grossd's own pid: it does not fork in the foreground.
    "$GROSS_BIN" -d -r -u gross -f "$dir/grossd.conf" </dev/null >>"$dir/grossd.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/grossd.pid"

    await_listening gross "$dir/grossd.pid" "$host" "$port" "$GROSS_START_TIMEOUT" "$dir/grossd.log" || return 1
    _gross_log "gross up: pid $pid on $host:$port, configuration $dir/grossd.conf"
}

gross_stop() {
    local dir="${1:?usage: gross_stop DIR}"
    stop_pidfile gross "$dir/grossd.pid"
}
