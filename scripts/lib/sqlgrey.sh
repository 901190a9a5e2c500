# shellcheck shell=bash
# Helpers to run a throwaway sqlgrey (Debian's Perl greylisting policy server,
# a second reference next to postgrey) on loopback. Source this file; it
# defines functions only.
#
#   sqlgrey_start DIR PORT [extra sqlgrey.conf lines...]   e.g. reconnect_delay=1
#   sqlgrey_stop DIR
#
# PORT is either a bare port (listens on 127.0.0.1:PORT) or HOST:PORT, where
# HOST must be a loopback address (127.x.y.z, or [::1] for IPv6). Extra
# arguments are "key = value" lines appended to the generated sqlgrey.conf;
# sqlgrey keeps the last value of a key, so they override the defaults below.
#
# Layout under DIR (created if missing; DIR and its parents must be
# traversable by the "sqlgrey" user, so DIR itself is chmod'ed 755):
#   DIR/sqlgrey.conf          the generated config (/etc/sqlgrey is never read:
#                             sqlgrey is started with -f and conf_dir = DIR)
#   DIR/db/sqlgrey.db         SQLite database (DBD::SQLite, no DB server); DIR/db
#                             is owned by sqlgrey because SQLite writes its
#                             journal next to the database file
#   DIR/clients_ip_whitelist, DIR/clients_fqdn_whitelist (+ .local)
#                             empty whitelists, so the distribution's lists
#                             (/etc/sqlgrey/...) do not affect the tests
#   DIR/smtp_server.regexp, DIR/dyn_fqdn.regexp
#                             copies of the distribution's regexps (used only
#                             with greymethod = smart)
#   DIR/sqlgrey.log           sqlgrey's log (it runs in the foreground, without
#                             --daemonize, and then logs to stderr instead of
#                             syslog)
#   DIR/sqlgrey.pid           pid of the running sqlgrey (written by this
#                             script; sqlgrey writes no pid file in foreground)
#
# Settings in the generated config; everything else is stock sqlgrey 1.8
# (reconnect_delay = 5 minutes, max_connect_age = 24 h, auto-whitelists on
# with awl_age = 60 days and group_domain_level = 2, reject_first_attempt =
# delay, i.e. the answer to a new triplet is "defer_if_permit", prepend = 1):
#   greymethod = classc       triplets keyed on the client's /24 (IPv6: the /64
#                             for EUI-64 addresses, else the full address), like
#                             postgrey. sqlgrey's own default is "smart", which
#                             keys on the full address when client_name is
#                             "unknown" or looks dynamic; pass greymethod=smart
#                             to get it.
#   admin_mail =              (empty) never runs mail(1) to notify anybody
#   loglevel = 2              normal
# sqlgrey itself never fetches anything; the whitelist updater
# (update_sqlgrey_config, wget from whitelists_host) is a separate program that
# this script never runs. sqlgrey is a single process (Net::Server::Multiplex);
# it only forks for clean_method = async, which is not used here.
#
# Requires root (sqlgrey binds as root and then switches to user sqlgrey) and
# the Debian packages sqlgrey and libdbd-sqlite3-perl.

SQLGREY_BIN="${SQLGREY_BIN:-/usr/sbin/sqlgrey}"
# Seconds to wait for sqlgrey to accept connections after start.
SQLGREY_START_TIMEOUT="${SQLGREY_START_TIMEOUT:-30}"

_sg_log() { printf 'sqlgrey.sh: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/daemon.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemon.sh"

sqlgrey_start() {
    if (($# < 2)); then
        _sg_log "usage: sqlgrey_start DIR PORT [extra sqlgrey.conf lines...]"
        return 2
    fi
    local dir="$1" listen="$2"
    shift 2

    daemon_preflight sqlgrey "$SQLGREY_BIN" "$dir" "apt-get install sqlgrey libdbd-sqlite3-perl" || return
    if ! perl -MDBD::SQLite -e 1 2>/dev/null; then
        _sg_log "DBD::SQLite is missing (apt-get install libdbd-sqlite3-perl)"
        return 1
    fi

    # HOST:PORT or bare PORT; derive the address to probe for readiness.
    local LISTEN_HOST LISTEN_PORT
    split_listen "$listen"
    local probe_host="$LISTEN_HOST" port="$LISTEN_PORT"
    if [[ ! "$port" =~ ^[0-9]+$ ]]; then
        _sg_log "bad port in '$listen'"
        return 2
    fi
    if [[ "$probe_host" == "::1" ]]; then
        listen="[::1]:$port"
    elif [[ "$probe_host" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        listen="$probe_host:$port"
    else
        _sg_log "HOST must be a loopback address (127.x.y.z or [::1]): '$listen'"
        return 2
    fi

    claim_port sqlgrey "$dir/sqlgrey.pid" "$probe_host" "$port" || return 1

    mkdir -p "$dir/db"
    chmod 755 "$dir"
    chown sqlgrey:sqlgrey "$dir/db"
    chmod 700 "$dir/db"
    local f
    for f in clients_ip_whitelist clients_ip_whitelist.local \
        clients_fqdn_whitelist clients_fqdn_whitelist.local; do
        : >"$dir/$f"
    done
    for f in smtp_server.regexp dyn_fqdn.regexp; do
        if [[ -r "/etc/sqlgrey/$f" ]]; then
            cp "/etc/sqlgrey/$f" "$dir/$f"
        else
            # sqlgrey falls back to '.' (matches everything) for a missing
            # regexp file; a never-matching one is closer to "no list".
            printf '%s\n' '^$' >"$dir/$f"
        fi
    done

    {
        printf '# generated by scripts/lib/sqlgrey.sh; do not edit\n'
        printf 'conf_dir = %s\n' "$dir"
        printf 'inet = %s\n' "$listen"
        printf 'user = sqlgrey\n'
        printf 'group = sqlgrey\n'
        printf 'pidfile = %s\n' "$dir/sqlgrey.pid"
        printf 'loglevel = 2\n'
        printf 'db_type = SQLite\n'
        printf 'db_name = %s\n' "$dir/db/sqlgrey.db"
        printf 'greymethod = classc\n'
        printf 'admin_mail =\n'
        local line
        for line in "$@"; do
            printf '%s\n' "$line"
        done
    } >"$dir/sqlgrey.conf"
    chmod 644 "$dir"/sqlgrey.conf "$dir"/clients_* "$dir"/*.regexp

    # Foreground mode (no --daemonize): Net::Server logs to stderr, captured
    # in the log file, and $! is sqlgrey's own pid. stdin/stdout are
    # redirected so that a caller using $(...) does not hang on the inherited
    # pipe. cd to DIR so that nothing lands in the caller's directory.
    (cd "$dir" && exec "$SQLGREY_BIN" -f "$dir/sqlgrey.conf") \
        </dev/null >>"$dir/sqlgrey.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/sqlgrey.pid"

    await_listening sqlgrey "$dir/sqlgrey.pid" "$probe_host" "$port" "$SQLGREY_START_TIMEOUT" "$dir/sqlgrey.log" || return 1
    _sg_log "sqlgrey up: pid $pid on $listen, database $dir/db/sqlgrey.db"
}

sqlgrey_stop() {
    local dir="${1:?usage: sqlgrey_stop DIR}"
    stop_pidfile sqlgrey "$dir/sqlgrey.pid"
}
