/* ops/server: the /metrics page, rendered from a real source and pipeline set up as app/main.c
 * does (not started: their counters are zero), through sf_server_render_metrics and through a
 * real HTTP request to the server's endpoint. Checks the exposition format (HELP and TYPE
 * before each family's samples, each family once and contiguous), label escaping (a sink name
 * with a quote, a backslash and a newline), the documented metric names, and that a bounded
 * buffer that overflows fails the render instead of yielding a partial page. Every test closes
 * its loop cleanly (uv_loop_close() == 0). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/checkpoint.h"
#include "core/defer.h"
#include "core/log.h"
#include "net/http.h"
#include "ops/server.h"
#include "pipeline/pipeline.h"
#include "source/source.h"
#include "testutil.h"

typedef struct fx {
    uv_loop_t loop;
    sf_defer defer;
    sf_config cfg;
    sf_http *http;
    sf_pipeline *pipe;
    sf_source *src;
    sf_server *srv;
    int closed;
    /* HTTP client */
    int got;
    long status;
    char content_type[128];
    sf_buf body;
} fx_t;

/* sink name: a quote, a backslash and a newline (YAML double-quoted escapes) */
#define WEIRD_YAML "\"we\\\"ird\\\\na\\nme\""
#define WEIRD_PROM "we\\\"ird\\\\na\\nme"

static void on_commit_unused(void *ud, void *token, bool ok)
{
    (void)ud;
    (void)token;
    (void)ok;
}

static int emit_unused(void *ud, sf_event *events, size_t n, sf_progress *p)
{
    (void)ud;
    (void)events;
    (void)n;
    (void)p;
    return -ENOMEM;
}

static bool can_accept_unused(void *ud)
{
    (void)ud;
    return false;
}

static void closed_cb(void *arg)
{
    ((fx_t *)arg)->closed++;
}

/* listen: "127.0.0.1:0" (a free port; the config accepts 1..65535 only, so it is set after the
 * load) or "" (endpoint off) */
static void fx_init(fx_t *f, const char *listen)
{
    memset(f, 0, sizeof *f);
    sf_log_set_level(SF_LOG_ERROR);
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    sf_defer_init(&f->loop, &f->defer);
    char text[1024];
    snprintf(text, sizeof text,
             "source:\n  url: http://127.0.0.1:9\n  token: tok-1234\n"
             "sinks:\n  - type: stdout\n    name: plain\n"
             "  - type: stdout\n    name: " WEIRD_YAML "\n");
    sf_cfg_errors e = {0};
    int rc = sf_config_load_text("t.yaml", text, strlen(text), &f->cfg, &e);
    for (size_t i = 0; i < e.n; i++)
        fprintf(stderr, "%s\n", e.msgs[i]);
    sf_cfg_errors_free(&e);
    ck_assert_int_eq(rc, 0);
    free(f->cfg.server.listen);
    ck_assert_ptr_nonnull(f->cfg.server.listen = strdup(listen));
    ck_assert_ptr_nonnull(f->http = sf_http_new(&f->loop));
    ck_assert_int_eq(
        sf_pipeline_new(&f->loop, &f->defer, f->http, &f->cfg, on_commit_unused, f, &f->pipe), 0);
    sf_checkpoint cp;
    sf_checkpoint_init(&cp);
    sf_source_opts so = {.mode = SF_MODE_FOLLOW};
    sf_source_out out = {.ud = f, .emit = emit_unused, .can_accept = can_accept_unused};
    ck_assert_int_eq(sf_source_new(&f->loop, &f->defer, f->http, &f->cfg, &cp, &so, &out, &f->src),
                     0);
    sf_checkpoint_free(&cp);
    sf_server_opts o = {.mode = "follow", .checkpoint_used = true};
    ck_assert_int_eq(sf_server_start(&f->loop, &f->cfg, f->src, f->pipe, NULL, &o, &f->srv), 0);
}

static void fx_close(fx_t *f)
{
    sf_server_close(f->srv, closed_cb, f);
    sf_test_run_until(&f->loop, &f->closed, 1);
    sf_source_stop(f->src);
    sf_source_free(f->src);
    sf_pipeline_close(f->pipe, closed_cb, f);
    sf_test_run_until(&f->loop, &f->closed, 2);
    sf_pipeline_free(f->pipe);
    sf_http_close(f->http, closed_cb, f);
    sf_test_run_until(&f->loop, &f->closed, 3);
    sf_defer_close(&f->defer);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    sf_config_free(&f->cfg);
    sf_buf_free(&f->body);
}

