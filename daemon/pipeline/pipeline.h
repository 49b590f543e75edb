/* pipeline: fans each page of events out to every sink and reports, in submission order, when
 * every sink has settled every event of a page (delivered, or permanently rejected and
 * dead-lettered). Whoever wires it (app/main.c) hands those commits to the committer, which
 * moves the checkpoint; the pipeline itself knows nothing of checkpoints.
 *
 * Modules (docs/design.md has the map): ledger.c (pages, in-order commits), job.c (a page's
 * records for one sink, dead-letter writes), sinkq.c (per sink: one batch in flight, a bounded
 * queue, batching, retries of exactly the records a sink asked to retry with full-jitter
 * exponential backoff or the peer's Retry-After), settle.c (a sink with deferred settlement
 * holds a page's commit, and spool consumption, until it settled the records; such pages no
 * longer count toward max_inflight_pages but at most 256 of them wait), spooler.c (the disk
 * spool), this file (submit, encode, notify, close).
 *
 * Notifications: the commit callback, the space callback and the closed callback are always
 * called on a later loop turn (core/defer.h), never from inside a pipeline call or a sink's
 * call: sf_pipeline_submit never commits, even when every sink answers synchronously. On one
 * turn the pipeline delivers, in this order, the commits of every page that completed (in page
 * order), then the space callback, then (once) the closed callback. The callbacks may call the
 * pipeline's functions. */
#ifndef SF_PIPELINE_H
#define SF_PIPELINE_H

#include <stdbool.h>
#include <uv.h>
#include "config/config.h"
#include "core/defer.h"
#include "core/event.h"
#include "pipeline/sinkq.h"

typedef struct sf_pipeline sf_pipeline;

/* ok: every event was delivered or dead-lettered (false: some could not be settled, e.g. the
 * pipeline is shutting down or retries were exhausted in --once mode). Called in submission
 * order, on the loop thread, on a later turn than whatever completed the page. */
typedef void (*sf_pipeline_commit_cb)(void *ud, void *token, bool ok);

typedef struct sf_pipeline_stats {
    uint64_t delivered, retried, rejected, encode_errors;
    size_t queued_events;  /* events waiting or in flight, all sinks */
    bool dead_letter_full; /* the dead-letter file reached max_size: rejected events are held */
    uint64_t dead_letter_bytes;
} sf_pipeline_stats;

/* Per-sink progress (for a checkpoint that records what each sink confirmed):
 * - confirmed(ud, sink, token): sink number `sink` (config order) settled every event of the
 *   page for good (delivered, durably dead-lettered or spooled; not a bounded-mode give-up),
 *   while the page is not complete yet (a complete page's commit says it for every sink).
 *   Called on a later turn, in the notification, after the commits of that turn; per sink in
 *   page order.
 * - skip(ud, sink, ev): true if the sink confirmed this event in an earlier run: at submit it
 *   counts as settled for that sink without being sent (sinks' skipped counter). */
typedef struct sf_pipeline_sink_hooks {
    void (*confirmed)(void *ud, size_t sink, void *token);
    bool (*skip)(void *ud, size_t sink, const sf_event *ev);
    void *ud;
} sf_pipeline_sink_hooks;

/* defer: the loop's notification queue (must outlive the pipeline's use of the loop). */
int sf_pipeline_new(uv_loop_t *loop, sf_defer *defer, struct sf_http *http, const sf_config *cfg,
                    sf_pipeline_commit_cb cb, void *ud, sf_pipeline **out);
/* Before the first submit. */
void sf_pipeline_set_sink_hooks(sf_pipeline *p, const sf_pipeline_sink_hooks *hooks);
/* Opens every sink; on failure logs which and returns negative. */
int sf_pipeline_open(sf_pipeline *p);
/* In --once / range modes, retries are bounded (finite even if configured unlimited) so the
 * run ends; an exhausted event fails its page (commit ok=false) instead of dead-lettering. */
void sf_pipeline_set_bounded(sf_pipeline *p, bool bounded);
/* Takes ownership of events[0..n) (the array itself too). n may be 0 (a pure checkpoint step).
 * Returns 0 or -ENOMEM (then nothing was taken). The page's commit comes later, never from
 * inside this call. */
int sf_pipeline_submit(sf_pipeline *p, sf_event *events, size_t n, void *token);
/* True while more pages may be submitted without exceeding the configured bounds. */
bool sf_pipeline_can_accept(const sf_pipeline *p);
/* Pages submitted and not committed yet. */
size_t sf_pipeline_inflight(const sf_pipeline *p);
/* Memory the pages not yet sent by every sink hold (their events and records), for
 * pipeline.max_inflight_bytes. */
size_t sf_pipeline_held_bytes(const sf_pipeline *p);
/* cb is called (on a later turn) every time pages completed or stopped counting as in flight
 * and can_accept is true (it stays registered). */
void sf_pipeline_on_space(sf_pipeline *p, void (*cb)(void *ud), void *ud);
/* No more pages are coming soon (shutdown, end of --once): sinks that settle late are asked to
 * settle what they wrote as soon as their queue is empty. */
void sf_pipeline_flush(sf_pipeline *p);
/* SIGHUP: every sink that writes files reopens them, and so does the dead-letter file. */
void sf_pipeline_reopen(sf_pipeline *p);
void sf_pipeline_stats_get(const sf_pipeline *p, sf_pipeline_stats *st);
size_t sf_pipeline_nsinks(const sf_pipeline *p);
void sf_pipeline_sink_stats(const sf_pipeline *p, size_t i, sf_sink_stats *st);
/* Fails every page not complete yet (commit ok=false, in order, pages that completed before
 * still commit ok), closes every sink, then calls closed: all of it on later turns, commits
 * first. */
void sf_pipeline_close(sf_pipeline *p, void (*closed)(void *ud), void *ud);
/* After closed ran (or if the pipeline was never used on a loop turn). */
void sf_pipeline_free(sf_pipeline *p);

#endif
