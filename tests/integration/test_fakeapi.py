#!/usr/bin/python3
"""Self-tests of the fake Sysdig Secure Events API (tests/fakeapi/sysdig_api.py).
Does not need the daemon."""

import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (EVENTS_PATH, LEGACY_PATH, NS, STATUS_PATH, FakeSysdig,  # noqa: E402
                     http_control, http_get, main, scratch_dir)

TOK = "fake-test-token-123"
RFC3339_9 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def ts_of(ev):
    t = ev["timestamp"]
    if isinstance(t, int):
        return t
    import calendar
    sec = calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S"))
    return sec * NS + int(t[20:29])


def page_all(fake, api, from_ns, to_ns, limit, token=TOK, max_pages=10000):
    """Client recipe: first page by window, then cursors; clip to [from, to]; stop on every
    end-of-data signal. Returns (ids in order, pages, raw events outside the window seen)."""
    path = LEGACY_PATH if api == "legacy" else EVENTS_PATH
    params = {"from": from_ns, "to": to_ns, "limit": limit}
    ids, pages, outside = [], 0, 0
    sent_cursor = None
    while pages < max_pages:
        st, _, body = http_get(fake.url, path, params, token)
        assert st == 200, (st, body[:300])
        d = json.loads(body)
        pages += 1
        data = d["data"]
        stop = False
        for ev in data:
            t = ts_of(ev)
            if t < from_ns:
                outside += 1
                stop = True
                continue
            if t <= to_ns:
                ids.append(ev["id"])
        if api == "legacy":
            nxt = d["page"].get("prev")
            if not data or len(data) < limit or nxt is None or nxt == sent_cursor:
                stop = True
        else:
            nxt = d["page"].get("next")
            if nxt is None:
                stop = True
        if stop:
            break
        sent_cursor = nxt
        params = {"cursor": nxt, "limit": limit}
    return ids, pages, outside


