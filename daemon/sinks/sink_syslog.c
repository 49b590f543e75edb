/* The "syslog" sink: RFC 5424 / RFC 3164 messages over UDP (RFC 5426), TCP (RFC 6587,
 * octet-counting or LF framing) or TLS (RFC 5425). This file keeps the syslog parts: the
 * option table, framing each record (sinks/syslog_fmt.h), the resend window and settlement.
 * The connection itself — resolution, connect, TLS, connect and write timeouts, the graceful
 * close that proves the receiver read everything — is net/stream.h (UDP too); TLS settings
 * are the shared table of net/tls.h.
 *
 * One persistent connection, opened on the first batch and re-opened (after the pipeline's
 * retry backoff) when it fails. A record is OK once all its bytes were handed to the kernel
 * (the stream's write completed). Records not fully written when the connection fails are
 * RETRY. The stream reads the connection, so a peer that closes it is noticed while idle
 * rather than on the next batch.
 *
 * Length: about 1000 lines, over the ~600 guideline on purpose. A quarter is the option table
 * and its validation, which stay next to the sink as for every sink type. The rest is one
 * state machine over sl_state: a record's OK, its copy in the resend window, the window's
 * aging and re-send, the connection's loss and the graceful close all move the same counters
 * and flags; split across files it would need that state in a header shared by all of them.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/log.h"
#include "net/stream.h"
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

/* One framed message of the resend window. */
typedef struct rs_ent {
    struct rs_ent *next;
    uint64_t t_ms;  /* uv_now() of the write (or of the last re-send) */
    uint64_t extra; /* records that settle with this one (copies that could not be kept) */
    size_t len;
    char data[];
} rs_ent;

#define SL_NTIMERS 2
#define REC_RESEND (-2) /* the write of the resend window (else: the record's index) */
#define RS_DELAY_MIN_MS 500
#define RS_DELAY_MAX_MS 30000

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
    uv_timer_t resend_timer, settle_timer;
    int timers_open;
    sf_stream *conn; /* current connection (connecting, ready or draining) */
    bool ready;      /* conn is connected (and its TLS handshake done) */
    bool draining;   /* conn is half-closed by us (flush): waiting for the receiver's close */
    int nconns;      /* streams not closed yet */
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

static void kick_send(sl_state *st);
static void maybe_closed(sl_state *st);
static void conn_fail(sl_state *st, const char *why);
static void conn_refused(sl_state *st, int rc);

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
    if (st->closing || !st->rs_pending || !st->rs_head || st->conn || st->batch)
        return;
    SF_DEBUG("sink", "sink %s: reconnecting to re-send %zu messages", st->sink->name, st->rs_count);
    start_connect(st);
}

/* Idle with a window to re-send and no connection: reconnect after a backoff (a batch would
 * reconnect anyway). */
static void rs_kick(sl_state *st)
{
    if (st->closing || st->timers_open != SL_NTIMERS || !st->rs_pending || !st->rs_head ||
        st->conn || st->batch)
        return;
    if (st->rs_delay_ms < RS_DELAY_MIN_MS)
        st->rs_delay_ms = RS_DELAY_MIN_MS;
    uv_timer_start(&st->resend_timer, resend_timer_cb, st->rs_delay_ms, 0);
    st->rs_delay_ms = st->rs_delay_ms * 2 > RS_DELAY_MAX_MS ? RS_DELAY_MAX_MS : st->rs_delay_ms * 2;
}

/* On a new connection: writes the marked window first, in order (one write). The entries stay
 * in the window, with the time of this re-send. */
static void rs_resend(sl_state *st)
{
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
    /* until the re-send is queued the window stays marked (a failure here keeps it whole) */
    char *buf = malloc(st->rs_bytes);
    if (!buf) {
        conn_fail(st, "out of memory re-sending the resend window");
        return;
    }
    size_t n = 0;
    for (rs_ent *e = st->rs_head; e; e = e->next) {
        memcpy(buf + n, e->data, e->len);
        n += e->len;
    }
    int rc = sf_stream_write(st->conn, buf, n, SF_STREAM_TAKE, (void *)(intptr_t)REC_RESEND);
    if (rc) {
        conn_refused(st, rc);
        return;
    }
    st->nresent += st->rs_count;
    st->rs_pending = false;
    st->rs_resending = true; /* the entries age from the re-send's completion (on_written) */
    st->rs_resend_n = st->rs_count;
    settle_arm(st);
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
}

