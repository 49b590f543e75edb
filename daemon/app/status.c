/* status: gathers the facts (disk first, then the live endpoint), decides the verdict, and
 * prints them as a table or one JSON object. Every file is opened read-only; the checkpoint is
 * read with its own loader (core/checkpoint.h), the spools with sf_spool_inspect, the live
 * endpoint with the healthcheck's GET (ops/healthcheck.h). Nothing printed can hold a secret:
 * dead-letter reasons and /readyz lines go through the log redactor (the configuration's
 * secrets are registered when it loads), and no URL with credentials is ever shown (the live
 * URL is built from server.listen). */
#include "app/status.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config/config.h"
#include "core/checkpoint.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "ops/healthcheck.h"
#include "pipeline/deadletter.h"
#include "pipeline/spool.h"
#include "sinks/sink.h"

enum { ST_HEALTHY = 0, ST_UNHEALTHY = 1, ST_USAGE = 2 };

#define ST_DEFAULT_TIMEOUT_MS 3000
#define ST_NEWEST 5                /* dead letters shown */
#define ST_TAIL_MAX (4u << 20)     /* bytes read back from the end for them */
#define ST_PREFIX 512              /* bytes of a dead-letter line searched for its sink */
#define ST_METRICS_MAX (16u << 20) /* bound on the /metrics body */
#define ST_READYZ_MAX (256u << 10) /* bound on the /readyz body */
#define ST_REASON_MAX 400          /* characters of a reason kept */
#define ST_PROBLEMS_MAX 64

static const char usage_text[] =
    "usage: sysdig-forwarder status -c FILE [--json] [-t DURATION]\n"
    "  Shows where the forwarder stands: the checkpoint (watermark, lag, window in progress),\n"
    "  whether a daemon holds it, each sink's state, queue, spool and dead letters, and the\n"
    "  newest dead-letter reasons; live figures from the daemon's server (server.listen) when\n"
    "  it runs. Read only: works beside a running daemon and when it is stopped.\n"
    "  -c, --config FILE     the daemon's configuration\n"
    "      --json            one JSON object instead of the table (for scripts)\n"
    "  -t, --timeout D       wait at most D for each request to the daemon (default 3s)\n"
    "  Exit status: 0 healthy, 1 unhealthy (each reason printed), 2 usage or configuration\n"
    "  error.\n";

typedef struct dl_entry {
    char *time, *sink, *reason, *id;
} dl_entry;

typedef struct sink_row {
    const char *name, *type, *format, *spool_path;
    int spool_rc; /* sf_spool_inspect: 0, 1 (no directory yet), negative */
    sf_spool_stat spool;
    char spool_err[300];
    uint64_t dead; /* entries in the dead-letter file for this sink */
    /* live (NAN: not reported) */
    double up, queue, spool_events, spool_bytes, dead_total, delivered, unsettled;
} sink_row;

typedef struct status {
    const char *cfg_path;
    sf_config cfg;
    int64_t now_ns;
    long timeout_ms;
    /* checkpoint */
    int cp_rc; /* sf_checkpoint_load: 0, 1 (no file), negative */
    char cp_err[600];
    sf_checkpoint cp;
    /* the daemon holding the checkpoint's lock */
    bool running;
    long pid;
    /* live */
    bool live_on; /* server.listen set with a fixed port */
    char live_url[600];
    bool live_ok; /* /readyz and /metrics answered */
    char live_err[1300];
    long ready_status;
    char *ready_fail[32]; /* "[-]..." lines of /readyz, redacted */
    size_t nready_fail;
    double ready, lag, last_poll, dl_full, dl_bytes, start_time, catching_up;
    /* dead letters */
    char *dl_path;
    int dl_rc; /* 0 read, 1 no file, negative: unreadable */
    char dl_err[400];
    uint64_t dl_count, dl_size, dl_other; /* dl_other: entries of sinks not configured */
    dl_entry newest[ST_NEWEST];
    size_t nnewest;
    /* sinks */
    sink_row *rows;
    size_t nrows;
    /* verdict */
    char problems[ST_PROBLEMS_MAX][300];
    size_t nproblems;
} status_t;

static void problem(status_t *st, const char *fmt, ...) SF_PRINTF(2, 3);
static void problem(status_t *st, const char *fmt, ...)
{
    if (st->nproblems >= ST_PROBLEMS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->problems[st->nproblems++], sizeof st->problems[0], fmt, ap);
    va_end(ap);
}

