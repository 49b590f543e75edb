/* server: health/readiness/metrics endpoint, progress and health logs, systemd STATUS=.
 * See server.h. Everything runs on the loop thread; stats are read on demand.
 * Over 600 lines: most of it is the /metrics page, one family after another (the metric
 * names are public interface, kept in one place with their help texts). */
#include "ops/server.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "net/httpd.h"
#include "core/log.h"
#include "ops/notify.h"

#define TICK_MS 1000
#define DEF_PROGRESS_MS INT64_C(10000)
#define DEF_HEALTH_MS INT64_C(300000)
#define METRICS_CT "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_BYTES ((size_t)16 << 20) /* far above any real page: a runaway is a bug */
#define NLAT SF_ARRAY_LEN(sf_source_latency_bounds)

struct sf_server {
    uv_loop_t *loop;
    const sf_config *cfg;
    const sf_source *src;
    const sf_pipeline *pipe;
    const sf_committer *cm;
    sf_server_opts o;
    sf_httpd *httpd;
    uv_timer_t tick;
    int open_parts; /* tick timer + httpd still closing */
    void (*closed)(void *);
    void *closed_arg;
    int64_t start_ms;
    /* checkpoint write outcome, sampled from the counters */
    uint64_t cp_writes_seen, cp_errors_seen;
    bool cp_failing;
    /* catch-up progress */
    bool catching_up, progress_logged;
    int64_t cu_start_ms, cu_from_ns, last_progress_ms;
    uint64_t cu_events0, last_progress_events;
    /* periodic health line */
    int64_t last_health_ms;
    uint64_t health_events;
};

/* ---------------------------------------------------------------- small helpers */

static int64_t mono_ms(void)
{
    return sf_monotonic_ms();
}

