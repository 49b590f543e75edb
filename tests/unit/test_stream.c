/* net/stream on a real loop against local servers (a thread with blocking sockets; TLS with a
 * throwaway PKI made at test time): connect, write order and completion, connect / write /
 * close timeouts, peer close, the graceful close and when it does not confirm, TLS
 * verification, mutual TLS, min_version, UDP, and that no callback ever runs inside a call
 * the owner made. Every test ends with the loop closed (every handle closed). */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/util.h"
#include "net/stream.h"
#include "net/tls.h"
#include "testcert.h"
#include "testserver.h"
#include "testutil.h"

/* ---- what the stream reports ---- */

typedef struct ev {
    int connected, failed, drained, closed;
    int written, written_ok, written_canceled, written_other;
    long order[16];
    int norder;
    char why[256];
    bool in_call;   /* inside a call into the stream */
    int reentered;  /* callbacks that ran inside one */
    int accepted;   /* writes accepted (each must get its callback before closed) */
    int late;       /* callbacks after closed */
    int unexpected; /* failed or drained after sf_stream_close */
    bool owner_closed;
} ev_t;

static void check_cb(ev_t *e)
{
    e->reentered += e->in_call;
    e->late += e->closed > 0;
}

static void on_connected(sf_stream *s, void *ud)
{
    ev_t *e = ud;
    check_cb(e);
    e->connected++;
}

static void on_written(sf_stream *s, void *ud, void *wud, int status)
{
    ev_t *e = ud;
    check_cb(e);
    e->written++;
    if (e->norder < 16)
        e->order[e->norder++] = (long)(intptr_t)wud;
    if (status == 0)
        e->written_ok++;
    else if (status == UV_ECANCELED)
        e->written_canceled++;
    else
        e->written_other++;
}

static void on_failed(sf_stream *s, void *ud, const char *why)
{
    ev_t *e = ud;
    check_cb(e);
    e->unexpected += e->owner_closed;
    e->failed++;
    snprintf(e->why, sizeof e->why, "%s", why);
}

static void on_drained(sf_stream *s, void *ud)
{
    ev_t *e = ud;
    check_cb(e);
    e->unexpected += e->owner_closed;
    e->drained++;
}

static void on_closed(sf_stream *s, void *ud)
{
    ev_t *e = ud;
    check_cb(e);
    ck_assert_int_eq(e->written, e->accepted); /* every write reported before closed */
    e->closed++;
}

static const sf_stream_cbs cbs = {.connected = on_connected,
                                  .written = on_written,
                                  .failed = on_failed,
                                  .drained = on_drained,
                                  .closed = on_closed};

static uv_loop_t loop;
static char tmpdir[256];
static tc_pki pki;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    sf_test_mkdtemp(tmpdir, sizeof tmpdir, "stream");
}

static void setup_tls(void)
{
    setup();
    tc_make_pki(&pki, tmpdir);
}

static void teardown(void)
{
    sf_test_rmtree(tmpdir);
}

static sf_stream *open_stream(ev_t *e, const char *host, int port, SSL_CTX *ctx,
                              const sf_tls_cfg *tls, int64_t timeout_ms)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    sf_stream_opts o = {.host = host,
                        .port = p,
                        .tls_ctx = ctx,
                        .tls = tls,
                        .connect_timeout_ms = timeout_ms,
                        .write_timeout_ms = timeout_ms,
                        .close_timeout_ms = timeout_ms};
    e->in_call = true;
    sf_stream *s = sf_stream_open(&loop, &o, &cbs, e);
    e->in_call = false;
    ck_assert_ptr_nonnull(s);
    return s;
}

static int write_buf(ev_t *e, sf_stream *s, const void *p, size_t n, unsigned flags, long wud)
{
    e->in_call = true;
    int rc = sf_stream_write(s, p, n, flags, (void *)(intptr_t)wud);
    e->in_call = false;
    e->accepted += rc == 0;
    return rc;
}

static int shut(ev_t *e, sf_stream *s)
{
    e->in_call = true;
    int rc = sf_stream_shutdown(s);
    e->in_call = false;
    return rc;
}

static void close_stream(ev_t *e, sf_stream *s)
{
    e->in_call = true;
    e->owner_closed = true;
    sf_stream_close(s);
    e->in_call = false;
}

static int ended(void *arg)
{
    ev_t *e = arg;
    return e->failed || e->drained;
}

static int connected_or_ended(void *arg)
{
    ev_t *e = arg;
    return e->connected || ended(e);
}

