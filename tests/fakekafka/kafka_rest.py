#!/usr/bin/python3
"""Kafka REST proxy test double: the produce endpoints of Confluent REST Proxy (v2, v3) and of
Redpanda's HTTP Proxy (pandaproxy, v2), answering as their source code does. Each behaviour
names its source next to it. Repositories (read at these commits):
  Confluent kafka-rest   https://github.com/confluentinc/kafka-rest (985d0e05)
  Confluent rest-utils   https://github.com/confluentinc/rest-utils (5269b872)
  Redpanda               https://github.com/redpanda-data/redpanda (1c6cff34), src/v/pandaproxy
  Apache Kafka           https://github.com/apache/kafka (1eb76443), clients/
  Seastar (Redpanda's HTTP server) https://github.com/scylladb/seastar, src/http/routes.cc

Modes: "confluent" (v2: one offsets entry per record, in order, Confluent error codes),
"redpanda" (v2: one entry per partition, raw Kafka codes, offset -1 on failure),
"v3" (Confluent POST /v3/clusters/{id}/topics/{t}/records: concatenated records in, one
report per record out, streamed). Records are stored per topic (key, value, partition, offset)
for assertions. A topic not in `topics` does not exist (create it later: create_topic).

Faults:
  request_error(status, error_code=None, count=1, html=False): whole-request answers
      ({"error_code","message"}: rest-utils entities/ErrorMessage; html: a front proxy's page);
      status None: the one rest-utils' KafkaExceptionMapper sends the code with (WHOLE_REQUEST)
  record_failures(code, probability=None, count=None): per-record failures with a Confluent
      code (50003 retriable, 50002, 40101 authentication, 40301 authorization), or, in redpanda
      mode, a raw Kafka code (50003 -> 7 REQUEST_TIMED_OUT, other Confluent codes -> 29
      TOPIC_AUTHORIZATION_FAILED)
  cut_stream(after, count=1): v3: the answer stops after `after` reports (the connection is
      closed mid-stream); the records after the cut are not produced
Not emulated: Redpanda's answer to unknown record fields (a parse error), schemas, consumers.
"""

import base64
import json
import os
import random
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakeapi"))
from post_server import PostServer  # noqa: E402

V2_JSON = "application/vnd.kafka.json.v2+json"
V2_BINARY = "application/vnd.kafka.binary.v2+json"
V2 = "application/vnd.kafka.v2+json"

# Whole-request answers: the HTTP status each Confluent error code is sent with, as the exception
# mappers build them (rest-utils core/.../exceptions/KafkaExceptionMapper.java handleException and
# errorMap; kafka-rest exceptions/KafkaRestExceptionMapper.java for 40801), with the Kafka
# exception behind each (Kafka's own classification in brackets, clients/.../common/errors/):
WHOLE_REQUEST = {
    40101: 401,  # AuthenticationException
    40301: 403,  # AuthorizationException
    40401: 404,  # TimeoutException "... not present in metadata" [retriable]
    40403: 404,  # UnknownTopicOrPartitionException, UnknownTopicIdException [retriable]
    50003: 500,  # any other RetriableException [retriable]
    50002: 500,  # any other KafkaException [not retriable]
    50302: 503,  # BrokerNotAvailableException
    42901: 429,  # ThrottlingQuotaExceededException [retriable]
    40002: 400,  # InvalidRequest, InvalidTopic, UnknownServer, PolicyViolation, ... Exception
    40801: 408,  # SerializationException (KafkaRestExceptionMapper; CPKAFKA-3412: the schema
    #              registry unavailable, registration failed, ...)
    413: 413,    # RecordTooLargeException (error_code = the status)
}

