#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/deadletter.h"
#include "pipeline/spool.h"
#include "core/log.h"

#define BOUNDED_MAX_ATTEMPTS 8
/* Pages delivered everywhere but waiting for a sink to settle them (deferred settlement: their
 * events are freed, only the commit token is kept). Bounds memory and the checkpoint lag. */
#define MAX_SETTLING_PAGES 256

typedef struct page {
    struct page *next;
    sf_event *events;
    size_t n;
    void *token;
    size_t pending_sinks; /* sinks that have not settled the page */
    size_t unsent;        /* sinks whose job is not finished (then: events no longer needed) */
    bool failed, complete, settling;
} page_t;

enum { ST_PENDING = 0, ST_SETTLED = 1, ST_DEAD = 2 };

/* A page's work for one sink. Once finished it becomes a hold (records freed) until the sink
 * settled seq_end records; a hold with page == NULL consumes spool_n spool records instead. */
typedef struct job {
    struct job *next;
    page_t *page;
    uint64_t seq_end;
    size_t spool_n;
    uint64_t t_queued;   /* uv_now() at submit (batch_wait) */
    sf_buf *records;     /* n */
    unsigned char *done; /* n: ST_PENDING, ST_SETTLED or ST_DEAD (to dead-letter) */
    char **reasons;      /* n: why ST_DEAD (owned) */
    size_t ndead;
    size_t remaining;
    unsigned attempts;
    unsigned dead_failures; /* failed dead-letter writes (not sink attempts) */
} job_t;

typedef struct psink {
    sf_pipeline *p;
    sf_sink sink;
    void *fmt_state;
    job_t *head, *tail;
    bool busy, timer_armed, open, closing, closed;
    unsigned in_submit;      /* depth of submit() calls (a commit inside one may submit again) */
    bool fill_wait;          /* the timer waits for more pages to fill a batch (batch_wait) */
    uint64_t flush_deadline; /* bounded mode: uv_now() by which held records must settle */
    uv_timer_t timer;
    size_t queued_events;
    uint64_t delivered, retried, rejected, batches, spooled;
    sf_spool *spool;
    /* deferred settlement: records the sink reported OK / settled (cumulative, same order) */
    uint64_t ok_seq, settled_seq;
    job_t *hold_head, *hold_tail; /* finished jobs and replayed spool records awaiting it */
    bool release_later;
    bool spooling;         /* events wait in the spool: new ones go there too (order) */
    sf_spool_item *ritems; /* replay batch in flight */
    size_t nritems;
    unsigned spool_attempts;
    /* scratch for the batch in flight */
    sf_sink_batch batch;
    size_t cap;
    const sf_event **bev;
    sf_buf *brec;
    size_t *bidx;
    job_t **bjob; /* the job of each record (a batch may span several queued pages) */
    sf_deliv_status *bst;
    char **brs;
} psink_t;

struct sf_pipeline {
    uv_loop_t *loop;
    const sf_config *cfg;
    psink_t *sinks;
    size_t nsinks;
    page_t *head, *tail;
    size_t npages;    /* pages not committed yet */
    size_t nsettling; /* of which: waiting only for sinks to settle them */
    sf_pipeline_commit_cb cb;
    void *ud;
    void (*space_cb)(void *);
    void *space_ud;
    bool bounded, closing, flushing;
    size_t closing_left;
    void (*closed_cb)(void *);
    void *closed_ud;
    uint64_t encode_errors;
    uint64_t utf8_events; /* records whose invalid UTF-8 was replaced */
    sf_deadletter *dl;
};

static void psink_kick(psink_t *ps);
static void on_settled(sf_sink *s, uint64_t n);

int sf_pipeline_new(uv_loop_t *loop, struct sf_http *http, const sf_config *cfg,
                    sf_pipeline_commit_cb cb, void *ud, sf_pipeline **out)
{
    sf_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->cfg = cfg;
    p->cb = cb;
    p->ud = ud;
    p->nsinks = cfg->nsinks;
    if (sf_deadletter_new(cfg->dead_letter.path, cfg->checkpoint.path, cfg->dead_letter.max_size,
                          &p->dl) != 0) {
        free(p);
        return -ENOMEM;
    }
    p->sinks = calloc(cfg->nsinks ? cfg->nsinks : 1, sizeof *p->sinks);
    if (!p->sinks) {
        sf_deadletter_free(p->dl);
        free(p);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->nsinks; i++) {
        psink_t *ps = &p->sinks[i];
        ps->p = p;
        ps->sink.cfg = cfg->sinks[i];
        ps->sink.name = cfg->sinks[i]->common.name;
        ps->sink.loop = loop;
        ps->sink.http = http;
        ps->sink.healthy = true;
        ps->sink.settled_cb = on_settled;
        uv_timer_init(loop, &ps->timer);
        ps->timer.data = ps;
    }
    *out = p;
    return 0;
}

