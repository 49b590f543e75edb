/* The "syslog" sink: RFC 5424 / RFC 3164 messages over UDP (RFC 5426), TCP (RFC 6587,
 * octet-counting or LF framing) or TLS (RFC 5425, OpenSSL memory BIOs over uv_tcp).
 *
 * One persistent connection, opened on the first batch and re-opened (after the pipeline's
 * retry backoff) when it fails. A record is OK once all its bytes were handed to the kernel
 * (uv_write / uv_udp_send completed). Records not fully written when the connection fails
 * are RETRY. The connection is read from so that a peer that closes it is noticed while idle
 * rather than on the next batch.
 *
 * Resend window (tcp/tls): plain syslog has no acknowledgement, so bytes written into the
 * kernel but not yet read by a receiver that stops are lost although they were OK. Every
 * framed message written is therefore kept (with the monotonic time of the write) in a FIFO
 * bounded by resend_window (age) and resend_window_bytes. When a connection breaks (EOF, read
 * or write error, write timeout), the whole window is marked; the next connection writes it
 * first, in order, before any new batch (at-least-once: the receiver may get duplicates).
 * Re-sent entries stay in the window with the time of the re-send. If no batch needs the
 * connection, the sink reconnects on its own (backoff 0.5s..30s) to deliver the window.
 *
 * Deferred settlement (sink.h): with the window on, a record only settles (lets the checkpoint
 * and the spool move past it) when it leaves the window: after resend_window on a connection
 * that did not break, or when the receiver confirmed it read everything, which is what a
 * graceful close proves: on flush (shutdown, end of --once) the sink half-closes the
 * connection (TLS close_notify + FIN) and waits for the receiver to close its side, which it
 * does only after reading all that came before. So a daemon killed while messages sit in the
 * window re-reads them from the API (or the spool) on restart: nothing written into a receiver
 * that then stops is lost, even across a crash. The window is not trimmed by size: a new batch
 * waits until the window is under resend_window_bytes (backpressure, never early settling). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/sockios.h> /* SIOCOUTQ */
#endif

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "net/tls.h"
#include "sinks/sink.h"
#include "sinks/syslog_fmt.h"

typedef struct syslog_cfg {
    char *address;
    int rfc;
    int framing;
    char *facility;
    char *app_name;
    char *hostname;
    char *msgid;
    char *sd_id;
    bool bom;
    uint64_t max_message_size;
    int oversize;
    sf_tls_cfg tls;
    int64_t connect_timeout_ms;
    int64_t write_timeout_ms;
    int64_t resend_window_ms;
    uint64_t resend_window_bytes;
} syslog_cfg;

static const char *const rfc_values[] = {"5424", "3164", NULL};
static const char *const framing_values[] = {"octet-counting", "lf", NULL};
static const char *const oversize_values[] = {"truncate", "reject", NULL};

static const sf_cfg_option syslog_options[] = {
    {.name = "address",
     .type = SF_OPT_STR,
     .flags = SF_OPT_REQUIRED,
     .desc = "udp://host:port, tcp://host:port or tls://host:port (IPv6: [::1])",
     .offset = offsetof(syslog_cfg, address)},
    {.name = "rfc",
     .type = SF_OPT_ENUM,
     .def = "5424",
     .enum_values = rfc_values,
     .desc = "Message format: RFC 5424 or the legacy BSD RFC 3164",
     .offset = offsetof(syslog_cfg, rfc)},
    {.name = "framing",
     .type = SF_OPT_ENUM,
     .def = "octet-counting",
     .enum_values = framing_values,
     .desc = "TCP framing (RFC 6587): octet-counting or lf (embedded LFs become spaces); TLS is "
             "always octet-counted",
     .offset = offsetof(syslog_cfg, framing)},
    {.name = "facility",
     .type = SF_OPT_STR,
     .def = "local0",
     .desc = "Facility name (kern ... local7) or number 0..23",
     .offset = offsetof(syslog_cfg, facility)},
    {.name = "app_name",
     .type = SF_OPT_STR,
     .def = "sysdig-forwarder",
     .desc = "APP-NAME (RFC 5424, at most 48) / TAG (RFC 3164, at most 32)",
     .offset = offsetof(syslog_cfg, app_name)},
    {.name = "hostname",
     .type = SF_OPT_STR,
     .desc = "HOSTNAME field (default: gethostname())",
     .offset = offsetof(syslog_cfg, hostname)},
    {.name = "msgid",
     .type = SF_OPT_STR,
     .def = "sysdig-event",
     .desc = "MSGID field (RFC 5424, at most 32)",
     .offset = offsetof(syslog_cfg, msgid)},
    {.name = "sd_id",
     .type = SF_OPT_STR,
     .def = "sysdig@32473",
     .desc = "SD-ID of the structured data element with the event id, policy and severity "
             "(RFC 5424; name@PEN, 32473 is the example PEN; empty: no structured data)",
     .offset = offsetof(syslog_cfg, sd_id)},
    {.name = "bom",
     .type = SF_OPT_BOOL,
     .def = "false",
     .desc = "Start MSG with the UTF-8 BOM (RFC 5424)",
     .offset = offsetof(syslog_cfg, bom)},
    {.name = "max_message_size",
     .type = SF_OPT_SIZE,
     .def = "0",
     .desc = "Largest message (header + body, framing excluded); 0: 1024 with rfc 3164, 2048 "
             "over udp, 64KiB over tcp/tls",
     .offset = offsetof(syslog_cfg, max_message_size)},
    {.name = "oversize",
     .type = SF_OPT_ENUM,
     .def = "truncate",
     .enum_values = oversize_values,
     .desc = "A larger message is truncated (at a UTF-8 boundary) or rejected (dead letter)",
     .offset = offsetof(syslog_cfg, oversize)},
    {.name = "tls",
     .type = SF_OPT_SECTION,
     .sub = sf_tls_options,
     .offset = offsetof(syslog_cfg, tls),
     .desc = "TLS (tls:// addresses; the shared TLS table)"},
    {.name = "connect_timeout",
     .type = SF_OPT_DURATION,
     .def = "10s",
     .min = 1,
     .desc = "Name resolution + connection + TLS handshake",
     .offset = offsetof(syslog_cfg, connect_timeout_ms)},
    {.name = "write_timeout",
     .type = SF_OPT_DURATION,
     .def = "30s",
     .min = 1,
     .desc = "A batch not fully written by then fails (the connection is dropped)",
     .offset = offsetof(syslog_cfg, write_timeout_ms)},
    {.name = "resend_window",
     .type = SF_OPT_DURATION,
     .def = "10s",
     .min = 0,
     .max = 3600000,
     .desc = "tcp/tls: messages written in this last period are kept and written again after "
             "the connection breaks (a receiver stopped before reading them), and the checkpoint "
             "waits until they leave the window; duplicates are possible; 0 disables; ignored "
             "over udp",
     .offset = offsetof(syslog_cfg, resend_window_ms)},
    {.name = "resend_window_bytes",
     .type = SF_OPT_SIZE,
     .def = "8MiB",
     .min = 0,
     .max = 1073741824,
     .desc = "Bound on the bytes kept for resend_window: a new batch waits while the window "
             "holds this much (backpressure); 0 disables the window",
     .offset = offsetof(syslog_cfg, resend_window_bytes)},
    {0},
};

