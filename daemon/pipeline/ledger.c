/* ledger: pages in submission order, in-order completion. See ledger.h. */
#include "pipeline/ledger.h"

#include <stdlib.h>

sf_ledger_page *sf_ledger_page_new(sf_event *events, size_t n, void *token)
{
    sf_ledger_page *pg = calloc(1, sizeof *pg);
    if (!pg)
        return NULL;
    pg->events = events;
    pg->n = n;
    pg->token = token;
    return pg;
}

void sf_ledger_page_free_events(sf_ledger_page *pg)
{
    for (size_t i = 0; pg->events && i < pg->n; i++)
        sf_event_free(&pg->events[i]);
    free(pg->events);
    pg->events = NULL;
}

void sf_ledger_page_free(sf_ledger_page *pg)
{
    if (!pg)
        return;
    free(pg->by_sink);
    sf_ledger_page_free_events(pg);
    free(pg);
}

void sf_ledger_append(sf_ledger *l, sf_ledger_page *pg, size_t nsinks)
{
    pg->next = NULL;
    pg->pending_sinks = pg->unsent = nsinks;
    pg->complete = nsinks == 0;
    if (l->tail)
        l->tail->next = pg;
    else
        l->head = pg;
    l->tail = pg;
    l->npages++;
    l->bytes += pg->bytes;
}

bool sf_ledger_sent(sf_ledger *l, sf_ledger_page *pg)
{
    if (--pg->unsent != 0)
        return false;
    /* every sink sent it: only settlement is awaited, the events are not needed */
    sf_ledger_page_free_events(pg);
    pg->settling = true;
    l->nsettling++;
    l->bytes -= pg->bytes;
    return true;
}

bool sf_ledger_settled(sf_ledger *l, sf_ledger_page *pg, bool failed)
{
    (void)l;
    if (failed)
        pg->failed = true;
    if (--pg->pending_sinks == 0) {
        pg->complete = true;
        return true;
    }
    return false;
}

void sf_ledger_sink_confirmed(sf_ledger *l, sf_ledger_page *pg, size_t sink)
{
    if (!pg->by_sink || pg->by_sink[sink] != SF_LEDGER_SINK_PENDING)
        return;
    pg->by_sink[sink] = SF_LEDGER_SINK_CONFIRMED;
    l->sink_news++;
}

void sf_ledger_sink_report(sf_ledger *l, size_t nsinks,
                           void (*fn)(void *ud, size_t sink, void *token), void *ud)
{
    if (!l->sink_news)
        return;
    l->sink_news = 0;
    for (sf_ledger_page *pg = l->head; pg; pg = pg->next) {
        for (size_t s = 0; pg->by_sink && s < nsinks; s++) {
            if (pg->by_sink[s] != SF_LEDGER_SINK_CONFIRMED)
                continue;
            pg->by_sink[s] = SF_LEDGER_SINK_REPORTED;
            if (!pg->committed)
                fn(ud, s, pg->token);
        }
    }
}

sf_ledger_page *sf_ledger_pop(sf_ledger *l)
{
    sf_ledger_page *pg = l->head;
    if (!pg || !pg->complete)
        return NULL;
    l->head = pg->next;
    if (!l->head)
        l->tail = NULL;
    pg->next = NULL;
    l->npages--;
    if (pg->settling)
        l->nsettling--;
    else
        l->bytes -= pg->bytes; /* no sinks: complete without being sent */
    return pg;
}

size_t sf_ledger_inflight(const sf_ledger *l)
{
    return l->npages - l->nsettling;
}

void sf_ledger_fail_rest(sf_ledger *l)
{
    sf_ledger_page *pg = l->head;
    while (pg && pg->complete)
        pg = pg->next;
    for (; pg; pg = pg->next)
        pg->failed = true;
}

void sf_ledger_free(sf_ledger *l)
{
    while (l->head) {
        sf_ledger_page *pg = l->head;
        l->head = pg->next;
        sf_ledger_page_free(pg);
    }
    l->tail = NULL;
    l->npages = l->nsettling = l->bytes = 0;
}
