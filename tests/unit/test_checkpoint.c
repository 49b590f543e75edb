#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "testutil.h"

static char tmpdir[256];

static void setup(void)
{
    sf_test_mkdtemp(tmpdir, sizeof tmpdir, "cp");
}

static void teardown(void)
{
    sf_test_rmtree(tmpdir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static size_t count_entries(void)
{
    size_t n = 0;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void fill(sf_checkpoint *cp)
{
    sf_checkpoint_init(cp);
    cp->watermark_ns = INT64_C(1700651788101680299);
    cp->in_window = true;
    cp->win_from_ns = INT64_C(1700651700000000001);
    cp->win_to_ns = INT64_C(1700651788101680299);
    cp->cursor = strdup("cursor-\"quoted\"/\\slash\n");
    cp->win_low_ns = INT64_C(1700651750123456789);
    cp->nids = 3;
    cp->ids = calloc(3, sizeof *cp->ids);
    cp->ids[0].id = strdup("1793a6d1f8a0d1c2");
    cp->ids[0].ts_ns = INT64_C(1700651788101680299);
    cp->ids[1].id = strdup("min");
    cp->ids[1].ts_ns = INT64_MIN + 1;
    cp->ids[2].id = strdup("max \xc3\xa9");
    cp->ids[2].ts_ns = INT64_MAX;
    cp->has_sinks = true;
    cp->nsinks = 2;
    cp->sinks = calloc(2, sizeof *cp->sinks);
    cp->sinks[0].name = strdup("file \"x\"");
    cp->sinks[0].nids = 2;
    cp->sinks[0].ids = calloc(2, sizeof *cp->sinks[0].ids);
    cp->sinks[0].ids[0].id = strdup("ahead-1");
    cp->sinks[0].ids[0].ts_ns = INT64_C(1700651788101680300);
    cp->sinks[0].ids[1].id = strdup("ahead-2");
    cp->sinks[0].ids[1].ts_ns = -3;
    cp->sinks[1].name = strdup("syslog");
    cp->events_total = UINT64_MAX;
    cp->updated_ns = INT64_C(1700651799999999999);
}

static void assert_same(const sf_checkpoint *a, const sf_checkpoint *b, bool updated)
{
    ck_assert(a->watermark_ns == b->watermark_ns);
    ck_assert_int_eq(a->in_window, b->in_window);
    if (a->in_window) {
        ck_assert(a->win_from_ns == b->win_from_ns);
        ck_assert(a->win_to_ns == b->win_to_ns);
        ck_assert(a->win_low_ns == b->win_low_ns);
        if (a->cursor)
            ck_assert_str_eq(a->cursor, b->cursor);
        else
            ck_assert_ptr_null(b->cursor);
    }
    ck_assert_uint_eq(a->nids, b->nids);
    for (size_t i = 0; i < a->nids; i++) {
        ck_assert_str_eq(a->ids[i].id, b->ids[i].id);
        ck_assert(a->ids[i].ts_ns == b->ids[i].ts_ns);
    }
    ck_assert(!a->has_sinks || b->has_sinks); /* encode always writes the per-sink part */
    ck_assert_uint_eq(a->nsinks, b->nsinks);
    for (size_t k = 0; k < a->nsinks; k++) {
        ck_assert_str_eq(a->sinks[k].name, b->sinks[k].name);
        ck_assert_uint_eq(a->sinks[k].nids, b->sinks[k].nids);
        for (size_t i = 0; i < a->sinks[k].nids; i++) {
            ck_assert_str_eq(a->sinks[k].ids[i].id, b->sinks[k].ids[i].id);
            ck_assert(a->sinks[k].ids[i].ts_ns == b->sinks[k].ids[i].ts_ns);
        }
    }
    ck_assert(a->events_total == b->events_total);
    if (updated)
        ck_assert(a->updated_ns == b->updated_ns);
}

static int decode(const char *text, sf_checkpoint *cp, char *err, size_t errlen)
{
    return sf_checkpoint_decode(text, strlen(text), cp, err, errlen);
}

/* The encoder writes JSON by hand: byte for byte what the cJSON-tree encoder it replaced
 * printed (kept here as the reference), escapes and null/empty cases included. */
#include <cjson/cJSON.h>
static cJSON *ref_ns_json(int64_t v)
{
    if (v == SF_TIME_UNSET)
        return cJSON_CreateNull();
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return cJSON_CreateString(buf);
}

/* Adds item to obj under key; takes item (freed on failure). */
static int ref_add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return -ENOMEM;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return -ENOMEM;
    }
    return 0;
}

static int ref_ids(cJSON *obj, const char *key, const sf_seen_id *list, size_t n)
{
    char buf[32];
    cJSON *ids = cJSON_CreateArray();
    if (ref_add(obj, key, ids))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(ids, o)) {
            cJSON_Delete(o);
            return -ENOMEM;
        }
        snprintf(buf, sizeof buf, "%lld", (long long)list[i].ts_ns);
        if (ref_add(o, "id", cJSON_CreateString(list[i].id ? list[i].id : "")) ||
            ref_add(o, "ts_ns", cJSON_CreateString(buf)))
            return -ENOMEM;
    }
    return 0;
}

