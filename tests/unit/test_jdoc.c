/* Unit tests for daemon/core/jdoc.c: it must accept exactly what cJSON_ParseWithLengthOpts
 * accepts, end where it ends, fail where it fails, and build the same tree (compared through
 * cJSON's own printer) — on hand-picked edge cases and on many mutated documents. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "core/jdoc.h"

/* Compares jdoc with cJSON on [p, p + len). */
static void same(const char *p, size_t len)
{
    const char *ce = NULL, *je = NULL, *ke = NULL;
    cJSON *c = cJSON_ParseWithLengthOpts(p, len, &ce, 0);
    cJSON *j = NULL;
    sf_jdoc *doc = NULL;
    int type = -1;
    int rc = sf_jdoc_parse(p, len, &j, &doc, &je);
    int krc = sf_jdoc_check(p, len, &ke, &type, NULL, 0);
    ck_assert_msg((c != NULL) == (rc == 0), "accept differs on [%.*s]: cJSON %d jdoc %d", (int)len,
                  p, c != NULL, rc);
    ck_assert_int_eq(rc, krc);
    ck_assert_msg(ce == je && je == ke, "end differs on [%.*s]: cJSON %td jdoc %td check %td",
                  (int)len, p, ce - p, je - p, ke - p);
    if (c) {
        ck_assert_int_eq(type, c->type);
        char *a = cJSON_PrintUnformatted(c), *b = cJSON_PrintUnformatted(j);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_msg(strcmp(a, b) == 0, "tree differs on [%.*s]:\n%s\n%s", (int)len, p, a, b);
        ck_assert_int_eq(cJSON_GetArraySize(c), cJSON_GetArraySize(j));
        if (c->child) { /* last-element link cJSON keeps in head->prev */
            ck_assert_ptr_nonnull(j->child->prev);
            ck_assert_ptr_null(j->child->prev->next);
        }
        cJSON_free(a);
        cJSON_free(b);
    }
    cJSON_Delete(c);
    sf_jdoc_free(doc);
}

static void same_s(const char *s)
{
    same(s, strlen(s));
}

static const char *cases[] = {
    "{}",
    "[]",
    "{\"a\":1}",
    " \t\n{\"a\" : [1, 2 ,3] , \"b\":{\"c\":null}}  ",
    "null",
    "true",
    "false",
    "nul",
    "tru",
    "\"x\"",
    "\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\ude00\"",
    "\"\\ud83dx\"",
    "\"\\ud83d\\u0041\"",
    "\"\\uZZZZ\"",
    "\"\\u12\"",
    "\"\\u00\\\"x\"",
    "\"\\x\"",
    "\"abc",
    "\"abc\\",
    "\"\\u0000abc\"",
    "0",
    "-0",
    "01",
    "1.",
    "1.e5",
    "-.5",
    ".5",
    "+1",
    "1e",
    "1e+",
    "1E-3",
    "1-2",
    "0x10",
    "-",
    "--1",
    "1.5e999",
    "-1.5e999",
    "123456789012345",
    "1234567890123456",
    "12345678901234567890123",
    "-9223372036854775809",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "1234567890123456789012345678901234567890123456789012345678901234567890",
    "[1,]",
    "[,1]",
    "{\"a\":1,}",
    "{,}",
    "{\"a\"}",
    "{\"a\":}",
    "{1:2}",
    "{\"a\":1 \"b\":2}",
    "[1 2]",
    "[",
    "{",
    "[[[]]]",
    "{\"a\":{\"b\":{\"c\":[{},[]]}}}",
    "\xEF\xBB\xBF{\"a\":1}",
    "\xEF\xBB\xBF{}",
    "\xEF\xBB\xBF",
    " ",
    "",
    "\x01{\"a\":\x02\x1f 1\x7f}",
    "{\"a\":1}xyz",
    "[1]]",
    "{\"\":\"\"}",
    "{\"a\":1,\"a\":2}",
    "{\"\\u0061\":1}",
    "\"\xff\xfe\"",
    "[true,false,null,\"s\",1.25,-3,{\"k\":[]}]",
    "{\"a\":[1,2,{\"b\":\"c\\\"\"}]}",
};

START_TEST(test_cases)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        same_s(cases[i]);
    /* an embedded NUL: cJSON treats it as whitespace between tokens */
    same("{\"a\":\0 1}", 9);
    same("[1,\0 2]", 7);
}
END_TEST

START_TEST(test_nesting_limit)
{
    size_t n = CJSON_NESTING_LIMIT + 2;
    char *s = malloc(2 * n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t d = CJSON_NESTING_LIMIT - 1; d <= n; d++) {
        memset(s, '[', d);
        memset(s + d, ']', d);
        same(s, 2 * d);
    }
    free(s);
}
END_TEST

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Truncations and byte mutations of a realistic event: every result must agree. */
START_TEST(test_mutations)
{
    const char *base =
        "{\"id\":\"ee38\\u0041\",\"timestamp\":1709626200000000001,\"severity\":4,\"x\":-1.5e3,"
        "\"content\":{\"fields\":{\"proc.name\":\"sh\",\"fd.name\":\"1.2.3.4:5->[::1]:80\","
        "\"proc.anames\":[\"a\",\"b\"]},\"policyId\":111000,\"ok\":true,\"no\":false,"
        "\"n\":null},\"labels\":{\"host.hostName\":\"h\\u00e9\\ud83d\\ude00\\n\"},\"e\":[]}";
    static const char alphabet[] = "{}[]\",:\\u0123456789.eE+-ntrufalsx \t\n\x01\xc3\xa9\xff";
    size_t n = strlen(base);
    char buf[512];
    for (size_t cut = 0; cut <= n; cut++)
        same(base, cut);
    for (int iter = 0; iter < 200000; iter++) {
        memcpy(buf, base, n);
        size_t len = n;
        int muts = 1 + (int)(next() % 3);
        for (int m = 0; m < muts; m++) {
            size_t at = (size_t)(next() % len);
            char c = alphabet[next() % (sizeof alphabet - 1)];
            switch (next() % 3) {
            case 0:
                buf[at] = c;
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert */
                if (len + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = c;
                    len++;
                }
            }
        }
        same(buf, len);
    }
}
END_TEST

START_TEST(test_want_members)
{
    const char *s = "{\"a\":1,\"i\\u0064\":\"x\\\"y\",\"id\":2,\"t\":{\"id\":3},\"n\":-4}";
    sf_jdoc_want w[3] = {{.key = "id"}, {.key = "n"}, {.key = "zz"}};
    const char *e;
    int type;
    ck_assert_int_eq(sf_jdoc_check(s, strlen(s), &e, &type, w, 3), 0);
    ck_assert_int_eq(type, cJSON_Object);
    ck_assert_ptr_eq(e, s + strlen(s));
    ck_assert_ptr_nonnull(w[0].vs); /* the first "id", written with an escape */
    ck_assert_int_eq((int)(w[0].ve - w[0].vs), 6);
    char *v = sf_jdoc_strdup(w[0].vs, w[0].ve);
    ck_assert_str_eq(v, "x\"y");
    free(v);
    ck_assert_int_eq(strncmp(w[1].vs, "-4", 2), 0);
    ck_assert_ptr_eq(w[1].ve, w[1].vs + 2);
    ck_assert_ptr_null(w[2].vs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jdoc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cases);
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_mutations);
    tcase_add_test(tc, test_want_members);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
