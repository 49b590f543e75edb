/* The shared TLS table (net/tls.h): every TLS user (source, webhook, splunk_hec, kafka_rest,
 * syslog) declares its "tls" section with sf_tls_options, takes the same defaults, accepts the
 * same keys and reports the same cross-field errors at FILE:LINE:COL; the helpers that apply
 * a configuration to OpenSSL and to libcurl; and HTTPS requests through net/http with each
 * key at work (verification, server_name, mutual TLS with an encrypted key, min_version).
 * The TLS configuration of raw streams is exercised in test_stream.c. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "core/log.h"
#include "net/http.h"
#include "net/tls.h"
#include "sinks/sink.h"
#include "testcert.h"
#include "testserver.h"
#include "testutil.h"

#define SRC "source:\n  url: https://api.example.com\n  token: tok-test-1\n"

/* One TLS user: YAML up to its "tls:" line, the indentation of the keys under it, and what
 * follows; path is how its errors name the section. */
typedef struct tls_user {
    const char *name, *prefix, *indent, *suffix, *path;
} tls_user;

static const tls_user users[] = {
    {"source", SRC "  tls:\n", "    ", "sinks:\n  - type: stdout\n", "source.tls"},
    {"webhook", SRC "sinks:\n  - type: webhook\n    url: https://h.example.com/in\n    tls:\n",
     "      ", "", "tls"},
    {"splunk_hec",
     SRC
     "sinks:\n  - type: splunk_hec\n    url: https://h.example.com:8088\n    token: hec-token-1\n"
     "    tls:\n",
     "      ", "", "tls"},
    {"kafka_rest",
     SRC "sinks:\n  - type: kafka_rest\n    url: https://k.example.com:8082\n    topic: events\n"
         "    tls:\n",
     "      ", "", "tls"},
    {"syslog", SRC "sinks:\n  - type: syslog\n    address: tls://logs.example.com:6514\n    tls:\n",
     "      ", "", "tls"},
};
#define NUSERS (sizeof users / sizeof users[0])

static sf_config cfg;
static sf_cfg_errors errs;
static char tmpdir[256];

static void setup(void)
{
    memset(&cfg, 0, sizeof cfg);
    memset(&errs, 0, sizeof errs);
    sf_test_mkdtemp(tmpdir, sizeof tmpdir, "tls");
    sf_log_set_level(SF_LOG_ERROR);
}

static void teardown(void)
{
    sf_config_free(&cfg);
    sf_cfg_errors_free(&errs);
    sf_test_rmtree(tmpdir);
}

static void dump(void)
{
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "  [%zu] %s\n", i, errs.msgs[i]);
}

/* Loads the user's YAML with 'keys' (lines "key: value\n") under its tls section. */
static int load_user(const tls_user *u, const char *keys)
{
    sf_buf y = {0};
    ck_assert_int_eq(sf_buf_puts(&y, u->prefix), 0);
    for (const char *p = keys; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        ck_assert_int_eq(sf_buf_appendf(&y, "%s%.*s", u->indent, (int)n, p), 0);
        p += n;
    }
    if (!*keys) /* an empty section */
        ck_assert_int_eq(sf_buf_appendf(&y, "%s{}\n", u->indent), 0);
    ck_assert_int_eq(sf_buf_puts(&y, u->suffix), 0);
    sf_config_free(&cfg);
    sf_cfg_errors_free(&errs);
    int rc = sf_config_load_text("t.yaml", y.data, y.len, &cfg, &errs);
    sf_buf_free(&y);
    return rc;
}

/* The "tls" entry of the user's table. */
static const sf_cfg_option *tls_option(const tls_user *u)
{
    const sf_cfg_option *t =
        strcmp(u->name, "source") == 0 ? sf_source_options : sf_sink_find(u->name)->options;
    for (; t->name; t++)
        if (strcmp(t->name, "tls") == 0)
            return t;
    ck_abort_msg("%s: no tls section", u->name);
    return NULL;
}

/* The loaded sf_tls_cfg of the user (found through its table's offset). */
static const sf_tls_cfg *loaded(const tls_user *u)
{
    if (strcmp(u->name, "source") == 0)
        return &cfg.source.tls;
    ck_assert_uint_eq(cfg.nsinks, 1);
    return (const sf_tls_cfg *)((const char *)cfg.sinks[0]->type_cfg + tls_option(u)->offset);
}

