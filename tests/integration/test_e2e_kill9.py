#!/usr/bin/python3
"""End-to-end crash safety: SIGKILL the daemon at seeded random moments (>= 20 times) while
events keep arriving, restart it each time, then let it catch up with --once.
No id may be lost; duplicates must stay within what could have been in flight."""

import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, Daemon, FakeSysdig, dup_count, main, need_bin,  # noqa: E402
                     read_output, run, scratch_dir, write_config)

KILLS = 20
PAGE = 50
MAX_INFLIGHT_PAGES = 4


@need_bin
class Kill9Test(unittest.TestCase):
    def _run(self, api, seed):
        rng = random.Random(seed)
        tmp = scratch_dir(self, "sf-e2e-kill9-")
        fake = FakeSysdig(token=CANARY, seed=seed)
        fake.generate(3000, span_s=1800)
        fake.start()
        try:
            cfg, out, cp = write_config(tmp, fake.url, api=api, page_size=PAGE,
                                        poll_interval="1s", lookback="1h", overlap="60s")
            # a little latency so that kills land while pages are in flight
            fake.inject("delay", probability=0.3, seconds=0.05)
            fake.start_producer(rate=30, late_fraction=0.25, max_late_s=15)
            early_exits = []
            for k in range(KILLS):
                d = Daemon(["-c", cfg], logdir=tmp, tag="run%02d" % k)
                time.sleep(rng.uniform(0.1, 1.5))
                if not d.alive():
                    early_exits.append((k, d.p.returncode, d.stderr()[-1500:]))
                d.kill9()
                self.assertNotIn(CANARY, d.stderr() + d.stdout())
                if os.path.exists(cp):  # atomic writes: never a torn checkpoint
                    with open(cp, "rb") as f:
                        data = f.read()
                    try:
                        json.loads(data)
                    except ValueError:
                        self.fail("checkpoint is not valid JSON after kill %d: %r"
                                  % (k, data[:200]))
                if len(early_exits) >= 3:
                    break
            self.assertFalse(early_exits, "daemon exited by itself before being killed: %r"
                             % early_exits[:1])
            fake.stop_producer()
            fake.clear_faults()
            r = run(["-c", cfg, "--once"], timeout=100)
            self.assertFalse(r.timed_out, "final --once did not finish")
            self.assertNotIn(CANARY, r.stdout + r.stderr)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            expected = set(fake.all_ids())
            ids, torn = read_output(out)
            got = set(ids)
            lost = expected - got
            dups = dup_count(ids)
            bound = KILLS * PAGE * MAX_INFLIGHT_PAGES
            print("\n[kill9 %s] events=%d kills=%d delivered=%d lost=%d duplicates=%d "
                  "(bound %d) torn_lines=%d served=%d" % (
                      api, len(expected), KILLS, len(ids), len(lost), dups, bound, torn,
                      len(fake.served_ids)), flush=True)
            self.assertEqual(len(lost), 0, "%d events lost (e.g. %s)" % (len(lost), sorted(lost)[:3]))
            self.assertLessEqual(dups, bound, "more duplicates than could have been in flight")
        finally:
            fake.stop()

    def test_kill9_legacy(self):
        self._run("legacy", seed=101)

    def test_kill9_events(self):
        self._run("events", seed=202)


if __name__ == "__main__":
    main()
