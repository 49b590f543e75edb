/* Unit tests for daemon/pipeline/ (pipeline.c, sinkq.c, settle.c, spooler.c, job.c): fan-out to
 * every sink, per-sink retries of exactly the records asked, in-order commits, dead letters,
 * backpressure, bounded mode and close, and no re-entry.
 *
 * The sinks are fakes defined here (sf_sink_ops with open/submit/close) that answer
 * synchronously or from a uv_timer, following a per-test script, and may settle late
 * (deferred settlement, driven by the test); the format is the real raw format and the loop
 * is a real libuv loop.
 *
 * No re-entry, checked in every test: each call into the pipeline (submit, flush, close) and
 * each call a sink makes to it (batch done, settled) is wrapped in T.in_call; the pipeline's
 * callbacks (commit, space, closed) assert they are not running inside one (they come on a
 * later loop turn), never nest, and a sink's submit is never entered again from inside
 * itself. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "core/event.h"
#include "formats/format.h"
#include "core/log.h"
#include "config/cfg.h"
#include "pipeline/pipeline.h"
#include "sinks/filter.h"
#include "sinks/sink.h"
#include "core/util.h"
#include "testutil.h"

#define MAXCALLS 64
#define MAXSINKS 3
#define MAXPAGES 64

/* ---- fake sink ---- */

struct fake;
typedef void (*decide_fn)(struct fake *f, sf_sink_batch *b, unsigned call);

typedef struct fake {
    bool sync;                /* answer from inside submit */
    int64_t delay_ms;         /* async answer delay (default) */
    int64_t delays[MAXCALLS]; /* per-call delay if > 0 */
    decide_fn decide;         /* NULL: everything OK */
    int refuse_calls;         /* the first N submits return -EIO without answering */
    bool defer;               /* deferred settlement: the test calls fake_settle() */
    bool flush_settles;       /* flush() settles everything reported OK */
    size_t batch_max;         /* batching hints given to the pipeline */
    int64_t batch_wait_ms;
    /* observed */
    sf_sink *sink;
    uv_timer_t timer;
    sf_sink_batch *pending;
    unsigned calls;
    char ids[MAXCALLS][512];                       /* "id,id," per call */
    uint64_t t_submit[MAXCALLS], t_done[MAXCALLS]; /* uv_hrtime ns */
    sf_buf delivered;                              /* "id," for every OK */
    uint64_t oks, settled;                         /* records reported OK / settled */
    unsigned flushes, calls_at_flush;
    bool opened, closed;
    bool in_submit; /* inside this sink's submit() */
} fake_t;

static void call_enter(void);
static void call_leave(void);

static void fake_answer(fake_t *f)
{
    sf_sink_batch *b = f->pending;
    f->pending = NULL;
    for (size_t k = 0; k < b->n; k++)
        if (b->status[k] == SF_DELIV_OK) {
            sf_buf_appendf(&f->delivered, "%s,", b->events[k]->id);
            f->oks++;
        }
    f->t_done[f->calls - 1] = uv_hrtime();
    call_enter();
    sf_sink_batch_done(b);
    call_leave();
}

static void fake_timer_cb(uv_timer_t *t)
{
    fake_answer(t->data);
}

static int fake_open(sf_sink *s)
{
    fake_t *f = s->cfg->type_cfg;
    s->state = f;
    f->sink = s;
    f->opened = true;
    s->defer_settle = f->defer;
    s->batch_max = f->batch_max;
    s->batch_wait_ms = f->batch_wait_ms;
    uv_timer_init(s->loop, &f->timer);
    f->timer.data = f;
    return 0;
}

static int fake_submit(sf_sink *s, sf_sink_batch *b)
{
    fake_t *f = s->state;
    ck_assert_msg(!f->in_submit, "the sink's submit was entered again from inside itself");
    ck_assert_ptr_null(f->pending); /* one batch in flight per sink */
    ck_assert_uint_lt(f->calls, MAXCALLS);
    unsigned call = f->calls++;
    f->t_submit[call] = uv_hrtime();
    f->ids[call][0] = '\0';
    for (size_t k = 0; k < b->n; k++) {
        /* raw format: the record is the event's exact bytes */
        ck_assert_uint_eq(b->records[k].len, b->events[k]->raw_len);
        ck_assert(memcmp(b->records[k].data, b->events[k]->raw, b->events[k]->raw_len) == 0);
        size_t l = strlen(f->ids[call]);
        snprintf(f->ids[call] + l, sizeof f->ids[call] - l, "%s,", b->events[k]->id);
    }
    if (f->refuse_calls > 0) {
        f->refuse_calls--;
        sf_sink_set_error(s, "refused");
        return -EIO; /* without answering: the pipeline retries the whole batch */
    }
    for (size_t k = 0; k < b->n; k++)
        b->status[k] = SF_DELIV_OK;
    if (f->decide)
        f->decide(f, b, call);
    f->pending = b;
    if (f->sync) {
        f->in_submit = true;
        fake_answer(f); /* sf_sink_batch_done from inside submit */
        f->in_submit = false;
        return 0;
    }
    int64_t d = f->delays[call] > 0 ? f->delays[call] : f->delay_ms;
    uv_timer_start(&f->timer, fake_timer_cb, (uint64_t)d, 0);
    return 0;
}

/* The next n records the fake reported OK are safe. */
static void fake_settle(fake_t *f, uint64_t n)
{
    ck_assert_uint_le(f->settled + n, f->oks);
    f->settled += n;
    call_enter();
    sf_sink_settled(f->sink, n);
    call_leave();
}

static void fake_flush(sf_sink *s)
{
    fake_t *f = s->state;
    ck_assert_ptr_null(f->pending); /* asked only once nothing is left to send */
    f->flushes++;
    f->calls_at_flush = f->calls;
    if (f->flush_settles && f->oks > f->settled)
        fake_settle(f, f->oks - f->settled);
}

static void (*fake_closed_cb)(sf_sink *s);

static void fake_timer_closed(uv_handle_t *h)
{
    fake_t *f = h->data;
    f->closed = true;
    f->sink->state = NULL;
    /* the pipeline's close callback for this sink */
    void (*cb)(sf_sink *) = fake_closed_cb;
    cb(f->sink);
}

static void fake_close(sf_sink *s, void (*closed)(sf_sink *s))
{
    fake_t *f = s->state;
    f->pending = NULL; /* an unanswered batch is dropped */
    fake_closed_cb = closed;
    uv_close((uv_handle_t *)&f->timer, fake_timer_closed);
}

static const sf_sink_ops fake_ops = {
    .type = "fake",
    .desc = "test sink",
    .open = fake_open,
    .submit = fake_submit,
    .flush = fake_flush,
    .close = fake_close,
};

/* ---- test context ---- */

typedef struct commit_rec {
    intptr_t token;
    bool ok;
    size_t dl_lines; /* lines in the dead-letter file when the commit arrived */
} commit_rec;

static struct {
    uv_loop_t loop;
    sf_defer defer;
    uv_timer_t guard;
    char tmpdir[128], dlpath[256], cppath[256];
    sf_config cfg;
    sf_sink_cfg scfg[MAXSINKS];
    sf_sink_cfg *sinks[MAXSINKS];
    char names[MAXSINKS][16];
    fake_t fakes[MAXSINKS];
    sf_pipeline *p;
    commit_rec commits[MAXPAGES];
    size_t ncommits;
    size_t page_n[MAXPAGES + 1]; /* events per submitted page (by token) */
    bool check_delivered;        /* at commit: every event was delivered by every sink */
    bool closed;
    size_t commits_at_closed; /* commits delivered before the closed callback */
    unsigned space_calls;
    /* no re-entry */
    unsigned in_call;   /* inside a call into the pipeline, or a sink's call to it */
    unsigned in_commit; /* inside the commit callback */
    intptr_t chain_to;  /* the commit callback of page t submits page t+1 up to this */
    size_t chain_n;     /* events per chained page */
    /* source simulator for backpressure tests */
    intptr_t next_token, last_token;
    size_t page_events;
    unsigned refill_rounds; /* times fill() stopped because can_accept turned false */
    /* per-sink hooks: confirmations reported, ids a sink skips */
    struct {
        size_t sink;
        intptr_t token;
    } conf[MAXPAGES * MAXSINKS];
    size_t nconf;
    const char *skip[8]; /* ids sink skip_sink confirmed earlier */
    size_t skip_sink;
} T;

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void call_enter(void)
{
    T.in_call++;
}

static void call_leave(void)
{
    T.in_call--;
}

/* Every notification from the pipeline comes on its own loop turn. */
static void assert_not_reentered(const char *what)
{
    ck_assert_msg(T.in_call == 0, "%s called from inside a call into the pipeline or a sink's call",
                  what);
    ck_assert_msg(T.in_commit == 0, "%s called from inside the commit callback", what);
    for (size_t i = 0; i < MAXSINKS; i++)
        ck_assert_msg(!T.fakes[i].in_submit, "%s called from inside a sink's submit", what);
}

