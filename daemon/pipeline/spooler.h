/* spooler: a sink queue's adapter to its disk spool (spool.h), when the sink has one.
 *
 * When the sink refuses a batch, its pending records are *parked* in the spool (appended and
 * fsync'd) and count as settled, so the page commits and the other sinks move on. While the
 * spool holds anything the sink is "spooling": new records are parked too (order is kept), and
 * the sink queue *replays* the spool from its head, one batch of up to SF_SPOOLER_BATCH records
 * at a time. A replay is consumed in order up to the first record the sink refused; rejected
 * records go to the dead-letter file first. Consumed records are *taken* at once (the next read
 * starts after them) and *consumed* (the persisted head moves) through a settlement hold, once
 * the sink settled them. The sink queue (sinkq.c) decides when to park, read and send; this
 * module does the spool side. */
#ifndef SF_SPOOLER_H
#define SF_SPOOLER_H

#include <stdbool.h>
#include <stdint.h>
#include "pipeline/deadletter.h"
#include "pipeline/job.h"
#include "pipeline/settle.h"
#include "pipeline/spool.h"
#include "sinks/sink.h"

#define SF_SPOOLER_BATCH 500

typedef struct sf_spooler {
    sf_spool *spool;      /* NULL: the sink has no spool */
    bool spooling;        /* events wait in the spool: new ones go there too (order) */
    sf_spool_item *items; /* the replay batch in flight (nitems) */
    size_t nitems;
    unsigned attempts; /* replays refused in a row (backoff) */
    uint64_t spooled;  /* events ever parked */
} sf_spooler;

/* Opens the spool of a sink configured with one (else does nothing). Returns 0, or negative
 * (logged). Events left from a previous run make the sink start by replaying them. */
int sf_spooler_open(sf_spooler *sp, const sf_sink_common_cfg *c, const char *sink);
/* Parks j's pending records and settles them. 0, or negative (j is left as it was). */
int sf_spooler_park(sf_spooler *sp, sf_job *j);
/* True (and spooling ends) once every spooled record was taken. */
bool sf_spooler_drained(sf_spooler *sp, const char *sink);
/* Reads the next replay batch into sp->items. 0, or negative (logged). */
int sf_spooler_read(sf_spooler *sp, const char *sink);
/* The sink answered the replay batch b (b->n == sp->nitems, in order): dead-letters what it
 * rejected, takes what it settled or rejected up to the first record it refused, holds them in
 * st until settled, frees the batch's items. Returns how many records were taken (k < b->n:
 * the rest waits for the next replay). */
size_t sf_spooler_replay_done(sf_spooler *sp, sf_sink_batch *b, sf_settle *st, bool deferred,
                              sf_deadletter *dl, const char *sink, uint64_t *delivered,
                              uint64_t *rejected);
void sf_spooler_close(sf_spooler *sp);

#endif
