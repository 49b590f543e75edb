/* source: the window/cursor logic against a scripted HTTP double (net/httpd) on the same loop.
 * Each test scripts the pages the API answers, records every query the source sends (from, to,
 * cursor, limit, loop time), and checks what the source emitted. Every test ends with the
 * source, the HTTP client, the double and the loop closed (uv_loop_close() == 0). */
#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/checkpoint.h"
#include "core/defer.h"
#include "core/log.h"
#include "net/http.h"
#include "net/httpd.h"
#include "source/source.h"
#include "testutil.h"

#define T0 INT64_C(1700000000000000000) /* range windows: [T0, T1] */
#define T1 (T0 + INT64_C(100) * SF_NS_PER_SEC)
#define SEC SF_NS_PER_SEC
#define MAXQ 16
#define MAXEV 32

typedef struct answer {
    int status;
    const char *body;
    const char *headers; /* extra "Name: value\r\n" lines or NULL */
} answer_t;

typedef struct query {
    bool has_from, has_to, has_cursor;
    long long from, to;
    long limit;
    char cursor[128];
    char path[128];
    uint64_t at_ms; /* uv_now() when the request arrived */
} query_t;

typedef struct fx {
    uv_loop_t loop;
    sf_defer defer;
    sf_http *http;
    sf_httpd *httpd;
    sf_config cfg;
    sf_source *src;
    /* the double */
    const answer_t *script;
    size_t nscript; /* requests beyond the script get the last answer again */
    query_t q[MAXQ];
    int nq, nreq;
    /* what the source emitted */
    char *ids[MAXEV];
    int nids, npages;
    int nshared; /* emitted events whose bytes lie in the page's body (not their own copy) */
    bool last_window_end;
    int done, done_status;
    int closed;
} fx_t;

static long long q_ll(const char *query, const char *name, bool *has)
{
    char v[64];
    *has = sf_httpd_query_param(query, name, v, sizeof v, NULL) == 0;
    return *has ? strtoll(v, NULL, 10) : 0;
}

static int double_handler(sf_httpd_req *req, sf_httpd_resp *resp, void *ud)
{
    fx_t *f = ud;
    const char *qs = sf_httpd_query(req);
    f->nreq++;
    if (f->nq < MAXQ) {
        query_t *q = &f->q[f->nq++];
        bool has;
        q->from = q_ll(qs, "from", &q->has_from);
        q->to = q_ll(qs, "to", &q->has_to);
        q->limit = (long)q_ll(qs, "limit", &has);
        q->has_cursor = sf_httpd_query_param(qs, "cursor", q->cursor, sizeof q->cursor, NULL) == 0;
        snprintf(q->path, sizeof q->path, "%s", sf_httpd_path(req));
        q->at_ms = uv_now(&f->loop);
    }
    size_t i = (size_t)f->nreq - 1;
    const answer_t *a = &f->script[i < f->nscript ? i : f->nscript - 1];
    resp->status = a->status;
    resp->content_type = "application/json";
    if (a->headers)
        sf_buf_puts(&resp->headers, a->headers);
    return sf_buf_puts(&resp->body, a->body ? a->body : "") ? -1 : 0;
}

static int out_emit(void *ud, sf_event *events, size_t n, sf_progress *p)
{
    fx_t *f = ud;
    for (size_t i = 0; i < n; i++) {
        if (f->nids < MAXEV)
            f->ids[f->nids++] = strdup(events[i].id);
        if (events[i].chunk)
            f->nshared++;
        sf_event_free(&events[i]);
    }
    free(events);
    f->npages++;
    f->last_window_end = p->window_end;
    sf_progress_free(p);
    return 0;
}

static bool out_can_accept(void *ud)
{
    (void)ud;
    return true;
}

static void out_done(void *ud, int status)
{
    fx_t *f = ud;
    f->done++;
    f->done_status = status;
}

static void closed_cb(void *arg)
{
    ((fx_t *)arg)->closed++;
}

static int done_reached(void *arg)
{
    return ((fx_t *)arg)->done > 0;
}

