/* sink_kafka_rest: produces records to a Kafka topic through a Kafka REST proxy (Confluent REST
 * Proxy v2 / v3, Redpanda HTTP Proxy). One request at a time per sink (order is kept); each
 * record's outcome is read from the answer (kafka_rest_parse.c). See docs/sinks-http.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hmac.h"
#include "core/json.h"
#include "core/log.h"
#include "net/http.h"
#include "sinks/http_sink.h"
#include "sinks/kafka_rest_parse.h"
#include "sinks/sink.h"

enum { KEY_EVENT_ID = 0, KEY_NONE };
enum { CONTENT_JSON = 0, CONTENT_BINARY };

typedef struct kr_cfg {
    sf_http_sink_cfg http; /* first: the shared option entries' offsets are from it */
    char *topic, *cluster_id;
    int api, flavor, key, content;
    int64_t partition;
} kr_cfg;

_Static_assert(offsetof(kr_cfg, http) == 0, "sf_http_sink_cfg must come first");

#define OFF(f) offsetof(kr_cfg, f)

static const char *const api_values[] = {"v2", "v3", NULL};
static const char *const flavor_values[] = {"auto", "confluent", "redpanda", NULL};
static const char *const key_values[] = {"event_id", "none", NULL};
static const char *const content_values[] = {"json", "binary", NULL};
static const char *const kauth_values[] = {"none", "basic", "bearer", NULL};

static const sf_cfg_option kauth_options[] = {
    SF_HTTP_OPTS_AUTH(kauth_values, "none; basic (username/password); bearer (token)",
                      "basic: password", "bearer: token"),
    {0},
};

static const sf_cfg_option kbatch_options[] = {
    SF_HTTP_OPTS_BATCH("Records per request",
                       "Request body size (a single larger record is sent alone)"),
    {0},
};

static const sf_cfg_option kr_options[] = {
    SF_HTTP_OPT_URL("REST proxy base URL (http(s)://host:8082)"),
    {.name = "topic",
     .type = SF_OPT_STR,
     .flags = SF_OPT_REQUIRED,
     .desc = "Kafka topic ([A-Za-z0-9._-], at most 249 characters)",
     .offset = OFF(topic)},
    {.name = "api",
     .type = SF_OPT_ENUM,
     .def = "v2",
     .enum_values = api_values,
     .desc = "v2: POST /topics/{topic} (Confluent, Redpanda); v3: POST "
             "/v3/clusters/{cluster_id}/topics/{topic}/records (Confluent)",
     .offset = OFF(api)},
    {.name = "cluster_id",
     .type = SF_OPT_STR,
     .desc = "v3: the Kafka cluster id (required with api: v3)",
     .offset = OFF(cluster_id)},
    {.name = "flavor",
     .type = SF_OPT_ENUM,
     .def = "auto",
     .enum_values = flavor_values,
     .desc = "v2 answers: confluent (one offsets entry per record), redpanda (one per "
             "partition, raw Kafka codes), auto (per record only when certain)",
     .offset = OFF(flavor)},
    {.name = "partition",
     .type = SF_OPT_INT,
     .def = "-1",
     .min = -1,
     .max = INT32_MAX,
     .desc = "Send every record to this partition (-1: the proxy's partitioner). Makes "
             "per-partition answers map exactly onto records",
     .offset = OFF(partition)},
    {.name = "key",
     .type = SF_OPT_ENUM,
     .def = "event_id",
     .enum_values = key_values,
     .desc = "Record key: the event id, or none",
     .offset = OFF(key)},
    {.name = "content",
     .type = SF_OPT_ENUM,
     .def = "json",
     .enum_values = content_values,
     .desc = "json: records as JSON values (non-JSON formats as JSON strings); binary: "
             "base64 of the record bytes",
     .offset = OFF(content)},
    {.name = "auth", .type = SF_OPT_SECTION, .sub = kauth_options, .desc = "Authentication"},
    SF_HTTP_OPT_TLS,
    {.name = "batch", .type = SF_OPT_SECTION, .sub = kbatch_options, .desc = "Batching"},
    SF_HTTP_OPTS_TIMEOUTS("Whole-request timeout"),
    SF_HTTP_OPT_MAX_RESPONSE(
        "4MiB", "Largest answer read (v2/v3 answers grow with the records per request)"),
    {0},
};

typedef struct kr {
    sf_http_batch hb; /* first: sf_http_sink_submit/close and the send callback get it */
    const kr_cfg *c;
    bool json_records;
    char *url;
    sf_http_headers hdrs;
    size_t first, count;
} kr_t;

static void kr_free(kr_t *k)
{
    if (!k)
        return;
    sf_http_headers_free(&k->hdrs);
    free(k->url);
    free(k);
}

static int kr_send(sf_http_batch *hb);

