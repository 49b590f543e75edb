/* Unit tests for daemon/core/arena.c and cJSON's allocation hooks (core/json.c): bump
 * allocation, chunks, reset, ownership; inside an arena cJSON allocates from it and its free
 * is a no-op for that memory; outside (or after) plain malloc/free; nesting; failed parses. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/json.h"

START_TEST(test_alloc_and_chunks)
{
    _Alignas(SF_ARENA_ALIGN) char buf[256];
    sf_arena a;
    sf_arena_init(&a, buf, sizeof buf);
    char *p = sf_arena_alloc(&a, 10), *q = sf_arena_alloc(&a, 0), *r = sf_arena_alloc(&a, 1);
    ck_assert_ptr_eq(p, buf); /* the caller's buffer first */
    ck_assert_ptr_nonnull(q);
    ck_assert(q != p && r != q);
    ck_assert_uint_eq((uintptr_t)q % SF_ARENA_ALIGN, 0);
    ck_assert_uint_eq((uintptr_t)r % SF_ARENA_ALIGN, 0);
    ck_assert(sf_arena_owns(&a, p) && sf_arena_owns(&a, r));
    memset(p, 'x', 10);
    /* larger than what is left: a chunk */
    char *big = sf_arena_alloc(&a, 10000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'y', 10000);
    ck_assert(big < buf || big >= buf + sizeof buf);
    ck_assert(sf_arena_owns(&a, big) && sf_arena_owns(&a, big + 9999));
    ck_assert_ptr_nonnull(a.chunks);
    for (int i = 0; i < 1000; i++) /* many chunks */
        ck_assert_ptr_nonnull(sf_arena_alloc(&a, 100));
    ck_assert_uint_ge(a.used, 10000 + 100 * 1000);
    int stack;
    ck_assert(!sf_arena_owns(&a, &stack));
    ck_assert(!a.oom);
    ck_assert_ptr_null(sf_arena_alloc(&a, SIZE_MAX - 3)); /* too large: NULL, noted */
    ck_assert(a.oom);
    /* reset: the chunks go, the buffer is reused */
    sf_arena_reset(&a);
    ck_assert_ptr_null(a.chunks);
    ck_assert_uint_eq(a.used, 0);
    ck_assert(!a.oom);
    ck_assert(!sf_arena_owns(&a, big));
    ck_assert_ptr_eq(sf_arena_alloc(&a, 8), buf);
    sf_arena_fini(&a);

    /* no buffer at all, and a malloc'd arena */
    sf_arena_init(&a, NULL, 0);
    ck_assert_ptr_nonnull(sf_arena_alloc(&a, 1));
    sf_arena_fini(&a);
    sf_arena *h = sf_arena_new(100);
    ck_assert_ptr_nonnull(h);
    char *x = sf_arena_alloc(h, 100);
    ck_assert(sf_arena_owns(h, x));
    ck_assert_ptr_null(h->chunks); /* fitted in the first region */
    ck_assert_ptr_nonnull(sf_arena_alloc(h, 1));
    ck_assert_ptr_nonnull(h->chunks);
    sf_arena_free(h);
    sf_arena_free(NULL);
}
END_TEST

static const char doc[] = "{\"id\":\"e1\",\"n\":[1,2.5,-3e2,true,false,null],\"s\":\"\\u00e9\\n\","
                          "\"o\":{\"k\":{}}}";

START_TEST(test_hooks_parse_in_arena)
{
    sf_json_init();
    sf_json_init();                 /* idempotent */
    sf_arena *a = sf_arena_new(64); /* small: the tree needs chunks too */
    ck_assert_ptr_nonnull(a);
    const char *end = NULL;
    cJSON *t = sf_json_parse_in(a, doc, sizeof doc - 1, &end);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_eq(end, doc + sizeof doc - 1);
    ck_assert(sf_arena_owns(a, t));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "s");
    ck_assert_str_eq(s->valuestring, "\xc3\xa9\n");
    ck_assert(sf_arena_owns(a, s->valuestring));
    ck_assert(sf_arena_owns(a, s->string));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "n")), 6);
    ck_assert_ptr_null(sf_json_arena_set(NULL)); /* parse_in restored "none" */
    /* a printed copy (no arena current) is plain malloc: cJSON_free frees it */
    char *out = cJSON_PrintUnformatted(t);
    ck_assert_ptr_nonnull(out);
    ck_assert(!sf_arena_owns(a, out));
    ck_assert_str_eq(out, "{\"id\":\"e1\",\"n\":[1,2.5,-300,true,false,null],\"s\":\"\xc3\xa9\\n\","
                          "\"o\":{\"k\":{}}}");
    cJSON_free(out);
    sf_arena_free(a); /* the tree dies with it: never cJSON_Delete'd */
}
END_TEST

