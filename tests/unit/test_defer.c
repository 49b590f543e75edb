/* Unit tests for daemon/core/defer.c: calls run on a later loop turn, never inside post, in FIFO
 * order, coalesced while queued; a node posted during a drain waits for the next drain (after
 * the loop polled again); cancel; an empty queue does not keep the loop alive; close. Every test
 * ends with uv_loop_close() == 0: all handles closed. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/defer.h"

static struct {
    uv_loop_t loop;
    sf_defer d;
    char log[256]; /* names of the nodes that ran, in order */
    sf_defer_node a, b, c;
    int repost_a;     /* a posts itself again this many times */
    bool a_posts_b;   /* a posts b */
    bool a_cancels_b; /* a cancels b */
    bool a_closes;    /* a closes the queue */
    unsigned spins;   /* s: runs of the self-posting node */
    bool timer_fired;
} T;

static void ran(void *arg)
{
    const char *name = arg;
    size_t l = strlen(T.log);
    snprintf(T.log + l, sizeof T.log - l, "%s", name);
    if (name[0] == 'a') {
        if (T.a_posts_b)
            sf_defer_post(&T.d, &T.b);
        if (T.a_cancels_b)
            sf_defer_cancel(&T.b);
        if (T.repost_a > 0) {
            T.repost_a--;
            sf_defer_post(&T.d, &T.a);
        }
        if (T.a_closes)
            sf_defer_close(&T.d);
    }
}

static void setup(void)
{
    memset(&T, 0, sizeof T);
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
    sf_defer_init(&T.loop, &T.d);
    sf_defer_node_init(&T.a, ran, "a");
    sf_defer_node_init(&T.b, ran, "b");
    sf_defer_node_init(&T.c, ran, "c");
}

static void teardown(void)
{
    sf_defer_close(&T.d);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
}

START_TEST(test_fifo_later_turn)
{
    setup();
    sf_defer_post(&T.d, &T.a);
    sf_defer_post(&T.d, &T.b);
    sf_defer_post(&T.d, &T.c);
    ck_assert_str_eq(T.log, ""); /* never inside post */
    ck_assert(T.a.queued && T.b.queued && T.c.queued);
    uv_run(&T.loop, UV_RUN_NOWAIT);
    ck_assert_str_eq(T.log, "abc");
    ck_assert(!T.a.queued && !T.b.queued && !T.c.queued);
    /* empty again: the queue does not keep the loop alive */
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    teardown();
}
END_TEST

START_TEST(test_coalesce_keeps_place)
{
    setup();
    sf_defer_post(&T.d, &T.a);
    sf_defer_post(&T.d, &T.b);
    sf_defer_post(&T.d, &T.a); /* already queued: keeps its place, runs once */
    sf_defer_post(&T.d, &T.c);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(T.log, "abc");
    /* a node runs again when posted again after it ran */
    sf_defer_post(&T.d, &T.b);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(T.log, "abcb");
    teardown();
}
END_TEST

START_TEST(test_posted_during_drain_waits_for_next_drain)
{
    setup();
    T.a_posts_b = true;
    T.repost_a = 1;
    sf_defer_post(&T.d, &T.a);
    sf_defer_post(&T.d, &T.c);
    uv_run(&T.loop, UV_RUN_NOWAIT); /* one loop iteration: one drain */
    ck_assert_str_eq(T.log, "ac");  /* b and the second a wait for the next drain */
    ck_assert(T.b.queued && T.a.queued);
    T.a_posts_b = false;
    uv_run(&T.loop, UV_RUN_NOWAIT);
    ck_assert_str_eq(T.log, "acba"); /* in the order they were posted */
    teardown();
}
END_TEST

static void spin(void *arg)
{
    (void)arg;
    T.spins++;
    if (!T.timer_fired)
        sf_defer_post(&T.d, &T.c); /* forever, until the timer fired */
}

static void timer_cb(uv_timer_t *t)
{
    T.timer_fired = true;
    uv_close((uv_handle_t *)t, NULL);
}

/* A node that posts itself again and again does not starve timers (nor I/O): each run is a
 * loop iteration. */
START_TEST(test_self_posting_does_not_starve_the_loop)
{
    setup();
    uv_timer_t t;
    uv_timer_init(&T.loop, &t);
    uv_timer_start(&t, timer_cb, 5, 0);
    sf_defer_node_init(&T.c, spin, NULL);
    sf_defer_post(&T.d, &T.c);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert(T.timer_fired);
    ck_assert_uint_ge(T.spins, 2);
    teardown();
}
END_TEST

START_TEST(test_cancel)
{
    setup();
    sf_defer_post(&T.d, &T.a);
    sf_defer_post(&T.d, &T.b);
    sf_defer_post(&T.d, &T.c);
    sf_defer_cancel(&T.b);
    sf_defer_cancel(&T.b); /* not queued: nothing */
    ck_assert(!T.b.queued);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(T.log, "ac");
    /* cancelled from inside the drain that would have run it */
    T.log[0] = '\0';
    T.a_cancels_b = true;
    sf_defer_post(&T.d, &T.a);
    sf_defer_post(&T.d, &T.b);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(T.log, "a");
    /* everything cancelled: the loop does not stay alive for an empty queue */
    sf_defer_post(&T.d, &T.c);
    sf_defer_cancel(&T.c);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    ck_assert_str_eq(T.log, "a");
    teardown();
}
END_TEST

START_TEST(test_close_drops_queued_and_ignores_posts)
{
    setup();
    sf_defer_post(&T.d, &T.a);
    sf_defer_post(&T.d, &T.b);
    sf_defer_close(&T.d);
    ck_assert(!T.a.queued && !T.b.queued);
    sf_defer_post(&T.d, &T.c);
    ck_assert(!T.c.queued);
    sf_defer_cancel(&T.a); /* an owner freeing its node later: harmless */
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(T.log, "");
    teardown(); /* a second close is a no-op */
}
END_TEST

START_TEST(test_close_from_inside_a_drain)
{
    setup();
    T.a_closes = true;
    sf_defer_post(&T.d, &T.a);
    sf_defer_post(&T.d, &T.b);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_str_eq(T.log, "a"); /* b was dropped by the close */
    ck_assert(!T.b.queued);
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("defer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10); /* a drain that never ends fails here, not after a minute */
    tcase_add_test(tc, test_fifo_later_turn);
    tcase_add_test(tc, test_coalesce_keeps_place);
    tcase_add_test(tc, test_posted_during_drain_waits_for_next_drain);
    tcase_add_test(tc, test_self_posting_does_not_starve_the_loop);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_close_drops_queued_and_ignores_posts);
    tcase_add_test(tc, test_close_from_inside_a_drain);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
