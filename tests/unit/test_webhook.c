#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/event.h"
#include "core/hmac.h"
#include "net/http.h"
#include "sinks/hec.h"
#include "sinks/sink_webhook.h"

/* RFC 4231 test cases 1, 2 and 6 (HMAC-SHA-256) */
START_TEST(hmac_rfc4231)
{
    char hex[65];
    unsigned char k1[20];
    memset(k1, 0x0b, sizeof k1);
    const void *p1[] = {"Hi There"};
    size_t l1[] = {8};
    ck_assert_int_eq(sf_hmac_sha256_hex(k1, sizeof k1, p1, l1, 1, hex), 0);
    ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    /* case 2, message given in three parts: same MAC as one part */
    const void *p2[] = {"what do ya want ", "", "for nothing?"};
    size_t l2[] = {16, 0, 12};
    ck_assert_int_eq(sf_hmac_sha256_hex("Jefe", 4, p2, l2, 3, hex), 0);
    ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* case 6: key longer than the block size */
    unsigned char k6[131];
    memset(k6, 0xaa, sizeof k6);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    const void *p6[] = {m6};
    size_t l6[] = {strlen(m6)};
    ck_assert_int_eq(sf_hmac_sha256_hex(k6, sizeof k6, p6, l6, 1, hex), 0);
    ck_assert_str_eq(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
END_TEST

START_TEST(base64_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        sf_buf b = {0};
        ck_assert_int_eq(sf_base64_append(&b, in[i], strlen(in[i])), 0);
        ck_assert_str_eq(b.data, out[i]);
        sf_buf_free(&b);
    }
}
END_TEST

START_TEST(json_string_escape)
{
    sf_buf b = {0};
    const char s[] = "a\"b\\c\n\t\x01\x7f caf\xc3\xa9";
    ck_assert_int_eq(sf_json_str_append(&b, s, sizeof s - 1), 0);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\x7f caf\xc3\xa9\"");
    cJSON *j = cJSON_Parse(b.data);
    ck_assert(cJSON_IsString(j));
    ck_assert_str_eq(j->valuestring, s);
    cJSON_Delete(j);
    sf_buf_free(&b);
}
END_TEST

static sf_buf rec(const char *s)
{
    sf_buf b = {.data = (char *)s, .len = strlen(s)};
    return b;
}

START_TEST(body_json_ndjson)
{
    sf_buf r[3] = {rec("{\"id\":\"a\"}"), rec("CEF:0|Sysdig|x|1|2|n|5|msg=a\\=b"),
                   rec("{\"id\":\"c\",\n\"x\":1}")};
    sf_buf b = {0};
    ck_assert_int_eq(sf_webhook_body(&b, SF_WH_BODY_JSON, r, NULL, 3, true, NULL), 0);
    ck_assert_str_eq(b.data, "[{\"id\":\"a\"},\"CEF:0|Sysdig|x|1|2|n|5|msg=a\\\\=b\",{\"id\":\"c\","
                             "\n\"x\":1}]");
    cJSON *j = cJSON_Parse(b.data);
    ck_assert(cJSON_IsArray(j));
    ck_assert_int_eq(cJSON_GetArraySize(j), 3);
    cJSON_Delete(j);
    sf_buf_reset(&b);

    /* json_records false (cef/leef formats): every record is a string */
    ck_assert_int_eq(sf_webhook_body(&b, SF_WH_BODY_JSON, r, NULL, 1, false, NULL), 0);
    ck_assert_str_eq(b.data, "[\"{\\\"id\\\":\\\"a\\\"}\"]");
    sf_buf_reset(&b);

    ck_assert_int_eq(sf_webhook_body(&b, SF_WH_BODY_JSON, r, NULL, 0, true, NULL), 0);
    ck_assert_str_eq(b.data, "[]");
    sf_buf_reset(&b);

    /* ndjson: one line per record; a multi-line record is made a one-line JSON string */
    ck_assert_int_eq(sf_webhook_body(&b, SF_WH_BODY_NDJSON, r, NULL, 3, true, NULL), 0);
    ck_assert_str_eq(b.data, "{\"id\":\"a\"}\n\"CEF:0|Sysdig|x|1|2|n|5|msg=a\\\\=b\"\n"
                             "\"{\\\"id\\\":\\\"c\\\",\\n\\\"x\\\":1}\"");
    sf_buf_free(&b);
}
END_TEST

