#!/usr/bin/env python3
"""The attacks of scripts/hostile.sh, against a running greylag.

Each attack prints one line: what it tried, what happened, and whether
the daemon was alive and answering a well-behaved policy client after it.
Exit status 1 when an attack got through or the daemon died.
"""
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time

POLICY = int(os.environ["HOSTILE_POLICY_PORT"])
MILTER = int(os.environ["HOSTILE_MILTER_PORT"])
HTTP = int(os.environ["HOSTILE_HTTP_PORT"])
HELPER = os.environ["HOSTILE_HELPER_SOCKET"]
TOKEN = os.environ["HOSTILE_TOKEN"]
PID = int(os.environ["HOSTILE_PID"])
BINARY = os.environ["HOSTILE_BINARY"]
WORK = os.environ["HOSTILE_WORK"]

failures = 0
serial = 0

resource.setrlimit(resource.RLIMIT_NOFILE, (4096, max(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))


def policy_request(attrs, sock=None, port=POLICY, timeout=10):
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = "".join(f"{k}={v}\n" for k, v in attrs) + "\n"
    sock.sendall(data.encode("utf-8", "surrogateescape"))
    answer = b""
    while not answer.endswith(b"\n\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    if own:
        sock.close()
    return answer.decode(errors="replace").strip()


def rcpt(client="192.0.2.7", sender="alice@example.org", recipient="bob@example.net", extra=()):
    return [("request", "smtpd_access_policy"), ("protocol_state", "RCPT"), ("client_address", client),
            ("client_name", "unknown"), ("helo_name", "mx.example.org"), ("sender", sender),
            ("recipient", recipient)] + list(extra)


def well_behaved():
    """A fresh triplet from a client greylag does not know: must be deferred."""
    global serial
    serial += 1
    try:
        answer = policy_request(rcpt(client="203.0.113.%d" % (serial % 250 + 1),
                                     recipient=f"probe{serial}-{time.time_ns()}@example.net"))
    except OSError as e:
        return f"no answer ({e})"
    return answer


def alive():
    try:
        os.kill(PID, 0)
    except ProcessLookupError:
        return False
    return True


def http(method, path, body=None, headers=None, token=True):
    s = socket.create_connection(("127.0.0.1", HTTP), timeout=10)
    h = {"Host": f"127.0.0.1:{HTTP}", "Connection": "close"}
    if token:
        h["Authorization"] = f"Bearer {TOKEN}"
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body.encode()))
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None) + "\r\n"
    s.sendall(head.encode() + (body or "").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def report(name, tried, happened, ok):
    global failures
    answer = well_behaved()
    up = alive() and answer.startswith("action=DEFER_IF_PERMIT")
    verdict = "ok" if ok and up else "FAILED"
    if verdict != "ok":
        failures += 1
    print(f"{verdict:6} {name}: {tried} -> {happened}; daemon alive and answering: "
          f"{'yes' if up else 'NO (' + answer + ')'}", flush=True)


def whitelist_count():
    status, body = http("GET", "/api/whitelist")
    return len(json.loads(body).get("entries", [])) if status == 200 else -1


def attack_tokenless_write():
    before = whitelist_count()
    status, _ = http("POST", "/api/whitelist", '{"field": "client", "value": "0.0.0.0/0"}', token=False)
    after = whitelist_count()
    report("admin-without-token", "POST /api/whitelist 0.0.0.0/0 without the token",
           f"HTTP {status}, whitelist entries {before} -> {after}", status in (401, 403) and before == after)


def attack_cross_site():
    body = '{"field": "client", "value": "0.0.0.0/0"}'
    results = []
    for label, headers in [("text/plain", {"Content-Type": "text/plain"}),
                           ("foreign Origin", {"Origin": "http://evil.example"}),
                           ("Sec-Fetch-Site cross-site", {"Sec-Fetch-Site": "cross-site"})]:
        status, _ = http("POST", "/api/whitelist", body, headers=headers)
        results.append((label, status))
    status, _ = http("GET", "/api/records", headers={"Host": f"rebind.evil.example:{HTTP}"})
    results.append(("DNS-rebound Host", status))
    refused = all(s in (403, 415) for _, s in results)
    report("cross-site", "browser-style writes (even with the token) and a rebound Host",
           ", ".join(f"{l}: HTTP {s}" for l, s in results), refused and whitelist_count() == 0)


def attack_huge_numbers():
    results = []
    for value in ["9223372036854775807", "-9223372036854775808", "1e308", "99999999999999999999999"]:
        status, _ = http("POST", "/api/whitelist", '{"field": "client", "value": "192.0.2.0/24", "expires_in": %s}' % value)
        results.append((value, status))
    status, _ = http("GET", "/api/records?limit=99999999999999999999")
    results.append(("limit=1e20", status))
    report("api-numbers", "expires_in and limit far out of range", ", ".join(f"{v}: HTTP {s}" for v, s in results),
           all(s == 400 for _, s in results))


def attack_config_numbers():
    results = []
    for key, value in [("greylist", 'delay = "99999999999999d"'), ("greylist", "delay = 9223372036854775807"),
                       ("greylist", 'pass_ttl = "9223372036854775807s"'), ("store", "timeout = 1e308"),
                       ("policy", "max_connections = 99999999999")]:
        path = os.path.join(WORK, "huge.toml")
        with open(path, "w") as f:
            f.write(f"[{key}]\n{value}\n")
        p = subprocess.run([BINARY, "check-config", "--config", path], capture_output=True, text=True, timeout=30)
        results.append((value, p.returncode, (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]))
    ok = all(code != 0 and "huge.toml:" in line[0] for _, code, line in results)
    report("config-numbers", "check-config with durations and counts far out of range",
           "; ".join(f"{v!r}: exit {c}" for v, c, _ in results), ok)


def flood(port, count, send=b""):
    socks = []
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if send:
                s.sendall(send)
            socks.append(s)
        except OSError:
            break
    return socks


def attack_http_flood():
    socks = flood(HTTP, 300)
    time.sleep(1)
    up = alive()
    # A slow header: one byte a second.
    slow = socket.create_connection(("127.0.0.1", HTTP), timeout=5)
    slow.sendall(b"GET /metrics HTTP/1.1\r\n")
    for s in socks:
        s.close()
    time.sleep(0.5)
    status, _ = http("GET", "/metrics", token=False)
    report("http-silent-flood", f"{len(socks)} silent HTTP connections",
           f"daemon {'up' if up else 'dead'} during the flood, /metrics afterwards HTTP {status}", up and status == 200)
    slow.close()


def attack_policy_flood():
    socks = flood(POLICY, 1100)
    time.sleep(1)
    up = alive()
    for s in socks:
        s.close()
    time.sleep(0.5)
    report("policy-idle-flood", f"{len(socks)} idle policy connections (descriptor limit 1024)",
           f"daemon {'up' if up else 'dead'} during the flood", up)


def attack_regex():
    sender = "a" * 8000 + "!@x.example"  # under the policy line limit (8192)
    start = time.monotonic()
    answer = policy_request(rcpt(sender=sender, recipient="redos@example.net"))
    took = time.monotonic() - start
    report("regex-redos", "sender 'a'*8000+'!@x.example' against /^(a+)+$/ and friends",
           f"answered in {took:.3f} s: {answer[:40]}", took < 2 and answer.startswith("action="))


def milter_packet(cmd, payload=b""):
    return struct.pack(">I", len(payload) + 1) + cmd + payload


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def attack_milter_macros():
    before = rss_kib()
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", MILTER), timeout=10)
        s.sendall(milter_packet(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)))
        s.recv(4096)
        for stage in range(256):
            value = b"x" * 60000
            s.sendall(milter_packet(b"D", bytes([stage]) + b"{m%d}\0" % stage + value + b"\0"))
        socks.append(s)
    time.sleep(1)
    after = rss_kib()
    for s in socks:
        s.close()
    grown = (after - before) / 1024
    report("milter-macro-flood", "20 connections x 256 stage bytes x 60 KB of macros (300 MB sent)",
           f"resident memory grew {grown:.1f} MiB", grown < 64)


