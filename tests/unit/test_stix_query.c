/* query/stix_pattern and query/sysdig_query: the parser's tree and error positions, and the
 * translator's rules (severity flip, exact nanoseconds, escaping, 14-day split, grouping). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "query/stix_pattern.h"
#include "query/sysdig_query.h"

#define DAY_NS (INT64_C(86400) * SF_NS_PER_SEC)
#define T0 INT64_C(1704067200000000000) /* 2024-01-01T00:00:00Z */
#define WIN " START t'2024-01-01T00:00:00Z' STOP t'2024-01-01T01:00:00Z'"
#define GUARD "andsource!=\"auditTrail\""

/* ---- parser ---- */

static sf_stix_pattern *parse_ok(const char *s)
{
    sf_stix_pattern *p = NULL;
    sf_sp_error err;
    int rc = sf_stix_pattern_parse(s, strlen(s), &p, &err);
    ck_assert_msg(rc == 0, "%s: position %zu: %s", s, err.pos + 1, err.msg);
    return p;
}

/* The parse fails at byte offset pos with a message containing msg. */
static void parse_fails(const char *s, size_t pos, const char *msg)
{
    sf_stix_pattern *p = NULL;
    sf_sp_error err;
    int rc = sf_stix_pattern_parse(s, strlen(s), &p, &err);
    ck_assert_msg(rc == -EINVAL && !p, "%s: parsed", s);
    ck_assert_msg(err.pos == pos, "%s: position %zu, want %zu (%s)", s, err.pos, pos, err.msg);
    ck_assert_msg(strstr(err.msg, msg), "%s: '%s' lacks '%s'", s, err.msg, msg);
}

START_TEST(parser_tree)
{
    sf_stix_pattern *p =
        parse_ok("([a-b:c.'d-e'.f[*] NOT IN ('x', 2, -3, 1.5, true, b'AA==', h'0f') OR "
                 "(a:b = 'q\\'\\\\' AND EXISTS a:c)] AND [a:d >= 5]) START "
                 "t'2024-01-01T00:00:00.5Z' STOP t'2024-01-01T00:00:01Z' OR [a:e<>'z']");
    const sf_sp_obs *r = sf_stix_pattern_root(p);
    ck_assert_int_eq(r->kind, SF_SP_OBS_OR);
    const sf_sp_obs *g = r->l;
    ck_assert_int_eq(g->kind, SF_SP_OBS_AND);
    ck_assert_uint_eq(g->nquals, 1);
    ck_assert_int_eq(g->quals[0].kind, SF_SP_Q_START_STOP);
    ck_assert(g->quals[0].start_ns == T0 + 500000000);
    ck_assert(g->quals[0].stop_ns == T0 + SF_NS_PER_SEC);
    const sf_sp_cmp *c = g->l->cmp;
    ck_assert_int_eq(c->kind, SF_SP_OR);
    const sf_sp_cmp *in = c->l;
    ck_assert_int_eq(in->kind, SF_SP_TEST);
    ck_assert_str_eq(in->object, "a-b");
    ck_assert_str_eq(in->path, "c.'d-e'.f[*]");
    ck_assert(in->negated);
    ck_assert_int_eq(in->op, SF_SP_IN);
    ck_assert_uint_eq(in->nvals, 7);
    ck_assert_int_eq(in->vals[0].kind, SF_SP_LIT_STR);
    ck_assert_str_eq(in->vals[0].s, "x");
    ck_assert(in->vals[1].kind == SF_SP_LIT_INT && in->vals[1].i == 2);
    ck_assert(in->vals[2].kind == SF_SP_LIT_INT && in->vals[2].i == -3);
    ck_assert_int_eq(in->vals[3].kind, SF_SP_LIT_FLOAT);
    ck_assert(in->vals[4].kind == SF_SP_LIT_BOOL && in->vals[4].i == 1);
    ck_assert_int_eq(in->vals[5].kind, SF_SP_LIT_BIN);
    ck_assert_int_eq(in->vals[6].kind, SF_SP_LIT_HEX);
    const sf_sp_cmp *and = c->r;
    ck_assert_int_eq(and->kind, SF_SP_AND);
    ck_assert_str_eq(and->l->vals[0].s, "q'\\"); /* \' and \\ unescaped */
    ck_assert_int_eq(and->r->kind, SF_SP_EXISTS);
    ck_assert_int_eq(g->r->cmp->op, SF_SP_GE);
    ck_assert_int_eq(r->r->cmp->op, SF_SP_NE); /* <> is != */
    sf_stix_pattern_free(p);
    /* precedence: AND binds tighter than OR, in comparisons and in observations */
    p = parse_ok("[a:b=1 OR a:c=2 AND a:d=3] OR [a:e=1] AND [a:f=1]");
    r = sf_stix_pattern_root(p);
    ck_assert_int_eq(r->kind, SF_SP_OBS_OR);
    ck_assert_int_eq(r->r->kind, SF_SP_OBS_AND);
    ck_assert_int_eq(r->l->cmp->kind, SF_SP_OR);
    ck_assert_int_eq(r->l->cmp->r->kind, SF_SP_AND);
    sf_stix_pattern_free(p);
    /* qualifiers on a group that already had one: a group node keeps both */
    p = parse_ok("([a:b=1] START t'2024-01-01T00:00:00Z' STOP t'2024-01-02T00:00:00Z') START "
                 "t'2024-01-03T00:00:00Z' STOP t'2024-01-04T00:00:00Z'");
    r = sf_stix_pattern_root(p);
    ck_assert_int_eq(r->kind, SF_SP_OBS_GROUP);
    ck_assert_uint_eq(r->nquals, 1);
    ck_assert_uint_eq(r->l->nquals, 1);
    sf_stix_pattern_free(p);
    /* timestamps: exact integer ns, no float (stix-shifter: ...003000064) */
    p = parse_ok(
        "[a:b=1] START t'2023-11-05T16:43:26.003Z' STOP t'2261-12-31T23:59:59.999999999Z'");
    r = sf_stix_pattern_root(p);
    ck_assert(r->quals[0].start_ns == INT64_C(1699202606003000000));
    ck_assert(r->quals[0].stop_ns == INT64_C(9214646399999999999));
    sf_stix_pattern_free(p);
}
END_TEST

