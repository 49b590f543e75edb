/* stream: a client connection on the libuv loop. See stream.h.
 *
 * UDP lives here too (a connected datagram socket) rather than in the syslog sink: it needs
 * the same resolution, address fallback, connect timeout, write completion and error
 * reporting, and a sink that offers udp:// next to tcp:// then has one code path.
 *
 * Structure:
 * - one sock_t (the uv handle, its connect/shutdown requests, its SSL) per address tried; a
 *   failed attempt's sock is closed and the next address gets a fresh one;
 * - three timers owned by the stream: conn_timer (connect timeout), io_timer (the oldest
 *   write's deadline, or the graceful close's), defer (failures found inside an owner's call,
 *   reported on the next loop turn);
 * - refs counts what must close or come back before the stream is freed: the timers, the
 *   socks, the getaddrinfo request; 'closed' is called when it reaches 0.
 *
 * States: RESOLVING -> CONNECTING (a sock is connecting or doing the TLS handshake) -> OPEN ->
 * DRAINING (sf_stream_shutdown) -> DEAD (failed, drained or closed by the owner; no further
 * connected/failed/drained).
 *
 * Length: about 750 lines, over the ~600 guideline: resolution, the per-address attempts, the
 * TLS handshake over memory BIOs, writes and the graceful close share the state above (a TLS
 * or read failure is an attempt's while connecting and the stream's after; every path ends in
 * the same teardown), so they are kept in one file rather than split behind a private header. */
#include "net/stream.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h> /* SIOCOUTQ */
#endif

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

typedef enum { S_RESOLVING, S_CONNECTING, S_OPEN, S_DRAINING, S_DEAD } sstate;

typedef struct sock {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_udp_t udp;
    } h;
    sf_stream *st;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
} sock_t;

typedef struct wreq {
    union {
        uv_write_t w;
        uv_udp_send_t u;
    } req;
    sf_stream *s;
    struct wreq *prev, *next; /* in flight, oldest first */
    void *wud;
    bool user; /* reported to the owner (TLS handshake and close records are not) */
    uint64_t deadline;
    char *own;
} wreq_t;

struct sf_stream {
    uv_loop_t *loop;
    sf_stream_cbs cb;
    void *ud;
    char host[256];
    char port[32];
    bool datagram;
    SSL_CTX *ctx;
    const sf_tls_cfg *tls;
    int64_t connect_timeout_ms, write_timeout_ms, close_timeout_ms;
    sstate state;
    bool owner_closed;
    bool torn;         /* handles closed (or closing) */
    bool fail_pending; /* 'failed' waits for the defer timer */
    bool shut_done;    /* our FIN was handed to the kernel */
    uv_getaddrinfo_t gai;
    bool gai_busy;
    struct addrinfo *ai, *ai_next;
    sock_t *sock; /* current attempt / connection */
    uv_timer_t conn_timer, io_timer, defer;
    int refs;
    wreq_t *wq_head, *wq_tail;
    char why[256];        /* the failure */
    char attempt[256];    /* the last address's failure */
    char verify_why[256]; /* an address's certificate could not be verified: why, else "" */
    char rbuf[16384];
    char tbuf[16384];
};

static void tls_pump(sf_stream *s, sock_t *k);
static void try_next(sf_stream *s);

const char *sf_stream_error(const sf_stream *s)
{
    return s->why;
}

bool sf_stream_tls_verify_failed(const sf_stream *s)
{
    return s->verify_why[0] != '\0';
}

/* ---- teardown ---- */

static void unref(sf_stream *s)
{
    if (--s->refs > 0)
        return;
    if (s->cb.closed)
        s->cb.closed(s, s->ud);
    free(s);
}

static void handle_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void sock_closed(uv_handle_t *h)
{
    sock_t *k = h->data;
    sf_stream *s = k->st;
    if (k->ssl)
        SSL_free(k->ssl);
    free(k);
    unref(s);
}