int sf_pipeline_open(sf_pipeline *p)
{
    for (size_t i = 0; i < p->nsinks; i++) {
        psink_t *ps = &p->sinks[i];
        const sf_sink_cfg *sc = ps->sink.cfg;
        char err[256] = "";
        if (sc->format->init && sc->format->init(sc->format_cfg, &ps->fmt_state, err, sizeof err)) {
            SF_ERROR("pipeline", "sink %s: format %s: %s", ps->sink.name, sc->format->name, err);
            return -EINVAL;
        }
        if (sc->common.spool_path && sc->common.spool_path[0]) {
            int src = sf_spool_open(sc->common.spool_path, sc->common.spool_max_size,
                                    sc->common.spool_segment_size, &ps->spool, err, sizeof err);
            if (src) {
                SF_ERROR("pipeline", "sink %s: %s", ps->sink.name, err);
                return src;
            }
            if (sf_spool_unsent(ps->spool)) {
                ps->spooling = true;
                SF_INFO("pipeline",
                        "sink %s: %llu events waiting in the spool; replaying them first",
                        ps->sink.name, (unsigned long long)sf_spool_count(ps->spool));
            }
        }
        int rc = sc->ops->open(&ps->sink);
        if (rc) {
            SF_ERROR("pipeline", "sink %s (%s): cannot open: %s", ps->sink.name, sc->ops->type,
                     ps->sink.last_error[0] ? ps->sink.last_error : "error");
            return rc;
        }
        ps->open = true;
    }
    for (size_t i = 0; i < p->nsinks; i++)
        if (p->sinks[i].spooling)
            psink_kick(&p->sinks[i]); /* replay at once, not on the first new page */
    return 0;
}

void sf_pipeline_set_commit_cb(sf_pipeline *p, sf_pipeline_commit_cb cb, void *ud)
{
    p->cb = cb;
    p->ud = ud;
}

void sf_pipeline_set_bounded(sf_pipeline *p, bool bounded)
{
    p->bounded = bounded;
}

static size_t sink_queue_limit(const psink_t *ps)
{
    return (size_t)ps->sink.cfg->common.queue_max_events;
}

bool sf_pipeline_can_accept(const sf_pipeline *p)
{
    if (p->closing || p->npages - p->nsettling >= (size_t)p->cfg->pipeline.max_inflight_pages ||
        p->nsettling >= MAX_SETTLING_PAGES)
        return false;
    for (size_t i = 0; i < p->nsinks; i++)
        if (p->sinks[i].queued_events >= sink_queue_limit(&p->sinks[i]))
            return false;
    return true;
}

size_t sf_pipeline_inflight(const sf_pipeline *p)
{
    return p->npages;
}

void sf_pipeline_on_space(sf_pipeline *p, void (*cb)(void *ud), void *ud)
{
    p->space_cb = cb;
    p->space_ud = ud;
}

static void page_free_events(page_t *pg)
{
    for (size_t i = 0; pg->events && i < pg->n; i++)
        sf_event_free(&pg->events[i]);
    free(pg->events);
    pg->events = NULL;
}

static void page_free(page_t *pg)
{
    page_free_events(pg);
    free(pg);
}

/* Frees what a job needs for sending (all of it for a hold, whose page may be gone). */
static void job_free_work(job_t *j)
{
    for (size_t i = 0; j->records && i < j->page->n; i++)
        sf_buf_free(&j->records[i]);
    for (size_t i = 0; j->reasons && i < j->page->n; i++)
        free(j->reasons[i]);
    free(j->records);
    free(j->done);
    free(j->reasons);
    j->records = NULL;
    j->done = NULL;
    j->reasons = NULL;
}

static void job_free(job_t *j)
{
    job_free_work(j);
    free(j);
}

/* Delivers commits for the completed prefix of the page list, in order. */
static void drain_commits(sf_pipeline *p)
{
    bool freed = false;
    while (p->head && p->head->complete) {
        page_t *pg = p->head;
        p->head = pg->next;
        if (!p->head)
            p->tail = NULL;
        p->npages--;
        if (pg->settling)
            p->nsettling--;
        freed = true;
        p->cb(p->ud, pg->token, !pg->failed);
        page_free(pg);
    }
    if (freed && p->space_cb && sf_pipeline_can_accept(p))
        p->space_cb(p->space_ud); /* stays registered: backpressure recurs */
}

static void page_sink_done(sf_pipeline *p, page_t *pg)
{
    if (--pg->pending_sinks == 0) {
        pg->complete = true;
        drain_commits(p);
    }
}

/* Marks event idx of the head job for the dead-letter file (takes reason). */
static void mark_dead(job_t *j, size_t idx, char *reason)
{
    if (j->done[idx] != ST_PENDING) {
        free(reason);
        return;
    }
    j->done[idx] = ST_DEAD;
    free(j->reasons[idx]);
    j->reasons[idx] = reason;
    j->ndead++;
}

/* Writes the head job's ST_DEAD events durably to the dead-letter file; only then are they
 * settled. Returns 0, or negative if the file could not take them (they stay held). */
