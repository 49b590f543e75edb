/* The syslog sink (sinks/sink_syslog.c) driven through its sf_sink_ops, as the pipeline drives
 * it, on a real loop against a receiver the test scripts: a TCP server on the test's own loop
 * (deterministic: it reads, stays silent, or drops the connection when the test says so) and,
 * once, the TLS server thread of testserver.h. The sink's configuration comes from YAML, as the
 * daemon loads it. What is checked: the framing on the wire (octet counting and LF, RFC 5424
 * and 3164 headers), deferred settlement by the resend window, the window re-sent after a lost
 * connection (and aging from that re-send), the graceful close that confirms, connect refused,
 * and the window's byte bound as backpressure. Times are the loop's own (uv_now): a record
 * written at t settles at t + resend_window at the earliest, whatever the machine's speed.
 * Every test ends with the sink closed, every handle closed and uv_loop_close() == 0. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "core/event.h"
#include "core/log.h"
#include "core/util.h"
#include "sinks/sink.h"
#include "testcert.h"
#include "testserver.h"
#include "testutil.h"

/* 2023-11-01T17:15:04.635115435Z; event N is N seconds later */
#define TS INT64_C(1698858904635115435)

static uv_loop_t loop;
static char tmpdir[256];

/* ---- the sink, as the pipeline holds it ---- */

static sf_config cfg;
static sf_sink sink;
static bool sink_closed;
static uint64_t ok_total;      /* records reported OK so far, in the order reported */
static uint64_t settled_total; /* of those, settled so far */
static int settle_calls;
static uint64_t settle_t[64]; /* loop time each OK record (in order) settled at */
static int over_settled;      /* settlements beyond the records reported OK */

static void on_settled(sf_sink *s, uint64_t n)
{
    ck_assert_ptr_eq(s, &sink);
    ck_assert_uint_gt(n, 0);
    settle_calls++;
    for (uint64_t i = 0; i < n; i++, settled_total++)
        if (settled_total < SF_ARRAY_LEN(settle_t))
            settle_t[settled_total] = uv_now(&loop);
    over_settled += settled_total > ok_total;
}

static void on_sink_closed(sf_sink *s)
{
    ck_assert_ptr_eq(s, &sink);
    ck_assert(!sink_closed);
    sink_closed = true;
}

/* Loads a configuration with one syslog sink whose map has the lines 'body' (indented by four
 * spaces, as in sinks: - ...), and opens that sink on the loop. */
static void open_sink(const char *body)
{
    char text[2048];
    int w = snprintf(text, sizeof text,
                     "source:\n  url: https://secure.sysdig.com\n  token: unit-test-token-7f3a\n"
                     "sinks:\n  - name: siem\n    type: syslog\n%s",
                     body);
    ck_assert(w > 0 && (size_t)w < sizeof text);
    sf_cfg_errors errs = {0};
    int rc = sf_config_load_text("t.yaml", text, strlen(text), &cfg, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "  %s\n", errs.msgs[i]);
    ck_assert_int_eq(rc, 0);
    sf_cfg_errors_free(&errs);
    ck_assert_uint_eq(cfg.nsinks, 1);
    const sf_sink_cfg *sc = cfg.sinks[0];
    ck_assert_str_eq(sc->ops->type, "syslog");
    sink = (sf_sink){.cfg = sc, .name = sc->common.name, .loop = &loop, .settled_cb = on_settled};
    ck_assert_int_eq(sc->ops->open(&sink), 0);
}

static void flush_sink(void)
{
    sink.cfg->ops->flush(&sink);
}

static int sink_is_closed(void *arg)
{
    return sink_closed;
}

static void close_sink(void)
{
    sink.cfg->ops->close(&sink, on_sink_closed);
    sf_test_run_until_fn(&loop, sink_is_closed, NULL);
    sink.cfg->ops->destroy(&sink);
    ck_assert_int_eq(over_settled, 0);
}

/* ---- batches ---- */

#define TB_MAX 8