static int ref_encode(const sf_checkpoint *cp, sf_buf *out)
{
    int rc = -ENOMEM;
    char *text = NULL;
    char buf[32];
    cJSON *root = cJSON_CreateObject();
    if (!root)
        goto out;
    if (ref_add(root, "version", cJSON_CreateNumber(SF_CHECKPOINT_VERSION)) ||
        ref_add(root, "watermark_ns", ref_ns_json(cp->watermark_ns)))
        goto out;
    if (cp->in_window) {
        cJSON *w = cJSON_CreateObject();
        if (ref_add(root, "window", w))
            goto out;
        snprintf(buf, sizeof buf, "%lld", (long long)cp->win_from_ns);
        if (ref_add(w, "from_ns", cJSON_CreateString(buf)))
            goto out;
        snprintf(buf, sizeof buf, "%lld", (long long)cp->win_to_ns);
        if (ref_add(w, "to_ns", cJSON_CreateString(buf)) ||
            ref_add(w, "cursor",
                    cp->cursor ? cJSON_CreateString(cp->cursor) : cJSON_CreateNull()) ||
            ref_add(w, "low_ns", ref_ns_json(cp->win_low_ns)))
            goto out;
    } else if (ref_add(root, "window", cJSON_CreateNull())) {
        goto out;
    }
    if (ref_ids(root, "recent_ids", cp->ids, cp->nids))
        goto out;
    cJSON *sinks = cJSON_CreateObject();
    if (ref_add(root, "sinks", sinks))
        goto out;
    for (size_t k = 0; k < cp->nsinks; k++) {
        cJSON *o = cJSON_CreateObject();
        if (ref_add(sinks, cp->sinks[k].name, o) ||
            ref_ids(o, "ids", cp->sinks[k].ids, cp->sinks[k].nids))
            goto out;
    }
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)cp->events_total);
    if (ref_add(root, "events_total", cJSON_CreateString(buf)))
        goto out;
    snprintf(buf, sizeof buf, "%lld", (long long)cp->updated_ns);
    if (ref_add(root, "updated_ns", cJSON_CreateString(buf)))
        goto out;
    if (!(text = cJSON_PrintUnformatted(root)))
        goto out;
    rc = sf_buf_puts(out, text);
    if (!rc)
        rc = sf_buf_putc(out, '\n');
out:
    cJSON_free(text);
    cJSON_Delete(root);
    return rc;
}

START_TEST(test_encode_matches_cjson)
{
    static char *ids[] = {"plain", "q\"uote\\back", "ctl\x01\x1f\n\t\b\f\r", "\xc3\xa9\xff", ""};
    sf_seen_id sid[5];
    for (int i = 0; i < 5; i++)
        sid[i] = (sf_seen_id){.id = ids[i], .ts_ns = i == 0 ? INT64_MIN + 1 : (int64_t)i * 7};
    for (int variant = 0; variant < 4; variant++) {
        sf_checkpoint c;
        sf_checkpoint_init(&c);
        c.watermark_ns = variant & 1 ? SF_TIME_UNSET : INT64_C(1700651788101680299);
        c.in_window = variant >= 2;
        c.win_from_ns = -5;
        c.win_to_ns = INT64_MAX;
        c.cursor = variant == 2 ? NULL : "cur\"sor/+=\x02";
        c.win_low_ns = variant == 3 ? SF_TIME_UNSET : 42;
        c.ids = variant == 1 ? NULL : sid;
        c.nids = variant == 1 ? 0 : 5;
        sf_sink_progress sp[2] = {{.name = "syslog \"a\"\x01", .ids = sid, .nids = 5},
                                  {.name = "file", .ids = NULL, .nids = 0}};
        c.sinks = variant == 1 ? NULL : sp;
        c.nsinks = variant == 1 ? 0 : variant == 2 ? 1 : 2;
        c.events_total = UINT64_MAX;
        c.updated_ns = -1;
        sf_buf a = {0}, b = {0};
        ck_assert_int_eq(sf_checkpoint_encode(&c, &a), 0);
        ck_assert_int_eq(ref_encode(&c, &b), 0);
        ck_assert_str_eq(a.data, b.data);
        sf_buf_free(&a);
        sf_buf_free(&b);
    }
}
END_TEST

