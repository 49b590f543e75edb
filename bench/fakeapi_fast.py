#!/usr/bin/python3
"""Fast, bench-only double of the Sysdig Secure Events API (stdlib only, asyncio).

Speaks the same API shapes as tests/fakeapi/sysdig_api.py (the faithful test double):
    GET /secure/events/v1/events   limit 1..200 (default 25), int64-ns timestamps, newest first,
                                   page.next -> older (absent on the last page), page.prev ->
                                   newer (cursor requests only), page.total
    GET /api/v1/secureEvents       limit 1..999, RFC 3339 timestamps (9 digits), legacy-only
                                   fields (agentId, containerId, machineId, customerId),
                                   page.prev -> older (always), page.next -> newer, page.total
    GET /api/v1/secureEvents/status
    from/to (int64 ns, to - from <= 14 days) or cursor (not both); a cursor page is not bounded
    by the first page's 'from' (the client clips), as the real API and the test double do.
What makes it fast: the store is an array of timestamps; event i's body is rendered on demand
from pre-compiled per-template byte format strings (no JSON encoding per request), on an
asyncio loop with HTTP/1.1 keep-alive. No fault injection except the rate limit.

Variety: 3 seed templates (tests/fakeapi/seed_templates.json) x 8 field-presence variants
(cloud labels, Kubernetes labels, empty process fields dropped or not) x a note with non-ASCII
and escapes in 10 % of outputs x source (syscall 80 %, auditTrail, k8s_audit, aws_cloudtrail);
per event: id, cursor, timestamp, severity, agentId, proc.pid, proc.name, host name.

Bench knobs (POST /_control, JSON {"op": ...}):
    reset        {latency_ms, rate_limit, backlog}: zero the counters; per-request latency;
                 rate limit in requests/s over a sliding 1-s window (0 = none; beyond it: 429,
                 Retry-After, counted as over_limit); backlog = how many of the newest generated
                 events are visible (the rest do not exist for the API)
    stats        requests, by_status, over_limit, pages, events_served, served_distinct, bytes
    cursors      {api, from, to, limit}: every page URL (path?query) of that listing, in order,
                 for a bare client (curl) to fetch the same pages (no bodies are rendered)
    window       the [oldest, newest] timestamps of the visible backlog
    producer     {rate}: live events (timestamp = visible time = now); rate 0 stops it
    live         [[id, visible_ns], ...] of the live events

CLI: fakeapi_fast.py --port-file F --events N --span SECONDS [--token T] [--seed S]
     fakeapi_fast.py --dump N [--api legacy|events]   (NDJSON of N varied events on stdout)
"""

import argparse
import asyncio
import base64
import bisect
import collections
import copy
import json
import os
import signal
import sys
import time
import zlib
from array import array
from urllib.parse import parse_qs, quote

NS = 1_000_000_000
MAX_WINDOW_NS = 14 * 24 * 3600 * NS
LEGACY_PATH = "/api/v1/secureEvents"
STATUS_PATH = "/api/v1/secureEvents/status"
EVENTS_PATH = "/secure/events/v1/events"
CONTROL_PATH = "/_control"
LEGACY_ONLY_FIELDS = ("agentId", "containerId", "machineId", "customerId")
M64 = (1 << 64) - 1
M128 = (1 << 128) - 1
TEMPLATE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                             "fakeapi", "seed_templates.json")
SOURCES = [("syscall", 80), ("auditTrail", 10), ("k8s_audit", 5), ("aws_cloudtrail", 5)]
PNAMES = [b"curl", b"bash", b"sh", b"nginx", b"python3", b"kubectl", b"nc"]
NOTE = " note=caf\u00e9 \u2713 \"q\\\" tab\t"


