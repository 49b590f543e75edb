#include "sinks/kafka_rest_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "net/http.h"

static void set_all(sf_deliv_status *st, size_t from, size_t n, sf_deliv_status v)
{
    for (size_t i = from; i < n; i++)
        st[i] = v;
}

/* Kafka protocol codes whose exception is a RetriableException (apache/kafka
 * clients/src/main/java/org/apache/kafka/common/protocol/Errors.java, each code's exception
 * class in common/errors/), as Redpanda's HTTP Proxy reports them raw. Two more are retried:
 * -1 (UNKNOWN_SERVER_ERROR, not retriable in Kafka) and 55 (OPERATION_NOT_ATTEMPTED): Redpanda's
 * proxy answers them for failures of its own, not of the record (src/v/kafka/client/producer.cc,
 * make_produce_response: 55 when it is stopping, -1 for any other exception). 3
 * (UNKNOWN_TOPIC_OR_PARTITION) is retriable in Kafka; it is also how Redpanda says the topic
 * does not exist (see topic_missing). */
static bool kafka_retriable(long code)
{
    static const long retriable[] = {-1, 2,  3,  5,  6,  7,  9,   13,  14,  15,  16,
                                     19, 20, 41, 51, 55, 56, 70,  71,  72,  74,  75,
                                     78, 80, 83, 84, 88, 89, 100, 103, 106, 122, 123};
    for (size_t i = 0; i < sizeof retriable / sizeof retriable[0]; i++)
        if (retriable[i] == code)
            return true;
    return false;
}

/* A Confluent error code (rest-utils core/.../exceptions/KafkaExceptionMapper.java, kafka-rest
 * Errors.java and exceptions/KafkaRestExceptionMapper.java), or an HTTP status used as one (v3
 * per-record reports: StreamingResponse.java's mappers). As the server means it:
 *   40401 topic not found: a producer TimeoutException "Topic X not present in metadata"
 *   40403 UnknownTopicOrPartitionException: both retriable in Kafka: retried (topic missing)
 *   40404 leader not available, 40801 (SerializationException, HTTP 408), 42901 throttling
 *   quota, 429xxx rate limits, 50003 retriable Kafka error, 50302 broker not available and
 *   other 5xx: retried
 *   50002 non-retriable Kafka error, 40002 bad request, 40101 authentication, 40301
 *   authorization, 40402 partition not found, 413 record too large, 422xx payload/schema and
 *   other 4xx: rejected */
static sf_deliv_status rest_code_status(long code, bool *topic_missing)
{
    switch (code) {
    case 40401:
    case 40403:
        if (topic_missing)
            *topic_missing = true;
        return SF_DELIV_RETRY;
    case 50002:
        return SF_DELIV_REJECT;
    default:
        break;
    }
    long http = code >= 100000 ? code / 1000 : code >= 10000 ? code / 100 : code;
    if (code == 40404 || http == 408 || http == 429 || (http >= 500 && http < 600))
        return SF_DELIV_RETRY;
    return SF_DELIV_REJECT;
}

sf_deliv_status sf_kr_code_status(long code, bool raw_kafka)
{
    if (code == 0)
        return SF_DELIV_OK;
    if (code >= 400)
        return rest_code_status(code, NULL);
    if (!raw_kafka && (code == 1 || code == 2))
        return code == 2 ? SF_DELIV_RETRY : SF_DELIV_REJECT; /* Confluent legacy codes */
    return kafka_retriable(code) ? SF_DELIV_RETRY : SF_DELIV_REJECT;
}

/* The producer's "topic missing" TimeoutException: KafkaProducer.waitOnMetadata's "Topic %s not
 * present in metadata after %d ms." (apache/kafka KafkaProducer.java), matched as rest-utils'
 * KafkaExceptionMapper does (TOPIC_NOT_PRESENT_MESSAGE_PATTERN, lower case). */
static bool not_in_metadata(const char *msg)
{
    char low[400];
    size_t i = 0;
    for (; msg[i] && i + 1 < sizeof low; i++)
        low[i] = (char)tolower((unsigned char)msg[i]);
    low[i] = '\0';
    return strstr(low, "not present in metadata") != NULL;
}

