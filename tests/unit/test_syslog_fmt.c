#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/syslog_fmt.h"
#include "core/util.h"

/* 2023-11-01T17:15:04.635115435Z */
#define TS INT64_C(1698858904635115435)

static sf_syslog_opts opts5424(void)
{
    return (sf_syslog_opts){.rfc = SF_SYSLOG_RFC5424,
                            .facility = 16,
                            .hostname = "host1",
                            .app_name = "sysdig-forwarder",
                            .procid = "42",
                            .msgid = "sysdig-event",
                            .sd_id = "sysdig@32473"};
}

START_TEST(test_pri_and_severity)
{
    ck_assert_int_eq(sf_syslog_pri(16, 2), 130);
    ck_assert_int_eq(sf_syslog_pri(0, 0), 0);
    ck_assert_int_eq(sf_syslog_pri(23, 7), 191);
    int want[] = {2, 2, 3, 3, 4, 4, 5, 6};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(sf_syslog_severity(i), want[i]);
    ck_assert_int_eq(sf_syslog_severity(-1), 5);
    ck_assert_int_eq(sf_syslog_severity(99), 5);
}
END_TEST

START_TEST(test_facility)
{
    ck_assert_int_eq(sf_syslog_parse_facility("local0"), 16);
    ck_assert_int_eq(sf_syslog_parse_facility("local7"), 23);
    ck_assert_int_eq(sf_syslog_parse_facility("kern"), 0);
    ck_assert_int_eq(sf_syslog_parse_facility("authpriv"), 10);
    ck_assert_int_eq(sf_syslog_parse_facility("13"), 13);
    ck_assert_int_eq(sf_syslog_parse_facility("24"), -EINVAL);
    ck_assert_int_eq(sf_syslog_parse_facility("-1"), -EINVAL);
    ck_assert_int_eq(sf_syslog_parse_facility("local8"), -EINVAL);
    ck_assert_int_eq(sf_syslog_parse_facility(""), -EINVAL);
    ck_assert_int_eq(sf_syslog_parse_facility(NULL), -EINVAL);
}
END_TEST

START_TEST(test_address)
{
    char host[64], err[128];
    int t = -1, port = 0;
    ck_assert_int_eq(sf_syslog_parse_address("udp://logs.example.com:514", &t, host, sizeof host,
                                             &port, err, sizeof err),
                     0);
    ck_assert_int_eq(t, SF_SYSLOG_UDP);
    ck_assert_str_eq(host, "logs.example.com");
    ck_assert_int_eq(port, 514);
    ck_assert_int_eq(
        sf_syslog_parse_address("tls://[::1]:6514", &t, host, sizeof host, &port, err, sizeof err),
        0);
    ck_assert_int_eq(t, SF_SYSLOG_TLS);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 6514);
    ck_assert_int_eq(sf_syslog_parse_address("tcp://10.0.0.1:601", &t, host, sizeof host, &port,
                                             err, sizeof err),
                     0);
    ck_assert_int_eq(t, SF_SYSLOG_TCP);
    const char *bad[] = {"",
                         "http://h:514",
                         "tcp://h",
                         "tcp://h:",
                         "tcp://:514",
                         "tcp://h:0",
                         "tcp://h:65536",
                         "tcp://h:51a",
                         "tcp://::1:514",
                         "tcp://[::1]",
                         "tcp://[::1:514",
                         "tcp://h h:514",
                         "tcp://h/x:514"};
    for (size_t i = 0; i < SF_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        ck_assert_msg(sf_syslog_parse_address(bad[i], &t, host, sizeof host, &port, err,
                                              sizeof err) == -EINVAL,
                      "accepted %s", bad[i]);
        ck_assert(err[0]);
    }
    char tiny[4];
    ck_assert_int_eq(
        sf_syslog_parse_address("tcp://longhost:1", &t, tiny, sizeof tiny, &port, err, sizeof err),
        -EINVAL);
}
END_TEST

