#!/usr/bin/python3
"""End-to-end: the daemon tails the fake API (both api kinds) through hundreds of pages, late
arrivals and transient faults; every event must reach the raw file sink."""

import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, NS, Daemon, FakeSysdig, daemon_env, dup_count, main,  # noqa: E402
                     need_bin, read_output, run, scratch_dir, wait_for, wait_output_covers,
                     write_config)

N_EVENTS = 10000
PAGE = 40  # 10000 / 40 = 250 pages for the backlog alone


def add_faults(fake):
    for kind, p, kw in (("429", 0.03, {"retry_after": 1}), ("500", 0.03, {}),
                        ("503", 0.02, {}), ("html", 0.02, {}), ("malformed", 0.03, {}),
                        ("truncated", 0.02, {}), ("reset", 0.01, {}),
                        ("short_read", 0.01, {})):
        fake.inject(kind, probability=p, **kw)


@need_bin
class TailTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-e2e-tail-")
        self.fake = None

    def tearDown(self):
        if self.fake:
            self.fake.stop()

    def _fake(self, seed, n=N_EVENTS):
        self.fake = FakeSysdig(token=CANARY, seed=seed)
        self.fake.generate(n, span_s=1800)
        self.fake.start()
        return self.fake

    def _check_requests(self):
        reqs = self.fake.api_requests()
        self.assertTrue(reqs, "the daemon made no API request")
        self.assertFalse([r for r in reqs if r["token_in_url"]], "token sent in a URL")
        self.assertFalse([r for r in reqs if r["auth"] != "ok"], "request without the token")
        bad400 = [r for r in reqs if r["status"] == 400]
        self.assertFalse(bad400, "daemon sent invalid requests: %r" % bad400[:3])

    def _tail(self, api, seed, faults):
        fake = self._fake(seed)
        cfg, out, cp = write_config(self.dir, fake.url, api=api, page_size=PAGE,
                                    poll_interval="1s", lookback="1h", overlap="60s")
        if faults:
            add_faults(fake)
        d = Daemon(["-c", cfg], logdir=self.dir)
        try:
            backlog = fake.all_ids()
            ids, _ = wait_output_covers(out, backlog, 100, d)
            self.assertTrue(d.alive(), "daemon died: rc=%s\n%s" % (d.p.returncode,
                                                                  d.stderr()[-3000:]))
            missing = set(backlog) - set(ids)
            self.assertEqual(len(missing), 0, "%d backlog events not delivered within 100 s"
                             "\n%s" % (len(missing), d.stderr()[-2000:]))
            # live tailing with late arrivals (lag <= 20 s < overlap 60 s)
            fake.start_producer(rate=25, late_fraction=0.3, max_late_s=20)
            time.sleep(6)
            late = fake.add_events(30, late_s=40)  # a late batch 40 s in the past
            time.sleep(4)
            fake.stop_producer()
            expected = fake.all_ids()
            ids, torn = wait_output_covers(out, expected, 40, d)
        finally:
            rc, hung = d.term(30)
        err = d.stderr()
        self.assertNotIn(CANARY, err + d.stdout(), "token leaked in the daemon's output")
        self.assertFalse(hung, "daemon did not exit within 30 s of SIGTERM")
        self.assertEqual(rc, 0, "SIGTERM exit status %s\n%s" % (rc, err[-3000:]))
        self.assertTrue(os.path.exists(cp), "no checkpoint written on SIGTERM")
        got = set(ids)
        missing = set(expected) - got
        served_missing = fake.served_ids - got
        dups = dup_count(ids)
        print("\n[%s faults=%s] events=%d delivered=%d unique=%d missing=%d dups=%d torn=%d "
              "requests=%d faulted=%d late_missing=%d" % (
                  api, faults, len(expected), len(ids), len(got), len(missing), dups, torn,
                  len(fake.api_requests()),
                  sum(1 for r in fake.api_requests() if r["fault"]),
                  len(set(late) - got)), flush=True)
        self.assertEqual(len(served_missing), 0, "%d ids served by the API are not in the output"
                         % len(served_missing))
        self.assertEqual(len(missing), 0, "%d events never delivered (e.g. %s)"
                         % (len(missing), sorted(missing)[:3]))
        self.assertEqual(torn, 0, "torn lines in the output")
        if not faults:
            self.assertEqual(dups, 0, "duplicates in a fault-free run")
            self._check_requests()
        return dups

    def test_tail_legacy(self):
        self._tail("legacy", seed=11, faults=False)

    def test_tail_events(self):
        self._tail("events", seed=12, faults=False)

    def test_tail_legacy_faults(self):
        self._tail("legacy", seed=13, faults=True)

    def test_tail_events_faults(self):
        self._tail("events", seed=14, faults=True)

    def _once(self, api, seed, faults):
        fake = self._fake(seed)
        cfg, out, cp = write_config(self.dir, fake.url, api=api, page_size=PAGE,
                                    lookback="1h", overlap="60s")
        if faults:
            add_faults(fake)
        r = run(["-c", cfg, "--once"], timeout=110)
        self.assertFalse(r.timed_out, "--once did not finish in 110 s\n" + r.stderr[-3000:])
        self.assertNotIn(CANARY, r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids, torn = read_output(out)
        missing = set(fake.all_ids()) - set(ids)
        print("\n[once %s faults=%s] events=%d delivered=%d missing=%d dups=%d" % (
            api, faults, len(fake), len(ids), len(missing), dup_count(ids)), flush=True)
        self.assertEqual(len(missing), 0, "%d events missing after --once" % len(missing))
        self.assertTrue(os.path.exists(cp), "--once did not persist the checkpoint")
        with open(cp) as f:
            json.load(f)
        if not faults:
            self.assertEqual(dup_count(ids), 0)
            self._check_requests()
        # a second --once with nothing new delivers nothing again
        fake.clear_faults()
        n_before = len(ids)
        r = run(["-c", cfg, "--once"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids2, _ = read_output(out)
        self.assertEqual(len(ids2), n_before, "second --once re-delivered %d events"
                         % (len(ids2) - n_before))

    def test_once_legacy(self):
        self._once("legacy", seed=21, faults=False)

    def test_once_events_faults(self):
        self._once("events", seed=22, faults=True)

    def test_repeated_cursor_does_not_spin(self):
        for api in ("legacy", "events"):
            with self.subTest(api=api):
                if self.fake:
                    self.fake.stop()
                fake = self._fake(31, n=500)
                d = tempfile.mkdtemp(dir=self.dir)
                cfg, out, cp = write_config(d, fake.url, api=api, page_size=20)
                fake.inject("repeat_cursor")  # every cursor request repeats its cursor
                r = run(["-c", cfg, "--once"], timeout=60)
                n = len(fake.api_requests())
                self.assertFalse(r.timed_out, "--once spun on a repeated cursor (%d requests)"
                                 % n)
                self.assertLess(n, 300, "too many requests on a repeated cursor")
                self.assertNotIn(CANARY, r.stdout + r.stderr)


if __name__ == "__main__":
    main()
