#!/usr/bin/env python3
"""Drives headless chromium over the DevTools protocol (on a pipe, so no
extra Python module is needed) for the dashboard's release-button test.

    dashboard-click.py CHROMIUM PROFILE_DIR TOKEN click URL
        loads URL sending the token as HTTP Basic password, clicks the first
        release button with the mouse, waits for the next page and prints
        `url=...` and `text=...` of where the browser ended up.

    dashboard-click.py CHROMIUM PROFILE_DIR TOKEN cross-site URL FIELD VALUE SECRET
        loads a page of another origin (a data: URL) that submits a release
        form to URL by itself, as a hostile site would, with the token sent
        as the browser would send remembered credentials; prints the same.

Exit status 0 when the steps ran (the test judges the outcome), 2 on a
usage or browser error.
"""
import base64
import html
import json
import os
import subprocess
import sys
import time


class Browser:
    def __init__(self, chromium, profile):
        to_child_r, self.to_child_w = os.pipe()
        self.from_child_r, from_child_w = os.pipe()

        def child_fds():
            # chromium reads commands on fd 3 and writes answers on fd 4
            # (copied out of the way first: either may already be 3 or 4).
            r, w = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_child_w, json.dumps(message).encode() + b"\0")
        return self.wait(lambda m: m.get("id") == self.next_id)

    def read_one(self, deadline):
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.from_child_r, 65536)
            if not chunk:
                raise EOFError("chromium closed its pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def wait(self, matches, timeout=30):
        deadline = time.monotonic() + timeout
        for i, m in enumerate(self.events):
            if matches(m):
                return self.events.pop(i)
        while True:
            m = self.read_one(deadline)
            if matches(m):
                if "error" in m:
                    raise RuntimeError(f"chromium: {m['error']}")
                return m
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main(argv):
    if len(argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    chromium, profile, token, mode, url = argv[1:6]
    b = Browser(chromium, profile)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["result"]["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["result"]["sessionId"]
        b.send("Page.enable", session=session)
        b.send("Network.enable", session=session)
        basic = base64.b64encode(f"admin:{token}".encode()).decode()
        b.send("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {basic}"}}, session=session)

        def loaded():
            b.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)

        def evaluate(expression):
            r = b.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
            return r["result"]["result"].get("value")

        if mode == "click":
            b.send("Page.navigate", {"url": url}, session=session)
            loaded()
            box = evaluate("(() => { const b = document.querySelector('form.release button');"
                           " if (!b) return null; b.scrollIntoView(); const r = b.getBoundingClientRect();"
                           " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
            if box is None:
                print("url=" + str(evaluate("location.href")))
                print("text=no release button on the page")
                return 0
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                event = {"type": kind, "x": box[0], "y": box[1]}
                if kind != "mouseMoved":
                    event.update({"button": "left", "clickCount": 1})
                b.send("Input.dispatchMouseEvent", event, session=session)
            loaded()
        elif mode == "cross-site" and len(argv) == 9:
            field, value, secret = argv[6:9]
            fields = "".join(f'<input type="hidden" name="{html.escape(n)}" value="{html.escape(v)}">'
                             for n, v in (("field", field), ("value", value), ("secret", secret)))
            page = (f'<form method="post" action="{html.escape(url)}">{fields}</form>'
                    "<script>document.forms[0].submit()</script>")
            b.send("Page.navigate", {"url": "data:text/html;base64," + base64.b64encode(page.encode()).decode()},
                   session=session)
            # The page submits while it loads: wait until the browser shows the answer.
            deadline = time.monotonic() + 20
            while not (evaluate("location.href") == url and evaluate("document.readyState") == "complete"):
                if time.monotonic() > deadline:
                    raise TimeoutError("the cross-site form was not answered")
                time.sleep(0.1)
        else:
            print(__doc__, file=sys.stderr)
            return 2
        print("url=" + str(evaluate("location.href")))
        print("text=" + str(evaluate("document.body ? document.body.innerText : ''")).replace("\n", " "))
        return 0
    except Exception as e:  # noqa: BLE001 - reported to the test
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        b.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
