#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/fsutil.h"

#include "core/util.h"

/* ---- durations ---- */

START_TEST(test_duration_units)
{
    int64_t ms = -1;
    ck_assert_int_eq(sf_parse_duration_ms("500ms", &ms), 0);
    ck_assert_int_eq(ms, 500);
    ck_assert_int_eq(sf_parse_duration_ms("10s", &ms), 0);
    ck_assert_int_eq(ms, 10000);
    ck_assert_int_eq(sf_parse_duration_ms("5m", &ms), 0);
    ck_assert_int_eq(ms, 300000);
    ck_assert_int_eq(sf_parse_duration_ms("1h", &ms), 0);
    ck_assert_int_eq(ms, 3600000);
    ck_assert_int_eq(sf_parse_duration_ms("7d", &ms), 0);
    ck_assert_int_eq(ms, INT64_C(604800000));
    ck_assert_int_eq(sf_parse_duration_ms("0", &ms), 0);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(sf_parse_duration_ms("0s", &ms), 0);
    ck_assert_int_eq(ms, 0);
}
END_TEST

START_TEST(test_duration_errors)
{
    int64_t ms = 42;
    ck_assert_int_eq(sf_parse_duration_ms("", &ms), -EINVAL);
    ck_assert_int_eq(sf_parse_duration_ms(NULL, &ms), -EINVAL);
    ck_assert_int_eq(sf_parse_duration_ms("10", &ms), -EINVAL); /* unit required unless 0 */
    ck_assert_int_eq(sf_parse_duration_ms("s", &ms), -EINVAL);
    ck_assert_int_eq(sf_parse_duration_ms("10x", &ms), -EINVAL);
    ck_assert_int_eq(sf_parse_duration_ms("10 s", &ms), -EINVAL);
    ck_assert_int_eq(sf_parse_duration_ms("-5s", &ms), -EINVAL);
    ck_assert_int_eq(sf_parse_duration_ms("1.5s", &ms), -EINVAL);
    ck_assert_int_eq(sf_parse_duration_ms("10sec", &ms), -EINVAL);
    ck_assert_int_eq(ms, 42); /* untouched on error */
}
END_TEST

START_TEST(test_duration_overflow)
{
    int64_t ms = 42;
    /* 2^63 / 86400000 ~ 1.07e11 days */
    ck_assert_int_eq(sf_parse_duration_ms("200000000000d", &ms), -ERANGE);
    ck_assert_int_eq(sf_parse_duration_ms("99999999999999999999999ms", &ms), -ERANGE);
    ck_assert_int_eq(sf_parse_duration_ms("9223372036854775808ms", &ms), -ERANGE);
    ck_assert_int_eq(ms, 42);
    ck_assert_int_eq(sf_parse_duration_ms("9223372036854775807ms", &ms), 0);
    ck_assert(ms == INT64_MAX);
}
END_TEST

