/* sink_splunk_hec: HEC indexer acknowledgement (see hec.h). */
#include "sinks/hec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/log.h"

/* ------------------------------------------------------------------------------------------ */
/* answers to event requests (pure)                                                            */

static void set_all(sf_deliv_status *st, size_t from, size_t n, sf_deliv_status v)
{
    for (size_t i = from; i < n; i++)
        st[i] = v;
}

/* Splunk HEC's status codes: the HTTP status Splunk answers each with, its text, and what the
 * sink does. Sources: Splunk docs, "Troubleshoot HTTP Event Collector", "Possible error codes"
 * (https://docs.splunk.com/Documentation/Splunk/latest/Data/TroubleshootHTTPEventCollector
 * #Possible_error_codes); codes 0-14 with the same HTTP statuses in Splunk's own client
 * splunk/cloudfwd (src/main/java/com/splunk/cloudfwd/impl/http/ServerErrors.java); 5, 6, 10,
 * 11, 12, 13, 15 and 17 as the OpenTelemetry splunkhecreceiver answers them
 * (open-telemetry/opentelemetry-collector-contrib, receiver/splunkhecreceiver/receiver.go,
 * written by Splunk to match splunkd); codes 0-22 with these HTTP statuses and texts in the
 * Splunk admins' lookup of HEC reply codes (gjanders/SplunkAdmins,
 * lookups/splunkadmins_hec_reply_code_lookup.csv). 23 (503), 24 and 25 (200, capacity
 * warnings) are in none of these: they come from the issue only (no Splunk text for them was
 * reachable here) and are treated the safe way (retried).
 * HEC_CHANNEL codes are retried, not dead-lettered: the events are fine, the sink's 'ack'
 * setting does not match the token's (issue 12: code 10 used to dead-letter every event). */
enum { HEC_OK, HEC_RETRY, HEC_TOKEN, HEC_DATA, HEC_CHANNEL };

static const struct {
    int code;
    int cls;
    const char *hint; /* appended to the reason */
} hec_codes[] = {
    {0, HEC_OK, NULL},    /* 200 Success */
    {1, HEC_TOKEN, NULL}, /* 403 Token disabled */
    {2, HEC_TOKEN, NULL}, /* 401 Token is required */
    {3, HEC_TOKEN, NULL}, /* 401 Invalid authorization */
    {4, HEC_TOKEN, NULL}, /* 403 Invalid token */
    {5, HEC_DATA, NULL},  /* 400 No data */
    {6, HEC_DATA, NULL},  /* 400 Invalid data format */
    {7, HEC_DATA,
     ": the token may not write to this index (check index and the token's "
     "allowed indexes)"}, /* 400 Incorrect index */
    {8, HEC_RETRY, NULL}, /* 500 Internal server error */
    {9, HEC_RETRY, NULL}, /* 503 Server is busy */
    {10, HEC_CHANNEL,
     ": the token has indexer acknowledgement enabled: set ack: true on the "
     "sink"},                /* 400 Data channel is missing */
    {11, HEC_CHANNEL, NULL}, /* 400 Invalid data channel */
    {12, HEC_DATA, NULL},    /* 400 Event field is required */
    {13, HEC_DATA, NULL},    /* 400 Event field cannot be blank */
    {14, HEC_CHANNEL,
     ": the token has indexer acknowledgement disabled: set ack: false on the "
     "sink or enable it on the token"}, /* 400 ACK is disabled */
    {15, HEC_DATA, NULL},               /* 400 Error in handling indexed fields */
    {16, HEC_TOKEN, NULL},              /* 400 Query string authorization is not enabled */
    {17, HEC_OK, NULL},                 /* 200 HEC is healthy */
    {18, HEC_RETRY, NULL},              /* 503 HEC is unhealthy, queues are full */
    {19, HEC_RETRY, NULL},              /* 503 HEC is unhealthy, ack service unavailable */
    {20, HEC_RETRY, NULL}, /* 503 HEC is unhealthy, queues are full, ack service unavailable */
    {21, HEC_TOKEN, NULL}, /* 400 Invalid token */
    {22, HEC_TOKEN, NULL}, /* 400 Token disabled */
    {23, HEC_RETRY, NULL}, /* 503 Server is shutting down */
    {24, HEC_RETRY, NULL}, /* 200 HEC queue is approaching its capacity limit */
    {25, HEC_RETRY, NULL}, /* 200 HEC ACK is approaching its capacity limit */
};

