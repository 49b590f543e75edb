/* pipeline: submit (encode a page for every sink), the deferred notification (commits in page
 * order, space, closed), bounds and close. The sink side is in sinkq.c. See pipeline.h. */
#include "pipeline/pipeline.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pipeline/job.h"
#include "pipeline/ledger.h"

/* Pages delivered everywhere but waiting for a sink to settle them (deferred settlement: their
 * events are freed, only the commit token is kept). Bounds memory and the checkpoint lag. */
#define MAX_SETTLING_PAGES 256

struct sf_pipeline {
    sf_pipe_ctx ctx; /* first: the sink queues' view of the pipeline */
    sf_sinkq *sinks;
    size_t nsinks;
    bool keep_trees; /* a sink reads event fields when it sends (sink ops reads_events) */
    sf_pipeline_commit_cb cb;
    void *ud;
    sf_pipeline_sink_hooks hooks;
    void (*space_cb)(void *);
    void *space_ud;
    /* the notification: commits, then space, then closed, on a later turn */
    sf_defer_node notify;
    bool space_due; /* a page stopped counting as in flight since the last notification */
    size_t closing_left;
    void (*closed_cb)(void *);
    void *closed_ud;
};

static sf_pipeline *of_ctx(const sf_pipe_ctx *ctx)
{
    return (sf_pipeline *)((char *)ctx - offsetof(sf_pipeline, ctx));
}

static void post_notify(sf_pipeline *p)
{
    sf_defer_post(p->ctx.defer, &p->notify);
}

/* Delivers, in order: the commits of the completed prefix of the ledger, the space callback,
 * the closed callback. Runs from the loop (a deferred call), so whatever the callbacks call
 * starts from a clean stack. */
static void on_notify(void *arg)
{
    sf_pipeline *p = arg;
    sf_pipe_ctx *ctx = &p->ctx;
    bool freed = false;
    sf_ledger_page *pg;
    while ((pg = sf_ledger_pop(&ctx->ledger))) {
        freed = true;
        if (!pg->committed) {
            pg->committed = true;
            p->cb(p->ud, pg->token, !pg->failed);
        }
        sf_ledger_page_free(pg);
    }
    if (p->hooks.confirmed)
        sf_ledger_sink_report(&ctx->ledger, p->nsinks, p->hooks.confirmed, p->hooks.ud);
    else
        ctx->ledger.sink_news = 0;
    if (ctx->closing) {
        /* pages that stay linked (jobs point at them until free) fail, in order */
        for (pg = ctx->ledger.head; pg; pg = pg->next) {
            if (pg->committed)
                continue;
            pg->committed = true;
            p->cb(p->ud, pg->token, false);
        }
        if (p->closing_left == 0 && p->closed_cb) {
            void (*cb)(void *) = p->closed_cb;
            p->closed_cb = NULL;
            cb(p->closed_ud);
        }
        return;
    }
    if ((freed || p->space_due) && p->space_cb && sf_pipeline_can_accept(p)) {
        p->space_due = false;
        p->space_cb(p->space_ud); /* stays registered: backpressure recurs */
    }
}

static bool ctx_can_accept(const sf_pipe_ctx *ctx)
{
    return sf_pipeline_can_accept(of_ctx(ctx));
}

static void ctx_changed(sf_pipe_ctx *ctx, bool space)
{
    sf_pipeline *p = of_ctx(ctx);
    if (space)
        p->space_due = true;
    post_notify(p);
}

static void ctx_closed_part(sf_pipe_ctx *ctx)
{
    sf_pipeline *p = of_ctx(ctx);
    if (--p->closing_left == 0)
        post_notify(p);
}

