/* httpd tests: raw TCP clients on the same loop (malformed input, pipelining, limits, deferral). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/httpd.h"
#include "testutil.h"

/* ---- raw client: connects, writes req, reads until EOF ---- */

typedef struct rawc {
    uv_tcp_t t;
    uv_connect_t c;
    uv_write_t w;
    const char *req;
    size_t req_len;
    sf_buf resp;
    int *eofs;
    int connected;
    int closed;
} rawc;

static void rc_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    rawc *r = h->data;
    sf_buf_reserve(&r->resp, 4096);
    *b = uv_buf_init(r->resp.data + r->resp.len, 4096);
}

static void rc_closed(uv_handle_t *h)
{
    rawc *r = h->data;
    r->closed = 1;
    (*r->eofs)++;
}

static void rc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    rawc *r = s->data;
    if (n > 0) {
        r->resp.len += (size_t)n;
        r->resp.data[r->resp.len] = '\0';
    } else if (n < 0) {
        uv_close((uv_handle_t *)&r->t, rc_closed);
    }
}

static void rc_written(uv_write_t *w, int status) {}

static void rc_connected(uv_connect_t *c, int status)
{
    rawc *r = c->data;
    ck_assert_int_eq(status, 0);
    r->connected = 1;
    uv_read_start((uv_stream_t *)&r->t, rc_alloc, rc_read);
    if (r->req_len) {
        uv_buf_t b = uv_buf_init((char *)r->req, (unsigned)r->req_len);
        ck_assert_int_eq(uv_write(&r->w, (uv_stream_t *)&r->t, &b, 1, rc_written), 0);
    }
}

static void rc_start(uv_loop_t *loop, rawc *r, int port, const char *req, int *eofs)
{
    memset(r, 0, sizeof(*r));
    r->req = req;
    r->req_len = req ? strlen(req) : 0;
    r->eofs = eofs;
    uv_tcp_init(loop, &r->t);
    r->t.data = r;
    r->c.data = r;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    ck_assert_int_eq(uv_tcp_connect(&r->c, &r->t, (struct sockaddr *)&a, rc_connected), 0);
}

static int count_substr(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, sub)) != NULL; p += strlen(sub))
        n++;
    return n;
}

/* ---- server ---- */

typedef struct deferred {
    uv_timer_t t;
    sf_httpd_req *r;
} deferred;

static void deferred_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deferred_fire(uv_timer_t *t)
{
    deferred *d = t->data;
    sf_httpd_resp resp = {.status = 202, .content_type = "text/plain"};
    sf_buf_puts(&resp.body, "deferred");
    sf_httpd_respond(d->r, &resp);
    uv_close((uv_handle_t *)&d->t, deferred_closed);
}

static int handler(sf_httpd_req *req, sf_httpd_resp *resp, void *ud)
{
    uv_loop_t *loop = ud;
    const char *p = sf_httpd_path(req);
    resp->content_type = "text/plain";
    if (strcmp(p, "/defer") == 0 || strcmp(p, "/hold") == 0) {
        deferred *d = calloc(1, sizeof(*d));
        ck_assert_ptr_nonnull(d);
        d->r = req;
        uv_timer_init(loop, &d->t);
        d->t.data = d;
        uv_timer_start(&d->t, deferred_fire, strcmp(p, "/hold") == 0 ? 1000 : 50, 0);
        return SF_HTTPD_DEFER;
    }
    if (strcmp(p, "/fail") == 0)
        return -ENOMEM;
    const char *h = sf_httpd_header(req, "x-name");
    return sf_buf_appendf(&resp->body, "path=%s query=%s x=%s", p, sf_httpd_query(req),
                          h ? h : "-");
}

typedef struct env {
    uv_loop_t loop;
    sf_httpd *srv;
    int port;
    int closed;
    int eofs;
} env;

static void on_closed(void *arg)
{
    (*(int *)arg)++;
}

static void env_setup(env *e, const sf_httpd_opts *o)
{
    memset(e, 0, sizeof(*e));
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    ck_assert_int_eq(sf_httpd_start_opts(&e->loop, "127.0.0.1:0", o, handler, &e->loop, &e->srv),
                     0);
    e->port = sf_httpd_port(e->srv);
}

static void env_teardown(env *e)
{
    sf_httpd_close(e->srv, on_closed, &e->closed);
    sf_test_run_until(&e->loop, &e->closed, 1);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&e->loop), 0);
}

