/* sink_webhook: "webhook" (generic HTTP receiver) and "splunk_hec" (Splunk HTTP Event
 * Collector preset) sink types. See docs/sinks-http.md.
 * Over 600 lines because it holds two sink types that share one request path: their option
 * tables (a third of the file), body building, the generic classification and gzip. The HEC
 * answer classification (Splunk's codes) and indexer acknowledgement are hec.c. */
#include "sinks/sink_webhook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hmac.h"
#include "core/log.h"
#include "core/uuid.h"
#include "net/http.h"
#include "sinks/http_sink.h"
#include "sinks/hec.h"

typedef struct wh_cfg {
    sf_http_sink_cfg http; /* first: the shared option entries' offsets are from it */
    int method;
    sf_kvlist headers;
    int body;
    int64_t max_wait_ms;
    bool gzip;
    int64_t concurrency;
    /* splunk_hec */
    char *hec_token, *hec_host, *hec_source, *hec_sourcetype, *hec_index;
    bool hec_ack;
    int64_t ack_poll_ms, ack_timeout_ms;
    uint64_t ack_window_bytes;
} wh_cfg;

_Static_assert(offsetof(wh_cfg, http) == 0, "sf_http_sink_cfg must come first");

static const char *const method_values[] = {"POST", "PUT", "PATCH", NULL};
static const char *const auth_values[] = {"none", "basic", "bearer", "hmac", NULL};
static const char *const body_values[] = {"json", "ndjson", NULL};

#define OFF(f) offsetof(wh_cfg, f)

static const sf_cfg_option auth_options[] = {
    SF_HTTP_OPTS_AUTH(auth_values,
                      "none; basic (username/password); bearer (token); hmac (HMAC-SHA256 "
                      "signature of '<timestamp>.<body>' with secret, see docs/sinks-http.md)",
                      "basic: password (use ${ENV})",
                      "bearer: token sent as 'Authorization: Bearer <token>'"),
    {.name = "secret",
     .type = SF_OPT_STR,
     .flags = SF_OPT_SECRET,
     .desc = "hmac: shared secret (the key of HMAC-SHA256)",
     .offset = OFF(http.auth.secret)},
    {.name = "header",
     .type = SF_OPT_STR,
     .def = "X-Signature",
     .desc = "hmac: header carrying the lower-case hex signature",
     .offset = OFF(http.auth.sig_header)},
    {.name = "timestamp_header",
     .type = SF_OPT_STR,
     .def = "X-Timestamp",
     .desc = "hmac: header carrying the signing time (Unix seconds)",
     .offset = OFF(http.auth.ts_header)},
    {0},
};

static const sf_cfg_option batch_options[] = {
    SF_HTTP_OPTS_BATCH("Records per request (a batch is split into several requests)",
                       "Uncompressed body size per request (a single larger record is sent alone)"),
    {.name = "max_wait",
     .type = SF_OPT_DURATION,
     .def = "1s",
     .min = 0,
     .max = 3600000,
     .desc = "How long records of a partial batch (fewer than max_events x concurrency) may wait "
             "for more pages before they are sent; 0 sends at once",
     .offset = OFF(max_wait_ms)},
    {0},
};

#define COMMON_HTTP_OPTIONS                                                                        \
    {.name = "headers",                                                                            \
     .type = SF_OPT_KVLIST,                                                                        \
     .flags = SF_OPT_SECRET,                                                                       \
     .desc = "Extra request headers (values are treated as secrets in logs)",                      \
     .offset = OFF(headers)},                                                                      \
        SF_HTTP_OPT_TLS,                                                                           \
        {.name = "batch", .type = SF_OPT_SECTION, .sub = batch_options, .desc = "Batching"},       \
        {.name = "gzip",                                                                           \
         .type = SF_OPT_BOOL,                                                                      \
         .def = "false",                                                                           \
         .desc = "Compress request bodies (Content-Encoding: gzip)",                               \
         .offset = OFF(gzip)},                                                                     \
        SF_HTTP_OPTS_TIMEOUTS("Whole-request timeout (a timeout is retried)"),                     \
        {.name = "concurrency",                                                                    \
         .type = SF_OPT_INT,                                                                       \
         .def = "2",                                                                               \
         .min = 1,                                                                                 \
         .max = 64,                                                                                \
         .desc = "Parallel requests while delivering one batch",                                   \
         .offset = OFF(concurrency)},                                                              \
        SF_HTTP_OPT_MAX_RESPONSE("64KiB", "Largest response body read")

