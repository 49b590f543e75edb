#!/usr/bin/python3
"""kafka_rest sink against the Kafka REST test double (tests/fakekafka/kafka_rest.py) in
Confluent v2, Redpanda v2 and v3 modes with injected per-record and whole-request failures:
every event id lands in the topic; duplicates only from retries of failed records."""

import collections
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakekafka"))
from helpers import CANARY, FakeSysdig, main, need_bin, run, scratch_dir  # noqa: E402
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
        self.kr = FakeKafkaRest("redpanda")
        self.kr.record_failures(50003, count=2)  # Kafka code 7 fails the whole partition batch
        r = self.once(self.sink("    flavor: redpanda\n    partition: 1\n"))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.landed()
        self.assertEqual(set(ids), self.ids)
        self.assertEqual(len(ids), len(self.ids), "only failed partitions may be resent")
        self.assertTrue(all(rec["partition"] == 1 for rec in self.kr.stored()))

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
            self.assertRegex(r.stderr, r"event %s dead-lettered: .*v3: record error_code 401" % i)
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(self.kr.content_errors, 0)

    def test_topic_not_found(self):
        self.kr = FakeKafkaRest("confluent")
        r = self.once(self.sink("").replace("topic: events", "topic: missing"))
        self.assertEqual(self.kr.stored(), [])
        self.assertIn("error_code 40401 (topic not found)", r.stderr)
        for i in self.ids:
            self.assertIn("event %s dead-lettered" % i, r.stderr)
        # and the topic was not retried: one request per batch
        counts = collections.Counter(p for p, _, _, _ in self.kr.requests)
        self.assertLessEqual(counts["/topics/missing"], len(self.ids) // 20 + 4)

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
