/* pipeline: fans each page of events out to every sink and reports, in submission order, when
 * every sink has settled every event of a page (delivered, or permanently rejected and
 * dead-lettered). The source moves the checkpoint only from that report.
 *
 * Per sink: one batch in flight (order kept), a bounded queue, retries of exactly the records a
 * sink asked to retry, with full-jitter exponential backoff or the peer's Retry-After. A sink
 * with deferred settlement (sink.h) holds a page's commit, and spool consumption, until it
 * settled the records; such pages no longer count toward max_inflight_pages (their events are
 * freed) but at most 256 of them wait. */
#ifndef SF_PIPELINE_H
#define SF_PIPELINE_H

#include <stdbool.h>
#include <uv.h>
#include "config/config.h"
#include "core/event.h"
#include "sinks/sink.h"

typedef struct sf_pipeline sf_pipeline;

/* ok: every event was delivered or dead-lettered (false: some could not be settled, e.g. the
 * pipeline is shutting down or retries were exhausted in --once mode). Called in submission
 * order, on the loop thread. */
typedef void (*sf_pipeline_commit_cb)(void *ud, void *token, bool ok);

typedef struct sf_pipeline_stats {
    uint64_t delivered, retried, rejected, encode_errors;
    size_t queued_events; /* events waiting or in flight, all sinks */
} sf_pipeline_stats;

typedef struct sf_sink_stats {
    const char *name, *type, *format;
    uint64_t delivered, retried, rejected, batches;
    size_t queued_events;
    bool healthy;
    const char *last_error;
    uint64_t spooled;      /* events ever parked in the disk spool */
    uint64_t spool_events; /* waiting in the spool now */
    uint64_t spool_bytes;
    uint64_t unsettled; /* records the sink took but has not settled yet (deferred settlement) */
} sf_sink_stats;

int sf_pipeline_new(uv_loop_t *loop, struct sf_http *http, const sf_config *cfg,
                    sf_pipeline_commit_cb cb, void *ud, sf_pipeline **out);
/* Sets (or replaces) the commit callback; used when the committer is created after the pipeline. */
void sf_pipeline_set_commit_cb(sf_pipeline *p, sf_pipeline_commit_cb cb, void *ud);
/* Opens every sink; on failure logs which and returns negative. */
int sf_pipeline_open(sf_pipeline *p);
/* In --once / range modes, retries are bounded (finite even if configured unlimited) so the
 * run ends; an exhausted event fails its page (commit ok=false) instead of dead-lettering. */
void sf_pipeline_set_bounded(sf_pipeline *p, bool bounded);
/* Takes ownership of events[0..n) (the array itself too). n may be 0 (a pure checkpoint step).
 * Returns 0 or -ENOMEM (then nothing was taken). */
int sf_pipeline_submit(sf_pipeline *p, sf_event *events, size_t n, void *token);
/* True while more pages may be submitted without exceeding the configured bounds. */
bool sf_pipeline_can_accept(const sf_pipeline *p);
size_t sf_pipeline_inflight(const sf_pipeline *p);
/* cb is called every time pages complete and can_accept is true (it stays registered). */
void sf_pipeline_on_space(sf_pipeline *p, void (*cb)(void *ud), void *ud);
/* No more pages are coming soon (shutdown, end of --once): sinks that settle late are asked to
 * settle what they wrote as soon as their queue is empty. */
void sf_pipeline_flush(sf_pipeline *p);
/* SIGHUP: every sink that writes files reopens them, and so does the dead-letter file. */
void sf_pipeline_reopen(sf_pipeline *p);
void sf_pipeline_stats_get(const sf_pipeline *p, sf_pipeline_stats *st);
size_t sf_pipeline_nsinks(const sf_pipeline *p);
void sf_pipeline_sink_stats(const sf_pipeline *p, size_t i, sf_sink_stats *st);
/* Fails every pending page (commit ok=false, in order), closes every sink, then calls closed. */
void sf_pipeline_close(sf_pipeline *p, void (*closed)(void *ud), void *ud);
void sf_pipeline_free(sf_pipeline *p);

#endif
