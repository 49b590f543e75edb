/* settle: holds until a sink settled what it reported OK. See settle.h. */
#include "pipeline/settle.h"

#include "core/log.h"

void sf_settle_ok(sf_settle *st, uint64_t n, bool deferred)
{
    st->ok_seq += n;
    if (!deferred)
        st->settled_seq = st->ok_seq;
}

void sf_settle_settled(sf_settle *st, uint64_t n)
{
    st->settled_seq += n;
}

void sf_settle_add(sf_settle *st, sf_job *h)
{
    h->next = NULL;
    h->seq_end = st->ok_seq;
    if (st->tail)
        st->tail->next = h;
    else
        st->head = h;
    st->tail = h;
}

/* Unlinks the oldest hold and frees it; returns its page (NULL for a spool hold, whose record
 * count goes to *spool_n). */
static sf_ledger_page *hold_pop(sf_settle *st, size_t *spool_n, bool *confirmed, size_t *sink)
{
    sf_job *h = st->head;
    st->head = h->next;
    if (!st->head)
        st->tail = NULL;
    sf_ledger_page *pg = h->page;
    *spool_n = h->spool_n;
    *confirmed = !h->gave_up;
    *sink = h->sink;
    sf_job_free(h);
    return pg;
}

size_t sf_settle_release(sf_settle *st, sf_ledger *l, sf_spool *spool, const char *sink)
{
    size_t completed = 0;
    while (st->head && st->head->seq_end <= st->settled_seq) {
        size_t spool_n, s;
        bool confirmed;
        sf_ledger_page *pg = hold_pop(st, &spool_n, &confirmed, &s);
        if (pg && confirmed) /* this sink has every event of the page for good */
            sf_ledger_sink_confirmed(l, pg, s);
        if (pg)
            completed += sf_ledger_settled(l, pg, false);
        else if (sf_spool_consume(spool, spool_n) != 0)
            SF_ERROR("pipeline", "sink %s: cannot record spool progress (events may be re-sent)",
                     sink);
    }
    return completed;
}

size_t sf_settle_fail(sf_settle *st, sf_ledger *l)
{
    size_t completed = 0;
    while (st->head) {
        size_t spool_n, s;
        bool confirmed;
        sf_ledger_page *pg = hold_pop(st, &spool_n, &confirmed, &s);
        if (pg)
            completed += sf_ledger_settled(l, pg, true);
    }
    return completed;
}

bool sf_settle_holding(const sf_settle *st)
{
    return st->head != NULL;
}

uint64_t sf_settle_unsettled(const sf_settle *st)
{
    return st->ok_seq > st->settled_seq ? st->ok_seq - st->settled_seq : 0;
}

void sf_settle_free(sf_settle *st)
{
    while (st->head) {
        sf_job *h = st->head;
        st->head = h->next;
        sf_job_free(h);
    }
    st->tail = NULL;
}
