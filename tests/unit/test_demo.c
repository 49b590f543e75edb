/* demo tests: page through the simulated Secure Events API with the http client. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "source/demo.h"
#include "net/http.h"
#include "core/util.h"
#include "testutil.h"

static int int_reached(void *arg)
{
    return *(int *)arg > 0;
}

typedef struct env {
    uv_loop_t loop;
    sf_demo *demo;
    sf_http *http;
    int port;
} env;

static void env_setup(env *e, const sf_demo_opts *o)
{
    memset(e, 0, sizeof(*e));
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    ck_assert_int_eq(sf_demo_start(&e->loop, o, &e->demo), 0);
    e->port = sf_demo_port(e->demo);
    e->http = sf_http_new(&e->loop);
    ck_assert_ptr_nonnull(e->http);
}

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static int two_closed(void *arg)
{
    return *(int *)arg >= 2;
}

static void env_teardown(env *e)
{
    int closed = 0;
    sf_http_close(e->http, on_closed, &closed);
    sf_demo_close(e->demo, on_closed, &closed);
    sf_test_run_until_fn(&e->loop, two_closed, &closed);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&e->loop), 0);
}

typedef struct result {
    int done;
    long status;
    int error;
    char *body;
    long ratelimit;
} result;

static void on_resp(sf_http_response *r, void *ud)
{
    result *res = ud;
    res->done = 1;
    res->status = r->status;
    res->error = r->error;
    res->ratelimit = r->ratelimit_limit;
    res->body = sf_buf_steal(&r->body);
}

/* GET path?query; token NULL: no Authorization header. Returns the parsed JSON (or NULL). */
static cJSON *get(env *e, const char *pathq, const char *token, long *status)
{
    char url[1024], auth[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->port, pathq);
    const char *hdrs[2] = {"Accept: application/json", auth};
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    sf_http_request req = {
        .url = url, .headers = hdrs, .nheaders = token ? 2 : 1, .timeout_ms = 10000};
    result r = {0};
    ck_assert_int_eq(sf_http_send(e->http, &req, on_resp, &r, NULL), 0);
    sf_test_run_until_fn(&e->loop, int_reached, &r.done);
    ck_assert_int_eq(r.error, 0);
    ck_assert_int_eq(r.ratelimit, 1000);
    *status = r.status;
    cJSON *j = cJSON_Parse(r.body);
    free(r.body);
    return j;
}

static void window_query(char *out, size_t n, const char *path, int64_t from, int64_t to, int limit)
{
    snprintf(out, n, "%s?from=%" PRId64 "&to=%" PRId64 "&limit=%d", path, from, to, limit);
}

static int64_t event_ts(const cJSON *ev, int legacy)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "timestamp");
    int64_t ns = 0;
    if (legacy) {
        ck_assert(cJSON_IsString(t));
        ck_assert_uint_eq(strlen(t->valuestring), 30); /* 9 fraction digits */
        ck_assert_int_eq(sf_parse_rfc3339_ns(t->valuestring, strlen(t->valuestring), &ns), 0);
    } else {
        ck_assert(cJSON_IsNumber(t));
        ns = (int64_t)t->valuedouble; /* order check only */
    }
    return ns;
}

static void check_id(const cJSON *ev)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "id");
    ck_assert(cJSON_IsString(id));
    ck_assert_uint_eq(strlen(id->valuestring), 32);
    ck_assert_uint_eq(strspn(id->valuestring, "0123456789abcdef"), 32);
}