START_TEST(test_roundtrip_exact)
{
    sf_checkpoint a, b;
    fill(&a);
    sf_buf out = {0};
    ck_assert_int_eq(sf_checkpoint_encode(&a, &out), 0);
    /* values are exact strings, not doubles */
    ck_assert_ptr_nonnull(strstr(out.data, "\"watermark_ns\":\"1700651788101680299\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"ts_ns\":\"9223372036854775807\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"events_total\":\"18446744073709551615\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"version\":2"));
    char err[256] = "";
    ck_assert_int_eq(sf_checkpoint_decode(out.data, out.len, &b, err, sizeof err), 0);
    assert_same(&a, &b, true);
    sf_buf_free(&out);
    sf_checkpoint_free(&a);
    sf_checkpoint_free(&b);
}
END_TEST

START_TEST(test_roundtrip_extremes)
{
    static const int64_t vals[] = {INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < SF_ARRAY_LEN(vals); i++) {
        sf_checkpoint a, b;
        sf_checkpoint_init(&a);
        a.watermark_ns = vals[i];
        a.in_window = true;
        a.win_from_ns = vals[i];
        a.win_to_ns = vals[i];
        a.win_low_ns = vals[i];
        a.updated_ns = vals[i];
        sf_buf out = {0};
        ck_assert_int_eq(sf_checkpoint_encode(&a, &out), 0);
        char err[256];
        ck_assert_int_eq(sf_checkpoint_decode(out.data, out.len, &b, err, sizeof err), 0);
        assert_same(&a, &b, true);
        sf_buf_free(&out);
        sf_checkpoint_free(&a);
        sf_checkpoint_free(&b);
    }
    /* INT64_MIN as a timestamp of an id is kept exactly */
    sf_checkpoint c;
    char err[256];
    ck_assert_int_eq(decode("{\"version\":1,\"watermark_ns\":null,\"window\":null,\"recent_ids\":"
                            "[{\"id\":\"x\",\"ts_ns\":\"-9223372036854775808\"}]}",
                            &c, err, sizeof err),
                     0);
    ck_assert(c.ids[0].ts_ns == INT64_MIN);
    sf_checkpoint_free(&c);
}
END_TEST

START_TEST(test_roundtrip_empty)
{
    sf_checkpoint a, b;
    sf_checkpoint_init(&a);
    ck_assert(a.watermark_ns == SF_TIME_UNSET);
    sf_buf out = {0};
    ck_assert_int_eq(sf_checkpoint_encode(&a, &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "\"watermark_ns\":null"));
    ck_assert_ptr_nonnull(strstr(out.data, "\"window\":null"));
    ck_assert_ptr_nonnull(strstr(out.data, "\"recent_ids\":[]"));
    char err[256];
    ck_assert_int_eq(sf_checkpoint_decode(out.data, out.len, &b, err, sizeof err), 0);
    ck_assert(b.watermark_ns == SF_TIME_UNSET);
    ck_assert(!b.in_window);
    ck_assert_uint_eq(b.nids, 0);
    /* window with no cursor and no low */
    a.in_window = true;
    a.win_from_ns = 5;
    a.win_to_ns = 10;
    sf_buf_reset(&out);
    ck_assert_int_eq(sf_checkpoint_encode(&a, &out), 0);
    sf_checkpoint_free(&b);
    ck_assert_int_eq(sf_checkpoint_decode(out.data, out.len, &b, err, sizeof err), 0);
    ck_assert(b.in_window);
    ck_assert_ptr_null(b.cursor);
    ck_assert(b.win_low_ns == SF_TIME_UNSET);
    ck_assert(b.win_from_ns == 5 && b.win_to_ns == 10);
    sf_buf_free(&out);
    sf_checkpoint_free(&a);
    sf_checkpoint_free(&b);
}
END_TEST

START_TEST(test_copy)
{
    sf_checkpoint a, b;
    fill(&a);
    ck_assert_int_eq(sf_checkpoint_copy(&b, &a), 0);
    assert_same(&a, &b, true);
    ck_assert_ptr_ne(a.cursor, b.cursor);
    ck_assert_ptr_ne(a.ids, b.ids);
    ck_assert_ptr_ne(a.ids[0].id, b.ids[0].id);
    sf_checkpoint_free(&a);
    /* b survives a being freed */
    ck_assert_str_eq(b.ids[0].id, "1793a6d1f8a0d1c2");
    sf_checkpoint_free(&b);
}
END_TEST

