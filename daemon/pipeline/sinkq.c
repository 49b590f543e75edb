/* sinkq: one sink's queue: batching, retries and backoff, dead letters, spool mode, settlement.
 * See sinkq.h. Every entry from the sink (answer, settlement) and from timers ends in kick(),
 * which sends the next batch when the sink is free; the sink's own calls are handled by on_wake
 * on a later loop turn. */
#include "pipeline/sinkq.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define BOUNDED_MAX_ATTEMPTS 8

static void kick(sf_sinkq *q);
static void on_wake(void *arg);
static void on_settled(sf_sink *s, uint64_t n);

static sf_sinkq *of_sink(sf_sink *s)
{
    return (sf_sinkq *)((char *)s - offsetof(sf_sinkq, sink));
}

void sf_sinkq_init(sf_sinkq *q, sf_pipe_ctx *ctx, const sf_sink_cfg *cfg, struct sf_http *http)
{
    q->ctx = ctx;
    q->sink.cfg = cfg;
    q->sink.name = cfg->common.name;
    q->sink.loop = ctx->loop;
    q->sink.http = http;
    q->sink.healthy = true;
    q->sink.settled_cb = on_settled;
    uv_timer_init(ctx->loop, &q->timer);
    q->timer.data = q;
    sf_defer_node_init(&q->wake, on_wake, q);
}

int sf_sinkq_open(sf_sinkq *q)
{
    const sf_sink_cfg *sc = q->sink.cfg;
    char err[256] = "";
    if (sc->format->init && sc->format->init(sc->format_cfg, &q->fmt_state, err, sizeof err)) {
        SF_ERROR("pipeline", "sink %s: format %s: %s", q->sink.name, sc->format->name, err);
        return -EINVAL;
    }
    int rc = sf_spooler_open(&q->spooler, &sc->common, q->sink.name);
    if (rc)
        return rc;
    rc = sc->ops->open(&q->sink);
    if (rc) {
        SF_ERROR("pipeline", "sink %s (%s): cannot open: %s", q->sink.name, sc->ops->type,
                 q->sink.last_error[0] ? q->sink.last_error : "error");
        return rc;
    }
    q->open = true;
    return 0;
}

void sf_sinkq_start(sf_sinkq *q)
{
    if (q->spooler.spooling)
        kick(q); /* replay at once, not on the first new page */
}

/* ---- the pipeline's view ---- */

/* Releases, in order, the holds whose records the sink settled. */
static void release(sf_sinkq *q)
{
    if (q->closing)
        return;
    size_t news = q->ctx->ledger.sink_news;
    if (sf_settle_release(&q->settle, &q->ctx->ledger, q->spooler.spool, q->sink.name) ||
        q->ctx->ledger.sink_news != news) /* pages completed, or this sink confirmed some */
        q->ctx->changed(q->ctx, false);
}

/* The head job is finished for this sink: it waits (as a hold) until the sink settled it. */
static void job_finish(sf_sinkq *q)
{
    sf_job *j = q->head;
    q->head = j->next;
    if (!q->head)
        q->tail = NULL;
    sf_ledger_page *pg = j->page;
    q->queued_events -= pg->n;
    sf_job_free_work(j);
    bool settling = sf_ledger_sent(&q->ctx->ledger, pg);
    sf_settle_add(&q->settle, j);
    release(q);
    /* the page stopped counting as in flight (whichever sink still holds it) */
    if (settling)
        q->ctx->changed(q->ctx, true);
}

static void timer_cb(uv_timer_t *t)
{
    sf_sinkq *q = t->data;
    q->timer_armed = false;
    q->fill_wait = false;
    kick(q);
}

static void arm_timer(sf_sinkq *q, int64_t delay)
{
    q->timer_armed = true;
    uv_timer_start(&q->timer, timer_cb, (uint64_t)(delay > 0 ? delay : 1), 0);
}

static int64_t backoff(const sf_sinkq *q, unsigned attempt)
{
    const sf_sink_common_cfg *c = &q->sink.cfg->common;
    return sf_backoff_ms(attempt, c->retry_initial_ms, c->retry_max_ms);
}

