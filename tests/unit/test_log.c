/* The log writer itself: what reaches stderr, in text and JSON, with secrets redacted. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define SECRET "tok-7f3a9c2e51"

/* Runs fn with stderr redirected into a pipe; returns what was written (static buffer). */
static const char *capture(void (*fn)(void))
{
    static char out[8192];
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(p[1], STDERR_FILENO), 0);
    close(p[1]);
    fn();
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    ssize_t n = read(p[0], out, sizeof out - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void log_secret_lines(void)
{
    SF_ERROR("source", "GET /api?token=%s failed", SECRET);
    SF_WARN("sink", "auth \"Bearer %s\"\n(retry)", SECRET);
}

static void setup(void)
{
    sf_log_clear_secrets();
    sf_log_set_level(SF_LOG_INFO);
    ck_assert_int_eq(sf_log_add_secret(SECRET), 0);
}

static void teardown(void)
{
    sf_log_clear_secrets();
    sf_log_set_format(SF_LOG_TEXT);
}

START_TEST(test_text_redacts)
{
    sf_log_set_format(SF_LOG_TEXT);
    const char *out = capture(log_secret_lines);
    ck_assert_msg(strstr(out, SECRET) == NULL, "secret in the log: %s", out);
    ck_assert_msg(strstr(out, "error [source] GET /api?token=*** failed\n"), "%s", out);
    ck_assert_msg(strstr(out, "warn  [sink] auth \"Bearer ***\"\n(retry)\n"), "%s", out);
}
END_TEST

START_TEST(test_json_redacts_and_escapes)
{
    sf_log_set_format(SF_LOG_JSON);
    const char *out = capture(log_secret_lines);
    ck_assert_msg(strstr(out, SECRET) == NULL, "secret in the log: %s", out);
    ck_assert_msg(strstr(out, "\"level\":\"error\",\"component\":\"source\","
                              "\"msg\":\"GET /api?token=*** failed\"}\n"),
                  "%s", out);
    ck_assert_msg(strstr(out, "\"msg\":\"auth \\\"Bearer ***\\\"\\n(retry)\"}\n"), "%s", out);
    /* one JSON object per line */
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, 2);
}
END_TEST

START_TEST(test_secret_prefix_and_overlap)
{
    /* the longest registered secret wins; a secret's prefix alone is not redacted */
    ck_assert_int_eq(sf_log_add_secret(SECRET "-longer"), 0);
    sf_buf b = {0};
    ck_assert_int_eq(sf_log_redact("a " SECRET "-longer b " SECRET " c tok-7f3a", &b), 0);
    ck_assert_str_eq(b.data, "a *** b *** c tok-7f3a");
    sf_buf_free(&b);
}
END_TEST

static void log_short_secret(void)
{
    SF_WARN("sink", "login with password pw3 failed");
}

/* A secret is redacted whatever its length (a 3-character test password used to leak). */
START_TEST(test_short_secret_redacted)
{
    ck_assert_int_eq(sf_log_add_secret("pw3"), 0);
    ck_assert_int_eq(sf_log_add_secret(""), 0); /* ignored, not an error */
    sf_log_set_format(SF_LOG_TEXT);
    const char *out = capture(log_short_secret);
    ck_assert_msg(strstr(out, "pw3") == NULL, "short secret in the log: %s", out);
    ck_assert_msg(strstr(out, "login with password *** failed"), "%s", out);
}
END_TEST

static void log_below_level(void)
{
    SF_DEBUG("x", "hidden %s", SECRET);
    SF_INFO("x", "shown");
}

START_TEST(test_level_filter)
{
    sf_log_set_format(SF_LOG_TEXT);
    const char *out = capture(log_below_level);
    ck_assert_ptr_null(strstr(out, "hidden"));
    ck_assert_ptr_nonnull(strstr(out, "[x] shown\n"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_text_redacts);
    tcase_add_test(tc, test_json_redacts_and_escapes);
    tcase_add_test(tc, test_secret_prefix_and_overlap);
    tcase_add_test(tc, test_level_filter);
    tcase_add_test(tc, test_short_secret_redacted);
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
