#!/usr/bin/python3
"""The chaos suite of issue #5: one scripted, seeded scenario.

The fake Sysdig API serves events with 429s, 5xx, malformed/truncated pages and late events
(a live producer keeps adding events). Four sinks in one daemon: a file sink that never fails,
and three with a disk spool: a real rsyslogd over TCP (octet-counting), a webhook receiver
(NDJSON) and the Kafka REST double (Confluent v2). Each of the three is taken down and brought
back at random (rsyslog: process stopped and restarted; webhook / Kafka: 503 mode or server
stopped) while the daemon is SIGKILLed at random moments (>= 20 times) and restarted. Then
every fault stops, the daemon catches up and is stopped with SIGTERM (exit 0). Per sink: every
id the API served must be present (lost = 0); duplicates are counted and reported per kill; no
dead letters may have been written.

Duplicates per kill (issue 14): the checkpoint records what each sink confirmed, so a crash
re-sends to a sink only what that sink itself had in flight, whatever the others do (syslog
holds its pages for its 10 s resend window, a sink that is down holds its own). The file sink
confirms a page within milliseconds: on average at most one page (page_size) of duplicates per
kill, asserted.

Environment: SF_BIN (daemon), SF_SRC, SF_SANITIZE=1 (slower build: scaled down),
SF_CHAOS_SEED (replay a seed), SF_CHAOS_DURATION (seconds of chaos, default 75 / 50 ASan),
SF_KEEP_TMP=1 (keep the work directory, passed or failed, and print where).
"""

import http.server
import json
import os
import random
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "integration"))
sys.path.insert(0, os.path.join(TESTS, "fakekafka"))

from helpers import (CANARY, Daemon, FakeSysdig, daemon_env, main, need_bin,  # noqa: E402
                     scratch_dir, wait_for)
from kafka_rest import FakeKafkaRest  # noqa: E402
from test_sink_syslog import RSYSLOGD, Rsyslog, free_port  # noqa: E402

SANITIZE = os.environ.get("SF_SANITIZE") == "1"
MIN_KILLS = 20
PAGE_SIZE = 50


# ------------------------------------------------------------------ incremental readers
class LineTail:
    """Reads the complete new lines of a growing file (cheap to poll)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def new_lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return [ln.decode("utf-8", "replace") for ln in data[:end].split(b"\n") if ln]


class Received:
    """ids in arrival order plus a set, for one sink."""

    def __init__(self):
        self.ids = []
        self.set = set()
        self.unparsable = 0
        self.lock = threading.Lock()

    def add(self, eid):
        with self.lock:
            self.ids.append(eid)
            self.set.add(eid)

    def dups(self):
        with self.lock:
            return len(self.ids) - len(self.set)


# ------------------------------------------------------------------ sinks
class QuietServer(http.server.ThreadingHTTPServer):
    """Clients killed mid-request (SIGKILL) are expected: no tracebacks for them."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def serve(port, handler):
    srv = QuietServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    return srv


class FileSink:
    """The file sink: never down; confirms a page once it is written and fsync'd."""
    name = "file"

    def __init__(self, d):
        self.path = os.path.join(d, "file-sink.ndjson")
        self.tail = LineTail(self.path)
        self.got = Received()

    def yaml(self):
        return "    type: file\n    path: %s\n" % self.path

    def start(self):
        pass

    def restore(self):
        pass

    def poll(self):
        for ln in self.tail.new_lines():
            try:
                self.got.add(json.loads(ln)["id"])
            except (ValueError, KeyError, TypeError):
                self.got.unparsable += 1
        return self.got.set

    def close(self):
        pass


class SyslogSink:
    name = "syslog"

    def __init__(self, d):
        self.d = os.path.join(d, "rsyslog")
        os.makedirs(self.d)
        self.port = free_port()
        self.rs = Rsyslog(self.d, "tcp", self.port)
        # no in-memory main queue: what imtcp read is in the file before rsyslog exits
        with open(self.rs.conf, "a") as f:
            f.write('main_queue(queue.type="Direct")\n')
        self.tail = LineTail(self.rs.raw)
        self.got = Received()
        self.up = False

    def yaml(self):
        return ("    type: syslog\n    address: tcp://127.0.0.1:%d\n    framing: octet-counting\n"
                "    hostname: sf-chaos\n    connect_timeout: 2s\n    write_timeout: 5s\n"
                % self.port)

    def start(self):
        self.rs.start()
        self.up = True

    def down(self, rng):
        self.rs.stop()
        self.up = False
        return "stop"

    def restore(self):
        if not self.up:
            self.rs.start()
            self.up = True

    def poll(self):
        for ln in self.tail.new_lines():
            if "sf-probe" in ln:
                continue
            i = ln.find("{")
            try:
                self.got.add(json.loads(ln[i:])["id"])
            except (ValueError, KeyError, TypeError):
                self.got.unparsable += 1
        return self.got.set

    def close(self):
        self.rs.stop()
        self.rs.log.close()