static const sf_cfg_option webhook_options[] = {
    SF_HTTP_OPT_URL("Receiver URL (http:// or https://)"),
    {.name = "method",
     .type = SF_OPT_ENUM,
     .def = "POST",
     .enum_values = method_values,
     .desc = "HTTP method",
     .offset = OFF(method)},
    {.name = "auth", .type = SF_OPT_SECTION, .sub = auth_options, .desc = "Authentication"},
    {.name = "body",
     .type = SF_OPT_ENUM,
     .def = "json",
     .enum_values = body_values,
     .desc = "json: one JSON array of records per request; ndjson: one record per line "
             "(records that are not JSON, e.g. cef/leef, become JSON strings in json)",
     .offset = OFF(body)},
    COMMON_HTTP_OPTIONS,
    {0},
};

static const sf_cfg_option hec_options[] = {
    SF_HTTP_OPT_URL("HEC base URL (https://splunk:8088); /services/collector/event is appended "
                    "unless the URL has a path"),
    {.name = "token",
     .type = SF_OPT_STR,
     .flags = SF_OPT_REQUIRED | SF_OPT_SECRET,
     .desc = "HEC token, sent as 'Authorization: Splunk <token>'",
     .offset = OFF(hec_token)},
    {.name = "sourcetype",
     .type = SF_OPT_STR,
     .def = "sysdig:secure",
     .desc = "HEC sourcetype",
     .offset = OFF(hec_sourcetype)},
    {.name = "source",
     .type = SF_OPT_STR,
     .def = "sysdig-forwarder",
     .desc = "HEC source",
     .offset = OFF(hec_source)},
    {.name = "index",
     .type = SF_OPT_STR,
     .desc = "HEC index (default: the token's default index)",
     .offset = OFF(hec_index)},
    {.name = "host",
     .type = SF_OPT_STR,
     .desc = "HEC host (default: the event's host.hostName label, if any)",
     .offset = OFF(hec_host)},
    {.name = "ack",
     .type = SF_OPT_BOOL,
     .def = "false",
     .desc = "Indexer acknowledgement (the token must have it enabled): requests carry a "
             "channel (X-Splunk-Request-Channel) and events settle (let the checkpoint move) "
             "only once Splunk reports them indexed; false: a 200 settles them, although "
             "Splunk may still lose them before indexing",
     .offset = OFF(hec_ack)},
    {.name = "ack_poll_interval",
     .type = SF_OPT_DURATION,
     .def = "10s",
     .min = 100,
     .max = 3600000,
     .desc = "ack: how often /services/collector/ack is asked (at once on shutdown and at the "
             "end of --once)",
     .offset = OFF(ack_poll_ms)},
    {.name = "ack_timeout",
     .type = SF_OPT_DURATION,
     .def = "5m",
     .min = 1000,
     .max = 86400000,
     .desc = "ack: a request not acknowledged this long after Splunk accepted it is sent again "
             "(Splunk loses ack status when an indexer restarts; duplicates possible)",
     .offset = OFF(ack_timeout_ms)},
    {.name = "ack_window_bytes",
     .type = SF_OPT_SIZE,
     .def = "64MiB",
     .min = 4096,
     .max = INT64_C(1) << 34,
     .desc = "ack: bound on the request bodies kept until acknowledged (for a re-send); new "
             "batches wait while this much is unacknowledged (backpressure)",
     .offset = OFF(ack_window_bytes)},
    COMMON_HTTP_OPTIONS,
    {0},
};

/* ------------------------------------------------------------------------------------------ */
/* body building (pure)                                                                        */