/* A copy of s with every registered secret replaced and at most max characters. */
static char *redacted(const char *s, size_t max)
{
    sf_buf b = {0};
    if (sf_log_redact(s ? s : "", &b) || !b.data) {
        sf_buf_free(&b);
        return sf_strdup(s && *s ? "(withheld: out of memory)" : "");
    }
    if (b.len > max) {
        b.len = max;
        b.data[max] = '\0';
        sf_buf_puts(&b, "...");
    }
    return sf_buf_steal(&b);
}

/* ------------------------------------------------------------------ formatting helpers */

/* "45s", "3m12s", "2h05m", "3d04h". */
static void human_duration(double secs, char *out, size_t n)
{
    if (!(secs > 0))
        secs = 0;
    unsigned long long s = (unsigned long long)(secs + 0.5);
    if (s < 60)
        snprintf(out, n, "%llus", s);
    else if (s < 3600)
        snprintf(out, n, "%llum%02llus", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, n, "%lluh%02llum", s / 3600, s % 3600 / 60);
    else
        snprintf(out, n, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}

static void human_size(double bytes, char *out, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < SF_ARRAY_LEN(units)) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%.0f B", bytes);
    else
        snprintf(out, n, "%.1f %s", bytes, units[u]);
}

static void rfc3339(int64_t ns, char *out, size_t n)
{
    if (ns == SF_TIME_UNSET) {
        snprintf(out, n, "-");
        return;
    }
    sf_format_rfc3339(ns, 0, out, n);
}

/* ------------------------------------------------------------------ the daemon's lock */

/* Whether a process holds the flock of "<checkpoint>.lock", read from /proc/locks (matching the
 * file's device and inode): taking the lock, even for a moment, could make a daemon starting
 * just then refuse to run. Without /proc/locks: the pid written in the file, if it lives. */
static void find_holder(status_t *st)
{
    sf_buf lp = {0};
    sf_buf_appendf(&lp, "%s.lock", st->cfg.checkpoint.path);
    struct stat sb;
    if (sf_buf_error(&lp) || stat(lp.data, &sb) != 0) {
        sf_buf_free(&lp);
        return; /* no lock file: no daemon ever ran on this checkpoint, or it was removed */
    }
    FILE *f = fopen("/proc/locks", "re");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            char type[16];
            long pid;
            unsigned maj, min;
            unsigned long ino;
            /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:123456 0 EOF" ("->" lines are waiters) */
            if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%lu", type, &pid, &maj, &min, &ino) ==
                    5 &&
                strcmp(type, "FLOCK") == 0 && maj == major(sb.st_dev) && min == minor(sb.st_dev) &&
                ino == (unsigned long)sb.st_ino) {
                st->running = true;
                st->pid = pid;
                break;
            }
        }
        fclose(f);
    } else {
        int fd = open(lp.data, O_RDONLY | O_CLOEXEC);
        char buf[32] = "";
        if (fd >= 0) {
            ssize_t r = read(fd, buf, sizeof buf - 1);
            buf[r > 0 ? r : 0] = '\0';
            close(fd);
        }
        long pid = strtol(buf, NULL, 10);
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
            st->running = true;
            st->pid = pid;
        }
    }
    sf_buf_free(&lp);
}

/* ------------------------------------------------------------------ dead letters */

static sink_row *row_named(status_t *st, const char *name, size_t len)
{
    for (size_t i = 0; i < st->nrows; i++)
        if (strlen(st->rows[i].name) == len && memcmp(st->rows[i].name, name, len) == 0)
            return &st->rows[i];
    return NULL;
}

/* The sink of one entry, from the start of its line ({"time":"...","sink":"NAME",...}, as
 * pipeline/deadletter.c writes it): the JSON string after "sink":, decoded by cJSON. */
static void attribute(status_t *st, const char *p, size_t len)
{
    static const char key[] = "\"sink\":";
    const char *k = memmem(p, len, key, sizeof key - 1);
    if (!k) {
        st->dl_other++;
        return;
    }
    const char *q = k + sizeof key - 1, *end = p + len;
    if (q >= end || *q != '"') {
        st->dl_other++;
        return;
    }
    const char *e = q + 1;
    while (e < end && *e != '"')
        e += *e == '\\' ? 2 : 1;
    cJSON *s = e < end ? cJSON_ParseWithLength(q, (size_t)(e - q) + 1) : NULL;
    sink_row *r = cJSON_IsString(s) ? row_named(st, s->valuestring, strlen(s->valuestring)) : NULL;
    if (r)
        r->dead++;
    else
        st->dl_other++;
    cJSON_Delete(s);
}

/* Counts the entries (lines) and attributes each to its sink: one pass, 64 KiB at a time,
 * keeping only the first ST_PREFIX bytes of a line. A last line without its newline (a write
 * under way) is not counted. */
