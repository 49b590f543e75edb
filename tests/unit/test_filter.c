/* sinks/filter: every key, lists OR, keys AND, not, globs and regexes, severity names and
 * ranges, compile errors with FILE:LINE:COL. Events are shaped like the API's (legacy
 * /api/v1/secureEvents and /secure/events/v1/events both carry name, source, category,
 * originator, severity, content.ruleName and labels: /work/shared/reference). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "core/event.h"
#include "core/json.h"
#include "sinks/filter.h"

static sf_cfg_errors errs;
static sf_cfg_node *root;
static sf_filter *flt;

static void teardown(void)
{
    sf_filter_free(flt);
    flt = NULL;
    sf_cfg_node_free(root);
    root = NULL;
    sf_cfg_errors_free(&errs);
}

/* Compiles the YAML flow map text; returns the compile result. */
static int compile(const char *yaml)
{
    teardown();
    errs.file = "f.yaml";
    root = sf_cfg_parse_yaml(yaml, strlen(yaml), &errs);
    ck_assert_msg(root, "yaml: %s", yaml);
    return sf_filter_compile(root, "sinks[0].filter", &errs, &flt);
}

static void ok(const char *yaml)
{
    int rc = compile(yaml);
    ck_assert_msg(rc == 0, "%s: %s", yaml, errs.n ? errs.msgs[0] : "?");
    ck_assert_ptr_nonnull(flt);
}

/* An event of severity sev (-1: none) with the given fields. */
static bool match_json(const char *json)
{
    sf_event ev;
    char err[128];
    ck_assert_msg(sf_event_parse(json, strlen(json), &ev, err, sizeof err) == 0, "%s", err);
    bool m = sf_filter_match(flt, &ev);
    sf_event_free(&ev);
    return m;
}

static bool match_sev(int sev)
{
    char j[128];
    snprintf(j, sizeof j, "{\"id\":\"a\",\"severity\":%d}", sev);
    return match_json(j);
}

#define EV(extra) "{\"id\":\"e1\",\"timestamp\":1700000000000000000," extra "}"
static const char *const RUNTIME =
    EV("\"originator\":\"policy\",\"category\":\"runtime\",\"source\":\"syscall\","
       "\"name\":\"Sysdig Runtime Notable Events\",\"severity\":2,"
       "\"content\":{\"ruleName\":\"Launch Sensitive Mount Container\"},"
       "\"labels\":{\"kubernetes.cluster.name\":\"prod-eu\",\"host.hostName\":\"node-1\"},"
       "\"zones\":[{\"id\":12,\"name\":\"Production\"}]");
static const char *const AUDIT =
    EV("\"originator\":\"auditTrail\",\"category\":\"runtime\",\"source\":\"auditTrail\","
       "\"name\":\"Terminal shell\",\"severity\":6,"
       "\"content\":{\"ruleName\":\"Terminal shell in container\"},"
       "\"labels\":{\"kubernetes.cluster.name\":\"staging\"},\"zones\":[7]");