static int hec_field(sf_buf *out, const char *key, const char *val)
{
    if (!val || !*val)
        return 0;
    int rc = sf_buf_appendf(out, ",\"%s\":", key);
    return rc ? rc : sf_json_str_append(out, val, strlen(val));
}

int sf_webhook_body_add(sf_buf *out, int mode, const sf_buf *rec, const sf_event *ev, bool first,
                        bool json_records, const sf_hec_opts *hec)
{
    int rc = 0;
    switch (mode) {
    case SF_WH_BODY_JSON:
        if ((rc = sf_buf_putc(out, first ? '[' : ',')))
            return rc;
        return sf_json_record_append(out, rec->data, rec->len, json_records, false);
    case SF_WH_BODY_NDJSON:
        if (!first && (rc = sf_buf_putc(out, '\n')))
            return rc;
        /* NDJSON needs one line per record: a record with a newline becomes a JSON string */
        return sf_json_record_append(out, rec->data, rec->len, json_records, true);
    case SF_WH_BODY_HEC: {
        if (!first && (rc = sf_buf_putc(out, '\n')))
            return rc;
        if ((rc = sf_buf_putc(out, '{')))
            return rc;
        bool comma = false;
        if (ev && ev->ts_ns != SF_TIME_UNSET) {
            int64_t s = ev->ts_ns / SF_NS_PER_SEC, frac = ev->ts_ns % SF_NS_PER_SEC;
            if (frac < 0) {
                s--;
                frac += SF_NS_PER_SEC;
            }
            if ((rc = sf_buf_appendf(out, "\"time\":%lld.%06lld", (long long)s,
                                     (long long)(frac / 1000))))
                return rc;
            comma = true;
        }
        const char *host = hec ? hec->host : NULL;
        if ((!host || !*host) && ev)
            host = sf_event_label(ev, "host.hostName");
        sf_buf tmp = {0};
        rc = hec_field(&tmp, "host", host);
        if (!rc && hec)
            rc = hec_field(&tmp, "source", hec->source);
        if (!rc && hec)
            rc = hec_field(&tmp, "sourcetype", hec->sourcetype);
        if (!rc && hec)
            rc = hec_field(&tmp, "index", hec->index);
        if (!rc)
            rc = sf_buf_puts(&tmp, ",\"event\":");
        if (!rc)
            rc = sf_buf_append(out, tmp.data + (comma ? 0 : 1), tmp.len - (comma ? 0 : 1));
        sf_buf_free(&tmp);
        if (!rc)
            rc = sf_json_record_append(out, rec->data, rec->len, json_records, false);
        return rc ? rc : sf_buf_putc(out, '}');
    }
    default:
        return -EINVAL;
    }
}

int sf_webhook_body_end(sf_buf *out, int mode, size_t nrecords)
{
    if (mode != SF_WH_BODY_JSON)
        return out->data ? 0 : sf_buf_append(out, "", 0);
    return sf_buf_puts(out, nrecords ? "]" : "[]");
}

int sf_webhook_body(sf_buf *out, int mode, const sf_buf *records, const sf_event *const *events,
                    size_t n, bool json_records, const sf_hec_opts *hec)
{
    for (size_t i = 0; i < n; i++) {
        int rc = sf_webhook_body_add(out, mode, &records[i], events ? events[i] : NULL, i == 0,
                                     json_records, hec);
        if (rc)
            return rc;
    }
    return sf_webhook_body_end(out, mode, n);
}

/* ------------------------------------------------------------------------------------------ */
/* response classification (pure)                                                              */

size_t sf_webhook_classify(bool hec, long http_status, int transport_error, const char *body,
                           size_t len, size_t n, sf_deliv_status *st, char *reason,
                           size_t reasonlen)
{
    if (hec)
        return sf_hec_classify(http_status, transport_error, body, len, n, st, reason, reasonlen,
                               false, NULL);
    char snippet[160];
    sf_http_sanitize(body, len, snippet, sizeof snippet);
    if (transport_error) {
        for (size_t i = 0; i < n; i++)
            st[i] = SF_DELIV_RETRY;
        snprintf(reason, reasonlen, "webhook receiver: %s", sf_http_strerror(transport_error));
        return n;
    }
    return sf_http_classify_status("webhook receiver", http_status, -1, "", snippet, n, st, reason,
                                   reasonlen);
}