START_TEST(test_duration_format)
{
    char buf[32];
    sf_format_duration(3600000, buf, sizeof buf);
    ck_assert_str_eq(buf, "1h");
    sf_format_duration(90000, buf, sizeof buf);
    ck_assert_str_eq(buf, "90s");
    sf_format_duration(250, buf, sizeof buf);
    ck_assert_str_eq(buf, "250ms");
    sf_format_duration(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0ms");
    sf_format_duration(86400000 * INT64_C(2), buf, sizeof buf);
    ck_assert_str_eq(buf, "2d");
    /* round trip */
    static const char *const in[] = {"1h", "90s", "250ms", "5m", "7d", "1001ms"};
    for (size_t i = 0; i < SF_ARRAY_LEN(in); i++) {
        int64_t a, b;
        ck_assert_int_eq(sf_parse_duration_ms(in[i], &a), 0);
        sf_format_duration(a, buf, sizeof buf);
        ck_assert_int_eq(sf_parse_duration_ms(buf, &b), 0);
        ck_assert(a == b);
    }
}
END_TEST

/* ---- sizes ---- */

START_TEST(test_sizes)
{
    uint64_t v = 0;
    ck_assert_int_eq(sf_parse_size("512", &v), 0);
    ck_assert_uint_eq(v, 512);
    ck_assert_int_eq(sf_parse_size("1024B", &v), 0);
    ck_assert_uint_eq(v, 1024);
    ck_assert_int_eq(sf_parse_size("64KiB", &v), 0);
    ck_assert_uint_eq(v, 65536);
    ck_assert_int_eq(sf_parse_size("100MiB", &v), 0);
    ck_assert_uint_eq(v, UINT64_C(104857600));
    ck_assert_int_eq(sf_parse_size("1GiB", &v), 0);
    ck_assert_uint_eq(v, UINT64_C(1073741824));
    ck_assert_int_eq(sf_parse_size("10KB", &v), 0);
    ck_assert_uint_eq(v, 10000);
    ck_assert_int_eq(sf_parse_size("5MB", &v), 0);
    ck_assert_uint_eq(v, 5000000);
    ck_assert_int_eq(sf_parse_size("1GB", &v), 0);
    ck_assert_uint_eq(v, 1000000000);
    ck_assert_int_eq(sf_parse_size("0", &v), 0);
    ck_assert_uint_eq(v, 0);
}
END_TEST

START_TEST(test_size_errors)
{
    uint64_t v = 7;
    ck_assert_int_eq(sf_parse_size("", &v), -EINVAL);
    ck_assert_int_eq(sf_parse_size("KiB", &v), -EINVAL);
    ck_assert_int_eq(sf_parse_size("10kib", &v), -EINVAL);
    ck_assert_int_eq(sf_parse_size("10 MiB", &v), -EINVAL);
    ck_assert_int_eq(sf_parse_size("-1", &v), -EINVAL);
    ck_assert_int_eq(sf_parse_size("1.5GiB", &v), -EINVAL);
    ck_assert_int_eq(sf_parse_size("99999999999999999999", &v), -ERANGE);
    ck_assert_int_eq(sf_parse_size("17179869184GiB", &v), -ERANGE); /* 2^34 * 2^30 */
    ck_assert_uint_eq(v, 7);
}
END_TEST

/* ---- integers ---- */

START_TEST(test_int64)
{
    int64_t v;
    ck_assert_int_eq(sf_parse_int64("9223372036854775807", 19, &v), 0);
    ck_assert(v == INT64_MAX);
    ck_assert_int_eq(sf_parse_int64("-9223372036854775808", 20, &v), 0);
    ck_assert(v == INT64_MIN);
    ck_assert_int_eq(sf_parse_int64("9223372036854775808", 19, &v), -ERANGE);
    ck_assert_int_eq(sf_parse_int64("-9223372036854775809", 20, &v), -ERANGE);
    ck_assert_int_eq(sf_parse_int64("", 0, &v), -EINVAL);
    ck_assert_int_eq(sf_parse_int64("-", 1, &v), -EINVAL);
    ck_assert_int_eq(sf_parse_int64("12a", 3, &v), -EINVAL);
    ck_assert_int_eq(sf_parse_int64("+1", 2, &v), -EINVAL);
    /* length-bounded: "123" of "12345" */
    ck_assert_int_eq(sf_parse_int64("12345", 3, &v), 0);
    ck_assert_int_eq(v, 123);
}
END_TEST

/* ---- RFC 3339 ---- */

static int64_t rfc(const char *s)
{
    int64_t ns = 0;
    ck_assert_msg(sf_parse_rfc3339_ns(s, strlen(s), &ns) == 0, "parse failed: %s", s);
    return ns;
}

START_TEST(test_rfc3339_exact)
{
    ck_assert(rfc("2023-11-22T11:16:28.101680299Z") == INT64_C(1700651788101680299));
    ck_assert(rfc("1970-01-01T00:00:00Z") == 0);
    ck_assert(rfc("1970-01-01T00:00:00.000000001Z") == 1);
    ck_assert(rfc("1969-12-31T23:59:59.999999999Z") == -1);
    ck_assert(rfc("2023-11-22T11:16:28Z") == INT64_C(1700651788000000000));
    /* 0..9 fraction digits */
    static const struct {
        const char *s;
        int64_t frac;
    } fr[] = {
        {"2023-11-22T11:16:28Z", 0},
        {"2023-11-22T11:16:28.1Z", 100000000},
        {"2023-11-22T11:16:28.10Z", 100000000},
        {"2023-11-22T11:16:28.101Z", 101000000},
        {"2023-11-22T11:16:28.1016Z", 101600000},
        {"2023-11-22T11:16:28.10168Z", 101680000},
        {"2023-11-22T11:16:28.101680Z", 101680000},
        {"2023-11-22T11:16:28.1016802Z", 101680200},
        {"2023-11-22T11:16:28.10168029Z", 101680290},
        {"2023-11-22T11:16:28.101680299Z", 101680299},
    };
    for (size_t i = 0; i < SF_ARRAY_LEN(fr); i++)
        ck_assert_msg(rfc(fr[i].s) == INT64_C(1700651788000000000) + fr[i].frac, "%s", fr[i].s);
    /* lower-case t/z */
    ck_assert(rfc("2023-11-22t11:16:28z") == INT64_C(1700651788000000000));
}
END_TEST

START_TEST(test_rfc3339_offsets)
{
    int64_t z = rfc("2023-11-22T11:16:28.5Z");
    ck_assert(rfc("2023-11-22T13:16:28.5+02:00") == z);
    ck_assert(rfc("2023-11-22T05:46:28.5-05:30") == z);
    ck_assert(rfc("2023-11-22T11:16:28.5+00:00") == z);
    ck_assert(rfc("2023-11-22T11:16:28.5-00:00") == z);
    /* across midnight / year */
    ck_assert(rfc("2024-01-01T01:00:00+02:00") == rfc("2023-12-31T23:00:00Z"));
    /* leap day */
    ck_assert(rfc("2024-02-29T00:00:00Z") == INT64_C(1709164800) * SF_NS_PER_SEC);
}
END_TEST

START_TEST(test_rfc3339_invalid)
{
    static const char *const bad[] = {
        "2023-02-30T00:00:00Z",  /* Feb 30 */
        "2023-02-29T00:00:00Z",  /* not a leap year */
        "1900-02-29T00:00:00Z",  /* century, not leap */
        "2023-04-31T00:00:00Z",  /* April has 30 days */
        "2023-13-01T00:00:00Z",  /* month 13 */
        "2023-00-10T00:00:00Z",  /* month 0 */
        "2023-01-00T00:00:00Z",  /* day 0 */
        "2023-01-01T24:00:00Z",  /* hour 24 */
        "2023-01-01T00:60:00Z",  /* minute 60 */
        "2023-01-01T00:00:00",   /* no zone */
        "2023-01-01T00:00:00.Z", /* empty fraction */
        "2023-01-01T00:00:00+0200",
        "2023-01-01T00:00:00+24:00",
        "2023-01-01T00:00:00Zjunk",
        "2023-01-01",
        "",
        "not a date",
        "2023/01/01T00:00:00Z",
    };
    for (size_t i = 0; i < SF_ARRAY_LEN(bad); i++) {
        int64_t ns = 77;
        ck_assert_msg(sf_parse_rfc3339_ns(bad[i], strlen(bad[i]), &ns) != 0, "accepted %s", bad[i]);
        ck_assert(ns == 77);
    }
    int64_t ns;
    ck_assert_int_eq(sf_parse_rfc3339_ns("2023-02-28T00:00:00Z", 20, &ns), 0);
    ck_assert_int_eq(sf_parse_rfc3339_ns("2000-02-29T00:00:00Z", 20, &ns), 0);
    /* out of int64 ns range */
    ck_assert_int_eq(sf_parse_rfc3339_ns("2300-01-01T00:00:00Z", 20, &ns), -ERANGE);
    ck_assert_int_eq(sf_parse_rfc3339_ns("1600-01-01T00:00:00Z", 20, &ns), -ERANGE);
}
END_TEST

START_TEST(test_rfc3339_format)
{
    char buf[48];
    sf_format_rfc3339(INT64_C(1700651788101680299), 9, buf, sizeof buf);
    ck_assert_str_eq(buf, "2023-11-22T11:16:28.101680299Z");
    sf_format_rfc3339(INT64_C(1700651788101680299), 6, buf, sizeof buf);
    ck_assert_str_eq(buf, "2023-11-22T11:16:28.101680Z");
    sf_format_rfc3339(INT64_C(1700651788101680299), 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "2023-11-22T11:16:28.101Z");
    sf_format_rfc3339(INT64_C(1700651788101680299), 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "2023-11-22T11:16:28Z");
    sf_format_rfc3339(-1, 9, buf, sizeof buf);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999999999Z");
    sf_format_rfc3339(0, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    /* a short buffer: truncated, as snprintf truncates */
    sf_format_rfc3339(INT64_C(1700651788101680299), 9, buf, 25);
    ck_assert_str_eq(buf, "2023-11-22T11:16:28.1016");
    sf_format_rfc3339(INT64_C(1700651788101680299), 9, buf, 20);
    ck_assert_str_eq(buf, "2023-11-22T11:16:28");
    /* round trips at 9 digits are exact */
    static const int64_t vals[] = {0,
                                   1,
                                   -1,
                                   INT64_C(1700651788101680299),
                                   INT64_C(951782400000000001), /* 2000-02-29 */
                                   INT64_C(4102444799999999999),
                                   INT64_C(-2208988800000000000),
                                   INT64_C(9223372035999999999)};
    for (size_t i = 0; i < SF_ARRAY_LEN(vals); i++) {
        int64_t back = 0;
        sf_format_rfc3339(vals[i], 9, buf, sizeof buf);
        ck_assert_int_eq(sf_parse_rfc3339_ns(buf, strlen(buf), &back), 0);
        ck_assert_msg(back == vals[i], "%s", buf);
    }
}
END_TEST

/* ---- time arguments ---- */

START_TEST(test_time_arg)
{
    const int64_t now = INT64_C(1700651788101680299);
    int64_t v;
    ck_assert_int_eq(sf_parse_time_arg("now", now, &v), 0);
    ck_assert(v == now);
    ck_assert_int_eq(sf_parse_time_arg("-2h", now, &v), 0);
    ck_assert(v == now - INT64_C(7200) * SF_NS_PER_SEC);
    ck_assert_int_eq(sf_parse_time_arg("-30m", now, &v), 0);
    ck_assert(v == now - INT64_C(1800) * SF_NS_PER_SEC);
    ck_assert_int_eq(sf_parse_time_arg("-500ms", now, &v), 0);
    ck_assert(v == now - 500 * SF_NS_PER_MS);
    ck_assert_int_eq(sf_parse_time_arg("2023-11-22T11:16:28.101680299Z", 0, &v), 0);
    ck_assert(v == INT64_C(1700651788101680299));
    ck_assert_int_eq(sf_parse_time_arg("1700651788101680299", 0, &v), 0);
    ck_assert(v == INT64_C(1700651788101680299));
    ck_assert_int_eq(sf_parse_time_arg("-5", 0, &v), 0); /* integer ns */
    ck_assert(v == -5);
    ck_assert_int_ne(sf_parse_time_arg("", now, &v), 0);
    ck_assert_int_ne(sf_parse_time_arg(NULL, now, &v), 0);
    ck_assert_int_ne(sf_parse_time_arg("-2x", now, &v), 0);
    ck_assert_int_ne(sf_parse_time_arg("yesterday", now, &v), 0);
    ck_assert_int_ne(sf_parse_time_arg("2023-02-30T00:00:00Z", now, &v), 0);
    ck_assert_int_eq(sf_parse_time_arg("-200000000000d", now, &v), -ERANGE);
}
END_TEST

/* ---- backoff ---- */

START_TEST(test_backoff_bounds)
{
    for (unsigned attempt = 0; attempt < 80; attempt++) {
        for (int i = 0; i < 200; i++) {
            int64_t v = sf_backoff_ms(attempt, 1000, 300000);
            ck_assert_msg(v >= 1 && v <= 300000, "attempt %u: %lld", attempt, (long long)v);
            int64_t cap = attempt < 20 ? (INT64_C(1000) << attempt) : 300000;
            if (cap > 300000)
                cap = 300000;
            ck_assert_msg(v <= cap, "attempt %u: %lld > %lld", attempt, (long long)v,
                          (long long)cap);
        }
    }
    /* huge values do not overflow */
    for (int i = 0; i < 1000; i++) {
        int64_t v = sf_backoff_ms(1000, INT64_MAX / 2, INT64_MAX);
        ck_assert(v >= 1 && v <= INT64_MAX);
    }
    /* max below initial: capped at initial */
    for (int i = 0; i < 1000; i++) {
        int64_t v = sf_backoff_ms(3, 500, 100);
        ck_assert(v >= 1 && v <= 500);
    }
    /* tiny initial still at least 1 */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(sf_backoff_ms(0, 1, 1), 1);
    ck_assert_int_eq(sf_backoff_ms(5, 0, 100), 0);
}
END_TEST

START_TEST(test_backoff_spread)
{
    /* full jitter: values spread over the range, not constant */
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
        int64_t v = sf_backoff_ms(10, 1000, 300000);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    ck_assert(lo < 100000);
    ck_assert(hi > 200000);
}
END_TEST

/* ---- buffers ---- */

START_TEST(test_buf)
{
    sf_buf b = {0};
    ck_assert_int_eq(sf_buf_puts(&b, "abc"), 0);
    ck_assert_int_eq(sf_buf_appendf(&b, "-%d-%s", 42, "x"), 0);
    ck_assert_str_eq(b.data, "abc-42-x");
    ck_assert_uint_eq(b.len, 8);
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(sf_buf_appendf(&b, "%s", big), 0);
    ck_assert_uint_eq(b.len, 8 + 999);
    ck_assert_uint_eq(strlen(b.data), b.len);
    sf_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    char *s = sf_buf_steal(&b);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(b.data);
    free(s);
    s = sf_buf_steal(&b); /* a never-used buffer steals as "" */
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    free(s);
    sf_buf_free(&b);
    ck_assert(sf_streq(NULL, NULL));
    ck_assert(!sf_streq("a", NULL));
    ck_assert(sf_streq("a", "a"));
}
END_TEST

static void check_sanitize(const char *in, size_t inlen, size_t from, const char *want, int nbad)
{
    sf_buf b = {0};
    ck_assert_int_eq(sf_buf_append(&b, in, inlen), 0);
    ck_assert_int_eq(sf_utf8_sanitize(&b, from), nbad);
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert_msg(memcmp(b.data, want, b.len) == 0, "sanitize(%s)", want);
    ck_assert_int_eq(b.data[b.len], '\0');
    sf_buf_free(&b);
}

/* A bound makes appends fail with -E2BIG, and any failure is sticky: later appends do
 * nothing and fail the same way, so a renderer checks once at the end. */
START_TEST(test_buf_bound_and_sticky_failure)
{
    sf_buf b;
    sf_buf_init_max(&b, 10);
    ck_assert_int_eq(sf_buf_puts(&b, "0123456789"), 0); /* exactly the bound */
    ck_assert_int_eq(sf_buf_error(&b), 0);
    ck_assert_int_eq(sf_buf_putc(&b, 'x'), -E2BIG);
    ck_assert_int_eq(sf_buf_error(&b), -E2BIG);
    ck_assert_int_eq(sf_buf_puts(&b, ""), -E2BIG); /* sticky, even for nothing */
    ck_assert_int_eq(sf_buf_appendf(&b, "%d", 1), -E2BIG);
    ck_assert_str_eq(b.data, "0123456789"); /* what came before is kept */
    ck_assert_uint_le(b.cap, 11);           /* never grew past the bound */
    ck_assert_ptr_null(sf_buf_steal(&b));   /* a failed buffer cannot be taken */
    ck_assert_ptr_null(b.data);
    ck_assert_int_eq(sf_buf_error(&b), 0); /* ...and is empty and usable again */
    ck_assert_int_eq(sf_buf_puts(&b, "ok"), 0);
    ck_assert_int_eq(sf_buf_appendf(&b, "%s", "0123456789"), -E2BIG); /* formatted too */
    sf_buf_reset(&b);
    ck_assert_int_eq(sf_buf_error(&b), 0);
    ck_assert_int_eq(sf_buf_puts(&b, "again"), 0);
    ck_assert_str_eq(b.data, "again");
    sf_buf_free(&b);
    /* unbounded by default */
    sf_buf u = {0};
    char big[5000];
    memset(big, 'q', sizeof big);
    ck_assert_int_eq(sf_buf_append(&u, big, sizeof big), 0);
    ck_assert_uint_eq(u.len, sizeof big);
    sf_buf_free(&u);
    /* the UTF-8 repair respects the bound */
    sf_buf_init_max(&b, 4);
    ck_assert_int_eq(sf_buf_puts(&b, "a\xff\xff"
                                     "b"),
                     0);
    ck_assert_int_eq(sf_utf8_sanitize(&b, 0), -E2BIG);
    ck_assert_str_eq(b.data, "a\xff\xff"
                             "b"); /* unchanged */
    sf_buf_free(&b);
}
END_TEST

START_TEST(test_utf8_sanitize)
{
#define R "\xEF\xBF\xBD" /* U+FFFD */
    /* well-formed: 1..4 byte sequences, the extremes included, untouched */
    check_sanitize("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF", 14, 0,
                   "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF", 0);
    check_sanitize("", 0, 0, "", 0);
    /* stray bytes, a lone continuation, a truncated sequence at the end */
    check_sanitize("a\xFF\xFE"
                   "b",
                   4, 0, "a" R R "b", 2);
    check_sanitize("\x80", 1, 0, R, 1);
    check_sanitize("x\xE2\x82", 3, 0, "x" R R, 2);
    /* overlong forms, a surrogate, above U+10FFFF */
    check_sanitize("\xC0\x80", 2, 0, R R, 2);
    check_sanitize("\xE0\x80\x80", 3, 0, R R R, 3);
    check_sanitize("\xED\xA0\x80", 3, 0, R R R, 3);
    check_sanitize("\xF4\x90\x80\x80", 4, 0, R R R R, 4);
    /* a bad lead byte does not swallow the ASCII after it */
    check_sanitize("\xC3\"}", 3, 0, R "\"}", 1);
    /* only from 'from' on */
    check_sanitize("\xFF|\xFF", 3, 1, "\xFF|" R, 1);
#undef R
}
END_TEST

/* sf_buf_put_i64 prints what printf's %lld prints, the extremes included. */
START_TEST(test_buf_put_i64)
{
    const int64_t v[] = {0, 7, -1, 10, -10, 1733356800123456789, INT64_MAX, INT64_MIN, -987654321};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sf_buf b = {0};
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)v[i]);
        ck_assert_int_eq(sf_buf_put_i64(&b, v[i]), 0);
        ck_assert_str_eq(b.data, want);
        sf_buf_free(&b);
    }
}
END_TEST

