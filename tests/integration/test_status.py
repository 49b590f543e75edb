"""`sysdig-forwarder status`: what it shows and its exit status, with the daemon running (live
figures from server.listen) and stopped (the state on disk), built by running the daemon
against the fake API with a sink that is down (its events spool) and a sink that rejects
everything (dead letters). Checks the table, the --json object against the files themselves,
that status changes nothing on disk, and that no secret is printed."""
import glob
import json
import os
import re
import struct
import unittest

from helpers import (CANARY, Daemon, FakeSysdig, free_port, main, need_bin, read_output, run,
                     scratch_dir, wait_for, write_config)
from post_server import PostServer  # noqa: E402  (tests/fakeapi, on the path via helpers)


class Receiver:
    """Webhook receiver: POST /down answers 503 (retried: the events spool), /reject 400
    (permanent: dead letters), /ok 200."""

    def __init__(self):
        self.server = PostServer(self._post)
        self.url = self.server.url

    @staticmethod
    def _post(h):
        h.rfile.read(int(h.headers.get("Content-Length", "0")))
        code, body = {"/down": (503, b"busy"),
                      "/reject": (400, b"schema mismatch")}.get(h.path, (200, b"ok"))
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.server.stop()


def watermark(cp):
    if not os.path.exists(cp):
        return None
    with open(cp) as f:
        return json.load(f).get("watermark_ns")


def status(cfg, *extra):
    r = run(["status", "-c", cfg] + list(extra), timeout=30)
    assert not r.timed_out, "status hung"
    return r


def status_json(cfg):
    r = status(cfg, "--json")
    return r, json.loads(r.stdout)


def sink(js, name):
    return next(s for s in js["sinks"] if s["name"] == name)


def table_row(text, name):
    """The table's columns for sink name (split on runs of 2+ spaces)."""
    for line in text.splitlines():
        cols = re.split(r"\s{2,}", line.strip())
        if cols and cols[0] == name:
            return cols
    raise AssertionError("no row for %s in:\n%s" % (name, text))


def tree_state(d):
    """(path, size, mtime_ns) of every file under d."""
    out = []
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            out.append((p, st.st_size, st.st_mtime_ns))
    return sorted(out)


