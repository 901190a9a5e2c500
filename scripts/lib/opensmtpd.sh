# shellcheck shell=bash
# Debian's OpenSMTPD 6.8, unpacked by scripts/test.sh (unpack_debs ROOT
# opensmtpd), run on loopback for the filter's end-to-end test. Its spool,
# chroot, libexec and run paths are compiled in (/var/spool/smtpd,
# /var/lib/opensmtpd/empty, /usr/libexec/opensmtpd, /var/run): smtpd runs in
# a private mount namespace where those are bind-mounted from DIR and ROOT,
# so nothing of the host's is touched beyond empty mount points.
#
#   opensmtpd_start ROOT DIR CONF PORT   start smtpd -d -f CONF, wait for PORT
#   opensmtpd_check ROOT CONF            smtpd -n -f CONF (configuration check)
#   opensmtpd_stop DIR                   stop it (SIGTERM, then SIGKILL)
#
# smtpd's own log (it runs with -d -v) goes to DIR/smtpd.log, its pid to
# DIR/smtpd.pid.

# shellcheck source=scripts/lib/unpack.sh
source "$(dirname "${BASH_SOURCE[0]}")/unpack.sh"

opensmtpd_log() { printf 'opensmtpd: %s\n' "$*" >&2; }

# The users smtpd drops privileges to, and the mount points it needs.
opensmtpd_prepare() {
    ensure_system_user opensmtpd
    ensure_system_user opensmtpq
    mkdir -p /var/spool/smtpd /var/lib/opensmtpd/empty /usr/libexec/opensmtpd
}

# The mounts, then CMD..., in the current (private) mount namespace.
opensmtpd_namespace_cmd() {
    local root="$1" dir="$2"
    printf 'mount --make-rprivate / && mount --bind %q /var/spool/smtpd && mount --bind %q /var/lib/opensmtpd/empty' \
        "$dir/spool" "$dir/empty"
    printf ' && mount --bind %q /usr/libexec/opensmtpd && mount --bind %q /run' "$root/usr/libexec/opensmtpd" "$dir/run"
}

opensmtpd_dirs() {
    local dir="$1"
    mkdir -p "$dir/spool" "$dir/empty" "$dir/run"
    chown root:root "$dir/spool" "$dir/empty"
    chmod 0711 "$dir/spool"
    chmod 0755 "$dir/empty" "$dir/run"
}

opensmtpd_check() {
    local root="$1" conf="$2" dir
    dir="$(mktemp -d)"
    opensmtpd_prepare
    opensmtpd_dirs "$dir"
    unshare -m sh -c "$(opensmtpd_namespace_cmd "$root" "$dir") && exec $(printf '%q' "$root/usr/sbin/smtpd") -n -f $(printf '%q' "$conf")"
    local rc=$?
    rm -rf "$dir"
    return $rc
}

opensmtpd_start() {
    local root="$1" dir="$2" conf="$3" port="$4"
    if [[ ! -x "$root/usr/sbin/smtpd" ]]; then
        opensmtpd_log "no smtpd in $root"
        return 1
    fi
    opensmtpd_prepare
    opensmtpd_dirs "$dir"
    local cmd
    cmd="$(opensmtpd_namespace_cmd "$root" "$dir") && exec $(printf '%q' "$root/usr/sbin/smtpd") -d -v -f $(printf '%q' "$conf")"
    (
        # smtpd keeps every descriptor it inherits: close those of the caller
        # (a pipe the caller reads to its end would never end).
        for fd in /proc/"$BASHPID"/fd/*; do
            fd="${fd##*/}"
            if [[ "$fd" -gt 2 ]]; then eval "exec $fd>&-"; fi
        done
        exec unshare -m sh -c "$cmd" </dev/null >"$dir/smtpd.log" 2>&1
    ) &
    echo $! >"$dir/smtpd.pid"
    local i
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$(cat "$dir/smtpd.pid")" 2>/dev/null; then
            opensmtpd_log "smtpd exited at start:"
            cat "$dir/smtpd.log" >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    opensmtpd_log "smtpd does not listen on 127.0.0.1:$port"
    cat "$dir/smtpd.log" >&2
    return 1
}

opensmtpd_stop() {
    local dir="$1" pid i
    [[ -f "$dir/smtpd.pid" ]] || return 0
    pid="$(cat "$dir/smtpd.pid")"
    kill -TERM "$pid" 2>/dev/null || { rm -f "$dir/smtpd.pid"; return 0; }
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/smtpd.pid"
}
