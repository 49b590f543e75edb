/* http: asynchronous HTTP client, libcurl multi driven by the libuv loop. See http.h.
 * (One module over 600 lines: the socket/timer glue, request set-up and completion delivery
 * are one state machine around one curl multi handle; split, each part would need the rest.)
 *
 * Structure (after curl's docs/examples/multi-uv.c, pitfalls handled):
 * - one sf_sock (uv_poll_t) per curl socket, attached with curl_multi_assign; on
 *   CURL_POLL_REMOVE it is detached, stopped and uv_close()d, and freed in the close callback;
 * - poll errors (UV_EBADF when curl already closed/reused the fd, ...) are passed to curl as
 *   CURL_CSELECT_ERR;
 * - curl's timer callback only (re)arms a uv_timer: -1 stops it, 0 arms it for the next loop
 *   iteration; curl is never called from inside one of its own callbacks;
 * - curl_multi_info_read is drained after every socket action and completions are delivered;
 * - cancellation and close deliver ECANCELED from a deferred loop callback, and teardown happens
 *   only from there, never from inside a user callback. */
#include "net/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#define SF_HTTP_DEFAULT_MAX_HEADER (64u * 1024u)
#define SF_HTTP_MAX_HOST_CONNS 32L

typedef struct sf_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    sf_http *h;
    struct sf_sock *prev, *next;
} sf_sock;

struct sf_http_xfer {
    sf_http *h;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* tls.server_name (sf_tls_curl_setup) */
    char *body;
    sf_http_cb cb;
    void *ud;
    sf_http_response resp;
    size_t max_response;
    size_t max_header;
    size_t header_bytes;
    bool too_big;
    bool header_too_big;
    bool canceled;
    bool in_multi;
    bool (*admit)(void *ud, size_t bytes);
    bool admitted; /* admit said yes: the body is kept, whatever it grows to */
    bool paused;   /* admit said no: CURL_WRITEFUNC_PAUSE until sf_http_resume */
    size_t want;   /* what it asked admit for then */
    bool broken;   /* data curl handed back on resume could not be kept: fail the transfer */
    char errbuf[CURL_ERROR_SIZE];
    struct sf_http_xfer *prev, *next;
};

typedef struct xfer_list {
    sf_http_xfer *head, *tail;
} xfer_list;

struct sf_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;   /* curl's timeout */
    uv_timer_t defer;   /* deferred ECANCELED delivery and teardown */
    xfer_list active;   /* in the multi handle */
    xfer_list canceled; /* waiting for their ECANCELED callback */
    size_t nactive;     /* sent and not yet delivered */
    sf_sock *socks;
    int open_handles; /* uv handles not yet closed (timers + polls) */
    bool closing;
    bool torn_down;
    int delivering; /* depth of user callbacks in progress */
    void (*closed)(void *);
    void *closed_arg;
};

static void list_push(xfer_list *l, sf_http_xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
}

static void list_remove(xfer_list *l, sf_http_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        l->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        l->tail = x->prev;
    x->prev = x->next = NULL;
}

const char *sf_http_strerror(int err)
{
    switch (err) {
    case SF_HTTP_OK:
        return "ok";
    case SF_HTTP_ETIMEOUT:
        return "timeout";
    case SF_HTTP_ECONNECT:
        return "connect";
    case SF_HTTP_ETLS:
        return "tls";
    case SF_HTTP_ETLSVERIFY:
        return "tls_verify";
    case SF_HTTP_ETOOBIG:
        return "too_big";
    case SF_HTTP_ECANCELED:
        return "canceled";
    case SF_HTTP_EDROPPED:
        return "dropped_while_paused";
    default:
        return "other";
    }
}

static int map_curl_error(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return SF_HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return SF_HTTP_ETIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return SF_HTTP_ECONNECT;
    case CURLE_PEER_FAILED_VERIFICATION: /* unknown CA, wrong name, expired */
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: /* our client certificate */
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
        return SF_HTTP_ETLSVERIFY;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return SF_HTTP_ETLS;
    case CURLE_FILESIZE_EXCEEDED:
        return SF_HTTP_ETOOBIG;
    default:
        return SF_HTTP_EOTHER;
    }
}

/* ---- header parsing ---- */

static bool header_is(const char *line, size_t len, const char *name, const char **val,
                      size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *val = v;
    *vlen = (size_t)(end - v);
    return true;
}

