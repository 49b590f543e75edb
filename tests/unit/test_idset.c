/* Unit tests for daemon/core/idset.c: the bounded id set used for dedup across windows. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idset.h"
#include "core/util.h"

static void count_cb(void *ud, const char *id, int64_t ts)
{
    (void)id;
    (void)ts;
    (*(size_t *)ud)++;
}

static size_t count_each(const sf_idset *s)
{
    size_t n = 0;
    sf_idset_each(s, count_cb, &n);
    return n;
}

START_TEST(test_add_has)
{
    sf_idset s;
    sf_idset_init(&s, 0);
    ck_assert_uint_eq(s.max, 100000); /* 0 = default bound */
    ck_assert(!sf_idset_has(&s, "a"));
    ck_assert_int_eq(sf_idset_add(&s, "a", 10), 0);
    ck_assert_int_eq(sf_idset_add(&s, "b", 20), 0);
    ck_assert(sf_idset_has(&s, "a"));
    ck_assert(sf_idset_has(&s, "b"));
    ck_assert(!sf_idset_has(&s, "c"));
    ck_assert(!sf_idset_has(&s, ""));
    ck_assert_uint_eq(s.n, 2);
    /* duplicates: counted once, newest time kept */
    ck_assert_int_eq(sf_idset_add(&s, "a", 5), 0);
    ck_assert_int_eq(sf_idset_add(&s, "a", 30), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(count_each(&s), 2);
    ck_assert_int_eq(sf_idset_prune(&s, 25), 0); /* a is now 30, b 20 */
    ck_assert(sf_idset_has(&s, "a"));
    ck_assert(!sf_idset_has(&s, "b"));
    ck_assert_uint_eq(s.n, 1);
    sf_idset_free(&s);
    ck_assert(!sf_idset_has(&s, "a"));
    sf_idset_free(&s); /* idempotent */
}
END_TEST

/* Removing ids from a dense table keeps every other id findable (probe chains are repaired). */
START_TEST(test_remove)
{
    sf_idset s;
    sf_idset_init(&s, 0);
    char id[32];
    ck_assert(!sf_idset_remove(&s, "none"));
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_int_eq(sf_idset_add(&s, id, i), 0);
    }
    for (int i = 0; i < 5000; i += 3) {
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert(sf_idset_remove(&s, id));
        ck_assert(!sf_idset_remove(&s, id));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_msg(sf_idset_has(&s, id) == (i % 3 != 0), "%s", id);
    }
    ck_assert_uint_eq(s.n, 5000 - 1667);
    ck_assert_uint_eq(count_each(&s), s.n);
    sf_idset_free(&s);
}
END_TEST

START_TEST(test_prune_by_time)
{
    sf_idset s;
    sf_idset_init(&s, 0);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_int_eq(sf_idset_add(&s, id, (int64_t)i * 1000), 0);
    }
    ck_assert_int_eq(sf_idset_prune(&s, 500 * 1000), 0);
    ck_assert_uint_eq(s.n, 500);
    ck_assert_uint_eq(count_each(&s), 500);
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_msg(sf_idset_has(&s, id) == (i >= 500), "%s", id);
    }
    /* survivors can still be found and new ones added after the rebuild */
    ck_assert_int_eq(sf_idset_add(&s, "id-1", 1), 0);
    ck_assert(sf_idset_has(&s, "id-1"));
    ck_assert_int_eq(sf_idset_prune(&s, INT64_MAX), 0);
    ck_assert_uint_eq(s.n, 0);
    ck_assert(!sf_idset_has(&s, "id-999"));
    ck_assert_uint_eq(s.evicted, 0); /* pruning is not eviction */
    sf_idset_free(&s);

    /* pruning an empty set */
    sf_idset_init(&s, 10);
    ck_assert_int_eq(sf_idset_prune(&s, 0), 0);
    ck_assert_uint_eq(s.n, 0);
    sf_idset_free(&s);
}
END_TEST

/* keeps times in [lo, hi] of the two ranges in ud */
static bool in_ranges(void *ud, int64_t ts)
{
    const int64_t *r = ud;
    return (ts >= r[0] && ts <= r[1]) || (ts >= r[2] && ts <= r[3]);
}

