/* CEF and LEEF: golden records covering every escaping rule, severity mappings, delimiters. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"

static char *encode(const char *fmt, const void *cfg, const char *json)
{
    const sf_format *f = sf_format_find(fmt);
    ck_assert_ptr_nonnull(f);
    sf_event ev;
    char err[256] = "";
    void *st = NULL;
    ck_assert_int_eq(sf_event_parse(json, strlen(json), &ev, err, sizeof err), 0);
    if (f->init)
        ck_assert_int_eq(f->init(cfg, &st, err, sizeof err), 0);
    sf_buf out = {0};
    ck_assert_int_eq(f->encode(st, &ev, &out, err, sizeof err), 0);
    if (f->destroy)
        f->destroy(st);
    sf_event_free(&ev);
    return sf_buf_steal(&out);
}

#define EV_ESC                                                                                     \
    "{\"id\":\"ev-1\",\"timestamp\":1709626200123456789,\"severity\":0,\"category\":\"run|time\"," \
    "\"content\":{\"ruleName\":\"Shell | in \\\\ container\",\"output\":\"a=b \\\\ c\\nd\\re|f "   \
    "h\\u00e9llo \\u2713\\tx\",\"fields\":{\"fd.name\":\"[2001:db8::1]:5000->10.0.0.2:443\","      \
    "\"user.name\":\"r=oot\"}},\"labels\":{\"container.image.repo\":\"repo\","                     \
    "\"container.image.tag\":\"1.0\",\"kubernetes.cluster.name\":\"c\"}}"

START_TEST(cef_escaping_golden)
{
    char *s = encode("cef", NULL, EV_ESC);
    ck_assert_str_eq(s, "CEF:0|Sysdig|Secure|1.0|Shell \\| in \\\\ container|Shell \\| in \\\\ "
                        "container|10|rt=1709626200123 externalId=ev-1 cat=run|time "
                        "msg=a\\=b \\\\ c\\nd\\re|f h\xc3\xa9llo \xe2\x9c\x93\tx "
                        "c6a2=2001:db8::1 c6a2Label=Source IPv6 Address spt=5000 dst=10.0.0.2 "
                        "dpt=443 proto=tcp suser=r\\=oot cs1=repo:1.0 cs1Label=containerImage "
                        "cs2=c cs2Label=k8sCluster");
    free(s);
}
END_TEST

START_TEST(cef_severity_and_signature)
{
    static const struct {
        const char *sev, *want;
    } cases[] = {{"7", "|3|"},  {"\"3\"", "|7|"},       {"60", "|6|"},        {"150", "|10|"},
                 {"-4", "|0|"}, {"\"x\"", "|Unknown|"}, {"null", "|Unknown|"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"id\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"severity\":%s,"
                 "\"content\":{\"policyId\":42,\"ruleName\":\"R\"}}",
                 cases[i].sev);
        char *s = encode("cef", NULL, json);
        ck_assert_msg(strstr(s, cases[i].want) != NULL, "%s: %s", cases[i].sev, s);
        ck_assert(strncmp(s, "CEF:0|Sysdig|Secure|1.0|42|R|", 29) == 0);
        free(s);
    }
}
END_TEST

typedef struct {
    char *delimiter;
} leef_cfg_t; /* layout of format_leef.c's options struct: one string */

START_TEST(leef_tab_golden)
{
    char *s = encode("leef", NULL, EV_ESC);
    ck_assert_str_eq(s,
                     "LEEF:2.0|Sysdig|Secure|1.0|Shell \\| in \\\\ container|x09|"
                     "devTime=2024-03-05T08:10:00.123Z\tdevTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
                     "\tcat=run|time\tsev=10\teventId=ev-1\truleName=Shell | in \\ container"
                     "\tmsg=a=b \\ c d e|f h\xc3\xa9llo \xe2\x9c\x93 x\tsrc=2001:db8::1"
                     "\tsrcPort=5000\tdst=10.0.0.2\tdstPort=443\tproto=tcp\tusrName=r=oot"
                     "\timageRepo=repo\timageTag=1.0\tk8sCluster=c");
    free(s);
}
END_TEST

START_TEST(leef_custom_delimiters)
{
    leef_cfg_t caret = {.delimiter = "^"}, hex = {.delimiter = "x3B"}, hex0 = {.delimiter = "0x3b"},
               space = {.delimiter = " "};
    const char *ev = "{\"id\":\"a^b;c d\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"severity\":7,"
                     "\"content\":{\"ruleName\":\"R\"}}";
    char *s = encode("leef", &caret, ev);
    ck_assert_str_eq(s, "LEEF:2.0|Sysdig|Secure|1.0|R|^|devTime=2024-01-01T00:00:00.000Z"
                        "^devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSXXX^sev=3^eventId=a b;c d"
                        "^ruleName=R");
    free(s);
    s = encode("leef", &hex, ev);
    ck_assert(strstr(s, "|R|;|devTime=") && strstr(s, ";eventId=a^b c d;"));
    free(s);
    s = encode("leef", &hex0, ev);
    ck_assert(strstr(s, "|R|;|devTime="));
    free(s);
    s = encode("leef", &space, ev);
    ck_assert(strstr(s, "|R|x20|devTime=") && strstr(s, " eventId=a^b;c_d "));
    free(s);
}
END_TEST

START_TEST(leef_bad_delimiters)
{
    const sf_format *f = sf_format_find("leef");
    const char *bad[] = {"=", "|", "xZZ", "ab", "\n", "x00", "\\", "xA6", "0x80", "\xC3\xA9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        leef_cfg_t c = {.delimiter = (char *)bad[i]};
        void *st = NULL;
        char err[256] = "";
        ck_assert_int_eq(f->init(&c, &st, err, sizeof err), -EINVAL);
        ck_assert(err[0]);
    }
}
END_TEST

START_TEST(leef_sev_floor)
{
    char *s = encode("leef", NULL,
                     "{\"id\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"severity\":-3}");
    ck_assert(strstr(s, "\tsev=1\t"));
    free(s);
    s = encode("leef", NULL, "{\"id\":\"1\",\"severity\":\"zz\"}");
    ck_assert(!strstr(s, "sev=") && !strstr(s, "devTime"));
    free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, cef_escaping_golden);
    tcase_add_test(tc, cef_severity_and_signature);
    tcase_add_test(tc, leef_tab_golden);
    tcase_add_test(tc, leef_custom_delimiters);
    tcase_add_test(tc, leef_bad_delimiters);
    tcase_add_test(tc, leef_sev_floor);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
