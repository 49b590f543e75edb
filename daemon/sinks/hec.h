/* hec: the Splunk HEC protocol for the splunk_hec sink (sink_webhook.c): the classification of
 * HEC answers by Splunk's codes (sf_hec_classify) and indexer
 * acknowledgement (sink_webhook.c builds and sends the event requests; this file tracks what
 * they delivered until Splunk says it is indexed). See docs/sinks-http.md, "splunk_hec".
 *
 * With indexer acknowledgement on a token, every request carries a channel
 * (X-Splunk-Request-Channel, a GUID) and a 200 answer carries an ackId; the client asks
 * POST /services/collector/ack {"acks":[ids]} and Splunk answers {"acks":{"id":true|false}}:
 * true once the request's events are indexed. Sources: Splunk docs, "About HTTP Event Collector
 * Indexer Acknowledgment"
 * (https://docs.splunk.com/Documentation/Splunk/latest/Data/AboutHECIDXAck), and Splunk's own
 * client splunk/kafka-connect-splunk (src/main/java/com/splunk/hecclient/HecAckPoller.java:
 * poll every 10 s, re-send a batch not acknowledged within splunk.hec.event.timeout, 300 s).
 *
 * The FIFO: one entry per event request, in the order the sink reported its records OK (the
 * deferred-settlement order of sink.h). An entry is reserved when its request is sent (so
 * answers arriving out of order keep the order), then holds the records the answer accepted,
 * their ackId and a copy of their request body (for a re-send). Entries settle (sf_sink_settled)
 * from the head only, once acknowledged: acks that arrive out of order settle in order. */
#ifndef SF_SINKS_HEC_H
#define SF_SINKS_HEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "net/http.h"
#include "sinks/http_sink.h"
#include "sinks/sink.h"

enum {
    SF_HEC_PENDING = 0, /* request in flight: its answer is not known yet */
    SF_HEC_WAITING,     /* accepted with an ackId: waiting for Splunk to acknowledge it */
    SF_HEC_RESEND,      /* not acknowledged in time (or its re-send failed): to be re-sent */
    SF_HEC_RESENDING,   /* re-send in flight */
    SF_HEC_ACKED,       /* indexed (or accepted without an ackId): settles from the head */
};

typedef struct sf_hec_ent {
    struct sf_hec_ent *next, *prev;
    int state;
    uint64_t n;       /* records it covers (reported OK) */
    long long ack_id; /* -1: none */
    uint64_t t_ms;    /* when it got its ackId (or was last re-sent) */
    unsigned resends; /* times re-sent */
    sf_buf body;      /* the records' request body, uncompressed (for a re-send) */
} sf_hec_ent;

typedef struct sf_hec_fifo {
    sf_hec_ent *head, *tail;
    size_t count;
    size_t bytes; /* sum of the bodies kept */
} sf_hec_fifo;

/* Appends a PENDING entry (NULL: out of memory). */
sf_hec_ent *sf_hec_fifo_push(sf_hec_fifo *f);
/* The answer to e's request: nok records accepted (0: e is removed and freed), with ackId
 * ack_id (-1: none, e is ACKED at once) at time now; body (taken: left empty) is their request
 * body. */
void sf_hec_fifo_answered(sf_hec_fifo *f, sf_hec_ent *e, uint64_t nok, long long ack_id,
                          uint64_t now, sf_buf *body);
/* Splunk acknowledged ack_id: the WAITING entry with it becomes ACKED. True if one did. */
bool sf_hec_fifo_ack(sf_hec_fifo *f, long long ack_id);
/* Removes the ACKED entries at the head; returns the records they cover. */
uint64_t sf_hec_fifo_settle(sf_hec_fifo *f);
/* Marks WAITING entries acknowledged no later than now - timeout_ms as RESEND; returns how
 * many. */
size_t sf_hec_fifo_expire(sf_hec_fifo *f, uint64_t now, uint64_t timeout_ms);
void sf_hec_fifo_free(sf_hec_fifo *f);

/* Parses an /ack answer {"acks":{"<id>":true|false,...}} and marks the true ones; returns the
 * number of entries acknowledged, or -1 if the body is not such an answer. */
int sf_hec_parse_acks(sf_hec_fifo *f, const char *body, size_t len);
/* The /services/collector/ack URL for an event URL: the part before /services/collector, or
 * the URL's scheme://host:port, + /services/collector/ack. NULL on out of memory. */
char *sf_hec_ack_url(const char *event_url);

/* The acknowledgement tracker of one splunk_hec sink with ack: true. */
typedef struct sf_hec_acker sf_hec_acker;

typedef struct sf_hec_acker_opts {
    sf_sink *s;
    const sf_http_sink_cfg *http;
    const char *event_url;       /* requests' URL (re-sends) */
    const sf_http_headers *hdrs; /* static headers (auth, channel, content type, extra) */
    bool gzip;
    int64_t poll_ms, timeout_ms;
    uint64_t window_bytes;
    void (*room)(void *ud); /* the window has room again (a waiting batch may go on) */
    void *ud;
} sf_hec_acker_opts;

sf_hec_acker *sf_hec_acker_new(const sf_hec_acker_opts *o);
/* Room for another request: the records kept are under window_bytes. */
bool sf_hec_acker_has_room(const sf_hec_acker *a);
/* An event request is being sent: reserves its place (NULL: out of memory). */
sf_hec_ent *sf_hec_acker_sent(sf_hec_acker *a);
/* Its answer: nok records (a prefix) accepted, ack_id (-1: none); body: the request body of
 * those records (taken). Settles what it can. */
void sf_hec_acker_answered(sf_hec_acker *a, sf_hec_ent *e, uint64_t nok, long long ack_id,
                           sf_buf *body);
/* flush(): poll at once. */
void sf_hec_acker_flush(sf_hec_acker *a);
/* Stops polling and re-sending; closed(ud) once nothing of it is in flight. */
void sf_hec_acker_close(sf_hec_acker *a, void (*closed)(void *ud), void *ud);
void sf_hec_acker_free(sf_hec_acker *a);
uint64_t sf_hec_acker_resent(const sf_hec_acker *a); /* requests re-sent in total */

/* What a Splunk HEC answer carried. */
typedef struct sf_hec_answer {
    int code;         /* "code", -1 if none */
    long long ack_id; /* "ackId" (indexer acknowledgement), -1 if none */
    long invalid_at;  /* "invalid-event-number", -1 if none */
} sf_hec_answer;

/* sf_webhook_classify for Splunk HEC, per Splunk's list of codes (see the table in
 * hec.c). ack: the sink uses indexer acknowledgement, so records count as accepted
 * only with an ackId (an accepted prefix of an error answer without one is retried). ans (may be
 * NULL) receives what the answer carried. Accepted records are always a prefix. */
size_t sf_hec_classify(long http_status, int transport_error, const char *body, size_t len,
                       size_t n, sf_deliv_status *st, char *reason, size_t reasonlen, bool ack,
                       sf_hec_answer *ans);

#endif