/* sf_writev_all: more entries than one writev takes (IOV_MAX), empty ones among them, all
 * written in order, and the total reported. */
START_TEST(test_writev_all)
{
    enum { N = 3 * IOV_MAX + 7 };
    static struct iovec iov[N];
    static char want[N * 8];
    char *data = malloc(N * 8);
    ck_assert_ptr_nonnull(data);
    size_t total = 0;
    for (size_t i = 0; i < N; i++) {
        size_t len = i % 5; /* 0..4 bytes, some empty */
        for (size_t k = 0; k < len; k++)
            data[i * 8 + k] = (char)('a' + (i + k) % 26);
        iov[i] = (struct iovec){data + i * 8, len};
        memcpy(want + total, data + i * 8, len);
        total += len;
    }
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    size_t written = 0;
    ck_assert_int_eq(sf_writev_all(fileno(f), iov, N, &written), 0);
    ck_assert_uint_eq(written, total);
    char *got = malloc(total + 1);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(pread(fileno(f), got, total + 1, 0), (ssize_t)total);
    ck_assert(memcmp(got, want, total) == 0);
    /* a bad descriptor: the error, nothing written */
    struct iovec one = {data, 4};
    ck_assert_int_eq(sf_writev_all(-1, &one, 1, &written), -EBADF);
    ck_assert_uint_eq(written, 0);
    free(got);
    free(data);
    fclose(f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_duration_units);
    tcase_add_test(tc, test_duration_errors);
    tcase_add_test(tc, test_duration_overflow);
    tcase_add_test(tc, test_duration_format);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_size_errors);
    tcase_add_test(tc, test_int64);
    tcase_add_test(tc, test_rfc3339_exact);
    tcase_add_test(tc, test_rfc3339_offsets);
    tcase_add_test(tc, test_rfc3339_invalid);
    tcase_add_test(tc, test_rfc3339_format);
    tcase_add_test(tc, test_time_arg);
    tcase_add_test(tc, test_backoff_bounds);
    tcase_add_test(tc, test_backoff_spread);
    tcase_add_test(tc, test_buf);
    tcase_add_test(tc, test_buf_bound_and_sticky_failure);
    tcase_add_test(tc, test_utf8_sanitize);
    tcase_add_test(tc, test_writev_all);
    tcase_add_test(tc, test_buf_put_i64);
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