static void submit_page(intptr_t token, size_t n);

static void on_commit(void *ud, void *token, bool ok)
{
    ck_assert_ptr_eq(ud, &T);
    assert_not_reentered("commit");
    ck_assert_uint_lt(T.ncommits, MAXPAGES);
    intptr_t tok = (intptr_t)token;
    commit_rec *c = &T.commits[T.ncommits++];
    c->token = tok;
    c->ok = ok;
    c->dl_lines = count_lines(T.dlpath);
    if (T.check_delivered && ok) {
        for (size_t s = 0; s < T.cfg.nsinks; s++)
            for (size_t i = 0; i < T.page_n[tok]; i++) {
                char id[64];
                snprintf(id, sizeof id, "p%ld-e%zu,", (long)tok, i);
                const char *d = T.fakes[s].delivered.data;
                ck_assert_msg(d && strstr(d, id), "page %ld committed before sink %zu settled %s",
                              (long)tok, s, id);
            }
    }
    if (tok < T.chain_to) {
        T.in_commit++;
        submit_page(tok + 1, T.chain_n); /* a commit callback that submits again */
        T.in_commit--;
    }
}

static void guard_cb(uv_timer_t *t)
{
    (void)t;
}

static void ctx_init(size_t nsinks, int64_t max_inflight)
{
    memset(&T, 0, sizeof T);
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
    sf_defer_init(&T.loop, &T.defer);
    uv_timer_init(&T.loop, &T.guard);
    uv_timer_start(&T.guard, guard_cb, 2, 2);
    uv_unref((uv_handle_t *)&T.guard);
    sf_test_mkdtemp(T.tmpdir, sizeof T.tmpdir, "pl");
    snprintf(T.dlpath, sizeof T.dlpath, "%s/dead-letters.ndjson", T.tmpdir);
    snprintf(T.cppath, sizeof T.cppath, "%s/checkpoint.json", T.tmpdir);
    T.cfg.checkpoint.path = T.cppath;
    T.cfg.dead_letter.path = NULL; /* default: beside the checkpoint */
    T.cfg.dead_letter.max_size = 1 << 20;
    T.cfg.pipeline.max_inflight_pages = max_inflight;
    T.cfg.pipeline.shutdown_timeout_ms = 1000;
    T.cfg.nsinks = nsinks;
    T.cfg.sinks = T.sinks;
    for (size_t i = 0; i < nsinks; i++) {
        snprintf(T.names[i], sizeof T.names[i], "fake%zu", i);
        sf_sink_cfg *c = &T.scfg[i];
        c->common.name = T.names[i];
        c->common.type = (char *)"fake";
        c->common.format = (char *)"raw";
        c->common.queue_max_events = 100000;
        c->common.retry_initial_ms = 5;
        c->common.retry_max_ms = 20;
        c->common.retry_max_attempts = 0;
        c->ops = &fake_ops;
        c->type_cfg = &T.fakes[i];
        c->format = sf_format_find("raw");
        ck_assert_ptr_nonnull(c->format);
        T.sinks[i] = c;
        T.fakes[i].delay_ms = 1;
    }
}

static void ctx_start(void)
{
    ck_assert_int_eq(sf_pipeline_new(&T.loop, &T.defer, NULL, &T.cfg, on_commit, &T, &T.p), 0);
    call_enter();
    ck_assert_int_eq(sf_pipeline_open(T.p), 0);
    call_leave();
}

static void on_closed(void *ud)
{
    ck_assert_ptr_eq(ud, &T);
    assert_not_reentered("closed");
    ck_assert(!T.closed);
    T.closed = true;
    T.commits_at_closed = T.ncommits;
}

static void pipeline_close(void)
{
    call_enter();
    sf_pipeline_close(T.p, on_closed, &T);
    call_leave();
}

static void pipeline_flush(void)
{
    call_enter();
    sf_pipeline_flush(T.p);
    call_leave();
}

/* Runs the loop until cond holds or timeout_ms passed (the caller asserts cond). */
#define RUN_UNTIL(cond, timeout_ms)                                                                \
    do {                                                                                           \
        uint64_t end_ = uv_hrtime() + (uint64_t)(timeout_ms)*1000000u;                             \
        uv_ref((uv_handle_t *)&T.guard);                                                           \
        while (!(cond) && uv_hrtime() < end_)                                                      \
            uv_run(&T.loop, UV_RUN_ONCE);                                                          \
        uv_unref((uv_handle_t *)&T.guard);                                                         \
    } while (0)

/* Closes the pipeline and waits for its closed callback, which comes after every commit. */
static void close_and_wait(void)
{
    pipeline_close();
    ck_assert(!T.closed); /* never from inside sf_pipeline_close */
    RUN_UNTIL(T.closed, 2000);
    ck_assert(T.closed);
    ck_assert_uint_eq(T.commits_at_closed, T.ncommits);
}

/* The pipeline is closing already: waits for the closed callback. */
static void close_and_wait_closing(void)
{
    ck_assert(!T.closed);
    RUN_UNTIL(T.closed, 2000);
    ck_assert(T.closed);
    ck_assert_uint_eq(T.commits_at_closed, T.ncommits);
}

static void ctx_finish(void)
{
    if (T.p) {
        size_t expect = T.ncommits + sf_pipeline_inflight(T.p); /* one commit per page */
        close_and_wait();
        ck_assert_uint_eq(T.ncommits, expect);
        sf_pipeline_free(T.p);
        T.p = NULL;
    }
    for (size_t i = 0; i < T.cfg.nsinks; i++) {
        if (T.fakes[i].opened)
            ck_assert(T.fakes[i].closed);
        sf_buf_free(&T.fakes[i].delivered);
    }
    uv_close((uv_handle_t *)&T.guard, NULL);
    sf_defer_close(&T.defer);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
    sf_test_rmtree(T.tmpdir); /* the spool test leaves a subdirectory */
}

/* Builds n events "p<token>-e<i>" (the array is malloc'd: the pipeline takes it). */
static sf_event *mkevents(intptr_t token, size_t n)
{
    sf_event *evs = calloc(n ? n : 1, sizeof *evs);
    ck_assert_ptr_nonnull(evs);
    for (size_t i = 0; i < n; i++) {
        char txt[256], err[128];
        snprintf(txt, sizeof txt,
                 "{\"id\":\"p%ld-e%zu\", \"timestamp\":%lld,\"v\":1.50,\"u\":\"\\u00e9\","
                 "\"source\":\"s%zu\"}",
                 (long)token, i, (long long)(INT64_C(1709626200000000001) + (int64_t)i), i);
        ck_assert_int_eq(sf_event_parse(txt, strlen(txt), &evs[i], err, sizeof err), 0);
    }
    return evs;
}

static void submit_page(intptr_t token, size_t n)
{
    ck_assert_int_le(token, MAXPAGES);
    T.page_n[token] = n;
    size_t before = T.ncommits;
    call_enter();
    ck_assert_int_eq(sf_pipeline_submit(T.p, mkevents(token, n), n, (void *)token), 0);
    call_leave();
    ck_assert_uint_eq(T.ncommits, before); /* never commits from inside submit */
}

static void assert_commits_in_order(size_t n, bool ok)
{
    ck_assert_uint_eq(T.ncommits, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(T.commits[i].token, (intptr_t)(i + 1));
        ck_assert_msg(T.commits[i].ok == ok, "commit %zu ok=%d", i, T.commits[i].ok);
    }
}

static uint64_t spool_events(size_t sink)
{
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, sink, &ss);
    return ss.spool_events;
}

/* Records the pipeline counted delivered by a sink (it handles a sink's answer on the turn after
 * the sink gave it). */
static uint64_t delivered_by(size_t sink)
{
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, sink, &ss);
    return ss.delivered;
}

/* ---- scripts ---- */

/* even-numbered events RETRY on the first call, everything OK after */
static void decide_retry_some(fake_t *f, sf_sink_batch *b, unsigned call)
{
    (void)f;
    if (call != 0)
        return;
    for (size_t k = 0; k < b->n; k++)
        if (k == 1 || k == 3)
            b->status[k] = SF_DELIV_RETRY;
}

static void decide_retry_after(fake_t *f, sf_sink_batch *b, unsigned call)
{
    (void)f;
    if (call == 0) {
        for (size_t k = 0; k < b->n; k++)
            b->status[k] = SF_DELIV_RETRY;
        b->retry_after_ms = 120;
    }
}

static void decide_reject_e2(fake_t *f, sf_sink_batch *b, unsigned call)
{
    (void)f;
    (void)call;
    for (size_t k = 0; k < b->n; k++)
        if (strstr(b->events[k]->id, "-e2")) {
            b->status[k] = SF_DELIV_REJECT;
            b->reason[k] = sf_strdup("HTTP 400: \"bad\" event");
        }
}