static int flush_dead(psink_t *ps, job_t *j)
{
    if (!j->ndead)
        return 0;
    const sf_event **evs = calloc(j->ndead, sizeof *evs);
    const char **why = calloc(j->ndead, sizeof *why);
    int rc = -ENOMEM;
    if (!evs || !why)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < j->page->n; i++) {
        if (j->done[i] != ST_DEAD)
            continue;
        evs[k] = &j->page->events[i];
        why[k++] = j->reasons[i] ? j->reasons[i] : "rejected";
    }
    rc = sf_deadletter_write(ps->p->dl, ps->sink.name, evs, why, k);
    if (rc) {
        SF_ERROR("pipeline",
                 "sink %s: %zu rejected events cannot be written to the dead-letter "
                 "file %s (%s); holding them and retrying",
                 ps->sink.name, k, sf_deadletter_path(ps->p->dl),
                 rc == -ENOSPC ? "dead_letter.max_size reached" : strerror(-rc));
        goto out;
    }
    for (size_t i = 0; i < j->page->n; i++) {
        if (j->done[i] != ST_DEAD)
            continue;
        SF_ERROR("pipeline", "sink %s: event %s dead-lettered: %s", ps->sink.name,
                 j->page->events[i].id, j->reasons[i] ? j->reasons[i] : "rejected");
        j->done[i] = ST_SETTLED;
        j->remaining--;
        ps->rejected++;
    }
    j->ndead = 0;
out:
    free(evs);
    free(why);
    return rc;
}

static void retry_timer_cb(uv_timer_t *t);

static void arm_timer(psink_t *ps, int64_t delay)
{
    ps->timer_armed = true;
    uv_timer_start(&ps->timer, retry_timer_cb, (uint64_t)(delay > 0 ? delay : 1), 0);
}

/* Unlinks the oldest hold and frees it; returns its page (NULL for a spool hold, whose record
 * count goes to *spool_n). */
static page_t *hold_pop(psink_t *ps, size_t *spool_n)
{
    job_t *h = ps->hold_head;
    ps->hold_head = h->next;
    if (!ps->hold_head)
        ps->hold_tail = NULL;
    page_t *pg = h->page;
    *spool_n = h->spool_n;
    job_free(h);
    return pg;
}

/* Releases, in order, the holds whose records the sink has settled. Not from inside the sink's
 * submit (a commit may submit the next page): send_batch releases after it returns. */
static void release_holds(psink_t *ps)
{
    if (ps->in_submit) {
        ps->release_later = true;
        return;
    }
    ps->release_later = false;
    while (ps->hold_head && ps->hold_head->seq_end <= ps->settled_seq && !ps->closing) {
        size_t spool_n;
        page_t *pg = hold_pop(ps, &spool_n);
        if (pg)
            page_sink_done(ps->p, pg); /* may commit and submit new pages */
        else if (sf_spool_consume(ps->spool, spool_n) != 0)
            SF_ERROR("pipeline", "sink %s: cannot record spool progress (events may be re-sent)",
                     ps->sink.name);
    }
}

/* Queues h until the sink settled every record it reported OK so far (callers then run
 * release_holds once their own state is consistent). */
static void hold_add(psink_t *ps, job_t *h)
{
    h->next = NULL;
    h->seq_end = ps->ok_seq;
    if (ps->hold_tail)
        ps->hold_tail->next = h;
    else
        ps->hold_head = h;
    ps->hold_tail = h;
}

/* Records that the sink reported n more records OK (a sink without deferred settlement
 * settles them at once). */
static void count_ok(psink_t *ps, size_t n)
{
    ps->ok_seq += n;
    if (!ps->sink.defer_settle)
        ps->settled_seq = ps->ok_seq;
}

static void on_settled(sf_sink *s, uint64_t n)
{
    psink_t *ps = (psink_t *)((char *)s - offsetof(psink_t, sink));
    ps->settled_seq += n; /* may run ahead of ok_seq while the batch completes */
    release_holds(ps);
}

/* The head job is finished for this sink: it waits (as a hold) until the sink settled it. */
static void job_finish(psink_t *ps)
{
    sf_pipeline *p = ps->p;
    job_t *j = ps->head;
    ps->head = j->next;
    if (!ps->head)
        ps->tail = NULL;
    page_t *pg = j->page;
    ps->queued_events -= pg->n;
    job_free_work(j);
    bool settling = --pg->unsent == 0;
    if (settling) {
        /* every sink sent it: only settlement is awaited, the events are not needed */
        page_free_events(pg);
        pg->settling = true;
        p->nsettling++;
    }
    hold_add(ps, j);
    release_holds(ps); /* may free j and pg */
    /* the page stopped counting as in flight (whichever sink still holds it); if it was
     * committed instead, drain_commits already called this: the callback is idempotent */
    if (settling && p->space_cb && sf_pipeline_can_accept(p))
        p->space_cb(p->space_ud);
}

static void retry_timer_cb(uv_timer_t *t)
{
    psink_t *ps = t->data;
    ps->timer_armed = false;
    ps->fill_wait = false;
    psink_kick(ps);
}

static int ensure_cap(psink_t *ps, size_t n);

