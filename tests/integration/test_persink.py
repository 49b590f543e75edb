#!/usr/bin/python3
"""Per-sink progress in the checkpoint (docs/design.md "The checkpoint"):

- upgrade in place: a version-1 checkpoint written by the last release that had no per-sink
  part (tests/golden/checkpoint-v1.json, see UPGRADE below) is read as it was: the next run
  re-sends nothing it delivered and loses nothing, and writes version 2;
- a crash re-sends to each sink only what that sink had not confirmed: a file sink that
  confirmed every page while a webhook refused them all gets nothing twice after a SIGKILL,
  and the webhook gets everything once it is back;
- a sink removed from the configuration holds nothing back, and its progress is dropped; a
  sink added starts from the checkpoint's position (both logged); progress is matched by
  sink name, not by position in the configuration.
"""

import json
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, SRC, Daemon, FakeSysdig, dup_count, main, need_bin,  # noqa: E402
                     read_output, run, scratch_dir, wait_for, write_config)
from post_server import UpDownReceiver  # noqa: E402  (tests/fakeapi, on the path via helpers)

# How tests/golden/checkpoint-v1.json was made (by the release before version 2, commit
# b9b87a3): FakeSysdig(seed=1414).generate(300, span_s=3600, end_ns=UPGRADE_END_NS), then
# write_config(d, url, page_size=50, lookback="24h", overlap="10m") and `--once`: 300 events
# delivered, the window ended; recent_ids holds the 47 ids within the overlap.
UPGRADE_SEED = 1414
UPGRADE_END_NS = 1796432055 * 10 ** 9
FIXTURE = os.path.join(SRC, "tests", "golden", "checkpoint-v1.json")


def load(cp):
    with open(cp) as f:
        return json.load(f)


def ahead(cp, sink):
    """ids the checkpoint says sink confirmed beyond the common position."""
    try:
        return {x["id"] for x in load(cp)["sinks"][sink]["ids"]}
    except (OSError, ValueError, KeyError):
        return set()


def sinks_yaml(*sinks):
    text = "sinks:\n"
    for name, kind, where in sinks:
        if kind == "file":
            text += "  - name: %s\n    type: file\n    format: raw\n    path: %s\n" % (name, where)
        else:
            text += ("  - name: %s\n    type: webhook\n    format: raw\n    body: ndjson\n"
                     "    url: http://127.0.0.1:%d/ingest\n"
                     "    retry: { initial: 100ms, max: 300ms }\n" % (name, where))
    return text


def set_sinks(cfg, *sinks):
    """Replaces the sinks of a write_config() configuration."""
    with open(cfg) as f:
        text = f.read()
    head, rest = text.split("sinks:\n", 1)
    tail = rest[rest.index("log: {"):]
    with open(cfg, "w") as f:
        f.write(head + sinks_yaml(*sinks) + tail)