/* Retry-After: delta-seconds or HTTP-date. Returns ms >= 0, or -1 if unparsable. */
static int64_t parse_retry_after(const char *v, size_t len, time_t now)
{
    char tmp[128];
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    bool digits = true;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)tmp[i]))
            digits = false;
    if (digits) {
        int64_t s;
        if (sf_parse_int64(tmp, len, &s) != 0 || s > INT64_C(365) * 86400 * 10)
            s = INT64_C(365) * 86400 * 10; /* absurd values are capped, not rejected */
        return s * 1000;
    }
    time_t t = curl_getdate(tmp, NULL);
    if (t == (time_t)-1)
        return -1;
    if (t <= now)
        return 0;
    return (int64_t)(t - now) * 1000;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    sf_http_xfer *x = ud;
    size_t len = size * nitems;
    x->header_bytes += len;
    if (x->header_bytes > x->max_header) {
        x->header_too_big = true;
        return 0; /* aborts the transfer */
    }
    const char *v;
    size_t vlen;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* new header block (redirect, 1xx): forget what the previous one said */
        x->resp.retry_after_ms = -1;
        x->resp.content_type[0] = '\0';
        x->resp.ratelimit_limit = -1;
    } else if (header_is(buf, len, "Retry-After", &v, &vlen)) {
        x->resp.retry_after_ms = parse_retry_after(v, vlen, time(NULL));
    } else if (header_is(buf, len, "Content-Type", &v, &vlen)) {
        if (vlen >= sizeof(x->resp.content_type))
            vlen = sizeof(x->resp.content_type) - 1;
        memcpy(x->resp.content_type, v, vlen);
        x->resp.content_type[vlen] = '\0';
    } else if (header_is(buf, len, "X-RateLimit-Limit", &v, &vlen)) {
        int64_t n;
        if (sf_parse_int64(v, vlen, &n) == 0 && n >= 0 && n <= 1000000000)
            x->resp.ratelimit_limit = (long)n;
    }
    return len;
}

static size_t write_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
    sf_http_xfer *x = ud;
    size_t len = size * nmemb;
    if (x->max_response && (x->resp.body.len + len > x->max_response)) {
        x->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (x->broken)
        return 0; /* aborts: a body with a hole in it is no answer */
    curl_off_t cl = -1;
    bool first = x->resp.body.cap == 0;
    if (first && curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK)
        cl = -1;
    if (x->admit && !x->admitted) {
        /* once per answer, before its first byte is kept: never part-way (a half-kept body
         * that waits for memory could wait for itself) */
        size_t expect = cl > 0 ? (size_t)cl : len;
        if (!x->admit(x->ud, expect)) {
            x->paused = true;
            x->want = expect;
            return CURL_WRITEFUNC_PAUSE; /* curl delivers buf again after sf_http_resume */
        }
        x->admitted = true;
    }
    /* one allocation of the right size (a hint: a compressed body grows) */
    if (cl > (curl_off_t)len && (!x->max_response || (size_t)cl <= x->max_response))
        (void)sf_buf_reserve_exact(&x->resp.body, (size_t)cl);
    if (sf_buf_append(&x->resp.body, buf, len) != 0)
        return 0;
    return len;
}

/* ---- delivery ---- */

static void xfer_free(sf_http_xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->connect_to);
    free(x->body);
    sf_buf_free(&x->resp.body);
    free(x);
}

static void maybe_teardown(sf_http *h);

/* Runs the user callback and frees x. x must be in no list and not in the multi handle. */
static void deliver(sf_http_xfer *x)
{
    sf_http *h = x->h;
    h->nactive--;
    x->resp.ud = x->ud;
    h->delivering++;
    x->cb(&x->resp, x->ud);
    h->delivering--;
    xfer_free(x);
}

static void set_canceled(sf_http_xfer *x)
{
    x->resp.status = 0;
    x->resp.error = SF_HTTP_ECANCELED;
    snprintf(x->resp.errmsg, sizeof(x->resp.errmsg), "request canceled");
    sf_buf_reset(&x->resp.body);
    x->resp.partial_status = 0;
}