START_TEST(test_basic_and_pipelining)
{
    env e;
    env_setup(&e, NULL);
    rawc r;
    rc_start(&e.loop, &r, e.port,
             "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Name: v1\r\n\r\n"
             "GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
             &e.eofs);
    sf_test_run_until(&e.loop, &e.eofs, 1);
    ck_assert_int_eq(count_substr(r.resp.data, "HTTP/1.1 200 OK"), 2);
    ck_assert_ptr_nonnull(strstr(r.resp.data, "path=/a query=x=1 x=v1"));
    ck_assert_ptr_nonnull(strstr(r.resp.data, "path=/b query= x=-"));
    ck_assert(strstr(r.resp.data, "path=/a") < strstr(r.resp.data, "path=/b"));
    ck_assert_ptr_nonnull(strstr(r.resp.data, "Connection: close"));
    ck_assert_uint_eq(sf_httpd_accepted(e.srv), 1);
    sf_buf_free(&r.resp);
    env_teardown(&e);
}
END_TEST

START_TEST(test_malformed_400)
{
    env e;
    env_setup(&e, NULL);
    rawc r1, r2;
    rc_start(&e.loop, &r1, e.port, "THIS IS NOT HTTP\r\n\r\n", &e.eofs);
    rc_start(&e.loop, &r2, e.port, "GET /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", &e.eofs);
    sf_test_run_until(&e.loop, &e.eofs, 2); /* and the server closed both */
    ck_assert_ptr_nonnull(strstr(r1.resp.data, "HTTP/1.1 400 Bad Request"));
    ck_assert_ptr_nonnull(strstr(r2.resp.data, "HTTP/1.1 400 Bad Request"));
    sf_buf_free(&r1.resp);
    sf_buf_free(&r2.resp);
    env_teardown(&e);
}
END_TEST

START_TEST(test_limits)
{
    sf_httpd_opts o = {.max_header_bytes = 256, .max_body = 10};
    env e;
    env_setup(&e, &o);
    static char big[2048];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: %0600d\r\n\r\n", 0);
    rawc r1, r2, r3;
    rc_start(&e.loop, &r1, e.port, big, &e.eofs);
    rc_start(&e.loop, &r2, e.port, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n0123456789A",
             &e.eofs);
    rc_start(&e.loop, &r3, e.port,
             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567"
             "\r\n0\r\n\r\n",
             &e.eofs);
    sf_test_run_until(&e.loop, &e.eofs, 3);
    ck_assert_ptr_nonnull(strstr(r1.resp.data, "HTTP/1.1 431 "));
    ck_assert_ptr_nonnull(strstr(r2.resp.data, "HTTP/1.1 413 "));
    ck_assert_ptr_nonnull(strstr(r3.resp.data, "HTTP/1.1 413 "));
    sf_buf_free(&r1.resp);
    sf_buf_free(&r2.resp);
    sf_buf_free(&r3.resp);
    env_teardown(&e);
}
END_TEST

static void run_until_connected(env *e, rawc *r, size_t conns)
{
    for (int i = 0; i < 1000 && (!r->connected || sf_httpd_connections(e->srv) < conns); i++)
        uv_run(&e->loop, UV_RUN_ONCE);
}

/* At the cap, the connection that has waited longest without an answer makes room: an idle
 * client cannot lock out one that sends a whole request. */
START_TEST(test_max_conns_closes_oldest_waiting)
{
    sf_httpd_opts o = {.max_conns = 1};
    env e;
    env_setup(&e, &o);
    rawc r1, r2;
    rc_start(&e.loop, &r1, e.port, NULL, &e.eofs); /* holds the only slot, sends nothing */
    run_until_connected(&e, &r1, 1);
    rc_start(&e.loop, &r2, e.port, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &e.eofs);
    sf_test_run_until(&e.loop, &e.eofs, 2);
    ck_assert_int_eq(r1.closed, 1);
    ck_assert_ptr_nonnull(strstr(r2.resp.data, "HTTP/1.1 200 OK"));
    env_teardown(&e);
    sf_buf_free(&r1.resp);
    sf_buf_free(&r2.resp);
}
END_TEST

/* 503 only when every connection has a request being answered. */
START_TEST(test_max_conns_503_when_all_answering)
{
    sf_httpd_opts o = {.max_conns = 1};
    env e;
    env_setup(&e, &o);
    rawc r1, r2;
    rc_start(&e.loop, &r1, e.port, "GET /hold HTTP/1.1\r\nConnection: close\r\n\r\n", &e.eofs);
    run_until_connected(&e, &r1, 1);
    for (int i = 0; i < 100; i++) /* until the request is read and deferred */
        uv_run(&e.loop, UV_RUN_NOWAIT);
    rc_start(&e.loop, &r2, e.port, "GET / HTTP/1.1\r\n\r\n", &e.eofs);
    sf_test_run_until(&e.loop, &e.eofs, 2);
    ck_assert_ptr_nonnull(strstr(r2.resp.data, "HTTP/1.1 503 "));
    ck_assert_ptr_nonnull(strstr(r1.resp.data, "HTTP/1.1 202 "));
    env_teardown(&e);
    sf_buf_free(&r1.resp);
    sf_buf_free(&r2.resp);
}
END_TEST