static void sock_close(sf_stream *s, sock_t *k)
{
    if (s->sock == k)
        s->sock = NULL;
    uv_close(&k->h.h, sock_closed);
}

static void free_addrs(sf_stream *s)
{
    if (s->ai)
        uv_freeaddrinfo(s->ai);
    s->ai = s->ai_next = NULL;
}

/* Closes everything; in-flight writes complete (UV_ECANCELED) before the sock's close. */
static void teardown(sf_stream *s)
{
    s->state = S_DEAD;
    if (s->torn)
        return;
    s->torn = true;
    if (s->gai_busy)
        uv_cancel((uv_req_t *)&s->gai); /* its callback still comes */
    free_addrs(s);
    if (s->sock)
        sock_close(s, s->sock);
    uv_close((uv_handle_t *)&s->conn_timer, handle_closed);
    uv_close((uv_handle_t *)&s->io_timer, handle_closed);
    uv_close((uv_handle_t *)&s->defer, handle_closed);
}

/* A failure seen in a libuv callback: reported now. */
static void fail_now(sf_stream *s, const char *why)
{
    if (s->state == S_DEAD)
        return;
    snprintf(s->why, sizeof s->why, "%s", why);
    teardown(s);
    if (!s->owner_closed && s->cb.failed)
        s->cb.failed(s, s->ud, s->why);
}

static void defer_cb(uv_timer_t *t)
{
    sf_stream *s = t->data;
    bool report = s->fail_pending && !s->owner_closed;
    s->fail_pending = false;
    teardown(s);
    if (report && s->cb.failed)
        s->cb.failed(s, s->ud, s->why);
}

/* A failure seen inside an owner's call: the stream stops now, 'failed' comes on the next
 * loop turn (before the cancelled writes' callbacks). */
static void fail_later(sf_stream *s, const char *why)
{
    if (s->state == S_DEAD)
        return;
    snprintf(s->why, sizeof s->why, "%s", why);
    s->state = S_DEAD;
    s->fail_pending = true;
    uv_timer_stop(&s->conn_timer);
    uv_timer_stop(&s->io_timer);
    if (s->sock && !s->datagram)
        uv_read_stop(&s->sock->h.s);
    uv_timer_start(&s->defer, defer_cb, 0, 0);
}

/* ---- writes ---- */

static void io_timeout_cb(uv_timer_t *t)
{
    sf_stream *s = t->data;
    char why[256];
    if (s->state == S_DRAINING)
        snprintf(why, sizeof why,
                 "the receiver did not close its side within %lldms after ours (its reading is "
                 "not confirmed)",
                 (long long)s->close_timeout_ms);
    else
        snprintf(why, sizeof why, "data not written within %lldms (slow or stuck peer)",
                 (long long)s->write_timeout_ms);
    fail_now(s, why);
}

/* While open, the timer runs for the oldest write in flight (writes complete in order). */
static void arm_io_timer(sf_stream *s)
{
    if (s->state != S_OPEN)
        return; /* connecting: conn_timer; draining: the close deadline stands */
    if (!s->wq_head || s->write_timeout_ms <= 0) {
        uv_timer_stop(&s->io_timer);
        return;
    }
    uint64_t now = uv_now(s->loop), due = s->wq_head->deadline;
    uv_timer_start(&s->io_timer, io_timeout_cb, due > now ? due - now : 0, 0);
}

static void wq_remove(sf_stream *s, wreq_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        s->wq_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        s->wq_tail = w->prev;
}

static void write_done(wreq_t *w, int status)
{
    sf_stream *s = w->s;
    wq_remove(s, w);
    if (status < 0 && status != UV_ECANCELED) {
        char why[160];
        snprintf(why, sizeof why, "write: %s", uv_strerror(status));
        fail_now(s, why); /* before the write's own callback, as the write broke the stream */
    }
    arm_io_timer(s);
    if (w->user && s->cb.written)
        s->cb.written(s, s->ud, w->wud, status);
    free(w->own);
    free(w);
}