static int kr_open(sf_sink *s)
{
    const kr_cfg *c = s->cfg->type_cfg;
    kr_t *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->hb.s = s;
    k->hb.max_inflight = 1; /* one request at a time: order is kept */
    k->hb.send = kr_send;
    k->c = c;
    k->json_records = sf_http_sink_json_records(s);
    sf_buf u = {0};
    size_t blen = strlen(c->http.url);
    while (blen && c->http.url[blen - 1] == '/')
        blen--;
    int rc = sf_buf_append(&u, c->http.url, blen);
    if (!rc && c->api == SF_KR_API_V3)
        rc = sf_buf_appendf(&u, "/v3/clusters/%s/topics/%s/records", c->cluster_id, c->topic);
    else if (!rc) /* v2: the partition goes in each record (Redpanda has no partition route) */
        rc = sf_buf_appendf(&u, "/topics/%s", c->topic);
    if (rc)
        goto fail;
    k->url = sf_buf_steal(&u);
    if (c->api == SF_KR_API_V3)
        rc = sf_http_headers_add(&k->hdrs, "Content-Type: application/json");
    else
        rc = sf_http_headers_add(&k->hdrs, "Content-Type: application/vnd.kafka.%s.v2+json",
                                 c->content == CONTENT_BINARY ? "binary" : "json");
    if (rc || (rc = sf_http_headers_add(&k->hdrs, "%s",
                                        c->api == SF_KR_API_V3
                                            ? "Accept: application/json"
                                            : "Accept: application/vnd.kafka.v2+json")))
        goto fail;
    if ((rc = sf_http_headers_add_auth(&k->hdrs, &c->http.auth)))
        goto fail;
    s->state = k;
    s->batch_max = (size_t)c->http.max_events; /* queued pages fill one request */
    return 0;
fail:
    sf_buf_free(&u);
    kr_free(k);
    sf_sink_set_error(s, "out of memory");
    return rc;
}

/* One record of the request body. */
static int add_record(kr_t *k, sf_buf *out, const sf_buf *rec, const sf_event *ev, bool first)
{
    const kr_cfg *c = k->c;
    bool bin = c->content == CONTENT_BINARY;
    int rc = 0;
    if (c->api == SF_KR_API_V2) {
        if ((rc = sf_buf_puts(out, first ? "{\"records\":[{" : ",{")))
            return rc;
        /* a record's "partition": Confluent (entities/v2/ProduceRequest.java ProduceRecord) and
         * Redpanda (pandaproxy json/requests/produce.h) both take it; only Confluent has
         * POST /topics/{t}/partitions/{p} */
        if (c->partition >= 0 &&
            (rc = sf_buf_appendf(out, "\"partition\":%lld,", (long long)c->partition)))
            return rc;
        if (c->key == KEY_EVENT_ID) {
            if ((rc = sf_buf_puts(out, "\"key\":")))
                return rc;
            if (bin) {
                rc = sf_buf_putc(out, '"');
                if (!rc)
                    rc = sf_base64_append(out, ev->id, strlen(ev->id));
                if (!rc)
                    rc = sf_buf_puts(out, "\",");
            } else {
                rc = sf_json_str_append(out, ev->id, strlen(ev->id));
                if (!rc)
                    rc = sf_buf_putc(out, ',');
            }
            if (rc)
                return rc;
        }
        if ((rc = sf_buf_puts(out, "\"value\":")))
            return rc;
    } else {
        if (!first && (rc = sf_buf_putc(out, '\n')))
            return rc;
        if ((rc = sf_buf_putc(out, '{')))
            return rc;
        if (c->partition >= 0 &&
            (rc = sf_buf_appendf(out, "\"partition_id\":%lld,", (long long)c->partition)))
            return rc;
        if (c->key == KEY_EVENT_ID) {
            if ((rc = sf_buf_puts(out, bin ? "\"key\":{\"type\":\"BINARY\",\"data\":\""
                                           : "\"key\":{\"type\":\"JSON\",\"data\":")))
                return rc;
            rc = bin ? sf_base64_append(out, ev->id, strlen(ev->id))
                     : sf_json_str_append(out, ev->id, strlen(ev->id));
            if (!rc)
                rc = sf_buf_puts(out, bin ? "\"}," : "},");
            if (rc)
                return rc;
        }
        if ((rc = sf_buf_puts(out, bin ? "\"value\":{\"type\":\"BINARY\",\"data\":"
                                       : "\"value\":{\"type\":\"JSON\",\"data\":")))
            return rc;
    }
    if (bin) {
        rc = sf_buf_putc(out, '"');
        if (!rc)
            rc = sf_base64_append(out, rec->data ? rec->data : "", rec->len);
        if (!rc)
            rc = sf_buf_putc(out, '"');
    } else {
        /* JSON records embedded, others as JSON strings (one line: the webhook's NDJSON rule) */
        rc = sf_json_record_append(out, rec->data, rec->len, k->json_records, true);
    }
    if (rc)
        return rc;
    return sf_buf_puts(out, c->api == SF_KR_API_V2 ? "}" : "}}");
}