class WebhookSink:
    """NDJSON receiver: mode 'up' (200, ids recorded), '503', or the server stopped."""
    name = "webhook"

    def __init__(self, d):
        self.got = Received()
        self.mode = "up"
        self.port = free_port()
        self.srv = None
        self.requests = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                want = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(want)
                if len(raw) < want:
                    # the daemon was SIGKILLed mid-request: an incomplete HTTP request is no
                    # request (a real receiver discards it too); nothing was acknowledged
                    self.close_connection = True
                    return
                outer.requests += 1
                if outer.mode != "up":
                    body = b'{"error":"unavailable"}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                for ln in raw.split(b"\n"):
                    if not ln.strip():
                        continue
                    try:
                        outer.got.add(json.loads(ln)["id"])
                    except (ValueError, KeyError, TypeError):
                        outer.got.unparsable += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.handler = H

    def yaml(self):
        return ("    type: webhook\n    url: http://127.0.0.1:%d/ingest\n    body: ndjson\n"
                "    timeout: 5s\n    connect_timeout: 2s\n" % self.port)

    def start(self):
        self.srv = serve(self.port, self.handler)

    def down(self, rng):
        if rng.random() < 0.5:
            self.mode = "503"
            return "503"
        self._stop_server()
        return "stop"

    def _stop_server(self):
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    def restore(self):
        self.mode = "up"
        if self.srv is None:
            self.start()

    def poll(self):
        return self.got.set

    def close(self):
        self._stop_server()


class KafkaSink:
    """The Kafka REST double (Confluent v2): 503 on every request, or its server stopped."""
    name = "kafka"

    def __init__(self, d, seed):
        self.kr = FakeKafkaRest("confluent", seed=seed)
        self.port = self.kr.server.srv.server_address[1]
        self.handler = self.kr.server.srv.RequestHandlerClass
        self.got = Received()
        self.seen = 0
        self.running = True

    def yaml(self):
        return ("    type: kafka_rest\n    url: %s\n    topic: events\n    flavor: confluent\n"
                "    timeout: 5s\n    connect_timeout: 2s\n" % self.kr.url)

    def start(self):
        self.kr.stop()  # same handler and store, on a server that is quiet about resets
        self.kr.server.srv = serve(self.port, self.handler)

    def down(self, rng):
        if rng.random() < 0.5:
            with self.kr.lock:
                self.kr.request_errors = [[503, 50301, 10 ** 9, False]]
            return "503"
        self.kr.stop()
        self.running = False
        return "stop"

    def restore(self):
        with self.kr.lock:
            self.kr.request_errors = []
        if not self.running:
            self.kr.server.srv = serve(self.port, self.handler)
            self.running = True

    def poll(self):
        with self.kr.lock:
            recs = self.kr.topics["events"][self.seen:]
            self.seen += len(recs)
        for rec in recs:
            v = rec["value"]
            try:
                v = json.loads(v) if isinstance(v, str) else v
                self.got.add(v["id"])
            except (ValueError, KeyError, TypeError):
                self.got.unparsable += 1
        return self.got.set

    def close(self):
        if self.running:
            self.kr.stop()
            self.running = False