typedef struct tbatch {
    sf_sink_batch b;
    size_t n;
    int first; /* event ids first .. first+n-1 */
    char text[TB_MAX][640];
    sf_event ev[TB_MAX];
    const sf_event *evp[TB_MAX];
    sf_buf rec[TB_MAX];
    sf_deliv_status st[TB_MAX];
    char *reason[TB_MAX];
    int done;                /* times done was called (exactly once) */
    uint64_t t_submit;       /* loop time of submit */
    uint64_t t_done;         /* loop time of done */
    uint64_t settled_before; /* settled_total when done was called */
} tbatch;

static void on_batch_done(sf_sink_batch *b)
{
    tbatch *t = b->owner;
    ck_assert_ptr_eq(b, &t->b);
    t->done++;
    t->t_done = uv_now(&loop);
    t->settled_before = settled_total;
    for (size_t i = 0; i < t->n; i++)
        ok_total += t->st[i] == SF_DELIV_OK;
}

/* Severities (Sysdig 0..7) of events 1, 2, 3, ...: syslog crit, warning, info, err, ... */
static int sev_of(int id)
{
    static const int sev[] = {1, 4, 7, 2};
    return sev[(id - 1) % 4];
}

/* A batch of events first..first+n-1; each record is the event's JSON (a raw record), with an
 * LF inside for even ids, and pad bytes of padding. */
static void tb_make(tbatch *t, int first, size_t n, size_t pad)
{
    ck_assert_uint_le(n, TB_MAX);
    ck_assert_uint_lt(pad, 500);
    memset(t, 0, sizeof *t);
    t->n = n;
    t->first = first;
    char padding[512];
    memset(padding, 'p', pad);
    padding[pad] = '\0';
    for (size_t i = 0; i < n; i++) {
        int id = first + (int)i;
        int w = snprintf(t->text[i], sizeof t->text[i],
                         "{\"id\":\"ev-%d\",%s\"timestamp\":%lld,\"name\":\"Pol %d\","
                         "\"severity\":%d,\"pad\":\"%s\"}",
                         id, id % 2 ? "" : "\n", (long long)(TS + (int64_t)id * SF_NS_PER_SEC), id,
                         sev_of(id), padding);
        ck_assert(w > 0 && (size_t)w < sizeof t->text[i]);
        char err[128];
        ck_assert_int_eq(sf_event_parse(t->text[i], (size_t)w, &t->ev[i], err, sizeof err), 0);
        t->evp[i] = &t->ev[i];
        t->rec[i] = (sf_buf){.data = t->text[i], .len = (size_t)w};
        t->st[i] = SF_DELIV_REJECT; /* the sink must set every status */
    }
    t->b = (sf_sink_batch){.sink = &sink,
                           .n = n,
                           .events = t->evp,
                           .records = t->rec,
                           .status = t->st,
                           .reason = t->reason,
                           .owner = t,
                           .done = on_batch_done};
}

static void tb_submit(tbatch *t)
{
    t->t_submit = uv_now(&loop);
    ck_assert_int_eq(sink.cfg->ops->submit(&sink, &t->b), 0);
}

static int tb_is_done(void *arg)
{
    return ((tbatch *)arg)->done > 0;
}

static void tb_wait(tbatch *t)
{
    sf_test_run_until_fn(&loop, tb_is_done, t);
    ck_assert_int_eq(t->done, 1);
}

static void tb_assert_all(const tbatch *t, sf_deliv_status want)
{
    for (size_t i = 0; i < t->n; i++)
        ck_assert_msg(t->st[i] == want, "record %zu: status %d, want %d", i, t->st[i], want);
}

static void tb_free(tbatch *t)
{
    for (size_t i = 0; i < t->n; i++) {
        sf_event_free(&t->ev[i]);
        free(t->reason[i]);
    }
}

/* ---- conditions ---- */

static int settled_reaches(void *arg)
{
    return settled_total >= *(const uint64_t *)arg;
}

static void run_until_settled(uint64_t n)
{
    sf_test_run_until_fn(&loop, settled_reaches, &n);
    ck_assert_uint_eq(settled_total, n);
}

/* Runs the loop until cond holds or ms have passed (a timer on the loop, not a sleep); returns
 * whether cond holds. */
typedef struct within {
    int (*cond)(void *);
    void *arg;
    bool expired;
} within_t;

