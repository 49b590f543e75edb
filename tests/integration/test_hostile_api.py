#!/usr/bin/python3
"""The daemon against a hostile Events API (issue 5, "hostile and broken inputs").

A raw-socket server on 127.0.0.1 stands between the daemon and the fake Sysdig API. It answers
the first requests with one hostile behaviour after another (garbage bytes, an endless body, a
2 GiB Content-Length with a slow body, invalid UTF-8 inside JSON strings, a redirect loop, a
1 byte/s drip, text/html 200, HTML 500 bodies), then turns good and relays to the fake. The
daemon (follow mode) must never crash, must log a clear error for each fault and retry, must
keep its memory bounded (VmRSS, not under SF_SANITIZE), and in the end must deliver every event
the API holds (no loss).
"""

import os
import socket
import sys
import threading
import time
import unittest
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, Daemon, FakeSysdig, NS, daemon_env, main,  # noqa: E402
                     need_bin, read_output, scratch_dir, wait_for, write_config)

SANITIZE = os.environ.get("SF_SANITIZE") == "1"
RSS_LIMIT_KB = 200 * 1024
MAX_RESPONSE = 1 << 20  # source.max_response_size: 1MiB


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Hostile:
    """Threaded raw HTTP server. modes: list of (mode, count); after the list: 'good'."""

    def __init__(self, upstream, modes):
        self.upstream = upstream  # (host, port) of the fake API
        self.modes = list(modes)
        self.idx = 0
        self.used = 0
        self.lock = threading.Lock()
        self.hits = {}          # mode -> requests answered that way
        self.sent = {}          # mode -> bytes sent (max over requests)
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def close(self):
        self.stop.set()
        self.t.join(5)
        self.sock.close()

    def mode(self):
        with self.lock:
            return self.modes[self.idx][0] if self.idx < len(self.modes) else "good"

    def _next_mode(self):
        with self.lock:
            if self.idx >= len(self.modes):
                m = "good"
            else:
                m = self.modes[self.idx][0]
                self.used += 1
                if self.used >= self.modes[self.idx][1]:
                    self.idx += 1
                    self.used = 0
            self.hits[m] = self.hits.get(m, 0) + 1
            return m

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _read_request(self, c):
        c.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) > 1 << 20:
                return None
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        return parts[0], parts[1], hdrs

    def _send(self, c, mode, data):
        c.sendall(data)
        with self.lock:
            self.sent[mode] = max(self.sent.get(mode, 0), len(data))

    def _upstream(self, path, hdrs):
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        h = {k: v for k, v in hdrs.items() if k in ("authorization", "accept")}
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        body = r.read()
        ctype = r.getheader("Content-Type", "application/json")
        conn.close()
        return r.status, ctype, body

    def _serve(self, c):
        try:
            req = self._read_request(c)
            if not req:
                return
            _, path, hdrs = req
            m = self._next_mode()
            getattr(self, "_m_" + m)(c, m, path, hdrs)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    @staticmethod
    def _resp(status, reason, ctype, body, extra=""):
        return ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s"
                "Connection: close\r\n\r\n" % (status, reason, ctype, len(body), extra)
                ).encode() + body

    # ---- behaviours
    def _m_good(self, c, m, path, hdrs):
        st, ctype, body = self._upstream(path, hdrs)
        self._send(c, m, self._resp(st, "X", ctype, body))

    def _m_garbage(self, c, m, path, hdrs):
        self._send(c, m, os.urandom(4096) + b"\r\n\r\n\x00\xff" * 100)

    def _m_endless(self, c, m, path, hdrs):
        # 200, no Content-Length, a JSON array that never ends
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\n\r\n{\"data\":[")
        chunk = (b'{"id":"endless","timestamp":"2024-01-01T00:00:00Z","name":"' +
                 b"A" * 4000 + b'"},')
        total = 0
        end = time.time() + 30
        while not self.stop.is_set() and time.time() < end:
            try:
                c.sendall(chunk)
            except OSError:
                break
            total += len(chunk)
        with self.lock:
            self.sent[m] = max(self.sent.get(m, 0), total)

    def _m_huge(self, c, m, path, hdrs):
        # 2 GiB announced, then a slow body
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2147483648\r\nConnection: close\r\n\r\n{\"data\":[")
        end = time.time() + 30
        while not self.stop.is_set() and time.time() < end:
            try:
                c.sendall(b" " * 16)
            except OSError:
                break
            time.sleep(0.5)

    def _m_badutf8(self, c, m, path, hdrs):
        # the real page with invalid UTF-8 inside JSON strings (ids intact)
        st, ctype, body = self._upstream(path, hdrs)
        body = body.replace(b'"name":"', b'"name":"\xff\xfe\xc3(\xed\xa0\x80', 3)
        self._send(c, m, self._resp(st, "OK", ctype, body))

    def _m_redirect(self, c, m, path, hdrs):
        self._send(c, m, self._resp(302, "Found", "text/html", b"<a>moved</a>",
                                    "Location: %s%s\r\n" % (self.url, path)))

    def _m_drip(self, c, m, path, hdrs):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\nConnection: close\r\n\r\n")
        end = time.time() + 30
        for b in b'{"data":[' + b" " * 990:
            if self.stop.is_set() or time.time() > end:
                break
            try:
                c.sendall(bytes([b]))
            except OSError:
                break
            time.sleep(1.0)

    def _m_html200(self, c, m, path, hdrs):
        self._send(c, m, self._resp(200, "OK", "text/html; charset=utf-8",
                                    b"<!DOCTYPE html><html><head><title>Login</title></head>"
                                    b"<body><form>Sign in</form></body></html>"))

    def _m_html500(self, c, m, path, hdrs):
        self._send(c, m, self._resp(500, "Internal Server Error", "text/html",
                                    b"<html><body><h1>500 Internal Server Error</h1>"
                                    b"<p>nginx</p></body></html>"))


