#include "sinks/kafka_rest_parse.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "net/http.h"

static void set_all(sf_deliv_status *st, size_t from, size_t n, sf_deliv_status v)
{
    for (size_t i = from; i < n; i++)
        st[i] = v;
}

static bool kafka_retriable(long code)
{
    static const long retriable[] = {-1, 2, 3, 5, 6, 7, 13, 14, 15, 16, 19, 20, 56, 78, 80, 89};
    for (size_t i = 0; i < sizeof retriable / sizeof retriable[0]; i++)
        if (retriable[i] == code)
            return true;
    return false;
}

sf_deliv_status sf_kr_code_status(long code, bool raw_kafka)
{
    if (code == 0)
        return SF_DELIV_OK;
    if (code >= 1000) {
        switch (code) {
        case 50003: /* producer error, retriable */
        case 50001:
        case 50302:
        case 40404: /* leader not available */
        case 42900:
            return SF_DELIV_RETRY;
        default:
            return code >= 50000 && code != 50002 ? SF_DELIV_RETRY : SF_DELIV_REJECT;
        }
    }
    if (!raw_kafka && (code == 1 || code == 2))
        return code == 2 ? SF_DELIV_RETRY : SF_DELIV_REJECT; /* Confluent legacy codes */
    return kafka_retriable(code) ? SF_DELIV_RETRY : SF_DELIV_REJECT;
}

static const char *known_code(long code)
{
    switch (code) {
    case 40401:
        return "topic not found";
    case 40402:
        return "partition not found";
    case 40403:
        return "consumer instance not found";
    case 40404:
        return "leader not available";
    case 40101:
        return "unauthorized";
    case 40301:
        return "forbidden";
    case 50001:
        return "Kafka error";
    case 50002:
        return "Kafka error (not retriable)";
    case 50003:
        return "Kafka error (retriable)";
    case 50302:
        return "no SSL support / service unavailable";
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

static size_t whole_request(long http, const char *body, size_t len, size_t n, sf_deliv_status *st,
                            char *reason, size_t rl)
{
    long code = 0;
    bool present = false;
    char msg[160] = "";
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (cJSON_IsObject(j)) {
        code = code_of(j, "error_code", &present);
        text_of(j, "message", msg, sizeof msg);
    }
    cJSON_Delete(j);
    bool retry;
    if (http == 429 || http == 408 || http >= 500 || (http > 0 && http < 400))
        retry = true;
    else if (present && code >= 1000)
        retry = sf_kr_code_status(code, false) == SF_DELIV_RETRY;
    else
        retry = false;
    const char *what = present ? known_code(code) : NULL;
    if (present)
        snprintf(reason, rl, "Kafka REST: HTTP %ld, error_code %ld%s%s%s%s%s", http, code,
                 what ? " (" : "", what ? what : "", what ? ")" : "", msg[0] ? ": " : "", msg);
    else
        snprintf(reason, rl, "Kafka REST: HTTP %ld%s", http, http == 429 ? " (rate limited)" : "");
    set_all(st, 0, n, retry ? SF_DELIV_RETRY : SF_DELIV_REJECT);
    return n;
}

static size_t v2_answer(int flavor, int64_t partition, const char *body, size_t len, size_t n,
                        sf_deliv_status *st, char *reason, size_t rl)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *offs = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "offsets") : NULL;
    size_t ne = cJSON_IsArray(offs) ? (size_t)cJSON_GetArraySize(offs) : 0;
    if (!cJSON_IsArray(offs) || ne == 0) {
        cJSON_Delete(j);
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, rl,
                 "Kafka REST: HTTP 200 without an offsets list (not assumed "
                 "delivered)");
        return n;
    }
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
            sf_deliv_status s = sf_kr_code_status(code, raw_kafka);
            if (s == SF_DELIV_OK && !(cJSON_IsNumber(off) && off->valuedouble >= 0))
                s = SF_DELIV_RETRY; /* no offset: not known to be written */
            st[i] = s;
            if (s != SF_DELIV_OK) {
                bad++;
                if (!reason[0]) {
                    char err[120];
                    text_of(e, "error", err, sizeof err);
                    const char *what = known_code(code);
                    snprintf(reason, rl, "Kafka REST: record error_code %ld%s%s%s%s%s", code,
                             what ? " (" : "", what ? what : "", what ? ")" : "",
                             err[0] ? ": " : "", err);
                }
            }
            i++;
        }
        cJSON_Delete(j);
        return bad;
    }
    /* per partition */
    sf_deliv_status worst = SF_DELIV_OK, mine = SF_DELIV_RETRY;
    bool found = false, any_retry = false;
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
        if (s != SF_DELIV_OK) {
            any_retry = any_retry || s == SF_DELIV_RETRY;
            worst = SF_DELIV_REJECT;
            if (!reason[0])
                snprintf(reason, rl, "Kafka REST: partition %ld error_code %ld%s",
                         cJSON_IsNumber(p) ? num_long(p) : -1L, code,
                         partition < 0 ? " (records cannot be mapped to partitions: the "
                                         "request's failed records are all retried)"
                                       : "");
        }
        if (partition >= 0 && cJSON_IsNumber(p) && num_long(p) == partition) {
            found = true;
            mine = s;
        }
    }
    cJSON_Delete(j);
    sf_deliv_status all;
    if (partition >= 0)
        all = found ? mine : (ne == 1 && worst == SF_DELIV_OK ? SF_DELIV_OK : SF_DELIV_RETRY);
    else if (worst == SF_DELIV_OK)
        all = SF_DELIV_OK;
    else
        all = any_retry ? SF_DELIV_RETRY : SF_DELIV_REJECT;
    if (partition >= 0 && !found && all != SF_DELIV_OK && !reason[0])
        snprintf(reason, rl, "Kafka REST: no offsets entry for partition %lld",
                 (long long)partition);
    set_all(st, 0, n, all);
    return all == SF_DELIV_OK ? 0 : n;
}

static size_t v3_answer(const char *body, size_t len, size_t n, sf_deliv_status *st, char *reason,
                        size_t rl)
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
        bool present;
        long code = code_of(r, "error_code", &present);
        sf_deliv_status s;
        if (!present || code == 200)
            s = present ? SF_DELIV_OK : SF_DELIV_RETRY;
        else if (code == 429 || code == 408 || (code >= 500 && code < 600))
            s = SF_DELIV_RETRY;
        else if (code >= 1000)
            s = sf_kr_code_status(code, false);
        else
            s = SF_DELIV_REJECT;
        st[i++] = s;
        if (s != SF_DELIV_OK) {
            bad++;
            if (!reason[0]) {
                char msg[120];
                text_of(r, "message", msg, sizeof msg);
                snprintf(reason, rl, "Kafka REST v3: record error_code %ld%s%s", code,
                         msg[0] ? ": " : "", msg);
            }
        }
        cJSON_Delete(r);
    }
    if (i < n) {
        if (!reason[0])
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
                      size_t reasonlen)
{
    if (transport_error) {
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, reasonlen, "Kafka REST: %s", sf_http_strerror(transport_error));
        return n;
    }
    if (http_status < 200 || http_status >= 300)
        return whole_request(http_status, body, len, n, st, reason, reasonlen);
    if (!body || !len) {
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, reasonlen,
                 "Kafka REST: HTTP %ld with an empty body (not assumed "
                 "delivered)",
                 http_status);
        return n;
    }
    if (api == SF_KR_API_V3)
        return v3_answer(body, len, n, st, reason, reasonlen);
    return v2_answer(flavor, partition, body, len, n, st, reason, reasonlen);
}
