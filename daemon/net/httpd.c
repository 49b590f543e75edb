/* httpd: small embeddable HTTP/1.1 server on libuv + http-parser. See httpd.h.
 * (Over 600 lines: connection lifecycle, parsing callbacks, deferral and the defences against
 * slow or flooding clients belong to one connection state machine.)
 *
 * One request at a time per connection: when a request is complete the parser is paused and
 * reading stops; the rest of the input (pipelined requests) stays buffered until the response
 * was written. Each connection owns two handles (tcp + idle timer) and is freed once both are
 * closed and no deferred request refers to it. */
#include "net/httpd.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#include "core/log.h"

#define DEF_MAX_HEADER (16u * 1024u)
#define DEF_MAX_BODY (1024u * 1024u)
#define DEF_MAX_CONNS 64u
#define DEF_IDLE_MS INT64_C(10000)
#define READ_CHUNK 65536u

typedef struct conn conn;

struct sf_httpd_req {
    conn *c;
    sf_buf url;
    sf_buf hdrs; /* "name\0value\0" pairs */
    size_t nhdrs;
    sf_buf body;
    char *path;
    const char *query;
    const char *method;
    bool head;
    bool deferred;
    bool keep_alive;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    sf_httpd *srv;
    http_parser parser;
    sf_buf in;
    sf_httpd_req *req; /* being parsed or handled */
    size_t header_bytes;
    int last_hdr; /* 0 none, 1 field, 2 value */
    int err_status;
    int open_handles;
    bool closing;
    bool busy;     /* a request is dispatched and its response not yet written */
    bool eof;      /* client finished sending */
    bool rejected; /* over the connection cap */
    conn *prev, *next;
};

struct sf_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    sf_httpd_handler handler;
    void *ud;
    sf_httpd_opts opts;
    conn *conns;
    size_t nconns;
    uint64_t accepted;
    int port;
    bool closing;
    bool listener_closed;
    void (*closed)(void *);
    void *closed_arg;
};

typedef struct wreq {
    uv_write_t req;
    sf_buf data;
    conn *c;
    bool close_after;
} wreq;

static void conn_close(conn *c);
static void conn_process(conn *c);
static void arm_deadline(conn *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

const char *sf_httpd_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* ---- request objects ---- */

static void req_free(sf_httpd_req *r)
{
    if (!r)
        return;
    sf_buf_free(&r->url);
    sf_buf_free(&r->hdrs);
    sf_buf_free(&r->body);
    free(r->path);
    free(r);
}

const char *sf_httpd_method(const sf_httpd_req *r)
{
    return r->method;
}

const char *sf_httpd_path(const sf_httpd_req *r)
{
    return r->path;
}

const char *sf_httpd_query(const sf_httpd_req *r)
{
    return r->query;
}

const char *sf_httpd_body(const sf_httpd_req *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

bool sf_httpd_client_gone(const sf_httpd_req *r)
{
    return !r->c || r->c->closing;
}

const char *sf_httpd_header(const sf_httpd_req *r, const char *name)
{
    const char *p = r->hdrs.data;
    for (size_t i = 0; i < r->nhdrs; i++) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0)
                return -EINVAL;
            ch = (char)(a * 16 + b);
            i += 2;
        }
        if (o + 1 >= outlen)
            return -ENOSPC;
        out[o++] = ch;
    }
    if (outlen == 0)
        return -ENOSPC;
    out[o] = '\0';
    return 0;
}

int sf_httpd_query_param(const char *query, const char *name, char *out, size_t outlen,
                         unsigned *count)
{
    unsigned n = 0;
    int rc = -ENOENT;
    size_t nlen = strlen(name);
    const char *p = query ? query : "";
    while (*p) {
        const char *end = strchr(p, '&');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            if (n == 0) {
                const char *v = eq ? eq + 1 : end;
                rc = pct_decode(v, (size_t)(end - v), out, outlen);
            }
            n++;
        }
        p = *end ? end + 1 : end;
    }
    if (count)
        *count = n;
    return rc;
}

