/* settle: deferred settlement for one sink (sink.h: defer_settle, sf_sink_settled).
 *
 * Two cumulative counters in the same order: records the sink reported OK (ok_seq) and records
 * it settled (settled_seq; a sink without deferred settlement settles at once). A finished job
 * becomes a *hold* tagged with ok_seq at that moment; it is released, in order, once settled_seq
 * reaches the tag: a page hold completes the page for this sink (ledger), a spool hold
 * consumes its records from the spool. So neither the checkpoint nor the spool moves past a
 * record the sink may still lose. */
#ifndef SF_SETTLE_H
#define SF_SETTLE_H

#include <stdbool.h>
#include <stdint.h>
#include "pipeline/job.h"
#include "pipeline/ledger.h"
#include "pipeline/spool.h"

typedef struct sf_settle {
    uint64_t ok_seq, settled_seq;
    sf_job *head, *tail; /* holds, oldest first */
} sf_settle;

/* The sink reported n more records OK; deferred: they settle later (else now). */
void sf_settle_ok(sf_settle *st, uint64_t n, bool deferred);
/* The sink settled n more records (may run ahead of ok_seq while a batch completes). */
void sf_settle_settled(sf_settle *st, uint64_t n);
/* h (a finished job, or a spool hold) waits until every record reported OK so far settled. */
void sf_settle_add(sf_settle *st, sf_job *h);
/* Releases, in order, the holds whose records settled; a page hold whose job was not given up
 * records that this sink confirmed the page (sf_ledger_sink_confirmed). Returns how many pages
 * became complete (every sink settled them). */
size_t sf_settle_release(sf_settle *st, sf_ledger *l, sf_spool *spool, const char *sink);
/* Fails every hold: its page completes with ok=false (the checkpoint stays before it); held
 * spool records stay in the spool. Returns how many pages became complete. */
size_t sf_settle_fail(sf_settle *st, sf_ledger *l);
bool sf_settle_holding(const sf_settle *st);
uint64_t sf_settle_unsettled(const sf_settle *st);
void sf_settle_free(sf_settle *st);

#endif
