# shellcheck shell=bash
# Helpers to run a throwaway, private Postfix instance on loopback for
# integration tests. Source this file; it defines functions only.
#
#   postfix_start DIR SMTP_PORT POLICY_HOSTPORT [param=value ...]
#   postfix_stop DIR
#   postfix_maildir DIR            -> prints the Maildir that receives all mail
#   postfix_messages DIR           -> prints delivered message files, oldest first
#   postfix_messages_for DIR ADDR  -> same, only those with Delivered-To: ADDR
#   postfix_wait_messages DIR N [TIMEOUT]  -> wait until >= N messages delivered
#   postfix_has_ipv6               -> status 0 if ::1 is usable
#   postfix_enable_sasl DIR USER PASSWORD  -> turn on SMTP AUTH for the
#                                     instance in DIR and add/replace USER
#
# Layout under DIR (created if missing; DIR must be an absolute path without
# whitespace, and it and its parents must be traversable by "postfix" and
# "nobody", i.e. mode 755 parents - mktemp -d gives 700, so DIR itself is
# chmod'ed 755 here):
#   DIR/etc      config_directory (main.cf, master.cf)
#   DIR/spool    queue_directory
#   DIR/data     data_directory
#   DIR/maillog  Postfix log (read it when something fails: Postfix prints
#                errors to stderr only when attached to a terminal)
#   DIR/mail/Maildir/{new,cur,tmp}  every message for any address in
#                example.net / localhost is delivered here (catch-all alias
#                to a maildir, written as the "nobody" user)
#   DIR/etc/sasl smtpd.conf and sasldb2, only after postfix_enable_sasl
#
# smtpd listens on 127.0.0.1:SMTP_PORT and, if the machine has IPv6 loopback,
# on [::1]:SMTP_PORT. Recipient restrictions are
#   reject_unauth_destination, check_policy_service inet:POLICY_HOSTPORT
# with no permit_mynetworks anywhere, so the policy service is consulted for
# every client. POLICY_HOSTPORT may be "127.0.0.1:10099", "[::1]:10099" or
# empty/"none" (no policy service). Extra "param=value" arguments are applied
# to main.cf with postconf -e after the defaults (e.g. smtpd_milters=...).
#
# SMTP AUTH (off unless requested): call postfix_enable_sasl DIR USER PASSWORD
# before postfix_start DIR ..., once per user (again for the same USER replaces
# the password; users can also be added while the instance runs). It writes
# DIR/etc/sasl/smtpd.conf and a Cyrus sasldb DIR/etc/sasl/sasldb2 (needs
# saslpasswd2 from sasl2-bin and the PLAIN/LOGIN/sasldb plugins from
# libsasl2-modules / libsasl2-modules-db; nothing outside DIR is touched).
# While DIR/etc/sasl/smtpd.conf exists (also when DIR is reused),
# postfix_start enables Cyrus SASL with mechanisms PLAIN and LOGIN, offered
# without TLS (smtpd_tls_auth_only = no). Then
#   swaks --server 127.0.0.1 --port SMTP_PORT --from a@example.org \
#         --to b@example.net --auth PLAIN --auth-user USER --auth-password PASSWORD
# gets "235 2.7.0 Authentication successful" and the policy request carries
# sasl_method=PLAIN and sasl_username=USER exactly as given (both are empty
# for clients that do not authenticate); a wrong password gets "535 5.7.8
# Error: authentication failed: authentication failure". The restrictions
# are unchanged (no permit_sasl_authenticated): the policy service is still
# asked for authenticated clients, and reject_unauth_destination still
# refuses relaying to domains other than example.net / localhost. USER may
# be "name" or "name@domain"; a bare name lives in the SASL realm
# $myhostname (mx.example.net), so do not override myhostname with
# param=value when using bare names.
#
# Requires root (postfix runs as root with chroot = n for every service).

POSTFIX_SBIN_DIR="${POSTFIX_SBIN_DIR:-/usr/sbin}"
POSTFIX_MASTER_CF_DIST="${POSTFIX_MASTER_CF_DIST:-/usr/share/postfix/master.cf.dist}"
# Seconds to wait for smtpd to answer with its 220 banner after start.
POSTFIX_START_TIMEOUT="${POSTFIX_START_TIMEOUT:-30}"
# Seconds to wait for the master process to exit after "postfix stop".
POSTFIX_STOP_TIMEOUT="${POSTFIX_STOP_TIMEOUT:-20}"