def attack_helper_attributes():
    answer = policy_request(rcpt(client="198.51.100.9", recipient="helper@example.net",
                                 extra=[("greylag_delay", "0")]))
    held = policy_request(rcpt(client="198.51.100.10", recipient="held@example.net",
                               extra=[("greylag_delay", "2592000")]))
    report("helper-attributes", "greylag_delay=0 and =2592000 on the public policy listener",
           f"answers: {answer[:30]} / {held[:60]}",
           answer.startswith("action=DEFER_IF_PERMIT") and "300 seconds" in held)


def attack_nul_and_crlf():
    closed = 0
    for suffix in ["one", "two", "three"]:
        s = socket.create_connection(("127.0.0.1", POLICY), timeout=5)
        data = "".join(f"{k}={v}\n" for k, v in rcpt(sender=f"victim@example.org\0{suffix}", recipient="nul@example.net"))
        s.sendall(data.encode() + b"\n")
        try:
            got = s.recv(4096)
        except OSError:
            got = b""
        closed += got == b""
        s.close()
    status, body = http("GET", "/api/records?recipient=nul@example.net")
    stored = len(json.loads(body).get("records", [])) if status == 200 else -1
    s = socket.create_connection(("127.0.0.1", POLICY), timeout=5)
    s.sendall("".join(f"{k}={v}\r\n" for k, v in rcpt(recipient="crlf@example.net")).encode() + b"\r\n")
    crlf = s.recv(4096).decode(errors="replace").strip()
    s.close()
    report("nul-and-crlf", "three senders differing after a NUL; a CRLF request",
           f"{closed} of 3 closed, {stored} stored; CRLF answered {crlf[:30]!r}",
           closed == 3 and stored == 0 and crlf.startswith("action="))


