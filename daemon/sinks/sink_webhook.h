/* sink_webhook: the "webhook" and "splunk_hec" sink types (HTTP POST of batches of records).
 * The body building and response classification are exposed for unit tests. */
#ifndef SF_SINK_WEBHOOK_H
#define SF_SINK_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "sinks/sink.h"
#include "core/json.h"
#include "core/util.h"

enum { SF_WH_BODY_JSON = 0, SF_WH_BODY_NDJSON = 1, SF_WH_BODY_HEC = 2 };

typedef struct sf_hec_opts {
    const char *host;       /* NULL: the event's host.hostName label, else omitted */
    const char *source;     /* NULL: omitted */
    const char *sourcetype; /* NULL: omitted */
    const char *index;      /* NULL: omitted */
} sf_hec_opts;

/* Appends record i of a body (mode SF_WH_BODY_*) to out; 'first' tells whether it is the first
 * record of the request (separators). json_records: records that look like JSON ('{' or '[')
 * are embedded as JSON, else (and always when false) as JSON strings. ev may be NULL. */
int sf_webhook_body_add(sf_buf *out, int mode, const sf_buf *rec, const sf_event *ev, bool first,
                        bool json_records, const sf_hec_opts *hec);
/* Closes a body started with sf_webhook_body_add (the ']' of a JSON array, or nothing). */
int sf_webhook_body_end(sf_buf *out, int mode, size_t nrecords);
/* Whole body for n records. */
int sf_webhook_body(sf_buf *out, int mode, const sf_buf *records, const sf_event *const *events,
                    size_t n, bool json_records, const sf_hec_opts *hec);

/* Classifies one request's outcome for its n records: statuses into st[0..n-1], and a reason
 * (for rejects) or an error summary (for retries) into reason. For HEC (hec=true), the JSON
 * answer {"text","code","invalid-event-number"?} is interpreted per Splunk's documentation.
 * Returns the number of records not accepted. */
size_t sf_webhook_classify(bool hec, long http_status, int transport_error, const char *body,
                           size_t len, size_t n, sf_deliv_status *st, char *reason,
                           size_t reasonlen);

#endif
