#!/usr/bin/python3
"""Durability guarantees that only show at the system-call level or under timing:

- fsync before the checkpoint moves: an strace of a --once run shows that every write to the
  file sink's output, the spool and the dead-letter file is fsync'd before the next rename of
  the checkpoint (fsync: always);
- fsync failing with EIO (an LD_PRELOAD shim, tests/shim/failfsync.c) makes the file sink,
  the spool and the dead-letter file report an error, and the checkpoint stays where it was;
  a later run without the fault delivers everything;
- a 429's Retry-After (source) and a 429/503's Retry-After (HTTP sinks) are honoured whatever
  retry.initial says.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, Daemon, FakeSysdig, daemon_env, main, need_bin,  # noqa: E402
                     read_output, run, scratch_dir, wait_for, write_config)

SHIM = os.environ.get("SF_FAILFSYNC_LIB")
STRACE = shutil.which("strace")


class Hook:
    """A webhook receiver answering every POST with a fixed status (200, 400, ...)."""

    def __init__(self, status=200, headers=None):
        self.status = status
        self.headers = headers or {}
        self.lock = threading.Lock()
        self.log = []  # (time, status, ids)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ids = [json.loads(ln)["id"] for ln in raw.decode().split("\n") if ln.strip()]
                with outer.lock:
                    n = len(outer.log)
                    st, hdrs = outer.answer(n)
                    outer.log.append((time.time(), st, ids))
                body = b"ok" if st < 300 else b"refused"
                self.send_response(st)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def answer(self, n):
        """(status, headers) for the n-th request (0-based); subclasses script faults."""
        return self.status, self.headers

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def add_sinks(cfg, sinks_yaml, extra=""):
    """Appends sinks after the file sink write_config made, and top-level keys."""
    with open(cfg) as f:
        text = f.read()
    text = text.replace("log: {", sinks_yaml + extra + "log: {", 1)
    with open(cfg, "w") as f:
        f.write(text)


def checkpoint(cp):
    if not os.path.exists(cp):
        return None
    with open(cp) as f:
        return json.load(f)


def delivered_by_checkpoint(cp):
    """events_total of the checkpoint (0 when there is none): events it says were delivered."""
    c = checkpoint(cp)
    return int(c.get("events_total", 0)) if c else 0


# ------------------------------------------------------------------------------- strace
_FD = re.compile(r"^(\d+)<([^>]*)>")
_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')
WRITES = ("write", "writev", "pwrite64", "pwritev")


def parse_strace(path):
    """Yields (syscall, args text, result text) from `strace -f -y` output, joining
    '<unfinished ...>' lines with their '<... resumed>' halves."""
    pending = {}
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^(?:\[pid\s+)?(\d+)\]?\s+(.*)$", line)
            if not m:
                continue
            pid, rest = m.group(1), m.group(2)
            if rest.endswith("<unfinished ...>"):
                pending[pid] = rest[: -len("<unfinished ...>")]
                continue
            r = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", rest)
            if r:
                rest = pending.pop(pid, r.group(1) + "(") + r.group(2)
            c = re.match(r"^(\w+)\((.*)\)\s*=\s*(-?\d+)", rest)
            if c:
                yield c.group(1), c.group(2), int(c.group(3))


def written_bytes(args, result):
    """The bytes a write/writev wrote, from strace -xx output (every byte as \\xHH)."""
    data = b"".join(bytes.fromhex(s.replace("\\x", "")) for s in _STR.findall(args))
    return data[:result]


def unhex(s):
    """strace -xx text (\\xHH escapes) back to a str."""
    return bytes.fromhex(s.replace("\\x", "")).decode("utf-8", "replace") if "\\x" in s else s


def spool_records(data):
    """Number of spool records (16-byte header: magic "SFSP", raw len, record len, crc)."""
    n, off = 0, 0
    while off + 16 <= len(data):
        if data[off:off + 4] != b"SFSP":
            break
        rl = int.from_bytes(data[off + 4:off + 8], "little")
        cl = int.from_bytes(data[off + 8:off + 12], "little")
        off += 16 + rl + cl
        n += 1
    return n


@need_bin
class FsyncOrderTest(unittest.TestCase):
    """fsync: always means fsync'd before the checkpoint says delivered: every checkpoint
    written counts only events that the file sink, the spool and the dead-letter file had
    each fsync'd before the checkpoint's content was written (an strace of a --once run)."""

    def setUp(self):
        if not STRACE:
            self.fail("strace is not installed (scripts/install-deps.sh installs it)")
        self.dir = scratch_dir(self, "sf-durability-")
        self.fake = FakeSysdig(token=CANARY, seed=5)
        self.fake.generate(400, span_s=1800)
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.bad = Hook(400)  # every event dead-lettered
        self.addCleanup(self.bad.stop)

    def test_writes_are_fsynced_before_the_checkpoint_counts_them(self):
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=50)
        spool = os.path.join(self.dir, "spool-down")
        dl = os.path.join(self.dir, "dead.ndjson")
        add_sinks(cfg, f"""  - name: rejecting
    type: webhook
    url: {self.bad.url}/
    body: ndjson
  - name: down
    type: webhook
    url: http://127.0.0.1:1/
    body: ndjson
    retry: {{ initial: 100ms, max: 200ms }}
    spool: {{ path: {spool} }}
