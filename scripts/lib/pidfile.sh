# shellcheck shell=bash
# Stopping a daemon the helper libraries started. Source this file; it
# defines functions only.
#
#   stop_pidfile NAME PIDFILE   -> TERM the process in PIDFILE, wait up to
#                                  10 s, then KILL; reap it if it is our
#                                  child; remove PIDFILE. Returns 1 if it is
#                                  still running. NAME is for messages.

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
