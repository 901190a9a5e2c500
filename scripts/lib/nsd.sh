# shellcheck shell=bash
# A throwaway authoritative DNS server (nsd from Debian) on loopback for the
# DNS tests. Source this file; it defines functions only.
#
#   nsd_start DIR PORT ZONEDIR -> nsd on 127.0.0.1@PORT and ::1@PORT serving one
#                                 zone per ZONEDIR/*.zone (the zone is the file
#                                 name without .zone); config, pid file, log and
#                                 zone copies in DIR; no chroot, no database,
#                                 no remote control. Returns when it answers.
#   nsd_stop DIR

NSD_BIN="${NSD_BIN:-/usr/sbin/nsd}"

_nsd_log() { printf 'nsd.sh: %s\n' "$*" >&2; }

nsd_start() {
    local dir="${1:?usage: nsd_start DIR PORT ZONEDIR}" port="${2:?}" zonedir="${3:?}"
    if [[ ! -x "$NSD_BIN" ]]; then
        _nsd_log "nsd not found at $NSD_BIN (apt-get install nsd)"
        return 1
    fi
    mkdir -p "$dir/zones"
    local conf="$dir/nsd.conf" zone file name
    local v6=1
    # Without IPv6 on loopback, nsd would refuse to start on ::1.
    [[ -r /proc/net/if_inet6 ]] && grep -q '^0\{31\}1 ' /proc/net/if_inet6 || v6=0
    {
        printf 'server:\n'
        printf '    ip-address: 127.0.0.1@%s\n' "$port"
        [[ $v6 -eq 1 ]] && printf '    ip-address: ::1@%s\n' "$port"
        printf '    do-ip6: %s\n' "$([[ $v6 -eq 1 ]] && echo yes || echo no)"
        printf '    username: ""\n'
        printf '    chroot: ""\n'
        printf '    zonesdir: "%s"\n' "$dir/zones"
        printf '    pidfile: "%s"\n' "$dir/nsd.pid"
        printf '    logfile: "%s"\n' "$dir/nsd.log"
        printf '    xfrdfile: "%s"\n' "$dir/xfrd.state"
        printf '    zonelistfile: "%s"\n' "$dir/zone.list"
        printf '    database: ""\n'
        printf '    server-count: 1\n'
        printf '    verbosity: 1\n'
        printf '    hide-version: yes\n'
        printf 'remote-control:\n'
        printf '    control-enable: no\n'
    } >"$conf"
    local count=0 first=""
    for file in "$zonedir"/*.zone; do
        [[ -e "$file" ]] || continue
        zone="$(basename "$file" .zone)"
        name="$zone.zone"
        cp "$file" "$dir/zones/$name"
        if ! nsd-checkzone "$zone" "$dir/zones/$name" >&2; then
            _nsd_log "zone $zone ($file) does not load"
            return 1
        fi
        printf 'zone:\n    name: "%s"\n    zonefile: "%s"\n' "$zone" "$name" >>"$conf"
        count=$((count + 1))
        [[ -n "$first" ]] || first="$zone"
    done
    if [[ $count -eq 0 ]]; then
        _nsd_log "no zone files in $zonedir"
        return 1
    fi
    if ! nsd-checkconf "$conf" >&2; then
        _nsd_log "nsd-checkconf refused $conf"
        return 1
    fi
    # -c: the config; nsd forks into the background and writes its pid file.
    if ! "$NSD_BIN" -c "$conf" >"$dir/nsd.out" 2>&1; then
        _nsd_log "nsd did not start:"
        cat "$dir/nsd.out" "$dir/nsd.log" >&2 2>/dev/null || true
        return 1
    fi
    for _ in $(seq 1 100); do
        if _nsd_answers "$port" "$first"; then
            _nsd_log "nsd up on 127.0.0.1@$port$([[ $v6 -eq 1 ]] && echo " and ::1@$port") with $count zone(s)"
            return 0
        fi
        sleep 0.1
    done
    _nsd_log "nsd does not answer on 127.0.0.1@$port:"
    cat "$dir/nsd.log" >&2 2>/dev/null || true
    nsd_stop "$dir"
    return 1
}

# Whether nsd answers an SOA query for ZONE on 127.0.0.1@PORT (a raw query
# with python3, which the test machine has; no dig needed).
_nsd_answers() {
    python3 - "$1" "$2" <<'PY' 2>/dev/null
import socket, struct, sys
port, zone = int(sys.argv[1]), sys.argv[2]
q = struct.pack(">HHHHHH", 0x4711, 0, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in zone.split(".") if l) + b"\0" + struct.pack(">HH", 6, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
s.sendto(q, ("127.0.0.1", port))
r = s.recv(4096)
sys.exit(0 if r[:2] == q[:2] and r[3] & 0xf == 0 and struct.unpack(">H", r[6:8])[0] >= 1 else 1)
PY
}

nsd_stop() {
    local dir="${1:?usage: nsd_stop DIR}" pid
    [[ -f "$dir/nsd.pid" ]] || return 0
    pid="$(cat "$dir/nsd.pid" 2>/dev/null || true)"
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$dir/nsd.pid"
}
