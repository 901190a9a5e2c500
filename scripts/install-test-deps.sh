#!/usr/bin/env bash
# Install the Debian packages that the integration tests need: a real Postfix
# (throwaway instances only), swaks (SMTP client), miltertest (drives a milter
# from a Lua script), postgrey (reference policy server), Cyrus SASL (saslpasswd2 and the PLAIN/LOGIN and sasldb plugins,
# for SMTP AUTH on the throwaway Postfix, see postfix_enable_sasl in
# scripts/lib/postfix.sh), the SQLite headers used by the build, and MariaDB:
# the server for the shared-store tests and the client library (libmariadb-dev)
# that the MySQL/MariaDB backend, built with `--traits MariaDB`, links;
# the Prometheus text parser that reads /metrics; and headless chromium with
# Pillow and a font, to screenshot the dashboard and count its chart pixels;
# sqlgrey with SQLite support, the second reference server of scripts/bench.sh;
# python3-yaml and python3-pip, to fetch and convert the RFC 7208 SPF suite.
#
# Idempotent and non-interactive (works with no stdin, e.g. in CI). Must run
# as root. Packages are installed without letting their maintainer scripts
# start system services: a temporary /usr/sbin/policy-rc.d that exits 101 is
# put in place for the duration of the install (an existing one is kept).
#
# Extra packages can be requested with EXTRA_TEST_PACKAGES="pkg1 pkg2".
set -euo pipefail

PACKAGES=(postfix swaks miltertest ucspi-tcp postgresql-15 postgrey sasl2-bin libsasl2-modules libsasl2-modules-db libsqlite3-dev mariadb-server mariadb-client libmariadb-dev pkg-config python3-prometheus-client chromium python3-pil fonts-dejavu-core sqlgrey libdbd-sqlite3-perl)
PACKAGES+=(m4) # sendmail.cf from sendmail.mc, for Sendmail run unpacked by the tests
PACKAGES+=(libidn12) # exim4, run unpacked by the tests
PACKAGES+=(systemd) # systemd-analyze verify of packaging/greylag.service (scripts/verify-unit.sh)
PACKAGES+=(python3-yaml python3-pip) # the RFC 7208 suite: pip fetches pyspf's sdist, its YAML becomes JSON (scripts/lib/spf-suite.sh)
PACKAGES+=(groff-base man-db) # the greylag.toml(5) page must render without warnings (groff -ww, man -l)
PACKAGES+=(nsd) # the authoritative DNS server of the DNS tests (scripts/lib/nsd.sh)
PACKAGES+=(gross) # grossd, the C greylisting policy server that scripts/bench.sh measures against (scripts/lib/gross.sh)
if [[ -n "${EXTRA_TEST_PACKAGES:-}" ]]; then
    # shellcheck disable=SC2206 # word splitting is intended here
    PACKAGES+=(${EXTRA_TEST_PACKAGES})
fi

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

if [[ "$(id -u)" -ne 0 ]]; then
    log "must run as root"
    exit 1
fi

# Return 0 if the given package is fully installed.
pkg_installed() {
    local status
    status="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)"
    [[ "$status" == "installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    log "all packages already installed: ${PACKAGES[*]}"
    exit 0
fi
log "missing packages: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
export DEBCONF_NONINTERACTIVE_SEEN=true
export LC_ALL=C

# Never let a package start its daemon: invoke-rc.d consults policy-rc.d and
# exit code 101 means "action forbidden". Only install our own if none exists,
# and remove it again on exit.
POLICY_RC="${POLICY_RC_PATH:-/usr/sbin/policy-rc.d}" # overridable for testing only
created_policy_rc=0
cleanup() {
    if [[ $created_policy_rc -eq 1 ]]; then
        rm -f "$POLICY_RC"
    fi
}
trap cleanup EXIT
if [[ ! -e "$POLICY_RC" ]]; then
    printf '#!/bin/sh\n# temporary, created by install-test-deps.sh\nexit 101\n' >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    created_policy_rc=1
fi

# Postfix: "No configuration" leaves /etc/postfix/main.cf alone; the tests
# run private instances with their own config directory.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

# Run "apt-get update" only when the package lists do not know one of the
# missing packages (fresh image with empty lists, or stale lists).
need_update=0
for p in "${missing[@]}"; do
    candidate="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
        need_update=1
        break
    fi
done
apt_update() {
    log "running apt-get update"
    apt-get update -q -o Acquire::Retries=3 </dev/null
}
apt_install() {
    apt-get install -y -q --no-install-recommends \
        -o Acquire::Retries=3 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null
}
if [[ $need_update -eq 1 ]]; then
    apt_update
fi

log "installing: ${missing[*]}"
if ! apt_install; then
    # Stale package lists (e.g. a version no longer on the mirror): refresh
    # once and retry, unless we just did.
    if [[ $need_update -eq 1 ]]; then
        exit 1
    fi
    log "install failed; refreshing package lists and retrying"
    apt_update
    apt_install
fi

# Belt and braces: if a maintainer script started a system-wide daemon anyway
# (e.g. because an existing policy-rc.d allowed it), stop it again. The tests
# only ever use private instances.
if pgrep -x postgrey >/dev/null 2>&1 || pgrep -f '^/usr/sbin/postgrey' >/dev/null 2>&1; then
    if [[ -x /etc/init.d/postgrey ]]; then
        /etc/init.d/postgrey stop </dev/null >/dev/null 2>&1 || true
    fi
fi
if pgrep -f '^/usr/sbin/sqlgrey' >/dev/null 2>&1 && [[ -x /etc/init.d/sqlgrey ]]; then
    /etc/init.d/sqlgrey stop </dev/null >/dev/null 2>&1 || true
fi
if [[ -f /etc/postfix/main.cf ]] && /usr/sbin/postfix status >/dev/null 2>&1; then
    /usr/sbin/postfix stop >/dev/null 2>&1 || true
fi

log "done"
