#!/usr/bin/python3
"""kafka_rest sink against the Kafka REST test double (tests/fakekafka/kafka_rest.py, which
answers as Confluent's and Redpanda's source do) in Confluent v2, Redpanda v2 and v3 modes with
injected per-record and whole-request failures: every event id lands in the topic; duplicates
only from retries of failed records."""

import collections
import json
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakekafka"))
from helpers import (free_port, CANARY, Daemon, FakeSysdig, http_get, main, need_bin, run,  # noqa: E402
                     scratch_dir, wait_for)
from kafka_rest import FakeKafkaRest  # noqa: E402
from test_sink_webhook import sink_config  # noqa: E402

PASSWORD = "kafka-pw-93c1a7"



@need_bin
class KafkaRestTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-kafka-")
        self.fake = FakeSysdig(token=CANARY, seed=43)
        self.fake.generate(80, span_s=1200)
        self.fake.start()
        self.ids = set(self.fake._events.keys())
        self.kr = None

    def tearDown(self):
        self.fake.stop()
        if self.kr:
            self.kr.stop()

    def once(self, sink_yaml):
        cp = os.path.join(self.dir, "checkpoint.json")
        if os.path.exists(cp):
            os.unlink(cp)
        cfg = sink_config(self.dir, self.fake.url, sink_yaml)
        r = run(["-c", cfg, "--once"], env=dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY),
                timeout=90)
        self.assertFalse(r.timed_out, r.stderr[-3000:])
        self.assertNotIn(PASSWORD, r.stderr + r.stdout)
        self.assertNotIn(CANARY, r.stderr + r.stdout)
        return r

    def landed(self, binary=False):
        ids = []
        for rec in self.kr.stored():
            v = json.loads(rec["value"]) if isinstance(rec["value"], str) else rec["value"]
            ids.append(v["id"])
            key = rec["key"]
            if binary:
                import base64
                key = base64.b64decode(key).decode()
            self.assertEqual(key, v["id"], "record key is not the event id")
        return ids

    def sink(self, extra):
        return f"""  - name: kafka
    type: kafka_rest
    url: {self.kr.url}
    topic: events
    batch: {{ max_events: 20 }}
    retry: {{ initial: 100ms, max: 300ms }}
{extra}"""

    def test_confluent_v2_per_record_failures(self):
        self.kr = FakeKafkaRest("confluent")
        self.kr.auth = "Basic " + __import__("base64").b64encode(
            ("u:" + PASSWORD).encode()).decode()
        self.kr.record_failures(50003, probability=0.2)  # retriable
        self.kr.record_failures(40101, count=3)          # first three records: not retriable
        self.kr.request_error(429, html=True)
        self.kr.request_error(503, 50302)
        self.kr.request_error(404, 40404)
        r = self.once(self.sink(f"""    auth: {{ type: basic, username: u, password: "{PASSWORD}" }}
"""))
        ids = self.landed()
        rejected = self.ids - set(ids)
        self.assertEqual(len(rejected), 3, r.stderr[-3000:])
        for i in rejected:
            self.assertRegex(r.stderr, r"event %s dead-lettered: .*error_code 40101" % i)
        self.assertEqual(len(ids), len(set(ids)), "a record that landed was sent again")
        self.assertEqual(self.kr.content_errors, 0)

    def test_confluent_v2_binary(self):
        self.kr = FakeKafkaRest("confluent")
        self.kr.record_failures(50003, probability=0.3)
        r = self.once(self.sink("    content: binary\n    flavor: confluent\n"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.landed(binary=True)
        self.assertEqual(set(ids), self.ids)
        self.assertEqual(len(ids), len(self.ids))
        self.assertEqual(self.kr.content_errors, 0)

    def test_redpanda_explicit_partition(self):
        """Redpanda has no produce-to-partition route: the partition goes in each record of
        POST /topics/{topic} (issue 12; a /partitions/ path is a 404 and dead-letters)."""
        self.kr = FakeKafkaRest("redpanda")
        self.kr.record_failures(50003, count=2)  # Kafka code 7 fails the whole partition batch
        r = self.once(self.sink("    flavor: redpanda\n    partition: 1\n"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.landed()
        self.assertEqual(set(ids), self.ids)
        self.assertEqual(len(ids), len(self.ids), "only failed partitions may be resent")
        self.assertTrue(all(rec["partition"] == 1 for rec in self.kr.stored()))
        self.assertEqual({p for p, _, _, _ in self.kr.requests}, {"/topics/events"})

    def test_confluent_v2_partition_in_records(self):
        """Confluent takes the per-record partition too."""
        self.kr = FakeKafkaRest("confluent")
        r = self.once(self.sink("    partition: 2\n"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(self.landed()), sorted(self.ids))
        self.assertTrue(all(rec["partition"] == 2 for rec in self.kr.stored()))

    def test_redpanda_missing_topic_retried(self):
        """Redpanda answers a missing topic 200 with UNKNOWN_TOPIC_OR_PARTITION (3), retriable
        in Kafka: retried (not dead-lettered) up to retry.max_attempts, and said plainly."""
        self.kr = FakeKafkaRest("redpanda", topics=())
        r = self.once(self.sink("    partition: 0\n").replace(
            "max: 300ms }", "max: 300ms, max_attempts: 2 }"))
        self.assertNotEqual(r.returncode, 0, "nothing was delivered: --once must fail")
        self.assertIn('topic "events" does not exist', r.stderr)
        self.assertNotIn("dead-lettered", r.stderr)
        self.assertGreaterEqual(len(self.kr.requests), 2, "retried")

    def test_redpanda_ambiguous_partitions(self):
        self.kr = FakeKafkaRest("redpanda")
        self.kr.record_failures(50003, count=2)
        r = self.once(self.sink(""))  # flavor auto, proxy's partitioner
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.landed()
        self.assertEqual(set(ids), self.ids)
        # conservative: records of a request with a failed partition are all resent, so the
        # ones in partitions that succeeded may be duplicated, never lost
        self.assertGreater(len(ids), len(self.ids) - 1)

    def test_v3_concatenated(self):
        self.kr = FakeKafkaRest("v3")
        self.kr.record_failures(50003, probability=0.2)
        self.kr.record_failures(40101, count=2)
        self.kr.request_error(429, html=True)
        r = self.once(self.sink("    api: v3\n    cluster_id: lkc-test\n"))
        ids = self.landed()
        rejected = self.ids - set(ids)
        self.assertEqual(len(rejected), 2, r.stderr[-3000:])
        for i in rejected:
            self.assertRegex(r.stderr,
                             r"event %s dead-lettered: .*v3: record error_code 40101" % i)
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(self.kr.content_errors, 0)

    def test_confluent_v2_forbidden_record(self):
        """A record failing authorization makes Confluent's v2 answer 403 with every record's
        entry in the body: the landed records are delivered (not dead-lettered, a replay would
        duplicate them), the 50003 ones retried, only the refused one dead-lettered."""
        self.kr = FakeKafkaRest("confluent")
        self.kr.record_failures(40301, count=1)
        self.kr.record_failures(50003, count=2)
        r = self.once(self.sink(""))
        ids = self.landed()
        rejected = self.ids - set(ids)
        self.assertEqual(len(rejected), 1, r.stderr[-3000:])
        self.assertRegex(r.stderr, r"event %s dead-lettered: .*error_code 40301"
                         % rejected.pop())
        self.assertEqual(len(ids), len(set(ids)), "a record that landed was sent again")
        self.assertEqual(len(re.findall(r"event \w+ dead-lettered", r.stderr)), 1,
                         r.stderr[-3000:])

    def test_whole_request_50002_not_retried(self):
        """500 with error_code 50002 (a non-retriable Kafka error, rest-utils
        KafkaExceptionMapper) dead-letters the request's records; they are not retried."""
        self.kr = FakeKafkaRest("confluent")
        self.kr.request_error(500, 50002, count=1)
        r = self.once(self.sink(""))
        ids = self.landed()
        self.assertEqual(len(self.ids - set(ids)), 20, r.stderr[-3000:])  # the first request
        self.assertRegex(r.stderr, r"dead-lettered: .*error_code 50002")
        self.assertEqual(len(ids), len(set(ids)))

    def test_whole_request_codes(self):
        """Whole-request answers as rest-utils' KafkaExceptionMapper sends them (status from the
        double's WHOLE_REQUEST table): the code decides as the server means it, not the HTTP
        status. Retried: 404/40403 and 404/40401 (unknown topic or partition, retriable in
        Kafka; one "topic does not exist" episode), 500/50003, 503/50302, 429/42901,
        408/40801; then everything lands once, no dead letters. Rejected: 400/40002, 413, 401/40101, 403/40301: exactly the records of
        the refused request are dead-lettered, with the code in the reason."""
        self.kr = FakeKafkaRest("confluent")
        for code in (40403, 50302, 40401, 50003, 42901, 40801):
            self.kr.request_error(None, code)
        r = self.once(self.sink(""))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertNotRegex(r.stderr, r"event \w+ dead-lettered")
        self.assertEqual([f[2] for f in self.kr.request_errors], [0] * 6, "errors not served")
        ids = self.landed()
        self.assertEqual(sorted(ids), sorted(self.ids), "retried records lost or duplicated")
        # the 503 between the two unknown-topic answers says nothing about the topic: one episode,
        # over when records are written
        self.assertEqual(r.stderr.count('sink kafka: topic "events" does not exist'), 1,
                         r.stderr[-3000:])
        self.assertIn('topic "events" exists now', r.stderr)

        self.kr.stop()
        self.kr = FakeKafkaRest("confluent")
        rejected = (40002, 413, 40101, 40301)
        for code in rejected:
            self.kr.request_error(None, code)
        r = self.once(self.sink(""))
        # the double answered its first four requests with the four codes, in order
        want = collections.Counter()
        for code, req in zip(rejected, self.kr.requests):
            want[code] += req[2]
        dead = re.findall(r"event \w+ dead-lettered: .*error_code (\d+)", r.stderr)
        self.assertEqual(collections.Counter(map(int, dead)), want, r.stderr[-3000:])
        ids = self.landed()
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(len(ids) + len(dead), len(self.ids), r.stderr[-3000:])
        self.assertIn("too large: lower batch.max_bytes", r.stderr)

    def test_v3_stream_cut(self):
        """A v3 answer cut part-way: the records reported before the cut are in Kafka and are
        not sent again; only the others are retried."""
        self.kr = FakeKafkaRest("v3")
        self.kr.cut_stream(after=7, count=2)
        r = self.once(self.sink("    api: v3\n    cluster_id: lkc-test\n"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.landed()
        self.assertEqual(set(ids), self.ids)
        self.assertEqual(len(ids), len(self.ids), "records reported before the cut were resent")

    def test_v3_missing_topic(self):
        self.kr = FakeKafkaRest("v3", topics=())
        r = self.once(self.sink("    api: v3\n    cluster_id: lkc-test\n").replace(
            "max: 300ms }", "max: 300ms, max_attempts: 2 }"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('topic "events" does not exist', r.stderr)
        self.assertIn("40401", r.stderr)
        self.assertNotIn("dead-lettered", r.stderr)

    def test_missing_topic_visible_then_created(self):
        """Confluent v2 answers a missing topic 200 with every entry 50003 "Topic X not present
        in metadata" (a producer timeout, retriable). The sink retries, says so (not ready,
        the topic named in /readyz and the log, sink_topic_missing 1), and delivers once the
        topic exists, with no dead letters."""
        self.kr = FakeKafkaRest("confluent", topics=())
        mport = free_port()
        murl = "http://127.0.0.1:%d" % mport
        cfg = sink_config(self.dir, self.fake.url, self.sink(""))
        with open(cfg, "a") as f:
            f.write("server: { listen: 127.0.0.1:%d }\n" % mport)
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
            self.assertTrue(wait_for(lambda: metric("sink_topic_missing") == 1, 30),
                            d.stderr()[-3000:])
            st, _, body = http_get(murl, "/readyz")
            self.assertEqual(st, 503, body)
            self.assertIn('topic "events" does not exist', body.decode())
            self.assertEqual(self.kr.stored(), [])
            self.kr.create_topic("events")
            self.assertTrue(wait_for(lambda: metric("events_delivered_total") == len(self.ids),
                                     30), d.stderr()[-3000:])
            self.assertEqual(metric("sink_topic_missing"), 0)
            self.assertEqual(metric("events_dead_lettered_total"), 0)
        finally:
            d.term()
        err = d.stderr()
        # one error line for the episode (the retries' warnings carry the reason too)
        self.assertEqual(err.count('sink kafka: topic "events" does not exist'), 1, err[-3000:])
        self.assertIn('topic "events" exists now', err)
        self.assertEqual(sorted(self.landed()), sorted(self.ids))

    def test_config_errors(self):
        cfg = sink_config(self.dir, self.fake.url, """  - name: k
    type: kafka_rest
    url: http://x
    topic: "bad topic"
    api: v3
""")
        r = run(["-c", cfg, "--check-config"], timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*a Kafka topic name")
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*v3 needs cluster_id")


if __name__ == "__main__":
    main()