# ------------------------------------------------------------------ the scenario
@need_bin
@unittest.skipUnless(os.path.exists(RSYSLOGD), "rsyslogd is not installed")
class ChaosTest(unittest.TestCase):
    # Formerly KNOWN, both fixed, so any loss fails:
    # - an rsyslogd stopped with SIGTERM while the syslog sink is writing lost the events
    #   written into the dying connection (fixed by the sink's resend window);
    # - the same followed by a daemon SIGKILL before the window was re-sent lost them too
    #   (fixed by deferred settlement: the checkpoint waits until messages leave the window).
    # See docs/sinks-syslog.md "Delivery and durability". The price is duplicates: with a
    # SIGKILL every few seconds and a 10s resend window, every kill re-sends to syslog what
    # was written in the last 10s (the syslog duplicate count is several times the events).

    def test_chaos(self):
        seed = int(os.environ.get("SF_CHAOS_SEED") or (int(time.time() * 1000) % 1000000))
        print("\nchaos seed: %d (replay with SF_CHAOS_SEED=%d)" % (seed, seed), flush=True)
        rng = random.Random(seed)
        chaos_s = float(os.environ.get("SF_CHAOS_DURATION") or (50 if SANITIZE else 75))
        rate = 10.0 if SANITIZE else 20.0
        t0 = time.time()

        self.dir = d = scratch_dir(self, "sf-chaos-")
        fake = FakeSysdig(token=CANARY, seed=seed)
        fake.generate(150 if SANITIZE else 300, span_s=1800)
        fake.start()
        # API faults by probability (seeded), checked in this order on each request
        fake.inject("429", probability=0.05, retry_after=1)
        fake.inject("5xx", probability=0.04, status=503)
        fake.inject("500", probability=0.03)
        fake.inject("malformed", probability=0.03)
        fake.inject("truncated", probability=0.02)
        fake.inject("html", probability=0.02)
        fake.start_producer(rate=rate, late_fraction=0.25, max_late_s=20)

        sinks = [FileSink(d), SyslogSink(d), WebhookSink(d), KafkaSink(d, seed)]
        faulty = sinks[1:]  # taken down and brought back
        cp = os.path.join(d, "checkpoint.json")
        dead = os.path.join(d, "dead-letters.ndjson")
        cfg = os.path.join(d, "config.yaml")
        text = """source:
  url: %s
  api: legacy
  token: ${SYSDIG_SECURE_API_TOKEN}
  page_size: %d
  poll_interval: 500ms
  lookback: 1h
  overlap: 60s
  request_timeout: 5s
  retry: { initial: 100ms, max: 1s }
checkpoint: { path: %s }
log: { level: info, format: text }
pipeline: { shutdown_timeout: 10s }
sinks:
""" % (fake.url, PAGE_SIZE, cp)
        for s in sinks:
            spool = os.path.join(d, "spool-" + s.name)
            text += ("  - name: %s\n%s    format: raw\n"
                     "    retry: { initial: 100ms, max: 1s }\n" % (s.name, s.yaml()))
            if s in faulty:
                text += "    spool: { path: %s, max_size: 256MiB }\n" % spool
        with open(cfg, "w") as f:
            f.write(text)

        env = daemon_env()
        daemon = None
        kills = 0
        crashes = []
        outages = {s.name: [] for s in sinks}
        timeline = []  # (t, what, sink name)
        try:
            for s in sinks:
                s.start()
            daemon = Daemon(["-c", cfg], env=env, logdir=d)

            # ---- schedule (seeded): kill times and per-sink up/down phases
            n_kills = max(MIN_KILLS + 4, int(chaos_s / 3))
            kill_at = sorted(rng.uniform(1.0, chaos_s - 1.0) for _ in range(n_kills))
            events = [(t, "kill", None) for t in kill_at]
            for s in faulty:
                t = rng.uniform(1.0, 5.0)
                while t < chaos_s - 1.0:
                    down = rng.uniform(1.0, 7.0)
                    events.append((t, "down", s))
                    events.append((min(t + down, chaos_s - 0.5), "up", s))
                    t += down + rng.uniform(2.0, 8.0)
            events.sort(key=lambda e: e[0])

            start = time.time()
            for t, what, s in events:
                delay = start + t - time.time()
                if delay > 0:
                    time.sleep(delay)
                timeline.append((time.time() - t0, what, s.name if s else "daemon"))
                if what == "kill":
                    if not daemon.alive():
                        crashes.append((daemon.p.returncode, daemon.stderr()[-3000:]))
                    daemon.kill9()
                    kills += 1
                    time.sleep(rng.uniform(0.0, 0.5))
                    daemon = Daemon(["-c", cfg], env=env, logdir=d)
                elif what == "down":
                    kind = s.down(rng)
                    outages[s.name].append(kind)
                else:
                    s.restore()
                for x in sinks:
                    x.poll()
            if not daemon.alive():
                crashes.append((daemon.p.returncode, daemon.stderr()[-3000:]))
                daemon = Daemon(["-c", cfg], env=env, logdir=d)
            chaos_end = time.time()

            # ---- calm: no more faults, everything up, let the daemon catch up
            fake.stop_producer()
            fake.clear_faults()
            for s in sinks:
                s.restore()
            deadline = time.time() + (150 if SANITIZE else 90)
            # a daemon restarted a moment ago may not have reached main() yet: a signal then
            # meets the default action (exit -15), which says nothing about the daemon
            wait_for(lambda: "starting: mode" in daemon.own_stderr() or not daemon.alive(), 10)
            last_served, stable_since = -1, time.time()
            while time.time() < deadline and daemon.alive():
                served = set(fake.served_ids)
                if len(served) != last_served:
                    last_served, stable_since = len(served), time.time()
                missing = {s.name: served - s.poll() for s in sinks}
                # done when all that was served arrived and the API served nothing new for a
                # few polls (poll_interval 500ms): no page with new events is in flight at the
                # final SIGTERM (one would be read again after a restart, not lost, but this
                # run would not see it)
                if not any(missing.values()) and time.time() - stable_since >= 3.0:
                    break
                time.sleep(0.5)
            catch_up = time.time() - chaos_end
            self.assertTrue(daemon.alive(), "daemon died during catch-up:\n" +
                            daemon.stderr()[-4000:])
            rc, hung = daemon.term(30)
            term_rc = rc
        finally:
            fake.stop()
            for s in sinks:
                try:
                    s.close()
                except Exception:  # noqa: BLE001
                    pass

        served = set(fake.served_ids)
        duration = time.time() - t0
        rows = []
        lost_total = 0
        for s in sinks:
            got = s.poll()
            lost = served - got
            lost_total += len(lost)
            rows.append((s.name, len(served), len(s.got.ids), len(lost), s.got.dups(),
                         s.got.dups() / max(kills, 1), len(outages[s.name]), ",".join(
                             "%s x%d" % (k, outages[s.name].count(k))
                             for k in sorted(set(outages[s.name]))), s.got.unparsable))
        stats = fake.stats()
        print("\n=== chaos summary (seed %d) ===" % seed)
        print("events served (distinct): %d   served in 200 pages (with re-reads): %d   "
              "API requests: %d" % (len(served), stats["served_count"], stats["requests"]))
        print("API answers by status: %s" % json.dumps(stats["by_status"], sort_keys=True))
        print("daemon SIGKILLs: %d   unexpected daemon exits: %d   SIGTERM exit: %s"
              % (kills, len(crashes), term_rc))
        print("%-8s %7s %9s %5s %10s %9s %8s  %-16s %s" % (
            "sink", "served", "received", "lost", "duplicates", "dups/kill", "outages", "kinds",
            "unparsable"))
        for r in rows:
            print("%-8s %7d %9d %5d %10d %9.1f %8d  %-16s %d" % r)
        print("chaos %.0fs, catch-up %.1fs, total duration %.1fs" % (chaos_s, catch_up,
                                                                      duration), flush=True)

        log = ""
        try:
            with open(daemon.errpath, "rb") as f:
                log = f.read().decode("utf-8", "replace")
        except OSError:
            pass
        first_served = {}
        for r in fake.api_requests():
            for eid in r.get("ids") or ():
                first_served.setdefault(eid, r["t"] - t0)
        for s in sinks:
            lost = served - s.got.set
            if lost:
                print("sink %s LOST %d: %s" % (s.name, len(lost), ", ".join(
                    "%s (first served at %.1fs)" % (e, first_served.get(e, -1))
                    for e in sorted(lost)[:20])))
                print("timeline: " + "  ".join("%.1f %s %s" % x for x in timeline))
                print("work directory kept: " + d, flush=True)
        for s in sinks:
            lost = served - s.got.set
            self.assertFalse(lost, "sink %s lost %d of %d served events (seed %d), e.g. %s\n"
                             "daemon log tail:\n%s" % (s.name, len(lost), len(served), seed,
                                                      sorted(lost)[:5], log[-4000:]))
            self.assertEqual(s.got.unparsable, 0, "sink %s: unparsable records" % s.name)
        self.assertGreaterEqual(kills, MIN_KILLS)
        # each sink is re-sent only what it had in flight itself: the file sink, which
        # confirms a page within milliseconds, at most one page per kill on average (before
        # per-sink progress it was re-sent whatever the slowest sink had not settled: ~4
        # pages per kill with syslog's 10 s window)
        file_dups = sinks[0].got.dups()
        self.assertLessEqual(file_dups, kills * PAGE_SIZE,
                             "file sink: %d duplicates for %d kills (%.1f per kill, bound %d: "
                             "one page)" % (file_dups, kills, file_dups / max(kills, 1),
                                            PAGE_SIZE))
        self.assertFalse(crashes, "daemon exited on its own: %r" % crashes[:1])
        self.assertFalse(hung, "daemon hung on SIGTERM")
        self.assertEqual(term_rc, 0, "SIGTERM exit status; log tail:\n" + log[-3000:])
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)
        if os.path.exists(dead):
            with open(dead, "rb") as f:
                dl = f.read()
            self.assertEqual(dl, b"", "unexpected dead letters:\n" +
                             dl[:2000].decode("utf-8", "replace"))


if __name__ == "__main__":
    main()
