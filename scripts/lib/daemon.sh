# shellcheck shell=bash
# Starting and stopping the throwaway daemons of the helper libraries
# (postgrey.sh, sqlgrey.sh). Source this file; it defines functions only.
#
#   port_open HOST PORT            -> status 0 if a TCP connection to
#                                     HOST:PORT succeeds (3 s at most)
#   claim_port NAME PIDFILE HOST PORT
#                                  -> status 1, with a message, if the daemon
#                                     of PIDFILE still runs or something else
#                                     listens on HOST:PORT (which would make
#                                     a readiness probe succeed for nothing)
#   await_listening NAME PIDFILE HOST PORT SECONDS LOG
#                                  -> waits until the process in PIDFILE
#                                     accepts on HOST:PORT; if it exits or
#                                     does not listen within SECONDS, prints
#                                     LOG, stops it and returns 1
#   daemon_preflight NAME BIN DIR HINT
#                                  -> status 2 if DIR is not an absolute path,
#                                     1 if not root or BIN or the user NAME
#                                     is missing (HINT: how to install them)
#   split_listen LISTEN            -> sets LISTEN_HOST (without brackets) and
#                                     LISTEN_PORT from HOST:PORT, [V6]:PORT
#                                     or a bare PORT (on 127.0.0.1)
#   stop_pidfile NAME PIDFILE      -> TERM the process in PIDFILE, wait up to
#                                     10 s, then KILL; reap it if it is our
#                                     child; remove PIDFILE. Returns 1 if it is
#                                     still running. NAME is for messages.

daemon_preflight() {
    local name="$1" bin="$2" dir="$3" hint="$4"
    if [[ "$dir" != /* ]]; then
        printf '%s.sh: DIR must be an absolute path: '"'"'%s'"'"'\n' "$name" "$dir" >&2
        return 2
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        printf '%s.sh: must run as root\n' "$name" >&2
        return 1
    fi
    if [[ ! -x "$bin" ]] || ! getent passwd "$name" >/dev/null; then
        printf '%s.sh: %s is not installed (%s)\n' "$name" "$name" "$hint" >&2
        return 1
    fi
}

# shellcheck disable=SC2034 # LISTEN_HOST and LISTEN_PORT are the caller's
split_listen() {
    if [[ "$1" == *:* ]]; then
        LISTEN_HOST="${1%:*}"
        LISTEN_PORT="${1##*:}"
    else
        LISTEN_HOST="127.0.0.1"
        LISTEN_PORT="$1"
    fi
    LISTEN_HOST="${LISTEN_HOST#[}"
    LISTEN_HOST="${LISTEN_HOST%]}"
}

port_open() {
    # shellcheck disable=SC2016 # $1/$2 expand in the child bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

claim_port() {
    local name="$1" file="$2" host="$3" port="$4"
    if [[ -s "$file" ]] && kill -0 "$(<"$file")" 2>/dev/null; then
        printf '%s already running (pid %s)\n' "$name" "$(<"$file")" >&2
        return 1
    fi
    if port_open "$host" "$port"; then
        printf '%s: %s:%s is already in use\n' "$name" "$host" "$port" >&2
        return 1
    fi
}

await_listening() {
    local name="$1" file="$2" host="$3" port="$4" seconds="$5" log="$6"
    local pid i
    pid="$(<"$file")"
    for ((i = 0; i < seconds * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            printf '%s exited during startup; log follows\n' "$name" >&2
            cat "$log" >&2 || true
            rm -f "$file"
            return 1
        fi
        port_open "$host" "$port" && return 0
        sleep 0.1
    done
    printf '%s did not listen on %s:%s within %ss; log follows\n' "$name" "$host" "$port" "$seconds" >&2
    cat "$log" >&2 || true
    stop_pidfile "$name" "$file" || true
    return 1
}

stop_pidfile() {
    local name="${1:?usage: stop_pidfile NAME PIDFILE}" file="${2:?usage: stop_pidfile NAME PIDFILE}"
    local pid i
    [[ -s "$file" ]] || return 0
    pid="$(<"$file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            printf '%s (pid %s) did not exit on TERM, killing\n' "$name" "$pid" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.1
        fi
    fi
    # Reap it if it is our child (ignore "not a child" errors).
    wait "$pid" 2>/dev/null || true
    rm -f "$file"
    if kill -0 "$pid" 2>/dev/null; then
        printf '%s (pid %s) still running\n' "$name" "$pid" >&2
        return 1
    fi
    return 0
}