/* ---- parser callbacks ---- */

static int limit_headers(conn *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > c->srv->opts.max_header_bytes) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    if (!c->req) {
        c->req = calloc(1, sizeof(*c->req));
        if (!c->req) {
            c->err_status = 500;
            return -1;
        }
        c->req->c = c;
    }
    c->header_bytes = 0;
    c->last_hdr = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (limit_headers(c, len) || sf_buf_append(&c->req->url, at, len)) {
        if (!c->err_status)
            c->err_status = 500;
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    sf_httpd_req *r = c->req;
    if (limit_headers(c, len + 1))
        return -1;
    if (c->last_hdr != 1) {
        if (c->last_hdr == 2 && sf_buf_putc(&r->hdrs, '\0'))
            goto oom;
        r->nhdrs++;
    }
    c->last_hdr = 1;
    if (sf_buf_append(&r->hdrs, at, len))
        goto oom;
    return 0;
oom:
    c->err_status = 500;
    return -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    sf_httpd_req *r = c->req;
    if (limit_headers(c, len + 1))
        return -1;
    if (c->last_hdr != 2 && sf_buf_putc(&r->hdrs, '\0'))
        goto oom;
    c->last_hdr = 2;
    if (sf_buf_append(&r->hdrs, at, len))
        goto oom;
    return 0;
oom:
    c->err_status = 500;
    return -1;
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    sf_httpd_req *r = c->req;
    if (c->last_hdr == 1 && sf_buf_putc(&r->hdrs, '\0')) /* field without value: impossible */
        goto oom;
    if (c->last_hdr != 0 && sf_buf_putc(&r->hdrs, '\0'))
        goto oom;
    if (p->content_length != UINT64_MAX && p->content_length > 0 &&
        p->content_length > c->srv->opts.max_body) {
        c->err_status = 413;
        return -1;
    }
    return 0;
oom:
    c->err_status = 500;
    return -1;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    sf_httpd_req *r = c->req;
    if (r->body.len + len > c->srv->opts.max_body) {
        c->err_status = 413;
        return -1;
    }
    if (sf_buf_append(&r->body, at, len)) {
        c->err_status = 500;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    c->req->keep_alive = http_should_keep_alive(p) != 0;
    c->req->method = http_method_str((enum http_method)p->method);
    c->req->head = p->method == HTTP_HEAD;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- responses ---- */

static void conn_maybe_free(conn *c);

static void after_write(uv_write_t *w, int status)
{
    wreq *wr = (wreq *)w;
    conn *c = wr->c;
    bool close_after = wr->close_after;
    sf_buf_free(&wr->data);
    free(wr);
    if (c->closing)
        return;
    if (status < 0 || close_after) {
        conn_close(c);
        return;
    }
    c->busy = false;
    arm_deadline(c); /* the next request has its own full time */
    conn_process(c); /* pipelined input, or close after EOF */
}

static int build_response(sf_buf *out, sf_httpd_resp *resp, bool head, bool keep_alive)
{
    int status = resp->status ? resp->status : 200;
    bool nobody = head || status == 204 || status == 304 || (status >= 100 && status < 200);
    int rc = sf_buf_appendf(out, "HTTP/1.1 %d %s\r\n", status, sf_httpd_reason(status));
    if (!rc && resp->content_type)
        rc = sf_buf_appendf(out, "Content-Type: %s\r\n", resp->content_type);
    if (!rc && status != 204 && !(status >= 100 && status < 200))
        rc = sf_buf_appendf(out, "Content-Length: %zu\r\n", resp->body.len);
    if (!rc && resp->headers.len)
        rc = sf_buf_append(out, resp->headers.data, resp->headers.len);
    if (!rc)
        rc = sf_buf_puts(out, keep_alive ? "Connection: keep-alive\r\n\r\n"
                                         : "Connection: close\r\n\r\n");
    if (!rc && !nobody && resp->body.len)
        rc = sf_buf_append(out, resp->body.data, resp->body.len);
    return rc;
}

static void resp_free(sf_httpd_resp *resp)
{
    sf_buf_free(&resp->body);
    sf_buf_free(&resp->headers);
}

/* Sends resp (buffers freed here). The connection is closed after it if !keep_alive. */
static void conn_send(conn *c, sf_httpd_resp *resp, bool head, bool keep_alive)
{
    wreq *wr = calloc(1, sizeof(*wr));
    if (!wr || build_response(&wr->data, resp, head, keep_alive)) {
        if (wr)
            sf_buf_free(&wr->data);
        free(wr);
        resp_free(resp);
        conn_close(c);
        return;
    }
    resp_free(resp);
    wr->c = c;
    wr->close_after = !keep_alive;
    uv_buf_t b = uv_buf_init(wr->data.data, (unsigned)wr->data.len);
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, after_write);
    if (rc) {
        sf_buf_free(&wr->data);
        free(wr);
        conn_close(c);
    }
}

static void send_error(conn *c, int status)
{
    sf_httpd_resp resp = {.status = status, .content_type = "text/plain"};
    if (sf_buf_appendf(&resp.body, "%d %s\n", status, sf_httpd_reason(status))) {
        resp_free(&resp);
        conn_close(c);
        return;
    }
    c->busy = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    conn_send(c, &resp, false, false);
}

static int req_prepare(sf_httpd_req *r)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (!r->url.data || http_parser_parse_url(r->url.data, r->url.len, 0, &u) != 0)
        return -EINVAL;
    if (!(u.field_set & (1 << UF_PATH)))
        return -EINVAL;
    r->path = sf_strndup(r->url.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if (!r->path)
        return -ENOMEM;
    if (u.field_set & (1 << UF_QUERY)) {
        char *q = r->url.data + u.field_data[UF_QUERY].off;
        q[u.field_data[UF_QUERY].len] = '\0'; /* cuts a fragment, if any */
        r->query = q;
    } else {
        r->query = "";
    }
    if (!r->hdrs.data && sf_buf_reserve(&r->hdrs, 0))
        return -ENOMEM;
    return 0;
}

static void dispatch(conn *c)
{
    sf_httpd_req *r = c->req;
    c->req = NULL;
    c->busy = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    int prc = req_prepare(r);
    if (prc) {
        req_free(r);
        send_error(c, prc == -EINVAL ? 400 : 500);
        return;
    }
    sf_httpd_resp resp = {0};
    sf_httpd *s = c->srv;
    int rc = s->handler(r, &resp, s->ud);
    if (rc == SF_HTTPD_DEFER) {
        r->deferred = true;
        c->req = r; /* parked until sf_httpd_respond */
        return;
    }
    if (rc < 0) {
        resp_free(&resp);
        memset(&resp, 0, sizeof(resp));
        resp.status = 500;
        resp.content_type = "text/plain";
        if (sf_buf_puts(&resp.body, "500 Internal Server Error\n")) {
            req_free(r);
            conn_close(c);
            return;
        }
    }
    bool head = r->head, ka = r->keep_alive && !c->srv->closing;
    req_free(r);
    conn_send(c, &resp, head, ka);
}

void sf_httpd_respond(sf_httpd_req *r, sf_httpd_resp *resp)
{
    conn *c = r->c;
    if (!r->deferred || c->req != r) {
        resp_free(resp);
        return; /* misuse */
    }
    c->req = NULL;
    bool head = r->head, ka = r->keep_alive && !c->srv->closing;
    req_free(r);
    if (c->closing) {
        resp_free(resp);
        conn_maybe_free(c);
        return;
    }
    conn_send(c, resp, head, ka);
}

/* ---- connections ---- */

static void conn_process(conn *c)
{
    while (!c->busy && !c->closing && c->in.len > 0) {
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in.data, c->in.len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (n > c->in.len)
            n = c->in.len;
        memmove(c->in.data, c->in.data + n, c->in.len - n);
        c->in.len -= n;
        c->in.data[c->in.len] = '\0';
        if (err == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            dispatch(c);
            continue;
        }
        if (err != HPE_OK) {
            send_error(c, c->err_status ? c->err_status : 400);
            return;
        }
    }
    if (!c->busy && !c->closing) {
        if (c->eof) {
            conn_close(c);
            return;
        }
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn *c = h->data;
    if (sf_buf_reserve(&c->in, READ_CHUNK)) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, READ_CHUNK);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && c->in.len == 0 && !c->req) {
            conn_close(c);
            return;
        }
        if (nread == UV_EOF) {
            c->eof = true;
            uv_read_stop(st);
            /* let the parser see the end: an incomplete request is an error */
            http_parser_execute(&c->parser, &parser_settings, NULL, 0);
            if (!c->busy)
                conn_close(c);
            return;
        }
        conn_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    /* (bytes do not extend the deadline: a client trickling a request byte by byte is closed
     * when its time is up, like one that sends nothing) */
    conn_process(c);
}

