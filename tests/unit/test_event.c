/* Unit tests for daemon/core/event.c: API page parsing with exact byte spans, timestamps, ids,
 * errors and limits, and the 0..7 severity mapping. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/util.h"

static int parse(const char *body, const sf_parse_limits *lim, sf_page *pg, char *err,
                 size_t errlen)
{
    return sf_page_parse(body, strlen(body), lim, pg, err, errlen);
}

/* Parses body, which must fail with rc, and checks the page was left empty. */
static void expect_fail(const char *body, const sf_parse_limits *lim, int rc)
{
    sf_page pg;
    char err[256] = "";
    int got = parse(body, lim, &pg, err, sizeof err);
    ck_assert_msg(got == rc, "body %s: rc %d, expected %d (%s)", body, got, rc, err);
    ck_assert_msg(err[0] != '\0', "body %s: no error message", body);
    ck_assert_uint_eq(pg.n, 0);
    ck_assert_ptr_null(pg.events);
    ck_assert_ptr_null(pg.prev);
    ck_assert_ptr_null(pg.next);
    ck_assert_int_eq(pg.total, -1);
    sf_page_free(&pg);
}

START_TEST(test_raw_exact_span)
{
    const char *e0 =
        "{ \"id\" : \"a1\",\n\t\"zeta\": 1.50, \"alpha\":1e3, \"u\":\"\\u00e9\\n\\\"x\\\"\","
        " \"arr\" : [ 1 , {\"k\":\"}]\"} ] }";
    const char *e1 = "{\"id\":\"b2\",\"big\":12345678901234567890123}";
    char body[1024];
    snprintf(body, sizeof body, "  {\"data\" : [ %s ,\n  %s\n],\"page\":{\"total\":2}}  \n", e0,
             e1);
    sf_page pg;
    char err[256] = "";
    ck_assert_int_eq(parse(body, NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 2);
    ck_assert_uint_eq(pg.events[0].raw_len, strlen(e0));
    ck_assert_mem_eq(pg.events[0].raw, e0, strlen(e0));
    ck_assert_int_eq(pg.events[0].raw[pg.events[0].raw_len], '\0');
    ck_assert_str_eq(pg.events[0].raw, e0);
    ck_assert_str_eq(pg.events[1].raw, e1);
    ck_assert_uint_eq(pg.events[1].raw_len, strlen(e1));
    ck_assert_str_eq(pg.events[0].id, "a1");
    ck_assert_str_eq(pg.events[1].id, "b2");
    /* the parsed tree is available too (kept from the check, in the event's arena) */
    ck_assert_ptr_nonnull(pg.events[0].json);
    ck_assert_ptr_nonnull(pg.events[0].arena);
    ck_assert_str_eq(sf_event_str(&pg.events[0], "u"), "\xc3\xa9\n\"x\"");
    ck_assert(cJSON_IsArray(sf_event_get(&pg.events[0], "arr")));
    ck_assert_int_eq(pg.total, 2);
    ck_assert_ptr_null(pg.prev);
    ck_assert_ptr_null(pg.next);
    sf_page_free(&pg);
    /* drop_trees: same events, the tree built again on first use */
    sf_parse_limits lim = {.drop_trees = true};
    ck_assert_int_eq(parse(body, &lim, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 2);
    ck_assert_str_eq(pg.events[0].raw, e0);
    ck_assert_str_eq(pg.events[1].id, "b2");
    ck_assert_ptr_null(pg.events[0].json);
    ck_assert_int_eq(sf_event_load(&pg.events[0]), 0);
    ck_assert_ptr_nonnull(pg.events[0].json);
    ck_assert_str_eq(sf_event_str(&pg.events[0], "u"), "\xc3\xa9\n\"x\"");
    ck_assert(cJSON_IsArray(sf_event_get(&pg.events[0], "arr")));
    ck_assert_ptr_null(pg.events[1].json);
    ck_assert_ptr_null(sf_event_label(&pg.events[1], "x")); /* loads the tree: no labels */
    ck_assert_ptr_nonnull(pg.events[1].json);
    sf_page_free(&pg);
}
END_TEST

START_TEST(test_timestamps_exact)
{
    const char *body = "{\"data\":["
                       "{\"id\":\"n\",\"timestamp\":1709626200000000001},"
                       "{\"id\":\"max\",\"timestamp\":9223372036854775807},"
                       "{\"id\":\"max1\",\"timestamp\":9223372036854775806},"
                       "{\"id\":\"s\",\"timestamp\":\"2024-03-05T08:10:00.000000001Z\"},"
                       "{\"id\":\"sms\",\"timestamp\":\"2024-03-05T08:10:00.123Z\"},"
                       "{\"id\":\"sint\",\"timestamp\":\"1709626200000000002\"},"
                       "{\"id\":\"none\"},"
                       "{\"id\":\"float\",\"timestamp\":1.5e18},"
                       "{\"id\":\"bad\",\"timestamp\":\"yesterday\"},"
                       "{\"id\":\"obj\",\"timestamp\":{\"x\":1}}"
                       "]}";
    sf_page pg;
    char err[256] = "";
    ck_assert_int_eq(parse(body, NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 10);
    ck_assert_int_eq(pg.events[0].ts_ns, INT64_C(1709626200000000001));
    ck_assert_int_eq(pg.events[1].ts_ns, INT64_MAX);
    ck_assert_int_eq(pg.events[2].ts_ns, INT64_C(9223372036854775806));
    ck_assert_int_eq(pg.events[3].ts_ns, INT64_C(1709626200000000001));
    ck_assert_int_eq(pg.events[4].ts_ns, INT64_C(1709626200123000000));
    ck_assert_int_eq(pg.events[5].ts_ns, INT64_C(1709626200000000002));
    ck_assert_int_eq(pg.events[6].ts_ns, SF_TIME_UNSET);
    ck_assert_int_eq(pg.events[7].ts_ns, SF_TIME_UNSET);
    ck_assert_int_eq(pg.events[8].ts_ns, SF_TIME_UNSET);
    ck_assert_int_eq(pg.events[9].ts_ns, SF_TIME_UNSET);
    sf_page_free(&pg);
}
END_TEST

START_TEST(test_id_string_or_number)
{
    const char *body = "[{\"id\":\"abc\"},{\"id\": 12345678901234567891},{\"id\":42 ,\"x\":1},"
                       "{\"x\":{\"id\":\"nested\"},\"id\":\"top\"}]";
    sf_page pg;
    char err[256] = "";
    ck_assert_int_eq(parse(body, NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 4);
    ck_assert_str_eq(pg.events[0].id, "abc");
    /* a numeric id keeps its exact text (no double rounding) */
    ck_assert_str_eq(pg.events[1].id, "12345678901234567891");
    ck_assert_str_eq(pg.events[2].id, "42");
    ck_assert_str_eq(pg.events[3].id, "top");
    sf_page_free(&pg);
}
END_TEST

START_TEST(test_page_cursors)
{
    const char *body = "{\"page\":{\"prev\":\"P1\",\"next\":\"N2\",\"total\":12345},"
                       "\"extra\":[{\"]\":\"[\"}],\"data\":[{\"id\":\"a\"}]}";
    sf_page pg;
    char err[256] = "";
    ck_assert_int_eq(parse(body, NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 1);
    ck_assert_str_eq(pg.prev, "P1");
    ck_assert_str_eq(pg.next, "N2");
    ck_assert_int_eq(pg.total, 12345);
    sf_page_free(&pg);
    ck_assert_ptr_null(pg.prev);
    ck_assert_int_eq(pg.total, -1);

    /* empty cursors are absent; no page at all -> total -1 */
    ck_assert_int_eq(
        parse("{\"data\":[],\"page\":{\"prev\":\"\",\"next\":\"\"}}", NULL, &pg, err, sizeof err),
        0);
    ck_assert_ptr_null(pg.prev);
    ck_assert_ptr_null(pg.next);
    ck_assert_int_eq(pg.total, -1);
    ck_assert_uint_eq(pg.n, 0);
    sf_page_free(&pg);

    ck_assert_int_eq(parse("{\"data\":[]}", NULL, &pg, err, sizeof err), 0);
    ck_assert_int_eq(pg.total, -1);
    sf_page_free(&pg);
}
END_TEST

START_TEST(test_bare_array)
{
    sf_page pg;
    char err[256] = "";
    ck_assert_int_eq(parse(" [ {\"id\":\"x\"} , {\"id\":\"y\"} ] ", NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 2);
    ck_assert_str_eq(pg.events[0].raw, "{\"id\":\"x\"}");
    ck_assert_str_eq(pg.events[1].id, "y");
    ck_assert_ptr_null(pg.prev);
    ck_assert_ptr_null(pg.next);
    ck_assert_int_eq(pg.total, -1);
    sf_page_free(&pg);

    ck_assert_int_eq(parse("[]", NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 0);
    sf_page_free(&pg);
}
END_TEST

START_TEST(test_errors)
{
    /* truncated bodies */
    expect_fail("", NULL, -EINVAL);
    expect_fail("{\"data\":[{\"id\":\"a\"}", NULL, -EINVAL);
    expect_fail("{\"data\":[{\"id\":\"a\"}]", NULL, -EINVAL);
    expect_fail("{\"data\":[{\"id\":\"a\"", NULL, -EINVAL);
    expect_fail("{\"data\":[],\"page\":", NULL, -EINVAL);
    expect_fail("{\"data\":[],\"page\":{\"next\":\"x\"", NULL, -EINVAL);
    expect_fail("{\"data\":[],\"pa", NULL, -EINVAL);
    expect_fail("[{\"id\":\"a\"},", NULL, -EINVAL);
    /* trailing garbage */
    expect_fail("{\"data\":[]} x", NULL, -EINVAL);
    expect_fail("{\"data\":[]}{}", NULL, -EINVAL);
    expect_fail("[{\"id\":\"a\"}] ]", NULL, -EINVAL);
    expect_fail("{\"data\":[{\"id\":\"a\"} {\"id\":\"b\"}]}", NULL, -EINVAL);
    /* elements that are not objects */
    expect_fail("{\"data\":[{\"id\":\"a\"},1]}", NULL, -EINVAL);
    expect_fail("{\"data\":[\"s\"]}", NULL, -EINVAL);
    expect_fail("[[{\"id\":\"a\"}]]", NULL, -EINVAL);
    expect_fail("{\"data\":[null]}", NULL, -EINVAL);
    /* missing / unusable id */
    expect_fail("{\"data\":[{\"id\":\"a\"},{\"x\":1}]}", NULL, -EINVAL);
    expect_fail("{\"data\":[{\"id\":\"\"}]}", NULL, -EINVAL);
    expect_fail("{\"data\":[{\"id\":null}]}", NULL, -EINVAL);
    expect_fail("{\"data\":[{\"id\":[\"a\"]}]}", NULL, -EINVAL);
    /* data not an array / missing / duplicated */
    expect_fail("{\"data\":{\"id\":\"a\"}}", NULL, -EINVAL);
    expect_fail("{\"data\":null}", NULL, -EINVAL);
    expect_fail("{\"page\":{\"next\":\"n\"}}", NULL, -EINVAL);
    expect_fail("{}", NULL, -EINVAL);
    expect_fail("{\"data\":[],\"data\":[]}", NULL, -EINVAL);
    /* not JSON at all / not an object */
    expect_fail("\"data\"", NULL, -EINVAL);
    expect_fail("42", NULL, -EINVAL);
    expect_fail("{data:[]}", NULL, -EINVAL);
    /* invalid JSON inside an event */
    expect_fail("{\"data\":[{\"id\":\"a\",}]}", NULL, -EINVAL);
    /* page that is not an object */
    expect_fail("{\"data\":[],\"page\":[1]}", NULL, -EINVAL);
    /* two page objects: ambiguous cursor (found by fuzz_page: the first one's cursors leaked) */
    expect_fail("{\"page\":{\"next\":\"a\",\"prev\":\"b\"},\"data\":[],"
                "\"page\":{\"next\":\"c\"}}",
                NULL, -EINVAL);
}
END_TEST

START_TEST(test_error_message_names_element)
{
    sf_page pg;
    char err[256] = "";
    ck_assert_int_eq(parse("{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"noid\":1}]}", NULL, &pg,
                           err, sizeof err),
                     -EINVAL);
    ck_assert_msg(strstr(err, "data[2]") != NULL, "err: %s", err);
    sf_page_free(&pg);
}
END_TEST

static char *nested(size_t depth, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + 2 * depth + sl + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < depth; i++)
        s[pl + i] = '[';
    for (size_t i = 0; i < depth; i++)
        s[pl + depth + i] = ']';
    memcpy(s + pl + 2 * depth, suffix, sl + 1);
    return s;
}

START_TEST(test_nested_depth)
{
    /* moderately nested content is fine */
    char *ok = nested(50, "{\"data\":[{\"id\":\"a\",\"x\":", "}]}");
    sf_page pg;
    char err[256] = "";
    ck_assert_int_eq(parse(ok, NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 1);
    ck_assert_uint_eq(pg.events[0].raw_len, strlen(ok) - strlen("{\"data\":[") - strlen("]}"));
    sf_page_free(&pg);
    free(ok);
    /* beyond the JSON parser's nesting limit: an error, not a crash */
    char *deep = nested(100000, "{\"data\":[{\"id\":\"a\",\"x\":", "}]}");
    expect_fail(deep, NULL, -EINVAL);
    free(deep);
    /* deep nesting in an unrelated top-level member is skipped without recursion */
    char *other = nested(100000, "{\"other\":", ",\"data\":[{\"id\":\"a\"}]}");
    ck_assert_int_eq(parse(other, NULL, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 1);
    sf_page_free(&pg);
    free(other);
    /* deep "page" object */
    char *dpage = nested(100000, "{\"data\":[],\"page\":{\"x\":", "}}");
    expect_fail(dpage, NULL, -EINVAL);
    free(dpage);
}
END_TEST

START_TEST(test_limits)
{
    const char *ev = "{\"id\":\"a\",\"pad\":\"0123456789\"}"; /* 29 bytes */
    size_t evlen = strlen(ev);
    char body[512];
    snprintf(body, sizeof body, "{\"data\":[%s,%s,%s]}", ev, ev, ev);
    sf_page pg;
    char err[256] = "";

    sf_parse_limits lim = {.max_event_size = evlen, .max_events = 3};
    ck_assert_int_eq(parse(body, &lim, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 3);
    sf_page_free(&pg);

    lim.max_event_size = evlen - 1;
    expect_fail(body, &lim, -E2BIG);

    lim.max_event_size = 0;
    lim.max_events = 2;
    expect_fail(body, &lim, -E2BIG);
    /* bare arrays obey the limits too */
    snprintf(body, sizeof body, "[%s,%s,%s]", ev, ev, ev);
    expect_fail(body, &lim, -E2BIG);

    lim.max_events = 0; /* unlimited */
    ck_assert_int_eq(parse(body, &lim, &pg, err, sizeof err), 0);
    ck_assert_uint_eq(pg.n, 3);
    sf_page_free(&pg);
}
END_TEST

START_TEST(test_event_parse_single)
{
    sf_event ev;
    char err[256] = "";
    const char *txt = "  {\"id\":\"q\", \"timestamp\": 1709626200000000001, \"v\":1.50}\n";
    ck_assert_int_eq(sf_event_parse(txt, strlen(txt), &ev, err, sizeof err), 0);
    ck_assert_str_eq(ev.raw, "{\"id\":\"q\", \"timestamp\": 1709626200000000001, \"v\":1.50}");
    ck_assert_str_eq(ev.id, "q");
    ck_assert_int_eq(ev.ts_ns, INT64_C(1709626200000000001));
    sf_event_free(&ev);
    ck_assert_ptr_null(ev.raw);

    const char *bad[] = {"{\"id\":\"q\"} x", "[1]", "{\"x\":1}", "{\"id\":\"q\"", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        ck_assert_int_eq(sf_event_parse(bad[i], strlen(bad[i]), &ev, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(ev.raw);
        ck_assert_ptr_null(ev.id);
        ck_assert_ptr_null(ev.json);
    }
}
END_TEST

START_TEST(test_event_from_json)
{
    sf_event ev;
    char err[256] = "";
    cJSON *o = cJSON_Parse("{\"id\":\"j\",\"timestamp\":\"2024-03-05T08:10:00Z\"}");
    ck_assert_int_eq(sf_event_from_json(o, &ev, err, sizeof err), 0);
    ck_assert_str_eq(ev.id, "j");
    ck_assert_int_eq(ev.ts_ns, INT64_C(1709626200000000000));
    ck_assert_str_eq(ev.raw, "{\"id\":\"j\",\"timestamp\":\"2024-03-05T08:10:00Z\"}");
    sf_event_free(&ev);
    /* ownership is taken on failure too (valgrind checks) */
    ck_assert_int_eq(sf_event_from_json(cJSON_Parse("{\"x\":1}"), &ev, err, sizeof err), -EINVAL);
    ck_assert_int_eq(sf_event_from_json(cJSON_Parse("[1]"), &ev, err, sizeof err), -EINVAL);
}
END_TEST

/* Events kept from a page mostly dropped get their own bytes (the body can go with the rest);
 * a page mostly kept still shares its body. */
START_TEST(test_events_compact)
{
    const char *text = "{\"data\":[{\"id\":\"a\",\"timestamp\":1,\"x\":\"aaaaaaaaaaaa\"},"
                       "{\"id\":\"b\",\"timestamp\":2,\"x\":\"bbbbbbbbbbbb\"},"
                       "{\"id\":\"c\",\"timestamp\":3,\"x\":\"cccccccccccc\"}]}";
    for (int keep = 1; keep <= 3; keep++) {
        sf_page pg;
        char err[256];
        char *body = strdup(text);
        ck_assert_int_eq(sf_page_parse_owned(body, strlen(body), NULL, &pg, err, sizeof err), 0);
        ck_assert_uint_eq(pg.n, 3);
        sf_event kept[3];
        for (int i = 0; i < keep; i++) { /* moved out, as the source keeps them */
            kept[i] = pg.events[i];
            memset(&pg.events[i], 0, sizeof pg.events[i]);
        }
        ck_assert_int_eq(sf_events_compact(kept, (size_t)keep), 0);
        sf_page_free(&pg); /* the dropped ones go */
        for (int i = 0; i < keep; i++) {
            /* under half of the body: own copies; else still shared */
            ck_assert_msg((kept[i].chunk == NULL) == (keep == 1), "keep %d: event %d", keep, i);
            char want[64];
            snprintf(want, sizeof want, "{\"id\":\"%c\",\"timestamp\":%d,\"x\":\"%.12s\"}", 'a' + i,
                     i + 1,
                     i == 0   ? "aaaaaaaaaaaa"
                     : i == 1 ? "bbbbbbbbbbbb"
                              : "cccccccccccc");
            ck_assert_uint_eq(kept[i].raw_len, strlen(want));
            ck_assert(memcmp(kept[i].raw, want, kept[i].raw_len) == 0);
            char id[2] = {(char)('a' + i), '\0'};
            ck_assert_str_eq(kept[i].id, id);
        }
        for (int i = 0; i < keep; i++)
            sf_event_free(&kept[i]); /* the body goes with the last (ASan/valgrind: no leak) */
    }
    ck_assert_int_eq(sf_events_compact(NULL, 0), 0);
}
END_TEST

START_TEST(test_json_value_end)
{
    const char *s = "{\"a\":\"}\\\"]\",\"b\":[1,{\"c\":2}]} tail";
    const char *e = sf_json_value_end(s, s + strlen(s));
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e, " tail");
    const char *n = "-12.5e3,";
    ck_assert_str_eq(sf_json_value_end(n, n + strlen(n)), ",");
    const char *t = "{\"a\":[1,2}";
    ck_assert_ptr_null(sf_json_value_end(t, t + strlen(t)));
    const char *u = "\"abc";
    ck_assert_ptr_null(sf_json_value_end(u, u + strlen(u)));
    ck_assert_ptr_null(sf_json_value_end(u, u));
}
END_TEST

static int sev(const char *severity_json)
{
    char txt[128];
    if (severity_json)
        snprintf(txt, sizeof txt, "{\"id\":\"s\",\"severity\":%s}", severity_json);
    else
        snprintf(txt, sizeof txt, "{\"id\":\"s\"}");
    sf_event ev;
    char err[128];
    ck_assert_int_eq(sf_event_parse(txt, strlen(txt), &ev, err, sizeof err), 0);
    int r = sf_event_severity07(&ev);
    sf_event_free(&ev);
    return r;
}

START_TEST(test_severity07)
{
    for (int i = 0; i <= 7; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        ck_assert_int_eq(sev(v), i);
    }
    ck_assert_int_eq(sev("\"3\""), 3);
    ck_assert_int_eq(sev("\"0\""), 0);
    ck_assert_int_eq(sev("7.0"), 7);
    /* 0..100 scale, inverted */
    static const struct {
        const char *in;
        int out;
    } map[] = {
        {"100", 0}, {"91", 0}, {"90", 1}, {"81", 1}, {"80", 2},     {"71", 2},
        {"70", 3},  {"61", 3}, {"60", 4}, {"51", 4}, {"50", 5},     {"41", 5},
        {"40", 6},  {"31", 6}, {"30", 7}, {"8", 7},  {"\"60\"", 4}, {"150", 0}, /* clamped to 100 */
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        ck_assert_msg(sev(map[i].in) == map[i].out, "severity %s -> %d, expected %d", map[i].in,
                      sev(map[i].in), map[i].out);
    /* invalid / absent */
    ck_assert_int_eq(sev("-1"), -1);
    ck_assert_int_eq(sev("\"-1\""), -1);
    ck_assert_int_eq(sev("2.5"), -1);
    ck_assert_int_eq(sev("\"x\""), -1);
    ck_assert_int_eq(sev("\"3.5\""), -1);
    ck_assert_int_eq(sev("\"\""), -1);
    ck_assert_int_eq(sev("null"), -1);
    ck_assert_int_eq(sev("true"), -1);
    ck_assert_int_eq(sev("[3]"), -1);
    ck_assert_int_eq(sev(NULL), -1);
    ck_assert_int_eq(sf_event_severity07(NULL), -1);
}
END_TEST

START_TEST(test_helpers)
{
    const char *txt = "{\"id\":\"h\",\"content\":{\"fields\":{\"proc.name\":\"bash\",\"n\":3}},"
                      "\"labels\":{\"host.hostName\":\"node-1\",\"num\":1}}";
    sf_event ev;
    char err[128];
    ck_assert_int_eq(sf_event_parse(txt, strlen(txt), &ev, err, sizeof err), 0);
    ck_assert_str_eq(sf_event_field(&ev, "proc.name"), "bash");
    ck_assert_ptr_null(sf_event_field(&ev, "n"));
    ck_assert_ptr_null(sf_event_field(&ev, "missing"));
    ck_assert_str_eq(sf_event_label(&ev, "host.hostName"), "node-1");
    ck_assert_ptr_null(sf_event_label(&ev, "num"));
    ck_assert_str_eq(sf_event_str(&ev, "id"), "h");
    ck_assert_ptr_null(sf_event_str(&ev, "content"));
    ck_assert_ptr_nonnull(sf_event_get(&ev, "content"));
    sf_event_free(&ev);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_raw_exact_span);
    tcase_add_test(tc, test_timestamps_exact);
    tcase_add_test(tc, test_id_string_or_number);
    tcase_add_test(tc, test_page_cursors);
    tcase_add_test(tc, test_bare_array);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_error_message_names_element);
    tcase_add_test(tc, test_nested_depth);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_event_parse_single);
    tcase_add_test(tc, test_event_from_json);
    tcase_add_test(tc, test_json_value_end);
    tcase_add_test(tc, test_events_compact);
    tcase_add_test(tc, test_severity07);
    tcase_add_test(tc, test_helpers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
