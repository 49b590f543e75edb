/* demo: embedded simulator of the Sysdig Secure Events API on loopback (for --demo and tests).
 *
 * Serves, with any non-empty "Authorization: Bearer <token>" (401 otherwise):
 *   GET /api/v1/secureEvents/status   200
 *   GET /api/v1/secureEvents          legacy: limit 1..999 (default 25), page.prev = cursor to
 *                                     older events, present even after the last page;
 *                                     timestamps are RFC 3339 strings with 9 fraction digits
 *   GET /secure/events/v1/events      limit 1..200 (default 25), page.next = cursor to older
 *                                     events, absent on the last page; timestamps int64 ns
 * Pages are newest first. Without cursor, from and to (int64 ns) are required, from <= to and
 * to - from <= 14 days; with cursor, from/to are rejected (400). Cursors are opaque.
 * Events are built from the templates embedded from daemon/assets with fresh 32-hex ids and
 * timestamps: a backlog at start, then one new event every interval. */
#ifndef SF_DEMO_H
#define SF_DEMO_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sf_demo sf_demo;

typedef struct sf_demo_opts {
    const char *listen;      /* NULL: "127.0.0.1:0" */
    unsigned backlog;        /* events at start (default 0: none) */
    int64_t backlog_span_ms; /* spread over [now - span, now]; 0: one hour */
    int64_t interval_ms;     /* a new event every interval; 0: no live events */
    unsigned max_events;     /* memory bound, oldest dropped; 0: 10000 */
} sf_demo_opts;

/* Returns 0 or a negative errno / libuv error. */
int sf_demo_start(uv_loop_t *loop, const sf_demo_opts *opts, sf_demo **out);
int sf_demo_port(const sf_demo *d);
/* Adds n events now (timestamps now, strictly increasing). Returns 0 or -ENOMEM. */
int sf_demo_add_events(sf_demo *d, unsigned n);
size_t sf_demo_event_count(const sf_demo *d);
/* Timestamp (ns) of the oldest / newest event kept; SF_TIME_UNSET (INT64_MIN) when empty. */
int64_t sf_demo_oldest_ns(const sf_demo *d);
int64_t sf_demo_newest_ns(const sf_demo *d);
/* Stops serving and generating; 'closed' runs once everything is closed and d freed. */
void sf_demo_close(sf_demo *d, void (*closed)(void *arg), void *arg);

#endif
