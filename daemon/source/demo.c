/* demo: embedded Sysdig Secure Events API simulator. See demo.h and
 * /work/shared/reference/secure-events-api.md. */
#include "source/demo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "net/httpd.h"
#include "core/log.h"
#include "core/util.h"

extern const char sf_asset_demo_events[];
extern const size_t sf_asset_demo_events_len;
extern const char sf_asset_demo_events_stix[];
extern const size_t sf_asset_demo_events_stix_len;

#define DEF_MAX_EVENTS 10000u
#define DEF_SPAN_MS INT64_C(3600000)
#define MAX_WINDOW_NS (INT64_C(14) * 86400 * SF_NS_PER_SEC)
#define LEGACY_MAX_LIMIT 999
#define EVENTS_MAX_LIMIT 200
#define DEFAULT_LIMIT 25
#define MAX_CURSOR 512
#define RATELIMIT_HEADER "X-RateLimit-Limit: 1000\r\n"
#define CURSOR_TAG "sfdemo1:"

typedef struct demo_event {
    int64_t ts;
    char id[33];
    unsigned tmpl;
} demo_event;

struct sf_demo {
    uv_loop_t *loop;
    sf_httpd *httpd;
    uv_timer_t timer;
    bool closing;
    bool timer_closed;
    bool httpd_closed;
    cJSON **tmpls;
    unsigned ntmpls;
    demo_event *ring; /* oldest at head */
    size_t cap, head, count;
    uint64_t first_seq; /* seq of the oldest kept event */
    int64_t last_ts;
    void (*closed)(void *);
    void *closed_arg;
};

/* ---- events ---- */

static demo_event *ev_at(const sf_demo *d, size_t i) /* i: 0 = oldest */
{
    return &d->ring[(d->head + i) % d->cap];
}

static void add_event(sf_demo *d, int64_t ts)
{
    if (ts <= d->last_ts)
        ts = d->last_ts + 1;
    d->last_ts = ts;
    if (d->count == d->cap) { /* drop the oldest */
        d->head = (d->head + 1) % d->cap;
        d->count--;
        d->first_seq++;
    }
    demo_event *e = &d->ring[(d->head + d->count) % d->cap];
    d->count++;
    e->ts = ts;
    snprintf(e->id, sizeof(e->id), "%016" PRIx64 "%016" PRIx64, sf_random_u64(), sf_random_u64());
    e->tmpl = (unsigned)(sf_random_u64() % d->ntmpls);
}

int sf_demo_add_events(sf_demo *d, unsigned n)
{
    int64_t now = sf_now_ns();
    for (unsigned i = 0; i < n; i++)
        add_event(d, now);
    return 0;
}

size_t sf_demo_event_count(const sf_demo *d)
{
    return d->count;
}

int64_t sf_demo_oldest_ns(const sf_demo *d)
{
    return d->count ? ev_at(d, 0)->ts : SF_TIME_UNSET;
}

int64_t sf_demo_newest_ns(const sf_demo *d)
{
    return d->count ? ev_at(d, d->count - 1)->ts : SF_TIME_UNSET;
}