static void check_multi_info(sf_http *h)
{
    CURLMsg *msg;
    int pending;
    while (!h->torn_down && (msg = curl_multi_info_read(h->multi, &pending)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        sf_http_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (!x)
            continue;
        curl_multi_remove_handle(h->multi, easy);
        x->in_multi = false;
        list_remove(&h->active, x);

        sf_http_response *r = &x->resp;
        curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME, &r->total_seconds);
        if (res == CURLE_OK && x->paused) {
            /* all of it arrived while its first bytes were paused: libcurl before 8.8 ends such
             * a transfer and drops what it held for us (curl/curl#13337: "earlier versions just
             * discarded the data"; fixed by #13340 in 8.8). The body is not here: no answer. */
            r->status = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->partial_status);
            r->error = SF_HTTP_EDROPPED;
            snprintf(r->errmsg, sizeof(r->errmsg),
                     "libcurl ended the transfer while its answer was paused for memory and "
                     "dropped it (curl < 8.8)");
        } else if (res == CURLE_OK) {
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
            r->error = SF_HTTP_OK;
        } else {
            r->status = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->partial_status);
            if (x->too_big || x->header_too_big) {
                r->error = SF_HTTP_ETOOBIG;
                snprintf(r->errmsg, sizeof(r->errmsg), "response %s exceeds the limit of %zu bytes",
                         x->too_big ? "body" : "headers",
                         x->too_big ? x->max_response : x->max_header);
            } else {
                r->error = map_curl_error(res);
                const char *m = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
                snprintf(r->errmsg, sizeof(r->errmsg), "%s", m);
                size_t n = strlen(r->errmsg);
                while (n && (r->errmsg[n - 1] == '\n' || r->errmsg[n - 1] == '\r'))
                    r->errmsg[--n] = '\0';
            }
            if (r->error == SF_HTTP_ETOOBIG) {
                sf_buf_reset(&r->body);
                r->partial_status = 0;
            }
        }
        deliver(x);
    }
}

static void defer_cb(uv_timer_t *t)
{
    sf_http *h = t->data;
    while (h->canceled.head) {
        sf_http_xfer *x = h->canceled.head;
        list_remove(&h->canceled, x);
        deliver(x);
    }
    maybe_teardown(h);
}

static void schedule_defer(sf_http *h)
{
    if (!uv_is_closing((uv_handle_t *)&h->defer))
        uv_timer_start(&h->defer, defer_cb, 0, 0);
}

/* ---- sockets and timer ---- */

static void http_unref(sf_http *h);

static void socket_action(sf_http *h, curl_socket_t fd, int flags)
{
    int running;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_multi_info(h);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    sf_sock *s = p->data;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    socket_action(s->h, s->fd, flags);
}

static void sock_closed(uv_handle_t *hd)
{
    sf_sock *s = hd->data;
    sf_http *h = s->h;
    free(s);
    http_unref(h);
}

static void sock_release(sf_http *h, sf_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sf_http *h = userp;
    sf_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(h->multi, fd, NULL);
            sock_release(h, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->h = h;
        s->poll.data = s;
        h->open_handles++;
        s->next = h->socks;
        if (h->socks)
            h->socks->prev = s;
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    if (uv_poll_start(&s->poll, ev, poll_cb) != 0)
        return -1;
    return 0;
}

static void timer_cb(uv_timer_t *t)
{
    sf_http *h = t->data;
    socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    sf_http *h = userp;
    if (uv_is_closing((uv_handle_t *)&h->timer))
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else /* 0: next loop iteration, never a recursive call into curl from here */
        uv_timer_start(&h->timer, timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- lifecycle ---- */

sf_http *sf_http_new(uv_loop_t *loop)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    sf_http *h = calloc(1, sizeof(*h));
    if (!h)
        goto fail;
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi)
        goto fail;
    /* uv_timer_init cannot fail (it only fills the struct) */
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->open_handles++;
    uv_timer_init(loop, &h->defer);
    h->defer.data = h;
    h->open_handles++;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, SF_HTTP_MAX_HOST_CONNS);
    return h;
fail:
    if (h && h->multi)
        curl_multi_cleanup(h->multi);
    free(h);
    curl_global_cleanup();
    return NULL;
}

size_t sf_http_active(const sf_http *h)
{
    return h->nactive;
}

