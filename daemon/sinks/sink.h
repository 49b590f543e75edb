/* sink: where events go. Every sink type (sink_file.c, sink_stdout.c, sink_syslog.c,
 * sink_webhook.c, sink_kafka_rest.c, ...) is one sf_sink_ops vtable; the pipeline drives them.
 *
 * Contract:
 *  - submit() takes a batch of already-encoded records and returns at once (never blocks the
 *    loop). Exactly once, later or from inside submit, the sink sets b->status[i] for every
 *    record and calls sf_sink_batch_done(b). The pipeline only notes the answer there and
 *    handles it on a later loop turn (core/defer.h): sf_sink_batch_done and sf_sink_settled
 *    never call back into the sink (no next submit from inside them), so a sink may call them
 *    with its own state half-updated and carry on after they return.
 *  - SF_DELIV_OK means durably accepted by the peer (per the sink's durability policy): the
 *    checkpoint may move past it. SF_DELIV_RETRY: not accepted, try again later (the pipeline
 *    re-submits just those records after backoff; b->retry_after_ms is a server hint).
 *    SF_DELIV_REJECT: permanently refused (reason in b->reason[i]); goes to dead letters.
 *  - At most one batch is in flight per sink at a time (the pipeline guarantees it), so order
 *    is kept per sink (records a sink asks to retry come after those it accepted meanwhile). A
 *    batch holds one page's records, or several whole pages' (batch_max).
 *  - Deferred settlement (optional): a sink whose OK does not yet make a record safe (syslog
 *    over TCP/TLS: written, but a receiver that stops may never have read it) sets
 *    defer_settle in open() and later calls sf_sink_settled(s, n): the next n records it
 *    reported OK, in the order it reported them, are now safe. Until then the pipeline keeps
 *    them out of the checkpoint and does not consume them from the spool, so a crash re-sends
 *    them. flush() asks such a sink to settle what it wrote as soon as it can (no more batches
 *    are coming: shutdown, end of --once).
 *  - close() stops everything and calls 'closed' once all handles are closed. */
#ifndef SF_SINK_H
#define SF_SINK_H

#include <uv.h>
#include "config/cfg.h"
#include "core/event.h"
#include "formats/format.h"
#include "core/util.h"

/* Settings every sink has, whatever its type (table: sf_sink_common_options). */
typedef struct sf_sink_common_cfg {
    char *name;
    char *type;
    char *format;
    int64_t queue_max_events;
    int64_t retry_initial_ms, retry_max_ms, retry_max_attempts; /* 0 attempts = unlimited */
    char *spool_path;        /* NULL: no disk spool (memory only) */
    uint64_t spool_max_size; /* bytes */
    uint64_t spool_segment_size;
    const struct sf_cfg_node *filter_node; /* sinks[].filter as written (NULL: none) */
    struct sf_filter *filter;       /* compiled from filter_node when loaded (sinks/filter.h) */
    const struct sf_cfg_node *node; /* the sink's YAML map (for type/format-specific tables) */
} sf_sink_common_cfg;

extern const sf_cfg_option sf_sink_common_options[];

typedef enum { SF_DELIV_OK = 0, SF_DELIV_RETRY = 1, SF_DELIV_REJECT = 2 } sf_deliv_status;

/* Why a sink is failing, when retrying cannot heal it (a configuration problem, not an outage).
 * The pipeline fails bounded runs at once, and in follow mode retries slowly (retry.max) without
 * counting attempts, logging it once per episode (sinkq.h). */
typedef enum {
    SF_SINK_FAULT_NONE = 0,
    SF_SINK_FAULT_TLS_VERIFY = 1, /* the receiver's certificate cannot be verified */
    SF_SINK_FAULT_COUNT
} sf_sink_fault;

struct sf_sink;

typedef struct sf_sink_batch {
    struct sf_sink *sink;
    size_t n;
    const sf_event *const *events; /* n events (ids, timestamps, severity for headers) */
    const sf_buf *records;         /* n encoded records, one per event */
    sf_deliv_status *status;       /* n, set by the sink before done */
    char **reason;          /* n, optional malloc'd reason strings (sink sets, pipeline frees) */
    int64_t retry_after_ms; /* > 0: peer asked to wait this long */
    void *owner;            /* pipeline's */
    void (*done)(struct sf_sink_batch *b);
} sf_sink_batch;

static inline void sf_sink_batch_done(sf_sink_batch *b)
{
    b->done(b);
}

typedef struct sf_sink_ops {
    const char *type; /* value of "type:" */
    const char *desc;
    const sf_cfg_option *options; /* type-specific keys of a sink's map (name == NULL ends) */
    /* submit() reads the events' fields (sf_event_severity07, labels...): the pipeline keeps
     * their parsed trees until the page is done instead of dropping them once encoded */
    bool reads_events;
    size_t cfg_size;
    /* Cross-field checks after the table was applied; add errors to errs (line/col of node). */
    void (*validate)(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs);
    /* Optional: what open() will need from this machine (files it creates or loads), checked
     * at start and by --check-config (sf_config_check_env), so start-up does not fail on it. */
    void (*check_env)(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs);
    int (*open)(struct sf_sink *s);
    int (*submit)(struct sf_sink *s, sf_sink_batch *b);
    void (*reopen)(struct sf_sink *s); /* SIGHUP: reopen files / reconnect; optional */
    void (*flush)(struct sf_sink *s);  /* settle what was written soon; optional */
    void (*close)(struct sf_sink *s, void (*closed)(struct sf_sink *s));
    void (*destroy)(struct sf_sink *s); /* free state after close completed; optional */
} sf_sink_ops;

typedef struct sf_sink_cfg {
    sf_sink_common_cfg common;
    const sf_sink_ops *ops;
    void *type_cfg; /* ops->cfg_size bytes, filled by ops->options */
    const sf_format *format;
    void *format_cfg; /* format->cfg_size bytes or NULL */
} sf_sink_cfg;

typedef struct sf_sink {
    const sf_sink_cfg *cfg;
    const char *name; /* cfg->common.name */
    uv_loop_t *loop;
    struct sf_http *http; /* shared HTTP client (curl multi on this loop) for HTTP sinks */
    void *state;          /* the sink type's */
    bool healthy;         /* last delivery attempt succeeded */
    char last_error[256]; /* never contains secrets */
    /* set by the sink, with last_error, before it answers RETRY for a reason retrying cannot
     * heal; cleared by the sink at its next success */
    sf_sink_fault fault;
    bool defer_settle;       /* set by the sink in open(): OK records settle later */
    bool topic_missing;      /* kafka_rest, kafka: the last answer said the topic does not exist */
    uint64_t producer_queue; /* kafka: records in librdkafka's queues (rd_kafka_outq_len) */
    /* Batching hints, set by the sink in open(): the pipeline puts several queued pages into
     * one batch up to batch_max records (0: one page per batch), and holds a partial batch up
     * to batch_wait_ms after its first page was queued while more pages may come. */
    size_t batch_max;
    int64_t batch_wait_ms;
    void (*settled_cb)(struct sf_sink *s, uint64_t n); /* set by the pipeline */
} sf_sink;

/* The next n records this sink reported OK are safe (see defer_settle). */
static inline void sf_sink_settled(sf_sink *s, uint64_t n)
{
    if (n && s->settled_cb)
        s->settled_cb(s, n);
}

const sf_sink_ops *sf_sink_find(const char *type);
const sf_sink_ops *const *sf_sink_all(void); /* NULL-terminated */

void sf_sink_set_error(sf_sink *s, const char *fmt, ...) SF_PRINTF(2, 3);

#endif