/* Adds "<prefix>-<i>" at time i for i in [from, to). */
static void add_ids(sf_idset *s, const char *prefix, int from, int to)
{
    char id[32];
    for (int i = from; i < to; i++) {
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        ck_assert_int_eq(sf_idset_add(s, id, i), 0);
    }
}

START_TEST(test_filter_keeps_what_it_is_told_and_shrinks)
{
    sf_idset s;
    sf_idset_init(&s, 0);
    char id[32];
    add_ids(&s, "id", 0, 20000);
    size_t big = s.cap;
    int64_t r[4] = {100, 149, 19990, 20000}; /* 50 + 10 survivors */
    ck_assert_int_eq(sf_idset_filter(&s, in_ranges, r), 0);
    ck_assert_uint_eq(s.n, 60);
    ck_assert_uint_eq(count_each(&s), 60);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        ck_assert_msg(sf_idset_has(&s, id) == ((i >= 100 && i < 150) || i >= 19990), "%s", id);
    }
    /* the table fits what is left (memory follows the set, not its largest size) */
    ck_assert_uint_lt(s.cap, big / 64);
    ck_assert_uint_ge(s.cap * 3, s.n * 4);
    /* and grows again as before */
    add_ids(&s, "new", 0, 5000);
    ck_assert_uint_eq(s.n, 5060);
    ck_assert(sf_idset_has(&s, "new-4999") && sf_idset_has(&s, "id-120"));
    ck_assert_uint_eq(s.evicted, 0); /* filtering is not eviction */
    sf_idset_free(&s);
}
END_TEST

/* A set pruned as it grows: next at twice its size, but before a page of adds could make it
 * evict (eviction drops the oldest, which may still be needed); never while pruning cannot
 * bring it under that. */
START_TEST(test_next_prune)
{
    sf_idset s;
    sf_idset_init(&s, 2000);
    ck_assert_uint_eq(sf_idset_next_prune(&s, 512, 50), 512); /* empty: the minimum */
    add_ids(&s, "id", 0, 300);
    ck_assert_uint_eq(sf_idset_next_prune(&s, 512, 50), 600); /* doubled */
    add_ids(&s, "id", 300, 1000);
    ck_assert_uint_eq(sf_idset_next_prune(&s, 512, 50), 1950); /* not past max - a page */
    add_ids(&s, "id", 1000, 1960);
    ck_assert_uint_eq(sf_idset_next_prune(&s, 512, 50), SIZE_MAX); /* nothing to gain */
    sf_idset_free(&s);
}
END_TEST

START_TEST(test_unset_time_pruned)
{
    sf_idset s;
    sf_idset_init(&s, 0);
    ck_assert_int_eq(sf_idset_add(&s, "untimed", SF_TIME_UNSET), 0);
    ck_assert_int_eq(sf_idset_add(&s, "old", -5), 0);
    ck_assert_int_eq(sf_idset_add(&s, "new", 100), 0);
    ck_assert_int_eq(sf_idset_prune(&s, INT64_MIN + 1), 0);
    ck_assert(!sf_idset_has(&s, "untimed"));
    ck_assert(sf_idset_has(&s, "old"));
    ck_assert(sf_idset_has(&s, "new"));
    ck_assert_int_eq(sf_idset_add(&s, "untimed2", SF_TIME_UNSET), 0);
    ck_assert_int_eq(sf_idset_prune(&s, 0), 0);
    ck_assert(!sf_idset_has(&s, "untimed2"));
    ck_assert(!sf_idset_has(&s, "old"));
    ck_assert(sf_idset_has(&s, "new"));
    ck_assert_uint_eq(s.n, 1);
    sf_idset_free(&s);
}
END_TEST