static void write_cb(uv_write_t *req, int status)
{
    write_done(req->data, status);
}

static void udp_send_cb(uv_udp_send_t *req, int status)
{
    write_done(req->data, status);
}

/* Hands a buffer to the sock; own (malloc'd) is freed after it. 0 or a libuv error. */
static int queue_write(sf_stream *s, sock_t *k, const char *data, size_t len, char *own, bool user,
                       void *wud)
{
    wreq_t *w = calloc(1, sizeof *w);
    if (!w) {
        free(own);
        return UV_ENOMEM;
    }
    w->s = s;
    w->own = own;
    w->user = user;
    w->wud = wud;
    w->deadline = uv_now(s->loop) + (uint64_t)(s->write_timeout_ms > 0 ? s->write_timeout_ms : 0);
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc;
    if (s->datagram) {
        w->req.u.data = w;
        rc = uv_udp_send(&w->req.u, &k->h.udp, &b, 1, NULL, udp_send_cb);
    } else {
        w->req.w.data = w;
        rc = uv_write(&w->req.w, &k->h.s, &b, 1, write_cb);
    }
    if (rc) {
        free(own);
        free(w);
        return rc;
    }
    w->prev = s->wq_tail;
    if (s->wq_tail)
        s->wq_tail->next = w;
    else
        s->wq_head = w;
    s->wq_tail = w;
    if (!w->prev)
        arm_io_timer(s);
    return 0;
}

/* Moves what OpenSSL produced to the socket (one write). */
static int tls_flush(sf_stream *s, sock_t *k, bool user, void *wud)
{
    size_t n = BIO_ctrl_pending(k->wbio);
    if (n == 0)
        return user ? UV_EIO : 0;
    char *p = malloc(n);
    if (!p)
        return UV_ENOMEM;
    int r = BIO_read(k->wbio, p, (int)n);
    if (r <= 0 || (size_t)r != n) {
        free(p);
        return UV_EIO;
    }
    return queue_write(s, k, p, n, p, user, wud);
}

int sf_stream_write(sf_stream *s, const void *data, size_t len, unsigned flags, void *wud)
{
    char *own = (flags & SF_STREAM_TAKE) ? (char *)data : NULL;
    if (s->state != S_OPEN) {
        free(own);
        return UV_ENOTCONN;
    }
    if (len == 0 || len > INT_MAX) {
        free(own);
        return UV_EINVAL;
    }
    sock_t *k = s->sock;
    char why[256];
    int rc;
    if (k->ssl) {
        ERR_clear_error();
        int r = SSL_write(k->ssl, data, (int)len);
        free(own); /* copied into the TLS record */
        if (r != (int)len) {
            char es[200];
            sf_tls_errstr(es, sizeof es);
            snprintf(why, sizeof why, "TLS write: %s", es);
            fail_later(s, why);
            return UV_EPROTO;
        }
        rc = tls_flush(s, k, true, wud);
    } else {
        rc = queue_write(s, k, data, len, own, true, wud);
    }
    if (rc) {
        snprintf(why, sizeof why, "write: %s", uv_strerror(rc));
        fail_later(s, why);
    }
    return rc;
}

/* ---- graceful close ---- */

/* Bytes (and FIN) not yet acknowledged by the peer's TCP; -1 if unknown. */
static long unacked_bytes(sock_t *k)
{
#ifdef SIOCOUTQ
    uv_os_fd_t fd;
    int n = 0;
    if (uv_fileno(&k->h.h, &fd) == 0 && ioctl(fd, SIOCOUTQ, &n) == 0)
        return n;
#endif
    (void)k;
    return -1;
}

/* End of stream while draining: confirms only if our half-close went out first and the peer's
 * TCP acknowledged everything we sent. */
