#!/usr/bin/env bash
# The install test of the Debian package, run by hand (too slow for CI):
# a clean Debian 12 (bookworm) root made with debootstrap (cached as a
# tarball between runs), in which the package is installed with dpkg -i, its
# user, state directory and conffile checked, the unit's ExecStart line run
# the way systemd would run it (user greylag, /run/greylag made as
# RuntimeDirectory= makes it, the unit's working directory, umask and
# descriptor limit), a Postfix policy query sent to 127.0.0.1:10023, the
# qmail-spp helper (greylag and greylag-qmail) run as qmaild:nofiles against /run/greylag/policy.sock,
# the daemon stopped, then dpkg -r (data and conffile stay) and dpkg -P (they
# and the user go). lintian, systemd-analyze verify and man -l run on the
# package too. The root runs in a network namespace of its own (loopback
# only) and a mount namespace of its own, so nothing binds a host port.
#
#   sudo scripts/test-deb.sh [--deb FILE] [--mariadb]
#
#   --deb FILE  test this package (default: build it with scripts/package-deb.sh)
#   --mariadb   build and test greylag-mysql instead (needs libmariadb-dev)
#
# Environment: GREYLAG_TEST_DEB_CACHE, where the bookworm root tarball is kept
# (default /var/cache/greylag-test-deb; delete it to bootstrap afresh);
# GREYLAG_TEST_DEB_MIRROR, the Debian mirror for debootstrap (default: the
# first bookworm source of this machine's apt configuration).
#
# Prints one line per check and `N passed, M failed` last; exits non-zero
# on any failure. Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test-deb: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
# check DESCRIPTION COMMAND...: one check, passed when COMMAND succeeds.
check() {
    local what="$1"; shift
    if "$@" >"$WORK/check.out" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/     | /' "$WORK/check.out" | head -20; fi
}

