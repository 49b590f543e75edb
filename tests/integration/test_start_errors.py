#!/usr/bin/python3
"""What start-up needs from the machine is checked before anything starts, and by
--check-config (issue 11): an output directory that does not exist, a path that is a
directory, a CA file that is missing or not PEM, a client certificate that does not load. Each
is a configuration error (exit 2, FILE:LINE:COL at the key), for the check and for the daemon
itself, never a runtime failure (exit 1) or a failure at the first connection. The same for a
checkpoint directory that does not exist (it was exit 3 after --check-config passed) and a
server.listen address that is not one of this machine's (it was exit 1 after start).
--check-config --syntax-only skips the machine (CI validating a config for another host)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import main, need_bin, run, scratch_dir  # noqa: E402


@need_bin
class StartErrorsTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-starterr-")
        self.notpem = os.path.join(self.dir, "not.pem")
        with open(self.notpem, "w") as f:
            f.write("this is not a certificate\n")

    def config(self, sink_yaml, extra="", checkpoint=None):
        path = os.path.join(self.dir, "config.yaml")
        checkpoint = checkpoint or os.path.join(self.dir, "checkpoint.json")
        with open(path, "w") as f:
            # an API nobody answers: the daemon would retry it for ever, so only a start-up
            # check ends the run
            f.write(f"""source:
  url: http://127.0.0.1:9
  token: start-errors-test-token