/* ---- slow-loris: clients that trickle a request one byte at a time, forever ---- */

typedef struct trickle {
    uv_tcp_t t;
    uv_connect_t c;
    uv_timer_t tm;
    size_t sent;
    int open; /* handles still open */
    int *closed_count;
    uint64_t closed_at;
} trickle;

static const char trickle_req[] =
    "GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void tr_handle_closed(uv_handle_t *h)
{
    trickle *x = h->data;
    if (--x->open == 0)
        (*x->closed_count)++;
}

static void tr_close(trickle *x)
{
    if (uv_is_closing((uv_handle_t *)&x->t))
        return;
    x->closed_at = uv_now(x->t.loop);
    uv_close((uv_handle_t *)&x->t, tr_handle_closed);
    uv_close((uv_handle_t *)&x->tm, tr_handle_closed);
}

static void tr_written(uv_write_t *w, int status)
{
    free(w);
}

static void tr_tick(uv_timer_t *tm)
{
    trickle *x = tm->data;
    if (x->sent >= sizeof trickle_req - 1)
        return;
    uv_write_t *w = malloc(sizeof *w);
    ck_assert_ptr_nonnull(w);
    uv_buf_t b = uv_buf_init((char *)trickle_req + x->sent++, 1);
    if (uv_write(w, (uv_stream_t *)&x->t, &b, 1, tr_written) != 0)
        free(w);
}

static void tr_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    static char buf[4096];
    *b = uv_buf_init(buf, sizeof buf);
}

static void tr_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) /* the server closed us */
        tr_close(st->data);
}

static void tr_connected(uv_connect_t *c, int status)
{
    trickle *x = c->data;
    if (status != 0) {
        tr_close(x);
        return;
    }
    uv_read_start((uv_stream_t *)&x->t, tr_alloc, tr_read);
    uv_timer_start(&x->tm, tr_tick, 0, 20); /* a byte every 20 ms: ~2 s for the request */
}

static void tr_start(uv_loop_t *loop, trickle *x, int port, int *closed_count)
{
    memset(x, 0, sizeof *x);
    x->closed_count = closed_count;
    x->open = 2;
    uv_tcp_init(loop, &x->t);
    uv_timer_init(loop, &x->tm);
    x->t.data = x->tm.data = x->c.data = x;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    ck_assert_int_eq(uv_tcp_connect(&x->c, &x->t, (struct sockaddr *)&a, tr_connected), 0);
}

START_TEST(test_slow_loris)
{
    enum { NSLOW = 12 };
    sf_httpd_opts o = {.max_conns = 8, .idle_timeout_ms = 400};
    env e;
    env_setup(&e, &o);
    trickle slow[NSLOW];
    int slow_closed = 0;
    for (int i = 0; i < NSLOW; i++)
        tr_start(&e.loop, &slow[i], e.port, &slow_closed);
    /* let them all connect and start trickling (more of them than the cap) */
    uint64_t t0 = uv_now(&e.loop);
    while (uv_now(&e.loop) - t0 < 150)
        uv_run(&e.loop, UV_RUN_ONCE);
    /* a real client is answered at once, however many slow ones hold connections */
    rawc good;
    int good_eof = 0;
    rc_start(&e.loop, &good, e.port, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
             &good_eof);
    uint64_t asked = uv_now(&e.loop);
    sf_test_run_until(&e.loop, &good_eof, 1);
    ck_assert_ptr_nonnull(strstr(good.resp.data, "HTTP/1.1 200 OK"));
    ck_assert_uint_lt(uv_now(&e.loop) - asked, 300);
    /* and every slow one is closed by its deadline although it keeps sending bytes */
    sf_test_run_until(&e.loop, &slow_closed, NSLOW);
    for (int i = 0; i < NSLOW; i++) {
        ck_assert_uint_lt(slow[i].sent, sizeof trickle_req - 1); /* never finished */
        ck_assert_uint_le(slow[i].closed_at - t0, 400 + 400);
    }
    env_teardown(&e);
    sf_buf_free(&good.resp);
}
END_TEST