""", f"dead_letter: {{ path: {dl} }}\n")
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace(f"    path: {out}\n", f"    path: {out}\n    fsync: always\n", 1))
        trace = os.path.join(self.dir, "trace.txt")
        env = daemon_env()
        # LeakSanitizer cannot run under ptrace (the sanitizer build): leaks are checked by
        # every other test of that build
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        p = subprocess.run([STRACE, "-f", "-qq", "-y", "-xx", "-s", "16777216", "-o", trace,
                            "-e", "trace=" + ",".join(WRITES + ("fsync", "fdatasync")),
                            os.environ["SF_BIN"], "-c", cfg, "--once"], env=env,
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])

        def kind(path):
            if path == out:
                return "file sink"
            if path == dl:
                return "dead letters"
            if path.startswith(spool + "/") and path.endswith(".seg"):
                return "spool"
            return None

        unsynced = {}  # path -> records written since its last fsync
        synced = {"file sink": 0, "dead letters": 0, "spool": 0}
        checkpoints = []
        for call, args, result in parse_strace(trace):
            m = _FD.match(args)
            if not m or result < 0:
                continue
            path = unhex(m.group(2))
            k = kind(path)
            if call in WRITES and k:
                data = written_bytes(args, result)
                n = spool_records(data) if k == "spool" else data.count(b"\n")
                unsynced[path] = unsynced.get(path, 0) + n
            elif call in ("fsync", "fdatasync") and k:
                synced[k] += unsynced.pop(path, 0)
            elif call in WRITES and path.startswith(cp + ".tmp."):
                total = int(json.loads(written_bytes(args, result))["events_total"])
                checkpoints.append(total)
                for what, n in synced.items():
                    self.assertLessEqual(total, n, "a checkpoint counts %d events delivered "
                                         "while the %s had fsync'd only %d" % (total, what, n))
        self.assertTrue(checkpoints and checkpoints[-1] == len(self.fake.all_ids()),
                        "checkpoints written: %r" % checkpoints)
        self.assertTrue(all(synced.values()), synced)
        ids, _ = read_output(out)
        self.assertEqual(set(ids), set(self.fake.all_ids()))


@need_bin
class FsyncFailureTest(unittest.TestCase):
    """fsync failing with EIO: the sink reports an error and the checkpoint does not move."""

    def setUp(self):
        if not SHIM or not os.path.exists(SHIM):
            self.fail("SF_FAILFSYNC_LIB (the fsync-failing shim) is not built")
        self.dir = scratch_dir(self, "sf-durability-")
        self.fake = FakeSysdig(token=CANARY, seed=9)
        self.fake.generate(120, span_s=1800)
        self.fake.start()
        self.addCleanup(self.fake.stop)
        self.faillog = os.path.join(self.dir, "fsync-failures.log")

    def failures(self):
        if not os.path.exists(self.faillog):
            return 0
        with open(self.faillog) as f:
            return len(f.readlines())

    def run_with_failing_fsync(self, cfg, cp, match, expect_log):
        """Runs the daemon with fsync failing on paths containing `match` until it logged
        expect_log and the shim failed several fsyncs; then stops it. The checkpoint must not
        count a single event as delivered."""
        env = daemon_env(LD_PRELOAD=SHIM, SF_FAIL_FSYNC=match, SF_FAIL_FSYNC_LOG=self.faillog)
        d = Daemon(["-c", cfg], env=env, logdir=self.dir, tag="failing")
        try:
            # (a checkpoint that moves ends the wait early: the test fails below)
            wait_for(lambda: (expect_log in d.stderr() and self.failures() >= 2)
                     or delivered_by_checkpoint(cp) > 0, 30)
            self.assertEqual(delivered_by_checkpoint(cp), 0,
                             "the checkpoint moved past events whose fsync failed: %s\n%s"
                             % (checkpoint(cp), d.stderr()[-3000:]))
            self.assertTrue(expect_log in d.stderr() and self.failures() >= 2,
                            "no fsync failure reported:\n" + d.stderr()[-3000:])
            time.sleep(1.5)  # room for a wrong commit to happen
            rc, hung = d.term()
            self.assertFalse(hung, d.stderr()[-3000:])
        finally:
            if d.alive():
                d.kill9()
        self.assertEqual(delivered_by_checkpoint(cp), 0,
                         "the checkpoint moved past events whose fsync failed: %s\n%s"
                         % (checkpoint(cp), d.stderr()[-3000:]))
        return d

    def test_file_sink_fsync_eio(self):
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=40,
                                    extra="pipeline: { shutdown_timeout: 2s }\n")
        self.run_with_failing_fsync(cfg, cp, out, "Input/output error")
        # what could not be fsync'd was cut off again (a retried batch is not appended twice)
        self.assertEqual(read_output(out)[0], [])
        # without the fault, a new run delivers everything, once, and the checkpoint moves
        r = run(["-c", cfg, "--once"], timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertEqual(sorted(read_output(out)[0]), sorted(self.fake.all_ids()))
        self.assertEqual(delivered_by_checkpoint(cp), len(self.fake.all_ids()))

    def test_file_sink_group_commit_on_a_slow_disk(self):
        """On a slow disk (every fsync of the sink's file takes 400 ms), the pages that queue
        behind a write go out together in the next one, with one fsync: not one fsync a page
        (which made the disk's fsync time the bound on pages per second). Each is still
        fsync'd before the checkpoint counts it, and every event is delivered once."""
        # (one cursor: 24 full pages, this double answers one in ~45 ms; up to 16 in the
        # pipeline at once)
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=5,
                                    extra_source="  max_concurrency: 1\n",
                                    extra="pipeline: { max_inflight_pages: 16 }\n")
        env = daemon_env(LD_PRELOAD=SHIM, SF_SLOW_FSYNC=out, SF_SLOW_FSYNC_MS="400",
                         SF_FAIL_FSYNC_LOG=self.faillog)
        r = run(["-c", cfg, "--once"], timeout=90, env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        ids = read_output(out)[0]
        self.assertEqual(sorted(ids), sorted(self.fake.all_ids()))
        self.assertEqual(delivered_by_checkpoint(cp), len(ids))
        pages = len(ids) // 5  # 24
        fsyncs = self.failures()  # (each slow fsync of the sink file is logged)
        self.assertGreater(fsyncs, 0, "the sink file was never fsync'd")
        self.assertLessEqual(fsyncs, pages // 3,
                             "%d fsyncs for %d pages: pages are written one by one" %
                             (fsyncs, pages))

    def test_spool_fsync_eio(self):
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=40,
                                    extra="pipeline: { shutdown_timeout: 2s }\n")
        spool = os.path.join(self.dir, "spool-hook")
        rx = Hook(503)
        self.addCleanup(rx.stop)
        add_sinks(cfg, f"""  - name: hook
    type: webhook
    url: {rx.url}/
    body: ndjson
    retry: {{ initial: 100ms, max: 200ms }}
    spool: {{ path: {spool} }}
""")
        d = self.run_with_failing_fsync(cfg, cp, ".seg", "cannot spool")
        self.assertIn("Input/output error", d.stderr())
        # the receiver recovers, the fault is gone: everything arrives, nothing lost
        rx.status = 200
        r = run(["-c", cfg, "--once"], timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        got = {i for _, st, ids in rx.log if st == 200 for i in ids}
        self.assertEqual(got, set(self.fake.all_ids()))

    def test_dead_letter_fsync_eio(self):
        dl = os.path.join(self.dir, "dead.ndjson")
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=40,
                                    extra="pipeline: { shutdown_timeout: 2s }\n"
                                    f"dead_letter: {{ path: {dl} }}\n")
        rx = Hook(400)
        self.addCleanup(rx.stop)
        add_sinks(cfg, f"""  - name: hook
    type: webhook
    url: {rx.url}/
    body: ndjson
    retry: {{ initial: 100ms, max: 200ms }}
""")
        self.run_with_failing_fsync(cfg, cp, "dead.ndjson", "events sink hook rejected are held")
        r = run(["-c", cfg, "--once"], timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        with open(dl) as f:
            dead = {json.loads(ln)["id"] for ln in f if ln.strip()}
        self.assertEqual(dead, set(self.fake.all_ids()))

    def test_checkpoint_written_at_sigterm_after_failed_saves(self):
        """A checkpoint that could not be saved while running (fsync EIO) is saved at SIGTERM,
        once the disk works again. The checkpoint's directory is a symlink, first to a
        directory whose fsyncs fail, then (after the last commit, long before the next poll)
        to a working one: only the final save at shutdown can write it there."""
        failing = os.path.join(self.dir, "cp-failing")
        working = os.path.join(self.dir, "cp-working")
        os.mkdir(failing)
        os.mkdir(working)
        state = os.path.join(self.dir, "state")
        os.symlink(failing, state)
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=40, poll_interval="60s")
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace(cp, os.path.join(state, "checkpoint.json"), 1))
        env = daemon_env(LD_PRELOAD=SHIM, SF_FAIL_FSYNC=failing, SF_FAIL_FSYNC_LOG=self.faillog)
        d = Daemon(["-c", cfg], env=env, logdir=self.dir, tag="cpfail")
        try:
            ids = set(self.fake.all_ids())
            ok = wait_for(lambda: ids <= set(read_output(out)[0]) and self.failures() >= 1
                          and "cannot write checkpoint" in d.stderr(), 30)
            self.assertTrue(ok, "events not delivered or no checkpoint save failed:\n"
                            + d.stderr()[-3000:])
            time.sleep(1)  # the last page's commit (and its failing save) is done
            self.assertFalse(os.listdir(working))
            tmp = os.path.join(self.dir, "state.new")
            os.symlink(working, tmp)
            os.replace(tmp, state)
            rc, hung = d.term()
        finally:
            if d.alive():
                d.kill9()
        self.assertEqual((rc, hung), (0, False), d.stderr()[-3000:])
        saved = checkpoint(os.path.join(working, "checkpoint.json"))
        self.assertIsNotNone(saved, "no checkpoint written at SIGTERM:\n" + d.stderr()[-3000:])
        self.assertEqual(int(saved.get("events_total", 0)), len(ids), saved)