/* ---- talking to the sink ---- */

static int ensure_cap(sf_batchbuf *bb, size_t n)
{
    if (n <= bb->cap)
        return 0;
    const sf_event **ev = realloc(bb->ev, n * sizeof *ev);
    if (ev)
        bb->ev = ev;
    sf_buf *rec = realloc(bb->rec, n * sizeof *rec);
    if (rec)
        bb->rec = rec;
    size_t *idx = realloc(bb->idx, n * sizeof *idx);
    if (idx)
        bb->idx = idx;
    sf_job **job = realloc(bb->job, n * sizeof *job);
    if (job)
        bb->job = job;
    sf_deliv_status *st = realloc(bb->st, n * sizeof *st);
    if (st)
        bb->st = st;
    char **rs = realloc(bb->rs, n * sizeof *rs);
    if (rs)
        bb->rs = rs;
    if (!ev || !rec || !idx || !job || !st || !rs)
        return -ENOMEM;
    bb->cap = n;
    return 0;
}

/* The sink answered (maybe from inside submit): handled on the next turn. */
static void on_batch_done(sf_sink_batch *b)
{
    sf_sinkq *q = b->owner;
    q->answered = true;
    sf_defer_post(q->ctx->defer, &q->wake);
}

static void on_settled(sf_sink *s, uint64_t n)
{
    sf_sinkq *q = of_sink(s);
    sf_settle_settled(&q->settle, n);
    if (!q->closing) /* late settlements after close change nothing: the pages failed */
        sf_defer_post(q->ctx->defer, &q->wake);
}

/* Hands the n entries staged in the scratch arrays to the sink as one batch. A sink that
 * refuses synchronously without answering gets everything retried. */
static void send_batch(sf_sinkq *q, size_t n, bool replay)
{
    sf_batchbuf *bb = &q->buf;
    for (size_t k = 0; k < n; k++) {
        bb->st[k] = SF_DELIV_RETRY;
        bb->rs[k] = NULL;
    }
    sf_sink_batch *b = &q->batch;
    memset(b, 0, sizeof *b);
    b->sink = &q->sink;
    b->n = n;
    b->events = bb->ev;
    b->records = bb->rec;
    b->status = bb->st;
    b->reason = bb->rs;
    b->owner = q;
    b->done = on_batch_done;
    q->busy = true;
    q->answered = false;
    q->replay = replay;
    q->batches++;
    int rc = q->sink.cfg->ops->submit(&q->sink, b);
    if (rc < 0 && !q->answered) {
        if (!q->sink.last_error[0])
            sf_sink_set_error(&q->sink, "submit failed (%d)", rc);
        on_batch_done(b);
    }
}

/* ---- spool mode ---- */

/* While spooling, every queued page goes to the spool (in order) so its commit can happen. */
static void park_queued(sf_sinkq *q)
{
    while (q->head && !q->closing) {
        sf_job *j = q->head;
        if (j->ndead && sf_job_flush_dead(j, q->ctx->dl, q->sink.name, &q->rejected) != 0)
            return;
        int rc = sf_spooler_park(&q->spooler, j);
        if (rc) {
            SF_ERROR("pipeline", "sink %s: cannot spool %zu events (%s); holding them in memory",
                     q->sink.name, j->remaining,
                     rc == -ENOSPC ? "spool.max_size reached" : strerror(-rc));
            return;
        }
        job_finish(q);
    }
}

/* One step of spool mode: spool what is queued, then replay from the spool.
 * Returns true when the caller should loop again. */
static bool spool_step(sf_sinkq *q)
{
    sf_spooler *sp = &q->spooler;
    park_queued(q);
    if (sf_spooler_drained(sp, q->sink.name))
        return true;
    if (sf_spooler_read(sp, q->sink.name) != 0) {
        arm_timer(q, 5000);
        return false;
    }
    if (ensure_cap(&q->buf, sp->nitems)) {
        SF_ERROR("pipeline", "sink %s: cannot read the spool (out of memory)", q->sink.name);
        sf_spool_items_free(sp->items, sp->nitems);
        sp->items = NULL;
        sp->nitems = 0;
        arm_timer(q, 5000);
        return false;
    }
    for (size_t k = 0; k < sp->nitems; k++) {
        q->buf.ev[k] = &sp->items[k].ev;
        q->buf.rec[k] = sp->items[k].rec;
        q->buf.idx[k] = k;
    }
    send_batch(q, sp->nitems, true);
    return false;
}

