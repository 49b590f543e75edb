#!/usr/bin/python3
"""systemd/logrotate.conf, run for real by logrotate against a running daemon.

The daemon writes a file sink and its dead-letter file (a webhook that answers 400) into a
scratch log directory; the shipped snippet, with only its /var/log/sysdig-forwarder/ path
pointed at that directory, is run by `logrotate -f`, with a stand-in `systemctl` first in PATH
that answers `is-active` and turns `reload` into the unit's ExecReload (kill -HUP of the
daemon). Then: the files were moved (.1), the daemon reopened both on SIGHUP and writes the
new events to new files (mode 0600) while the moved files keep exactly the old ones, and a
second rotation compresses the first (delaycompress). Also `logrotate -d` must read the
snippet without an error.

Skips (clear message) only when logrotate is not installed (Debian package logrotate)."""

import gzip
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, SRC, Daemon, FakeSysdig, main, need_bin,  # noqa: E402
                     read_output, scratch_dir, wait_for)

SNIPPET = os.path.join(SRC, "systemd", "logrotate.conf")
LOGDIR = "/var/log/sysdig-forwarder/"
LOGROTATE = shutil.which("logrotate") or ("/usr/sbin/logrotate"
                                          if os.path.exists("/usr/sbin/logrotate") else None)

SYSTEMCTL_STUB = """#!/bin/sh
# stand-in for systemctl in the logrotate test: logs its arguments
echo "$*" >> "$SF_TEST_SYSTEMCTL_LOG"
case "$*" in
  "-q is-active sysdig-forwarder.service") exit 0 ;;
  "reload sysdig-forwarder.service") exec kill -HUP "$SF_TEST_DAEMON_PID" ;;
esac
echo "systemctl stub: unexpected arguments: $*" >&2
exit 1
"""


class Rejecter:
    """A webhook receiver that answers every POST with 400: the events are dead-lettered."""

    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = b"rejected by the test"
                self.send_response(400)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def dead_letter_ids(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line)["id"] for line in f if line.strip()]