# ---------------------------------------------------------------------------
# Inner phase: inside `unshare --net --mount` (see the end of this file).
# ---------------------------------------------------------------------------
inner() {
    WORK="$1"; DEB="$2"; PACKAGE="$3"
    ROOT="$WORK/root"
    ip link set lo up

    in_root() { chroot "$ROOT" "$@"; }
    # What systemd gives the service (see packaging/greylag.service).
    UNIT="$ROOT/lib/systemd/system/greylag.service"

    log "unpacking the bookworm root"
    mkdir -p "$ROOT"
    tar -C "$ROOT" -xzf "$TARBALL"
    mount -t proc proc "$ROOT/proc"
    mount --bind /dev "$ROOT/dev"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$ROOT/run"
    cleanup_inner() {
        if [[ -n "${DAEMON_PID:-}" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
            kill -TERM "$DAEMON_PID" 2>/dev/null || true
            sleep 1
            kill -KILL "$DAEMON_PID" 2>/dev/null || true
        fi
        umount "$ROOT/run" 2>/dev/null || true
        umount "$ROOT/dev" 2>/dev/null || true
        umount "$ROOT/proc" 2>/dev/null || true
    }
    trap cleanup_inner EXIT

    # qmail is not packaged in Debian; its users as qmail's install makes them,
    # before the package, so that postinst finds the group nofiles.
    in_root groupadd --system nofiles
    in_root useradd --system -g nofiles -d /var/qmail -s /usr/sbin/nologin qmaild

    cp "$DEB" "$ROOT/tmp/"
    local deb_in_root
    deb_in_root="/tmp/$(basename "$DEB")"
    check "dpkg -i $(basename "$DEB")" in_root dpkg -i "$deb_in_root"

    check "user greylag is a system user with no login shell" \
        bash -c "line=\$(chroot '$ROOT' getent passwd greylag) && IFS=: read -r _ _ uid _ _ home shell <<<\"\$line\" \
                 && [[ \$uid -lt 1000 && \$home == /var/lib/greylag && \$shell == /usr/sbin/nologin ]] && echo \"\$line\""
    check "group greylag exists" in_root getent group greylag
    check "greylag is in qmail's group nofiles" \
        bash -c "chroot '$ROOT' id -nG greylag | tr ' ' '\n' | grep -qx nofiles"
    check "/var/lib/greylag is greylag:greylag 0750" \
        bash -c "[[ \$(chroot '$ROOT' stat -c '%U:%G %a' '/var/lib/greylag') == 'greylag:greylag 750' ]] || { chroot '$ROOT' stat -c '%U:%G %a' '/var/lib/greylag'; false; }"
    check "/etc/greylag/greylag.toml is a conffile" \
        bash -c "[[ -s '$ROOT/etc/greylag/greylag.toml' ]] && chroot '$ROOT' dpkg-query -W -f='\${Conffiles}' '$PACKAGE' | grep -q ' /etc/greylag/greylag.toml '"
    check "the conffile names the store /var/lib/greylag/greylag.db" \
        grep -Eq '^[[:space:]]*path[[:space:]]*=[[:space:]]*"/var/lib/greylag/greylag.db"' "$ROOT/etc/greylag/greylag.toml"
    check "greylag check-config accepts the conffile (in the root, no Swift there)" \
        in_root /usr/sbin/greylag check-config --config /etc/greylag/greylag.toml
    if [[ -x "$ROOT/usr/bin/deb-systemd-helper" ]]; then
        check "the unit is enabled (multi-user.target wants greylag.service)" \
            test -L "$ROOT/etc/systemd/system/multi-user.target.wants/greylag.service"
    fi
    check "postinst run again changes nothing (idempotent)" \
        bash -c "before=\$(chroot '$ROOT' getent passwd greylag) && chroot '$ROOT' /var/lib/dpkg/info/$PACKAGE.postinst configure 0 \
                 && [[ \$(chroot '$ROOT' getent passwd greylag) == \"\$before\" ]]"

    # The unit's ExecStart, run as the unit runs it.
    local exec_start
    exec_start="$(sed -n 's/^ExecStart=//p' "$UNIT")"
    [[ -n "$exec_start" ]] || die "no ExecStart= in the installed unit"
    local nofile umask_value
    nofile="$(sed -n 's/^LimitNOFILE=//p' "$UNIT")"
    umask_value="$(sed -n 's/^UMask=//p' "$UNIT")"
    # RuntimeDirectory=greylag, RuntimeDirectoryMode=...: made by systemd as root, owned by User/Group.
    local rt_mode
    rt_mode="$(sed -n 's/^RuntimeDirectoryMode=//p' "$UNIT")"
    mkdir -p "$ROOT/run/greylag"
    in_root chown greylag:greylag /run/greylag
    chmod "${rt_mode:-0755}" "$ROOT/run/greylag"
    # The notify socket systemd hands a Type=notify service.
    local notify="$ROOT/run/test-notify.sock"
    python3 - "$notify" "$WORK/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
import os; os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        data = s.recv(4096)
        log.write(data.decode("utf-8", "replace").replace("\n", " ") + "\n")
EOF
    local notify_pid=$!
    sleep 0.5
    log "starting: $exec_start (as greylag, as the unit would)"
    # shellcheck disable=SC2086 # ExecStart is split into words as systemd does (no quotes in it).
    chroot "$ROOT" /usr/bin/setpriv --reuid=greylag --regid=greylag --init-groups --no-new-privs --inh-caps=-all \
        /bin/bash -c "ulimit -n ${nofile:-1024} && umask ${umask_value:-0022} && cd /var/lib/greylag && exec \"\$@\"" greylag \
        /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        HOME=/var/lib/greylag USER=greylag LOGNAME=greylag SHELL=/usr/sbin/nologin \
        STATE_DIRECTORY=/var/lib/greylag RUNTIME_DIRECTORY=/run/greylag NOTIFY_SOCKET=/run/test-notify.sock \
        $exec_start >"$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!

    # Wait for the policy listener (and for the helpers' socket).
    local up=0 _
    for _ in $(seq 1 100); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then break; fi
        if (exec 3<>/dev/tcp/127.0.0.1/10023) 2>/dev/null && [[ -S "$ROOT/run/greylag/policy.sock" ]]; then up=1; break; fi
        sleep 0.2
    done
    if [[ $up -eq 1 ]]; then pass "the daemon started from the unit's ExecStart and listens on 127.0.0.1:10023"
    else fail "the daemon started from the unit's ExecStart and listens on 127.0.0.1:10023"; sed 's/^/     | /' "$WORK/daemon.log" | tail -20; fi

    if grep -aq 'READY=1' "$ROOT/usr/sbin/greylag"; then
        check "the daemon told the notify socket READY=1 (Type=notify)" \
            bash -c "for i in \$(seq 1 50); do grep -q 'READY=1' '$WORK/notify.log' && exit 0; sleep 0.1; done; cat '$WORK/notify.log'; exit 1"
    else
        log "note: this build does not send sd_notify messages yet; Type=notify needs it (branch sysd)"
    fi

    check "a policy query on 127.0.0.1:10023 is answered action=DEFER_IF_PERMIT" bash -c '
        exec 3<>/dev/tcp/127.0.0.1/10023
        printf "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.10\nclient_name=mx.example.org\nhelo_name=mx.example.org\nsender=alice@example.org\nrecipient=bob@example.net\ninstance=t1\n\n" >&3
        IFS= read -r -t 10 answer <&3; echo "$answer"
        [[ "$answer" == action=DEFER_IF_PERMIT\ * ]]'

    check "the helpers' socket /run/greylag/policy.sock is greylag:nofiles 0660" \
        bash -c "[[ \$(chroot '$ROOT' stat -c '%U:%G %a' '/run/greylag/policy.sock') == 'greylag:nofiles 660' ]] || { chroot '$ROOT' stat -c '%U:%G %a' '/run/greylag/policy.sock'; false; }"

    local spp_env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TCPREMOTEIP=198.51.100.7
                   SMTPMAILFROM=carol@example.com SMTPRCPTTO=dave@example.net GREYLISTING=)
    check "qmail-spp as qmaild:nofiles via /run/greylag/policy.sock answers E451" bash -c '
        out=$(chroot "$1" /usr/bin/setpriv --reuid=qmaild --regid=nofiles --init-groups "${@:2}" /usr/sbin/greylag qmail-spp 2>&1)
        echo "$out"; [[ "$out" == E451\ * ]]' _ "$ROOT" "${spp_env[@]}"
    check "greylag-qmail qmail-spp (docs/qmail.md's spelling) as qmaild:nofiles answers E451 too" bash -c '
        out=$(chroot "$1" /usr/bin/setpriv --reuid=qmaild --regid=nofiles --init-groups "${@:2}" /usr/sbin/greylag-qmail qmail-spp 2>&1)
        echo "$out"; [[ "$out" == E451\ * ]]' _ "$ROOT" "${spp_env[@]}"
    check "qmail-spp as nobody (not in nofiles) may not use the helpers' socket, and lets the mail through" bash -c '
        out=$(chroot "$1" /usr/bin/setpriv --reuid=nobody --regid=nogroup --clear-groups "${@:3}" /usr/sbin/greylag qmail-spp 2>"$2")
        echo "stdout: [$out] stderr: [$(cat "$2")]"; [[ -z "$out" ]] && grep -qi "permission denied" "$2"' \
        _ "$ROOT" "$WORK/nobody.err" "${spp_env[@]}"

    check "the store /var/lib/greylag/greylag.db belongs to greylag" \
        bash -c "[[ \$(chroot '$ROOT' stat -c %U /var/lib/greylag/greylag.db) == greylag ]]"

    check "the daemon reloads on SIGHUP (ExecReload) and keeps serving" bash -c "
        kill -HUP $DAEMON_PID && sleep 1 && kill -0 $DAEMON_PID && (exec 3<>/dev/tcp/127.0.0.1/10023)"

    # Stop it as systemd does (SIGTERM) and expect a clean exit.
    local status=0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" || status=$?
    DAEMON_PID=
    if [[ $status -eq 0 ]]; then pass "the daemon stops on SIGTERM with status 0"
    else fail "the daemon stops on SIGTERM with status 0 (status $status)"; tail -5 "$WORK/daemon.log" | sed 's/^/     | /'; fi
    kill "$notify_pid" 2>/dev/null || true
    wait "$notify_pid" 2>/dev/null || true
    if grep -Eiq 'error|critical' "$WORK/daemon.log"; then
        log "the daemon logged errors:"; grep -Ei 'error|critical' "$WORK/daemon.log" | head -5 >&2
    fi

    check "dpkg -r $PACKAGE" in_root dpkg -r "$PACKAGE"
    check "after dpkg -r: /usr/sbin/greylag is gone" test ! -e "$ROOT/usr/sbin/greylag"
    check "after dpkg -r: /var/lib/greylag/greylag.db is kept" test -s "$ROOT/var/lib/greylag/greylag.db"
    check "after dpkg -r: /etc/greylag/greylag.toml is kept" test -s "$ROOT/etc/greylag/greylag.toml"
    check "after dpkg -r: the user greylag is kept" in_root getent passwd greylag
    check "dpkg -P $PACKAGE" in_root dpkg -P "$PACKAGE"
    check "after dpkg -P: /var/lib/greylag is gone" test ! -e "$ROOT/var/lib/greylag"
    check "after dpkg -P: /etc/greylag is gone" test ! -e "$ROOT/etc/greylag"
    check "after dpkg -P: the user greylag is gone" bash -c "! chroot '$ROOT' getent passwd greylag"
    check "after dpkg -P: the group greylag is gone" bash -c "! chroot '$ROOT' getent group greylag"
    check "after dpkg -P: qmail's user and group nofiles are untouched" \
        bash -c "chroot '$ROOT' id qmaild && chroot '$ROOT' getent group nofiles && ! chroot '$ROOT' getent group nofiles | grep -q greylag"
    check "after dpkg -P: the unit's enable link is gone" \
        test ! -L "$ROOT/etc/systemd/system/multi-user.target.wants/greylag.service"
    check "after dpkg -P: dpkg knows nothing of $PACKAGE" \
        bash -c "! chroot '$ROOT' dpkg-query -W -f='\${Status}' '$PACKAGE' 2>/dev/null | grep -q installed"

    printf '%s %s\n' "$PASSED" "$FAILED" >"$WORK/inner.counts"
}

# ---------------------------------------------------------------------------
# Outer phase.
# ---------------------------------------------------------------------------
CACHE="${GREYLAG_TEST_DEB_CACHE:-/var/cache/greylag-test-deb}"
ARCH="$(dpkg --print-architecture)"
TARBALL="$CACHE/bookworm-$ARCH.tar.gz"

if [[ "${1:-}" == "--inner" ]]; then
    shift
    inner "$@"
    exit 0
fi

DEB=""
MARIADB=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --deb) [[ $# -ge 2 ]] || die "--deb needs a file"; DEB="$2"; shift ;;
        --mariadb) MARIADB=1 ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ $(id -u) -eq 0 ]] || die "run as root (chroot, mounts, namespaces)"

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v lintian >/dev/null || need+=(lintian)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v fakeroot >/dev/null || need+=(fakeroot)
command -v python3 >/dev/null || need+=(python3)
command -v man >/dev/null || need+=(man-db)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    apt-get install -y "${need[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; }
fi