/* The sink refused for a reason retrying cannot heal (sink.fault): counted, logged once per
 * episode with the fix. Returns the delay before trying again: the slow end of the backoff. */
static int64_t fault_seen(sf_sinkq *q, size_t n)
{
    q->faults[q->sink.fault]++;
    if (!q->fault_logged) {
        q->fault_logged = true;
        SF_ERROR("pipeline",
                 "sink %s: the receiver's TLS certificate cannot be verified (%s): a configuration "
                 "problem, retrying will not help. Set this sink's tls.ca_file to the CA that "
                 "signed it (or tls.server_name to the name it is issued for), or fix the "
                 "receiver's certificate (tls.verify: false only for tests). %zu events wait%s",
                 q->sink.name, q->sink.last_error[0] ? q->sink.last_error : "no detail", n,
                 q->ctx->bounded ? "; this run fails" : "; trying again every retry.max");
    }
    /* the slow end of the backoff, jittered over its upper half */
    int64_t max = q->sink.cfg->common.retry_max_ms;
    return max - sf_backoff_ms(0, max / 2 > 0 ? max / 2 : 1, max / 2 > 0 ? max / 2 : 1) + 1;
}

/* The sink accepted what it was sent: a fault episode is over. */
static void fault_over(sf_sinkq *q)
{
    if (!q->fault_logged)
        return;
    q->fault_logged = false;
    SF_INFO("pipeline", "sink %s: the receiver's certificate is accepted again", q->sink.name);
}

static void replay_result(sf_sinkq *q)
{
    sf_sink_batch *b = &q->batch;
    size_t n = b->n;
    size_t k = sf_spooler_replay_done(&q->spooler, b, &q->settle, q->sink.defer_settle, q->ctx->dl,
                                      q->sink.name, &q->delivered, &q->rejected);
    release(q);
    q->sink.healthy = k == n;
    if (q->closing)
        return;
    if (k < n && q->sink.fault) {
        q->retried += n - k;
        arm_timer(q, fault_seen(q, (size_t)sf_spool_unsent(q->spooler.spool)));
    } else if (k < n) {
        q->retried += n - k;
        int64_t delay =
            b->retry_after_ms > 0 ? b->retry_after_ms : backoff(q, q->spooler.attempts++);
        SF_WARN("pipeline", "sink %s: spool replay refused (%s); %llu events wait, retry in %lldms",
                q->sink.name, q->sink.last_error[0] ? q->sink.last_error : "no detail",
                (unsigned long long)sf_spool_unsent(q->spooler.spool), (long long)delay);
        arm_timer(q, delay);
    } else {
        q->spooler.attempts = 0;
        fault_over(q);
    }
}

/* A refusal retrying cannot heal (sink.fault), for a batch of queued pages: bounded mode fails
 * the pages now; follow mode parks them in the spool if there is one, and tries again slowly
 * without counting attempts. */
static void batch_fault(sf_sinkq *q, size_t nretry)
{
    sf_sink_batch *b = &q->batch;
    sf_batchbuf *bb = &q->buf;
    q->retried += nretry;
    int64_t delay = fault_seen(q, nretry);
    if (q->ctx->bounded) {
        for (size_t k = 0; k < b->n; k++)
            if (k == 0 || bb->job[k] != bb->job[k - 1])
                sf_job_give_up(bb->job[k], false);
        return;
    }
    if (q->spooler.spool) {
        q->spooler.spooling = true;
        park_queued(q);
    }
    arm_timer(q, delay);
}

/* ---- the answer to a batch of queued pages ---- */