@need_bin
class UpgradeTest(unittest.TestCase):
    def test_version1_checkpoint_upgraded_in_place(self):
        tmp = scratch_dir(self, "sf-persink-up-")
        fake = FakeSysdig(token=CANARY, seed=UPGRADE_SEED)
        old = fake.generate(300, span_s=3600, end_ns=UPGRADE_END_NS)
        v1 = load(FIXTURE)
        self.assertEqual(v1["version"], 1)
        self.assertEqual(len(v1["recent_ids"]), 47)
        self.assertLessEqual({x["id"] for x in v1["recent_ids"]}, set(old),
                             "the fake API no longer serves the fixture's events")
        watermark = int(v1["watermark_ns"])
        # late events inside the overlap (not in recent_ids) and events after the watermark
        late = fake.add_events(20, start_ns=UPGRADE_END_NS + 1, end_ns=watermark - 1)
        new = fake.add_events(30, start_ns=watermark + 10 ** 9,
                              end_ns=time.time_ns() - 5 * 10 ** 9)
        fake.start()
        try:
            cfg, out, cp = write_config(tmp, fake.url, page_size=50, lookback="24h",
                                        overlap="10m")
            shutil.copy(FIXTURE, cp)
            r = run(["-c", cfg, "--once"], timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertIn("checkpoint version 1", r.stderr)
            ids, _ = read_output(out)
            self.assertEqual(dup_count(ids), 0)
            resent = set(ids) & set(old)
            self.assertFalse(resent, "%d events of the version-1 run re-sent (e.g. %s)"
                             % (len(resent), sorted(resent)[:3]))
            self.assertEqual(set(ids), set(late) | set(new))
            v2 = load(cp)
            self.assertEqual(v2["version"], 2)
            self.assertEqual(v2["sinks"], {"archive": {"ids": []}})
            self.assertGreater(int(v2["watermark_ns"]), watermark)
            self.assertEqual(int(v2["events_total"]), 300 + 50)
        finally:
            fake.stop()


@need_bin
class PerSinkTest(unittest.TestCase):
    def setUp(self):
        self.tmp = scratch_dir(self, "sf-persink-")
        self.fake = FakeSysdig(token=CANARY, seed=1415)
        self.all = set(self.fake.generate(300, span_s=1800))
        self.fake.start()
        self.rx = UpDownReceiver()

    def tearDown(self):
        self.fake.stop()
        self.rx.stop()

    def run_until_file_confirmed(self, cfg, out, cp):
        """Runs the daemon while the webhook refuses: the file sink confirms the pages in
        flight, the checkpoint's common position cannot move. Returns the daemon once the
        checkpoint lists what the file holds and nothing changes any more."""
        d = Daemon(["-c", cfg], logdir=self.tmp)
        state = {"n": -1, "since": time.time()}

        def settled():
            ids = set(read_output(out)[0])
            if len(ids) != state["n"]:
                state["n"], state["since"] = len(ids), time.time()
            return ids and ahead(cp, "archive") == ids and time.time() - state["since"] > 1.5

        self.assertTrue(wait_for(settled, 60), "the file sink's progress was not recorded:\n"
                        + d.stderr()[-3000:])
        c = load(cp)
        self.assertEqual(c["recent_ids"], [])  # the webhook holds every page
        self.assertEqual(ahead(cp, "slow"), set())
        return d

    def test_crash_resends_only_what_each_sink_had_not_confirmed(self):
        cfg, out, cp = write_config(self.tmp, self.fake.url, page_size=50, lookback="1h")
        set_sinks(cfg, ("archive", "file", os.path.join(self.tmp, "events.ndjson")),
                  ("slow", "webhook", self.rx.port))
        d = self.run_until_file_confirmed(cfg, out, cp)
        before = set(read_output(out)[0])
        d.kill9()
        self.rx.up = True
        d = Daemon(["-c", cfg], logdir=self.tmp, tag="after")
        ok = wait_for(lambda: set(self.rx.got()) >= self.all and
                      set(read_output(out)[0]) >= self.all, 60)
        rc, hung = d.term(30)
        self.assertTrue(ok, "not everything arrived after the restart:\n" + d.stderr()[-3000:])
        self.assertEqual(rc, 0, d.stderr()[-3000:])
        ids, _ = read_output(out)
        print("\n[persink] file sink: %d confirmed before the kill, %d records after, "
              "%d duplicates; webhook: %d records" % (len(before), len(ids), dup_count(ids),
                                                      len(self.rx.got())), flush=True)
        self.assertEqual(dup_count(ids), 0, "the file sink was sent again what it confirmed")
        self.assertEqual(dup_count(self.rx.got()), 0)
        self.assertEqual(set(ids), self.all)

    def test_removed_sink_dropped_added_sink_starts_at_position(self):
        cfg, out, cp = write_config(self.tmp, self.fake.url, page_size=50, lookback="1h")
        set_sinks(cfg, ("archive", "file", out), ("slow", "webhook", self.rx.port))
        d = self.run_until_file_confirmed(cfg, out, cp)
        before = set(read_output(out)[0])
        d.kill9()
        # the webhook is gone for good, a second file sink comes, listed first (progress is
        # matched by name, not by position)
        second = os.path.join(self.tmp, "second.ndjson")
        set_sinks(cfg, ("second", "file", second), ("archive", "file", out))
        r = run(["-c", cfg, "--once"], timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("sink slow is no longer configured", r.stderr)
        self.assertIn("sink second is new in this checkpoint", r.stderr)
        ids, _ = read_output(out)
        self.assertEqual(dup_count(ids), 0, "archive was sent again what it confirmed")
        self.assertEqual(set(ids), self.all)
        self.assertLess(len(before), len(self.all))
        # the common position never moved (the webhook held it): the new sink gets everything
        # from there, once
        ids2, _ = read_output(second)
        self.assertEqual(dup_count(ids2), 0)
        self.assertEqual(set(ids2), self.all)
        c = load(cp)
        self.assertEqual(sorted(c["sinks"]), ["archive", "second"])
        self.assertIsNotNone(c["watermark_ns"], "the removed sink still holds the checkpoint")
        self.assertEqual(c["sinks"]["archive"]["ids"], [])


if __name__ == "__main__":
    main()