/* The line and column of the first key under the tls section. */
static void first_key_pos(const tls_user *u, const char *key, int *line, int *col)
{
    *line = 1;
    for (const char *p = u->prefix; *p; p++)
        *line += *p == '\n';
    *col = (int)(strlen(u->indent) + strlen(key) + 2 + 1);
}

START_TEST(test_every_user_declares_the_shared_table)
{
    for (size_t i = 0; i < NUSERS; i++) {
        const sf_cfg_option *o = tls_option(&users[i]);
        ck_assert_msg(o->type == SF_OPT_SECTION && o->sub == sf_tls_options, "%s", users[i].name);
    }
    /* and the HEC sink, which shares the webhook's options */
    const sf_cfg_option *t = sf_sink_find("splunk_hec")->options;
    while (t->name && strcmp(t->name, "tls") != 0)
        t++;
    ck_assert_ptr_eq(t->sub, sf_tls_options);
}
END_TEST

START_TEST(test_defaults)
{
    for (size_t i = 0; i < NUSERS; i++) {
        const tls_user *u = &users[i];
        if (load_user(u, "")) {
            dump();
            ck_abort_msg("%s", u->name);
        }
        const sf_tls_cfg *t = loaded(u);
        ck_assert_msg(t->verify, "%s: verify defaults to true", u->name);
        ck_assert_int_eq(t->min_version, SF_TLS_V1_2);
        ck_assert(!t->ca_file && !t->cert_file && !t->key_file && !t->key_password &&
                  !t->server_name);
    }
}
END_TEST

START_TEST(test_every_user_accepts_every_key)
{
    static const char *keys = "verify: false\n"
                              "ca_file: /etc/ca.pem\n"
                              "cert_file: /etc/client.pem\n"
                              "key_file: /etc/client.key\n"
                              "key_password: kp-secret-77\n"
                              "server_name: siem.example.com\n"
                              "min_version: \"1.3\"\n";
    for (size_t i = 0; i < NUSERS; i++) {
        const tls_user *u = &users[i];
        if (load_user(u, keys)) {
            dump();
            ck_abort_msg("%s", u->name);
        }
        const sf_tls_cfg *t = loaded(u);
        ck_assert(!t->verify);
        ck_assert_str_eq(t->ca_file, "/etc/ca.pem");
        ck_assert_str_eq(t->cert_file, "/etc/client.pem");
        ck_assert_str_eq(t->key_file, "/etc/client.key");
        ck_assert_str_eq(t->key_password, "kp-secret-77");
        ck_assert_str_eq(t->server_name, "siem.example.com");
        ck_assert_int_eq(t->min_version, SF_TLS_V1_3);
    }
}
END_TEST

/* Exactly one error, equal to "t.yaml:LINE:COL: " + msg. */
static void expect_error(const tls_user *u, const char *keys, const char *key, const char *msg)
{
    int line, col;
    char want[512];
    first_key_pos(u, key, &line, &col);
    snprintf(want, sizeof want, "t.yaml:%d:%d: %s", line, col, msg);
    int rc = load_user(u, keys);
    if (rc != -1 || errs.n != 1 || strcmp(errs.msgs[0], want) != 0) {
        dump();
        ck_abort_msg("%s: want exactly '%s'", u->name, want);
    }
}

START_TEST(test_validation_errors)
{
    char msg[256];
    for (size_t i = 0; i < NUSERS; i++) {
        const tls_user *u = &users[i];
        const char *p = u->path;
        snprintf(msg, sizeof msg, "%s.key_file needs %s.cert_file", p, p);
        expect_error(u, "key_file: /etc/k.pem\n", "key_file", msg);
        snprintf(msg, sizeof msg, "%s.key_password needs %s.cert_file (it unlocks the client key)",
                 p, p);
        expect_error(u, "key_password: pw-0123456\n", "key_password", msg);
        snprintf(msg, sizeof msg,
                 "%s.server_name: \"bad name/x\" is not a host name or an IP address", p);
        expect_error(u, "server_name: bad name/x\n", "server_name", msg);
        /* the engine's own checks, with the section's path */
        ck_assert_int_eq(load_user(u, "min_version: \"1.1\"\n"), -1);
        ck_assert_msg(strstr(errs.msgs[0], "tls.min_version") && strstr(errs.msgs[0], "1.2, 1.3"),
                      "%s", errs.msgs[0]);
        ck_assert_int_eq(load_user(u, "verfy: true\n"), -1);
        ck_assert_msg(strstr(errs.msgs[0], "did you mean 'verify'"), "%s", errs.msgs[0]);
        /* fine: an IP address as the name, the key in cert_file, verify off with a CA */
        ck_assert_int_eq(load_user(u,
                                   "server_name: \"::1\"\ncert_file: /c.pem\n"
                                   "key_password: kp-0123456\nverify: false\nca_file: /ca.pem\n"),
                         0);
    }
}
END_TEST

