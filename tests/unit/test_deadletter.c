/* Unit tests for daemon/pipeline/deadletter.c: path, mode, NDJSON content, the max_size bound
 * (whole entries while they fit, an oversized one into an empty file), room made again
 * (emptied in place, moved away with or without SIGHUP). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/deadletter.h"
#include "core/event.h"
#include "core/util.h"
#include "testutil.h"

static char tmpdir[256];

static void setup(void)
{
    sf_test_mkdtemp(tmpdir, sizeof tmpdir, "dl");
}

static void teardown(void)
{
    sf_test_rmtree(tmpdir);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

static void mkev(sf_event *ev, const char *text)
{
    char err[128];
    ck_assert_int_eq(sf_event_parse(text, strlen(text), ev, err, sizeof err), 0);
}

START_TEST(test_default_path_beside_checkpoint)
{
    sf_deadletter *d;
    ck_assert_int_eq(sf_deadletter_new(NULL, "/var/lib/sf/checkpoint.json", 4096, &d), 0);
    ck_assert_str_eq(sf_deadletter_path(d), "/var/lib/sf/dead-letters.ndjson");
    ck_assert_uint_eq(sf_deadletter_count(d), 0);
    sf_deadletter_free(d);
    ck_assert_int_eq(sf_deadletter_new("", "/a/b/c/cp", 4096, &d), 0);
    ck_assert_str_eq(sf_deadletter_path(d), "/a/b/c/dead-letters.ndjson");
    sf_deadletter_free(d);
    ck_assert_int_eq(sf_deadletter_new(NULL, "cp.json", 4096, &d), 0);
    ck_assert_str_eq(sf_deadletter_path(d), "dead-letters.ndjson");
    sf_deadletter_free(d);
    ck_assert_int_eq(sf_deadletter_new(NULL, NULL, 4096, &d), 0);
    ck_assert_str_eq(sf_deadletter_path(d), "dead-letters.ndjson");
    sf_deadletter_free(d);
    ck_assert_int_eq(sf_deadletter_new("/x/y.ndjson", "/var/lib/sf/cp", 4096, &d), 0);
    ck_assert_str_eq(sf_deadletter_path(d), "/x/y.ndjson");
    sf_deadletter_free(d);
    sf_deadletter_free(NULL);
    ck_assert_uint_eq(sf_deadletter_count(NULL), 0);
    ck_assert_ptr_null(sf_deadletter_path(NULL));
}
END_TEST

START_TEST(test_lazy_open_mode_and_content)
{
    char cp[512], path[600];
    snprintf(cp, sizeof cp, "%s/checkpoint.json", tmpdir);
    snprintf(path, sizeof path, "%s/dead-letters.ndjson", tmpdir);
    sf_deadletter *d;
    ck_assert_int_eq(sf_deadletter_new(NULL, cp, 1 << 20, &d), 0);
    ck_assert_str_eq(sf_deadletter_path(d), path);
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0); /* opened lazily */
    ck_assert_int_eq(sf_deadletter_write(d, "s", NULL, NULL, 0, NULL), 0);
    ck_assert_int_ne(stat(path, &st), 0);

    mode_t old = umask(0);
    sf_event a, b;
    mkev(&a, "{\"id\":\"ev-1\",\n  \"n\":1.50,\"t\":1709626200000000001,\"u\":\"\\u00e9\"}");
    mkev(&b, "{\"id\":\"ev-\\\"2\",\"x\":[1,\r\n2]}");
    const sf_event *evs[] = {&a, &b};
    const char *why[] = {"HTTP 400: bad \"thing\"\n", "format cef: no field"};
    ck_assert_int_eq(sf_deadletter_write(d, "web\"hook", evs, why, 2, NULL), 0);
    umask(old);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_uint_eq(sf_deadletter_count(d), 2);

    size_t len;
    char *text = slurp(path, &len);
    ck_assert_ptr_nonnull(text);
    /* two lines, each a JSON object */
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_ptr_eq(strchr(nl + 1, '\n'), text + len - 1);
    *nl = '\0';
    text[len - 1] = '\0';
    const char *lines[2] = {text, nl + 1};
    for (int i = 0; i < 2; i++) {
        cJSON *j = cJSON_Parse(lines[i]);
        ck_assert_msg(j != NULL, "line %d not JSON: %s", i, lines[i]);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "time");
        ck_assert(cJSON_IsString(t));
        int64_t ns;
        ck_assert_int_eq(sf_parse_rfc3339_ns(t->valuestring, strlen(t->valuestring), &ns), 0);
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "sink")->valuestring, "web\"hook");
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "reason")->valuestring, why[i]);
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, evs[i]->id);
        ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "event")));
        cJSON_Delete(j);
    }
    /* the event is embedded as received (only raw newlines flattened), number text kept */
    ck_assert_ptr_nonnull(strstr(lines[0], ",\"event\":{\"id\":\"ev-1\",   \"n\":1.50,"
                                           "\"t\":1709626200000000001,\"u\":\"\\u00e9\"}}"));
    ck_assert_ptr_nonnull(strstr(lines[1], "\"event\":{\"id\":\"ev-\\\"2\",\"x\":[1,  2]}}"));
    free(text);

    /* appends to what is there, across instances */
    sf_deadletter_free(d);
    ck_assert_int_eq(sf_deadletter_new(NULL, cp, 1 << 20, &d), 0);
    const sf_event *one[] = {&a};
    const char *r1[] = {"again"};
    ck_assert_int_eq(sf_deadletter_write(d, "s2", one, r1, 1, NULL), 0);
    ck_assert_uint_eq(sf_deadletter_count(d), 1);
    size_t len2;
    text = slurp(path, &len2);
    ck_assert(len2 > len);
    ck_assert_ptr_nonnull(
        strstr(text + len, "\"sink\":\"s2\",\"reason\":\"again\",\"id\":\"ev-1\""));
    free(text);
    sf_deadletter_free(d);
    sf_event_free(&a);
    sf_event_free(&b);
}
END_TEST

