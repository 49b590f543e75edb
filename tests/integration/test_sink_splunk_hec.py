#!/usr/bin/python3
"""splunk_hec sink against the Splunk HEC test double (tests/fakesplunk/hec.py, every behaviour
cited there): Splunk's codes, indexer acknowledgement (channel, ackId, /services/collector/ack,
acks that come late or never), 503 / code 9 with invalid-event-number."""

import json
import os
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakesplunk"))
from hec import ACK_PATH, FakeHEC  # noqa: E402
from helpers import CANARY, FakeSysdig, main, need_bin, run, scratch_dir  # noqa: E402

TOKEN = "hec-0e1d2c3b-4a59"
ACK_TOKEN = "hec-ack-7c1f-22d0"


@need_bin
class SplunkHecTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-hec-")
        self.fake = FakeSysdig(token=CANARY, seed=43)
        self.fake.generate(60, span_s=1200)
        self.fake.start()
        self.ids = set(self.fake._events.keys())
        self.hec = FakeHEC({TOKEN: {}, ACK_TOKEN: {"ack": True}})

    def tearDown(self):
        self.fake.stop()
        self.hec.stop()

    def config(self, sink, shutdown_timeout="30s", page_size=25):
        cp = os.path.join(self.dir, "checkpoint.json")
        text = f"""source:
  url: {self.fake.url}
  api: events
  token: ${{SYSDIG_SECURE_API_TOKEN}}
  page_size: {page_size}
  lookback: 1h
  request_timeout: 5s
checkpoint: {{ path: {cp} }}
pipeline: {{ shutdown_timeout: {shutdown_timeout} }}
sinks:
  - name: splunk
    type: splunk_hec
    url: {self.hec.url}
    retry: {{ initial: 100ms, max: 300ms }}
{sink}log: {{ level: info, format: text }}
"""
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def once(self, cfg, timeout=120):
        r = run(["-c", cfg, "--once"], env=dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY),
                timeout=timeout)
        self.assertFalse(r.timed_out, r.stderr[-3000:])
        for s in (CANARY, TOKEN, ACK_TOKEN):
            self.assertNotIn(s, r.stderr + r.stdout, "a secret leaked into the output")
        return r

    def event_requests(self):
        return [x for x in self.hec.requests if x[0] != ACK_PATH]

    def test_plain_token_and_wrong_token(self):
        self.hec.fail(503, 9, "Server is busy")
        r = self.once(self.config(f'    token: "{TOKEN}"\n    index: security\n'))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(set(self.hec.ids()), self.ids)
        self.assertTrue(all(e.get("index") == "security" and "time" in e
                            and e.get("sourcetype") == "sysdig:secure" for e in self.hec.indexed))
        self.assertTrue(all(ch is None for _, ch, _, _, _ in self.hec.requests),
                        "a channel without ack: true")
        # an unknown token: 403 code 4, permanent: every event dead-lettered with the cause
        os.unlink(os.path.join(self.dir, "checkpoint.json"))
        self.hec.indexed.clear()
        r = self.once(self.config('    token: "wrong-token-123"\n'))
        self.assertEqual(self.hec.indexed, [])
        self.assertIn("refused the token", r.stderr)
        for i in self.ids:
            self.assertIn("event %s dead-lettered" % i, r.stderr)

    def test_ack_settles_once_indexed(self):
        """ack: true: a channel (one GUID) on every request, events and ack polls; the run ends
        once Splunk acknowledged everything (acks come two polls late) and the checkpoint then
        moved."""
        self.hec.ack_after_polls = 2
        cfg = self.config(f'    token: "{ACK_TOKEN}"\n    ack: true\n'
                          '    ack_poll_interval: 200ms\n')
        r = self.once(cfg)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(self.hec.ids()), sorted(self.ids))
        chans = {ch for _, ch, _, _, _ in self.hec.requests}
        self.assertEqual(len(chans), 1, chans)
        uuid.UUID(chans.pop())
        self.assertTrue(any(p == ACK_PATH for p, *_ in self.hec.requests))
        self.assertFalse([x for x in self.hec.requests if x[2] != 200], self.hec.requests)
        # the checkpoint moved past them: a second run sends nothing
        n = len(self.event_requests())
        r = self.once(cfg)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(len(self.event_requests()), n)

    def test_unacknowledged_events_hold_the_checkpoint(self):
        """Splunk took the events (200, ackId) but never acknowledges them: --once fails after
        pipeline.shutdown_timeout with the checkpoint before them, and the next run sends them
        again."""
        self.hec.ack_after_polls = 10**9
        cfg = self.config(f'    token: "{ACK_TOKEN}"\n    ack: true\n'
                          '    ack_poll_interval: 200ms\n', shutdown_timeout="2s")
        r = self.once(cfg)
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertRegex(r.stderr, r"not confirmed within pipeline.shutdown_timeout")
        self.assertEqual(self.hec.indexed, [])
        first = sum(x[4] for x in self.event_requests())
        self.assertEqual(first, len(self.ids))
        # the requests were lost (not an ack that comes late: a last poll from the first run
        # may still be in the double's hands when the second run starts)
        self.hec.restart_indexers(ack_after_polls=0)
        r = self.once(cfg)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(self.hec.ids()), sorted(self.ids))
        self.assertEqual(sum(x[4] for x in self.event_requests()), 2 * len(self.ids))

    def test_lost_acks_are_resent(self):
        """Two requests Splunk accepted are lost before indexing (their ack never comes true):
        after ack_timeout the sink sends them again, on its own, and everything is indexed."""
        self.hec.lose_requests(2)
        cfg = self.config(f'    token: "{ACK_TOKEN}"\n    ack: true\n'
                          '    ack_poll_interval: 200ms\n    ack_timeout: 1s\n')
        r = self.once(cfg)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(self.hec.ids()), sorted(self.ids))
        self.assertIn("re-sending them", r.stderr)

    def test_token_with_ack_needs_the_channel(self):
        """A token with indexer acknowledgement and a sink without ack: 400 code 10 on every
        request. The events are fine: they are retried (here until retry.max_attempts), not
        dead-lettered, and the reason says what to set."""
        cfg = self.config(f'    token: "{ACK_TOKEN}"\n', shutdown_timeout="5s")
        with open(cfg) as f:
            text = f.read().replace("retry: { initial: 100ms, max: 300ms }",
                                    "retry: { initial: 100ms, max: 300ms, max_attempts: 3 }")
        with open(cfg, "w") as f:
            f.write(text)
        r = self.once(cfg)
        self.assertEqual(self.hec.indexed, [])
        self.assertEqual({x[3] for x in self.hec.requests}, {10})
        self.assertNotIn("dead-lettered", r.stderr)
        self.assertRegex(r.stderr, r"still not accepted after 3 attempts \(Splunk HEC: HTTP 400 "
                                   r"\(code 10: Data channel is missing\): the token has "
                                   r"indexer acknowledgement enabled: set ack: true")
        self.assertNotEqual(r.returncode, 0)

    def test_server_busy_retries_from_invalid_event_number(self):
        """503 {"code":9,"invalid-event-number":5} on a request of 10: the 4 events before the
        5th were processed; only the rest is sent again (no duplicates)."""
        self.hec.busy(5)
        cfg = self.config(f'    token: "{TOKEN}"\n    batch: {{ max_events: 10 }}\n'
                          '    concurrency: 1\n')
        r = self.once(cfg)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = self.hec.ids()
        self.assertEqual(sorted(ids), sorted(self.ids))
        self.assertEqual(len(ids), len(set(ids)), "events before invalid-event-number re-sent")
        busy = [x for x in self.hec.requests if x[3] == 9]
        self.assertEqual(len(busy), 1)
        self.assertIn("the first 4 of 10 events were processed", r.stderr)

    def test_config(self):
        cfg = self.config(f'    token: "{ACK_TOKEN}"\n    ack: true\n    ack_timeout: 10ms\n')
        r = run(["-c", cfg, "--check-config"], timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"config.yaml:\d+:\d+: .*ack_timeout")


if __name__ == "__main__":
    main()