static int hec_class(int code, const char **hint)
{
    *hint = "";
    for (size_t i = 0; i < SF_ARRAY_LEN(hec_codes); i++)
        if (hec_codes[i].code == code) {
            if (hec_codes[i].hint)
                *hint = hec_codes[i].hint;
            return hec_codes[i].cls;
        }
    return -1;
}

size_t sf_hec_classify(long http_status, int transport_error, const char *body, size_t len,
                       size_t n, sf_deliv_status *st, char *reason, size_t reasonlen, bool ack,
                       sf_hec_answer *ans)
{
    char snippet[160], text[120] = "";
    sf_hec_answer a = {.code = -1, .ack_id = -1, .invalid_at = -1};
    sf_http_sanitize(body, len, snippet, sizeof snippet);
    if (ans)
        *ans = a;
    if (transport_error) {
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, reasonlen, "Splunk HEC: %s", sf_http_strerror(transport_error));
        return n;
    }
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (cJSON_IsObject(j)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "code");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        const cJSON *iv = cJSON_GetObjectItemCaseSensitive(j, "invalid-event-number");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "ackId");
        if (cJSON_IsNumber(c))
            a.code = c->valueint; /* cJSON clamps valueint: no undefined cast */
        if (cJSON_IsString(t))
            sf_http_sanitize(t->valuestring, strlen(t->valuestring), text, sizeof text);
        if (cJSON_IsNumber(iv) && iv->valuedouble >= 0)
            a.invalid_at = iv->valueint;
        if (cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble < 9e15)
            a.ack_id = (long long)id->valuedouble;
    }
    cJSON_Delete(j);
    if (ans)
        *ans = a;
    const char *hint;
    int cls = a.code >= 0 ? hec_class(a.code, &hint) : -1;
    /* with indexer acknowledgement, only an ackId proves records were taken (a prefix that an
     * error answer says was processed but has no ackId is sent again) */
    bool prefix_ok = !ack || a.ack_id >= 0;
    size_t k = a.invalid_at >= 0 && (size_t)a.invalid_at < n ? (size_t)a.invalid_at : n;
    switch (cls) {
    case HEC_OK:
        set_all(st, 0, n, SF_DELIV_OK);
        reason[0] = '\0';
        return 0;
    case HEC_RETRY: {
        /* 503 / code 9 with invalid-event-number k: Splunk stopped at the k-th event and the
         * ones before it were processed, so only the rest is sent again. Not in Splunk's docs;
         * source: Splunk's maintainer of the OpenTelemetry splunkhecexporter,
         * open-telemetry/opentelemetry-collector-contrib issue 36113 ('{"text":"Server is
         * busy","code":9,"invalid-event-number":10}' ... "10 means that it stopped on the 10th
         * one, and we can try resending by dropping the first 9 events"); Splunk answering code
         * 9 with invalid-event-number 0: splunk/splunk-connect-for-kubernetes issues 474, 555.
         * The first k-1 are kept as processed: if Splunk's number were 0-based instead, one
         * event is sent twice, none is lost. */
        size_t done = a.code == 9 && a.invalid_at >= 1 && (size_t)a.invalid_at <= n && prefix_ok
                          ? (size_t)a.invalid_at - 1
                          : 0;
        set_all(st, 0, done, SF_DELIV_OK);
        set_all(st, done, n, SF_DELIV_RETRY);
        if (done)
            snprintf(reason, reasonlen,
                     "Splunk HEC: HTTP %ld (code %d: %s): the first %zu of %zu events were "
                     "processed, the rest is retried",
                     http_status, a.code, text, done, n);
        else
            snprintf(reason, reasonlen, "Splunk HEC: HTTP %ld (code %d: %s)", http_status, a.code,
                     text);
        return n - done;
    }
    case HEC_CHANNEL:
        set_all(st, 0, n, SF_DELIV_RETRY);
        snprintf(reason, reasonlen, "Splunk HEC: HTTP %ld (code %d: %s)%s", http_status, a.code,
                 text, hint);
        return n;
    case HEC_TOKEN:
        set_all(st, 0, n, SF_DELIV_REJECT);
        snprintf(reason, reasonlen,
                 "Splunk HEC refused the token (HTTP %ld, code %d: %s): check the sink's token",
                 http_status, a.code, text);
        return n;
    case HEC_DATA:
        if (k < n) {
            /* HEC indexes the events before the invalid one and stops there */
            size_t from = prefix_ok ? k : 0;
            set_all(st, 0, from, SF_DELIV_OK);
            set_all(st, from, n, SF_DELIV_RETRY);
            st[k] = SF_DELIV_REJECT;
            snprintf(reason, reasonlen, "Splunk HEC: HTTP %ld (code %d: %s)%s at event %zu",
                     http_status, a.code, text, hint, k);
            return n - from;
        }
        set_all(st, 0, n, SF_DELIV_REJECT);
        snprintf(reason, reasonlen, "Splunk HEC: HTTP %ld (code %d: %s)%s", http_status, a.code,
                 text, hint);
        return n;
    default:
        if (http_status >= 200 && http_status < 300 && a.code > 0) {
            set_all(st, 0, n, SF_DELIV_RETRY);
            snprintf(reason, reasonlen, "Splunk HEC answered HTTP %ld with code %d (%s)",
                     http_status, a.code, text);
            return n;
        }
        return sf_http_classify_status("Splunk HEC", http_status, a.code, text, snippet, n, st,
                                       reason, reasonlen);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the FIFO (pure)                                                                             */

sf_hec_ent *sf_hec_fifo_push(sf_hec_fifo *f)
{
    sf_hec_ent *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->state = SF_HEC_PENDING;
    e->ack_id = -1;
    e->prev = f->tail;
    if (f->tail)
        f->tail->next = e;
    else
        f->head = e;
    f->tail = e;
    f->count++;
    return e;
}

static void fifo_remove(sf_hec_fifo *f, sf_hec_ent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        f->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        f->tail = e->prev;
    f->count--;
    f->bytes -= e->body.len;
    sf_buf_free(&e->body);
    free(e);
}

void sf_hec_fifo_answered(sf_hec_fifo *f, sf_hec_ent *e, uint64_t nok, long long ack_id,
                          uint64_t now, sf_buf *body)
{
    if (nok == 0) {
        fifo_remove(f, e);
        return;
    }
    e->n = nok;
    e->ack_id = ack_id;
    e->t_ms = now;
    e->state = ack_id >= 0 ? SF_HEC_WAITING : SF_HEC_ACKED;
    f->bytes -= e->body.len;
    sf_buf_free(&e->body);
    if (body && e->state == SF_HEC_WAITING) {
        e->body = *body;
        *body = (sf_buf){0};
        f->bytes += e->body.len;
    }
}

bool sf_hec_fifo_ack(sf_hec_fifo *f, long long ack_id)
{
    for (sf_hec_ent *e = f->head; e; e = e->next)
        if (e->state == SF_HEC_WAITING && e->ack_id == ack_id) {
            e->state = SF_HEC_ACKED;
            f->bytes -= e->body.len;
            sf_buf_free(&e->body);
            return true;
        }
    return false;
}

uint64_t sf_hec_fifo_settle(sf_hec_fifo *f)
{
    uint64_t n = 0;
    while (f->head && f->head->state == SF_HEC_ACKED) {
        n += f->head->n;
        fifo_remove(f, f->head);
    }
    return n;
}

size_t sf_hec_fifo_expire(sf_hec_fifo *f, uint64_t now, uint64_t timeout_ms)
{
    size_t k = 0;
    for (sf_hec_ent *e = f->head; e; e = e->next)
        if (e->state == SF_HEC_WAITING && now - e->t_ms >= timeout_ms) {
            e->state = SF_HEC_RESEND;
            k++;
        }
    return k;
}

void sf_hec_fifo_free(sf_hec_fifo *f)
{
    while (f->head)
        fifo_remove(f, f->head);
}

int sf_hec_parse_acks(sf_hec_fifo *f, const char *body, size_t len)
{
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *acks = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "acks") : NULL;
    if (!cJSON_IsObject(acks)) {
        cJSON_Delete(j);
        return -1;
    }
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, acks)
    {
        char *end = NULL;
        long long id = it->string ? strtoll(it->string, &end, 10) : -1;
        if (!cJSON_IsTrue(it) || !end || *end || end == it->string || id < 0)
            continue;
        n += sf_hec_fifo_ack(f, id);
    }
    cJSON_Delete(j);
    return n;
}

