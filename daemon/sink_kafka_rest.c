/* sink_kafka_rest: produces records to a Kafka topic through a Kafka REST proxy (Confluent REST
 * Proxy v2 / v3, Redpanda HTTP Proxy). One request at a time per sink (order is kept); each
 * record's outcome is read from the answer (kafka_rest_parse.c). See docs/sinks-http.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "http.h"
#include "kafka_rest_parse.h"
#include "log.h"
#include "sink.h"
#include "sink_webhook.h"

enum { KAUTH_NONE = 0, KAUTH_BASIC, KAUTH_BEARER };
enum { KEY_EVENT_ID = 0, KEY_NONE };
enum { CONTENT_JSON = 0, CONTENT_BINARY };

typedef struct kr_cfg {
    char *url, *topic, *cluster_id;
    int api, flavor, key, content;
    int64_t partition;
    int auth_type;
    char *username, *password, *token;
    bool tls_verify;
    char *ca_file, *cert_file, *key_file, *key_password;
    int64_t max_events;
    uint64_t max_bytes;
    int64_t timeout_ms, connect_timeout_ms;
    uint64_t max_response;
} kr_cfg;

#define OFF(f) offsetof(kr_cfg, f)

static const char *const api_values[] = {"v2", "v3", NULL};
static const char *const flavor_values[] = {"auto", "confluent", "redpanda", NULL};
static const char *const key_values[] = {"event_id", "none", NULL};
static const char *const content_values[] = {"json", "binary", NULL};
static const char *const kauth_values[] = {"none", "basic", "bearer", NULL};

static const sf_cfg_option kauth_options[] = {
    {.name = "type",
     .type = SF_OPT_ENUM,
     .def = "none",
     .enum_values = kauth_values,
     .desc = "none; basic (username/password); bearer (token)",
     .offset = OFF(auth_type)},
    {.name = "username", .type = SF_OPT_STR, .desc = "basic: user name", .offset = OFF(username)},
    {.name = "password",
     .type = SF_OPT_STR,
     .flags = SF_OPT_SECRET,
     .desc = "basic: password",
     .offset = OFF(password)},
    {.name = "token",
     .type = SF_OPT_STR,
     .flags = SF_OPT_SECRET,
     .desc = "bearer: token",
     .offset = OFF(token)},
    {0},
};

static const sf_cfg_option ktls_options[] = {
    {.name = "verify",
     .type = SF_OPT_BOOL,
     .def = "true",
     .desc = "Verify the proxy's certificate and host name",
     .offset = OFF(tls_verify)},
    {.name = "ca_file",
     .type = SF_OPT_STR,
     .flags = SF_OPT_PATH,
     .desc = "CA bundle (PEM)",
     .offset = OFF(ca_file)},
    {.name = "cert_file",
     .type = SF_OPT_STR,
     .flags = SF_OPT_PATH,
     .desc = "Client certificate (PEM, mutual TLS)",
     .offset = OFF(cert_file)},
    {.name = "key_file",
     .type = SF_OPT_STR,
     .flags = SF_OPT_PATH,
     .desc = "Client private key (PEM)",
     .offset = OFF(key_file)},
    {.name = "key_password",
     .type = SF_OPT_STR,
     .flags = SF_OPT_SECRET,
     .desc = "Passphrase of key_file",
     .offset = OFF(key_password)},
    {0},
};

static const sf_cfg_option kbatch_options[] = {
    {.name = "max_events",
     .type = SF_OPT_INT,
     .def = "500",
     .min = 1,
     .max = 100000,
     .desc = "Records per request",
     .offset = OFF(max_events)},
    {.name = "max_bytes",
     .type = SF_OPT_SIZE,
     .def = "1MiB",
     .min = 1024,
     .max = INT64_C(1) << 30,
     .desc = "Request body size (a single larger record is sent alone)",
     .offset = OFF(max_bytes)},
    {0},
};

static const sf_cfg_option kr_options[] = {
    {.name = "url",
     .type = SF_OPT_STR,
     .flags = SF_OPT_REQUIRED,
     .desc = "REST proxy base URL (http(s)://host:8082)",
     .offset = OFF(url)},
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
    {.name = "tls", .type = SF_OPT_SECTION, .sub = ktls_options, .desc = "TLS settings"},
    {.name = "batch", .type = SF_OPT_SECTION, .sub = kbatch_options, .desc = "Batching"},
    {.name = "timeout",
     .type = SF_OPT_DURATION,
     .def = "10s",
     .min = 100,
     .max = 3600000,
     .desc = "Whole-request timeout",
     .offset = OFF(timeout_ms)},
    {.name = "connect_timeout",
     .type = SF_OPT_DURATION,
     .def = "5s",
     .min = 100,
     .max = 3600000,
     .desc = "Connection timeout",
     .offset = OFF(connect_timeout_ms)},
    {.name = "max_response",
     .type = SF_OPT_SIZE,
     .def = "4MiB",
     .min = 1024,
     .max = INT64_C(1) << 30,
     .desc = "Largest answer read (v2/v3 answers grow with the records per request)",
     .offset = OFF(max_response)},
    {0},
};

typedef struct kr {
    sf_sink *s;
    const kr_cfg *c;
    bool json_records;
    char *url;
    char *hdrs[3];
    size_t nhdrs;
    sf_sink_batch *b;
    size_t next, first, count;
    bool busy, closing;
    void (*closed)(sf_sink *);
} kr_t;

static void kr_free(kr_t *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->nhdrs; i++) {
        memset(k->hdrs[i], 0, strlen(k->hdrs[i]));
        free(k->hdrs[i]);
    }
    free(k->url);
    free(k);
}

static int push_hdr(kr_t *k, sf_buf *h)
{
    if (k->nhdrs >= SF_ARRAY_LEN(k->hdrs)) {
        sf_buf_free(h);
        return -EINVAL;
    }
    k->hdrs[k->nhdrs++] = sf_buf_steal(h);
    return 0;
}

static int kr_open(sf_sink *s)
{
    const kr_cfg *c = s->cfg->type_cfg;
    kr_t *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->s = s;
    k->c = c;
    const char *fmt = s->cfg->format ? s->cfg->format->name : "raw";
    k->json_records = !sf_streq(fmt, "cef") && !sf_streq(fmt, "leef");
    sf_buf u = {0}, h = {0};
    size_t blen = strlen(c->url);
    while (blen && c->url[blen - 1] == '/')
        blen--;
    int rc = sf_buf_append(&u, c->url, blen);
    if (!rc && c->api == SF_KR_API_V3)
        rc = sf_buf_appendf(&u, "/v3/clusters/%s/topics/%s/records", c->cluster_id, c->topic);
    else if (!rc && c->partition >= 0)
        rc = sf_buf_appendf(&u, "/topics/%s/partitions/%lld", c->topic, (long long)c->partition);
    else if (!rc)
        rc = sf_buf_appendf(&u, "/topics/%s", c->topic);
    if (rc)
        goto fail;
    k->url = sf_buf_steal(&u);
    if (c->api == SF_KR_API_V3)
        rc = sf_buf_puts(&h, "Content-Type: application/json");
    else
        rc = sf_buf_appendf(&h, "Content-Type: application/vnd.kafka.%s.v2+json",
                            c->content == CONTENT_BINARY ? "binary" : "json");
    if (rc || (rc = push_hdr(k, &h)))
        goto fail;
    rc = sf_buf_puts(&h, c->api == SF_KR_API_V3 ? "Accept: application/json"
                                                : "Accept: application/vnd.kafka.v2+json");
    if (rc || (rc = push_hdr(k, &h)))
        goto fail;
    if (c->auth_type == KAUTH_BASIC) {
        sf_buf up = {0}, b64 = {0};
        rc = sf_buf_appendf(&up, "%s:%s", c->username ? c->username : "",
                            c->password ? c->password : "");
        if (!rc)
            rc = sf_base64_append(&b64, up.data, up.len);
        if (!rc)
            rc = sf_log_add_secret(b64.data);
        if (!rc)
            rc = sf_buf_appendf(&h, "Authorization: Basic %s", b64.data);
        if (up.data)
            memset(up.data, 0, up.len);
        sf_buf_free(&up);
        sf_buf_free(&b64);
        if (rc || (rc = push_hdr(k, &h)))
            goto fail;
    } else if (c->auth_type == KAUTH_BEARER) {
        if ((rc = sf_buf_appendf(&h, "Authorization: Bearer %s", c->token)) ||
            (rc = push_hdr(k, &h)))
            goto fail;
    }
    s->state = k;
    return 0;
fail:
    sf_buf_free(&u);
    sf_buf_free(&h);
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
        /* same rule as the webhook's json body: JSON records embedded, others as strings */
        sf_buf tmp = {0};
        rc = sf_webhook_body_add(&tmp, SF_WH_BODY_NDJSON, rec, NULL, true, k->json_records, NULL);
        if (!rc)
            rc = sf_buf_append(out, tmp.data, tmp.len);
        sf_buf_free(&tmp);
    }
    if (rc)
        return rc;
    return sf_buf_puts(out, c->api == SF_KR_API_V2 ? "}" : "}}");
}