/* Each bad document must be rejected with an error mentioning 'needle'. */
static void expect_bad(const char *text, const char *needle)
{
    sf_checkpoint cp;
    char err[256] = "";
    cp.cursor = (char *)"sentinel";
    int rc = decode(text, &cp, err, sizeof err);
    ck_assert_msg(rc == -EINVAL, "accepted: %s", text);
    ck_assert_msg(strstr(err, needle) != NULL, "error '%s' lacks '%s' for %s", err, needle, text);
    ck_assert_str_eq(cp.cursor, "sentinel"); /* out untouched on error */
}

/* A window fetched in slices records the slices left (window.slices), exactly, null lows too;
 * what does not describe slices of the window is refused. */
START_TEST(test_roundtrip_slices)
{
    sf_checkpoint a, b;
    sf_checkpoint_init(&a);
    a.in_window = true;
    a.win_from_ns = 1000;
    a.win_to_ns = INT64_C(9000000000000000000);
    a.cut = true;
    sf_slice sl[2] = {{1000, 5000, SF_TIME_UNSET}, {5000, INT64_C(9000000000000000000), 7777}};
    a.slices = sl;
    a.nslices = 2;
    sf_buf out = {0};
    ck_assert_int_eq(sf_checkpoint_encode(&a, &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "\"slices\":[{\"from_ns\":\"1000\",\"to_ns\":\"5000\","
                                           "\"low_ns\":null},"));
    char err[256] = "";
    ck_assert_int_eq(sf_checkpoint_decode(out.data, out.len, &b, err, sizeof err), 0);
    ck_assert(b.in_window && b.cut && b.nslices == 2);
    ck_assert(memcmp(b.slices, sl, sizeof sl) == 0);
    sf_checkpoint c;
    ck_assert_int_eq(sf_checkpoint_copy(&c, &b), 0);
    ck_assert(c.cut && c.nslices == 2 && c.slices != b.slices);
    ck_assert(memcmp(c.slices, sl, sizeof sl) == 0);
    sf_checkpoint_free(&c);
    sf_checkpoint_free(&b);
    sf_buf_free(&out);
    /* no slices: the key is absent, the window not cut */
    a.cut = false;
    ck_assert_int_eq(sf_checkpoint_encode(&a, &out), 0);
    ck_assert_ptr_null(strstr(out.data, "slices"));
    ck_assert_int_eq(sf_checkpoint_decode(out.data, out.len, &b, err, sizeof err), 0);
    ck_assert(!b.cut && b.nslices == 0);
    sf_checkpoint_free(&b);
    sf_buf_free(&out);
#define WIN(sl)                                                                                    \
    "{\"version\":2,\"watermark_ns\":null,\"window\":{\"from_ns\":\"10\",\"to_ns\":\"20\","        \
    "\"cursor\":null,\"low_ns\":null,\"slices\":" sl "},\"recent_ids\":[],\"sinks\":{}}"
    expect_bad(WIN("{}"), "window.slices: expected an array");
    expect_bad(WIN("[[]]"), "window.slices[0]: expected an object");
    expect_bad(WIN("[{\"from_ns\":\"10\",\"to_ns\":\"20\"}]"), "window.slices[0].low_ns: missing");
    expect_bad(WIN("[{\"from_ns\":\"5\",\"to_ns\":\"20\",\"low_ns\":null}]"),
               "window.slices[0]: not within the window");
    expect_bad(WIN("[{\"from_ns\":\"15\",\"to_ns\":\"12\",\"low_ns\":null}]"),
               "window.slices[0]: not within the window");
    sf_buf many = {0};
    sf_buf_putc(&many, '[');
    for (int i = 0; i < SF_CHECKPOINT_MAX_SLICES + 1; i++)
        sf_buf_appendf(&many, "%s{\"from_ns\":\"10\",\"to_ns\":\"20\",\"low_ns\":null}",
                       i ? "," : "");
    sf_buf_putc(&many, ']');
    sf_buf text = {0};
    sf_buf_appendf(&text, WIN("%s"), many.data);
    expect_bad(text.data, "33 slices, at most 32");
    sf_buf_free(&many);
    sf_buf_free(&text);
#undef WIN
}
END_TEST

#define HEAD "{\"version\":1,\"watermark_ns\":\"5\","

