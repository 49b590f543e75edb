/* spooler: the spool side of a sink queue. See spooler.h. */
#include "pipeline/spooler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

int sf_spooler_open(sf_spooler *sp, const sf_sink_common_cfg *c, const char *sink)
{
    if (!c->spool_path || !c->spool_path[0])
        return 0;
    char err[256] = "";
    int rc = sf_spool_open(c->spool_path, c->spool_max_size, c->spool_segment_size, &sp->spool, err,
                           sizeof err);
    if (rc) {
        SF_ERROR("pipeline", "sink %s: %s", sink, err);
        return rc;
    }
    if (sf_spool_unsent(sp->spool)) {
        sp->spooling = true;
        SF_INFO("pipeline", "sink %s: %llu events waiting in the spool; replaying them first", sink,
                (unsigned long long)sf_spool_count(sp->spool));
    }
    return 0;
}

int sf_spooler_park(sf_spooler *sp, sf_job *j)
{
    size_t n = 0;
    for (size_t i = 0; i < j->page->n; i++)
        n += j->done[i] == SF_JOB_PENDING;
    if (!n)
        return 0;
    const sf_event **evs = calloc(n, sizeof *evs);
    sf_buf *recs = calloc(n, sizeof *recs);
    int rc = -ENOMEM;
    if (evs && recs) {
        size_t k = 0;
        for (size_t i = 0; i < j->page->n; i++) {
            if (j->done[i] != SF_JOB_PENDING)
                continue;
            evs[k] = &j->page->events[i];
            recs[k++] = j->records[i];
        }
        rc = sf_spool_append(sp->spool, evs, recs, n);
    }
    free(evs);
    free(recs);
    if (rc)
        return rc;
    for (size_t i = 0; i < j->page->n; i++) {
        if (j->done[i] == SF_JOB_PENDING) {
            j->done[i] = SF_JOB_SETTLED;
            j->remaining--;
        }
    }
    sp->spooled += n;
    return 0;
}

bool sf_spooler_drained(sf_spooler *sp, const char *sink)
{
    if (sf_spool_unsent(sp->spool) != 0)
        return false;
    sp->spooling = false;
    SF_INFO("pipeline", "sink %s: spool drained; delivering directly again", sink);
    return true;
}

int sf_spooler_read(sf_spooler *sp, const char *sink)
{
    sf_spool_item *items = NULL;
    size_t n = 0;
    int rc = sf_spool_peek(sp->spool, SF_SPOOLER_BATCH, &items, &n);
    if (rc || !n) {
        SF_ERROR("pipeline", "sink %s: cannot read the spool (%s)", sink,
                 rc ? strerror(-rc) : "out of memory");
        sf_spool_items_free(items, n);
        return rc ? rc : -ENOMEM;
    }
    sp->items = items;
    sp->nitems = n;
    return 0;
}

size_t sf_spooler_replay_done(sf_spooler *sp, sf_sink_batch *b, sf_settle *st, bool deferred,
                              sf_deadletter *dl, const char *sink, uint64_t *delivered,
                              uint64_t *rejected)
{
    size_t n = b->n, k = 0, ndl = 0;
    const sf_event **evs = calloc(n ? n : 1, sizeof *evs);
    const char **why = calloc(n ? n : 1, sizeof *why);
    /* the spool is consumed in order: up to the first record still refused */
    for (; k < n && b->status[k] != SF_DELIV_RETRY; k++) {
        if (b->status[k] == SF_DELIV_REJECT && evs && why) {
            evs[ndl] = b->events[k];
            why[ndl++] = b->reason[k] ? b->reason[k] : "rejected by the peer";
        }
    }
    size_t wrote = 0, nrej = 0;
    for (size_t i = 0; i < k; i++)
        nrej += b->status[i] == SF_DELIV_REJECT;
    if (ndl && evs && why)
        sf_deadletter_write(dl, sink, evs, why, ndl, &wrote);
    if (wrote < nrej) {
        /* consumed up to the first rejected record the dead-letter file did not take (or that
         * could not be given to it): it stays in the spool until the file takes it */
        size_t seen = 0;
        for (k = 0; k < n && (b->status[k] == SF_DELIV_OK ||
                              (b->status[k] == SF_DELIV_REJECT && seen++ < wrote));
             k++)
            ;
        ndl = wrote;
    }
    for (size_t i = 0; i < ndl; i++)
        SF_ERROR("pipeline", "sink %s: event %s dead-lettered: %s", sink, evs[i]->id, why[i]);
    for (size_t i = 0; i < k; i++)
        b->status[i] == SF_DELIV_OK ? (*delivered)++ : (*rejected)++;
    free(evs);
    free(why);
    for (size_t i = 0; i < n; i++) {
        free(b->reason[i]);
        b->reason[i] = NULL;
    }
    size_t nok = 0;
    for (size_t i = 0; i < n; i++)
        nok += b->status[i] == SF_DELIV_OK;
    sf_settle_ok(st, nok, deferred);
    if (k) {
        /* the spool is consumed once the sink settled what it took */
        sf_job *h = sf_job_new_spool_hold(k);
        if (!h || sf_spool_take(sp->spool, k) != 0) {
            free(h);
            SF_ERROR("pipeline",
                     "sink %s: out of memory recording spool progress (events will be re-sent)",
                     sink);
        } else {
            sf_settle_add(st, h);
        }
    }
    sf_spool_items_free(sp->items, sp->nitems);
    sp->items = NULL;
    sp->nitems = 0;
    return k;
}

void sf_spooler_close(sf_spooler *sp)
{
    sf_spool_items_free(sp->items, sp->nitems);
    sp->items = NULL;
    sp->nitems = 0;
    sf_spool_close(sp->spool);
    sp->spool = NULL;
}