static void kr_pump(kr_t *k);

static void kr_finish_if_done(kr_t *k)
{
    sf_sink_batch *b = k->b;
    if (!b || k->busy || (k->next < b->n && !k->closing))
        return;
    k->b = NULL;
    sf_sink_batch_done(b);
    if (k->closing && !k->b && k->closed) {
        void (*cb)(sf_sink *) = k->closed;
        k->closed = NULL;
        cb(k->s);
    }
}

static void kr_on_response(sf_http_response *resp, void *ud)
{
    kr_t *k = ud;
    sf_sink_batch *b = k->b;
    char reason[320];
    k->busy = false;
    size_t bad = sf_kr_classify(k->c->api, k->c->flavor, k->c->partition, resp->status, resp->error,
                                resp->body.data, resp->body.len, k->count, b->status + k->first,
                                reason, sizeof reason);
    if (resp->error && resp->errmsg[0]) {
        size_t l = strlen(reason);
        snprintf(reason + l, sizeof reason - l, " (%s)", resp->errmsg);
    }
    if (bad) {
        sf_sink_set_error(k->s, "%s", reason);
        if (resp->retry_after_ms > b->retry_after_ms)
            b->retry_after_ms = resp->retry_after_ms;
        for (size_t i = k->first; i < k->first + k->count; i++)
            if (b->status[i] == SF_DELIV_REJECT && !b->reason[i])
                b->reason[i] = sf_strdup(reason);
    }
    kr_pump(k);
}