/* ---- state ---- */

struct sl_state;

typedef struct conn {
    struct sl_state *st;
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_udp_t udp;
    } h;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    bool ready;     /* connected (and TLS handshake done) */
    bool dead;      /* uv_close called */
    bool draining;  /* half-closed by us (flush): waiting for the receiver to close its side */
    bool shut_done; /* our half-close (FIN) was handed to the kernel */
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    char rbuf[16384];
    char tlsbuf[16384];
} conn_t;

typedef struct wreq {
    union {
        uv_write_t w;
        uv_udp_send_t u;
    } req;
    conn_t *conn;
    long rec; /* index in the batch, REC_CONTROL (TLS handshake/control), REC_RESEND */
    char *own;
} wreq_t;

/* One framed message of the resend window. */
typedef struct rs_ent {
    struct rs_ent *next;
    uint64_t t_ms;  /* uv_now() of the write (or of the last re-send) */
    uint64_t extra; /* records that settle with this one (copies that could not be kept) */
    size_t len;
    char data[];
} rs_ent;

#define SL_NTIMERS 4
#define REC_CONTROL (-1)
#define REC_RESEND (-2) /* the write of the resend window */
#define RS_DELAY_MIN_MS 500
#define RS_DELAY_MAX_MS 30000

typedef struct gai_req {
    uv_getaddrinfo_t req;
    struct sl_state *st;
    bool abandoned;
} gai_req_t;

typedef struct sl_state {
    sf_sink *sink;
    const syslog_cfg *c;
    int transport;
    char host[256];
    char port[8];
    sf_syslog_opts fo;
    int framing;
    char hostname[256];
    char procid[24];
    SSL_CTX *ctx;
    uv_timer_t conn_timer, write_timer, resend_timer, settle_timer;
    int timers_open;
    gai_req_t *gai; /* current resolution or NULL */
    int gai_pending;
    struct addrinfo *ai, *ai_next;
    conn_t *conn; /* current connection (connecting or ready) */
    int nconns;   /* connections not freed yet */
    char attempt_err[200];
    /* batch in flight */
    sf_sink_batch *batch;
    sf_buf frames;
    size_t *off, *len;
    size_t cap;
    bool written;
    size_t pending;
    sf_buf msg;
    uint64_t ntruncated, nrejected;
    bool was_connected;
    bool closing;
    /* resend window (tcp/tls) */
    rs_ent *rs_head, *rs_tail;
    size_t rs_bytes, rs_count;
    bool rs_pending;    /* the connection broke: write the window first on the next one */
    bool rs_resending;  /* the window's re-send is queued, not written yet: no aging */
    size_t rs_resend_n; /* entries in that re-send */
    bool rs_nomark;     /* closing the connection on purpose (SIGHUP): nothing to re-send */
    uint64_t nresent;   /* messages re-sent in total (duplicates at the receiver, at most) */
    uint64_t rs_delay_ms;
    bool flush_requested; /* settle the window by a graceful close once idle */
    bool rs_full_logged;
    void (*closed)(sf_sink *);
} sl_state;

static void try_next_addr(sl_state *st);
static void send_batch(sl_state *st);
static void kick_send(sl_state *st);
static void write_timeout_cb(uv_timer_t *t);
static void maybe_closed(sl_state *st);

static const char *tname(int t)
{
    return t == SF_SYSLOG_UDP ? "udp" : t == SF_SYSLOG_TCP ? "tcp" : "tls";
}

/* ---- resend window ---- */

static bool rs_enabled(const sl_state *st)
{
    return st->transport != SF_SYSLOG_UDP && st->c->resend_window_ms > 0 &&
           st->c->resend_window_bytes > 0;
}

/* Drops the oldest entry; returns the records it settles (0 if not settle). */
static uint64_t rs_drop_head(sl_state *st, bool settle)
{
    rs_ent *e = st->rs_head;
    st->rs_head = e->next;
    if (!st->rs_head)
        st->rs_tail = NULL;
    st->rs_bytes -= e->len;
    st->rs_count--;
    uint64_t n = settle ? 1 + e->extra : 0;
    free(e);
    return n;
}

/* Drops every entry; returns the records that settled (0 if not settle). */
static uint64_t rs_drop_all(sl_state *st, bool settle)
{
    uint64_t n = 0;
    while (st->rs_head)
        n += rs_drop_head(st, settle);
    return n;
}

/* The window ages (its entries settle by time) unless it waits to be re-sent or its re-send
 * is not written yet. */
static bool rs_aging(const sl_state *st)
{
    return !st->rs_pending && !st->rs_resending;
}

/* Drops the entries older than the window; returns the records that settled (the caller
 * reports them with sf_sink_settled once its own state is consistent). */
static uint64_t rs_prune_age(sl_state *st)
{
    uint64_t now = uv_now(st->sink->loop), n = 0;
    while (st->rs_head && now - st->rs_head->t_ms >= (uint64_t)st->c->resend_window_ms)
        n += rs_drop_head(st, true);
    return n;
}

static void settle_timer_cb(uv_timer_t *t);

/* Arms the settle timer for the oldest entry (not while the window waits to be re-sent). */
static void settle_arm(sl_state *st)
{
    if (st->timers_open != SL_NTIMERS || st->closing)
        return;
    if (!st->rs_head || !rs_aging(st)) {
        uv_timer_stop(&st->settle_timer);
        return;
    }
    uint64_t now = uv_now(st->sink->loop);
    uint64_t due = st->rs_head->t_ms + (uint64_t)st->c->resend_window_ms;
    uv_timer_start(&st->settle_timer, settle_timer_cb, due > now ? due - now : 1, 0);
}