/* Runs until closed; checks the loop then has nothing left. */
static void finish(ev_t *e)
{
    sf_test_run_until(&loop, &e->closed, 1);
    ck_assert_int_eq(e->closed, 1);
    ck_assert_int_eq(e->reentered, 0);
    ck_assert_int_eq(e->late, 0);
    ck_assert_int_eq(e->unexpected, 0);
}

static void close_loop(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* ---- TCP ---- */

START_TEST(test_write_then_graceful_close_confirms)
{
    srv_t sv;
    srv_start(&sv, SRV_READ_ALL, NULL, 0);
    ev_t e = {0};
    sf_stream *s = open_stream(&e, "127.0.0.1", sv.port, NULL, NULL, 5000);
    ck_assert_int_eq(write_buf(&e, s, "early", 5, 0, 0), UV_ENOTCONN); /* not connected yet */
    sf_test_run_until(&loop, &e.connected, 1);
    size_t big = 300 * 1024;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (char)('a' + i % 26);
    ck_assert_int_eq(write_buf(&e, s, "first|", 6, 0, 1), 0);
    char *copy = malloc(big);
    memcpy(copy, p, big);
    ck_assert_int_eq(write_buf(&e, s, copy, big, SF_STREAM_TAKE, 2), 0);
    ck_assert_int_eq(write_buf(&e, s, "|last", 5, 0, 3), 0);
    ck_assert_int_eq(e.written, 0); /* completions come from the loop, never inline */
    sf_test_run_until(&loop, &e.written, 3);
    ck_assert_int_eq(e.written_ok, 3);
    ck_assert(e.order[0] == 1 && e.order[1] == 2 && e.order[2] == 3);
    ck_assert_int_eq(shut(&e, s), 0);
    ck_assert_int_eq(write_buf(&e, s, "x", 1, 0, 4), UV_ENOTCONN); /* half-closed */
    ck_assert_int_eq(e.drained + e.failed, 0);
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_msg(e.drained == 1 && e.failed == 0, "not confirmed: %s", e.why);
    finish(&e);
    srv_join(&sv);
    ck_assert_uint_eq(sv.got.len, 6 + big + 5);
    ck_assert(memcmp(sv.got.data, "first|", 6) == 0);
    ck_assert(memcmp(sv.got.data + 6, p, big) == 0);
    ck_assert(memcmp(sv.got.data + 6 + big, "|last", 5) == 0);
    free(p);
    srv_free(&sv);
    close_loop();
}
END_TEST

START_TEST(test_connect_refused)
{
    ev_t e = {0};
    open_stream(&e, "127.0.0.1", closed_port(), NULL, NULL, 5000);
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_int_eq(e.connected, 0);
    ck_assert_msg(strstr(e.why, "connect: connection refused"), "%s", e.why);
    finish(&e);
    close_loop();
}
END_TEST

START_TEST(test_unresolvable_input_fails_on_a_later_turn)
{
    ev_t e = {0};
    char host[300];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    open_stream(&e, host, 514, NULL, NULL, 5000); /* too long: refused inside open */
    ck_assert_int_eq(e.failed, 0);                /* ... but reported from the loop */
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_int_eq(e.failed, 1);
    ck_assert_str_eq(e.why, "invalid host or port");
    finish(&e);
    close_loop();
}
END_TEST

START_TEST(test_peer_close_while_idle)
{
    srv_t sv;
    srv_start(&sv, SRV_CLOSE_AT_ONCE, NULL, 0);
    ev_t e = {0};
    open_stream(&e, "127.0.0.1", sv.port, NULL, NULL, 5000);
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_int_eq(e.connected, 1);
    ck_assert_str_eq(e.why, "connection closed by the peer");
    finish(&e);
    srv_stop(&sv);
    close_loop();
}
END_TEST

START_TEST(test_write_timeout)
{
    srv_t sv;
    srv_start(&sv, SRV_SILENT, NULL, 4096);
    ev_t e = {0};
    sf_stream *s = open_stream(&e, "127.0.0.1", sv.port, NULL, NULL, 300);
    sf_test_run_until(&loop, &e.connected, 1);
    size_t big = 64u << 20; /* more than the kernel takes while the peer reads nothing */
    char *p = calloc(1, big);
    ck_assert_int_eq(write_buf(&e, s, p, big, SF_STREAM_TAKE, 7), 0);
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_msg(strstr(e.why, "data not written within 300ms"), "%s", e.why);
    finish(&e);
    ck_assert_int_eq(e.written, 1);
    ck_assert_int_eq(e.written_canceled, 1);
    srv_stop(&sv);
    close_loop();
}
END_TEST

START_TEST(test_close_timeout)
{
    srv_t sv;
    srv_start(&sv, SRV_SILENT, NULL, 0);
    ev_t e = {0};
    sf_stream *s = open_stream(&e, "127.0.0.1", sv.port, NULL, NULL, 300);
    sf_test_run_until(&loop, &e.connected, 1);
    ck_assert_int_eq(write_buf(&e, s, "abc", 3, 0, 1), 0);
    ck_assert_int_eq(shut(&e, s), 0);
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_int_eq(e.drained, 0);
    ck_assert_msg(strstr(e.why, "did not close its side within 300ms"), "%s", e.why);
    finish(&e);
    srv_stop(&sv);
    close_loop();
}
END_TEST

/* The peer closes after our FIN without having read: its TCP did not acknowledge our bytes
 * (its window is full), so the close does not confirm. */
START_TEST(test_graceful_close_unread_does_not_confirm)
{
    srv_t sv;
    srv_start(&sv, SRV_FIN_UNREAD, NULL, 4096);
    ev_t e = {0};
    sf_stream *s = open_stream(&e, "127.0.0.1", sv.port, NULL, NULL, 5000);
    sf_test_run_until(&loop, &e.connected, 1);
    size_t n = 64 * 1024;
    char *p = calloc(1, n);
    ck_assert_int_eq(write_buf(&e, s, p, n, SF_STREAM_TAKE, 1), 0);
    sf_test_run_until(&loop, &e.written, 1);
    ck_assert_int_eq(shut(&e, s), 0);
    for (int i = 0; i < 20; i++) /* our FIN goes out (queued behind the unacknowledged bytes) */
        uv_run(&loop, UV_RUN_NOWAIT);
    usleep(50 * 1000);
    srv_send(&sv, 'g'); /* the peer closes its side, having read nothing */
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_int_eq(e.drained, 0);
    ck_assert_msg(strstr(e.why, "before confirming it read everything (after our close,"), "%s",
                  e.why);
    finish(&e);
    srv_stop(&sv);
    close_loop();
}
END_TEST

START_TEST(test_close_cancels_and_never_calls_back_inline)
{
    srv_t sv;
    srv_start(&sv, SRV_SILENT, NULL, 4096);
    ev_t e = {0};
    sf_stream *s = open_stream(&e, "127.0.0.1", sv.port, NULL, NULL, 5000);
    sf_test_run_until(&loop, &e.connected, 1);
    ck_assert_int_eq(write_buf(&e, s, calloc(1, 32u << 20), 32u << 20, SF_STREAM_TAKE, 1), 0);
    ck_assert_int_eq(write_buf(&e, s, "tail", 4, 0, 2), 0);
    close_stream(&e, s);
    close_stream(&e, s); /* idempotent until closed */
    ck_assert_int_eq(e.written + e.failed + e.closed, 0);
    finish(&e);
    ck_assert_int_eq(e.written, 2);
    ck_assert_int_eq(e.written_canceled, 2);
    ck_assert(e.order[0] == 1 && e.order[1] == 2);
    ck_assert_int_eq(e.failed, 0);
    srv_stop(&sv);
    close_loop();
}
END_TEST

START_TEST(test_close_while_resolving)
{
    ev_t e = {0};
    sf_stream *s = open_stream(&e, "localhost", 9, NULL, NULL, 5000);
    close_stream(&e, s);
    finish(&e);
    ck_assert_int_eq(e.connected + e.failed, 0);
    close_loop();
}
END_TEST

START_TEST(test_udp)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    ev_t e = {0};
    sf_stream_opts o = {.host = "127.0.0.1", .port = port, .datagram = true};
    sf_stream *s = sf_stream_open(&loop, &o, &cbs, &e);
    sf_test_run_until(&loop, &e.connected, 1);
    ck_assert_int_eq(write_buf(&e, s, "one", 3, 0, 1), 0);
    ck_assert_int_eq(write_buf(&e, s, "two!", 4, 0, 2), 0);
    sf_test_run_until(&loop, &e.written, 2);
    ck_assert_int_eq(e.written_ok, 2);
    char buf[16];
    ck_assert_int_eq(recv(fd, buf, sizeof buf, 0), 3); /* one write, one datagram */
    ck_assert(memcmp(buf, "one", 3) == 0);
    ck_assert_int_eq(recv(fd, buf, sizeof buf, 0), 4);
    ck_assert(memcmp(buf, "two!", 4) == 0);
    ck_assert_int_eq(shut(&e, s), UV_ENOTSUP);
    close_stream(&e, s);
    finish(&e);
    close(fd);
    close_loop();
}
END_TEST

