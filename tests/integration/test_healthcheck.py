#!/usr/bin/python3
"""`sysdig-forwarder healthcheck`, the built-in probe the image's HEALTHCHECK runs (no curl).

Against a running daemon (address from -c FILE's server.listen, from a URL, from HOST:PORT),
the same daemon stopped, a server answering 503, one that accepts and never answers (the
timeout), proxy variables (ignored), wildcard listen addresses (probed on loopback), a server
that is off, a broken configuration and usage errors. Exit status: 0
healthy, 1 for everything else."""

import http.server
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (free_port, CANARY, SRC, Daemon, FakeSysdig, daemon_env, main, need_bin,  # noqa: E402
                     run, scratch_dir, wait_for)



class Stub:
    """An HTTP server on 127.0.0.1 answering every request with status; records them."""

    def __init__(self, status=200, port=0):
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802
                outer.requests.append(("GET", self.path))
                body = b"stub\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@need_bin
class Healthcheck(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-healthcheck-")
        self.tok = os.path.join(self.dir, "token")
        with open(self.tok, "w") as f:
            f.write(CANARY + "\n")
        os.chmod(self.tok, 0o600)

    def stub(self, status=200, port=0):
        s = Stub(status, port)
        self.addCleanup(s.stop)
        return s

    def hc(self, *args, env=None, timeout=20):
        t0 = time.monotonic()
        r = run(["healthcheck"] + list(args), env=env or daemon_env(), timeout=timeout)
        r.elapsed = time.monotonic() - t0
        self.assertFalse(r.timed_out, "healthcheck hung: %r" % (args,))
        return r

    def config(self, listen, url="http://127.0.0.1:1", name="config.yaml", extra=""):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(f"""source:
  url: {url}
  api: legacy
  token_file: {self.tok}
  poll_interval: 1s
checkpoint: {{ path: {self.dir}/checkpoint.json }}
sinks:
  - name: out
    type: file
    format: raw
    path: {self.dir}/events.ndjson
server:
  listen: "{listen}"
log: {{ level: info, format: text }}
{extra}""")
        return p

    def assertHealthy(self, r, url):  # noqa: N802
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("healthy: %s: HTTP 200" % url, r.stdout)

    def assertUnhealthy(self, r, *texts):  # noqa: N802
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for t in texts:
            self.assertIn(t, r.stderr)

    def test_running_daemon_then_stopped(self):
        fake = FakeSysdig(token=CANARY, seed=3)
        fake.generate(5, span_s=60)
        fake.start()
        self.addCleanup(fake.stop)
        port = free_port()
        cfg = self.config("127.0.0.1:%d" % port, url=fake.url)
        url = "http://127.0.0.1:%d/healthz" % port
        d = Daemon(["-c", cfg], logdir=self.dir)
        self.assertTrue(wait_for(lambda: not d.alive() or self.hc("-c", cfg).returncode == 0,
                                 15, 0.2), d.stderr()[-2000:])
        self.assertTrue(d.alive(), d.stderr()[-2000:])
        self.assertHealthy(self.hc("-c", cfg), url)
        self.assertHealthy(self.hc(url), url)
        self.assertHealthy(self.hc("http://127.0.0.1:%d" % port), url)  # /healthz added
        self.assertHealthy(self.hc("http://127.0.0.1:%d/" % port), url)
        self.assertHealthy(self.hc("127.0.0.1:%d" % port), url)
        self.assertHealthy(self.hc(":%d" % port), url)
        # the configuration's warnings are the daemon's to report, not the probe's
        os.chmod(self.tok, 0o644)
        r = self.hc("-c", cfg)
        self.assertHealthy(r, url)
        self.assertEqual(r.stderr, "")
        rc, hung = d.term(20)
        self.assertFalse(hung)
        self.assertEqual(rc, 0, d.stderr()[-2000:])
        r = self.hc("-c", cfg)
        self.assertUnhealthy(r, "unhealthy: %s" % url)
        self.assertEqual(r.stdout, "")

    def test_status_503_and_path(self):
        s = self.stub(503)
        r = self.hc(s.url)
        self.assertUnhealthy(r, "unhealthy: %s/healthz: HTTP 503" % s.url)
        self.assertEqual(s.requests, [("GET", "/healthz")])
        s2 = self.stub(500)
        self.assertUnhealthy(self.hc("-c", self.config("127.0.0.1:%d" % s2.port)), "HTTP 500")
        s3 = self.stub(200)
        self.assertHealthy(self.hc(s3.url + "/other"), s3.url + "/other")
        self.assertEqual(s3.requests, [("GET", "/other")])

    def test_server_down(self):
        port = free_port()
        r = self.hc("http://127.0.0.1:%d/healthz" % port)
        self.assertUnhealthy(r, "unhealthy: http://127.0.0.1:%d/healthz" % port)
        self.assertLess(r.elapsed, 5)

    def test_timeout(self):
        # accepts the connection (backlog), never answers
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        self.addCleanup(s.close)
        url = "http://127.0.0.1:%d/healthz" % s.getsockname()[1]
        r = self.hc("-t", "500ms", url)
        self.assertUnhealthy(r, "unhealthy: " + url, "timed out")
        self.assertLess(r.elapsed, 3, "the --timeout bounds the probe")
        r = self.hc("--timeout", "1s", url)
        self.assertUnhealthy(r)
        self.assertGreaterEqual(r.elapsed, 0.9)
        self.assertLess(r.elapsed, 4)

    def test_proxy_variables_ignored(self):
        s = self.stub(200)
        env = daemon_env(http_proxy="http://127.0.0.1:1", HTTP_PROXY="http://127.0.0.1:1",
                         ALL_PROXY="http://127.0.0.1:1", all_proxy="http://127.0.0.1:1")
        self.assertHealthy(self.hc(s.url, env=env), s.url + "/healthz")

    def test_wildcard_listen_is_probed_on_loopback(self):
        s = self.stub(200)
        url = "http://127.0.0.1:%d/healthz" % s.port
        self.assertHealthy(self.hc("-c", self.config("0.0.0.0:%d" % s.port)), url)
        self.assertHealthy(self.hc("0.0.0.0:%d" % s.port), url)
        self.assertHealthy(self.hc(":%d" % s.port), url)
        # IPv6 wildcards go to [::1] (checked where the host has IPv6 loopback)
        r = self.hc("-t", "1s", "-c", self.config("[::]:%d" % free_port()))
        self.assertUnhealthy(r, "http://[::1]:")

    def test_docker_config_follows_sf_listen(self):
        # the image's HEALTHCHECK: `healthcheck -c /etc/sysdig-forwarder/config.yaml` with the
        # container's environment; SF_LISTEN moves the port and the probe follows
        s = self.stub(200)
        env = daemon_env(SF_LISTEN="0.0.0.0:%d" % s.port, SYSDIG_TOKEN_FILE=self.tok,
                         SF_STATE_DIR=self.dir)
        r = self.hc("-c", os.path.join(SRC, "docker", "config.yaml"), env=env)
        self.assertHealthy(r, "http://127.0.0.1:%d/healthz" % s.port)

    def test_nothing_to_probe(self):
        r = self.hc("-c", self.config(""))
        self.assertUnhealthy(r, "server.listen is empty (the server is off)")
        bad = os.path.join(self.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write("source: { url: x }\nnope: 1\n")
        r = self.hc("-c", bad)
        self.assertUnhealthy(r, "bad.yaml:", "configuration errors")
        r = self.hc("-c", os.path.join(self.dir, "missing.yaml"))
        self.assertUnhealthy(r, "missing.yaml")

    def test_usage_errors_exit_1(self):
        # Docker reserves exit status 2 for HEALTHCHECK commands: every failure is 1
        for args, text in ((["--bogus"], "usage:"), (["a", "b"], "one URL at most"),
                           (["-t", "soon", "x"], "--timeout"), (["-t", "0", "x"], "--timeout"),
                           (["127.0.0.1"], "neither a URL nor HOST:PORT"),
                           (["127.0.0.1:0"], "neither a URL nor HOST:PORT")):
            r = self.hc(*args)
            self.assertUnhealthy(r, text)
        r = self.hc("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: sysdig-forwarder healthcheck", r.stdout)

    def test_default_url(self):
        r = self.hc("-t", "1s")
        self.assertIn(r.returncode, (0, 1))
        self.assertIn("http://127.0.0.1:9464/healthz", r.stdout + r.stderr)

    def test_main_usage_mentions_it(self):
        r = run(["--help"])
        self.assertIn("sysdig-forwarder healthcheck", r.stdout)


if __name__ == "__main__":
    main()