int sf_pipeline_new(uv_loop_t *loop, sf_defer *defer, struct sf_http *http, const sf_config *cfg,
                    sf_pipeline_commit_cb cb, void *ud, sf_pipeline **out)
{
    sf_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    sf_pipe_ctx *ctx = &p->ctx;
    ctx->loop = loop;
    ctx->defer = defer;
    ctx->cfg = cfg;
    ctx->can_accept = ctx_can_accept;
    ctx->changed = ctx_changed;
    ctx->closed_part = ctx_closed_part;
    p->cb = cb;
    p->ud = ud;
    p->nsinks = cfg->nsinks;
    for (size_t i = 0; i < cfg->nsinks; i++)
        p->keep_trees = p->keep_trees || cfg->sinks[i]->ops->reads_events;
    sf_defer_node_init(&p->notify, on_notify, p);
    if (sf_deadletter_new(cfg->dead_letter.path, cfg->checkpoint.path, cfg->dead_letter.max_size,
                          &ctx->dl) != 0) {
        free(p);
        return -ENOMEM;
    }
    p->sinks = calloc(cfg->nsinks ? cfg->nsinks : 1, sizeof *p->sinks);
    if (!p->sinks) {
        sf_deadletter_free(ctx->dl);
        free(p);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->nsinks; i++)
        sf_sinkq_init(&p->sinks[i], ctx, cfg->sinks[i], http);
    *out = p;
    return 0;
}

void sf_pipeline_set_sink_hooks(sf_pipeline *p, const sf_pipeline_sink_hooks *hooks)
{
    p->hooks = *hooks;
}