/* Loads the config (source.url pointing at the double) and starts the double. */
static void fx_init(fx_t *f, const char *api, int page_size, const answer_t *script, size_t n)
{
    memset(f, 0, sizeof *f);
    sf_log_set_level(SF_LOG_ERROR);
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    sf_defer_init(&f->loop, &f->defer);
    f->script = script;
    f->nscript = n;
    ck_assert_int_eq(sf_httpd_start(&f->loop, "127.0.0.1:0", double_handler, f, &f->httpd), 0);
    ck_assert_ptr_nonnull(f->http = sf_http_new(&f->loop));
    char text[1024];
    snprintf(text, sizeof text,
             "source:\n  url: http://127.0.0.1:%d\n  api: %s\n  token: tok-1234\n"
             "  page_size: %d\n  overlap: 60s\n  request_timeout: 2s\n  connect_timeout: 1s\n"
             "  max_concurrency: 1\n" /* the recipe of one cursor (cut windows: test_catchup) */
             "  retry:\n    initial: 20ms\n    max: 50ms\n"
             "sinks:\n  - type: stdout\n",
             sf_httpd_port(f->httpd), api, page_size);
    sf_cfg_errors e = {0};
    int rc = sf_config_load_text("t.yaml", text, strlen(text), &f->cfg, &e);
    for (size_t i = 0; i < e.n; i++)
        fprintf(stderr, "%s\n", e.msgs[i]);
    sf_cfg_errors_free(&e);
    ck_assert_int_eq(rc, 0);
}

/* Creates and starts the source on cp (NULL: a fresh checkpoint) and runs until it is done. */
static void fx_run(fx_t *f, const sf_checkpoint *cp, const sf_source_opts *opts)
{
    sf_checkpoint fresh;
    sf_checkpoint_init(&fresh);
    sf_source_out out = {.ud = f, .emit = out_emit, .can_accept = out_can_accept, .done = out_done};
    ck_assert_int_eq(
        sf_source_new(&f->loop, &f->defer, f->http, &f->cfg, cp ? cp : &fresh, opts, &out, &f->src),
        0);
    sf_checkpoint_free(&fresh);
    ck_assert_int_eq(sf_source_start(f->src), 0);
    sf_test_run_until_fn(&f->loop, done_reached, f);
}

static void fx_run_range(fx_t *f)
{
    sf_source_opts o = {.mode = SF_MODE_RANGE, .range_from_ns = T0, .range_to_ns = T1};
    fx_run(f, NULL, &o);
}

/* Closes everything and checks the loop closes cleanly. */
static void fx_close(fx_t *f)
{
    if (f->src) {
        sf_source_stop(f->src);
        sf_source_free(f->src);
    }
    sf_http_close(f->http, closed_cb, f);
    sf_httpd_close(f->httpd, closed_cb, f);
    sf_defer_close(&f->defer);
    sf_test_run_until(&f->loop, &f->closed, 2);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    sf_config_free(&f->cfg);
    for (int i = 0; i < f->nids; i++)
        free(f->ids[i]);
}

static bool is_legacy(int api)
{
    return api == 0;
}

static const char *api_name(int api)
{
    return is_legacy(api) ? "legacy" : "events";
}

/* A page body: events (id, ts) newest first, and the cursors (NULL: absent). */
static char *page(const char *prev, const char *next, long total, int n, ...)
{
    sf_buf b = {0};
    va_list ap;
    va_start(ap, n);
    sf_buf_puts(&b, "{\"data\":[");
    for (int i = 0; i < n; i++) {
        const char *id = va_arg(ap, const char *);
        int64_t ts = va_arg(ap, int64_t);
        sf_buf_appendf(&b, "%s{\"id\":\"%s\",\"timestamp\":%" PRId64 ",\"name\":\"p\"}",
                       i ? "," : "", id, ts);
    }
    va_end(ap);
    sf_buf_puts(&b, "],\"page\":{");
    bool comma = false;
    if (prev) {
        sf_buf_appendf(&b, "\"prev\":\"%s\"", prev);
        comma = true;
    }
    if (next)
        sf_buf_appendf(&b, "%s\"next\":\"%s\"", comma ? "," : "", next);
    sf_buf_appendf(&b, "%s\"total\":%ld}}", prev || next ? "," : "", total);
    ck_assert_int_eq(sf_buf_error(&b), 0);
    return sf_buf_steal(&b);
}