static void idle_cb(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->busy)
        return; /* answering: the deadline starts again once the answer is written */
    conn_close(c);
}

/* A connection has idle_timeout_ms from the moment it can send a request (accepted, or the
 * previous answer written) to deliver the whole request; data arriving does not extend it. */
static void arm_deadline(conn *c)
{
    uv_timer_start(&c->idle, idle_cb, (uint64_t)c->srv->opts.idle_timeout_ms, 0);
}

/* The connection that has waited longest without a request being answered, other than c:
 * the one to close when the cap is reached. NULL if every other one is being answered. */
static conn *oldest_waiting(sf_httpd *s, const conn *c)
{
    conn *best = NULL;
    for (conn *x = s->conns; x; x = x->next)
        if (x != c && !x->busy && !x->closing)
            best = x; /* the list is newest first: the last match is the oldest */
    return best;
}

static void conn_free(conn *c)
{
    sf_httpd *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    sf_buf_free(&c->in);
    free(c);
    if (s->closing && !s->conns && s->listener_closed) {
        void (*closed)(void *) = s->closed;
        void *arg = s->closed_arg;
        free(s);
        if (closed)
            closed(arg);
    }
}

static void conn_maybe_free(conn *c)
{
    if (c->open_handles > 0)
        return;
    if (c->req && c->req->deferred)
        return; /* freed by sf_httpd_respond */
    req_free(c->req);
    c->req = NULL;
    conn_free(c);
}