char *sf_hec_ack_url(const char *event_url)
{
    sf_buf b = {0};
    const char *p = strstr(event_url, "://");
    p = p ? p + 3 : event_url;
    const char *path = strpbrk(p, "/?#");
    const char *svc = path ? strstr(path, "/services/collector") : NULL;
    size_t keep = svc    ? (size_t)(svc - event_url)
                  : path ? (size_t)(path - event_url)
                         : strlen(event_url);
    if (sf_buf_append(&b, event_url, keep) || sf_buf_puts(&b, "/services/collector/ack")) {
        sf_buf_free(&b);
        return NULL;
    }
    return sf_buf_steal(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* the tracker                                                                                 */

struct sf_hec_acker {
    sf_hec_acker_opts o;
    sf_hec_fifo fifo;
    char *ack_url;
    uv_timer_t timer;
    bool timer_open;
    sf_http_xfer *poll_x;   /* the ack poll in flight */
    sf_http_xfer *resend_x; /* the re-send in flight */
    sf_hec_ent *resend_e;   /* its entry (NULL once it left the FIFO) */
    bool closing;
    void (*closed)(void *ud);
    void *closed_ud;
    bool no_ack_logged;
    uint64_t resent;
};

static void arm(sf_hec_acker *a);

sf_hec_acker *sf_hec_acker_new(const sf_hec_acker_opts *o)
{
    sf_hec_acker *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->o = *o;
    if (!(a->ack_url = sf_hec_ack_url(o->event_url))) {
        free(a);
        return NULL;
    }
    uv_timer_init(o->s->loop, &a->timer);
    a->timer.data = a;
    a->timer_open = true;
    return a;
}

bool sf_hec_acker_has_room(const sf_hec_acker *a)
{
    return a->fifo.bytes < a->o.window_bytes;
}

sf_hec_ent *sf_hec_acker_sent(sf_hec_acker *a)
{
    return sf_hec_fifo_push(&a->fifo);
}

/* Settles the acknowledged head of the FIFO; tells the sink when the window has room again. */
static void settle(sf_hec_acker *a)
{
    bool full = !sf_hec_acker_has_room(a);
    uint64_t n = sf_hec_fifo_settle(&a->fifo);
    if (n)
        SF_DEBUG("sink", "sink %s: Splunk indexed %llu events (%zu requests awaiting ack)",
                 a->o.s->name, (unsigned long long)n, a->fifo.count);
    sf_sink_settled(a->o.s, n);
    if (full && sf_hec_acker_has_room(a) && a->o.room && !a->closing)
        a->o.room(a->o.ud);
}

void sf_hec_acker_answered(sf_hec_acker *a, sf_hec_ent *e, uint64_t nok, long long ack_id,
                           sf_buf *body)
{
    if (nok && ack_id < 0 && !a->no_ack_logged) {
        a->no_ack_logged = true;
        SF_WARN("sink",
                "sink %s: ack is true but Splunk accepted a request without an ackId: the "
                "token does not have indexer acknowledgement enabled, so events settle on "
                "HTTP 200 (not proof of indexing; logged once)",
                a->o.s->name);
    }
    sf_hec_fifo_answered(&a->fifo, e, nok, ack_id, uv_now(a->o.s->loop), body);
    settle(a);
    arm(a);
}

/* ---- the ack poll ---- */

static size_t count_state(const sf_hec_acker *a, int state)
{
    size_t k = 0;
    for (const sf_hec_ent *e = a->fifo.head; e; e = e->next)
        k += e->state == state;
    return k;
}

static void maybe_closed(sf_hec_acker *a)
{
    if (!a->closing || a->timer_open || a->poll_x || a->resend_x || !a->closed)
        return;
    void (*cb)(void *) = a->closed;
    a->closed = NULL;
    cb(a->closed_ud);
}

static const char **header_list(const sf_hec_acker *a, const char *extra, size_t *n)
{
    const char **h = calloc(a->o.hdrs->n + 1, sizeof *h);
    if (!h)
        return NULL;
    for (size_t i = 0; i < a->o.hdrs->n; i++)
        h[i] = a->o.hdrs->v[i];
    *n = a->o.hdrs->n;
    if (extra)
        h[(*n)++] = extra;
    return h;
}

static void on_poll(sf_http_response *resp, void *ud)
{
    sf_hec_acker *a = ud;
    a->poll_x = NULL;
    if (a->closing) {
        maybe_closed(a);
        return;
    }
    int n = -1;
    if (!resp->error && resp->status == 200)
        n = sf_hec_parse_acks(&a->fifo, resp->body.data, resp->body.len);
    if (n < 0) {
        char snippet[160];
        sf_http_sanitize(resp->body.data, resp->body.len, snippet, sizeof snippet);
        if (resp->error)
            sf_sink_set_error(a->o.s, "Splunk HEC ack poll: %s", sf_http_strerror(resp->error));
        else
            sf_sink_set_error(a->o.s, "Splunk HEC ack poll: HTTP %ld%s%s", resp->status,
                              snippet[0] ? ": " : "", snippet);
        SF_WARN("sink", "sink %s: %s (events stay unconfirmed; re-sent after ack_timeout)",
                a->o.s->name, a->o.s->last_error);
    }
    settle(a);
    arm(a);
}

static void poll_now(sf_hec_acker *a)
{
    if (a->poll_x || a->closing)
        return;
    sf_buf body = {0};
    size_t k = 0;
    int rc = sf_buf_puts(&body, "{\"acks\":[");
    for (const sf_hec_ent *e = a->fifo.head; e && !rc; e = e->next)
        if (e->state == SF_HEC_WAITING)
            rc = sf_buf_appendf(&body, "%s%lld", k++ ? "," : "", e->ack_id);
    if (!rc)
        rc = sf_buf_puts(&body, "]}");
    size_t nh = 0;
    const char **hdrs = rc || !k ? NULL : header_list(a, NULL, &nh);
    if (hdrs) {
        sf_http_request req = {.method = "POST",
                               .url = a->ack_url,
                               .headers = hdrs,
                               .nheaders = nh,
                               .body = body.data,
                               .body_len = body.len};
        sf_http_sink_request(&req, a->o.http);
        if (sf_http_send(a->o.s->http, &req, on_poll, a, &a->poll_x) != 0)
            a->poll_x = NULL;
    }
    free(hdrs);
    sf_buf_free(&body);
}

/* ---- re-sends ---- */

static sf_hec_ent *find_resend(const sf_hec_acker *a)
{
    for (sf_hec_ent *e = a->fifo.head; e; e = e->next)
        if (e->state == SF_HEC_RESEND)
            return e;
    return NULL;
}

static void on_resent(sf_http_response *resp, void *ud)
{
    sf_hec_acker *a = ud;
    sf_hec_ent *e = a->resend_e;
    a->resend_x = NULL;
    a->resend_e = NULL;
    if (a->closing) {
        if (e && e->state == SF_HEC_RESENDING)
            e->state = SF_HEC_RESEND;
        maybe_closed(a);
        return;
    }
    if (!e || e->state != SF_HEC_RESENDING)
        return;
    sf_deliv_status *st = calloc((size_t)e->n, sizeof *st);
    char reason[320] = "";
    sf_hec_answer ans = {.code = -1, .ack_id = -1, .invalid_at = -1};
    size_t bad = st ? sf_hec_classify(resp->status, resp->error, resp->body.data, resp->body.len,
                                      (size_t)e->n, st, reason, sizeof reason, true, &ans)
                    : 1;
    free(st);
    uint64_t now = uv_now(a->o.s->loop);
    e->t_ms = now;
    if (bad) {
        /* still not accepted: it stays in the FIFO (and holds the checkpoint) and is tried
         * again on the next tick (ack_poll_interval); the records were reported OK, so they
         * cannot become dead letters from here */
        e->state = SF_HEC_RESEND;
        sf_sink_set_error(a->o.s, "re-sending unacknowledged events: %s", reason);
        SF_WARN("sink", "sink %s: %s", a->o.s->name, a->o.s->last_error);
    } else if (ans.ack_id >= 0) {
        e->state = SF_HEC_WAITING;
        e->ack_id = ans.ack_id;
    } else {
        e->state = SF_HEC_ACKED;
        a->fifo.bytes -= e->body.len;
        sf_buf_free(&e->body);
    }
    settle(a);
    arm(a);
}

static void resend_next(sf_hec_acker *a)
{
    if (a->resend_x || a->closing)
        return;
    sf_hec_ent *e = find_resend(a);
    if (!e)
        return;
    sf_buf gz = {0};
    const sf_buf *wire = &e->body;
    if (a->o.gzip) {
        if (sf_http_gzip(&e->body, &gz) != 0) {
            sf_buf_free(&gz);
            return; /* tried again on the next tick */
        }
        wire = &gz;
    }
    size_t nh = 0;
    const char **hdrs = header_list(a, a->o.gzip ? "Content-Encoding: gzip" : NULL, &nh);
    if (hdrs) {
        sf_http_request req = {.method = "POST",
                               .url = a->o.event_url,
                               .headers = hdrs,
                               .nheaders = nh,
                               .body = wire->data,
                               .body_len = wire->len};
        sf_http_sink_request(&req, a->o.http);
        if (sf_http_send(a->o.s->http, &req, on_resent, a, &a->resend_x) == 0) {
            e->state = SF_HEC_RESENDING;
            e->resends++;
            a->resend_e = e;
            a->resent++;
            SF_WARN("sink",
                    "sink %s: Splunk did not acknowledge %llu events within ack_timeout "
                    "(%lldms; ack status is lost when an indexer restarts or the channel idles): "
                    "re-sending them (duplicates possible; %llu requests re-sent in total)",
                    a->o.s->name, (unsigned long long)e->n, (long long)a->o.timeout_ms,
                    (unsigned long long)a->resent);
        } else {
            a->resend_x = NULL;
        }
    }
    free(hdrs);
    sf_buf_free(&gz);
}

/* ---- the timer: poll, expire, re-send ---- */

static void timer_cb(uv_timer_t *t)
{
    sf_hec_acker *a = t->data;
    if (a->closing)
        return;
    sf_hec_fifo_expire(&a->fifo, uv_now(a->o.s->loop), (uint64_t)a->o.timeout_ms);
    poll_now(a);
    resend_next(a);
    arm(a);
}

/* Keeps the timer running while something waits for an ack or a re-send. */
static void arm(sf_hec_acker *a)
{
    if (a->closing || !a->timer_open)
        return;
    bool work = count_state(a, SF_HEC_WAITING) || count_state(a, SF_HEC_RESEND);
    if (!work) {
        uv_timer_stop(&a->timer);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&a->timer))
        uv_timer_start(&a->timer, timer_cb, (uint64_t)a->o.poll_ms, 0);
}

void sf_hec_acker_flush(sf_hec_acker *a)
{
    if (a->closing)
        return;
    poll_now(a);
    resend_next(a);
    arm(a);
}

static void timer_closed(uv_handle_t *h)
{
    sf_hec_acker *a = h->data;
    a->timer_open = false;
    maybe_closed(a);
}

void sf_hec_acker_close(sf_hec_acker *a, void (*closed)(void *ud), void *ud)
{
    a->closing = true;
    a->closed = closed;
    a->closed_ud = ud;
    if (a->poll_x)
        sf_http_cancel(a->poll_x);
    if (a->resend_x)
        sf_http_cancel(a->resend_x);
    if (a->timer_open && !uv_is_closing((uv_handle_t *)&a->timer))
        uv_close((uv_handle_t *)&a->timer, timer_closed);
    maybe_closed(a);
}

void sf_hec_acker_free(sf_hec_acker *a)
{
    if (!a)
        return;
    sf_hec_fifo_free(&a->fifo);
    free(a->ack_url);
    free(a);
}

uint64_t sf_hec_acker_resent(const sf_hec_acker *a)
{
    return a->resent;
}
