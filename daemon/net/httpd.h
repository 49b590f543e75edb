/* httpd: small embeddable HTTP/1.1 server on libuv, requests parsed by http-parser.
 * Keep-alive (and pipelining, answered in order), bounded header/body sizes, a connection cap,
 * a per-request deadline, 400 on malformed requests (connection then closed). Built to stay
 * answerable under a slow-loris: a request must arrive whole within idle_timeout_ms of the
 * connection being ready for it (trickled bytes do not extend it), and at the cap the
 * connection waiting longest without an answer is closed to make room; 503 only when every
 * connection has a request being answered.
 * Handlers answer synchronously or defer the answer (SF_HTTPD_DEFER + sf_httpd_respond). */
#ifndef SF_HTTPD_H
#define SF_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/util.h"

typedef struct sf_httpd sf_httpd;
typedef struct sf_httpd_req sf_httpd_req;

typedef struct sf_httpd_opts {
    size_t max_header_bytes; /* request line + headers; 0 = 16 KiB (beyond: 431, close) */
    size_t max_body;         /* 0 = 1 MiB (beyond: 413, close) */
    unsigned max_conns;      /* 0 = 64 (beyond: the oldest waiting one is closed, else 503) */
    int64_t idle_timeout_ms; /* 0 = 10 s: from accept or the last answer to a whole request */
} sf_httpd_opts;

/* Response filled by the handler. The server owns (and frees) body and headers afterwards. */
typedef struct sf_httpd_resp {
    int status;               /* 0 = 200 */
    const char *content_type; /* static string or NULL (no Content-Type) */
    sf_buf body;
    sf_buf headers; /* extra header lines, each "Name: value\r\n" */
} sf_httpd_resp;

#define SF_HTTPD_DEFER 1

/* Return 0: resp is sent now. Return SF_HTTPD_DEFER: the answer comes later through
 * sf_httpd_respond(req, ...) (exactly once; req stays valid until then, even if the client
 * went away; the connection does not read further requests meanwhile; sf_httpd_close completes
 * only after every deferred request was answered). Return negative: 500. */
typedef int (*sf_httpd_handler)(sf_httpd_req *req, sf_httpd_resp *resp, void *ud);

/* listen: "127.0.0.1:0", "[::1]:9464", "0.0.0.0:8080", ":8080" (all IPv4 interfaces).
 * Returns 0 or a negative errno / libuv error; *out is set on success only. */
int sf_httpd_start(uv_loop_t *loop, const char *listen, sf_httpd_handler h, void *ud,
                   sf_httpd **out);
int sf_httpd_start_opts(uv_loop_t *loop, const char *listen, const sf_httpd_opts *opts,
                        sf_httpd_handler h, void *ud, sf_httpd **out);
int sf_httpd_port(const sf_httpd *s); /* bound port (useful with port 0) */
/* The one parser of listen addresses (the configuration check and the server use it): host:port
 * with a host name or IPv4 address, [IPv6]:port, :port (all IPv4 interfaces), resolved with
 * getaddrinfo (AI_PASSIVE). Returns 0 or -EINVAL with err (optional) saying why. */
struct sockaddr_storage;
int sf_httpd_parse_listen(const char *listen, struct sockaddr_storage *ss, char *err,
                          size_t errlen);
/* Whether this machine lets this process listen on 'listen' (parsed as above): the address
 * is one of its own and the port may be bound (a port below 1024 needs the privilege). A port
 * that is in use now counts as usable (another process may hold it for a while: not a
 * configuration problem). Returns 0, or -errno with err (optional) saying why. */
int sf_httpd_check_listen(const char *listen, char *err, size_t errlen);
/* Stops listening, closes every connection; 'closed' runs when every handle is closed and the
 * server freed. */
void sf_httpd_close(sf_httpd *s, void (*closed)(void *arg), void *arg);
size_t sf_httpd_connections(const sf_httpd *s);
uint64_t sf_httpd_accepted(const sf_httpd *s); /* connections accepted so far */

/* Request accessors (valid during the handler, or until sf_httpd_respond when deferred). */
const char *sf_httpd_method(const sf_httpd_req *r); /* "GET", ... */
const char *sf_httpd_path(const sf_httpd_req *r);   /* raw (not percent-decoded), no query */
const char *sf_httpd_query(const sf_httpd_req *r);  /* raw, after '?', "" if none */
/* Header value by case-insensitive name (first occurrence), NULL if absent. */
const char *sf_httpd_header(const sf_httpd_req *r, const char *name);
const char *sf_httpd_body(const sf_httpd_req *r, size_t *len); /* NUL-terminated */
bool sf_httpd_client_gone(const sf_httpd_req *r);

/* Answers a deferred request; takes ownership of resp's buffers. */
void sf_httpd_respond(sf_httpd_req *r, sf_httpd_resp *resp);

/* Looks up the first parameter 'name' in a raw query string and percent-decodes it ('+' is a
 * space) into out. Returns 0, -ENOENT if absent, -ENOSPC if it does not fit, -EINVAL if the
 * encoding is broken. *count (optional) receives how many times name occurs. */
int sf_httpd_query_param(const char *query, const char *name, char *out, size_t outlen,
                         unsigned *count);

const char *sf_httpd_reason(int status); /* "OK", "Not Found", ... */

#endif