START_TEST(test_key_password_is_a_secret)
{
    /* every user's passphrase is registered with the log redactor when the file is loaded */
    for (size_t i = 0; i < NUSERS; i++) {
        char pw[64], line[128];
        snprintf(pw, sizeof pw, "Pass-Phrase-93ab-%zu", i);
        snprintf(line, sizeof line, "cert_file: /c.pem\nkey_password: %s\n", pw);
        ck_assert_int_eq(load_user(&users[i], line), 0);
        sf_buf out = {0};
        snprintf(line, sizeof line, "the key is %s.", pw);
        ck_assert_int_eq(sf_log_redact(line, &out), 0);
        ck_assert_msg(strcmp(out.data, "the key is ***.") == 0, "%s: %s", users[i].name, out.data);
        sf_buf_free(&out);
    }
}
END_TEST

START_TEST(test_ctx)
{
    tc_pki p;
    tc_make_pki(&p, tmpdir);
    char err[400];
    sf_tls_cfg t = {.verify = true, .ca_file = p.ca};
    SSL_CTX *ctx = sf_tls_ctx_new(&t, err, sizeof err);
    ck_assert_msg(ctx, "%s", err);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
    SSL_CTX_free(ctx);
    /* min_version 1.3, mutual TLS with the key in its own file, or encrypted */
    t = (sf_tls_cfg){.verify = true,
                     .ca_file = p.ca,
                     .cert_file = p.cli_cert,
                     .key_file = p.cli_key_enc,
                     .key_password = TC_KEY_PASSWORD,
                     .min_version = SF_TLS_V1_3};
    ctx = sf_tls_ctx_new(&t, err, sizeof err);
    ck_assert_msg(ctx, "%s", err);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    ck_assert_ptr_nonnull(SSL_CTX_get0_certificate(ctx));
    SSL_CTX_free(ctx);
    /* errors name the key at fault */
    t = (sf_tls_cfg){.verify = true, .ca_file = "/nonexistent/ca.pem"};
    ck_assert_ptr_null(sf_tls_ctx_new(&t, err, sizeof err));
    ck_assert_msg(strncmp(err, "tls.ca_file /nonexistent/ca.pem: ", 33) == 0, "%s", err);
    t = (sf_tls_cfg){.verify = false, .cert_file = p.cli_cert, .key_file = p.srv_key};
    ck_assert_ptr_null(sf_tls_ctx_new(&t, err, sizeof err));
    ck_assert_msg(strstr(err, "tls.key_file"), "%s", err); /* not the certificate's key */
    t = (sf_tls_cfg){.cert_file = p.cli_cert, .key_file = p.cli_key_enc, .key_password = "no"};
    ck_assert_ptr_null(sf_tls_ctx_new(&t, err, sizeof err));
    ck_assert_msg(strstr(err, "tls.key_file"), "%s", err);
    t = (sf_tls_cfg){.cert_file = "/nonexistent/c.pem"};
    ck_assert_ptr_null(sf_tls_ctx_new(&t, err, sizeof err));
    ck_assert_msg(strstr(err, "tls.cert_file /nonexistent/c.pem"), "%s", err);
}
END_TEST

