#!/usr/bin/python3
"""Secrets never leak (issue 5, "Secrets").

Every command (--check-config with errors, --ping good/bad, --once, --from/--to, follow +
SIGTERM, translate) runs with canary credentials: the API token (inline from the environment and
as a token_file), a webhook basic-auth password, a webhook HMAC secret and a Kafka REST bearer
token. No canary (nor the base64 of the Basic credentials) may appear in stdout, stderr, the
checkpoint, the dead-letter file, the sink outputs, any other file the daemon writes, or
/metrics. Checkpoint, dead-letter and file-sink outputs are 0600; a token_file readable by
others gets a warning.
"""

import base64
import http.server
import json
import os
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (free_port, SRC, Daemon, FakeSysdig, SF_BIN, daemon_env, main, need_bin,  # noqa: E402
                     read_output, run, scratch_dir, wait_for)

sys.path.insert(0, os.path.join(SRC, "tests", "fakekafka"))
from kafka_rest import FakeKafkaRest  # noqa: E402

TOKEN = "CANARY-TOKEN-7d1f0c"
PASSWORD = "CANARY-PW-93be"
SECRET = "CANARY-HMAC-51aa"
USER = "fwd"
CANARIES = [TOKEN, PASSWORD, SECRET,
            base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode(),
            base64.b64encode(PASSWORD.encode()).decode().rstrip("="),
            base64.b64encode(TOKEN.encode()).decode().rstrip("="),
            base64.b64encode(SECRET.encode()).decode().rstrip("=")]



class Receiver:
    """Webhook receiver. The first 'reject' requests per path get a 400 (dead letters); with
    reflect, its body reflects the request's Authorization header (a hostile receiver: the
    reason that goes to logs and dead letters must still be redacted)."""

    def __init__(self, reject=1, reflect=False):
        self.lock = threading.Lock()
        self.count = {}
        self.bodies = []
        self.auth_seen = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    k = outer.count.get(self.path, 0)
                    outer.count[self.path] = k + 1
                    outer.auth_seen.append((self.headers.get("Authorization"),
                                            self.headers.get("X-Signature")))
                if k < reject:
                    out = (("bad request; you sent Authorization: %s" %
                            self.headers.get("Authorization")).encode() if reflect
                           else b"bad request: field x is not allowed")
                    self.send_response(400)
                else:
                    with outer.lock:
                        outer.bodies.append(body)
                    out = b"{}"
                    self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@need_bin
class SecretsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.umask(0o022)
        cls.fake = FakeSysdig(token=TOKEN, seed=11)
        cls.fake.generate(60, span_s=1800)
        cls.fake.start()
        cls.recv = Receiver(reject=1)
        cls.kafka = FakeKafkaRest(mode="confluent", topics=("events",))
        cls.kafka.auth = "Bearer " + TOKEN

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.recv.stop()
        cls.kafka.stop()

    def setUp(self):
        self.dir = scratch_dir(self, "sf-secrets-")
        self.outputs = []  # (label, text) to scan

    def config(self, token_line="token: ${SYSDIG_SECURE_API_TOKEN}", url=None, extra="",
               name="config.yaml", server_port=None, recv=None):
        d = self.dir
        recv = recv or self.recv
        server = ("server: { listen: \"127.0.0.1:%d\" }\n" % server_port) if server_port else ""
        text = f"""source:
  url: {url or self.fake.url}
  api: legacy
  {token_line}
  page_size: 25
  poll_interval: 1s
  lookback: 1h
  request_timeout: 5s
  retry: {{ initial: 100ms, max: 1s }}
checkpoint: {{ path: {d}/state/checkpoint.json }}
dead_letter: {{ path: {d}/state/dead-letters.ndjson }}
{server}sinks:
  - name: archive
    type: file
    format: raw
    path: {d}/out/events.ndjson
  - name: hook-basic
    type: webhook
    format: raw
    url: {recv.url}/basic
    auth: {{ type: basic, username: {USER}, password: "${{HOOK_PASSWORD}}" }}
    retry: {{ initial: 100ms, max: 500ms, max_attempts: 1 }}
  - name: hook-hmac
    type: webhook
    format: stix
    url: {recv.url}/hmac
    auth: {{ type: hmac, secret: "{SECRET}" }}
    retry: {{ initial: 100ms, max: 500ms, max_attempts: 1 }}
  - name: kafka
    type: kafka_rest
    url: {self.kafka.url}
    topic: events
    api: v2
    auth: {{ type: bearer, token: "${{SYSDIG_SECURE_API_TOKEN}}" }}
log: {{ level: debug, format: text }}
{extra}"""
        os.makedirs(os.path.join(d, "state"), exist_ok=True)
        os.makedirs(os.path.join(d, "out"), exist_ok=True)
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o600)
        return p

    def env(self):
        return daemon_env(token=TOKEN, HOOK_PASSWORD=PASSWORD)

    def token_file(self, mode):
        p = os.path.join(self.dir, "token-%o" % mode)
        with open(p, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(p, mode)
        return p

    def run_cmd(self, label, args, rcs=(0,), timeout=90):
        r = run(args, env=self.env(), timeout=timeout)
        self.assertFalse(r.timed_out, "%s hung\n%s" % (label, r.stderr[-2000:]))
        self.assertIn(r.returncode, rcs, "%s: rc %s\n%s" % (label, r.returncode, r.stderr[-3000:]))
        self.outputs.append((label + " stdout", r.stdout))
        self.outputs.append((label + " stderr", r.stderr))
        return r

    def scan_files(self):
        # everything the daemon wrote (configs and token files hold the canaries on purpose)
        for root, _, files in os.walk(self.dir):
            for fn in files:
                if fn.endswith(".yaml") or fn.startswith("token-"):
                    continue
                p = os.path.join(root, fn)
                with open(p, "rb") as f:
                    self.outputs.append(("file " + p, f.read().decode("utf-8", "replace")))

    def assert_no_canary(self):
        for label, text in self.outputs:
            for c in CANARIES:
                self.assertNotIn(c, text, "canary %r leaked in %s:\n%s" % (
                    c, label, text[max(0, text.find(c) - 300):text.find(c) + 200]))

    def assert_0600(self, *paths):
        for p in paths:
            self.assertTrue(os.path.exists(p), "%s was not created" % p)
            mode = os.stat(p).st_mode & 0o777
            self.assertEqual(mode, 0o600, "%s has mode %04o, want 0600" % (p, mode))

    # ------------------------------------------------------------ tests
    def test_check_config_errors(self):
        bad = os.path.join(self.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write(f"""source:
  url: {self.fake.url}
  token: {TOKEN}
  tokn: {TOKEN}
  page_size: {TOKEN}
sinks:
  - type: webhook
    url: http://127.0.0.1:1/x
    auth: {{ type: basik, username: {USER}, password: {PASSWORD}, pasword: {PASSWORD} }}
  - type: webhook
    url: http://127.0.0.1:1/y
    auth: {{ type: hmac, secret: [{SECRET}] }}
  - type: kafka_rest
    url: http://127.0.0.1:1
    topic: t
    auth: {{ type: bearer, token: {{ x: {TOKEN} }} }}
log: {{ level: {PASSWORD} }}
""")
        r = self.run_cmd("check-config(bad)", ["-c", bad, "--check-config"], rcs=(2,))
        self.assertIn("bad.yaml:", r.stdout + r.stderr)
        # the same config file given to the daemon proper
        self.run_cmd("run(bad)", ["-c", bad, "--once"], rcs=(2,))
        self.assert_no_canary()

    def test_token_file_mode_warning(self):
        for mode, warn in ((0o644, True), (0o600, False)):
            tf = self.token_file(mode)
            cfg = self.config(token_line="token_file: %s" % tf, name="config.yaml")
            r = self.run_cmd("check-config(token_file %o)" % mode, ["-c", cfg, "--check-config"])
            r2 = self.run_cmd("ping(token_file %o)" % mode, ["-c", cfg, "--ping"])
            err = (r.stdout + r.stderr + r2.stderr).lower()
            if warn:
                self.assertTrue("token" in err and ("group" in err or "others" in err
                                                    or "chmod" in err),
                                "no warning for a 0644 token file:\n" + err)
            else:
                self.assertNotIn("chmod", err)
        self.assert_no_canary()

    def test_ping_good_and_bad(self):
        cfg = self.config()
        self.run_cmd("ping(good)", ["-c", cfg, "--ping"])
        wrong = FakeSysdig(token="some-other-token", seed=1)
        wrong.start()
        try:
            cfg2 = self.config(url=wrong.url, name="config2.yaml")
            r = self.run_cmd("ping(bad)", ["-c", cfg2, "--ping"], rcs=(1,))
            self.assertTrue(r.stderr.strip(), "bad ping printed no error")
        finally:
            wrong.stop()
        # unreachable
        cfg3 = self.config(url="http://127.0.0.1:%d" % free_port(), name="config3.yaml")
        self.run_cmd("ping(unreachable)", ["-c", cfg3, "--ping"], rcs=(1,))
        self.assert_no_canary()

    def test_once_range_translate_follow(self):
        tf = self.token_file(0o600)
        cfg = self.config(token_line="token_file: %s" % tf)
        # --once (the first request of each webhook is refused -> dead letters)
        self.run_cmd("once", ["-c", cfg, "--once"], rcs=(0, 1))
        out = os.path.join(self.dir, "out", "events.ndjson")
        cp = os.path.join(self.dir, "state", "checkpoint.json")
        dl = os.path.join(self.dir, "state", "dead-letters.ndjson")
        ids, _ = read_output(out)
        self.assertGreaterEqual(len(set(ids)), 60)
        self.assert_0600(cp, out, dl)
        with open(dl) as f:
            self.assertTrue(f.read().strip(), "dead-letter file is empty")
        # the receivers really got the credentials (the test is not vacuous)
        auths = [a for a, _ in self.recv.auth_seen if a]
        self.assertIn("Basic " + base64.b64encode(
            ("%s:%s" % (USER, PASSWORD)).encode()).decode(), auths)
        self.assertTrue(any(s for _, s in self.recv.auth_seen))
        self.assertTrue(self.kafka.stored("events"))

        # --from/--to (checkpoint untouched)
        range_cfg = self.config(token_line="token_file: %s" % tf, name="range.yaml")
        self.run_cmd("range", ["-c", range_cfg, "--from", "-2h", "--to", "now"], rcs=(0, 1))

        # translate
        ev = os.path.join(self.dir, "one.ndjson")
        with open(out) as f, open(ev, "w") as g:
            g.write(f.readline())
        for fmt in ("stix", "cef"):
            self.run_cmd("translate " + fmt, ["translate", "--format", fmt, ev])

        # follow + /metrics + SIGTERM
        port = free_port()
        fcfg = self.config(token_line="token: ${SYSDIG_SECURE_API_TOKEN}", name="follow.yaml",
                           server_port=port)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        d = Daemon(["-c", fcfg], env=self.env(), logdir=os.path.join(self.dir, "logs"))
        try:
            metrics = [""]

            def got_metrics():
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                                timeout=5) as r:
                        metrics[0] = r.read().decode("utf-8", "replace")
                        return True
                except OSError:
                    return not d.alive()
            self.assertTrue(wait_for(got_metrics, 30, 0.5))
            self.assertTrue(d.alive(), d.stderr()[-3000:])
            self.fake.add_event(late_s=5)
            time.sleep(3)
            got_metrics()
            self.outputs.append(("/metrics", metrics[0]))
            for path in ("/healthz", "/readyz", "/nope"):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                                timeout=5) as r:
                        self.outputs.append((path, r.read().decode("utf-8", "replace")))
                except urllib.error.HTTPError as e:
                    self.outputs.append((path, e.read().decode("utf-8", "replace")))
        finally:
            rc, hung = d.term(25)
        self.assertFalse(hung)
        self.assertEqual(rc, 0, d.stderr()[-3000:])
        self.outputs.append(("follow stderr", d.stderr()))
        self.outputs.append(("follow stdout", d.stdout()))
        self.outputs.append(("receiver bodies", b"\n".join(self.recv.bodies).decode(
            "utf-8", "replace")))
        self.outputs.append(("kafka records", json.dumps(self.kafka.stored("events"),
                                                         default=str)))
        self.assert_0600(cp, out, dl)
        self.scan_files()
        self.assert_no_canary()

    def test_reflected_credentials_redacted(self):
        """A receiver that echoes the Authorization header in its 400 answer: the reason logged
        and stored with the dead letter must not carry the Basic credentials (base64)."""
        recv = Receiver(reject=1, reflect=True)
        try:
            cfg = self.config(recv=recv)
            self.run_cmd("once(reflecting receiver)", ["-c", cfg, "--once"], rcs=(0, 1))
        finally:
            recv.stop()
        self.assertTrue(any(a for a, _ in recv.auth_seen))
        self.scan_files()
        self.assert_no_canary()


if __name__ == "__main__":
    main()