static void decide_reject_all_no_reason(fake_t *f, sf_sink_batch *b, unsigned call)
{
    (void)f;
    (void)call;
    for (size_t k = 0; k < b->n; k++)
        b->status[k] = SF_DELIV_REJECT;
}

static void decide_always_retry(fake_t *f, sf_sink_batch *b, unsigned call)
{
    (void)f;
    (void)call;
    for (size_t k = 0; k < b->n; k++)
        b->status[k] = SF_DELIV_RETRY;
}

/* ---- tests ---- */

START_TEST(test_fanout_in_order_commits)
{
    ctx_init(2, 16);
    T.check_delivered = true;
    /* sink 0 is slow on its first batch, sink 1 answers fast: pages 2..4 are settled by sink 1
     * long before page 1 is settled by sink 0, yet commits come 1,2,3,4 */
    T.fakes[0].delays[0] = 60;
    T.fakes[0].delay_ms = 1;
    T.fakes[1].delay_ms = 1;
    T.fakes[1].delays[3] = 30;
    ctx_start();
    for (intptr_t t = 1; t <= 4; t++)
        submit_page(t, 3);
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 4);
    RUN_UNTIL(T.fakes[1].calls >= 3 && T.fakes[1].t_done[2] != 0, 1000);
    ck_assert(T.fakes[1].calls >= 3 && T.fakes[1].t_done[2] != 0);
    /* sink 1 settled pages 1-3, sink 0 has not settled page 1: nothing committed */
    ck_assert_uint_eq(T.ncommits, 0);
    ck_assert_uint_eq(T.fakes[0].calls, 1);
    RUN_UNTIL(T.ncommits == 4, 2000);
    ck_assert(T.ncommits == 4);
    assert_commits_in_order(4, true);
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 0);
    /* each sink got each page once, in order */
    for (int s = 0; s < 2; s++) {
        ck_assert_uint_eq(T.fakes[s].calls, 4);
        ck_assert_str_eq(T.fakes[s].ids[0], "p1-e0,p1-e1,p1-e2,");
        ck_assert_str_eq(T.fakes[s].ids[3], "p4-e0,p4-e1,p4-e2,");
    }
    sf_pipeline_stats st;
    sf_pipeline_stats_get(T.p, &st);
    ck_assert_uint_eq(st.delivered, 24);
    ck_assert_uint_eq(st.retried, 0);
    ck_assert_uint_eq(st.rejected, 0);
    ck_assert_uint_eq(st.queued_events, 0);
    ck_assert_uint_eq(sf_pipeline_nsinks(T.p), 2);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 1, &ss);
    ck_assert_str_eq(ss.name, "fake1");
    ck_assert_str_eq(ss.type, "fake");
    ck_assert_str_eq(ss.format, "raw");
    ck_assert_uint_eq(ss.batches, 4);
    ck_assert_uint_eq(ss.delivered, 12);
    ck_assert(ss.healthy);
    ck_assert_uint_eq(count_lines(T.dlpath), 0);
    ctx_finish();
}
END_TEST

START_TEST(test_retry_exactly_those_records)
{
    ctx_init(2, 16);
    T.check_delivered = true;
    T.fakes[0].decide = decide_retry_some;
    T.fakes[0].delay_ms = 2;
    T.fakes[1].delay_ms = 2;
    ctx_start();
    submit_page(1, 5);
    submit_page(2, 2);
    RUN_UNTIL(T.ncommits == 2, 2000);
    ck_assert(T.ncommits == 2);
    assert_commits_in_order(2, true);
    /* sink 0: page 1, then only e1 and e3 again (after backoff), then page 2 */
    ck_assert_uint_eq(T.fakes[0].calls, 3);
    ck_assert_str_eq(T.fakes[0].ids[0], "p1-e0,p1-e1,p1-e2,p1-e3,p1-e4,");
    ck_assert_str_eq(T.fakes[0].ids[1], "p1-e1,p1-e3,");
    ck_assert_str_eq(T.fakes[0].ids[2], "p2-e0,p2-e1,");
    ck_assert(T.fakes[0].t_submit[1] > T.fakes[0].t_done[0]);
    /* sink 1 unaffected */
    ck_assert_uint_eq(T.fakes[1].calls, 2);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.retried, 2);
    ck_assert_uint_eq(ss.delivered, 7);
    ck_assert(ss.healthy);
    ck_assert_str_eq(T.fakes[0].delivered.data, "p1-e0,p1-e2,p1-e4,p1-e1,p1-e3,p2-e0,p2-e1,");
    ctx_finish();
}
END_TEST

START_TEST(test_retry_after_honoured)
{
    ctx_init(1, 4);
    T.fakes[0].decide = decide_retry_after;
    T.fakes[0].delay_ms = 1;
    T.scfg[0].common.retry_initial_ms = 1; /* backoff alone would retry within 1 ms */
    T.scfg[0].common.retry_max_ms = 1;
    ctx_start();
    submit_page(1, 2);
    RUN_UNTIL(T.ncommits == 1, 2000);
    ck_assert(T.ncommits == 1);
    ck_assert_uint_eq(T.fakes[0].calls, 2);
    uint64_t waited_ms = (T.fakes[0].t_submit[1] - T.fakes[0].t_done[0]) / 1000000u;
    ck_assert_msg(waited_ms >= 118, "retried after %llu ms, Retry-After was 120 ms",
                  (unsigned long long)waited_ms);
    ck_assert_str_eq(T.fakes[0].ids[1], "p1-e0,p1-e1,");
    ck_assert(T.commits[0].ok);
    ctx_finish();
}
END_TEST

START_TEST(test_reject_goes_to_dead_letters_before_commit)
{
    ctx_init(2, 8);
    T.fakes[0].decide = decide_reject_e2;
    T.fakes[0].delay_ms = 3;
    T.fakes[1].sync = true;
    ctx_start();
    submit_page(1, 4); /* e2 rejected by sink 0 */
    submit_page(2, 2); /* nothing rejected */
    RUN_UNTIL(T.ncommits == 2, 2000);
    ck_assert(T.ncommits == 2);
    assert_commits_in_order(2, true);
    ck_assert_uint_eq(T.commits[0].dl_lines, 1); /* written before page 1's commit */
    ck_assert_uint_eq(count_lines(T.dlpath), 1);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.rejected, 1);
    ck_assert_uint_eq(ss.delivered, 5);
    ck_assert_uint_eq(ss.retried, 0);
    /* the rejected record is not re-submitted */
    ck_assert_uint_eq(T.fakes[0].calls, 2);
    sf_pipeline_sink_stats(T.p, 1, &ss);
    ck_assert_uint_eq(ss.rejected, 0);
    ck_assert_uint_eq(ss.delivered, 6);

    FILE *f = fopen(T.dlpath, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    cJSON *j = cJSON_Parse(line);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "sink")->valuestring, "fake0");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "reason")->valuestring,
                     "HTTP 400: \"bad\" event");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, "p1-e2");
    ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "event")));
    cJSON_Delete(j);
    /* the event is embedded byte for byte */
    ck_assert_ptr_nonnull(
        strstr(line, ",\"event\":{\"id\":\"p1-e2\", \"timestamp\":"
                     "1709626200000000003,\"v\":1.50,\"u\":\"\\u00e9\",\"source\":\"s2\"}}\n"));
    ctx_finish();
}
END_TEST

START_TEST(test_reject_without_reason)
{
    ctx_init(1, 8);
    T.fakes[0].decide = decide_reject_all_no_reason;
    T.fakes[0].sync = true;
    ctx_start();
    submit_page(1, 2);
    /* synchronous sink: committed on a later loop turn, not from inside submit */
    ck_assert_uint_eq(T.ncommits, 0);
    RUN_UNTIL(T.ncommits == 1, 1000);
    ck_assert_uint_eq(T.ncommits, 1);
    ck_assert(T.commits[0].ok);
    ck_assert_uint_eq(T.commits[0].dl_lines, 2);
    FILE *f = fopen(T.dlpath, "r");
    char line[1024];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(line, "\"reason\":\"rejected by the peer\""));
    ctx_finish();
}
END_TEST