static void batch_result(sf_sinkq *q)
{
    sf_sink_batch *b = &q->batch;
    sf_batchbuf *bb = &q->buf;
    size_t nretry = 0, nok = 0;
    for (size_t k = 0; k < b->n; k++) {
        sf_job *j = bb->job[k];
        size_t idx = bb->idx[k];
        switch (b->status[k]) {
        case SF_DELIV_OK:
            nok++;
            if (j->done[idx] == SF_JOB_PENDING) {
                j->done[idx] = SF_JOB_SETTLED;
                j->remaining--;
                q->delivered++;
            }
            break;
        case SF_DELIV_REJECT:
            sf_job_mark_dead(j, idx,
                             b->reason[k] ? b->reason[k] : sf_strdup("rejected by the peer"));
            b->reason[k] = NULL;
            break;
        default:
            nretry++;
            break;
        }
        free(b->reason[k]);
        b->reason[k] = NULL;
    }
    sf_settle_ok(&q->settle, nok, q->sink.defer_settle);
    q->sink.healthy = nretry == 0;
    if (q->closing)
        return;
    if (nretry && q->sink.fault) {
        batch_fault(q, nretry);
        return;
    }
    if (!nretry)
        fault_over(q);
    const char *why = q->sink.last_error[0] ? q->sink.last_error : "no detail";
    if (nretry && q->spooler.spool) {
        /* park the refused events on disk so the checkpoint and the other sinks move on */
        q->retried += nretry;
        q->spooler.spooling = true;
        SF_WARN("pipeline", "sink %s: %zu events not accepted (%s); spooling to disk", q->sink.name,
                nretry, why);
        park_queued(q);
        arm_timer(q, backoff(q, q->spooler.attempts++));
        return;
    }
    if (!nretry)
        return;
    q->retried += nretry;
    unsigned max = (unsigned)q->sink.cfg->common.retry_max_attempts;
    if (q->ctx->bounded && (max == 0 || max > BOUNDED_MAX_ATTEMPTS))
        max = BOUNDED_MAX_ATTEMPTS;
    unsigned worst = 0;
    size_t waiting = 0;
    /* every page of the batch with records left counts an attempt (its records are contiguous
     * in the batch) */
    for (size_t k = 0; k < b->n; k++) {
        sf_job *j = bb->job[k];
        if (k > 0 && j == bb->job[k - 1])
            continue;
        size_t pending = j->remaining - j->ndead;
        if (!pending)
            continue;
        j->attempts++;
        if (!max || j->attempts < max) {
            waiting += pending;
            worst = j->attempts > worst ? j->attempts : worst;
            continue;
        }
        SF_ERROR("pipeline", "sink %s: %zu events still not accepted after %u attempts (%s)",
                 q->sink.name, pending, j->attempts, why);
        if (q->ctx->bounded) {
            /* --once / --from: report failure, keep the checkpoint where it is */
            sf_job_give_up(j, false);
        } else {
            for (size_t i = 0; i < j->page->n; i++) {
                if (j->done[i] != SF_JOB_PENDING)
                    continue;
                sf_buf r = {0};
                sf_buf_appendf(&r, "retries exhausted after %u attempts: %s", j->attempts, why);
                sf_job_mark_dead(j, i, sf_buf_steal(&r));
            }
        }
    }
    if (waiting) {
        int64_t delay = b->retry_after_ms > 0 ? b->retry_after_ms : backoff(q, worst - 1);
        SF_WARN("pipeline", "sink %s: %zu events not accepted (%s); retry %u in %lldms",
                q->sink.name, waiting, why, worst, (long long)delay);
        arm_timer(q, delay);
    }
}

/* The sink answered or settled: handle it, then carry on. */
static void on_wake(void *arg)
{
    sf_sinkq *q = arg;
    if (q->busy && q->answered) {
        q->busy = q->answered = false;
        if (q->replay)
            replay_result(q);
        else
            batch_result(q);
    }
    if (q->closing)
        return;
    release(q);
    kick(q);
}

/* ---- sending ---- */

/* A flushing sink with nothing left to send: ask it to settle now. In --once / --from the
 * wait is bounded by pipeline.shutdown_timeout; then what is still unsettled fails (exit 1,
 * read again by the next run) instead of the run never ending (e.g. a receiver that went
 * away with messages in the syslog resend window). */