class ScriptedHook(Hook):
    def __init__(self, script):
        self.script = script  # {request number (0-based): (status, headers)}
        super().__init__(200)

    def answer(self, n):
        return self.script.get(n, (200, {}))


@need_bin
class RetryAfterTest(unittest.TestCase):
    """A server's Retry-After is a floor, whatever our own backoff would say."""

    def setUp(self):
        self.dir = scratch_dir(self, "sf-durability-")
        self.fake = FakeSysdig(token=CANARY, seed=13)
        self.fake.generate(60, span_s=1800)
        self.fake.start()
        self.addCleanup(self.fake.stop)

    def gap_after_429(self, retry_initial, retry_max):
        self.fake.reset_requests()
        self.fake.inject("429", count=1, retry_after=2)
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=100,
                                    retry_initial=retry_initial, retry_max=retry_max)
        if os.path.exists(cp):
            os.unlink(cp)
        r = run(["-c", cfg, "--once"], timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        reqs = self.fake.api_requests()
        i = next(k for k, q in enumerate(reqs) if q["status"] == 429)
        self.assertLess(i + 1, len(reqs), "no request after the 429")
        return reqs[i + 1]["t"] - reqs[i]["t"]

    def test_source_429_retry_after_longer_than_backoff(self):
        gap = self.gap_after_429("100ms", "500ms")
        self.assertGreaterEqual(gap, 1.9, "Retry-After: 2 not honoured (next request %.2fs "
                                "later)" % gap)

    def test_source_429_retry_after_shorter_than_backoff(self):
        gap = self.gap_after_429("5s", "10s")
        self.assertGreaterEqual(gap, 1.9, "Retry-After: 2 not honoured (next request %.2fs "
                                "later)" % gap)

    def sink_gap(self, status, retry_initial):
        rx = ScriptedHook({0: (status, {"Retry-After": "2"})})
        self.addCleanup(rx.stop)
        cfg, out, cp = write_config(self.dir, self.fake.url, page_size=100,
                                    name="config-%d.yaml" % status)
        if os.path.exists(cp):
            os.unlink(cp)
        add_sinks(cfg, f"""  - name: hook
    type: webhook
    url: {rx.url}/
    body: ndjson
    concurrency: 1
    retry: {{ initial: {retry_initial}, max: 10s }}
""")
        r = run(["-c", cfg, "--once"], timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        t0, st0, ids0 = rx.log[0]
        self.assertEqual(st0, status)
        again = min(t for t, st, ids in rx.log[1:] if set(ids) & set(ids0))
        return again - t0

    def test_webhook_429_retry_after(self):
        for initial in ("100ms", "1s"):
            gap = self.sink_gap(429, initial)
            self.assertGreaterEqual(gap, 1.9, "webhook 429 Retry-After: 2 not honoured with "
                                    "retry.initial %s (%.2fs)" % (initial, gap))

    def test_webhook_503_retry_after(self):
        gap = self.sink_gap(503, "100ms")
        self.assertGreaterEqual(gap, 1.9, "webhook 503 Retry-After: 2 not honoured (%.2fs)"
                                % gap)


if __name__ == "__main__":
    main()
