#!/usr/bin/python3
"""Operations endpoint (/healthz, /readyz, /metrics), progress/health logs and systemd
notifications of a daemon tailing the fake API in follow mode.

/metrics is parsed with a real Prometheus text-format parser (python3-prometheus-client's
prometheus_client.parser); the systemd protocol is checked with a datagram socket standing in
for NOTIFY_SOCKET."""

import os
import re
import socket
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (free_port, CANARY, Daemon, FakeSysdig, daemon_env, http_control, http_get,  # noqa: E402
                     main, need_bin, scratch_dir, wait_for, write_config)

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - the Debian package is a test dependency
    text_string_to_metric_families = None

P = "sysdig_forwarder_"



def request(port, path, method="GET", timeout=5):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read().decode()
    except OSError:
        return None, {}, ""


def scrape(port):
    """Returns (families by name, samples {(name, frozenset(labels)): value}, raw text)."""
    st, hdrs, text = request(port, "/metrics")
    assert st == 200, "GET /metrics -> %s" % st
    fams, samples = {}, {}
    for fam in text_string_to_metric_families(text):
        fams[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return fams, samples, text, hdrs


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


@need_bin
@unittest.skipIf(text_string_to_metric_families is None,
                 "python3-prometheus-client is not installed (needed to parse /metrics)")
class ServerTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-server-")
        self.logdir = scratch_dir(self, "sf-server-logs-")
        self.fake = FakeSysdig(token=CANARY, seed=7)
        self.fake.generate(2000, span_s=1800)
        self.fake.start()
        self.port = free_port()
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            rc, hung = self.daemon.term(30)
            self.assertFalse(hung, "daemon hung on SIGTERM")
            err = self.daemon.stderr()
            self.assertEqual(rc, 0, "exit status %s after SIGTERM:\n%s" % (rc, err[-3000:]))
            self.assertNotIn("Sanitizer", err)
            self.assertNotIn(CANARY, err)
        self.fake.stop()

    def start(self, extra_source="  auth_retry: 1s\n", sinks=None, env=None, **kw):
        extra = "server: { listen: 127.0.0.1:%d, ready_max_poll_age: 30s }\n" % self.port
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=100, poll_interval="1s",
                                    extra_source=extra_source, extra=extra, **kw)
        if sinks:
            with open(cfg) as f:
                text = f.read()
            text = text.replace("sinks:\n", "sinks:\n" + sinks, 1)
            with open(cfg, "w") as f:
                f.write(text)
        self.daemon = Daemon(["-c", cfg], env=env or daemon_env(), logdir=self.logdir)
        ok = wait_for(lambda: request(self.port, "/healthz")[0] == 200 or
                      not self.daemon.alive(), 10)
        self.assertTrue(ok and self.daemon.alive(),
                        "no /healthz within 10 s:\n" + self.daemon.stderr()[-2000:])
        return cfg, out, cp

    def wait_ready(self, want, timeout=20):
        last = [None, ""]

        def pred():
            st, _, body = request(self.port, "/readyz")
            last[:] = [st, body]
            return st == want
        ok = wait_for(pred, timeout, 0.3)
        self.assertTrue(ok, "/readyz never answered %d (last %s):\n%s\n%s" % (
            want, last[0], last[1], self.daemon.stderr()[-2000:]))
        return last[1]

    # ------------------------------------------------------------------ tests
    def test_health_ready_metrics(self):
        self.start()
        st, hdrs, body = request(self.port, "/healthz")
        self.assertEqual((st, body), (200, "ok\n"))
        body = self.wait_ready(200)
        self.assertIn("[+]poll ok (last successful poll", body)
        self.assertIn("[+]checkpoint ok", body)
        self.assertIn("[+]sink:archive ok", body)

        # everything delivered, then the counters must show it
        def settled():
            s = scrape(self.port)[1]
            return ((val(s, P + "events_delivered_total", sink="archive") or 0) >= 2000 and
                    val(s, P + "cursor_lag_seconds") is not None)
        wait_for(settled, 30)
        fams, s, text, hdrs = scrape(self.port)
        self.assertTrue(hdrs.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
                        hdrs)
        types = {
            P + "events_polled": "counter", P + "events_delivered": "counter",
            P + "events_retried": "counter", P + "events_dead_lettered": "counter",
            P + "pages_fetched": "counter", P + "api_requests": "counter",
            P + "api_errors": "counter", P + "api_rate_limited": "counter",
            P + "poll_duration_seconds": "histogram", P + "cursor_lag_seconds": "gauge",
            P + "queue_events": "gauge", P + "checkpoint_writes": "counter",
            P + "checkpoint_write_errors": "counter", P + "sink_up": "gauge",
            P + "sink_unsettled_events": "gauge", P + "sink_topic_missing": "gauge",
            P + "build_info": "gauge", "process_resident_memory_bytes": "gauge",
            "process_open_fds": "gauge",
        }
        for name, typ in types.items():
            self.assertIn(name, fams, "family %s missing" % name)
            self.assertEqual(fams[name].type, typ, name)
            self.assertTrue(fams[name].documentation, "no HELP for " + name)
        # naming conventions: counters end in _total in the exposition, units are suffixed
        for line in text.splitlines():
            if line.startswith("# TYPE ") and line.endswith(" counter"):
                self.assertTrue(line.split()[2].endswith("_total"), line)
        self.assertGreaterEqual(val(s, P + "events_polled_total"), 2000)
        self.assertGreaterEqual(val(s, P + "events_delivered_total", sink="archive"), 2000)
        self.assertEqual(val(s, P + "events_dead_lettered_total", sink="archive"), 0)
        self.assertGreaterEqual(val(s, P + "pages_fetched_total"), 20)
        self.assertGreaterEqual(val(s, P + "api_requests_total"), val(s, P + "pages_fetched_total"))
        self.assertGreaterEqual(val(s, P + "checkpoint_writes_total"), 1)
        self.assertEqual(val(s, P + "checkpoint_write_errors_total"), 0)
        self.assertEqual(val(s, P + "sink_up", sink="archive"), 1)
        self.assertEqual(val(s, P + "ready"), 1)
        self.assertEqual(val(s, P + "build_info", version=val_version(s)), 1)
        for cls in ("transport", "malformed", "4xx", "5xx", "429", "auth"):
            self.assertIsNotNone(val(s, P + "api_errors_total", **{"class": cls}), cls)
        lag = val(s, P + "cursor_lag_seconds")
        self.assertIsNotNone(lag, "no cursor lag after commits")
        self.assertTrue(0 <= lag < 120, lag)
        self.assertGreater(val(s, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(val(s, "process_open_fds"), 2)
        # histogram: monotonic buckets ending in +Inf == count, sum > 0
        h = fams[P + "poll_duration_seconds"]
        buckets = [(x.labels["le"], x.value) for x in h.samples if x.name.endswith("_bucket")]
        self.assertEqual(buckets[-1][0], "+Inf")
        self.assertEqual(len(buckets), 13)
        vals = [v for _, v in buckets]
        self.assertEqual(vals, sorted(vals), buckets)
        self.assertEqual(vals[-1], val(s, P + "poll_duration_seconds_count"))
        self.assertGreater(val(s, P + "poll_duration_seconds_sum"), 0)
        self.assertGreaterEqual(vals[-1], val(s, P + "pages_fetched_total"))

        # counters move with new events
        before = val(s, P + "events_polled_total")
        self.fake.add_events(25)
        wait_for(lambda: val(scrape(self.port)[1], P + "events_polled_total") >= before + 25, 15)
        self.assertGreaterEqual(val(scrape(self.port)[1], P + "events_polled_total"), before + 25)

        # other paths and methods
        self.assertEqual(request(self.port, "/nope")[0], 404)
        self.assertEqual(request(self.port, "/")[0], 404)
        st, hdrs, _ = request(self.port, "/metrics", method="POST")
        self.assertEqual(st, 405)
        self.assertIn("GET", hdrs.get("Allow", ""))
        self.assertEqual(request(self.port, "/healthz", method="DELETE")[0], 405)
        self.assertEqual(request(self.port, "/healthz", method="HEAD")[0], 200)

        # the token never shows
        for path in ("/metrics", "/readyz", "/healthz"):
            self.assertNotIn(CANARY, request(self.port, path)[2], path)

    def test_not_ready_on_401_then_recovers(self):
        self.start()
        self.wait_ready(200)
        wait_for(lambda: (val(scrape(self.port)[1], P + "events_polled_total") or 0) >= 2000, 30)
        http_control(self.fake.url, op="set_token", token="another-token-xyz")
        body = self.wait_ready(503, 20)
        self.assertIn("[-]poll failed", body)
        self.assertIn("401", body)
        self.assertIn("not ready", body)
        self.assertNotIn(CANARY, body)
        # /healthz never depends on the API
        self.assertEqual(request(self.port, "/healthz")[0], 200)
        s = scrape(self.port)[1]
        self.assertGreaterEqual(val(s, P + "api_errors_total", **{"class": "auth"}), 1)
        self.assertEqual(val(s, P + "ready"), 0)
        self.assertNotIn(CANARY, scrape(self.port)[2])
        http_control(self.fake.url, op="set_token", token=CANARY)
        self.wait_ready(200, 20)

    def test_not_ready_when_a_sink_fails(self):
        broken = ("  - name: broken\n    type: file\n    format: raw\n    path: /dev/full\n"
                  "    retry: { initial: 100ms, max: 500ms }\n")
        self.start(sinks=broken)
        body = self.wait_ready(503, 20)
        self.assertIn("[-]sink:broken failed", body)
        self.assertIn("[+]sink:archive ok", body)
        s = scrape(self.port)[1]
        self.assertEqual(val(s, P + "sink_up", sink="broken"), 0)
        self.assertEqual(val(s, P + "sink_up", sink="archive"), 1)
        self.assertGreater(val(s, P + "events_retried_total", sink="broken"), 0)
        self.assertIsNotNone(val(s, P + "sink_info", sink="broken", type="file", format="raw"))
        self.assertEqual(request(self.port, "/healthz")[0], 200)

    def test_not_ready_when_checkpoint_dir_unwritable(self):
        cfg, out, cp = self.start()
        self.wait_ready(200)
        # move the checkpoint's directory away: writes fail, readiness must say so
        with open(cfg) as f:
            self.assertIn(cp, f.read())
        os.rename(self.dir, self.dir + ".moved")
        try:
            self.fake.add_events(10)
            body = self.wait_ready(503, 20)
            self.assertIn("[-]checkpoint failed", body)
        finally:
            os.rename(self.dir + ".moved", self.dir)
        self.wait_ready(200, 20)

    def test_listen_failure_is_fatal(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.port = busy.getsockname()[1]
        try:
            extra = "server: { listen: 127.0.0.1:%d }\n" % self.port
            cfg, _, _ = write_config(self.dir, self.fake.url, extra=extra)
            d = Daemon(["-c", cfg], logdir=self.dir, tag="busy")
            d.p.wait(15)
            self.assertEqual(d.p.returncode, 1, d.stderr()[-2000:])
            self.assertIn("cannot listen on 127.0.0.1:%d" % self.port, d.stderr())
            d._close()
        finally:
            busy.close()


def built_with_systemd():
    try:
        with open(os.path.join(os.environ.get("SF_BUILD", "."), "CMakeCache.txt")) as f:
            return "SYSTEMD_FOUND:INTERNAL=1" in f.read()
    except OSError:
        return True  # unknown: expect notifications


def val_version(samples):
    for (name, labels) in samples:
        if name == P + "build_info":
            return dict(labels)["version"]
    return None


@need_bin
class LogsTest(unittest.TestCase):
    """Catch-up progress lines and the periodic health summary."""

    def test_progress_and_health_lines(self):
        d = scratch_dir(self, "sf-progress-")
        fake = FakeSysdig(token=CANARY, seed=3)
        fake.generate(3000, span_s=3000)
        fake.start()
        # slow API: ~0.25 s per page of 20 -> the catch-up lasts well over 10 s
        fake.inject("delay", seconds=0.25)
        cfg, out, cp = write_config(d, fake.url, page_size=20, poll_interval="1s")
        env = daemon_env(SF_HEALTH_LOG_INTERVAL="3s")
        dm = Daemon(["-c", cfg], env=env, logdir=d)
        try:
            ok = wait_for(lambda: "[progress]" in dm.stderr() or not dm.alive(), 25)
            err = dm.stderr()
            self.assertTrue(ok and dm.alive(), err[-2000:])
            line = [x for x in err.splitlines() if "[progress]" in x][0]
            m = re.search(r"catching up: ([0-9.]+)% done, ([0-9]+) events/s, ETA (\S+),", line)
            self.assertTrue(m, line)
            self.assertTrue(0 < float(m.group(1)) < 100, line)
            self.assertGreater(int(m.group(2)), 0, line)
            self.assertIn(" info ", line)
            health = [x for x in err.splitlines() if "[health]" in x]
            self.assertTrue(health, err[-2000:])
            self.assertRegex(health[0], r"\[health\] (ready|NOT ready): .*sink.*events polled")
            self.assertNotIn(CANARY, err)
        finally:
            fake.clear_faults()
            rc, hung = dm.term(30)
            fake.stop()
        self.assertEqual((rc, hung), (0, False), dm.stderr()[-2000:])

    def run_with_health_interval(self, value, seconds):
        d = scratch_dir(self, "sf-health-")
        fake = FakeSysdig(token=CANARY, seed=4)
        fake.generate(10, span_s=600)
        fake.start()
        cfg, _, _ = write_config(d, fake.url)
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("log: { level: info, format: text }",
                                 "log: { level: info, format: text, health_interval: %s }"
                                 % value))
        env = daemon_env()
        env.pop("SF_HEALTH_LOG_INTERVAL", None)
        dm = Daemon(["-c", cfg], env=env, logdir=d)
        try:
            wait_for(lambda: dm.stderr().count("[health]") >= 2 or not dm.alive(), seconds)
            err = dm.stderr()
            self.assertTrue(dm.alive(), err[-2000:])
        finally:
            rc, hung = dm.term(30)
            fake.stop()
        self.assertEqual((rc, hung), (0, False), dm.stderr()[-2000:])
        return err

    def test_health_interval_from_config(self):
        err = self.run_with_health_interval("1s", 15)
        self.assertGreaterEqual(err.count("[health]"), 2, err[-2000:])
        err = self.run_with_health_interval("0s", 3)
        self.assertNotIn("[health]", err)


@need_bin
class NotifyTest(unittest.TestCase):
    """sd_notify protocol: READY=1, STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1."""

    def test_notify_messages(self):
        d = scratch_dir(self, "sf-notify-")
        sock_path = os.path.join(d, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(0.5)
        fake = FakeSysdig(token=CANARY, seed=5)
        fake.generate(100, span_s=600)
        fake.start()
        cfg, out, cp = write_config(d, fake.url, poll_interval="1s")
        env = daemon_env(NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="1000000")
        env.pop("WATCHDOG_PID", None)
        dm = Daemon(["-c", cfg], env=env, logdir=d)
        msgs = []

        def drain(seconds):
            end = time.time() + seconds
            while time.time() < end:
                try:
                    msgs.append(sock.recv(4096).decode())
                except socket.timeout:
                    pass
        try:
            drain(4)
            joined = "\n".join(msgs)
            if not msgs and not built_with_systemd():
                self.skipTest("built without libsystemd: notifications are no-ops")
            self.assertIn("READY=1", joined)
            self.assertIn("STATUS=", joined)
            # 1 s watchdog -> a ping every 0.5 s: at least 4 in 4 s
            self.assertGreaterEqual(sum(m.count("WATCHDOG=1") for m in msgs), 4, msgs)
            status = [line for m in msgs for line in m.splitlines() if line.startswith("STATUS=")]
            self.assertTrue(any(re.search(r"(forwarding|catching up|starting).*sink", x)
                                for x in status), status)
            dm.p.send_signal(15)
            drain(2)
            self.assertIn("STOPPING=1", "\n".join(msgs))
        finally:
            rc, hung = dm.term(30)
            fake.stop()
            sock.close()
        self.assertEqual((rc, hung), (0, False), dm.stderr()[-2000:])


if __name__ == "__main__":
    main()