/* ---- TLS ---- */

static SSL_CTX *server_ctx(bool require_client_cert, bool max_tls12)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, pki.srv_cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, pki.srv_key, SSL_FILETYPE_PEM), 1);
    if (require_client_cert) {
        ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, pki.ca, NULL), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (max_tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    return ctx;
}

static SSL_CTX *client_ctx(const sf_tls_cfg *t)
{
    char err[400];
    SSL_CTX *ctx = sf_tls_ctx_new(t, err, sizeof err);
    ck_assert_msg(ctx, "%s", err);
    return ctx;
}

/* Connects to a TLS server in mode; against SRV_READ_ALL writes "hello over tls" and closes
 * gracefully. The server thread is joined (sv->got complete); srv_free(sv) after. */
static void tls_round(srv_t *sv, ev_t *e, const char *host, const sf_tls_cfg *t, SSL_CTX *sctx,
                      srv_mode mode)
{
    srv_start(sv, mode, sctx, 0);
    SSL_CTX *cctx = client_ctx(t);
    sf_stream *s = open_stream(e, host, sv->port, cctx, t, 5000);
    sf_test_run_until_fn(&loop, connected_or_ended, e);
    if (e->connected && !ended(e) && mode == SRV_READ_ALL) {
        if (write_buf(e, s, "hello over tls", 14, 0, 1) == 0)
            sf_test_run_until(&loop, &e->written, 1);
        if (!ended(e))
            shut(e, s); /* UV_ENOTCONN if it failed meanwhile */
    }
    sf_test_run_until_fn(&loop, ended, e);
    finish(e);
    SSL_CTX_free(cctx);
    srv_join(sv);
}

