# shellcheck shell=bash
# A throwaway Sendmail 8.17 on loopback, run from Debian's packages unpacked
# into ROOT by unpack_debs (scripts/lib/unpack.sh: sendmail-bin sendmail-base
# sendmail-cf), for SendmailEndToEndTests. Nothing outside DIR is written.
#
#   sendmail_config ROOT DIR PORT [MC_LINES [CF_LINES]]
#       writes DIR/sendmail.mc (the base below, then the file MC_LINES, as a
#       sendmail.mc a postmaster edits), makes DIR/sendmail.cf from it with
#       m4 and ROOT's cf/ tree, then appends the file CF_LINES (lines added
#       to a sendmail.cf by hand). Either may be "" for none.
#   sendmail_start ROOT DIR   -> starts the daemon (-bD) on 127.0.0.1:PORT,
#                                returns once it answers
#   sendmail_stop DIR         -> stops it (by the pid it wrote)
#   sendmail_enable_sasl DIR USER PASSWORD
#       before sendmail_start: SMTP AUTH (PLAIN, LOGIN, no TLS needed) for
#       USER in the realm mx.example.test, from a sasldb in DIR/sasl2 (needs
#       saslpasswd2 from sasl2-bin and the sasldb plugin); Cyrus SASL reads
#       Sendmail.conf from a fixed path list, so sendmail_start mounts
#       DIR/sasl2 on /usr/lib/sasl2 in the daemon's private mount namespace
#
# Layout under DIR (an absolute path without whitespace):
#   DIR/mqueue      QueueDirectory
#   DIR/inbox       every message for any address in example.net, one file
#                   each (LOCALPART.PID), written by DIR/deliver.sh as the
#                   local mailer (no aliases, no passwd check)
#   DIR/smtp.log    the SMTP sessions, both directions (sendmail -X)
#   DIR/sendmail.out  what sendmail printed (read it when it did not start)
#
# Sendmail facts this relies on: with a host name that has no dot it sleeps
# 60 s looking for its own domain, so it runs in a UTS namespace named
# mx.example.test (and confDOMAIN_NAME sets $j to the same); host lookups go
# to /etc/hosts only (a private service switch), unresolvable sender domains
# are accepted; a high load average would make it queue instead of deliver
# (QueueLA/RefuseLA raised); it runs as root with no RunAsUser, so the smmsp
# user is not needed.

# shellcheck source=scripts/lib/unpack.sh
source "$(dirname "${BASH_SOURCE[0]}")/unpack.sh"

sendmail_log() { printf 'sendmail.sh: %s\n' "$*" >&2; }

