#!/usr/bin/python3
"""Faithful test double of the Sysdig Secure Events API (stdlib only).

Library use (from tests)::

    from sysdig_api import FakeSysdig
    fake = FakeSysdig(token="tok", seed=1)
    fake.generate(1000, span_s=3000)          # 1000 events in the last 50 minutes
    fake.start()                              # ThreadingHTTPServer on 127.0.0.1:<port>
    fake.url                                  # "http://127.0.0.1:<port>"
    fake.add_event(late_s=20)                 # late arrival: event time 20 s ago, visible now
    fake.start_producer(rate=50, late_fraction=0.2, max_late_s=20)   # live events
    fake.inject("429", count=3, retry_after=1)  # next 3 API requests answer 429
    fake.inject("500", probability=0.1)         # 10% of API requests answer 500 (seeded)
    fake.requests                             # list of recorded requests (no token)
    fake.served_ids                           # set of ids ever sent in a 200 page
    fake.ids_between(from_ns, to_ns)          # ids in the store (visible now)
    fake.stop()

Endpoints:
    GET  /api/v1/secureEvents            legacy: limit<=999, page.prev -> older (always present),
                                         page.next -> newer, timestamps RFC 3339 (9 digits)
    GET  /api/v1/secureEvents/status     200 when the token is right
    GET  /secure/events/v1/events        limit 1..200 (default 25), page.next -> older (absent
                                         on the last page), page.prev -> newer, timestamps int64 ns
    POST /_control                       JSON {"op": ...}: inject, clear_faults, add_events,
                                         add_event, stats, reset_requests, set_token,
                                         start_producer, stop_producer, ids
    GET  /_control/stats                 same as {"op":"stats"}

Fault kinds (inject(kind, count=N | probability=p, path=substr, **params)):
    "429" (retry_after=s, html=False), "500"/"502"/"503"/"504" or "5xx" (status=..., html=False),
    "html" (status=502, an HTML body), "malformed" (200, invalid JSON), "truncated" (200, JSON cut
    in the middle, honest Content-Length), "short_read" (Content-Length larger than what is sent,
    then the connection closes), "repeat_cursor" (older-cursor equal to the one sent; applies only
    to cursor requests), "short_page" (size=n events although more remain), "delay" (seconds=s,
    then a normal answer), "reset" (TCP RST without an answer), "401" (bad token answer).

CLI: python3 sysdig_api.py --port 0 --port-file F --events N --seed S --token T [--span S]
     [--live-rate R --late-fraction F --max-late S]
"""

import argparse
import base64
import bisect
import copy
import gzip
import hashlib
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NS = 1_000_000_000
MAX_WINDOW_NS = 14 * 24 * 3600 * NS
LEGACY_PATH = "/api/v1/secureEvents"
STATUS_PATH = "/api/v1/secureEvents/status"
EVENTS_PATH = "/secure/events/v1/events"
CONTROL_PATH = "/_control"
LEGACY_ONLY_FIELDS = ("agentId", "containerId", "machineId", "customerId")

_HERE = os.path.dirname(os.path.abspath(__file__))
_TEMPLATE_FILE = os.path.join(_HERE, "seed_templates.json")