@unittest.skipUnless(LOGROTATE, "logrotate is not installed (Debian package logrotate)")
class SnippetSyntax(unittest.TestCase):
    def test_logrotate_reads_the_snippet(self):
        d = scratch_dir(self, "sf-logrotate-")
        p = subprocess.run([LOGROTATE, "-d", "-s", os.path.join(d, "state"), SNIPPET],
                           capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("error", out.lower(), out)
        self.assertIn("rotating pattern: %s*.ndjson" % LOGDIR, out)


@need_bin
@unittest.skipUnless(LOGROTATE, "logrotate is not installed (Debian package logrotate)")
class RotateRunningDaemon(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-logrotate-")
        self.log = os.path.join(self.dir, "log")
        os.mkdir(self.log, 0o750)
        self.fake = FakeSysdig(token=CANARY, seed=11)
        self.fake.generate(20, span_s=600)
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.rejecter = Rejecter()
        self.addCleanup(self.rejecter.stop)
        self.events = os.path.join(self.log, "events.ndjson")
        self.dead = os.path.join(self.log, "dead-letters.ndjson")
        self.cfg = os.path.join(self.dir, "config.yaml")
        with open(self.cfg, "w") as f:
            f.write(f"""source:
  url: {self.fake.url}
  api: legacy
  token: ${{SYSDIG_SECURE_API_TOKEN}}
  poll_interval: 1s
  lookback: 1h
  retry: {{ initial: 100ms, max: 1s }}
checkpoint: {{ path: {self.dir}/checkpoint.json }}
dead_letter: {{ path: {self.dead} }}
sinks:
  - name: archive
    type: file
    format: raw
    path: {self.events}
  - name: reject
    type: webhook
    format: raw
    url: {self.rejecter.url}/hook
    retry: {{ initial: 100ms, max: 500ms, max_attempts: 1 }}
log: {{ level: info, format: text }}
""")
        # the snippet, pointed at the scratch log directory (nothing else changed)
        with open(SNIPPET) as f:
            text = f.read()
        self.assertIn(LOGDIR, text)
        self.conf = os.path.join(self.dir, "logrotate.conf")
        with open(self.conf, "w") as f:
            f.write(text.replace(LOGDIR, self.log + "/"))
        os.chmod(self.conf, 0o644)  # logrotate refuses a config writable by others
        bindir = os.path.join(self.dir, "bin")
        os.mkdir(bindir)
        stub = os.path.join(bindir, "systemctl")
        with open(stub, "w") as f:
            f.write(SYSTEMCTL_STUB)
        os.chmod(stub, 0o755)
        self.bindir = bindir
        self.systemctl_log = os.path.join(self.dir, "systemctl.log")

    def logrotate(self, daemon):
        env = dict(os.environ, PATH=self.bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
                   SF_TEST_SYSTEMCTL_LOG=self.systemctl_log,
                   SF_TEST_DAEMON_PID=str(daemon.p.pid))
        p = subprocess.run([LOGROTATE, "-v", "-f", "-s", os.path.join(self.dir, "state"),
                            self.conf], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout + p.stderr

    def wait_delivered(self, daemon, ids, what):
        """Waits until ids are in the file sink's output and in the dead letters (in the
        current files or in the moved ones: a file a bug kept writing to fails at once), then
        checks they are in the current files."""
        ids = set(ids)

        def everywhere(path, reader):
            got = set()
            for p in (path, path + ".1"):
                got |= set(reader(p))
            return got

        def done():
            if not daemon.alive():
                return True
            return (ids <= everywhere(self.events, lambda p: read_output(p)[0])
                    and ids <= everywhere(self.dead, dead_letter_ids))
        wait_for(done, 60, 0.3)
        self.assertTrue(daemon.alive(), "daemon died:\n" + daemon.stderr()[-3000:])
        self.assertLessEqual(ids, set(read_output(self.events)[0]),
                             "%s: not in %s\n%s" % (what, self.events, daemon.stderr()[-3000:]))
        self.assertLessEqual(ids, set(dead_letter_ids(self.dead)),
                             "%s: not dead-lettered in %s\n%s" % (what, self.dead,
                                                                   daemon.stderr()[-3000:]))

    def test_rotate_and_sighup(self):
        first = self.fake.all_ids()
        d = Daemon(["-c", self.cfg], logdir=self.dir)
        self.wait_delivered(d, first, "before the rotation")

        out = self.logrotate(d)
        with open(self.systemctl_log) as f:
            calls = f.read().split("\n")
        self.assertEqual([c for c in calls if c],
                         ["-q is-active sysdig-forwarder.service",
                          "reload sysdig-forwarder.service"],
                         "postrotate (sharedscripts: one reload for both files)\n" + out)
        self.assertTrue(wait_for(lambda: "SIGHUP: reopening output files" in d.stderr(), 10),
                        "the daemon did not get SIGHUP\n" + out + d.stderr()[-2000:])
        for p in (self.events, self.dead):
            self.assertTrue(os.path.exists(p + ".1"), "%s was not rotated\n%s" % (p, out))
            self.assertFalse(os.path.exists(p + ".1.gz"), "delaycompress: .1 stays plain")

        second = self.fake.add_events(15)
        self.wait_delivered(d, second, "after the rotation")
        # the moved files hold exactly the events from before; the new ones, only the new
        self.assertEqual(sorted(read_output(self.events + ".1")[0]), sorted(first))
        self.assertEqual(sorted(dead_letter_ids(self.dead + ".1")), sorted(first))
        self.assertEqual(sorted(read_output(self.events)[0]), sorted(second))
        self.assertEqual(sorted(dead_letter_ids(self.dead)), sorted(second),
                         "dead letters after SIGHUP must go to the new file")
        for p in (self.events, self.dead):
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, p)

        # a second rotation compresses the first one (delaycompress)
        os.remove(self.systemctl_log)
        self.logrotate(d)
        with gzip.open(self.events + ".2.gz", "rt") as f:
            ids = [json.loads(line)["id"] for line in f if line.strip()]
        self.assertEqual(sorted(ids), sorted(first))
        self.assertEqual(sorted(read_output(self.events + ".1")[0]), sorted(second))
        third = self.fake.add_events(5)
        self.wait_delivered(d, third, "after the second rotation")
        rc, hung = d.term(20)
        self.assertFalse(hung)
        self.assertEqual(rc, 0, d.stderr()[-2000:])


if __name__ == "__main__":
    main()