static int dl_count(status_t *st, int fd)
{
    static char blk[65536];
    char pre[ST_PREFIX];
    size_t plen = 0;
    for (;;) {
        ssize_t n = read(fd, blk, sizeof blk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        const char *p = blk, *end = blk + n;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t seg = (size_t)((nl ? nl : end) - p);
            size_t take = seg < sizeof pre - plen ? seg : sizeof pre - plen;
            memcpy(pre + plen, p, take);
            plen += take;
            if (!nl)
                break;
            if (plen > 0) {
                st->dl_count++;
                attribute(st, pre, plen);
            }
            plen = 0;
            p = nl + 1;
        }
    }
    return 0;
}

static char *field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return redacted(cJSON_IsString(v) ? v->valuestring : "", ST_REASON_MAX);
}

/* The newest ST_NEWEST entries, newest first, from at most the last ST_TAIL_MAX bytes: whole
 * lines only (an entry larger than what was read is left out). */
static void dl_newest(status_t *st, int fd, uint64_t size)
{
    size_t len = size < ST_TAIL_MAX ? (size_t)size : ST_TAIL_MAX;
    uint64_t from = size - len;
    char *buf = malloc(len + 1);
    if (!buf || pread(fd, buf, len, (off_t)from) != (ssize_t)len) {
        free(buf);
        return;
    }
    size_t end = len;
    while (end > 0 && buf[end - 1] != '\n')
        end--; /* a last line still being written */
    while (end > 0 && st->nnewest < ST_NEWEST) {
        size_t start = end - 1; /* buf[end - 1] is the line's newline */
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        if (start == 0 && from > 0)
            break; /* the line began before what was read */
        cJSON *o = cJSON_ParseWithLength(buf + start, end - 1 - start);
        if (cJSON_IsObject(o)) {
            dl_entry *e = &st->newest[st->nnewest++];
            e->time = field(o, "time");
            e->sink = field(o, "sink");
            e->reason = field(o, "reason");
            e->id = field(o, "id");
        }
        cJSON_Delete(o);
        end = start;
    }
    free(buf);
}

static void read_dead_letters(status_t *st)
{
    sf_deadletter *d;
    if (sf_deadletter_new(st->cfg.dead_letter.path, st->cfg.checkpoint.path, 1, &d)) {
        st->dl_rc = -ENOMEM;
        snprintf(st->dl_err, sizeof st->dl_err, "out of memory");
        return;
    }
    st->dl_path = sf_strdup(sf_deadletter_path(d)); /* the daemon's rule for the default */
    sf_deadletter_free(d);
    if (!st->dl_path) {
        st->dl_rc = -ENOMEM;
        return;
    }
    int fd = open(st->dl_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st->dl_rc = errno == ENOENT ? 1 : -errno;
        if (st->dl_rc < 0)
            snprintf(st->dl_err, sizeof st->dl_err, "cannot read %s: %s", st->dl_path,
                     strerror(errno));
        return;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0)
        st->dl_size = (uint64_t)sb.st_size;
    int rc = dl_count(st, fd);
    if (rc) {
        st->dl_rc = rc;
        snprintf(st->dl_err, sizeof st->dl_err, "cannot read %s: %s", st->dl_path, strerror(-rc));
    } else {
        dl_newest(st, fd, st->dl_size);
    }
    close(fd);
}

/* ------------------------------------------------------------------ live: /readyz, /metrics */

/* One sample line "name{labels} value [timestamp]": its name, its sink label (empty if none)
 * and value. Label values are unescaped (\\, \", \n) as the exposition format says. */
static bool sample(const char *line, char *name, size_t nn, char *sink, size_t sn, double *v)
{
    size_t i = strcspn(line, "{ ");
    if (i == 0 || i >= nn || !line[i])
        return false;
    memcpy(name, line, i);
    name[i] = '\0';
    sink[0] = '\0';
    const char *p = line + i;
    if (*p == '{') {
        p++;
        while (*p && *p != '}') {
            const char *eq = strchr(p, '=');
            if (!eq || eq[1] != '"')
                return false;
            bool is_sink = (size_t)(eq - p) == 4 && memcmp(p, "sink", 4) == 0;
            p = eq + 2;
            size_t o = 0;
            while (*p && *p != '"') {
                char c = *p++;
                if (c == '\\' && *p) {
                    c = *p++;
                    if (c == 'n')
                        c = '\n';
                }
                if (is_sink && o + 1 < sn)
                    sink[o++] = c;
            }
            if (is_sink)
                sink[o] = '\0';
            if (*p != '"')
                return false;
            p++;
            if (*p == ',')
                p++;
        }
        if (*p != '}')
            return false;
        p++;
    }
    char *end;
    *v = strtod(p, &end);
    return end != p;
}

