#!/usr/bin/python3
"""Splunk HTTP Event Collector test double: /services/collector[/event] and
/services/collector/ack as Splunk answers them. Each behaviour cites its source.

Answers are {"text", "code"} with the HTTP status of Splunk's table of codes: Splunk docs,
"Troubleshoot HTTP Event Collector", "Possible error codes"
(https://docs.splunk.com/Documentation/Splunk/latest/Data/TroubleshootHTTPEventCollector
#Possible_error_codes); the same codes and statuses 0-14 in Splunk's client splunk/cloudfwd
(src/main/java/com/splunk/cloudfwd/impl/http/ServerErrors.java); bodies as the OpenTelemetry
splunkhecreceiver (written by Splunk to match splunkd) writes them
(open-telemetry/opentelemetry-collector-contrib, receiver/splunkhecreceiver/receiver.go); codes
0-22 with the same statuses and texts in the Splunk admins' lookup of HEC reply codes
(gjanders/SplunkAdmins, lookups/splunkadmins_hec_reply_code_lookup.csv).

Tokens: {token: {"ack": bool, "disabled": bool, "indexes": [allowed] or None}}.
Events are "indexed" (self.indexed, in order) when a request is accepted on a token without
indexer acknowledgement; with it, when the request's ackId is acknowledged (self.ack_after_polls
polls later), unless the request is lost (lose_requests: its events never index and its ack
stays false, as when an indexer restarts before indexing).

Faults:
  busy(k, count=1): the next event request(s) of more than k-1 events: the first k-1 events are
      indexed, answer 503 {"text":"Server is busy","code":9,"invalid-event-number":k}
  lose_requests(count): the next accepted ack requests are lost (acknowledged never)
  fail(status, code, text, count=1): the next event request(s) get that answer
"""

import gzip
import json
import os
import sys
import threading
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakeapi"))
from post_server import PostServer  # noqa: E402