/* Hands the n entries staged in the scratch arrays to the sink as one batch. A sink that
 * refuses synchronously without completing gets everything retried. Returns false if the
 * refusal was handled here (done already ran). */
static bool send_batch(psink_t *ps, size_t n, void (*done)(sf_sink_batch *b))
{
    for (size_t k = 0; k < n; k++) {
        ps->bst[k] = SF_DELIV_RETRY;
        ps->brs[k] = NULL;
    }
    sf_sink_batch *b = &ps->batch;
    memset(b, 0, sizeof *b);
    b->sink = &ps->sink;
    b->n = n;
    b->events = ps->bev;
    b->records = ps->brec;
    b->status = ps->bst;
    b->reason = ps->brs;
    b->owner = ps;
    b->done = done;
    ps->busy = true;
    ps->batches++;
    ps->in_submit++;
    int rc = ps->sink.cfg->ops->submit(&ps->sink, b);
    ps->in_submit--;
    bool refused = rc < 0 && ps->busy;
    if (refused) {
        if (!ps->sink.last_error[0])
            sf_sink_set_error(&ps->sink, "submit failed (%d)", rc);
        done(b);
    }
    if (ps->release_later)
        release_holds(ps);
    return !refused;
}

/* ---- disk spool ---- */

/* Moves the head job's pending records into the spool and settles them. 0, or negative (the
 * job is left as it was). */
static int spool_job(psink_t *ps, job_t *j)
{
    size_t n = 0;
    for (size_t i = 0; i < j->page->n; i++)
        n += j->done[i] == ST_PENDING;
    if (!n)
        return 0;
    const sf_event **evs = calloc(n, sizeof *evs);
    sf_buf *recs = calloc(n, sizeof *recs);
    int rc = -ENOMEM;
    if (evs && recs) {
        size_t k = 0;
        for (size_t i = 0; i < j->page->n; i++) {
            if (j->done[i] != ST_PENDING)
                continue;
            evs[k] = &j->page->events[i];
            recs[k++] = j->records[i];
        }
        rc = sf_spool_append(ps->spool, evs, recs, n);
    }
    free(evs);
    free(recs);
    if (rc)
        return rc;
    for (size_t i = 0; i < j->page->n; i++) {
        if (j->done[i] == ST_PENDING) {
            j->done[i] = ST_SETTLED;
            j->remaining--;
        }
    }
    ps->spooled += n;
    return 0;
}

/* While spooling, every queued page goes to the spool (in order) so its commit can happen. */
static void spool_pending_jobs(psink_t *ps)
{
    while (ps->head && !ps->closing) {
        job_t *j = ps->head;
        if (j->ndead && flush_dead(ps, j) != 0)
            return;
        int rc = spool_job(ps, j);
        if (rc) {
            SF_ERROR("pipeline", "sink %s: cannot spool %zu events (%s); holding them in memory",
                     ps->sink.name, j->remaining,
                     rc == -ENOSPC ? "spool.max_size reached" : strerror(-rc));
            return;
        }
        job_finish(ps);
    }
}

static void replay_done(sf_sink_batch *b)
{
    psink_t *ps = b->owner;
    ps->busy = false;
    size_t n = b->n, k = 0, ndl = 0;
    const sf_event **dl = calloc(n ? n : 1, sizeof *dl);
    const char **why = calloc(n ? n : 1, sizeof *why);
    /* the spool is consumed in order: up to the first record still refused */
    for (; k < n && b->status[k] != SF_DELIV_RETRY; k++) {
        if (b->status[k] == SF_DELIV_REJECT && dl && why) {
            dl[ndl] = b->events[k];
            why[ndl++] = b->reason[k] ? b->reason[k] : "rejected by the peer";
        }
    }
    if (ndl && (!dl || !why || sf_deadletter_write(ps->p->dl, ps->sink.name, dl, why, ndl) != 0)) {
        for (k = 0; k < n && b->status[k] == SF_DELIV_OK; k++)
            ; /* keep the rejected ones in the spool until the dead-letter file takes them */
        ndl = 0;
    }
    for (size_t i = 0; i < ndl; i++)
        SF_ERROR("pipeline", "sink %s: event %s dead-lettered: %s", ps->sink.name, dl[i]->id,
                 why[i]);
    for (size_t i = 0; i < k; i++)
        b->status[i] == SF_DELIV_OK ? ps->delivered++ : ps->rejected++;
    free(dl);
    free(why);
    for (size_t i = 0; i < n; i++) {
        free(b->reason[i]);
        b->reason[i] = NULL;
    }
    size_t nok = 0;
    for (size_t i = 0; i < n; i++)
        nok += b->status[i] == SF_DELIV_OK;
    count_ok(ps, nok);
    if (k) {
        /* the spool is consumed once the sink settled what it took */
        job_t *h = calloc(1, sizeof *h);
        if (!h || sf_spool_take(ps->spool, k) != 0) {
            free(h);
            SF_ERROR("pipeline",
                     "sink %s: out of memory recording spool progress (events will be re-sent)",
                     ps->sink.name);
        } else {
            h->spool_n = k;
            hold_add(ps, h);
        }
    }
    sf_spool_items_free(ps->ritems, ps->nritems);
    ps->ritems = NULL;
    ps->nritems = 0;
    release_holds(ps);
    ps->sink.healthy = k == n;
    if (ps->closing)
        return;
    if (k < n) {
        ps->retried += n - k;
        int64_t delay = b->retry_after_ms > 0 ? b->retry_after_ms
                                              : sf_backoff_ms(ps->spool_attempts++,
                                                              ps->sink.cfg->common.retry_initial_ms,
                                                              ps->sink.cfg->common.retry_max_ms);
        SF_WARN("pipeline", "sink %s: spool replay refused (%s); %llu events wait, retry in %lldms",
                ps->sink.name, ps->sink.last_error[0] ? ps->sink.last_error : "no detail",
                (unsigned long long)sf_spool_unsent(ps->spool), (long long)delay);
        arm_timer(ps, delay);
    } else {
        ps->spool_attempts = 0;
    }
    if (!ps->in_submit)
        psink_kick(ps);
}