START_TEST(test_dead_letter_full_holds_page)
{
    ctx_init(1, 8);
    snprintf(T.dlpath, sizeof T.dlpath, "%s/custom-dl.ndjson", T.tmpdir);
    T.cfg.dead_letter.path = T.dlpath;
    T.cfg.dead_letter.max_size = 64; /* smaller than any entry, and the file is not empty */
    FILE *pre = fopen(T.dlpath, "w");
    ck_assert_ptr_nonnull(pre);
    fputs("{\"held\":\"by an earlier run\"}\n", pre);
    fclose(pre);
    T.fakes[0].decide = decide_reject_e2;
    T.fakes[0].sync = true;
    ctx_start();
    uint64_t errors_before = sf_log_count(SF_LOG_ERROR);
    submit_page(1, 3);
    submit_page(2, 1);
    uint64_t t0 = uv_hrtime();
    RUN_UNTIL(false, 150);
    ck_assert(uv_hrtime() - t0 >= 150000000u);
    /* held: no commit, for either page (order), nothing written, the failure was logged */
    ck_assert_uint_eq(T.ncommits, 0);
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 2);
    ck_assert_uint_eq(count_lines(T.dlpath), 1); /* the earlier run's line */
    /* retried every few ms, logged once (the file is full) */
    ck_assert_uint_eq(sf_log_count(SF_LOG_ERROR), errors_before + 1);
    sf_pipeline_stats st;
    sf_pipeline_stats_get(T.p, &st);
    ck_assert_uint_eq(st.rejected, 0);
    ck_assert_uint_eq(st.delivered, 2); /* e0, e1 of page 1 */
    ck_assert_uint_eq(st.queued_events, 4);
    /* page 2 was not even submitted to the sink while page 1 is held */
    ck_assert_uint_eq(T.fakes[0].calls, 1);
    /* close: both fail, in order, before the closed callback */
    close_and_wait();
    assert_commits_in_order(2, false);
    sf_pipeline_free(T.p);
    T.p = NULL;
    ctx_finish();
}
END_TEST

/* The size of one dead-letter entry for an event of mkevents() rejected without a reason. */
static size_t dead_entry_size(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/probe.ndjson", T.tmpdir);
    sf_deadletter *d;
    ck_assert_int_eq(sf_deadletter_new(path, NULL, 1 << 20, &d), 0);
    sf_event *ev = mkevents(1, 1);
    const sf_event *evs[] = {ev};
    const char *why[] = {"rejected by the peer"};
    ck_assert_int_eq(sf_deadletter_write(d, T.names[0], evs, why, 1, NULL), 0);
    size_t n = (size_t)sf_deadletter_size(d);
    sf_deadletter_free(d);
    sf_event_free(ev);
    free(ev);
    unlink(path);
    return n;
}

/* The dead-letter file has room for one of a page's three rejected events: that one is written
 * and settled (whole entries, in order), the other two are held with the page, and "full" is
 * logged once however often the write is retried. Once the operator empties the file the rest
 * goes in and the page commits. */
START_TEST(test_dead_letter_room_for_some)
{
    ctx_init(1, 8);
    size_t line = dead_entry_size();
    const char pre[] = "{\"held\":\"by an earlier run\"}\n";
    FILE *f = fopen(T.dlpath, "w");
    ck_assert_ptr_nonnull(f);
    fputs(pre, f);
    fclose(f);
    T.cfg.dead_letter.max_size = strlen(pre) + line + line / 2;
    T.fakes[0].decide = decide_reject_all_no_reason;
    T.fakes[0].sync = true;
    ctx_start();
    uint64_t errors_before = sf_log_count(SF_LOG_ERROR);
    submit_page(1, 3);
    RUN_UNTIL(false, 150);
    ck_assert_uint_eq(T.ncommits, 0);
    ck_assert_uint_eq(count_lines(T.dlpath), 2);
    sf_pipeline_stats st;
    sf_pipeline_stats_get(T.p, &st);
    ck_assert_uint_eq(st.rejected, 1);
    /* "event p1-e0 dead-lettered", and the file full: once */
    ck_assert_uint_eq(sf_log_count(SF_LOG_ERROR), errors_before + 2);
    /* emptied: room for one more (e1), then full again; emptied again: e2, and the commit */
    ck_assert_int_eq(truncate(T.dlpath, 0), 0);
    RUN_UNTIL((sf_pipeline_stats_get(T.p, &st), st.rejected == 2), 2000);
    ck_assert_uint_eq(st.rejected, 2);
    ck_assert_uint_eq(T.ncommits, 0);
    ck_assert_int_eq(truncate(T.dlpath, 0), 0);
    RUN_UNTIL(T.ncommits == 1, 2000);
    ck_assert_uint_eq(T.ncommits, 1);
    ck_assert(T.commits[0].ok);
    ck_assert_uint_eq(T.commits[0].dl_lines, 1);
    sf_pipeline_stats_get(T.p, &st);
    ck_assert_uint_eq(st.rejected, 3);
    ctx_finish();
}
END_TEST

START_TEST(test_bounded_exhausted_fails_page)
{
    ctx_init(2, 8);
    T.fakes[0].decide = decide_always_retry;
    T.fakes[0].sync = true;
    T.fakes[1].delay_ms = 1;
    T.scfg[0].common.retry_initial_ms = 1;
    T.scfg[0].common.retry_max_ms = 2;
    T.scfg[0].common.retry_max_attempts = 3;
    ctx_start();
    sf_pipeline_set_bounded(T.p, true);
    submit_page(1, 2);
    submit_page(2, 1);
    RUN_UNTIL(T.ncommits == 2, 3000);
    ck_assert(T.ncommits == 2);
    ck_assert_int_eq(T.commits[0].token, 1);
    ck_assert(!T.commits[0].ok);
    ck_assert_int_eq(T.commits[1].token, 2);
    ck_assert(!T.commits[1].ok);
    /* 3 attempts per page, nothing dead-lettered in bounded mode */
    ck_assert_uint_eq(T.fakes[0].calls, 6);
    ck_assert_uint_eq(count_lines(T.dlpath), 0);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert(!ss.healthy);
    ck_assert_uint_eq(ss.retried, 9);
    ck_assert_uint_eq(ss.rejected, 0);
    ctx_finish();
}
END_TEST

START_TEST(test_bounded_caps_unlimited_attempts)
{
    ctx_init(1, 8);
    T.fakes[0].decide = decide_always_retry;
    T.fakes[0].sync = true;
    T.scfg[0].common.retry_initial_ms = 1;
    T.scfg[0].common.retry_max_ms = 1;
    T.scfg[0].common.retry_max_attempts = 0; /* unlimited, but --once must end */
    ctx_start();
    sf_pipeline_set_bounded(T.p, true);
    submit_page(1, 1);
    RUN_UNTIL(T.ncommits == 1, 3000);
    ck_assert(T.ncommits == 1);
    ck_assert(!T.commits[0].ok);
    ck_assert_uint_ge(T.fakes[0].calls, 2);
    ck_assert_uint_le(T.fakes[0].calls, 16);
    ctx_finish();
}
END_TEST

START_TEST(test_unbounded_exhausted_dead_letters)
{
    ctx_init(1, 8);
    T.fakes[0].decide = decide_always_retry;
    T.fakes[0].delay_ms = 1;
    T.scfg[0].common.retry_initial_ms = 1;
    T.scfg[0].common.retry_max_ms = 2;
    T.scfg[0].common.retry_max_attempts = 2;
    ctx_start();
    submit_page(1, 2);
    RUN_UNTIL(T.ncommits == 1, 3000);
    ck_assert(T.ncommits == 1);
    ck_assert(T.commits[0].ok); /* settled: dead-lettered */
    ck_assert_uint_eq(T.commits[0].dl_lines, 2);
    ck_assert_uint_eq(T.fakes[0].calls, 2);
    FILE *f = fopen(T.dlpath, "r");
    char line[1024];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(line, "retries exhausted after 2 attempts"));
    ctx_finish();
}
END_TEST

/* source simulator: submits pages while the pipeline accepts them */
static void fill(void)
{
    while (T.next_token <= T.last_token && sf_pipeline_can_accept(T.p))
        submit_page(T.next_token++, T.page_events);
    if (T.next_token <= T.last_token)
        T.refill_rounds++;
}

static void on_space(void *ud)
{
    ck_assert_ptr_eq(ud, &T);
    assert_not_reentered("space");
    T.space_calls++;
    ck_assert(sf_pipeline_can_accept(T.p));
    fill();
}

START_TEST(test_backpressure_inflight_pages_repeated)
{
    ctx_init(2, 2);
    T.fakes[0].delay_ms = 3;
    T.fakes[1].delay_ms = 1;
    ctx_start();
    sf_pipeline_on_space(T.p, on_space, &T);
    ck_assert(sf_pipeline_can_accept(T.p));
    T.next_token = 1;
    T.last_token = 8;
    T.page_events = 2;
    fill();
    ck_assert_int_eq(T.next_token, 3);
    ck_assert(!sf_pipeline_can_accept(T.p));
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 2);
    /* the callback must come back after every episode, not just the first */
    RUN_UNTIL(T.ncommits == 8, 3000);
    ck_assert_msg(T.ncommits == 8, "stalled after %zu commits, %u space calls", T.ncommits,
                  T.space_calls);
    assert_commits_in_order(8, true);
    ck_assert_uint_ge(T.refill_rounds, 3);
    ck_assert_uint_ge(T.space_calls, 4);
    ck_assert(sf_pipeline_can_accept(T.p));
    ctx_finish();
}
END_TEST