/* The family a sample line belongs to (the histogram's _bucket/_sum/_count folded). */
static void sample_family(const char *line, char *out, size_t n)
{
    static const char hist[] = "sysdig_forwarder_poll_duration_seconds";
    size_t k = strcspn(line, "{ ");
    if (k > sizeof hist && strncmp(line, hist, sizeof hist - 1) == 0 &&
        line[sizeof hist - 1] == '_')
        k = sizeof hist - 1;
    snprintf(out, n, "%.*s", (int)k, line);
}

/* Every family: "# HELP name" then "# TYPE name" then its samples, contiguous; each family
 * once; no blank or unknown lines; the page ends with a newline. Returns the family count. */
static int check_exposition(const char *page)
{
    size_t len = strlen(page);
    ck_assert_msg(len > 0 && page[len - 1] == '\n', "page does not end with a newline");
    char seen[128][96];
    int nseen = 0;
    char cur[96] = "";
    bool typed = false;
    char *copy = strdup(page), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[96];
        if (strncmp(line, "# HELP ", 7) == 0) {
            sscanf(line + 7, "%95s", name);
            for (int i = 0; i < nseen; i++)
                ck_assert_msg(strcmp(seen[i], name) != 0, "family %s appears twice", name);
            ck_assert_int_lt(nseen, 128);
            snprintf(seen[nseen++], sizeof seen[0], "%s", name);
            snprintf(cur, sizeof cur, "%s", name);
            typed = false;
            ck_assert_msg(strlen(line) > 8 + strlen(name), "empty HELP for %s", name);
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            char type[32];
            ck_assert_int_eq(sscanf(line + 7, "%95s %31s", name, type), 2);
            ck_assert_msg(strcmp(name, cur) == 0, "TYPE %s not right after its HELP", name);
            ck_assert_msg(!typed, "two TYPE lines for %s", name);
            ck_assert_msg(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                              !strcmp(type, "histogram"),
                          "type %s", type);
            typed = true;
        } else {
            ck_assert_msg(line[0] != '#' && line[0] != '\0', "unexpected line: %s", line);
            sample_family(line, name, sizeof name);
            ck_assert_msg(typed && strcmp(name, cur) == 0,
                          "sample %s outside its family (current: %s)", line, cur);
            ck_assert_msg(strchr(line, ' '), "sample without a value: %s", line);
        }
    }
    free(copy);
    return nseen;
}

static const char *const documented[] = {
    "sysdig_forwarder_api_concurrency",
    "sysdig_forwarder_api_errors_total",
    "sysdig_forwarder_api_rate_limited_total",
    "sysdig_forwarder_api_requests_in_flight",
    "sysdig_forwarder_api_requests_total",
    "sysdig_forwarder_build_info",
    "sysdig_forwarder_catching_up",
    "sysdig_forwarder_checkpoint_write_errors_total",
    "sysdig_forwarder_checkpoint_writes_total",
    "sysdig_forwarder_cursor_lag_seconds",
    "sysdig_forwarder_dead_letter_bytes",
    "sysdig_forwarder_dead_letter_full",
    "sysdig_forwarder_encode_errors_total",
    "sysdig_forwarder_events_dead_lettered_total",
    "sysdig_forwarder_events_delivered_total",
    "sysdig_forwarder_events_duplicates_total",
    "sysdig_forwarder_events_polled_total",
    "sysdig_forwarder_events_retried_total",
    "sysdig_forwarder_events_spooled_total",
    "sysdig_forwarder_last_successful_poll_timestamp_seconds",
    "sysdig_forwarder_log_messages_total",
    "sysdig_forwarder_pages_fetched_total",
    "sysdig_forwarder_poll_duration_seconds",
    "sysdig_forwarder_queue_events",
    "sysdig_forwarder_ready",
    "sysdig_forwarder_sink_errors_total",
    "sysdig_forwarder_sink_events_filtered_total",
    "sysdig_forwarder_sink_events_skipped_total",
    "sysdig_forwarder_sink_info",
    "sysdig_forwarder_sink_kafka_queue_messages",
    "sysdig_forwarder_sink_topic_missing",
    "sysdig_forwarder_sink_unsettled_events",
    "sysdig_forwarder_sink_up",
    "sysdig_forwarder_source_slices",
    "sysdig_forwarder_spool_bytes",
    "sysdig_forwarder_spool_events",
    "sysdig_forwarder_windows_cut_total",
    "sysdig_forwarder_windows_total",
};