static void conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    c->open_handles--;
    conn_maybe_free(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->idle, conn_handle_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    sf_httpd *s = server->data;
    if (status < 0 || s->closing)
        return;
    conn *c = calloc(1, sizeof(*c));
    if (!c) {
        SF_WARN("httpd", "out of memory accepting a connection");
        return;
    }
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    uv_timer_init(s->loop, &c->idle);
    c->idle.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    s->accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    arm_deadline(c);
    if (s->nconns > s->opts.max_conns) {
        /* full: make room by closing the connection that has waited longest without being
         * answered (idle keep-alive, or a client too slow to send its request), so that idle
         * or slow clients cannot lock out one that sends a whole request */
        conn *victim = oldest_waiting(s, c);
        if (victim) {
            conn_close(victim);
            conn_process(c);
            return;
        }
    }
    if (s->nconns > s->opts.max_conns) {
        c->rejected = true;
        if (s->nconns > 2 * (size_t)s->opts.max_conns) {
            conn_close(c); /* flood: do not even answer */
            return;
        }
        send_error(c, 503);
        return;
    }
    conn_process(c);
}

/* ---- server ---- */

int sf_httpd_parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "expected host:port, [IPv6]:port or :port");
        return -EINVAL;
    }
    int64_t port;
    if (sf_parse_int64(colon + 1, strlen(colon + 1), &port) || port < 0 || port > 65535) {
        snprintf(err, errlen, "the port must be a number in 0..65535");
        return -EINVAL;
    }
    char host[256];
    size_t hlen = (size_t)(colon - listen);
    bool v6 = false;
    if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
        listen++;
        hlen -= 2;
        v6 = true;
    } else if (memchr(listen, ':', hlen)) {
        snprintf(err, errlen, "an IPv6 address goes in brackets: [::1]:9464");
        return -EINVAL;
    }
    if (hlen >= sizeof(host)) {
        snprintf(err, errlen, "the host name is too long");
        return -EINVAL;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    if (hlen == 0)
        strcpy(host, v6 ? "::" : "0.0.0.0");
    /* one resolver for the configuration check and the server: numeric addresses and host
     * names alike (localhost), the first address getaddrinfo gives for a passive socket */
    struct addrinfo hints = {.ai_family = v6 ? AF_INET6 : AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    char ps[8];
    snprintf(ps, sizeof ps, "%d", (int)port);
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, ps, &hints, &res);
    if (gai != 0 || !res) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host,
                 gai ? gai_strerror(gai) : "no address");
        if (res)
            freeaddrinfo(res);
        return -EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen <= sizeof *ss ? res->ai_addrlen : sizeof *ss);
    freeaddrinfo(res);
    return 0;
}