static void settle_timer_cb(uv_timer_t *t)
{
    sl_state *st = t->data;
    uint64_t n = rs_aging(st) ? rs_prune_age(st) : 0;
    settle_arm(st);
    kick_send(st); /* a batch may have waited for room in the window */
    sf_sink_settled(st->sink, n);
}

/* Keeps a copy of a message just written (its record settles when the copy leaves). */
static void rs_add(sl_state *st, const char *data, size_t len)
{
    if (!rs_enabled(st))
        return;
    rs_ent *e = malloc(sizeof *e + len);
    if (!e) {
        /* no copy: the record settles with the newest kept one (or now, if none is kept) */
        if (st->rs_tail)
            st->rs_tail->extra++;
        else
            sf_sink_settled(st->sink, 1);
        return;
    }
    e->next = NULL;
    e->t_ms = uv_now(st->sink->loop);
    e->extra = 0;
    e->len = len;
    memcpy(e->data, data, len);
    if (st->rs_tail)
        st->rs_tail->next = e;
    else
        st->rs_head = e;
    st->rs_tail = e;
    st->rs_bytes += len;
    st->rs_count++;
    if (st->timers_open == SL_NTIMERS && !uv_is_active((uv_handle_t *)&st->settle_timer))
        settle_arm(st);
}

/* Room for another batch: the window is under resend_window_bytes. */
static bool rs_has_room(const sl_state *st)
{
    return !rs_enabled(st) || st->rs_bytes < st->c->resend_window_bytes;
}

static void start_connect(sl_state *st);

static void resend_timer_cb(uv_timer_t *t)
{
    sl_state *st = t->data;
    if (st->closing || !st->rs_pending || !st->rs_head || st->conn || st->gai || st->batch)
        return;
    SF_DEBUG("sink", "sink %s: reconnecting to re-send %zu messages", st->sink->name, st->rs_count);
    start_connect(st);
}

/* Idle with a window to re-send and no connection: reconnect after a backoff (a batch would
 * reconnect anyway). */
static void rs_kick(sl_state *st)
{
    if (st->closing || st->timers_open != SL_NTIMERS || !st->rs_pending || !st->rs_head ||
        st->conn || st->gai || st->batch)
        return;
    if (st->rs_delay_ms < RS_DELAY_MIN_MS)
        st->rs_delay_ms = RS_DELAY_MIN_MS;
    uv_timer_start(&st->resend_timer, resend_timer_cb, st->rs_delay_ms, 0);
    st->rs_delay_ms = st->rs_delay_ms * 2 > RS_DELAY_MAX_MS ? RS_DELAY_MAX_MS : st->rs_delay_ms * 2;
}

static int queue_write(conn_t *cn, const char *data, size_t len, long rec, char *own);
static int tls_flush(conn_t *cn, long rec);
static void conn_fail(conn_t *cn, const char *why);

/* On a new connection: writes the marked window first, in order. The entries stay in the
 * window, with the time of this re-send. */
static void rs_resend(conn_t *cn)
{
    sl_state *st = cn->st;
    if (!st->rs_head) {
        st->rs_pending = false;
        return;
    }
    uint64_t now = uv_now(st->sink->loop);
    double age = (double)(now - st->rs_head->t_ms) / 1000.0;
    SF_INFO("sink",
            "sink %s: connection lost; re-sending %zu messages written in the last %.1fs "
            "(%zu bytes; %llu re-sent in total, duplicates possible)",
            st->sink->name, st->rs_count, age, st->rs_bytes,
            (unsigned long long)(st->nresent + st->rs_count));
    char why[256];
    int rc = 0;
    /* until the re-send is queued the window stays marked (a failure here keeps it whole) */
    if (cn->ssl) {
        for (rs_ent *e = st->rs_head; e; e = e->next) {
            ERR_clear_error();
            if (SSL_write(cn->ssl, e->data, (int)e->len) != (int)e->len) {
                char es[200];
                sf_tls_errstr(es, sizeof es);
                snprintf(why, sizeof why, "TLS write: %s", es);
                conn_fail(cn, why);
                return;
            }
        }
        rc = tls_flush(cn, REC_RESEND);
    } else {
        char *buf = malloc(st->rs_bytes);
        if (!buf) {
            conn_fail(cn, "out of memory re-sending the resend window");
            return;
        }
        size_t n = 0;
        for (rs_ent *e = st->rs_head; e; e = e->next) {
            memcpy(buf + n, e->data, e->len);
            n += e->len;
        }
        rc = queue_write(cn, buf, n, REC_RESEND, buf);
    }
    if (rc) {
        snprintf(why, sizeof why, "write: %s", uv_strerror(rc));
        conn_fail(cn, why);
        return;
    }
    st->nresent += st->rs_count;
    st->rs_pending = false;
    st->rs_resending = true; /* the entries age from the re-send's completion (write_cb) */
    st->rs_resend_n = st->rs_count;
    settle_arm(st);
    uv_timer_start(&st->write_timer, write_timeout_cb, (uint64_t)st->c->write_timeout_ms, 0);
}

/* The re-send was written: its entries age from now. */
static void rs_resent(sl_state *st)
{
    uint64_t now = uv_now(st->sink->loop);
    size_t k = 0;
    for (rs_ent *e = st->rs_head; e && k < st->rs_resend_n; e = e->next, k++)
        e->t_ms = now;
    st->rs_resending = false;
    settle_arm(st);
    if (!(st->batch && st->written))
        uv_timer_stop(&st->write_timer); /* a batch's writes keep their own timeout */
}

/* ---- batch completion ---- */

static void finish_batch(sl_state *st)
{
    sf_sink_batch *b = st->batch;
    if (!b)
        return;
    if (st->timers_open == SL_NTIMERS)
        uv_timer_stop(&st->write_timer);
    st->batch = NULL;
    st->written = false;
    st->pending = 0;
    size_t ok = 0;
    for (size_t i = 0; i < b->n; i++)
        ok += b->status[i] == SF_DELIV_OK;
    SF_DEBUG("sink", "sink %s: batch of %zu: %zu written", st->sink->name, b->n, ok);
    sf_sink_batch_done(b);
    rs_kick(st);
    maybe_closed(st);
}

/* ---- connections ---- */