static void drain_eof(sf_stream *s)
{
    long unacked = unacked_bytes(s->sock);
    if (s->shut_done && unacked == 0) {
        teardown(s);
        if (!s->owner_closed && s->cb.drained)
            s->cb.drained(s, s->ud);
        return;
    }
    char why[256];
    snprintf(why, sizeof why,
             "the receiver closed the connection before confirming it read everything "
             "(%s, %ld bytes unacknowledged)",
             s->shut_done ? "after our close" : "before our close", unacked);
    fail_now(s, why);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    sock_t *k = req->data;
    sf_stream *s = k->st;
    if (s->sock != k)
        return;
    if (status == 0)
        s->shut_done = true;
    else if (status != UV_ECANCELED) {
        char why[160];
        snprintf(why, sizeof why, "half-close: %s", uv_strerror(status));
        fail_now(s, why);
    }
}

int sf_stream_shutdown(sf_stream *s)
{
    if (s->datagram)
        return UV_ENOTSUP;
    if (s->state != S_OPEN)
        return UV_ENOTCONN;
    sock_t *k = s->sock;
    char why[160];
    int rc;
    s->state = S_DRAINING;
    if (s->close_timeout_ms > 0)
        uv_timer_start(&s->io_timer, io_timeout_cb, (uint64_t)s->close_timeout_ms, 0);
    else
        uv_timer_stop(&s->io_timer);
    if (k->ssl) {
        ERR_clear_error();
        SSL_shutdown(k->ssl); /* close_notify */
        if ((rc = tls_flush(s, k, false, NULL)) != 0) {
            snprintf(why, sizeof why, "TLS close: %s", uv_strerror(rc));
            fail_later(s, why);
            return rc;
        }
    }
    k->sreq.data = k;
    if ((rc = uv_shutdown(&k->sreq, &k->h.s, shutdown_cb)) != 0) {
        snprintf(why, sizeof why, "half-close: %s", uv_strerror(rc));
        fail_later(s, why);
    }
    return rc;
}

void sf_stream_close(sf_stream *s)
{
    if (!s || s->owner_closed)
        return;
    s->owner_closed = true;
    s->fail_pending = false;
    teardown(s);
}

/* ---- connecting ---- */

static void opened(sf_stream *s)
{
    s->state = S_OPEN;
    uv_timer_stop(&s->conn_timer);
    free_addrs(s);
    arm_io_timer(s);
    if (s->cb.connected)
        s->cb.connected(s, s->ud);
}

/* This address did not work: the next one. */
static void attempt_failed(sf_stream *s, sock_t *k, const char *why)
{
    snprintf(s->attempt, sizeof s->attempt, "%s", why);
    sock_close(s, k);
    try_next(s);
}

/* A failure on the current sock: of the attempt while connecting, else of the stream. */
static void sock_failed(sf_stream *s, sock_t *k, const char *why)
{
    if (s->state == S_CONNECTING)
        attempt_failed(s, k, why);
    else
        fail_now(s, why);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sock_t *k = h->data;
    *buf = uv_buf_init(k->st->rbuf, sizeof k->st->rbuf);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    sock_t *k = h->data;
    sf_stream *s = k->st;
    if (s->state == S_DEAD || s->sock != k)
        return;
    if (nread < 0) {
        char why[160];
        if (nread == UV_EOF && s->state == S_DRAINING) {
            drain_eof(s);
            return;
        }
        if (nread == UV_EOF)
            snprintf(why, sizeof why, "connection closed by the peer");
        else
            snprintf(why, sizeof why, "read: %s", uv_strerror((int)nread));
        sock_failed(s, k, why);
        return;
    }
    if (nread == 0)
        return;
    if (!k->ssl) {
        if (s->cb.received)
            s->cb.received(s, s->ud, buf->base, (size_t)nread);
        return;
    }
    if (BIO_write(k->rbio, buf->base, (int)nread) != (int)nread) {
        sock_failed(s, k, "TLS: cannot buffer input");
        return;
    }
    tls_pump(s, k);
}