START_TEST(test_growth_100k)
{
    sf_idset s;
    sf_idset_init(&s, 200000);
    char id[48];
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "evt-%08d-%x", i, (unsigned)i * 2654435761u);
        ck_assert_int_eq(sf_idset_add(&s, id, 1709626200000000000 + i), 0);
    }
    ck_assert_uint_eq(s.n, 100000);
    ck_assert_uint_eq(s.evicted, 0);
    ck_assert(s.cap >= s.n * 4 / 3);       /* load factor <= 3/4 */
    ck_assert((s.cap & (s.cap - 1)) == 0); /* power of two */
    for (int i = 0; i < 100000; i += 7) {
        snprintf(id, sizeof id, "evt-%08d-%x", i, (unsigned)i * 2654435761u);
        ck_assert(sf_idset_has(&s, id));
    }
    ck_assert(!sf_idset_has(&s, "evt-00100000-0"));
    ck_assert_uint_eq(count_each(&s), 100000);
    sf_idset_free(&s);
}
END_TEST

typedef struct {
    int64_t min_ts;
} minacc;

static void min_cb(void *ud, const char *id, int64_t ts)
{
    (void)id;
    minacc *m = ud;
    if (ts < m->min_ts)
        m->min_ts = ts;
}

START_TEST(test_bound_evicts_oldest)
{
    sf_idset s;
    sf_idset_init(&s, 1000);
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "e%d", i);
        ck_assert_int_eq(sf_idset_add(&s, id, (int64_t)i), 0);
        ck_assert_msg(s.n <= s.max, "n %zu > max %zu after %d adds", s.n, s.max, i + 1);
    }
    ck_assert_uint_eq(s.evicted + s.n, 5000);
    ck_assert(s.evicted >= 4000);
    /* the newest are kept, the oldest went */
    ck_assert(sf_idset_has(&s, "e4999"));
    ck_assert(sf_idset_has(&s, "e4500"));
    ck_assert(!sf_idset_has(&s, "e0"));
    ck_assert(!sf_idset_has(&s, "e3000"));
    minacc m = {INT64_MAX};
    sf_idset_each(&s, min_cb, &m);
    /* every survivor is newer than every evicted entry */
    ck_assert_int_eq(m.min_ts, (int64_t)s.evicted);
    sf_idset_free(&s);
}
END_TEST

START_TEST(test_bound_evicts_untimed_first)
{
    sf_idset s;
    sf_idset_init(&s, 10);
    char id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "u%d", i);
        ck_assert_int_eq(sf_idset_add(&s, id, SF_TIME_UNSET), 0);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "t%d", i);
        ck_assert_int_eq(sf_idset_add(&s, id, 100 + i), 0);
    }
    ck_assert_uint_eq(s.n, 10);
    ck_assert_int_eq(sf_idset_add(&s, "t5", 105), 0);
    ck_assert(s.n <= 10);
    ck_assert(s.evicted > 0);
    ck_assert(!sf_idset_has(&s, "u0"));
    ck_assert(sf_idset_has(&s, "t0"));
    ck_assert(sf_idset_has(&s, "t5"));
    sf_idset_free(&s);
}
END_TEST

/* Regression: when more than a tenth of the entries share the oldest timestamp, pruning "< cut"
 * removes nothing; the bound must still hold. */
START_TEST(test_bound_with_equal_timestamps)
{
    sf_idset s;
    sf_idset_init(&s, 100);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "same%d", i);
        ck_assert_int_eq(sf_idset_add(&s, id, 1709626200000000000), 0);
    }
    ck_assert_msg(s.n <= s.max, "n %zu exceeds max %zu (evicted %llu)", s.n, s.max,
                  (unsigned long long)s.evicted);
    ck_assert(sf_idset_has(&s, "same999"));
    sf_idset_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idset");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_add_has);
    tcase_add_test(tc, test_prune_by_time);
    tcase_add_test(tc, test_unset_time_pruned);
    tcase_add_test(tc, test_filter_keeps_what_it_is_told_and_shrinks);
    tcase_add_test(tc, test_next_prune);
    tcase_add_test(tc, test_growth_100k);
    tcase_add_test(tc, test_bound_evicts_oldest);
    tcase_add_test(tc, test_bound_evicts_untimed_first);
    tcase_add_test(tc, test_bound_with_equal_timestamps);
    tcase_add_test(tc, test_remove);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
