/* source: the poller. Tails the Secure Events API window by window and page by page and emits
 * each page, with its progress (what committing it changes in the checkpoint: sf_progress),
 * through sf_source_out; app/main.c wires that to the pipeline, whose commits go to the
 * committer (pipeline/committer.h), the checkpoint's only writer. The source starts from the
 * loaded checkpoint (where to resume, which ids were delivered) and never hears of commits.
 *
 * Windows are [watermark - overlap, now], at most 14 days (older backlogs are caught up in
 * chunks, oldest first) and shrunk while page.total exceeds max_window_events. Pages
 * come newest first; the source follows the endpoint's "older" cursor (legacy: page.prev,
 * events: page.next), clips events to the window, drops ids already delivered, and stops a
 * window on any end-of-data signal of either endpoint (short/empty page, absent or repeated
 * cursor, events older than the window). See docs/design.md. */
#ifndef SF_SOURCE_H
#define SF_SOURCE_H

#include <uv.h>
#include "core/checkpoint.h"
#include "config/config.h"
#include "core/defer.h"
#include "core/event.h"
#include "net/http.h"

typedef enum {
    SF_MODE_FOLLOW = 0, /* tail forever */
    SF_MODE_ONCE,       /* catch up to the start time, then finish */
    SF_MODE_RANGE,      /* export [from, to] without touching the checkpoint */
} sf_source_mode;

typedef struct sf_source_opts {
    sf_source_mode mode;
    int64_t range_from_ns, range_to_ns;
    /* keep the events' parsed trees (a sink's filter reads their fields before encoding);
     * false: pages are parsed without them (raw output needs only the bytes) */
    bool keep_trees;
} sf_source_opts;

typedef struct sf_source sf_source;

/* Where pages go (app/main.c: the pipeline) and how the end of fetching is reported. */
typedef struct sf_source_out {
    void *ud;
    /* Takes events[0..n) (the array too) and progress; 0, or -ENOMEM (nothing was taken). */
    int (*emit)(void *ud, sf_event *events, size_t n, sf_progress *progress);
    /* False: wait for sf_source_on_space before fetching the next page (backpressure). */
    bool (*can_accept)(void *ud);
    /* Optional: memory the pages emitted and not yet sent hold. With pipeline.max_inflight_bytes
     * it bounds how many requests may be in flight (each counted at the size of recent pages). */
    size_t (*held_bytes)(void *ud);
    /* ONCE/RANGE: nothing more will be fetched (every window read, or the API failed for good);
     * status 0, or a process exit code. Called once, on a later loop turn. The pages emitted
     * may still be in flight. */
    void (*done)(void *ud, int status);
} sf_source_out;

typedef struct sf_source_stats {
    uint64_t pages, events, duplicates, clipped, windows, window_splits;
    uint64_t window_cuts;   /* backlog windows fetched in concurrent slices */
    uint64_t slices_stolen; /* an idle lane took half of what a busy one had left */
    unsigned concurrency;   /* requests allowed in flight now (max_concurrency, cut by 429s) */
    unsigned inflight;      /* requests in flight now */
    size_t lanes;           /* cursors being walked now (slices of a cut window, or 1) */
    uint64_t requests, errors_transport, errors_malformed, status_4xx, status_5xx, status_429;
    uint64_t status_401_403;
    uint64_t errors_tls_verify; /* certificate verification failed (not in errors_transport) */
    uint64_t poll_latency_buckets[12]; /* cumulative counts for sf_source_latency_bounds */
    double poll_latency_sum;
    int64_t last_success_ms; /* monotonic ms of the last 200 page; 0 none */
    int64_t window_from_ns, window_to_ns, window_low_ns; /* in progress */
    long last_status;
    char last_error[256];
} sf_source_stats;

extern const double sf_source_latency_bounds[12];

/* start: the loaded checkpoint, read here (copied) and not kept: where to resume and the ids
 * already delivered. defer: the loop's notification queue (for out->done). */
int sf_source_new(uv_loop_t *loop, sf_defer *defer, sf_http *http, const sf_config *cfg,
                  const sf_checkpoint *start, const sf_source_opts *opts, const sf_source_out *out,
                  sf_source **ret);
int sf_source_start(sf_source *s);
/* The output can take pages again (after can_accept said no). */
void sf_source_on_space(sf_source *s);
/* Stops fetching (cancels the request in flight, stops timers). Pages already emitted keep
 * going through the pipeline. */
void sf_source_stop(sf_source *s);
void sf_source_stats_get(const sf_source *s, sf_source_stats *st);
void sf_source_free(sf_source *s);

/* --ping: checks URL and token; calls cb with 0 and a message, or an exit code and the reason. */
typedef void (*sf_ping_cb)(void *ud, int rc, const char *message);
int sf_source_ping(sf_http *http, const sf_config *cfg, sf_ping_cb cb, void *ud);

#endif