static int kr_send(kr_t *k)
{
    const kr_cfg *c = k->c;
    sf_sink_batch *b = k->b;
    sf_buf body = {0};
    int rc = 0;
    size_t n = 0;
    k->first = k->next;
    for (size_t i = k->next; i < b->n && n < (size_t)c->max_events; i++, n++) {
        size_t before = body.len;
        if ((rc = add_record(k, &body, &b->records[i], b->events[i], n == 0)))
            goto out;
        if (n > 0 && body.len + 2 > c->max_bytes) {
            body.len = before;
            body.data[before] = '\0';
            break;
        }
    }
    if (c->api == SF_KR_API_V2 && (rc = sf_buf_puts(&body, "]}")))
        goto out;
    k->count = n;
    sf_http_request req = {
        .method = "POST",
        .url = k->url,
        .headers = (const char *const *)k->hdrs,
        .nheaders = k->nhdrs,
        .body = body.data,
        .body_len = body.len,
        .timeout_ms = c->timeout_ms,
        .connect_timeout_ms = c->connect_timeout_ms,
        .max_response = (size_t)c->max_response,
        .tls = {.verify = c->tls_verify,
                .ca_file = c->ca_file,
                .cert_file = c->cert_file,
                .key_file = c->key_file,
                .key_password = c->key_password},
        .user_agent = "sysdig-forwarder/" SF_VERSION,
    };
    rc = sf_http_send(k->s->http, &req, kr_on_response, k, NULL);
out:
    if (k->count == 0)
        k->count = 1;
    k->next = k->first + k->count;
    sf_buf_free(&body);
    return rc;
}