static void check_page(const char *page)
{
    check_exposition(page);
    /* the documented names (public interface) and their types */
    for (size_t i = 0; i < SF_ARRAY_LEN(documented); i++) {
        char help[160];
        snprintf(help, sizeof help, "# HELP %s ", documented[i]);
        ck_assert_msg(strstr(page, help), "metric %s missing", documented[i]);
    }
    ck_assert_ptr_nonnull(strstr(page, "# TYPE sysdig_forwarder_events_polled_total counter\n"
                                       "sysdig_forwarder_events_polled_total 0\n"));
    ck_assert_ptr_nonnull(
        strstr(page, "# TYPE sysdig_forwarder_poll_duration_seconds histogram\n"));
    ck_assert_ptr_nonnull(
        strstr(page, "sysdig_forwarder_poll_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
    /* labels: the plain sink and the escaped one */
    ck_assert_ptr_nonnull(
        strstr(page, "sysdig_forwarder_sink_info{sink=\"plain\",type=\"stdout\",format="));
    ck_assert_ptr_nonnull(
        strstr(page, "sysdig_forwarder_sink_info{sink=\"" WEIRD_PROM "\",type=\"stdout\",format="));
    ck_assert_ptr_nonnull(
        strstr(page, "sysdig_forwarder_events_delivered_total{sink=\"" WEIRD_PROM "\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(page, "sysdig_forwarder_api_errors_total{class=\"429\"} 0\n"));
}

START_TEST(test_render_format_names_escaping)
{
    fx_t f;
    fx_init(&f, "");
    sf_buf b = {0};
    ck_assert_int_eq(sf_server_render_metrics(f.srv, &b), 0);
    ck_assert_ptr_nonnull(b.data);
    check_page(b.data);
    sf_buf_free(&b);
    fx_close(&f);
}
END_TEST

/* A bounded buffer too small for the page fails the render (the handler then serves 500, never
 * a partial 200 page); one large enough succeeds. */
START_TEST(test_render_bounded_overflow_fails)
{
    fx_t f;
    fx_init(&f, "");
    sf_buf full = {0};
    ck_assert_int_eq(sf_server_render_metrics(f.srv, &full), 0);
    size_t len = full.len;
    sf_buf_free(&full);
    ck_assert_uint_gt(len, 256);
    size_t bounds[] = {1, 64, len / 2, len - 128};
    for (size_t i = 0; i < SF_ARRAY_LEN(bounds); i++) {
        sf_buf b;
        sf_buf_init_max(&b, bounds[i]);
        ck_assert_msg(sf_server_render_metrics(f.srv, &b) != 0, "render fit in %zu bytes",
                      bounds[i]);
        ck_assert_int_ne(sf_buf_error(&b), 0);
        sf_buf_free(&b);
    }
    sf_buf b;
    sf_buf_init_max(&b, len + 4096);
    ck_assert_int_eq(sf_server_render_metrics(f.srv, &b), 0);
    sf_buf_free(&b);
    fx_close(&f);
}
END_TEST

static void on_get(sf_http_response *r, void *ud)
{
    fx_t *f = ud;
    f->status = r->status;
    snprintf(f->content_type, sizeof f->content_type, "%s", r->content_type);
    sf_buf_append(&f->body, r->body.data ? r->body.data : "", r->body.len);
    f->got++;
}

/* GET /metrics through the server's endpoint: 200, the 0.0.4 content type, the same page. */
START_TEST(test_metrics_over_http)
{
    fx_t f;
    fx_init(&f, "127.0.0.1:0");
    int port = sf_server_port(f.srv);
    ck_assert_int_gt(port, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    sf_http_request r = {.method = "GET", .url = url, .timeout_ms = 2000};
    ck_assert_int_eq(sf_http_send(f.http, &r, on_get, &f, NULL), 0);
    sf_test_run_until(&f.loop, &f.got, 1);
    ck_assert_int_eq(f.status, 200);
    ck_assert_str_eq(f.content_type, "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_int_eq(sf_buf_putc(&f.body, '\0'), 0);
    check_page(f.body.data);
    fx_close(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_render_format_names_escaping);
    tcase_add_test(tc, test_render_bounded_overflow_fails);
    tcase_add_test(tc, test_metrics_over_http);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
