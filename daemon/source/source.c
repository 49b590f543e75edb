/* source: the Secure Events poller (see source.h and docs/design.md, "Tailing the API").
 * Over 600 lines because windows, cursors, dedup and the error classes of one request cycle
 * are one state machine; the checkpoint and delivery live elsewhere (pipeline/committer). */
#include "source/source.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idset.h"
#include "core/log.h"

#define MAX_WINDOW_NS (INT64_C(14) * 86400 * SF_NS_PER_SEC)
#define MIN_SPLIT_NS (SF_NS_PER_SEC)
#define BOUNDED_FAILURES 10 /* consecutive API failures before --once/--from gives up */
#define CURSOR_RING 64

const double sf_source_latency_bounds[12] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1,    2.5,   5,    10,  30,   60};

typedef struct window {
    int64_t from, to, low;
    int64_t floor;        /* a split never moves 'to' below floor + 1s (progress) */
    char *cursor;         /* cursor to send; NULL = first page (from/to) */
    int64_t fallback_low; /* 'low' when we last fell back to a time re-read */
    bool first_page;
    unsigned long long ring[CURSOR_RING]; /* hashes of cursors seen in this window */
    size_t nring;
} window_t;

struct sf_source {
    uv_loop_t *loop;
    sf_http *http;
    const sf_config *cfg;
    const sf_source_cfg *sc;
    sf_defer *defer;
    sf_source_opts opts;
    sf_source_out out;
    sf_defer_node done_node; /* reports the end of fetching on a later turn */
    int done_status;

    sf_checkpoint cp; /* where this run started (the loaded checkpoint; no ids) */

    sf_idset seen; /* delivered or in flight */

    window_t win;
    bool have_window;
    bool fetch_pending_space; /* waiting for pipeline space */
    bool windows_exhausted;   /* ONCE/RANGE: no more windows to fetch */
    int64_t target_ns;        /* ONCE: catch up to this */
    int64_t last_window_start_ms;

    sf_http_xfer *xfer;
    int64_t req_start_ms;
    uv_timer_t timer;
    bool timer_active, stopped, finished;
    unsigned failures;
    int fail_status;

    sf_source_stats st;
};

static void fetch(sf_source *s);
static void finish(sf_source *s, int status);

/* ---------------------------------------------------------------- end of fetching */

static void done_cb(void *arg)
{
    sf_source *s = arg;
    if (s->out.done)
        s->out.done(s->out.ud, s->done_status);
}

static void check_finished(sf_source *s)
{
    if (s->opts.mode == SF_MODE_FOLLOW || s->finished)
        return;
    if (!s->windows_exhausted || s->xfer)
        return;
    finish(s, s->fail_status); /* the application waits for the pages in flight */
}

/* ---------------------------------------------------------------- windows */

static int64_t now_ns(void)
{
    return sf_now_ns();
}

static void window_reset(window_t *w)
{
    free(w->cursor);
    memset(w, 0, sizeof *w);
}

/* No window in progress; 'to' (the end of the last one) is what the next one starts from. */
static void window_done(sf_source *s, int64_t to)
{
    window_reset(&s->win);
    s->win.to = to;
    s->win.from = SF_TIME_UNSET;
    s->have_window = true;
}

static void window_set(sf_source *s, int64_t from, int64_t to, int64_t floor)
{
    window_reset(&s->win);
    s->win.from = from;
    s->win.to = to;
    s->win.floor = floor;
    s->win.low = SF_TIME_UNSET;
    s->win.first_page = true;
    s->win.fallback_low = SF_TIME_UNSET;
    s->have_window = true;
    s->st.windows++;
    s->st.window_from_ns = from;
    s->st.window_to_ns = to;
    s->st.window_low_ns = SF_TIME_UNSET;
    sf_idset_prune(&s->seen, from);
    s->last_window_start_ms = sf_monotonic_ms();
    char a[40], b[40];
    sf_format_rfc3339(from, 3, a, sizeof a);
    sf_format_rfc3339(to, 3, b, sizeof b);
    SF_DEBUG("source", "window %s .. %s", a, b);
}

static void timer_cb(uv_timer_t *t)
{
    sf_source *s = t->data;
    s->timer_active = false;
    fetch(s);
}

static void wait_ms(sf_source *s, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    s->timer_active = true;
    uv_timer_start(&s->timer, timer_cb, (uint64_t)ms, 0);
}