/* The older-events cursor of the flavour set to c; the other flavour's field set to a decoy
 * the source must not follow. */
static char *page_c(int api, const char *c, long total, int n, const char *id1, int64_t ts1,
                    const char *id2, int64_t ts2)
{
    const char *decoy = c ? "decoy" : NULL;
    const char *prev = is_legacy(api) ? c : decoy, *next = is_legacy(api) ? decoy : c;
    return page(prev, next, total, n, id1, ts1, id2, ts2);
}

static void assert_ids(const fx_t *f, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    ck_assert_int_eq(f->nids, n);
    for (int i = 0; i < n; i++)
        ck_assert_str_eq(f->ids[i], va_arg(ap, const char *));
    va_end(ap);
}

static void assert_window_query(const query_t *q, int64_t from, int64_t to, long limit)
{
    ck_assert(q->has_from && q->has_to);
    ck_assert(!q->has_cursor);
    ck_assert_int_eq(q->from, from);
    ck_assert_int_eq(q->to, to);
    ck_assert_int_eq(q->limit, limit);
}

static void assert_cursor_query(const query_t *q, const char *cursor, long limit)
{
    ck_assert_msg(!q->has_from && !q->has_to, "from/to sent with a cursor");
    ck_assert(q->has_cursor);
    ck_assert_str_eq(q->cursor, cursor);
    ck_assert_int_eq(q->limit, limit);
}

/* First request of a window by from/to, every next one by the flavour's older cursor only
 * (page.prev on legacy, page.next on events; the other field is never followed); an empty page
 * ends the window; the range then ends with status 0. */
START_TEST(test_paging_by_cursor)
{
    int api = _i;
    char *p1 = page_c(api, "c1", 5, 2, "e4", T0 + 40 * SEC, "e3", T0 + 30 * SEC);
    char *p2 = page_c(api, "c2", 5, 2, "e2", T0 + 20 * SEC, "e1", T0 + 10 * SEC);
    char *p3 = page_c(api, "c3", 5, 0, NULL, (int64_t)0, NULL, (int64_t)0);
    answer_t script[] = {{200, p1, NULL}, {200, p2, NULL}, {200, p3, NULL}};
    fx_t f;
    fx_init(&f, api_name(api), 2, script, 3);
    fx_run_range(&f);
    ck_assert_int_eq(f.done_status, 0);
    ck_assert_int_eq(f.nreq, 3);
    ck_assert_str_eq(f.q[0].path,
                     is_legacy(api) ? "/api/v1/secureEvents" : "/secure/events/v1/events");
    assert_window_query(&f.q[0], T0, T1, 2);
    assert_cursor_query(&f.q[1], "c1", 2);
    assert_cursor_query(&f.q[2], "c2", 2);
    assert_ids(&f, 4, "e4", "e3", "e2", "e1");
    ck_assert(f.last_window_end);
    ck_assert_int_eq(f.nshared, 4); /* whole pages: the events share their page's body */
    fx_close(&f);
    free(p1);
    free(p2);
    free(p3);
}
END_TEST

/* The flavour's own end-of-data signal ends the window after one request: events, a full page
 * without page.next; legacy, a page shorter than limit (page.prev still present, as the real
 * API sends it) or a full page without page.prev. */
