/* source: the Secure Events poller (see source.h and docs/design.md, "Tailing the API").
 * Over 600 lines because windows, cursors, dedup, catch-up lanes and the error classes of one
 * request cycle are one state machine; the checkpoint and delivery live elsewhere
 * (pipeline/committer). */
#include "source/source.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idset.h"
#include "core/log.h"

#define MAX_WINDOW_NS (INT64_C(14) * 86400 * SF_NS_PER_SEC)
#define MIN_SPLIT_NS (SF_NS_PER_SEC)
#define MIN_SLICE_NS (SF_NS_PER_SEC) /* a catch-up slice spans at least this */
#define SEEN_PRUNE_MIN 512           /* a cut window's seen set is pruned from this size */
#define BOUNDED_FAILURES 10          /* consecutive API failures before --once/--from gives up */
#define CURSOR_RING 64
#define MAX_LANES 32
_Static_assert(MAX_LANES >= SF_CHECKPOINT_MAX_SLICES, "a checkpoint's slices fit in the lanes");

const double sf_source_latency_bounds[12] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1,    2.5,   5,    10,  30,   60};

typedef struct window {
    int64_t from, to, low;
    int64_t floor;        /* a split never moves 'to' below floor + 1s (progress) */
    char *cursor;         /* cursor to send; NULL = first page (from/to) */
    int64_t fallback_low; /* 'low' when we last fell back to a time re-read */
    bool first_page;
    bool no_halve; /* a resumed window is not halved (its start was partly delivered) */
    unsigned long long ring[CURSOR_RING]; /* hashes of cursors seen in this window */
    size_t nring;
} window_t;

/* A lane walks one window (or, while a backlog window is cut into slices, one slice) page by
 * page with its own cursor; lanes[0] alone when the window is not cut. */
typedef struct lane {
    window_t win;
    bool active;           /* has pages left to fetch */
    sf_http_xfer *xfer;    /* its request in flight */
    bool parsing;          /* its page is being parsed on the thread pool */
    int64_t req_start_ms;  /* when that request was sent */
    int64_t wait_until_ms; /* backoff: no request before (monotonic ms; 0: none) */
    unsigned failures;     /* consecutive failed requests */
    size_t granted;        /* body bytes of its answer admitted (s->receiving) until handled */
    bool held_back;        /* its answer is paused for memory (s->paused counts it) */
    bool was_held_back;    /* its request's answer waited for memory (a timeout then is not an
                            * outage) */
    struct sf_source *s;
} lane_t;

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

    sf_idset seen;        /* delivered or in flight */
    size_t seen_prune_at; /* seen.n at which a cut window's passed ids are dropped */

    /* the window in progress: lanes[0] alone, or (cut) one slice per lane of 'plan' */
    bool in_window;
    bool cut;      /* the window is cut into nlanes slices */
    window_t plan; /* the window (from, to) pages report while cut */
    size_t nlanes; /* lanes of the window */
    lane_t lanes[MAX_LANES];
    bool have_prev; /* a window ended before (prev_to is its end) */
    int64_t prev_to;
    int64_t next_window_ms;   /* follow mode, caught up: the next window starts then */
    bool fetch_pending_space; /* waiting for pipeline space */
    bool windows_exhausted;   /* ONCE/RANGE: no more windows to fetch */
    int64_t target_ns;        /* ONCE: catch up to this */
    int64_t last_window_start_ms;

    /* how many requests may be in flight: max_concurrency, halved on 429, grown back slowly;
     * paced under X-RateLimit-Limit (requests per minute) while more than one may be */
    unsigned conc, inflight, ok_streak;
    int64_t pause_until_ms; /* 429 without lanes of its own: nobody sends before */
    long rl_limit;          /* last X-RateLimit-Limit; 0 unknown */
    double rl_tokens;
    int64_t rl_at_ms;
    size_t rr;         /* next lane to look at first (round robin) */
    double density;    /* events per ns the last probe saw (sizes the next backlog window) */
    size_t page_bytes; /* what a page takes in memory: the largest recent body, decaying */
    size_t receiving;  /* answers' body bytes admitted and not yet handed on (lanes' granted) */
    unsigned paused;   /* answers paused until memory frees (pipeline.max_inflight_bytes) */

    uv_timer_t timer; /* the earliest of: a lane's backoff, the pause, pacing, the next poll */
    bool timer_active, stopped, finished;
    unsigned parsing;           /* pages being parsed on the thread pool */
    sf_slice resume[MAX_LANES]; /* the checkpoint's slices left of the window to resume */
    size_t nresume;
    bool freeing, timer_gone; /* sf_source_free called; its timer closed */
    int fail_status;

    sf_source_stats st;
};

static void pump(sf_source *s);
static bool lane_admit(void *ud, size_t bytes);
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
    if (!s->windows_exhausted || s->inflight)
        return;
    finish(s, s->fail_status); /* the application waits for the pages in flight */
}