START_TEST(body_hec)
{
    const char *t1 = "{\"id\":\"e1\",\"timestamp\":1700000000123456789,"
                     "\"labels\":{\"host.hostName\":\"node-1\"}}";
    sf_event e1;
    char err[128];
    ck_assert_int_eq(sf_event_parse(t1, strlen(t1), &e1, err, sizeof err), 0);
    e1.ts_ns = INT64_C(1700000000123456789);
    sf_event e2 = e1;
    e2.raw = NULL; /* an event without labels: no tree (e1's is e1's) */
    e2.raw_len = 0;
    e2.json = NULL;
    e2.arena = NULL;
    e2.ts_ns = SF_TIME_UNSET;
    const sf_event *evs[2] = {&e1, &e2};
    sf_buf r[2] = {rec("{\"id\":\"e1\"}"), rec("LEEF:2.0|x")};
    sf_hec_opts o = {.source = "sysdig-forwarder", .sourcetype = "sysdig:secure", .index = "sec"};
    sf_buf b = {0};
    ck_assert_int_eq(sf_webhook_body(&b, SF_WH_BODY_HEC, r, evs, 2, true, &o), 0);
    ck_assert_str_eq(b.data,
                     "{\"time\":1700000000.123456,\"host\":\"node-1\",\"source\":\"sysdig-"
                     "forwarder\",\"sourcetype\":\"sysdig:secure\",\"index\":\"sec\",\"event\":{"
                     "\"id\":\"e1\"}}\n"
                     "{\"source\":\"sysdig-forwarder\",\"sourcetype\":\"sysdig:secure\","
                     "\"index\":\"sec\",\"event\":\"LEEF:2.0|x\"}");
    sf_buf_reset(&b);
    /* configured host wins over the label */
    o.host = "fwd-1";
    o.index = NULL;
    ck_assert_int_eq(sf_webhook_body(&b, SF_WH_BODY_HEC, r, evs, 1, true, &o), 0);
    ck_assert_str_eq(b.data, "{\"time\":1700000000.123456,\"host\":\"fwd-1\",\"source\":\"sysdig-"
                             "forwarder\",\"sourcetype\":\"sysdig:secure\",\"event\":{\"id\":"
                             "\"e1\"}}");
    sf_buf_free(&b);
    sf_event_free(&e1);
}
END_TEST

typedef struct {
    bool hec;
    long status;
    int err;
    const char *body;
    const char *expect; /* one char per record: O(k) R(etry) X (reject) */
    const char *reason_has;
} cls_case;

static const cls_case cls_cases[] = {
    {false, 200, 0, "", "OOO", NULL},
    {false, 204, 0, NULL, "OO", NULL},
    {false, 0, SF_HTTP_ETIMEOUT, NULL, "RR", "timeout"},
    {false, 0, SF_HTTP_ECONNECT, NULL, "R", "connect"},
    {false, 408, 0, "slow", "RR", "HTTP 408"},
    {false, 429, 0, "<html>busy</html>", "RR", "HTTP 429"},
    {false, 500, 0, "oops", "R", "HTTP 500: oops"},
    {false, 503, 0, "", "R", "HTTP 503"},
    {false, 400, 0, "bad\nrequest\x01", "XX", "HTTP 400: bad request?"},
    {false, 401, 0, "", "X", "authentication refused"},
    {false, 413, 0, "too large", "X", "HTTP 413"},
    {false, 302, 0, "", "R", "HTTP 302"},
    {true, 200, 0, "{\"text\":\"Success\",\"code\":0}", "OOO", NULL},
    {true, 200, 0, "", "O", NULL},
    {true, 200, 0, "{\"text\":\"odd\",\"code\":8}", "RR", "code 8"},
    {true, 403, 0, "{\"text\":\"Invalid token\",\"code\":4}", "XX", "refused the token"},
    {true, 401, 0, "{\"text\":\"Token is required\",\"code\":2}", "X", "refused the token"},
    {true, 403, 0, "{\"text\":\"Token disabled\",\"code\":1}", "X", "code 1"},
    {true, 400, 0, "{\"text\":\"Incorrect index\",\"code\":7,\"invalid-event-number\":1}", "OXR",
     "Incorrect index"},
    {true, 400, 0, "{\"text\":\"Invalid data format\",\"code\":6,\"invalid-event-number\":0}",
     "XRR", "code 6"},
    {true, 400, 0, "{\"text\":\"No data\",\"code\":5}", "XX", "No data"},
    {true, 503, 0, "{\"text\":\"Server is busy\",\"code\":9}", "RR", "code 9"},
    {true, 500, 0, "{\"text\":\"Internal server error\",\"code\":8}", "R", "code 8"},
    {true, 429, 0, "<html/>", "R", "HTTP 429"},
    /* issue 12: Splunk's codes 0-25 (table in sinks/hec.c) */
    {true, 401, 0, "{\"text\":\"Invalid authorization\",\"code\":3}", "X", "refused the token"},
    {true, 400, 0, "{\"text\":\"Event field is required\",\"code\":12,\"invalid-event-number\":1}",
     "OXR", "code 12"},
    {true, 503, 0,
     "{\"text\":\"HEC is unhealthy, queues are full, ack service unavailable\",\"code\":20}", "RR",
     "code 20"},
    {true, 200, 0, "{\"text\":\"HEC ACK is approaching its capacity limit\",\"code\":25}", "R",
     "code 25"},
    {true, 400, 0, "{\"text\":\"Data channel is missing\",\"code\":10}", "RR", "set ack: true"},
    {true, 400, 0, "{\"text\":\"Invalid data channel\",\"code\":11}", "R", "code 11"},
    {true, 400, 0, "{\"text\":\"ACK is disabled\",\"code\":14}", "R", "set ack: false"},
    {true, 400, 0, "{\"text\":\"Invalid token\",\"code\":21}", "X", "refused the token"},
    {true, 400, 0, "{\"text\":\"Token disabled\",\"code\":22}", "XX", "refused the token"},
    {true, 400, 0, "{\"text\":\"Query string authorization is not enabled\",\"code\":16}", "X",
     "refused the token"},
    {true, 400, 0,
     "{\"text\":\"Error in handling indexed fields\",\"code\":15,\"invalid-event-number\":2}",
     "OOXR", "code 15"},
    {true, 400, 0, "{\"text\":\"Event field cannot be blank\",\"code\":13}", "XX", "code 13"},
    {true, 503, 0, "{\"text\":\"HEC is unhealthy, queues are full\",\"code\":18}", "RR", "code 18"},
    {true, 503, 0, "{\"text\":\"HEC is unhealthy, ack service unavailable\",\"code\":19}", "R",
     "code 19"},
    {true, 503, 0, "{\"text\":\"Server is shutting down\",\"code\":23}", "R", "code 23"},
    {true, 200, 0, "{\"text\":\"HEC queue is approaching its capacity limit\",\"code\":24}", "RR",
     "code 24"},
    {true, 200, 0, "{\"text\":\"HEC is healthy\",\"code\":17}", "O", NULL},
    /* 503 / code 9 with invalid-event-number k: the k-1 before the k-th were processed */
    {true, 503, 0, "{\"text\":\"Server is busy\",\"code\":9,\"invalid-event-number\":3}", "OORRR",
     "the first 2 of 5 events were processed"},
    {true, 503, 0, "{\"text\":\"Server is busy\",\"code\":9,\"invalid-event-number\":0}", "RR",
     "code 9"},
    {true, 503, 0, "{\"text\":\"Server is busy\",\"code\":9,\"invalid-event-number\":9}", "RR",
     "code 9"},
};

