#!/usr/bin/env bash
# End-to-end check of the test helpers with postgrey as the policy server:
# a private Postfix on 127.0.0.1 and [::1] port 2525 asks postgrey
# (--delay=2) on 127.0.0.1:10099; the first attempt of a new triplet must be
# deferred with 450 4.7.1, a retry after 3 s must be accepted and the
# delivered message must carry postgrey's X-Greylist header. Repeated over
# IPv6 loopback when available. Everything is stopped on exit.
#
# Usage: scripts/demo-postfix-postgrey.sh   (as root; run
#        scripts/install-test-deps.sh first)
# Env:   SMTP_PORT (2525), POLICY_PORT (10099), KEEP_WORKDIR=1 to keep logs.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib/postfix.sh"
. "$here/lib/postgrey.sh"

SMTP_PORT="${SMTP_PORT:-2525}"
POLICY_PORT="${POLICY_PORT:-10099}"

# postgrey prefixes its default greylist text with the DSN "4.2.0" (an old
# Exchange workaround) unless the text starts with a digit, so stock postgrey
# gives "450 4.2.0". The demo sets a text starting with 4.7.1, which yields
# the "450 4.7.1" that Postfix gives for a plain "DEFER_IF_PERMIT text".
# POSTGREY_STOCK_TEXT=1 runs postgrey's own text and expects 450 4.2.0.
if [[ "${POSTGREY_STOCK_TEXT:-0}" == 1 ]]; then
    POSTGREY_TEXT_ARGS=()
    EXPECT_DEFER="450 4.2.0"
else
    POSTGREY_TEXT_ARGS=(--greylist-text='4.7.1 Greylisted for %s seconds, see http://postgrey.schweikert.ch/help/%r.html')
    EXPECT_DEFER="450 4.7.1"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/greylag-demo.XXXXXX")"
chmod 755 "$work"

cleanup() {
    local rc=$?
    set +e
    postfix_stop "$work/postfix"
    postgrey_stop "$work/postgrey"
    if [[ $rc -ne 0 ]]; then
        echo "--- FAILED (rc=$rc); postfix maillog:" >&2
        tail -n 30 "$work/postfix/maillog" >&2 2>/dev/null
        echo "--- postgrey.log:" >&2
        tail -n 30 "$work/postgrey/postgrey.log" >&2 2>/dev/null
    fi
    if [[ "${KEEP_WORKDIR:-0}" == 1 || $rc -ne 0 ]]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# send SERVER FROM TO: run swaks, print its transcript, return its status.
# swaks exits 24 when the recipient is rejected, 0 on success.
send() {
    local server="$1" from="$2" to="$3"
    swaks --server "$server" --port "$SMTP_PORT" --from "$from" --to "$to" \
        --helo client.example.org --timeout 30 \
        --header "Subject: greylag demo $from" 2>&1
}

# check_triplet SERVER FROM TO: first attempt deferred, retry accepted,
# delivered message has X-Greylist.
check_triplet() {
    local server="$1" from="$2" to="$3" out before after msg line

    echo "== $server: first attempt $from -> $to (expect $EXPECT_DEFER)"
    out="$(send "$server" "$from" "$to")" || true
    line="$(grep -F -A1 -- "-> RCPT TO:<$to>" <<<"$out" | grep -F -- "<** $EXPECT_DEFER " || true)"
    [[ -n "$line" ]] || {
        printf '%s\n' "$out" >&2
        fail "no $EXPECT_DEFER at RCPT via $server"
    }
    echo "$line"

    sleep 3
    before="$(postfix_messages "$work/postfix" | wc -l)"

    echo "== $server: retry after 3 s (expect 250)"
    out="$(send "$server" "$from" "$to")" || {
        printf '%s\n' "$out" >&2
        fail "retry via $server was not accepted"
    }
    line="$(grep -F -A1 -- "-> RCPT TO:<$to>" <<<"$out" | grep -E '^<- +250 ' || true)"
    [[ -n "$line" ]] || {
        printf '%s\n' "$out" >&2
        fail "RCPT not accepted with 250 via $server"
    }
    echo "$line"
    grep -E '^ *<- +250 .*queued as' <<<"$out" || fail "message not queued via $server"

    postfix_wait_messages "$work/postfix" $((before + 1)) 20 ||
        fail "message via $server not delivered"
    msg="$(postfix_messages "$work/postfix" | tail -n 1)"
    after="$(grep -m1 '^X-Greylist:' "$msg" || true)"
    [[ -n "$after" ]] || {
        cat "$msg" >&2
        fail "no X-Greylist header in $msg"
    }
    grep -qi "^From: .*$from" "$msg" || fail "last message in maildir is not from $from"
    echo "delivered: $msg"
    echo "$after"
}

t0=$SECONDS
postgrey_start "$work/postgrey" "127.0.0.1:$POLICY_PORT" --delay=2 "${POSTGREY_TEXT_ARGS[@]}"
postfix_start "$work/postfix" "$SMTP_PORT" "127.0.0.1:$POLICY_PORT"
echo "servers up after $((SECONDS - t0)) s"

check_triplet 127.0.0.1 a@example.org user@example.net
if postfix_has_ipv6; then
    check_triplet ::1 b6@example.org user@example.net
else
    echo "== IPv6 loopback (::1) not available: IPv6 check skipped"
fi

postfix_stop "$work/postfix"
postgrey_stop "$work/postgrey"
sleep 0.2
# Nothing of ours may survive: Postfix daemons run as user postfix (the
# master as root, named "master"), postgrey as user postgrey, and postgrey's
# arguments contain the work directory. Zombies are ignored: on machines
# whose init reaps orphans lazily, a stopped master can linger as <defunct>
# for a moment. This demo assumes no other Postfix/postgrey on the machine.
# (The work dir is passed via the environment so awk does not match itself.)
left="$(ps -eo pid=,stat=,user=,comm=,args= | W="$work" awk '
    $2 !~ /^Z/ && ($3 == "postfix" || $3 == "postgrey" || $4 == "master" ||
                   index($0, ENVIRON["W"]) > 0)')"
if [[ -n "$left" ]]; then
    fail "processes left over: $left"
fi
echo "no postfix/postgrey processes left"
echo "OK: demo passed in $((SECONDS - t0)) s"