def attack_oversized():
    s = socket.create_connection(("127.0.0.1", POLICY), timeout=10)
    try:
        s.sendall(b"sender=" + b"a" * (4 << 20))
        got = s.recv(100)
    except OSError:
        got = b""
    s.close()
    report("oversized-request", "a 4 MiB policy attribute", f"connection {'closed' if got == b'' else 'answered'}",
           got == b"" or got.startswith(b"action="))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def attack_broken_store():
    """A second daemon on a store file that is not a greylag database."""
    results = []
    for label, content in [("text file", b"this is not a database\n" * 100),
                           ("truncated SQLite", b"SQLite format 3\0" + b"\xff" * 3000)]:
        store = os.path.join(WORK, "broken.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(store + suffix):
                os.remove(store + suffix)
        with open(store, "wb") as f:
            f.write(content)
        port = free_port()
        config = os.path.join(WORK, "broken.toml")
        with open(config, "w") as f:
            f.write(f'[policy]\nlisten = ["127.0.0.1:{port}"]\n[milter]\nlisten = []\n[http]\nlisten = "none"\n'
                    f'[admin]\nsocket = "none"\n[store]\npath = "{store}"\n')
        log = open(os.path.join(WORK, "broken.log"), "w")
        p = subprocess.Popen([BINARY, "serve", "--config", config], stdout=log, stderr=log)
        answer = "no answer"
        try:
            for _ in range(100):
                try:
                    answer = policy_request(rcpt(recipient="broken@example.net"), port=port)
                    break
                except OSError:
                    if p.poll() is not None:
                        answer = f"exited with {p.returncode}"
                        break
                    time.sleep(0.1)
        finally:
            p.terminate()
            p.wait(timeout=10)
        results.append((label, answer))
    report("broken-store", "a daemon started on a text file and on a truncated SQLite file",
           "; ".join(f"{l}: {a[:30]}" for l, a in results), all(a == "action=DUNNO" for _, a in results))


ATTACKS = [attack_tokenless_write, attack_cross_site, attack_huge_numbers, attack_config_numbers,
           attack_http_flood, attack_policy_flood, attack_regex, attack_milter_macros,
           attack_helper_attributes, attack_nul_and_crlf, attack_oversized, attack_broken_store]

if __name__ == "__main__":
    only = sys.argv[1:]
    for attack in ATTACKS:
        if only and attack.__name__.removeprefix("attack_") not in only:
            continue
        try:
            attack()
        except Exception as e:  # an attack that cannot run is a failure, not a pass
            failures += 1
            print(f"FAILED {attack.__name__}: could not run: {e!r}; daemon alive: {'yes' if alive() else 'NO'}",
                  flush=True)
    print(f"hostile: {failures} failure(s)")
    sys.exit(1 if failures else 0)