START_TEST(parser_errors)
{
    parse_fails("", 0, "empty pattern");
    parse_fails("   ", 0, "empty pattern");
    parse_fails("[]", 1, "empty observation");
    parse_fails("[a:b = 1", 8, "expected ']'");
    parse_fails("[a:b = 1]]", 9, "expected AND, OR");
    parse_fails("[a:b = 1] and [a:c = 2]", 10, "keywords are upper case: AND");
    parse_fails("[a:b = 'x]", 7, "unterminated string");
    parse_fails("[a:b = 'x\\n']", 9, "bad escape");
    parse_fails("[a b = 1]", 3, "expected ':'");
    parse_fails("[a: = 1]", 4, "expected a property name");
    parse_fails("[a:b 1]", 5, "comparison operator");
    parse_fails("[a:b = ]", 7, "expected a value");
    parse_fails("[a:b IN 'x']", 8, "'(' opening the set");
    parse_fails("[a:b IN ('x' 'y')]", 13, "',' or ')'");
    parse_fails("[a:b ! 1]", 5, "did you mean !=");
    parse_fails("[a:b = 1] START '2024-01-01T00:00:00Z' STOP t'2024-01-02T00:00:00Z'", 16,
                "timestamp");
    parse_fails("[a:b = 1] START t'2024-01-01T00:00:00Z' t'2024-01-02T00:00:00Z'", 40,
                "STOP after");
    parse_fails("[a:b = 1] START t'2024-01-01 00:00:00Z' STOP t'2024-01-02T00:00:00Z'", 16,
                "bad timestamp");
    parse_fails("[a:b = 1] START t'2024-13-01T00:00:00Z' STOP t'2024-01-02T00:00:00Z'", 16,
                "no such date");
    parse_fails("[a:b = 1] START t'2023-02-29T00:00:00Z' STOP t'2024-01-02T00:00:00Z'", 16,
                "no such date");
    parse_fails("[a:b = 1] START t'2024-01-01T00:00:00.Z' STOP t'2024-01-02T00:00:00Z'", 16,
                "bad timestamp");
    parse_fails("[a:b = 1] START t'2024-01-01T00:00:00.1234567890Z' STOP "
                "t'2024-01-02T00:00:00Z'",
                16, "at most 9");
    parse_fails("[a:b = 1] START t'2024-01-01T00:00:00+01:00' STOP t'2024-01-02T00:00:00Z'", 16,
                "bad timestamp");
    parse_fails("[a:b = 99999999999999999999]", 7, "out of range");
    parse_fails("[a:b = 12ab]", 7, "bad number");
    parse_fails("[a:b = 1] WITHIN x SECONDS", 17, "number of seconds");
    parse_fails("[a:b = 1] OR", 12, "'[' starting");
    parse_fails("([a:b = 1]", 10, "')' closing");
    parse_fails("[a:b = 'x\x01'] #", 13, "unexpected character '#'");
    /* bounded recursion */
    char deep[1200];
    size_t n = 0;
    deep[n++] = '[';
    for (int i = 0; i < 400; i++)
        deep[n++] = '(';
    memcpy(deep + n, "a:b=1", 5);
    n += 5;
    for (int i = 0; i < 400; i++)
        deep[n++] = ')';
    deep[n++] = ']';
    deep[n] = 0;
    sf_stix_pattern *p;
    sf_sp_error err;
    ck_assert_int_eq(sf_stix_pattern_parse(deep, n, &p, &err), -EINVAL);
    ck_assert_msg(strstr(err.msg, "levels deep"), "%s", err.msg);
}
END_TEST