START_TEST(test_decode_rejects)
{
    expect_bad("", "empty");
    expect_bad("{\"version\":1,\"watermark_ns\":\"5\",\"window\":nu", "invalid JSON");
    expect_bad("{\"version\":1,\n\"watermark_ns\":\"5\",\n\"window\":null,\n\"recent", "line 4");
    expect_bad("[1,2]", "expected a JSON object");
    expect_bad("{} trailing", "trailing");
    expect_bad("{\"watermark_ns\":\"5\",\"window\":null,\"recent_ids\":[]}", "version: missing");
    expect_bad("{\"version\":3,\"watermark_ns\":\"5\",\"window\":null,\"recent_ids\":[]}",
               "unsupported version 3");
    expect_bad("{\"version\":0,\"watermark_ns\":\"5\",\"window\":null,\"recent_ids\":[]}",
               "unsupported version 0");
    expect_bad("{\"version\":1.5,\"watermark_ns\":\"5\",\"window\":null,\"recent_ids\":[]}",
               "unsupported version 1.5");
    /* version 2: the per-sink part */
#define HEAD2 "{\"version\":2,\"watermark_ns\":\"5\",\"window\":null,\"recent_ids\":[]"
    expect_bad(HEAD2 "}", "sinks: missing");
    expect_bad(HEAD2 ",\"sinks\":[]}", "sinks: expected an object");
    expect_bad(HEAD2 ",\"sinks\":{\"a\":[]}}", "sinks.a: expected an object");
    expect_bad(HEAD2 ",\"sinks\":{\"a\":{}}}", "sinks.a.ids: missing");
    expect_bad(HEAD2 ",\"sinks\":{\"a\":{\"ids\":[{\"id\":\"x\"}]}}}", "sinks.a.ids[0].ts_ns");
    expect_bad(HEAD2 ",\"sinks\":{\"a\":{\"ids\":[]},\"a\":{\"ids\":[]}}}",
               "sinks.a: listed twice");
    expect_bad(HEAD2 ",\"sinks\":{\"\":{\"ids\":[]}}}", "sink name is empty");
    expect_bad("{\"version\":\"1\",\"watermark_ns\":\"5\",\"window\":null,\"recent_ids\":[]}",
               "version: expected a number");
    expect_bad("{\"version\":1,\"window\":null,\"recent_ids\":[]}", "watermark_ns: missing");
    expect_bad("{\"version\":1,\"watermark_ns\":5,\"window\":null,\"recent_ids\":[]}",
               "watermark_ns: expected a string");
    expect_bad("{\"version\":1,\"watermark_ns\":\"5x\",\"window\":null,\"recent_ids\":[]}",
               "watermark_ns: not an integer");
    expect_bad("{\"version\":1,\"watermark_ns\":\"9223372036854775808\",\"window\":null,"
               "\"recent_ids\":[]}",
               "watermark_ns: integer out of range");
    expect_bad(HEAD "\"recent_ids\":[]}", "window: missing");
    expect_bad(HEAD "\"window\":[],\"recent_ids\":[]}", "window: expected an object or null");
    expect_bad(HEAD "\"window\":{\"to_ns\":\"5\"},\"recent_ids\":[]}", "window.from_ns: missing");
    expect_bad(HEAD "\"window\":{\"from_ns\":\"5\"},\"recent_ids\":[]}", "window.to_ns: missing");
    expect_bad(HEAD "\"window\":{\"from_ns\":null,\"to_ns\":\"5\"},\"recent_ids\":[]}",
               "window.from_ns: expected a string");
    expect_bad(HEAD "\"window\":{\"from_ns\":\"9\",\"to_ns\":\"5\"},\"recent_ids\":[]}",
               "from_ns is after to_ns");
    expect_bad(HEAD "\"window\":{\"from_ns\":\"1\",\"to_ns\":\"5\",\"cursor\":3},"
                    "\"recent_ids\":[]}",
               "window.cursor");
    expect_bad(HEAD "\"window\":{\"from_ns\":\"1\",\"to_ns\":\"5\",\"low_ns\":1.5},"
                    "\"recent_ids\":[]}",
               "window.low_ns");
    expect_bad(HEAD "\"window\":null}", "recent_ids: missing");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":{}}", "recent_ids: expected an array");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[1]}", "recent_ids[0]: expected an object");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[{\"id\":\"a\",\"ts_ns\":\"1\"},"
                    "{\"ts_ns\":\"1\"}]}",
               "recent_ids[1].id");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[{\"id\":\"\",\"ts_ns\":\"1\"}]}",
               "recent_ids[0].id");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[{\"id\":\"a\"}]}",
               "recent_ids[0].ts_ns: missing");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[{\"id\":\"a\",\"ts_ns\":1700000000}]}",
               "recent_ids[0].ts_ns: expected a string");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[],\"events_total\":\"-1\"}", "events_total");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[],\"events_total\":3}", "events_total");
    expect_bad(HEAD "\"window\":null,\"recent_ids\":[],\"updated_ns\":\"x\"}", "updated_ns");
}
END_TEST

/* A checkpoint written by the last version-1 release (tests/golden/checkpoint-v1.json: a
 * --once run of 300 events; see tests/integration/test_persink.py) reads as it was: no per-sink
 * part (has_sinks false: "no sink is ahead of the position"), and encodes as version 2. */