/* pipeline.max_inflight_bytes: a page whose events and records are not sent by every sink
 * holds its bytes; at the bound no more is accepted, and space comes back once they are sent. */
START_TEST(test_backpressure_inflight_bytes)
{
    ctx_init(2, 64);
    T.cfg.pipeline.max_inflight_bytes = 1; /* any page fills it */
    T.fakes[0].delay_ms = 2;
    ctx_start();
    sf_pipeline_on_space(T.p, on_space, &T);
    ck_assert_uint_eq(sf_pipeline_held_bytes(T.p), 0);
    T.next_token = 1;
    T.last_token = 6;
    T.page_events = 3;
    fill();
    ck_assert_int_eq(T.next_token, 2); /* one page, then full */
    ck_assert(!sf_pipeline_can_accept(T.p));
    /* its raw bytes (the raw records borrow them: not counted twice) */
    size_t held = sf_pipeline_held_bytes(T.p);
    ck_assert_uint_gt(held, 0);
    RUN_UNTIL(T.ncommits == 6, 3000);
    ck_assert_msg(T.ncommits == 6, "stalled after %zu commits", T.ncommits);
    assert_commits_in_order(6, true);
    ck_assert_uint_eq(sf_pipeline_held_bytes(T.p), 0);
    ck_assert(sf_pipeline_can_accept(T.p));
    ctx_finish();
}
END_TEST

START_TEST(test_backpressure_sink_queue)
{
    ctx_init(1, 64);
    T.scfg[0].common.queue_max_events = 5;
    T.fakes[0].delay_ms = 2;
    ctx_start();
    sf_pipeline_on_space(T.p, on_space, &T);
    T.next_token = 1;
    T.last_token = 10;
    T.page_events = 2;
    fill();
    ck_assert_int_eq(T.next_token, 4); /* 6 events queued >= 5 */
    ck_assert(!sf_pipeline_can_accept(T.p));
    sf_pipeline_stats st;
    sf_pipeline_stats_get(T.p, &st);
    ck_assert_uint_eq(st.queued_events, 6);
    RUN_UNTIL(T.ncommits == 10, 3000);
    ck_assert(T.ncommits == 10);
    assert_commits_in_order(10, true);
    ck_assert_uint_ge(T.refill_rounds, 2);
    ctx_finish();
}
END_TEST

START_TEST(test_sync_done_inside_submit)
{
    ctx_init(2, 8);
    T.check_delivered = true;
    T.fakes[0].sync = true;
    T.fakes[1].sync = true;
    ctx_start();
    submit_page(1, 3);
    ck_assert_uint_eq(T.fakes[0].calls, 1); /* answered inside submit */
    ck_assert_uint_eq(T.ncommits, 0);       /* handled on the next turn */
    RUN_UNTIL(T.ncommits == 1, 1000);
    ck_assert_uint_eq(T.ncommits, 1);
    submit_page(2, 0); /* empty page: a pure checkpoint step */
    RUN_UNTIL(T.ncommits == 2, 1000);
    ck_assert_uint_eq(T.ncommits, 2);
    submit_page(3, 1);
    RUN_UNTIL(T.ncommits == 3, 1000);
    assert_commits_in_order(3, true);
    ck_assert_uint_eq(T.fakes[0].calls, 2); /* the empty page is not sent */
    /* a synchronous RETRY inside submit is retried after a timer, not recursively */
    T.fakes[0].decide = decide_retry_some;
    T.fakes[0].calls = 0;
    submit_page(4, 4);
    ck_assert_uint_eq(T.ncommits, 3);
    ck_assert_uint_eq(T.fakes[0].calls, 1);
    RUN_UNTIL(T.ncommits == 4, 2000);
    ck_assert(T.ncommits == 4);
    ck_assert_str_eq(T.fakes[0].ids[1], "p4-e1,p4-e3,");
    ck_assert(T.commits[3].ok);
    ctx_finish();
}
END_TEST

/* A sink that answers from inside submit() does not re-enter the pipeline: the answer is handled
 * on the next turn, and the next page goes to the sink only then (one batch in flight), never
 * from inside the first submit. */
START_TEST(test_answer_inside_submit_handled_next_turn)
{
    ctx_init(2, 8);
    T.check_delivered = true;
    T.fakes[0].sync = true;
    T.fakes[1].sync = true;
    ctx_start();
    submit_page(1, 2);
    submit_page(2, 3);
    for (int s = 0; s < 2; s++) {
        ck_assert_uint_eq(T.fakes[s].calls, 1); /* page 2 waits for page 1's answer */
        ck_assert_uint_eq(T.fakes[s].oks, 2);   /* answered */
    }
    ck_assert_uint_eq(T.ncommits, 0);
    sf_pipeline_stats st;
    sf_pipeline_stats_get(T.p, &st);
    ck_assert_uint_eq(st.delivered, 0); /* the answer is not handled yet */
    RUN_UNTIL(T.ncommits == 2, 1000);
    assert_commits_in_order(2, true);
    for (int s = 0; s < 2; s++) {
        ck_assert_uint_eq(T.fakes[s].calls, 2);
        ck_assert_str_eq(T.fakes[s].ids[1], "p2-e0,p2-e1,p2-e2,");
    }
    ctx_finish();
}
END_TEST

/* A commit callback that submits the next page (as the source did when the pipeline had room
 * again): every commit comes on its own turn, none inside the submit that its callback made,
 * so the stack does not grow with the number of pages. */
START_TEST(test_commit_callback_submits_again)
{
    ctx_init(2, 4);
    T.check_delivered = true;
    T.fakes[0].sync = true;
    T.fakes[1].sync = true;
    T.chain_to = 40;
    T.chain_n = 2;
    ctx_start();
    submit_page(1, 2);
    ck_assert_uint_eq(T.ncommits, 0);
    RUN_UNTIL(T.ncommits == 40, 3000);
    assert_commits_in_order(40, true);
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 0);
    ctx_finish();
}
END_TEST

START_TEST(test_submit_error_retries_all)
{
    ctx_init(1, 8);
    T.fakes[0].refuse_calls = 2;
    T.fakes[0].delay_ms = 1;
    ctx_start();
    submit_page(1, 2);
    RUN_UNTIL(T.ncommits == 1, 2000);
    ck_assert(T.ncommits == 1);
    ck_assert(T.commits[0].ok);
    ck_assert_uint_eq(T.fakes[0].calls, 3);
    ck_assert_str_eq(T.fakes[0].ids[2], "p1-e0,p1-e1,");
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.retried, 4);
    ck_assert_str_eq(ss.last_error, "refused");
    ctx_finish();
}
END_TEST

START_TEST(test_no_sinks)
{
    ctx_init(0, 2);
    ctx_start();
    submit_page(1, 2);
    submit_page(2, 0);
    ck_assert_uint_eq(T.ncommits, 0); /* complete at once, committed on the next turn */
    RUN_UNTIL(T.ncommits == 2, 1000);
    assert_commits_in_order(2, true);
    ctx_finish();
}
END_TEST

START_TEST(test_close_with_pages_in_flight)
{
    ctx_init(2, 8);
    T.fakes[0].delay_ms = 1;
    T.fakes[1].delay_ms = 5000; /* never answers in time */
    ctx_start();
    for (intptr_t t = 1; t <= 4; t++)
        submit_page(t, 2);
    RUN_UNTIL(T.fakes[0].calls == 4 && T.fakes[0].t_done[3] != 0, 2000);
    ck_assert(T.fakes[0].calls == 4 && T.fakes[0].t_done[3] != 0);
    ck_assert_uint_eq(T.ncommits, 0);
    pipeline_close();
    ck_assert_uint_eq(T.ncommits, 0); /* on a later turn */
    ck_assert(!sf_pipeline_can_accept(T.p));
    RUN_UNTIL(T.closed, 2000);
    ck_assert(T.closed);
    assert_commits_in_order(4, false);
    ck_assert_uint_eq(T.commits_at_closed, 4); /* the commits came before the closed callback */
    ck_assert(T.fakes[0].closed && T.fakes[1].closed);
    ck_assert_uint_eq(T.ncommits, 4); /* no second commit for any page */
    sf_pipeline_free(T.p);
    T.p = NULL;
    ctx_finish();
}
END_TEST

/* A sink that settles late holds each page's commit until it settled the page's records; the
 * held pages no longer count toward max_inflight_pages. */
