#!/usr/bin/python3
"""A sink whose receiver's certificate cannot be verified is a configuration problem, not an
outage (issue 11). Bounded runs (--once) fail at once (exit 1) naming the cause and the fix,
instead of retrying with backoff like a network outage. In follow mode it is logged once per
episode, tried again only at the slow retry.max pace without counting attempts (events are never
dead-lettered for it), /readyz fails for the sink, and sink_errors_total{class="tls_verify"}
counts it; its end is logged once too, and a later episode again. Webhook, Splunk HEC and Kafka
REST (libcurl), syslog over TLS (net/stream) and the native Kafka sink (librdkafka)."""

import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (free_port, CANARY, Daemon, FakeSysdig, daemon_env, http_get, main,  # noqa: E402
                     need_bin, run, scratch_dir, wait_for)

FIX = "tls.ca_file"
CAUSE = "certificate cannot be verified"



class Hook(http.server.BaseHTTPRequestHandler):
    """Accepts every JSON array it is posted; notes when each request came."""

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.ids.update(e.get("id") for e in json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class TlsPeers:
    """A self-signed certificate for 127.0.0.1 that the daemon does not trust, an HTTPS
    webhook receiver and a TLS syslog receiver using it; each notes its handshakes."""

    def __init__(self, d):
        self.cert = os.path.join(d, "cert.pem")
        key = os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert], check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        self.hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.hook.ids = set()
        self.hook.daemon_threads = True
        self.attempts = []  # time of every connection to either receiver
        raw = self.hook.socket
        self.hook.get_request = self._accept(raw)
        self.hook_url = "https://127.0.0.1:%d/in" % self.hook.server_address[1]
        threading.Thread(target=self.hook.serve_forever, daemon=True).start()
        self.syslog = socket.socket()
        self.syslog.bind(("127.0.0.1", 0))
        self.syslog.listen(16)
        self.syslog_port = self.syslog.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._syslog_loop, daemon=True).start()

    def _accept(self, raw):
        def get_request():
            c, a = raw.accept()
            self.attempts.append(time.monotonic())
            return self.ctx.wrap_socket(c, server_side=True), a  # the ctx of the moment
        return get_request

    def _syslog_loop(self):
        while not self.stop:
            try:
                c, _ = self.syslog.accept()
            except OSError:
                return
            self.attempts.append(time.monotonic())
            try:
                s = self.ctx.wrap_socket(c, server_side=True)
                while s.recv(65536):
                    pass
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def close(self):
        self.stop = True
        self.hook.shutdown()
        self.hook.server_close()
        self.syslog.close()