START_TEST(test_decode_version1_fixture)
{
    sf_checkpoint cp;
    char err[256] = "";
    ck_assert_int_eq(sf_checkpoint_load("golden/checkpoint-v1.json", &cp, err, sizeof err), 0);
    ck_assert_int_eq(cp.version, 1);
    ck_assert(!cp.has_sinks);
    ck_assert_uint_eq(cp.nsinks, 0);
    ck_assert(cp.watermark_ns == INT64_C(1796432085854471108));
    ck_assert(!cp.in_window);
    ck_assert_uint_eq(cp.nids, 47);
    ck_assert_str_eq(cp.ids[0].id, "58fafcfaa84c83998d99281981c38505");
    ck_assert(cp.ids[0].ts_ns == INT64_C(1796431693837865766));
    ck_assert_uint_eq(cp.events_total, 300);
    sf_buf out = {0};
    ck_assert_int_eq(sf_checkpoint_encode(&cp, &out), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "{\"version\":2,"));
    sf_checkpoint b;
    ck_assert_int_eq(sf_checkpoint_decode(out.data, out.len, &b, err, sizeof err), 0);
    ck_assert(b.has_sinks && b.nsinks == 0 && b.nids == cp.nids);
    sf_buf_free(&out);
    sf_checkpoint_free(&b);
    sf_checkpoint_free(&cp);
}
END_TEST

START_TEST(test_decode_truncated)
{
    sf_checkpoint a;
    fill(&a);
    sf_buf out = {0};
    ck_assert_int_eq(sf_checkpoint_encode(&a, &out), 0);
    /* every strict prefix (ignoring the trailing newline) is rejected */
    size_t full = out.len;
    while (full > 0 && out.data[full - 1] == '\n')
        full--;
    for (size_t n = 0; n < full; n++) {
        sf_checkpoint b;
        char err[256] = "";
        int rc = sf_checkpoint_decode(out.data, n, &b, err, sizeof err);
        ck_assert_msg(rc == -EINVAL, "prefix of %zu bytes accepted", n);
        ck_assert_msg(err[0] != '\0', "no error message for prefix %zu", n);
    }
    sf_buf_free(&out);
    sf_checkpoint_free(&a);
}
END_TEST

START_TEST(test_decode_ignores_unknown_fields)
{
    sf_checkpoint cp;
    char err[256];
    ck_assert_int_eq(decode(HEAD "\"window\":null,\"recent_ids\":[],\"future\":{\"x\":1}}", &cp,
                            err, sizeof err),
                     0);
    ck_assert(cp.watermark_ns == 5);
    sf_checkpoint_free(&cp);
}
END_TEST

START_TEST(test_load_missing)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/none.json", tmpdir);
    sf_checkpoint cp;
    cp.watermark_ns = 1;
    ck_assert_int_eq(sf_checkpoint_load(path, &cp, err, sizeof err), 1);
    ck_assert(cp.watermark_ns == SF_TIME_UNSET);
    ck_assert(!cp.in_window);
    ck_assert_uint_eq(cp.nids, 0);
    sf_checkpoint_free(&cp);
}
END_TEST

START_TEST(test_load_corrupt)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/cp.json", tmpdir);
    write_file(path, "{\"version\":1,\"watermark_ns\":\"12");
    sf_checkpoint cp;
    int rc = sf_checkpoint_load(path, &cp, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    ck_assert_msg(strstr(err, "invalid JSON") != NULL, "%s", err);
    /* not replaced */
    ck_assert_str_eq(read_text(path), "{\"version\":1,\"watermark_ns\":\"12");

    write_file(path, "{\"version\":7,\"watermark_ns\":null,\"window\":null,\"recent_ids\":[]}");
    rc = sf_checkpoint_load(path, &cp, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(err, path) && strstr(err, "version"), "%s", err);

    write_file(path, "");
    rc = sf_checkpoint_load(path, &cp, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(err, path) && strstr(err, "empty"), "%s", err);
}
END_TEST

START_TEST(test_load_unreadable)
{
    char err[512] = "";
    sf_checkpoint cp;
    /* a directory is not a checkpoint */
    int rc = sf_checkpoint_load(tmpdir, &cp, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(err, tmpdir) != NULL, "%s", err);
    /* permission denied (skipped when running as root, which bypasses modes) */
    if (geteuid() != 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/cp.json", tmpdir);
        write_file(path, "{}");
        chmod(path, 0);
        rc = sf_checkpoint_load(path, &cp, err, sizeof err);
        ck_assert_int_eq(rc, -EACCES);
        ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    }
}
END_TEST