static void fmt_dur(int64_t ms, char *out, size_t n)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000) {
        snprintf(out, n, "%lldms", (long long)ms);
        return;
    }
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(out, n, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, n, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(out, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(out, n, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

/* Copies text into out with every registered secret replaced (never quote a token). */
static void redact_into(const char *text, char *out, size_t n)
{
    sf_buf b = {0};
    if (n == 0)
        return;
    if (sf_log_redact(text ? text : "", &b) == 0 && b.data)
        snprintf(out, n, "%s", b.data);
    else
        snprintf(out, n, "%s", "(unavailable)");
    sf_buf_free(&b);
}

static bool auth_failing(const sf_source_stats *st)
{
    /* failures that retrying cannot heal: the token refused, the certificate not verifiable */
    return st->last_error[0] && (st->last_status == 401 || st->last_status == 403 ||
                                 strstr(st->last_error, "certificate cannot be verified"));
}

static int64_t max_poll_age_ms(const sf_server *s)
{
    int64_t age = s->cfg->server.ready_max_poll_age_ms;
    /* a poll can legitimately be this old when the poll interval is longer than the window */
    int64_t floor = s->cfg->source.poll_interval_ms + s->cfg->source.request_timeout_ms;
    return age > floor ? age : floor;
}

static void committer_stats(const sf_server *s, sf_committer_stats *cs)
{
    if (s->cm) {
        sf_committer_stats_get(s->cm, cs);
    } else {
        memset(cs, 0, sizeof *cs);
        cs->watermark_ns = SF_TIME_UNSET;
    }
}

/* The committed checkpoint watermark; SF_TIME_UNSET before the first window ended. */
static int64_t watermark_ns(const sf_server *s)
{
    sf_committer_stats cs;
    committer_stats(s, &cs);
    return cs.watermark_ns;
}

/* Samples the checkpoint counters: failing when the latest change was an error. */
static void sample_checkpoint(sf_server *s)
{
    sf_committer_stats cs;
    committer_stats(s, &cs);
    bool more_err = cs.errors > s->cp_errors_seen;
    bool more_ok = cs.writes > s->cp_writes_seen;
    if (more_err && !more_ok)
        s->cp_failing = true;
    else if (more_ok && !more_err)
        s->cp_failing = false;
    /* both moved since the last sample: the order is unknown, keep the previous verdict unless
     * it was fine (then the error counts) */
    else if (more_ok && more_err && !s->cp_failing)
        s->cp_failing = true;
    s->cp_errors_seen = cs.errors;
    s->cp_writes_seen = cs.writes;
}

static size_t sinks_ok(const sf_server *s, size_t *total)
{
    size_t n = s->pipe ? sf_pipeline_nsinks(s->pipe) : 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        sf_sink_stats ss;
        sf_pipeline_sink_stats(s->pipe, i, &ss);
        ok += ss.healthy;
    }
    *total = n;
    return ok;
}

/* ---------------------------------------------------------------- catch-up progress */

static bool window_active(const sf_source_stats *st)
{
    return st->window_to_ns != 0 && st->window_from_ns != 0 &&
           st->window_from_ns != SF_TIME_UNSET && st->window_to_ns > st->window_from_ns;
}

/* Position the daemon has reached for catch-up purposes (committed watermark, or the start of
 * the first window on a first start). */
static int64_t position_ns(const sf_server *s, const sf_source_stats *st)
{
    int64_t wm = watermark_ns(s);
    if (wm != SF_TIME_UNSET && wm != 0)
        return wm;
    return window_active(st) ? st->window_from_ns : SF_TIME_UNSET;
}

/* Share of [cu_from, now] covered: windows before the current one plus the part of the current
 * window already paged through (pages come newest first: [low, to] is done). */
static double catchup_done_ns(const sf_server *s, const sf_source_stats *st)
{
    double done = 0;
    if (st->window_from_ns > s->cu_from_ns)
        done += (double)(st->window_from_ns - s->cu_from_ns);
    if (st->window_low_ns != SF_TIME_UNSET && st->window_low_ns != 0 &&
        st->window_low_ns < st->window_to_ns)
        done += (double)(st->window_to_ns - st->window_low_ns);
    return done;
}

static void progress_tick(sf_server *s, const sf_source_stats *st, int64_t now_ms)
{
    int64_t now = sf_now_ns();
    int64_t pos = position_ns(s, st);
    int64_t behind_limit = 2 * s->cfg->source.poll_interval_ms * SF_NS_PER_MS;
    bool behind = window_active(st) && pos != SF_TIME_UNSET && now - st->window_to_ns > 0 &&
                  now - pos > behind_limit;
    if (behind && !s->catching_up) {
        s->catching_up = true;
        s->progress_logged = false;
        s->cu_start_ms = now_ms;
        s->cu_from_ns = pos;
        s->cu_events0 = st->events;
        s->last_progress_ms = now_ms;
        s->last_progress_events = st->events;
        return;
    }
    if (!behind && s->catching_up) {
        s->catching_up = false;
        if (s->progress_logged) {
            char d[32];
            fmt_dur(now_ms - s->cu_start_ms, d, sizeof d);
            double secs = (double)(now_ms - s->cu_start_ms) / 1000.0;
            uint64_t n = st->events - s->cu_events0;
            SF_INFO("progress", "caught up: %llu events in %s (%.0f events/s)",
                    (unsigned long long)n, d, secs > 0 ? (double)n / secs : 0.0);
        }
        return;
    }
    if (!s->catching_up || now_ms - s->last_progress_ms < s->o.progress_interval_ms)
        return;
    double total = (double)(now - s->cu_from_ns);
    double done = catchup_done_ns(s, st);
    if (done > total)
        done = total;
    double pct = total > 0 ? 100.0 * done / total : 0;
    double dt = (double)(now_ms - s->last_progress_ms) / 1000.0;
    double eps = dt > 0 ? (double)(st->events - s->last_progress_events) / dt : 0;
    /* covered data-time per wall second since the catch-up began; "now" moves at 1 s/s */
    double wall = (double)(now_ms - s->cu_start_ms) / 1000.0;
    double rate = wall > 0 ? done / 1e9 / wall : 0;
    char eta[32] = "unknown";
    if (rate > 1.0)
        fmt_dur((int64_t)((total - done) / 1e9 / (rate - 1.0) * 1000.0), eta, sizeof eta);
    char lag[32];
    fmt_dur((now - pos) / SF_NS_PER_MS, lag, sizeof lag);
    SF_INFO("progress",
            "catching up: %.1f%% done, %.0f events/s, ETA %s, %llu events so far, "
            "position %s behind",
            pct, eps, eta, (unsigned long long)(st->events - s->cu_events0), lag);
    s->progress_logged = true;
    s->last_progress_ms = now_ms;
    s->last_progress_events = st->events;
}

/* ---------------------------------------------------------------- summary / health */

void sf_server_summary(sf_server *s, char *out, size_t outlen)
{
    sf_source_stats st;
    sf_source_stats_get(s->src, &st);
    size_t total, ok = sinks_ok(s, &total);
    char state[64], lag[48] = "", sinks[48], err[160] = "";
    if (s->catching_up) {
        double tot = (double)(sf_now_ns() - s->cu_from_ns);
        double done = catchup_done_ns(s, &st);
        snprintf(state, sizeof state, "catching up %.0f%%",
                 tot > 0 ? (done > tot ? 100.0 : 100.0 * done / tot) : 0.0);
    } else if (st.last_success_ms == 0) {
        snprintf(state, sizeof state, "starting");
    } else {
        snprintf(state, sizeof state, "forwarding");
    }
    int64_t wm = watermark_ns(s);
    if (wm != SF_TIME_UNSET && wm != 0) {
        char d[32];
        fmt_dur((sf_now_ns() - wm) / SF_NS_PER_MS, d, sizeof d);
        snprintf(lag, sizeof lag, ", lag %s", d);
    }
    if (ok == total)
        snprintf(sinks, sizeof sinks, "%zu sink%s ok", total, total == 1 ? "" : "s");
    else
        snprintf(sinks, sizeof sinks, "%zu/%zu sinks ok", ok, total);
    if (st.last_error[0]) {
        char r[128];
        redact_into(st.last_error, r, sizeof r);
        snprintf(err, sizeof err, ", api: %s", r);
    }
    snprintf(out, outlen, "%s%s, %s%s", state, lag, sinks, err);
}

static void health_tick(sf_server *s, const sf_source_stats *st, int64_t now_ms)
{
    if (s->o.health_interval_ms <= 0 || now_ms - s->last_health_ms < s->o.health_interval_ms)
        return;
    char d[32], poll[48] = "none yet";
    fmt_dur(now_ms - s->last_health_ms, d, sizeof d);
    if (st->last_success_ms) {
        char a[32];
        fmt_dur(now_ms - st->last_success_ms, a, sizeof a);
        snprintf(poll, sizeof poll, "%s ago", a);
    }
    sf_pipeline_stats ps = {0};
    if (s->pipe)
        sf_pipeline_stats_get(s->pipe, &ps);
    char summary[256];
    sf_server_summary(s, summary, sizeof summary);
    sf_buf ready = {0};
    int code = sf_server_render_ready(s, &ready);
    sf_buf_free(&ready);
    SF_INFO("health",
            "%s: %s; %llu events polled (+%llu in %s), %llu delivered, %llu dead-lettered, "
            "%zu queued, last poll %s, checkpoint %s",
            code == 200 ? "ready" : "NOT ready", summary, (unsigned long long)st->events,
            (unsigned long long)(st->events - s->health_events), d,
            (unsigned long long)ps.delivered, (unsigned long long)ps.rejected, ps.queued_events,
            poll, s->cp_failing ? "write FAILING" : "ok");
    s->last_health_ms = now_ms;
    s->health_events = st->events;
}

static void tick_cb(uv_timer_t *t)
{
    sf_server *s = t->data;
    sf_source_stats st;
    sf_source_stats_get(s->src, &st);
    int64_t now_ms = mono_ms();
    sample_checkpoint(s);
    progress_tick(s, &st, now_ms);
    health_tick(s, &st, now_ms);
    if (sf_notify_enabled()) {
        char summary[256];
        sf_server_summary(s, summary, sizeof summary);
        sf_notify_status("%s", summary);
    }
}

/* ---------------------------------------------------------------- readiness */

static void check_line(sf_buf *b, bool *all, bool ok, const char *name, const char *fmt, ...)
    SF_PRINTF(5, 6);
static void check_line(sf_buf *b, bool *all, bool ok, const char *name, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char red[600];
    redact_into(msg, red, sizeof red);
    sf_buf_appendf(b, "[%c]%s %s\n", ok ? '+' : '-', name, red);
    if (!ok)
        *all = false;
}

static void check_checkpoint(sf_server *s, sf_buf *b, bool *all)
{
    if (!s->o.checkpoint_used) {
        check_line(b, all, true, "checkpoint", "ok (not used in this mode)");
        return;
    }
    const char *path = s->cfg->checkpoint.path;
    if (!path || !*path) {
        check_line(b, all, false, "checkpoint", "failed: no checkpoint path");
        return;
    }
    if (access(path, R_OK) != 0 && errno != ENOENT) {
        check_line(b, all, false, "checkpoint", "failed: %s is not readable: %s", path,
                   strerror(errno));
        return;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK | X_OK) != 0) {
        check_line(b, all, false, "checkpoint", "failed: directory %s is not writable: %s", dir,
                   strerror(errno));
        return;
    }
    if (s->cp_failing) {
        check_line(b, all, false, "checkpoint", "failed: the last checkpoint write failed");
        return;
    }
    check_line(b, all, true, "checkpoint", "ok");
}

int sf_server_render_ready(sf_server *s, sf_buf *b)
{
    bool all = true;
    sf_source_stats st;
    sf_source_stats_get(s->src, &st);
    sample_checkpoint(s);
    int64_t now_ms = mono_ms();
    check_line(b, &all, true, "config", "ok");
    check_checkpoint(s, b, &all);

    int64_t max_age = max_poll_age_ms(s);
    char age[32], lim[32];
    fmt_dur(max_age, lim, sizeof lim);
    if (auth_failing(&st)) {
        check_line(b, &all, false, "poll", "failed: %s", st.last_error);
    } else if (st.last_success_ms) {
        fmt_dur(now_ms - st.last_success_ms, age, sizeof age);
        if (now_ms - st.last_success_ms > max_age)
            check_line(b, &all, false, "poll", "failed: last successful poll %s ago (limit %s)%s%s",
                       age, lim, st.last_error[0] ? ": " : "", st.last_error);
        else
            check_line(b, &all, true, "poll", "ok (last successful poll %s ago)", age);
    } else {
        fmt_dur(now_ms - s->start_ms, age, sizeof age);
        if (now_ms - s->start_ms > max_age)
            check_line(b, &all, false, "poll", "failed: no successful poll in %s since start%s%s",
                       age, st.last_error[0] ? ": " : "", st.last_error);
        else
            check_line(b, &all, true, "poll", "ok (starting, no successful poll yet, %s of %s)",
                       age, lim);
    }

    size_t n = s->pipe ? sf_pipeline_nsinks(s->pipe) : 0;
    for (size_t i = 0; i < n; i++) {
        sf_sink_stats ss;
        sf_pipeline_sink_stats(s->pipe, i, &ss);
        char name[160];
        snprintf(name, sizeof name, "sink:%s", ss.name ? ss.name : "?");
        if (ss.healthy)
            check_line(b, &all, true, name, "ok");
        else
            check_line(b, &all, false, name, "failed: %s",
                       ss.last_error && *ss.last_error ? ss.last_error : "not accepting events");
    }
    sf_pipeline_stats ps = {0};
    if (s->pipe)
        sf_pipeline_stats_get(s->pipe, &ps);
    if (ps.dead_letter_full) /* rejected events are held: the checkpoint waits for them */
        check_line(b, &all, false, "dead_letter",
                   "failed: the dead-letter file is full (dead_letter.max_size); move it away "
                   "and send SIGHUP");
    sf_buf_puts(b, all ? "ready\n" : "not ready\n");
    return all ? 200 : 503;
}

/* ---------------------------------------------------------------- metrics */

static void family(sf_buf *b, const char *name, const char *type, const char *help)
{
    sf_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_value(sf_buf *b, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\')
            sf_buf_puts(b, "\\\\");
        else if (*p == '"')
            sf_buf_puts(b, "\\\"");
        else if (*p == '\n')
            sf_buf_puts(b, "\\n");
        else
            sf_buf_putc(b, *p);
    }
}

static void fmt_double(double v, char *out, size_t n)
{
    if (isnan(v))
        snprintf(out, n, "NaN");
    else if (isinf(v))
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(out, n, "%.17g", v);
}

static void sample_u(sf_buf *b, const char *name, uint64_t v)
{
    sf_buf_appendf(b, "%s %" PRIu64 "\n", name, v);
}

static void sample_d(sf_buf *b, const char *name, double v)
{
    char x[40];
    fmt_double(v, x, sizeof x);
    sf_buf_appendf(b, "%s %s\n", name, x);
}

static void sample_l1(sf_buf *b, const char *name, const char *l, const char *lv, double v)
{
    char x[40];
    fmt_double(v, x, sizeof x);
    sf_buf_appendf(b, "%s{%s=\"", name, l);
    label_value(b, lv);
    sf_buf_appendf(b, "\"} %s\n", x);
}

static void counter1(sf_buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    sample_u(b, name, v);
}

static bool read_statm(uint64_t *vsz, uint64_t *rss)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return false;
    unsigned long long a = 0, r = 0;
    int n = fscanf(f, "%llu %llu", &a, &r);
    fclose(f);
    if (n != 2)
        return false;
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0)
        pg = 4096;
    *vsz = a * (uint64_t)pg;
    *rss = r * (uint64_t)pg;
    return true;
}