static void within_cb(uv_timer_t *t)
{
    ((within_t *)t->data)->expired = true;
}

static int within_done(void *arg)
{
    within_t *w = arg;
    return w->expired || w->cond(w->arg);
}

static bool run_until_within(int (*cond)(void *), void *arg, uint64_t ms)
{
    within_t w = {cond, arg, false};
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &w;
    uv_timer_start(&t, within_cb, ms, 0);
    sf_test_run_until_fn(&loop, within_done, &w);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* closes it */
    return cond(arg);
}

static int never(void *arg)
{
    return 0;
}

static void run_for(uint64_t ms)
{
    run_until_within(never, NULL, ms);
}

/* ---- a scripted TCP receiver on the test's loop ---- */

#define RX_MAXC 4

typedef struct rx_conn {
    uv_tcp_t h;
    sf_buf got;
    bool closing; /* uv_close called */
    bool eof;     /* the sink closed its side */
    uint64_t t_accept;
} rx_conn;

static struct {
    uv_tcp_t lh;
    int port;
    char script[RX_MAXC + 1]; /* per accepted connection: 'r' reads, 's' silent */
    rx_conn c[RX_MAXC];
    int nconn;
    int open; /* handles not closed yet */
} rx;

static void rx_closed(uv_handle_t *h)
{
    rx.open--;
}

static void rx_close(rx_conn *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->h, rx_closed);
    }
}

static void rx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char buf[65536];
    *b = uv_buf_init(buf, sizeof buf);
}

/* 'r': reads everything; once the sink closes its side, closes ours (which confirms). */
static void rx_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    rx_conn *c = s->data;
    if (n > 0) {
        ck_assert_int_eq(sf_buf_append(&c->got, b->base, (size_t)n), 0);
    } else if (n < 0) {
        c->eof = n == UV_EOF;
        rx_close(c);
    }
}

static void rx_accept(uv_stream_t *l, int status)
{
    ck_assert_int_eq(status, 0);
    ck_assert_int_lt(rx.nconn, RX_MAXC);
    rx_conn *c = &rx.c[rx.nconn];
    ck_assert_int_eq(uv_tcp_init(&loop, &c->h), 0);
    rx.open++;
    c->h.data = c;
    ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&c->h), 0);
    c->t_accept = uv_now(&loop);
    char mode = rx.script[rx.nconn] ? rx.script[rx.nconn] : 'r';
    if (mode == 'r')
        ck_assert_int_eq(uv_read_start((uv_stream_t *)&c->h, rx_alloc, rx_read), 0);
    rx.nconn++;
}

/* Listens on 127.0.0.1; script says how each accepted connection behaves ('r' beyond it). */
static void rx_start(const char *script)
{
    memset(&rx, 0, sizeof rx);
    snprintf(rx.script, sizeof rx.script, "%s", script);
    ck_assert_int_eq(uv_tcp_init(&loop, &rx.lh), 0);
    rx.open = 1;
    struct sockaddr_in a;
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    ck_assert_int_eq(uv_tcp_bind(&rx.lh, (const struct sockaddr *)&a, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&rx.lh, 8, rx_accept), 0);
    int len = sizeof a;
    ck_assert_int_eq(uv_tcp_getsockname(&rx.lh, (struct sockaddr *)&a, &len), 0);
    rx.port = ntohs(a.sin_port);
}

/* The receiver drops connection i (it goes away, having read what it read). */
static void rx_drop(int i)
{
    ck_assert_int_lt(i, rx.nconn);
    ck_assert(!rx.c[i].closing);
    rx_close(&rx.c[i]);
}

static int rx_all_closed(void *arg)
{
    return rx.open == 0;
}

static void rx_stop(void)
{
    uv_close((uv_handle_t *)&rx.lh, rx_closed);
    for (int i = 0; i < rx.nconn; i++)
        rx_close(&rx.c[i]);
    sf_test_run_until_fn(&loop, rx_all_closed, NULL);
    for (int i = 0; i < RX_MAXC; i++)
        sf_buf_free(&rx.c[i].got);
}

/* The event numbers (from id="ev-N" of the structured data) of the complete octet-counted
 * frames in b, as "1,2,3" into out; returns how many. Parsing stops at an incomplete frame. */