START_TEST(test_save_load)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/cp.json", tmpdir);
    sf_checkpoint a, b;
    fill(&a);
    int64_t before = sf_now_ns();
    ck_assert_msg(sf_checkpoint_save(path, &a, err, sizeof err) == 0, "%s", err);
    int64_t after = sf_now_ns();
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_uint_eq(count_entries(), 1); /* no temp file left */
    ck_assert_int_eq(sf_checkpoint_load(path, &b, err, sizeof err), 0);
    assert_same(&a, &b, false);
    ck_assert(b.updated_ns >= before && b.updated_ns <= after); /* save stamps the time */
    sf_checkpoint_free(&a);
    sf_checkpoint_free(&b);
}
END_TEST

START_TEST(test_save_replaces_atomically)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/cp.json", tmpdir);
    sf_checkpoint a, b;
    sf_checkpoint_init(&a);
    for (int i = 0; i < 50; i++) {
        a.watermark_ns = i;
        a.events_total = (uint64_t)i;
        ck_assert_msg(sf_checkpoint_save(path, &a, err, sizeof err) == 0, "%s", err);
        /* at every point the file is a complete, valid checkpoint with the newest content */
        ck_assert_int_eq(sf_checkpoint_load(path, &b, err, sizeof err), 0);
        ck_assert(b.watermark_ns == i);
        ck_assert(b.events_total == (uint64_t)i);
        sf_checkpoint_free(&b);
    }
    ck_assert_uint_eq(count_entries(), 1);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    sf_checkpoint_free(&a);
}
END_TEST

START_TEST(test_save_failure_keeps_old)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/cp.json", tmpdir);
    sf_checkpoint a, b;
    sf_checkpoint_init(&a);
    a.watermark_ns = 111;
    ck_assert_int_eq(sf_checkpoint_save(path, &a, err, sizeof err), 0);
    /* a save whose target is a directory fails at rename; the temp file must be removed */
    char dpath[600];
    snprintf(dpath, sizeof dpath, "%s/dir.json", tmpdir);
    ck_assert_int_eq(mkdir(dpath, 0700), 0);
    char sub[700];
    snprintf(sub, sizeof sub, "%s/x", dpath);
    write_file(sub, "occupied");
    a.watermark_ns = 222;
    int rc = sf_checkpoint_save(dpath, &a, err, sizeof err);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(err, dpath) != NULL, "%s", err);
    ck_assert_uint_eq(count_entries(), 2); /* cp.json and dir.json only: temp removed */
    unlink(sub);
    rmdir(dpath);
    /* a save into a missing directory fails cleanly */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope/cp.json", tmpdir);
    ck_assert_int_eq(sf_checkpoint_save(missing, &a, err, sizeof err), -ENOENT);
    ck_assert_msg(strstr(err, missing) != NULL, "%s", err);
    /* the old checkpoint is intact */
    ck_assert_int_eq(sf_checkpoint_load(path, &b, err, sizeof err), 0);
    ck_assert(b.watermark_ns == 111);
    sf_checkpoint_free(&b);
    sf_checkpoint_free(&a);
}
END_TEST

START_TEST(test_stale_temp_ignored)
{
    char path[512], stale[600], err[512] = "";
    snprintf(path, sizeof path, "%s/cp.json", tmpdir);
    sf_checkpoint a, b;
    sf_checkpoint_init(&a);
    a.watermark_ns = 42;
    ck_assert_int_eq(sf_checkpoint_save(path, &a, err, sizeof err), 0);
    /* a crash mid-save leaves a partial temp file behind */
    snprintf(stale, sizeof stale, "%s.tmp.1234.00000000deadbeef", path);
    write_file(stale, "{\"version\":1,\"waterm");
    ck_assert_int_eq(sf_checkpoint_load(path, &b, err, sizeof err), 0);
    ck_assert(b.watermark_ns == 42);
    sf_checkpoint_free(&b);
    /* and saving again still works */
    a.watermark_ns = 43;
    ck_assert_int_eq(sf_checkpoint_save(path, &a, err, sizeof err), 0);
    ck_assert_int_eq(sf_checkpoint_load(path, &b, err, sizeof err), 0);
    ck_assert(b.watermark_ns == 43);
    ck_assert_str_eq(read_text(stale), "{\"version\":1,\"waterm"); /* untouched */
    sf_checkpoint_free(&b);
    sf_checkpoint_free(&a);
}
END_TEST

