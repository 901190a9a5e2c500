# shellcheck shell=bash
# A throwaway MariaDB server on loopback for the shared-store tests.
# Source this file; it defines functions only. Requires root (the server
# runs as the "mysql" user).
#
#   mariadb_start DIR PORT PASSWORD -> data in DIR, listening on 127.0.0.1:PORT
#                                      and on the socket DIR/mysqld.sock; user
#                                      "greylag" with PASSWORD (from localhost
#                                      and 127.0.0.1) owns database "greylag"
#                                      and may create databases named greylag_*
#                                      (one per test)
#   mariadb_stop DIR                -> clean shutdown
#   mariadb_kill DIR                -> SIGKILL, as a crash or a pulled cable

_mdb_log() { printf 'mariadb.sh: %s\n' "$*" >&2; }

mariadb_start() {
    local dir="${1:?usage: mariadb_start DIR PORT PASSWORD}" port="${2:?}" password="${3:?}"
    if [[ ! -x /usr/sbin/mariadbd ]]; then
        _mdb_log "MariaDB not found (apt-get install mariadb-server)"
        return 1
    fi
    mkdir -p "$dir"
    chmod 755 "$dir"
    chown mysql "$dir"
    if [[ ! -d "$dir/data/mysql" ]]; then
        if ! mariadb-install-db --user=mysql --datadir="$dir/data" --skip-test-db \
            --auth-root-authentication-method=socket >"$dir/install.log" 2>&1; then
            _mdb_log "mariadb-install-db failed, see $dir/install.log"
            cat "$dir/install.log" >&2
            return 1
        fi
    fi
    mariadb_run "$dir" "$port"
    mariadb --no-defaults --socket="$dir/mysqld.sock" -u root <<SQL
CREATE DATABASE IF NOT EXISTS greylag;
CREATE USER IF NOT EXISTS 'greylag'@'localhost' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS 'greylag'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`greylag%\`.* TO 'greylag'@'localhost';
GRANT ALL PRIVILEGES ON \`greylag%\`.* TO 'greylag'@'127.0.0.1';
SQL
    _mdb_log "mariadb up on 127.0.0.1:$port (database greylag, user greylag)"
}

# Starts the server on an existing data directory and waits until it answers.
mariadb_run() {
    local dir="${1:?usage: mariadb_run DIR PORT}" port="${2:?}"
    # Both streams to a file: the server inherits them and would hold a caller's pipe open.
    /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --pid-file="$dir/mysqld.pid" --bind-address=127.0.0.1 --port="$port" --skip-log-bin \
        --skip-name-resolve --innodb-flush-log-at-trx-commit=2 --max-connections=300 \
        --log-error="$dir/server.log" </dev/null >>"$dir/server.out" 2>&1 &
    local i
    for i in $(seq 1 200); do
        if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -u root ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    _mdb_log "MariaDB did not start, see $dir/server.log"
    tail -n 20 "$dir/server.log" >&2
    return 1
}

mariadb_stop() {
    local dir="${1:?usage: mariadb_stop DIR}" pid
    pid="$(cat "$dir/mysqld.pid" 2>/dev/null || true)"
    if [[ -S "$dir/mysqld.sock" ]]; then
        mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -u root shutdown >/dev/null 2>&1 || true
    elif [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    # Wait for the end, so the port is free for the next server.
    if [[ -n "$pid" ]]; then
        local _
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || return 0
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

mariadb_kill() {
    local dir="${1:?usage: mariadb_kill DIR}" pid
    pid="$(cat "$dir/mysqld.pid" 2>/dev/null || true)"
    [[ -n "$pid" ]] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/mysqld.sock"
}