static void tls_handshake(sf_stream *s, sock_t *k)
{
    char why[256];
    int r = SSL_do_handshake(k->ssl);
    int frc = tls_flush(s, k, false, NULL);
    if (frc) {
        snprintf(why, sizeof why, "TLS handshake write: %s", uv_strerror(frc));
        attempt_failed(s, k, why);
        return;
    }
    if (r == 1) {
        opened(s);
        if (s->state == S_OPEN && BIO_ctrl_pending(k->rbio) > 0)
            tls_pump(s, k); /* records that came with the handshake's last flight */
        return;
    }
    int e = SSL_get_error(k->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return;
    long vr = SSL_get_verify_result(k->ssl);
    if (vr != X509_V_OK) {
        snprintf(why, sizeof why, "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        snprintf(s->verify_why, sizeof s->verify_why, "%s", why);
    } else {
        char es[200];
        sf_tls_errstr(es, sizeof es);
        snprintf(why, sizeof why, "TLS handshake failed: %s", es);
    }
    attempt_failed(s, k, why);
}

static void tls_pump(sf_stream *s, sock_t *k)
{
    char why[256];
    ERR_clear_error();
    if (s->state == S_CONNECTING) {
        tls_handshake(s, k);
        return;
    }
    for (;;) { /* application data, session tickets, alerts */
        int r = SSL_read(k->ssl, s->tbuf, sizeof s->tbuf);
        if (r > 0) {
            if (s->cb.received)
                s->cb.received(s, s->ud, s->tbuf, (size_t)r);
            if (s->state == S_DEAD)
                return;
            continue;
        }
        int e = SSL_get_error(k->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN && s->state == S_DRAINING)
            return; /* the peer's close_notify: its TCP close (read_cb) confirms */
        if (e == SSL_ERROR_ZERO_RETURN) {
            fail_now(s, "peer closed the TLS session");
        } else {
            char es[200];
            sf_tls_errstr(es, sizeof es);
            snprintf(why, sizeof why, "TLS: %s", es);
            fail_now(s, why);
        }
        return;
    }
    int frc = tls_flush(s, k, false, NULL);
    if (frc) {
        snprintf(why, sizeof why, "TLS write: %s", uv_strerror(frc));
        fail_now(s, why);
    }
}

static int tls_start(sf_stream *s, sock_t *k)
{
    ERR_clear_error();
    if (!(k->ssl = SSL_new(s->ctx)))
        return -ENOMEM;
    k->rbio = BIO_new(BIO_s_mem());
    k->wbio = BIO_new(BIO_s_mem());
    if (!k->rbio || !k->wbio) {
        BIO_free(k->rbio);
        BIO_free(k->wbio);
        k->rbio = k->wbio = NULL;
        return -ENOMEM;
    }
    SSL_set_bio(k->ssl, k->rbio, k->wbio);
    SSL_set_connect_state(k->ssl);
    if (sf_tls_ssl_setup(k->ssl, s->tls, s->host))
        return -EINVAL;
    tls_pump(s, k);
    return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
    sock_t *k = req->data;
    sf_stream *s = k->st;
    if (s->state != S_CONNECTING || s->sock != k)
        return; /* closed meanwhile (UV_ECANCELED) */
    char why[160];
    if (status < 0) {
        snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
        attempt_failed(s, k, why);
        return;
    }
    int rc = uv_read_start(&k->h.s, alloc_cb, read_cb);
    if (rc) {
        snprintf(why, sizeof why, "read: %s", uv_strerror(rc));
        attempt_failed(s, k, why);
        return;
    }
    if (!s->ctx) {
        opened(s);
        return;
    }
    if (tls_start(s, k))
        attempt_failed(s, k, "cannot set up TLS (out of memory or invalid server_name)");
}

static void try_next(sf_stream *s)
{
    char why[160];
    while (s->state == S_CONNECTING && s->ai_next) {
        struct addrinfo *a = s->ai_next;
        s->ai_next = a->ai_next;
        sock_t *k = calloc(1, sizeof *k);
        if (!k) {
            snprintf(s->attempt, sizeof s->attempt, "out of memory");
            break;
        }
        k->st = s;
        int rc = s->datagram ? uv_udp_init(s->loop, &k->h.udp) : uv_tcp_init(s->loop, &k->h.tcp);
        if (rc) {
            free(k);
            snprintf(s->attempt, sizeof s->attempt, "socket: %s", uv_strerror(rc));
            continue;
        }
        k->h.h.data = k;
        s->refs++;
        s->sock = k;
        if (s->datagram) {
            rc = uv_udp_connect(&k->h.udp, a->ai_addr);
            if (rc) {
                snprintf(why, sizeof why, "connect: %s", uv_strerror(rc));
                snprintf(s->attempt, sizeof s->attempt, "%s", why);
                sock_close(s, k);
                continue;
            }
            opened(s);
            return;
        }
        uv_tcp_nodelay(&k->h.tcp, 1);
        k->creq.data = k;
        rc = uv_tcp_connect(&k->creq, &k->h.tcp, a->ai_addr, connect_cb);
        if (rc) {
            snprintf(s->attempt, sizeof s->attempt, "connect: %s", uv_strerror(rc));
            sock_close(s, k);
            continue;
        }
        return;
    }
    if (s->state == S_CONNECTING)
        fail_now(s, s->verify_why[0] ? s->verify_why : s->attempt); /* the fixable one first */
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sf_stream *s = req->data;
    s->gai_busy = false;
    if (s->state != S_RESOLVING) { /* closed or failed meanwhile */
        if (res)
            uv_freeaddrinfo(res);
    } else if (status < 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot resolve the host: %s", uv_strerror(status));
        fail_now(s, why);
    } else {
        s->ai = s->ai_next = res;
        snprintf(s->attempt, sizeof s->attempt, "no usable address");
        s->state = S_CONNECTING;
        try_next(s);
    }
    unref(s);
}

static void conn_timeout_cb(uv_timer_t *t)
{
    sf_stream *s = t->data;
    char why[160];
    snprintf(why, sizeof why, "connection not established within %lldms",
             (long long)s->connect_timeout_ms);
    fail_now(s, s->verify_why[0] ? s->verify_why : why);
}

sf_stream *sf_stream_open(uv_loop_t *loop, const sf_stream_opts *o, const sf_stream_cbs *cb,
                          void *ud)
{
    sf_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->cb = *cb;
    s->ud = ud;
    s->datagram = o->datagram;
    s->ctx = o->datagram ? NULL : o->tls_ctx;
    s->tls = o->tls;
    s->connect_timeout_ms = o->connect_timeout_ms;
    s->write_timeout_ms = o->write_timeout_ms;
    s->close_timeout_ms = o->close_timeout_ms;
    s->state = S_RESOLVING;
    uv_timer_init(loop, &s->conn_timer);
    uv_timer_init(loop, &s->io_timer);
    uv_timer_init(loop, &s->defer);
    s->conn_timer.data = s->io_timer.data = s->defer.data = s;
    s->refs = 3;
    int hl = snprintf(s->host, sizeof s->host, "%s", o->host ? o->host : "");
    int pl = snprintf(s->port, sizeof s->port, "%s", o->port ? o->port : "");
    if (hl <= 0 || (size_t)hl >= sizeof s->host || pl <= 0 || (size_t)pl >= sizeof s->port) {
        fail_later(s, "invalid host or port");
        return s;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = s->datagram ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    s->gai.data = s;
    int rc = uv_getaddrinfo(loop, &s->gai, gai_cb, s->host, s->port, &hints);
    if (rc) {
        char why[200];
        snprintf(why, sizeof why, "cannot resolve the host: %s", uv_strerror(rc));
        fail_later(s, why);
        return s;
    }
    s->gai_busy = true;
    s->refs++;
    if (s->connect_timeout_ms > 0)
        uv_timer_start(&s->conn_timer, conn_timeout_cb, (uint64_t)s->connect_timeout_ms, 0);
    return s;
}