START_TEST(test_hooks_free_noop_inside)
{
    sf_json_init();
    _Alignas(SF_ARENA_ALIGN) char buf[4096];
    sf_arena a;
    sf_arena_init(&a, buf, sizeof buf);
    void *outside = cJSON_malloc(32); /* before: malloc */
    ck_assert_ptr_nonnull(outside);
    ck_assert(!sf_arena_owns(&a, outside));
    ck_assert_ptr_null(sf_json_arena_set(&a));
    void *in = cJSON_malloc(32);
    ck_assert(sf_arena_owns(&a, in));
    size_t used = a.used;
    cJSON_free(in); /* no-op: stays the arena's */
    ck_assert_uint_eq(a.used, used);
    cJSON_free(outside); /* not the arena's: really freed (ASan/valgrind would see a leak) */
    cJSON *tree = cJSON_CreateObject(); /* cJSON_Delete inside the arena: no-op frees */
    cJSON_AddStringToObject(tree, "k", "v");
    ck_assert(sf_arena_owns(&a, tree));
    cJSON_Delete(tree);
    /* nesting: an inner arena, then the outer one is current again */
    sf_arena *inner = sf_arena_new(256);
    ck_assert_ptr_eq(sf_json_arena_set(inner), &a);
    void *i2 = cJSON_malloc(16);
    ck_assert(sf_arena_owns(inner, i2) && !sf_arena_owns(&a, i2));
    cJSON_free(i2);
    ck_assert_ptr_eq(sf_json_arena_set(&a), inner);
    ck_assert(sf_arena_owns(&a, cJSON_malloc(16)));
    sf_arena_free(inner);
    ck_assert_ptr_eq(sf_json_arena_set(NULL), &a);
    /* none current: plain malloc/free again */
    cJSON *m = cJSON_Parse(doc);
    ck_assert_ptr_nonnull(m);
    ck_assert(!sf_arena_owns(&a, m));
    cJSON_Delete(m);
    sf_arena_fini(&a);
}
END_TEST

START_TEST(test_hooks_failed_parse)
{
    sf_json_init();
    static const char *bad[] = {
        "{\"a\":[1,2,{\"b\":\"x\"}", "{\"a\":tru}", "[1,2,]", "\"\\u12\"", "{\"a\" 1}", "",
        "{\"k\":\"v\",\"n\":-}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        _Alignas(SF_ARENA_ALIGN) char buf[64];
        sf_arena a;
        sf_arena_init(&a, buf, sizeof buf); /* small: chunks too */
        const char *end = NULL;
        ck_assert_ptr_null(sf_json_parse_in(&a, bad[i], strlen(bad[i]), &end));
        ck_assert_ptr_nonnull(end); /* cJSON says where */
        ck_assert(end >= bad[i] && end <= bad[i] + strlen(bad[i]));
        ck_assert(!a.oom);
        ck_assert_ptr_null(sf_json_arena_set(NULL));
        sf_arena_fini(&a); /* everything cJSON took, freed here (ASan checks for leaks) */
    }
    /* deep nesting beyond cJSON's limit, inside an arena */
    char deep[3000];
    memset(deep, '[', 1500);
    memset(deep + 1500, ']', 1500);
    sf_arena *h = sf_arena_new(1024);
    ck_assert_ptr_null(sf_json_parse_in(h, deep, sizeof deep, NULL));
    sf_arena_free(h);
}
END_TEST

/* sf_json_find finds what cJSON_GetObjectItemCaseSensitive finds, name by name: the first
 * member of a name, NULL for absent names and for objects that are not objects. */
static void check_find(const cJSON *obj, const sf_json_keys *k)
{
    const cJSON *found[SF_JSON_KEYS_SLOTS / 2];
    for (size_t i = 0; i < k->n; i++)
        found[i] = (const cJSON *)&found; /* not NULL: every entry must be written */
    sf_json_find(obj, k, found);
    for (size_t i = 0; i < k->n; i++)
        ck_assert_msg(found[i] == cJSON_GetObjectItemCaseSensitive(obj, k->names[i]), "%s",
                      k->names[i]);
}

START_TEST(test_json_find)
{
    /* the most names a set holds: every slot chain is probed */
    enum { N = SF_JSON_KEYS_SLOTS / 2 };
    static char store[N][16];
    static const char *names[N];
    for (int i = 0; i < N; i++) {
        snprintf(store[i], sizeof store[i], "k%d", i);
        names[i] = store[i];
    }
    sf_json_keys k;
    sf_json_keys_init(&k, names, N);
    cJSON *o = cJSON_CreateObject();
    for (int i = N + 40; i-- > 0;) { /* reversed, some names outside the set */
        char n[16];
        snprintf(n, sizeof n, "k%d", i);
        if (i % 3)
            cJSON_AddNumberToObject(o, n, i);
    }
    for (int i = 0; i < N; i += 5) { /* duplicates: the first member counts */
        char n[16];
        snprintf(n, sizeof n, "k%d", i);
        cJSON_AddStringToObject(o, n, "dup");
    }
    cJSON_AddStringToObject(o, "", "empty name");
    cJSON_AddStringToObject(o, "K1", "case differs");
    check_find(o, &k);
    const cJSON *found[N];
    sf_json_find(o, &k, found);
    ck_assert_ptr_null(found[3]); /* 3 % 3 == 0: absent */
    ck_assert(cJSON_IsNumber(found[10]) && found[10]->valuedouble == 10);
    check_find(NULL, &k);
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, cJSON_CreateString("k1"));
    check_find(arr, &k); /* elements have no names: nothing, as a lookup finds */
    cJSON *str = cJSON_CreateString("k1");
    check_find(str, &k);
    cJSON *empty = cJSON_CreateObject();
    check_find(empty, &k);
    cJSON_Delete(o);
    cJSON_Delete(arr);
    cJSON_Delete(str);
    cJSON_Delete(empty);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_alloc_and_chunks);
    tcase_add_test(tc, test_hooks_parse_in_arena);
    tcase_add_test(tc, test_hooks_free_noop_inside);
    tcase_add_test(tc, test_hooks_failed_parse);
    tcase_add_test(tc, test_json_find);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