START_TEST(test_deferred_settlement_holds_commits)
{
    ctx_init(2, 2);
    T.check_delivered = true;
    T.fakes[0].defer = true;
    ctx_start();
    submit_page(1, 2);
    submit_page(2, 2);
    ck_assert(!sf_pipeline_can_accept(T.p));
    RUN_UNTIL(delivered_by(0) == 4 && delivered_by(1) == 4, 1000);
    ck_assert_uint_eq(T.fakes[0].oks, 4);
    ck_assert_uint_eq(T.fakes[1].oks, 4);
    ck_assert_uint_eq(T.ncommits, 0); /* written everywhere, not settled by fake0 */
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 2);
    ck_assert(sf_pipeline_can_accept(T.p)); /* only settlement is awaited */
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.unsettled, 4);
    ck_assert_uint_eq(ss.delivered, 4);
    fake_settle(&T.fakes[0], 1);
    RUN_UNTIL(T.ncommits > 0, 30);
    ck_assert_uint_eq(T.ncommits, 0); /* page 1 has 2 records */
    fake_settle(&T.fakes[0], 2);
    ck_assert_uint_eq(T.ncommits, 0); /* on the next turn */
    RUN_UNTIL(T.ncommits > 0, 1000);
    RUN_UNTIL(T.ncommits > 1, 30);
    ck_assert_uint_eq(T.ncommits, 1); /* page 1, not page 2 (one record short) */
    fake_settle(&T.fakes[0], 1);
    RUN_UNTIL(T.ncommits == 2, 1000);
    assert_commits_in_order(2, true);
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 0);
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.unsettled, 0);
    /* a settlement that arrives before the batch completes counts too (the sink's settle
     * timer may fire while a later write of the batch is still pending) */
    T.fakes[0].delay_ms = 50;
    submit_page(3, 1);
    RUN_UNTIL(T.fakes[0].pending != NULL, 1000);
    ck_assert_ptr_nonnull(T.fakes[0].pending);
    T.fakes[0].settled++;
    call_enter();
    sf_sink_settled(T.fakes[0].sink, 1);
    call_leave();
    RUN_UNTIL(T.ncommits > 2, 10);
    ck_assert_uint_eq(T.ncommits, 2);
    RUN_UNTIL(T.ncommits == 3, 1000);
    assert_commits_in_order(3, true);
    ctx_finish();
}
END_TEST

/* batch_max: pages queued behind a batch in flight go out together, whole, up to batch_max
 * records; a retry in such a batch re-sends exactly the refused records. */
/* ---- per-sink progress (the checkpoint's per-sink part) ---- */

static void on_confirmed(void *ud, size_t sink, void *token)
{
    ck_assert_ptr_eq(ud, &T);
    assert_not_reentered("confirmed");
    ck_assert_uint_lt(T.nconf, SF_ARRAY_LEN(T.conf));
    /* a page is confirmed by a sink before it commits, never after */
    for (size_t i = 0; i < T.ncommits; i++)
        ck_assert_msg(T.commits[i].token != (intptr_t)token, "page %ld confirmed after its commit",
                      (long)(intptr_t)token);
    T.conf[T.nconf].sink = sink;
    T.conf[T.nconf].token = (intptr_t)token;
    T.nconf++;
}

static bool on_skip(void *ud, size_t sink, const sf_event *ev)
{
    ck_assert_ptr_eq(ud, &T);
    for (size_t i = 0; sink == T.skip_sink && i < SF_ARRAY_LEN(T.skip) && T.skip[i]; i++)
        if (strcmp(T.skip[i], ev->id) == 0)
            return true;
    return false;
}

static void set_hooks(void)
{
    sf_pipeline_sink_hooks h = {.confirmed = on_confirmed, .skip = on_skip, .ud = &T};
    sf_pipeline_set_sink_hooks(T.p, &h);
}

static bool confirmed(size_t sink, intptr_t token)
{
    for (size_t i = 0; i < T.nconf; i++)
        if (T.conf[i].sink == sink && T.conf[i].token == token)
            return true;
    return false;
}

/* A sink that settles late confirms a page only once it settled it; the other sink's
 * confirmations are reported while the page waits (in page order, on a later turn), and a page
 * that commits is not reported as well. */
START_TEST(test_sink_confirms_after_settlement)
{
    ctx_init(2, 4);
    T.fakes[0].defer = true;
    ctx_start();
    set_hooks();
    submit_page(1, 2);
    submit_page(2, 2);
    ck_assert_uint_eq(T.nconf, 0);
    RUN_UNTIL(delivered_by(0) == 4 && delivered_by(1) == 4 && T.nconf == 2, 1000);
    ck_assert_uint_eq(T.nconf, 2);
    ck_assert(T.conf[0].sink == 1 && T.conf[0].token == 1);
    ck_assert(T.conf[1].sink == 1 && T.conf[1].token == 2);
    ck_assert_uint_eq(T.fakes[0].oks, 4); /* written by fake0, not settled: not confirmed */
    RUN_UNTIL(T.nconf > 2, 30);
    ck_assert_uint_eq(T.nconf, 2);
    ck_assert_uint_eq(T.ncommits, 0);
    fake_settle(&T.fakes[0], 3); /* page 1, and half of page 2 */
    RUN_UNTIL(T.ncommits == 1, 1000);
    ck_assert_uint_eq(T.ncommits, 1);
    RUN_UNTIL(T.nconf > 2, 30);
    ck_assert_uint_eq(T.nconf, 2); /* page 1 committed instead; page 2 not settled */
    fake_settle(&T.fakes[0], 1);
    RUN_UNTIL(T.ncommits == 2, 1000);
    assert_commits_in_order(2, true);
    ck_assert_uint_eq(T.nconf, 2);
    ctx_finish();
}
END_TEST

/* Bounded mode giving up on a page settles it for the sink without delivery: not confirmed. */
START_TEST(test_given_up_page_not_confirmed)
{
    ctx_init(2, 8);
    T.fakes[0].decide = decide_always_retry;
    T.fakes[0].sync = true;
    T.fakes[1].defer = true;
    T.scfg[0].common.retry_initial_ms = 1;
    T.scfg[0].common.retry_max_ms = 2;
    T.scfg[0].common.retry_max_attempts = 2;
    ctx_start();
    set_hooks();
    sf_pipeline_set_bounded(T.p, true);
    submit_page(1, 2);
    RUN_UNTIL(T.fakes[0].calls >= 2 && delivered_by(1) == 2, 3000);
    RUN_UNTIL(T.nconf > 0, 50);
    ck_assert_uint_eq(T.nconf, 0); /* fake0 gave up; fake1 has not settled */
    fake_settle(&T.fakes[1], 2);
    RUN_UNTIL(T.ncommits == 1, 1000);
    assert_commits_in_order(1, false);
    ck_assert(!confirmed(0, 1));
    ctx_finish();
}
END_TEST

/* --once: a sink that could not settle a page within pipeline.shutdown_timeout (syslog's
 * window, Splunk's acks) has not confirmed it, even while another sink still holds the page
 * (which then commits as failed): the next run sends it to that sink again. */
START_TEST(test_failed_settlement_not_confirmed)
{
    ctx_init(2, 8);
    T.cfg.pipeline.shutdown_timeout_ms = 200;
    T.fakes[0].defer = true;  /* written, never settled */
    T.fakes[1].batch_max = 1; /* one page per call, both still sending at sink 0's deadline */
    T.fakes[1].delays[0] = 500;
    T.fakes[1].delays[1] = 1200;
    ctx_start();
    set_hooks();
    sf_pipeline_set_bounded(T.p, true);
    submit_page(1, 2);
    submit_page(2, 2);
    RUN_UNTIL(T.fakes[0].oks == 4, 1000);
    pipeline_flush();
    RUN_UNTIL(T.ncommits == 2, 4000);
    ck_assert_uint_eq(T.ncommits, 2);
    ck_assert(!T.commits[0].ok && !T.commits[1].ok);
    /* page 2 waited for sink 1 after page 1 committed: a confirmation would have shown */
    ck_assert(!confirmed(0, 1));
    ck_assert(!confirmed(0, 2));
    ctx_finish();
}
END_TEST

/* Events a sink's filter drops are settled for it, not "skipped" (confirmed in an earlier run):
 * each counter counts its own. */
START_TEST(test_skipped_and_filtered_counted_apart)
{
    ctx_init(2, 4);
    T.check_delivered = false;
    T.skip_sink = 0;
    T.skip[0] = "p1-e0";
    T.skip[1] = "p1-e1";
    /* sink 0 takes only each page's first event (source s0) */
    sf_cfg_errors errs = {.file = "f.yaml"};
    const char *yaml = "source: s0\n";
    sf_cfg_node *node = sf_cfg_parse_yaml(yaml, strlen(yaml), &errs);
    ck_assert_ptr_nonnull(node);
    sf_filter *f = NULL;
    ck_assert_int_eq(sf_filter_compile(node, "sinks[0].filter", &errs, &f), 0);
    T.scfg[0].common.filter = f;
    ctx_start();
    set_hooks();
    submit_page(1, 3);
    RUN_UNTIL(T.ncommits == 1, 1000);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.filtered, 2); /* p1-e1, p1-e2 do not match */
    ck_assert_uint_eq(ss.skipped, 1);  /* p1-e0 passes it and was confirmed before; p1-e1
                                        * (confirmed too) is filtered, not skipped */
    ctx_finish();
    sf_filter_free(f);
    sf_cfg_node_free(node);
    sf_cfg_errors_free(&errs);
}
END_TEST

