"""Per-sink routing (sinks[].filter): two file sinks on one daemon, one unfiltered, one that
takes only high-severity runtime events. The filtered sink receives exactly the events its
filter passes; the events it drops count as settled for it (the checkpoint moves over them
and the unfiltered sink gets everything), are counted in
sysdig_forwarder_sink_events_filtered_total{sink} and never reach the dead-letter file.
`translate --filter-sink` shows the same selection offline. Both APIs (legacy and events)."""
import json
import os
import re
import subprocess
import unittest

from helpers import (Daemon, FakeSysdig, CANARY, NS, SF_BIN, free_port, http_get, main,
                     need_bin, read_output, scratch_dir, wait_for, write_config)
from sysdig_api import now_ns

FILTER = "{ severity: high, not: { source: auditTrail } }"


def _watermark(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("watermark_ns")


def metric(text, name, sink):
    m = re.search(r'^%s\{sink="%s"\} (\S+)$' % (re.escape(name), re.escape(sink)), text, re.M)
    return float(m.group(1)) if m else None


@need_bin
class RoutingTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-routing-")
        self.fake = FakeSysdig(token=CANARY, seed=11)
        now = now_ns()
        # severities 0..7 in turn (every name's range is represented), sources mixed
        for i in range(240):
            self.fake.add_event(ts_ns=now - (1800 - i * 7) * NS, severity=i % 8,
                                source="auditTrail" if i % 5 == 0 else None)
        self.fake.start()
        self.port = free_port()

    def tearDown(self):
        self.fake.stop()

    def expected_high(self):
        out = set()
        for eid in self.fake.all_ids():
            b = self.fake.event(eid).body
            if b["severity"] <= 3 and b["source"] != "auditTrail":
                out.add(eid)
        return out

    def config(self, api):
        high = os.path.join(self.dir, "high.ndjson")
        extra = f"""  - name: high
    type: file
    path: {high}
    filter: {FILTER}
"""
        cfg, out, cp = write_config(self.dir, self.fake.url, api=api, page_size=50,
                                    extra=f"server: {{ listen: 127.0.0.1:{self.port} }}\n")
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("log: {", extra + "log: {", 1))
        return cfg, out, high, cp

    def run_api(self, api):
        cfg, out, high, cp = self.config(api)
        everything = set(self.fake.all_ids())
        want = self.expected_high()
        self.assertTrue(0 < len(want) < len(everything))
        env = dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY)
        d = Daemon(["-c", cfg], env=env, logdir=self.dir, tag="d-" + api)
        try:
            self.assertTrue(wait_for(lambda: everything <= set(read_output(out)[0]), 60),
                            "unfiltered sink incomplete:\n" + d.stderr()[-2000:])
            # the checkpoint moves over the events the filter dropped
            self.assertTrue(wait_for(lambda: _watermark(cp), 30),
                            "checkpoint stuck:\n" + d.stderr()[-2000:])
            got = read_output(high)[0]
            self.assertEqual(set(got), want)
            self.assertEqual(len(got), len(set(got)))
            url = "http://127.0.0.1:%d" % self.port

            def counted():
                st, _, body = http_get(url, "/metrics")
                text = body.decode()
                return (metric(text, "sysdig_forwarder_sink_events_filtered_total", "high"),
                        metric(text, "sysdig_forwarder_sink_events_filtered_total", "archive"),
                        metric(text, "sysdig_forwarder_events_delivered_total", "high"),
                        metric(text, "sysdig_forwarder_events_dead_lettered_total", "high"))
            polled = len(everything)
            self.assertTrue(wait_for(lambda: counted()[0] == polled - len(want), 10),
                            "filtered counter: %r" % (counted(),))
            self.assertEqual(counted(), (polled - len(want), 0, len(want), 0))
            rc, hung = d.term()
            self.assertEqual((rc, hung), (0, False), d.stderr()[-2000:])
        finally:
            if d.alive():
                d.kill9()
        self.assertFalse(os.path.exists(os.path.join(self.dir, "dead-letters.ndjson")) and
                         os.path.getsize(os.path.join(self.dir, "dead-letters.ndjson")))
        # translate --filter-sink selects the same events offline
        page = os.path.join(self.dir, "events.json")
        with open(page, "w") as f:
            f.write("[" + ",".join(self.fake.event_json(e, api) for e in self.fake.all_ids()) +
                    "]")
        p = subprocess.run([SF_BIN, "translate", "--filter-sink", "high", "-c", cfg, page],
                           env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        ids = {json.loads(line)["id"] for line in p.stdout.splitlines() if line.strip()}
        self.assertEqual(ids, want)
        self.assertIn("%d of %d events pass its filter" % (len(want), polled), p.stderr)

    def test_legacy(self):
        self.run_api("legacy")

    def test_events_api(self):
        self.run_api("events")

    def test_bad_filter_is_a_config_error(self):
        cfg, _, _, _ = self.config("legacy")
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace(FILTER, "{ rule: '/(unclosed/' }"))
        for args in (["--check-config"], ["--once"]):
            p = subprocess.run([SF_BIN, "-c", cfg] + args, capture_output=True, text=True,
                               env=dict(os.environ, SYSDIG_SECURE_API_TOKEN=CANARY), timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertRegex(p.stderr, r"config\.yaml:\d+:\d+: sinks\[1\]\.filter\.rule: "
                                       r"invalid regular expression")


if __name__ == "__main__":
    main()
