/* http: asynchronous HTTP client, libcurl multi driven by the libuv loop (the pattern of curl's
 * docs/examples/multi-uv.c, with its pitfalls handled: per-socket context via
 * curl_multi_assign, uv_poll handles closed asynchronously, timer callback never re-entering
 * curl from inside curl callbacks, completion processed after every socket action).
 * Connections are reused (keep-alive) across requests to the same host. */
#ifndef SF_HTTP_H
#define SF_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "core/util.h"
#include "net/tls.h"

typedef struct sf_http sf_http;
typedef struct sf_http_xfer sf_http_xfer;

typedef struct sf_http_request {
    const char *method; /* "GET" (default if NULL), "POST", ... */
    const char *url;
    const char *const *headers; /* "Name: value" lines; may hold secrets: never logged */
    size_t nheaders;
    const char *body; /* copied by sf_http_send */
    size_t body_len;
    int64_t timeout_ms;         /* whole request; 0 = none */
    int64_t connect_timeout_ms; /* 0 = curl default */
    int64_t low_speed_bytes;    /* abort if slower than this many bytes/s ... */
    int64_t low_speed_time_s;   /* ... for this many seconds (0 = off) */
    size_t max_response;        /* body bytes; exceeded -> SF_HTTP_ETOOBIG; 0 = unlimited */
    size_t max_header_bytes;    /* total response header bytes; 0 = 64 KiB */
    long max_redirects;         /* 0 = do not follow */
    const sf_tls_cfg *tls;      /* https: applied with sf_tls_curl_setup; NULL: the defaults
                                 * (verification on, system CAs, TLS >= 1.2) */
    const char *proxy;          /* NULL: environment (curl default) */
    const char *user_agent;
    /* Admission of the answer's body (NULL: none): asked once per answer, with the send's
     * ud, before its first byte is kept, with the Content-Length (unknown: the first chunk's
     * size); once admitted the body is kept whatever it grows to. False pauses the transfer
     * until sf_http_resume (then it is asked again): curl keeps the little it read, and TCP
     * holds the server back (such requests use HTTP/1.1: a paused HTTP/2 stream keeps
     * receiving). Called from inside curl: it may only account, never call into sf_http. */
    bool (*admit)(void *ud, size_t bytes);
} sf_http_request;

enum {
    SF_HTTP_OK = 0,
    SF_HTTP_ETIMEOUT = -1001, /* timeout or low-speed abort */
    SF_HTTP_ECONNECT = -1002, /* DNS, refused, reset */
    SF_HTTP_ETLS = -1003,     /* handshake/verification */
    SF_HTTP_ETOOBIG = -1004,  /* response body or headers exceeded the limit */
    SF_HTTP_ECANCELED = -1005,
    SF_HTTP_EOTHER = -1006,
    SF_HTTP_ETLSVERIFY = -1007, /* the peer's certificate cannot be verified (unknown CA, wrong
                                 * name, expired) or ours is unusable: a configuration problem,
                                 * retrying will not heal it */
    SF_HTTP_EDROPPED = -1008,   /* the transfer ended while its answer was paused (admit said
                                 * no): libcurl before 8.8 finishes it and drops the paused data
                                 * (curl/curl#13337, fixed by #13340): ask again */
};

typedef struct sf_http_response {
    long status;      /* HTTP status, 0 when error != 0 */
    int error;        /* SF_HTTP_* */
    char errmsg[256]; /* human text for error (curl's), never contains header values */
    /* The answer. When error != 0 (other than ETOOBIG / ECANCELED): what arrived before the
     * transfer failed, possibly nothing, and partial_status is that answer's HTTP status (0:
     * none arrived), e.g. a streamed answer cut part-way (kafka_rest v3 keeps the per-record
     * reports it got). */
    sf_buf body;
    long partial_status;
    int64_t retry_after_ms; /* Retry-After (delta-seconds or HTTP-date); -1 if absent */
    char content_type[128];
    long ratelimit_limit; /* X-RateLimit-Limit, -1 if absent */
    double total_seconds;
    void *ud;
} sf_http_response;

/* Called exactly once per successful sf_http_send, on the loop thread. resp (and its body) is
 * valid only during the call; steal resp->body with sf_buf_steal if needed. */
typedef void (*sf_http_cb)(sf_http_response *resp, void *ud);

sf_http *sf_http_new(uv_loop_t *loop); /* NULL on failure */
/* Starts a request. Returns 0 (cb will be called) or negative (cb will not be called). */
int sf_http_send(sf_http *h, const sf_http_request *req, sf_http_cb cb, void *ud,
                 sf_http_xfer **out);
/* Cancels an in-flight transfer: its callback runs (soon, from the loop) with
 * SF_HTTP_ECANCELED. Safe to call at most once per xfer, before its callback ran. */
void sf_http_cancel(sf_http_xfer *x);
/* Whether the transfer is paused (its admit said no), and what it asked admit for then. */
bool sf_http_paused(const sf_http_xfer *x, size_t *want);
/* Lets a paused transfer go on: its admit is asked again for what it wanted. Never from inside
 * an sf_http callback's admit; from anywhere else on the loop (a completion callback too). */
void sf_http_resume(sf_http_xfer *x);
/* Cancels every transfer (callbacks run with ECANCELED), closes all handles; 'closed' is
 * called when nothing of h remains open, after which h is freed. */
void sf_http_close(sf_http *h, void (*closed)(void *arg), void *arg);
size_t sf_http_active(const sf_http *h);

/* Short stable names for metrics/logs: "timeout", "connect", "tls", "too_big", ... */
const char *sf_http_strerror(int err);

#endif