START_TEST(classify_table)
{
    const cls_case *c = &cls_cases[_i];
    size_t n = strlen(c->expect);
    sf_deliv_status st[8];
    char reason[320];
    size_t bad = sf_webhook_classify(c->hec, c->status, c->err, c->body,
                                     c->body ? strlen(c->body) : 0, n, st, reason, sizeof reason);
    size_t want_bad = 0;
    for (size_t i = 0; i < n; i++) {
        sf_deliv_status want = c->expect[i] == 'O'   ? SF_DELIV_OK
                               : c->expect[i] == 'R' ? SF_DELIV_RETRY
                                                     : SF_DELIV_REJECT;
        want_bad += want != SF_DELIV_OK;
        ck_assert_msg(st[i] == want, "case %d record %zu: got %d want %d", _i, i, st[i], want);
    }
    ck_assert_uint_eq(bad, want_bad);
    if (c->reason_has)
        ck_assert_msg(strstr(reason, c->reason_has), "case %d: reason '%s' lacks '%s'", _i, reason,
                      c->reason_has);
}
END_TEST

/* with indexer acknowledgement only an ackId proves records were taken */
START_TEST(classify_hec_ack)
{
    sf_deliv_status st[4];
    char reason[320];
    sf_hec_answer a;
    const char *ok = "{\"text\":\"Success\",\"code\":0,\"ackId\":42}";
    ck_assert_uint_eq(
        sf_hec_classify(200, 0, ok, strlen(ok), 2, st, reason, sizeof reason, true, &a), 0);
    ck_assert_int_eq(a.ack_id, 42);
    ck_assert_int_eq(a.code, 0);
    const char *busy = "{\"text\":\"Server is busy\",\"code\":9,\"invalid-event-number\":3}";
    ck_assert_uint_eq(
        sf_hec_classify(503, 0, busy, strlen(busy), 4, st, reason, sizeof reason, true, &a), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(st[i], SF_DELIV_RETRY);
    const char *busy_id =
        "{\"text\":\"Server is busy\",\"code\":9,\"invalid-event-number\":3,\"ackId\":7}";
    ck_assert_uint_eq(
        sf_hec_classify(503, 0, busy_id, strlen(busy_id), 4, st, reason, sizeof reason, true, &a),
        2);
    ck_assert_int_eq(st[1], SF_DELIV_OK);
    ck_assert_int_eq(st[2], SF_DELIV_RETRY);
    ck_assert_int_eq(a.ack_id, 7);
}
END_TEST

/* acks that arrive out of order settle in the order the records were reported */
START_TEST(ack_fifo_order)
{
    sf_hec_fifo f = {0};
    sf_hec_ent *e1 = sf_hec_fifo_push(&f), *e2 = sf_hec_fifo_push(&f);
    sf_hec_ent *e3 = sf_hec_fifo_push(&f), *e4 = sf_hec_fifo_push(&f);
    sf_buf b = {0};
    sf_buf_puts(&b, "body-of-e2");
    /* answers out of order: e2 first, e4 refused (not reported OK: leaves the FIFO) */
    sf_hec_fifo_answered(&f, e2, 5, 11, 1000, &b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(f.bytes, 10);
    sf_hec_fifo_answered(&f, e4, 0, -1, 1000, NULL);
    ck_assert_uint_eq(f.count, 3);
    sf_hec_fifo_answered(&f, e3, 2, 12, 1000, NULL);
    ck_assert(sf_hec_fifo_ack(&f, 11));
    ck_assert(sf_hec_fifo_ack(&f, 12));
    ck_assert(!sf_hec_fifo_ack(&f, 12)); /* once */
    ck_assert_uint_eq(f.bytes, 0);
    ck_assert_uint_eq(sf_hec_fifo_settle(&f), 0); /* e1 still in flight holds them */
    sf_hec_fifo_answered(&f, e1, 3, 10, 1500, NULL);
    ck_assert_uint_eq(sf_hec_fifo_settle(&f), 0);
    /* not acknowledged within the timeout: to be re-sent */
    ck_assert_uint_eq(sf_hec_fifo_expire(&f, 2000, 1000), 0);
    ck_assert_uint_eq(sf_hec_fifo_expire(&f, 2500, 1000), 1);
    ck_assert_int_eq(e1->state, SF_HEC_RESEND);
    e1->state = SF_HEC_WAITING;
    const char *acks = "{\"acks\":{\"10\":true,\"99\":true,\"x\":true,\"13\":false}}";
    ck_assert_int_eq(sf_hec_parse_acks(&f, acks, strlen(acks)), 1);
    ck_assert_uint_eq(sf_hec_fifo_settle(&f), 10);
    ck_assert_uint_eq(f.count, 0);
    const char *disabled = "{\"text\":\"ACK is disabled\",\"code\":14}";
    ck_assert_int_eq(sf_hec_parse_acks(&f, disabled, strlen(disabled)), -1);
    /* accepted without an ackId (a token without acknowledgement): settles at once */
    sf_hec_ent *e5 = sf_hec_fifo_push(&f);
    sf_hec_fifo_answered(&f, e5, 4, -1, 3000, NULL);
    ck_assert_uint_eq(sf_hec_fifo_settle(&f), 4);
    sf_hec_fifo_free(&f);
}
END_TEST

START_TEST(ack_url)
{
    static const char *in[] = {"https://splunk:8088/services/collector/event",
                               "https://splunk:8088/services/collector",
                               "http://h:1/proxy/services/collector/event?index=x",
                               "https://splunk:8088", "https://splunk:8088/custom/path"};
    static const char *out[] = {
        "https://splunk:8088/services/collector/ack", "https://splunk:8088/services/collector/ack",
        "http://h:1/proxy/services/collector/ack", "https://splunk:8088/services/collector/ack",
        "https://splunk:8088/services/collector/ack"};
    for (size_t i = 0; i < SF_ARRAY_LEN(in); i++) {
        char *u = sf_hec_ack_url(in[i]);
        ck_assert_str_eq(u, out[i]);
        free(u);
    }
}
END_TEST

START_TEST(sanitize)
{
    char out[16];
    sf_http_sanitize("  a\r\n\tb  c ", 11, out, sizeof out);
    ck_assert_str_eq(out, "a b c");
    sf_http_sanitize("0123456789abcdefghij", 20, out, sizeof out);
    ck_assert_str_eq(out, "0123456789ab...");
    sf_http_sanitize(NULL, 0, out, sizeof out);
    ck_assert_str_eq(out, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("webhook");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hmac_rfc4231);
    tcase_add_test(tc, base64_vectors);
    tcase_add_test(tc, json_string_escape);
    tcase_add_test(tc, body_json_ndjson);
    tcase_add_test(tc, body_hec);
    tcase_add_loop_test(tc, classify_table, 0, (int)SF_ARRAY_LEN(cls_cases));
    tcase_add_test(tc, sanitize);
    TCase *ack = tcase_create("hec_ack");
    tcase_add_test(ack, classify_hec_ack);
    tcase_add_test(ack, ack_fifo_order);
    tcase_add_test(ack, ack_url);
    suite_add_tcase(s, ack);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
