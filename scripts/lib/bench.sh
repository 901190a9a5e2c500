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