START_TEST(test_end_of_window_signal)
{
    int api = _i;
    char *p1;
    if (is_legacy(api))
        p1 = page("c1", NULL, 1, 1, "e1", T0 + 10 * SEC);
    else
        p1 = page(NULL, NULL, 2, 2, "e2", T0 + 20 * SEC, "e1", T0 + 10 * SEC);
    answer_t script[] = {{200, p1, NULL}, {500, "{}", NULL}};
    fx_t f;
    fx_init(&f, api_name(api), 2, script, 2);
    fx_run_range(&f);
    ck_assert_int_eq(f.done_status, 0);
    ck_assert_int_eq(f.nreq, 1);
    ck_assert(f.last_window_end);
    if (is_legacy(api))
        assert_ids(&f, 1, "e1");
    else
        assert_ids(&f, 2, "e2", "e1");
    fx_close(&f);
    free(p1);

    /* legacy: a full page without page.prev ends it too */
    if (is_legacy(api)) {
        p1 = page(NULL, NULL, 2, 2, "e2", T0 + 20 * SEC, "e1", T0 + 10 * SEC);
        answer_t s2[] = {{200, p1, NULL}, {500, "{}", NULL}};
        fx_init(&f, "legacy", 2, s2, 2);
        fx_run_range(&f);
        ck_assert_int_eq(f.nreq, 1);
        assert_ids(&f, 2, "e2", "e1");
        fx_close(&f);
        free(p1);
    }
}
END_TEST

/* Events outside [from, to] are not emitted; one older than the window's start ends the window
 * even though the page is full and carries a cursor. */
START_TEST(test_clip_and_older_ends)
{
    int api = _i;
    const char *c = "c1";
    char *p1 = page(is_legacy(api) ? c : NULL, is_legacy(api) ? NULL : c, 50, 3, "newer",
                    T1 + 5 * SEC, "in", T0 + 50 * SEC, "older", T0 - 5 * SEC);
    answer_t script[] = {{200, p1, NULL}, {500, "{}", NULL}};
    fx_t f;
    fx_init(&f, api_name(api), 3, script, 2);
    fx_run_range(&f);
    ck_assert_int_eq(f.done_status, 0);
    ck_assert_int_eq(f.nreq, 1);
    assert_ids(&f, 1, "in");
    ck_assert(f.last_window_end);
    /* one event kept of three: it has its own bytes, the body is not held for it */
    ck_assert_int_eq(f.nshared, 0);
    sf_source_stats st;
    sf_source_stats_get(f.src, &st);
    ck_assert_uint_eq(st.clipped, 2);
    fx_close(&f);
    free(p1);
}
END_TEST

/* --once from a checkpoint: the window starts at watermark - overlap, and the ids the
 * checkpoint lists as delivered are not emitted again (dedup across the overlap). */
START_TEST(test_dedup_checkpoint_overlap)
{
    int api = _i;
    int64_t wm = sf_now_ns() - 5 * SEC;
    sf_checkpoint cp;
    sf_checkpoint_init(&cp);
    cp.watermark_ns = wm;
    sf_seen_id ids[2] = {{"old2", wm - 10 * SEC}, {"old1", wm - 20 * SEC}};
    cp.ids = ids;
    cp.nids = 2;
    /* newest first: one new event after the watermark, the two delivered ones, one new one in
     * the overlap that was never delivered (late arrival) */
    char *p1 = page(is_legacy(api) ? "c1" : NULL, NULL, 4, 4, "new2", wm + 1 * SEC, "old2",
                    wm - 10 * SEC, "late", wm - 15 * SEC, "old1", wm - 20 * SEC);
    answer_t script[] = {{200, p1, NULL}};
    fx_t f;
    fx_init(&f, api_name(api), 10, script, 1);
    sf_source_opts o = {.mode = SF_MODE_ONCE};
    fx_run(&f, &cp, &o);
    ck_assert_int_eq(f.done_status, 0);
    ck_assert_int_eq(f.nreq, 1);
    ck_assert(f.q[0].has_from && !f.q[0].has_cursor);
    ck_assert_int_eq(f.q[0].from, wm - 60 * SEC);
    ck_assert_int_ge(f.q[0].to, wm + 5 * SEC - SEC); /* about now */
    assert_ids(&f, 2, "new2", "late");
    sf_source_stats st;
    sf_source_stats_get(f.src, &st);
    ck_assert_uint_eq(st.duplicates, 2);
    fx_close(&f);
    free(p1);
}
END_TEST