MODES = [("garbage", 2), ("endless", 2), ("huge", 1), ("badutf8", 1), ("redirect", 3),
         ("drip", 1), ("html200", 2), ("html500", 2)]


@need_bin
class HostileApiTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-hostile-")
        self.fake = FakeSysdig(token=CANARY, seed=5)
        self.fake.generate(120, span_s=1800)
        self.fake.start()
        host, port = self.fake.url[len("http://"):].split(":")
        self.hostile = Hostile((host, int(port)), MODES)
        self.daemon = None

    def tearDown(self):
        if self.daemon and self.daemon.alive():
            self.daemon.kill9()
        self.hostile.close()
        self.fake.stop()

    def test_hostile_then_good_no_loss(self):
        cfg, out, _ = write_config(
            self.dir, self.hostile.url, page_size=50, poll_interval="1s", lookback="1h",
            request_timeout="3s", retry_initial="100ms", retry_max="1s",
            # one request at a time: each hostile answer is met in turn, so the drip's timeout
            # is logged before the API turns good (concurrent slices would finish first)
            extra_source="  max_response_size: 1MiB\n  auth_retry: 1s\n  connect_timeout: 2s\n"
                         "  max_concurrency: 1\n")
        self.daemon = Daemon(["-c", cfg], env=daemon_env(), logdir=self.dir)
        pid = self.daemon.p.pid
        peak = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            # every hostile behaviour is served (each one consumed means the daemon retried)
            ok = wait_for(lambda: not self.daemon.alive() or self.hostile.mode() == "good", 60,
                          0.2)
            self.assertTrue(self.daemon.alive(),
                            "daemon died: rc=%s\n%s" % (self.daemon.p.returncode,
                                                        self.daemon.stderr()[-3000:]))
            self.assertTrue(ok, "hostile modes not all consumed (stuck in %s; hits %s)\n%s" % (
                self.hostile.mode(), self.hostile.hits, self.daemon.stderr()[-3000:]))
            # then every event the API holds arrives
            want = self.fake.ids_between(0, time.time_ns() + 3600 * NS)
            self.assertEqual(len(want), 120)
            got = set()

            def covered():
                got.clear()
                got.update(read_output(out)[0])
                return not self.daemon.alive() or set(want) <= got
            wait_for(covered, 45, 0.5)
            self.assertTrue(self.daemon.alive(), self.daemon.stderr()[-3000:])
            missing = set(want) - got
            self.assertFalse(missing, "%d events lost, e.g. %s\n%s" % (
                len(missing), sorted(missing)[:5], self.daemon.stderr()[-3000:]))
        finally:
            stop.set()
            sampler.join(2)
        rc, hung = self.daemon.term(20)
        err = self.daemon.stderr()
        self.assertFalse(hung, "daemon hung on SIGTERM")
        self.assertEqual(rc, 0, "exit status %s\n%s" % (rc, err[-3000:]))
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "Segmentation"):
            self.assertNotIn(bad, err)
        self.assertNotIn(CANARY, err)
        self.assertNotIn(CANARY, self.daemon.stdout())
        # hostile answers never end up as events
        self.assertNotIn("endless", set(read_output(out)[0]))
        # the endless body was cut near max_response_size (socket buffers add a few MiB)
        self.assertLess(self.hostile.sent.get("endless", 0), 64 * MAX_RESPONSE,
                        "endless body not aborted by max_response_size")
        # a clear error per fault, and retries
        low = err.lower()
        self.assertGreaterEqual(low.count("retry"), 8, err[-3000:])
        expect = {
            "endless/huge (too big)": ("too large", "too big", "exceed", "max_response_size"),
            "drip (timeout)": ("timeout", "timed out"),
            "redirect": ("302",),
            "html 500": ("500",),
            "html 200 / garbage": ("json", "malformed", "invalid", "content type",
                                   "content-type", "protocol", "weird"),
        }
        for what, words in expect.items():
            self.assertTrue(any(w in low for w in words),
                            "no clear error logged for %s (looked for %s)\n%s" % (
                                what, words, err[-4000:]))
        print("hits per mode: %s; peak VmRSS %d kB; endless bytes sent %d" % (
            self.hostile.hits, peak[0], self.hostile.sent.get("endless", 0)))
        if not SANITIZE:
            self.assertGreater(peak[0], 0)
            self.assertLess(peak[0], RSS_LIMIT_KB, "VmRSS peaked at %d kB" % peak[0])


if __name__ == "__main__":
    main()