/* Pages a whole window; returns the number of events, checks newest-first and unique ids. */
static int page_all(env *e, int legacy, int limit, int *pages)
{
    const char *path = legacy ? "/api/v1/secureEvents" : "/secure/events/v1/events";
    char q[1024];
    int64_t now = sf_now_ns();
    window_query(q, sizeof(q), path, now - INT64_C(2) * 3600 * SF_NS_PER_SEC, now, limit);
    int total = 0;
    int64_t last_ts = INT64_MAX;
    char seen[200][33];
    char prev_cursor[600] = "";
    *pages = 0;
    for (;;) {
        long st;
        cJSON *j = get(e, q, "tok", &st);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(st, 200);
        (*pages)++;
        ck_assert_int_lt(*pages, 50);
        cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
        cJSON *page = cJSON_GetObjectItemCaseSensitive(j, "page");
        ck_assert(cJSON_IsArray(data));
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(page, "total")));
        int n = cJSON_GetArraySize(data);
        ck_assert_int_le(n, limit);
        cJSON *ev;
        cJSON_ArrayForEach(ev, data)
        {
            int64_t ts = event_ts(ev, legacy);
            if (legacy)
                ck_assert_int_lt(ts, last_ts); /* strictly newest first */
            else
                ck_assert_int_le(ts, last_ts);
            last_ts = ts;
            check_id(ev);
            const char *id = cJSON_GetObjectItemCaseSensitive(ev, "id")->valuestring;
            for (int k = 0; k < total; k++)
                ck_assert_str_ne(seen[k], id);
            ck_assert_int_lt(total, 200);
            snprintf(seen[total++], 33, "%s", id);
            ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(ev, legacy ? "x" : "agentId"));
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(page, legacy ? "prev" : "next");
        if (legacy) {
            ck_assert(cJSON_IsString(cur)); /* always present on legacy */
            int end = n < limit || strcmp(cur->valuestring, prev_cursor) == 0;
            snprintf(prev_cursor, sizeof(prev_cursor), "%s", cur->valuestring);
            if (end) {
                cJSON_Delete(j);
                break;
            }
        } else {
            ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(page, "prev"));
            if (!cur) {
                cJSON_Delete(j);
                break;
            }
            ck_assert_int_eq(n, limit); /* only the last page is short */
            ck_assert(cJSON_IsString(cur));
            snprintf(prev_cursor, sizeof(prev_cursor), "%s", cur->valuestring);
        }
        snprintf(q, sizeof(q), "%s?cursor=%s&limit=%d", path, prev_cursor, limit);
        cJSON_Delete(j);
    }
    return total;
}

START_TEST(test_paging_both_endpoints)
{
    sf_demo_opts o = {.backlog = 50};
    env e;
    env_setup(&e, &o);
    ck_assert_uint_eq(sf_demo_event_count(e.demo), 50);
    int pages;
    ck_assert_int_eq(page_all(&e, 1, 20, &pages), 50);
    ck_assert_int_eq(pages, 3); /* 20, 20, 10 (short: end) */
    ck_assert_int_eq(page_all(&e, 0, 20, &pages), 50);
    ck_assert_int_eq(pages, 3); /* 20, 20, 10 (no next) */
    ck_assert_int_eq(page_all(&e, 1, 999, &pages), 50);
    ck_assert_int_eq(page_all(&e, 0, 25, &pages), 50);
    ck_assert_int_eq(page_all(&e, 0, 10, &pages), 50);
    ck_assert_int_eq(pages, 5);
    env_teardown(&e);
}
END_TEST

START_TEST(test_window_and_total)
{
    sf_demo_opts o = {.backlog = 50};
    env e;
    env_setup(&e, &o);
    int64_t oldest = sf_demo_oldest_ns(e.demo), newest = sf_demo_newest_ns(e.demo);
    ck_assert_int_lt(oldest, newest);
    char q[512];
    long st;
    /* only the newest event */
    window_query(q, sizeof(q), "/secure/events/v1/events", newest, newest, 5);
    cJSON *j = get(&e, q, "tok", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "data")), 1);
    cJSON *page = cJSON_GetObjectItemCaseSensitive(j, "page");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(page, "total")->valueint, 1);
    /* older events exist: cursor pages go past 'from' */
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(page, "next"));
    cJSON_Delete(j);
    /* whole backlog: total counts the window, not the page */
    window_query(q, sizeof(q), "/api/v1/secureEvents", oldest, newest, 5);
    j = get(&e, q, "tok", &st);
    page = cJSON_GetObjectItemCaseSensitive(j, "page");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(page, "total")->valueint, 50);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "data")), 5);
    cJSON_Delete(j);
    /* empty window in the future */
    window_query(q, sizeof(q), "/secure/events/v1/events", newest + 1, newest + 1000, 5);
    j = get(&e, q, "tok", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "data")), 0);
    cJSON_Delete(j);
    env_teardown(&e);
}
END_TEST

static void expect_status(env *e, const char *pathq, const char *token, long want)
{
    long st;
    cJSON *j = get(e, pathq, token, &st);
    ck_assert_msg(st == want, "%s: got %ld, want %ld", pathq, st, want);
    ck_assert_ptr_nonnull(j); /* error bodies are JSON too */
    cJSON_Delete(j);
}