START_TEST(test_fields)
{
    sf_buf b = {0};
    ck_assert_int_eq(sf_syslog_put_field(&b, NULL, 10), 0);
    ck_assert_int_eq(sf_syslog_put_field(&b, "", 10), 0);
    ck_assert_int_eq(sf_syslog_put_field(&b, "a b\tc\xc3\xa9", 10), 0);
    ck_assert_int_eq(sf_syslog_put_field(&b, "abcdefghij-too-long", 10), 0);
    ck_assert_str_eq(b.data, "--a_b_c__abcdefghij");
    sf_buf_free(&b);
    ck_assert(sf_syslog_valid_sdname("sysdig@32473"));
    ck_assert(!sf_syslog_valid_sdname(""));
    ck_assert(!sf_syslog_valid_sdname("a b"));
    ck_assert(!sf_syslog_valid_sdname("a=b"));
    ck_assert(!sf_syslog_valid_sdname("a]"));
    ck_assert(!sf_syslog_valid_sdname("a\""));
    ck_assert(!sf_syslog_valid_sdname("123456789012345678901234567890123"));
}
END_TEST

START_TEST(test_sd_escape)
{
    sf_buf b = {0};
    ck_assert_int_eq(sf_syslog_put_sdvalue(&b, "a\"b\\c]d[e=f"), 0);
    ck_assert_str_eq(b.data, "a\\\"b\\\\c\\]d[e=f");
    sf_buf_free(&b);
}
END_TEST

START_TEST(test_5424)
{
    sf_syslog_opts o = opts5424();
    sf_syslog_fields f = {
        .ts_ns = TS, .severity = 3, .id = "abc", .policy = "Pol \"x\" ]", .sysdig_severity = 2};
    sf_buf b = {0};
    bool tr = true;
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, "{\"id\":\"abc\"}", 12, &tr), 0);
    ck_assert(!tr);
    ck_assert_str_eq(b.data, "<131>1 2023-11-01T17:15:04.635115Z host1 sysdig-forwarder 42 "
                             "sysdig-event [sysdig@32473 id=\"abc\" policy=\"Pol \\\"x\\\" \\]\" "
                             "severity=\"2\"] {\"id\":\"abc\"}");
    /* no SD, no policy, empty fields, BOM */
    sf_buf_reset(&b);
    o.sd_id = "";
    o.hostname = "";
    o.procid = NULL;
    o.bom = true;
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, "m", 1, &tr), 0);
    ck_assert_str_eq(b.data,
                     "<131>1 2023-11-01T17:15:04.635115Z - sysdig-forwarder - sysdig-event - "
                     "\xEF\xBB\xBFm");
    /* unknown policy / severity are omitted */
    sf_buf_reset(&b);
    o = opts5424();
    f.policy = NULL;
    f.sysdig_severity = -1;
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, "m", 1, &tr), 0);
    ck_assert_ptr_nonnull(strstr(b.data, " [sysdig@32473 id=\"abc\"] m"));
    /* fields are length-limited */
    sf_buf_reset(&b);
    o.app_name = "0123456789012345678901234567890123456789012345678901234567890";
    o.msgid = "0123456789012345678901234567890123456789";
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, "m", 1, &tr), 0);
    ck_assert_ptr_nonnull(strstr(b.data, " 012345678901234567890123456789012345678901234567 42 "
                                         "01234567890123456789012345678901 "));
    sf_buf_free(&b);
}
END_TEST

START_TEST(test_3164)
{
    sf_syslog_opts o = opts5424();
    o.rfc = SF_SYSLOG_RFC3164;
    o.app_name = "sysdig forwarder!";
    sf_syslog_fields f = {.ts_ns = TS, .severity = 4, .id = "abc", .sysdig_severity = 5};
    sf_buf b = {0};
    bool tr;
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, "{}", 2, &tr), 0);
    ck_assert_str_eq(b.data, "<132>Nov  1 17:15:04 host1 sysdig_forwarder_: {}");
    char ts[32];
    sf_syslog_ts3164(INT64_C(1702684800) * SF_NS_PER_SEC, ts, sizeof ts); /* 2023-12-16 */
    ck_assert_str_eq(ts, "Dec 16 00:00:00");
    /* TAG at most 32 characters */
    sf_buf_reset(&b);
    o.app_name = "abcdefghijklmnopqrstuvwxyz0123456789";
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, "x", 1, &tr), 0);
    ck_assert_str_eq(b.data, "<132>Nov  1 17:15:04 host1 abcdefghijklmnopqrstuvwxyz012345: x");
    sf_buf_free(&b);
}
END_TEST