START_TEST(test_ssl_setup_names)
{
    char err[400];
    sf_tls_cfg t = {.verify = false};
    SSL_CTX *ctx = sf_tls_ctx_new(&t, err, sizeof err);
    ck_assert_ptr_nonnull(ctx);
    SSL *ssl = SSL_new(ctx);
    ck_assert_int_eq(sf_tls_ssl_setup(ssl, &t, "logs.example.com"), 0);
    ck_assert_str_eq(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "logs.example.com");
    SSL_free(ssl);
    t.server_name = "siem.example.com"; /* overrides the host */
    ssl = SSL_new(ctx);
    ck_assert_int_eq(sf_tls_ssl_setup(ssl, &t, "10.0.0.7"), 0);
    ck_assert_str_eq(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "siem.example.com");
    SSL_free(ssl);
    t.server_name = ""; /* empty: the host; an IP address is not sent as SNI */
    ssl = SSL_new(ctx);
    ck_assert_int_eq(sf_tls_ssl_setup(ssl, &t, "10.0.0.7"), 0);
    ck_assert_ptr_null(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ck_assert(sf_tls_is_ip_literal("::1") && sf_tls_is_ip_literal("127.0.0.1"));
    ck_assert(!sf_tls_is_ip_literal("localhost") && !sf_tls_is_ip_literal("[::1]"));
}
END_TEST

/* The CONNECT_TO entry sf_tls_curl_setup makes for url (NULL if none). */
static char *connect_to_for(const sf_tls_cfg *t, const char *url)
{
    CURL *e = curl_easy_init();
    ck_assert_ptr_nonnull(e);
    struct curl_slist *l = (struct curl_slist *)1;
    ck_assert_int_eq(sf_tls_curl_setup(t, e, url, &l), 0);
    char *out = l ? strdup(l->data) : NULL;
    ck_assert(!l || !l->next);
    curl_slist_free_all(l);
    curl_easy_cleanup(e);
    return out;
}

START_TEST(test_curl_server_name)
{
    sf_tls_cfg t = {.verify = true};
    ck_assert_ptr_null(connect_to_for(&t, "https://127.0.0.1:8443/x"));
    ck_assert_ptr_null(connect_to_for(NULL, "https://127.0.0.1:8443/x"));
    t.server_name = "api.internal";
    char *c = connect_to_for(&t, "https://127.0.0.1:8443/api/v1/secureEvents?limit=1");
    ck_assert_str_eq(c, "api.internal:8443:127.0.0.1:8443");
    free(c);
    c = connect_to_for(&t, "https://[::1]/in");
    ck_assert_str_eq(c, "api.internal:443:[::1]:443");
    free(c);
    ck_assert_ptr_null(connect_to_for(&t, "http://127.0.0.1:8080/")); /* no TLS */
    ck_assert_ptr_null(connect_to_for(&t, "https://API.internal/"));  /* already the name */
    t.server_name = "::1";
    c = connect_to_for(&t, "https://10.1.2.3:9000/");
    ck_assert_str_eq(c, "[::1]:9000:10.1.2.3:9000");
    free(c);
}
END_TEST

/* ---- HTTPS through net/http (the source's and the HTTP sinks' path) ---- */

typedef struct https_result {
    int done, closed;
    long status;
    int error;
    char errmsg[256];
} https_result;

static void on_https(sf_http_response *r, void *ud)
{
    https_result *res = ud;
    res->status = r->status;
    res->error = r->error;
    snprintf(res->errmsg, sizeof res->errmsg, "%s", r->errmsg);
    res->done++;
}

static void on_http_closed(void *arg)
{
    ((https_result *)arg)->closed++;
}

static SSL_CTX *https_server_ctx(const char *cert, const char *key, bool need_client,
                                 bool max_tls12)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    if (need_client) {
        char ca[512];
        snprintf(ca, sizeof ca, "%s/ca.pem", tmpdir);
        ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (max_tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    return ctx;
}

/* One GET of https://127.0.0.1:PORT/events with t; the server thread is joined after. */
static void https_get(srv_t *sv, SSL_CTX *sctx, const sf_tls_cfg *t, https_result *res)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    srv_start(sv, SRV_HTTP, sctx, 0);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/events?limit=1", sv->port);
    sf_http *h = sf_http_new(&loop);
    ck_assert_ptr_nonnull(h);
    sf_http_request req = {.url = url, .timeout_ms = 10000, .tls = t};
    memset(res, 0, sizeof *res);
    ck_assert_int_eq(sf_http_send(h, &req, on_https, res, NULL), 0);
    sf_test_run_until(&loop, &res->done, 1);
    sf_http_close(h, on_http_closed, res);
    sf_test_run_until(&loop, &res->closed, 1);
    srv_join(sv);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_https_verify)
{
    tc_pki p;
    tc_make_pki(&p, tmpdir);
    srv_t sv;
    https_result r;
    sf_tls_cfg t = {.verify = true, .ca_file = p.ca};
    https_get(&sv, https_server_ctx(p.srv_cert, p.srv_key, false, false), &t, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.error, r.errmsg);
    ck_assert(strstr(sv.got.data, "GET /events?limit=1 HTTP/1.1\r\n"));
    srv_free(&sv);
    t.ca_file = p.other_ca; /* a CA that did not sign the server's certificate */
    https_get(&sv, https_server_ctx(p.srv_cert, p.srv_key, false, false), &t, &r);
    ck_assert_int_eq(r.error, SF_HTTP_ETLSVERIFY); /* a configuration problem, not an outage */
    srv_free(&sv);
    t.verify = false; /* not checked */
    https_get(&sv, https_server_ctx(p.srv_cert, p.srv_key, false, false), &t, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.error, r.errmsg);
    srv_free(&sv);
}
END_TEST

START_TEST(test_https_server_name)
{
    tc_pki p;
    tc_make_pki(&p, tmpdir);
    srv_t sv;
    https_result r;
    /* the certificate names siem.example.com only: the URL's 127.0.0.1 does not match */
    sf_tls_cfg t = {.verify = true, .ca_file = p.ca};
    https_get(&sv, https_server_ctx(p.named_cert, p.named_key, false, false), &t, &r);
    ck_assert_int_eq(r.error, SF_HTTP_ETLSVERIFY);
    srv_free(&sv);
    /* with server_name: SNI, certificate name and Host, over a connection to 127.0.0.1 */
    t.server_name = "siem.example.com";
    https_get(&sv, https_server_ctx(p.named_cert, p.named_key, false, false), &t, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.error, r.errmsg);
    ck_assert_str_eq(sv.sni, "siem.example.com");
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: siem.example.com:%d\r\n", sv.port);
    ck_assert_msg(strstr(sv.got.data, host), "%s", sv.got.data);
    srv_free(&sv);
}
END_TEST

START_TEST(test_https_mutual_tls)
{
    tc_pki p;
    tc_make_pki(&p, tmpdir);
    srv_t sv;
    https_result r;
    sf_tls_cfg t = {.verify = true,
                    .ca_file = p.ca,
                    .cert_file = p.cli_cert,
                    .key_file = p.cli_key_enc,
                    .key_password = TC_KEY_PASSWORD};
    https_get(&sv, https_server_ctx(p.srv_cert, p.srv_key, true, false), &t, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.error, r.errmsg);
    ck_assert_str_eq(sv.client_cn, "sf-client");
    srv_free(&sv);
    t.cert_file = t.key_file = t.key_password = NULL; /* no client certificate: refused */
    https_get(&sv, https_server_ctx(p.srv_cert, p.srv_key, true, false), &t, &r);
    ck_assert_int_ne(r.error, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(sv.got.len, 0);
    srv_free(&sv);
}
END_TEST

START_TEST(test_https_min_version)
{
    tc_pki p;
    tc_make_pki(&p, tmpdir);
    srv_t sv;
    https_result r;
    sf_tls_cfg t = {.verify = true, .ca_file = p.ca, .min_version = SF_TLS_V1_3};
    https_get(&sv, https_server_ctx(p.srv_cert, p.srv_key, false, true), &t, &r);
    ck_assert_int_eq(r.error, SF_HTTP_ETLS);
    srv_free(&sv);
    t.min_version = SF_TLS_V1_2;
    https_get(&sv, https_server_ctx(p.srv_cert, p.srv_key, false, true), &t, &r);
    ck_assert_msg(r.status == 200, "%d %s", r.error, r.errmsg);
    srv_free(&sv);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_every_user_declares_the_shared_table);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_every_user_accepts_every_key);
    tcase_add_test(tc, test_validation_errors);
    tcase_add_test(tc, test_key_password_is_a_secret);
    suite_add_tcase(s, tc);
    tc = tcase_create("apply");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ctx);
    tcase_add_test(tc, test_ssl_setup_names);
    tcase_add_test(tc, test_curl_server_name);
    suite_add_tcase(s, tc);
    tc = tcase_create("https");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_https_verify);
    tcase_add_test(tc, test_https_server_name);
    tcase_add_test(tc, test_https_mutual_tls);
    tcase_add_test(tc, test_https_min_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
