#!/usr/bin/python3
"""kafka sink (librdkafka) against a real Kafka protocol peer: librdkafka's mock cluster, run by
tests/kafka/mockkafka.c (built by CMake into SF_BUILD/tests/mockkafka). Every event lands in the
topic keyed by its id; injected broker errors are retried; a broker down then up loses nothing;
kill -9 mid-stream then a restart loses nothing; a permanent error (message too large)
dead-letters only the records it concerns."""

import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from helpers import (CANARY, Daemon, FakeSysdig, free_port, http_get, main, need_bin, run,  # noqa: E402
                     scratch_dir, wait_for)
from test_sink_webhook import sink_config  # noqa: E402

PASSWORD = "kafka-sasl-pw-4e1f09"
MOCK = os.path.join(os.environ.get("SF_BUILD", "build-dev"), "tests", "mockkafka")
FAILPLUGIN = os.path.abspath(os.path.join(os.environ.get("SF_BUILD", "build-dev"), "tests",
                                          "sf_kafka_failplugin.so"))

# Kafka protocol error codes (org.apache.kafka.common.protocol.Errors)
MESSAGE_TOO_LARGE = 10
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


class MockKafka:
    """tests/kafka/mockkafka.c driven over its stdin (commands in its header comment)."""

    def __init__(self, brokers=1):
        self.p = subprocess.Popen([MOCK, str(brokers)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().split()
        assert line and line[0] == "bootstrap", line
        self.bootstrap = line[1]

    def cmd(self, c):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("mockkafka exited")
            line = line.strip()
            if line == "ok":
                return out
            if line.startswith("error"):
                raise RuntimeError("mockkafka: %s (%s)" % (line, c))
            out.append(line)

    def records(self, topic):
        """[(key or None, value bytes)] of every partition."""
        recs = []
        for line in self.cmd("consume " + topic):
            _, _part, _off, key, val = line.split()
            recs.append((None if key == "-" else bytes.fromhex(key).decode() if key != "=" else "",
                         bytes.fromhex(val) if val != "=" else b""))
        return recs

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def event_id(value):
    return json.loads(value)["id"]


@unittest.skipUnless(os.path.exists(MOCK), "mockkafka not built (SF_BUILD/tests/mockkafka)")
@need_bin
class KafkaSinkTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-kafka-native-")
        self.fake = FakeSysdig(token=CANARY, seed=47)
        self.fake.generate(120, span_s=1200)
        self.fake.start()
        self.ids = set(self.fake._events.keys())
        self.mk = None

    def tearDown(self):
        self.fake.stop()
        if self.mk:
            self.mk.stop()

    def start_mock(self, brokers=1, partitions=3):
        self.mk = MockKafka(brokers)
        self.mk.cmd("topic events %d" % partitions)

    def sink(self, extra="", timeout="5s"):
        return f"""  - name: kafka
    type: kafka
    brokers: [{self.mk.bootstrap}]
    topic: events
    message_timeout: {timeout}
    retry: {{ initial: 100ms, max: 500ms }}
{extra}"""

    def config(self, sink_yaml, tail="", level="info"):
        cfg = sink_config(self.dir, self.fake.url, sink_yaml)
        with open(cfg) as f:
            text = f.read()
        assert "log: { level: info," in text
        with open(cfg, "w") as f:
            f.write(text.replace("log: { level: info,", "log: { level: %s," % level) + tail)
        return cfg

    def once(self, sink_yaml, tail="", timeout=120, level="info"):
        cfg = self.config(sink_yaml, tail, level)
        r = run(["-c", cfg, "--once"], env=dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY),
                timeout=timeout)
        self.assertFalse(r.timed_out, r.stderr[-3000:])
        self.assertNotIn(CANARY, r.stderr + r.stdout)
        self.assertNotIn(PASSWORD, r.stderr + r.stdout)
        return r

    def landed(self, key=True):
        ids = []
        for k, v in self.mk.records("events"):
            i = event_id(v)
            ids.append(i)
            if key:
                self.assertEqual(k, i, "record key is not the event id")
        return ids

    def test_delivery_keyed_by_event_id(self):
        self.start_mock()
        r = self.once(self.sink("    compression: gzip\n"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.landed()
        self.assertEqual(set(ids), self.ids)
        self.assertEqual(len(ids), len(self.ids), "duplicates without any failure")

    def test_key_none(self):
        self.start_mock()
        r = self.once(self.sink("    key: none\n"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        recs = self.mk.records("events")
        self.assertEqual({event_id(v) for _, v in recs}, self.ids)
        self.assertTrue(all(k is None for k, _ in recs))

    def test_injected_errors_retried(self):
        """Retriable Produce errors (not leader, request timed out) are retried by the
        idempotent producer: everything lands once, nothing is dead-lettered."""
        self.start_mock()
        self.mk.cmd("errors 4 %d" % NOT_LEADER_OR_FOLLOWER)
        self.mk.cmd("errors 3 %d" % REQUEST_TIMED_OUT)
        r = self.once(self.sink())
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertNotRegex(r.stderr, r"event \S+ dead-lettered")
        ids = self.landed()
        self.assertEqual(set(ids), self.ids)

    def test_fatal_error_producer_replaced(self):
        """A fatal error of the idempotent producer (the broker answers
        OUT_OF_ORDER_SEQUENCE_NUMBER: librdkafka raises a fatal idempotence error) makes every
        later produce fail: the sink waits for the old producer's reports, replaces it, and the
        pipeline retries the records it held. Every event lands; duplicates are bounded (at
        most one extra copy, of records written before the error)."""
        self.start_mock()
        self.mk.cmd("errors 1 %d" % OUT_OF_ORDER_SEQUENCE_NUMBER)
        r = self.once(self.sink(), timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertRegex(r.stderr, r"kafka producer fatal error: .*it is recreated")
        self.assertNotRegex(r.stderr, r"event \S+ dead-lettered")
        ids = self.landed()
        self.assertEqual(set(ids), self.ids)
        self.assertLessEqual(len(ids), 2 * len(self.ids))
        counts = {}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        self.assertLessEqual(max(counts.values()), 2, "an event landed more than twice")

    @unittest.skipUnless(os.path.exists(FAILPLUGIN), "tests/kafka/failplugin.c not built")
    def test_failed_recreation_retried(self):
        """The replacement of a producer after a fatal error fails (librdkafka refuses to
        create it: tests/kafka/failplugin.c, loaded with plugin.library.paths, fails while a
        file exists): it is logged and retried from the timer with backoff; once creation
        works again the events flow and nothing is lost."""
        self.start_mock()
        fail = os.path.join(self.dir, "plugin-fails")
        mport = free_port()
        murl = "http://127.0.0.1:%d" % mport
        cfg = self.config(self.sink("    librdkafka: { plugin.library.paths: %s }\n"
                                    % FAILPLUGIN), "server: { listen: 127.0.0.1:%d }\n" % mport)
        d = Daemon(["-c", cfg], logdir=self.dir,
                   env=dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY, SF_TEST_PLUGIN_FAIL=fail))

        def delivered():
            try:
                body = http_get(murl, "/metrics")[2].decode()
            except OSError:
                return 0
            m = re.search(r'^sysdig_forwarder_events_delivered_total\{sink="kafka"\} (\S+)',
                          body, re.M)
            return float(m.group(1)) if m else 0

        try:
            self.assertTrue(wait_for(lambda: delivered() >= len(self.ids), 60),
                            d.stderr()[-3000:])
            with open(fail, "w"):
                pass
            self.mk.cmd("errors 1 %d" % OUT_OF_ORDER_SEQUENCE_NUMBER)
            self.fake.generate(30, span_s=5)
            failed = r"cannot recreate the kafka producer: .*failplugin.*retried in"
            self.assertTrue(wait_for(lambda: len(re.findall(failed, d.stderr())) >= 2, 30),
                            d.stderr()[-3000:])
            os.unlink(fail)
            self.assertTrue(wait_for(lambda: "kafka producer recreated" in d.stderr(), 90),
                            d.stderr()[-3000:])
            expected = set(self.fake.all_ids())
            self.assertTrue(wait_for(lambda: set(self.landed()) >= expected, 60),
                            d.stderr()[-3000:])
        finally:
            rc, hung = d.term()
        self.assertFalse(hung)
        self.assertNotRegex(d.stderr(), r"event \S+ dead-lettered")

    def test_broker_down_then_up(self):
        """The only broker goes down for longer than message_timeout: the records time out in
        librdkafka, are retried by the pipeline (not dead-lettered), /readyz and the metrics
        say the sink is failing; once the broker is back everything lands."""
        self.start_mock()
        self.mk.cmd("down 1")
        mport = free_port()
        murl = "http://127.0.0.1:%d" % mport
        cfg = self.config(self.sink(timeout="2s"), "server: { listen: 127.0.0.1:%d }\n" % mport)
        d = Daemon(["-c", cfg], logdir=self.dir,
                   env=dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY))

        def metric(name):
            try:
                body = http_get(murl, "/metrics")[2].decode()
            except OSError:
                return None
            m = re.search(r'^sysdig_forwarder_%s\{sink="kafka"\} (\S+)' % name, body, re.M)
            return float(m.group(1)) if m else None

        try:
            self.assertTrue(wait_for(lambda: (metric("events_retried_total") or 0) > 0, 30),
                            d.stderr()[-3000:])
            self.assertEqual(metric("sink_up"), 0)
            # the records handed back are produced again and wait in librdkafka's queue (the
            # gauge is sampled every second)
            self.assertTrue(wait_for(lambda: 0 < (metric("sink_kafka_queue_messages") or 0)
                                     <= len(self.ids), 10), d.stderr()[-3000:])
            st, _, body = http_get(murl, "/readyz")
            self.assertEqual(st, 503, body)
            self.assertIn("sink:kafka", body.decode())
            self.mk.cmd("up 1")
            self.assertTrue(wait_for(lambda: metric("events_delivered_total") == len(self.ids),
                                     60), d.stderr()[-3000:])
            self.assertEqual(metric("events_dead_lettered_total"), 0)
            self.assertTrue(wait_for(lambda: metric("sink_up") == 1, 10))
            self.assertEqual(metric("sink_kafka_queue_messages"), 0)
        finally:
            rc, hung = d.term()
        self.assertFalse(hung)
        self.assertNotRegex(d.stderr(), r"event \S+ dead-lettered")
        self.assertEqual(set(self.landed()), self.ids)

    def test_shutdown_broker_down_keeps_checkpoint(self):
        """SIGTERM while every record waits for a delivery report that cannot come (broker
        down, message_timeout longer than pipeline.shutdown_timeout): the daemon stops within
        the bound, the checkpoint stays before those events, and the next run delivers them."""
        self.start_mock()
        self.mk.cmd("down 1")
        cp = os.path.join(self.dir, "checkpoint.json")
        cfg = self.config(self.sink(timeout="60s"), "pipeline: { shutdown_timeout: 2s }\n")
        env = dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY)
        mport = free_port()
        with open(cfg, "a") as f:
            f.write("server: { listen: 127.0.0.1:%d }\n" % mport)
        d = Daemon(["-c", cfg], logdir=self.dir, env=env)

        def queued():
            try:
                body = http_get("http://127.0.0.1:%d" % mport, "/metrics")[2].decode()
            except OSError:
                return 0
            m = re.search(r'^sysdig_forwarder_sink_kafka_queue_messages\{sink="kafka"\} (\S+)',
                          body, re.M)
            return float(m.group(1)) if m else 0

        # records are in librdkafka's queue, waiting for reports that cannot come
        self.assertTrue(wait_for(lambda: queued() > 0, 30), d.stderr()[-3000:])
        t0 = time.monotonic()
        rc, hung = d.term(timeout=15)
        self.assertFalse(hung, d.stderr()[-3000:])
        self.assertLess(time.monotonic() - t0, 10)
        self.mk.cmd("up 1")
        self.assertEqual(self.mk.records("events"), [])  # nothing sent after the purge
        r = run(["-c", cfg, "--once"], env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertTrue(os.path.exists(cp))
        self.assertEqual(set(self.landed()), self.ids, "events the checkpoint passed were lost")

    def test_kill9_mid_stream_loses_nothing(self):
        """SIGKILL while events stream in and records are in flight, several times, then a
        --once: every event is in the topic (the checkpoint never passed an event without its
        delivery report)."""
        self.start_mock()
        self.fake.start_producer(rate=40, late_fraction=0.0, max_late_s=1)
        cfg = self.config(self.sink("    linger: 200ms\n"))
        env = dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY)
        for k in range(6):
            d = Daemon(["-c", cfg], logdir=self.dir, env=env, tag="run%d" % k)
            time.sleep(0.8 + 0.3 * k)
            self.assertTrue(d.alive(), d.stderr()[-2000:])
            if k % 2:
                self.mk.cmd("errors 2 %d" % REQUEST_TIMED_OUT)  # keep some in flight
            d.kill9()
        self.fake.stop_producer()
        r = run(["-c", cfg, "--once"], env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        expected = set(self.fake.all_ids())
        got = set(self.landed())
        lost = expected - got
        self.assertEqual(lost, set(), "%d events lost" % len(lost))

    def test_message_too_large_dead_lettered(self):
        """A permanent error is dead-lettered, not retried: records above librdkafka's
        message.max.bytes (refused at produce time), and a Produce request the broker answers
        MESSAGE_TOO_LARGE (its records get it in their delivery reports)."""
        self.start_mock()
        dl = os.path.join(self.dir, "dead.ndjson")
        sizes = sorted(len(json.dumps(e.body, separators=(",", ":")))
                       for e in self.fake._events.values())
        limit = max(1000, sizes[len(sizes) // 2])  # about half the events are too large
        # retry.max_attempts 0 (forever): a permanent error retried would never finish
        r = self.once(self.sink("    librdkafka: { message.max.bytes: %d }\n" % limit),
                      f"dead_letter: {{ path: {dl} }}\n", timeout=45)
        ids = set(self.landed())
        rejected = self.ids - ids
        self.assertGreater(len(rejected), 0, r.stderr[-3000:])
        self.assertLess(len(rejected), len(self.ids), r.stderr[-3000:])
        for i in list(rejected)[:5]:
            self.assertRegex(r.stderr, r"event %s dead-lettered: .*too large" % i)
        with open(dl) as f:
            lines = [line for line in f if line.strip()]
        self.assertEqual(len(lines), len(rejected))
        for i in rejected:
            self.assertEqual(sum(i in line for line in lines), 1, i)

    def test_broker_message_too_large_dead_lettered(self):
        self.start_mock()
        self.mk.cmd("errors 1 %d" % MESSAGE_TOO_LARGE)
        r = self.once(self.sink(), timeout=45)
        ids = set(self.landed())
        rejected = self.ids - ids
        self.assertGreater(len(rejected), 0, r.stderr[-3000:])
        self.assertRegex(r.stderr, r"dead-lettered: .*MSG_SIZE_TOO_LARGE")
        self.assertEqual(len(re.findall(r"event \S+ dead-lettered", r.stderr)), len(rejected))

    def line_of(self, cfg, text):
        with open(cfg) as f:
            return next(n for n, line in enumerate(f, 1) if text in line)

    def test_check_config_refuses_what_startup_refuses(self):
        """librdkafka's checks of the configuration as a whole (those only rd_kafka_new makes:
        properties that go together, TLS material) are configuration errors at the sink's
        librdkafka key, of --check-config (with --syntax-only too: nothing here depends on the
        machine) and of start-up (exit 2), never a failure after start (exit 1)."""
        self.start_mock()
        env = dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY)
        cases = [
            ("    librdkafka: { max.in.flight: 10 }\n", "max.in.flight"),  # idempotence on
            ("    librdkafka: { retries: 0 }\n", "retries"),
            ("    idempotence: false\n    librdkafka: { enable.gapless.guarantee: true }\n",
             "enable.gapless.guarantee"),
            ("    transport: tls\n    librdkafka: { ssl.ca.pem: notapem }\n", "ssl.ca.pem"),
        ]
        for extra, what in cases:
            with self.subTest(what):
                cfg = self.config(self.sink(extra))
                line = self.line_of(cfg, "librdkafka:")
                for flags in ([], ["--syntax-only"]):
                    r = run(["-c", cfg, "--check-config"] + flags, timeout=30)
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertRegex(r.stderr, r"config.yaml:%d:\d+: .*librdkafka refuses the "
                                               r"configuration: .*%s" % (line, re.escape(what)))
                r = run(["-c", cfg, "--once"], env=env, timeout=60)
                self.assertFalse(r.timed_out)
                self.assertEqual(r.returncode, 2, r.stderr[-3000:])
        self.assertEqual(self.mk.records("events"), [])

    def test_check_config_files_of_this_machine(self):
        """A pass-through property naming a file (read when the producer is created) is
        checked by --check-config and at start-up, not by --syntax-only (made for another
        machine)."""
        self.start_mock()
        crl = os.path.join(self.dir, "not-a-crl.pem")
        with open(crl, "w") as f:
            f.write("not a CRL\n")
        cfg = self.config(self.sink("    transport: tls\n    librdkafka: { ssl.crl.location: "
                                    "%s }\n" % crl))
        r = run(["-c", cfg, "--check-config", "--syntax-only"], timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = run(["-c", cfg, "--check-config"], timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"config.yaml:%d:\d+: .*librdkafka refuses the configuration: "
                                   r".*ssl.crl.location" % self.line_of(cfg, "librdkafka:"))
        r = run(["-c", cfg, "--once"], env=dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY),
                timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr[-3000:])

    def test_delivery_report_breakers_refused(self):
        """Pass-through properties that break the delivery-report contract (no report for a
        success; every record refused outside a transaction) are configuration errors."""
        self.start_mock()
        for prop in ("delivery.report.only.error: true", "transactional.id: sf-1",
                     "enabled_events: 1"):
            with self.subTest(prop):
                cfg = self.config(self.sink("    librdkafka: { %s }\n" % prop))
                r = run(["-c", cfg, "--check-config", "--syntax-only"], timeout=30)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertRegex(r.stderr, r"config.yaml:%d:\d+: .*librdkafka.%s: not allowed" %
                                 (self.line_of(cfg, "librdkafka:"),
                                  re.escape(prop.split(":")[0])))

    def test_record_larger_than_queue_dead_lettered(self):
        """queue.buffering.max.kbytes: 1: a record larger than librdkafka's whole queue can
        never be produced (QUEUE_FULL with nothing in flight): it is dead-lettered with the
        reason, not retried forever; the others land."""
        self.start_mock()
        dl = os.path.join(self.dir, "dead.ndjson")
        r = self.once(self.sink("    librdkafka: { queue.buffering.max.kbytes: 1 }\n"),
                      f"dead_letter: {{ path: {dl} }}\n", timeout=60)
        ids = set(self.landed())
        rejected = self.ids - ids
        self.assertGreater(len(rejected), 0, r.stderr[-3000:])
        for i in rejected:
            self.assertRegex(r.stderr, r"event %s dead-lettered: .*larger than librdkafka's "
                                       r"whole queue" % i)
        with open(dl) as f:
            self.assertEqual(len([line for line in f if line.strip()]), len(rejected))

    def test_config_errors(self):
        self.start_mock()
        cfg = self.config(self.sink(f"""    librdkafka:
      no.such.property: 1
      sasl.password: "x"
      linger.ms: 3
    sasl: {{ mechanism: scram-sha-512, username: u }}
    acks: leader
""").replace("topic: events", 'topic: "bad topic"'))
        r = run(["-c", cfg, "--check-config"], timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*librdkafka.no.such.property: No "
                                   r"such configuration property")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*librdkafka.sasl.password: set by")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*librdkafka.linger.ms: set by")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*a Kafka topic name")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*needs username and password")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*idempotent producer needs acks: all")

    def test_sasl_password_redacted(self):
        """A SASL password (the mock has no SASL: the handshake fails) never shows in the logs,
        neither from the daemon nor from librdkafka, even with every librdkafka debug context
        logged at the daemon's debug level (its configuration dump included)."""
        self.start_mock()
        secret2 = "ssl-keypw-77aa01"
        cfg = self.sink(f"""    sasl: {{ mechanism: plain, username: u, password: "{PASSWORD}" }}
    librdkafka: {{ debug: all, ssl.keystore.password: "{secret2}" }}
""", timeout="2s").replace("max: 500ms }", "max: 500ms, max_attempts: 1 }")
        r = self.once(cfg, timeout=60, level="debug")
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn(secret2, r.stderr + r.stdout)
        # the lines the checks cover are there: librdkafka's debug output, its configuration
        # dump (which names the secret properties) and the SASL handshake
        self.assertRegex(r.stderr, r"librdkafka \S+: .*sasl.password")
        self.assertRegex(r.stderr, r"librdkafka \S+: .*ssl.keystore.password")
        self.assertRegex(r.stderr, r"librdkafka SASL\S*: ")


if __name__ == "__main__":
    main()