START_TEST(test_full_writes_what_fits)
{
    char path[600];
    snprintf(path, sizeof path, "%s/dl.ndjson", tmpdir);
    sf_event a, b, c;
    mkev(&a, "{\"id\":\"a\",\"pad\":\"0123456789012345678901234567890123456789\"}");
    mkev(&b, "{\"id\":\"b\",\"pad\":\"0123456789012345678901234567890123456789\"}");
    mkev(&c, "{\"id\":\"c\",\"pad\":\"0123456789012345678901234567890123456789\"}");
    const sf_event *evs[] = {&a, &b, &c};
    const char *why[] = {"r", "r", "r"};
    /* one line is ~140 bytes; allow two */
    sf_deadletter *d;
    size_t w = 99;
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 300, &d), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", evs, why, 1, &w), 0);
    ck_assert_uint_eq(w, 1);
    ck_assert(!sf_deadletter_full(d));
    size_t len1;
    char *before = slurp(path, &len1);
    ck_assert(len1 > 100 && len1 < 150);
    ck_assert_uint_eq(sf_deadletter_size(d), len1);
    /* a batch of 3 with room for one more: the first goes in, whole; the rest are refused */
    ck_assert_int_eq(sf_deadletter_write(d, "s", evs, why, 3, &w), -ENOSPC);
    ck_assert_uint_eq(w, 1);
    ck_assert(sf_deadletter_full(d));
    size_t len2;
    char *after = slurp(path, &len2);
    ck_assert_uint_eq(len2, 2 * len1);
    ck_assert_int_eq(memcmp(after, before, len1), 0);
    ck_assert_ptr_nonnull(strstr(after + len1, "\"id\":\"a\""));
    ck_assert_ptr_null(strstr(after, "\"id\":\"b\""));
    ck_assert_uint_eq(after[len2 - 1], '\n');
    free(after);
    ck_assert_uint_eq(sf_deadletter_count(d), 2);
    /* full: nothing more goes in, and nothing of it is left in the file */
    ck_assert_int_eq(sf_deadletter_write(d, "s", evs + 1, why, 2, &w), -ENOSPC);
    ck_assert_uint_eq(w, 0);
    after = slurp(path, &len2);
    ck_assert_uint_eq(len2, 2 * len1);
    free(after);
    free(before);
    sf_deadletter_free(d);

    /* the bound counts what the file already held when it was opened */
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 300, &d), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", evs, why, 1, &w), -ENOSPC);
    ck_assert_uint_eq(w, 0);
    ck_assert_uint_eq(sf_deadletter_count(d), 0);
    sf_deadletter_free(d);
    sf_event_free(&a);
    sf_event_free(&b);
    sf_event_free(&c);
}
END_TEST

/* An entry larger than max_size on its own cannot block the file for ever: it goes alone into
 * an empty file. */
START_TEST(test_oversized_entry_into_empty_file)
{
    char path[600];
    snprintf(path, sizeof path, "%s/dl.ndjson", tmpdir);
    char big[600];
    memset(big, 'x', sizeof big);
    snprintf(big, sizeof big, "{\"id\":\"big\",\"pad\":\"%0*d\"}", 500, 0);
    sf_event a, small;
    mkev(&a, big);
    mkev(&small, "{\"id\":\"s\"}");
    const sf_event *evs[] = {&a, &small};
    const char *why[] = {"r", "r"};
    sf_deadletter *d;
    size_t w = 99;
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 300, &d), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", evs, why, 2, &w), -ENOSPC);
    ck_assert_uint_eq(w, 1);
    ck_assert_uint_gt(sf_deadletter_size(d), 300);
    /* not into a file that holds anything */
    ck_assert_int_eq(sf_deadletter_write(d, "s", evs, why, 1, &w), -ENOSPC);
    ck_assert_uint_eq(w, 0);
    sf_deadletter_free(d);
    sf_event_free(&a);
    sf_event_free(&small);
}
END_TEST

