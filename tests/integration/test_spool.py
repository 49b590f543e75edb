"""Per-sink disk spool: a sink that is down must not hold the checkpoint or the other sinks,
nothing is lost across kill -9 while events are spooled, and the spool replays in order once
the sink is back."""
import glob
import json
import os
import socket
import time
import unittest

from helpers import (Daemon, FakeSysdig, CANARY, main, need_bin, read_output, scratch_dir,
                     wait_for, write_config)
from post_server import UpDownReceiver  # (tests/fakeapi, on the path via helpers)


def _watermark(path):
    with open(path) as f:
        return json.load(f).get("watermark_ns")


@need_bin
class SpoolTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-spool-")
        self.fake = FakeSysdig(token=CANARY, seed=7)
        self.fake.generate(1500, span_s=1800)
        self.fake.start()
        self.rx = UpDownReceiver()

    def tearDown(self):
        self.fake.stop()
        self.rx.stop()

    def config(self):
        spool = os.path.join(self.dir, "spool-hook")
        extra = f"""  - name: hook
    type: webhook
    url: http://127.0.0.1:{self.rx.port}/ingest
    body: ndjson
    retry: {{ initial: 200ms, max: 1s }}
    spool: {{ path: {spool}, max_size: 64MiB }}
"""
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=100, poll_interval="1s")
        with open(cfg) as f:
            text = f.read()
        text = text.replace("log: {", extra + "log: {", 1)
        with open(cfg, "w") as f:
            f.write(text)
        return cfg, out, cp, spool

    def test_sink_down_spools_then_replays(self):
        cfg, out, cp, spool = self.config()
        backlog = set(self.fake.all_ids())
        d = Daemon(["-c", cfg], logdir=self.dir, tag="d1")
        try:
            # the healthy file sink gets everything although the webhook is down
            self.assertTrue(wait_for(lambda: backlog <= set(read_output(out)[0]), 60),
                            "file sink starved by a down webhook:\n" + d.stderr()[-2000:])
            self.assertTrue(wait_for(lambda: os.path.exists(cp) and
                                     _watermark(cp), 30),
                            "checkpoint did not move while a sink was down")
            self.assertTrue(glob.glob(os.path.join(spool, "*.seg")), "no spool segment")
            self.assertEqual(self.rx.ids, [])
            # crash while events sit in the spool, restart
            d.kill9()
            d = Daemon(["-c", cfg], logdir=self.dir, tag="d2")
            time.sleep(2)
            self.rx.up = True
            self.assertTrue(wait_for(lambda: backlog <= set(self.rx.ids), 60),
                            "%d events never reached the webhook after it came back\n%s"
                            % (len(backlog - set(self.rx.ids)), d.stderr()[-2000:]))
            self.assertIn("spool", d.stderr())
            self.assertTrue(wait_for(lambda: "spool drained" in d.stderr(), 30),
                            "spool never drained")
            rc, hung = d.term()
            self.assertEqual((rc, hung), (0, False), d.stderr()[-2000:])
            dups = len(self.rx.ids) - len(set(self.rx.ids))
            print("spool: %d events, webhook got %d (%d duplicates)"
                  % (len(backlog), len(self.rx.ids), dups))
        finally:
            if d.alive():
                d.kill9()


if __name__ == "__main__":
    main()
