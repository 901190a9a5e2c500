# shellcheck shell=bash
# Debian's MTA packages conflict with each other and with the test Postfix
# (each provides mail-transport-agent), so the MTA tests never install them:
# `unpack_debs ROOT PKG...` fetches the packages with `apt-get download` and
# unpacks them with `dpkg -x` into ROOT, where the tests run the binaries with
# their own configuration file. No maintainer script runs; whatever users or
# directories an MTA needs, its start function makes.
#
# The .deb files are kept in ${GREYLAG_DEB_CACHE:-/var/cache/greylag-test-debs}
# so that a second run on the same machine does not download them again; ROOT
# is unpacked anew only when it lacks the marker of that package set.

unpack_log() { printf 'unpack: %s\n' "$*" >&2; }

# unpack_debs ROOT PKG...: make ROOT hold the files of the given packages.
unpack_debs() {
    local root="$1"
    shift
    local cache="${GREYLAG_DEB_CACHE:-/var/cache/greylag-test-debs}"
    local marker="$root/.unpacked"
    local want="$*"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
        return 0
    fi
    mkdir -p "$cache" "$root"
    local pkg missing=()
    for pkg in "$@"; do
        compgen -G "$cache/${pkg}_*.deb" >/dev/null || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        unpack_log "downloading ${missing[*]}"
        if ! (cd "$cache" && apt-get download -q -o Acquire::Retries=3 "${missing[@]}" </dev/null); then
            unpack_log "apt-get download failed; refreshing package lists and retrying"
            apt-get update -q -o Acquire::Retries=3 </dev/null
            (cd "$cache" && apt-get download -q -o Acquire::Retries=3 "${missing[@]}" </dev/null)
        fi
    fi
    local deb
    for pkg in "$@"; do
        # Newest first if several versions are cached.
        deb="$(ls -1 "$cache/${pkg}_"*.deb | sort -V | tail -n 1)"
        dpkg -x "$deb" "$root"
    done
    printf '%s' "$want" >"$marker"
}

# ensure_system_user NAME [GROUP]: a system account without a shell or home,
# made when missing (the MTAs drop privileges to such accounts).
ensure_system_user() {
    local name="$1" group="${2:-}"
    if [[ -n "$group" ]] && ! getent group "$group" >/dev/null; then
        groupadd --system "$group"
    fi
    if ! getent passwd "$name" >/dev/null; then
        if [[ -n "$group" ]]; then
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -g "$group" "$name"
        else
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$name"
        fi
    fi
}

# exec_clean CMD...: runs CMD (exec) with no descriptor above 2 and an empty
# signal mask. A daemon keeps what it inherits: a test process's sockets
# (Foundation's Process learns that a child ended when the last holder of
# one of them closes it, so the test would wait for the daemon's end) and
# its blocked SIGTERM.
exec_clean() {
    exec perl -MPOSIX -e '
        sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!";
        opendir(my $d, "/proc/self/fd") or die "/proc/self/fd: $!";
        my @fds = grep { /^\d+$/ && $_ > 2 } readdir($d);
        closedir($d);
        POSIX::close($_) for @fds;
        exec @ARGV or die "exec $ARGV[0]: $!";' "$@"
}
