#!/usr/bin/python3
"""webhook sink against a Python receiver: HMAC / basic / bearer checked on every request,
injected 429 (Retry-After) / 500 / 400 answers. Every event must arrive, and the events of a
400'd request must be reported as dead-lettered. (splunk_hec: test_sink_splunk_hec.py, against
the Splunk HEC double tests/fakesplunk/hec.py.)"""

import base64
import gzip
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import CANARY, FakeSysdig, main, need_bin, run, scratch_dir  # noqa: E402
from post_server import PostServer  # noqa: E402  (tests/fakeapi, on the path via helpers)

SECRET = "hmac-secret-5b1f9c"
PASSWORD = "pw-7d2e9a1c"
BEARER = "bearer-tok-4e8a2f"


class Receiver:
    """Threaded HTTP receiver. auth: ('hmac', secret) | ('basic', user, pw) | ('bearer', tok).
    faults: {request number (1-based): (status, headers, body)}."""

    def __init__(self, auth, faults=None):
        self.auth = auth
        self.faults = dict(faults or {})
        self.lock = threading.Lock()
        self.n = 0
        self.accepted = []   # ids in accepted requests (order of arrival)
        self.log = []        # (time, request number, status, ids)
        self.errors = []     # protocol problems seen by the receiver
        self.server = PostServer(self._handle)
        self.url = self.server.url

    def stop(self):
        self.server.stop()

    def _reply(self, h, status, body=b"", headers=None):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _check_auth(self, h, raw):
        a = self.auth
        got = h.headers.get("Authorization", "")
        if a[0] == "basic":
            return got == "Basic " + base64.b64encode(("%s:%s" % (a[1], a[2])).encode()).decode()
        if a[0] == "bearer":
            return got == "Bearer " + a[1]
        if a[0] == "hmac":
            ts = h.headers.get("X-Timestamp", "")
            sig = h.headers.get("X-Signature", "")
            want = hmac.new(a[1].encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
            fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
            return fresh and hmac.compare_digest(sig, want)
        return True

    def _ids(self, h, raw):
        body = raw
        if h.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(raw)
        text = body.decode("utf-8")
        ctype = h.headers.get("Content-Type", "")
        vals = []
        if ctype == "application/x-ndjson":
            vals = [json.loads(ln) for ln in text.split("\n") if ln]
        else:
            vals = json.loads(text)
            if not isinstance(vals, list):
                self.errors.append("json body is not an array")
        ids = []
        for v in vals:
            if isinstance(v, dict):
                ids.append(v["id"])
            elif isinstance(v, str):  # cef record: the id is in externalId
                for part in v.split(" "):
                    if part.startswith("externalId="):
                        ids.append(part.split("=", 1)[1])
                        break
                else:
                    self.errors.append("string record without id: %r" % v[:80])
        return ids

    def _handle(self, h):
        raw = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        with self.lock:
            self.n += 1
            num = self.n
        try:
            ids = self._ids(h, raw)
        except Exception as e:  # noqa: BLE001
            self.errors.append("unparsable body: %s" % e)
            self._reply(h, 400, b"unparsable")
            return
        if not self._check_auth(h, raw):
            with self.lock:
                self.log.append((time.time(), num, 401, ids))
            self._reply(h, 401, b"bad credentials")
            return
        f = self.faults.get(num)
        if f:
            with self.lock:
                self.log.append((time.time(), num, f[0], ids))
            self._reply(h, f[0], f[2], f[1])
            return
        with self.lock:
            self.log.append((time.time(), num, 200, ids))
            self.accepted.extend(ids)
        self._reply(h, 200, b"ok")


def sink_config(d, api_url, sink_yaml, page_size=25):
    cp = os.path.join(d, "checkpoint.json")
    text = f"""source:
  url: {api_url}
  api: events
  token: ${{SYSDIG_SECURE_API_TOKEN}}
  page_size: {page_size}
  lookback: 1h
  request_timeout: 5s
checkpoint: {{ path: {cp} }}
sinks:
{sink_yaml}
log: {{ level: info, format: text }}
"""
    path = os.path.join(d, "config.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


@need_bin
class WebhookTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-webhook-")
        self.fake = FakeSysdig(token=CANARY, seed=41)
        self.fake.generate(60, span_s=1200)
        self.fake.start()
        self.ids = set(self.fake._events.keys())
        self.rx = None

    def tearDown(self):
        self.fake.stop()
        if self.rx:
            self.rx.stop()

    def once(self, sink_yaml, env=None):
        cfg = sink_config(self.dir, self.fake.url, sink_yaml)
        e = dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY, **(env or {}))
        r = run(["-c", cfg, "--once"], env=e, timeout=90)
        self.assertFalse(r.timed_out, r.stderr[-3000:])
        for s in (CANARY, SECRET, PASSWORD, BEARER):
            self.assertNotIn(s, r.stderr + r.stdout, "a secret leaked into the output")
        return r

    def test_hmac_json_with_faults(self):
        faults = {2: (429, {"Retry-After": "1"}, b"<html>slow down</html>"),
                  4: (500, {}, b"internal"),
                  6: (400, {}, b"schema mismatch\nline2")}
        self.rx = Receiver(("hmac", SECRET), faults)
        r = self.once(f"""  - name: hook
    type: webhook
    url: {self.rx.url}/ingest
    auth: {{ type: hmac, secret: "${{HOOK_SECRET}}" }}
    batch: {{ max_events: 7 }}
    concurrency: 1
    retry: {{ initial: 100ms, max: 500ms }}
""", env={"HOOK_SECRET": SECRET})
        self.assertEqual(self.rx.errors, [])
        rejected = next(ids for _, n, st, ids in self.rx.log if n == 6)
        self.assertTrue(rejected)
        acc = self.rx.accepted
        self.assertEqual(set(acc) | set(rejected), self.ids, "events missing")
        self.assertFalse(set(acc) & set(rejected))
        self.assertEqual(len(acc), len(set(acc)), "an accepted event was sent twice")
        for i in rejected:
            self.assertRegex(r.stderr, r"event %s dead-lettered: .*HTTP 400: schema mismatch line2"
                             % i)
        # Retry-After: the 429'd events came back no sooner than 1 s later
        t429, _, _, ids429 = next(x for x in self.rx.log if x[1] == 2)
        again = min(t for t, n, st, ids in self.rx.log if n > 2 and set(ids) & set(ids429))
        self.assertGreaterEqual(again - t429, 0.9, "Retry-After not honoured")

    def test_basic_ndjson_gzip_split(self):
        self.rx = Receiver(("basic", "ingest", PASSWORD), {3: (503, {}, b"")})
        r = self.once(f"""  - name: hook
    type: webhook
    url: {self.rx.url}/
    body: ndjson
    gzip: true
    auth: {{ type: basic, username: ingest, password: "{PASSWORD}" }}
    headers: {{ X-Tenant: blue }}
    batch: {{ max_events: 100, max_bytes: 4KiB }}
    retry: {{ initial: 100ms, max: 300ms }}
""")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(self.rx.errors, [])
        self.assertEqual(set(self.rx.accepted), self.ids)
        self.assertEqual(len(self.rx.accepted), len(self.ids))
        # 4 KiB bodies: every page of 25 events needed several requests
        self.assertGreater(len(self.rx.log), 60 / 25 + 1)

    def test_bearer_cef_strings_and_wrong_token(self):
        self.rx = Receiver(("bearer", BEARER))
        r = self.once(f"""  - name: hook
    type: webhook
    format: cef
    url: {self.rx.url}/x
    auth: {{ type: bearer, token: "{BEARER}" }}
""")
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(self.rx.errors, [])
        self.assertEqual(set(self.rx.accepted), self.ids)
        # wrong token: 401 is permanent; every event is dead-lettered with a clear reason
        os.unlink(os.path.join(self.dir, "checkpoint.json"))
        self.rx.accepted.clear()
        r = self.once(f"""  - name: hook
    type: webhook
    url: {self.rx.url}/x
    auth: {{ type: bearer, token: "{BEARER}-old" }}
""")
        self.assertEqual(self.rx.accepted, [])
        for i in self.ids:
            self.assertRegex(r.stderr, r"event %s dead-lettered: .*HTTP 401" % i)

    def test_config_errors(self):
        cfg = sink_config(self.dir, self.fake.url, """  - name: hook
    type: webhook
    url: ftp://x
    auth: { type: hmac }
  - name: k
    type: splunk_hec
    url: http://x
""")
        r = run(["-c", cfg, "--check-config"], timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*url: must start with http")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*type hmac needs secret")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*token")


if __name__ == "__main__":
    main()
