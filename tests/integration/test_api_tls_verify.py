#!/usr/bin/python3
"""An API whose certificate cannot be verified is a configuration problem, not an outage:
--once fails at once (exit 1) naming the cause and the fix, instead of retrying with backoff
for minutes like a network outage."""

import http.server
import os
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import main, need_bin, run, scratch_dir, write_config  # noqa: E402


class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        body = b'{"data":[],"page":{}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@need_bin
class ApiTlsVerifyTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-tlsapi-")
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        # a self-signed certificate the daemon does not trust (valid for 127.0.0.1)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True,
                       capture_output=True)
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.srv.daemon_threads = True
        self.url = "https://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)

    def test_once_fails_at_once_with_the_fix(self):
        cfg, out, cp = write_config(self.dir, self.url, retry_initial="1s", retry_max="1m")
        t0 = time.time()
        r = run(["-c", cfg, "--once"], timeout=20)
        took = time.time() - t0
        self.assertFalse(r.timed_out)
        self.assertEqual(r.returncode, 1, r.stderr[-2000:])
        self.assertLess(took, 10, "retried like an outage (%.1fs)" % took)
        self.assertIn("certificate cannot be verified", r.stderr)
        self.assertIn("source.tls.ca_file", r.stderr)
        self.assertNotIn("retry 2 in", r.stderr)

    def test_trusting_the_ca_works(self):
        cfg, out, cp = write_config(self.dir, self.url,
                                    extra_source="  tls: { ca_file: %s }\n" % self.cert)
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])


if __name__ == "__main__":
    main()