static void conn_closed_cb(uv_handle_t *h)
{
    conn_t *cn = h->data;
    sl_state *st = cn->st;
    if (cn->ssl)
        SSL_free(cn->ssl);
    free(cn);
    st->nconns--;
    maybe_closed(st);
}

static void free_addrs(sl_state *st)
{
    if (st->ai)
        uv_freeaddrinfo(st->ai);
    st->ai = st->ai_next = NULL;
}

/* The connection attempt failed for good (every address tried, timeout, closing). */
static void connect_failed(sl_state *st, const char *why)
{
    if (st->timers_open == SL_NTIMERS)
        uv_timer_stop(&st->conn_timer);
    free_addrs(st);
    if (st->gai) {
        st->gai->abandoned = true;
        uv_cancel((uv_req_t *)&st->gai->req);
        st->gai = NULL;
    }
    sf_sink_set_error(st->sink, "%s://%s:%s: %s", tname(st->transport), st->host, st->port, why);
    if (st->batch && !st->written)
        finish_batch(st); /* all RETRY: the pipeline backs off, the next batch reconnects */
    else
        rs_kick(st);
}

static void conn_fail(conn_t *cn, const char *why)
{
    sl_state *st = cn->st;
    if (cn->dead)
        return;
    cn->dead = true;
    uv_close(&cn->h.h, conn_closed_cb);
    if (st->conn != cn)
        return;
    st->conn = NULL;
    if (!cn->ready) {
        snprintf(st->attempt_err, sizeof st->attempt_err, "%s", why);
        try_next_addr(st);
        return;
    }
    sf_sink_set_error(st->sink, "%s://%s:%s: %s", tname(st->transport), st->host, st->port, why);
    if (!st->closing)
        SF_WARN("sink", "sink %s: connection lost: %s", st->sink->name, st->sink->last_error);
    if (st->timers_open == SL_NTIMERS)
        uv_timer_stop(&st->write_timer); /* it timed this connection's writes */
    uint64_t settled = 0;
    if (!st->closing && !st->rs_nomark && rs_enabled(st)) {
        if (rs_aging(st))
            settled = rs_prune_age(st);
        st->rs_pending = true; /* writes completed later on this connection join the window */
        st->rs_resending = false;
        settle_arm(st); /* stops it: the window waits to be re-sent */
        rs_kick(st);
    }
    /* writes in flight complete with UV_ECANCELED -> RETRY, and then the batch; a batch
     * waiting for room in the window was not written at all */
    if (st->batch && !st->written)
        finish_batch(st);
    sf_sink_settled(st->sink, settled);
}

static void drain_start(conn_t *cn);

static void conn_ready(conn_t *cn)
{
    sl_state *st = cn->st;
    cn->ready = true;
    uv_timer_stop(&st->conn_timer);
    free_addrs(st);
    SF_INFO("sink", "sink %s: connected to %s://%s:%s", st->sink->name, tname(st->transport),
            st->host, st->port);
    st->was_connected = true;
    st->rs_delay_ms = RS_DELAY_MIN_MS;
    if (st->rs_pending)
        rs_resend(cn);
    if (cn->dead)
        return;
    if (st->batch && !st->written)
        kick_send(st);
    else if (st->flush_requested)
        drain_start(cn);
}

static void write_cb(uv_write_t *req, int status);

/* Queues one buffer on the connection. rec >= 0 counts toward the batch. own (malloc'd) is
 * freed after the write. Returns 0 or a libuv error. */
static int queue_write(conn_t *cn, const char *data, size_t len, long rec, char *own);

static void udp_send_cb(uv_udp_send_t *req, int status)
{
    wreq_t *w = req->data;
    write_cb((uv_write_t *)(void *)w, status);
}

static void write_cb(uv_write_t *req, int status)
{
    wreq_t *w = req->data;
    conn_t *cn = w->conn;
    sl_state *st = cn->st;
    long rec = w->rec;
    free(w->own);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        char why[160];
        snprintf(why, sizeof why, "write: %s", uv_strerror(status));
        conn_fail(cn, why);
    }
    if (rec == REC_RESEND && status == 0 && st->rs_resending && cn == st->conn)
        rs_resent(st);
    if (rec < 0 || !st->batch)
        return;
    if (status == 0)
        rs_add(st, st->frames.data + st->off[rec], st->len[rec]);
    st->batch->status[rec] = status == 0 ? SF_DELIV_OK : SF_DELIV_RETRY;
    if (--st->pending == 0)
        finish_batch(st);
}

static int queue_write(conn_t *cn, const char *data, size_t len, long rec, char *own)
{
    wreq_t *w = malloc(sizeof *w);
    if (!w) {
        free(own);
        return UV_ENOMEM;
    }
    w->conn = cn;
    w->rec = rec;
    w->own = own;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int rc;
    if (cn->st->transport == SF_SYSLOG_UDP) {
        w->req.u.data = w;
        rc = uv_udp_send(&w->req.u, &cn->h.udp, &buf, 1, NULL, udp_send_cb);
    } else {
        w->req.w.data = w;
        rc = uv_write(&w->req.w, &cn->h.s, &buf, 1, write_cb);
    }
    if (rc) {
        free(own);
        free(w);
    }
    return rc;
}

/* Moves what OpenSSL produced to the socket. */
static int tls_flush(conn_t *cn, long rec)
{
    size_t n = BIO_ctrl_pending(cn->wbio);
    if (n == 0)
        return 0;
    char *p = malloc(n);
    if (!p)
        return UV_ENOMEM;
    int r = BIO_read(cn->wbio, p, (int)n);
    if (r <= 0 || (size_t)r != n) {
        free(p);
        return UV_EIO;
    }
    return queue_write(cn, p, n, rec, p);
}

static void drain_eof(conn_t *cn);