/* ------------------------------------------------------------------------------------------ */
/* the sink                                                                                    */

typedef struct wh_req {
    struct wh *w;
    size_t first, count;
    bool busy;
    sf_hec_ent *ent; /* ack: its place in the acknowledgement FIFO */
    sf_buf body;     /* ack: its body, uncompressed (kept for a re-send) */
} wh_req;

typedef struct wh {
    sf_http_batch hb; /* first: sf_http_sink_submit/close and the send callback get it */
    const wh_cfg *c;
    bool hec;
    int mode;
    bool json_records;
    sf_hec_opts hecopts;
    char *url;
    sf_http_headers hdrs; /* static headers, may hold secrets */
    wh_req *reqs;         /* c->concurrency slots */
    uint64_t requests, failures;
    sf_hec_acker *acker; /* splunk_hec with ack: true */
    bool batch_closed, acker_closed;
    bool in_request; /* inside send_chunk or on_response: they pump the batch themselves */
    void (*closed)(sf_sink *);
} wh_t;

static bool url_has_path(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *slash = strpbrk(p, "/?");
    return slash && !(slash[0] == '/' && slash[1] == '\0');
}

static bool has_header(const sf_kvlist *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->k[i], name) == 0)
            return true;
    return false;
}

static void wh_free(wh_t *w)
{
    if (!w)
        return;
    sf_hec_acker_free(w->acker);
    for (size_t i = 0; w->reqs && i < (size_t)w->c->concurrency; i++)
        sf_buf_free(&w->reqs[i].body);
    sf_http_headers_free(&w->hdrs);
    free(w->reqs);
    free(w->url);
    free(w);
}

static int wh_send(sf_http_batch *hb);

/* ack: the window has room again: a batch waiting for it goes on */
static void on_room(void *ud)
{
    wh_t *w = ud;
    if (w->hb.b && !w->in_request)
        sf_http_batch_pump(&w->hb);
}

/* ack: a channel (a random GUID, one per sink and run, as Splunk's kafka-connect-splunk does:
 * HecChannel.newChannelId, UUID.randomUUID) on every request, and the tracker. */
static int hec_ack_open(sf_sink *s, wh_t *w)
{
    sf_uuid u;
    char id[SF_UUID_STR_LEN + 1];
    if (sf_uuid_v4(&u) != 0) {
        sf_sink_set_error(s, "cannot make a channel id (no randomness)");
        return -EIO;
    }
    sf_uuid_format(&u, id);
    if (sf_http_headers_add(&w->hdrs, "X-Splunk-Request-Channel: %s", id))
        return -ENOMEM;
    const wh_cfg *c = w->c;
    sf_hec_acker_opts o = {.s = s,
                           .http = &c->http,
                           .event_url = w->url,
                           .hdrs = &w->hdrs,
                           .gzip = c->gzip,
                           .poll_ms = c->ack_poll_ms,
                           .timeout_ms = c->ack_timeout_ms,
                           .window_bytes = c->ack_window_bytes,
                           .room = on_room,
                           .ud = w};
    if (!(w->acker = sf_hec_acker_new(&o)))
        return -ENOMEM;
    s->defer_settle = true;
    SF_INFO("sink", "sink %s: Splunk HEC indexer acknowledgement on channel %s", s->name, id);
    return 0;
}

