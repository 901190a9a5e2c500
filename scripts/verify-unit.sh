#!/usr/bin/env bash
# The cheap guard of the packaged systemd unit, run by scripts/test.sh:
# `systemd-analyze verify` on packaging/greylag.service pointed at a built
# greylag binary (verify wants ExecStart's binary to exist), and
# `systemd-analyze security --offline` so that the sandbox cannot loosen
# unnoticed (exposure at most 2.0 of 10; it is 1.6 today).
#
#   scripts/verify-unit.sh PATH/TO/greylag
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'verify-unit: %s\n' "$*" >&2; }
BIN="${1:-}"
[[ -n "$BIN" && -x "$BIN" ]] || { log "usage: scripts/verify-unit.sh PATH/TO/greylag (an executable)"; exit 2; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
command -v systemd-analyze >/dev/null || { log "systemd-analyze is missing (apt-get install systemd)"; exit 2; }

DIR="$(mktemp -d /tmp/greylag-unit.XXXXXX)"
trap 'rm -rf "$DIR"' EXIT
grep -q '^ExecStart=/usr/sbin/greylag serve --config /etc/greylag/greylag.toml$' packaging/greylag.service \
    || { log "packaging/greylag.service: ExecStart is not the packaged binary with the packaged configuration"; exit 1; }
sed "s#^ExecStart=/usr/sbin/greylag#ExecStart=$BIN#" packaging/greylag.service >"$DIR/greylag.service"

# The unit's command line must parse (serve --config FILE) with this binary.
"$BIN" serve --help | grep -q -- '--config' || { log "$BIN serve takes no --config"; exit 1; }

out="$(systemd-analyze verify --man=no "$DIR/greylag.service" 2>&1)" || true
if [[ -n "$out" ]]; then
    log "systemd-analyze verify packaging/greylag.service:"
    printf '%s\n' "$out" >&2
    exit 1
fi
if ! systemd-analyze security --offline=yes --threshold=20 "$DIR/greylag.service" >"$DIR/security.out" 2>&1; then
    log "systemd-analyze security: the unit's exposure rose above 2.0:"
    grep -E '^(✗|→)' "$DIR/security.out" >&2 || cat "$DIR/security.out" >&2
    exit 1
fi
log "packaging/greylag.service verified ($(grep -o 'exposure level.*' "$DIR/security.out" | head -1))"