static int frame_ids(const sf_buf *b, char *out, size_t outlen)
{
    size_t i = 0, used = 0;
    int n = 0;
    out[0] = '\0';
    while (i < b->len) {
        size_t len = 0, j = i;
        while (j < b->len && j - i < 9 && b->data[j] >= '0' && b->data[j] <= '9')
            len = len * 10 + (size_t)(b->data[j++] - '0');
        if (j == i || j >= b->len || b->data[j] != ' ' || b->len - j - 1 < len)
            break;
        const char *m = b->data + j + 1;
        const char *p = memmem(m, len, "id=\"ev-", 7);
        int id = p ? atoi(p + 7) : -1;
        int w = snprintf(out + used, outlen - used, "%s%d", n ? "," : "", id);
        ck_assert(w > 0 && (size_t)w < outlen - used);
        used += (size_t)w;
        n++;
        i = j + 1 + len;
    }
    return n;
}

typedef struct frames_want {
    int conn, n;
} frames_want;

static int rx_has_frames(void *arg)
{
    const frames_want *f = arg;
    char ids[512];
    return rx.nconn > f->conn && frame_ids(&rx.c[f->conn].got, ids, sizeof ids) >= f->n;
}

/* Runs until connection conn has received n complete frames; returns their ids. */
static const char *rx_wait_frames(int conn, int n)
{
    static char ids[512];
    frames_want f = {conn, n};
    sf_test_run_until_fn(&loop, rx_has_frames, &f);
    ck_assert_int_eq(frame_ids(&rx.c[conn].got, ids, sizeof ids), n);
    return ids;
}

static int rx_has_bytes(void *arg)
{
    return rx.nconn > 0 && rx.c[0].got.len >= *(const size_t *)arg;
}

static int sink_saw_loss(void *arg)
{
    return strstr(sink.last_error, "connection closed by the peer") != NULL;
}

/* ---- fixture ---- */

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    sf_log_set_level(SF_LOG_ERROR); /* the sink logs every connect and re-send at info */
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    sf_test_mkdtemp(tmpdir, sizeof tmpdir, "syslog");
    memset(&cfg, 0, sizeof cfg);
    memset(&sink, 0, sizeof sink);
    sink_closed = false;
    ok_total = settled_total = 0;
    settle_calls = over_settled = 0;
    memset(settle_t, 0, sizeof settle_t);
}

static void teardown(void)
{
    sf_test_rmtree(tmpdir);
}