/* Decides the next window after the current one was fully fetched (or at start).
 * Returns true if a window is ready to fetch now. */
static bool next_window(sf_source *s)
{
    int64_t overlap = s->sc->overlap_ms * SF_NS_PER_MS;
    int64_t now = now_ns();
    if (s->opts.mode == SF_MODE_RANGE) {
        int64_t from = s->have_window ? s->win.to : s->opts.range_from_ns;
        if (s->have_window && s->win.to >= s->opts.range_to_ns) {
            s->windows_exhausted = true;
            s->have_window = false;
            return false;
        }
        int64_t to = s->opts.range_to_ns;
        if (to - from > MAX_WINDOW_NS)
            to = from + MAX_WINDOW_NS;
        window_set(s, from, to, from);
        return true;
    }
    int64_t prev_to;
    if (s->have_window)
        prev_to = s->win.to;
    else if (s->cp.watermark_ns != SF_TIME_UNSET)
        prev_to = s->cp.watermark_ns;
    else
        prev_to = SF_TIME_UNSET;
    if (s->opts.mode == SF_MODE_ONCE && prev_to != SF_TIME_UNSET && prev_to >= s->target_ns) {
        s->windows_exhausted = true;
        s->have_window = false;
        return false;
    }
    int64_t from =
        prev_to == SF_TIME_UNSET ? now - s->sc->lookback_ms * SF_NS_PER_MS : prev_to - overlap;
    int64_t floor = prev_to == SF_TIME_UNSET ? from : prev_to;
    if (s->opts.mode == SF_MODE_FOLLOW && prev_to != SF_TIME_UNSET) {
        /* caught up? then wait for the poll interval to pass since the last window began */
        int64_t since = sf_monotonic_ms() - s->last_window_start_ms;
        int64_t lag_ms = (now - prev_to) / SF_NS_PER_MS;
        if (lag_ms < s->sc->poll_interval_ms && since < s->sc->poll_interval_ms) {
            window_done(s, prev_to);
            s->st.window_from_ns = s->st.window_to_ns = 0;
            wait_ms(s, s->sc->poll_interval_ms - since);
            return false;
        }
    }
    int64_t to = now;
    if (s->opts.mode == SF_MODE_ONCE && to > s->target_ns)
        to = s->target_ns;
    if (to - from > MAX_WINDOW_NS)
        to = from + MAX_WINDOW_NS;
    if (to <= from)
        to = from + 1;
    window_set(s, from, to, floor);
    return true;
}

/* ---------------------------------------------------------------- requests */

static const char *api_path(const sf_source_cfg *sc)
{
    return sc->api == SF_API_EVENTS ? "/secure/events/v1/events" : "/api/v1/secureEvents";
}

static int query_rc(CURLUcode uc)
{
    return uc == CURLUE_OK ? 0 : uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* Appends one name=value pair (no characters needing encoding) to the query. */
static int add_query(CURLU *u, const char *q)
{
    return query_rc(curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY));
}

/* Appends name=value with the value URL-encoded (cursors hold '+', '/' and '='). */
static int add_query_encoded(CURLU *u, const char *name, const char *value)
{
    sf_buf q = {0};
    sf_buf_appendf(&q, "%s=%s", name, value);
    int rc = sf_buf_error(&q) ? sf_buf_error(&q)
                              : query_rc(curl_url_set(u, CURLUPART_QUERY, q.data,
                                                      CURLU_APPENDQUERY | CURLU_URLENCODE));
    sf_buf_free(&q);
    return rc;
}

