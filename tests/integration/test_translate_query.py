#!/usr/bin/python3
"""translate-query and source.stix_pattern: the golden cases of tests/golden/stix-query
(the seed README's stix-shifter examples with its float rounding corrected, and cases of our own
for every operator), error positions and exit codes, and the daemon sending the translated
filter to the API (the fake records every request's parameters)."""

import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (CANARY, NS, SF_BIN, SRC, FakeSysdig, daemon_env, main, need_bin,  # noqa: E402
                     rfc3339_ns, run, scratch_dir, write_config)

GOLDEN = os.path.join(SRC, "tests", "golden", "stix-query", "queries.json")
# the spacing of doubles near 1.7e18 ns: stix-shifter computes ns through a float
FLOAT_ULP_NS = 256
QUERY_RE = re.compile(r"^from=(\d+)&to=(\d+)&filter=(.*)$")


def load():
    with open(GOLDEN, encoding="utf-8") as f:
        return json.load(f)


@need_bin
class TranslateQueryTest(unittest.TestCase):
    @staticmethod
    def tq(*args, stdin=""):
        return subprocess.run([SF_BIN, "translate-query"] + list(args), input=stdin,
                              capture_output=True, text=True, timeout=30)

    def test_golden_cases(self):
        for case in load()["cases"]:
            with self.subTest(case=case["name"]):
                args = ["--now", case["now"]] if "now" in case else []
                r = self.tq(*args, case["pattern"])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.splitlines(), case["queries"])
                j = self.tq("--json", *args, case["pattern"])
                self.assertEqual(j.returncode, 0, j.stderr)
                self.assertEqual(json.loads(j.stdout), {"queries": case["queries"]})
                for q in case["queries"]:
                    m = QUERY_RE.match(q)
                    self.assertTrue(m, q)
                    frm, to = int(m.group(1)), int(m.group(2))
                    self.assertLess(frm, to)
                    self.assertLessEqual(to - frm, 14 * 86400 * NS, "window over 14 days")

    def test_stix_shifter_differs_only_by_float_rounding(self):
        """Where stix-shifter's output is known, ours is the same query with exact ns, unless
        the case says why not (and then it must really differ)."""
        n = 0
        for case in load()["cases"]:
            if "stix_shifter" not in case:
                continue
            with self.subTest(case=case["name"]):
                ours, theirs = case["queries"], case["stix_shifter"]
                if "differs" in case:
                    self.assertNotEqual(ours, theirs)
                    continue
                n += 1
                self.assertEqual(len(ours), len(theirs))
                for a, b in zip(ours, theirs):
                    ma, mb = QUERY_RE.match(a), QUERY_RE.match(b)
                    self.assertEqual(ma.group(3), mb.group(3), "filters differ")
                    for i in (1, 2):
                        x, y = int(ma.group(i)), int(mb.group(i))
                        self.assertLessEqual(abs(x - y), FLOAT_ULP_NS, (x, y))
                        self.assertEqual(float(x), float(y))
        self.assertGreaterEqual(n, 4)

    def test_errors_name_the_position(self):
        for e in load()["errors"]:
            with self.subTest(pattern=e["pattern"]):
                r = self.tq(e["pattern"])
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn("position %d: " % e["position"], r.stderr)
                self.assertIn(e["message"], r.stderr)
                if e["pattern"] and e["pattern"].isprintable():
                    # the pattern, then a caret under the position
                    lines = r.stderr.splitlines()
                    self.assertEqual(lines[1], "  " + e["pattern"])
                    self.assertEqual(lines[2], " " * (e["position"] + 1) + "^")

    def test_stdin_and_usage(self):
        pat = "[x-sysdig-cluster:name = 'a'] START t'2024-01-01T00:00:00Z' STOP t'2024-01-01T01:00:00Z'"
        want = ("from=1704067200000000000&to=1704070800000000000&filter="
                "(kubernetes.cluster.name=\"a\")andsource!=\"auditTrail\"\n")
        for args in ([], ["-"]):
            p = self.tq(*args, stdin=pat + "\n")
            self.assertEqual((p.returncode, p.stdout), (0, want), p.stderr)
        for args in (["a", "b"], ["--bogus", pat], ["--now", "yesterday", pat],
                     ["--range", "0s", pat]):
            r = self.tq(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr, args)
        r = self.tq("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("x-ibm-finding:severity -> severity", r.stdout)
        # --range: the default window's length
        r = self.tq("--now", "2024-01-01T00:00:00Z", "--range", "1h", "[x-sysdig-cluster:name = 'a']")
        self.assertTrue(r.stdout.startswith("from=1704063600000000000&to=1704067200000000000&"),
                        r.stdout)


@need_bin
class StixPatternConfigTest(unittest.TestCase):
    PATTERN = "[x-ibm-finding:severity >= 70 AND x-sysdig-cluster:name = 'prod \\'eu\\'']"
    FILTER = ("(severity<=3 and kubernetes.cluster.name=\"prod 'eu'\")"
              "andsource!=\"auditTrail\"")

    def setUp(self):
        self.dir = scratch_dir(self, "sf-stix-pattern-")
        self.fake = None

    def tearDown(self):
        if self.fake:
            self.fake.stop()

    def config(self, url, source_lines, name="config.yaml"):
        """source_lines start at line 11 (after write_config's source keys)."""
        return write_config(self.dir, url, extra_source=source_lines, name=name)

    @staticmethod
    def yaml_str(s):
        return json.dumps(s)  # a JSON string is a YAML double-quoted scalar

    def check(self, cfg):
        r = run(["-c", cfg, "--check-config", "--syntax-only"], timeout=30)
        self.assertFalse(r.timed_out)
        return r

    def test_check_config(self):
        good, _, _ = self.config("http://127.0.0.1:9", "  stix_pattern: %s\n" % self.yaml_str(
            self.PATTERN))
        r = self.check(good)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # each refusal: exit 2, FILE:LINE:COL of the key's value, the position in the pattern
        cases = [
            ("  stix_pattern: \"[x-sysdig-cluster:name = 'a'\"\n", 11, 17,
             "at position 29: expected ']'"),
            ("  stix_pattern: \"[x-sysdig-cluster:name = 'a'] START t'2024-01-01T00:00:00Z' "
             "STOP t'2024-01-02T00:00:00Z'\"\n", 11, 17,
             "at position 31: START/STOP is not allowed here"),
            ("  stix_pattern: \"[x-ibm-finding:name LIKE 'a%']\"\n", 11, 17,
             "at position 21: LIKE is not supported"),
            ("  filter: source = \"syscall\"\n  stix_pattern: \"[x-sysdig-cluster:name = 'a']\"\n",
             12, 3, "filter and stix_pattern are mutually exclusive"),
        ]
        for i, (lines, line, col, msg) in enumerate(cases):
            with self.subTest(msg=msg):
                cfg, _, _ = self.config("http://127.0.0.1:9", lines, name="bad%d.yaml" % i)
                r = self.check(cfg)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertRegex(r.stdout + r.stderr, r"%s:%d:%d: .*%s" % (
                    re.escape(cfg), line, col, re.escape(msg)))

    def test_daemon_sends_the_translated_filter(self):
        """translate-query's filter, the expected text, and what the daemon sends agree."""
        r = run(["translate-query", "--json", self.PATTERN], timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        (q,) = json.loads(r.stdout)["queries"]
        self.assertEqual(QUERY_RE.match(q).group(3), self.FILTER)
        self.fake = FakeSysdig(token=CANARY, seed=3)
        now = time.time_ns()
        self.fake.add_events(20, start_ns=now - 50 * 60 * NS, end_ns=now - 40 * 60 * NS)
        self.fake.start()
        for api in ("legacy", "events"):
            with self.subTest(api=api):
                d = os.path.join(self.dir, api)
                os.mkdir(d)
                cfg, out, _ = write_config(d, self.fake.url, api=api, extra_source=(
                    "  stix_pattern: %s\n" % self.yaml_str(self.PATTERN)))
                self.fake.reset_requests()
                r = run(["-c", cfg, "--from", rfc3339_ns(now - 60 * 60 * NS),
                         "--to", rfc3339_ns(now - 30 * 60 * NS)], env=daemon_env(), timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                self.assertIn("translated to the filter " + self.FILTER, r.stderr)
                reqs = [q for q in self.fake.api_requests() if "from" in q["params"]
                        or "cursor" in q["params"]]
                self.assertTrue(reqs, "no event requests")
                for q in reqs:
                    self.assertEqual(q["params"].get("filter"), [self.FILTER], q["params"])


if __name__ == "__main__":
    main()