static int wh_open(sf_sink *s, bool hec)
{
    const wh_cfg *c = s->cfg->type_cfg;
    wh_t *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    int rc = -ENOMEM;
    w->hb.s = s;
    w->hb.max_inflight = (size_t)c->concurrency;
    w->hb.send = wh_send;
    w->c = c;
    w->hec = hec;
    w->mode = hec ? SF_WH_BODY_HEC : c->body;
    w->json_records = sf_http_sink_json_records(s);
    w->hecopts.host = c->hec_host;
    w->hecopts.source = c->hec_source;
    w->hecopts.sourcetype = c->hec_sourcetype;
    w->hecopts.index = c->hec_index;
    if (!(w->reqs = calloc((size_t)c->concurrency, sizeof *w->reqs)))
        goto fail;
    sf_buf u = {0};
    if (sf_buf_puts(&u, c->http.url))
        goto fail;
    if (hec && !url_has_path(c->http.url)) {
        while (u.len && u.data[u.len - 1] == '/')
            u.data[--u.len] = '\0';
        if (sf_buf_puts(&u, "/services/collector/event")) {
            sf_buf_free(&u);
            goto fail;
        }
    }
    w->url = sf_buf_steal(&u);
    const char *ctype = hec                            ? "application/json"
                        : w->mode == SF_WH_BODY_NDJSON ? "application/x-ndjson"
                                                       : "application/json";
    if (!has_header(&c->headers, "Content-Type") &&
        sf_http_headers_add(&w->hdrs, "Content-Type: %s", ctype))
        goto fail;
    if (hec) {
        if (sf_http_headers_add(&w->hdrs, "Authorization: Splunk %s", c->hec_token))
            goto fail;
    } else if (sf_http_headers_add_auth(&w->hdrs, &c->http.auth))
        goto fail;
    for (size_t i = 0; i < c->headers.n; i++)
        if (sf_http_headers_add(&w->hdrs, "%s: %s", c->headers.k[i], c->headers.v[i]))
            goto fail;
    if (hec && c->hec_ack && (rc = hec_ack_open(s, w)) != 0) {
        if (rc == -ENOMEM)
            sf_sink_set_error(s, "out of memory");
        wh_free(w);
        return rc;
    }
    s->state = w;
    /* the pipeline gathers queued pages to fill the parallel requests, waiting up to
     * max_wait for more while the batch is not full */
    s->batch_max = (size_t)c->http.max_events * (size_t)c->concurrency;
    s->batch_wait_ms = c->max_wait_ms;
    return 0;
fail:
    sf_sink_set_error(s, "out of memory");
    wh_free(w);
    return rc;
}

static int webhook_open(sf_sink *s)
{
    return wh_open(s, false);
}

static int hec_open(sf_sink *s)
{
    return wh_open(s, true);
}

static int add_record(void *ud, sf_buf *out, size_t i, bool first);

/* ack: the records the answer accepted (a prefix) wait in the FIFO for their ackId's
 * acknowledgement, with their body (rebuilt when only part of the request was taken). */
static void hec_ack_answered(wh_t *w, wh_req *r, const sf_hec_answer *ans)
{
    const sf_deliv_status *st = w->hb.b->status + r->first;
    size_t nok = 0;
    while (nok < r->count && st[nok] == SF_DELIV_OK)
        nok++;
    sf_buf part = {0};
    sf_buf *body = &r->body;
    if (nok && nok < r->count) {
        body = &part;
        for (size_t i = 0; i < nok; i++)
            if (add_record(w, &part, r->first + i, i == 0) != 0)
                break;
        sf_webhook_body_end(&part, w->mode, nok);
    }
    sf_hec_ent *e = r->ent;
    r->ent = NULL;
    sf_hec_acker_answered(w->acker, e, nok, ans->ack_id, body);
    sf_buf_free(&part);
    sf_buf_free(&r->body);
}

static void on_response(sf_http_response *resp, void *ud)
{
    wh_req *r = ud;
    wh_t *w = r->w;
    char reason[320];
    r->busy = false;
    sf_deliv_status *st = w->hb.b->status + r->first;
    sf_hec_answer ans = {.code = -1, .ack_id = -1, .invalid_at = -1};
    size_t bad = w->hec
                     ? sf_hec_classify(resp->status, resp->error, resp->body.data, resp->body.len,
                                       r->count, st, reason, sizeof reason, w->acker != NULL, &ans)
                     : sf_webhook_classify(false, resp->status, resp->error, resp->body.data,
                                           resp->body.len, r->count, st, reason, sizeof reason);
    if (bad)
        w->failures++;
    if (r->ent) {
        w->in_request = true;
        hec_ack_answered(w, r, &ans);
        w->in_request = false;
    }
    sf_http_batch_answered(&w->hb, resp, r->first, r->count, bad, false, reason, sizeof reason);
    sf_http_batch_pump(&w->hb);
}