checkpoint: {{ path: {checkpoint} }}
sinks:
{sink_yaml}{extra}""")
        return path

    def assert_config_error(self, sink_yaml, line, col, text, extra="", checkpoint=None):
        cfg = self.config(sink_yaml, extra, checkpoint)
        where = "%s:%d:%d:" % (cfg, line, col)
        chk = run(["-c", cfg, "--check-config"], timeout=20)
        self.assertEqual(chk.returncode, 2, chk.stdout + chk.stderr)
        self.assertIn(where, chk.stderr)
        self.assertIn(text, chk.stderr)
        # the daemon itself: the same error, exit 2, before it starts anything
        r = run(["-c", cfg], timeout=20)
        self.assertFalse(r.timed_out, "the daemon started: " + r.stderr[-2000:])
        self.assertEqual(r.returncode, 2, r.stderr[-2000:])
        self.assertIn(where, r.stderr)
        self.assertIn(text, r.stderr)
        # the text alone is fine
        syn = run(["-c", cfg, "--check-config", "--syntax-only"], timeout=20)
        self.assertEqual(syn.returncode, 0, syn.stderr)

    def test_file_sink_directory_missing(self):
        self.assert_config_error(
            "  - name: out\n    type: file\n    path: %s/nope/events.ndjson\n" % self.dir,
            8, 11, "the directory %s/nope does not exist" % self.dir)

    def test_file_sink_path_is_a_directory(self):
        self.assert_config_error("  - name: out\n    type: file\n    path: %s\n" % self.dir,
                                 8, 11, "is a directory, not a file")

    def test_spool_parent_missing(self):
        self.assert_config_error(
            "  - name: out\n    type: file\n    path: %s/events.ndjson\n"
            "    spool: { path: %s/a/b/spool }\n" % (self.dir, self.dir),
            9, 20, "spool.path: the directory %s/a/b does not exist" % self.dir)

    def test_dead_letter_directory_missing(self):
        self.assert_config_error(
            "  - name: out\n    type: file\n    path: %s/events.ndjson\n" % self.dir, 9, 22,
            "dead_letter.path: the directory %s/gone does not exist" % self.dir,
            extra="dead_letter: { path: %s/gone/dl.ndjson }\n" % self.dir)

    FILE_SINK = "  - { name: out, type: file, path: %s/events.ndjson }\n"

    def test_checkpoint_directory_missing(self):
        """Found by the check (exit 2 at the key), not by the checkpoint's lock (exit 3)."""
        self.assert_config_error(
            self.FILE_SINK % self.dir, 4, 21,
            "checkpoint.path: the directory %s/state does not exist" % self.dir,
            checkpoint="%s/state/checkpoint.json" % self.dir)

    def test_checkpoint_path_is_a_directory(self):
        self.assert_config_error(self.FILE_SINK % self.dir, 4, 21,
                                 "checkpoint.path: %s is a directory, not a file" % self.dir,
                                 checkpoint=self.dir)

    def test_export_needs_no_checkpoint_directory(self):
        """--from/--to never touch the checkpoint: its directory is not required."""
        cfg = self.config(self.FILE_SINK % self.dir,
                          checkpoint="%s/state/checkpoint.json" % self.dir)
        r = run(["-c", cfg, "--from", "-1h", "--to", "now"], timeout=3)
        self.assertNotEqual(r.returncode, 2, r.stderr[-2000:])
        self.assertNotIn("checkpoint.path", r.stderr)

    def test_listen_address_not_of_this_machine(self):
        """192.0.2.7 (TEST-NET-1) is no address of this machine: the server could never
        listen there (exit 1 after start, a restart loop under systemd)."""
        self.assert_config_error(self.FILE_SINK % self.dir, 7, 19,
                                 'server.listen: "192.0.2.7:19464": cannot listen there',
                                 extra="server: { listen: 192.0.2.7:19464 }\n")

    def test_listen_port_in_use_is_not_a_config_error(self):
        """A port held by another process now (the daemon being replaced, say) may be free at
        start: --check-config passes."""
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        self.addCleanup(s.close)
        cfg = self.config(self.FILE_SINK % self.dir,
                          extra="server: { listen: 127.0.0.1:%d }\n" % s.getsockname()[1])
        chk = run(["-c", cfg, "--check-config"], timeout=20)
        self.assertEqual(chk.returncode, 0, chk.stderr)

    def test_webhook_ca_file_missing(self):
        self.assert_config_error(
            "  - name: hook\n    type: webhook\n    url: https://127.0.0.1:9/in\n"
            "    tls: { ca_file: %s/missing-ca.pem }\n" % self.dir,
            9, 21, "tls.ca_file: %s/missing-ca.pem" % self.dir)

    def test_syslog_ca_file_not_pem(self):
        self.assert_config_error(
            "  - name: siem\n    type: syslog\n    address: tls://127.0.0.1:9\n"
            "    tls: { ca_file: %s }\n" % self.notpem, 9, 21, "tls.ca_file: %s" % self.notpem)

    def test_kafka_client_certificate_not_pem(self):
        self.assert_config_error(
            "  - name: bus\n    type: kafka_rest\n    url: https://127.0.0.1:9\n"
            "    topic: events\n    tls: { cert_file: %s }\n" % self.notpem,
            10, 23, "tls.cert_file: %s" % self.notpem)

    def test_source_ca_file_not_pem(self):
        cfg = os.path.join(self.dir, "config.yaml")
        with open(cfg, "w") as f:
            f.write(f"""source:
  url: https://127.0.0.1:9
  token: start-errors-test-token
  tls: {{ ca_file: {self.notpem} }}
checkpoint: {{ path: {self.dir}/checkpoint.json }}
sinks:
  - {{ name: out, type: file, path: {self.dir}/events.ndjson }}
""")
        r = run(["-c", cfg, "--once"], timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr[-2000:])
        self.assertIn("%s:4:19: source.tls.ca_file: %s" % (cfg, self.notpem), r.stderr)

    def test_http_url_ignores_tls_files(self):
        """tls is only loaded for https:// (a plain URL never uses it)."""
        cfg = self.config("  - name: hook\n    type: webhook\n    url: http://127.0.0.1:9/in\n"
                          "    tls: { ca_file: %s }\n" % self.notpem)
        chk = run(["-c", cfg, "--check-config"], timeout=20)
        self.assertEqual(chk.returncode, 0, chk.stderr)


if __name__ == "__main__":
    main()