static int setopt_failed(CURLcode c)
{
    return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode c_ = curl_easy_setopt(e, opt, val);                                               \
        if (c_ != CURLE_OK) {                                                                      \
            rc = setopt_failed(c_);                                                                \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

int sf_http_send(sf_http *h, const sf_http_request *req, sf_http_cb cb, void *ud,
                 sf_http_xfer **out)
{
    if (out)
        *out = NULL;
    if (!h || !req || !req->url || !cb)
        return -EINVAL;
    if (h->closing)
        return -ECANCELED;
    int rc = -ENOMEM;
    sf_http_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->h = h;
    x->cb = cb;
    x->ud = ud;
    x->admit = req->admit;
    x->resp.retry_after_ms = -1;
    x->resp.ratelimit_limit = -1;
    x->max_response = req->max_response;
    x->max_header = req->max_header_bytes ? req->max_header_bytes : SF_HTTP_DEFAULT_MAX_HEADER;
    CURL *e = x->easy = curl_easy_init();
    if (!e)
        goto fail;

    const char *method = req->method ? req->method : "GET";
    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PRIVATE, (void *)x);
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_NOPROGRESS, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    if (req->admit) /* a paused HTTP/2 stream keeps receiving into curl's memory up to its
                     * window (32 MB in curl 7.88), and paused streams can starve the others on
                     * the shared connection: over HTTP/1.1 TCP holds the server back */
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, (void *)x);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, (void *)x);
    if (req->timeout_ms > 0)
        SETOPT(CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->connect_timeout_ms > 0)
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    if (req->low_speed_time_s > 0) {
        SETOPT(CURLOPT_LOW_SPEED_LIMIT,
               (long)(req->low_speed_bytes > 0 ? req->low_speed_bytes : 1));
        SETOPT(CURLOPT_LOW_SPEED_TIME, (long)req->low_speed_time_s);
    }
    if (req->max_response)
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_response);
    if (req->max_redirects > 0) {
        SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
        SETOPT(CURLOPT_MAXREDIRS, req->max_redirects);
    } else {
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    }
    if ((rc = sf_tls_curl_setup(req->tls, e, req->url, &x->connect_to)) != 0)
        goto fail;
    if (req->proxy)
        SETOPT(CURLOPT_PROXY, req->proxy);
    if (req->user_agent)
        SETOPT(CURLOPT_USERAGENT, req->user_agent);

    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(x->headers, req->headers[i]);
        if (!n)
            goto fail;
        x->headers = n;
    }
    if (req->body || strcmp(method, "GET") != 0) {
        /* no "Expect: 100-continue" round trip */
        struct curl_slist *n = curl_slist_append(x->headers, "Expect:");
        if (!n)
            goto fail;
        x->headers = n;
    }
    if (x->headers)
        SETOPT(CURLOPT_HTTPHEADER, x->headers);

    if (strcmp(method, "GET") == 0 && !req->body) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        x->body = malloc(req->body_len ? req->body_len : 1);
        if (!x->body)
            goto fail;
        if (req->body_len)
            memcpy(x->body, req->body, req->body_len);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_POSTFIELDS, x->body);
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }

    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        rc = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
        goto fail;
    }
    x->in_multi = true;
    list_push(&h->active, x);
    h->nactive++;
    if (out)
        *out = x;
    return 0;
fail:
    xfer_free(x);
    return rc;
}

void sf_http_cancel(sf_http_xfer *x)
{
    if (!x || x->canceled || !x->in_multi)
        return;
    sf_http *h = x->h;
    x->canceled = true;
    curl_multi_remove_handle(h->multi, x->easy);
    x->in_multi = false;
    list_remove(&h->active, x);
    set_canceled(x);
    list_push(&h->canceled, x);
    schedule_defer(h);
}

bool sf_http_paused(const sf_http_xfer *x, size_t *want)
{
    if (want)
        *want = x && x->paused ? x->want : 0;
    return x && x->paused;
}

void sf_http_resume(sf_http_xfer *x)
{
    if (!x || !x->paused || x->canceled || !x->in_multi)
        return;
    x->paused = false;
    /* curl may hand the kept data to write_cb (and so to admit) from inside this call, and
     * arms its timer (timer_fn: the transfer goes on from the next loop turn); if write_cb
     * refused that data (too big, no memory) curl says so here but goes on without it */
    if (curl_easy_pause(x->easy, CURLPAUSE_CONT) != CURLE_OK)
        x->broken = true;
}

static void http_unref(sf_http *h)
{
    if (--h->open_handles > 0)
        return;
    void (*closed)(void *) = h->closed;
    void *arg = h->closed_arg;
    free(h);
    curl_global_cleanup();
    if (closed)
        closed(arg);
}

static void timer_closed(uv_handle_t *hd)
{
    http_unref(hd->data);
}

static void maybe_teardown(sf_http *h)
{
    if (!h->closing || h->torn_down || h->delivering || h->canceled.head || h->active.head)
        return;
    h->torn_down = true;
    /* Closes cached connections; curl reports their sockets with CURL_POLL_REMOVE. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->socks) /* anything curl did not report */
        sock_release(h, h->socks);
    uv_close((uv_handle_t *)&h->timer, timer_closed);
    uv_close((uv_handle_t *)&h->defer, timer_closed);
}

void sf_http_close(sf_http *h, void (*closed)(void *arg), void *arg)
{
    if (!h || h->closing)
        return;
    h->closing = true;
    h->closed = closed;
    h->closed_arg = arg;
    while (h->active.head)
        sf_http_cancel(h->active.head);
    schedule_defer(h);
}