/* Unix time the process started: /proc/self/stat's starttime (clock ticks after boot, field
 * 22, after the parenthesised command name, which may hold spaces) plus /proc/stat's btime.
 * 0 when unknown. What restarts are counted by (process_start_time_seconds). */
static double process_start_time(void)
{
    static double cached = -1;
    if (cached >= 0)
        return cached;
    cached = 0;
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long start = 0, btime = 0;
    /* after ')': state (field 3) ... starttime (field 22) */
    for (int field = 2; p && *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (!p || sscanf(p, "%llu", &start) != 1)
        return cached;
    f = fopen("/proc/stat", "re");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime && hz > 0)
        cached = (double)btime + (double)start / (double)hz;
    return cached;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory stream's own descriptor */
}

static void sink_metrics(sf_server *s, sf_buf *b)
{
    size_t n = s->pipe ? sf_pipeline_nsinks(s->pipe) : 0;
    sf_sink_stats *ss = calloc(n ? n : 1, sizeof *ss);
    if (!ss)
        return;
    for (size_t i = 0; i < n; i++)
        sf_pipeline_sink_stats(s->pipe, i, &ss[i]);
    static const struct {
        const char *name, *type, *help;
        int field;
    } defs[] = {
        {"sysdig_forwarder_events_delivered_total", "counter",
         "Events a sink accepted (delivered).", 0},
        {"sysdig_forwarder_events_retried_total", "counter",
         "Event deliveries a sink asked to retry.", 1},
        {"sysdig_forwarder_events_dead_lettered_total", "counter",
         "Events a sink permanently rejected or that exhausted retries (dead-lettered).", 2},
        {"sysdig_forwarder_queue_events", "gauge", "Events waiting or in flight for a sink.", 3},
        {"sysdig_forwarder_sink_up", "gauge",
         "1 when the sink's last delivery attempt succeeded, 0 while it is failing.", 4},
        {"sysdig_forwarder_spool_events", "gauge",
         "Events waiting in the sink's disk spool (0 without a spool).", 5},
        {"sysdig_forwarder_spool_bytes", "gauge", "Bytes of the sink's disk spool.", 6},
        {"sysdig_forwarder_events_spooled_total", "counter",
         "Events parked in the sink's disk spool while it refused them.", 7},
        {"sysdig_forwarder_sink_unsettled_events", "gauge",
         "Events a sink wrote but has not settled yet (syslog resend window, Splunk HEC "
         "awaiting indexer acknowledgement); the checkpoint waits for them.",
         8},
        {"sysdig_forwarder_sink_topic_missing", "gauge",
         "1 while the sink's last answer said its Kafka topic does not exist (kafka_rest, kafka; "
         "its events are retried), else 0.",
         9},
        {"sysdig_forwarder_sink_events_filtered_total", "counter",
         "Events the sink's filter routed away (settled for it without sending).", 10},
        {"sysdig_forwarder_sink_kafka_queue_messages", "gauge",
         "Records in librdkafka's producer queues, waiting to be sent or for their delivery "
         "report (kafka sinks; 0 for the others).",
         11},
        {"sysdig_forwarder_sink_events_skipped_total", "counter",
         "Events read again after a restart that were not sent to the sink because it had "
         "confirmed them before (the checkpoint's per-sink progress).",
         12},
    };
    for (size_t d = 0; d < SF_ARRAY_LEN(defs); d++) {
        family(b, defs[d].name, defs[d].type, defs[d].help);
        for (size_t i = 0; i < n; i++) {
            double v;
            switch (defs[d].field) {
            case 0:
                v = (double)ss[i].delivered;
                break;
            case 1:
                v = (double)ss[i].retried;
                break;
            case 2:
                v = (double)ss[i].rejected;
                break;
            case 3:
                v = (double)ss[i].queued_events;
                break;
            case 4:
                v = ss[i].healthy ? 1.0 : 0.0;
                break;
            case 5:
                v = (double)ss[i].spool_events;
                break;
            case 6:
                v = (double)ss[i].spool_bytes;
                break;
            case 7:
                v = (double)ss[i].spooled;
                break;
            case 8:
                v = (double)ss[i].unsettled;
                break;
            case 9:
                v = ss[i].topic_missing ? 1.0 : 0.0;
                break;
            case 10:
                v = (double)ss[i].filtered;
                break;
            case 11:
                v = (double)ss[i].producer_queue;
                break;
            default:
                v = (double)ss[i].skipped;
                break;
            }
            sample_l1(b, defs[d].name, "sink", ss[i].name, v);
        }
    }
    static const char *const fault_class[SF_SINK_FAULT_COUNT] = {[SF_SINK_FAULT_TLS_VERIFY] =
                                                                     "tls_verify"};
    family(b, "sysdig_forwarder_sink_errors_total", "counter",
           "Sink delivery attempts that failed for a reason retrying cannot heal (a configuration "
           "problem), by class: tls_verify (the receiver's certificate cannot be verified).");
    for (size_t i = 0; i < n; i++)
        for (int c = 1; c < SF_SINK_FAULT_COUNT; c++) {
            sf_buf_puts(b, "sysdig_forwarder_sink_errors_total{sink=\"");
            label_value(b, ss[i].name);
            sf_buf_appendf(b, "\",class=\"%s\"} %llu\n", fault_class[c],
                           (unsigned long long)ss[i].faults[c]);
        }
    family(b, "sysdig_forwarder_sink_info", "gauge", "Configured sinks (value is always 1).");
    for (size_t i = 0; i < n; i++) {
        sf_buf_puts(b, "sysdig_forwarder_sink_info{sink=\"");
        label_value(b, ss[i].name);
        sf_buf_puts(b, "\",type=\"");
        label_value(b, ss[i].type);
        sf_buf_puts(b, "\",format=\"");
        label_value(b, ss[i].format);
        sf_buf_puts(b, "\"} 1\n");
    }
    free(ss);
}