START_TEST(test_idle_timeout)
{
    sf_httpd_opts o = {.idle_timeout_ms = 100};
    env e;
    env_setup(&e, &o);
    rawc r;
    rc_start(&e.loop, &r, e.port, "GET / HTTP/1.1\r\n\r\n", &e.eofs);
    sf_test_run_until(&e.loop, &e.eofs, 1); /* keep-alive connection closed when idle */
    ck_assert_int_eq(count_substr(r.resp.data, "HTTP/1.1 200 OK"), 1);
    ck_assert_uint_eq(sf_httpd_connections(e.srv), 0);
    sf_buf_free(&r.resp);
    env_teardown(&e);
}
END_TEST

START_TEST(test_deferred_and_500)
{
    env e;
    env_setup(&e, NULL);
    rawc r;
    rc_start(&e.loop, &r, e.port,
             "GET /defer HTTP/1.1\r\n\r\nGET /fail HTTP/1.1\r\n\r\n"
             "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n",
             &e.eofs);
    sf_test_run_until(&e.loop, &e.eofs, 1);
    const char *a = strstr(r.resp.data, "HTTP/1.1 202 Accepted");
    const char *b = strstr(r.resp.data, "HTTP/1.1 500 ");
    const char *c = strstr(r.resp.data, "path=/last");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert(a < b && b < c); /* answered in order */
    sf_buf_free(&r.resp);
    env_teardown(&e);
}
END_TEST

START_TEST(test_close_with_deferred_and_open_conns)
{
    env e;
    env_setup(&e, NULL);
    rawc r1, r2;
    rc_start(&e.loop, &r1, e.port, "GET /defer HTTP/1.1\r\n\r\n", &e.eofs);
    rc_start(&e.loop, &r2, e.port, NULL, &e.eofs);
    int spins = 0;
    while (sf_httpd_connections(e.srv) < 2 && ++spins < 1000)
        uv_run(&e.loop, UV_RUN_ONCE);
    for (int i = 0; i < 5; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT); /* request read and deferred */
    env_teardown(&e); /* deferred answer lands on a closed connection: freed, nothing leaks */
    sf_buf_free(&r1.resp);
    sf_buf_free(&r2.resp);
}
END_TEST

START_TEST(test_listen_parsing_and_query)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    sf_httpd *s = NULL;
    ck_assert_int_eq(sf_httpd_start(&loop, "nonsense", handler, NULL, &s), -EINVAL);
    ck_assert_int_eq(sf_httpd_start(&loop, "127.0.0.1:99999", handler, NULL, &s), -EINVAL);
    ck_assert_int_eq(sf_httpd_start(&loop, "[::1]:0", handler, NULL, &s) == 0 ||
                         s == NULL /* no IPv6 on this host */,
                     1);
    int closed = 0;
    if (s) {
        ck_assert_int_gt(sf_httpd_port(s), 0);
        sf_httpd_close(s, on_closed, &closed);
        sf_test_run_until(&loop, &closed, 1);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);

    char v[16];
    unsigned n;
    ck_assert_int_eq(sf_httpd_query_param("a=1&b=x%20y+z&a=2", "b", v, sizeof(v), &n), 0);
    ck_assert_str_eq(v, "x y z");
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(sf_httpd_query_param("a=1&b=2&a=3", "a", v, sizeof(v), &n), 0);
    ck_assert_str_eq(v, "1");
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(sf_httpd_query_param("a=1", "c", v, sizeof(v), &n), -ENOENT);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(sf_httpd_query_param("a=%zz", "a", v, sizeof(v), NULL), -EINVAL);
    ck_assert_int_eq(sf_httpd_query_param("a=%4", "a", v, sizeof(v), NULL), -EINVAL);
    ck_assert_int_eq(sf_httpd_query_param("a=0123456789abcdefgh", "a", v, sizeof(v), NULL),
                     -ENOSPC);
    ck_assert_int_eq(sf_httpd_query_param("flag&a=", "flag", v, sizeof(v), NULL), 0);
    ck_assert_str_eq(v, "");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_basic_and_pipelining);
    tcase_add_test(tc, test_malformed_400);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_max_conns_closes_oldest_waiting);
    tcase_add_test(tc, test_max_conns_503_when_all_answering);
    tcase_add_test(tc, test_slow_loris);
    tcase_add_test(tc, test_idle_timeout);
    tcase_add_test(tc, test_deferred_and_500);
    tcase_add_test(tc, test_close_with_deferred_and_open_conns);
    tcase_add_test(tc, test_listen_parsing_and_query);
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