def mix64(x):
    """splitmix64 finaliser: a cheap deterministic per-event hash."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def event_id(i, seed):
    """A bijection of i on 128 bits: distinct i -> distinct ids, random-looking hex."""
    x = (i * 0x2545F4914F6CDD1D9E3779B97F4A7C15 + seed * 0x632BE59BD9B4E019 + 1) & M128
    x ^= x >> 64
    x = (x * 0xD6E8FEB86659FD93A3B7C5D9E1F30A61) & M128  # odd: invertible
    return b"%032x" % x


def rfc3339_ns(ts_ns):
    sec, frac = divmod(ts_ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09dZ" % frac


class Corpus:
    """Compiled templates: render(i, ts_ns, api) -> bytes of one event object."""

    HEAD = 85  # bytes of head(i)
    LTS = 32  # bytes of a quoted RFC 3339 timestamp with 9 digits
    NVAR = 8  # field-presence variants per template
    POOL = 8192  # distinct pre-rendered bodies (ids, cursors and timestamps vary per event)

    def __init__(self, seed=0):
        self.seed = seed
        with open(TEMPLATE_FILE, encoding="utf-8") as f:
            self.templates = json.load(f)["data"]
        self.src_table = []
        for name, w in SOURCES:
            self.src_table += [name] * w  # 100 entries
        self.fmts = {"legacy": {}, "events": {}}
        for t in range(len(self.templates)):
            for v in range(self.NVAR):
                for note in (0, 1):
                    for src, _ in SOURCES:
                        body = self._variant(self.templates[t], v, note, src)
                        for api in ("legacy", "events"):
                            self.fmts[api][(t, v, note, src)] = self._compile(body, api)
        self._sec_cache = {}
        self._build_pool()

    @staticmethod
    def _variant(tpl, v, note, src):
        b = copy.deepcopy(tpl)
        b["id"] = "@@ID@@"
        b["cursor"] = "@@CURSOR@@"
        b["timestamp"] = "@@TS@@"
        b["severity"] = "@@SEV@@"
        if "agentId" in b:
            b["agentId"] = "@@AGENT@@"
        b["source"] = src
        if src == "auditTrail":
            b["category"] = "audit"
            b["originator"] = "auditTrail"
        labels = b.get("labels")
        if isinstance(labels, dict):
            if v & 1:  # not in a cloud
                for k in [k for k in labels if k.startswith(("aws.", "cloudProvider."))]:
                    del labels[k]
            if v & 2:  # not on Kubernetes
                for k in [k for k in labels if k.startswith(("kubernetes.", "container.label."))]:
                    del labels[k]
            labels["host.hostName"] = "@@HOST@@"
        content = b.get("content")
        if isinstance(content, dict):
            fields = content.get("fields")
            if isinstance(fields, dict):
                if v & 4:  # process details the agent did not fill
                    for k in [k for k, x in fields.items() if x in ("", [], "<NA>")]:
                        del fields[k]
                fields["proc.pid"] = "@@PID@@"
                fields["proc.name"] = "@@PNAME@@"
            if note:
                content["output"] = content.get("output", "") + NOTE
        return b

    @staticmethod
    def _compile(body, api):
        b = dict(body)
        if api == "events":
            for k in LEGACY_ONLY_FIELDS:
                b.pop(k, None)
        s = json.dumps(b, separators=(",", ":"), ensure_ascii=False).replace("%", "%%")
        for a, r in (('"@@TS@@"', "@@TS@@"), ('"@@SEV@@"', "%(sev)d"), ('"@@AGENT@@"', "%(agent)d"),
                     ("@@ID@@", "%(id)s"), ("@@CURSOR@@", "%(cursor)s"), ("@@HOST@@", "%(host)s"),
                     ("@@PID@@", "%(pid)s"), ("@@PNAME@@", "%(pname)s")):
            s = s.replace(a, r)
        return s.encode("utf-8")

    def _ts_legacy(self, ts_ns):
        sec, frac = divmod(ts_ns, NS)
        p = self._sec_cache.get(sec)
        if p is None:
            if len(self._sec_cache) > 100000:
                self._sec_cache.clear()
            p = self._sec_cache[sec] = time.strftime('"%Y-%m-%dT%H:%M:%S.',
                                                     time.gmtime(sec)).encode()
        return p + b'%09dZ"' % frac

    def _build_pool(self):
        """POOL bodies per api, each split around id, cursor and timestamp (the first three
        keys): (head, mid, ts_prefix, tail); everything after the timestamp is pre-rendered."""
        self.pool = {"legacy": [], "events": []}
        sentinel = {b"id": b"@@ID@@", b"cursor": b"@@CURSOR@@", b"ts": b"@@TS@@"}
        for k in range(self.POOL):
            h = mix64(k ^ (self.seed << 40))
            key = (h % len(self.templates), (h >> 8) % self.NVAR, 1 if (h >> 12) % 10 == 0 else 0,
                   self.src_table[(h >> 16) % 100])
            r = (h >> 24) % 100
            vals = dict(sentinel)
            vals.update({b"sev": (30 if r & 1 else 60) if r < 5 else (h >> 32) % 8,
                         b"agent": 100000 + (h >> 36) % 900000,
                         b"pid": b"%d" % (1 + (h >> 40) % 65534),
                         b"pname": PNAMES[(h >> 48) % len(PNAMES)],
                         b"host": b"node-%02d.example.internal" % ((h >> 52) % 20)})
            for api in ("legacy", "events"):
                full = self.fmts[api][key] % vals
                a, rest = full.split(b"@@ID@@")
                m, rest = rest.split(b"@@CURSOR@@")
                t, tail = rest.split(b"@@TS@@")
                assert a == b'{"id":"' and m == b'","cursor":"' and t == b'","timestamp":', full[:80]
                self.pool[api].append(tail)

    def head(self, i):
        """b'{"id":"<32 hex>","cursor":"<20 base64>","timestamp":' (HEAD bytes) of event i."""
        eid = event_id(i, self.seed)
        return b'{"id":"' + eid + b'","cursor":"' + base64.b64encode(b"c" + eid[:12]) + \
            b'","timestamp":'

    def pool_index(self, i):
        return mix64(i ^ self.seed) % self.POOL

    def ts_bytes(self, ts_ns, api):
        return b"%d" % ts_ns if api == "events" else self._ts_legacy(ts_ns)

    def render(self, i, ts_ns, api):
        return self.head(i) + self.ts_bytes(ts_ns, api) + self.pool[api][self.pool_index(i)]


class Store:
    """Events 0..n-1 with strictly increasing timestamps; [lo, n) are visible."""

    def __init__(self, corpus, n, span_s, end_ns=None, seed=0):
        self.corpus = corpus
        end = time.time_ns() - 5 * NS if end_ns is None else end_ns
        span = int(span_s * NS)
        self.ts = array("q")
        self.heads = bytearray()  # head(i) at i * HEAD: rendering a page copies, never computes
        self.pidx = array("H")
        self.lts = bytearray()  # legacy RFC 3339 timestamps, LTS bytes each (quoted)
        step = max(1, span // max(1, n))
        start = end - span
        for i in range(n):
            self.ts.append(start + i * step + mix64(i + 7 + seed) % step)
            self.heads += corpus.head(i)
            self.pidx.append(corpus.pool_index(i))
            self.lts += corpus._ts_legacy(self.ts[i])
        self.n_backlog = n
        self.lo = 0
        self.vis = {}  # live events: index -> visible ns
        self.live_ids = []

    def set_backlog(self, k):
        k = max(0, min(int(k), self.n_backlog))
        self.lo = self.n_backlog - k

    def append_live(self):
        now = time.time_ns()
        ts = max(now, self.ts[-1] + 1) if len(self.ts) else now
        i = len(self.ts)
        self.ts.append(ts)
        self.heads += self.corpus.head(i)
        self.pidx.append(self.corpus.pool_index(i))
        self.lts += self.corpus._ts_legacy(ts)
        self.vis[i] = now
        self.live_ids.append((event_id(i, self.corpus.seed).decode(), now))


class RateLimiter:
    """limit_rps requests per second on average, accounted as Sysdig advertises its limit:
    X-RateLimit-Limit is requests per minute (../shared/reference/secure-events-api.md,
    "Errors"), so at most limit_rps * 60 requests in any 60 s."""

    WINDOW = 60.0

    def __init__(self, limit_rps):
        self.limit = int(limit_rps) * 60 if limit_rps else 0
        self.times = collections.deque()

    def admit(self, now):
        """(ok, retry_after_s, remaining)."""
        if not self.limit:
            return True, 0, 0
        q = self.times
        while q and q[0] <= now - self.WINDOW:
            q.popleft()
        if len(q) >= self.limit:
            wait = q[0] + self.WINDOW - now
            return False, max(1, int(wait + 0.999)), 0
        q.append(now)
        return True, 0, self.limit - len(q)


class BadRequest(Exception):
    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def error_body(api, status, reason, message):
    if api == "events":
        typ = {400: "bad_request", 401: "unauthorized", 403: "forbidden",
               429: "too_many_requests"}.get(status, "internal_server_error")
        return json.dumps({"type": typ, "message": message, "details": []}).encode()
    return json.dumps({"errors": [{"message": message, "reason": reason}]}).encode()


class Api:
    def __init__(self, store, token, secret=b"fast-fake"):
        self.store = store
        self.token = token
        self.secret = secret
        self.latency = 0.0
        self.limiter = RateLimiter(0)
        self.producer = None
        self.reset()

    def reset(self, latency_ms=None, rate_limit=None, backlog=None):
        if latency_ms is not None:
            self.latency = float(latency_ms) / 1000.0
        if rate_limit is not None:
            self.limiter = RateLimiter(int(rate_limit))
        if backlog is not None:
            self.store.set_backlog(backlog)
        self.requests = 0
        self.by_status = collections.Counter()
        self.over_limit = 0
        self.pages = 0
        self.events_served = 0
        self.bytes = 0
        self.served = bytearray(len(self.store.ts) + 1024)
        self.served_distinct = 0
        self.t_first = self.t_last = None

    def stats(self):
        return {"requests": self.requests, "by_status": dict(self.by_status),
                "over_limit": self.over_limit, "pages": self.pages,
                "events_served": self.events_served, "served_distinct": self.served_distinct,
                "bytes": self.bytes, "latency_ms": self.latency * 1000,
                "rate_limit": self.limiter.limit,
                "visible": len(self.store.ts) - self.store.lo,
                "first_request_t": self.t_first, "last_request_t": self.t_last}

    # cursors: base64("<dir><api>|<index>|<crc>"), index = the last event of the page
    def enc_cursor(self, api, direction, idx):
        p = b"%s%s|%d" % (direction, api.encode(), idx)
        return base64.b64encode(p + b"|%08x" % zlib.crc32(self.secret + p)).decode()

    def dec_cursor(self, api, cursor):
        if len(cursor) > 512:
            raise BadRequest(400, "invalid_cursor", "cursor longer than 512 characters")
        try:
            raw = base64.b64decode(cursor.encode(), validate=True)
            p, sig = raw.rsplit(b"|", 1)
            if b"%08x" % zlib.crc32(self.secret + p) != sig:
                raise ValueError("signature")
            d, rest = p[:1], p[1:]
            capi, idx = rest.split(b"|")
            if capi.decode() != api or d not in (b"-", b"+"):
                raise ValueError("kind")
            return d, int(idx)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest(400, "invalid_cursor", "invalid cursor") from None

    def plan(self, api, params):
        """Validates a list request: (direction, start, from_bound, limit, has_cursor).
        direction '-': indices start, start-1, ... (older); '+': the limit just above start."""
        def one(name):
            v = params.get(name)
            return v[-1] if v else None
        limit_s = one("limit")
        try:
            limit = 25 if limit_s is None else int(limit_s)
        except ValueError:
            raise BadRequest(400, "invalid_limit", "limit must be an integer") from None
        if api == "events" and not 1 <= limit <= 200:
            raise BadRequest(400, "invalid_limit", "limit must be between 1 and 200")
        if api == "legacy" and not 1 <= limit <= 999:
            raise BadRequest(400, "invalid_limit", "limit must be between 1 and 999")
        if len(one("filter") or "") > 2048:
            raise BadRequest(400, "invalid_filter", "filter longer than 2048 characters")
        cursor, f_s, t_s = one("cursor"), one("from"), one("to")
        ts = self.store.ts
        if cursor is not None:
            if f_s is not None or t_s is not None:
                raise BadRequest(400, "invalid_parameters",
                                 "cursor cannot be used together with from/to")
            d, idx = self.dec_cursor(api, cursor)
            if d == b"-":
                return "-", idx - 1, None, limit, True
            return "+", idx + 1, None, limit, True
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
        hi = bisect.bisect_right(ts, to_ns)
        return "-", hi - 1, from_ns, limit, False

    def select(self, api, direction, start, from_ns, limit):
        """(indices newest first, more_older, total)."""
        ts, lo = self.store.ts, self.store.lo
        n = len(ts)
        if direction == "-":
            start = min(start, n - 1)
            stop = lo
            if from_ns is not None:
                stop = max(lo, bisect.bisect_left(ts, from_ns))
            end = max(stop, start + 1 - limit)
            idx = list(range(start, end - 1, -1)) if start >= end else []
            more = start - len(idx) >= lo  # anything older left (beyond 'from' included)
            return idx, more, max(0, start + 1 - stop)
        start = max(start, lo)
        top = min(n, start + limit)
        idx = list(range(top - 1, start - 1, -1))
        return idx, True, n - start

    def page(self, api, params):
        direction, start, from_ns, limit, has_cursor = self.plan(api, params)
        idx, more, total = self.select(api, direction, start, from_ns, limit)
        ts = self.store.ts
        corpus = self.store.corpus
        heads, pidx, pool, H = self.store.heads, self.store.pidx, corpus.pool[api], corpus.HEAD
        parts = []
        if api == "events":
            for i in idx:
                parts += (heads[i * H:i * H + H], b"%d" % ts[i], pool[pidx[i]], b",")
        else:
            lts, L = self.store.lts, corpus.LTS
            for i in idx:
                parts += (heads[i * H:i * H + H], lts[i * L:i * L + L], pool[pidx[i]], b",")
        if parts:
            parts.pop()
        if idx:
            older = self.enc_cursor(api, b"-", idx[-1])
            newer = self.enc_cursor(api, b"+", idx[0])
        else:
            older = self.enc_cursor(api, b"-", start + 1)
            newer = self.enc_cursor(api, b"+", start)
        page = {}
        if api == "legacy":
            page["prev"], page["next"] = older, newer
        else:
            if has_cursor:
                page["prev"] = newer
            if more:
                page["next"] = older
        page["total"] = max(total, len(idx))
        body = b'{"data": [' + b"".join(parts) + b'], "page": ' + json.dumps(page).encode() + b"}"
        served = self.served
        for i in idx:
            if i < len(served) and not served[i]:
                served[i] = 1
                self.served_distinct += 1
        self.pages += 1
        self.events_served += len(idx)
        return body

    def cursors(self, api, from_ns, to_ns, limit):
        """Every page of the listing (from, to, limit) as the client walks it by cursor."""
        path = EVENTS_PATH if api == "events" else LEGACY_PATH
        urls = ["%s?from=%d&to=%d&limit=%d" % (path, from_ns, to_ns, limit)]
        start = bisect.bisect_right(self.store.ts, to_ns) - 1
        bound = from_ns
        while True:
            idx, more, _ = self.select(api, "-", start, bound, limit)
            if not idx or (api == "events" and not more) or (api == "legacy" and
                                                             len(idx) < limit):
                break  # events: no page.next; legacy: a short or empty page ends the walk
            start, bound = idx[-1] - 1, None
            urls.append("%s?cursor=%s&limit=%d" % (
                path, quote(self.enc_cursor(api, b"-", idx[-1]), safe=""), limit))
        return urls

    async def produce(self, rate):
        interval = 1.0 / rate
        loop = asyncio.get_running_loop()
        t = loop.time()
        while True:
            t += interval
            await asyncio.sleep(max(0.0, t - loop.time()))
            self.store.append_live()

    def control(self, req):
        op = req.get("op")
        st = self.store
        if op == "reset":
            self.reset(req.get("latency_ms"), req.get("rate_limit"), req.get("backlog"))
            return {"ok": True}
        if op == "stats":
            return dict(self.stats(), ok=True)
        if op == "window":
            lo = st.lo
            n = len(st.ts)
            return {"ok": True, "oldest": st.ts[lo] if lo < n else None,
                    "newest": st.ts[n - 1] if lo < n else None, "count": n - lo}
        if op == "cursors":
            return {"ok": True, "urls": self.cursors(req["api"], int(req["from"]), int(req["to"]),
                                                     int(req["limit"]))}
        if op == "producer":
            if self.producer is not None:
                self.producer.cancel()
                self.producer = None
            rate = float(req.get("rate", 0))
            if rate > 0:
                self.producer = asyncio.get_running_loop().create_task(self.produce(rate))
            return {"ok": True}
        if op == "live":
            return {"ok": True, "live": st.live_ids}
        raise BadRequest(400, "bad_op", "unknown op %r" % op)

    def handle(self, method, target, headers, body):
        """(status, extra headers, body, delay_s)."""
        path, _, query = target.partition("?")
        if path == CONTROL_PATH or path == CONTROL_PATH + "/stats":
            try:
                req = json.loads(body.decode() or "{}") if method == "POST" else {"op": "stats"}
                return 200, {}, json.dumps(self.control(req)).encode(), 0
            except BadRequest as e:
                return 400, {}, json.dumps({"ok": False, "error": e.message}).encode(), 0
            except Exception as e:  # noqa: BLE001
                return 400, {}, json.dumps({"ok": False, "error": repr(e)}).encode(), 0
        api = "events" if path == EVENTS_PATH else "legacy"
        now = time.monotonic()
        if self.t_first is None:
            self.t_first = time.time()
        self.t_last = time.time()
        self.requests += 1
        if path not in (LEGACY_PATH, STATUS_PATH, EVENTS_PATH):
            self.by_status[404] += 1
            return 404, {}, error_body(api, 404, "not_found", "not found"), 0
        ok, retry, remaining = self.limiter.admit(now)
        extra = {}
        if self.limiter.limit:
            extra = {"X-RateLimit-Limit": str(self.limiter.limit),
                     "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": "60"}
        if not ok:
            self.over_limit += 1
            self.by_status[429] += 1
            extra["Retry-After"] = str(retry)
            return 429, extra, error_body(api, 429, "rate_limited", "Too many requests"), \
                self.latency
        if headers.get("authorization") != "Bearer " + self.token:
            self.by_status[401] += 1
            return 401, extra, error_body(api, 401, "unauthorized",
                                          "Unauthorized: invalid API token"), self.latency
        if path == STATUS_PATH:
            self.by_status[200] += 1
            return 200, extra, b'{"status":"ok"}', self.latency
        try:
            out = self.page(api, parse_qs(query, keep_blank_values=True))
        except BadRequest as e:
            self.by_status[e.status] += 1
            return e.status, extra, error_body(api, e.status, e.reason, e.message), self.latency
        self.by_status[200] += 1
        self.bytes += len(out)
        return 200, extra, out, self.latency


REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found",
           429: b"Too Many Requests"}


class Http(asyncio.Protocol):
    api = None

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        self.busy = False
        self.closed = False
        self.queue = collections.deque()

    def connection_lost(self, exc):
        self.closed = True

    def data_received(self, data):
        self.buf += data
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                if len(self.buf) > 65536:
                    self.t.close()
                return
            head = self.buf[:i].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            clen = int(headers.get("content-length") or 0)
            if len(self.buf) < i + 4 + clen:
                return
            body = self.buf[i + 4:i + 4 + clen]
            self.buf = self.buf[i + 4 + clen:]
            try:
                method, target, version = head[0].split(" ", 2)
            except ValueError:
                self.t.close()
                return
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            self.queue.append((method, target, headers, body, close))
            self.pump()

    def pump(self):
        if self.busy or not self.queue or self.closed:
            return
        method, target, headers, body, close = self.queue.popleft()
        status, extra, out, delay = self.api.handle(method, target, headers, body)
        head = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"Error")),
                b"Content-Type: application/json", b"Content-Length: %d" % len(out)]
        head += [("%s: %s" % kv).encode() for kv in extra.items()]
        if close:
            head.append(b"Connection: close")
        msg = b"\r\n".join(head) + b"\r\n\r\n" + out
        if delay > 0:
            self.busy = True
            asyncio.get_running_loop().call_later(delay, self.send, msg, close)
        else:
            self.send(msg, close)

    def send(self, msg, close):
        self.busy = False
        if self.closed:
            return
        self.t.write(msg)
        if close:
            self.t.close()
            return
        self.pump()


async def serve(args):
    corpus = Corpus(args.seed)
    t0 = time.monotonic()
    store = Store(corpus, args.events, args.span, seed=args.seed)
    api = Api(store, args.token)
    Http.api = api
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, args.host, args.port, backlog=512)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("port %d (%d events in %.1fs)" % (port, args.events, time.monotonic() - t0),
          flush=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    server.close()


MALLOC_ENV = {  # large page bodies: reuse the heap instead of a fresh mmap (page faults) each
    "MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "536870912",
    "MALLOC_TOP_PAD_": "67108864"}


def main(argv=None):
    if argv is None and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, **MALLOC_ENV))
    ap = argparse.ArgumentParser(description="Fast bench-only fake Sysdig Secure Events API")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token", default="bench-token")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--events", type=int, default=0, help="historical events (the backlog)")
    ap.add_argument("--span", type=float, default=3 * 86400, help="seconds the backlog spans")
    ap.add_argument("--dump", type=int, help="print N varied events as NDJSON and exit")
    ap.add_argument("--api", default="legacy", choices=["legacy", "events"])
    a = ap.parse_args(argv)
    if a.dump is not None:
        corpus = Corpus(a.seed)
        t = time.time_ns() - 86400 * NS
        out = sys.stdout.buffer
        for i in range(a.dump):
            out.write(corpus.render(i, t + i * 997_000_000 // 1000 + mix64(i) % 997_000,
                                    a.api) + b"\n")
        return 0
    try:
        asyncio.run(serve(a))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