int sf_server_render_metrics(sf_server *s, sf_buf *b)
{
    sf_source_stats st;
    sf_source_stats_get(s->src, &st);
    sample_checkpoint(s);
    sf_pipeline_stats ps = {0};
    if (s->pipe)
        sf_pipeline_stats_get(s->pipe, &ps);

    family(b, "sysdig_forwarder_build_info", "gauge", "Build information (value is always 1).");
    sf_buf_puts(b, "sysdig_forwarder_build_info{version=\"");
    label_value(b, SF_VERSION);
    sf_buf_puts(b, "\"} 1\n");

    counter1(b, "sysdig_forwarder_events_polled_total",
             "Events received from the API and handed to the sinks (after clipping and dedup).",
             st.events);
    counter1(b, "sysdig_forwarder_events_duplicates_total",
             "Events dropped because they were already delivered (window overlap).", st.duplicates);
    counter1(b, "sysdig_forwarder_pages_fetched_total", "API pages fetched and processed.",
             st.pages);
    counter1(b, "sysdig_forwarder_windows_total", "Time windows started by the poller.",
             st.windows);
    counter1(b, "sysdig_forwarder_api_requests_total", "Requests sent to the Events API.",
             st.requests);
    family(b, "sysdig_forwarder_api_errors_total", "counter",
           "Failed API requests by class: transport (connection, TLS handshake, timeout), "
           "tls_verify (the certificate cannot be verified: configuration), malformed "
           "(unusable 200 body), 4xx (other than auth and 429), 5xx, 429, auth (401/403).");
    uint64_t c4 = st.status_4xx >= st.status_401_403 ? st.status_4xx - st.status_401_403 : 0;
    const struct {
        const char *cls;
        uint64_t v;
    } errs[] = {{"transport", st.errors_transport},
                {"tls_verify", st.errors_tls_verify},
                {"malformed", st.errors_malformed},
                {"4xx", c4},
                {"5xx", st.status_5xx},
                {"429", st.status_429},
                {"auth", st.status_401_403}};
    for (size_t i = 0; i < SF_ARRAY_LEN(errs); i++)
        sample_l1(b, "sysdig_forwarder_api_errors_total", "class", errs[i].cls, (double)errs[i].v);
    counter1(b, "sysdig_forwarder_api_rate_limited_total",
             "API answers with HTTP 429 (rate limited).", st.status_429);
    family(b, "sysdig_forwarder_api_concurrency", "gauge",
           "API requests allowed in flight now: source.max_concurrency, halved on HTTP 429 and "
           "grown back slowly.");
    sample_u(b, "sysdig_forwarder_api_concurrency", st.concurrency);
    family(b, "sysdig_forwarder_api_requests_in_flight", "gauge", "API requests in flight now.");
    sample_u(b, "sysdig_forwarder_api_requests_in_flight", st.inflight);
    family(b, "sysdig_forwarder_source_slices", "gauge",
           "Cursors the poller walks now: the concurrent slices of a catch-up window, 1 while "
           "fetching a window whole, 0 between polls.");
    sample_u(b, "sysdig_forwarder_source_slices", st.lanes);
    counter1(b, "sysdig_forwarder_windows_cut_total",
             "Backlog windows fetched in concurrent slices (catch-up).", st.window_cuts);

    /* histogram: the source keeps cumulative bucket counts and the sum; the count is every
     * answered request (each one was timed) */
    uint64_t count = st.pages + st.window_splits + st.errors_malformed + st.errors_transport +
                     st.errors_tls_verify + st.status_4xx + st.status_5xx + st.status_429;
    if (count < st.poll_latency_buckets[NLAT - 1])
        count = st.poll_latency_buckets[NLAT - 1];
    family(b, "sysdig_forwarder_poll_duration_seconds", "histogram",
           "Duration of API page requests, from send to the complete answer.");
    uint64_t prev = 0;
    for (size_t i = 0; i < NLAT; i++) {
        uint64_t v = st.poll_latency_buckets[i];
        if (v < prev)
            v = prev; /* keep buckets monotonic whatever happens */
        if (v > count)
            v = count;
        prev = v;
        char le[32];
        snprintf(le, sizeof le, "%g", sf_source_latency_bounds[i]);
        sf_buf_appendf(b, "sysdig_forwarder_poll_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                       le, v);
    }
    sf_buf_appendf(b, "sysdig_forwarder_poll_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                   count);
    sample_d(b, "sysdig_forwarder_poll_duration_seconds_sum", st.poll_latency_sum);
    sample_u(b, "sysdig_forwarder_poll_duration_seconds_count", count);

    family(b, "sysdig_forwarder_cursor_lag_seconds", "gauge",
           "Now minus the committed checkpoint watermark (absent before the first commit).");
    sf_committer_stats cs;
    committer_stats(s, &cs);
    if (cs.watermark_ns != SF_TIME_UNSET && cs.watermark_ns != 0)
        sample_d(b, "sysdig_forwarder_cursor_lag_seconds",
                 (double)(sf_now_ns() - cs.watermark_ns) / 1e9);
    family(b, "sysdig_forwarder_last_successful_poll_timestamp_seconds", "gauge",
           "Unix time of the last successful API page (absent before the first one).");
    if (st.last_success_ms)
        sample_d(b, "sysdig_forwarder_last_successful_poll_timestamp_seconds",
                 (double)sf_now_ns() / 1e9 - (double)(mono_ms() - st.last_success_ms) / 1000.0);
    family(b, "sysdig_forwarder_catching_up", "gauge",
           "1 while the poller is more than two poll intervals behind.");
    sample_u(b, "sysdig_forwarder_catching_up", s->catching_up ? 1 : 0);

    counter1(b, "sysdig_forwarder_checkpoint_writes_total", "Checkpoint writes that succeeded.",
             cs.writes);
    counter1(b, "sysdig_forwarder_checkpoint_write_errors_total", "Checkpoint writes that failed.",
             cs.errors);
    counter1(b, "sysdig_forwarder_encode_errors_total", "Events a sink's format could not encode.",
             ps.encode_errors);
    family(b, "sysdig_forwarder_dead_letter_full", "gauge",
           "1 while the dead-letter file is at dead_letter.max_size: rejected events are held "
           "(never dropped) and the checkpoint waits for them.");
    sample_u(b, "sysdig_forwarder_dead_letter_full", ps.dead_letter_full ? 1 : 0);
    family(b, "sysdig_forwarder_dead_letter_bytes", "gauge",
           "Size of the dead-letter file (0 until the first entry since start or SIGHUP).");
    sample_u(b, "sysdig_forwarder_dead_letter_bytes", ps.dead_letter_bytes);

    sink_metrics(s, b);

    sf_buf tmp = {0};
    int code = sf_server_render_ready(s, &tmp);
    sf_buf_free(&tmp);
    family(b, "sysdig_forwarder_ready", "gauge", "1 when /readyz answers 200.");
    sample_u(b, "sysdig_forwarder_ready", code == 200 ? 1 : 0);

    family(b, "sysdig_forwarder_log_messages_total", "counter", "Log lines written, by level.");
    static const char *const lv[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        sample_l1(b, "sysdig_forwarder_log_messages_total", "level", lv[i],
                  (double)sf_log_count((sf_log_level)i));

    uint64_t vsz, rss;
    if (read_statm(&vsz, &rss)) {
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        sample_u(b, "process_resident_memory_bytes", rss);
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        sample_u(b, "process_virtual_memory_bytes", vsz);
    }
    long fds = count_fds();
    if (fds >= 0) {
        family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        sample_u(b, "process_open_fds", (uint64_t)fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sample_u(b, "process_max_fds", (uint64_t)rl.rlim_cur);
    }
    double started = process_start_time();
    if (started > 0) {
        family(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.");
        sample_d(b, "process_start_time_seconds", started);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        sample_d(b, "process_cpu_seconds_total",
                 (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6);
    }
    return b->data ? sf_buf_error(b) : -ENOMEM;
}

/* ---------------------------------------------------------------- HTTP */

static int handler(sf_httpd_req *req, sf_httpd_resp *resp, void *ud)
{
    sf_server *s = ud;
    const char *m = sf_httpd_method(req), *path = sf_httpd_path(req);
    bool known = strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
                 strcmp(path, "/metrics") == 0;
    resp->content_type = "text/plain; charset=utf-8";
    if (!known) {
        resp->status = 404;
        return sf_buf_puts(&resp->body, "not found: try /metrics, /healthz or /readyz\n") ? -1 : 0;
    }
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        resp->status = 405;
        sf_buf_puts(&resp->headers, "Allow: GET, HEAD\r\n");
        return sf_buf_puts(&resp->body, "method not allowed\n") ? -1 : 0;
    }
    sf_buf_puts(&resp->headers, "Cache-Control: no-store\r\n");
    if (strcmp(path, "/healthz") == 0) {
        resp->status = 200;
        return sf_buf_puts(&resp->body, "ok\n") ? -1 : 0;
    }
    if (strcmp(path, "/readyz") == 0) {
        resp->status = sf_server_render_ready(s, &resp->body);
        return sf_buf_error(&resp->body) ? -1 : 0;
    }
    resp->status = 200;
    resp->content_type = METRICS_CT;
    /* rendered in one go and checked once: a failure serves 500, never a partial page */
    resp->body.max = METRICS_MAX_BYTES;
    return sf_server_render_metrics(s, &resp->body) ? -1 : 0;
}

/* ---------------------------------------------------------------- lifecycle */

int sf_server_start(uv_loop_t *loop, const sf_config *cfg, const sf_source *src,
                    const sf_pipeline *pipe, const sf_committer *cm, const sf_server_opts *opts,
                    sf_server **out)
{
    sf_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    s->src = src;
    s->pipe = pipe;
    s->cm = cm;
    if (opts)
        s->o = *opts;
    if (!s->o.mode)
        s->o.mode = "follow";
    if (s->o.progress_interval_ms <= 0)
        s->o.progress_interval_ms = DEF_PROGRESS_MS;
    if (s->o.health_interval_ms == 0)
        s->o.health_interval_ms = DEF_HEALTH_MS;
    s->start_ms = s->last_health_ms = mono_ms();
    sf_source_stats st;
    sf_source_stats_get(src, &st);
    sf_committer_stats cs;
    committer_stats(s, &cs);
    s->cp_writes_seen = cs.writes;
    s->cp_errors_seen = cs.errors;
    s->health_events = st.events;

    const char *listen = cfg->server.listen;
    if (listen && *listen) {
        int rc = sf_httpd_start(loop, listen, handler, s, &s->httpd);
        if (rc) {
            SF_ERROR("server", "cannot listen on %s: %s", listen,
                     rc < 0 && rc > -4096 ? uv_strerror(rc) : "error");
            free(s);
            return rc < 0 ? rc : -EINVAL;
        }
        SF_INFO("server", "serving /metrics, /healthz and /readyz on %s (port %d)", listen,
                sf_httpd_port(s->httpd));
    }
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, tick_cb, TICK_MS, TICK_MS);
    *out = s;
    return 0;
}

int sf_server_port(const sf_server *s)
{
    return s && s->httpd ? sf_httpd_port(s->httpd) : 0;
}

static void part_closed(sf_server *s)
{
    if (--s->open_parts > 0)
        return;
    void (*cb)(void *) = s->closed;
    void *arg = s->closed_arg;
    free(s);
    if (cb)
        cb(arg);
}

static void on_tick_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static void on_httpd_closed(void *arg)
{
    part_closed(arg);
}

void sf_server_close(sf_server *s, void (*closed)(void *arg), void *arg)
{
    if (!s) {
        if (closed)
            closed(arg);
        return;
    }
    s->closed = closed;
    s->closed_arg = arg;
    s->open_parts = 1 + (s->httpd ? 1 : 0);
    uv_timer_stop(&s->tick);
    uv_close((uv_handle_t *)&s->tick, on_tick_closed);
    if (s->httpd) {
        sf_httpd *h = s->httpd;
        s->httpd = NULL;
        sf_httpd_close(h, on_httpd_closed, s);
    }
}