/* A 429 with Retry-After waits for the hint: the next request (the same one) comes no sooner
 * than 1 s later in loop time. */
START_TEST(test_429_retry_after)
{
    char *p = page("c1", NULL, 1, 1, "e1", T0 + 10 * SEC);
    answer_t script[] = {{429, "{\"message\":\"slow down\"}", "Retry-After: 1\r\n"},
                         {200, p, NULL}};
    fx_t f;
    fx_init(&f, "legacy", 2, script, 2);
    fx_run_range(&f);
    ck_assert_int_eq(f.done_status, 0);
    ck_assert_int_eq(f.nreq, 2);
    ck_assert_uint_ge(f.q[1].at_ms - f.q[0].at_ms, 1000);
    assert_window_query(&f.q[1], T0, T1, 2);
    assert_ids(&f, 1, "e1");
    sf_source_stats st;
    sf_source_stats_get(f.src, &st);
    ck_assert_uint_eq(st.status_429, 1);
    fx_close(&f);
    free(p);
}
END_TEST

/* A 5xx is retried (with backoff) with the same request; the page then goes through. */
START_TEST(test_5xx_retried)
{
    int api = _i;
    char *p1 = page_c(api, "c1", 3, 2, "e3", T0 + 30 * SEC, "e2", T0 + 20 * SEC);
    char *p2 = page(NULL, NULL, 3, 1, "e1", T0 + 10 * SEC);
    answer_t script[] = {{503, "<html>busy</html>", NULL},
                         {200, p1, NULL},
                         {500, "{\"message\":\"oops\"}", NULL},
                         {200, p2, NULL}};
    fx_t f;
    fx_init(&f, api_name(api), 2, script, 4);
    fx_run_range(&f);
    ck_assert_int_eq(f.done_status, 0);
    ck_assert_int_eq(f.nreq, 4);
    assert_window_query(&f.q[0], T0, T1, 2);
    assert_window_query(&f.q[1], T0, T1, 2);
    assert_cursor_query(&f.q[2], "c1", 2);
    assert_cursor_query(&f.q[3], "c1", 2);
    assert_ids(&f, 3, "e3", "e2", "e1");
    sf_source_stats st;
    sf_source_stats_get(f.src, &st);
    ck_assert_uint_eq(st.status_5xx, 2);
    fx_close(&f);
    free(p1);
    free(p2);
}
END_TEST

/* A server that answers every request with the same full page and the same cursor does not
 * spin the source: it re-reads the rest of the window by time once, then ends the window;
 * nothing is emitted twice. */
START_TEST(test_repeated_cursor_no_spin)
{
    int api = _i;
    char *p = page_c(api, "same", 10, 2, "e2", T0 + 20 * SEC, "e1", T0 + 10 * SEC);
    answer_t script[] = {{200, p, NULL}};
    fx_t f;
    fx_init(&f, api_name(api), 2, script, 1);
    fx_run_range(&f);
    ck_assert_int_eq(f.done_status, 0);
    ck_assert_int_le(f.nreq, 6);
    assert_window_query(&f.q[0], T0, T1, 2);
    assert_cursor_query(&f.q[1], "same", 2);
    assert_ids(&f, 2, "e2", "e1");
    ck_assert(f.last_window_end);
    fx_close(&f);
    free(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("source");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_paging_by_cursor, 0, 2);
    tcase_add_loop_test(tc, test_end_of_window_signal, 0, 2);
    tcase_add_loop_test(tc, test_clip_and_older_ends, 0, 2);
    tcase_add_loop_test(tc, test_dedup_checkpoint_overlap, 0, 2);
    tcase_add_test(tc, test_429_retry_after);
    tcase_add_loop_test(tc, test_5xx_retried, 0, 2);
    tcase_add_loop_test(tc, test_repeated_cursor_no_spin, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