static void tls_pump(conn_t *cn)
{
    char why[256];
    ERR_clear_error();
    if (!cn->ready) {
        int r = SSL_do_handshake(cn->ssl);
        int frc = tls_flush(cn, REC_CONTROL);
        if (frc) {
            snprintf(why, sizeof why, "TLS handshake write: %s", uv_strerror(frc));
            conn_fail(cn, why);
            return;
        }
        if (r == 1) {
            conn_ready(cn);
            return;
        }
        int e = SSL_get_error(cn->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return;
        long vr = SSL_get_verify_result(cn->ssl);
        if (vr != X509_V_OK) {
            snprintf(why, sizeof why, "TLS certificate verification failed: %s",
                     X509_verify_cert_error_string(vr));
        } else {
            char es[200];
            sf_tls_errstr(es, sizeof es);
            snprintf(why, sizeof why, "TLS handshake failed: %s", es);
        }
        conn_fail(cn, why);
        return;
    }
    for (;;) { /* post-handshake messages (session tickets, alerts); data is ignored */
        int r = SSL_read(cn->ssl, cn->tlsbuf, sizeof cn->tlsbuf);
        if (r > 0)
            continue;
        int e = SSL_get_error(cn->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN && cn->draining) {
            return; /* the receiver's close_notify: its TCP close (read_cb) confirms */
        } else if (e == SSL_ERROR_ZERO_RETURN) {
            conn_fail(cn, "peer closed the TLS session");
        } else {
            char es[200];
            sf_tls_errstr(es, sizeof es);
            snprintf(why, sizeof why, "TLS: %s", es);
            conn_fail(cn, why);
        }
        return;
    }
    int frc = tls_flush(cn, REC_CONTROL);
    if (frc) {
        snprintf(why, sizeof why, "TLS write: %s", uv_strerror(frc));
        conn_fail(cn, why);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *cn = h->data;
    *buf = uv_buf_init(cn->rbuf, sizeof cn->rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *cn = s->data;
    if (cn->dead)
        return;
    if (nread < 0) {
        char why[160];
        if (nread == UV_EOF && cn->draining) {
            drain_eof(cn);
            return;
        }
        if (nread == UV_EOF)
            snprintf(why, sizeof why, "connection closed by the peer");
        else
            snprintf(why, sizeof why, "read: %s", uv_strerror((int)nread));
        conn_fail(cn, why);
        return;
    }
    if (nread == 0 || !cn->ssl)
        return; /* plain syslog receivers send nothing */
    if (BIO_write(cn->rbio, buf->base, (int)nread) != (int)nread) {
        conn_fail(cn, "TLS: cannot buffer input");
        return;
    }
    tls_pump(cn);
}

static int tls_start(conn_t *cn)
{
    sl_state *st = cn->st;
    ERR_clear_error();
    if (!(cn->ssl = SSL_new(st->ctx)))
        return -ENOMEM;
    cn->rbio = BIO_new(BIO_s_mem());
    cn->wbio = BIO_new(BIO_s_mem());
    if (!cn->rbio || !cn->wbio) {
        BIO_free(cn->rbio);
        BIO_free(cn->wbio);
        cn->rbio = cn->wbio = NULL;
        return -ENOMEM;
    }
    SSL_set_bio(cn->ssl, cn->rbio, cn->wbio);
    SSL_set_connect_state(cn->ssl);
    if (sf_tls_ssl_setup(cn->ssl, &st->c->tls, st->host))
        return -EINVAL;
    tls_pump(cn);
    return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
    conn_t *cn = req->data;
    if (cn->dead)
        return;
    char why[160];
    if (status < 0) {
        snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
        conn_fail(cn, why);
        return;
    }
    int rc = uv_read_start(&cn->h.s, alloc_cb, read_cb);
    if (rc) {
        snprintf(why, sizeof why, "read: %s", uv_strerror(rc));
        conn_fail(cn, why);
        return;
    }
    if (cn->st->transport == SF_SYSLOG_TLS) {
        if ((rc = tls_start(cn)) != 0)
            conn_fail(cn, "cannot set up TLS (out of memory or invalid server_name)");
        return;
    }
    conn_ready(cn);
}

static void try_next_addr(sl_state *st)
{
    char why[200];
    while (!st->closing && st->ai_next) {
        struct addrinfo *a = st->ai_next;
        st->ai_next = a->ai_next;
        conn_t *cn = calloc(1, sizeof *cn);
        if (!cn) {
            snprintf(st->attempt_err, sizeof st->attempt_err, "out of memory");
            break;
        }
        cn->st = st;
        int rc = st->transport == SF_SYSLOG_UDP ? uv_udp_init(st->sink->loop, &cn->h.udp)
                                                : uv_tcp_init(st->sink->loop, &cn->h.tcp);
        if (rc) {
            free(cn);
            snprintf(st->attempt_err, sizeof st->attempt_err, "socket: %s", uv_strerror(rc));
            continue;
        }
        cn->h.h.data = cn;
        st->nconns++;
        st->conn = cn;
        if (st->transport == SF_SYSLOG_UDP) {
            rc = uv_udp_connect(&cn->h.udp, a->ai_addr);
            if (rc) {
                snprintf(why, sizeof why, "connect: %s", uv_strerror(rc));
                conn_fail(cn, why); /* recurses into the next address */
                return;
            }
            conn_ready(cn);
            return;
        }
        uv_tcp_nodelay(&cn->h.tcp, 1);
        cn->creq.data = cn;
        rc = uv_tcp_connect(&cn->creq, &cn->h.tcp, a->ai_addr, connect_cb);
        if (rc) {
            snprintf(why, sizeof why, "connect: %s", uv_strerror(rc));
            conn_fail(cn, why);
        }
        return;
    }
    connect_failed(st, st->closing ? "closing" : st->attempt_err);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gai_req_t *g = req->data;
    sl_state *st = g->st;
    bool abandoned = g->abandoned;
    free(g);
    st->gai_pending--;
    if (abandoned) {
        if (res)
            uv_freeaddrinfo(res);
        maybe_closed(st);
        return;
    }
    st->gai = NULL;
    if (status < 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot resolve the host: %s", uv_strerror(status));
        connect_failed(st, why);
        return;
    }
    st->ai = st->ai_next = res;
    snprintf(st->attempt_err, sizeof st->attempt_err, "no usable address");
    try_next_addr(st);
}

static void conn_timeout_cb(uv_timer_t *t)
{
    sl_state *st = t->data;
    char why[200];
    snprintf(why, sizeof why, "connection not established within %lldms",
             (long long)st->c->connect_timeout_ms);
    free_addrs(st); /* no further address */
    if (st->conn && !st->conn->ready) {
        conn_t *cn = st->conn;
        st->conn = NULL;
        cn->dead = true;
        uv_close(&cn->h.h, conn_closed_cb);
    }
    connect_failed(st, why);
}

static void write_timeout_cb(uv_timer_t *t)
{
    sl_state *st = t->data;
    if (st->conn) {
        char why[200];
        if (st->conn->draining)
            snprintf(why, sizeof why,
                     "the receiver did not close its side within %lldms after ours (its "
                     "reading is not confirmed)",
                     (long long)st->c->write_timeout_ms);
        else
            snprintf(why, sizeof why, "batch not written within %lldms (slow or stuck peer)",
                     (long long)st->c->write_timeout_ms);
        conn_fail(st->conn, why);
    }
}

static void start_connect(sl_state *st)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = st->transport == SF_SYSLOG_UDP ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    gai_req_t *g = calloc(1, sizeof *g);
    if (!g) {
        connect_failed(st, "out of memory");
        return;
    }
    g->st = st;
    g->req.data = g;
    uv_timer_start(&st->conn_timer, conn_timeout_cb, (uint64_t)st->c->connect_timeout_ms, 0);
    int rc = uv_getaddrinfo(st->sink->loop, &g->req, gai_cb, st->host, st->port, &hints);
    if (rc) {
        free(g);
        char why[200];
        snprintf(why, sizeof why, "cannot resolve the host: %s", uv_strerror(rc));
        connect_failed(st, why);
        return;
    }
    st->gai = g;
    st->gai_pending++;
}

/* ---- batches ---- */

static void send_batch(sl_state *st)
{
    sf_sink_batch *b = st->batch;
    conn_t *cn = st->conn;
    st->written = true;
    st->pending = 1; /* guard: the batch cannot finish while writes are being queued */
    uv_timer_start(&st->write_timer, write_timeout_cb, (uint64_t)st->c->write_timeout_ms, 0);
    for (size_t i = 0; i < b->n && cn && !cn->dead; i++) {
        if (st->len[i] == 0)
            continue;
        const char *p = st->frames.data + st->off[i];
        int rc;
        if (cn->ssl) {
            ERR_clear_error();
            int r = SSL_write(cn->ssl, p, (int)st->len[i]);
            if (r != (int)st->len[i]) {
                char es[200], why[256];
                sf_tls_errstr(es, sizeof es);
                snprintf(why, sizeof why, "TLS write: %s", es);
                conn_fail(cn, why);
                break;
            }
            rc = tls_flush(cn, (long)i);
        } else {
            rc = queue_write(cn, p, st->len[i], (long)i, NULL);
        }
        if (rc) {
            char why[160];
            snprintf(why, sizeof why, "write: %s", uv_strerror(rc));
            conn_fail(cn, why);
            break;
        }
        st->pending++;
    }
    if (--st->pending == 0)
        finish_batch(st);
}

/* Gets the batch in hand written: now, once the window has room, or after (re)connecting. */
static void kick_send(sl_state *st)
{
    if (!st->batch || st->written || st->closing)
        return;
    conn_t *cn = st->conn;
    if (cn && cn->ready && !cn->draining) {
        if (rs_has_room(st)) {
            send_batch(st);
        } else {
            if (!st->rs_full_logged) {
                st->rs_full_logged = true;
                SF_INFO("sink",
                        "sink %s: resend window full (%zu bytes written in the last %lldms); "
                        "new batches wait for it to settle (raise resend_window_bytes for more "
                        "throughput; logged once)",
                        st->sink->name, st->rs_bytes, (long long)st->c->resend_window_ms);
            }
            settle_arm(st); /* the batch waits for the oldest entries to settle */
        }
    } else if (!cn && !st->gai) {
        start_connect(st);
    }
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    conn_t *cn = req->data;
    if (status == 0)
        cn->shut_done = true;
    if (status < 0 && status != UV_ECANCELED && !cn->dead) {
        char why[160];
        snprintf(why, sizeof why, "half-close: %s", uv_strerror(status));
        conn_fail(cn, why);
    }
}

/* flush: half-close the connection; the receiver closing its side confirms it read it all. */
static void drain_start(conn_t *cn)
{
    sl_state *st = cn->st;
    st->flush_requested = false;
    if (cn->draining || !st->rs_head)
        return;
    cn->draining = true;
    SF_DEBUG("sink", "sink %s: closing the connection to confirm %zu messages were read",
             st->sink->name, st->rs_count);
    uv_timer_start(&st->write_timer, write_timeout_cb, (uint64_t)st->c->write_timeout_ms, 0);
    if (cn->ssl) {
        ERR_clear_error();
        SSL_shutdown(cn->ssl); /* close_notify */
        int rc = tls_flush(cn, REC_CONTROL);
        if (rc) {
            char why[160];
            snprintf(why, sizeof why, "TLS close: %s", uv_strerror(rc));
            conn_fail(cn, why);
            return;
        }
    }
    cn->sreq.data = cn;
    int rc = uv_shutdown(&cn->sreq, &cn->h.s, shutdown_cb);
    if (rc) {
        char why[160];
        snprintf(why, sizeof why, "half-close: %s", uv_strerror(rc));
        conn_fail(cn, why);
    }
}

/* Bytes (and FIN) not yet acknowledged by the receiver's TCP; -1 if unknown. */
static long unacked_bytes(conn_t *cn)
{
#ifdef SIOCOUTQ
    uv_os_fd_t fd;
    int n = 0;
    if (uv_fileno(&cn->h.h, &fd) == 0 && ioctl(fd, SIOCOUTQ, &n) == 0)
        return n;
#endif
    (void)cn;
    return -1;
}

/* The receiver closed its side after ours: it read every byte we wrote, so the whole window
 * settles. The connection is closed; the next batch opens a new one. */
static void drained(conn_t *cn);

/* End of stream while draining. It confirms only if our half-close went out first and the
 * receiver's TCP acknowledged everything we sent (a receiver that closed or died with our
 * bytes unread or not yet arrived answers with a reset, or leaves them unacknowledged). */
static void drain_eof(conn_t *cn)
{
    long unacked = unacked_bytes(cn);
    if (cn->shut_done && unacked == 0) {
        drained(cn);
        return;
    }
    char why[200];
    snprintf(why, sizeof why,
             "the receiver closed the connection before confirming it read everything "
             "(%s, %ld bytes unacknowledged)",
             cn->shut_done ? "after our close" : "before our close", unacked);
    conn_fail(cn, why);
}

static void drained(conn_t *cn)
{
    sl_state *st = cn->st;
    uv_timer_stop(&st->write_timer);
    size_t count = st->rs_count;
    uint64_t n = rs_drop_all(st, true);
    settle_arm(st);
    cn->dead = true;
    uv_close(&cn->h.h, conn_closed_cb);
    if (st->conn == cn)
        st->conn = NULL;
    SF_INFO("sink", "sink %s: receiver confirmed reading all %zu messages written (graceful close)",
            st->sink->name, count);
    kick_send(st);
    sf_sink_settled(st->sink, n);
}

static void syslog_flush(sf_sink *s)
{
    sl_state *st = s->state;
    if (!rs_enabled(st) || !st->rs_head || st->closing || st->batch)
        return;
    if (st->conn && st->conn->ready && !st->rs_pending)
        drain_start(st->conn);
    else
        st->flush_requested = true; /* after the window was re-sent on the next connection */
}

static int ensure_cap(sl_state *st, size_t n)
{
    if (n <= st->cap)
        return 0;
    size_t *off = realloc(st->off, n * sizeof *off);
    if (!off)
        return -ENOMEM;
    st->off = off;
    size_t *len = realloc(st->len, n * sizeof *len);
    if (!len)
        return -ENOMEM;
    st->len = len;
    st->cap = n;
    return 0;
}

static int syslog_submit(sf_sink *s, sf_sink_batch *b)
{
    sl_state *st = s->state;
    if (st->closing || st->batch)
        return -EBUSY;
    if (ensure_cap(st, b->n)) {
        sf_sink_set_error(s, "out of memory");
        return -ENOMEM;
    }
    sf_buf_reset(&st->frames);
    size_t towrite = 0, trunc = 0;
    for (size_t i = 0; i < b->n; i++) {
        const sf_event *ev = b->events[i];
        int sev07 = sf_event_severity07(ev);
        sf_syslog_fields f = {.ts_ns = ev->ts_ns,
                              .severity = sf_syslog_severity(sev07),
                              .id = ev->id,
                              .policy = sf_event_str(ev, "name"),
                              .sysdig_severity = sev07};
        bool truncated = false;
        b->status[i] = SF_DELIV_RETRY;
        st->len[i] = 0;
        sf_buf_reset(&st->msg);
        int rc = sf_syslog_format(&st->msg, &st->fo, &f, b->records[i].data, b->records[i].len,
                                  &truncated);
        if (rc == -EMSGSIZE) {
            b->status[i] = SF_DELIV_REJECT;
            char reason[160];
            snprintf(reason, sizeof reason,
                     "syslog message larger than max_message_size (%zu bytes) and oversize: "
                     "reject",
                     st->fo.max_size);
            b->reason[i] = sf_strdup(reason);
            st->nrejected++;
            continue;
        }
        size_t start = st->frames.len;
        if (rc == 0)
            rc = st->transport == SF_SYSLOG_UDP
                     ? sf_buf_append(&st->frames, st->msg.data, st->msg.len)
                     : sf_syslog_frame(&st->frames, st->framing, st->msg.data, st->msg.len);
        if (rc) {
            sf_sink_set_error(s, "out of memory formatting a message");
            continue; /* RETRY */
        }
        if (truncated) {
            trunc++;
            st->ntruncated++;
        }
        st->off[i] = start;
        st->len[i] = st->frames.len - start;
        towrite++;
    }
    if (trunc)
        SF_WARN("sink", "sink %s: %zu messages truncated to max_message_size %zu (%llu in total)",
                s->name, trunc, st->fo.max_size, (unsigned long long)st->ntruncated);
    st->batch = b;
    st->written = false;
    if (towrite == 0) {
        finish_batch(st);
        return 0;
    }
    kick_send(st);
    return 0;
}

/* ---- open / close ---- */

static void free_state(sl_state *st)
{
    if (!st)
        return;
    if (st->ctx)
        SSL_CTX_free(st->ctx);
    free_addrs(st);
    rs_drop_all(st, false);
    sf_buf_free(&st->frames);
    sf_buf_free(&st->msg);
    free(st->off);
    free(st->len);
    free(st);
}

static int build_ctx(sl_state *st)
{
    char err[400];
    if (!(st->ctx = sf_tls_ctx_new(&st->c->tls, err, sizeof err))) {
        sf_sink_set_error(st->sink, "%s", err);
        return -EINVAL;
    }
    return 0;
}

static size_t effective_max(const syslog_cfg *c, int transport)
{
    if (c->max_message_size)
        return (size_t)c->max_message_size;
    if (c->rfc == SF_SYSLOG_RFC3164)
        return SF_SYSLOG_3164_MAX;
    return transport == SF_SYSLOG_UDP ? 2048 : 64 * 1024;
}

static int syslog_open(sf_sink *s)
{
    const syslog_cfg *c = s->cfg->type_cfg;
    sl_state *st = calloc(1, sizeof *st);
    if (!st) {
        sf_sink_set_error(s, "out of memory");
        return -ENOMEM;
    }
    st->sink = s;
    st->c = c;
    char err[160];
    int port, rc;
    if (sf_syslog_parse_address(c->address, &st->transport, st->host, sizeof st->host, &port, err,
                                sizeof err)) {
        sf_sink_set_error(s, "address: %s", err);
        rc = -EINVAL;
        goto fail;
    }
    snprintf(st->port, sizeof st->port, "%d", port);
    int fac = sf_syslog_parse_facility(c->facility);
    if (fac < 0) {
        sf_sink_set_error(s, "invalid facility");
        rc = -EINVAL;
        goto fail;
    }
    if (c->hostname && *c->hostname) {
        snprintf(st->hostname, sizeof st->hostname, "%s", c->hostname);
    } else if (gethostname(st->hostname, sizeof st->hostname - 1) != 0 || !st->hostname[0]) {
        snprintf(st->hostname, sizeof st->hostname, "-");
    }
    st->hostname[sizeof st->hostname - 1] = '\0';
    snprintf(st->procid, sizeof st->procid, "%ld", (long)getpid());
    st->framing = st->transport == SF_SYSLOG_TLS ? SF_SYSLOG_OCTET_COUNTING : c->framing;
    st->fo = (sf_syslog_opts){.rfc = c->rfc,
                              .facility = fac,
                              .hostname = st->hostname,
                              .app_name = c->app_name,
                              .procid = st->procid,
                              .msgid = c->msgid,
                              .sd_id = c->sd_id,
                              .bom = c->bom,
                              .max_size = effective_max(c, st->transport),
                              .reject_oversize = c->oversize == 1};
    if (st->transport == SF_SYSLOG_TLS && (rc = build_ctx(st)) != 0)
        goto fail;
    /* nothing can fail after the timers exist (they need an asynchronous close) */
    uv_timer_init(s->loop, &st->conn_timer);
    uv_timer_init(s->loop, &st->write_timer);
    uv_timer_init(s->loop, &st->resend_timer);
    uv_timer_init(s->loop, &st->settle_timer);
    st->conn_timer.data = st->write_timer.data = st->resend_timer.data = st->settle_timer.data = st;
    st->timers_open = SL_NTIMERS;
    s->state = st;
    s->defer_settle = rs_enabled(st);
    SF_DEBUG("sink", "sink %s: syslog %s://%s:%s rfc %s, max message %zu bytes", s->name,
             tname(st->transport), st->host, st->port, rfc_values[c->rfc], st->fo.max_size);
    return 0;
fail:
    free_state(st);
    s->state = NULL;
    return rc;
}

static void maybe_closed(sl_state *st)
{
    if (!st->closing || !st->closed || st->batch || st->nconns || st->gai_pending ||
        st->timers_open)
        return;
    void (*cb)(sf_sink *) = st->closed;
    st->closed = NULL;
    cb(st->sink);
}

static void timer_closed_cb(uv_handle_t *h)
{
    sl_state *st = h->data;
    st->timers_open--;
    maybe_closed(st);
}

static void syslog_close(sf_sink *s, void (*closed)(sf_sink *s))
{
    sl_state *st = s->state;
    st->closing = true;
    st->closed = closed;
    if (st->conn)
        conn_fail(st->conn, "sink closing"); /* in-flight writes -> RETRY */
    if (st->batch && !st->written)
        connect_failed(st, "sink closing");
    else if (st->gai)
        connect_failed(st, "sink closing");
    if (st->timers_open == SL_NTIMERS) {
        uv_close((uv_handle_t *)&st->conn_timer, timer_closed_cb);
        uv_close((uv_handle_t *)&st->write_timer, timer_closed_cb);
        uv_close((uv_handle_t *)&st->resend_timer, timer_closed_cb);
        uv_close((uv_handle_t *)&st->settle_timer, timer_closed_cb);
    }
    maybe_closed(st);
}

static void syslog_reopen(sf_sink *s)
{
    sl_state *st = s->state;
    conn_t *cn = st->conn;
    if (!cn || !cn->ready || cn->draining || st->batch)
        return;
    if (rs_enabled(st) && st->rs_head && rs_aging(st)) {
        drain_start(cn); /* confirmed close; the next batch reconnects */
        return;
    }
    st->rs_nomark = true; /* nothing unconfirmed: just reconnect */
    conn_fail(cn, "reconnect requested (SIGHUP)");
    st->rs_nomark = false;
}

static void syslog_destroy(sf_sink *s)
{
    free_state(s->state);
    s->state = NULL;
}

/* ---- validation ---- */

static void check_field(const sf_cfg_node *node, sf_cfg_errors *errs, const char *key,
                        const char *v, size_t max)
{
    if (!v)
        return;
    int line, col;
    sf_cfg_pos(node, key, &line, &col);
    size_t n = strlen(v);
    if (n > max) {
        sf_cfg_error(errs, line, col, "%s: at most %zu characters", key, max);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 33 || ch > 126) {
            sf_cfg_error(errs, line, col, "%s: only printable ASCII without spaces", key);
            return;
        }
    }
}

static void syslog_validate(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const syslog_cfg *c = cfg;
    int line, col, transport = -1, port;
    char host[256], err[160];
    sf_cfg_pos(node, "address", &line, &col);
    if (sf_syslog_parse_address(c->address, &transport, host, sizeof host, &port, err, sizeof err))
        sf_cfg_error(errs, line, col, "address: %s", err);
    if (transport == SF_SYSLOG_TLS && c->framing == SF_SYSLOG_LF) {
        sf_cfg_pos(node, "framing", &line, &col);
        sf_cfg_error(errs, line, col,
                     "framing: lf is not allowed with tls:// (RFC 5425 is "
                     "always octet-counted)");
    }
    const sf_cfg_node *tls = node ? sf_cfg_map_get(node, "tls") : NULL;
    if (tls && transport >= 0 && transport != SF_SYSLOG_TLS) {
        sf_cfg_pos(node, "tls", &line, &col);
        sf_cfg_error(errs, line, col, "tls: only applies to a tls:// address");
    }
    sf_tls_validate(&c->tls, node, "tls", errs);
    if (sf_syslog_parse_facility(c->facility) < 0) {
        sf_cfg_pos(node, "facility", &line, &col);
        sf_cfg_error(errs, line, col,
                     "facility: \"%.32s\" is not a facility name (kern, user, mail, daemon, "
                     "auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, "
                     "console, clock, local0..local7) or a number 0..23",
                     c->facility ? c->facility : "");
    }
    check_field(node, errs, "app_name", c->app_name,
                c->rfc == SF_SYSLOG_RFC3164 ? SF_SYSLOG_TAG_MAX : SF_SYSLOG_APPNAME_MAX);
    check_field(node, errs, "hostname", c->hostname, SF_SYSLOG_HOSTNAME_MAX);
    check_field(node, errs, "msgid", c->msgid, SF_SYSLOG_MSGID_MAX);
    if (c->sd_id && *c->sd_id && !sf_syslog_valid_sdname(c->sd_id)) {
        sf_cfg_pos(node, "sd_id", &line, &col);
        sf_cfg_error(errs, line, col,
                     "sd_id: 1..32 printable ASCII characters without space, '=', ']' or '\"' "
                     "(e.g. sysdig@32473)");
    }
    if (c->max_message_size) {
        sf_cfg_pos(node, "max_message_size", &line, &col);
        if (c->max_message_size < 480)
            sf_cfg_error(errs, line, col, "max_message_size: at least 480 bytes (RFC 5426)");
        else if (transport == SF_SYSLOG_UDP && c->max_message_size > 65000)
            sf_cfg_error(errs, line, col, "max_message_size: at most 65000 bytes over udp");
        else if (c->max_message_size > 64 * 1024 * 1024)
            sf_cfg_error(errs, line, col, "max_message_size: at most 64MiB");
    }
}

const sf_sink_ops sf_sink_syslog_ops = {
    .type = "syslog",
    .desc = "Sends each record as one syslog message (RFC 5424 or 3164) over UDP, TCP or TLS.",
    .options = syslog_options,
    .cfg_size = sizeof(syslog_cfg),
    .validate = syslog_validate,
    .open = syslog_open,
    .submit = syslog_submit,
    .reopen = syslog_reopen,
    .flush = syslog_flush,
    .close = syslog_close,
    .destroy = syslog_destroy,
};