static void kr_on_response(sf_http_response *resp, void *ud)
{
    kr_t *k = ud;
    sf_sink *s = k->hb.s;
    char reason[320], why[480];
    sf_kr_info info;
    size_t bad = sf_kr_classify(k->c->api, k->c->flavor, k->c->partition,
                                resp->error ? resp->partial_status : resp->status, resp->error,
                                resp->body.data, resp->body.len, k->count,
                                k->hb.b->status + k->first, reason, sizeof reason, &info);
    /* a record written proves the topic exists; another failure (503, 401, a timeout) says
     * nothing about it either way */
    bool landed = bad < k->count;
    if (info.topic_missing) {
        /* retried like Kafka's own producer does (the topic may be created); visible: the sink
         * is not ready with this reason, the topic_missing gauge, one error line per episode */
        snprintf(why, sizeof why,
                 "topic \"%s\" does not exist (or the proxy cannot see it); its events are "
                 "retried (retry.max_attempts) until it is created [%s]",
                 k->c->topic, reason);
        if (!s->topic_missing)
            SF_ERROR("sink", "sink %s: %s", s->name, why);
    } else {
        snprintf(why, sizeof why, "%s", reason);
        if (s->topic_missing && landed)
            SF_INFO("sink", "sink %s: topic \"%s\" exists now", s->name, k->c->topic);
    }
    if (info.topic_missing || landed)
        s->topic_missing = info.topic_missing;
    sf_http_batch_answered(&k->hb, resp, k->first, k->count, bad, true, why, sizeof why);
    sf_http_batch_pump(&k->hb);
}

static int kr_add(void *ud, sf_buf *out, size_t i, bool first)
{
    kr_t *k = ud;
    return add_record(k, out, &k->hb.b->records[i], k->hb.b->events[i], first);
}

/* sf_http_batch.send */
static int kr_send(sf_http_batch *hb)
{
    kr_t *k = (kr_t *)hb;
    const kr_cfg *c = k->c;
    sf_buf body = {0};
    size_t n = 0;
    k->count = 0;
    k->first = hb->next;
    int rc = sf_http_batch_fill(hb, k->first, &c->http, 2, &body, kr_add, k, &n);
    if (rc || (c->api == SF_KR_API_V2 && (rc = sf_buf_puts(&body, "]}"))))
        goto out;
    k->count = n;
    sf_http_request req = {
        .method = "POST",
        .url = k->url,
        .headers = (const char *const *)k->hdrs.v,
        .nheaders = k->hdrs.n,
        .body = body.data,
        .body_len = body.len,
    };
    sf_http_sink_request(&req, &c->http);
    rc = sf_http_send(hb->s->http, &req, kr_on_response, k, NULL);
out:
    sf_http_batch_advance(hb, k->first, &k->count);
    sf_buf_free(&body);
    return rc;
}

static void kr_destroy(sf_sink *s)
{
    kr_free(s->state);
    s->state = NULL;
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static void kr_validate(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const kr_cfg *c = cfg;
    int line, col;
    sf_http_sink_validate_url(&c->http, node, errs);
    sf_http_sink_validate_tls(&c->http, node, errs);
    sf_cfg_pos(node, "topic", &line, &col);
    if (c->topic && !name_ok(c->topic, 249))
        sf_cfg_error(errs, line, col,
                     "topic: a Kafka topic name is 1-249 characters of [A-Za-z0-9._-]");
    if (c->api == SF_KR_API_V3) {
        sf_cfg_pos(node, c->cluster_id ? "cluster_id" : "api", &line, &col);
        if (!c->cluster_id)
            sf_cfg_error(errs, line, col, "api: v3 needs cluster_id");
        else if (!name_ok(c->cluster_id, 255))
            sf_cfg_error(errs, line, col, "cluster_id: expected [A-Za-z0-9._-] characters");
    }
    sf_http_sink_validate_auth(&c->http.auth, node, errs, "");
    sf_http_sink_warn_transport(
        &c->http, node,
        c->http.auth.type == SF_HTTP_AUTH_BASIC || c->http.auth.type == SF_HTTP_AUTH_BEARER, errs);
}

const sf_sink_ops sf_sink_kafka_rest_ops = {
    .type = "kafka_rest",
    .desc = "Produces records to a Kafka topic through a REST proxy (Confluent v2/v3, "
            "Redpanda), checking every record's outcome (docs/sinks-http.md).",
    .options = kr_options,
    .cfg_size = sizeof(kr_cfg),
    .validate = kr_validate,
    .check_env = sf_http_sink_check_env,
    .open = kr_open,
    .submit = sf_http_sink_submit,
    .close = sf_http_sink_close,
    .destroy = kr_destroy,
};
