# shellcheck shell=bash
# A throwaway Exim 4.96 on loopback, run from Debian's packages unpacked
# with unpack_debs (scripts/lib/unpack.sh: exim4-daemon-light exim4-base
# exim4-config; the binary also needs libidn12, see install-test-deps.sh).
# Must run as root: `exim4 -C FILE` keeps root only for root (Debian sets
# no ALT_CONFIG_PREFIX, so the file may be anywhere); the daemon then runs
# each SMTP session as Debian-exim, and the deliveries it starts re-execute
# the binary (exim_path) with -C as Debian-exim, which Exim lets run without
# root ("exim user lost privilege for using -C option" in the log): enough,
# since the transport delivers as Debian-exim into a directory it owns.
#
# exim_start DIR ROOT PORT ACL_FILE [AUTH_USER AUTH_PASSWORD]
#   writes DIR/exim.conf (primary_hostname mx.exim.greylag.test, local
#   domain example.net, spool and logs under DIR/spool, no TLS, no host name
#   or ident lookups), whose main section ends with `.include ACL_FILE` (the
#   acl_smtp_rcpt setting and the `begin acl` section), a router accepting
#   every example.net recipient and a transport appending to the mbox
#   DIR/mail/inbox; with AUTH_USER and AUTH_PASSWORD, a PLAIN authenticator
#   that takes only those. Starts `exim4 -C DIR/exim.conf -bd -oX PORT -oP
#   DIR/exim.pid` on 127.0.0.1 and waits until it listens.
# exim_stop DIR: stops that daemon and waits for it to exit.
# exim_mailbox DIR: prints the mbox path.

# shellcheck source=scripts/lib/unpack.sh
source "$(dirname "${BASH_SOURCE[0]}")/unpack.sh"

exim_log() { printf 'exim: %s\n' "$*" >&2; }

exim_start() {
    local dir="$1" root="$2" port="$3" acl="$4" auth_user="${5:-}" auth_password="${6:-}"
    local exim="$root/usr/sbin/exim4"
    if [[ ! -x "$exim" ]]; then
        exim_log "no $exim (unpack exim4-daemon-light exim4-base exim4-config into $root)"
        return 1
    fi
    if [[ ! -r "$acl" ]]; then
        exim_log "no ACL file $acl"
        return 1
    fi
    ensure_system_user Debian-exim
    # Run by root, Exim needs no setuid bit: leave no setuid-root binary in
    # a directory other users can reach.
    chmod u-s "$exim"
    # Exim's own processes (Debian-exim) must reach the spool, the mailbox
    # and any unix socket the ACL names under DIR.
    chmod 755 "$dir"
    mkdir -p "$dir/spool/log" "$dir/mail"
    chown -R Debian-exim:Debian-exim "$dir/spool" "$dir/mail"
    {
        printf 'primary_hostname = mx.exim.greylag.test\n'
        printf 'exim_path = %s\n' "$exim"
        printf 'spool_directory = %s/spool\n' "$dir"
        printf 'log_file_path = %s/spool/log/%%slog\n' "$dir"
        printf 'exim_user = Debian-exim\nexim_group = Debian-exim\n'
        printf 'local_interfaces = 127.0.0.1\n'
        printf 'domainlist local_domains = example.net\n'
        printf 'tls_advertise_hosts =\nhost_lookup =\nrfc1413_hosts =\nkeep_environment =\n'
        printf '.include %s\n\n' "$acl"
        if [[ -n "$auth_user" ]]; then
            printf 'begin authenticators\n\nplain:\n  driver = plaintext\n  public_name = PLAIN\n'
            printf '  server_prompts = :\n'
            printf '  server_condition = ${if and{{eq{$auth2}{%s}}{eq{$auth3}{%s}}}}\n' "$auth_user" "$auth_password"
            printf '  server_set_id = $auth2\n\n'
        fi
        printf 'begin routers\n\nlocal:\n  driver = accept\n  domains = +local_domains\n  transport = inbox\n\n'
        printf 'begin transports\n\ninbox:\n  driver = appendfile\n  file = %s/mail/inbox\n' "$dir"
        printf '  user = Debian-exim\n  group = Debian-exim\n  mode = 0644\n'
    } >"$dir/exim.conf"
    if ! "$exim" -C "$dir/exim.conf" -bV >"$dir/exim-bV.out" 2>&1; then
        exim_log "configuration refused:"
        cat "$dir/exim-bV.out" >&2
        return 1
    fi
    rm -f "$dir/exim.pid"
    # The daemon keeps the descriptors it was given: not the caller's pipe.
    # It starts with an empty signal mask, so that exim_stop's SIGTERM works
    # even when the caller blocks it (threads of a test process may), and
    # with no descriptor above 2: Foundation's Process learns that its child
    # ended when the last holder of an inherited socket closes it, and the
    # daemon would otherwise hold it for its whole life.
    if ! perl -MPOSIX -e 'sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!"; POSIX::close($_) for 3 .. 1023; exec @ARGV or die "exec: $!"' \
        "$exim" -C "$dir/exim.conf" -bd -oX "$port" -oP "$dir/exim.pid" </dev/null >>"$dir/exim-daemon.out" 2>&1; then
        exim_log "daemon did not start"
        cat "$dir/spool/log/paniclog" "$dir/spool/log/mainlog" >&2 2>/dev/null || true
        return 1
    fi
    local i
    for i in $(seq 1 100); do
        if [[ -s "$dir/exim.pid" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    exim_log "not listening on 127.0.0.1:$port after 10 s"
    cat "$dir/spool/log/paniclog" "$dir/spool/log/mainlog" >&2 2>/dev/null || true
    exim_stop "$dir"
    return 1
}

exim_stop() {
    local dir="$1" pid i
    [[ -s "$dir/exim.pid" ]] || return 0
    pid="$(cat "$dir/exim.pid")"
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/exim.pid"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/exim.pid"
}

exim_mailbox() { printf '%s/mail/inbox\n' "$1"; }