/* Closes the sink, then the receiver, then the loop (nothing may be left on it). */
static void finish(bool with_rx)
{
    close_sink();
    if (with_rx)
        rx_stop();
    sf_config_free(&cfg);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void sink_cfg(char *out, size_t len, const char *scheme, int port, const char *extra)
{
    int w = snprintf(out, len, "    address: %s://127.0.0.1:%d\n%s", scheme, port, extra);
    ck_assert(w > 0 && (size_t)w < len);
}

/* ---- 1. framing on the wire ---- */

/* RFC 6587 octet counting, RFC 5424 header: every record of the batch is one "LEN SP MSG"
 * frame, in order, the whole header exact (PRI from facility and severity, the event's time in
 * UTC with microseconds, PROCID the pid, the structured data), the body byte for byte (an LF
 * inside stays: octet counting is transparent). */
START_TEST(test_octet_counting_5424)
{
    rx_start("r");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port,
             "    hostname: host1\n    facility: local0\n    resend_window: 10s\n");
    open_sink(body);
    ck_assert(sink.defer_settle);
    tbatch a;
    tb_make(&a, 1, 4, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    ck_assert_str_eq(rx_wait_frames(0, 4), "1,2,3,4");
    sf_buf want = {0};
    static const int pri[] = {130, 132, 134, 131}; /* local0 (16) * 8 + crit, warning, info, err */
    for (size_t i = 0; i < a.n; i++) {
        int id = a.first + (int)i;
        char msg[1024];
        int w = snprintf(msg, sizeof msg,
                         "<%d>1 2023-11-01T17:15:%02d.635115Z host1 sysdig-forwarder %ld "
                         "sysdig-event [sysdig@32473 id=\"ev-%d\" policy=\"Pol %d\" "
                         "severity=\"%d\"] %s",
                         pri[i], 4 + id, (long)getpid(), id, id, sev_of(id), a.text[i]);
        ck_assert_int_eq(sf_buf_appendf(&want, "%d %s", w, msg), 0);
    }
    ck_assert_uint_eq(rx.c[0].got.len, want.len);
    ck_assert_msg(memcmp(rx.c[0].got.data, want.data, want.len) == 0, "got:\n%.*s\nwant:\n%s",
                  (int)rx.c[0].got.len, rx.c[0].got.data, want.data);
    ck_assert_ptr_nonnull(memchr(rx.c[0].got.data, '\n', rx.c[0].got.len));
    sf_buf_free(&want);
    ck_assert_uint_eq(settled_total, 0); /* 10s window */
    finish(true);
    ck_assert_uint_eq(settled_total, 0); /* closing settles nothing */
    tb_free(&a);
}
END_TEST

/* LF framing with RFC 3164 headers: MSG + LF per record, an LF inside a body becomes a space,
 * the BSD timestamp in UTC, the TAG from app_name. */
START_TEST(test_lf_3164)
{
    rx_start("r");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port,
             "    rfc: 3164\n    framing: lf\n    hostname: host1\n    facility: auth\n"
             "    app_name: fwd.test\n");
    open_sink(body);
    tbatch a;
    tb_make(&a, 1, 3, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    sf_buf want = {0};
    static const int pri[] = {34, 36, 38}; /* auth (4) * 8 + crit, warning, info */
    for (size_t i = 0; i < a.n; i++) {
        char rec[640];
        snprintf(rec, sizeof rec, "%s", a.text[i]);
        for (char *p = rec; *p; p++)
            if (*p == '\n')
                *p = ' ';
        ck_assert_int_eq(sf_buf_appendf(&want, "<%d>Nov  1 17:15:%02d host1 fwd.test: %s\n", pri[i],
                                        4 + a.first + (int)i, rec),
                         0);
    }
    sf_test_run_until_fn(&loop, rx_has_bytes, &want.len);
    ck_assert_uint_eq(rx.c[0].got.len, want.len);
    ck_assert_msg(memcmp(rx.c[0].got.data, want.data, want.len) == 0, "got:\n%.*s\nwant:\n%s",
                  (int)rx.c[0].got.len, rx.c[0].got.data, want.data);
    sf_buf_free(&want);
    finish(true);
    tb_free(&a);
}
END_TEST

/* ---- 2. settlement by the window ---- */

/* Records reported OK settle only once resend_window (200ms) has passed since their write, on
 * a connection that did not break; a later batch settles later, in the order reported. */
START_TEST(test_settles_when_the_window_passes)
{
    rx_start("r");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port, "    resend_window: 200ms\n");
    open_sink(body);
    tbatch a, b;
    tb_make(&a, 1, 3, 0);
    tb_make(&b, 4, 2, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    ck_assert_uint_eq(a.settled_before, 0); /* OK is not settled */
    run_for(100);
    tb_submit(&b);
    tb_wait(&b);
    tb_assert_all(&b, SF_DELIV_OK);
    run_until_settled(5);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(settle_t[k] >= a.t_submit + 200, "record %d settled %llums after its write",
                      k, (unsigned long long)(settle_t[k] - a.t_submit));
    for (int k = 3; k < 5; k++)
        ck_assert_msg(settle_t[k] >= b.t_submit + 200, "record %d settled %llums after its write",
                      k, (unsigned long long)(settle_t[k] - b.t_submit));
    ck_assert_str_eq(rx_wait_frames(0, 5), "1,2,3,4,5");
    ck_assert_int_eq(rx.nconn, 1); /* one persistent connection */
    finish(true);
    tb_free(&a);
    tb_free(&b);
}
END_TEST

/* ---- 3. a lost connection ---- */

/* The receiver goes away (having read the batch) before the window passed: nothing settles
 * then; the sink reconnects on its own (after 500ms) and writes the window again, in order; the
 * re-sent records settle resend_window (400ms) after that re-send, not after their first write. */
START_TEST(test_lost_connection_resends_the_window)
{
    rx_start("rr");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port, "    resend_window: 400ms\n");
    open_sink(body);
    tbatch a;
    tb_make(&a, 1, 3, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    ck_assert_str_eq(rx_wait_frames(0, 3), "1,2,3");
    ck_assert_uint_eq(settled_total, 0);
    uint64_t t_drop = uv_now(&loop);
    rx_drop(0);
    /* the same records again on a new connection: nothing missing, order kept */
    ck_assert_str_eq(rx_wait_frames(1, 3), "1,2,3");
    ck_assert_uint_ge(rx.c[1].t_accept, t_drop + 500); /* the reconnect backoff */
    run_until_settled(3);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(settle_t[k] >= t_drop + 500 + 400,
                      "record %d settled %llums after the loss: before the re-sent window aged", k,
                      (unsigned long long)(settle_t[k] - t_drop));
    ck_assert_int_eq(rx.nconn, 2);
    ck_assert_uint_eq(rx.c[1].got.len, rx.c[0].got.len);
    ck_assert(memcmp(rx.c[1].got.data, rx.c[0].got.data, rx.c[0].got.len) == 0);
    finish(true);
    tb_free(&a);
}
END_TEST

/* A batch submitted after the loss reconnects at once, and the new connection carries the
 * window first, then the batch. A second loss sends all of it again. */
START_TEST(test_resend_comes_before_the_next_batch)
{
    rx_start("rrr");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port, "    resend_window: 400ms\n");
    open_sink(body);
    tbatch a, b;
    tb_make(&a, 1, 3, 0);
    tb_make(&b, 4, 2, 0);
    tb_submit(&a);
    tb_wait(&a);
    ck_assert_str_eq(rx_wait_frames(0, 3), "1,2,3");
    rx_drop(0);
    sf_test_run_until_fn(&loop, sink_saw_loss, NULL);
    tb_submit(&b);
    tb_wait(&b);
    tb_assert_all(&b, SF_DELIV_OK);
    ck_assert_str_eq(rx_wait_frames(1, 5), "1,2,3,4,5");
    uint64_t t_drop = uv_now(&loop);
    rx_drop(1);
    ck_assert_str_eq(rx_wait_frames(2, 5), "1,2,3,4,5");
    run_until_settled(5);
    for (int k = 0; k < 5; k++)
        ck_assert_uint_ge(settle_t[k], t_drop + 500 + 400);
    ck_assert_int_eq(rx.nconn, 3);
    finish(true);
    tb_free(&a);
    tb_free(&b);
}
END_TEST

