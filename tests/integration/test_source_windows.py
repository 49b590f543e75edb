#!/usr/bin/python3
"""The source's windows against the fake API (both api kinds), small and fast: a window is paged
by the older-events cursor, each page asked for once; the next window re-reads the overlap, so a
late arrival inside it is delivered while what was already delivered is dropped (within one
process and across a restart, from the checkpoint's ids)."""

import json
import math
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, EVENTS_PATH, LEGACY_PATH, NS, Daemon, FakeSysdig,  # noqa: E402
                     OutputReader, dup_count, main, need_bin, read_output, run, scratch_dir,
                     wait_for, write_config)

API_PATH = {"legacy": LEGACY_PATH, "events": EVENTS_PATH}


@need_bin
class SourceWindowTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-source-win-")
        self.fake = None

    def tearDown(self):
        if self.fake:
            self.fake.stop()

    def _fake(self, seed):
        if self.fake:
            self.fake.stop()
        self.fake = FakeSysdig(token=CANARY, seed=seed)
        self.fake.start()
        return self.fake

    def _run(self, args, timeout=60):
        r = run(args, timeout=timeout)
        self.assertFalse(r.timed_out, "%r did not finish in %d s" % (args, timeout))
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertNotIn(CANARY, r.stdout + r.stderr)
        return r

    def test_window_is_paged_by_cursor_each_page_once(self):
        n, page = 230, 20
        for api in ("legacy", "events"):
            with self.subTest(api=api):
                fake = self._fake(41)
                now = time.time_ns()
                want = fake.add_events(n, start_ns=now - 30 * 60 * NS, end_ns=now - 5 * 60 * NS)
                d = tempfile.mkdtemp(dir=self.dir)
                # one cursor per window (concurrent slices: test_catchup.py)
                cfg, out, _ = write_config(d, fake.url, api=api, page_size=page,
                                           extra_source="  max_concurrency: 1\n")
                self._run(["-c", cfg, "--from", "-40m", "--to", "-1m"])
                ids, torn = read_output(out)
                self.assertEqual(torn, 0)
                self.assertEqual(sorted(ids), sorted(want), "the window was not fully delivered")
                reqs = fake.api_requests(API_PATH[api])
                self.assertTrue(reqs)
                self.assertFalse([r for r in reqs if r["status"] != 200], reqs[:3])
                # the first page by time, every further one by the cursor the API returned
                self.assertNotIn("cursor", reqs[0]["params"])
                self.assertIn("from", reqs[0]["params"])
                for r in reqs[1:]:
                    self.assertIn("cursor", r["params"], "a later page was not asked by cursor")
                    self.assertNotIn("from", r["params"])
                    self.assertNotIn("to", r["params"])
                cursors = [r["params"]["cursor"][-1] for r in reqs[1:]]
                self.assertEqual(len(cursors), len(set(cursors)), "a cursor was sent twice")
                # no event was asked for twice: one pass over the window
                served = [i for r in reqs for i in r["ids"]]
                self.assertEqual(dup_count(served), 0, "the API was asked for the same events "
                                 "%d times more than once" % dup_count(served))
                self.assertLessEqual(len(reqs), math.ceil(n / page) + 1,
                                     "%d requests for %d pages" % (len(reqs), n / page))

    def test_restart_rereads_the_overlap_delivers_only_the_new(self):
        for api in ("legacy", "events"):
            with self.subTest(api=api):
                fake = self._fake(42)
                now = time.time_ns()
                fake.add_events(150, start_ns=now - 10 * 60 * NS, end_ns=now - 60 * NS)
                recent = set(fake.add_events(30, start_ns=now - 40 * NS, end_ns=now - NS))
                d = tempfile.mkdtemp(dir=self.dir)
                cfg, out, cp = write_config(d, fake.url, api=api, page_size=25, lookback="1h",
                                            overlap="60s")
                self._run(["-c", cfg, "--once"])
                first, _ = read_output(out)
                self.assertEqual(sorted(first), sorted(fake.all_ids()))
                with open(cp) as f:
                    watermark = int(json.load(f)["watermark_ns"])  # a string of ns
                self.assertGreater(watermark, now - NS)
                # a late arrival: its event time is before the watermark, inside the overlap
                late = fake.add_event(ts_ns=watermark - 20 * NS)
                fake.reset_requests()
                self._run(["-c", cfg, "--once"])
                ids, torn = read_output(out)
                self.assertEqual(torn, 0)
                served = {i for r in fake.api_requests() for i in r["ids"]}
                # the overlap was read again: the dedup (not the window) dropped the old ids
                self.assertTrue(recent & served, "the second run did not re-read the overlap")
                self.assertEqual(ids[len(first):], [late],
                                 "second run: expected only the late arrival")

    def test_follow_overlapping_windows_deliver_each_event_once(self):
        fake = self._fake(43)
        now = time.time_ns()
        fake.add_events(60, start_ns=now - 5 * 60 * NS, end_ns=now - NS)
        cfg, out, _ = write_config(self.dir, fake.url, api="events", page_size=25,
                                   poll_interval="1s", lookback="1h", overlap="60s")
        d = Daemon(["-c", cfg], logdir=self.dir)
        reader = OutputReader(out)
        try:
            for _ in range(3):  # every poll's window overlaps the last minute again
                fake.add_events(10, late_s=2)
                want = set(fake.all_ids())
                self.assertTrue(wait_for(lambda: not d.alive() or want <= set(reader.poll()),
                                         30), "not delivered within 30 s")
                self.assertTrue(d.alive(), d.stderr()[-3000:])
                time.sleep(1.5)
            windows = len([r for r in fake.api_requests() if "from" in r["params"]])
        finally:
            rc, hung = d.term(20)
        self.assertFalse(hung)
        self.assertEqual(rc, 0, d.stderr()[-3000:])
        ids, torn = read_output(out)
        self.assertEqual(torn, 0)
        self.assertGreaterEqual(windows, 4, "the daemon did not poll several windows")
        self.assertGreater(fake.served_count, len(fake.served_ids),
                           "no window re-read an event: the test did not exercise the dedup")
        self.assertEqual(set(ids), set(fake.all_ids()))
        self.assertEqual(dup_count(ids), 0, "an event was delivered twice")


if __name__ == "__main__":
    main()
