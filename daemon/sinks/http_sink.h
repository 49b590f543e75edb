/* http_sink: what the HTTP sinks (webhook/splunk_hec in sink_webhook.c, kafka_rest in
 * sink_kafka_rest.c) share: the cfg struct and option entries for url/auth/tls/batch/timeouts
 * (tls is the daemon-wide TLS table of net/tls.h),
 * the header list (with authentication, secrets registered with the log redactor), the request
 * setup, the response bookkeeping and the submit/pump/finish/close lifecycle of one batch.
 * Each sink keeps its own body building and response classification. */
#ifndef SF_HTTP_SINK_H
#define SF_HTTP_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "net/http.h"
#include "net/tls.h"
#include "sinks/sink.h"
#include "core/util.h"

/* auth.type; a sink's enum_values list a prefix of "none", "basic", "bearer", "hmac" */
enum { SF_HTTP_AUTH_NONE = 0, SF_HTTP_AUTH_BASIC, SF_HTTP_AUTH_BEARER, SF_HTTP_AUTH_HMAC };

typedef struct sf_http_auth_cfg {
    int type;
    char *username, *password, *token;
    char *secret, *sig_header, *ts_header; /* hmac */
} sf_http_auth_cfg;

/* The part of an HTTP sink's cfg the option entries below fill. It must be the first member
 * of the sink's cfg struct (option offsets are taken from it). */
typedef struct sf_http_sink_cfg {
    char *url;
    sf_http_auth_cfg auth;
    sf_tls_cfg tls; /* the shared TLS table (net/tls.h) */
    int64_t max_events;
    uint64_t max_bytes;
    int64_t timeout_ms, connect_timeout_ms;
    uint64_t max_response;
} sf_http_sink_cfg;

#define SF_HTTP_OFF(f) offsetof(sf_http_sink_cfg, f)

/* Option entries (the descriptions, which differ per sink, are parameters). */
#define SF_HTTP_OPT_URL(d)                                                                         \
    {                                                                                              \
        .name = "url", .type = SF_OPT_STR, .flags = SF_OPT_REQUIRED, .desc = d,                    \
        .offset = SF_HTTP_OFF(url)                                                                 \
    }
#define SF_HTTP_OPTS_AUTH(values, type_d, password_d, token_d)                                     \
    {.name = "type",                                                                               \
     .type = SF_OPT_ENUM,                                                                          \
     .def = "none",                                                                                \
     .enum_values = values,                                                                        \
     .desc = type_d,                                                                               \
     .offset = SF_HTTP_OFF(auth.type)},                                                            \
        {.name = "username",                                                                       \
         .type = SF_OPT_STR,                                                                       \
         .desc = "basic: user name",                                                               \
         .offset = SF_HTTP_OFF(auth.username)},                                                    \
        {.name = "password",                                                                       \
         .type = SF_OPT_STR,                                                                       \
         .flags = SF_OPT_SECRET,                                                                   \
         .desc = password_d,                                                                       \
         .offset = SF_HTTP_OFF(auth.password)},                                                    \
    {                                                                                              \
        .name = "token", .type = SF_OPT_STR, .flags = SF_OPT_SECRET, .desc = token_d,              \
        .offset = SF_HTTP_OFF(auth.token)                                                          \
    }
/* The "tls" section: the shared TLS table (net/tls.h), checked by sf_http_sink_validate_tls. */
#define SF_HTTP_OPT_TLS                                                                            \
    {                                                                                              \
        .name = "tls", .type = SF_OPT_SECTION, .sub = sf_tls_options, .offset = SF_HTTP_OFF(tls),  \
        .desc = "TLS settings (the shared TLS table)"                                              \
    }
#define SF_HTTP_OPTS_BATCH(events_d, bytes_d)                                                      \
    {.name = "max_events",                                                                         \
     .type = SF_OPT_INT,                                                                           \
     .def = "500",                                                                                 \
     .min = 1,                                                                                     \
     .max = 100000,                                                                                \
     .desc = events_d,                                                                             \
     .offset = SF_HTTP_OFF(max_events)},                                                           \
    {                                                                                              \
        .name = "max_bytes", .type = SF_OPT_SIZE, .def = "1MiB", .min = 1024,                      \
        .max = INT64_C(1) << 30, .desc = bytes_d, .offset = SF_HTTP_OFF(max_bytes)                 \
    }
#define SF_HTTP_OPTS_TIMEOUTS(timeout_d)                                                           \
    {.name = "timeout",                                                                            \
     .type = SF_OPT_DURATION,                                                                      \
     .def = "10s",                                                                                 \
     .min = 100,                                                                                   \
     .max = 3600000,                                                                               \
     .desc = timeout_d,                                                                            \
     .offset = SF_HTTP_OFF(timeout_ms)},                                                           \
    {                                                                                              \
        .name = "connect_timeout", .type = SF_OPT_DURATION, .def = "5s", .min = 100,               \
        .max = 3600000, .desc = "Connection timeout", .offset = SF_HTTP_OFF(connect_timeout_ms)    \
    }