START_TEST(test_tls_write_then_graceful_close_confirms)
{
    /* "localhost": the name checked in the certificate; every address is tried */
    sf_tls_cfg t = {.verify = true, .ca_file = pki.ca};
    srv_t sv;
    ev_t e = {0};
    tls_round(&sv, &e, "localhost", &t, server_ctx(false, false), SRV_READ_ALL);
    ck_assert_msg(e.drained == 1 && e.failed == 0, "%s", e.why);
    ck_assert_uint_eq(sv.got.len, 14);
    ck_assert(memcmp(sv.got.data, "hello over tls", 14) == 0);
    srv_free(&sv);
    close_loop();
}
END_TEST

START_TEST(test_tls_wrong_ca_is_refused)
{
    sf_tls_cfg t = {.verify = true, .ca_file = pki.other_ca};
    srv_t sv;
    ev_t e = {0};
    tls_round(&sv, &e, "127.0.0.1", &t, server_ctx(false, false), SRV_READ_ALL);
    ck_assert_int_eq(e.connected, 0);
    ck_assert_msg(strstr(e.why, "TLS certificate verification failed"), "%s", e.why);
    srv_free(&sv);
    close_loop();
}
END_TEST

START_TEST(test_tls_server_name_is_checked)
{
    sf_tls_cfg t = {.verify = true, .ca_file = pki.ca, .server_name = "siem.example.com"};
    srv_t sv;
    ev_t e = {0};
    tls_round(&sv, &e, "127.0.0.1", &t, server_ctx(false, false), SRV_READ_ALL);
    ck_assert_int_eq(e.connected, 0);
    ck_assert_msg(strstr(e.why, "TLS certificate verification failed"), "%s", e.why);
    srv_free(&sv);
    close_loop();
    /* verify: false accepts it */
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    t.verify = false;
    ev_t e2 = {0};
    tls_round(&sv, &e2, "127.0.0.1", &t, server_ctx(false, false), SRV_READ_ALL);
    ck_assert_msg(e2.drained == 1, "%s", e2.why);
    srv_free(&sv);
    close_loop();
}
END_TEST