/* One step of spool mode: spool what is queued, then replay from the spool.
 * Returns true when the caller should loop again. */
static bool spool_step(psink_t *ps)
{
    spool_pending_jobs(ps);
    if (sf_spool_unsent(ps->spool) == 0) {
        ps->spooling = false;
        SF_INFO("pipeline", "sink %s: spool drained; delivering directly again", ps->sink.name);
        return true;
    }
    sf_spool_item *items = NULL;
    size_t n = 0;
    int rc = sf_spool_peek(ps->spool, 500, &items, &n);
    if (rc || !n || ensure_cap(ps, n)) {
        SF_ERROR("pipeline", "sink %s: cannot read the spool (%s)", ps->sink.name,
                 rc ? strerror(-rc) : "out of memory");
        sf_spool_items_free(items, n);
        arm_timer(ps, 5000);
        return false;
    }
    ps->ritems = items;
    ps->nritems = n;
    for (size_t k = 0; k < n; k++) {
        ps->bev[k] = &items[k].ev;
        ps->brec[k] = items[k].rec;
        ps->bidx[k] = k;
    }
    send_batch(ps, n, replay_done);
    return !ps->busy && !ps->timer_armed;
}

static void batch_done(sf_sink_batch *b)
{
    psink_t *ps = b->owner;
    ps->busy = false;
    size_t nretry = 0, nok = 0;
    for (size_t k = 0; k < b->n; k++) {
        job_t *j = ps->bjob[k];
        size_t idx = ps->bidx[k];
        switch (b->status[k]) {
        case SF_DELIV_OK:
            nok++;
            if (j->done[idx] == ST_PENDING) {
                j->done[idx] = ST_SETTLED;
                j->remaining--;
                ps->delivered++;
            }
            break;
        case SF_DELIV_REJECT:
            mark_dead(j, idx, b->reason[k] ? b->reason[k] : sf_strdup("rejected by the peer"));
            b->reason[k] = NULL;
            break;
        default:
            nretry++;
            break;
        }
        free(b->reason[k]);
        b->reason[k] = NULL;
    }
    count_ok(ps, nok);
    ps->sink.healthy = nretry == 0;
    if (ps->closing)
        return;
    if (nretry && ps->spool) {
        /* park the refused events on disk so the checkpoint and the other sinks move on */
        ps->retried += nretry;
        ps->spooling = true;
        SF_WARN("pipeline", "sink %s: %zu events not accepted (%s); spooling to disk",
                ps->sink.name, nretry, ps->sink.last_error[0] ? ps->sink.last_error : "no detail");
        spool_pending_jobs(ps);
        arm_timer(ps, sf_backoff_ms(ps->spool_attempts++, ps->sink.cfg->common.retry_initial_ms,
                                    ps->sink.cfg->common.retry_max_ms));
        nretry = 0;
    }
    if (nretry) {
        ps->retried += nretry;
        unsigned max = (unsigned)ps->sink.cfg->common.retry_max_attempts;
        if (ps->p->bounded && (max == 0 || max > BOUNDED_MAX_ATTEMPTS))
            max = BOUNDED_MAX_ATTEMPTS;
        const char *why = ps->sink.last_error[0] ? ps->sink.last_error : "no detail";
        unsigned worst = 0;
        size_t waiting = 0;
        /* every page of the batch with records left counts an attempt (its records are
         * contiguous in the batch) */
        for (size_t k = 0; k < b->n; k++) {
            job_t *j = ps->bjob[k];
            if (k > 0 && j == ps->bjob[k - 1])
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
                     ps->sink.name, pending, j->attempts, why);
            if (ps->p->bounded) {
                /* --once / --from: report failure, keep the checkpoint where it is */
                j->page->failed = true;
                for (size_t i = 0; i < j->page->n; i++)
                    if (j->done[i] == ST_PENDING) {
                        j->done[i] = ST_SETTLED;
                        j->remaining--;
                    }
            } else {
                for (size_t i = 0; i < j->page->n; i++) {
                    if (j->done[i] != ST_PENDING)
                        continue;
                    sf_buf r = {0};
                    sf_buf_appendf(&r, "retries exhausted after %u attempts: %s", j->attempts, why);
                    mark_dead(j, i, sf_buf_steal(&r));
                }
            }
        }
        if (waiting) {
            int64_t delay = b->retry_after_ms > 0
                                ? b->retry_after_ms
                                : sf_backoff_ms(worst - 1, ps->sink.cfg->common.retry_initial_ms,
                                                ps->sink.cfg->common.retry_max_ms);
            SF_WARN("pipeline", "sink %s: %zu events not accepted (%s); retry %u in %lldms",
                    ps->sink.name, waiting, why, worst, (long long)delay);
            arm_timer(ps, delay);
        }
    }
    if (!ps->in_submit)
        psink_kick(ps);
}