/* What a sink confirmed in an earlier run is not sent to it again (the other sinks get it);
 * counted as skipped; the pages commit as usual. */
START_TEST(test_skip_confirmed_events)
{
    ctx_init(2, 4);
    T.check_delivered = false;
    T.skip_sink = 0;
    T.skip[0] = "p1-e0";
    T.skip[1] = "p1-e1";
    T.skip[2] = "p2-e0";
    ctx_start();
    set_hooks();
    submit_page(1, 2);
    submit_page(2, 2);
    RUN_UNTIL(T.ncommits == 2, 1000);
    assert_commits_in_order(2, true);
    const char *d0 = T.fakes[0].delivered.data ? T.fakes[0].delivered.data : "";
    ck_assert_str_eq(d0, "p2-e1,");
    ck_assert_uint_eq(delivered_by(1), 4);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.skipped, 3);
    ck_assert_uint_eq(ss.delivered, 1);
    sf_pipeline_sink_stats(T.p, 1, &ss);
    ck_assert_uint_eq(ss.skipped, 0);
    ctx_finish();
}
END_TEST

START_TEST(test_batch_gathers_queued_pages)
{
    ctx_init(1, 16);
    T.check_delivered = true;
    T.fakes[0].batch_max = 5;
    T.fakes[0].delays[0] = 40;
    T.fakes[0].decide = decide_retry_some; /* call 0: records 1 and 3 RETRY */
    ctx_start();
    for (intptr_t t = 1; t <= 5; t++)
        submit_page(t, 2);
    RUN_UNTIL(T.ncommits == 5, 3000);
    assert_commits_in_order(5, true);
    ck_assert_str_eq(T.fakes[0].ids[0], "p1-e0,p1-e1,");
    ck_assert_str_eq(T.fakes[0].ids[1], "p1-e1,p2-e0,p2-e1,p3-e0,p3-e1,"); /* retry + 2 pages */
    ck_assert_str_eq(T.fakes[0].ids[2], "p4-e0,p4-e1,p5-e0,p5-e1,");
    ck_assert_uint_eq(T.fakes[0].calls, 3);
    ctx_finish();
}
END_TEST

/* batch_wait: a partial batch waits for more pages, but not once it is full, nor when no
 * more pages are coming (flush). */
START_TEST(test_batch_wait_for_more_pages)
{
    ctx_init(1, 16);
    T.fakes[0].batch_max = 4;
    T.fakes[0].batch_wait_ms = 60000;
    ctx_start();
    submit_page(1, 2);
    RUN_UNTIL(false, 30);
    ck_assert_uint_eq(T.fakes[0].calls, 0); /* waiting for more */
    submit_page(2, 2);                      /* full: goes at once */
    RUN_UNTIL(T.ncommits == 2, 2000);
    assert_commits_in_order(2, true);
    ck_assert_str_eq(T.fakes[0].ids[0], "p1-e0,p1-e1,p2-e0,p2-e1,");
    submit_page(3, 1);
    RUN_UNTIL(false, 30);
    ck_assert_uint_eq(T.fakes[0].calls, 1);
    pipeline_flush(); /* nothing more is coming: no waiting */
    RUN_UNTIL(T.ncommits == 3, 2000);
    assert_commits_in_order(3, true);
    ck_assert_str_eq(T.fakes[0].ids[1], "p3-e0,");
    ctx_finish();

    /* a batch the pipeline's limits cannot fill (2 pages of at most 2 < 10) is not held */
    ctx_init(1, 2);
    T.cfg.source.page_size = 2;
    T.fakes[0].batch_max = 10;
    T.fakes[0].batch_wait_ms = 60000;
    ctx_start();
    submit_page(1, 2);
    RUN_UNTIL(T.ncommits == 1, 2000);
    assert_commits_in_order(1, true);
    ctx_finish();
}
END_TEST

/* Pages held only for settlement stop counting as in flight: the source is told at once, also
 * when the sink that finishes last is not the one that holds the page. */
START_TEST(test_deferred_pages_free_space_whoever_finishes_last)
{
    ctx_init(2, 2);
    T.fakes[0].defer = true;
    T.fakes[0].delay_ms = 1;
    T.fakes[1].delay_ms = 20;
    ctx_start();
    sf_pipeline_on_space(T.p, on_space, &T);
    T.next_token = 1;
    T.last_token = 6;
    T.page_events = 2;
    fill();
    ck_assert_int_eq(T.next_token, 3);
    /* nothing settles, yet all 6 pages get sent to both sinks */
    RUN_UNTIL(T.fakes[1].oks == 12, 3000);
    ck_assert_uint_eq(T.fakes[1].oks, 12);
    ck_assert_uint_eq(T.fakes[0].oks, 12);
    ck_assert_uint_eq(T.ncommits, 0);
    fake_settle(&T.fakes[0], 12);
    RUN_UNTIL(T.ncommits == 6, 1000);
    assert_commits_in_order(6, true);
    ctx_finish();
}
END_TEST

/* --once / --from: a sink that cannot settle does not hang the run: after
 * pipeline.shutdown_timeout its held pages fail (the checkpoint stays before them). */
START_TEST(test_deferred_bounded_flush_deadline)
{
    ctx_init(1, 8);
    T.cfg.pipeline.shutdown_timeout_ms = 200;
    T.fakes[0].defer = true; /* and its flush settles nothing */
    ctx_start();
    sf_pipeline_set_bounded(T.p, true);
    submit_page(1, 2);
    submit_page(2, 1);
    RUN_UNTIL(T.fakes[0].oks == 2, 1000);
    fake_settle(&T.fakes[0], 2);
    RUN_UNTIL(T.ncommits == 1, 1000);
    ck_assert_uint_eq(T.ncommits, 1);
    pipeline_flush();
    RUN_UNTIL(T.ncommits == 2, 3000);
    ck_assert_uint_eq(T.ncommits, 2);
    ck_assert(T.commits[0].ok);
    ck_assert(!T.commits[1].ok);
    ck_assert_uint_ge(T.fakes[0].flushes, 1);
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 0);
    ctx_finish();
}
END_TEST

/* flush(): once a sink has nothing left to send it is asked to settle now. */
START_TEST(test_deferred_flush_settles)
{
    ctx_init(1, 8);
    T.fakes[0].defer = true;
    T.fakes[0].flush_settles = true;
    T.fakes[0].delay_ms = 5;
    ctx_start();
    for (intptr_t t = 1; t <= 3; t++)
        submit_page(t, 2);
    pipeline_flush();
    RUN_UNTIL(T.ncommits == 3, 2000);
    assert_commits_in_order(3, true);
    ck_assert_uint_ge(T.fakes[0].flushes, 1);
    ck_assert_uint_eq(T.fakes[0].calls_at_flush, 3); /* only after the last batch */
    ck_assert_uint_eq(sf_pipeline_inflight(T.p), 0);
    ctx_finish();
}
END_TEST

/* Held pages fail on close (read again after a restart); a late settlement is ignored. */
START_TEST(test_deferred_close_fails_held_pages)
{
    ctx_init(1, 8);
    T.fakes[0].defer = true;
    ctx_start();
    submit_page(1, 2);
    submit_page(2, 1);
    RUN_UNTIL(T.fakes[0].oks == 3, 1000);
    fake_settle(&T.fakes[0], 2);
    RUN_UNTIL(T.ncommits == 1, 1000);
    ck_assert_uint_eq(T.ncommits, 1);
    pipeline_close();
    fake_settle(&T.fakes[0], 1); /* late: ignored */
    close_and_wait_closing();
    ck_assert_uint_eq(T.ncommits, 2);
    ck_assert(T.commits[0].ok);
    ck_assert(!T.commits[1].ok);
    sf_pipeline_free(T.p);
    T.p = NULL;
    ctx_finish();
}
END_TEST

/* Spool replay through a sink that settles late: the spool is consumed only once the sink
 * settled; what it had not settled is replayed again after a restart. */
