/* Unit tests for daemon/pipeline/ledger.c: pages commit in submission order whatever order the
 * sinks finish them in; a page counts as in flight until every sink sent it; failures; close.
 * The ledger is plain data: no loop runs here. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/ledger.h"

static sf_event *mkevents(size_t n)
{
    sf_event *evs = calloc(n ? n : 1, sizeof *evs);
    ck_assert_ptr_nonnull(evs);
    for (size_t i = 0; i < n; i++) {
        char txt[128], err[128];
        snprintf(txt, sizeof txt, "{\"id\":\"e%zu\",\"timestamp\":%zu}", i, i + 1);
        ck_assert_int_eq(sf_event_parse(txt, strlen(txt), &evs[i], err, sizeof err), 0);
    }
    return evs;
}

static sf_ledger_page *add(sf_ledger *l, intptr_t token, size_t nsinks)
{
    sf_ledger_page *pg = sf_ledger_page_new(mkevents(2), 2, (void *)token);
    ck_assert_ptr_nonnull(pg);
    sf_ledger_append(l, pg, nsinks);
    return pg;
}

/* a sink sends and settles pg */
static bool finish(sf_ledger *l, sf_ledger_page *pg)
{
    sf_ledger_sent(l, pg);
    return sf_ledger_settled(l, pg, false);
}

static intptr_t pop(sf_ledger *l)
{
    sf_ledger_page *pg = sf_ledger_pop(l);
    if (!pg)
        return 0;
    intptr_t t = (intptr_t)pg->token;
    ck_assert(!pg->failed);
    sf_ledger_page_free(pg);
    return t;
}

START_TEST(test_in_order_with_out_of_order_completion)
{
    sf_ledger l = {0};
    sf_ledger_page *p1 = add(&l, 1, 2), *p2 = add(&l, 2, 2), *p3 = add(&l, 3, 2);
    ck_assert_uint_eq(l.npages, 3);
    /* pages 3 and 2 complete first (both sinks), page 1 is pending at one sink */
    ck_assert(!finish(&l, p3));
    ck_assert(finish(&l, p3));
    ck_assert(!finish(&l, p2));
    ck_assert(finish(&l, p2));
    ck_assert(!finish(&l, p1));
    ck_assert_int_eq(pop(&l), 0); /* page 1 holds back 2 and 3 */
    ck_assert_uint_eq(l.npages, 3);
    ck_assert(finish(&l, p1));
    ck_assert_int_eq(pop(&l), 1);
    ck_assert_int_eq(pop(&l), 2);
    ck_assert_int_eq(pop(&l), 3);
    ck_assert_int_eq(pop(&l), 0);
    ck_assert_uint_eq(l.npages, 0);
    ck_assert_ptr_null(l.head);
    ck_assert_ptr_null(l.tail);
    /* the list works again after it emptied */
    sf_ledger_page *p4 = add(&l, 4, 1);
    ck_assert(finish(&l, p4));
    ck_assert_int_eq(pop(&l), 4);
    sf_ledger_free(&l);
}
END_TEST

START_TEST(test_settling_stops_counting_as_in_flight)
{
    sf_ledger l = {0};
    sf_ledger_page *p1 = add(&l, 1, 2), *p2 = add(&l, 2, 2);
    ck_assert_uint_eq(sf_ledger_inflight(&l), 2);
    ck_assert(!sf_ledger_sent(&l, p1));
    ck_assert_ptr_nonnull(p1->events); /* the other sink still needs them */
    ck_assert(sf_ledger_sent(&l, p1));
    ck_assert_ptr_null(p1->events); /* freed: only settlement is awaited */
    ck_assert(p1->settling);
    ck_assert_uint_eq(l.nsettling, 1);
    ck_assert_uint_eq(sf_ledger_inflight(&l), 1);
    ck_assert_uint_eq(l.npages, 2);
    ck_assert(!sf_ledger_settled(&l, p1, false));
    ck_assert(sf_ledger_settled(&l, p1, false));
    ck_assert_int_eq(pop(&l), 1);
    ck_assert_uint_eq(l.nsettling, 0);
    ck_assert_uint_eq(sf_ledger_inflight(&l), 1);
    (void)p2;
    sf_ledger_free(&l); /* frees p2 with its events */
    ck_assert_uint_eq(l.npages, 0);
}
END_TEST

START_TEST(test_failed_sink_fails_the_page)
{
    sf_ledger l = {0};
    sf_ledger_page *p1 = add(&l, 1, 2);
    sf_ledger_sent(&l, p1);
    sf_ledger_sent(&l, p1);
    ck_assert(!sf_ledger_settled(&l, p1, true)); /* one sink could not settle it */
    ck_assert(sf_ledger_settled(&l, p1, false));
    sf_ledger_page *pg = sf_ledger_pop(&l);
    ck_assert_ptr_eq(pg, p1);
    ck_assert(pg->failed);
    sf_ledger_page_free(pg);
    sf_ledger_free(&l);
}
END_TEST

START_TEST(test_no_sinks_complete_at_once)
{
    sf_ledger l = {0};
    add(&l, 1, 0);
    ck_assert_int_eq(pop(&l), 1);
    sf_ledger_free(&l);
}
END_TEST

/* Close: the complete prefix still commits ok; from the first incomplete page on, every page
 * fails, also a complete one behind it (the checkpoint must not jump over a failed page). */
START_TEST(test_fail_rest)
{
    sf_ledger l = {0};
    sf_ledger_page *p1 = add(&l, 1, 1), *p2 = add(&l, 2, 1), *p3 = add(&l, 3, 1);
    sf_ledger_page *p4 = add(&l, 4, 1);
    ck_assert(finish(&l, p1));
    ck_assert(finish(&l, p3));
    sf_ledger_fail_rest(&l);
    ck_assert(!p1->failed);
    ck_assert(p2->failed && p3->failed && p4->failed);
    ck_assert_int_eq(pop(&l), 1);
    ck_assert_ptr_null(sf_ledger_pop(&l)); /* page 2 is not complete */
    sf_ledger_free(&l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ledger");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_in_order_with_out_of_order_completion);
    tcase_add_test(tc, test_settling_stops_counting_as_in_flight);
    tcase_add_test(tc, test_failed_sink_fails_the_page);
    tcase_add_test(tc, test_no_sinks_complete_at_once);
    tcase_add_test(tc, test_fail_rest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