START_TEST(test_save_relative_path)
{
    char cwd[512], err[512] = "";
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    sf_checkpoint a, b;
    sf_checkpoint_init(&a);
    a.watermark_ns = 7;
    int rc = sf_checkpoint_save("rel.json", &a, err, sizeof err);
    int rc2 = sf_checkpoint_load("rel.json", &b, err, sizeof err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(rc2, 0);
    ck_assert(b.watermark_ns == 7);
    sf_checkpoint_free(&b);
    sf_checkpoint_free(&a);
}
END_TEST

/* A save that fails part-way (the file size limit cuts its write short) must leave the
 * previous checkpoint complete and loadable: the new content goes to a temp file first. */
START_TEST(test_save_cut_short_keeps_old)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/cp.json", tmpdir);
    sf_checkpoint a, b;
    fill(&a);
    a.watermark_ns = 111;
    ck_assert_msg(sf_checkpoint_save(path, &a, err, sizeof err) == 0, "%s", err);
    sf_buf enc = {0};
    ck_assert_int_eq(sf_checkpoint_encode(&a, &enc), 0);
    ck_assert_uint_gt(enc.len, 64);
    /* the child process saves under RLIMIT_FSIZE = 32 bytes with SIGXFSZ ignored: write()
     * fails with EFBIG after a partial write */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = 32, .rlim_max = 32};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(10);
        a.watermark_ns = 222;
        char cerr[512] = "";
        int rc = sf_checkpoint_save(path, &a, cerr, sizeof cerr);
        _exit(rc == -EFBIG && strstr(cerr, path) ? 0 : rc == 0 ? 11 : 12);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the cut-short save did not fail with EFBIG (child status %d)", status);
    ck_assert_int_eq(sf_checkpoint_load(path, &b, err, sizeof err), 0);
    ck_assert(b.watermark_ns == 111);
    assert_same(&a, &b, false);
    sf_checkpoint_free(&b);
    ck_assert_uint_eq(count_entries(), 1); /* the partial temp file was removed */
    sf_buf_free(&enc);
    sf_checkpoint_free(&a);
}
END_TEST

/* The checkpoint is replaced, never rewritten in place: a hard link to the old file (e.g. a
 * backup taken with `ln`) still holds the old content after a save. */
START_TEST(test_save_replaces_not_rewrites)
{
    char path[512], link_path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/cp.json", tmpdir);
    snprintf(link_path, sizeof link_path, "%s/cp.backup", tmpdir);
    sf_checkpoint a, b;
    sf_checkpoint_init(&a);
    a.watermark_ns = 1000;
    ck_assert_int_eq(sf_checkpoint_save(path, &a, err, sizeof err), 0);
    struct stat before;
    ck_assert_int_eq(stat(path, &before), 0);
    ck_assert_int_eq(link(path, link_path), 0);
    a.watermark_ns = 2000;
    ck_assert_int_eq(sf_checkpoint_save(path, &a, err, sizeof err), 0);
    ck_assert_int_eq(sf_checkpoint_load(link_path, &b, err, sizeof err), 0);
    ck_assert_msg(b.watermark_ns == 1000, "the old checkpoint was rewritten in place");
    sf_checkpoint_free(&b);
    ck_assert_int_eq(sf_checkpoint_load(path, &b, err, sizeof err), 0);
    ck_assert(b.watermark_ns == 2000);
    sf_checkpoint_free(&b);
    struct stat after;
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert(after.st_ino != before.st_ino);
    ck_assert_int_eq(after.st_nlink, 1);
    unlink(link_path);
    sf_checkpoint_free(&a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_roundtrip_exact);
    tcase_add_test(tc, test_encode_matches_cjson);
    tcase_add_test(tc, test_roundtrip_extremes);
    tcase_add_test(tc, test_roundtrip_slices);
    tcase_add_test(tc, test_roundtrip_empty);
    tcase_add_test(tc, test_copy);
    tcase_add_test(tc, test_decode_rejects);
    tcase_add_test(tc, test_decode_truncated);
    tcase_add_test(tc, test_decode_version1_fixture);
    tcase_add_test(tc, test_decode_ignores_unknown_fields);
    suite_add_tcase(s, tc);
    TCase *io = tcase_create("io");
    tcase_add_checked_fixture(io, setup, teardown);
    tcase_add_test(io, test_load_missing);
    tcase_add_test(io, test_load_corrupt);
    tcase_add_test(io, test_load_unreadable);
    tcase_add_test(io, test_save_load);
    tcase_add_test(io, test_save_replaces_atomically);
    tcase_add_test(io, test_save_failure_keeps_old);
    tcase_add_test(io, test_save_cut_short_keeps_old);
    tcase_add_test(io, test_save_replaces_not_rewrites);
    tcase_add_test(io, test_stale_temp_ignored);
    tcase_add_test(io, test_save_relative_path);
    suite_add_tcase(s, io);
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