#define SF_HTTP_OPT_MAX_RESPONSE(def_, d)                                                          \
    {                                                                                              \
        .name = "max_response", .type = SF_OPT_SIZE, .def = def_, .min = 1024,                     \
        .max = INT64_C(1) << 30, .desc = d, .offset = SF_HTTP_OFF(max_response)                    \
    }

/* Validation shared by the HTTP sinks (errors at the key's line/col, else the sink's). */
void sf_http_sink_validate_url(const sf_http_sink_cfg *c, const sf_cfg_node *node,
                               sf_cfg_errors *errs);
/* check_env of the HTTP sinks (cfg: a struct whose first member is the sf_http_sink_cfg): the
 * TLS files of an https:// url load. */
void sf_http_sink_check_env(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs);
/* The shared TLS checks (sf_tls_validate) of the sink's "tls" section. */
/* Warnings (accepted, but risky): credentials over plain http://; https without verification. */
void sf_http_sink_warn_transport(const sf_http_sink_cfg *c, const sf_cfg_node *node,
                                 bool sends_credentials, sf_cfg_errors *errs);
void sf_http_sink_validate_tls(const sf_http_sink_cfg *c, const sf_cfg_node *node,
                               sf_cfg_errors *errs);
/* none_hint is appended to "auth: credentials given but auth.type is none". */
void sf_http_sink_validate_auth(const sf_http_auth_cfg *a, const sf_cfg_node *node,
                                sf_cfg_errors *errs, const char *none_hint);

/* Records that look like JSON may be embedded as JSON unless the format is cef or leef. */
bool sf_http_sink_json_records(const sf_sink *s);

/* A list of static request headers ("Name: value"); they may hold secrets. */
typedef struct sf_http_headers {
    char **v;
    size_t n;
} sf_http_headers;

int sf_http_headers_add(sf_http_headers *h, const char *fmt, ...) SF_PRINTF(2, 3);
/* Adds the Authorization header of basic or bearer auth (nothing for none/hmac); the basic
 * credentials' base64 is registered with sf_log_add_secret. 0 or -ENOMEM. */
int sf_http_headers_add_auth(sf_http_headers *h, const sf_http_auth_cfg *a);
/* Wipes and frees the headers. */
void sf_http_headers_free(sf_http_headers *h);

/* Fills req with the shared settings of c (timeouts, response limit, TLS, user agent). */
void sf_http_sink_request(sf_http_request *req, const sf_http_sink_cfg *c);

/* One batch being delivered by up to max_inflight requests at a time. */
typedef struct sf_http_batch sf_http_batch;
struct sf_http_batch {
    sf_sink *s;
    size_t max_inflight;
    /* Starts one request for the records from 'next' on and advances 'next' past them.
     * 0: sent; < 0: not sent (the records stay RETRY); > 0: cannot send now. */
    int (*send)(sf_http_batch *hb);
    sf_sink_batch *b;
    size_t next; /* first record not yet sent */
    size_t inflight;
    bool closing;
    void (*closed)(sf_sink *);
};

/* Fills body with records from 'first' on: add(ud, body, i, first_in_body) per record, at most
 * max_events, and stops before a record (not the first) that would make body.len + reserve
 * exceed max_bytes. *count: records in body. */
int sf_http_batch_fill(const sf_http_batch *hb, size_t first, const sf_http_sink_cfg *c,
                       size_t reserve, sf_buf *body,
                       int (*add)(void *ud, sf_buf *out, size_t i, bool first), void *ud,
                       size_t *count);
/* The 'next' after a request for records first..first+*count (0: the record at 'first' is
 * retried, *count becomes 1). */
void sf_http_batch_advance(sf_http_batch *hb, size_t first, size_t *count);

/* After the sink classified an answer for records first..first+count (bad of them not
 * accepted): appends the transport error to reason; when bad, sets the sink's error, takes the
 * answer's Retry-After into the batch (any status, or only 408/429/503) and gives rejected
 * records the reason. Also counts the request as answered. */
void sf_http_batch_answered(sf_http_batch *hb, const sf_http_response *resp, size_t first,
                            size_t count, size_t bad, bool retry_after_any_status, char *reason,
                            size_t reasonlen);

/* Starts requests while there are records to send and fewer than max_inflight in flight; then
 * completes the batch (and a pending close) once everything has answered. */
void sf_http_batch_pump(sf_http_batch *hb);

/* sf_sink_ops.submit and .close of an HTTP sink whose state starts with an sf_http_batch. */
int sf_http_sink_submit(sf_sink *s, sf_sink_batch *b);
void sf_http_sink_close(sf_sink *s, void (*closed)(sf_sink *s));

/* Copies at most outlen-1 bytes of a response body as one printable-ASCII line. */
void sf_http_sanitize(const char *body, size_t len, char *out, size_t outlen);

/* The classification by HTTP status alone (peer names the receiver in reason; code >= 0 and
 * text: a HEC code the caller does not know). */
size_t sf_http_classify_status(const char *peer, long http_status, int code, const char *text,
                               const char *snippet, size_t n, sf_deliv_status *st, char *reason,
                               size_t reasonlen);

/* gzip (RFC 1952) of in appended to out. 0, -ENOMEM or -EIO. */
int sf_http_gzip(const sf_buf *in, sf_buf *out);

#endif