/* ---- translator ---- */

static sf_sysdig_opts opts(void)
{
    return (sf_sysdig_opts){.now_ns = T0 + DAY_NS, .default_range_ns = SF_SYSDIG_DEFAULT_RANGE_NS};
}

/* Translates s and returns the queries joined with '\n' (caller frees). */
static char *tr(const char *s, const sf_sysdig_opts *o)
{
    sf_sysdig_queries q;
    sf_sp_error err;
    int rc = sf_sysdig_translate_text(s, o, &q, &err);
    ck_assert_msg(rc == 0, "%s: position %zu: %s", s, err.pos + 1, err.msg);
    sf_buf b = {0};
    for (size_t i = 0; i < q.n; i++) {
        if (i)
            sf_buf_putc(&b, '\n');
        sf_sysdig_query_format(&q.v[i], &b);
    }
    sf_sysdig_queries_free(&q);
    return sf_buf_steal(&b);
}

/* The filter of the single query the pattern (with WIN) gives. */
static void filter_is(const char *pattern, const char *want)
{
    sf_sysdig_opts o = opts();
    char *got = tr(pattern, &o);
    const char *f = strstr(got, "&filter=");
    ck_assert_msg(f && !strchr(got, '\n'), "%s", got);
    ck_assert_msg(!strcmp(f + 8, want), "%s\n got  %s\n want %s", pattern, f + 8, want);
    free(got);
}

static void tr_fails(const char *s, size_t pos, const char *msg)
{
    sf_sysdig_opts o = opts();
    sf_sysdig_queries q;
    sf_sp_error err;
    int rc = sf_sysdig_translate_text(s, &o, &q, &err);
    ck_assert_msg(rc == -EINVAL, "%s: translated", s);
    ck_assert_msg(q.n == 0 && q.v == NULL, "%s: queries left", s);
    ck_assert_msg(err.pos == pos, "%s: position %zu, want %zu (%s)", s, err.pos, pos, err.msg);
    ck_assert_msg(strstr(err.msg, msg), "%s: '%s' lacks '%s'", s, err.msg, msg);
}