static void parse_metrics(status_t *st, char *text)
{
    static const struct {
        const char *name;
        size_t off;
    } global[] = {
        {"sysdig_forwarder_ready", offsetof(status_t, ready)},
        {"sysdig_forwarder_cursor_lag_seconds", offsetof(status_t, lag)},
        {"sysdig_forwarder_last_successful_poll_timestamp_seconds", offsetof(status_t, last_poll)},
        {"sysdig_forwarder_dead_letter_full", offsetof(status_t, dl_full)},
        {"sysdig_forwarder_dead_letter_bytes", offsetof(status_t, dl_bytes)},
        {"sysdig_forwarder_catching_up", offsetof(status_t, catching_up)},
        {"process_start_time_seconds", offsetof(status_t, start_time)},
    };
    static const struct {
        const char *name;
        size_t off;
    } per_sink[] = {
        {"sysdig_forwarder_sink_up", offsetof(sink_row, up)},
        {"sysdig_forwarder_queue_events", offsetof(sink_row, queue)},
        {"sysdig_forwarder_spool_events", offsetof(sink_row, spool_events)},
        {"sysdig_forwarder_spool_bytes", offsetof(sink_row, spool_bytes)},
        {"sysdig_forwarder_events_dead_lettered_total", offsetof(sink_row, dead_total)},
        {"sysdig_forwarder_events_delivered_total", offsetof(sink_row, delivered)},
        {"sysdig_forwarder_sink_unsettled_events", offsetof(sink_row, unsettled)},
    };
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char name[128], sink[256];
        double v;
        if (line[0] != '#' && sample(line, name, sizeof name, sink, sizeof sink, &v)) {
            for (size_t k = 0; k < SF_ARRAY_LEN(global); k++)
                if (!sink[0] && strcmp(name, global[k].name) == 0)
                    *(double *)((char *)st + global[k].off) = v;
            sink_row *r = sink[0] ? row_named(st, sink, strlen(sink)) : NULL;
            for (size_t k = 0; r && k < SF_ARRAY_LEN(per_sink); k++)
                if (strcmp(name, per_sink[k].name) == 0)
                    *(double *)((char *)r + per_sink[k].off) = v;
        }
        line = nl ? nl + 1 : NULL;
    }
}

static void read_live(status_t *st)
{
    char url[600];
    if (sf_healthcheck_url(st->cfg.server.listen, url, sizeof url))
        return; /* off, or an ephemeral port: nothing to ask */
    st->live_on = true;
    size_t n = strlen(url) - strlen("healthz"); /* ".../healthz" -> ".../" */
    snprintf(st->live_url, sizeof st->live_url, "%.*s", (int)n, url);
    char err[512];
    char req[640];
    sf_buf ready, metrics;
    sf_buf_init_max(&ready, ST_READYZ_MAX);
    sf_buf_init_max(&metrics, ST_METRICS_MAX);
    long mstatus = 0;
    snprintf(req, sizeof req, "%sreadyz", st->live_url);
    if (sf_healthcheck_get(req, st->timeout_ms, &st->ready_status, &ready, err, sizeof err)) {
        snprintf(st->live_err, sizeof st->live_err, "%s: %s", req, err);
        goto out;
    }
    snprintf(req, sizeof req, "%smetrics", st->live_url);
    if (sf_healthcheck_get(req, st->timeout_ms, &mstatus, &metrics, err, sizeof err)) {
        snprintf(st->live_err, sizeof st->live_err, "%s: %s", req, err);
        goto out;
    }
    if (mstatus != 200 || (st->ready_status != 200 && st->ready_status != 503)) {
        snprintf(st->live_err, sizeof st->live_err,
                 "%s answers HTTP %ld to /readyz and %ld to /metrics: not a sysdig-forwarder?",
                 st->live_url, st->ready_status, mstatus);
        goto out;
    }
    st->live_ok = true;
    if (sf_buf_putc(&ready, '\0') == 0) {
        for (char *line = ready.data; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            if (strncmp(line, "[-]", 3) == 0 && st->nready_fail < SF_ARRAY_LEN(st->ready_fail))
                st->ready_fail[st->nready_fail++] = redacted(line + 3, ST_REASON_MAX);
            line = nl ? nl + 1 : NULL;
        }
    }
    if (sf_buf_putc(&metrics, '\0') == 0)
        parse_metrics(st, metrics.data);
out:
    sf_buf_free(&ready);
    sf_buf_free(&metrics);
}

/* ------------------------------------------------------------------ gathering and verdict */