START_TEST(test_errors)
{
    sf_demo_opts o = {.backlog = 5};
    env e;
    env_setup(&e, &o);
    char q[512];
    int64_t now = sf_now_ns();
    const char *ev = "/secure/events/v1/events", *lg = "/api/v1/secureEvents";
    expect_status(&e, "/api/v1/secureEvents/status", "tok", 200);
    expect_status(&e, "/api/v1/secureEvents/status", NULL, 401);
    expect_status(&e, "/api/v1/secureEvents/status", "", 401);
    window_query(q, sizeof(q), ev, now - SF_NS_PER_SEC, now, 10);
    expect_status(&e, q, NULL, 401);
    expect_status(&e, q, "tok", 200);
    window_query(q, sizeof(q), ev, now - SF_NS_PER_SEC, now, 201);
    expect_status(&e, q, "tok", 400);
    window_query(q, sizeof(q), ev, now - SF_NS_PER_SEC, now, 0);
    expect_status(&e, q, "tok", 400);
    window_query(q, sizeof(q), ev, now - SF_NS_PER_SEC, now, 200);
    expect_status(&e, q, "tok", 200);
    window_query(q, sizeof(q), lg, now - SF_NS_PER_SEC, now, 999);
    expect_status(&e, q, "tok", 200);
    window_query(q, sizeof(q), lg, now - SF_NS_PER_SEC, now, 1000);
    expect_status(&e, q, "tok", 400);
    /* 14 days is fine, more is not */
    int64_t d14 = INT64_C(14) * 86400 * SF_NS_PER_SEC;
    window_query(q, sizeof(q), lg, now - d14, now, 10);
    expect_status(&e, q, "tok", 200);
    window_query(q, sizeof(q), lg, now - d14 - 1, now, 10);
    expect_status(&e, q, "tok", 400);
    window_query(q, sizeof(q), ev, now, now - 1, 10);
    expect_status(&e, q, "tok", 400);
    expect_status(&e, "/secure/events/v1/events?limit=10", "tok", 400); /* no window */
    expect_status(&e, "/api/v1/secureEvents?from=1&limit=10", "tok", 400);
    expect_status(&e, "/api/v1/secureEvents?from=x&to=1", "tok", 400);
    expect_status(&e, "/secure/events/v1/events?cursor=garbage!", "tok", 400);
    expect_status(&e, "/secure/events/v1/events?cursor=AAAA", "tok", 400);

    /* a real cursor with from/to is rejected; alone it works */
    long st;
    window_query(q, sizeof(q), ev, now - 3600 * SF_NS_PER_SEC, now + 1, 2);
    cJSON *j = get(&e, q, "tok", &st);
    const cJSON *next =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "page"), "next");
    ck_assert(cJSON_IsString(next));
    snprintf(q, sizeof(q), "%s?cursor=%s&from=1&to=2", ev, next->valuestring);
    expect_status(&e, q, "tok", 400);
    snprintf(q, sizeof(q), "%s?cursor=%s&limit=2", ev, next->valuestring);
    expect_status(&e, q, "tok", 200);
    cJSON_Delete(j);
    expect_status(&e, "/nope", "tok", 404);
    env_teardown(&e);
}
END_TEST

static sf_demo *live_demo;
static int live_grew(void *arg)
{
    return sf_demo_event_count(live_demo) > *(size_t *)arg;
}

START_TEST(test_live_events_and_bound)
{
    sf_demo_opts o = {.backlog = 50, .max_events = 10};
    env e;
    env_setup(&e, &o);
    ck_assert_uint_eq(sf_demo_event_count(e.demo), 10); /* oldest dropped */
    int64_t newest = sf_demo_newest_ns(e.demo);
    sf_demo_opts o2 = {.backlog = 3, .interval_ms = 20};
    env e2;
    env_setup(&e2, &o2);
    live_demo = e2.demo;
    size_t base = 3;
    sf_test_run_until_fn(&e2.loop, live_grew, &base);
    ck_assert_int_gt(sf_demo_newest_ns(e2.demo), sf_demo_oldest_ns(e2.demo));
    ck_assert_int_eq(sf_demo_add_events(e.demo, 25), 0);
    ck_assert_uint_eq(sf_demo_event_count(e.demo), 10);
    ck_assert_int_gt(sf_demo_newest_ns(e.demo), newest);
    int pages;
    ck_assert_int_eq(page_all(&e, 0, 4, &pages), 10);
    env_teardown(&e2);
    env_teardown(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("demo");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_paging_both_endpoints);
    tcase_add_test(tc, test_window_and_total);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_live_events_and_bound);
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