int sf_pipeline_open(sf_pipeline *p)
{
    for (size_t i = 0; i < p->nsinks; i++) {
        int rc = sf_sinkq_open(&p->sinks[i]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < p->nsinks; i++)
        sf_sinkq_start(&p->sinks[i]);
    return 0;
}

void sf_pipeline_set_bounded(sf_pipeline *p, bool bounded)
{
    p->ctx.bounded = bounded;
}

bool sf_pipeline_can_accept(const sf_pipeline *p)
{
    const sf_ledger *l = &p->ctx.ledger;
    if (p->ctx.closing ||
        sf_ledger_inflight(l) >= (size_t)p->ctx.cfg->pipeline.max_inflight_pages ||
        (p->ctx.cfg->pipeline.max_inflight_bytes && /* 0: none (configs built in code) */
         l->bytes >= p->ctx.cfg->pipeline.max_inflight_bytes) ||
        l->nsettling >= MAX_SETTLING_PAGES)
        return false;
    for (size_t i = 0; i < p->nsinks; i++)
        if (p->sinks[i].queued_events >= (size_t)p->sinks[i].sink.cfg->common.queue_max_events)
            return false;
    return true;
}

size_t sf_pipeline_held_bytes(const sf_pipeline *p)
{
    return p->ctx.ledger.bytes;
}

size_t sf_pipeline_inflight(const sf_pipeline *p)
{
    return p->ctx.ledger.npages;
}

void sf_pipeline_on_space(sf_pipeline *p, void (*cb)(void *ud), void *ud)
{
    p->space_cb = cb;
    p->space_ud = ud;
}

int sf_pipeline_submit(sf_pipeline *p, sf_event *events, size_t n, void *token)
{
    sf_pipe_ctx *ctx = &p->ctx;
    sf_ledger_page *pg = sf_ledger_page_new(events, n, token);
    sf_job **jobs = calloc(p->nsinks ? p->nsinks : 1, sizeof *jobs);
    if (!pg || !jobs)
        goto oom;
    if (p->hooks.confirmed && !(pg->by_sink = calloc(p->nsinks ? p->nsinks : 1, 1)))
        goto oom;
    sf_job_counts counts = {.encode_errors = &ctx->encode_errors, .utf8_events = &ctx->utf8_events};
    for (size_t s = 0; s < p->nsinks; s++) {
        sf_sinkq *q = &p->sinks[s];
        counts.filtered = &q->filtered;
        jobs[s] = sf_job_new(pg, q->sink.cfg->common.filter, q->sink.cfg->format, q->fmt_state,
                             q->sink.name, uv_now(ctx->loop), &counts);
        if (!jobs[s])
            goto oom;
        jobs[s]->sink = s;
        /* what this sink confirmed in an earlier run is not sent to it again (events its
         * filter dropped are settled already: not counted as skipped) */
        size_t before = jobs[s]->remaining;
        for (size_t i = 0; p->hooks.skip && i < n; i++)
            if (p->hooks.skip(p->hooks.ud, s, &events[i]))
                sf_job_skip(jobs[s], i);
        q->skipped += before - jobs[s]->remaining;
    }
    /* every sink has its records: unless one reads event fields when it sends, the parsed
     * trees go (the page keeps raw bytes, ids and times: a fraction of the memory) */
    for (size_t i = 0; i < n && !p->keep_trees; i++)
        sf_event_unload(&events[i]);
    for (size_t i = 0; i < n; i++)
        pg->bytes +=
            events[i].raw_len + sizeof events[i] + (p->keep_trees ? events[i].tree_size : 0);
    for (size_t s = 0; s < p->nsinks; s++)
        pg->bytes += jobs[s]->bytes;
    /* all allocations done: link in */
    sf_ledger_append(&ctx->ledger, pg, p->nsinks);
    for (size_t s = 0; s < p->nsinks; s++)
        sf_sinkq_push(&p->sinks[s], jobs[s]);
    free(jobs);
    if (p->nsinks == 0) {
        post_notify(p); /* complete already */
        return 0;
    }
    for (size_t s = 0; s < p->nsinks; s++)
        sf_sinkq_kick_new(&p->sinks[s]);
    return 0;
oom:
    for (size_t s = 0; jobs && s < p->nsinks; s++)
        sf_job_free(jobs[s]);
    free(jobs);
    if (pg)
        free(pg->by_sink);
    free(pg); /* not its events: the caller keeps them */
    return -ENOMEM;
}

void sf_pipeline_flush(sf_pipeline *p)
{
    if (p->ctx.flushing || p->ctx.closing)
        return;
    p->ctx.flushing = true;
    for (size_t i = 0; i < p->nsinks; i++)
        sf_sinkq_flush(&p->sinks[i]);
}

void sf_pipeline_reopen(sf_pipeline *p)
{
    for (size_t i = 0; i < p->nsinks; i++)
        sf_sinkq_reopen(&p->sinks[i]);
    sf_deadletter_reopen(p->ctx.dl); /* a rotated dead-letter file is reopened too */
}

void sf_pipeline_stats_get(const sf_pipeline *p, sf_pipeline_stats *st)
{
    memset(st, 0, sizeof *st);
    st->encode_errors = p->ctx.encode_errors;
    st->dead_letter_full = sf_deadletter_full(p->ctx.dl);
    st->dead_letter_bytes = sf_deadletter_size(p->ctx.dl);
    for (size_t i = 0; i < p->nsinks; i++) {
        st->delivered += p->sinks[i].delivered;
        st->retried += p->sinks[i].retried;
        st->rejected += p->sinks[i].rejected;
        st->queued_events += p->sinks[i].queued_events;
    }
}

size_t sf_pipeline_nsinks(const sf_pipeline *p)
{
    return p->nsinks;
}

void sf_pipeline_sink_stats(const sf_pipeline *p, size_t i, sf_sink_stats *st)
{
    sf_sinkq_stats(&p->sinks[i], st);
}

void sf_pipeline_close(sf_pipeline *p, void (*closed)(void *ud), void *ud)
{
    if (p->ctx.closing)
        return;
    p->ctx.closing = true;
    p->closed_cb = closed;
    p->closed_ud = ud;
    /* what is not complete fails, in order; the notification delivers it */
    sf_ledger_fail_rest(&p->ctx.ledger);
    p->closing_left = 1; /* guard while starting closes */
    for (size_t i = 0; i < p->nsinks; i++)
        p->closing_left += (size_t)sf_sinkq_parts(&p->sinks[i]);
    for (size_t i = 0; i < p->nsinks; i++)
        sf_sinkq_close(&p->sinks[i]);
    ctx_closed_part(&p->ctx);
    post_notify(p);
}

void sf_pipeline_free(sf_pipeline *p)
{
    if (!p)
        return;
    sf_defer_cancel(&p->notify);
    for (size_t i = 0; i < p->nsinks; i++)
        sf_sinkq_free(&p->sinks[i]);
    sf_ledger_free(&p->ctx.ledger);
    free(p->sinks);
    sf_deadletter_free(p->ctx.dl);
    free(p);
}
