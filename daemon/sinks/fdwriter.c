/* fdwriter: see fdwriter.h. */
#include "sinks/fdwriter.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"

typedef struct fdw {
    sf_fdwriter_opts o;
    char *path;
    int fd;
    uint64_t size;
    int64_t last_fsync_ms;
    bool reopen_requested;
    bool busy;
    /* work item */
    uv_work_t work;
    sf_sink *sink;
    sf_sink_batch *batch;
    bool do_reopen;
    int result; /* 0 ok, negative errno */
    char err[200];
    void (*closed)(sf_sink *);
    bool closing;
} fdw_t;

/* ---- worker side (threadpool): only touches w and the batch's records ---- */

static int open_file(fdw_t *w)
{
    if (w->fd >= 0 && w->path) {
        close(w->fd);
        w->fd = -1;
    }
    if (!w->path) {
        w->fd = w->o.fixed_fd;
        return 0;
    }
    int fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(w->err, sizeof w->err, "cannot open %s: %s", w->path, strerror(e));
        return -e;
    }
    struct stat st;
    w->size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    w->fd = fd;
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    return sf_fsync_dir(dir);
}

static int rotate(fdw_t *w)
{
    char from[PATH_MAX], to[PATH_MAX];
    if (fsync(w->fd) != 0) {
        int e = errno;
        snprintf(w->err, sizeof w->err, "fsync %s before rotation: %s", w->path, strerror(e));
        return -e;
    }
    close(w->fd);
    w->fd = -1;
    int64_t keep = w->o.rotate_keep;
    if (keep <= 0) {
        unlink(w->path);
    } else {
        snprintf(to, sizeof to, "%s.%lld", w->path, (long long)keep);
        unlink(to);
        for (int64_t i = keep - 1; i >= 1; i--) {
            snprintf(from, sizeof from, "%s.%lld", w->path, (long long)i);
            snprintf(to, sizeof to, "%s.%lld", w->path, (long long)(i + 1));
            rename(from, to);
        }
        snprintf(to, sizeof to, "%s.1", w->path);
        if (rename(w->path, to) != 0) {
            int e = errno;
            snprintf(w->err, sizeof w->err, "rotate %s: %s", w->path, strerror(e));
            open_file(w);
            return -e;
        }
    }
    fsync_dir_of(w->path);
    return open_file(w);
}

static void work_cb(uv_work_t *req)
{
    fdw_t *w = req->data;
    sf_sink_batch *b = w->batch;
    w->result = 0;
    w->err[0] = '\0';
    if (w->do_reopen || w->fd < 0) {
        if ((w->result = open_file(w)) != 0)
            return;
    }
    /* the records as they are, each followed by a newline: no copy of the batch */
    struct iovec *iov = malloc((b->n ? 2 * b->n : 1) * sizeof *iov);
    if (!iov) {
        w->result = -ENOMEM;
        snprintf(w->err, sizeof w->err, "out of memory");
        return;
    }
    static char nl[] = "\n";
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        iov[2 * i] = (struct iovec){b->records[i].data, b->records[i].len};
        iov[2 * i + 1] = (struct iovec){nl, 1};
        total += b->records[i].len + 1;
    }
    off_t start = w->path ? lseek(w->fd, 0, SEEK_END) : -1;
    int rc = sf_writev_all(w->fd, iov, 2 * b->n, NULL);
    free(iov);
    int64_t now = sf_monotonic_ms();
    bool sync =
        w->o.fsync_policy == SF_FSYNC_ALWAYS || (w->o.fsync_policy == SF_FSYNC_INTERVAL &&
                                                 now - w->last_fsync_ms >= w->o.fsync_interval_ms);
    if (rc) {
        snprintf(w->err, sizeof w->err, "write %s: %s", w->path ? w->path : "stdout",
                 strerror(-rc));
        w->result = rc;
    } else if (sync && w->path) {
        if (fsync(w->fd) != 0) {
            int e = errno;
            snprintf(w->err, sizeof w->err, "fsync %s: %s", w->path, strerror(e));
            w->result = -e;
        } else {
            w->last_fsync_ms = now;
        }
    }
    if (w->result) {
        /* the batch is retried: cut the file back to where it began, so that no line is left
         * torn (a failed write) and the retry does not append it twice (a failed fsync; a batch
         * is every page that was queued, not one) */
        if (start >= 0 && ftruncate(w->fd, start) != 0)
            SF_WARN("sink", "cannot truncate %s after a failed write or fsync", w->path);
        return;
    }
    w->size += total;
    if (w->path && w->o.rotate_max_size && w->size >= w->o.rotate_max_size)
        (void)rotate(w); /* the batch is written; a rotation error is only logged */
}