/* ---- 4. flush: the graceful close ---- */

/* The receiver reads everything and closes its side after our FIN: that confirms, so the whole
 * window settles at once, long before resend_window (60s). The next batch reconnects. */
START_TEST(test_flush_confirmed_by_the_receiver)
{
    rx_start("rr");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port, "    resend_window: 60s\n");
    open_sink(body);
    tbatch a, b;
    tb_make(&a, 1, 3, 0);
    tb_make(&b, 4, 1, 0);
    tb_submit(&a);
    tb_wait(&a);
    ck_assert_str_eq(rx_wait_frames(0, 3), "1,2,3");
    ck_assert_uint_eq(settled_total, 0);
    flush_sink();
    uint64_t three = 3;
    ck_assert_msg(run_until_within(settled_reaches, &three, 5000), "flush did not settle");
    ck_assert_uint_eq(settled_total, 3);
    ck_assert_int_eq(settle_calls, 1); /* all at once */
    ck_assert(rx.c[0].eof);            /* our FIN came first */
    tb_submit(&b);
    tb_wait(&b);
    tb_assert_all(&b, SF_DELIV_OK);
    ck_assert_str_eq(rx_wait_frames(1, 1), "4");
    ck_assert_int_eq(rx.nconn, 2);
    ck_assert_uint_eq(settled_total, 3);
    finish(true);
    tb_free(&a);
    tb_free(&b);
}
END_TEST

/* flush while the window waits to be re-sent (the connection was lost): the sink reconnects,
 * re-sends the window, then closes gracefully; the receiver's close confirms the re-sent
 * records, all at once. */