START_TEST(severity_flips)
{
    /* Sysdig 0 is the most severe: a STIX comparator turns around on its 0..7 scale */
    filter_is("[x-ibm-finding:severity >= 50]" WIN, "(severity<=5)" GUARD);
    filter_is("[x-ibm-finding:severity > 50]" WIN, "(severity<5)" GUARD);
    filter_is("[x-ibm-finding:severity <= 50]" WIN, "(severity>=5)" GUARD);
    filter_is("[x-ibm-finding:severity < 50]" WIN, "(severity>5)" GUARD);
    filter_is("[x-ibm-finding:severity NOT < 50]" WIN, "(severity<=5)" GUARD);
    filter_is("[x-ibm-finding:severity = 50]" WIN, "(severity=5)" GUARD);
    filter_is("[x-ibm-finding:severity != 91]" WIN, "(severity!=0)" GUARD);
    /* other integers keep their comparator */
    filter_is("[x-sysdig-policy:rule_type >= 5]" WIN, "(ruleType>=5)" GUARD);
    filter_is("[x-sysdig-policy:rule_type < 5]" WIN, "(ruleType<5)" GUARD);
    /* buckets: 91-100 -> 0 ... 31-40 -> 6, 1-30 -> 7; duplicates dropped */
    static const struct {
        int v, b;
    } buckets[] = {{100, 0}, {91, 0}, {90, 1}, {81, 1}, {80, 2}, {71, 2}, {70, 3}, {61, 3},
                   {60, 4},  {51, 4}, {50, 5}, {41, 5}, {40, 6}, {31, 6}, {30, 7}, {1, 7}};
    for (size_t i = 0; i < SF_ARRAY_LEN(buckets); i++) {
        char p[128], w[64];
        snprintf(p, sizeof p, "[x-ibm-finding:severity = %d]" WIN, buckets[i].v);
        snprintf(w, sizeof w, "(severity=%d)" GUARD, buckets[i].b);
        filter_is(p, w);
    }
    filter_is("[x-ibm-finding:severity IN (95, 100, '30', 1)]" WIN, "(severity in (0,7))" GUARD);
}
END_TEST

START_TEST(values_escaped)
{
    filter_is("[x-ibm-finding:name = 'a\"b']" WIN, "(ruleName=\"a\\\"b\")" GUARD);
    filter_is("[x-ibm-finding:name = 'a\\\\b']" WIN, "(ruleName=\"a\\\\b\")" GUARD);
    filter_is("[x-ibm-finding:name = 'it\\'s']" WIN, "(ruleName=\"it's\")" GUARD);
    filter_is("[x-ibm-finding:name IN ('\"', 'x\\\\')]" WIN,
              "(ruleName in (\"\\\"\",\"x\\\\\"))" GUARD);
    /* an injection attempt stays one value */
    filter_is("[x-ibm-finding:name = 'x\") or (source=\"auditTrail']" WIN,
              "(ruleName=\"x\\\") or (source=\\\"auditTrail\")" GUARD);
    filter_is("[x-ibm-finding:name = 42]" WIN, "(ruleName=\"42\")" GUARD);
    tr_fails("[x-ibm-finding:name = 'a\nb']" WIN, 22, "control character");
}
END_TEST

START_TEST(exact_nanoseconds)
{
    sf_sysdig_opts o = opts();
    char *got = tr("[x-sysdig-cluster:name = 'a'] START t'2023-10-25T16:43:26.000Z' STOP "
                   "t'2023-11-05T16:43:26.003Z'",
                   &o);
    ck_assert_str_eq(got, "from=1698252206000000000&to=1699202606003000000&filter=(kubernetes."
                          "cluster.name=\"a\")" GUARD);
    free(got);
    got = tr("[x-sysdig-cluster:name = 'a'] START t'2024-01-01T00:00:00.000000001Z' STOP "
             "t'2024-01-01T00:00:00.123456789Z'",
             &o);
    ck_assert_str_eq(got, "from=1704067200000000001&to=1704067200123456789&filter=(kubernetes."
                          "cluster.name=\"a\")" GUARD);
    free(got);
    /* the default window: the last default_range before now */
    got = tr("[x-sysdig-cluster:name = 'a']", &o);
    ck_assert_str_eq(got, "from=1704153300000000000&to=1704153600000000000&filter=(kubernetes."
                          "cluster.name=\"a\")" GUARD);
    free(got);
}
END_TEST