static void flush_idle(sf_sinkq *q)
{
    if (q->sink.cfg->ops->flush)
        q->sink.cfg->ops->flush(&q->sink);
    release(q); /* what the sink settled inside flush() */
    if (!q->ctx->bounded || !sf_settle_holding(&q->settle))
        return;
    uint64_t now = uv_now(q->ctx->loop);
    if (!q->flush_deadline)
        q->flush_deadline = now + (uint64_t)q->ctx->cfg->pipeline.shutdown_timeout_ms;
    if (now < q->flush_deadline) {
        arm_timer(q, (int64_t)(q->flush_deadline - now));
        return;
    }
    SF_ERROR("pipeline",
             "sink %s: %llu delivered events were not confirmed within "
             "pipeline.shutdown_timeout (%s); the checkpoint stays before them",
             q->sink.name, (unsigned long long)sf_settle_unsettled(&q->settle),
             q->sink.last_error[0] ? q->sink.last_error : "no confirmation");
    if (sf_settle_fail(&q->settle, &q->ctx->ledger))
        q->ctx->changed(q->ctx, false);
}

/* batch_wait: a partial batch of fresh pages waits (up to batch_wait_ms after its first page
 * was queued) for more pages, while more can come. True if the timer now waits. */
static bool fill_wait(sf_sinkq *q, const sf_job *head, const sf_job *last, size_t total)
{
    sf_pipe_ctx *ctx = q->ctx;
    if (q->sink.batch_wait_ms <= 0 || !q->sink.batch_max || total >= q->sink.batch_max ||
        last->next || head->attempts || ctx->flushing || ctx->closing || !ctx->can_accept(ctx))
        return false;
    /* the pages that can still come before the pipeline is full: if even they cannot fill the
     * batch, waiting only delays it (and stops fetching and sending from overlapping) */
    size_t inflight = sf_ledger_inflight(&ctx->ledger);
    size_t maxp = (size_t)ctx->cfg->pipeline.max_inflight_pages;
    size_t room = maxp > inflight ? maxp - inflight : 0;
    size_t page = ctx->cfg->source.page_size > 0 ? (size_t)ctx->cfg->source.page_size : 1;
    if (total + room * page < q->sink.batch_max ||
        q->sink.batch_max > (size_t)q->sink.cfg->common.queue_max_events)
        return false;
    uint64_t due = head->t_queued + (uint64_t)q->sink.batch_wait_ms, now = uv_now(ctx->loop);
    if (now >= due)
        return false;
    arm_timer(q, (int64_t)(due - now));
    q->fill_wait = true;
    return true;
}

static void cancel_fill_wait(sf_sinkq *q)
{
    if (!q->fill_wait)
        return;
    uv_timer_stop(&q->timer);
    q->timer_armed = q->fill_wait = false;
}

static void kick(sf_sinkq *q)
{
    while (!q->busy && !q->timer_armed && !q->closing) {
        if (q->spooler.spooling) {
            if (spool_step(q))
                continue;
            return;
        }
        if (!q->head) {
            if (q->ctx->flushing && sf_settle_holding(&q->settle))
                flush_idle(q);
            return;
        }
        sf_job *j = q->head;
        if (j->ndead && sf_job_flush_dead(j, q->ctx->dl, q->sink.name, &q->rejected) != 0) {
            if (q->ctx->bounded && ++j->dead_failures >= BOUNDED_MAX_ATTEMPTS) {
                /* --once / --from must end: fail the page, the checkpoint stays put */
                sf_job_give_up(j, true);
                continue;
            }
            arm_timer(q, backoff(q, j->dead_failures++));
            return;
        }
        if (j->remaining == 0) {
            job_finish(q);
            continue;
        }
        /* the head page, and after it whole fresh pages while they fit in batch_max */
        size_t total = j->remaining, max = q->sink.batch_max;
        sf_job *last = j;
        while (max && last->next && last->next->attempts == 0 && last->next->ndead == 0 &&
               total + last->next->remaining <= max) {
            last = last->next;
            total += last->remaining;
        }
        if (fill_wait(q, j, last, total))
            return;
        if (ensure_cap(&q->buf, total)) {
            SF_ERROR("pipeline", "sink %s: out of memory building a batch", q->sink.name);
            arm_timer(q, 1000);
            return;
        }
        size_t k = 0;
        for (sf_job *jj = j, *end = last->next; jj != end; jj = jj->next) {
            for (size_t i = 0; i < jj->page->n; i++) {
                if (jj->done[i] != SF_JOB_PENDING)
                    continue;
                q->buf.job[k] = jj;
                q->buf.idx[k] = i;
                q->buf.ev[k] = &jj->page->events[i];
                q->buf.rec[k] = jj->records[i];
                k++;
            }
        }
        send_batch(q, k, false);
    }
}