# (HTTP status, text) of each code: Splunk's table (see above; 0-22 checked against the
# SplunkAdmins lookup). 23-25 are in none of the sources reachable when this was written; they
# are modelled as the issue lists them.
CODES = {
    0: (200, "Success"),
    1: (403, "Token disabled"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    7: (400, "Incorrect index"),
    8: (500, "Internal server error"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    14: (400, "ACK is disabled"),
    15: (400, "Error in handling indexed fields"),
    16: (400, "Query string authorization is not enabled"),
    17: (200, "HEC is healthy"),
    18: (503, "HEC is unhealthy, queues are full"),
    19: (503, "HEC is unhealthy, ack service unavailable"),
    20: (503, "HEC is unhealthy, queues are full, ack service unavailable"),
    21: (400, "Invalid token"),
    22: (400, "Token disabled"),
    23: (503, "Server is shutting down"),
    24: (200, "HEC queue is approaching its capacity limit"),
    25: (200, "HEC ACK is approaching its capacity limit"),
}

EVENT_PATHS = ("/services/collector", "/services/collector/event",
               "/services/collector/event/1.0")
ACK_PATH = "/services/collector/ack"


class HecError(Exception):
    def __init__(self, code, extra=None):
        super().__init__(code)
        self.code = code
        self.extra = extra or {}


class FakeHEC:
    def __init__(self, tokens, ack_after_polls=0):
        self.tokens = dict(tokens)
        self.ack_after_polls = ack_after_polls
        self.lock = threading.Lock()
        self.indexed = []      # events indexed, in order (each a dict: the HEC envelope)
        self.requests = []     # (path, channel, status, code, n events)
        self.errors = []       # protocol problems the double saw
        self.channels = {}     # channel -> {"next": ackId, "pending": {ackId: [polls, events,
        #                        lost]}}
        self.faults = []       # [kind, args, remaining]
        self.polls = 0
        self.server = PostServer(self._post)
        self.url = self.server.url

    def stop(self):
        self.server.stop()

    # ------------------------------------------------------------ faults
    def busy(self, k, count=1):
        self.faults.append(["busy", k, count])

    def lose_requests(self, count):
        self.faults.append(["lose", None, count])

    def fail(self, status, code, text, count=1):
        self.faults.append(["fail", (status, code, text), count])

    def restart_indexers(self, ack_after_polls=0):
        """An indexer restart: every channel's pending ack status is gone (Splunk docs, "About
        HTTP Event Collector Indexer Acknowledgment": ack status is not kept across a restart;
        what stays unacknowledged is the client's to re-send), and from now on acks come after
        ack_after_polls polls. Under the lock, so a poll a previous client sent just before it
        exited, still being answered, cannot see the new setting with the old status."""
        with self.lock:
            for c in self.channels.values():
                c["pending"].clear()
            self.ack_after_polls = ack_after_polls

    def _fault(self, kind, applies=lambda a: True):
        for f in self.faults:
            if f[0] == kind and f[2] > 0 and applies(f[1]):
                f[2] -= 1
                return f
        return None

    def ids(self):
        return [e["event"]["id"] for e in self.indexed]

    # ------------------------------------------------------------ HTTP
    def _reply(self, h, status, obj):
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon stopped (or gave up on) this request

    def _answer(self, h, code, extra=None):
        status, text = CODES[code]
        obj = {"text": text, "code": code}
        obj.update(extra or {})
        self._reply(h, status, obj)
        return status

    def _token(self, h):
        """Authorization: Splunk <token>. Missing: 401 code 2; another scheme: 401 code 3;
        unknown: 403 code 4; disabled: 403 code 1 (Splunk's table, see the module doc)."""
        auth = h.headers.get("Authorization")
        if auth is None:
            raise HecError(2)
        if not auth.startswith("Splunk "):
            raise HecError(3)
        tok = self.tokens.get(auth[len("Splunk "):])
        if tok is None:
            raise HecError(4)
        if tok.get("disabled"):
            raise HecError(1)
        return tok

    def _channel(self, h, tok):
        """A token with indexer acknowledgement needs a channel on every request, events and
        ack queries alike: header X-Splunk-Request-Channel or query parameter channel; none:
        400 code 10; not a GUID: 400 code 11. Sources: Splunk docs, "About HTTP Event
        Collector Indexer Acknowledgment", "About channels and sending data"
        (https://docs.splunk.com/Documentation/Splunk/latest/Data/AboutHECIDXAck); the
        splunkhecreceiver's extractChannel / validateChannelHeader (receiver.go) and the Vector
        RFC that recorded Splunk 7.3.2 (vectordotdev/vector,
        rfcs/2021-10-29-9465-splunk-hec-indexer-acknowledgements.md: "Upon enabling indexer
        acknowledgement, Splunk requires HEC requests to include a channel ID (any valid guid
        value). Querying /services/collector/ack also requires a channel ID")."""
        ch = h.headers.get("X-Splunk-Request-Channel")
        if ch is None:
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
            ch = (q.get("channel") or [None])[0]
        if not tok.get("ack"):
            return None
        if not ch:
            raise HecError(10)
        try:
            uuid.UUID(ch)
        except ValueError:
            raise HecError(11) from None
        return ch.lower()

    def _post(self, h):
        raw = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        path = urllib.parse.urlsplit(h.path).path
        ch = None
        try:
            tok = self._token(h)
            ch = self._channel(h, tok)
            if path == ACK_PATH:
                self._ack(h, tok, ch, raw)
            elif path in EVENT_PATHS:
                self._events(h, tok, ch, raw)
            else:
                h.send_response(404)
                h.send_header("Content-Length", "0")
                h.end_headers()
        except HecError as e:
            status = self._answer(h, e.code, e.extra)
            with self.lock:
                self.requests.append((path, ch, status, e.code, None))

    def _parse(self, h, raw):
        """Concatenated JSON envelopes. Not JSON: 400 code 6 with invalid-event-number (the
        index of the bad event); no "event": code 12; "event" empty: code 13; no body: code 5
        (splunkhecreceiver handleReq; Splunk's table)."""
        if h.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
        if not text.strip():
            raise HecError(5)
        dec = json.JSONDecoder()
        out, i = [], 0
        while i < len(text):
            while i < len(text) and text[i] in " \r\n\t":
                i += 1
            if i >= len(text):
                break
            try:
                obj, i = dec.raw_decode(text, i)
            except ValueError:
                raise HecError(6, {"invalid-event-number": len(out)}) from None
            if not isinstance(obj, dict) or "event" not in obj:
                raise HecError(12, {"invalid-event-number": len(out)})
            if obj["event"] in ("", None):
                raise HecError(13, {"invalid-event-number": len(out)})
            out.append(obj)
        return out

    def _events(self, h, tok, ch, raw):
        events = self._parse(h, raw)
        allowed = tok.get("indexes")
        for i, e in enumerate(events):
            if allowed is not None and e.get("index") not in allowed:
                raise HecError(7, {"invalid-event-number": i})
        with self.lock:
            f = self._fault("fail")
            if f:
                status, code, text = f[1]
                self.requests.append((h.path, ch, status, code, len(events)))
                self._reply(h, status, {"text": text, "code": code})
                return
            f = self._fault("busy", lambda k: len(events) >= k)
            if f:
                # Splunk stopped at the k-th event: the k-1 before it were processed. Source:
                # open-telemetry/opentelemetry-collector-contrib issue 36113 (Splunk's
                # maintainer of the splunkhecexporter): '{"text":"Server is busy","code":9,
                # "invalid-event-number":10}' ... "10 means that it stopped on the 10th one,
                # and we can try resending by dropping the first 9 events". Not in Splunk's
                # docs. (Only without indexer acknowledgement here.)
                k = f[1]
                self.indexed.extend(events[:k - 1])
                self.requests.append((h.path, ch, 503, 9, len(events)))
                self._answer(h, 9, {"invalid-event-number": k})
                return
            if not tok.get("ack"):
                self.indexed.extend(events)
                self.requests.append((h.path, ch, 200, 0, len(events)))
                self._answer(h, 0)
                return
            # Indexer acknowledgement: 200 {"text":"Success","code":0,"ackId":N}, ackIds per
            # channel from 0 (Vector RFC above: "Example response from local Splunk 7.3.2";
            # splunkhecreceiver responseOKWithAckID; ids per channel: "ackId's are assigned
            # per-channel")
            c = self.channels.setdefault(ch, {"next": 0, "pending": {}})
            ack_id = c["next"]
            c["next"] += 1
            lost = self._fault("lose") is not None
            c["pending"][ack_id] = [0, events, lost]
            self.requests.append((h.path, ch, 200, 0, len(events)))
            self._answer(h, 0, {"ackId": ack_id})

    def _ack(self, h, tok, ch, raw):
        """POST /services/collector/ack {"acks":[ids]} -> 200 {"acks":{"id":true|false}}.
        A token without acknowledgement: 400 code 14 "ACK is disabled" (Splunk's table;
        cloudfwd ServerErrors: "ack is disabled...can apply to ack poll or event post"). A body
        without a non-empty "acks" list: 400 code 6 (splunkhecreceiver handleAck). An id is
        true once its events are indexed; after answering true Splunk drops it, so asking
        again answers false (Vector RFC: "Upon returning true, Splunk drops the ackId status
        and all subsequent requests with the same ackId will return false"); unknown ids and
        lost requests answer false (Splunk docs, "About HTTP Event Collector Indexer
        Acknowledgment", "Indexer acknowledgment client behavior": ack status is not kept
        across an indexer restart; the client re-sends what stays unacknowledged)."""
        if not tok.get("ack"):
            raise HecError(14)
        try:
            req = json.loads(raw.decode("utf-8"))
            ids = req["acks"]
            if not isinstance(ids, list) or not ids:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise HecError(6) from None
        out = {}
        with self.lock:
            self.polls += 1
            c = self.channels.get(ch, {"next": 0, "pending": {}})
            for i in ids:
                p = c["pending"].get(i)
                if p is None or p[2]:
                    out[str(i)] = False
                    continue
                p[0] += 1
                if p[0] > self.ack_after_polls:
                    self.indexed.extend(p[1])
                    del c["pending"][i]
                    out[str(i)] = True
                else:
                    out[str(i)] = False
            self.requests.append((ACK_PATH, ch, 200, None, len(ids)))
        self._reply(h, 200, {"acks": out})
