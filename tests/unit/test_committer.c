/* Unit tests for daemon/pipeline/committer.c, the checkpoint's only writer: a committed page's
 * progress moves the checkpoint (window and cursor, or the watermark at a window's end, ids kept
 * while they may be re-read in the overlap); a failed page does not; commits during a save
 * coalesce into one save of the latest state; a failed save keeps the old file and the final
 * flush writes the latest state once the disk works; flush reports on a later loop turn; range
 * mode writes nothing. Real loop, real threadpool, real files; every test ends with
 * uv_loop_close() == 0. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "core/checkpoint.h"
#include "core/defer.h"
#include "pipeline/committer.h"
#include "sinks/sink.h"
#include "testutil.h"

#define NS INT64_C(1000000000)

static struct {
    uv_loop_t loop;
    sf_defer defer;
    sf_config cfg;
    char dir[300], state[400], path[500];
    sf_committer *c;
    sf_sink_cfg scfg[3];
    sf_sink_cfg *sinks[3];
    int flushes; /* flush callbacks so far */
    int flush_rc;
    bool in_flush; /* inside sf_committer_flush */
} T;

/* The configuration's sinks, by name (before setup_sinks' setup). */
static void setup_sinks(bool persist, const sf_checkpoint *start, const char *const *names,
                        size_t n);
static int64_t g_dedup_max = 1000; /* source.dedup_max_ids of the next setup */

static void setup(bool persist, const sf_checkpoint *start)
{
    setup_sinks(persist, start, NULL, 0);
}

static void setup_sinks(bool persist, const sf_checkpoint *start, const char *const *names,
                        size_t n)
{
    memset(&T, 0, sizeof T);
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
    sf_defer_init(&T.loop, &T.defer);
    sf_test_mkdtemp(T.dir, sizeof T.dir, "committer");
    snprintf(T.state, sizeof T.state, "%s/state", T.dir);
    ck_assert_int_eq(mkdir(T.state, 0700), 0);
    snprintf(T.path, sizeof T.path, "%s/checkpoint.json", T.state);
    T.cfg.checkpoint.path = T.path;
    T.cfg.source.overlap_ms = 60000;
    T.cfg.source.dedup_max_ids = g_dedup_max;
    for (size_t i = 0; i < n; i++) {
        T.scfg[i].common.name = (char *)names[i];
        T.sinks[i] = &T.scfg[i];
    }
    T.cfg.sinks = T.sinks;
    T.cfg.nsinks = n;
    sf_checkpoint cp;
    if (start)
        ck_assert_int_eq(sf_checkpoint_copy(&cp, start), 0);
    else
        sf_checkpoint_init(&cp);
    ck_assert_int_eq(sf_committer_new(&T.loop, &T.defer, &T.cfg, &cp, persist, &T.c), 0);
    ck_assert_ptr_null(cp.ids); /* taken over */
    sf_checkpoint_free(&cp);
}