/* ---- loop side ---- */

static void after_work_cb(uv_work_t *req, int status)
{
    fdw_t *w = req->data;
    sf_sink_batch *b = w->batch;
    w->busy = false;
    w->batch = NULL;
    bool ok = status == 0 && w->result == 0;
    if (!ok)
        sf_sink_set_error(w->sink, "%s", w->err[0] ? w->err : "write cancelled");
    else if (w->err[0])
        SF_WARN("sink", "sink %s: %s", w->sink->name, w->err);
    for (size_t i = 0; i < b->n; i++)
        b->status[i] = ok ? SF_DELIV_OK : SF_DELIV_RETRY;
    sf_sink_batch_done(b);
    if (w->closing && w->closed) {
        void (*cb)(sf_sink *) = w->closed;
        w->closed = NULL;
        cb(w->sink);
    }
}

int sf_fdwriter_open(sf_sink *s, const sf_fdwriter_opts *o)
{
    fdw_t *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->o = *o;
    w->fd = -1;
    w->sink = s;
    w->work.data = w;
    if (o->path && !(w->path = sf_strdup(o->path))) {
        free(w);
        return -ENOMEM;
    }
    s->state = w;
    /* Group commit: the pages queued while a write (and its fsync) runs go out together in the
     * next one, up to the sink's queue (already in memory): one fsync for all of them instead
     * of one a page, so a disk's fsync time no longer bounds pages per second. A lone page still
     * goes at once (no batch_wait). */
    if (s->cfg)
        s->batch_max = (size_t)s->cfg->common.queue_max_events;
    int rc = open_file(w); /* at start-up: fail early on a bad path */
    if (rc)
        sf_sink_set_error(s, "%s", w->err);
    return rc;
}

int sf_fdwriter_submit(sf_sink *s, sf_sink_batch *b)
{
    fdw_t *w = s->state;
    w->batch = b;
    w->do_reopen = w->reopen_requested;
    w->reopen_requested = false;
    w->busy = true;
    int rc = uv_queue_work(s->loop, &w->work, work_cb, after_work_cb);
    if (rc) {
        w->busy = false;
        w->batch = NULL;
        sf_sink_set_error(s, "cannot queue write: %s", uv_strerror(rc));
        return rc;
    }
    return 0;
}

void sf_fdwriter_reopen(sf_sink *s)
{
    fdw_t *w = s->state;
    if (w->path)
        w->reopen_requested = true;
}

void sf_fdwriter_close(sf_sink *s, void (*closed)(sf_sink *s))
{
    fdw_t *w = s->state;
    w->closing = true;
    if (w->busy) {
        w->closed = closed; /* after the write in flight completes */
        return;
    }
    closed(s);
}

void sf_fdwriter_destroy(sf_sink *s)
{
    fdw_t *w = s->state;
    if (!w)
        return;
    if (w->path && w->fd >= 0) {
        if (w->o.fsync_policy != SF_FSYNC_NEVER)
            fsync(w->fd);
        close(w->fd);
    }
    free(w->path);
    free(w);
    s->state = NULL;
}