static void kr_pump(kr_t *k)
{
    sf_sink_batch *b = k->b;
    while (b && !k->closing && !k->busy && k->next < b->n) {
        k->count = 0;
        int rc = kr_send(k);
        if (rc) {
            sf_sink_set_error(k->s, "cannot send request: %s",
                              rc == -ENOMEM ? "out of memory" : sf_http_strerror(rc));
            continue; /* those records stay RETRY */
        }
        k->busy = true;
    }
    kr_finish_if_done(k);
}

static int kr_submit(sf_sink *s, sf_sink_batch *b)
{
    kr_t *k = s->state;
    b->retry_after_ms = 0;
    for (size_t i = 0; i < b->n; i++)
        b->status[i] = SF_DELIV_RETRY;
    k->b = b;
    k->next = 0;
    kr_pump(k);
    return 0;
}

static void kr_close(sf_sink *s, void (*closed)(sf_sink *s))
{
    kr_t *k = s->state;
    k->closing = true;
    if (k->b) {
        k->closed = closed;
        kr_finish_if_done(k);
        return;
    }
    closed(s);
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

static void pos(const sf_cfg_node *node, const char *key, int *line, int *col)
{
    const sf_cfg_node *v = sf_cfg_map_get(node, key);
    *line = v ? v->line : node->line;
    *col = v ? v->col : node->col;
}

static void kr_validate(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const kr_cfg *c = cfg;
    int line, col;
    pos(node, "url", &line, &col);
    if (c->url && strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0)
        sf_cfg_error(errs, line, col, "url: must start with http:// or https://");
    pos(node, "topic", &line, &col);
    if (c->topic && !name_ok(c->topic, 249))
        sf_cfg_error(errs, line, col,
                     "topic: a Kafka topic name is 1-249 characters of [A-Za-z0-9._-]");
    if (c->api == SF_KR_API_V3) {
        pos(node, c->cluster_id ? "cluster_id" : "api", &line, &col);
        if (!c->cluster_id)
            sf_cfg_error(errs, line, col, "api: v3 needs cluster_id");
        else if (!name_ok(c->cluster_id, 255))
            sf_cfg_error(errs, line, col, "cluster_id: expected [A-Za-z0-9._-] characters");
    }
    pos(node, "auth", &line, &col);
    if (c->auth_type == KAUTH_BASIC && (!c->username || !c->password))
        sf_cfg_error(errs, line, col, "auth: type basic needs username and password");
    if (c->auth_type == KAUTH_BEARER && (!c->token || !*c->token))
        sf_cfg_error(errs, line, col, "auth: type bearer needs token");
    if (c->auth_type == KAUTH_NONE && (c->username || c->password || c->token))
        sf_cfg_error(errs, line, col, "auth: credentials given but auth.type is none");
}

const sf_sink_ops sf_sink_kafka_rest_ops = {
    .type = "kafka_rest",
    .desc = "Produces records to a Kafka topic through a REST proxy (Confluent v2/v3, "
            "Redpanda), checking every record's outcome (docs/sinks-http.md).",
    .options = kr_options,
    .cfg_size = sizeof(kr_cfg),
    .validate = kr_validate,
    .open = kr_open,
    .submit = kr_submit,
    .close = kr_close,
    .destroy = kr_destroy,
};