WORK="$(mktemp -d /tmp/greylag-test-deb.XXXXXX)"
chmod 0755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)

if [[ -z "$DEB" ]]; then
    args=(--output "$WORK/out")
    [[ $MARIADB -eq 1 ]] && args+=(--mariadb)
    DEB="$(bash scripts/package-deb.sh "${args[@]}" | tail -n 1)"
fi
[[ -f "$DEB" ]] || die "no package at $DEB"
DEB="$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")"
PACKAGE="$(dpkg-deb -f "$DEB" Package)"
log "testing $DEB ($PACKAGE)"

# The mirror: from this machine's apt configuration, never written down here.
mirror() {
    if [[ -n "${GREYLAG_TEST_DEB_MIRROR:-}" ]]; then printf '%s\n' "$GREYLAG_TEST_DEB_MIRROR"; return; fi
    local f
    # deb822 sources: the URIs of the stanza whose Suites name bookworm.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ && !/bookworm-security/ {
                 if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f"
    done | head -n 1 | grep . && return
    # One-line sources.
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' \
        | head -n 1 | grep . && return
    return 1
}

if [[ ! -f "$TARBALL" ]]; then
    MIRROR="$(mirror)" || die "no bookworm mirror in this machine's apt sources; set GREYLAG_TEST_DEB_MIRROR"
    log "debootstrap bookworm from $MIRROR into the cache $TARBALL (once; a few minutes)"
    mkdir -p "$CACHE"
    # What the package depends on is included, so dpkg -i needs no network.
    debootstrap --variant=minbase --include=adduser,libsqlite3-0,libstdc++6,libgcc-s1,libmariadb3 \
        bookworm "$WORK/bootstrap" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    tar -C "$WORK/bootstrap" -czf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$WORK/bootstrap"