@need_bin
class StatusTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-status-")
        self.fake = FakeSysdig(token=CANARY, seed=11)
        self.fake.generate(300, span_s=1800)
        self.fake.start()
        self.rx = Receiver()
        self.port = free_port()

    def tearDown(self):
        self.fake.stop()
        self.rx.stop()

    def config(self, failing=True):
        self.spool = os.path.join(self.dir, "spool-hook")
        self.dl = os.path.join(self.dir, "dead-letters.ndjson")
        sinks = ""
        if failing:
            sinks = f"""  - name: hook
    type: webhook
    url: {self.rx.url}/down
    retry: {{ initial: 200ms, max: 1s }}
    spool: {{ path: {self.spool}, max_size: 64MiB }}
  - name: picky
    type: webhook
    url: {self.rx.url}/reject
"""
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=50,
                                    extra=f"server: {{ listen: 127.0.0.1:{self.port} }}\n")
        with open(cfg) as f:
            text = f.read()
        text = text.replace("log: {", sinks + "log: {", 1)
        with open(cfg, "w") as f:
            f.write(text)
        return cfg, out, cp

    def dead_lines(self):
        if not os.path.exists(self.dl):
            return []
        with open(self.dl) as f:
            return [json.loads(ln) for ln in f if ln.endswith("\n")]

    def test_failing_sinks_running_then_stopped(self):
        cfg, out, cp = self.config()
        backlog = set(self.fake.all_ids())
        d = Daemon(["-c", cfg], logdir=self.dir, tag="d1")
        try:
            self.assertTrue(wait_for(lambda: backlog <= set(read_output(out)[0]) and
                                     len(self.dead_lines()) == len(backlog) and
                                     watermark(cp), 60),
                            "the state was not built:\n" + d.stderr()[-3000:])
            # --- running: live figures
            r, js = status_json(cfg)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertTrue(js["daemon"]["running"])
            self.assertEqual(js["daemon"]["pid"], d.p.pid)
            self.assertTrue(js["live"]["reachable"], js["live"])
            self.assertFalse(js["live"]["ready"])
            self.assertTrue(any(c.startswith("sink:hook") for c in js["live"]["failing_checks"]),
                            js["live"])
            self.assertIsNotNone(js["live"]["lag_seconds"])
            self.assertFalse(js["healthy"])
            self.assertIs(sink(js, "hook")["up"], False)
            self.assertIs(sink(js, "archive")["up"], True)
            self.assertGreater(sink(js, "hook")["spool"]["events_live"], 0)
            self.assertEqual(sink(js, "picky")["dead_letters"], len(backlog))
            self.assertEqual(sink(js, "picky")["dead_lettered_total"], len(backlog))
            problems = "\n".join(js["problems"])
            self.assertIn("sink hook is down", problems)
            self.assertIn("not ready", problems)
            self.assertIn("events waiting in its spool", problems)
            self.assertIn("%d dead letters" % len(backlog), problems)
            self.assertNotIn("sink archive", problems)
            t = status(cfg)
            print("status, running:\n" + t.stdout)
            self.assertEqual(t.returncode, 1)
            self.assertIn("running (pid %d)" % d.p.pid, t.stdout)
            self.assertIn("NOT READY", t.stdout)
            self.assertEqual(table_row(t.stdout, "hook")[3], "DOWN")
            self.assertEqual(table_row(t.stdout, "archive")[3], "up")
            self.assertIn("UNHEALTHY", t.stdout)
            self.assertNotIn(CANARY, t.stdout + t.stderr + r.stdout + r.stderr)
            rc, hung = d.term()
            self.assertEqual((rc, hung), (0, False), d.stderr()[-2000:])
        finally:
            if d.alive():
                d.kill9()

        # --- stopped: the state on disk, checked against the files themselves
        before = tree_state(self.dir)
        r, js = status_json(cfg)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertFalse(js["daemon"]["running"])
        self.assertFalse(js["live"]["reachable"])
        with open(cp) as f:
            cpj = json.load(f)
        self.assertEqual(js["checkpoint"]["state"], "ok")
        self.assertEqual(js["checkpoint"]["watermark_ns"], cpj["watermark_ns"])
        self.assertGreater(js["checkpoint"]["lag_seconds"], 0)
        # every event waits in hook's spool (it never accepted one); none for the others
        self.assertEqual(sink(js, "hook")["spool"]["events_on_disk"], len(backlog))
        self.assertIsNone(sink(js, "archive")["spool"])
        lines = self.dead_lines()
        self.assertEqual(js["dead_letters"]["count"], len(lines))
        self.assertEqual(js["dead_letters"]["path"], self.dl)
        self.assertEqual(sink(js, "picky")["dead_letters"], len(lines))
        self.assertEqual(sink(js, "hook")["dead_letters"], 0)
        newest = js["dead_letters"]["newest"]
        self.assertEqual([e["id"] for e in newest], [ln["id"] for ln in lines[::-1][:5]])
        self.assertTrue(all(e["sink"] == "picky" and "schema mismatch" in e["reason"]
                            for e in newest), newest)
        problems = "\n".join(js["problems"])
        self.assertIn("sink hook: %d events waiting in its spool" % len(backlog), problems)
        self.assertIn("%d dead letters" % len(lines), problems)
        self.assertNotIn("is down", problems)
        t = status(cfg)
        print("status, stopped:\n" + t.stdout)
        self.assertEqual(t.returncode, 1)
        self.assertIn("not running", t.stdout)
        self.assertEqual(table_row(t.stdout, "hook")[3], "stopped")
        self.assertTrue(table_row(t.stdout, "hook")[5].startswith("%d (" % len(backlog)))
        self.assertEqual(table_row(t.stdout, "picky")[6], str(len(lines)))
        self.assertIn("schema mismatch", t.stdout)
        self.assertIn("watermark:", t.stdout)
        self.assertRegex(t.stdout, r"lag \d+[smhd]")
        self.assertNotIn(CANARY, t.stdout + t.stderr + r.stdout)
        # status wrote, cut and removed nothing
        self.assertEqual(tree_state(self.dir), before)

        # a torn tail (a crash mid-append) is not counted, and not cut off either
        seg = sorted(glob.glob(os.path.join(self.spool, "*.seg")))[-1]
        with open(seg, "ab") as f:
            # a whole header (magic "SFSP", raw_len 100, rec_len 0, crc) and 10 of 100 bytes
            f.write(struct.pack("<IIII", 0x50534653, 100, 0, 0) + b"x" * 10)
        size = os.path.getsize(seg)
        r, js = status_json(cfg)
        self.assertEqual(sink(js, "hook")["spool"]["events_on_disk"], len(backlog))
        self.assertEqual(os.path.getsize(seg), size)

        # the operator deals with them: spool and dead letters gone -> healthy, stopped
        os.rename(self.dl, self.dl + ".1")
        for p in glob.glob(os.path.join(self.spool, "*")):
            os.unlink(p)
        r = status(cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("healthy (stopped, nothing pending)", r.stdout)

    def test_healthy_running_then_stopped(self):
        cfg, out, cp = self.config(failing=False)
        backlog = set(self.fake.all_ids())
        d = Daemon(["-c", cfg], logdir=self.dir, tag="d1")
        try:
            self.assertTrue(wait_for(lambda: backlog <= set(read_output(out)[0]) and
                                     watermark(cp), 60),
                            d.stderr()[-3000:])
            # ready once a poll succeeded
            self.assertTrue(wait_for(lambda: status(cfg).returncode == 0, 20),
                            status(cfg).stdout)
            r, js = status_json(cfg)
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertTrue(js["healthy"])
            self.assertEqual(js["problems"], [])
            self.assertTrue(js["live"]["ready"])
            self.assertIs(sink(js, "archive")["up"], True)
            self.assertEqual(sink(js, "archive")["delivered_total"], len(backlog))
            self.assertLess(js["live"]["last_successful_poll_seconds_ago"], 30)
            t = status(cfg)
            self.assertIn("ready", t.stdout)
            self.assertIn("last poll:", t.stdout)
            self.assertEqual(table_row(t.stdout, "archive")[3], "up")
            self.assertTrue(t.stdout.rstrip().endswith("healthy"), t.stdout)
            rc, _ = d.term()
            self.assertEqual(rc, 0)
        finally:
            if d.alive():
                d.kill9()
        r = status(cfg)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("healthy (stopped, nothing pending)", r.stdout)

    def test_running_without_answer_is_unhealthy(self):
        """A daemon holds the checkpoint but its server does not answer: not verifiable."""
        cfg, out, cp = self.config(failing=False)
        d = Daemon(["-c", cfg], logdir=self.dir, tag="d1")
        try:
            self.assertTrue(wait_for(lambda: os.path.exists(cp), 30), d.stderr()[-2000:])
            other = free_port()
            with open(cfg) as f:
                text = f.read()
            with open(cfg, "w") as f:
                f.write(text.replace(str(self.port), str(other)))
            r, js = status_json(cfg)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertTrue(js["daemon"]["running"])
            self.assertIn("does not answer", "\n".join(js["problems"]))
        finally:
            d.term()

    def test_usage_and_config_errors(self):
        r = run(["status"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("-c FILE", r.stderr)
        r = run(["status", "-c", os.path.join(self.dir, "missing.yaml")])
        self.assertEqual(r.returncode, 2)
        bad = os.path.join(self.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write("source: { url: 5\n")
        self.assertEqual(run(["status", "-c", bad]).returncode, 2)
        cfg, _, _ = self.config(failing=False)
        self.assertEqual(run(["status", "-c", cfg, "--bogus"]).returncode, 2)
        self.assertEqual(run(["status", "-c", cfg, "-t", "0"]).returncode, 2)
        # a corrupt checkpoint is a problem, not a crash
        with open(os.path.join(self.dir, "checkpoint.json"), "w") as f:
            f.write("{not json")
        r, js = status_json(cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(js["checkpoint"]["state"], "error")
        self.assertIn("corrupt", "\n".join(js["problems"]))


if __name__ == "__main__":
    main()