sendmail_config() {
    local root="$1" dir="$2" port="$3" mc_lines="${4:-}" cf_lines="${5:-}"
    mkdir -p "$dir/inbox" "$dir/mqueue"
    chmod 700 "$dir/mqueue"
    chmod 777 "$dir/inbox"
    cat >"$dir/deliver.sh" <<'EOF'
#!/bin/sh
# The local mailer: $1 is the recipient's local part, the message is on stdin.
f="$(dirname "$0")/inbox/$1.$$"
cat >"$f.tmp" && mv "$f.tmp" "$f"
EOF
    chmod 755 "$dir/deliver.sh"
    printf 'hosts files\naliases files\n' >"$dir/service.switch"
    {
        cat <<EOF
divert(-1)
Throwaway Sendmail for greylag's tests (scripts/lib/sendmail.sh).
divert(0)dnl
include(\`$root/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(\`greylag test')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`mx.example.test')dnl
define(\`QUEUE_DIR', \`$dir/mqueue')dnl
define(\`STATUS_FILE', \`$dir/statistics')dnl
define(\`confPID_FILE', \`$dir/sendmail.pid')dnl
define(\`confSERVICE_SWITCH_FILE', \`$dir/service.switch')dnl
define(\`confHOSTS_FILE', \`/etc/hosts')dnl
define(\`confHELP_FILE', \`$dir/helpfile')dnl
define(\`ALIAS_FILE', \`')dnl
define(\`confCW_FILE', \`')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confQUEUE_LA', \`100')dnl
define(\`confREFUSE_LA', \`200')dnl
define(\`_DEF_LOCAL_MAILER_FLAGS', \`lsDFM5:/|@qS')dnl
define(\`LOCAL_MAILER_FLAGS', \`Pn9')dnl
define(\`LOCAL_MAILER_PATH', \`$dir/deliver.sh')dnl
define(\`LOCAL_MAILER_ARGS', \`deliver.sh \$u')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`no_default_msa')dnl
define(\`confAUTH_MECHANISMS', \`PLAIN LOGIN')dnl
LOCAL_DOMAIN(\`example.net')dnl
DAEMON_OPTIONS(\`Port=$port, Addr=127.0.0.1, Name=MTA')dnl
EOF
        if [[ -n "$mc_lines" ]]; then cat "$mc_lines"; fi
        printf '%s\n' "MAILER(\`local')dnl" "MAILER(\`smtp')dnl"
    } >"$dir/sendmail.mc"
    if ! m4 -D_CF_DIR_="$root/usr/share/sendmail/cf/" "$dir/sendmail.mc" >"$dir/sendmail.cf" 2>"$dir/m4.err" \
        || [[ -s "$dir/m4.err" ]]; then
        sendmail_log "m4 failed on $dir/sendmail.mc:"
        cat "$dir/m4.err" >&2
        return 1
    fi
    if [[ -n "$cf_lines" ]]; then cat "$cf_lines" >>"$dir/sendmail.cf"; fi
}

sendmail_start() {
    local root="$1" dir="$2"
    local port
    port="$(sed -n 's/^O DaemonPortOptions=Port=\([0-9]*\),.*/\1/p' "$dir/sendmail.cf" | head -n 1)"
    rm -f "$dir/sendmail.pid"
    : >"$dir/smtp.log"
    # unshare execs sh, which execs sendmail: $! is the daemon. With SMTP
    # AUTH, the private sasl2 directory is mounted where Cyrus SASL looks
    # for Sendmail.conf, in a mount namespace of its own.
    local mount=":"
    if [[ -f "$dir/sasl2/Sendmail.conf" ]]; then
        if [[ ! -d /usr/lib/sasl2 ]]; then
            sendmail_log "no /usr/lib/sasl2 to mount $dir/sasl2 on (libsasl2-2 is not installed?)"
            return 1
        fi
        mount='mount --bind "$3/sasl2" /usr/lib/sasl2'
    fi
    # Nothing of the caller's: see exec_clean (scripts/lib/unpack.sh).
    (exec_clean unshare -u -m sh -c "$mount"' && hostname mx.example.test && exec "$0" -C "$1" -bD -X "$2"' \
        "$root/usr/libexec/sendmail/sendmail" "$dir/sendmail.cf" "$dir/smtp.log" "$dir" \
        </dev/null >"$dir/sendmail.out" 2>&1) &
    local pid=$! i
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            sendmail_log "sendmail exited at start:"
            cat "$dir/sendmail.out" >&2
            return 1
        fi
        if [[ -s "$dir/sendmail.pid" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    sendmail_log "sendmail did not listen on 127.0.0.1:$port within 10 s"
    kill "$pid" 2>/dev/null
    return 1
}

sendmail_enable_sasl() {
    local dir="$1" user="$2" password="$3"
    mkdir -p "$dir/sasl2"
    printf '%s\n' "pwcheck_method: auxprop" "auxprop_plugin: sasldb" "sasldb_path: $dir/sasl2/sasldb2" \
        "mech_list: PLAIN LOGIN" >"$dir/sasl2/Sendmail.conf"
    printf '%s' "$password" | saslpasswd2 -p -f "$dir/sasl2/sasldb2" -u mx.example.test -c "$user"
}

sendmail_stop() {
    local dir="$1" pid i
    [[ -s "$dir/sendmail.pid" ]] || return 0
    pid="$(head -n 1 "$dir/sendmail.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    return 0
}