START_TEST(test_truncate_reject)
{
    sf_syslog_opts o = opts5424();
    o.rfc = SF_SYSLOG_RFC3164;
    o.app_name = "t";
    sf_syslog_fields f = {.ts_ns = TS, .severity = 6, .id = "x", .sysdig_severity = -1};
    /* header "<134>Nov  1 17:15:04 host1 t: " is 30 bytes */
    char msg[2000];
    memset(msg, 'a', sizeof msg);
    o.max_size = SF_SYSLOG_3164_MAX;
    sf_buf b = {0};
    bool tr = false;
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, msg, sizeof msg, &tr), 0);
    ck_assert(tr);
    ck_assert_uint_eq(b.len, 1024);
    /* exactly at the limit: untouched */
    sf_buf_reset(&b);
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, msg, 1024 - 30, &tr), 0);
    ck_assert(!tr);
    ck_assert_uint_eq(b.len, 1024);
    /* reject leaves the buffer as it was */
    sf_buf_reset(&b);
    sf_buf_puts(&b, "keep");
    o.reject_oversize = true;
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, msg, 1024 - 29, &tr), -EMSGSIZE);
    ck_assert_str_eq(b.data, "keep");
    /* a header alone larger than the limit is refused even when truncating */
    o.reject_oversize = false;
    o.max_size = 10;
    ck_assert_int_eq(sf_syslog_format(&b, &o, &f, msg, 1, &tr), -EMSGSIZE);
    ck_assert_str_eq(b.data, "keep");
    /* truncation never splits a UTF-8 character */
    const char *u = "ab\xc3\xa9\xe2\x82\xac"; /* a b é € : 2 + 2 + 3 bytes */
    ck_assert_uint_eq(sf_syslog_utf8_cut(u, 7, 7), 7);
    ck_assert_uint_eq(sf_syslog_utf8_cut(u, 7, 6), 4);
    ck_assert_uint_eq(sf_syslog_utf8_cut(u, 7, 5), 4);
    ck_assert_uint_eq(sf_syslog_utf8_cut(u, 7, 4), 4);
    ck_assert_uint_eq(sf_syslog_utf8_cut(u, 7, 3), 2);
    ck_assert_uint_eq(sf_syslog_utf8_cut(u, 7, 2), 2);
    ck_assert_uint_eq(sf_syslog_utf8_cut(u, 7, 0), 0);
    sf_buf_free(&b);
}
END_TEST

START_TEST(test_framing)
{
    sf_buf b = {0};
    ck_assert_int_eq(sf_syslog_frame(&b, SF_SYSLOG_OCTET_COUNTING, "<13>1 - - - - - - hi", 20), 0);
    ck_assert_str_eq(b.data, "20 <13>1 - - - - - - hi");
    sf_buf_reset(&b);
    /* octet counting keeps embedded newlines; the count is in bytes */
    ck_assert_int_eq(sf_syslog_frame(&b, SF_SYSLOG_OCTET_COUNTING, "a\nb\xc3\xa9", 5), 0);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_int_eq(memcmp(b.data, "5 a\nb\xc3\xa9", 7), 0);
    sf_buf_reset(&b);
    ck_assert_int_eq(sf_syslog_frame(&b, SF_SYSLOG_LF, "a\nb", 3), 0);
    ck_assert_str_eq(b.data, "a b\n");
    sf_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("syslog_fmt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pri_and_severity);
    tcase_add_test(tc, test_facility);
    tcase_add_test(tc, test_address);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_sd_escape);
    tcase_add_test(tc, test_5424);
    tcase_add_test(tc, test_3164);
    tcase_add_test(tc, test_truncate_reject);
    tcase_add_test(tc, test_framing);
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