class FakeApiTest(unittest.TestCase):
    def setUp(self):
        self.fake = FakeSysdig(token=TOK, seed=42)
        self.now = time.time_ns()
        self.fake.generate(1500, span_s=3600, end_ns=self.now - NS)
        self.fake.start()
        self.win = {"from": self.now - 2 * 3600 * NS, "to": self.now}

    def tearDown(self):
        self.fake.stop()

    def get(self, path, params=None, token=TOK):
        return http_get(self.fake.url, path, params, token)

    # ---- paging
    def _check_paging(self, api, limit):
        # window covering only part of the store: from = 30 minutes ago
        frm, to = self.now - 1800 * NS, self.now
        ids, pages, _ = page_all(self.fake, api, frm, to, limit)
        expected = self.fake.ids_between(frm, to)
        self.assertEqual(len(ids), len(set(ids)), "an id was served twice")
        self.assertEqual(set(ids), set(expected))
        self.assertGreater(pages, 3)
        # newest first: ids in the order served match the store order (ts desc)
        keys = [(self.fake.event(i).ts_ns, i) for i in ids]
        self.assertEqual(keys, sorted(keys, reverse=True))
        # served set recorded
        self.assertTrue(set(expected).issubset(self.fake.served_ids))

    def test_paging_legacy(self):
        self._check_paging("legacy", 100)

    def test_paging_events(self):
        self._check_paging("events", 200)

    def test_paging_whole_store_legacy_999(self):
        ids, pages, _ = page_all(self.fake, "legacy", self.win["from"], self.win["to"], 999)
        self.assertEqual(sorted(ids), sorted(self.fake.all_ids()))
        self.assertEqual(pages, 2)

    def test_legacy_prev_present_after_last_page(self):
        frm = self.now - 2 * 3600 * NS
        st, _, b = self.get(LEGACY_PATH, {"from": frm, "to": self.now, "limit": 999})
        d = json.loads(b)
        st, _, b = self.get(LEGACY_PATH, {"cursor": d["page"]["prev"], "limit": 999})
        d = json.loads(b)
        self.assertEqual(len(d["data"]), 1500 - 999)
        self.assertIn("prev", d["page"])
        last = d["page"]["prev"]
        st, _, b = self.get(LEGACY_PATH, {"cursor": last, "limit": 999})
        d = json.loads(b)
        self.assertEqual(st, 200)
        self.assertEqual(d["data"], [])
        self.assertEqual(d["page"]["prev"], last, "empty page repeats the cursor")

    def test_events_next_absent_on_last_page(self):
        frm = self.now - 2 * 3600 * NS
        st, _, b = self.get(EVENTS_PATH, {"from": frm, "to": self.now, "limit": 200})
        cur = json.loads(b)["page"]["next"]
        n = 200
        while True:
            st, _, b = self.get(EVENTS_PATH, {"cursor": cur, "limit": 200})
            d = json.loads(b)
            n += len(d["data"])
            if "next" not in d["page"]:
                break
            cur = d["page"]["next"]
        self.assertEqual(n, 1500)

    def test_cursor_pages_ignore_window(self):
        ids = self.fake.ids_between()  # ascending
        newest30 = ids[-30:]
        frm = self.fake.event(newest30[0]).ts_ns
        st, _, b = self.get(EVENTS_PATH, {"from": frm, "to": self.now, "limit": 20})
        d = json.loads(b)
        self.assertEqual(len(d["data"]), 20)
        st, _, b = self.get(EVENTS_PATH, {"cursor": d["page"]["next"], "limit": 20})
        d = json.loads(b)
        self.assertEqual(len(d["data"]), 20, "cursor page keeps going past 'from'")
        self.assertTrue(any(ev["timestamp"] < frm for ev in d["data"]))
        # first page bounded by the window
        st, _, b = self.get(EVENTS_PATH, {"from": frm, "to": self.now, "limit": 200})
        self.assertEqual(len(json.loads(b)["data"]), 30)

    def test_legacy_next_goes_newer(self):
        frm = self.now - 2 * 3600 * NS
        st, _, b = self.get(LEGACY_PATH, {"from": frm, "to": self.now, "limit": 50})
        p1 = json.loads(b)
        st, _, b = self.get(LEGACY_PATH, {"cursor": p1["page"]["prev"], "limit": 50})
        p2 = json.loads(b)
        st, _, b = self.get(LEGACY_PATH, {"cursor": p2["page"]["next"], "limit": 50})
        back = json.loads(b)
        self.assertEqual([e["id"] for e in back["data"]], [e["id"] for e in p1["data"]])

    # ---- shapes
    def test_event_shapes(self):
        st, h, b = self.get(LEGACY_PATH, dict(self.win, limit=10))
        d = json.loads(b)
        for ev in d["data"]:
            self.assertRegex(ev["id"], r"^[0-9a-f]{32}$")
            self.assertRegex(ev["timestamp"], RFC3339_9)
            for k in ("agentId", "machineId", "content", "labels", "severity", "source"):
                self.assertIn(k, ev)
        self.assertGreaterEqual(d["page"]["total"], 10)
        st, h, b = self.get(EVENTS_PATH, dict(self.win, limit=10))
        d = json.loads(b)
        for ev in d["data"]:
            self.assertIsInstance(ev["timestamp"], int)
            self.assertNotIn("agentId", ev)
            self.assertNotIn("customerId", ev)
        # event_json gives the exact bytes inside the page
        ev0 = d["data"][0]["id"]
        self.assertIn(self.fake.event_json(ev0, "events").encode(), b)

    def test_deterministic_with_seed(self):
        a = FakeSysdig(seed=9)
        b = FakeSysdig(seed=9)
        a.generate(50, end_ns=10**18)
        b.generate(50, end_ns=10**18)
        self.assertEqual(a.all_ids(), b.all_ids())
        self.assertEqual(a.event_json(a.all_ids()[0]), b.event_json(b.all_ids()[0]))

    # ---- validation
    def test_14_days_400(self):
        frm = self.now - 14 * 24 * 3600 * NS - 1
        st, _, b = self.get(LEGACY_PATH, {"from": frm, "to": self.now})
        self.assertEqual(st, 400)
        e = json.loads(b)["errors"][0]
        self.assertIn("14 days", e["message"])
        self.assertIn("reason", e)
        st, _, b = self.get(EVENTS_PATH, {"from": frm, "to": self.now})
        self.assertEqual(st, 400)
        e = json.loads(b)
        self.assertEqual(set(e), {"type", "message", "details"})
        # exactly 14 days is fine
        st, _, _ = self.get(EVENTS_PATH, {"from": frm + 1, "to": self.now})
        self.assertEqual(st, 200)

    def test_401(self):
        for path in (LEGACY_PATH, EVENTS_PATH, STATUS_PATH):
            st, h, b = self.get(path, self.win, token="wrong")
            self.assertEqual(st, 401, path)
            self.assertIn("X-RateLimit-Limit", h)
            st, _, _ = self.get(path, self.win, token=None)
            self.assertEqual(st, 401)
        st, _, _ = self.get(STATUS_PATH, None)
        self.assertEqual(st, 200)
        self.assertTrue(all(r["auth"] in ("bad", "missing", "ok") for r in self.fake.requests))
        for r in self.fake.requests:
            self.assertNotIn("Authorization", r["headers"])
            self.assertNotIn(TOK, json.dumps(r))

    def test_cursor_with_from_400(self):
        st, _, b = self.get(LEGACY_PATH, dict(self.win, limit=10))
        cur = json.loads(b)["page"]["prev"]
        st, _, b = self.get(LEGACY_PATH, {"cursor": cur, "from": self.win["from"]})
        self.assertEqual(st, 400)
        st, _, b = self.get(EVENTS_PATH, {"cursor": "x", "to": self.now})
        self.assertEqual(st, 400)
        self.assertIn("cursor", json.loads(b)["message"])

    def test_missing_window_and_bad_cursor_400(self):
        self.assertEqual(self.get(LEGACY_PATH, {"limit": 5})[0], 400)
        self.assertEqual(self.get(EVENTS_PATH, {"from": 1})[0], 400)
        self.assertEqual(self.get(EVENTS_PATH, {"cursor": "bm9wZQ=="})[0], 400)
        self.assertEqual(self.get(EVENTS_PATH, {"cursor": "A" * 513})[0], 400)
        # a legacy cursor is not valid on the events endpoint
        cur = json.loads(self.get(LEGACY_PATH, dict(self.win, limit=5))[2])["page"]["prev"]
        self.assertEqual(self.get(EVENTS_PATH, {"cursor": cur})[0], 400)
        # from > to
        self.assertEqual(self.get(EVENTS_PATH, {"from": self.now, "to": self.now - 1})[0], 400)

    def test_limits(self):
        self.assertEqual(self.get(EVENTS_PATH, dict(self.win, limit=201))[0], 400)
        self.assertEqual(self.get(EVENTS_PATH, dict(self.win, limit=0))[0], 400)
        st, _, b = self.get(EVENTS_PATH, self.win)
        self.assertEqual(len(json.loads(b)["data"]), 25, "default limit 25")
        st, _, b = self.get(LEGACY_PATH, dict(self.win, limit=999))
        self.assertEqual(len(json.loads(b)["data"]), 999)
        self.assertEqual(self.get(LEGACY_PATH, dict(self.win, limit=1000))[0], 400)

    def test_filter_and_zones(self):
        params = [("from", self.win["from"]), ("to", self.win["to"]), ("limit", 999),
                  ("filter", 'source != "auditTrail"'), ("zones", "1"), ("zones", "2")]
        st, _, b = self.get(LEGACY_PATH, params)
        d = json.loads(b)
        self.assertEqual(st, 200)
        self.assertTrue(d["data"])
        self.assertFalse([e for e in d["data"] if e["source"] == "auditTrail"])
        # the filter sticks to the cursor
        st, _, b = self.get(LEGACY_PATH, {"cursor": d["page"]["prev"], "limit": 999})
        self.assertFalse([e for e in json.loads(b)["data"] if e["source"] == "auditTrail"])
        r = self.fake.api_requests()[0]
        self.assertEqual(r["params"]["zones"], ["1", "2"])
        self.assertEqual(r["params"]["filter"], ['source != "auditTrail"'])
        self.assertEqual(self.get(LEGACY_PATH, dict(self.win, filter="x" * 2049))[0], 400)

    # ---- faults
    def test_repeated_cursor(self):
        st, _, b = self.get(LEGACY_PATH, dict(self.win, limit=10))
        cur = json.loads(b)["page"]["prev"]
        self.fake.inject("repeat_cursor", count=1)
        st, _, b = self.get(LEGACY_PATH, {"cursor": cur, "limit": 10})
        d = json.loads(b)
        self.assertEqual(st, 200)
        self.assertEqual(d["page"]["prev"], cur)
        self.assertEqual(len(d["data"]), 10)
        st, _, b = self.get(LEGACY_PATH, {"cursor": cur, "limit": 10})
        self.assertNotEqual(json.loads(b)["page"]["prev"], cur)
        # events endpoint: next repeated
        st, _, b = self.get(EVENTS_PATH, dict(self.win, limit=10))
        cur = json.loads(b)["page"]["next"]
        self.fake.inject("repeat_cursor", count=1)
        st, _, b = self.get(EVENTS_PATH, {"cursor": cur, "limit": 10})
        self.assertEqual(json.loads(b)["page"]["next"], cur)

    def test_429_retry_after(self):
        self.fake.inject("429", count=2, retry_after=3)
        for _ in range(2):
            st, h, b = self.get(EVENTS_PATH, self.win)
            self.assertEqual(st, 429)
            self.assertEqual(h.get("Retry-After"), "3")
            self.assertIn("X-RateLimit-Limit", h)
            self.assertEqual(json.loads(b)["type"], "too_many_requests")
        st, h, _ = self.get(EVENTS_PATH, self.win)
        self.assertEqual(st, 200)
        self.assertIn("X-RateLimit-Limit", h)

    def test_other_faults(self):
        f = self.fake
        f.inject("503", count=1)
        self.assertEqual(self.get(LEGACY_PATH, self.win)[0], 503)
        f.inject("html", count=1)
        st, h, b = self.get(LEGACY_PATH, self.win)
        self.assertEqual(st, 502)
        self.assertIn(b"<html>", b)
        self.assertTrue(h["Content-Type"].startswith("text/html"))
        f.inject("malformed", count=1)
        st, _, b = self.get(LEGACY_PATH, self.win)
        self.assertEqual(st, 200)
        self.assertRaises(ValueError, json.loads, b)
        f.inject("truncated", count=1)
        st, _, b = self.get(EVENTS_PATH, self.win)
        self.assertRaises(ValueError, json.loads, b)
        for kind in ("reset", "short_read"):
            f.inject(kind, count=1)
            with self.assertRaises(Exception):
                self.get(EVENTS_PATH, self.win)
        f.inject("short_page", count=1, size=3)
        st, _, b = self.get(EVENTS_PATH, dict(self.win, limit=50))
        d = json.loads(b)
        self.assertEqual(len(d["data"]), 3)
        self.assertIn("next", d["page"])
        f.inject("delay", count=1, seconds=0.5)
        t0 = time.time()
        self.assertEqual(self.get(EVENTS_PATH, self.win)[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.45)
        # faulted pages are not "served"
        served = set(f.served_ids)
        f.inject("malformed", count=1)
        self.get(LEGACY_PATH, dict(self.win, limit=999))
        self.assertEqual(served, f.served_ids)
        self.assertEqual(self.get(LEGACY_PATH, self.win)[0], 200)

    def test_probability_is_seeded(self):
        def run():
            fk = FakeSysdig(token=TOK, seed=5)
            fk.generate(10, end_ns=self.now)
            fk.start()
            fk.inject("500", probability=0.3)
            try:
                return [http_get(fk.url, EVENTS_PATH, self.win, TOK)[0] for _ in range(30)]
            finally:
                fk.stop()
        a, b = run(), run()
        self.assertEqual(a, b)
        self.assertIn(500, a)
        self.assertIn(200, a)

    def test_control_endpoint(self):
        url = self.fake.url
        r = http_control(url, op="inject", kind="500", count=1)
        self.assertTrue(r["ok"])
        self.assertEqual(self.get(EVENTS_PATH, self.win)[0], 500)
        self.assertEqual(self.get(EVENTS_PATH, self.win)[0], 200)
        r = http_control(url, op="add_events", n=5, late_s=10)
        self.assertEqual(len(r["ids"]), 5)
        s = http_control(url, op="stats")
        self.assertEqual(s["events"], 1505)
        self.assertEqual(s["requests"], 2)
        st, _, b = http_get(url, "/_control/stats")
        self.assertEqual(json.loads(b)["events"], 1505)
        http_control(url, op="inject", kind="429", retry_after=2)
        self.assertEqual(self.get(EVENTS_PATH, self.win)[0], 429)
        http_control(url, op="clear_faults")
        self.assertEqual(self.get(EVENTS_PATH, self.win)[0], 200)
        with self.assertRaises(urllib.error.HTTPError):
            http_control(url, op="nope")

    # ---- live
    def test_late_event_appears(self):
        frm, to = self.now - 120 * NS, self.now + 3600 * NS
        before = set(page_all(self.fake, "events", frm, to, 200)[0])
        late = self.fake.add_event(late_s=90)  # event time 90 s ago, visible only now
        self.assertLess(self.fake.event(late).ts_ns, time.time_ns() - 80 * NS)
        self.assertNotIn(late, before)
        after = set(page_all(self.fake, "events", frm, to, 200)[0])
        self.assertEqual(after - before, {late})
        after_l = set(page_all(self.fake, "legacy", frm, to, 100)[0])
        self.assertIn(late, after_l)
        # scheduled visibility: not visible before its time
        hidden = self.fake.add_event(late_s=5, visible_ns=time.time_ns() + 3600 * NS)
        self.assertNotIn(hidden, set(page_all(self.fake, "events", frm, to, 200)[0]))

    def test_producer(self):
        n0 = len(self.fake)
        self.fake.start_producer(rate=100, late_fraction=0.5, max_late_s=5)
        time.sleep(0.5)
        self.fake.stop_producer()
        self.assertGreater(len(self.fake), n0 + 10)


class CliTest(unittest.TestCase):
    def test_cli(self):
        d = scratch_dir(self, "sf-fakeapi-")
        pf = os.path.join(d, "port")
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "fakeapi", "sysdig_api.py")
        p = subprocess.Popen([sys.executable, script, "--port", "0", "--port-file", pf,
                              "--events", "300", "--seed", "3", "--token", "cli-tok"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(pf):
                    break
                time.sleep(0.1)
            with open(pf) as fh:
                port = int(fh.read())
            url = "http://127.0.0.1:%d" % port
            now = time.time_ns()
            st, _, b = http_get(url, LEGACY_PATH, {"from": now - 7200 * NS, "to": now,
                                                   "limit": 999}, "cli-tok")
            self.assertEqual(st, 200)
            self.assertEqual(len(json.loads(b)["data"]), 300)
        finally:
            p.terminate()
            p.wait(10)
        self.assertEqual(p.returncode, 0)


if __name__ == "__main__":
    main()