_pf_log() { printf 'postfix.sh: %s\n' "$*" >&2; }

# Status 0 if the IPv6 loopback address ::1 is configured (so that Postfix and
# clients can bind/connect to it).
postfix_has_ipv6() {
    [[ -r /proc/net/if_inet6 ]] &&
        grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6
}

# _pf_smtp_banner HOST PORT: status 0 if a 220 banner is read from HOST:PORT.
# Uses bash's /dev/tcp, so it works for IPv4 and IPv6 without extra tools.
_pf_smtp_banner() {
    local host="$1" port="$2"
    # shellcheck disable=SC2016 # $1/$2 expand in the child bash
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        IFS= read -r -t 4 line <&3 || exit 1
        printf "QUIT\r\n" >&3
        # Drain the 221 reply so smtpd sees a clean QUIT, not a lost connection.
        IFS= read -r -t 2 _ <&3 || true
        exec 3<&- 3>&-
        [[ "$line" == 220* ]]
    ' _ "$host" "$port" 2>/dev/null
}

postfix_maildir() {
    local dir="${1:?usage: postfix_maildir DIR}"
    printf '%s\n' "$dir/mail/Maildir"
}

# Print the delivered message files (new/ and cur/), oldest first.
postfix_messages() {
    local dir="${1:?usage: postfix_messages DIR}"
    local md
    md="$(postfix_maildir "$dir")"
    # Sort by modification time (sub-second) = delivery order. Nothing is
    # printed (status 0) while the maildir does not exist yet.
    local d dirs=()
    for d in "$md/new" "$md/cur"; do
        [[ -d "$d" ]] && dirs+=("$d")
    done
    ((${#dirs[@]})) || return 0
    find "${dirs[@]}" -type f -printf '%T@ %p\n' | sort -n | cut -d' ' -f2-
}

# Print the delivered message files for one recipient address (matched on
# the Delivered-To header that local(8) adds), oldest first.
postfix_messages_for() {
    local dir="${1:?usage: postfix_messages_for DIR ADDRESS}" rcpt="${2:?}" f
    while IFS= read -r f; do
        if grep -qiF -x "Delivered-To: $rcpt" "$f"; then
            printf '%s\n' "$f"
        fi
    done < <(postfix_messages "$dir")
}

# Wait until at least N messages have been delivered (default timeout 20 s).
postfix_wait_messages() {
    local dir="${1:?usage: postfix_wait_messages DIR N [TIMEOUT]}" n="${2:?}"
    local timeout="${3:-20}" i count
    for ((i = 0; i < timeout * 10; i++)); do
        count="$(postfix_messages "$dir" | wc -l)"
        if ((count >= n)); then
            return 0
        fi
        sleep 0.1
    done
    _pf_log "timeout: $count of $n message(s) delivered under $(postfix_maildir "$dir")"
    return 1
}

# SASL realm of the sasldb entries for a USER without "@". smtpd leaves
# smtpd_sasl_local_domain empty (so that sasl_username is the bare USER, not
# USER@realm) and Cyrus then looks the user up in the realm $myhostname, which
# postfix_start sets to this value. (saslpasswd2's own default realm would be
# the machine's host name, which differs between machines.)
_PF_SASL_REALM="mx.example.net"

postfix_enable_sasl() {
    if (($# != 3)); then
        _pf_log "usage: postfix_enable_sasl DIR USER PASSWORD"
        return 2
    fi
    local dir="$1" user="$2" pass="$3"
    if [[ "$dir" != /* || "$dir" =~ [[:space:]] ]]; then
        _pf_log "DIR must be an absolute path without whitespace: '$dir'"
        return 2
    fi
    if [[ -z "$user" || "$user" =~ [[:space:]] || -z "$pass" || "$pass" == *$'\n'* ]]; then
        _pf_log "postfix_enable_sasl: USER must be non-empty without whitespace, PASSWORD non-empty without newline"
        return 2
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        _pf_log "must run as root"
        return 1
    fi
    local saslpasswd2
    saslpasswd2="$(command -v saslpasswd2 || true)"
    if [[ -z "$saslpasswd2" && -x /usr/sbin/saslpasswd2 ]]; then
        saslpasswd2=/usr/sbin/saslpasswd2
    fi
    if [[ -z "$saslpasswd2" ]]; then
        _pf_log "saslpasswd2 not found (run scripts/install-test-deps.sh)"
        return 1
    fi

    # Debian's Postfix (patch 07_sasl_config) ignores cyrus_sasl_config_path
    # and reads $config_directory/sasl/<smtpd_sasl_path>.conf, here
    # DIR/etc/sasl/smtpd.conf (then /usr/lib/sasl). postfix_start also sets
    # cyrus_sasl_config_path to that directory for unpatched builds. smtpd
    # reads the file once at process start, as the "postfix" user.
    local sasl="$dir/etc/sasl"
    mkdir -p "$sasl"
    chmod 755 "$dir" "$dir/etc" "$sasl"
    cat >"$sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $sasl/sasldb2
mech_list: PLAIN LOGIN
EOF
    chmod 644 "$sasl/smtpd.conf"
    # A USER of the form local@domain is looked up by Cyrus as user "local"
    # in realm "domain"; any other USER in the realm $myhostname.
    local name="$user" realm="$_PF_SASL_REALM"
    if [[ "$user" == *@* ]]; then
        name="${user%@*}"
        realm="${user##*@}"
    fi
    # -p: password from stdin without prompt; -c: create the entry (replaces
    # an existing one); -f: private sasldb instead of /etc/sasldb2.
    if ! printf '%s' "$pass" |
        "$saslpasswd2" -f "$sasl/sasldb2" -p -c -u "$realm" "$name" >>"$dir/setup.log" 2>&1; then
        _pf_log "saslpasswd2 failed for '$user', see $dir/setup.log"
        tail -n 5 "$dir/setup.log" >&2 || true
        return 1
    fi
    # smtpd opens the sasldb as the unprivileged "postfix" user.
    chown root:postfix "$sasl/sasldb2"
    chmod 640 "$sasl/sasldb2"
}

postfix_start() {
    if (($# < 3)); then
        _pf_log "usage: postfix_start DIR SMTP_PORT POLICY_HOSTPORT [param=value ...]"
        return 2
    fi
    local dir="$1" port="$2" policy="$3"
    shift 3

    if [[ "$dir" != /* || "$dir" =~ [[:space:]] ]]; then
        _pf_log "DIR must be an absolute path without whitespace: '$dir'"
        return 2
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        _pf_log "must run as root"
        return 1
    fi
    if ! getent passwd postfix >/dev/null || ! getent group postdrop >/dev/null; then
        _pf_log "postfix is not installed (run scripts/install-test-deps.sh)"
        return 1
    fi

    # Postfix binds its listeners with SO_REUSEPORT, so a forgotten instance
    # on the same port would silently receive part of the connections.
    # Refuse to start in that case.
    local h
    for h in 127.0.0.1 ::1; do
        if [[ "$h" == ::1 ]] && ! postfix_has_ipv6; then
            continue
        fi
        # shellcheck disable=SC2016 # $1/$2 expand in the child bash
        if timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$h" "$port" 2>/dev/null; then
            _pf_log "port $port on $h is already in use (leftover Postfix?)"
            return 1
        fi
    done

    local etc="$dir/etc" spool="$dir/spool" data="$dir/data"
    local maildir="$dir/mail/Maildir"
    local postconf="$POSTFIX_SBIN_DIR/postconf"

    mkdir -p "$etc" "$spool" "$data" "$dir/mail"
    chmod 755 "$dir" "$etc" "$dir/mail"
    chown postfix "$data"
    chmod 700 "$data"
    # local(8) delivers to a file/maildir named by an alias from a non-file
    # table as default_privs (nobody); let it create the Maildir itself.
    chown nobody "$dir/mail"
    : >"$dir/maillog"

    # master.cf: the distribution file with the public "smtp inet" service
    # replaced by loopback-only listeners on the test port.
    local ipv6=0
    if postfix_has_ipv6; then
        ipv6=1
    fi
    {
        grep -v '^smtp[[:space:]]\+inet[[:space:]]' "$POSTFIX_MASTER_CF_DIST"
        printf '127.0.0.1:%s inet n - n - - smtpd\n' "$port"
        if ((ipv6)); then
            printf '[::1]:%s inet n - n - - smtpd\n' "$port"
        fi
    } >"$etc/master.cf"

    local inet_protocols="ipv4" inet_interfaces="127.0.0.1"
    if ((ipv6)); then
        inet_protocols="ipv4, ipv6"
        inet_interfaces="127.0.0.1, [::1]"
    fi

    local restrictions="reject_unauth_destination"
    if [[ -n "$policy" && "$policy" != "none" ]]; then
        restrictions="$restrictions, check_policy_service inet:$policy"
    fi

    cat >"$etc/main.cf" <<EOF
# Throwaway Postfix instance for greylag integration tests (generated).
compatibility_level = 3.6
config_directory = $etc
queue_directory = $spool
data_directory = $data
mail_owner = postfix
setgid_group = postdrop
syslog_name = greylag-test-postfix
maillog_file = $dir/maillog
maillog_file_prefixes = $dir, /var, /dev/stdout

myhostname = mx.example.net
mydomain = example.net
myorigin = example.net
mydestination = example.net, localhost
relay_domains =
relayhost =
inet_protocols = $inet_protocols
inet_interfaces = $inet_interfaces
# Only used where a restriction asks for it (none below does).
mynetworks = 127.0.0.0/8 [::1]/128

# Deliver mail for every local part of \$mydestination to one Maildir:
# a catch-all alias (static map) to a path ending in "/" = maildir delivery.
# owner_request_special = no: otherwise the catch-all also answers the
# "owner-<localpart>" lookup and Return-Path becomes owner-...@example.net.
alias_maps = static:$maildir/
alias_database =
owner_request_special = no
local_recipient_maps =
# One recipient per local delivery (the default, made explicit): a message
# for several recipients gives one file per recipient, each with its own
# Delivered-To header, instead of being de-duplicated into one file.
local_destination_recipient_limit = 1
allow_mail_to_files = alias, forward
biff = no
mailbox_size_limit = 0
message_size_limit = 10240000

# No permit_mynetworks: the policy service is asked for every client,
# including 127.0.0.1 and ::1. Relay control happens in both lists.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = $restrictions
# A hanging policy server fails the RCPT after 10 s (default 100 s) with the
# default action "451 4.3.5 Server configuration problem". Connection reuse
# (max_idle 300 s, max_ttl 1000 s) and try_limit 2 (one reconnect after a
# dropped connection) keep their production defaults.
smtpd_policy_service_timeout = 10s

# Fast, quiet test behaviour.
smtpd_banner = \$myhostname ESMTP greylag-test
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
in_flow_delay = 0
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
delay_warning_time = 0
smtp_dns_support_level = disabled
smtputf8_enable = no
EOF

    # SMTP AUTH, only if postfix_enable_sasl was called for this DIR.
    # Appended before the caller's param=value overrides.
    if [[ -f "$etc/sasl/smtpd.conf" ]]; then
        cat >>"$etc/main.cf" <<EOF

# SMTP AUTH (postfix_enable_sasl): Cyrus SASL with a private sasldb, offered
# without TLS. No permit_sasl_authenticated anywhere: the policy service is
# asked for authenticated clients too (sasl_username/sasl_method are set).
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $etc/sasl
smtpd_sasl_local_domain =
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = no
EOF
    fi

    # Every service runs unchrooted (the private queue has no chroot tree).
    "$postconf" -c "$etc" -F '*/*/chroot = n'

    local kv
    for kv in "$@"; do
        "$postconf" -c "$etc" -e "$kv"
    done

    # Postfix waits (in 300 ms steps, ~2 s) before reading a main.cf that was
    # modified within the last couple of seconds, to avoid reading a file that
    # is still being written. Backdate the freshly generated files.
    touch -d '-1 minute' "$etc/main.cf" "$etc/master.cf"

    # "postfix check" creates the missing queue subdirectories with the right
    # owners and permissions (faster than "set-permissions", which also
    # re-checks every system file).
    if ! "$POSTFIX_SBIN_DIR/postfix" -c "$etc" check >>"$dir/setup.log" 2>&1; then
        _pf_log "postfix setup failed, see $dir/setup.log and $dir/maillog"
        cat "$dir/setup.log" >&2 || true
        return 1
    fi

    if ! "$POSTFIX_SBIN_DIR/postfix" -c "$etc" start </dev/null >>"$dir/setup.log" 2>&1; then
        _pf_log "postfix start failed, see $dir/maillog"
        tail -n 20 "$dir/maillog" >&2 || true
        return 1
    fi

    # Remember the master pid: the master is a session leader and all its
    # children share its session, which postfix_stop uses to check cleanup.
    local pidfile="$spool/pid/master.pid" i
    for ((i = 0; i < POSTFIX_START_TIMEOUT * 10; i++)); do
        [[ -s "$pidfile" ]] && break
        sleep 0.1
    done
    if [[ -s "$pidfile" ]]; then
        tr -d ' \n' <"$pidfile" >"$dir/master.pid"
    fi

    local hosts=(127.0.0.1) host ready
    if ((ipv6)); then
        hosts+=(::1)
    fi
    for host in "${hosts[@]}"; do
        ready=0
        for ((i = 0; i < POSTFIX_START_TIMEOUT * 5; i++)); do
            if _pf_smtp_banner "$host" "$port"; then
                ready=1
                break
            fi
            sleep 0.2
        done
        if ((!ready)); then
            _pf_log "smtpd on $host port $port did not answer; see $dir/maillog"
            tail -n 20 "$dir/maillog" >&2 || true
            postfix_stop "$dir" || true
            return 1
        fi
    done
    local sasl_note=""
    if [[ -f "$etc/sasl/smtpd.conf" ]]; then
        sasl_note=", SMTP AUTH on"
    fi
    _pf_log "postfix up: smtpd ${hosts[*]} port $port, policy ${policy:-none}, maildir $maildir$sasl_note"
}

# _pf_alive PID: status 0 if the process or any member of its session lives
# (zombies count as gone).
_pf_alive() {
    local pid="$1" p state
    for p in "$pid" $(pgrep -s "$pid" 2>/dev/null || true); do
        state="$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || true)"
        if [[ -n "$state" && "$state" != Z ]]; then
            return 0
        fi
    done
    return 1
}

postfix_stop() {
    local dir="${1:?usage: postfix_stop DIR}"
    local etc="$dir/etc" pid p i pids=()

    [[ -f "$etc/main.cf" ]] || return 0
    # Candidate master pids: the one Postfix itself recorded (current, even
    # if the instance was restarted by hand) and the copy saved at start.
    for p in "$dir/spool/pid/master.pid" "$dir/master.pid"; do
        if [[ -s "$p" ]]; then
            pid="$(tr -d ' \n' <"$p")"
            if [[ "$pid" =~ ^[0-9]+$ ]] && _pf_alive "$pid"; then
                pids+=("$pid")
            fi
        fi
    done
    if ((${#pids[@]} == 0)); then
        # Already stopped (e.g. a second call from an EXIT trap).
        rm -f "$dir/master.pid"
        return 0
    fi

    # "postfix stop" asks the master to terminate; the master then signals
    # its whole process group (which is also its session).
    "$POSTFIX_SBIN_DIR/postfix" -c "$etc" stop </dev/null >>"$dir/setup.log" 2>&1 || true

    local alive
    for ((i = 0; i < POSTFIX_STOP_TIMEOUT * 10; i++)); do
        alive=0
        for pid in "${pids[@]}"; do
            if _pf_alive "$pid"; then
                alive=1
            fi
        done
        ((alive)) || break
        sleep 0.1
    done
    if ((alive)); then
        # Still there: kill the master sessions hard.
        _pf_log "postfix did not stop in ${POSTFIX_STOP_TIMEOUT}s, killing session(s) ${pids[*]}"
        for pid in "${pids[@]}"; do
            pkill -KILL -s "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        done
        sleep 0.5
        for pid in "${pids[@]}"; do
            if _pf_alive "$pid"; then
                _pf_log "leftover postfix processes in session $pid"
                return 1
            fi
        done
    fi
    rm -f "$dir/master.pid"
    return 0
}