@need_bin
class SinkTlsVerifyTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-sinktls-")
        self.fake = FakeSysdig(token=CANARY, seed=23)
        self.fake.generate(30, span_s=600)
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.peers = TlsPeers(self.dir)
        self.addCleanup(self.peers.close)

    def config(self, sink_yaml, extra=""):
        cp = os.path.join(self.dir, "checkpoint.json")
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as f:
            f.write(f"""source:
  url: {self.fake.url}
  api: events
  token: ${{SYSDIG_SECURE_API_TOKEN}}
  page_size: 10
  lookback: 1h
  poll_interval: 1s
checkpoint: {{ path: {cp} }}
sinks:
{sink_yaml}log: {{ level: info, format: text }}
{extra}""")
        return path

    def webhook(self, tls="", retry="{ initial: 1s, max: 1m }"):
        return f"""  - name: hook
    type: webhook
    url: {self.peers.hook_url}
    retry: {retry}
{tls}"""

    def syslog(self, retry="{ initial: 1s, max: 1m }"):
        return f"""  - name: siem
    type: syslog
    address: tls://127.0.0.1:{self.peers.syslog_port}
    retry: {retry}
"""

    def assert_fails_at_once(self, sink_yaml, name):
        cfg = self.config(sink_yaml)
        t0 = time.time()
        r = run(["-c", cfg, "--once"], timeout=30)
        took = time.time() - t0
        self.assertFalse(r.timed_out, r.stderr[-2000:])
        self.assertEqual(r.returncode, 1, r.stderr[-2000:])
        self.assertLess(took, 20, "retried like an outage (%.1fs)" % took)
        self.assertIn(CAUSE, r.stderr)
        self.assertIn(FIX, r.stderr)
        self.assertEqual(r.stderr.count(CAUSE), 1, "logged more than once:\n" + r.stderr[-3000:])
        self.assertNotIn("retry 2 in", r.stderr)
        self.assertIn("sink %s:" % name, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "dead-letters.ndjson")))

    def test_webhook_once_fails_at_once_with_the_fix(self):
        self.assert_fails_at_once(self.webhook(), "hook")
        self.assertEqual(self.peers.hook.ids, set())

    def test_syslog_tls_once_fails_at_once_with_the_fix(self):
        self.assert_fails_at_once(self.syslog(), "siem")

    def test_splunk_hec_once_fails_at_once_with_the_fix(self):
        self.assert_fails_at_once("""  - name: splunk
    type: splunk_hec
    url: %s
    token: "hec-token-1234"
    retry: { initial: 1s, max: 1m }
""" % self.peers.hook_url.replace("/in", ""), "splunk")

    def test_kafka_rest_once_fails_at_once_with_the_fix(self):
        self.assert_fails_at_once("""  - name: bus
    type: kafka_rest
    url: %s
    topic: events
    retry: { initial: 1s, max: 1m }
""" % self.peers.hook_url.replace("/in", ""), "bus")

    def test_kafka_once_fails_at_once_with_the_fix(self):
        """The native Kafka sink (librdkafka): its broker's TLS handshake fails verification
        (the TLS receiver stands in for the broker: no Kafka byte is exchanged before it). The
        records are handed back at once, not after message_timeout (30 s)."""
        self.assert_fails_at_once("""  - name: bus
    type: kafka
    brokers: [127.0.0.1:%d]
    topic: events
    transport: tls
    retry: { initial: 1s, max: 1m }
""" % self.peers.syslog_port, "bus")

    def test_webhook_trusting_the_ca_works(self):
        cfg = self.config(self.webhook(tls="    tls: { ca_file: %s }\n" % self.peers.cert))
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(self.peers.hook.ids, set(self.fake._events.keys()))

    def test_follow_retries_slowly_is_not_ready_and_counts(self):
        port = free_port()
        # retry.initial 50ms would mean many quick attempts, and max_attempts 2 dead letters:
        # neither applies to a certificate problem
        cfg = self.config(self.webhook(retry="{ initial: 50ms, max: 1s, max_attempts: 2 }"),
                          extra="server: { listen: 127.0.0.1:%d }\n"
                                "pipeline: { shutdown_timeout: 1s }\n" % port)
        d = Daemon(["-c", cfg], env=daemon_env(), logdir=self.dir, tag="follow")
        self.addCleanup(d.term)
        url = "http://127.0.0.1:%d" % port

        def metric(text, name):
            m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
            return float(m.group(1)) if m else None

        def errors():
            try:
                return metric(http_get(url, "/metrics")[2].decode(),
                              'sysdig_forwarder_sink_errors_total{sink="hook",class="tls_verify"}')
            except OSError:
                return None

        self.assertTrue(wait_for(lambda: (errors() or 0) >= 4, 30),
                        "sink_errors_total did not count: %s\n%s" % (errors(), d.stderr()[-2000:]))
        st, _, body = http_get(url, "/readyz")
        body = body.decode()
        self.assertEqual(st, 503, body)
        self.assertIn("sink:hook", body)
        text = http_get(url, "/metrics")[2].decode()
        self.assertEqual(metric(text, 'sysdig_forwarder_events_dead_lettered_total{sink="hook"}'),
                         0.0)
        self.assertEqual(d.stderr().count(CAUSE), 1, d.stderr()[-3000:])
        # the slow pace: retry.max (1s) jittered over its upper half, not the 50ms backoff
        gaps = [b - a for a, b in zip(self.peers.attempts, self.peers.attempts[1:])]
        self.assertGreaterEqual(min(gaps[1:]), 0.4, gaps)
        rc, hung = d.term()
        self.assertFalse(hung)
        self.assertNotIn(CANARY, d.stderr())


    def test_follow_one_log_per_episode(self):
        """The receiver's certificate becomes verifiable (signed by the CA the sink trusts),
        then not again: each episode is logged once, its end once."""
        ca_key, ca = os.path.join(self.dir, "ca.key"), os.path.join(self.dir, "ca.pem")
        key, csr = os.path.join(self.dir, "good.key"), os.path.join(self.dir, "good.csr")
        good, ext = os.path.join(self.dir, "good.pem"), os.path.join(self.dir, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        for cmd in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                     "/CN=test CA", "-keyout", ca_key, "-out", ca],
                    ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                     "-keyout", key, "-out", csr],
                    ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                     "-days", "1", "-extfile", ext, "-out", good]):
            subprocess.run(["openssl"] + cmd, check=True, capture_output=True)
        bad_ctx = self.peers.ctx
        good_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        good_ctx.load_cert_chain(good, key)
        # new events keep coming, so the sink keeps sending
        self.fake.generate(200, span_s=3600)
        cfg = self.config(self.webhook(tls="    tls: { ca_file: %s }\n" % ca,
                                       retry="{ initial: 50ms, max: 1s }"),
                          extra="pipeline: { shutdown_timeout: 1s }\n")
        d = Daemon(["-c", cfg], env=daemon_env(), logdir=self.dir, tag="episodes")
        self.addCleanup(d.term)
        back = "certificate is accepted again"
        self.assertTrue(wait_for(lambda: d.stderr().count(CAUSE) == 1, 30), d.stderr()[-3000:])
        time.sleep(2.5)  # several slow retries of the same episode
        self.assertEqual(d.stderr().count(CAUSE), 1, d.stderr()[-3000:])
        self.peers.ctx = good_ctx
        self.assertTrue(wait_for(lambda: back in d.stderr(), 30), d.stderr()[-3000:])
        self.assertTrue(wait_for(lambda: len(self.peers.hook.ids) > 0, 30))
        self.peers.ctx = bad_ctx
        self.fake.generate(50, span_s=10)
        self.assertTrue(wait_for(lambda: d.stderr().count(CAUSE) == 2, 30), d.stderr()[-3000:])
        time.sleep(2.5)
        self.assertEqual(d.stderr().count(CAUSE), 2, d.stderr()[-3000:])
        self.assertEqual(d.stderr().count(back), 1, d.stderr()[-3000:])


if __name__ == "__main__":
    main()
