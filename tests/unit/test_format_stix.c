/* STIX formats and UUIDv5 unit tests; malformed input through every format never crashes. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "formats/stix_common.h"
#include "core/uuid.h"

START_TEST(uuid_v5_vectors)
{
    sf_uuid ns, u;
    char s[SF_UUID_STR_LEN + 1];
    /* RFC 9562 namespace DNS; python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") */
    ck_assert_int_eq(sf_uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8", &ns), 0);
    ck_assert_int_eq(sf_uuid_v5(&ns, "python.org", 10, &u), 0);
    sf_uuid_format(&u, s);
    ck_assert_str_eq(s, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    /* STIX 2.1 SCO namespace; python: uuid.uuid5(ns, "{\"value\":\"198.51.100.3\"}") */
    ck_assert_int_eq(sf_uuid_parse("00abedb4-aa42-466c-9c01-fed23315a9b7", &ns), 0);
    const char *name = "{\"value\":\"198.51.100.3\"}";
    ck_assert_int_eq(sf_uuid_v5(&ns, name, strlen(name), &u), 0);
    sf_uuid_format(&u, s);
    ck_assert_str_eq(s, "28bb3599-77cd-5a82-a950-b5bc3caf07c4");
    ck_assert_int_eq(sf_uuid_parse("not-a-uuid", &ns), -EINVAL);
    ck_assert_int_eq(sf_uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430cZ", &ns), -EINVAL);
}
END_TEST

static int parse(const char *json, sf_event *ev)
{
    char err[256];
    return sf_event_parse(json, strlen(json), ev, err, sizeof err);
}

START_TEST(severity_rule)
{
    static const struct {
        const char *v;
        int want;
    } cases[] = {{"0", 100},   {"7", 30},   {"\"3\"", 70},  {"60", 60},
                 {"150", 100}, {"-1", 0},   {"3.5", -1},    {"\"x\"", -1},
                 {"null", -1}, {"[1]", -1}, {"\"60\"", 60}, {"1e300", -1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[128];
        sf_event ev;
        snprintf(json, sizeof json, "{\"id\":\"1\",\"severity\":%s}", cases[i].v);
        ck_assert_int_eq(parse(json, &ev), 0);
        ck_assert_msg(sx_severity100(&ev) == cases[i].want, "%s", cases[i].v);
        sf_event_free(&ev);
    }
}
END_TEST

START_TEST(fd_endpoints)
{
    sx_endpoint s, d;
    ck_assert(sx_fd_endpoints("1.2.3.4:5->6.7.8.9:10", &s, &d));
    ck_assert(s.ok && d.ok && !s.v6 && s.port == 5 && d.port == 10);
    ck_assert_str_eq(d.ip, "6.7.8.9");
    ck_assert(sx_fd_endpoints("1.2.3.4:5<-6.7.8.9:10", &s, &d)); /* inbound: from the right */
    ck_assert_str_eq(s.ip, "6.7.8.9");
    ck_assert_int_eq(s.port, 10);
    ck_assert(sx_fd_endpoints("[FD00::1]:1->::ffff:1.2.3.4:2", &s, &d));
    ck_assert(s.ok && s.v6 && d.ok && d.v6);
    ck_assert_str_eq(s.ip, "fd00::1");
    ck_assert(sx_fd_endpoints("1.2.3.4:99999->x:1", &s, &d));
    ck_assert(!s.ok && !d.ok);
    ck_assert(sx_fd_endpoints("[1.2.3.4]:1->1.2.3.4:-1", &s, &d));
    ck_assert(!s.ok && !d.ok);
    ck_assert(!sx_fd_endpoints("/var/run/docker.sock", &s, &d));
    ck_assert(!sx_fd_endpoints(NULL, &s, &d));
}
END_TEST

START_TEST(identity_config)
{
    const sf_format *f = sf_format_find("stix21");
    sx_stix_cfg c = {.id = "identity--11111111-2222-3333-4444-555555555555",
                     .name = "acme",
                     .identity_class = "organization",
                     .created = "2024-01-01T00:00:00.000Z",
                     .modified = "2024-01-02T00:00:00.000Z"};
    void *st = NULL;
    char err[256];
    ck_assert_int_eq(f->init(&c, &st, err, sizeof err), 0);
    sf_event ev;
    ck_assert_int_eq(parse("{\"id\":\"x\",\"timestamp\":\"2024-05-01T00:00:00Z\"}", &ev), 0);
    sf_buf out = {0};
    ck_assert_int_eq(f->encode(st, &ev, &out, err, sizeof err), 0);
    ck_assert(strstr(out.data, "{\"type\":\"identity\",\"spec_version\":\"2.1\",\"id\":\"identity--"
                               "11111111-2222-3333-4444-555555555555\",\"name\":\"acme\","
                               "\"identity_class\":\"organization\""));
    ck_assert(strstr(out.data, "\"created_by_ref\":\"identity--11111111-2222-3333-4444-"));
    f->destroy(st);
    sf_buf_free(&out);
    sf_event_free(&ev);
    sx_stix_cfg bad = c;
    bad.id = "indicator--11111111-2222-3333-4444-555555555555";
    ck_assert_int_eq(f->init(&bad, &st, err, sizeof err), -EINVAL);
    bad = c;
    bad.created = "yesterday";
    ck_assert_int_eq(f->init(&bad, &st, err, sizeof err), -EINVAL);
}
END_TEST

/* Every format over hostile events: wrong types everywhere, huge strings, deep nesting. */
START_TEST(malformed_never_crashes)
{
    static const char *const docs[] = {
        "{\"id\":\"1\"}",
        "{\"id\":\"1\",\"timestamp\":[],\"severity\":{},\"content\":[],\"labels\":7}",
        "{\"id\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":[1,2]},"
        "\"labels\":[\"a\"]}",
        "{\"id\":\"1\",\"timestamp\":1,\"content\":{\"fields\":{\"proc.pid\":{},\"fd.name\":7,"
        "\"evt.type\":\"connect\",\"proc.anames\":{\"a\":1},\"proc.aname[2]\":[]},\"policyId\":"
        "[],\"ruleName\":{}},\"labels\":{\"kubernetes.node.name\":\"1-2-3-999-5-6-7-8\"}}",
        "{\"id\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":{"
        "\"evt.type\":\"connect\",\"fd.name\":\"->\"}},\"originator\":1e308,\"agentId\":-0}",
        "{\"id\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":{"
        "\"evt.type\":\"connect\",\"fd.name\":\"[:::1]:1-><-[]:\",\"proc.ppid\":\"1e400\"}}}",
        "{\"id\":12345678901234567890,\"timestamp\":-9223372036854775808}",
    };
    const sf_format *const *all = sf_format_all();
    for (size_t d = 0; d < sizeof docs / sizeof docs[0] + 2; d++) {
        sf_buf big = {0};
        const char *json = d < sizeof docs / sizeof docs[0] ? docs[d] : NULL;
        if (!json && d == sizeof docs / sizeof docs[0]) { /* 2 MB strings */
            ck_assert_int_eq(sf_buf_puts(&big, "{\"id\":\"1\",\"timestamp\":1,\"description\":\""),
                             0);
            for (int i = 0; i < 2 << 20; i++)
                ck_assert_int_eq(sf_buf_putc(&big, i % 7 ? 'a' : '|'), 0);
            ck_assert_int_eq(sf_buf_puts(&big, "\",\"content\":{\"fields\":{\"fd.name\":\""), 0);
            for (int i = 0; i < 100000; i++)
                ck_assert_int_eq(sf_buf_puts(&big, "1:2->"), 0);
            ck_assert_int_eq(sf_buf_puts(&big, "\"}}}"), 0);
            json = big.data;
        } else if (!json) { /* deep nesting inside an event */
            ck_assert_int_eq(sf_buf_puts(&big, "{\"id\":\"1\",\"timestamp\":1,\"labels\":"), 0);
            for (int i = 0; i < 900; i++)
                ck_assert_int_eq(sf_buf_puts(&big, "{\"a\":"), 0);
            ck_assert_int_eq(sf_buf_puts(&big, "1"), 0);
            for (int i = 0; i < 901; i++)
                ck_assert_int_eq(sf_buf_putc(&big, '}'), 0);
            json = big.data;
        }
        sf_event ev;
        if (parse(json, &ev) == 0) {
            for (size_t f = 0; all[f]; f++) {
                void *st = NULL;
                char err[256] = "";
                sf_buf out = {0};
                ck_assert_int_eq(all[f]->init ? all[f]->init(NULL, &st, err, sizeof err) : 0, 0);
                int rc = all[f]->encode(st, &ev, &out, err, sizeof err);
                ck_assert_msg(rc == 0 || err[0], "%s: error without message", all[f]->name);
                ck_assert(rc != 0 || out.len > 0);
                if (rc == 0 && !strncmp(all[f]->name, "stix", 4)) {
                    cJSON *j = cJSON_Parse(out.data);
                    ck_assert_ptr_nonnull(j);
                    cJSON_Delete(j);
                }
                if (all[f]->destroy)
                    all[f]->destroy(st);
                sf_buf_free(&out);
            }
            sf_event_free(&ev);
        }
        sf_buf_free(&big);
    }
}
END_TEST

/* Invalid UTF-8 in an event: raw keeps the exact bytes, every converted format replaces them
 * with U+FFFD (valid UTF-8, STIX still valid JSON) and says how many. */
START_TEST(invalid_utf8_replaced_except_raw)
{
    const char *json = "{\"id\":\"u1\",\"timestamp\":1700000000000000000,\"severity\":3,"
                       "\"name\":\"bad \xFF\xFE name\",\"content\":{\"fields\":"
                       "{\"proc.name\":\"x\xC3(\",\"container.id\":\"c\xED\xA0\x80\"}}}";
    sf_event ev;
    ck_assert_int_eq(parse(json, &ev), 0);
    for (const sf_format *const *f = sf_format_all(); *f; f++) {
        void *st = NULL;
        char err[256] = "";
        sf_buf out = {0};
        size_t fixed = 99;
        ck_assert_int_eq((*f)->init ? (*f)->init(NULL, &st, err, sizeof err) : 0, 0);
        ck_assert_int_eq(sf_format_encode(*f, st, &ev, &out, &fixed, err, sizeof err), 0);
        if ((*f)->keep_bytes) {
            ck_assert_uint_eq(fixed, 0);
            ck_assert_uint_eq(out.len, strlen(json));
            ck_assert(memcmp(out.data, json, out.len) == 0);
        } else {
            ck_assert_msg(fixed >= 1, "%s: %zu bytes replaced", (*f)->name, fixed);
            sf_buf copy = {0};
            ck_assert_int_eq(sf_buf_append(&copy, out.data, out.len), 0);
            ck_assert_int_eq(sf_utf8_sanitize(&copy, 0), 0); /* nothing left to replace */
            sf_buf_free(&copy);
            if (strstr(out.data, "bad ")) /* formats that carry the event name */
                ck_assert_msg(strstr(out.data, "bad \xEF\xBF\xBD\xEF\xBF\xBD name"), "%s: %s",
                              (*f)->name, out.data);
            if (!strncmp((*f)->name, "stix", 4)) {
                cJSON *j = cJSON_Parse(out.data);
                ck_assert_ptr_nonnull(j);
                cJSON_Delete(j);
            }
        }
        if ((*f)->destroy)
            (*f)->destroy(st);
        sf_buf_free(&out);
    }
    sf_event_free(&ev);
}
END_TEST

START_TEST(deterministic_and_order_independent)
{
    const char *a =
        "{\"id\":\"e\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"severity\":1,"
        "\"content\":{\"fields\":{\"proc.name\":\"x\",\"proc.pname\":\"y\","
        "\"user.name\":\"u\"}},\"labels\":{\"host.mac\":\"m\",\"host.hostName\":\"h\"}}";
    const char *b = "{\"labels\":{\"host.hostName\":\"h\",\"host.mac\":\"m\"},\"content\":{"
                    "\"fields\":{\"user.name\":\"u\",\"proc.pname\":\"y\",\"proc.name\":\"x\"}},"
                    "\"severity\":1,\"timestamp\":\"2024-01-01T00:00:00Z\",\"id\":\"e\"}";
    const char *names[] = {"stix", "stix21", "cef", "leef"};
    for (size_t i = 0; i < 4; i++) {
        const sf_format *f = sf_format_find(names[i]);
        sf_buf oa = {0}, ob = {0};
        sf_event ea, eb;
        char err[128];
        void *st = NULL;
        ck_assert_int_eq(f->init ? f->init(NULL, &st, err, sizeof err) : 0, 0);
        ck_assert_int_eq(parse(a, &ea), 0);
        ck_assert_int_eq(parse(b, &eb), 0);
        ck_assert_int_eq(f->encode(st, &ea, &oa, err, sizeof err), 0);
        ck_assert_int_eq(f->encode(st, &eb, &ob, err, sizeof err), 0);
        ck_assert_str_eq(oa.data, ob.data);
        if (f->destroy)
            f->destroy(st);
        sf_buf_free(&oa);
        sf_buf_free(&ob);
        sf_event_free(&ea);
        sf_event_free(&eb);
    }
}
END_TEST

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void encode_with(const char *format, const char *json, sf_buf *out)
{
    const sf_format *f = sf_format_find(format);
    void *st = NULL;
    char err[128];
    sf_event ev;
    ck_assert_int_eq(f->init ? f->init(NULL, &st, err, sizeof err) : 0, 0);
    ck_assert_int_eq(parse(json, &ev), 0);
    ck_assert_int_eq(f->encode(st, &ev, out, err, sizeof err), 0);
    if (f->destroy)
        f->destroy(st);
    sf_event_free(&ev);
}

/* STIX 2.1: an SCO left with only custom properties declares the forwarder's
 * toplevel-property-extension (docs/stix21-extension-definition.json); others do not; 2.0 is
 * unchanged. */
START_TEST(custom_only_sco_declares_extension)
{
#define DECL                                                                                       \
    "\"extensions\":{\"extension-definition--c92595b4-c218-5f24-a13a-213d6ca1bd3b\":{"             \
    "\"extension_type\":\"toplevel-property-extension\"}}}"
    sf_buf out = {0};
    /* user-account with only x_loginuid; the process has x_sid and a reference of its own */
    encode_with("stix21",
                "{\"id\":\"c\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":{"
                "\"user.loginuid\":\"1000\",\"proc.sid\":\"7\"}}}",
                &out);
    ck_assert_msg(strstr(out.data, "\"x_loginuid\":\"1000\"," DECL), "%s", out.data);
    ck_assert_int_eq(count(out.data, "extension-definition--"), 1);
    ck_assert(!strstr(out.data, "\"type\":\"extension-definition\"")); /* published, not here */
    sf_buf_free(&out);
    /* process with only x_sid; the parent process with only x_parent_names */
    encode_with("stix21",
                "{\"id\":\"c\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":{"
                "\"proc.sid\":\"7\"}}}",
                &out);
    ck_assert_msg(strstr(out.data, "\"x_sid\":\"7\"," DECL), "%s", out.data);
    sf_buf_free(&out);
    encode_with("stix21",
                "{\"id\":\"c\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":{"
                "\"proc.aname[2]\":\"sh\"}}}",
                &out);
    ck_assert_msg(strstr(out.data, "\"x_parent_names\":[\"sh\"]," DECL), "%s", out.data);
    sf_buf_free(&out);
    /* an own property: no declaration */
    encode_with(
        "stix21",
        "{\"id\":\"c\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":{"
        "\"proc.sid\":\"7\",\"proc.pid\":\"9\",\"user.loginuid\":\"1\",\"user.uid\":\"0\"}}}",
        &out);
    ck_assert_msg(!strstr(out.data, "extension"), "%s", out.data);
    sf_buf_free(&out);
    /* STIX 2.0 unchanged */
    encode_with("stix",
                "{\"id\":\"c\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"content\":{\"fields\":{"
                "\"user.loginuid\":\"1000\",\"proc.sid\":\"7\"}}}",
                &out);
    ck_assert_msg(strstr(out.data, "{\"type\":\"user-account\",\"x_loginuid\":\"1000\"}"), "%s",
                  out.data);
    ck_assert(!strstr(out.data, "extension"));
    sf_buf_free(&out);
#undef DECL
}
END_TEST

/* proc.pid: what strtod reads, truncated toward zero, within +-9e15; anything else is left out
 * (plain digits take a shortcut that must agree). */
START_TEST(pid_forms)
{
    static const struct {
        const char *pid, *want; /* want NULL: no pid */
    } cases[] = {
        {"4349", "\"pid\":4349"},
        {"-12", "\"pid\":-12"},
        {"007", "\"pid\":7"},
        {"-0", "\"pid\":0"},
        {"12.7", "\"pid\":12"},
        {"-12.7", "\"pid\":-12"},
        {"1e3", "\"pid\":1000"},
        {" 5", "\"pid\":5"},
        {"+5", "\"pid\":5"},
        {"0x10", "\"pid\":16"},
        {"999999999999999", "\"pid\":999999999999999"},
        {"9000000000000000", "\"pid\":9e+15"},
        {"9000000000000001", NULL},
        {"123456789012345678", NULL},
        {"-", NULL},
        {"12a", NULL},
        {"1 ", NULL},
        {"abc", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"id\":\"p\",\"timestamp\":1,\"content\":{\"fields\":{\"proc.pid\":\"%s\","
                 "\"proc.cwd\":\"/\"}}}",
                 cases[i].pid);
        sf_buf out = {0};
        encode_with("stix", json, &out);
        if (cases[i].want)
            ck_assert_msg(strstr(out.data, cases[i].want), "%s: %s", cases[i].pid, out.data);
        else
            ck_assert_msg(!strstr(out.data, "\"pid\""), "%s: %s", cases[i].pid, out.data);
        sf_buf_free(&out);
    }
}
END_TEST

/* A name given twice in an object: the first member counts (what a cJSON lookup finds). */
START_TEST(first_of_duplicate_members)
{
    const char *names[] = {"stix", "stix21", "cef", "leef"};
    for (size_t i = 0; i < 4; i++) {
        sf_buf out = {0};
        encode_with(names[i],
                    "{\"id\":\"d\",\"timestamp\":1,\"labels\":{\"host.hostName\":\"h1\","
                    "\"host.hostName\":\"h2\"},\"content\":{\"fields\":{\"proc.name\":\"p1\","
                    "\"proc.name\":\"p2\"}},\"content\":{\"fields\":{\"user.name\":\"u\"}}}",
                    &out);
        ck_assert_msg(strstr(out.data, "p1") && strstr(out.data, "h1"), "%s", out.data);
        ck_assert_msg(!strstr(out.data, "p2") && !strstr(out.data, "h2") &&
                          !strstr(out.data, "\"u\""),
                      "%s", out.data);
        sf_buf_free(&out);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format_stix");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, uuid_v5_vectors);
    tcase_add_test(tc, severity_rule);
    tcase_add_test(tc, fd_endpoints);
    tcase_add_test(tc, identity_config);
    tcase_add_test(tc, malformed_never_crashes);
    tcase_add_test(tc, deterministic_and_order_independent);
    tcase_add_test(tc, invalid_utf8_replaced_except_raw);
    tcase_add_test(tc, custom_only_sco_declares_extension);
    tcase_add_test(tc, pid_forms);
    tcase_add_test(tc, first_of_duplicate_members);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