/* Full, then the operator moves the file away without SIGHUP: the next write notices (the path
 * no longer names the open file) and starts a new file. */
START_TEST(test_full_then_moved_without_sighup)
{
    char path[600], moved[620];
    snprintf(path, sizeof path, "%s/dl.ndjson", tmpdir);
    snprintf(moved, sizeof moved, "%s.1", path);
    sf_event a;
    mkev(&a, "{\"id\":\"a\",\"pad\":\"0123456789012345678901234567890123456789\"}");
    const sf_event *ea[] = {&a};
    const char *why[] = {"r"};
    sf_deadletter *d;
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 300, &d), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), -ENOSPC);
    ck_assert_int_eq(rename(path, moved), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    ck_assert(!sf_deadletter_full(d));
    size_t len;
    char *cur = slurp(path, &len);
    ck_assert_ptr_nonnull(cur);
    ck_assert(len > 100 && len < 150);
    free(cur);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    sf_deadletter_free(d);
    sf_event_free(&a);
}
END_TEST

/* Full, then emptied in place by the operator (truncate, no SIGHUP): the next write counts the
 * file's real size again and goes in (held events are not held forever). */
START_TEST(test_emptied_in_place_makes_room)
{
    char path[600];
    snprintf(path, sizeof path, "%s/dl.ndjson", tmpdir);
    sf_event a;
    mkev(&a, "{\"id\":\"a\",\"pad\":\"0123456789012345678901234567890123456789\"}");
    const sf_event *ea[] = {&a};
    const char *why[] = {"r"};
    sf_deadletter *d;
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 300, &d), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), -ENOSPC);
    ck_assert_int_eq(truncate(path, 0), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    size_t len;
    char *cur = slurp(path, &len);
    ck_assert(len > 100 && len < 150); /* one line, at the start of the emptied file */
    free(cur);
    sf_deadletter_free(d);
    sf_event_free(&a);
}
END_TEST

START_TEST(test_reopen_after_move)
{
    char path[600], moved[620];
    snprintf(path, sizeof path, "%s/dl.ndjson", tmpdir);
    snprintf(moved, sizeof moved, "%s.1", path);
    sf_event a, b;
    mkev(&a, "{\"id\":\"a\",\"pad\":\"0123456789012345678901234567890123456789\"}");
    mkev(&b, "{\"id\":\"b\",\"pad\":\"0123456789012345678901234567890123456789\"}");
    const sf_event *ea[] = {&a}, *eb[] = {&b};
    const char *why[] = {"r"};
    sf_deadletter *d;
    /* room for two lines (~140 bytes each), not three */
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 300, &d), 0);
    sf_deadletter_reopen(d); /* nothing open yet: a no-op */
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", ea, why, 1, NULL), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", eb, why, 1, NULL), -ENOSPC);
    /* logrotate moves the file, SIGHUP: the next write creates a new one, with room again */
    ck_assert_int_eq(rename(path, moved), 0);
    sf_deadletter_reopen(d);
    ck_assert_int_eq(sf_deadletter_write(d, "s", eb, why, 1, NULL), 0);
    ck_assert_uint_eq(sf_deadletter_count(d), 3);
    char *old = slurp(moved, NULL), *cur = slurp(path, NULL);
    ck_assert_ptr_nonnull(old);
    ck_assert_ptr_nonnull(cur);
    ck_assert_ptr_nonnull(strstr(old, "\"id\":\"a\""));
    ck_assert_ptr_null(strstr(old, "\"id\":\"b\""));
    ck_assert_ptr_nonnull(strstr(cur, "\"id\":\"b\""));
    ck_assert_ptr_null(strstr(cur, "\"id\":\"a\""));
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    free(old);
    free(cur);
    sf_deadletter_free(d);
    sf_event_free(&a);
    sf_event_free(&b);
}
END_TEST

START_TEST(test_open_error)
{
    char path[600];
    snprintf(path, sizeof path, "%s/missing-dir/dl.ndjson", tmpdir);
    sf_event a;
    mkev(&a, "{\"id\":\"a\"}");
    const sf_event *evs[] = {&a};
    const char *why[] = {"r"};
    sf_deadletter *d;
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 1 << 20, &d), 0);
    ck_assert_int_eq(sf_deadletter_write(d, "s", evs, why, 1, NULL), -ENOENT);
    ck_assert_uint_eq(sf_deadletter_count(d), 0);
    sf_deadletter_free(d);
    sf_event_free(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deadletter");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_default_path_beside_checkpoint);
    tcase_add_test(tc, test_lazy_open_mode_and_content);
    tcase_add_test(tc, test_full_writes_what_fits);
    tcase_add_test(tc, test_oversized_entry_into_empty_file);
    tcase_add_test(tc, test_full_then_moved_without_sighup);
    tcase_add_test(tc, test_reopen_after_move);
    tcase_add_test(tc, test_emptied_in_place_makes_room);
    tcase_add_test(tc, test_open_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
