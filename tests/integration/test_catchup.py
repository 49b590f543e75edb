#!/usr/bin/python3
"""Parallel catch-up (issue 13): a backlog window of more than two pages is cut into time
slices fetched concurrently, each with its own cursor (source.max_concurrency).

- The slices are disjoint (but for their boundary instants) and cover the window: every event
  is delivered, exactly once (boundary duplicates are dropped by id).
- At most max_concurrency requests are in flight, and more than one is.
- The checkpoint only ever describes a delivered prefix: sampled all through a parallel
  catch-up, every event at or before its watermark is already in the sink; and a daemon killed
  (SIGKILL) again and again during it loses nothing.
- HTTP 429 halves the concurrency and nothing is sent before its Retry-After; requests are paced
  under the API's X-RateLimit-Limit.
"""

import json
import os
import random
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, NS, Daemon, FakeSysdig, daemon_env, main,  # noqa: E402
                     need_bin, read_output, run, scratch_dir, wait_for, write_config)

API_PATH = {"legacy": "/api/v1/secureEvents", "events": "/secure/events/v1/events"}


def load(cp):
    try:
        with open(cp) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@need_bin
class CatchupTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-catchup-")
        self.fake = None

    def tearDown(self):
        if self.fake:
            self.fake.stop()

    def backlog(self, n, seed, minutes=50, rate_limit=600):
        self.fake = FakeSysdig(token=CANARY, seed=seed, rate_limit=rate_limit)
        self.fake.start()
        now = time.time_ns()
        return self.fake.add_events(n, start_ns=now - minutes * 60 * NS, end_ns=now - 2 * 60 * NS)

    def test_slices_disjoint_complete_concurrent(self):
        for api in ("legacy", "events"):
            with self.subTest(api=api):
                want = self.backlog(1500, seed=61 if api == "legacy" else 62)
                delay = 0.2
                self.fake.inject("delay", seconds=delay)
                d = scratch_dir(self, "sf-catchup-%s-" % api)
                cfg, out, cp = write_config(d, self.fake.url, api=api, page_size=50,
                                            lookback="1h", extra_source="  max_concurrency: 4\n")
                r = run(["-c", cfg, "--once"], timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                self.assertNotIn(CANARY, r.stdout + r.stderr)
                ids, torn = read_output(out)
                self.assertEqual(torn, 0)
                self.assertEqual(sorted(ids), sorted(want), "not every event, or not once each")
                reqs = [x for x in self.fake.api_requests(API_PATH[api]) if x["status"] == 200]
                by_time = [x for x in reqs if "cursor" not in x["params"]]
                windows = [(int(x["params"]["from"][0]), int(x["params"]["to"][0]))
                           for x in by_time]
                probe, slices = windows[0], sorted(windows[1:])
                # no fault: every page is asked for once (a lane waits for its page to be
                # parsed and handled before it follows the cursor)
                cursors = [x["params"]["cursor"][0] for x in reqs if "cursor" in x["params"]]
                self.assertEqual(len(cursors), len(set(cursors)), "a cursor was fetched twice")
                self.assertGreaterEqual(len(slices), 2, "the backlog window was not cut")
                # the slices (and the halves idle lanes took over) cover the probed window
                # without a gap; the last slice starts with the probe page itself
                self.assertEqual(slices[0][0], probe[0])
                reach = slices[0][1]
                for a0, a1 in slices[1:]:
                    self.assertLessEqual(a0, reach, "gap between slices %r" % slices)
                    reach = max(reach, a1)
                self.assertLess(slices[-1][0], probe[1])
                # concurrency: every request lasts >= delay, so starts closer than that are
                # concurrent; never more than max_concurrency in any such span
                starts = sorted(x["t"] for x in reqs)
                most = max(sum(1 for u in starts if t <= u < t + delay * 0.95) for t in starts)
                # the slices start together: max_concurrency requests in flight at once
                self.assertEqual(most, 4, "not max_concurrency (4) requests in flight at once")
                # in one go: the first request of every slice (the last slice follows the
                # probe's cursor) is sent by the same pump as the others, not one slice after
                # another as pages come back
                firsts = sorted(x["t"] for x in reqs)[1:5]
                self.assertLess(firsts[-1] - firsts[0], delay / 2,
                                "the slices did not start together: %r" % firsts)
                c = load(cp)
                self.assertIsNone(c.get("window"), c)
                self.fake.stop()
                self.fake = None

    def test_memory_bound_narrows_concurrency(self):
        """pipeline.max_inflight_bytes below two pages: however many slices the window is cut
        into, one request at a time is in flight (each counted at the size of the last pages),
        and everything still arrives."""
        want = self.backlog(600, seed=64)
        delay = 0.2
        self.fake.inject("delay", seconds=delay)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="legacy", page_size=50,
                                    lookback="1h", extra_source="  max_concurrency: 4\n",
                                    extra="pipeline: { max_inflight_bytes: 64KiB }\n")
        r = run(["-c", cfg, "--once"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids, torn = read_output(out)
        self.assertEqual(sorted(ids), sorted(want))
        reqs = [x for x in self.fake.api_requests(API_PATH["legacy"]) if x["status"] == 200]
        self.assertGreater(len(reqs), 8)
        starts = sorted(x["t"] for x in reqs)
        most = max(sum(1 for u in starts if t <= u < t + delay * 0.95) for t in starts)
        self.assertEqual(most, 1, "more requests in flight than pipeline.max_inflight_bytes allows")
        self.assertIn("concurrent slices", r.stderr)

    def test_memory_bound_pauses_answers_not_requests(self):
        """pipeline.max_inflight_bytes of about two pages: every slice still has its request in
        flight (they hold no memory while they wait for the API); the answers that arrive
        together beyond the bound are paused, never buffered past it, and resumed as pages
        leave the pipeline; nothing times out waiting, and everything arrives."""
        want = self.backlog(1200, seed=65)
        delay = 0.2
        self.fake.inject("delay", seconds=delay)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="legacy", page_size=50,
                                    lookback="1h",
                                    extra_source="  max_concurrency: 4\n",
                                    extra="pipeline: { max_inflight_bytes: 400KiB }\n")
        # a sink slower than the API (each fsync of its file takes 150 ms: the failfsync shim's
        # slow mode), so pages stay in the pipeline while the next answers arrive: without it,
        # whether an answer meets the bound depended on how fast the first pages were written
        shim = os.environ.get("SF_FAILFSYNC_LIB")
        self.assertTrue(shim and os.path.exists(shim), "SF_FAILFSYNC_LIB (the shim) is not built")
        env = daemon_env(LD_PRELOAD=shim, SF_SLOW_FSYNC=out, SF_SLOW_FSYNC_MS="150")
        r = run(["-c", cfg, "--once", "--log-level", "debug"], timeout=120, env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids, torn = read_output(out)
        self.assertEqual(sorted(ids), sorted(want))
        reqs = [x for x in self.fake.api_requests(API_PATH["legacy"]) if x["status"] == 200]
        starts = sorted(x["t"] for x in reqs)
        most = max(sum(1 for u in starts if t <= u < t + delay * 0.95) for t in starts)
        self.assertGreaterEqual(most, 3, "requests narrowed by memory they do not hold yet")
        paused = re.findall(r"answer paused: (\d+) bytes buffered \+ (\d+) > "
                            r"pipeline.max_inflight_bytes (\d+)", r.stderr)
        self.assertTrue(paused, "no answer was paused although 4 pages of ~185 KB met a "
                                "400 KiB bound")
        for held, asked, bound in paused:
            self.assertEqual(int(bound), 400 * 1024)
            # (a page handed on is counted at its events' size and records, a few bytes per
            # event more than its body was: within 16 KiB of the bound for these pages)
            self.assertLessEqual(int(held), int(bound) + 16 * 1024,
                                 "buffered past the bound before pausing")
        self.assertIn("answer resumed", r.stderr)
        self.assertNotIn("waited for memory until its request timed out", r.stderr)

    def test_memory_bound_with_compressed_answers(self):
        """Gzip'd pages: Content-Length is the compressed size, a fraction of the page kept.
        Each answer is counted at the larger of its Content-Length and the recent page size
        before its first byte and then kept whole, so answers paused under the bound are never
        half-kept waiting for memory they hold themselves: the catch-up completes with nothing
        timing out."""
        want = self.backlog(1200, seed=67)
        self.fake.gzip = True
        self.fake.inject("delay", seconds=0.2)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="legacy", page_size=50,
                                    lookback="1h", extra_source="  max_concurrency: 8\n",
                                    extra="pipeline: { max_inflight_bytes: 400KiB }\n")
        r = run(["-c", cfg, "--once", "--log-level", "debug"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(read_output(out)[0]), sorted(want))
        self.assertIn("answer paused", r.stderr)
        self.assertNotIn("waited for memory until its request timed out", r.stderr)
        self.assertNotIn("API request failed", r.stderr)

    def test_checkpoint_is_always_a_delivered_prefix(self):
        """Sampled through a parallel catch-up: every event at or before the watermark is in
        the sink already (a slice's end must not move the watermark while others are still
        being fetched)."""
        self.backlog(3000, seed=63, minutes=55)
        self.fake.inject("delay", seconds=0.05)
        # windows of 16 pages per slice (20 x 6 x 16 = 1,920 events): the backlog takes two
        cfg, out, cp = write_config(self.dir, self.fake.url, api="legacy", page_size=20,
                                    lookback="1h", overlap="10s",
                                    extra_source="  max_concurrency: 6\n"
                                                 "  max_window_events: 1200\n")
        ts = {i: self.fake.event(i).ts_ns for i in self.fake.all_ids()}
        d = Daemon(["-c", cfg], env=daemon_env(), logdir=self.dir)
        self.addCleanup(lambda: d.alive() and d.kill9())
        checked = 0
        deadline = time.time() + 90
        while time.time() < deadline:
            c = load(cp)
            if c and c.get("watermark_ns"):
                wm = int(c["watermark_ns"])
                got = set(read_output(out)[0])
                missing = [i for i, t in ts.items() if t <= wm and i not in got]
                self.assertEqual(missing, [], "the checkpoint moved past undelivered events "
                                 "(watermark %d, %d missing)" % (wm, len(missing)))
                checked += 1
                if len(got) >= len(ts) and c.get("window") is None:
                    break
            time.sleep(0.05)
        self.assertGreater(checked, 3)
        self.assertEqual(set(read_output(out)[0]), set(ts))
        self.assertIn("concurrent slices", d.stderr())
        rc, hung = d.term()
        self.assertFalse(hung)

    def test_sigkill_during_parallel_catchup_loses_nothing(self):
        want = set(self.backlog(2500, seed=64, minutes=55))
        self.fake.inject("delay", seconds=0.05)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="events", page_size=50,
                                    lookback="1h",
                                    extra_source="  max_concurrency: 8\n"
                                                 "  max_window_events: 1500\n")
        rng = random.Random(64)
        kills = 0
        for _ in range(4):
            d = Daemon(["-c", cfg], env=daemon_env(), logdir=self.dir, tag="k%d" % kills)
            time.sleep(rng.uniform(0.6, 1.6))
            d.kill9()
            kills += 1
            if set(read_output(out)[0]) >= want:
                break
        d = Daemon(["-c", cfg], env=daemon_env(), logdir=self.dir, tag="last")
        ok = wait_for(lambda: set(read_output(out)[0]) >= want, 90)
        ids, _ = read_output(out)
        rc, hung = d.term()
        self.assertFalse(hung)
        self.assertTrue(ok, "lost %d events after %d kills" % (len(want - set(ids)), kills))
        # re-sent after each kill: at most what was in flight, not the backlog again
        self.assertLess(len(ids) - len(want), kills * 1500 + 1, "too many re-sent")

    def test_restart_resumes_what_is_left_of_each_slice(self):
        """Stopped in the middle of a window fetched in slices, the checkpoint records the
        slices left (window.slices, each down to the oldest time delivered in it) and lists
        only the ids a restart may read again, not every id of the window; the next run reads
        only what is left of each slice and delivers every event exactly once."""
        want = set(self.backlog(3000, seed=66, minutes=55))
        self.fake.inject("delay", seconds=0.15)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="events", page_size=50,
                                    lookback="1h",
                                    extra_source="  max_concurrency: 4\n"
                                                 "  max_window_events: 4000\n")
        d = Daemon(["-c", cfg], env=daemon_env(), logdir=self.dir, tag="first")

        def mid_window():
            c = load(cp)
            w = c and c.get("window")
            return w and len([s for s in w.get("slices", []) if s["low_ns"]]) >= 2 and \
                len(read_output(out)[0]) >= 600
        ok = wait_for(mid_window, 60, interval=0.05)
        rc, hung = d.term()
        self.assertTrue(ok, "never saw a window in slices with progress: %r" % load(cp))
        self.assertFalse(hung)
        c = load(cp)
        delivered = read_output(out)[0]
        self.assertEqual(len(delivered), len(set(delivered)))
        w = c["window"]
        self.assertTrue(w and w.get("slices"), "stopped outside the window: %r" % w)
        # the ids a restart may read again: the slices' low ends and the next window's overlap
        # (1 minute), not the hundreds delivered
        self.assertLess(len(c["recent_ids"]), 60,
                        "%d ids listed for %d delivered" % (len(c["recent_ids"]), len(delivered)))
        before = len(self.fake.api_requests(API_PATH["events"]))
        r = run(["-c", cfg, "--once"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("what is left of its %d slices" % len(w["slices"]), r.stderr)
        ids = read_output(out)[0]
        self.assertEqual(set(ids), want, "lost %d" % len(want - set(ids)))
        self.assertEqual(len(ids), len(want), "%d re-sent after a clean stop" %
                         (len(ids) - len(want)))
        # what the second run read by time lies within the slices left
        reqs = self.fake.api_requests(API_PATH["events"])[before:]
        for x in reqs:
            if "cursor" in x["params"] or "from" not in x["params"]:
                continue
            lo, hi = int(x["params"]["from"][0]), int(x["params"]["to"][0])
            if hi <= int(w["to_ns"]):
                self.assertTrue(any(int(s["from_ns"]) <= lo and
                                    hi <= int(s["low_ns"] or s["to_ns"]) for s in w["slices"]),
                                "read [%d, %d] outside the slices left %r" % (lo, hi, w["slices"]))

    def test_windows_in_slices_forget_ids_but_not_the_overlap(self):
        """Across backlog windows cut into slices, each window re-reads the last `overlap` of
        the one before; while it is fetched the seen set drops the ids no lane can be served
        again (its memory follows the slices' edges, not the window), but never the previous
        window's ids that slice 0 has still to pass: every event is delivered exactly once."""
        want = self.backlog(6000, seed=67, minutes=600)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="events", page_size=50,
                                    lookback="11h",
                                    extra_source="  max_concurrency: 4\n"
                                                 "  max_window_events: 2000\n")
        r = run(["-c", cfg, "--once", "--log-level", "debug"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertGreaterEqual(r.stderr.count("fetching it in 4 concurrent slices"), 2,
                                r.stderr[-3000:])
        ids = read_output(out)[0]
        self.assertEqual(set(ids), set(want), "lost %d" % len(set(want) - set(ids)))
        self.assertEqual(len(ids), len(want), "%d delivered twice" % (len(ids) - len(want)))
        # windows of ~2,400 events; what is kept: the slices' low ends and the overlaps (60 s,
        # ~10 events at this density), within 60 s above each low
        kept = [int(k) for k in re.findall(r"forgot \d+ ids no slice reads again, (\d+) kept",
                                           r.stderr)]
        self.assertGreaterEqual(len(kept), 4, "the seen set was never pruned")
        self.assertLess(max(kept), 150, kept)

    def test_dense_backlog_within_the_dedup_bound(self):
        """A dense account (20 events/s: the 60 s overlap holds 1,200 events) against a small
        dedup_max_ids (2,000): the seen set must hold both ends' overlaps while a window is
        fetched in slices, so windows stay under half of it; nothing is evicted that a slice
        still reads, and every event is delivered exactly once."""
        self.fake = FakeSysdig(token=CANARY, seed=71, rate_limit=6000)
        self.fake.start()
        now = time.time_ns()
        want = self.fake.add_events(6000, start_ns=now - 7 * 60 * NS, end_ns=now - 2 * 60 * NS)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="events", page_size=50,
                                    lookback="10m",
                                    extra_source="  max_concurrency: 4\n"
                                                 "  max_window_events: 2000\n"
                                                 "  dedup_max_ids: 2000\n")
        r = run(["-c", cfg, "--once"], timeout=240)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("concurrent slices", r.stderr)
        ids = read_output(out)[0]
        self.assertEqual(set(ids), set(want), "lost %d" % len(set(want) - set(ids)))
        self.assertEqual(len(ids), len(want), "%d delivered twice" % (len(ids) - len(want)))

    def test_429_halves_concurrency_and_waits(self):
        want = self.backlog(1200, seed=65)
        # (faults apply first-match in order: 12 slow answers, two 429s while the slices are
        # being fetched, then slow answers again)
        self.fake.inject("delay", count=12, seconds=0.05)
        self.fake.inject("429", count=2, retry_after=2)
        self.fake.inject("delay", seconds=0.05)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="legacy", page_size=40,
                                    lookback="1h", retry_initial="50ms",
                                    extra_source="  max_concurrency: 8\n")
        r = run(["-c", cfg, "--once", "--log-level", "debug"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(read_output(out)[0]), sorted(want))
        self.assertIn("rate limited: concurrency 8 -> 4", r.stderr)
        reqs = self.fake.api_requests(API_PATH["legacy"])
        first429 = min(x["t"] for x in reqs if x["status"] == 429)
        # nothing new went out during the Retry-After of the first 429 (requests already in
        # flight when it came may still be answered)
        started = [x["t"] for x in reqs if first429 + 0.3 < x["t"] < first429 + 1.9]
        self.assertEqual(started, [], "requests sent during Retry-After")

    def test_paced_under_the_rate_limit(self):
        # 300 requests per minute advertised: 5 per second once the burst of max_concurrency
        # tokens is used, whatever the concurrency allows
        want = self.backlog(2000, seed=66, rate_limit=300)
        cfg, out, cp = write_config(self.dir, self.fake.url, api="events", page_size=50,
                                    lookback="1h", extra_source="  max_concurrency: 8\n")
        r = run(["-c", cfg, "--once"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(read_output(out)[0]), sorted(want))
        starts = sorted(x["t"] for x in self.fake.api_requests(API_PATH["events"]))
        self.assertGreater(len(starts), 30)
        rate = (300 - 8) / 60.0
        for span in (1.0, 3.0):
            most = max(sum(1 for u in starts if t <= u < t + span) for t in starts)
            # the first request and the burst are free; then the refill rate
            self.assertLessEqual(most, 1 + 8 + rate * span + 1,
                                 "%d requests in %.0f s: over X-RateLimit-Limit" % (most, span))


if __name__ == "__main__":
    main()
