# shellcheck shell=bash
# A throwaway PostgreSQL 15 server on loopback for the shared-store tests.
# Source this file; it defines functions only. Requires root (the server
# runs as the "postgres" user, as initdb refuses root).
#
#   postgres_start DIR PORT PASSWORD  -> cluster in DIR, listening on 127.0.0.1:PORT,
#                                        database "greylag" owned by user "greylag"
#                                        with PASSWORD (scram-sha-256 over TCP; the
#                                        user may create databases, one per test)
#   postgres_stop DIR

POSTGRES_BIN="${POSTGRES_BIN:-/usr/lib/postgresql/15/bin}"

_pg_log() { printf 'postgres.sh: %s\n' "$*" >&2; }

postgres_start() {
    local dir="${1:?usage: postgres_start DIR PORT PASSWORD}" port="${2:?}" password="${3:?}"
    if [[ ! -x "$POSTGRES_BIN/initdb" ]]; then
        _pg_log "PostgreSQL 15 not found in $POSTGRES_BIN (apt-get install postgresql-15)"
        return 1
    fi
    mkdir -p "$dir"
    chmod 755 "$dir"
    chown postgres "$dir"
    local pwfile="$dir/.pw"
    printf '%s\n' "$password" >"$pwfile"
    chown postgres "$pwfile"
    if ! runuser -u postgres -- "$POSTGRES_BIN/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
        _pg_log "initdb failed, see $dir/initdb.log"
        cat "$dir/initdb.log" >&2
        return 1
    fi
    if ! runuser -u postgres -- "$POSTGRES_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start \
        >"$dir/pg_ctl.out" 2>&1; then
        # (Both streams to a file: the server inherits them and would hold a caller's pipe open.)
        _pg_log "PostgreSQL did not start, see $dir/server.log"
        cat "$dir/pg_ctl.out" >&2
        tail -n 20 "$dir/server.log" >&2
        return 1
    fi
    runuser -u postgres -- "$POSTGRES_BIN/psql" -h "$dir" -p "$port" -U postgres -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE USER greylag CREATEDB PASSWORD '$password';
CREATE DATABASE greylag OWNER greylag;
SQL
    _pg_log "postgres up on 127.0.0.1:$port (database greylag, user greylag)"
}

postgres_stop() {
    local dir="${1:?usage: postgres_stop DIR}"
    [[ -d "$dir/data" ]] || return 0
    runuser -u postgres -- "$POSTGRES_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}