static int gather(status_t *st)
{
    st->now_ns = sf_now_ns();
    st->ready = st->lag = st->last_poll = st->dl_full = st->dl_bytes = NAN;
    st->start_time = st->catching_up = NAN;
    st->nrows = st->cfg.nsinks;
    st->rows = calloc(st->nrows ? st->nrows : 1, sizeof *st->rows);
    if (!st->rows)
        return -ENOMEM;
    for (size_t i = 0; i < st->nrows; i++) {
        const sf_sink_cfg *sc = st->cfg.sinks[i];
        sink_row *r = &st->rows[i];
        r->name = sc->common.name;
        r->type = sc->ops ? sc->ops->type : sc->common.type;
        r->format = sc->format ? sc->format->name : (sc->common.format ? sc->common.format : "");
        r->spool_path =
            sc->common.spool_path && sc->common.spool_path[0] ? sc->common.spool_path : NULL;
        r->up = r->queue = r->spool_events = r->spool_bytes = NAN;
        r->dead_total = r->delivered = r->unsettled = NAN;
        if (r->spool_path)
            r->spool_rc =
                sf_spool_inspect(r->spool_path, &r->spool, r->spool_err, sizeof r->spool_err);
    }
    st->cp_rc = sf_checkpoint_load(st->cfg.checkpoint.path, &st->cp, st->cp_err, sizeof st->cp_err);
    find_holder(st);
    read_dead_letters(st);
    read_live(st);
    return 0;
}

static void decide(status_t *st)
{
    if (st->cp_rc < 0)
        problem(st, "%s", st->cp_err);
    if (st->live_on && !st->live_ok && st->running)
        problem(st, "the daemon (pid %ld) does not answer on %s: %s", st->pid, st->live_url,
                st->live_err);
    if (st->live_ok) {
        if (st->ready_status != 200)
            problem(st, "not ready (/readyz answers %ld)", st->ready_status);
        if (st->dl_full == 1)
            problem(st, "the dead-letter file is full (dead_letter.max_size): rejected events "
                        "are held");
    }
    for (size_t i = 0; i < st->nrows; i++) {
        const sink_row *r = &st->rows[i];
        if (st->live_ok && r->up == 0)
            problem(st, "sink %s is down", r->name);
        if (r->spool_rc < 0)
            problem(st, "sink %s: %s", r->name, r->spool_err);
        double spooled =
            st->live_ok && !isnan(r->spool_events) ? r->spool_events : (double)r->spool.events;
        if (r->spool_path && spooled > 0)
            problem(st, "sink %s: %.0f events waiting in its spool", r->name, spooled);
    }
    if (st->dl_rc < 0)
        problem(st, "dead letters: %s", st->dl_err);
    if (st->dl_count > 0)
        problem(st, "%llu dead letters in %s (read them, then move the file away)",
                (unsigned long long)st->dl_count, st->dl_path);
}

/* ------------------------------------------------------------------ text */

