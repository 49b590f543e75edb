/* sinkq: one sink's queue in the pipeline. Jobs (a page's records for this sink, job.h) wait
 * here in page order and go to the sink one batch at a time (order is kept): a batch is the head
 * page's pending records, plus whole fresh pages behind it up to the sink's batch_max, after
 * waiting up to batch_wait for more pages while more can come.
 *
 * The sink answers per record (sink.h): OK records are settled (or, for a sink that settles
 * late, held until it does: settle.h); REJECT records go durably to the dead-letter file before
 * they count as settled; RETRY records are sent again after a full-jitter exponential backoff
 * (or the peer's Retry-After), exactly those records, and each page with records left counts an
 * attempt. After retry_max_attempts a page's records are dead-lettered, or, in bounded mode
 * (--once, --from: at most 8 attempts), the page fails. A sink with a spool parks what it
 * refuses on disk instead and replays it later (spooler.h).
 *
 * A refusal that retrying cannot heal (sink.fault: the receiver's certificate cannot be
 * verified) fails the batch's pages at once in bounded mode; in follow mode it is logged once
 * per episode with the fix, retried every retry_max without counting attempts (a configuration
 * problem never dead-letters events), and counted (faults[]).
 *
 * No re-entry: the sink's answer (sf_sink_batch_done) and its settlements (sf_sink_settled)
 * only record what happened and post the queue's wake node (core/defer.h); the queue handles
 * them on a later loop turn, even when the sink answers from inside submit(). What the queue
 * reports upwards (a page became complete or stopped counting as in flight) goes through the
 * pipeline's hook, which posts the pipeline's own notification. */
#ifndef SF_SINKQ_H
#define SF_SINKQ_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "config/config.h"
#include "core/defer.h"
#include "pipeline/deadletter.h"
#include "pipeline/job.h"
#include "pipeline/ledger.h"
#include "pipeline/settle.h"
#include "pipeline/spooler.h"
#include "sinks/sink.h"

/* What every sink queue shares with its pipeline (pipeline.c embeds it). */
typedef struct sf_pipe_ctx {
    uv_loop_t *loop;
    sf_defer *defer;
    const sf_config *cfg;
    sf_ledger ledger;
    sf_deadletter *dl;
    bool bounded, flushing, closing;
    uint64_t encode_errors, utf8_events;
    /* the pipeline's hooks (synchronous, they only look or post the pipeline's notification) */
    bool (*can_accept)(const struct sf_pipe_ctx *ctx);
    /* pages became complete, or (space) one stopped counting as in flight */
    void (*changed)(struct sf_pipe_ctx *ctx, bool space);
    void (*closed_part)(struct sf_pipe_ctx *ctx); /* a handle or sink finished closing */
} sf_pipe_ctx;

typedef struct sf_sink_stats {
    const char *name, *type, *format;
    uint64_t delivered, retried, rejected, batches;
    uint64_t filtered; /* events its filter routed away (settled without sending) */
    uint64_t skipped;  /* events not sent: the sink confirmed them in an earlier run */
    size_t queued_events;
    bool healthy;
    const char *last_error;
    uint64_t spooled;      /* events ever parked in the disk spool */
    uint64_t spool_events; /* waiting in the spool now */
    uint64_t spool_bytes;
    uint64_t unsettled; /* records the sink took but has not settled yet (deferred settlement) */
    uint64_t faults[SF_SINK_FAULT_COUNT]; /* attempts failed for a reason retrying cannot heal */
    bool topic_missing;                   /* kafka_rest: its topic does not exist (last answer) */
    uint64_t producer_queue;              /* kafka: records in librdkafka's queues */
} sf_sink_stats;

/* Scratch arrays for the batch in flight (a batch may span several queued pages). */
typedef struct sf_batchbuf {
    size_t cap;
    const sf_event **ev;
    sf_buf *rec;
    size_t *idx;  /* record index in its job */
    sf_job **job; /* the job of each record */
    sf_deliv_status *st;
    char **rs;
} sf_batchbuf;

typedef struct sf_sinkq {
    sf_pipe_ctx *ctx;
    sf_sink sink;
    void *fmt_state;
    bool open, closing, closed;
    sf_job *head, *tail; /* queued jobs, oldest first */
    size_t queued_events;
    /* the batch in flight (at most one) */
    bool busy;     /* a batch is with the sink */
    bool answered; /* the sink answered it; handled by the wake node */
    bool replay;   /* it replays the spool */
    sf_sink_batch batch;
    sf_batchbuf buf;
    sf_defer_node wake; /* answer or settlement to handle */
    /* one timer: retry backoff, batch_wait (fill_wait) or the bounded flush deadline */
    uv_timer_t timer;
    bool timer_armed, fill_wait;
    uint64_t flush_deadline; /* bounded mode: uv_now() by which held records must settle */
    sf_settle settle;
    sf_spooler spooler;
    uint64_t delivered, retried, rejected, batches, skipped;
    uint64_t filtered; /* events its filter routed away */
    uint64_t faults[SF_SINK_FAULT_COUNT];
    bool fault_logged; /* this episode of sink.fault was logged */
} sf_sinkq;

void sf_sinkq_init(sf_sinkq *q, sf_pipe_ctx *ctx, const sf_sink_cfg *cfg, struct sf_http *http);
/* Format state, spool, then the sink itself; logs and returns negative on failure. */
int sf_sinkq_open(sf_sinkq *q);
/* After every sink opened: a spool left from the last run is replayed at once. */
void sf_sinkq_start(sf_sinkq *q);
/* Queues a job (pre-encoded for this sink); sf_sinkq_kick_new afterwards. */
void sf_sinkq_push(sf_sinkq *q, sf_job *j);
/* New pages were queued: while spooling they go to disk now; a batch waiting to fill looks
 * again; whatever can be sent is. */
void sf_sinkq_kick_new(sf_sinkq *q);
/* No more pages are coming: partial batches go now, and once nothing is left to send the sink
 * is asked to settle (bounded mode: within pipeline.shutdown_timeout). */
void sf_sinkq_flush(sf_sinkq *q);
void sf_sinkq_reopen(sf_sinkq *q);
void sf_sinkq_stats(const sf_sinkq *q, sf_sink_stats *st);
/* Handles that will report through ctx->closed_part once sf_sinkq_close is called. */
int sf_sinkq_parts(const sf_sinkq *q);
/* Stops everything: nothing more is sent or settled; the timer and the sink close. */
void sf_sinkq_close(sf_sinkq *q);
/* After close completed: frees jobs, holds, sink state, format state and spool. */
void sf_sinkq_free(sf_sinkq *q);

#endif
