/* source: the poller. Tails the Secure Events API window by window and page by page, hands each
 * page to the pipeline, and persists the checkpoint as the pipeline commits pages in order.
 *
 * Windows are [watermark - overlap, now], at most 14 days (older backlogs are caught up in
 * chunks, oldest first) and split in halves while page.total exceeds max_window_events. Pages
 * come newest first; the source follows the endpoint's "older" cursor (legacy: page.prev,
 * events: page.next), clips events to the window, drops ids already delivered, and stops a
 * window on any end-of-data signal of either endpoint (short/empty page, absent or repeated
 * cursor, events older than the window). See docs/design.md. */
#ifndef SF_SOURCE_H
#define SF_SOURCE_H

#include <uv.h>
#include "core/checkpoint.h"
#include "config/config.h"
#include "net/http.h"
#include "pipeline/pipeline.h"

typedef enum {
    SF_MODE_FOLLOW = 0, /* tail forever */
    SF_MODE_ONCE,       /* catch up to the start time, then finish */
    SF_MODE_RANGE,      /* export [from, to] without touching the checkpoint */
} sf_source_mode;

typedef struct sf_source_opts {
    sf_source_mode mode;
    int64_t range_from_ns, range_to_ns;
} sf_source_opts;

typedef struct sf_source sf_source;

/* status 0: finished successfully (ONCE/RANGE), otherwise a process exit code. */
typedef void (*sf_source_done_cb)(void *ud, int status);

typedef struct sf_source_stats {
    uint64_t pages, events, duplicates, clipped, windows, window_splits;
    uint64_t requests, errors_transport, errors_malformed, status_4xx, status_5xx, status_429;
    uint64_t status_401_403, checkpoint_writes, checkpoint_errors;
    uint64_t poll_latency_buckets[12]; /* cumulative counts for sf_source_latency_bounds */
    double poll_latency_sum;
    int64_t watermark_ns;    /* committed */
    int64_t last_success_ms; /* monotonic ms of the last 200 page; 0 none */
    int64_t window_from_ns, window_to_ns, window_low_ns; /* in progress */
    long last_status;
    char last_error[256];
} sf_source_stats;

extern const double sf_source_latency_bounds[12];

/* cp is taken over (moved). */
int sf_source_new(uv_loop_t *loop, sf_http *http, const sf_config *cfg, sf_pipeline *pipe,
                  sf_checkpoint *cp, const sf_source_opts *opts, sf_source_done_cb done, void *ud,
                  sf_source **out);
int sf_source_start(sf_source *s);
/* Stops fetching (cancels the request in flight, stops timers). Pages already submitted keep
 * going through the pipeline; their commits still update and persist the checkpoint. */
void sf_source_stop(sf_source *s);
/* Waits for any checkpoint write in flight and writes the latest committed state if it is not
 * yet on disk, then calls cb(ud, rc) with 0 or a negative errno. */
void sf_source_flush(sf_source *s, void (*cb)(void *ud, int rc), void *ud);
void sf_source_stats_get(const sf_source *s, sf_source_stats *st);
void sf_source_free(sf_source *s);

/* Pipeline commit callback: pass it (with the source as ud) to sf_pipeline_new. */
void sf_source_on_commit(void *ud, void *token, bool ok);

/* --ping: checks URL and token; calls cb with 0 and a message, or an exit code and the reason. */
typedef void (*sf_ping_cb)(void *ud, int rc, const char *message);
int sf_source_ping(sf_http *http, const sf_config *cfg, sf_ping_cb cb, void *ud);

#endif
