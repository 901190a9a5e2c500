# shellcheck shell=bash
# Helpers of the benchmark scripts. Source this file; it defines functions only.
#
#   wait_port PORT   -> waits up to 10 s until something accepts on 127.0.0.1:PORT

wait_port() {
    local _
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    printf 'nothing listens on port %s\n' "$1" >&2
    return 1
}