START_TEST(test_deferred_spool_consumed_after_settlement)
{
    ctx_init(1, 8);
    char spool[300];
    snprintf(spool, sizeof spool, "%s/spool", T.tmpdir);
    T.scfg[0].common.spool_path = spool;
    T.scfg[0].common.spool_max_size = 1 << 20;
    T.scfg[0].common.spool_segment_size = 1 << 16;
    T.fakes[0].defer = true;
    T.fakes[0].decide = decide_always_retry;
    ctx_start();
    for (intptr_t t = 1; t <= 3; t++)
        submit_page(t, 2);
    /* refused: spooled, and the checkpoint moves */
    RUN_UNTIL(T.ncommits == 3, 2000);
    assert_commits_in_order(3, true);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.spool_events, 6);
    /* the sink recovers: replayed and written, but not settled */
    T.fakes[0].decide = NULL;
    RUN_UNTIL(T.fakes[0].oks == 6, 3000);
    ck_assert_uint_eq(T.fakes[0].oks, 6);
    RUN_UNTIL(false, 50);
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.spool_events, 6); /* taken, not consumed */
    ck_assert_uint_eq(ss.unsettled, 6);
    unsigned calls = T.fakes[0].calls;
    fake_settle(&T.fakes[0], 5);
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.spool_events, 6);      /* one replay batch: consumed when all 6 settled */
    ck_assert_uint_eq(T.fakes[0].calls, calls); /* nothing re-sent meanwhile */
    /* "crash" with 1 unsettled: a new pipeline on the same spool replays the batch again */
    close_and_wait();
    sf_pipeline_free(T.p);
    T.p = NULL;
    sf_buf_free(&T.fakes[0].delivered);
    T.fakes[0] = (fake_t){.defer = true, .delay_ms = 1};
    T.closed = false;
    ctx_start();
    RUN_UNTIL(T.fakes[0].oks == 6, 2000);
    ck_assert_uint_eq(T.fakes[0].oks, 6);
    ck_assert_str_eq(T.fakes[0].ids[0], "p1-e0,p1-e1,p2-e0,p2-e1,p3-e0,p3-e1,");
    fake_settle(&T.fakes[0], 6);
    RUN_UNTIL(spool_events(0) == 0, 1000); /* consumed on the next turn */
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.spool_events, 0);
    ctx_finish();
}
END_TEST

/* call 0 (page 1) and the first three spool replays: everything refused; the fourth replay:
 * the sink takes the first 3 records and refuses the rest; then everything OK */
static void decide_replay_refusals(fake_t *f, sf_sink_batch *b, unsigned call)
{
    (void)f;
    size_t from = call <= 3 ? 0 : call == 4 ? 3 : b->n;
    for (size_t k = from; k < b->n; k++)
        b->status[k] = SF_DELIV_RETRY;
}

/* A spool replay the sink refuses, wholly or in part, resumes at the first refused record:
 * every spooled event reaches the sink exactly once, in order, and the spool drains. */
START_TEST(test_spool_replay_resumes_at_first_refused)
{
    ctx_init(1, 8);
    char spool[300];
    snprintf(spool, sizeof spool, "%s/spool", T.tmpdir);
    T.scfg[0].common.spool_path = spool;
    T.scfg[0].common.spool_max_size = 1 << 20;
    T.scfg[0].common.spool_segment_size = 1 << 16;
    T.scfg[0].common.retry_initial_ms = 1;
    T.scfg[0].common.retry_max_ms = 2;
    T.fakes[0].decide = decide_replay_refusals;
    ctx_start();
    for (intptr_t t = 1; t <= 3; t++)
        submit_page(t, 2);
    /* page 1 refused: pages 1-3 go to the spool and commit */
    RUN_UNTIL(T.ncommits == 3, 2000);
    assert_commits_in_order(3, true);
    sf_sink_stats ss;
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.spool_events, 6);
    RUN_UNTIL(spool_events(0) == 0, 3000); /* drained (everything delivered, or skipped) */
    ck_assert_str_eq(T.fakes[0].delivered.data, "p1-e0,p1-e1,p2-e0,p2-e1,p3-e0,p3-e1,");
    ck_assert_uint_eq(T.fakes[0].calls, 6);
    for (unsigned c = 1; c <= 4; c++)
        ck_assert_str_eq(T.fakes[0].ids[c], "p1-e0,p1-e1,p2-e0,p2-e1,p3-e0,p3-e1,");
    ck_assert_str_eq(T.fakes[0].ids[5], "p2-e1,p3-e0,p3-e1,");
    sf_pipeline_sink_stats(T.p, 0, &ss);
    ck_assert_uint_eq(ss.spooled, 6);
    ck_assert_uint_eq(ss.spool_events, 0);
    ck_assert_uint_eq(ss.delivered, 6);
    ck_assert_uint_eq(ss.rejected, 0);
    ctx_finish();
}
END_TEST

static void decide_refuse_then_reject(fake_t *f, sf_sink_batch *b, unsigned call)
{
    (void)f;
    for (size_t k = 0; k < b->n; k++)
        b->status[k] = call == 0 ? SF_DELIV_RETRY : SF_DELIV_REJECT;
}

/* A spool replay whose records the sink rejects, with room in the dead-letter file for one
 * entry at a time: the spool is consumed exactly as far as the file took them, never past a
 * rejected record that is not in the file yet. */
START_TEST(test_spool_replay_dead_letter_room_for_some)
{
    ctx_init(1, 8);
    size_t line = dead_entry_size();
    T.cfg.dead_letter.max_size = line + line / 2;
    char spool[300];
    snprintf(spool, sizeof spool, "%s/spool", T.tmpdir);
    T.scfg[0].common.spool_path = spool;
    T.scfg[0].common.spool_max_size = 1 << 20;
    T.scfg[0].common.spool_segment_size = 1 << 16;
    T.scfg[0].common.retry_initial_ms = 1;
    T.scfg[0].common.retry_max_ms = 2;
    T.fakes[0].decide = decide_refuse_then_reject;
    ctx_start();
    submit_page(1, 3);
    RUN_UNTIL(T.ncommits == 1, 2000); /* refused: spooled, committed */
    assert_commits_in_order(1, true);
    for (unsigned room = 1; room <= 3; room++) {
        RUN_UNTIL(count_lines(T.dlpath) == 1 && spool_events(0) == 3 - room, 2000);
        RUN_UNTIL(false, 30); /* retries while full take nothing more */
        ck_assert_uint_eq(count_lines(T.dlpath), 1);
        ck_assert_uint_eq(spool_events(0), 3 - room);
        sf_sink_stats ss;
        sf_pipeline_sink_stats(T.p, 0, &ss);
        ck_assert_uint_eq(ss.rejected, room);
        ck_assert_int_eq(truncate(T.dlpath, 0), 0);
    }
    ctx_finish();
}
END_TEST

START_TEST(test_close_idle)
{
    ctx_init(1, 8);
    T.fakes[0].sync = true;
    ctx_start();
    submit_page(1, 1);
    ctx_finish();
    /* a pipeline that was never opened closes too */
    ctx_init(1, 8);
    ck_assert_int_eq(sf_pipeline_new(&T.loop, &T.defer, NULL, &T.cfg, on_commit, &T, &T.p), 0);
    ctx_finish();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fanout_in_order_commits);
    tcase_add_test(tc, test_retry_exactly_those_records);
    tcase_add_test(tc, test_retry_after_honoured);
    tcase_add_test(tc, test_reject_goes_to_dead_letters_before_commit);
    tcase_add_test(tc, test_reject_without_reason);
    tcase_add_test(tc, test_dead_letter_full_holds_page);
    tcase_add_test(tc, test_dead_letter_room_for_some);
    tcase_add_test(tc, test_bounded_exhausted_fails_page);
    tcase_add_test(tc, test_bounded_caps_unlimited_attempts);
    tcase_add_test(tc, test_unbounded_exhausted_dead_letters);
    tcase_add_test(tc, test_backpressure_inflight_pages_repeated);
    tcase_add_test(tc, test_backpressure_sink_queue);
    tcase_add_test(tc, test_backpressure_inflight_bytes);
    tcase_add_test(tc, test_sync_done_inside_submit);
    tcase_add_test(tc, test_answer_inside_submit_handled_next_turn);
    tcase_add_test(tc, test_commit_callback_submits_again);
    tcase_add_test(tc, test_submit_error_retries_all);
    tcase_add_test(tc, test_no_sinks);
    tcase_add_test(tc, test_close_with_pages_in_flight);
    tcase_add_test(tc, test_spool_replay_dead_letter_room_for_some);
    tcase_add_test(tc, test_close_idle);
    tcase_add_test(tc, test_deferred_settlement_holds_commits);
    tcase_add_test(tc, test_deferred_flush_settles);
    tcase_add_test(tc, test_batch_gathers_queued_pages);
    tcase_add_test(tc, test_sink_confirms_after_settlement);
    tcase_add_test(tc, test_given_up_page_not_confirmed);
    tcase_add_test(tc, test_skip_confirmed_events);
    tcase_add_test(tc, test_failed_settlement_not_confirmed);
    tcase_add_test(tc, test_skipped_and_filtered_counted_apart);
    tcase_add_test(tc, test_batch_wait_for_more_pages);
    tcase_add_test(tc, test_deferred_pages_free_space_whoever_finishes_last);
    tcase_add_test(tc, test_deferred_bounded_flush_deadline);
    tcase_add_test(tc, test_deferred_close_fails_held_pages);
    tcase_add_test(tc, test_deferred_spool_consumed_after_settlement);
    tcase_add_test(tc, test_spool_replay_resumes_at_first_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