START_TEST(long_windows_split)
{
    sf_sysdig_opts o = opts();
    /* exactly 14 days: one query */
    char *got = tr("[x-sysdig-cluster:name = 'a'] START t'2024-01-01T00:00:00Z' STOP "
                   "t'2024-01-15T00:00:00Z'",
                   &o);
    ck_assert_msg(!strchr(got, '\n'), "%s", got);
    free(got);
    /* 14 days + 1 ns: two contiguous windows, the second 1 ns long */
    got = tr("[x-sysdig-cluster:name = 'a'] START t'2024-01-01T00:00:00Z' STOP "
             "t'2024-01-15T00:00:00.000000001Z'",
             &o);
    ck_assert_str_eq(got, "from=1704067200000000000&to=1705276800000000000&filter=(kubernetes."
                          "cluster.name=\"a\")" GUARD "\n"
                          "from=1705276800000000000&to=1705276800000000001&filter=(kubernetes."
                          "cluster.name=\"a\")" GUARD);
    free(got);
    /* a year: 27 windows, each <= 14 days, contiguous, covering it exactly */
    sf_sysdig_queries q;
    sf_sp_error err;
    ck_assert_int_eq(sf_sysdig_translate_text("[x-sysdig-cluster:name = 'a'] START "
                                              "t'2023-01-01T00:00:00Z' STOP "
                                              "t'2024-01-01T00:00:00Z'",
                                              &o, &q, &err),
                     0);
    ck_assert_uint_eq(q.n, 27);
    ck_assert(q.v[0].from_ns == T0 - 365 * DAY_NS);
    for (size_t i = 0; i < q.n; i++) {
        ck_assert(q.v[i].to_ns - q.v[i].from_ns <= SF_SYSDIG_MAX_WINDOW_NS);
        ck_assert(q.v[i].to_ns > q.v[i].from_ns);
        if (i)
            ck_assert(q.v[i].from_ns == q.v[i - 1].to_ns);
    }
    ck_assert(q.v[q.n - 1].to_ns == T0);
    sf_sysdig_queries_free(&q);
}
END_TEST

START_TEST(grouping_and_precedence)
{
    filter_is("[x-sysdig-cluster:name = 'a' AND (x-sysdig-cluster:namespace = 'b' OR "
              "x-sysdig-deployment:name = 'c')]" WIN,
              "(kubernetes.cluster.name=\"a\" and (kubernetes.namespace.name=\"b\" or "
              "kubernetes.deployment.name=\"c\"))" GUARD);
    filter_is("[x-sysdig-cluster:name = 'a' OR x-sysdig-cluster:namespace = 'b' AND "
              "x-sysdig-deployment:name = 'c']" WIN,
              "(kubernetes.cluster.name=\"a\" or kubernetes.namespace.name=\"b\" and "
              "kubernetes.deployment.name=\"c\")" GUARD);
    /* observations sharing a window: one query, " or " */
    filter_is("([x-sysdig-cluster:name = 'a'] AND [x-sysdig-cluster:name = 'b'] OR "
              "[x-sysdig-cluster:name = 'c'])" WIN,
              "(kubernetes.cluster.name=\"a\" or kubernetes.cluster.name=\"b\" or "
              "kubernetes.cluster.name=\"c\")" GUARD);
    /* filter_only (source.stix_pattern): one filter, START/STOP refused */
    sf_sysdig_opts o = {.filter_only = true};
    sf_sysdig_queries q;
    sf_sp_error err;
    ck_assert_int_eq(sf_sysdig_translate_text("[x-sysdig-cluster:name = 'a'] OR "
                                              "[x-ibm-finding:severity > 80]",
                                              &o, &q, &err),
                     0);
    ck_assert_uint_eq(q.n, 1);
    ck_assert_str_eq(q.v[0].filter, "(kubernetes.cluster.name=\"a\" or severity<2)" GUARD);
    sf_sysdig_queries_free(&q);
    ck_assert_int_eq(sf_sysdig_translate_text("[x-sysdig-cluster:name = 'a']" WIN, &o, &q, &err),
                     -EINVAL);
    ck_assert_uint_eq(err.pos, 30);
    ck_assert_msg(strstr(err.msg, "START/STOP is not allowed"), "%s", err.msg);
}
END_TEST