static const char *known_code(long code)
{
    switch (code) {
    case 3:
        return "unknown topic or partition";
    case 40002:
        return "bad request";
    case 40401:
        return "topic not found";
    case 40402:
        return "partition not found";
    case 40403:
        return "unknown topic or partition";
    case 40404:
        return "leader not available";
    case 40801:
        return "serialization error";
    case 40101:
        return "unauthorized";
    case 40301:
        return "forbidden";
    case 42901:
        return "throttled";
    case 50001:
        return "Kafka error";
    case 50002:
        return "Kafka error (not retriable)";
    case 50003:
        return "Kafka error (retriable)";
    case 50302:
        return "broker not available";
    default:
        if (code >= 42200 && code < 42300)
            return "invalid request payload or schema";
        return NULL;
    }
}

static void text_of(const cJSON *o, const char *key, char *out, size_t outlen)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
    out[0] = '\0';
    if (cJSON_IsString(m)) {
        size_t j = 0;
        for (const char *p = m->valuestring; *p && j + 1 < outlen; p++)
            out[j++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        out[j] = '\0';
    }
}

/* A JSON number as a long, clamped (a cast of an out-of-range double is undefined). */
static long num_long(const cJSON *c)
{
    double v = c->valuedouble;
    if (!(v == v))
        return -1;
    if (v >= 1e15)
        return 999999999999999L;
    if (v <= -1e15)
        return -999999999999999L;
    return (long)v;
}

/* error_code as a number: absent or null -> 0 (ok); *present tells whether it was a number */
static long code_of(const cJSON *o, const char *key, bool *present)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, key);
    *present = cJSON_IsNumber(c);
    return cJSON_IsNumber(c) ? num_long(c) : 0;
}

/* A JSON object's "offsets" list with at least one entry, or NULL. */
static const cJSON *offsets_of(const cJSON *j)
{
    const cJSON *offs = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "offsets") : NULL;
    return cJSON_IsArray(offs) && cJSON_GetArraySize(offs) > 0 ? offs : NULL;
}

/* An answer about the whole request: {"error_code","message"} (rest-utils' ErrorMessage,
 * Redpanda's error_body), seastar's {"code","message"}, or anything else. The code decides when
 * there is one (500 with 50002 is not retriable), else the HTTP status. */
static size_t whole_request(long http, const cJSON *j, size_t n, sf_deliv_status *st, char *reason,
                            size_t rl, sf_kr_info *info)
{
    long code = 0;
    bool present = false;
    char msg[160] = "";
    if (cJSON_IsObject(j)) {
        code = code_of(j, "error_code", &present);
        text_of(j, "message", msg, sizeof msg);
    }
    bool missing = false;
    sf_deliv_status s;
    if (present && code >= 400)
        s = rest_code_status(code, &missing);
    else if (http == 429 || http == 408 || http >= 500 || (http > 0 && http < 400))
        s = SF_DELIV_RETRY;
    else
        s = SF_DELIV_REJECT;
    const char *what = present ? known_code(code) : NULL;
    const char *hint = "";
    if (http == 404 && !missing && !(present && code >= 10000))
        hint = " (no such endpoint: check url; Confluent Cloud needs the /kafka path prefix)";
    else if (http == 413)
        hint = " (too large: lower batch.max_bytes)";
    if (present)
        snprintf(reason, rl, "Kafka REST: HTTP %ld, error_code %ld%s%s%s%s%s%s", http, code,
                 what ? " (" : "", what ? what : "", what ? ")" : "", msg[0] ? ": " : "", msg,
                 hint);
    else
        snprintf(reason, rl, "Kafka REST: HTTP %ld%s%s", http, http == 429 ? " (rate limited)" : "",
                 hint);
    if (missing && info)
        info->topic_missing = true;
    set_all(st, 0, n, s);
    return n;
}

/* v2: {"offsets":[...]}. Confluent: one entry per record, in order, {"partition","offset",
 * "error_code","error"} (kafka-rest resources/v2/AbstractProduceAction.java); Redpanda: one per
 * partition, {"partition","error_code"?,"offset"}, offset -1 on failure (pandaproxy
 * json/requests/produce.h). */