static void print_text(const status_t *st)
{
    char t1[64], t2[64], d1[32];
    printf("config:       %s\n", st->cfg_path);
    if (st->running)
        printf("daemon:       running (pid %ld)\n", st->pid);
    else
        printf("daemon:       not running\n");
    if (!st->live_on)
        printf("live:         none (server.listen is not set or has no fixed port)\n");
    else if (st->live_ok)
        printf("live:         %s: %s%s\n", st->live_url,
               st->ready_status == 200 ? "ready" : "NOT READY",
               st->catching_up == 1 ? ", catching up" : "");
    else
        printf("live:         %s: no answer%s\n", st->live_url,
               st->running ? "" : " (not running)");
    for (size_t i = 0; i < st->nready_fail; i++)
        printf("              [-] %s\n", st->ready_fail[i]);

    const char *cpp = st->cfg.checkpoint.path;
    if (st->cp_rc == 1) {
        printf("checkpoint:   %s: none yet (never ran: starts source.lookback back)\n", cpp);
    } else if (st->cp_rc < 0) {
        printf("checkpoint:   %s\n", st->cp_err);
    } else {
        printf("checkpoint:   %s", cpp);
        if (st->cp.updated_ns > 0) {
            human_duration((double)(st->now_ns - st->cp.updated_ns) / 1e9, d1, sizeof d1);
            printf(", saved %s ago", d1);
        }
        printf(", %llu events delivered since it was created\n",
               (unsigned long long)st->cp.events_total);
        rfc3339(st->cp.watermark_ns, t1, sizeof t1);
        if (st->cp.watermark_ns == SF_TIME_UNSET) {
            printf("watermark:    none yet (no window finished)\n");
        } else {
            double lag = st->live_ok && !isnan(st->lag)
                             ? st->lag
                             : (double)(st->now_ns - st->cp.watermark_ns) / 1e9;
            human_duration(lag, d1, sizeof d1);
            printf("watermark:    %s, lag %s%s\n", t1, d1, st->live_ok ? "" : " (as of now)");
        }
        if (st->cp.in_window) {
            rfc3339(st->cp.win_from_ns, t1, sizeof t1);
            rfc3339(st->cp.win_to_ns, t2, sizeof t2);
            printf("window:       %s .. %s in progress (%s)\n", t1, t2,
                   st->cp.cursor ? "resumes at a page cursor" : "resumes at its first page");
        } else {
            printf("window:       none in progress\n");
        }
    }
    if (st->live_ok && !isnan(st->last_poll) && st->last_poll > 0) {
        human_duration((double)st->now_ns / 1e9 - st->last_poll, d1, sizeof d1);
        printf("last poll:    %s ago\n", d1);
    }

    /* the table */
    static const char *const head[] = {"SINK",  "TYPE",  "FORMAT",      "STATE",
                                       "QUEUE", "SPOOL", "DEAD LETTERS"};
    enum { NCOL = 7 };
    size_t w[NCOL];
    for (size_t c = 0; c < NCOL; c++)
        w[c] = strlen(head[c]);
    char(*cells)[NCOL][80] = calloc(st->nrows ? st->nrows : 1, sizeof *cells);
    if (!cells)
        return;
    for (size_t i = 0; i < st->nrows; i++) {
        const sink_row *r = &st->rows[i];
        snprintf(cells[i][0], 80, "%s", r->name);
        snprintf(cells[i][1], 80, "%s", r->type ? r->type : "");
        snprintf(cells[i][2], 80, "%s", r->format);
        if (st->live_ok && !isnan(r->up))
            snprintf(cells[i][3], 80, "%s", r->up == 1 ? "up" : "DOWN");
        else
            snprintf(cells[i][3], 80, "%s", st->running ? "?" : "stopped");
        if (st->live_ok && !isnan(r->queue))
            snprintf(cells[i][4], 80, "%.0f", r->queue);
        else
            snprintf(cells[i][4], 80, "-");
        if (!r->spool_path) {
            snprintf(cells[i][5], 80, "-");
        } else if (r->spool_rc < 0 && !(st->live_ok && !isnan(r->spool_events))) {
            snprintf(cells[i][5], 80, "unreadable");
        } else {
            bool live = st->live_ok && !isnan(r->spool_events);
            double ev = live ? r->spool_events : (double)r->spool.events;
            double by = live && !isnan(r->spool_bytes) ? r->spool_bytes : (double)r->spool.bytes;
            human_size(by, t1, sizeof t1);
            snprintf(cells[i][5], 80, "%.0f (%s)", ev, t1);
        }
        snprintf(cells[i][6], 80, "%llu", (unsigned long long)r->dead);
        for (size_t c = 0; c < NCOL; c++)
            if (strlen(cells[i][c]) > w[c])
                w[c] = strlen(cells[i][c]);
    }
    printf("\n");
    for (size_t c = 0; c < NCOL; c++)
        printf("%-*s%s", (int)w[c], head[c], c + 1 < NCOL ? "  " : "\n");
    for (size_t i = 0; i < st->nrows; i++)
        for (size_t c = 0; c < NCOL; c++)
            printf("%-*s%s", c + 1 < NCOL ? (int)w[c] : 0, cells[i][c], c + 1 < NCOL ? "  " : "\n");
    free(cells);

    printf("\n");
    if (st->dl_rc == 1) {
        printf("dead letters: none (%s does not exist)\n", st->dl_path);
    } else if (st->dl_rc < 0) {
        printf("dead letters: %s\n", st->dl_err);
    } else {
        human_size((double)st->dl_size, t1, sizeof t1);
        printf("dead letters: %llu in %s (%s)", (unsigned long long)st->dl_count, st->dl_path, t1);
        if (st->dl_other)
            printf(", %llu of sinks no longer configured", (unsigned long long)st->dl_other);
        printf("%s\n", st->nnewest ? "; newest first:" : "");
        for (size_t i = 0; i < st->nnewest; i++) {
            const dl_entry *e = &st->newest[i];
            printf("  %s  %s  %s  (id %s)\n", e->time, e->sink, e->reason, e->id);
        }
    }
    printf("\n");
    if (!st->nproblems) {
        printf("healthy%s\n", st->running ? "" : " (stopped, nothing pending)");
    } else {
        printf("UNHEALTHY:\n");
        for (size_t i = 0; i < st->nproblems; i++)
            printf("  - %s\n", st->problems[i]);
    }
}