START_TEST(refusals)
{
    tr_fails("[x-ibm-finding:name LIKE 'a%']", 20, "LIKE is not supported");
    tr_fails("[x-ibm-finding:name MATCHES 'a']", 20, "MATCHES is not supported");
    tr_fails("[x-ibm-finding:name NOT LIKE 'a%']", 24, "LIKE is not supported");
    tr_fails("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", 17, "ISSUBSET");
    tr_fails("[EXISTS x-ibm-finding:name]", 1, "EXISTS");
    tr_fails("[x-ibm-finding:nam = 'a']", 1, "no Sysdig field for x-ibm-finding:nam");
    tr_fails("[x-sysdig-cluster:name = 'a' AND x-sysdig-cluster:x_namespace = 'b']", 33,
             "no Sysdig field");
    tr_fails("[x-ibm-finding:name < 'a']", 20, "< is not supported for x-ibm-finding:name");
    tr_fails("[mac-addr:value >= '00:aa:dd:99:77:00']", 16, "not supported");
    tr_fails("[mac-addr:value = '00:aa:dd:99:77:0g']", 18, "MAC address");
    tr_fails("[x-sysdig-policy:policy_id = -1]", 29, "non-negative integer");
    tr_fails("[x-sysdig-policy:policy_id = 1.5]", 29, "non-negative integer");
    tr_fails("[x-sysdig-policy:policy_id = '12a']", 29, "non-negative integer");
    tr_fails("[x-ibm-finding:severity > 0]", 26, "1..100");
    tr_fails("[x-ibm-finding:severity IN (50, 101)]", 32, "1..100");
    tr_fails("[x-ibm-finding:name = true]", 22, "takes a string");
    tr_fails("[x-ibm-finding:x_threat_source = 'auditTrail']", 33, "auditTrail");
    tr_fails("[x-ibm-finding:x_threat_source IN ('syscall', 'auditTrail')]", 46, "auditTrail");
    tr_fails("[x-ibm-finding:x_threat_source NOT != 'auditTrail']", 38, "auditTrail");
    tr_fails("[x-ibm-finding:x_category IN ()]", 26, "empty set");
    tr_fails("[x-ibm-finding:name = 'a'] FOLLOWEDBY [x-ibm-finding:name = 'b']", 27, "FOLLOWEDBY");
    tr_fails("[x-ibm-finding:name = 'a'] REPEATS 2 TIMES", 27, "REPEATS");
    tr_fails("[x-ibm-finding:name = 'a'] WITHIN 2.5 SECONDS", 27, "WITHIN");
    tr_fails("[x-ibm-finding:name = 'a'] START t'2024-01-01T00:00:00Z' STOP "
             "t'2024-01-01T00:00:00Z'",
             27, "START must be before STOP");
    tr_fails("[x-ibm-finding:name = 'a'] START t'1969-12-31T00:00:00Z' STOP "
             "t'2024-01-01T00:00:00Z'",
             27, "before 1970");
    tr_fails("[x-ibm-finding:name = 'a'] START t'2024-01-01T00:00:00Z' STOP "
             "t'2024-01-02T00:00:00Z' START t'2024-01-01T00:00:00Z' STOP t'2024-01-02T00:00:00Z'",
             86, "second START/STOP");
    /* the filter's length: the API takes 2048 characters */
    sf_buf b = {0};
    sf_buf_puts(&b, "[x-ibm-finding:name IN ('");
    for (int i = 0; i < 2048; i++)
        sf_buf_putc(&b, 'x');
    sf_buf_puts(&b, "')]");
    tr_fails(b.data, 0, "at most 2048");
    sf_buf_free(&b);
    /* auditTrail elsewhere, or excluded, is fine */
    filter_is("[x-ibm-finding:name = 'auditTrail']" WIN, "(ruleName=\"auditTrail\")" GUARD);
    filter_is("[x-ibm-finding:x_threat_source != 'auditTrail']" WIN,
              "(source!=\"auditTrail\")" GUARD);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stix_query");
    TCase *tc = tcase_create("parser");
    tcase_add_test(tc, parser_tree);
    tcase_add_test(tc, parser_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("translate");
    tcase_add_test(tc, severity_flips);
    tcase_add_test(tc, values_escaped);
    tcase_add_test(tc, exact_nanoseconds);
    tcase_add_test(tc, long_windows_split);
    tcase_add_test(tc, grouping_and_precedence);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