# Kafka's KafkaProducer.waitOnMetadata (apache/kafka clients/.../producer/KafkaProducer.java):
# the TimeoutException a send to a topic that does not exist fails with, after max.block.ms
# (60000 by default, ProducerConfig.java)
NOT_IN_METADATA = "Topic %s not present in metadata after 60000 ms."


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
        self.cuts = []            # [after, remaining]
        self.requests = []        # (path, content-type, n records, status)
        self.auth = None          # expected Authorization header
        self.content_errors = 0
        self.server = PostServer(self._post)
        self.url = self.server.url

    def stop(self):
        self.server.stop()

    # ------------------------------------------------------------ faults
    def request_error(self, status, error_code=None, count=1, html=False):
        """status None: the status the exception mapper sends error_code with (WHOLE_REQUEST)"""
        if status is None:
            status = WHOLE_REQUEST[error_code]
        with self.lock:
            self.request_errors.append([status, error_code, count, html])

    def record_failures(self, code, probability=None, count=None):
        with self.lock:
            self.record_faults.append([code, probability, count])

    def cut_stream(self, after, count=1):
        with self.lock:
            self.cuts.append([after, count])

    def create_topic(self, topic):
        with self.lock:
            self.topics.setdefault(topic, [])

    def stored(self, topic="events"):
        with self.lock:
            return list(self.topics.get(topic, []))

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _send(h, status, obj=None, raw=None, ctype=V2):
        body = raw if raw is not None else json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _err(self, h, status, code, msg):
        # rest-utils' ErrorMessage / Redpanda's error_body (pandaproxy json/error.h):
        # {"error_code": <code>, "message": <text>}
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
            if self.mode == "redpanda":
                # Redpanda routes only POST /topics/{topic_name} for produce (pandaproxy
                # api/api-doc/rest.json; /topics/{t}/partitions/{p}/records is GET, a fetch).
                # Any other path: seastar's routes::handle (src/http/routes.cc) answers 404
                # with json_exception(not_found_exception("Not found")).
                m2 = re.fullmatch(r"/topics/([^/]+)", path)
                if not m2:
                    return self._send(h, 404, {"message": "Not found", "code": 404},
                                      ctype="application/json")
                part = None
            else:
                # Confluent: ProduceToTopicAction (POST /topics/{topic}) and
                # ProduceToPartitionAction (POST /topics/{topic}/partitions/{partition})
                m2 = re.fullmatch(r"/topics/([^/]+)(?:/partitions/(\d+))?", path)
                part = m2.group(2) if m2 else None
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
            if V2 not in h.headers.get("Accept", ""):
                self.content_errors += 1
                return self._err(h, 406, 40601, "HTTP 406 Not Acceptable")
            return self._v2(h, m2.group(1), part, ctype == V2_BINARY, raw)

    def _v2(self, h, topic, part, binary, raw):
        exists = topic in self.topics
        explicit = int(part) if part is not None else None
        try:
            body = json.loads(raw)
            recs = body["records"]
            for r in recs:
                p = r.get("partition")
                if p is not None and (not isinstance(p, int) or isinstance(p, bool)):
                    raise ValueError("partition must be an integer")
                if binary:
                    base64.b64decode(r["value"], validate=True)
                    if r.get("key") is not None:
                        base64.b64decode(r["key"], validate=True)
        except Exception as e:  # noqa: BLE001
            return self._err(h, 422, 42201, "Unrecognized request: %s" % e)
        if not recs:
            return self._err(h, 422, 42203, "Request includes an empty records list")
        if self.mode == "redpanda":
            return self._v2_redpanda(h, topic, exists, binary, recs)
        entries = []
        for r in recs:
            # the record's own "partition" wins over the path's (AbstractProduceAction.serialize:
            # record.getPartition().map(Optional::of).orElse(partition))
            p = r.get("partition", None)
            if p is None:
                p = explicit
            if not exists:
                # no topic: the producer's send fails after max.block.ms with a TimeoutException
                # (KafkaProducer.waitOnMetadata), a RetriableException: error code 50003 in the
                # record's entry of a 200 answer (AbstractProduceAction
                # .errorCodeFromProducerException), not the documented 404/40401
                entries.append({"partition": None, "offset": None, "error_code": 50003,
                                "error": NOT_IN_METADATA % topic})
                continue
            p = self._partition_of(r.get("key"), p)
            code = self._record_fault()
            value = r["value"]
            if binary:
                value = base64.b64decode(value).decode("utf-8", "replace")
            if code is None:
                off = self._store(topic, r.get("key"), value, p)
                entries.append({"partition": p, "offset": off, "error_code": None, "error": None})
            else:
                # one entry per record, in order, partition/offset null on failure
                # (AbstractProduceAction.produceResultsToResponse)
                entries.append({"partition": None, "offset": None, "error_code": code,
                                "error": "injected failure %d" % code})
        # entities/v2/ProduceResponse.getRequestStatus: an entry with 40101 makes the answer 401,
        # with 40301 403 (the first such entry decides), the body still lists every record
        status = 200
        for e in entries:
            if e["error_code"] == 40101:
                status = 401
                break
            if e["error_code"] == 40301:
                status = 403
                break
        # entities/v2/ProduceResponse has no @JsonInclude and neither rest-utils nor kafka-rest
        # sets a serialization inclusion: the null schema ids are written (the sink's
        # flavor: auto tells a Confluent answer by them)
        return self._send(h, status, {"offsets": entries, "key_schema_id": None,
                                      "value_schema_id": None})

    def _v2_redpanda(self, h, topic, exists, binary, recs):
        # kafka/client/client.cc produce_records: records are grouped per partition (the
        # record's "partition", else the topic's partitioner; for a topic it does not know,
        # partition 0), one batch per partition, one answer entry per partition
        # (pandaproxy json/requests/produce.h: {"partition", "error_code" if any, "offset"})
        per_partition = {}
        for r in recs:
            p = r.get("partition")
            if p is None:
                p = self._partition_of(r.get("key"), None) if exists else 0
            value = r["value"]
            if binary:
                value = base64.b64decode(value).decode("utf-8", "replace")
            code = self._record_fault()
            kcode = None if code is None else (code if code < 1000 else
                                               7 if code == 50003 else 29)
            st = per_partition.setdefault(p, {"recs": [], "error_code": None})
            # a partition's records are one batch: one failure fails them all
            st["recs"].append((r.get("key"), value))
            if not exists or p >= self.partitions:
                # topic_cache.leader: an unknown topic or partition is
                # UNKNOWN_TOPIC_OR_PARTITION (3) (kafka/client/topic_cache.cc), answered in a
                # 200 (tests/rptest/tests/pandaproxy_test.py test_produce_topic:
                # every entry error_code 3, offset -1)
                st["error_code"] = 3
            elif kcode is not None:
                st["error_code"] = kcode
        out = []
        for p, st in sorted(per_partition.items()):
            if st["error_code"] is None:
                offs = [self._store(topic, k, v, p) for k, v in st["recs"]]
                out.append({"partition": p, "offset": offs[0]})
            else:
                # base_offset -1 on failure (kafka/client/producer.cc make_produce_response;
                # the rptest asserts offset == -1)
                out.append({"partition": p, "error_code": st["error_code"], "offset": -1})
        return self._send(h, 200, {"offsets": out})

    def _v3(self, h, topic, raw):
        dec = json.JSONDecoder()
        text = raw.decode("utf-8")
        i, reports = 0, []
        cut = None
        for f in self.cuts:
            if f[1] > 0:
                f[1] -= 1
                cut = f[0]
                break
        while True:
            while i < len(text) and text[i] in " \r\n\t":
                i += 1
            if i >= len(text):
                break
            if cut is not None and len(reports) >= cut:
                break  # the proxy stopped here: these records are not produced
            try:
                rec, i = dec.raw_decode(text, i)
                v = rec["value"]
                value = v["data"]
                if v.get("type") == "BINARY":
                    value = base64.b64decode(value).decode("utf-8", "replace")
                k = rec.get("key", {}).get("data") if isinstance(rec.get("key"), dict) else None
            except Exception as e:  # noqa: BLE001
                # StreamingResponse: JsonParseException / JsonMappingException -> 400
                reports.append({"error_code": 400, "message": "bad record: %s" % e})
                break
            if topic not in self.topics:
                # no topic: TimeoutException "not present in metadata", mapped by
                # StreamingResponse's default mapper, rest-utils KafkaExceptionMapper, to
                # 40401 (TOPIC_NOT_PRESENT_MESSAGE_PATTERN); a per-record report in a 200
                reports.append({"error_code": 40401, "message": NOT_IN_METADATA % topic})
                continue
            p = self._partition_of(k, rec.get("partition_id"))
            code = self._record_fault()
            if code is None:
                off = self._store(topic, k, value, p)
                reports.append({"error_code": 200, "cluster_id": self.cluster_id,
                                "topic_name": topic, "partition_id": p, "offset": off})
            else:
                # per-record errors carry KafkaExceptionMapper's code (50003 retriable,
                # 40101 AuthenticationException, 40301 AuthorizationException, 50002 other
                # KafkaException), not an HTTP status (StreamingResponse.handleNext)
                reports.append({"error_code": code, "message": "injected failure %d" % code})
        # each report is written as its record completes, to a chunked answer
        # (StreamingResponse.AsyncResponseQueue -> Jersey ChunkedOutput): HTTP 200 first
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for r in reports:
            chunk = (json.dumps(r) + "\n").encode()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if cut is not None:
            # the stream is cut (the proxy stops, a load balancer's idle timeout, the
            # streaming.connection.max.duration.ms close in StreamingResponse.closeAll): no
            # final chunk, the connection is closed
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        h.wfile.write(b"0\r\n\r\n")