/* ---- the pipeline's calls ---- */

void sf_sinkq_push(sf_sinkq *q, sf_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->queued_events += j->page->n;
}

void sf_sinkq_kick_new(sf_sinkq *q)
{
    /* while spooling, new pages go to disk now (a replay in flight does not hold them) */
    if (q->spooler.spooling && (!q->busy || q->spooler.items))
        park_queued(q);
    cancel_fill_wait(q); /* a new page: look again whether the batch is full now */
    kick(q);
}

void sf_sinkq_flush(sf_sinkq *q)
{
    cancel_fill_wait(q); /* no more pages: send partial batches now */
    kick(q);
}

void sf_sinkq_reopen(sf_sinkq *q)
{
    if (q->open && q->sink.cfg->ops->reopen)
        q->sink.cfg->ops->reopen(&q->sink);
}

void sf_sinkq_stats(const sf_sinkq *q, sf_sink_stats *st)
{
    st->name = q->sink.name;
    st->type = q->sink.cfg->ops->type;
    st->format = q->sink.cfg->format->name;
    st->delivered = q->delivered;
    st->skipped = q->skipped;
    st->retried = q->retried;
    st->rejected = q->rejected;
    st->batches = q->batches;
    st->filtered = q->filtered;
    st->queued_events = q->queued_events;
    st->healthy = q->sink.healthy;
    st->last_error = q->sink.last_error;
    st->spooled = q->spooler.spooled;
    st->spool_events = sf_spool_count(q->spooler.spool);
    st->unsettled = sf_settle_unsettled(&q->settle);
    st->spool_bytes = sf_spool_bytes(q->spooler.spool);
    memcpy(st->faults, q->faults, sizeof st->faults);
    st->topic_missing = q->sink.topic_missing;
    st->producer_queue = q->sink.producer_queue;
}

/* ---- close ---- */

static void timer_closed(uv_handle_t *h)
{
    sf_sinkq *q = h->data;
    q->ctx->closed_part(q->ctx);
}

static void sink_closed(sf_sink *s)
{
    sf_sinkq *q = of_sink(s);
    q->closed = true;
    q->ctx->closed_part(q->ctx);
}

int sf_sinkq_parts(const sf_sinkq *q)
{
    return 1 + (q->open ? 1 : 0);
}

void sf_sinkq_close(sf_sinkq *q)
{
    q->closing = true;
    uv_close((uv_handle_t *)&q->timer, timer_closed);
    if (q->open)
        q->sink.cfg->ops->close(&q->sink, sink_closed);
}

void sf_sinkq_free(sf_sinkq *q)
{
    sf_defer_cancel(&q->wake);
    while (q->head) {
        sf_job *j = q->head;
        q->head = j->next;
        sf_job_free(j);
    }
    q->tail = NULL;
    sf_settle_free(&q->settle);
    if (q->open && q->sink.cfg->ops->destroy)
        q->sink.cfg->ops->destroy(&q->sink);
    if (q->fmt_state && q->sink.cfg->format->destroy)
        q->sink.cfg->format->destroy(q->fmt_state);
    sf_spooler_close(&q->spooler);
    free(q->buf.ev);
    free(q->buf.rec);
    free(q->buf.idx);
    free(q->buf.job);
    free(q->buf.st);
    free(q->buf.rs);
}