static int add_record(void *ud, sf_buf *out, size_t i, bool first)
{
    const wh_t *w = ud;
    const sf_sink_batch *b = w->hb.b;
    return sf_webhook_body_add(out, w->mode, &b->records[i], b->events[i], first, w->json_records,
                               &w->hecopts);
}

static int send_chunk(wh_t *w, wh_req *r)
{
    const wh_cfg *c = w->c;
    sf_buf body = {0}, gz = {0};
    char *extra[3] = {NULL, NULL, NULL};
    const char **hdrs = NULL;
    size_t k = 0;
    r->first = w->hb.next;
    int rc = sf_http_batch_fill(&w->hb, r->first, &c->http, 1, &body, add_record, w, &k);
    if (rc || (rc = sf_webhook_body_end(&body, w->mode, k)))
        goto out;
    r->count = k;
    const sf_buf *wire = &body;
    if (c->gzip) {
        if ((rc = sf_http_gzip(&body, &gz)))
            goto out;
        wire = &gz;
    }
    size_t ne = 0;
    if (c->gzip && !(extra[ne++] = sf_strdup("Content-Encoding: gzip"))) {
        rc = -ENOMEM;
        goto out;
    }
    const sf_http_auth_cfg *a = &c->http.auth;
    if (!w->hec && a->type == SF_HTTP_AUTH_HMAC) {
        char ts[32], sig[SF_HMAC_SHA256_HEX_LEN + 1];
        snprintf(ts, sizeof ts, "%lld", (long long)(sf_now_ns() / SF_NS_PER_SEC));
        const void *parts[3] = {ts, ".", wire->data};
        size_t lens[3] = {strlen(ts), 1, wire->len};
        if ((rc = sf_hmac_sha256_hex(a->secret, strlen(a->secret), parts, lens, 3, sig)))
            goto out;
        sf_buf h1 = {0}, h2 = {0};
        if (sf_buf_appendf(&h1, "%s: %s", a->ts_header, ts) ||
            sf_buf_appendf(&h2, "%s: %s", a->sig_header, sig)) {
            sf_buf_free(&h1);
            sf_buf_free(&h2);
            rc = -ENOMEM;
            goto out;
        }
        extra[ne++] = sf_buf_steal(&h1);
        extra[ne++] = sf_buf_steal(&h2);
    }
    if (!(hdrs = calloc(w->hdrs.n + ne, sizeof *hdrs))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < w->hdrs.n; i++)
        hdrs[i] = w->hdrs.v[i];
    for (size_t i = 0; i < ne; i++)
        hdrs[w->hdrs.n + i] = extra[i];
    sf_http_request req = {
        .method = method_values[c->method],
        .url = w->url,
        .headers = hdrs,
        .nheaders = w->hdrs.n + ne,
        .body = wire->data,
        .body_len = wire->len,
    };
    sf_http_sink_request(&req, &c->http);
    if (w->acker && !(r->ent = sf_hec_acker_sent(w->acker))) {
        rc = -ENOMEM;
        goto out;
    }
    rc = sf_http_send(w->hb.s->http, &req, on_response, r, NULL);
    if (r->ent && rc) {
        w->in_request = true;
        sf_hec_acker_answered(w->acker, r->ent, 0, -1, NULL); /* not sent: leaves the FIFO */
        w->in_request = false;
        r->ent = NULL;
    } else if (r->ent) {
        r->body = body; /* kept until the answer */
        body = (sf_buf){0};
    }
out:
    sf_http_batch_advance(&w->hb, r->first, &r->count);
    free(hdrs);
    for (size_t i = 0; i < SF_ARRAY_LEN(extra); i++)
        free(extra[i]);
    sf_buf_free(&body);
    sf_buf_free(&gz);
    return rc;
}

