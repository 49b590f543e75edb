#!/usr/bin/python3
"""End-to-end CLI: --version, --help, --check-config, --ping, --from/--to export, corrupt
checkpoint; the token never appears in any output."""

import json
import os
import signal
import re
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, NS, Daemon, FakeSysdig, daemon_env, http_get, main,  # noqa: E402
                     need_bin, read_output, rfc3339_ns, run, scratch_dir, wait_for,
                     write_config)


@need_bin
class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir(self, "sf-e2e-cli-")
        self.fake = None

    def tearDown(self):
        if self.fake:
            self.fake.stop()

    def sf(self, args, timeout=30, env=None):
        r = run(args, env=env or daemon_env(), timeout=timeout)
        self.assertFalse(r.timed_out, "%r did not finish in %d s" % (args, timeout))
        self.assertNotIn(CANARY, r.stdout, "token printed on stdout by %r" % (args,))
        self.assertNotIn(CANARY, r.stderr, "token printed on stderr by %r" % (args,))
        return r

    def _fake(self, token=CANARY, seed=7, n=0):
        self.fake = FakeSysdig(token=token, seed=seed)
        if n:
            self.fake.generate(n, span_s=1800)
        self.fake.start()
        return self.fake

    # ---- trivial
    def test_version_help(self):
        r = self.sf(["--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout + r.stderr, r"\d+\.\d+\.\d+")
        r = self.sf(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        text = r.stdout + r.stderr
        for opt in ("--once", "--ping", "--check-config", "--from", "--to", "-c"):
            self.assertIn(opt, text)

    # ---- check-config
    def test_demo_prints_events_and_stops_on_sigint(self):
        """The README's first command: the built-in demo source, events on stdout."""
        d = Daemon(["--demo"], logdir=self.dir, tag="demo")
        try:
            ok = wait_for(lambda: d.stdout().count("\n") >= 3, 20)
            self.assertTrue(ok, "the demo printed no events:\n" + d.stderr()[-2000:])
            d.p.send_signal(signal.SIGINT)
            self.assertEqual(d.p.wait(20), 0, d.stderr()[-2000:])
        finally:
            if d.alive():
                d.kill9()
        first = json.loads(d.stdout().splitlines()[0])
        self.assertIn("id", first)

    def test_one_daemon_per_checkpoint(self):
        """A second daemon on the same checkpoint exits 3 naming the first one's pid; once the
        first is gone (even by SIGKILL), the next one starts."""
        fake = self._fake(n=50)
        cfg, out, cp = write_config(self.dir, fake.url)
        first = Daemon(["-c", cfg], logdir=self.dir, tag="first")
        try:
            self.assertTrue(wait_for(lambda: os.path.exists(cp + ".lock") and
                                     open(cp + ".lock").read().strip() == str(first.p.pid), 20),
                            first.stderr()[-2000:])
            for args in (["-c", cfg], ["-c", cfg, "--once"]):
                r = self.sf(args, timeout=8)
                self.assertEqual(r.returncode, 3, r.stderr[-2000:])
                self.assertIn("in use by another sysdig-forwarder (pid %d" % first.p.pid, r.stderr)
            # a range export does not use the checkpoint: it may run beside the daemon
            r = self.sf(["-c", cfg, "--from", "-10m", "--to", "now"], timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            first.kill9()
            r = self.sf(["-c", cfg, "--once"], timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        finally:
            if first.alive():
                first.kill9()

    def test_logs_are_json_from_the_first_line(self):
        """log.format: json (or SF_LOG_FORMAT=json) applies to every line, also those about the
        configuration itself (a group-readable token file); --log-level overrides the level."""
        fake = self._fake(n=20)
        tok = os.path.join(self.dir, "token")
        with open(tok, "w") as f:
            f.write(CANARY + "\n")
        os.chmod(tok, 0o644)  # warned about while the configuration loads
        for fmt_in_file, env_extra in (("json", {}), ("text", {"SF_LOG_FORMAT": "json"})):
            with self.subTest(file=fmt_in_file, env=env_extra):
                d = tempfile.mkdtemp(dir=self.dir)
                cfg, out, cp = write_config(d, fake.url, token="", extra_source="  token_file: %s\n"
                                            % tok)
                with open(cfg) as f:
                    text = f.read().replace("  token: \n", "").replace(
                        "log: { level: info, format: text }", "log: { level: info, format: %s }"
                        % fmt_in_file)
                with open(cfg, "w") as f:
                    f.write(text)
                r = self.sf(["-c", cfg, "--once", "--log-level", "debug"],
                            env=daemon_env(**env_extra), timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr[-2000:])
                lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
                self.assertTrue(lines)
                objs = [json.loads(ln) for ln in lines]  # every line is one JSON object
                self.assertIn("accessible by group/others", objs[0]["msg"])
                self.assertTrue(all({"time", "level", "component", "msg"} <= set(o) for o in objs))
                self.assertIn("debug", {o["level"] for o in objs}, "--log-level debug ignored")

    def test_listen_on_a_host_name(self):
        """server.listen: localhost:PORT passes --check-config and the daemon serves on it (it
        used to pass the check and then exit 1 with 'invalid argument')."""
        import socket
        fake = self._fake(n=5)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cfg, out, cp = write_config(self.dir, fake.url,
                                    extra="server: { listen: localhost:%d }\n" % port)
        r = self.sf(["-c", cfg, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        d = Daemon(["-c", cfg], logdir=self.dir, tag="listen")
        try:
            def healthy():
                try:
                    return http_get("http://127.0.0.1:%d" % port, "/healthz", timeout=2)[0] == 200
                except OSError:
                    return False
            self.assertTrue(wait_for(healthy, 20), d.stderr()[-2000:])
        finally:
            d.term()

    def test_check_config_good(self):
        cfg, _, _ = write_config(self.dir, "http://127.0.0.1:9")
        r = self.sf(["-c", cfg, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for api in ("events",):
            cfg2, _, _ = write_config(self.dir, "http://127.0.0.1:9", api=api, name="c2.yaml")
            self.assertEqual(self.sf(["-c", cfg2, "--check-config"]).returncode, 0)

    def _bad(self, text, name):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        r = self.sf(["-c", path, "--check-config"])
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 2, "expected exit 2 for %s, got %s:\n%s"
                         % (name, r.returncode, out))
        locs = re.findall(r"^(?:.*?)(%s):(\d+):(\d+): (.+)$" % re.escape(path), out, re.M)
        self.assertTrue(locs, "no FILE:LINE:COL: lines in:\n" + out)
        return [(int(line), int(col), msg) for _, line, col, msg in locs], out

    GOOD_HEAD = "source:\n  url: http://127.0.0.1:9\n  token: ${SYSDIG_SECURE_API_TOKEN}\n"
    TAIL = ("checkpoint: { path: /tmp/sf-e2e-cli-nonexistent/cp.json }\n"
            "sinks:\n  - name: a\n    type: file\n    format: raw\n    path: /tmp/x.ndjson\n")

    def test_check_config_unknown_key(self):
        text = self.GOOD_HEAD + "  page_sise: 50\n" + self.TAIL
        locs, out = self._bad(text, "unknown.yaml")
        self.assertIn(4, [line for line, _, _ in locs], out)
        self.assertIn("page_sise", out)

    def test_check_config_bad_duration(self):
        text = self.GOOD_HEAD + "  poll_interval: 5 parsecs\n" + self.TAIL
        locs, out = self._bad(text, "duration.yaml")
        self.assertIn(4, [line for line, _, _ in locs], out)

    def test_check_config_missing_url(self):
        text = "source:\n  token: ${SYSDIG_SECURE_API_TOKEN}\n" + self.TAIL
        locs, out = self._bad(text, "nourl.yaml")
        self.assertIn("url", out)

    def test_check_config_every_problem(self):
        text = ("source:\n  token: ${SYSDIG_SECURE_API_TOKEN}\n  page_sise: 50\n"
                "  poll_interval: 5 parsecs\n" + self.TAIL)
        locs, out = self._bad(text, "all.yaml")
        lines = [line for line, _, _ in locs]
        self.assertIn(3, lines, out)
        self.assertIn(4, lines, out)
        self.assertGreaterEqual(len(locs), 3, "every problem must be reported:\n" + out)

    # ---- ping
    def test_ping(self):
        for api in ("legacy", "events"):
            with self.subTest(api=api):
                if self.fake:
                    self.fake.stop()
                fake = self._fake(n=10)
                cfg, _, _ = write_config(self.dir, fake.url, api=api, name=api + ".yaml")
                r = self.sf(["-c", cfg, "--ping"])
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertFalse([q for q in fake.api_requests() if q["token_in_url"]])
                fake.token = "the-right-token-is-different"
                r = self.sf(["-c", cfg, "--ping"])
                self.assertNotEqual(r.returncode, 0, "ping with a bad token succeeded")
                self.assertRegex((r.stdout + r.stderr).lower(), r"401|token|unauthori",
                                 r.stdout + r.stderr)

    def test_ping_unreachable(self):
        cfg, _, _ = write_config(self.dir, "http://127.0.0.1:9", request_timeout="2s")
        r = self.sf(["-c", cfg, "--ping"])
        self.assertNotEqual(r.returncode, 0)

    # ---- export
    def test_export_range(self):
        fake = self._fake()
        now = time.time_ns()
        m = 60 * NS
        clusters = {}
        for name, lo, hi in (("old", 100, 80), ("mid", 50, 40), ("new", 20, 10)):
            clusters[name] = set(fake.add_events(150, start_ns=now - lo * m, end_ns=now - hi * m))
        old_16d = fake.add_event(ts_ns=now - 16 * 24 * 3600 * NS)
        for api in ("legacy", "events"):
            with self.subTest(api=api):
                d = tempfile.mkdtemp(dir=self.dir)
                cfg, out, cp = write_config(d, fake.url, api=api, page_size=40)
                # relative range
                r = self.sf(["-c", cfg, "--from", "-60m", "--to", "-30m"], timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                ids, torn = read_output(out)
                self.assertEqual(sorted(ids), sorted(clusters["mid"]))
                self.assertFalse(os.path.exists(cp), "--from/--to wrote a checkpoint")
                # raw = byte-faithful to the API's event object
                with open(out, encoding="utf-8") as f:
                    lines = [ln.rstrip("\n") for ln in f if ln.strip()]
                want = {fake.event_json(i, api) for i in clusters["mid"]}
                self.assertEqual(set(lines), want, "raw output differs from the API bytes")
                os.unlink(out)
                # absolute RFC 3339 range
                r = self.sf(["-c", cfg, "--from", rfc3339_ns(now - 110 * m),
                             "--to", rfc3339_ns(now - 70 * m)], timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                ids, _ = read_output(out)
                self.assertEqual(sorted(ids), sorted(clusters["old"]))
                self.assertFalse(os.path.exists(cp))
                os.unlink(out)
                # more than 14 days: must be split into <= 14-day windows
                fake.reset_requests()
                r = self.sf(["-c", cfg, "--from", "-20d", "--to", "-75m"], timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                bad = [q for q in fake.api_requests() if q["status"] == 400]
                self.assertFalse(bad, "a >14-day export sent invalid windows")
                ids, _ = read_output(out)
                self.assertEqual(sorted(ids), sorted(clusters["old"] | {old_16d}))
                self.assertFalse(os.path.exists(cp))

    # ---- corrupt checkpoint
    def test_corrupt_checkpoint(self):
        fake = self._fake(n=50)
        cfg, out, cp = write_config(self.dir, fake.url)
        garbage = b'{"version":1, "watermark_ns": "12x3", \x00 not json'
        with open(cp, "wb") as f:
            f.write(garbage)
        st = os.stat(cp)
        for args in (["-c", cfg], ["-c", cfg, "--once"]):
            r = self.sf(args, timeout=20)
            self.assertNotEqual(r.returncode, 0, "%r started on a corrupt checkpoint" % args)
            self.assertIn("checkpoint", (r.stdout + r.stderr).lower(), r.stderr)
            with open(cp, "rb") as f:
                self.assertEqual(f.read(), garbage, "corrupt checkpoint was modified")
            self.assertEqual(os.stat(cp).st_mtime_ns, st.st_mtime_ns)
        ids, _ = read_output(out)
        self.assertEqual(ids, [], "events delivered despite a corrupt checkpoint")

    # ---- token hygiene in a normal run with errors
    def test_token_never_printed_debug(self):
        fake = self._fake(n=100)
        cfg, out, cp = write_config(self.dir, fake.url,
                                    extra="", name="dbg.yaml")
        with open(cfg) as f:
            text = f.read().replace("level: info", "level: debug")
        with open(cfg, "w") as f:
            f.write(text)
        fake.inject("500", count=2)
        fake.inject("401", count=1)
        r = self.sf(["-c", cfg, "--once"], timeout=60)  # asserts the canary is absent
        r = self.sf(["-c", cfg, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    main()