static size_t v2_answer(int flavor, int64_t partition, const cJSON *j, const cJSON *offs, size_t n,
                        sf_deliv_status *st, char *reason, size_t rl, sf_kr_info *info)
{
    size_t ne = (size_t)cJSON_GetArraySize(offs);
    bool confluent_marks = cJSON_GetObjectItemCaseSensitive(j, "key_schema_id") ||
                           cJSON_GetObjectItemCaseSensitive(j, "value_schema_id");
    bool per_record = ne == n && (flavor == SF_KR_CONFLUENT ||
                                  (flavor == SF_KR_AUTO && (n == 1 || confluent_marks)));
    bool raw_kafka = flavor == SF_KR_REDPANDA || (flavor == SF_KR_AUTO && !per_record);
    size_t bad = 0;
    reason[0] = '\0';
    if (per_record) {
        size_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, offs)
        {
            bool present;
            long code = cJSON_IsObject(e) ? code_of(e, "error_code", &present) : -1;
            const cJSON *off =
                cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "offset") : NULL;
            char err[300];
            text_of(e, "error", err, sizeof err);
            sf_deliv_status s = sf_kr_code_status(code, raw_kafka);
            if (s == SF_DELIV_OK && !(cJSON_IsNumber(off) && off->valuedouble >= 0))
                s = SF_DELIV_RETRY; /* no offset: not known to be written */
            bool missing = s == SF_DELIV_RETRY && (code == 3 || /* Redpanda, one record */
                                                   (code == 50003 && not_in_metadata(err)) ||
                                                   code == 40401 || code == 40403);
            if (missing && info)
                info->topic_missing = true;
            st[i] = s;
            if (s != SF_DELIV_OK) {
                bad++;
                if (!reason[0]) {
                    const char *what = missing ? "topic not found" : known_code(code);
                    snprintf(reason, rl, "Kafka REST: record error_code %ld%s%s%s%s%.120s", code,
                             what ? " (" : "", what ? what : "", what ? ")" : "",
                             err[0] ? ": " : "", err);
                }
            }
            i++;
        }
        return bad;
    }
    /* per partition */
    sf_deliv_status worst = SF_DELIV_OK, mine = SF_DELIV_RETRY;
    bool found = false, any_retry = false, all_unknown = true, mine_unknown = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, offs)
    {
        bool present;
        long code = cJSON_IsObject(e) ? code_of(e, "error_code", &present) : -1;
        const cJSON *off = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "offset") : NULL;
        const cJSON *p =
            cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "partition") : NULL;
        sf_deliv_status s = sf_kr_code_status(code, raw_kafka);
        if (s == SF_DELIV_OK && !(cJSON_IsNumber(off) && off->valuedouble >= 0)) {
            s = SF_DELIV_RETRY;
            if (!code)
                code = -1;
        }
        bool mine_entry = partition >= 0 && cJSON_IsNumber(p) && num_long(p) == partition;
        /* Redpanda: UNKNOWN_TOPIC_OR_PARTITION on every partition is how a missing topic is
         * answered (tests/rptest/tests/pandaproxy_test.py test_produce_topic) */
        if (!(raw_kafka && code == 3))
            all_unknown = false;
        else if (mine_entry)
            mine_unknown = true;
        if (s != SF_DELIV_OK) {
            any_retry = any_retry || s == SF_DELIV_RETRY;
            worst = SF_DELIV_REJECT;
            if (!reason[0]) {
                const char *what = raw_kafka ? known_code(code) : NULL;
                snprintf(reason, rl, "Kafka REST: partition %ld error_code %ld%s%s%s%s",
                         cJSON_IsNumber(p) ? num_long(p) : -1L, code, what ? " (" : "",
                         what ? what : "", what ? ")" : "",
                         partition < 0 ? " (records cannot be mapped to partitions: the "
                                         "request's failed records are all retried)"
                                       : "");
            }
        }
        if (mine_entry) {
            found = true;
            mine = s;
        }
    }
    sf_deliv_status all;
    if (partition >= 0)
        all = found ? mine : (ne == 1 && worst == SF_DELIV_OK ? SF_DELIV_OK : SF_DELIV_RETRY);
    else if (worst == SF_DELIV_OK)
        all = SF_DELIV_OK;
    else
        all = any_retry ? SF_DELIV_RETRY : SF_DELIV_REJECT;
    if (info && (partition >= 0 ? mine_unknown : all_unknown))
        info->topic_missing = true;
    if (partition >= 0 && !found && all != SF_DELIV_OK && !reason[0])
        snprintf(reason, rl, "Kafka REST: no offsets entry for partition %lld",
                 (long long)partition);
    set_all(st, 0, n, all);
    return all == SF_DELIV_OK ? 0 : n;
}