static void teardown(void)
{
    sf_committer_free(T.c);
    sf_defer_close(&T.defer);
    ck_assert_int_eq(uv_run(&T.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
    sf_test_rmtree(T.dir);
}

static void on_flushed(void *ud, int rc)
{
    ck_assert_ptr_eq(ud, &T);
    ck_assert_msg(!T.in_flush, "flush callback from inside sf_committer_flush");
    T.flush_rc = rc;
    T.flushes++;
}

/* Flushes and waits for the callback (which never comes from inside the call). */
static int flush(void)
{
    int before = T.flushes;
    T.in_flush = true;
    sf_committer_flush(T.c, on_flushed, &T);
    T.in_flush = false;
    ck_assert_int_eq(T.flushes, before);
    sf_test_run_until(&T.loop, &T.flushes, before + 1);
    ck_assert_int_eq(T.flushes, before + 1);
    return T.flush_rc;
}

/* A page's progress: ids "<tag>-<i>" at times ts0 + i s. */
static sf_progress *progress(const char *tag, size_t nids, int64_t ts0, bool end, int64_t from,
                             int64_t to, const char *cursor)
{
    sf_progress *p = calloc(1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    p->ids = calloc(nids ? nids : 1, sizeof *p->ids);
    for (size_t i = 0; i < nids; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%zu", tag, i);
        p->ids[i].id = strdup(id);
        p->ids[i].ts_ns = ts0 + (int64_t)i * NS;
    }
    p->nids = nids;
    p->nevents = nids;
    p->window_end = end;
    p->win_from = from;
    p->win_to = to;
    p->low_ns = ts0;
    p->cursor_after = cursor ? strdup(cursor) : NULL;
    return p;
}

static void load(sf_checkpoint *cp)
{
    char err[256];
    ck_assert_int_eq(sf_checkpoint_load(T.path, cp, err, sizeof err), 0);
}

static bool has_id(const sf_checkpoint *cp, const char *id)
{
    for (size_t i = 0; i < cp->nids; i++)
        if (strcmp(cp->ids[i].id, id) == 0)
            return true;
    return false;
}

START_TEST(test_commit_moves_the_checkpoint)
{
    sf_checkpoint start;
    sf_checkpoint_init(&start);
    start.watermark_ns = 1000 * NS;
    start.events_total = 7;
    start.ids = calloc(1, sizeof *start.ids);
    start.ids[0].id = strdup("old-0");
    start.ids[0].ts_ns = 990 * NS; /* within the overlap of the next window's end */
    start.nids = 1;
    setup(true, &start);
    sf_checkpoint_free(&start);
    /* a page inside window [940 s, 2000 s] with a cursor to the next one */
    sf_committer_commit(T.c, progress("a", 3, 1500 * NS, false, 940 * NS, 2000 * NS, "c1"), true);
    ck_assert_int_eq(flush(), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert(cp.watermark_ns == 1000 * NS);
    ck_assert(cp.in_window);
    ck_assert(cp.win_from_ns == 940 * NS && cp.win_to_ns == 2000 * NS);
    ck_assert(cp.win_low_ns == 1500 * NS);
    ck_assert_str_eq(cp.cursor, "c1");
    ck_assert_uint_eq(cp.events_total, 10);
    /* listed: what a restart may read again: the previous window's overlap and the ids at the
     * window's low (a cursor resumes after a-2; a time re-read stops at low, 1500 s) */
    ck_assert_uint_eq(cp.nids, 2);
    ck_assert(has_id(&cp, "old-0") && has_id(&cp, "a-0"));
    ck_assert(!has_id(&cp, "a-2"));
    sf_checkpoint_free(&cp);
    /* the window's last page: the watermark moves to its end; ids older than watermark -
     * overlap (60 s) are forgotten */
    sf_committer_commit(T.c, progress("b", 2, 1939 * NS, true, 940 * NS, 2000 * NS, NULL), true);
    ck_assert_int_eq(flush(), 0);
    load(&cp);
    ck_assert(cp.watermark_ns == 2000 * NS);
    ck_assert(!cp.in_window);
    ck_assert_ptr_null(cp.cursor);
    ck_assert_uint_eq(cp.events_total, 12);
    ck_assert(!has_id(&cp, "old-0"));
    ck_assert(!has_id(&cp, "b-0")); /* 1939 s < 1940 s */
    ck_assert(has_id(&cp, "b-1"));  /* 1940 s: still in the overlap */
    sf_checkpoint_free(&cp);
    sf_committer_stats st;
    sf_committer_stats_get(T.c, &st);
    ck_assert(st.watermark_ns == 2000 * NS);
    ck_assert_uint_eq(st.events_total, 12);
    ck_assert_uint_eq(st.errors, 0);
    ck_assert_uint_ge(st.writes, 2);
    teardown();
}
END_TEST

/* A window fetched in slices: each commit records the slices not fetched to their end, and
 * only the ids a restart may read again are listed: those at a slice's low end or within a
 * slice not read yet, and the overlap the next window re-reads. The window's end clears it. */
static sf_progress *cut_progress(const char *tag, size_t nids, int64_t ts0, bool end, int64_t low0,
                                 int64_t low1)
{
    /* window [1000 s, 2000 s] in two slices: [1000, 1500] and [1500, 2000] */
    sf_progress *p = progress(tag, nids, ts0, end, 1000 * NS, 2000 * NS, NULL);
    p->low_ns = SF_TIME_UNSET;
    if (end)
        return p;
    p->cut = true;
    p->slices = calloc(2, sizeof *p->slices);
    ck_assert_ptr_nonnull(p->slices);
    p->slices[0] = (sf_slice){1000 * NS, 1500 * NS, low0};
    p->slices[1] = (sf_slice){1500 * NS, 2000 * NS, low1};
    p->nslices = 2;
    return p;
}

START_TEST(test_cut_window_lists_slices_not_ids)
{
    setup(true, NULL);
    /* slice 1's first page: 1938..1941 s; then slice 0's: 1497..1499 s */
    sf_committer_commit(T.c, cut_progress("s1", 4, 1938 * NS, false, SF_TIME_UNSET, 1938 * NS),
                        true);
    sf_committer_commit(T.c, cut_progress("s0", 3, 1497 * NS, false, 1497 * NS, 1938 * NS), true);
    ck_assert_int_eq(flush(), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert(cp.in_window && cp.cut);
    ck_assert_ptr_null(cp.cursor);
    ck_assert_uint_eq(cp.nslices, 2);
    ck_assert(cp.slices[0].from_ns == 1000 * NS && cp.slices[0].to_ns == 1500 * NS &&
              cp.slices[0].low_ns == 1497 * NS);
    ck_assert(cp.slices[1].from_ns == 1500 * NS && cp.slices[1].to_ns == 2000 * NS &&
              cp.slices[1].low_ns == 1938 * NS);
    ck_assert(has_id(&cp, "s1-0"));  /* 1938 s: slice 1's low end, read again */
    ck_assert(!has_id(&cp, "s1-1")); /* 1939 s: delivered, never read again */
    ck_assert(has_id(&cp, "s1-2"));  /* 1940 s: the next window's overlap */
    ck_assert(has_id(&cp, "s0-0"));  /* 1497 s: slice 0's low end */
    ck_assert(!has_id(&cp, "s0-2")); /* 1499 s */
    ck_assert_uint_eq(cp.nids, 4);
    sf_checkpoint_free(&cp);
    /* the window's last page: no slices left, the overlap only */
    sf_committer_commit(T.c, cut_progress("e", 1, 1200 * NS, true, 0, 0), true);
    ck_assert_int_eq(flush(), 0);
    load(&cp);
    ck_assert(!cp.in_window && !cp.cut);
    ck_assert_uint_eq(cp.nslices, 0);
    ck_assert(cp.watermark_ns == 2000 * NS);
    ck_assert_uint_eq(cp.nids, 2); /* s1-2, s1-3 */
    sf_checkpoint_free(&cp);
    teardown();
}
END_TEST

/* A window cut into slices holds far more ids than a restart re-reads: the committer keeps in
 * memory what a save may list (the slices' low ends, the next window's overlap), not every id
 * of the window, and what it saves is unchanged. */
START_TEST(test_cut_window_memory_follows_what_is_listed)
{
    g_dedup_max = 100000; /* no eviction: what bounds the set must be the slices */
    setup(true, NULL);
    g_dedup_max = 1000;
    /* window [1000 s, 101000 s] in two slices, each paged down from its newest end */
    const int64_t from = 1000 * NS, mid = 51000 * NS, to = 101000 * NS;
    int64_t low[2] = {SF_TIME_UNSET, SF_TIME_UNSET};
    /* slice 1 walks 36 pages; slice 0 four, early on: its low end was delivered long before
     * the last of the window's pages and must still be listed */
    for (int m = 0; m < 36; m++) {
        for (int j = 1; j >= 0; j--) {
            if (j == 0 && m >= 4)
                continue;
            char tag[16];
            snprintf(tag, sizeof tag, "p%d-%d", j, m);
            int64_t ts0 = (j ? to : mid) - (int64_t)(m + 1) * 50 * NS;
            sf_progress *p = progress(tag, 50, ts0, false, from, to, NULL);
            low[j] = ts0;
            p->low_ns = SF_TIME_UNSET;
            p->cut = true;
            p->slices = calloc(2, sizeof *p->slices);
            ck_assert_ptr_nonnull(p->slices);
            p->slices[0] = (sf_slice){from, mid, low[0]};
            p->slices[1] = (sf_slice){mid, to, low[1]};
            p->nslices = 2;
            sf_committer_commit(T.c, p, true);
        }
    }
    sf_committer_stats st;
    sf_committer_stats_get(T.c, &st);
    ck_assert_uint_eq(st.events_total, 2000);
    ck_assert_msg(st.ids <= 600, "%zu ids kept for a window of 2000", st.ids);
    ck_assert_int_eq(flush(), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert(cp.in_window && cp.cut && cp.nslices == 2);
    ck_assert(has_id(&cp, "p0-3-0"));  /* slice 0's low end (51000 s - 200 s) */
    ck_assert(!has_id(&cp, "p0-3-1")); /* delivered, above it */
    ck_assert(has_id(&cp, "p1-35-0")); /* slice 1's low end */
    ck_assert(!has_id(&cp, "p1-35-1"));
    ck_assert(has_id(&cp, "p1-0-0"));   /* 100950 s: the next window's overlap */
    ck_assert(has_id(&cp, "p1-1-40"));  /* 100940 s: its start */
    ck_assert(!has_id(&cp, "p1-1-39")); /* 100939 s */
    ck_assert_uint_eq(cp.nids, 2 + 60);
    sf_checkpoint_free(&cp);
    teardown();
}
END_TEST

/* A page that failed (ok=false) does not move the checkpoint, and starts no save. */
START_TEST(test_failed_page_keeps_the_checkpoint)
{
    setup(true, NULL);
    sf_committer_commit(T.c, progress("a", 2, 100 * NS, true, 50 * NS, 200 * NS, NULL), false);
    ck_assert_int_eq(flush(), 0); /* nothing to write */
    ck_assert_int_eq(access(T.path, F_OK), -1);
    sf_committer_stats st;
    sf_committer_stats_get(T.c, &st);
    ck_assert(st.watermark_ns == SF_TIME_UNSET);
    ck_assert_uint_eq(st.writes, 0);
    ck_assert_uint_eq(st.events_total, 0);
    teardown();
}
END_TEST

/* Once a page failed, later pages that succeed do not move the checkpoint past it (their
 * progress, the cursor after them or their window's end, would skip the failed page). */
START_TEST(test_pages_after_a_failed_one_keep_the_checkpoint)
{
    setup(true, NULL);
    sf_committer_commit(T.c, progress("a", 2, 100 * NS, false, 50 * NS, 900 * NS, "c1"), true);
    sf_committer_commit(T.c, progress("b", 2, 90 * NS, false, 50 * NS, 900 * NS, "c2"), false);
    sf_committer_commit(T.c, progress("c", 2, 80 * NS, false, 50 * NS, 900 * NS, "c3"), true);
    sf_committer_commit(T.c, progress("d", 2, 70 * NS, true, 50 * NS, 900 * NS, NULL), true);
    ck_assert_int_eq(flush(), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert(cp.in_window);
    ck_assert_str_eq(cp.cursor, "c1"); /* the page after "a" (the failed one) is read again */
    ck_assert(cp.watermark_ns == SF_TIME_UNSET);
    ck_assert_uint_eq(cp.events_total, 2);
    ck_assert(!has_id(&cp, "c-0") && !has_id(&cp, "d-0"));
    sf_checkpoint_free(&cp);
    teardown();
}
END_TEST

/* Commits while a save runs coalesce: one save in flight, then one save of the latest state. */
START_TEST(test_commits_during_a_save_coalesce)
{
    setup(true, NULL);
    for (int i = 0; i < 20; i++) {
        char tag[16], cur[16];
        snprintf(tag, sizeof tag, "p%d", i);
        snprintf(cur, sizeof cur, "c%d", i);
        sf_committer_commit(T.c, progress(tag, 1, (100 + i) * NS, false, 50 * NS, 500 * NS, cur),
                            true);
    }
    ck_assert_int_eq(flush(), 0);
    sf_committer_stats st;
    sf_committer_stats_get(T.c, &st);
    ck_assert_uint_eq(st.writes, 2); /* the first commit's save, then the other 19 at once */
    ck_assert_uint_eq(st.errors, 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert_str_eq(cp.cursor, "c19");
    ck_assert_uint_eq(cp.events_total, 20);
    ck_assert_uint_eq(cp.nids, 20);
    sf_checkpoint_free(&cp);
    /* nothing new: a flush writes nothing */
    ck_assert_int_eq(flush(), 0);
    sf_committer_stats_get(T.c, &st);
    ck_assert_uint_eq(st.writes, 2);
    teardown();
}
END_TEST

static int saves_done(void *arg)
{
    (void)arg;
    sf_committer_stats st;
    sf_committer_stats_get(T.c, &st);
    return st.writes + st.errors >= 2;
}

/* A save that fails keeps the old checkpoint and the state dirty; the final flush writes the
 * latest state once the disk works again (the running daemon does this at SIGTERM). */
START_TEST(test_failed_save_then_final_flush)
{
    setup(true, NULL);
    sf_committer_commit(T.c, progress("a", 1, 100 * NS, false, 50 * NS, 500 * NS, "c1"), true);
    ck_assert_int_eq(flush(), 0);
    /* the checkpoint's directory goes away: a file in its place makes every save fail */
    char moved[450];
    snprintf(moved, sizeof moved, "%s/state.ok", T.dir);
    ck_assert_int_eq(rename(T.state, moved), 0);
    FILE *f = fopen(T.state, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    sf_committer_commit(T.c, progress("b", 1, 101 * NS, false, 50 * NS, 500 * NS, "c2"), true);
    sf_test_run_until_fn(&T.loop, saves_done, NULL);
    sf_committer_stats st;
    sf_committer_stats_get(T.c, &st);
    ck_assert_uint_eq(st.writes, 1);
    ck_assert_uint_eq(st.errors, 1);
    ck_assert_int_lt(flush(), 0); /* still failing: the final save reports it */
    sf_committer_stats_get(T.c, &st);
    ck_assert_uint_eq(st.errors, 2);
    /* the disk works again: the flush writes the latest state over the old one */
    ck_assert_int_eq(unlink(T.state), 0);
    ck_assert_int_eq(rename(moved, T.state), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert_str_eq(cp.cursor, "c1"); /* the old checkpoint, intact */
    sf_checkpoint_free(&cp);
    ck_assert_int_eq(flush(), 0);
    load(&cp);
    ck_assert_str_eq(cp.cursor, "c2");
    ck_assert_uint_eq(cp.events_total, 2);
    sf_checkpoint_free(&cp);
    sf_committer_stats_get(T.c, &st);
    ck_assert_uint_eq(st.writes, 2);
    teardown();
}
END_TEST

/* A flush while a save runs waits for it (and for the save of what came after it). */
START_TEST(test_flush_waits_for_the_save_in_flight)
{
    setup(true, NULL);
    sf_committer_commit(T.c, progress("a", 1, 100 * NS, false, 50 * NS, 500 * NS, "c1"), true);
    sf_committer_commit(T.c, progress("b", 1, 101 * NS, false, 50 * NS, 500 * NS, "c2"), true);
    ck_assert_int_eq(flush(), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert_str_eq(cp.cursor, "c2");
    sf_checkpoint_free(&cp);
    teardown();
}
END_TEST

/* --from/--to: the checkpoint is not touched. */
static const sf_sink_progress *sink_of(const sf_checkpoint *cp, const char *name)
{
    for (size_t k = 0; k < cp->nsinks; k++)
        if (strcmp(cp->sinks[k].name, name) == 0)
            return &cp->sinks[k];
    return NULL;
}

static bool sink_lists(const sf_checkpoint *cp, const char *name, const char *id)
{
    const sf_sink_progress *sp = sink_of(cp, name);
    for (size_t i = 0; sp && i < sp->nids; i++)
        if (strcmp(sp->ids[i].id, id) == 0)
            return true;
    return false;
}

/* A sink's confirmation of a page that cannot commit yet is saved for that sink alone; the
 * page's commit moves its ids to the common part (every sink has them). */
START_TEST(test_sink_progress_saved_then_committed)
{
    static const char *const names[] = {"fast", "slow"};
    setup_sinks(true, NULL, names, 2);
    sf_progress *p1 = progress("a", 3, 1500 * NS, false, 940 * NS, 2000 * NS, "c1");
    sf_progress *p2 = progress("b", 2, 1600 * NS, false, 940 * NS, 2000 * NS, "c2");
    sf_committer_sink_confirmed(T.c, 0, p1);
    sf_committer_sink_confirmed(T.c, 0, p2);
    ck_assert(sf_committer_sink_has(T.c, 0, "a-2") && sf_committer_sink_has(T.c, 0, "b-1"));
    ck_assert(!sf_committer_sink_has(T.c, 1, "a-2"));
    ck_assert_uint_eq(sf_committer_sink_ahead(T.c, 0), 5);
    ck_assert_int_eq(flush(), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert_int_eq(cp.version, SF_CHECKPOINT_VERSION);
    ck_assert(cp.has_sinks && cp.nsinks == 2);
    ck_assert_uint_eq(sink_of(&cp, "fast")->nids, 5);
    ck_assert(sink_lists(&cp, "fast", "a-0") && sink_lists(&cp, "fast", "b-1"));
    ck_assert_uint_eq(sink_of(&cp, "slow")->nids, 0);
    ck_assert_uint_eq(cp.nids, 0); /* nothing committed */
    ck_assert(!cp.in_window && cp.watermark_ns == SF_TIME_UNSET);
    sf_checkpoint_free(&cp);
    /* page 1 commits: its ids leave the fast sink's part */
    sf_committer_commit(T.c, p1, true);
    ck_assert(!sf_committer_sink_has(T.c, 0, "a-0"));
    ck_assert(sf_committer_sink_has(T.c, 0, "b-0"));
    ck_assert_int_eq(flush(), 0);
    load(&cp);
    ck_assert_uint_eq(sink_of(&cp, "fast")->nids, 2);
    ck_assert(!sink_lists(&cp, "fast", "a-0") && sink_lists(&cp, "fast", "b-0"));
    ck_assert(has_id(&cp, "a-0") && !has_id(&cp, "b-0"));
    ck_assert_str_eq(cp.cursor, "c1");
    sf_checkpoint_free(&cp);
    sf_progress_free(p2); /* its page never committed */
    teardown();
}
END_TEST

/* The loaded per-sink part goes to the configured sinks by name: a sink the file lists but the
 * configuration no longer has is dropped (it holds nothing back); a new one starts empty. */
START_TEST(test_sink_progress_loaded_by_name)
{
    sf_checkpoint start;
    char err[256];
    static const char text[] =
        "{\"version\":2,\"watermark_ns\":\"1000000000000\",\"window\":null,\"recent_ids\":[],"
        "\"sinks\":{\"gone\":{\"ids\":[{\"id\":\"g1\",\"ts_ns\":\"999000000000\"}]},"
        "\"kept\":{\"ids\":[{\"id\":\"k1\",\"ts_ns\":\"999000000000\"}]}}}";
    ck_assert_int_eq(sf_checkpoint_decode(text, strlen(text), &start, err, sizeof err), 0);
    static const char *const names[] = {"new", "kept"};
    setup_sinks(true, &start, names, 2);
    sf_checkpoint_free(&start);
    ck_assert(sf_committer_sink_has(T.c, 1, "k1"));
    ck_assert(!sf_committer_sink_has(T.c, 0, "k1") && !sf_committer_sink_has(T.c, 0, "g1"));
    ck_assert(!sf_committer_sink_has(T.c, 1, "g1"));
    sf_committer_sink_confirmed(T.c, 0, &(sf_progress){0}); /* nothing: no save needed */
    sf_progress *p = progress("n", 1, 1000 * NS, false, 940 * NS, 2000 * NS, "c");
    sf_committer_sink_confirmed(T.c, 0, p);
    ck_assert_int_eq(flush(), 0);
    sf_checkpoint cp;
    load(&cp);
    ck_assert_uint_eq(cp.nsinks, 2);
    ck_assert_ptr_null(sink_of(&cp, "gone"));
    ck_assert(sink_lists(&cp, "kept", "k1"));
    ck_assert(sink_lists(&cp, "new", "n-0"));
    ck_assert(cp.watermark_ns == 1000 * NS);
    sf_checkpoint_free(&cp);
    sf_progress_free(p);
    teardown();
}
END_TEST

/* Ids no window reads again (older than the watermark minus the overlap) are not kept. */
START_TEST(test_sink_progress_pruned_at_window_end)
{
    static const char *const names[] = {"fast"};
    setup_sinks(true, NULL, names, 1);
    sf_progress *old = progress("o", 1, 100 * NS, false, 0, 200 * NS, "c");
    sf_progress *recent = progress("r", 1, 1990 * NS, false, 0, 2000 * NS, "c");
    sf_committer_sink_confirmed(T.c, 0, old);
    sf_committer_sink_confirmed(T.c, 0, recent);
    sf_committer_commit(T.c, progress("w", 1, 1995 * NS, true, 0, 2000 * NS, NULL), true);
    ck_assert(!sf_committer_sink_has(T.c, 0, "o-0")); /* 100 s < 2000 s - 60 s */
    ck_assert(sf_committer_sink_has(T.c, 0, "r-0"));
    ck_assert_int_eq(flush(), 0);
    sf_progress_free(old);
    sf_progress_free(recent);
    teardown();
}
END_TEST

START_TEST(test_range_mode_writes_nothing)
{
    setup(false, NULL);
    sf_committer_commit(T.c, progress("a", 2, 100 * NS, true, 50 * NS, 200 * NS, NULL), true);
    ck_assert_int_eq(flush(), 0);
    ck_assert_int_eq(access(T.path, F_OK), -1);
    sf_committer_stats st;
    sf_committer_stats_get(T.c, &st);
    ck_assert_uint_eq(st.writes, 0);
    ck_assert(st.watermark_ns == 200 * NS); /* still tracked in memory (metrics) */
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("committer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_commit_moves_the_checkpoint);
    tcase_add_test(tc, test_cut_window_lists_slices_not_ids);
    tcase_add_test(tc, test_cut_window_memory_follows_what_is_listed);
    tcase_add_test(tc, test_failed_page_keeps_the_checkpoint);
    tcase_add_test(tc, test_pages_after_a_failed_one_keep_the_checkpoint);
    tcase_add_test(tc, test_commits_during_a_save_coalesce);
    tcase_add_test(tc, test_failed_save_then_final_flush);
    tcase_add_test(tc, test_flush_waits_for_the_save_in_flight);
    tcase_add_test(tc, test_range_mode_writes_nothing);
    tcase_add_test(tc, test_sink_progress_saved_then_committed);
    tcase_add_test(tc, test_sink_progress_loaded_by_name);
    tcase_add_test(tc, test_sink_progress_pruned_at_window_end);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