/* first index with ts >= t (count if none) */
static size_t lower_bound(const sf_demo *d, int64_t t)
{
    size_t lo = 0, hi = d->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ev_at(d, mid)->ts < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- cursors: base64url("sfdemo1:<seq>"), events strictly older than seq ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void cursor_encode(uint64_t seq, char *out, size_t outlen)
{
    char raw[64];
    int n = snprintf(raw, sizeof(raw), CURSOR_TAG "%" PRIu64, seq);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < n && o + 1 < outlen; i++) {
        acc = (acc << 8) | (unsigned char)raw[i];
        bits += 8;
        while (bits >= 6 && o + 1 < outlen) {
            bits -= 6;
            out[o++] = b64[(acc >> bits) & 63];
        }
    }
    if (bits > 0 && o + 1 < outlen)
        out[o++] = b64[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

static int cursor_decode(const char *s, uint64_t *seq)
{
    char raw[MAX_CURSOR];
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = s; *p; p++) {
        const char *q = strchr(b64, *p);
        if (!q || !*p)
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof(raw))
                return -EINVAL;
            raw[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    raw[o] = '\0';
    size_t tl = strlen(CURSOR_TAG);
    if (o <= tl || memcmp(raw, CURSOR_TAG, tl) != 0)
        return -EINVAL;
    int64_t v;
    if (sf_parse_int64(raw + tl, o - tl, &v) || v < 0)
        return -EINVAL;
    *seq = (uint64_t)v;
    return 0;
}

/* ---- rendering ---- */

static const char *const legacy_only[] = {"agentId", "containerId", "machineId", "customerId"};

static int render_event(const sf_demo *d, const demo_event *e, uint64_t seq, bool legacy,
                        sf_buf *out)
{
    cJSON *o = cJSON_Duplicate(d->tmpls[e->tmpl], 1);
    if (!o)
        return -ENOMEM;
    int rc = -ENOMEM;
    char cur[128], ts[48];
    cursor_encode(seq, cur, sizeof(cur)); /* resumes with the events older than this one */
    if (legacy)
        sf_format_rfc3339(e->ts, 9, ts, sizeof(ts));
    else
        snprintf(ts, sizeof(ts), "%" PRId64, e->ts);
    cJSON *id = cJSON_CreateString(e->id);
    cJSON *c = cJSON_CreateString(cur);
    cJSON *t = legacy ? cJSON_CreateString(ts) : cJSON_CreateRaw(ts); /* never via a double */
    if (!id || !c || !t) {
        cJSON_Delete(id);
        cJSON_Delete(c);
        cJSON_Delete(t);
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "id"))
        cJSON_ReplaceItemInObjectCaseSensitive(o, "id", id);
    else
        cJSON_AddItemToObject(o, "id", id);
    if (cJSON_GetObjectItemCaseSensitive(o, "cursor"))
        cJSON_ReplaceItemInObjectCaseSensitive(o, "cursor", c);
    else
        cJSON_AddItemToObject(o, "cursor", c);
    if (cJSON_GetObjectItemCaseSensitive(o, "timestamp"))
        cJSON_ReplaceItemInObjectCaseSensitive(o, "timestamp", t);
    else
        cJSON_AddItemToObject(o, "timestamp", t);
    if (!legacy)
        for (size_t i = 0; i < SF_ARRAY_LEN(legacy_only); i++)
            cJSON_DeleteItemFromObjectCaseSensitive(o, legacy_only[i]);
    char *s = cJSON_PrintUnformatted(o);
    if (!s)
        goto out;
    rc = sf_buf_puts(out, s);
    free(s);
out:
    cJSON_Delete(o);
    return rc;
}

static int json_error(sf_httpd_resp *resp, int status, bool legacy, const char *msg)
{
    resp->status = status;
    resp->content_type = "application/json";
    const char *reason = status == 401   ? "unauthorized"
                         : status == 404 ? "not_found"
                         : status == 405 ? "method_not_allowed"
                                         : "bad_request";
    /* msg is one of our static strings: no escaping needed */
    if (legacy)
        return sf_buf_appendf(&resp->body, "{\"errors\":[{\"message\":\"%s\",\"reason\":\"%s\"}]}",
                              msg, reason);
    return sf_buf_appendf(&resp->body, "{\"type\":\"%s\",\"message\":\"%s\",\"details\":[]}",
                          reason, msg);
}

static int get_int_param(const char *query, const char *name, int64_t *out, bool *present)
{
    char v[64];
    unsigned n = 0;
    int rc = sf_httpd_query_param(query, name, v, sizeof(v), &n);
    *present = n > 0;
    if (rc == -ENOENT)
        return 0;
    if (rc || n > 1)
        return -EINVAL;
    return sf_parse_int64(v, strlen(v), out) ? -EINVAL : 0;
}

static int list_events(sf_demo *d, const char *query, bool legacy, sf_httpd_resp *resp)
{
    int64_t limit = DEFAULT_LIMIT, from = 0, to = 0;
    bool has_limit, has_from, has_to;
    int64_t max_limit = legacy ? LEGACY_MAX_LIMIT : EVENTS_MAX_LIMIT;
    if (get_int_param(query, "limit", &limit, &has_limit) || limit < 1 || limit > max_limit)
        return json_error(resp, 400, legacy,
                          legacy ? "limit must be 1..999" : "limit must be 1..200");
    if (get_int_param(query, "from", &from, &has_from) || get_int_param(query, "to", &to, &has_to))
        return json_error(resp, 400, legacy, "from and to must be int64 nanoseconds");

    char cursor[MAX_CURSOR + 1];
    unsigned ncur = 0;
    int crc = sf_httpd_query_param(query, "cursor", cursor, sizeof(cursor), &ncur);
    bool has_cursor = ncur > 0;
    if (has_cursor && (crc || ncur > 1))
        return json_error(resp, 400, legacy, "invalid cursor");

    char filter[2049];
    if (sf_httpd_query_param(query, "filter", filter, sizeof(filter), NULL) == -ENOSPC)
        return json_error(resp, 400, legacy, "filter too long");

    size_t lo, hi; /* candidate index range [lo, hi), served newest first */
    if (has_cursor) {
        if (has_from || has_to)
            return json_error(resp, 400, legacy, "cursor excludes from and to");
        uint64_t seq;
        if (cursor_decode(cursor, &seq))
            return json_error(resp, 400, legacy, "invalid cursor");
        lo = 0;
        hi = seq <= d->first_seq ? 0 : (size_t)(seq - d->first_seq);
        if (hi > d->count)
            hi = d->count;
    } else {
        if (!has_from || !has_to)
            return json_error(resp, 400, legacy, "from and to are required without cursor");
        if (from > to)
            return json_error(resp, 400, legacy, "from must not be after to");
        if (to - from > MAX_WINDOW_NS)
            return json_error(resp, 400, legacy, "time window exceeds 14 days");
        lo = lower_bound(d, from);
        hi = to == INT64_MAX ? d->count : lower_bound(d, to + 1);
        if (hi < lo)
            hi = lo;
    }

    size_t n = hi - lo;
    if (n > (size_t)limit)
        n = (size_t)limit;
    sf_buf *b = &resp->body;
    resp->status = 200;
    resp->content_type = "application/json";
    int rc = sf_buf_puts(b, "{\"data\":[");
    for (size_t k = 0; k < n && !rc; k++) {
        size_t i = hi - 1 - k;
        if (k)
            rc = sf_buf_putc(b, ',');
        if (!rc)
            rc = render_event(d, ev_at(d, i), d->first_seq + i, legacy, b);
    }
    if (!rc)
        rc = sf_buf_puts(b, "],\"page\":{");
    if (rc)
        return rc;
    /* position of the oldest event returned (or where the range starts when empty) */
    uint64_t oldest_seq = d->first_seq + (hi - n);
    char cur[128];
    cursor_encode(oldest_seq, cur, sizeof(cur));
    if (legacy) {
        if (has_cursor && n == 0)
            rc = sf_buf_appendf(b, "\"prev\":\"%s\",", cursor); /* the same cursor again */
        else
            rc = sf_buf_appendf(b, "\"prev\":\"%s\",", cur);
    } else if (hi - n > 0) { /* older events exist (cursor pages go past 'from') */
        rc = sf_buf_appendf(b, "\"next\":\"%s\",", cur);
    }
    if (!rc)
        rc = sf_buf_appendf(b, "\"total\":%zu}}", hi - lo);
    return rc;
}

static bool authorized(const sf_httpd_req *req)
{
    const char *a = sf_httpd_header(req, "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return false;
    for (a += 7; *a; a++)
        if (*a != ' ' && *a != '\t')
            return true;
    return false;
}

static int handler(sf_httpd_req *req, sf_httpd_resp *resp, void *ud)
{
    sf_demo *d = ud;
    const char *path = sf_httpd_path(req);
    int rc = sf_buf_puts(&resp->headers, RATELIMIT_HEADER);
    if (rc)
        return rc;
    bool legacy = strncmp(path, "/api/", 5) == 0;
    enum { NONE, STATUS, LEGACY, EVENTS } route = NONE;
    if (strcmp(path, "/api/v1/secureEvents/status") == 0)
        route = STATUS;
    else if (strcmp(path, "/api/v1/secureEvents") == 0)
        route = LEGACY;
    else if (strcmp(path, "/secure/events/v1/events") == 0)
        route = EVENTS;
    if (route == NONE)
        return json_error(resp, 404, legacy, "not found");
    if (strcmp(sf_httpd_method(req), "GET") != 0)
        return json_error(resp, 405, legacy, "method not allowed");
    if (!authorized(req))
        return json_error(resp, 401, legacy, "missing or invalid bearer token");
    if (route == STATUS) {
        resp->status = 200;
        resp->content_type = "application/json";
        return sf_buf_puts(&resp->body, "{\"status\":\"ok\"}");
    }
    return list_events(d, sf_httpd_query(req), route == LEGACY, resp);
}

/* ---- lifecycle ---- */

static void tick(uv_timer_t *t)
{
    sf_demo *d = t->data;
    add_event(d, sf_now_ns());
}

static int load_templates(sf_demo *d, const char *json)
{
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return -EINVAL;
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    int rc = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, data)
    {
        if (!cJSON_IsObject(it))
            continue;
        cJSON **n = realloc(d->tmpls, (d->ntmpls + 1) * sizeof(*n));
        if (!n) {
            rc = -ENOMEM;
            break;
        }
        d->tmpls = n;
        cJSON *dup = cJSON_Duplicate(it, 1);
        if (!dup) {
            rc = -ENOMEM;
            break;
        }
        d->tmpls[d->ntmpls++] = dup;
    }
    cJSON_Delete(root);
    return rc;
}

static void demo_free(sf_demo *d)
{
    for (unsigned i = 0; i < d->ntmpls; i++)
        cJSON_Delete(d->tmpls[i]);
    free(d->tmpls);
    free(d->ring);
    free(d);
}

static void maybe_done(sf_demo *d)
{
    if (!d->timer_closed || !d->httpd_closed)
        return;
    void (*closed)(void *) = d->closed;
    void *arg = d->closed_arg;
    demo_free(d);
    if (closed)
        closed(arg);
}

static void timer_closed(uv_handle_t *h)
{
    sf_demo *d = h->data;
    d->timer_closed = true;
    maybe_done(d);
}

static void httpd_closed(void *arg)
{
    sf_demo *d = arg;
    d->httpd_closed = true;
    maybe_done(d);
}

int sf_demo_start(uv_loop_t *loop, const sf_demo_opts *opts, sf_demo **out)
{
    static const sf_demo_opts defaults = {0};
    if (!loop || !out)
        return -EINVAL;
    if (!opts)
        opts = &defaults;
    sf_demo *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->loop = loop;
    d->last_ts = INT64_MIN;
    d->cap = opts->max_events ? opts->max_events : DEF_MAX_EVENTS;
    d->ring = calloc(d->cap, sizeof(*d->ring));
    int rc = d->ring ? 0 : -ENOMEM;
    if (!rc)
        rc = load_templates(d, sf_asset_demo_events);
    if (!rc)
        rc = load_templates(d, sf_asset_demo_events_stix);
    if (!rc && d->ntmpls == 0)
        rc = -EINVAL;
    if (rc) {
        demo_free(d);
        return rc;
    }
    int64_t now = sf_now_ns();
    int64_t span = (opts->backlog_span_ms > 0 ? opts->backlog_span_ms : DEF_SPAN_MS) * SF_NS_PER_MS;
    for (unsigned i = 0; i < opts->backlog; i++)
        add_event(d, now - span + span / (int64_t)opts->backlog * (int64_t)i);

    rc = sf_httpd_start(loop, opts->listen ? opts->listen : "127.0.0.1:0", handler, d, &d->httpd);
    if (rc) {
        demo_free(d);
        return rc;
    }
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    if (opts->interval_ms > 0)
        uv_timer_start(&d->timer, tick, (uint64_t)opts->interval_ms, (uint64_t)opts->interval_ms);
    SF_INFO("demo", "Secure Events API simulator listening on port %d (%zu events)",
            sf_httpd_port(d->httpd), d->count);
    *out = d;
    return 0;
}

int sf_demo_port(const sf_demo *d)
{
    return sf_httpd_port(d->httpd);
}

void sf_demo_close(sf_demo *d, void (*closed)(void *arg), void *arg)
{
    if (!d || d->closing)
        return;
    d->closing = true;
    d->closed = closed;
    d->closed_arg = arg;
    uv_close((uv_handle_t *)&d->timer, timer_closed);
    sf_httpd_close(d->httpd, httpd_closed, d);
}