/* --once / --from give up: nothing more is fetched (requests in flight are let finish). */
static void give_up(sf_source *s)
{
    s->fail_status = 1;
    s->windows_exhausted = true;
    for (size_t i = 0; i < s->nlanes; i++)
        s->lanes[i].active = false;
    s->in_window = false;
    check_finished(s);
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

static void window_init(window_t *w, int64_t from, int64_t to, int64_t floor)
{
    window_reset(w);
    w->from = from;
    w->to = to;
    w->floor = floor;
    w->low = SF_TIME_UNSET;
    w->first_page = true;
    w->fallback_low = SF_TIME_UNSET;
}

static void lanes_reset(sf_source *s)
{
    for (size_t i = 0; i < MAX_LANES; i++) {
        window_reset(&s->lanes[i].win);
        s->lanes[i].active = false;
        s->lanes[i].wait_until_ms = 0;
        s->lanes[i].failures = 0;
    }
    s->nlanes = 0;
    s->cut = false;
}

/* A new window, walked by lanes[0]. */
static void window_start(sf_source *s, int64_t from, int64_t to, int64_t floor)
{
    lanes_reset(s);
    window_init(&s->lanes[0].win, from, to, floor);
    s->lanes[0].active = true;
    s->nlanes = 1;
    window_init(&s->plan, from, to, floor);
    s->in_window = true;
    s->st.windows++;
    s->st.window_from_ns = from;
    s->st.window_to_ns = to;
    s->st.window_low_ns = SF_TIME_UNSET;
    sf_idset_prune(&s->seen, from);
    s->seen_prune_at = sf_idset_next_prune(&s->seen, SEEN_PRUNE_MIN, (size_t)s->sc->page_size);
    s->last_window_start_ms = sf_monotonic_ms();
    char a[40], b[40];
    sf_format_rfc3339(from, 3, a, sizeof a);
    sf_format_rfc3339(to, 3, b, sizeof b);
    SF_DEBUG("source", "window %s .. %s", a, b);
}

/* The window in progress was fully fetched: the next one starts from its end. */
static void window_end(sf_source *s, int64_t to)
{
    lanes_reset(s);
    s->in_window = false;
    s->have_prev = true;
    s->prev_to = to;
}

/* The most events a window may hold before it is shrunk: max_window_events, or, when windows
 * are cut into slices, enough for every slice to walk 16 pages. A restart does not need the
 * window's ids (the checkpoint lists what is left of each slice) nor does the seen set keep
 * them (it forgets what no lane reads again), but it must hold the ids of the overlap at both
 * ends of the window (the previous window's, which slice 0 reads last, and the window's own
 * last `overlap`) besides a page: where those are many at the density the probe saw (a dense
 * account), the window stays under half of dedup_max_ids, so that it and the previous overlap
 * fit in the set whatever is pruned. */
static int64_t window_events(const sf_source *s)
{
    int64_t n = s->sc->max_window_events;
    if (s->sc->max_concurrency > 1) {
        /* 16 pages per slice: each slice ends on a partial page, one request in 16 (at 8 pages
         * per slice, one in 8: under a rate limit that was the gap to 4x the sequential bound;
         * bench/, 100 ms, events API: +17 % at concurrency 16) */
        int64_t cut = 16 * s->sc->page_size * s->sc->max_concurrency;
        double overlap = s->density * (double)(s->sc->overlap_ms * SF_NS_PER_MS);
        int64_t half = s->sc->dedup_max_ids / 2;
        if (cut > half && 2.0 * overlap + (double)s->sc->page_size > (double)half)
            cut = half;
        if (cut > n)
            n = cut;
    }
    return n;
}

enum { NW_READY, NW_WAIT, NW_NONE };

/* Decides the next window after the last one was fully fetched (or at start). */
static int next_window(sf_source *s)
{
    int64_t overlap = s->sc->overlap_ms * SF_NS_PER_MS;
    int64_t now = now_ns();
    if (s->opts.mode == SF_MODE_RANGE) {
        int64_t from = s->have_prev ? s->prev_to : s->opts.range_from_ns;
        if (s->have_prev && s->prev_to >= s->opts.range_to_ns) {
            s->windows_exhausted = true;
            return NW_NONE;
        }
        int64_t to = s->opts.range_to_ns;
        if (to - from > MAX_WINDOW_NS)
            to = from + MAX_WINDOW_NS;
        window_start(s, from, to, from);
        return NW_READY;
    }
    int64_t prev_to;
    if (s->have_prev)
        prev_to = s->prev_to;
    else if (s->cp.watermark_ns != SF_TIME_UNSET)
        prev_to = s->cp.watermark_ns;
    else
        prev_to = SF_TIME_UNSET;
    if (s->opts.mode == SF_MODE_ONCE && prev_to != SF_TIME_UNSET && prev_to >= s->target_ns) {
        s->windows_exhausted = true;
        return NW_NONE;
    }
    int64_t from =
        prev_to == SF_TIME_UNSET ? now - s->sc->lookback_ms * SF_NS_PER_MS : prev_to - overlap;
    int64_t floor = prev_to == SF_TIME_UNSET ? from : prev_to;
    if (s->opts.mode == SF_MODE_FOLLOW && prev_to != SF_TIME_UNSET) {
        /* caught up? then wait for the poll interval to pass since the last window began */
        int64_t since = sf_monotonic_ms() - s->last_window_start_ms;
        int64_t lag_ms = (now - prev_to) / SF_NS_PER_MS;
        if (lag_ms < s->sc->poll_interval_ms && since < s->sc->poll_interval_ms) {
            s->st.window_from_ns = s->st.window_to_ns = 0;
            s->next_window_ms = sf_monotonic_ms() + s->sc->poll_interval_ms - since;
            return NW_WAIT;
        }
    }
    int64_t to = now;
    if (s->opts.mode == SF_MODE_ONCE && to > s->target_ns)
        to = s->target_ns;
    if (to - from > MAX_WINDOW_NS)
        to = from + MAX_WINDOW_NS;
    if (s->density > 0) {
        /* a backlog at the density the last probe saw: size the window to hold about 3/4 of
         * max_window_events at once instead of splitting it down probe by probe */
        double span = 0.75 * (double)window_events(s) / s->density;
        if (span < (double)(to - floor) && span >= (double)MIN_SPLIT_NS)
            to = floor + (int64_t)span;
    }
    if (to <= from)
        to = from + 1;
    window_start(s, from, to, floor);
    return NW_READY;
}

/* Lane L walks the slice [from, to] of the window in progress, from its newest end: slices
 * are not probed, halved or cut again. */
static void lane_slice(lane_t *L, int64_t from, int64_t to)
{
    window_init(&L->win, from, to, from);
    L->win.first_page = false;
    L->active = true;
    L->wait_until_ms = 0;
    L->failures = 0;
}

/* The slice lane L walks, with the oldest time it delivered there: what the checkpoint records
 * of it, and (sf_slice_left_to) the newest end of what is left of it. */
static sf_slice lane_range(const lane_t *L)
{
    return (sf_slice){L->win.from, L->win.to, L->win.low};
}

/* Whether lane L still has anything coming: pages to fetch, a request in flight, or a page
 * being parsed. */
static bool lane_live(const lane_t *L)
{
    return L->active || L->xfer || L->parsing;
}

/* Cuts the window lanes[0] probed into k slices by time, oldest first: slice 0 is [from, t1]
 * (with the overlap), slice i [t_i, t_i+1], the last ends at 'to'. The probe page (the newest
 * events of the window) is the last slice's first page: returns that lane. Every slice is
 * disjoint from the others but for its boundary instant (duplicates there are dropped by id). */
static lane_t *cut_window(sf_source *s, size_t k)
{
    window_t *w0 = &s->lanes[0].win;
    int64_t from = w0->from, floor = w0->floor, to = w0->to;
    int64_t span = (to - floor) / (int64_t)k;
    for (size_t i = 0; i < k; i++) {
        lane_t *L = &s->lanes[i];
        int64_t a = i == 0 ? from : floor + span * (int64_t)i;
        int64_t b = i + 1 == k ? to : floor + span * (int64_t)(i + 1);
        lane_slice(L, a, b);
    }
    s->nlanes = k;
    s->cut = true;
    return &s->lanes[k - 1];
}

/* A slice that ended early (little in it) leaves its lane idle while others still walk long
 * slices: the idle lane takes the older half of what the busiest lane has left ([from, low]):
 * that lane's window now starts at the middle (its pages clip there and end it), the idle
 * lane's ends there. Still disjoint but for the middle instant. Returns true if it stole. */
static bool steal(sf_source *s, lane_t *idle)
{
    lane_t *best = NULL;
    int64_t best_span = 0;
    for (size_t i = 0; i < s->nlanes; i++) {
        lane_t *L = &s->lanes[i];
        if (!L->active || L == idle)
            continue;
        sf_slice r = lane_range(L);
        int64_t top = sf_slice_left_to(&r);
        if (top - L->win.from > best_span) {
            best_span = top - L->win.from;
            best = L;
        }
    }
    if (!best || best_span < 2 * MIN_SLICE_NS ||
        s->density * (double)best_span < 2.0 * (double)s->sc->page_size)
        return false;
    int64_t mid = best->win.from + best_span / 2;
    lane_slice(idle, best->win.from, mid);
    best->win.from = mid;
    s->st.slices_stolen++;
    return true;
}

/* ---------------------------------------------------------------- pacing */

static int64_t now_ms(void)
{
    return sf_monotonic_ms();
}

/* Pacing under X-RateLimit-Limit while more than one request may be in flight: a token bucket
 * of 'conc' tokens refilled at (limit - conc) per minute, so no 60 s span sees more than the
 * limit. Returns 0 if a request may go now (and takes a token), else the ms to wait. */
static int64_t pace(sf_source *s)
{
    if (s->rl_limit <= 0 || s->conc <= 1)
        return 0;
    int64_t t = now_ms();
    double per_ms =
        (double)(s->rl_limit > (long)s->conc ? s->rl_limit - (long)s->conc : 1) / 60000.0;
    s->rl_tokens += (double)(t - s->rl_at_ms) * per_ms;
    s->rl_at_ms = t;
    if (s->rl_tokens > (double)s->conc)
        s->rl_tokens = (double)s->conc;
    if (s->rl_tokens >= 1.0) {
        s->rl_tokens -= 1.0;
        return 0;
    }
    return (int64_t)((1.0 - s->rl_tokens) / per_ms) + 1;
}

static void timer_cb(uv_timer_t *t)
{
    sf_source *s = t->data;
    s->timer_active = false;
    pump(s);
}

static void arm(sf_source *s, int64_t due_ms)
{
    int64_t d = due_ms - now_ms();
    if (d < 0)
        d = 0;
    s->timer_active = true;
    uv_timer_start(&s->timer, timer_cb, (uint64_t)d, 0);
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

/* A failure that is worth retrying: the lane backs off and tries the same request again. */
static void retry_later(sf_source *s, lane_t *L, int64_t hint_ms, const char *what)
{
    L->failures++;
    if (bounded(s) && L->failures >= BOUNDED_FAILURES) {
        SF_ERROR("source", "%s; giving up after %u attempts", what, L->failures);
        give_up(s);
        return;
    }
    int64_t delay =
        hint_ms > 0 ? hint_ms
                    : sf_backoff_ms(L->failures - 1, s->sc->retry_initial_ms, s->sc->retry_max_ms);
    SF_WARN("source", "%s; retry %u in %lldms", what, L->failures, (long long)delay);
    L->wait_until_ms = now_ms() + delay;
}

static void fatal_for_bounded(sf_source *s, lane_t *L, const char *what)
{
    if (bounded(s)) {
        SF_ERROR("source", "%s", what);
        give_up(s);
        return;
    }
    char d[32];
    sf_format_duration(s->sc->auth_retry_ms, d, sizeof d);
    SF_ERROR("source", "%s; still running, next attempt in %s", what, d);
    L->failures++;
    L->wait_until_ms = now_ms() + s->sc->auth_retry_ms;
}

/* Sends the lane's next request. */
static void send_lane(sf_source *s, lane_t *L)
{
    char *url = NULL;
    long limit = (long)s->sc->page_size;
    int rc = build_url(s->sc, api_path(s->sc), &L->win, limit, &url);
    if (rc) {
        retry_later(s, L, 1000, "cannot build the request URL");
        return;
    }
    sf_http_request r;
    const char *hdrs[2];
    char auth[SF_SOURCE_MAX_TOKEN + 64];
    fill_request(s->sc, &r, hdrs, auth, sizeof auth);
    r.url = url;
    r.admit = lane_admit;
    L->req_start_ms = now_ms();
    L->was_held_back = false;
    s->st.requests++;
    rc = sf_http_send(s->http, &r, on_page, L, &L->xfer);
    memset(auth, 0, sizeof auth);
    free(url);
    if (rc) {
        L->xfer = NULL;
        retry_later(s, L, 0, "cannot start the HTTP request");
        return;
    }
    s->inflight++;
}

/* pipeline.max_inflight_bytes bounds the bytes of pages held downstream plus the answers
 * being received or parsed (each counted, from its first byte, at its Content-Length or the
 * recent page size, whichever is larger). Requests waiting for their answer hold nothing: a
 * request is sent while one more page of the recent size fits and no answer waits for memory;
 * an answer that would go beyond the bound is paused before its first byte (TCP holds the
 * server back) until pages free memory, and is then kept whole. One answer may always be
 * received (a page larger than the bound still flows). */
static size_t bytes_held(const sf_source *s)
{
    return (s->out.held_bytes ? s->out.held_bytes(s->out.ud) : 0) + s->receiving;
}

static bool memory_allows(const sf_source *s)
{
    if (!s->inflight || !s->cfg->pipeline.max_inflight_bytes) /* 0: none (configs built in code) */
        return true;
    return !s->paused && bytes_held(s) + s->page_bytes <= s->cfg->pipeline.max_inflight_bytes;
}

/* What an answer is counted at: its Content-Length (0: unknown; compressed, it is less than
 * the body) or the size of recent pages, whichever is larger. */
static size_t answer_bytes(const sf_source *s, size_t content_length)
{
    return content_length > s->page_bytes ? content_length : s->page_bytes;
}

/* admit (net/http): may lane L's answer be kept? Asked once, before its first byte; called
 * from inside curl. */
static bool lane_admit(void *ud, size_t content_length)
{
    lane_t *L = ud;
    sf_source *s = L->s;
    size_t max = s->cfg->pipeline.max_inflight_bytes, held = bytes_held(s);
    size_t bytes = answer_bytes(s, content_length);
    if (max && held && held + bytes > max) {
        if (!L->held_back) {
            s->paused++;
            SF_DEBUG("source",
                     "answer paused: %zu bytes buffered + %zu > pipeline.max_inflight_bytes %zu",
                     held, bytes, max);
        }
        L->held_back = L->was_held_back = true;
        return false;
    }
    if (L->held_back) {
        L->held_back = false;
        s->paused--;
    }
    L->granted += bytes;
    s->receiving += bytes;
    return true;
}

/* The lane's answer was handed on (its page is the pipeline's now) or dropped. */
static void lane_release(sf_source *s, lane_t *L)
{
    s->receiving -= L->granted;
    L->granted = 0;
    if (L->held_back) {
        L->held_back = false;
        s->paused--;
    }
}

/* Memory freed: paused answers that fit now go on, oldest lane order from the round robin. */
static void resume_paused(sf_source *s)
{
    size_t max = s->cfg->pipeline.max_inflight_bytes;
    for (size_t n = 0; n < s->nlanes && s->paused; n++) {
        lane_t *L = &s->lanes[(s->rr + n) % s->nlanes];
        size_t cl;
        if (!L->xfer || !sf_http_paused(L->xfer, &cl))
            continue;
        size_t held = bytes_held(s), want = answer_bytes(s, cl);
        if (held && held + want > max)
            break; /* in order: a later, smaller one would starve this one */
        SF_DEBUG("source", "answer resumed: %zu bytes buffered + %zu fit", held, want);
        sf_http_resume(L->xfer); /* lane_admit is asked again, maybe from inside this call */
    }
}

/* Sends what may be sent now: the next window when none is in progress, then each lane's next
 * page while the concurrency, the rate limit and the pipeline allow; arms the timer for the
 * earliest thing that has to wait. */
static void pump(sf_source *s)
{
    if (s->stopped || s->finished)
        return;
    if (s->paused)
        resume_paused(s);
    int64_t t = now_ms(), due = INT64_MAX;
    if (!s->in_window && !s->inflight && !s->windows_exhausted) {
        if (s->next_window_ms > t) {
            due = s->next_window_ms;
        } else {
            s->next_window_ms = 0;
            int nw = next_window(s);
            if (nw == NW_WAIT)
                due = s->next_window_ms;
        }
    }
    if (s->pause_until_ms > t && s->in_window) {
        due = due < s->pause_until_ms ? due : s->pause_until_ms;
    } else if (s->in_window) {
        size_t first = s->rr; /* (s->rr moves as lanes send) */
        for (size_t n = 0; n < s->nlanes && s->inflight < s->conc; n++) {
            lane_t *L = &s->lanes[(first + n) % s->nlanes];
            if (L->xfer || L->parsing || (!L->active && !(s->cut && steal(s, L))))
                continue;
            if (L->wait_until_ms > t) {
                due = due < L->wait_until_ms ? due : L->wait_until_ms;
                continue;
            }
            if (!s->out.can_accept(s->out.ud) || !memory_allows(s)) {
                /* sf_source_on_space, or a request that ends, pumps again */
                s->fetch_pending_space = true;
                break;
            }
            int64_t w = pace(s);
            if (w > 0) {
                due = due < t + w ? due : t + w;
                break;
            }
            L->wait_until_ms = 0;
            send_lane(s, L);
            s->rr = (size_t)(L - s->lanes) + 1;
            if (s->stopped || s->finished)
                return;
        }
    }
    if (s->timer_active) {
        uv_timer_stop(&s->timer);
        s->timer_active = false;
    }
    if (due != INT64_MAX)
        arm(s, due);
    check_finished(s);
}

void sf_source_on_space(sf_source *s)
{
    if (s->paused)
        resume_paused(s);
    if (s->fetch_pending_space) {
        s->fetch_pending_space = false;
        pump(s);
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

static void record_latency(sf_source *s, const lane_t *L)
{
    double secs = (double)(now_ms() - L->req_start_ms) / 1000.0;
    s->st.poll_latency_sum += secs;
    for (size_t i = 0; i < SF_ARRAY_LEN(sf_source_latency_bounds); i++)
        if (secs <= sf_source_latency_bounds[i])
            s->st.poll_latency_buckets[i]++;
}

/* The probe page of a window (its first, by time): too big a window is shrunk before anything
 * of it is delivered; a backlog of more than two pages is cut into slices fetched concurrently.
 * Returns the lane that takes the page, or NULL when the window is fetched again. */
static lane_t *probe(sf_source *s, lane_t *L, const sf_page *pg)
{
    window_t *w = &L->win;
    long page = (long)s->sc->page_size;
    if (s->cut || !w->first_page || w->cursor)
        return L;
    w->first_page = false;
    if (pg->total > 0 && w->to > w->floor)
        s->density = (double)pg->total / (double)(w->to - w->floor);
    if (!w->no_halve && pg->total > window_events(s) && w->to - w->floor > 2 * MIN_SPLIT_NS) {
        /* shrink it to hold about 3/4 of max_window_events at the density just seen (events
         * are rarely uniform: the next probe checks) */
        double want =
            (double)(w->to - w->floor) * 0.75 * (double)window_events(s) / (double)pg->total;
        int64_t nto = w->floor + (want < (double)MIN_SPLIT_NS ? MIN_SPLIT_NS : (int64_t)want);
        s->st.window_splits++;
        SF_INFO("source", "window holds ~%lld events (> %lld): splitting", (long long)pg->total,
                (long long)window_events(s));
        w->to = nto;
        w->first_page = true;
        s->plan.to = nto;
        s->st.window_to_ns = nto;
        return NULL; /* same from, smaller to: fetch again */
    }
    long long pages = (pg->total + page - 1) / page;
    size_t k = (size_t)s->sc->max_concurrency;
    if (k <= 1 || pages <= 2 || (size_t)pg->n < (size_t)page)
        return L;
    if ((long long)k > pages - 1)
        k = (size_t)(pages - 1);
    while (k > 1 && (w->to - w->floor) / (int64_t)k < MIN_SLICE_NS)
        k--;
    if (k <= 1)
        return L;
    SF_INFO("source",
            "catching up: the window holds ~%lld events; fetching it in %zu concurrent slices",
            (long long)pg->total, k);
    s->st.window_cuts++;
    return cut_window(s, k);
}

/* Whether every lane but L fetched its window (slice) to the end: then L's last page ends
 * the window in progress. */
static bool others_done(const sf_source *s, const lane_t *L)
{
    for (size_t i = 0; i < s->nlanes; i++)
        if (&s->lanes[i] != L && lane_live(&s->lanes[i]))
            return false;
    return true;
}

/* What committing a page of a window cut into slices tells the checkpoint: the slices not
 * fetched to their end once it is (L, whose page it is, ends its slice with it when 'ended'),
 * each with the oldest time delivered in it. Pages commit in the order they are emitted, so
 * this is exactly what is delivered when the page commits; a restart re-reads only what is
 * left of each slice (core/checkpoint.h). */
static int slices_left(const sf_source *s, const lane_t *L, bool ended, sf_progress *t)
{
    t->cut = true;
    if (!(t->slices = calloc(s->nlanes ? s->nlanes : 1, sizeof *t->slices)))
        return -ENOMEM;
    for (size_t i = 0; i < s->nlanes; i++) {
        const lane_t *M = &s->lanes[i];
        if (M == L ? ended : !lane_live(M))
            continue;
        t->slices[t->nslices++] = lane_range(M);
    }
    return 0;
}

/* A page handle_page could not hand on: its events were marked seen and the lane's low moved
 * below them; undone, or the same request asked again would drop them as duplicates and a
 * checkpoint would say they were delivered. */
static void page_not_taken(sf_source *s, lane_t *L, sf_event *keep, size_t nk, sf_progress *t,
                           int64_t low_before, const char *why)
{
    for (size_t i = 0; i < nk; i++) {
        sf_idset_remove(&s->seen, keep[i].id);
        sf_event_free(&keep[i]);
    }
    free(keep);
    sf_progress_free(t);
    L->win.low = low_before;
    retry_later(s, L, 1000, why);
}

/* Whether a lane of the window cut into slices may still be served the event at ts: a lane
 * reads again only [from, low] of its slice (cursor pages older than low, or by time down from
 * low: the ids at low are the only ones it delivered there); the next window reads
 * [to - overlap, ...]. */
static bool may_see_again(void *ud, int64_t ts)
{
    const sf_source *s = ud;
    if (ts == SF_TIME_UNSET || ts >= s->plan.to - s->sc->overlap_ms * SF_NS_PER_MS)
        return true;
    for (size_t i = 0; i < s->nlanes; i++) {
        const lane_t *L = &s->lanes[i];
        sf_slice r = lane_range(L);
        if (lane_live(L) && ts >= r.from_ns && ts <= sf_slice_left_to(&r))
            return true;
    }
    return false;
}

/* While a window is cut into slices, the seen set drops what no lane can be served again once
 * it has doubled since the last time: memory follows the slices' edges, not the window. */
static void forget_passed(sf_source *s)
{
    if (!s->in_window || !s->cut || s->seen.n < s->seen_prune_at)
        return;
    size_t before = s->seen.n;
    if (sf_idset_filter(&s->seen, may_see_again, s))
        SF_WARN("source", "out of memory forgetting ids (duplicates possible)");
    SF_DEBUG("source", "forgot %zu ids no slice reads again, %zu kept", before - s->seen.n,
             s->seen.n);
    s->seen_prune_at = sf_idset_next_prune(&s->seen, SEEN_PRUNE_MIN, (size_t)s->sc->page_size);
}

/* The window's next request asks for what is left of it by time, [from, low], instead of
 * following a cursor. */
static void reread_rest_by_time(window_t *w)
{
    free(w->cursor);
    w->cursor = NULL;
    w->first_page = false;       /* no split of a partly delivered window */
    if (w->low != SF_TIME_UNSET) /* (nothing delivered yet: all of it) */
        w->to = w->low;          /* ids at exactly 'low' are in the seen set */
    w->nring = 0;
}

/* Processes a good page of lane L: clip, dedup, submit; decides the end of its window. */
static void handle_page(sf_source *s, lane_t *L, sf_page *pg)
{
    lane_t *P = probe(s, L, pg);
    if (!P)
        return;
    L = P;
    window_t *w = &L->win;
    const char *older = s->sc->api == SF_API_EVENTS ? pg->next : pg->prev;
    long limit = (long)s->sc->page_size;

    sf_event *keep = calloc(pg->n ? pg->n : 1, sizeof *keep);
    sf_progress *t = calloc(1, sizeof *t);
    if (t)
        t->ids = calloc(pg->n ? pg->n : 1, sizeof *t->ids);
    if (!keep || !t || !t->ids) {
        free(keep);
        sf_progress_free(t);
        retry_later(s, L, 1000, "out of memory processing a page");
        return;
    }
    bool older_than_window = false;
    size_t nk = 0;
    int64_t low_before = w->low;
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
    /* a slice's last page is mostly older than the slice, a re-read mostly duplicates: what is
     * kept gets its own bytes, or it would hold the whole body while the pipeline counts only
     * its own (pipeline.max_inflight_bytes; bench/: a third legacy body at concurrency 16) */
    (void)sf_events_compact(keep, nk);
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
    /* what committing this page tells the checkpoint: while the window is cut, only the
     * window (resumed by time after a restart: the ids delivered are in the checkpoint), and
     * its end once every slice was fetched; else the next page's cursor too */
    bool window_done = end && others_done(s, L);
    t->window_end = window_done;
    t->nevents = nk;
    if (s->cut) {
        t->win_from = s->plan.from;
        t->win_to = s->plan.to;
        t->low_ns = SF_TIME_UNSET;
        if (!window_done && slices_left(s, L, end && !refetch_by_time, t) != 0) {
            page_not_taken(s, L, keep, nk, t, low_before, "out of memory processing a page");
            return;
        }
    } else {
        s->st.window_low_ns = w->low;
        t->win_from = w->from;
        t->win_to = w->to;
        t->low_ns = w->low;
        if (!end && !(t->cursor_after = sf_strdup(older))) {
            page_not_taken(s, L, keep, nk, t, low_before, "out of memory processing a page");
            return;
        }
    }
    if (s->out.emit(s->out.ud, keep, nk, t) != 0) {
        page_not_taken(s, L, keep, nk, t, low_before, "out of memory submitting a page");
        return;
    }
    if (refetch_by_time) {
        reread_rest_by_time(w);
    } else if (end) {
        SF_DEBUG("source", "window%s ends: %s", s->cut ? " slice" : "", why);
        L->active = false;
        if (window_done)
            window_end(s, s->cut ? s->plan.to : w->to);
    } else {
        free(w->cursor);
        w->cursor = sf_strdup(older);
        if (!w->cursor && s->cut) { /* what is left of the slice, by time, as on a refetch */
            reread_rest_by_time(w);
        } else if (!w->cursor) { /* resume from the window start; dedup keeps it exact */
            w->first_page = true;
        }
    }
    forget_passed(s);
}

static void set_last_error(sf_source *s, const char *what)
{
    size_t n = strlen(what);
    if (n >= sizeof s->st.last_error)
        n = sizeof s->st.last_error - 1;
    memcpy(s->st.last_error, what, n);
    s->st.last_error[n] = '\0';
}

/* A request succeeded: concurrency that was cut by a 429 grows back slowly. */
static void request_ok(sf_source *s)
{
    unsigned max = (unsigned)s->sc->max_concurrency;
    if (s->conc < max && ++s->ok_streak >= 4 * s->conc) {
        s->conc++;
        s->ok_streak = 0;
        SF_DEBUG("source", "concurrency back up to %u", s->conc);
    }
}

/* 429: fewer requests at once (halved), and none until the server's Retry-After. */
static void rate_limited(sf_source *s, lane_t *L, int64_t hint_ms, const char *what)
{
    unsigned before = s->conc;
    s->conc = s->conc > 1 ? s->conc / 2 : 1;
    s->ok_streak = 0;
    if (s->conc < before)
        SF_WARN("source", "rate limited: concurrency %u -> %u", before, s->conc);
    if (hint_ms > 0) {
        L->failures = 0; /* the server told us when: not a failure streak */
        int64_t until = now_ms() + hint_ms;
        if (until > s->pause_until_ms)
            s->pause_until_ms = until;
    }
    retry_later(s, L, hint_ms, what);
}

/* ---------------------------------------------------------------- parsing a page */

/* A page is parsed (validated, events found) on the thread pool: the loop goes on serving the
 * other lanes' transfers meanwhile, and two pages parse at once on two cores. The lane counts
 * as in flight until its page is handled on the loop (parse_done). */
typedef struct parse_job {
    uv_work_t req;
    lane_t *L;
    char *body;
    size_t len;
    sf_parse_limits lim;
    sf_page pg;
    int rc;
    char err[256];
} parse_job;

static void parse_work(uv_work_t *req)
{
    parse_job *j = req->data;
    /* the page takes the body over: events point into it rather than copy it */
    j->rc = sf_page_parse_owned(j->body, j->len, &j->lim, &j->pg, j->err, sizeof j->err);
    j->body = NULL;
}

static void maybe_free(sf_source *s)
{
    if (s->freeing && s->timer_gone && !s->parsing)
        free(s);
}

/* Back on the loop: the page parsed (or not). */
static void page_parsed(sf_source *s, lane_t *L, sf_page *pg, int rc, const char *err)
{
    char what[800];
    if (rc) {
        s->st.errors_malformed++;
        snprintf(what, sizeof what, "API returned an unusable page (%s)", err);
        set_last_error(s, what);
        retry_later(s, L, 0, what);
        pump(s);
        return;
    }
    L->failures = 0;
    request_ok(s);
    s->st.last_success_ms = now_ms();
    s->st.last_error[0] = '\0';
    if (L->active)
        handle_page(s, L, pg);
    sf_page_free(pg);
    pump(s);
}

static void parse_done(uv_work_t *req, int status)
{
    parse_job *j = req->data;
    lane_t *L = j->L;
    sf_source *s = L->s;
    free(j->body);      /* not parsed (cancelled) */
    lane_release(s, L); /* its page is the pipeline's now (or dropped) */
    L->parsing = false;
    s->parsing--;
    s->inflight--;
    if (status != 0 || s->freeing || s->stopped) {
        sf_page_free(&j->pg);
        free(j);
        if (s->freeing)
            maybe_free(s);
        else
            check_finished(s);
        return;
    }
    page_parsed(s, L, &j->pg, j->rc, j->err);
    free(j);
}

static void parse_later(sf_source *s, lane_t *L, sf_buf *body)
{
    /* the trees are built when a sink's format needs one (sf_event_load), not for raw;
     * kept from this parse when a filter will read them anyway */
    sf_parse_limits lim = {
        .max_event_size = 8u << 20, .max_events = 100000, .drop_trees = !s->opts.keep_trees};
    parse_job *j = calloc(1, sizeof *j);
    if (j) {
        j->L = L;
        j->len = body->len;
        j->body = sf_buf_steal(body);
        j->lim = lim;
        j->req.data = j;
        if (j->body && uv_queue_work(s->loop, &j->req, parse_work, parse_done) == 0) {
            L->parsing = true;
            s->parsing++;
            s->inflight++; /* until parse_done */
            return;
        }
    }
    /* no memory for the job, or the pool refused: here and now */
    sf_page pg;
    char err[256];
    size_t len = j ? j->len : body->len;
    char *data = j ? j->body : sf_buf_steal(body);
    free(j);
    int rc = sf_page_parse_owned(data, len, &lim, &pg, err, sizeof err);
    lane_release(s, L);
    page_parsed(s, L, &pg, rc, err);
}

static void on_page(sf_http_response *resp, void *ud)
{
    lane_t *L = ud;
    sf_source *s = L->s;
    L->xfer = NULL;
    s->inflight--;
    bool waited = L->was_held_back;
    if (resp->error || resp->status != 200 || s->stopped)
        lane_release(s, L); /* else its body is parsed first (parse_done releases it) */
    if (resp->error == SF_HTTP_ECANCELED || s->stopped) {
        check_finished(s);
        return;
    }
    record_latency(s, L);
    s->st.last_status = resp->status;
    if (resp->ratelimit_limit > 0)
        s->rl_limit = resp->ratelimit_limit;
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
        fatal_for_bounded(s, L, what);
        pump(s);
        return;
    }
    if ((resp->error == SF_HTTP_ETIMEOUT && waited) || resp->error == SF_HTTP_EDROPPED) {
        /* paused for memory (sinks slower than the API) until the request timed out, or until
         * libcurl ended it and dropped the answer (net/http.h): not an outage, no failure; the
         * lane asks again once a page fits */
        SF_DEBUG("source", "an answer that waited for memory was lost (%s); asking again",
                 sf_http_strerror(resp->error));
        pump(s);
        return;
    }
    if (resp->error) {
        s->st.errors_transport++;
        snprintf(what, sizeof what, "API request failed: %s (%s)", sf_http_strerror(resp->error),
                 resp->errmsg);
        set_last_error(s, what);
        retry_later(s, L, 0, what);
        pump(s);
        return;
    }
    long st = resp->status;
    if (st == 200) {
        size_t decayed = s->page_bytes - s->page_bytes / 8;
        s->page_bytes = resp->body.len > decayed ? resp->body.len : decayed;
        parse_later(s, L, &resp->body);
        return;
    }
    char msg[256];
    error_message(&resp->body, msg, sizeof msg);
    if (st == 429) {
        s->st.status_429++;
        snprintf(what, sizeof what, "API rate limit reached (HTTP 429%s%s)", msg[0] ? ": " : "",
                 msg);
        set_last_error(s, what);
        rate_limited(s, L, resp->retry_after_ms > 0 ? resp->retry_after_ms : 0, what);
        pump(s);
        return;
    }
    if (st >= 500) {
        s->st.status_5xx++;
        snprintf(what, sizeof what, "API server error (HTTP %ld%s%s)", st, msg[0] ? ": " : "", msg);
        set_last_error(s, what);
        retry_later(s, L, resp->retry_after_ms, what);
        pump(s);
        return;
    }
    s->st.status_4xx++;
    window_t *w = &L->win;
    if (st == 401 || st == 403) {
        s->st.status_401_403++;
        snprintf(what, sizeof what,
                 "API refused the token (HTTP %ld%s%s): check source.token / source.token_file "
                 "and that the token has the policy-events.read permission",
                 st, msg[0] ? ": " : "", msg);
        set_last_error(s, what);
        fatal_for_bounded(s, L, what);
    } else if (st == 400 && w->cursor) {
        /* the cursor is no longer accepted: re-read what is left of the window by time */
        SF_WARN("source",
                "API rejected the page cursor (HTTP 400%s%s); re-reading the rest of "
                "the window by time",
                msg[0] ? ": " : "", msg);
        free(w->cursor);
        w->cursor = NULL;
        w->first_page = false; /* no split on a resumed window */
        if (w->low != SF_TIME_UNSET && w->low < w->to)
            w->to = w->low; /* ids at exactly 'low' are in the seen set */
        L->failures++;
        L->wait_until_ms =
            now_ms() + sf_backoff_ms(L->failures - 1, s->sc->retry_initial_ms, s->sc->retry_max_ms);
    } else {
        snprintf(what, sizeof what, "API rejected the request (HTTP %ld%s%s)%s", st,
                 msg[0] ? ": " : "", msg,
                 st == 400 ? ": check source.filter, source.zones and the clock" : "");
        set_last_error(s, what);
        fatal_for_bounded(s, L, what);
    }
    pump(s);
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
    s->cp.sinks = NULL; /* the committer's */
    s->cp.nsinks = 0;
    s->cp.slices = NULL; /* copied to resume */
    for (size_t i = 0; i < start->nslices && i < MAX_LANES; i++)
        s->resume[s->nresume++] = start->slices[i];
    if (start->cursor && !(s->cp.cursor = sf_strdup(start->cursor))) {
        free(s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < MAX_LANES; i++)
        s->lanes[i].s = s;
    s->conc = cfg->source.max_concurrency > 0 ? (unsigned)cfg->source.max_concurrency : 1;
    s->rl_tokens = (double)s->conc;
    s->rl_at_ms = now_ms();
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
    if (s->opts.mode != SF_MODE_RANGE && s->cp.in_window && s->cp.cut && s->nresume) {
        /* a window that was being fetched in slices: what is left of each slice, by time (the
         * ids delivered at their lower ends are in the seen set) */
        window_start(s, s->cp.win_from_ns, s->cp.win_to_ns, s->cp.win_from_ns);
        for (size_t i = 0; i < s->nresume; i++)
            lane_slice(&s->lanes[i], s->resume[i].from_ns, sf_slice_left_to(&s->resume[i]));
        s->nlanes = s->nresume;
        s->cut = true;
        char a[40];
        sf_format_rfc3339(s->cp.win_to_ns, 3, a, sizeof a);
        SF_INFO("source", "resuming the window ending %s: what is left of its %zu slices", a,
                s->nresume);
    } else if (s->opts.mode != SF_MODE_RANGE && s->cp.in_window) {
        /* resume the window in progress where the last commit left it: from its saved cursor,
         * or (a window cut into slices by a version that did not record them) by time, the
         * delivered ids dropped */
        window_start(s, s->cp.win_from_ns, s->cp.win_to_ns, s->cp.win_from_ns);
        window_t *w = &s->lanes[0].win;
        w->low = s->cp.win_low_ns;
        w->no_halve = true;
        w->first_page = !s->cp.cursor;
        if (s->cp.cursor && !(w->cursor = sf_strdup(s->cp.cursor)))
            return -ENOMEM;
        char a[40];
        sf_format_rfc3339(s->cp.win_to_ns, 3, a, sizeof a);
        SF_INFO("source", "resuming the window ending %s %s", a,
                s->cp.cursor ? "from its saved cursor" : "by time (delivered ids are skipped)");
    }
    pump(s);
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
    for (size_t i = 0; i < MAX_LANES; i++)
        if (s->lanes[i].xfer)
            sf_http_cancel(s->lanes[i].xfer);
}

void sf_source_stats_get(const sf_source *s, sf_source_stats *st)
{
    *st = s->st;
    st->concurrency = s->conc;
    st->inflight = s->inflight;
    st->lanes = s->cut ? s->nlanes : s->in_window ? 1 : 0;
    if (s->cut) {
        /* each slice is paged newest first ([low, to] done): report the window as if that
         * much of it were done from its end (catch-up progress) */
        int64_t covered = 0;
        for (size_t i = 0; i < s->nlanes; i++) {
            const window_t *w = &s->lanes[i].win;
            if (!s->lanes[i].active)
                covered += w->to - w->from;
            else if (w->low != SF_TIME_UNSET && w->low < w->to)
                covered += w->to - w->low;
        }
        st->window_low_ns = covered > 0 ? s->plan.to - covered : SF_TIME_UNSET;
    }
}

static void timer_closed(uv_handle_t *h)
{
    sf_source *s = h->data;
    s->timer_gone = true;
    maybe_free(s); /* else the last parse_done frees it */
}

void sf_source_free(sf_source *s)
{
    if (!s)
        return;
    lanes_reset(s);
    window_reset(&s->plan);
    sf_idset_free(&s->seen);
    sf_defer_cancel(&s->done_node);
    sf_checkpoint_free(&s->cp);
    s->freeing = true;
    /* the timer handle lives inside s: free s from its close callback (or, while pages are
     * still being parsed, once the last one is back) */
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