/* ------------------------------------------------------------------ JSON */

static void add_num(cJSON *o, const char *k, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, v);
}

static void add_time(cJSON *o, const char *k, int64_t ns)
{
    char t[64];
    if (ns == SF_TIME_UNSET) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    sf_format_rfc3339(ns, 9, t, sizeof t);
    cJSON_AddStringToObject(o, k, t);
}

static char *to_json(const status_t *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "healthy", st->nproblems == 0);
    cJSON *pr = cJSON_AddArrayToObject(o, "problems");
    for (size_t i = 0; i < st->nproblems; i++)
        cJSON_AddItemToArray(pr, cJSON_CreateString(st->problems[i]));
    cJSON_AddStringToObject(o, "config", st->cfg_path);

    cJSON *d = cJSON_AddObjectToObject(o, "daemon");
    cJSON_AddBoolToObject(d, "running", st->running);
    add_num(d, "pid", st->running ? (double)st->pid : NAN);

    cJSON *l = cJSON_AddObjectToObject(o, "live");
    if (st->live_on)
        cJSON_AddStringToObject(l, "url", st->live_url);
    else
        cJSON_AddNullToObject(l, "url");
    cJSON_AddBoolToObject(l, "reachable", st->live_ok);
    if (st->live_on && !st->live_ok)
        cJSON_AddStringToObject(l, "error", st->live_err);
    if (st->live_ok) {
        cJSON_AddBoolToObject(l, "ready", st->ready_status == 200);
        cJSON *f = cJSON_AddArrayToObject(l, "failing_checks");
        for (size_t i = 0; i < st->nready_fail; i++)
            cJSON_AddItemToArray(f, cJSON_CreateString(st->ready_fail[i]));
        add_num(l, "lag_seconds", st->lag);
        add_num(l, "last_successful_poll_seconds_ago",
                isnan(st->last_poll) || st->last_poll <= 0
                    ? NAN
                    : (double)st->now_ns / 1e9 - st->last_poll);
        add_num(l, "catching_up", st->catching_up);
        add_num(l, "dead_letter_full", st->dl_full);
        add_num(l, "process_start_time_seconds", st->start_time);
    }

    cJSON *c = cJSON_AddObjectToObject(o, "checkpoint");
    cJSON_AddStringToObject(c, "path", st->cfg.checkpoint.path);
    cJSON_AddStringToObject(c, "state",
                            st->cp_rc == 0   ? "ok"
                            : st->cp_rc == 1 ? "absent"
                                             : "error");
    if (st->cp_rc < 0)
        cJSON_AddStringToObject(c, "error", st->cp_err);
    if (st->cp_rc == 0) {
        add_time(c, "watermark", st->cp.watermark_ns);
        if (st->cp.watermark_ns != SF_TIME_UNSET) {
            char ns[32];
            snprintf(ns, sizeof ns, "%lld", (long long)st->cp.watermark_ns);
            cJSON_AddStringToObject(c, "watermark_ns", ns);
            add_num(c, "lag_seconds", (double)(st->now_ns - st->cp.watermark_ns) / 1e9);
        } else {
            cJSON_AddNullToObject(c, "watermark_ns");
            cJSON_AddNullToObject(c, "lag_seconds");
        }
        if (st->cp.in_window) {
            cJSON *w = cJSON_AddObjectToObject(c, "window");
            add_time(w, "from", st->cp.win_from_ns);
            add_time(w, "to", st->cp.win_to_ns);
            add_time(w, "oldest_delivered", st->cp.win_low_ns);
            cJSON_AddBoolToObject(w, "at_cursor", st->cp.cursor != NULL);
        } else {
            cJSON_AddNullToObject(c, "window");
        }
        cJSON_AddNumberToObject(c, "events_total", (double)st->cp.events_total);
        add_time(c, "saved", st->cp.updated_ns > 0 ? st->cp.updated_ns : SF_TIME_UNSET);
    }

    cJSON *sa = cJSON_AddArrayToObject(o, "sinks");
    for (size_t i = 0; i < st->nrows; i++) {
        const sink_row *r = &st->rows[i];
        cJSON *s = cJSON_CreateObject();
        cJSON_AddItemToArray(sa, s);
        cJSON_AddStringToObject(s, "name", r->name);
        cJSON_AddStringToObject(s, "type", r->type ? r->type : "");
        cJSON_AddStringToObject(s, "format", r->format);
        if (st->live_ok && !isnan(r->up))
            cJSON_AddBoolToObject(s, "up", r->up == 1);
        else
            cJSON_AddNullToObject(s, "up");
        add_num(s, "queue_events", st->live_ok ? r->queue : NAN);
        add_num(s, "delivered_total", st->live_ok ? r->delivered : NAN);
        add_num(s, "dead_lettered_total", st->live_ok ? r->dead_total : NAN);
        add_num(s, "unsettled_events", st->live_ok ? r->unsettled : NAN);
        if (r->spool_path) {
            cJSON *sp = cJSON_AddObjectToObject(s, "spool");
            cJSON_AddStringToObject(sp, "path", r->spool_path);
            if (r->spool_rc < 0)
                cJSON_AddStringToObject(sp, "error", r->spool_err);
            cJSON_AddNumberToObject(sp, "events_on_disk", (double)r->spool.events);
            cJSON_AddNumberToObject(sp, "bytes_on_disk", (double)r->spool.bytes);
            add_num(sp, "events_live", st->live_ok ? r->spool_events : NAN);
            add_num(sp, "bytes_live", st->live_ok ? r->spool_bytes : NAN);
        } else {
            cJSON_AddNullToObject(s, "spool");
        }
        cJSON_AddNumberToObject(s, "dead_letters", (double)r->dead);
    }

    cJSON *dl = cJSON_AddObjectToObject(o, "dead_letters");
    cJSON_AddStringToObject(dl, "path", st->dl_path ? st->dl_path : "");
    cJSON_AddBoolToObject(dl, "exists", st->dl_rc != 1);
    if (st->dl_rc < 0)
        cJSON_AddStringToObject(dl, "error", st->dl_err);
    cJSON_AddNumberToObject(dl, "count", (double)st->dl_count);
    cJSON_AddNumberToObject(dl, "bytes", (double)st->dl_size);
    cJSON_AddNumberToObject(dl, "other_sinks", (double)st->dl_other);
    cJSON *nw = cJSON_AddArrayToObject(dl, "newest");
    for (size_t i = 0; i < st->nnewest; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(nw, e);
        cJSON_AddStringToObject(e, "time", st->newest[i].time);
        cJSON_AddStringToObject(e, "sink", st->newest[i].sink);
        cJSON_AddStringToObject(e, "reason", st->newest[i].reason);
        cJSON_AddStringToObject(e, "id", st->newest[i].id);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------------ main */

static void status_free(status_t *st)
{
    for (size_t i = 0; i < st->nnewest; i++) {
        free(st->newest[i].time);
        free(st->newest[i].sink);
        free(st->newest[i].reason);
        free(st->newest[i].id);
    }
    for (size_t i = 0; i < st->nready_fail; i++)
        free(st->ready_fail[i]);
    free(st->dl_path);
    free(st->rows);
    sf_checkpoint_free(&st->cp);
    sf_config_free(&st->cfg);
}

int sf_status_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *cfg_path = NULL;
    bool json = false;
    int64_t timeout_ms = ST_DEFAULT_TIMEOUT_MS;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 't':
            if (!sf_probe_timeout_arg("status", optarg, &timeout_ms))
                return ST_USAGE;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return ST_HEALTHY;
        default:
            fputs(usage_text, stderr);
            return ST_USAGE;
        }
    }
    if (!cfg_path || optind < argc) {
        fprintf(stderr, "status: %s\n%s", cfg_path ? "unexpected argument" : "-c FILE is needed",
                usage_text);
        return ST_USAGE;
    }
    sf_log_set_level(SF_LOG_ERROR); /* configuration warnings are the daemon's to report */
    status_t *st = calloc(1, sizeof *st);
    if (!st)
        return ST_UNHEALTHY;
    st->cfg_path = cfg_path;
    st->timeout_ms = (long)timeout_ms;
    sf_checkpoint_init(&st->cp);
    sf_cfg_errors errs = {0};
    if (sf_config_load(cfg_path, &st->cfg, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        if (!errs.n)
            fprintf(stderr, "%s: cannot load the configuration\n", cfg_path);
        sf_cfg_errors_free(&errs);
        sf_checkpoint_free(&st->cp);
        free(st);
        return ST_USAGE;
    }
    sf_cfg_errors_free(&errs);
    int rc = ST_UNHEALTHY;
    if (gather(st)) {
        fprintf(stderr, "status: out of memory\n");
        goto out;
    }
    decide(st);
    if (json) {
        char *s = to_json(st);
        if (!s) {
            fprintf(stderr, "status: out of memory\n");
            goto out;
        }
        printf("%s\n", s);
        cJSON_free(s);
    } else {
        print_text(st);
    }
    rc = st->nproblems ? ST_UNHEALTHY : ST_HEALTHY;
out:
    fflush(stdout);
    status_free(st);
    free(st);
    return rc;
}