START_TEST(test_flush_after_a_loss_confirms_the_resent_window)
{
    rx_start("rr");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port, "    resend_window: 60s\n");
    open_sink(body);
    tbatch a;
    tb_make(&a, 1, 3, 0);
    tb_submit(&a);
    tb_wait(&a);
    ck_assert_str_eq(rx_wait_frames(0, 3), "1,2,3");
    rx_drop(0);
    sf_test_run_until_fn(&loop, sink_saw_loss, NULL);
    flush_sink();
    uint64_t three = 3;
    ck_assert_msg(run_until_within(settled_reaches, &three, 5000), "flush did not settle");
    ck_assert_uint_eq(settled_total, 3);
    ck_assert_int_eq(settle_calls, 1);
    ck_assert_int_eq(rx.nconn, 2);
    ck_assert(rx.c[1].eof);
    ck_assert_str_eq(rx_wait_frames(1, 3), "1,2,3");
    finish(true);
    tb_free(&a);
}
END_TEST

/* A receiver that never reads nor closes does not confirm: flush settles nothing, the records
 * settle when the window (300ms) has passed. */
START_TEST(test_flush_unconfirmed_waits_for_the_window)
{
    rx_start("s");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port, "    resend_window: 300ms\n");
    open_sink(body);
    tbatch a;
    tb_make(&a, 1, 3, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    flush_sink();
    run_until_settled(3);
    for (int k = 0; k < 3; k++)
        ck_assert_uint_ge(settle_t[k], a.t_submit + 300);
    ck_assert_int_eq(rx.nconn, 1);
    finish(true);
    tb_free(&a);
}
END_TEST

/* ---- 5. receiver down ---- */

START_TEST(test_connect_refused_is_retry)
{
    char body[512];
    sink_cfg(body, sizeof body, "tcp", closed_port(), "    resend_window: 200ms\n");
    open_sink(body);
    tbatch a;
    tb_make(&a, 1, 3, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_RETRY);
    ck_assert_msg(strstr(sink.last_error, "connection refused"), "%s", sink.last_error);
    run_for(300); /* longer than the window: still nothing to settle */
    ck_assert_uint_eq(ok_total, 0);
    ck_assert_uint_eq(settled_total, 0);
    finish(false);
    tb_free(&a);
}
END_TEST

/* ---- 6. the window's byte bound ---- */

/* A window holding resend_window_bytes makes the next batch wait (not written, not done) until
 * its oldest records settle by age; nothing is dropped or settled early, everything arrives in
 * order. */
START_TEST(test_full_window_backpressures)
{
    rx_start("r");
    char body[512];
    sink_cfg(body, sizeof body, "tcp", rx.port,
             "    hostname: host1\n    resend_window: 300ms\n    resend_window_bytes: 1000\n");
    open_sink(body);
    tbatch a, b;
    tb_make(&a, 1, 4, 200); /* 4 x ~380 bytes: the window is full */
    tb_make(&b, 5, 2, 200);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    tb_submit(&b);
    tb_wait(&b);
    tb_assert_all(&b, SF_DELIV_OK);
    ck_assert_uint_ge(b.t_done, a.t_submit + 300); /* waited for the window */
    ck_assert_uint_eq(b.settled_before, 4);        /* ... for a's records to settle by age */
    for (int k = 0; k < 4; k++)
        ck_assert_uint_ge(settle_t[k], a.t_submit + 300);
    ck_assert_str_eq(rx_wait_frames(0, 6), "1,2,3,4,5,6");
    run_until_settled(6);
    for (int k = 4; k < 6; k++) /* b was written once a's records settled */
        ck_assert_uint_ge(settle_t[k], settle_t[3] + 300);
    finish(true);
    tb_free(&a);
    tb_free(&b);
}
END_TEST

/* ---- TLS ---- */

static tc_pki pki;

static void setup_tls(void)
{
    setup();
    tc_make_pki(&pki, tmpdir);
}

/* RFC 5425: octet-counted over TLS, and flush confirmed by close_notify + the receiver's close:
 * everything settles at once. */