START_TEST(test_severity_names)
{
    static const struct {
        const char *f;
        unsigned mask; /* which of 0..7 pass */
    } cases[] = {
        {"{severity: high}", 0x0f},     {"{severity: medium}", 0x30},
        {"{severity: low}", 0x40},      {"{severity: info}", 0x80},
        {"{severity: HIGH}", 0x0f},     {"{severity: [high, info]}", 0x8f},
        {"{severity: \"0..5\"}", 0x3f}, {"{severity: 3}", 0x08},
        {"{severity: \"2..2\"}", 0x04}, {"{severity: [0, \"6..7\", medium]}", 0xf1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ok(cases[c].f);
        for (int s = 0; s < 8; s++)
            ck_assert_msg(match_sev(s) == !!(cases[c].mask & (1u << s)), "%s, severity %d",
                          cases[c].f, s);
    }
    /* the 0..100 scale of older payloads maps back (sf_event_severity07): 95 -> 0, 30 -> 7 */
    ok("{severity: high}");
    ck_assert(match_sev(95));
    ck_assert(!match_sev(30));
    /* no severity: a severity key does not match */
    ck_assert(!match_json("{\"id\":\"a\"}"));
}
END_TEST

START_TEST(test_string_keys)
{
    ok("{policy: \"Sysdig Runtime Notable Events\"}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{policy: \"Sysdig Runtime\"}"); /* exact: not a prefix */
    ck_assert(!match_json(RUNTIME));
    ok("{rule: \"Launch Sensitive Mount Container\"}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{source: syscall}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{originator: auditTrail}");
    ck_assert(!match_json(RUNTIME));
    ck_assert(match_json(AUDIT));
    ok("{category: runtime}");
    ck_assert(match_json(RUNTIME));
    ck_assert(match_json(AUDIT));
    /* a missing field does not match */
    ok("{rule: x}");
    ck_assert(!match_json(EV("\"name\":\"x\"")));
    ok("{source: syscall}");
    ck_assert(!match_json(EV("\"source\":7")));
}
END_TEST

START_TEST(test_globs_regex)
{
    ok("{policy: \"Sysdig Runtime*\"}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{rule: \"*shell in ?ontainer\"}");
    ck_assert(match_json(AUDIT));
    ok("{rule: \"[LT]*\"}");
    ck_assert(match_json(RUNTIME) && match_json(AUDIT));
    ok("{rule: /^Launch .*Container$/}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{rule: /shell/}"); /* unanchored, as grep */
    ck_assert(match_json(AUDIT));
    ck_assert(!match_json(RUNTIME));
    ok("{rule: /SHELL/}"); /* case-sensitive */
    ck_assert(!match_json(AUDIT));
    ok("{rule: \"/\"}"); /* a lone slash is text */
    ck_assert(!match_json(AUDIT));
}
END_TEST

START_TEST(test_labels_zones)
{
    ok("{labels: {kubernetes.cluster.name: [prod-*]}}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{labels: {kubernetes.cluster.name: [prod-*, staging]}}");
    ck_assert(match_json(RUNTIME) && match_json(AUDIT));
    /* two labels AND */
    ok("{labels: {kubernetes.cluster.name: prod-eu, host.hostName: node-2}}");
    ck_assert(!match_json(RUNTIME));
    ok("{labels: {kubernetes.cluster.name: prod-eu, host.hostName: /^node-/}}");
    ck_assert(match_json(RUNTIME));
    ok("{labels: {missing.label: \"*\"}}");
    ck_assert(!match_json(RUNTIME));
    /* zones: ids or names, objects or bare values */
    ok("{zones: [12]}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{zones: Prod*}");
    ck_assert(match_json(RUNTIME));
    ok("{zones: [7, 99]}");
    ck_assert(match_json(AUDIT));
    ck_assert(!match_json(RUNTIME));
    ok("{zones: [\"1\"]}");
    ck_assert(!match_json(EV("\"name\":\"no zones\"")));
    ck_assert(match_json(EV("\"zones\":[{\"zoneId\":\"1\",\"zoneName\":\"x\"}]")));
}
END_TEST

START_TEST(test_and_or_not)
{
    /* keys AND */
    ok("{source: syscall, severity: low}");
    ck_assert(!match_json(RUNTIME)); /* syscall but severity 2 */
    ck_assert(!match_json(AUDIT));   /* low but auditTrail */
    ok("{source: syscall, severity: high}");
    ck_assert(match_json(RUNTIME));
    /* list items OR */
    ok("{source: [syscall, auditTrail]}");
    ck_assert(match_json(RUNTIME) && match_json(AUDIT));
    ok("{source: [k8s_audit, auditTrail]}");
    ck_assert(!match_json(RUNTIME) && match_json(AUDIT));
    /* not inverts its nested filter, and ANDs with the other keys */
    ok("{not: {source: auditTrail}}");
    ck_assert(match_json(RUNTIME));
    ck_assert(!match_json(AUDIT));
    ok("{category: runtime, not: {severity: high}}");
    ck_assert(!match_json(RUNTIME));
    ck_assert(match_json(AUDIT));
    ok("{not: {not: {source: auditTrail}}}");
    ck_assert(!match_json(RUNTIME) && match_json(AUDIT));
    /* an empty map passes everything; no filter too */
    ok("{}");
    ck_assert(match_json(RUNTIME) && match_json(AUDIT));
    sf_filter_free(flt);
    flt = NULL;
    ck_assert(match_json(RUNTIME));
}
END_TEST

static void bad(const char *yaml, const char *where, const char *what)
{
    int rc = compile(yaml);
    ck_assert_msg(rc == -1, "%s compiled", yaml);
    ck_assert_ptr_null(flt);
    bool found = false;
    for (size_t i = 0; i < errs.n; i++)
        found = found || (strstr(errs.msgs[i], where) && strstr(errs.msgs[i], what));
    ck_assert_msg(found, "%s: no error '%s' at %s (first: %s)", yaml, what, where,
                  errs.n ? errs.msgs[0] : "none");
}

START_TEST(test_errors)
{
    bad("{rule: \"/(/\"}", "f.yaml:1:8: sinks[0].filter.rule", "invalid regular expression");
    bad("{rule: [ok, \"/a[/\"]}", "f.yaml:1:13:", "invalid regular expression");
    bad("{labels: {a: \"x[\"}}", "f.yaml:1:14: sinks[0].filter.labels.a", "invalid glob");
    bad("{severity: hihg}", "f.yaml:1:12: sinks[0].filter.severity", "invalid severity");
    bad("{severity: 8}", "1:12", "invalid severity");
    bad("{severity: \"5..2\"}", "1:12", "invalid severity");
    bad("{severity: \"1..9\"}", "1:12", "invalid severity");
    bad("{severity: \"..3\"}", "1:12", "invalid severity");
    bad("{severity: []}", "1:12", "non-empty");
    bad("{polcy: x}", "f.yaml:1:2: sinks[0].filter", "did you mean 'policy'");
    bad("{zones: []}", "1:9", "empty list");
    bad("{source: {a: b}}", "1:10", "expected a string");
    bad("{labels: [a]}", "1:10", "map of label name");
    bad("{not: x}", "1:7: sinks[0].filter.not", "expected a map");
    bad("[a]", "1:1: sinks[0].filter", "expected a map");
    bad("{not: {rule: \"/(/\"}}", "sinks[0].filter.not.rule", "invalid regular expression");
    /* null: no filter */
    ck_assert_int_eq(compile("~"), 0);
    ck_assert_ptr_null(flt);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("severity");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_severity_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_string_keys);
    tcase_add_test(tc, test_globs_regex);
    tcase_add_test(tc, test_labels_zones);
    suite_add_tcase(s, tc);
    tc = tcase_create("logic");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_and_or_not);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    sf_json_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