START_TEST(test_tls_mutual)
{
    sf_tls_cfg t = {.verify = true,
                    .ca_file = pki.ca,
                    .cert_file = pki.cli_cert,
                    .key_file = pki.cli_key_enc,
                    .key_password = TC_KEY_PASSWORD};
    srv_t sv;
    ev_t e = {0};
    tls_round(&sv, &e, "127.0.0.1", &t, server_ctx(true, false), SRV_READ_ALL);
    ck_assert_msg(e.drained == 1, "%s", e.why);
    ck_assert_str_eq(sv.client_cn, "sf-client");
    ck_assert_uint_eq(sv.got.len, 14);
    srv_free(&sv);
    close_loop();
    /* without a client certificate the server refuses (TLS 1.3: after our handshake ended) */
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    sf_tls_cfg t2 = {.verify = true, .ca_file = pki.ca};
    ev_t e2 = {0};
    tls_round(&sv, &e2, "127.0.0.1", &t2, server_ctx(true, false), SRV_READ_ALL);
    ck_assert_int_eq(e2.drained, 0);
    ck_assert_int_eq(e2.failed, 1);
    ck_assert(!sv.handshake_ok);
    ck_assert_uint_eq(sv.got.len, 0);
    srv_free(&sv);
    close_loop();
}
END_TEST

START_TEST(test_tls_min_version)
{
    sf_tls_cfg t = {.verify = true, .ca_file = pki.ca, .min_version = SF_TLS_V1_3};
    srv_t sv;
    ev_t e = {0};
    tls_round(&sv, &e, "127.0.0.1", &t, server_ctx(false, true), SRV_READ_ALL);
    ck_assert_int_eq(e.connected, 0);
    ck_assert_msg(strstr(e.why, "TLS handshake failed"), "%s", e.why);
    srv_free(&sv);
    close_loop();
    /* the default (1.2) talks to a TLS 1.2 server */
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    t.min_version = SF_TLS_V1_2;
    ev_t e2 = {0};
    tls_round(&sv, &e2, "127.0.0.1", &t, server_ctx(false, true), SRV_READ_ALL);
    ck_assert_msg(e2.drained == 1, "%s", e2.why);
    srv_free(&sv);
    close_loop();
}
END_TEST

START_TEST(test_tls_peer_close)
{
    sf_tls_cfg t = {.verify = true, .ca_file = pki.ca};
    srv_t sv;
    ev_t e = {0};
    tls_round(&sv, &e, "127.0.0.1", &t, server_ctx(false, false), SRV_CLOSE_AT_ONCE);
    ck_assert_int_eq(e.connected, 1);
    ck_assert_msg(strstr(e.why, "peer closed the TLS session"), "%s", e.why);
    srv_free(&sv);
    close_loop();
}
END_TEST

START_TEST(test_tls_connect_timeout_covers_the_handshake)
{
    /* a TCP server that never answers the ClientHello */
    srv_t sv;
    srv_start(&sv, SRV_SILENT, NULL, 0);
    sf_tls_cfg t = {.verify = true, .ca_file = pki.ca};
    SSL_CTX *cctx = client_ctx(&t);
    ev_t e = {0};
    open_stream(&e, "127.0.0.1", sv.port, cctx, &t, 300);
    sf_test_run_until_fn(&loop, ended, &e);
    ck_assert_int_eq(e.connected, 0);
    ck_assert_str_eq(e.why, "connection not established within 300ms");
    finish(&e);
    SSL_CTX_free(cctx);
    srv_stop(&sv);
    close_loop();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("tcp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_then_graceful_close_confirms);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_unresolvable_input_fails_on_a_later_turn);
    tcase_add_test(tc, test_peer_close_while_idle);
    tcase_add_test(tc, test_write_timeout);
    tcase_add_test(tc, test_close_timeout);
    tcase_add_test(tc, test_close_cancels_and_never_calls_back_inline);
    tcase_add_test(tc, test_close_while_resolving);
    tcase_add_test(tc, test_udp);
    suite_add_tcase(s, tc);
    tc = tcase_create("confirm");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_graceful_close_unread_does_not_confirm);
    suite_add_tcase(s, tc);
    tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, setup_tls, teardown);
    tcase_add_test(tc, test_tls_write_then_graceful_close_confirms);
    tcase_add_test(tc, test_tls_wrong_ca_is_refused);
    tcase_add_test(tc, test_tls_server_name_is_checked);
    tcase_add_test(tc, test_tls_mutual);
    tcase_add_test(tc, test_tls_min_version);
    tcase_add_test(tc, test_tls_peer_close);
    tcase_add_test(tc, test_tls_connect_timeout_covers_the_handshake);
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