static int ensure_cap(psink_t *ps, size_t n)
{
    if (n <= ps->cap)
        return 0;
    const sf_event **bev = realloc(ps->bev, n * sizeof *bev);
    if (bev)
        ps->bev = bev;
    sf_buf *brec = realloc(ps->brec, n * sizeof *brec);
    if (brec)
        ps->brec = brec;
    size_t *bidx = realloc(ps->bidx, n * sizeof *bidx);
    if (bidx)
        ps->bidx = bidx;
    job_t **bjob = realloc(ps->bjob, n * sizeof *bjob);
    if (bjob)
        ps->bjob = bjob;
    sf_deliv_status *bst = realloc(ps->bst, n * sizeof *bst);
    if (bst)
        ps->bst = bst;
    char **brs = realloc(ps->brs, n * sizeof *brs);
    if (brs)
        ps->brs = brs;
    if (!bev || !brec || !bidx || !bjob || !bst || !brs)
        return -ENOMEM;
    ps->cap = n;
    return 0;
}

/* Fails the sink's held records: their pages commit with ok=false (the checkpoint stays before
 * them) and held spool records stay in the spool. */
static void fail_holds(psink_t *ps)
{
    while (ps->hold_head && !ps->closing) {
        size_t spool_n;
        page_t *pg = hold_pop(ps, &spool_n);
        if (pg) {
            pg->failed = true;
            page_sink_done(ps->p, pg);
        }
    }
}

/* A flushing sink with nothing left to send: ask it to settle now. In --once / --from the
 * wait is bounded by pipeline.shutdown_timeout; then what is still unsettled fails (exit 1,
 * read again by the next run) instead of the run never ending (e.g. a receiver that went
 * away with messages in the syslog resend window). */
static void flush_idle_sink(psink_t *ps)
{
    if (ps->sink.cfg->ops->flush)
        ps->sink.cfg->ops->flush(&ps->sink);
    if (!ps->p->bounded || !ps->hold_head)
        return;
    uint64_t now = uv_now(ps->p->loop);
    if (!ps->flush_deadline)
        ps->flush_deadline = now + (uint64_t)ps->p->cfg->pipeline.shutdown_timeout_ms;
    if (now < ps->flush_deadline) {
        arm_timer(ps, (int64_t)(ps->flush_deadline - now));
        return;
    }
    SF_ERROR("pipeline",
             "sink %s: %llu delivered events were not confirmed within "
             "pipeline.shutdown_timeout (%s); the checkpoint stays before them",
             ps->sink.name, (unsigned long long)(ps->ok_seq - ps->settled_seq),
             ps->sink.last_error[0] ? ps->sink.last_error : "no confirmation");
    fail_holds(ps);
}

/* batch_wait: a partial batch of fresh pages waits (up to batch_wait_ms after its first page
 * was queued) for more pages, while more can come. True if the timer now waits. */
static bool fill_wait(psink_t *ps, const job_t *head, const job_t *last, size_t total)
{
    sf_pipeline *p = ps->p;
    if (ps->sink.batch_wait_ms <= 0 || !ps->sink.batch_max || total >= ps->sink.batch_max ||
        last->next || head->attempts || p->flushing || p->closing || !sf_pipeline_can_accept(p))
        return false;
    /* the pages that can still come before the pipeline is full: if even they cannot fill the
     * batch, waiting only delays it (and stops fetching and sending from overlapping) */
    size_t inflight = p->npages - p->nsettling, maxp = (size_t)p->cfg->pipeline.max_inflight_pages;
    size_t room = maxp > inflight ? maxp - inflight : 0;
    size_t page = p->cfg->source.page_size > 0 ? (size_t)p->cfg->source.page_size : 1;
    if (total + room * page < ps->sink.batch_max ||
        ps->sink.batch_max > (size_t)ps->sink.cfg->common.queue_max_events)
        return false;
    uint64_t due = head->t_queued + (uint64_t)ps->sink.batch_wait_ms, now = uv_now(p->loop);
    if (now >= due)
        return false;
    arm_timer(ps, (int64_t)(due - now));
    ps->fill_wait = true;
    return true;
}