/* v3: one report per record, in order, each written as its record completes (kafka-rest
 * response/StreamingResponse.java: AsyncResponseQueue writes each result to a ChunkedOutput):
 * {"error_code":200,...} or {"error_code","message"} where error_code is a Confluent code
 * (KafkaExceptionMapper, the default mapper) or an HTTP status (400 unparsable record, 408 the
 * stream outlived streaming.connection.max.duration.ms, 429 rate limit). cut: the transfer
 * failed part-way; the complete reports received still count. */
static size_t v3_answer(const char *body, size_t len, size_t n, bool cut, int transport_error,
                        sf_deliv_status *st, char *reason, size_t rl, sf_kr_info *info)
{
    const char *p = body, *end = body + len;
    size_t i = 0, bad = 0;
    reason[0] = '\0';
    while (i < n) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p >= end)
            break;
        const char *stop = NULL;
        cJSON *r = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, 0);
        if (!cJSON_IsObject(r) || !stop) {
            cJSON_Delete(r);
            break;
        }
        p = stop;
        bool present, missing = false;
        long code = code_of(r, "error_code", &present);
        sf_deliv_status s;
        if (!present || code == 200)
            s = present ? SF_DELIV_OK : SF_DELIV_RETRY;
        else
            s = rest_code_status(code, &missing);
        if (missing && info)
            info->topic_missing = true;
        st[i++] = s;
        if (s != SF_DELIV_OK) {
            bad++;
            if (!reason[0]) {
                char msg[120];
                text_of(r, "message", msg, sizeof msg);
                const char *what = known_code(code);
                snprintf(reason, rl, "Kafka REST v3: record error_code %ld%s%s%s%s%s", code,
                         what ? " (" : "", what ? what : "", what ? ")" : "", msg[0] ? ": " : "",
                         msg);
            }
        }
        cJSON_Delete(r);
    }
    if (i < n) {
        if (!reason[0] && cut)
            snprintf(reason, rl,
                     "Kafka REST v3: answer cut after %zu of %zu record reports (%s): the "
                     "reported records are kept, the others retried",
                     i, n, sf_http_strerror(transport_error));
        else if (!reason[0])
            snprintf(reason, rl,
                     "Kafka REST v3: %zu of %zu record reports missing or "
                     "unparsable (not assumed delivered)",
                     n - i, n);
        bad += n - i;
        set_all(st, i, n, SF_DELIV_RETRY);
    }
    return bad;
}

size_t sf_kr_classify(int api, int flavor, int64_t partition, long http_status, int transport_error,
                      const char *body, size_t len, size_t n, sf_deliv_status *st, char *reason,
                      size_t reasonlen, sf_kr_info *info)
{
    if (info)
        info->topic_missing = false;
    if (transport_error) {
        /* a v3 answer cut part-way: keep the reports that arrived (their records are in Kafka;
         * sending them again would duplicate them) */
        if (api == SF_KR_API_V3 && http_status == 200 && body && len)
            return v3_answer(body, len, n, true, transport_error, st, reason, reasonlen, info);
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, reasonlen, "Kafka REST: %s", sf_http_strerror(transport_error));
        return n;
    }
    bool ok_status = http_status >= 200 && http_status < 300;
    if (ok_status && (!body || !len)) {
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, reasonlen,
                 "Kafka REST: HTTP %ld with an empty body (not assumed "
                 "delivered)",
                 http_status);
        return n;
    }
    if (ok_status && api == SF_KR_API_V3)
        return v3_answer(body, len, n, false, 0, st, reason, reasonlen, info);
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *offs = api == SF_KR_API_V2 ? offsets_of(j) : NULL;
    size_t bad;
    if (offs) {
        /* the per-record outcome whatever the status: Confluent v2 answers 401/403 when a
         * record failed authentication/authorization, with every record's entry in the body
         * (kafka-rest entities/v2/ProduceResponse.java getRequestStatus) */
        bad = v2_answer(flavor, partition, j, offs, n, st, reason, reasonlen, info);
    } else if (ok_status) {
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, reasonlen,
                 "Kafka REST: HTTP %ld without an offsets list (not assumed delivered)",
                 http_status);
        bad = n;
    } else {
        bad = whole_request(http_status, j, n, st, reason, reasonlen, info);
    }
    cJSON_Delete(j);
    return bad;
}