static int build_url(const sf_source_cfg *sc, const char *path, const window_t *w, long limit,
                     char **out)
{
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    int rc = -EINVAL;
    char q[128];
    char *base = NULL;
    size_t bl = strlen(sc->url);
    while (bl && sc->url[bl - 1] == '/')
        bl--;
    if (!(base = malloc(bl + strlen(path) + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(base, sc->url, bl);
    strcpy(base + bl, path);
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto out;
    if (w && w->cursor) {
        if ((rc = add_query_encoded(u, "cursor", w->cursor)) != 0)
            goto out;
    } else if (w) {
        snprintf(q, sizeof q, "from=%lld", (long long)w->from);
        if ((rc = add_query(u, q)) != 0)
            goto out;
        snprintf(q, sizeof q, "to=%lld", (long long)w->to);
        if ((rc = add_query(u, q)) != 0)
            goto out;
    }
    snprintf(q, sizeof q, "limit=%ld", limit);
    if ((rc = add_query(u, q)) != 0)
        goto out;
    if (sc->filter && sc->filter[0] && (rc = add_query_encoded(u, "filter", sc->filter)) != 0)
        goto out;
    for (size_t i = 0; i < sc->zones.n; i++) {
        snprintf(q, sizeof q, "zones=%lld", (long long)sc->zones.v[i]);
        if ((rc = add_query(u, q)) != 0)
            goto out;
    }
    rc = -EINVAL;
    char *url = NULL;
    if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
        goto out;
    *out = sf_strdup(url);
    curl_free(url);
    rc = *out ? 0 : -ENOMEM;
out:
    free(base);
    curl_url_cleanup(u);
    return rc;
}

static void fill_request(const sf_source_cfg *sc, sf_http_request *r, const char **hdrs, char *auth,
                         size_t authlen)
{
    snprintf(auth, authlen, "Authorization: Bearer %s", sc->token ? sc->token : "");
    hdrs[0] = auth;
    hdrs[1] = "Accept: application/json";
    memset(r, 0, sizeof *r);
    r->method = "GET";
    r->headers = hdrs;
    r->nheaders = 2;
    r->timeout_ms = sc->request_timeout_ms;
    r->connect_timeout_ms = sc->connect_timeout_ms;
    r->low_speed_bytes = 1;
    r->low_speed_time_s = sc->request_timeout_ms / 1000 > 0 ? sc->request_timeout_ms / 1000 : 1;
    r->max_response = (size_t)sc->max_response_size;
    r->tls = &sc->tls;
    r->proxy = sc->proxy;
    r->user_agent = sc->user_agent;
}

/* The message of an API error body, sanitised to printable ASCII (it may be HTML). */
static void error_message(const sf_buf *body, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!body->data || !body->len)
        return;
    cJSON *j = cJSON_ParseWithLength(body->data, body->len);
    const char *msg = NULL;
    if (j) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
        if (cJSON_IsString(m))
            msg = m->valuestring;
        else if (cJSON_IsArray(errs)) {
            const cJSON *e0 = cJSON_GetArrayItem(errs, 0);
            const cJSON *em = cJSON_GetObjectItemCaseSensitive(e0, "message");
            if (cJSON_IsString(em))
                msg = em->valuestring;
        }
    }
    const char *src = msg ? msg : body->data;
    size_t n = msg ? strlen(msg) : body->len;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < outlen && k < 200; i++) {
        unsigned char c = (unsigned char)src[i];
        out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    out[k] = '\0';
    cJSON_Delete(j);
}

static void on_page(sf_http_response *resp, void *ud);

static bool bounded(const sf_source *s)
{
    return s->opts.mode != SF_MODE_FOLLOW;
}

/* A failure that is worth retrying: back off and try the same request again. */
static void retry_later(sf_source *s, int64_t hint_ms, const char *what)
{
    s->failures++;
    if (bounded(s) && s->failures >= BOUNDED_FAILURES) {
        SF_ERROR("source", "%s; giving up after %u attempts", what, s->failures);
        s->fail_status = 1;
        s->windows_exhausted = true;
        check_finished(s);
        return;
    }
    int64_t delay =
        hint_ms > 0 ? hint_ms
                    : sf_backoff_ms(s->failures - 1, s->sc->retry_initial_ms, s->sc->retry_max_ms);
    SF_WARN("source", "%s; retry %u in %lldms", what, s->failures, (long long)delay);
    wait_ms(s, delay);
}

static void fatal_for_bounded(sf_source *s, const char *what)
{
    if (bounded(s)) {
        SF_ERROR("source", "%s", what);
        s->fail_status = 1;
        s->windows_exhausted = true;
        check_finished(s);
        return;
    }
    char d[32];
    sf_format_duration(s->sc->auth_retry_ms, d, sizeof d);
    SF_ERROR("source", "%s; still running, next attempt in %s", what, d);
    s->failures++;
    wait_ms(s, s->sc->auth_retry_ms);
}

static void fetch(sf_source *s)
{
    if (s->stopped || s->finished || s->xfer || s->timer_active)
        return;
    if (!s->have_window || s->win.from == SF_TIME_UNSET) {
        if (s->windows_exhausted || !next_window(s)) {
            check_finished(s);
            return;
        }
    }
    if (!s->out.can_accept(s->out.ud)) {
        s->fetch_pending_space = true;
        return;
    }
    char *url = NULL;
    long limit = (long)s->sc->page_size;
    int rc = build_url(s->sc, api_path(s->sc), &s->win, limit, &url);
    if (rc) {
        retry_later(s, 1000, "cannot build the request URL");
        return;
    }
    sf_http_request r;
    const char *hdrs[2];
    char auth[SF_SOURCE_MAX_TOKEN + 64];
    fill_request(s->sc, &r, hdrs, auth, sizeof auth);
    r.url = url;
    s->req_start_ms = sf_monotonic_ms();
    s->st.requests++;
    rc = sf_http_send(s->http, &r, on_page, s, &s->xfer);
    memset(auth, 0, sizeof auth);
    free(url);
    if (rc) {
        s->xfer = NULL;
        retry_later(s, 0, "cannot start the HTTP request");
    }
}

void sf_source_on_space(sf_source *s)
{
    if (s->fetch_pending_space) {
        s->fetch_pending_space = false;
        fetch(s);
    }
}

static bool cursor_seen(window_t *w, const char *c)
{
    unsigned long long h = sf_hash_str(c);
    size_t n = w->nring < CURSOR_RING ? w->nring : CURSOR_RING;
    for (size_t i = 0; i < n; i++)
        if (w->ring[i] == h)
            return true;
    w->ring[w->nring++ % CURSOR_RING] = h;
    return false;
}

static void record_latency(sf_source *s)
{
    double secs = (double)(sf_monotonic_ms() - s->req_start_ms) / 1000.0;
    s->st.poll_latency_sum += secs;
    for (size_t i = 0; i < SF_ARRAY_LEN(sf_source_latency_bounds); i++)
        if (secs <= sf_source_latency_bounds[i])
            s->st.poll_latency_buckets[i]++;
}

/* Processes a good page: clip, dedup, submit; decides end of window. */
static void handle_page(sf_source *s, sf_page *pg)
{
    window_t *w = &s->win;
    const char *older = s->sc->api == SF_API_EVENTS ? pg->next : pg->prev;
    long limit = (long)s->sc->page_size;

    /* split an oversized window before delivering anything of it */
    if (w->first_page && !w->cursor && pg->total > s->sc->max_window_events &&
        w->to - w->floor > 2 * MIN_SPLIT_NS) {
        int64_t nto = w->floor + (w->to - w->floor) / 2;
        s->st.window_splits++;
        SF_INFO("source", "window holds ~%lld events (> max_window_events %lld): splitting",
                (long long)pg->total, (long long)s->sc->max_window_events);
        w->to = nto;
        s->st.window_to_ns = nto;
        return; /* same from, smaller to: fetch again */
    }
    w->first_page = false;

    sf_event *keep = calloc(pg->n ? pg->n : 1, sizeof *keep);
    sf_progress *t = calloc(1, sizeof *t);
    if (t)
        t->ids = calloc(pg->n ? pg->n : 1, sizeof *t->ids);
    if (!keep || !t || !t->ids) {
        free(keep);
        sf_progress_free(t);
        retry_later(s, 1000, "out of memory processing a page");
        return;
    }
    bool older_than_window = false;
    size_t nk = 0;
    for (size_t i = 0; i < pg->n; i++) {
        sf_event *ev = &pg->events[i];
        if (ev->ts_ns != SF_TIME_UNSET && ev->ts_ns < w->from) {
            older_than_window = true;
            s->st.clipped++;
            continue;
        }
        if (ev->ts_ns != SF_TIME_UNSET && ev->ts_ns > w->to) {
            s->st.clipped++; /* newer than the window: the next window reads it */
            continue;
        }
        if (sf_idset_has(&s->seen, ev->id)) {
            s->st.duplicates++;
            continue;
        }
        if (ev->ts_ns == SF_TIME_UNSET)
            SF_WARN("source", "event %s has no usable timestamp; delivered unclipped", ev->id);
        if (sf_idset_add(&s->seen, ev->id, ev->ts_ns))
            SF_WARN("source", "out of memory remembering ids (duplicates possible)");
        t->ids[t->nids].id = sf_strdup(ev->id);
        t->ids[t->nids].ts_ns = ev->ts_ns;
        if (t->ids[t->nids].id)
            t->nids++;
        if (ev->ts_ns != SF_TIME_UNSET && (w->low == SF_TIME_UNSET || ev->ts_ns < w->low))
            w->low = ev->ts_ns;
        keep[nk++] = *ev;
        memset(ev, 0, sizeof *ev);
    }
    bool end = false, refetch_by_time = false;
    const char *why = NULL;
    if (pg->n == 0)
        end = true, why = "empty page";
    else if (!older)
        end = true, why = "no cursor";
    else if (s->sc->api == SF_API_LEGACY && (long)pg->n < limit)
        end = true, why = "short page";
    else if (older_than_window)
        end = true, why = "reached window start";
    else if ((w->cursor && strcmp(older, w->cursor) == 0) || cursor_seen(w, older)) {
        /* A server repeating cursors must not spin us, nor make us skip what is left of the
         * window: re-read the rest by time ([from, oldest delivered]); if that makes no
         * progress either, end the window. */
        if (w->low != SF_TIME_UNSET && w->low != w->fallback_low) {
            SF_WARN("source", "server repeated a page cursor; re-reading the rest of the window "
                              "by time");
            w->fallback_low = w->low;
            refetch_by_time = true;
        } else {
            end = true, why = "repeated cursor";
            SF_WARN("source", "server keeps repeating page cursors; ending the window here");
        }
    }
    s->st.pages++;
    s->st.events += nk;
    s->st.window_low_ns = w->low;
    t->window_end = end;
    t->win_from = w->from;
    t->win_to = w->to;
    t->low_ns = w->low;
    t->nevents = nk;
    if (!end && !(t->cursor_after = sf_strdup(older))) {
        for (size_t i = 0; i < nk; i++)
            sf_event_free(&keep[i]);
        free(keep);
        sf_progress_free(t);
        retry_later(s, 1000, "out of memory processing a page");
        return;
    }
    if (s->out.emit(s->out.ud, keep, nk, t) != 0) {
        for (size_t i = 0; i < nk; i++)
            sf_event_free(&keep[i]);
        free(keep);
        sf_progress_free(t);
        retry_later(s, 1000, "out of memory submitting a page");
        return;
    }
    if (refetch_by_time) {
        free(w->cursor);
        w->cursor = NULL;
        w->first_page = false; /* no split of a partly delivered window */
        w->to = w->low;        /* ids at exactly 'low' are in the seen set */
        w->nring = 0;
    } else if (end) {
        SF_DEBUG("source", "window ends: %s", why);
        window_done(s, w->to);
    } else {
        free(w->cursor);
        w->cursor = sf_strdup(older);
        if (!w->cursor) { /* resume from the window start; dedup keeps it exact */
            w->first_page = true;
        }
    }
}

static void set_last_error(sf_source *s, const char *what)
{
    size_t n = strlen(what);
    if (n >= sizeof s->st.last_error)
        n = sizeof s->st.last_error - 1;
    memcpy(s->st.last_error, what, n);
    s->st.last_error[n] = '\0';
}

static void on_page(sf_http_response *resp, void *ud)
{
    sf_source *s = ud;
    s->xfer = NULL;
    if (resp->error == SF_HTTP_ECANCELED || s->stopped) {
        check_finished(s);
        return;
    }
    record_latency(s);
    s->st.last_status = resp->status;
    char what[800];
    if (resp->error == SF_HTTP_ETLSVERIFY) {
        /* not an outage: retrying at the network pace would not heal it */
        s->st.errors_tls_verify++;
        snprintf(what, sizeof what,
                 "API certificate cannot be verified (%s): a configuration problem, not an "
                 "outage: set source.tls.ca_file to the CA that signed the API's certificate "
                 "(or fix that certificate); source.tls.verify: false only for tests",
                 resp->errmsg);
        set_last_error(s, what);
        fatal_for_bounded(s, what);
        return;
    }
    if (resp->error) {
        s->st.errors_transport++;
        snprintf(what, sizeof what, "API request failed: %s (%s)", sf_http_strerror(resp->error),
                 resp->errmsg);
        set_last_error(s, what);
        retry_later(s, 0, what);
        return;
    }
    long st = resp->status;
    if (st == 200) {
        sf_page pg;
        char err[256];
        sf_parse_limits lim = {.max_event_size = 8u << 20, .max_events = 100000};
        int rc = sf_page_parse(resp->body.data ? resp->body.data : "", resp->body.len, &lim, &pg,
                               err, sizeof err);
        if (rc) {
            s->st.errors_malformed++;
            snprintf(what, sizeof what, "API returned an unusable page (%s)", err);
            set_last_error(s, what);
            retry_later(s, 0, what);
            return;
        }
        s->failures = 0;
        s->st.last_success_ms = sf_monotonic_ms();
        s->st.last_error[0] = '\0';
        handle_page(s, &pg);
        sf_page_free(&pg);
        fetch(s);
        return;
    }
    char msg[256];
    error_message(&resp->body, msg, sizeof msg);
    if (st == 429) {
        s->st.status_429++;
        snprintf(what, sizeof what, "API rate limit reached (HTTP 429%s%s)", msg[0] ? ": " : "",
                 msg);
        set_last_error(s, what);
        int64_t hint = resp->retry_after_ms > 0 ? resp->retry_after_ms : 0;
        if (hint > 0)
            s->failures = 0; /* the server told us when: not a failure streak */
        retry_later(s, hint, what);
        return;
    }
    if (st >= 500) {
        s->st.status_5xx++;
        snprintf(what, sizeof what, "API server error (HTTP %ld%s%s)", st, msg[0] ? ": " : "", msg);
        set_last_error(s, what);
        retry_later(s, resp->retry_after_ms, what);
        return;
    }
    s->st.status_4xx++;
    if (st == 401 || st == 403) {
        s->st.status_401_403++;
        snprintf(what, sizeof what,
                 "API refused the token (HTTP %ld%s%s): check source.token / source.token_file "
                 "and that the token has the policy-events.read permission",
                 st, msg[0] ? ": " : "", msg);
        set_last_error(s, what);
        fatal_for_bounded(s, what);
        return;
    }
    if (st == 400 && s->win.cursor) {
        /* the cursor is no longer accepted: re-read what is left of the window by time */
        SF_WARN("source",
                "API rejected the page cursor (HTTP 400%s%s); re-reading the rest of "
                "the window by time",
                msg[0] ? ": " : "", msg);
        free(s->win.cursor);
        s->win.cursor = NULL;
        s->win.first_page = false; /* no split on a resumed window */
        if (s->win.low != SF_TIME_UNSET && s->win.low < s->win.to)
            s->win.to = s->win.low; /* ids at exactly 'low' are in the seen set */
        s->failures++;
        wait_ms(s, sf_backoff_ms(s->failures - 1, s->sc->retry_initial_ms, s->sc->retry_max_ms));
        return;
    }
    snprintf(what, sizeof what, "API rejected the request (HTTP %ld%s%s)%s", st, msg[0] ? ": " : "",
             msg, st == 400 ? ": check source.filter, source.zones and the clock" : "");
    set_last_error(s, what);
    fatal_for_bounded(s, what);
}

/* ---------------------------------------------------------------- lifecycle */

/* The ids the checkpoint lists were delivered: they are not delivered again. */
static void collect_ids(sf_source *s, const sf_checkpoint *start)
{
    for (size_t i = 0; i < start->nids; i++) {
        sf_idset_add(&s->seen, start->ids[i].id, start->ids[i].ts_ns);
    }
}

int sf_source_new(uv_loop_t *loop, sf_defer *defer, sf_http *http, const sf_config *cfg,
                  const sf_checkpoint *start, const sf_source_opts *opts, const sf_source_out *out,
                  sf_source **ret)
{
    sf_source *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->defer = defer;
    s->http = http;
    s->cfg = cfg;
    s->sc = &cfg->source;
    s->opts = *opts;
    s->out = *out;
    sf_defer_node_init(&s->done_node, done_cb, s);
    s->cp = *start; /* the position; the ids go to the seen set */
    s->cp.ids = NULL;
    s->cp.nids = 0;
    if (start->cursor && !(s->cp.cursor = sf_strdup(start->cursor))) {
        free(s);
        return -ENOMEM;
    }
    sf_idset_init(&s->seen, (size_t)cfg->source.dedup_max_ids);
    collect_ids(s, start);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    *ret = s;
    return 0;
}

int sf_source_start(sf_source *s)
{
    s->target_ns = now_ns();
    if (s->opts.mode != SF_MODE_RANGE && s->cp.in_window) {
        /* resume the window in progress where the last commit left it */
        window_set(s, s->cp.win_from_ns, s->cp.win_to_ns, s->cp.win_from_ns);
        s->win.first_page = false;
        s->win.low = s->cp.win_low_ns;
        if (s->cp.cursor && !(s->win.cursor = sf_strdup(s->cp.cursor)))
            return -ENOMEM;
        char a[40];
        sf_format_rfc3339(s->cp.win_to_ns, 3, a, sizeof a);
        SF_INFO("source", "resuming the window ending %s from its saved cursor", a);
    }
    fetch(s);
    return 0;
}

static void finish(sf_source *s, int status)
{
    if (s->finished)
        return;
    s->finished = true;
    s->done_status = status;
    sf_defer_post(s->defer, &s->done_node);
}

void sf_source_stop(sf_source *s)
{
    s->stopped = true;
    if (s->timer_active) {
        uv_timer_stop(&s->timer);
        s->timer_active = false;
    }
    if (s->xfer)
        sf_http_cancel(s->xfer);
}

void sf_source_stats_get(const sf_source *s, sf_source_stats *st)
{
    *st = s->st;
}

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void sf_source_free(sf_source *s)
{
    if (!s)
        return;
    window_reset(&s->win);
    sf_idset_free(&s->seen);
    sf_defer_cancel(&s->done_node);
    sf_checkpoint_free(&s->cp);
    /* the timer handle lives inside s: free s from its close callback */
    uv_close((uv_handle_t *)&s->timer, timer_closed);
}

/* ---------------------------------------------------------------- ping */

typedef struct ping {
    sf_ping_cb cb;
    void *ud;
} ping_t;

static void on_ping(sf_http_response *resp, void *ud)
{
    ping_t *p = ud;
    char msg[600], body[256];
    int rc = 0;
    error_message(&resp->body, body, sizeof body);
    if (resp->error) {
        snprintf(msg, sizeof msg, "cannot reach the API: %s (%s)", sf_http_strerror(resp->error),
                 resp->errmsg);
        rc = 1;
    } else if (resp->status == 200) {
        snprintf(msg, sizeof msg, "OK: the API answered and accepted the token%s",
                 resp->ratelimit_limit > 0 ? "" : "");
    } else if (resp->status == 401 || resp->status == 403) {
        snprintf(msg, sizeof msg,
                 "the API refused the token (HTTP %ld%s%s): check source.token / "
                 "source.token_file and the policy-events.read permission",
                 resp->status, body[0] ? ": " : "", body);
        rc = 1;
    } else if (resp->status == 404) {
        snprintf(msg, sizeof msg,
                 "HTTP 404: the URL does not serve this API (check source.url and source.api)");
        rc = 1;
    } else {
        snprintf(msg, sizeof msg, "unexpected answer: HTTP %ld%s%s", resp->status,
                 body[0] ? ": " : "", body);
        rc = 1;
    }
    p->cb(p->ud, rc, msg);
    free(p);
}

int sf_source_ping(sf_http *http, const sf_config *cfg, sf_ping_cb cb, void *ud)
{
    const sf_source_cfg *sc = &cfg->source;
    ping_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->cb = cb;
    p->ud = ud;
    char *url = NULL;
    int rc;
    if (sc->api == SF_API_LEGACY) {
        rc = build_url(sc, "/api/v1/secureEvents/status", NULL, 1, &url);
    } else {
        window_t w = {0};
        w.to = sf_now_ns();
        w.from = w.to - 60 * SF_NS_PER_SEC;
        rc = build_url(sc, api_path(sc), &w, 1, &url);
    }
    if (rc) {
        free(p);
        return rc;
    }
    sf_http_request r;
    const char *hdrs[2];
    char auth[SF_SOURCE_MAX_TOKEN + 64];
    fill_request(sc, &r, hdrs, auth, sizeof auth);
    r.url = url;
    rc = sf_http_send(http, &r, on_ping, p, NULL);
    memset(auth, 0, sizeof auth);
    free(url);
    if (rc)
        free(p);
    return rc;
}