static void cancel_fill_wait(psink_t *ps)
{
    if (!ps->fill_wait)
        return;
    uv_timer_stop(&ps->timer);
    ps->timer_armed = ps->fill_wait = false;
}

static void psink_kick(psink_t *ps)
{
    while (!ps->busy && !ps->timer_armed && !ps->closing) {
        if (ps->spooling) {
            if (spool_step(ps))
                continue;
            return;
        }
        if (!ps->head) {
            if (ps->p->flushing && ps->hold_head)
                flush_idle_sink(ps);
            return;
        }
        job_t *j = ps->head;
        if (j->ndead && flush_dead(ps, j) != 0) {
            if (ps->p->bounded && ++j->dead_failures >= BOUNDED_MAX_ATTEMPTS) {
                /* --once / --from must end: fail the page, the checkpoint stays put */
                j->page->failed = true;
                for (size_t i = 0; i < j->page->n; i++)
                    if (j->done[i] != ST_SETTLED) {
                        j->done[i] = ST_SETTLED;
                        j->remaining--;
                    }
                j->ndead = 0;
                continue;
            }
            arm_timer(ps, sf_backoff_ms(j->dead_failures++, ps->sink.cfg->common.retry_initial_ms,
                                        ps->sink.cfg->common.retry_max_ms));
            return;
        }
        if (j->remaining == 0) {
            job_finish(ps);
            continue;
        }
        /* the head page, and after it whole fresh pages while they fit in batch_max */
        size_t total = j->remaining, max = ps->sink.batch_max;
        job_t *last = j;
        while (max && last->next && last->next->attempts == 0 && last->next->ndead == 0 &&
               total + last->next->remaining <= max) {
            last = last->next;
            total += last->remaining;
        }
        if (fill_wait(ps, j, last, total))
            return;
        if (ensure_cap(ps, total)) {
            SF_ERROR("pipeline", "sink %s: out of memory building a batch", ps->sink.name);
            arm_timer(ps, 1000);
            return;
        }
        size_t k = 0;
        for (job_t *jj = j, *end = last->next; jj != end; jj = jj->next) {
            for (size_t i = 0; i < jj->page->n; i++) {
                if (jj->done[i] != ST_PENDING)
                    continue;
                ps->bjob[k] = jj;
                ps->bidx[k] = i;
                ps->bev[k] = &jj->page->events[i];
                ps->brec[k] = jj->records[i];
                k++;
            }
        }
        if (!send_batch(ps, k, batch_done))
            return;
    }
}

int sf_pipeline_submit(sf_pipeline *p, sf_event *events, size_t n, void *token)
{
    page_t *pg = calloc(1, sizeof *pg);
    job_t **jobs = calloc(p->nsinks ? p->nsinks : 1, sizeof *jobs);
    if (!pg || !jobs)
        goto oom;
    pg->events = events;
    pg->n = n;
    pg->token = token;
    for (size_t s = 0; s < p->nsinks; s++) {
        psink_t *ps = &p->sinks[s];
        job_t *j = calloc(1, sizeof *j);
        if (!j)
            goto oom;
        jobs[s] = j;
        j->page = pg;
        j->records = calloc(n ? n : 1, sizeof *j->records);
        j->done = calloc(n ? n : 1, 1);
        j->reasons = calloc(n ? n : 1, sizeof *j->reasons);
        if (!j->records || !j->done || !j->reasons)
            goto oom;
        j->remaining = n;
        j->t_queued = uv_now(p->loop);
        const sf_format *f = ps->sink.cfg->format;
        for (size_t i = 0; i < n; i++) {
            char err[256] = "";
            size_t fixed = 0;
            int rc = sf_format_encode(f, ps->fmt_state, &events[i], &j->records[i], &fixed, err,
                                      sizeof err);
            if (fixed && p->utf8_events++ < 10)
                SF_WARN("pipeline",
                        "event %s: %zu bytes of invalid UTF-8 replaced with U+FFFD in its %s "
                        "record for sink %s%s",
                        events[i].id, fixed, f->name, ps->sink.name,
                        p->utf8_events == 10 ? " (not logged any more)" : "");
            if (rc == -ENOMEM)
                goto oom;
            if (rc) {
                p->encode_errors++;
                sf_buf r = {0};
                sf_buf_appendf(&r, "format %s cannot encode the event: %s", f->name, err);
                char *reason = sf_buf_steal(&r);
                if (!reason)
                    goto oom;
                mark_dead(j, i, reason);
            }
        }
    }
    /* all allocations done: link in */
    pg->pending_sinks = pg->unsent = p->nsinks;
    if (p->tail)
        p->tail->next = pg;
    else
        p->head = pg;
    p->tail = pg;
    p->npages++;
    for (size_t s = 0; s < p->nsinks; s++) {
        psink_t *ps = &p->sinks[s];
        if (ps->tail)
            ps->tail->next = jobs[s];
        else
            ps->head = jobs[s];
        ps->tail = jobs[s];
        ps->queued_events += n;
    }
    free(jobs);
    if (p->nsinks == 0) {
        pg->complete = true;
        drain_commits(p);
        return 0;
    }
    for (size_t s = 0; s < p->nsinks; s++) {
        psink_t *ps = &p->sinks[s];
        /* while spooling, new pages go to disk now (a replay in flight does not hold them) */
        if (ps->spooling && (!ps->busy || ps->ritems))
            spool_pending_jobs(ps);
        cancel_fill_wait(ps); /* a new page: look again whether the batch is full now */
        psink_kick(ps);
    }
    return 0;
oom:
    for (size_t s = 0; jobs && s < p->nsinks; s++)
        if (jobs[s])
            job_free(jobs[s]);
    free(jobs);
    free(pg);
    return -ENOMEM;
}

