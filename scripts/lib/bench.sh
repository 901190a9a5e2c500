# shellcheck shell=bash
# Helpers of the benchmark scripts. Source this file; it defines functions only.
#
#   wait_port PORT   -> waits up to 10 s until something accepts on 127.0.0.1:PORT
#   bench_config FILE POLICY STORE [MILTER] [POLICY_KEYS] [MORE]
#                    -> writes the configuration of a greylag under benchmark:
#                       policy listener POLICY ("127.0.0.1:10097",
#                       "unix:/path"), the SQLite store at STORE, milter
#                       listener MILTER (default: none), no HTTP server;
#                       POLICY_KEYS are more lines of [policy], MORE is
#                       appended after [store] (more keys of it, then tables)
#   workload_label CONNECTIONS:NEW_SHARE
#                    -> prints "16 conn, 30% new" for 16:0.3
#   policy_ask PORT CLIENT SENDER RECIPIENT
#                    -> sends one Postfix policy request (RCPT) to
#                       127.0.0.1:PORT on a connection of its own and prints
#                       the answer's action line ("action=defer_if_permit
#                       ..."); status 1, with a message, if no answer comes
#                       within 5 s

wait_port() {
    local _
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    printf 'nothing listens on port %s\n' "$1" >&2
    return 1
}

bench_config() {
    local file="$1" policy="$2" store="$3" milter="${4:-}" policy_keys="${5:-}" more="${6:-}"
    {
        printf '[policy]\nlisten = ["%s"]\n' "$policy"
        [[ -n "$policy_keys" ]] && printf '%s\n' "$policy_keys"
        if [[ -n "$milter" ]]; then printf '[milter]\nlisten = ["%s"]\n' "$milter"; else printf '[milter]\nlisten = []\n'; fi
        printf '[http]\nlisten = "none"\n[store]\npath = "%s"\n' "$store"
        [[ -n "$more" ]] && printf '%s\n' "$more"
        true
    } >"$file"
}

workload_label() {
    awk -v c="${1%%:*}" -v s="${1##*:}" 'BEGIN { printf "%s conn, %.0f%% new", c, 100 * s }'
}

policy_ask() {
    local port="$1" client="$2" sender="$3" recipient="$4" answer="" fd
    if ! { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
        printf 'policy_ask: cannot connect to 127.0.0.1:%s\n' "$port" >&2
        return 1
    fi
    printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=%s\nclient_name=unknown\nhelo_name=probe.example\nsender=%s\nrecipient=%s\n\n' \
        "$client" "$sender" "$recipient" >&"$fd"
    IFS= read -r -t 5 answer <&"$fd" || true
    exec {fd}>&-
    if [[ "$answer" != action=* ]]; then
        printf 'policy_ask: no answer from 127.0.0.1:%s (got "%s")\n' "$port" "$answer" >&2
        return 1
    fi
    printf '%s\n' "$answer"
}

# check_build_and_workloads BUILD WORKLOADS
#                  -> exits 2 with a message (through the script's `log`)
#                     unless BUILD is release or debug and every workload
#                     is CONNECTIONS:NEW_SHARE
check_build_and_workloads() {
    local build="$1" workloads="$2" workload
    if [[ "$build" != release && "$build" != debug ]]; then
        log "BENCH_BUILD must be release or debug, not '$build'"
        exit 2
    fi
    for workload in $workloads; do
        if [[ ! "$workload" =~ ^[0-9]+:(0(\.[0-9]+)?|1(\.0*)?)$ ]]; then
            log "BENCH_WORKLOADS: '$workload' is not CONNECTIONS:NEW_SHARE (e.g. 16:0.3)"
            exit 2
        fi
    done
}