/* sf_http_batch.send: one request on a free slot (there is one while inflight < concurrency) */
static int wh_send(sf_http_batch *hb)
{
    wh_t *w = (wh_t *)hb;
    sf_sink_batch *b = hb->b;
    wh_req *r = NULL;
    for (size_t i = 0; i < (size_t)w->c->concurrency && !r; i++)
        if (!w->reqs[i].busy)
            r = &w->reqs[i];
    if (!r || (w->acker && !sf_hec_acker_has_room(w->acker)))
        return 1; /* ack: waits for acknowledgements to make room (on_room) */
    r->w = w;
    r->count = 0;
    int rc = send_chunk(w, r);
    w->requests++;
    if (rc) {
        for (size_t i = r->first; i < r->first + r->count && i < b->n; i++)
            b->status[i] = SF_DELIV_RETRY;
        return rc;
    }
    r->busy = true;
    return 0;
}

static void hec_maybe_closed(wh_t *w)
{
    if (!w->batch_closed || !w->acker_closed || !w->closed)
        return;
    void (*cb)(sf_sink *) = w->closed;
    w->closed = NULL;
    cb(w->hb.s);
}

static void hec_batch_closed(sf_sink *s)
{
    wh_t *w = s->state;
    w->batch_closed = true;
    hec_maybe_closed(w);
}

static void hec_acker_closed(void *ud)
{
    wh_t *w = ud;
    w->acker_closed = true;
    hec_maybe_closed(w);
}

/* splunk_hec: with ack, the tracker's poll and re-send stop too (in-flight ones cancelled). */
static void hec_close(sf_sink *s, void (*closed)(sf_sink *s))
{
    wh_t *w = s->state;
    if (!w->acker) {
        sf_http_sink_close(s, closed);
        return;
    }
    w->closed = closed;
    sf_hec_acker_close(w->acker, hec_acker_closed, w);
    sf_http_sink_close(s, hec_batch_closed);
}

static void hec_flush(sf_sink *s)
{
    wh_t *w = s->state;
    if (w->acker)
        sf_hec_acker_flush(w->acker);
}

static void wh_destroy(sf_sink *s)
{
    wh_free(s->state);
    s->state = NULL;
}

static void wh_validate(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs, bool hec)
{
    const wh_cfg *c = cfg;
    sf_http_sink_validate_url(&c->http, node, errs);
    sf_http_sink_validate_tls(&c->http, node, errs);
    /* basic and bearer send a secret; an HMAC signature does not reveal its key */
    bool creds =
        hec ? c->hec_token && *c->hec_token
            : c->http.auth.type == SF_HTTP_AUTH_BASIC || c->http.auth.type == SF_HTTP_AUTH_BEARER;
    sf_http_sink_warn_transport(&c->http, node, creds, errs);
    if (hec)
        return;
    sf_http_sink_validate_auth(&c->http.auth, node, errs, " (set type: basic, bearer or hmac)");
}

static void webhook_validate(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    wh_validate(cfg, node, errs, false);
}

static void hec_validate(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    wh_validate(cfg, node, errs, true);
}

const sf_sink_ops sf_sink_webhook_ops = {
    .type = "webhook",
    .desc = "POSTs batches of records to an HTTP(S) receiver as a JSON array or NDJSON, with "
            "basic, bearer or HMAC-signature authentication (docs/sinks-http.md).",
    .options = webhook_options,
    .cfg_size = sizeof(wh_cfg),
    .validate = webhook_validate,
    .check_env = sf_http_sink_check_env,
    .open = webhook_open,
    .submit = sf_http_sink_submit,
    .close = sf_http_sink_close,
    .destroy = wh_destroy,
};

const sf_sink_ops sf_sink_splunk_hec_ops = {
    .reads_events = true,
    .type = "splunk_hec",
    .desc = "Splunk HTTP Event Collector: the webhook with HEC's endpoint, 'Authorization: "
            "Splunk <token>' and event envelopes (docs/sinks-http.md).",
    .options = hec_options,
    .cfg_size = sizeof(wh_cfg),
    .validate = hec_validate,
    .check_env = sf_http_sink_check_env,
    .open = hec_open,
    .submit = sf_http_sink_submit,
    .flush = hec_flush,
    .close = hec_close,
    .destroy = wh_destroy,
};