int sf_httpd_check_listen(const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int rc = sf_httpd_parse_listen(listen, &ss, err, errlen);
    if (rc)
        return rc;
    socklen_t len =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
    } else {
        int one = 1; /* as libuv's listener does: a port in TIME_WAIT is usable */
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        rc = bind(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : -errno;
        close(fd);
    }
    if (rc == -EADDRINUSE)
        rc = 0; /* held by someone now, perhaps the daemon being replaced */
    if (rc && err)
        snprintf(err, errlen, "cannot listen there: %s%s", strerror(-rc),
                 rc == -EADDRNOTAVAIL ? " (not an address of this machine)"
                 : rc == -EACCES      ? " (ports below 1024 need CAP_NET_BIND_SERVICE)"
                                      : "");
    return rc;
}

static void listener_closed_cb(uv_handle_t *h)
{
    sf_httpd *s = h->data;
    s->listener_closed = true;
    if (s->closing && !s->conns) {
        void (*closed)(void *) = s->closed;
        void *arg = s->closed_arg;
        free(s);
        if (closed)
            closed(arg);
    }
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

int sf_httpd_start_opts(uv_loop_t *loop, const char *listen, const sf_httpd_opts *opts,
                        sf_httpd_handler handler, void *ud, sf_httpd **out)
{
    if (!loop || !handler || !out)
        return -EINVAL;
    struct sockaddr_storage ss;
    int rc = sf_httpd_parse_listen(listen, &ss, NULL, 0);
    if (rc)
        return rc;
    sf_httpd *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->handler = handler;
    s->ud = ud;
    if (opts)
        s->opts = *opts;
    if (!s->opts.max_header_bytes)
        s->opts.max_header_bytes = DEF_MAX_HEADER;
    if (!s->opts.max_body)
        s->opts.max_body = DEF_MAX_BODY;
    if (!s->opts.max_conns)
        s->opts.max_conns = DEF_MAX_CONNS;
    if (s->opts.idle_timeout_ms <= 0)
        s->opts.idle_timeout_ms = DEF_IDLE_MS;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (!rc) {
        struct sockaddr_storage bound;
        int blen = sizeof(bound);
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
        if (!rc)
            s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                        : ((struct sockaddr_in *)&bound)->sin_port);
    }
    if (rc) {
        uv_close((uv_handle_t *)&s->listener, free_on_close);
        return rc;
    }
    *out = s;
    return 0;
}

int sf_httpd_start(uv_loop_t *loop, const char *listen, sf_httpd_handler h, void *ud,
                   sf_httpd **out)
{
    return sf_httpd_start_opts(loop, listen, NULL, h, ud, out);
}

int sf_httpd_port(const sf_httpd *s)
{
    return s->port;
}

size_t sf_httpd_connections(const sf_httpd *s)
{
    return s->nconns;
}

uint64_t sf_httpd_accepted(const sf_httpd *s)
{
    return s->accepted;
}

void sf_httpd_close(sf_httpd *s, void (*closed)(void *arg), void *arg)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->closed = closed;
    s->closed_arg = arg;
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
}