fi

# Checks on the package itself, outside the root.
mkdir -p "$WORK/x"
dpkg-deb -x "$DEB" "$WORK/x"
check "lintian: no errors" lintian --fail-on error "$DEB"
lintian "$DEB" 2>&1 | sed 's/^/     lintian: /' || true
# systemd-analyze verify wants ExecStart's binary to exist: the unit, pointed at the extracted binary.
mkdir -p "$WORK/unit"
sed "s#^ExecStart=/usr/sbin/greylag#ExecStart=$WORK/x/usr/sbin/greylag#" \
    "$WORK/x/lib/systemd/system/greylag.service" >"$WORK/unit/greylag.service"
check "systemd-analyze verify accepts greylag.service" \
    bash -c "out=\$(systemd-analyze verify --man=no '$WORK/unit/greylag.service' 2>&1); echo \"\$out\"; [[ -z \$out ]]"
for page in usr/share/man/man8/greylag.8.gz usr/share/man/man5/greylag.toml.5.gz; do
    check "man -l $(basename "$page") renders without warnings" bash -c "
        out=\$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l '$WORK/x/$page' 2>&1 >/dev/null); echo \"\$out\"; [[ -z \$out ]]"
done

# The root, in namespaces of its own.
unshare --net --mount --propagation private env TARBALL="$TARBALL" bash "$0" --inner "$WORK" "$DEB" "$PACKAGE" \
    || fail "the install test in the bookworm root stopped early (status $?)"
if [[ -f "$WORK/inner.counts" ]]; then
    read -r p f <"$WORK/inner.counts"
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
fi

log "took $(( $(date +%s) - START )) s"
printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[[ $FAILED -eq 0 ]]
