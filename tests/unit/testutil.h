/* Helpers shared by the unit tests: scratch directories and running a libuv loop until a
 * condition holds, under a hang guard. Header-only (every unit test is its own executable). */
#ifndef SF_TESTUTIL_H
#define SF_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

#define SF_TEST_HANG_GUARD_MS 20000 /* a hang guard only, not a timing target */

/* Scratch directories. Every directory sf_test_mkdtemp makes is inside one root directory,
 * $TMPDIR/sf-unit-XXXXXX (/tmp without TMPDIR), made when the test program starts and removed
 * with everything in it when it exits. That parent process outlives Check's forked children, so
 * what a failed test (whose teardown Check skips), a crash or a timeout left is removed too.
 * With SF_KEEP_TMP=1 nothing is removed and the root's path is printed on stderr. */
static char sf_test_root[512];
static pid_t sf_test_root_owner;

static inline bool sf_test_keep_tmp(void)
{
    const char *k = getenv("SF_KEEP_TMP");
    return k && strcmp(k, "1") == 0;
}

static inline void sf_test_rmtree_all(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4200];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            int w = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (w < 0 || (size_t)w >= sizeof p)
                continue; /* cannot name it: left behind */
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                sf_test_rmtree_all(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

__attribute__((constructor)) static void sf_test_root_make(void)
{
    const char *tmp = getenv("TMPDIR");
    int w = snprintf(sf_test_root, sizeof sf_test_root, "%s/sf-unit-XXXXXX",
                     tmp && *tmp ? tmp : "/tmp");
    if (w < 0 || (size_t)w >= sizeof sf_test_root || !mkdtemp(sf_test_root))
        sf_test_root[0] = '\0'; /* sf_test_mkdtemp fails the test that needs it */
    sf_test_root_owner = getpid();
}

/* at exit of the program, not of a forked child (a passing test exits through exit()) */
__attribute__((destructor)) static void sf_test_root_remove(void)
{
    if (!sf_test_root[0] || getpid() != sf_test_root_owner)
        return;
    if (!sf_test_keep_tmp())
        sf_test_rmtree_all(sf_test_root);
    else if (rmdir(sf_test_root) != 0)
        fprintf(stderr, "SF_KEEP_TMP=1: kept %s\n", sf_test_root);
}

/* Creates a fresh directory <root>/<tag>-XXXXXX; its path goes to buf. */
static inline void sf_test_mkdtemp(char *buf, size_t len, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    ck_assert_msg(sf_test_root[0], "no scratch root directory (TMPDIR=%s)", tmp ? tmp : "");
    int w = snprintf(buf, len, "%s/%s-XXXXXX", sf_test_root, tag);
    ck_assert_msg(w > 0 && (size_t)w < len, "scratch directory path too long");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* Removes a scratch directory and everything below it (best effort); kept with SF_KEEP_TMP=1. */
static inline void sf_test_rmtree(const char *dir)
{
    if (!sf_test_keep_tmp())
        sf_test_rmtree_all(dir);
}

typedef struct sf_test_guard {
    bool fired, closed;
} sf_test_guard;

static inline void sf_test_guard_fired(uv_timer_t *t)
{
    ((sf_test_guard *)t->data)->fired = true;
}

static inline void sf_test_guard_closed(uv_handle_t *h)
{
    ((sf_test_guard *)h->data)->closed = true;
}

/* Runs loop until done(arg) is true or the hang guard fires; returns whether it fired. */
static inline bool sf_test_run_guarded(uv_loop_t *loop, int (*done)(void *), void *arg)
{
    uv_timer_t timer;
    sf_test_guard g = {false, false};
    uv_timer_init(loop, &timer);
    timer.data = &g;
    uv_timer_start(&timer, sf_test_guard_fired, SF_TEST_HANG_GUARD_MS, 0);
    while (!done(arg) && !g.fired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, sf_test_guard_closed);
    while (!g.closed)
        uv_run(loop, UV_RUN_NOWAIT);
    return g.fired;
}

/* Runs loop until done(arg) is true; fails the test if the hang guard fires first. */
static inline void sf_test_run_until_fn(uv_loop_t *loop, int (*done)(void *), void *arg)
{
    ck_assert_msg(!sf_test_run_guarded(loop, done, arg), "hang guard fired");
}

typedef struct sf_test_count {
    const int *counter;
    int target;
} sf_test_count;

static inline int sf_test_count_reached(void *arg)
{
    const sf_test_count *c = arg;
    return *c->counter >= c->target;
}

/* Runs loop until *counter >= target; fails the test if the hang guard fires first. */
static inline void sf_test_run_until(uv_loop_t *loop, int *counter, int target)
{
    sf_test_count c = {counter, target};
    ck_assert_msg(!sf_test_run_guarded(loop, sf_test_count_reached, &c), "hang guard fired (%d/%d)",
                  *counter, target);
}

#endif