/* ---- batch completion ---- */

static void finish_batch(sl_state *st)
{
    sf_sink_batch *b = st->batch;
    if (!b)
        return;
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

/* ---- the connection (net/stream.h) ---- */

/* Forgets the current connection and closes it (its writes in flight complete later). */
static sf_stream *drop_conn(sl_state *st)
{
    sf_stream *cn = st->conn;
    st->conn = NULL;
    st->ready = st->draining = false;
    sf_stream_close(cn);
    return cn;
}

/* The connection attempt failed for good (every address tried, timeout, closing). */
static void connect_failed(sl_state *st, const char *why)
{
    if (st->conn)
        drop_conn(st);
    sf_sink_set_error(st->sink, "%s://%s:%s: %s", tname(st->transport), st->host, st->port, why);
    if (st->batch && !st->written)
        finish_batch(st); /* all RETRY: the pipeline backs off, the next batch reconnects */
    else
        rs_kick(st);
}

/* The current connection failed: while connecting, the attempt; once connected, it was lost
 * (what it wrote waits in the resend window to be written again). */
static void conn_fail(sl_state *st, const char *why)
{
    if (!st->conn)
        return;
    if (!st->ready) {
        connect_failed(st, why);
        return;
    }
    drop_conn(st);
    sf_sink_set_error(st->sink, "%s://%s:%s: %s", tname(st->transport), st->host, st->port, why);
    if (!st->closing)
        SF_WARN("sink", "sink %s: connection lost: %s", st->sink->name, st->sink->last_error);
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

/* A write or half-close on the current connection was refused (rc): the connection failed. */
static void conn_refused(sl_state *st, int rc)
{
    char why[300];
    const char *e = sf_stream_error(st->conn);
    snprintf(why, sizeof why, "%s", *e ? e : uv_strerror(rc));
    conn_fail(st, why);
}

static void drain_start(sl_state *st);

static void on_connected(sf_stream *cn, void *ud)
{
    sl_state *st = ud;
    if (cn != st->conn)
        return;
    st->ready = true;
    st->sink->fault = SF_SINK_FAULT_NONE;
    SF_INFO("sink", "sink %s: connected to %s://%s:%s", st->sink->name, tname(st->transport),
            st->host, st->port);
    st->was_connected = true;
    st->rs_delay_ms = RS_DELAY_MIN_MS;
    if (st->rs_pending)
        rs_resend(st);
    if (st->conn != cn)
        return; /* the re-send failed */
    if (st->batch && !st->written)
        kick_send(st);
    else if (st->flush_requested)
        drain_start(st);
}

static void on_written(sf_stream *cn, void *ud, void *wud, int status)
{
    sl_state *st = ud;
    long rec = (long)(intptr_t)wud;
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

static void on_failed(sf_stream *cn, void *ud, const char *why)
{
    sl_state *st = ud;
    if (cn != st->conn)
        return;
    st->sink->fault =
        sf_stream_tls_verify_failed(cn) ? SF_SINK_FAULT_TLS_VERIFY : SF_SINK_FAULT_NONE;
    conn_fail(st, why);
}

/* The receiver closed its side after ours: it read every byte we wrote, so the whole window
 * settles. The connection is closed; the next batch opens a new one. */
static void on_drained(sf_stream *cn, void *ud)
{
    sl_state *st = ud;
    if (cn != st->conn)
        return;
    size_t count = st->rs_count;
    uint64_t n = rs_drop_all(st, true);
    settle_arm(st);
    drop_conn(st);
    SF_INFO("sink", "sink %s: receiver confirmed reading all %zu messages written (graceful close)",
            st->sink->name, count);
    kick_send(st);
    sf_sink_settled(st->sink, n);
}

static void on_closed(sf_stream *cn, void *ud)
{
    sl_state *st = ud;
    st->nconns--;
    maybe_closed(st);
}

static void start_connect(sl_state *st)
{
    static const sf_stream_cbs cbs = {.connected = on_connected,
                                      .written = on_written,
                                      .failed = on_failed,
                                      .drained = on_drained,
                                      .closed = on_closed};
    const syslog_cfg *c = st->c;
    sf_stream_opts o = {.host = st->host,
                        .port = st->port,
                        .datagram = st->transport == SF_SYSLOG_UDP,
                        .tls_ctx = st->ctx,
                        .tls = &c->tls,
                        .connect_timeout_ms = c->connect_timeout_ms,
                        .write_timeout_ms = c->write_timeout_ms,
                        .close_timeout_ms = c->write_timeout_ms};
    sf_stream *cn = sf_stream_open(st->sink->loop, &o, &cbs, st);
    if (!cn) {
        connect_failed(st, "out of memory");
        return;
    }
    st->conn = cn;
    st->ready = st->draining = false;
    st->nconns++;
}

/* ---- batches ---- */

static void send_batch(sl_state *st)
{
    sf_sink_batch *b = st->batch;
    sf_stream *cn = st->conn;
    st->written = true;
    st->pending = 1; /* guard: the batch cannot finish while writes are being queued */
    for (size_t i = 0; i < b->n && st->conn == cn; i++) {
        if (st->len[i] == 0)
            continue;
        const char *p = st->frames.data + st->off[i];
        int rc = sf_stream_write(cn, p, st->len[i], 0, (void *)(intptr_t)i);
        if (rc) {
            conn_refused(st, rc);
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
    if (st->conn && st->ready && !st->draining) {
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
    } else if (!st->conn) {
        start_connect(st);
    }
}

/* flush: half-close the connection; the receiver closing its side confirms it read it all
 * (on_drained), within write_timeout. */
static void drain_start(sl_state *st)
{
    st->flush_requested = false;
    if (st->draining || !st->rs_head)
        return;
    st->draining = true;
    SF_DEBUG("sink", "sink %s: closing the connection to confirm %zu messages were read",
             st->sink->name, st->rs_count);
    int rc = sf_stream_shutdown(st->conn);
    if (rc)
        conn_refused(st, rc);
}

static void syslog_flush(sf_sink *s)
{
    sl_state *st = s->state;
    if (!rs_enabled(st) || !st->rs_head || st->closing || st->batch)
        return;
    if (st->conn && st->ready && !st->rs_pending)
        drain_start(st);
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
    uv_timer_init(s->loop, &st->resend_timer);
    uv_timer_init(s->loop, &st->settle_timer);
    st->resend_timer.data = st->settle_timer.data = st;
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
    if (!st->closing || !st->closed || st->batch || st->nconns || st->timers_open)
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
    conn_fail(st, "sink closing"); /* in-flight writes -> RETRY */
    if (st->batch && !st->written)
        connect_failed(st, "sink closing");
    if (st->timers_open == SL_NTIMERS) {
        uv_close((uv_handle_t *)&st->resend_timer, timer_closed_cb);
        uv_close((uv_handle_t *)&st->settle_timer, timer_closed_cb);
    }
    maybe_closed(st);
}

static void syslog_reopen(sf_sink *s)
{
    sl_state *st = s->state;
    if (!st->conn || !st->ready || st->draining || st->batch)
        return;
    if (rs_enabled(st) && st->rs_head && rs_aging(st)) {
        drain_start(st); /* confirmed close; the next batch reconnects */
        return;
    }
    st->rs_nomark = true; /* nothing unconfirmed: just reconnect */
    conn_fail(st, "reconnect requested (SIGHUP)");
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
    if (transport == SF_SYSLOG_TLS && !c->tls.verify)
        sf_cfg_warn_at(errs, tls ? tls : node, "verify",
                       "tls.verify is false: the receiver's certificate is NOT checked");
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

static void syslog_check_env(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const syslog_cfg *c = cfg;
    int transport = -1, port;
    char host[256], err[160];
    if (sf_syslog_parse_address(c->address, &transport, host, sizeof host, &port, err,
                                sizeof err) == 0 &&
        transport == SF_SYSLOG_TLS)
        sf_tls_check_files(&c->tls, node, "tls", errs);
}

const sf_sink_ops sf_sink_syslog_ops = {
    .reads_events = true,
    .type = "syslog",
    .desc = "Sends each record as one syslog message (RFC 5424 or 3164) over UDP, TCP or TLS.",
    .options = syslog_options,
    .cfg_size = sizeof(syslog_cfg),
    .validate = syslog_validate,
    .check_env = syslog_check_env,
    .open = syslog_open,
    .submit = syslog_submit,
    .reopen = syslog_reopen,
    .flush = syslog_flush,
    .close = syslog_close,
    .destroy = syslog_destroy,
};
