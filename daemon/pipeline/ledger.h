/* ledger: the pipeline's pages in submission order, and which of them may commit.
 *
 * A page is complete once every sink settled it (delivered, dead-lettered, or failed in bounded
 * mode). Pages leave the ledger only from the head, only when complete: commits come out in
 * page order, and a page that is still pending holds back every page behind it, whatever
 * order the sinks finish in. The ledger is plain data (no loop, no callbacks): the pipeline
 * pops complete pages from its deferred notification and hands them to the commit callback.
 *
 * Page lifecycle: appended with one pending sink per sink; each sink finishes *sending* it
 * (sf_ledger_sent: when the last one did, the events are freed and the page only waits for
 * settlement, "settling", no longer counting toward max_inflight_pages), and each sink *settles*
 * it (sf_ledger_settled: when the last one did, the page is complete). */
#ifndef SF_LEDGER_H
#define SF_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include "core/event.h"

typedef struct sf_ledger_page {
    struct sf_ledger_page *next;
    sf_event *events; /* n, owned; freed once every sink sent the page */
    size_t n;
    size_t bytes;         /* memory its events and records hold until every sink sent it */
    void *token;          /* the submitter's, handed back with the commit */
    size_t pending_sinks; /* sinks that have not settled the page */
    size_t unsent;        /* sinks whose work on the page is not finished */
    bool failed;          /* some event could not be settled: commits with ok=false */
    bool complete;        /* every sink settled it */
    bool settling;        /* every sink sent it; only settlement is awaited */
    bool committed;       /* its commit was delivered (a failed page on close stays linked) */
    /* per sink (nsinks): SF_LEDGER_SINK_*: whether that sink confirmed every event of the page
     * (delivered, dead-lettered or spooled), and whether that was reported */
    unsigned char *by_sink;
} sf_ledger_page;

enum { SF_LEDGER_SINK_PENDING = 0, SF_LEDGER_SINK_CONFIRMED = 1, SF_LEDGER_SINK_REPORTED = 2 };

typedef struct sf_ledger {
    sf_ledger_page *head, *tail;
    size_t npages;    /* pages not popped yet */
    size_t nsettling; /* of which: settling */
    size_t bytes;     /* of the pages not settling (pipeline.max_inflight_bytes) */
    size_t sink_news; /* pages' sink confirmations not reported yet */
} sf_ledger;

/* A page for n events (takes events, the array included, only on success); NULL if out of
 * memory. */
sf_ledger_page *sf_ledger_page_new(sf_event *events, size_t n, void *token);
void sf_ledger_page_free_events(sf_ledger_page *pg);
void sf_ledger_page_free(sf_ledger_page *pg);

/* Links pg at the tail; nsinks sinks must send and settle it. pg->bytes counts toward l->bytes
 * until the last sink sent it. */
void sf_ledger_append(sf_ledger *l, sf_ledger_page *pg, size_t nsinks);
/* One sink finished its work on pg. True if it was the last: pg's events are freed and pg
 * stopped counting as in flight. */
bool sf_ledger_sent(sf_ledger *l, sf_ledger_page *pg);
/* One sink settled pg (failed: some of its events could not be). True if pg is complete now. */
bool sf_ledger_settled(sf_ledger *l, sf_ledger_page *pg, bool failed);
/* Sink number sink confirmed every event of pg for good (not a failed or given-up settlement):
 * recorded for sf_ledger_sink_report. Pages without by_sink ignore it. */
void sf_ledger_sink_confirmed(sf_ledger *l, sf_ledger_page *pg, size_t sink);
/* Reports the confirmations recorded since the last call, of pages still linked (a popped
 * page's commit says more): fn(ud, sink, token), page order per sink. */
void sf_ledger_sink_report(sf_ledger *l, size_t nsinks,
                           void (*fn)(void *ud, size_t sink, void *token), void *ud);
/* Unlinks and returns the head if it is complete (the caller commits and frees it), else NULL. */
sf_ledger_page *sf_ledger_pop(sf_ledger *l);
/* Pages in flight for max_inflight_pages: not popped and not only settling. */
size_t sf_ledger_inflight(const sf_ledger *l);
/* Close: every page from the first incomplete one on will fail (the complete prefix still
 * commits). */
void sf_ledger_fail_rest(sf_ledger *l);
/* Frees every page still linked. */
void sf_ledger_free(sf_ledger *l);

#endif