def rfc3339_ns(ts_ns):
    sec, frac = divmod(ts_ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09dZ" % frac


def now_ns():
    return time.time_ns()


def _load_templates():
    try:
        with open(_TEMPLATE_FILE, encoding="utf-8") as f:
            data = json.load(f)["data"]
    except (OSError, ValueError, KeyError):
        data = []
    if not data:
        data = [{"id": "", "cursor": "", "timestamp": "", "customerId": 1, "originator": "policy",
                 "category": "runtime", "source": "syscall", "name": "policy",
                 "description": "d", "severity": 4, "agentId": 1, "containerId": "c",
                 "machineId": "m", "content": {"fields": {}, "output": "o", "ruleName": "r"},
                 "labels": {"host.hostName": "h"}}]
    return data


class Event:
    __slots__ = ("id", "ts_ns", "visible_ns", "body", "source")

    def __init__(self, eid, ts_ns, visible_ns, body):
        self.id = eid
        self.ts_ns = ts_ns
        self.visible_ns = visible_ns
        self.body = body
        self.source = body.get("source", "")


class Fault:
    def __init__(self, kind, count=None, probability=None, path=None, **params):
        self.kind = str(kind)
        self.count = count
        self.probability = probability
        self.path = path
        self.params = params
        self.fired = 0

    def as_dict(self):
        return {"kind": self.kind, "count": self.count, "probability": self.probability,
                "path": self.path, "params": self.params, "fired": self.fired}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # a real API's listen backlog is not socketserver's 5: with more concurrent connections
    # than that, dropped SYNs would be retried a second later and look like late requests
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # clients killed mid-request (kill -9 tests): expected, stay quiet
        super().handle_error(request, client_address)


class BadRequest(Exception):
    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class FakeSysdig:
    """The event store, the HTTP server, fault injection and request recording."""

    def __init__(self, token="test-token", seed=0, host="127.0.0.1", port=0, rate_limit=600,
                 legacy_ts="rfc3339", source_mix=None, quiet=True):
        self.token = token
        self.seed = seed
        self.host = host
        self.port = port
        self.rate_limit = rate_limit
        self.legacy_ts = legacy_ts  # "rfc3339" | "int" | "mixed"
        self.quiet = quiet
        self.rng = random.Random(seed)
        self.fault_rng = random.Random(seed + 1)
        self.lock = threading.RLock()
        self.templates = _load_templates()
        self.source_mix = source_mix or [("syscall", 0.8), ("auditTrail", 0.1),
                                         ("k8s_audit", 0.05), ("aws_cloudtrail", 0.05)]
        self._keys = []  # sorted ascending (ts_ns, id)
        self._events = {}  # id -> Event
        self._queries = {}  # qid -> (filter, zones)
        self.faults = []
        # Content-Encoding: gzip on 200 pages when the client accepts it (Accept-Encoding), as
        # HTTP servers and load balancers in front of APIs commonly do (RFC 9110 8.4.1, 12.5.3);
        # Content-Length is then the compressed size, smaller than the page the client keeps.
        self.gzip = False
        self.requests = []
        self.served_ids = set()
        self.served_count = 0  # events sent in 200 pages, duplicates included
        self._secret = hashlib.sha256(b"fake-sysdig-%d" % seed).digest()
        self._server = None
        self._thread = None
        self._producer = None
        self._producer_stop = threading.Event()

    # ------------------------------------------------------------------ store
    def _new_id(self):
        while True:
            eid = "%032x" % self.rng.getrandbits(128)
            if eid not in self._events:
                return eid

    def _pick_source(self):
        r = self.rng.random()
        acc = 0.0
        for name, p in self.source_mix:
            acc += p
            if r < acc:
                return name
        return self.source_mix[-1][0]

    def _make_body(self, eid, source=None, severity=None):
        rng = self.rng
        tpl = self.templates[rng.randrange(len(self.templates))]
        body = copy.deepcopy(tpl)
        body["id"] = eid
        body["cursor"] = base64.b64encode(("c" + eid[:12]).encode()).decode()
        body["source"] = source or self._pick_source()
        if body["source"] == "auditTrail":
            body["category"] = "audit"
            body["originator"] = "auditTrail"
        body["severity"] = severity if severity is not None else (
            rng.choice([30, 60]) if rng.random() < 0.05 else rng.randrange(8))
        if "agentId" in body:
            body["agentId"] = rng.randrange(100000, 999999)
        content = body.get("content")
        if isinstance(content, dict):
            fields = content.get("fields")
            if isinstance(fields, dict):
                fields["proc.pid"] = str(rng.randrange(1, 65535))
                fields["proc.name"] = rng.choice(["curl", "bash", "sh", "nginx", "python3",
                                                  "kubectl", "nc"])
            if rng.random() < 0.1:
                content["output"] = content.get("output", "") + " note=caf\u00e9 \u2713 \"q\\\" tab\t"
        labels = body.get("labels")
        if isinstance(labels, dict):
            labels["host.hostName"] = "node-%02d.example.internal" % rng.randrange(20)
        return body

    def _insert(self, ev):
        self._events[ev.id] = ev
        bisect.insort(self._keys, (ev.ts_ns, ev.id))

    def add_event(self, ts_ns=None, late_s=None, visible_ns=None, source=None, severity=None,
                  body=None):
        """Adds one event. late_s: event time is late_s seconds in the past but it only becomes
        visible now (ingestion lag). visible_ns: wall-clock ns from which it is visible.
        Returns the id."""
        with self.lock:
            now = now_ns()
            if ts_ns is None:
                ts_ns = now - int((late_s or 0) * NS)
            eid = self._new_id()
            b = self._make_body(eid, source, severity) if body is None else dict(body, id=eid)
            self._insert(Event(eid, int(ts_ns), now if visible_ns is None else int(visible_ns), b))
            return eid

    def add_events(self, n, late_s=None, start_ns=None, end_ns=None, source=None):
        """Adds n events: timestamps spread over [start_ns, end_ns] (default: the last second,
        or, with late_s, late_s seconds ago). All visible from now."""
        ids = []
        with self.lock:
            now = now_ns()
            if end_ns is None:
                end_ns = now - int((late_s or 0) * NS)
            if start_ns is None:
                start_ns = end_ns - NS
            for _ in range(n):
                ts = self.rng.randint(int(start_ns), int(end_ns))
                ids.append(self.add_event(ts_ns=ts, visible_ns=now, source=source))
        return ids

    def generate(self, n, span_s=3600, end_ns=None, source=None):
        """n historical events spread uniformly over [end - span_s, end] (end defaults to now)."""
        end = now_ns() if end_ns is None else int(end_ns)
        return self.add_events(n, start_ns=end - int(span_s * NS), end_ns=end, source=source)

    def ids_between(self, from_ns=None, to_ns=None, visible_only=True, exclude_source=None):
        with self.lock:
            now = now_ns()
            out = []
            for ts, eid in self._keys:
                if from_ns is not None and ts < from_ns:
                    continue
                if to_ns is not None and ts > to_ns:
                    continue
                ev = self._events[eid]
                if visible_only and ev.visible_ns > now:
                    continue
                if exclude_source and ev.source == exclude_source:
                    continue
                out.append(eid)
            return out

    def all_ids(self):
        with self.lock:
            return [eid for _, eid in self._keys]

    def event(self, eid):
        with self.lock:
            return self._events[eid]

    def event_json(self, eid, api="legacy"):
        """The exact bytes (str) this event object has inside a page of the given api."""
        with self.lock:
            return self._serialize(self._events[eid], api)

    def __len__(self):
        return len(self._keys)

    # --------------------------------------------------------------- producer
    def start_producer(self, rate=20.0, late_fraction=0.2, max_late_s=20.0):
        """Background thread adding ~rate events/s; late_fraction of them are late arrivals
        (event time up to max_late_s in the past)."""
        self.stop_producer()
        self._producer_stop.clear()
        prng = random.Random(self.seed + 7)

        def run():
            interval = 1.0 / rate if rate > 0 else 1.0
            while not self._producer_stop.wait(interval):
                if prng.random() < late_fraction:
                    self.add_event(late_s=prng.uniform(1.0, max_late_s))
                else:
                    self.add_event()

        self._producer = threading.Thread(target=run, daemon=True, name="fake-producer")
        self._producer.start()

    def stop_producer(self):
        if self._producer is not None:
            self._producer_stop.set()
            self._producer.join(5)
            self._producer = None

    # ----------------------------------------------------------------- faults
    def inject(self, kind, count=None, probability=None, path=None, **params):
        """count: for the next N matching requests; probability: each matching request with
        probability p (seeded). Neither: every matching request until clear_faults().
        path: substring of the request path (default: the API endpoints, not /_control)."""
        with self.lock:
            f = Fault(kind, count, probability, path, **params)
            self.faults.append(f)
            return f

    def clear_faults(self):
        with self.lock:
            self.faults = []

    def _pick_fault(self, path, has_cursor):
        with self.lock:
            for f in list(self.faults):
                if f.path is not None and f.path not in path:
                    continue
                if f.kind == "repeat_cursor" and not has_cursor:
                    continue
                if f.kind in ("short_page", "repeat_cursor") and path == STATUS_PATH:
                    continue
                if f.count is not None and f.count <= 0:
                    continue
                if f.probability is not None and self.fault_rng.random() >= f.probability:
                    continue
                if f.count is not None:
                    f.count -= 1
                f.fired += 1
                return f
            return None

    # -------------------------------------------------------------- recording
    def reset_requests(self):
        with self.lock:
            self.requests = []

    def api_requests(self, path=None):
        with self.lock:
            return [r for r in self.requests
                    if r["path"] != CONTROL_PATH and not r["path"].startswith(CONTROL_PATH + "/")
                    and (path is None or r["path"] == path)]

    def stats(self):
        with self.lock:
            by_status = {}
            for r in self.requests:
                by_status[str(r.get("status"))] = by_status.get(str(r.get("status")), 0) + 1
            return {"events": len(self._keys), "requests": len(self.api_requests()),
                    "served_ids": len(self.served_ids), "served_count": self.served_count,
                    "by_status": by_status, "faults": [f.as_dict() for f in self.faults],
                    "token_in_url": any(r.get("token_in_url") for r in self.requests)}

    # ---------------------------------------------------------------- cursors
    def _encode_cursor(self, api, direction, key, qid):
        payload = "%s|%s|%d|%s|%s" % (api, direction, key[0], key[1], qid)
        sig = hashlib.sha256(self._secret + payload.encode()).hexdigest()[:10]
        # Real cursors look like base64("-...") / base64("+..."): may contain + / =.
        return base64.b64encode((direction + payload + "|" + sig).encode()).decode()

    def _decode_cursor(self, api, cursor):
        if len(cursor) > 512:
            raise BadRequest(400, "invalid_cursor", "cursor longer than 512 characters")
        try:
            raw = base64.b64decode(cursor.encode(), validate=True).decode()
            direction = raw[0]
            parts = raw[1:].split("|")
            capi, cdir, ts, eid, qid, sig = parts
            payload = "|".join(parts[:5])
            if hashlib.sha256(self._secret + payload.encode()).hexdigest()[:10] != sig:
                raise ValueError("bad signature")
            if capi != api or cdir != direction or direction not in "+-":
                raise ValueError("wrong cursor kind")
            return direction, (int(ts), eid), qid
        except (ValueError, UnicodeDecodeError, IndexError):
            raise BadRequest(400, "invalid_cursor", "invalid cursor") from None

    def _query_id(self, filt, zones):
        q = json.dumps([filt, zones])
        qid = hashlib.sha256(q.encode()).hexdigest()[:8]
        with self.lock:
            self._queries[qid] = (filt, zones)
        return qid

    # ------------------------------------------------------------------ pages
    @staticmethod
    def _filter_fn(filt):
        """Honours the simple forms source != "x" / source = "x" (joined by and); others are
        accepted and ignored."""
        if not filt:
            return None
        conds = []
        for part in filt.split(" and "):
            p = part.strip()
            for op in ("!=", "="):
                if p.startswith("source") and op in p:
                    lhs, rhs = p.split(op, 1)
                    if lhs.strip() == "source":
                        conds.append((op, rhs.strip().strip('"')))
                    break
        if not conds:
            return None

        def ok(ev):
            for op, v in conds:
                if op == "=" and ev.source != v:
                    return False
                if op == "!=" and ev.source == v:
                    return False
            return True
        return ok

    def _page(self, api, start_key, from_ns, direction, limit, filt, short=None):
        """Returns (events newest-first, more_older, first_key, last_key, total)."""
        now = now_ns()
        ok = self._filter_fn(filt)
        with self.lock:
            keys = self._keys
            take = min(limit, short) if short else limit
            out = []
            if direction == "-":  # older than start_key
                i = bisect.bisect_left(keys, start_key) - 1
                total = i + 1
                more = False
                while i >= 0:
                    ts, eid = keys[i]
                    ev = self._events[eid]
                    i -= 1
                    if ev.visible_ns > now or (ok and not ok(ev)):
                        continue
                    if from_ns is not None and ts < from_ns:
                        # first page bounded by the window; older events still exist
                        more = True
                        break
                    if len(out) >= take:
                        more = True
                        break
                    out.append(ev)
                if from_ns is not None:
                    lo = bisect.bisect_left(keys, (from_ns, ""))
                    total = max(0, total - lo)
                if not more and from_ns is not None:
                    pass
            else:  # newer than start_key: the 'limit' events just above it, newest first
                i = bisect.bisect_right(keys, start_key)
                total = len(keys) - i
                above = []
                while i < len(keys) and len(above) < take:
                    ts, eid = keys[i]
                    ev = self._events[eid]
                    i += 1
                    if ev.visible_ns > now or (ok and not ok(ev)):
                        continue
                    above.append(ev)
                out = list(reversed(above))
                more = True
            return out, more, total

    def _serialize(self, ev, api):
        body = dict(ev.body)
        if api == "events":
            for k in LEGACY_ONLY_FIELDS:
                body.pop(k, None)
            body["timestamp"] = ev.ts_ns
        else:
            mode = self.legacy_ts
            if mode == "mixed":
                mode = "int" if int(ev.id[-1], 16) % 2 else "rfc3339"
            body["timestamp"] = ev.ts_ns if mode == "int" else rfc3339_ns(ev.ts_ns)
        # keep "id" first, template key order otherwise
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    def handle_list(self, api, params, fault):
        def one(name):
            v = params.get(name)
            return v[-1] if v else None

        limit_s = one("limit")
        if limit_s is None:
            limit = 25
        else:
            try:
                limit = int(limit_s)
            except ValueError:
                raise BadRequest(400, "invalid_limit", "limit must be an integer") from None
        if api == "events" and not 1 <= limit <= 200:
            raise BadRequest(400, "invalid_limit", "limit must be between 1 and 200")
        if api == "legacy" and not 1 <= limit <= 999:
            raise BadRequest(400, "invalid_limit", "limit must be between 1 and 999")
        filt = one("filter") or ""
        if len(filt) > 2048:
            raise BadRequest(400, "invalid_filter", "filter longer than 2048 characters")
        zones = params.get("zones", [])
        if len(zones) > 100:
            raise BadRequest(400, "invalid_zones", "more than 100 zones")
        for z in zones:
            if not z.lstrip("-").isdigit():
                raise BadRequest(400, "invalid_zones", "zones must be integers")
        cursor = one("cursor")
        f_s, t_s = one("from"), one("to")
        if cursor is not None:
            if f_s is not None or t_s is not None:
                raise BadRequest(400, "invalid_parameters",
                                 "cursor cannot be used together with from/to")
            direction, key, qid = self._decode_cursor(api, cursor)
            with self.lock:
                q = self._queries.get(qid)
            if q is None:
                raise BadRequest(400, "invalid_cursor", "invalid cursor")
            filt = q[0]
            from_ns = None
        else:
            if f_s is None or t_s is None:
                raise BadRequest(400, "missing_parameters", "from and to are required")
            try:
                from_ns, to_ns = int(f_s), int(t_s)
            except ValueError:
                raise BadRequest(400, "invalid_time", "from/to must be int64 nanoseconds") from None
            if from_ns < 0 or to_ns < from_ns:
                raise BadRequest(400, "invalid_time", "from must be <= to")
            if to_ns - from_ns > MAX_WINDOW_NS:
                raise BadRequest(400, "invalid_time_range",
                                 "the time range (to - from) must not exceed 14 days")
            direction, key = "-", (to_ns, "\U0010ffff")
            qid = self._query_id(filt, zones)
        short = None
        if fault is not None and fault.kind == "short_page":
            short = max(0, int(fault.params.get("size", max(1, limit // 3))))
        events, more, total = self._page(api, key, from_ns, direction, limit, filt, short)
        total = max(total, len(events))
        page = {}
        if events:
            first_key = (events[0].ts_ns, events[0].id)
            last_key = (events[-1].ts_ns, events[-1].id)
        else:
            first_key = last_key = key
        older = self._encode_cursor(api, "-", last_key, qid)
        newer = self._encode_cursor(api, "+", first_key, qid)
        if fault is not None and fault.kind == "repeat_cursor" and cursor is not None:
            older = cursor
            more = True
        if api == "legacy":
            page["prev"] = older
            page["next"] = newer
        else:
            if cursor is not None:
                page["prev"] = newer
            if more:
                page["next"] = older
        page["total"] = total
        with self.lock:
            parts = [self._serialize(e, api) for e in events]
        body = '{"data": [' + ",".join(parts) + '], "page": ' + json.dumps(page) + "}"
        return body.encode("utf-8"), [e.id for e in events]

    # ----------------------------------------------------------------- server
    def start(self):
        owner = self

        class Handler(_Handler):
            fake = owner

        self._server = _Server((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="fake-sysdig")
        self._thread.start()
        return self.port

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def stop(self):
        self.stop_producer()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *a):
        self.stop()

    # ---------------------------------------------------------------- control
    def control(self, req):
        op = req.get("op")
        if op == "inject":
            kw = {k: v for k, v in req.items() if k not in ("op", "kind")}
            f = self.inject(req["kind"], **kw)
            return {"ok": True, "fault": f.as_dict()}
        if op == "clear_faults":
            self.clear_faults()
            return {"ok": True}
        if op == "add_events":
            ids = self.add_events(int(req.get("n", 1)), late_s=req.get("late_s"),
                                  start_ns=req.get("start_ns"), end_ns=req.get("end_ns"),
                                  source=req.get("source"))
            return {"ok": True, "ids": ids}
        if op == "add_event":
            eid = self.add_event(ts_ns=req.get("ts_ns"), late_s=req.get("late_s"),
                                 source=req.get("source"))
            return {"ok": True, "id": eid}
        if op == "generate":
            ids = self.generate(int(req.get("n", 1)), span_s=req.get("span_s", 3600))
            return {"ok": True, "count": len(ids)}
        if op == "stats":
            return dict(self.stats(), ok=True)
        if op == "requests":
            with self.lock:
                return {"ok": True, "requests": list(self.requests)}
        if op == "reset_requests":
            self.reset_requests()
            return {"ok": True}
        if op == "set_token":
            self.token = req["token"]
            return {"ok": True}
        if op == "start_producer":
            self.start_producer(req.get("rate", 20.0), req.get("late_fraction", 0.2),
                                req.get("max_late_s", 20.0))
            return {"ok": True}
        if op == "stop_producer":
            self.stop_producer()
            return {"ok": True}
        if op == "ids":
            return {"ok": True, "ids": self.ids_between(req.get("from_ns"), req.get("to_ns")),
                    "served": sorted(self.served_ids)}
        raise BadRequest(400, "bad_op", "unknown op %r" % op)


def _error_body(api, status, reason, message, html=False):
    if html:
        return ("<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center>"
                "<hr><center>nginx</center></body></html>\n" % (status, reason, status, reason)
                ).encode(), "text/html"
    if api == "events":
        typ = {400: "bad_request", 401: "unauthorized", 403: "forbidden",
               429: "too_many_requests"}.get(status, "internal_server_error")
        return json.dumps({"type": typ, "message": message, "details": []}).encode(), \
            "application/json"
    return json.dumps({"errors": [{"message": message, "reason": reason}]}).encode(), \
        "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None  # set by subclass

    def log_message(self, fmt, *args):  # noqa: N802
        if not self.fake.quiet:
            sys.stderr.write("fake-sysdig: " + (fmt % args) + "\n")

    def _send(self, status, body, ctype="application/json", extra=None, content_length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if content_length is None
                                              else content_length))
        self.send_header("X-RateLimit-Limit", str(self.fake.rate_limit))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def do_POST(self):  # noqa: N802
        fake = self.fake
        split = urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if split.path != CONTROL_PATH:
            body, ctype = _error_body("legacy", 404, "not_found", "not found")
            self._send(404, body, ctype)
            return
        try:
            req = json.loads(raw.decode() or "{}")
            out = fake.control(req)
            self._send(200, json.dumps(out).encode())
        except BadRequest as e:
            self._send(400, json.dumps({"ok": False, "error": e.message}).encode())
        except Exception as e:  # noqa: BLE001
            self._send(400, json.dumps({"ok": False, "error": repr(e)}).encode())

    def do_GET(self):  # noqa: N802
        fake = self.fake
        split = urlsplit(self.path)
        path = split.path
        if path == CONTROL_PATH + "/stats":
            self._send(200, json.dumps(fake.stats()).encode())
            return
        params = parse_qs(split.query, keep_blank_values=True)
        api = "events" if path == EVENTS_PATH else "legacy"
        auth = self.headers.get("Authorization")
        token_ok = auth == "Bearer " + fake.token
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        rec = {"t": time.time(), "method": "GET", "path": path,
               "params": {k: list(v) for k, v in params.items()}, "headers": headers,
               "auth": "ok" if token_ok else ("missing" if auth is None else "bad"),
               "token_in_url": bool(fake.token) and fake.token in self.path,
               "status": None, "fault": None, "n": 0, "ids": []}
        with fake.lock:
            fake.requests.append(rec)
        if path not in (LEGACY_PATH, STATUS_PATH, EVENTS_PATH):
            rec["status"] = 404
            body, ctype = _error_body(api, 404, "not_found", "not found")
            self._send(404, body, ctype)
            return
        fault = fake._pick_fault(path, "cursor" in params)
        if fault is not None:
            rec["fault"] = fault.kind
            if fault.kind == "delay":
                time.sleep(float(fault.params.get("seconds", 1.0)))
            elif self._apply_fault(fault, api, rec):
                return
        if not token_ok or (fault is not None and fault.kind == "401"):
            rec["status"] = 401
            body, ctype = _error_body(api, 401, "unauthorized", "Unauthorized: invalid API token")
            self._send(401, body, ctype)
            return
        if path == STATUS_PATH:
            rec["status"] = 200
            self._send(200, b'{"status":"ok"}')
            return
        try:
            body, ids = fake.handle_list(api, params, fault)
        except BadRequest as e:
            rec["status"] = e.status
            body, ctype = _error_body(api, e.status, e.reason, e.message)
            self._send(e.status, body, ctype)
            return
        rec["status"] = 200
        rec["n"] = len(ids)
        rec["ids"] = ids
        if fault is not None and fault.kind in ("malformed", "truncated", "short_read"):
            rec["status"] = "200-" + fault.kind
            if fault.kind == "malformed":
                bad = b'{"data": [{"id": "oops", "timestamp": }, nul' + b"\x00\xff garbage"
                self._send(200, bad)
            elif fault.kind == "truncated":
                self._send(200, body[: max(1, len(body) // 2)])
            else:
                self._send(200, body[: max(1, len(body) // 2)], content_length=len(body))
                self._reset()
            return
        # recorded before sending: a client may check served_ids as soon as it has the page
        with fake.lock:
            fake.served_ids.update(ids)
            fake.served_count += len(ids)
        if fake.gzip and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            self._send(200, gzip.compress(body), extra={"Content-Encoding": "gzip"})
            return
        self._send(200, body)

    def _apply_fault(self, fault, api, rec):
        """Faults answered before any normal processing. Returns True if the answer is sent."""
        k = fault.kind
        p = fault.params
        html = bool(p.get("html", False))
        if k == "429":
            rec["status"] = 429
            body, ctype = _error_body(api, 429, "rate_limited", "Too many requests", html)
            self._send(429, body, ctype, {"Retry-After": str(p.get("retry_after", 1))})
            return True
        if k in ("5xx", "500", "502", "503", "504", "html"):
            status = int(p.get("status", 500 if k in ("5xx", "html") else int(k)))
            if k == "html":
                html = True
                status = int(p.get("status", 502))
            rec["status"] = status
            body, ctype = _error_body(api, status, "server_error", "Internal error", html)
            self._send(status, body, ctype)
            return True
        if k == "reset":
            rec["status"] = "reset"
            self._reset()
            return True
        return False


# ---------------------------------------------------------------------- CLI
def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake Sysdig Secure Events API")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the chosen port to this file")
    ap.add_argument("--token", default=os.environ.get("SYSDIG_SECURE_API_TOKEN", "test-token"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--events", type=int, default=0, help="historical events to generate")
    ap.add_argument("--span", type=float, default=3600, help="seconds the events span")
    ap.add_argument("--legacy-ts", default="rfc3339", choices=["rfc3339", "int", "mixed"])
    ap.add_argument("--live-rate", type=float, default=0.0, help="live events per second")
    ap.add_argument("--late-fraction", type=float, default=0.2)
    ap.add_argument("--max-late", type=float, default=20.0)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    fake = FakeSysdig(token=a.token, seed=a.seed, host=a.host, port=a.port,
                      legacy_ts=a.legacy_ts, quiet=not a.verbose)
    if a.events:
        fake.generate(a.events, span_s=a.span)
    port = fake.start()
    if a.live_rate > 0:
        fake.start_producer(a.live_rate, a.late_fraction, a.max_late)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    print("port %d" % port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
