#!/usr/bin/python3
"""Kafka REST proxy test double, written from ../shared/reference/sinks.md.

Modes: "confluent" (v2: one offsets entry per record, in order, Confluent error codes),
"redpanda" (v2: one entry per partition, raw Kafka codes, offset -1 on failure, no error text),
"v3" (POST /v3/clusters/{id}/topics/{t}/records: concatenated records, concatenated reports).
Records are stored per topic (key, value, partition, offset) for assertions.

Faults:
  request_error(status, error_code=None, count=1, html=False): whole-request answers
  record_failures(code, probability=None, count=None): per-record failures, retriable
      (50003 / Kafka 7 on Redpanda) or not (40101 / Kafka 29)
"""

import base64
import http.server
import json
import random
import re
import threading

V2_JSON = "application/vnd.kafka.json.v2+json"
V2_BINARY = "application/vnd.kafka.binary.v2+json"


class FakeKafkaRest:
    def __init__(self, mode="confluent", topics=("events",), cluster_id="lkc-test",
                 partitions=3, seed=7):
        self.mode = mode
        self.topics = {t: [] for t in topics}
        self.cluster_id = cluster_id
        self.partitions = partitions
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.request_errors = []  # [status, error_code, remaining, html]
        self.record_faults = []   # [code, probability, remaining]
        self.requests = []        # (path, content-type, n records, status)
        self.auth = None          # expected Authorization header
        self.content_errors = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                outer._post(self)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    # ------------------------------------------------------------ faults
    def request_error(self, status, error_code=None, count=1, html=False):
        with self.lock:
            self.request_errors.append([status, error_code, count, html])

    def record_failures(self, code, probability=None, count=None):
        with self.lock:
            self.record_faults.append([code, probability, count])

    def stored(self, topic="events"):
        with self.lock:
            return list(self.topics.get(topic, []))

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _send(h, status, obj=None, raw=None, ctype="application/vnd.kafka.v2+json"):
        body = raw if raw is not None else json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _err(self, h, status, code, msg):
        self._send(h, status, {"error_code": code, "message": msg})

    def _record_fault(self):
        for f in self.record_faults:
            code, p, left = f
            if left is not None:
                if left > 0:
                    f[2] -= 1
                    return code
                continue
            if p is not None and self.rng.random() < p:
                return code
        return None

    def _store(self, topic, key, value, partition):
        log = self.topics[topic]
        off = sum(1 for r in log if r["partition"] == partition)
        log.append({"key": key, "value": value, "partition": partition, "offset": off})
        return off

    def _partition_of(self, key, explicit):
        if explicit is not None:
            return explicit
        if key is None:
            return self.rng.randrange(self.partitions)
        return sum(json.dumps(key).encode()) % self.partitions

    # ------------------------------------------------------------ requests
    def _post(self, h):
        want = int(h.headers.get("Content-Length", "0"))
        raw = h.rfile.read(want)
        if len(raw) < want:
            # the client went away mid-body: an incomplete request is not processed (as a real
            # REST proxy does), no answer
            h.close_connection = True
            return
        path = h.path
        ctype = h.headers.get("Content-Type", "")
        with self.lock:
            self.requests.append((path, ctype, raw.count(b'"value"'), None))
            if self.auth is not None and h.headers.get("Authorization") != self.auth:
                return self._err(h, 401, 40101, "Unauthorized")
            for f in self.request_errors:
                if f[2] > 0:
                    f[2] -= 1
                    if f[3]:
                        return self._send(h, f[0], raw=b"<html><body>Too Many Requests"
                                          b"</body></html>", ctype="text/html")
                    return self._err(h, f[0], f[1], "injected error %s" % f[1])
            m3 = re.fullmatch(r"/v3/clusters/([^/]+)/topics/([^/]+)/records", path)
            m2 = re.fullmatch(r"/topics/([^/]+)(?:/partitions/(\d+))?", path)
            if self.mode == "v3":
                if not m3:
                    return self._err(h, 404, 404, "HTTP 404 Not Found")
                if ctype != "application/json":
                    self.content_errors += 1
                    return self._err(h, 415, 415, "unsupported media type")
                if m3.group(1) != self.cluster_id:
                    return self._err(h, 404, 404, "Cluster %s not found" % m3.group(1))
                return self._v3(h, m3.group(2), raw)
            if not m2:
                return self._err(h, 404, 404, "HTTP 404 Not Found")
            if ctype not in (V2_JSON, V2_BINARY):
                self.content_errors += 1
                return self._err(h, 415, 415, "HTTP 415 Unsupported Media Type")
            if "application/vnd.kafka.v2+json" not in h.headers.get("Accept", ""):
                self.content_errors += 1
                return self._err(h, 406, 40601, "HTTP 406 Not Acceptable")
            return self._v2(h, m2.group(1), m2.group(2), ctype == V2_BINARY, raw)

    def _v2(self, h, topic, part, binary, raw):
        if topic not in self.topics:
            return self._err(h, 404, 40401, "Topic %s not found." % topic)
        explicit = int(part) if part is not None else None
        if explicit is not None and explicit >= self.partitions:
            return self._err(h, 404, 40402, "Partition %d not found." % explicit)
        try:
            body = json.loads(raw)
            recs = body["records"]
            if binary:
                for r in recs:
                    base64.b64decode(r["value"], validate=True)
                    if r.get("key") is not None:
                        base64.b64decode(r["key"], validate=True)
        except Exception as e:  # noqa: BLE001
            return self._err(h, 422, 42201, "Unrecognized request: %s" % e)
        if not recs:
            return self._err(h, 422, 42203, "Request includes an empty records list")
        entries = []
        per_partition = {}
        for r in recs:
            p = self._partition_of(r.get("key"), explicit if explicit is not None
                                   else r.get("partition"))
            code = self._record_fault()
            value = r["value"]
            if binary:
                value = base64.b64decode(value).decode("utf-8", "replace")
            if self.mode == "redpanda":
                kcode = None if code is None else (7 if code == 50003 else 29)
                st = per_partition.setdefault(p, {"partition": p, "offset": None,
                                                  "error_code": None})
                # Redpanda produces a partition's records as one batch: one failure fails all
                st.setdefault("recs", []).append((r.get("key"), value))
                if kcode is not None:
                    st["error_code"] = kcode
                continue
            if code is None:
                off = self._store(topic, r.get("key"), value, p)
                entries.append({"partition": p, "offset": off, "error_code": None, "error": None})
            else:
                entries.append({"partition": None, "offset": None, "error_code": code,
                                "error": "injected failure %d" % code})
        if self.mode == "redpanda":
            out = []
            for p, st in sorted(per_partition.items()):
                if st["error_code"] is None:
                    offs = [self._store(topic, k, v, p) for k, v in st["recs"]]
                    out.append({"partition": p, "offset": offs[0]})
                else:
                    out.append({"partition": p, "offset": -1, "error_code": st["error_code"]})
            return self._send(h, 200, {"offsets": out})
        return self._send(h, 200, {"offsets": entries, "key_schema_id": None,
                                   "value_schema_id": None})

    def _v3(self, h, topic, raw):
        if topic not in self.topics:
            return self._err(h, 404, 40403, "This server does not host this topic-partition.")
        dec = json.JSONDecoder()
        text = raw.decode("utf-8")
        i, reports = 0, []
        while True:
            while i < len(text) and text[i] in " \r\n\t":
                i += 1
            if i >= len(text):
                break
            try:
                rec, i = dec.raw_decode(text, i)
                v = rec["value"]
                value = v["data"]
                if v.get("type") == "BINARY":
                    value = base64.b64decode(value).decode("utf-8", "replace")
                k = rec.get("key", {}).get("data") if isinstance(rec.get("key"), dict) else None
            except Exception as e:  # noqa: BLE001
                reports.append({"error_code": 400, "message": "bad record: %s" % e})
                break
            p = self._partition_of(k, rec.get("partition_id"))
            code = self._record_fault()
            if code is None:
                off = self._store(topic, k, value, p)
                reports.append({"error_code": 200, "cluster_id": self.cluster_id,
                                "topic_name": topic, "partition_id": p, "offset": off})
            else:
                http_code = 500 if code == 50003 else 401 if code == 40101 else code
                reports.append({"error_code": http_code, "message": "injected failure %d" % code})
        body = "".join(json.dumps(r) + "\n" for r in reports).encode()
        return self._send(h, 200, raw=body, ctype="application/json")
