#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/event.h"
#include "core/hmac.h"
#include "net/http.h"
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
    e2.json = NULL;
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

START_TEST(sanitize)
{
    char out[16];
    sf_webhook_sanitize("  a\r\n\tb  c ", 11, out, sizeof out);
    ck_assert_str_eq(out, "a b c");
    sf_webhook_sanitize("0123456789abcdefghij", 20, out, sizeof out);
    ck_assert_str_eq(out, "0123456789ab...");
    sf_webhook_sanitize(NULL, 0, out, sizeof out);
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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