START_TEST(test_tls_octet_counted_and_confirmed)
{
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(sctx, pki.srv_cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(sctx, pki.srv_key, SSL_FILETYPE_PEM), 1);
    srv_t sv;
    srv_start(&sv, SRV_READ_ALL, sctx, 0);
    char extra[1024], body[1200];
    snprintf(extra, sizeof extra,
             "    hostname: host1\n    resend_window: 60s\n    tls:\n      ca_file: %s\n", pki.ca);
    sink_cfg(body, sizeof body, "tls", sv.port, extra);
    open_sink(body);
    ck_assert(sink.defer_settle);
    tbatch a;
    tb_make(&a, 1, 2, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    ck_assert_uint_eq(settled_total, 0);
    flush_sink();
    uint64_t two = 2;
    ck_assert_msg(run_until_within(settled_reaches, &two, 5000), "flush did not settle");
    ck_assert_uint_eq(settled_total, 2);
    ck_assert_int_eq(settle_calls, 1);
    close_sink();
    srv_join(&sv);
    ck_assert(sv.handshake_ok);
    char ids[64];
    ck_assert_int_eq(frame_ids(&sv.got, ids, sizeof ids), 2);
    ck_assert_str_eq(ids, "1,2");
    char msg[1024];
    int w = snprintf(msg, sizeof msg,
                     "<130>1 2023-11-01T17:15:05.635115Z host1 sysdig-forwarder %ld sysdig-event "
                     "[sysdig@32473 id=\"ev-1\" policy=\"Pol 1\" severity=\"1\"] %s",
                     (long)getpid(), a.text[0]);
    char frame[1100];
    int fw = snprintf(frame, sizeof frame, "%d %s", w, msg);
    ck_assert_uint_gt(sv.got.len, (size_t)fw);
    ck_assert(memcmp(sv.got.data, frame, (size_t)fw) == 0);
    srv_free(&sv);
    sf_config_free(&cfg);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    tb_free(&a);
}
END_TEST

/* ---- UDP: no window ---- */

START_TEST(test_udp_one_datagram_per_record_no_window)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a4, sizeof a4), 0);
    socklen_t alen = sizeof a4;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a4, &alen), 0);
    char body[512];
    sink_cfg(body, sizeof body, "udp", ntohs(a4.sin_port), "    hostname: host1\n");
    open_sink(body);
    ck_assert(!sink.defer_settle);
    tbatch a;
    tb_make(&a, 1, 3, 0);
    tb_submit(&a);
    tb_wait(&a);
    tb_assert_all(&a, SF_DELIV_OK);
    for (size_t i = 0; i < a.n; i++) {
        char buf[2048];
        ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        char want[32];
        snprintf(want, sizeof want, "id=\"ev-%zu\"", i + 1);
        ck_assert_msg(strstr(buf, want), "datagram %zu: %s", i, buf);
        ck_assert(strncmp(buf, "<", 1) == 0); /* no framing */
        ck_assert_str_eq(buf + n - a.rec[i].len, a.text[i]);
    }
    finish(false);
    ck_assert_int_eq(settle_calls, 0);
    close(fd);
    tb_free(&a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("syslog_sink");
    TCase *tc = tcase_create("framing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_octet_counting_5424);
    tcase_add_test(tc, test_lf_3164);
    tcase_add_test(tc, test_udp_one_datagram_per_record_no_window);
    suite_add_tcase(s, tc);
    tc = tcase_create("window");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_settles_when_the_window_passes);
    suite_add_tcase(s, tc);
    tc = tcase_create("resend");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lost_connection_resends_the_window);
    tcase_add_test(tc, test_resend_comes_before_the_next_batch);
    suite_add_tcase(s, tc);
    tc = tcase_create("flush");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_flush_confirmed_by_the_receiver);
    tcase_add_test(tc, test_flush_after_a_loss_confirms_the_resent_window);
    tcase_add_test(tc, test_flush_unconfirmed_waits_for_the_window);
    suite_add_tcase(s, tc);
    tc = tcase_create("refused");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_connect_refused_is_retry);
    suite_add_tcase(s, tc);
    tc = tcase_create("backpressure");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_full_window_backpressures);
    suite_add_tcase(s, tc);
    tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, setup_tls, teardown);
    tcase_add_test(tc, test_tls_octet_counted_and_confirmed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