void sf_pipeline_flush(sf_pipeline *p)
{
    if (p->flushing || p->closing)
        return;
    p->flushing = true;
    for (size_t i = 0; i < p->nsinks; i++) {
        cancel_fill_wait(&p->sinks[i]); /* no more pages: send partial batches now */
        psink_kick(&p->sinks[i]);
    }
}

void sf_pipeline_reopen(sf_pipeline *p)
{
    for (size_t i = 0; i < p->nsinks; i++)
        if (p->sinks[i].open && p->sinks[i].sink.cfg->ops->reopen)
            p->sinks[i].sink.cfg->ops->reopen(&p->sinks[i].sink);
    sf_deadletter_reopen(p->dl);
}

void sf_pipeline_stats_get(const sf_pipeline *p, sf_pipeline_stats *st)
{
    memset(st, 0, sizeof *st);
    st->encode_errors = p->encode_errors;
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
    const psink_t *ps = &p->sinks[i];
    st->name = ps->sink.name;
    st->type = ps->sink.cfg->ops->type;
    st->format = ps->sink.cfg->format->name;
    st->delivered = ps->delivered;
    st->retried = ps->retried;
    st->rejected = ps->rejected;
    st->batches = ps->batches;
    st->queued_events = ps->queued_events;
    st->healthy = ps->sink.healthy;
    st->last_error = ps->sink.last_error;
    st->spooled = ps->spooled;
    st->spool_events = sf_spool_count(ps->spool);
    st->unsettled = ps->ok_seq > ps->settled_seq ? ps->ok_seq - ps->settled_seq : 0;
    st->spool_bytes = sf_spool_bytes(ps->spool);
}

static void maybe_closed(sf_pipeline *p)
{
    if (p->closing_left == 0 && p->closed_cb) {
        void (*cb)(void *) = p->closed_cb;
        p->closed_cb = NULL;
        cb(p->closed_ud);
    }
}

static void timer_closed(uv_handle_t *h)
{
    psink_t *ps = h->data;
    ps->p->closing_left--;
    maybe_closed(ps->p);
}

static void sink_closed(sf_sink *s)
{
    psink_t *ps = (psink_t *)((char *)s - offsetof(psink_t, sink));
    ps->closed = true;
    ps->p->closing_left--;
    maybe_closed(ps->p);
}

void sf_pipeline_close(sf_pipeline *p, void (*closed)(void *ud), void *ud)
{
    p->closing = true;
    p->closed_cb = closed;
    p->closed_ud = ud;
    /* fail what is left, in order; pages stay allocated (jobs point at them) until free */
    for (page_t *pg = p->head; pg; pg = pg->next) {
        if (pg->token)
            p->cb(p->ud, pg->token, false);
        pg->token = NULL;
        pg->failed = true;
    }
    p->closing_left = 1; /* guard while starting closes */
    for (size_t i = 0; i < p->nsinks; i++) {
        psink_t *ps = &p->sinks[i];
        ps->closing = true;
        p->closing_left++;
        uv_close((uv_handle_t *)&ps->timer, timer_closed);
        if (ps->open) {
            p->closing_left++;
            ps->sink.cfg->ops->close(&ps->sink, sink_closed);
        }
    }
    p->closing_left--;
    maybe_closed(p);
}

void sf_pipeline_free(sf_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nsinks; i++) {
        psink_t *ps = &p->sinks[i];
        while (ps->head) {
            job_t *j = ps->head;
            ps->head = j->next;
            job_free(j);
        }
        while (ps->hold_head) {
            job_t *h = ps->hold_head;
            ps->hold_head = h->next;
            job_free(h);
        }
        if (ps->open && ps->sink.cfg->ops->destroy)
            ps->sink.cfg->ops->destroy(&ps->sink);
        if (ps->fmt_state && ps->sink.cfg->format->destroy)
            ps->sink.cfg->format->destroy(ps->fmt_state);
        sf_spool_items_free(ps->ritems, ps->nritems);
        sf_spool_close(ps->spool);
        free(ps->bev);
        free(ps->brec);
        free(ps->bidx);
        free(ps->bjob);
        free(ps->bst);
        free(ps->brs);
    }
    while (p->head) {
        page_t *pg = p->head;
        p->head = pg->next;
        page_free(pg);
    }
    free(p->sinks);
    sf_deadletter_free(p->dl);
    free(p);
}
