#include "pipeline/deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

struct sf_deadletter {
    char *path;
    uint64_t max_size;
    int fd;
    uint64_t size;
    uint64_t count;
    bool full;   /* max_size stopped the last write */
    int failing; /* -errno of the last failed write (logged once), 0 */
};

int sf_deadletter_new(const char *path, const char *default_dir_of, uint64_t max_size,
                      sf_deadletter **out)
{
    sf_deadletter *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->fd = -1;
    d->max_size = max_size;
    if (path && *path) {
        d->path = sf_strdup(path);
    } else {
        const char *ref = default_dir_of ? default_dir_of : "";
        const char *slash = strrchr(ref, '/');
        sf_buf b = {0};
        if (slash)
            sf_buf_append(&b, ref, (size_t)(slash - ref) + 1);
        sf_buf_puts(&b, "dead-letters.ndjson");
        d->path = sf_buf_steal(&b);
    }
    if (!d->path) {
        free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

/* One entry (a line) for ev into b. */
static void entry(sf_buf *b, const char *ts, const char *sink, const sf_event *ev,
                  const char *reason)
{
    sf_buf_appendf(b, "{\"time\":\"%s\",\"sink\":", ts);
    sf_json_cstr_append(b, sink);
    sf_buf_puts(b, ",\"reason\":");
    /* a peer's error text may echo credentials back: redact registered secrets */
    sf_buf red = {0};
    sf_json_cstr_append(b, sf_log_redact(reason ? reason : "", &red) == 0 && red.data
                               ? red.data
                               : "(reason withheld: out of memory)");
    sf_buf_free(&red);
    sf_buf_puts(b, ",\"id\":");
    sf_json_cstr_append(b, ev->id);
    sf_buf_puts(b, ",\"event\":");
    /* the event as received (it is JSON); newlines inside it would break NDJSON */
    for (size_t k = 0; k < ev->raw_len; k++) {
        char c = ev->raw[k];
        sf_buf_putc(b, c == '\n' || c == '\r' ? ' ' : c);
    }
    sf_buf_puts(b, "}\n");
}

static int open_file(sf_deadletter *d)
{
    d->fd = open(d->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (d->fd < 0)
        return -errno;
    struct stat st;
    d->size = fstat(d->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

/* Full by our count: count again from what the file holds now (the operator may have emptied
 * it in place), or start a new file if it was moved away or deleted (rotated, no SIGHUP). */
static int recount(sf_deadletter *d)
{
    struct stat held, named;
    if (fstat(d->fd, &held) != 0)
        return -errno;
    if (stat(d->path, &named) != 0 || named.st_dev != held.st_dev || named.st_ino != held.st_ino) {
        close(d->fd);
        d->fd = -1;
        int rc = open_file(d);
        if (rc == 0)
            SF_INFO("deadletter", "%s was moved away: writing to a new file", d->path);
        return rc;
    }
    if ((uint64_t)held.st_size < d->size)
        d->size = (uint64_t)held.st_size;
    return 0;
}

static void report(sf_deadletter *d, int rc, const char *sink, size_t held)
{
    if (rc == -ENOSPC) {
        if (!d->full)
            SF_ERROR("deadletter",
                     "%s is full (dead_letter.max_size: %llu bytes): %zu events sink %s rejected "
                     "are held, never dropped, and the checkpoint waits for them. Move the file "
                     "away and send SIGHUP (or empty it), or raise dead_letter.max_size",
                     d->path, (unsigned long long)d->max_size, held, sink);
        d->full = true;
        return;
    }
    if (rc) {
        if (d->failing != rc)
            SF_ERROR("deadletter",
                     "cannot write to %s (%s): %zu events sink %s rejected are held and the "
                     "write is retried",
                     d->path, strerror(-rc), held, sink);
        d->failing = rc;
        return;
    }
    if (d->full || d->failing)
        SF_INFO("deadletter", "%s takes entries again", d->path);
    d->full = false;
    d->failing = 0;
}

/* How many of the entries (ending at ends[i] in the buffer) fit in the file: whole entries
 * while they fit, and one larger than max_size alone into an empty file. */
static size_t fitting(const sf_deadletter *d, const size_t *ends, size_t n)
{
    size_t k = 0;
    while (k < n && d->size + ends[k] <= d->max_size)
        k++;
    return k == 0 && n && d->size == 0 ? 1 : k;
}

int sf_deadletter_write(sf_deadletter *d, const char *sink, const sf_event *const *evs,
                        const char *const *reasons, size_t n, size_t *written)
{
    size_t ok = 0;
    int rc = 0;
    sf_buf b = {0};
    size_t *ends = NULL;
    if (n == 0)
        goto out;
    if (d->fd < 0 && (rc = open_file(d)) != 0)
        goto out;
    if (!(ends = malloc(n * sizeof *ends))) {
        rc = -ENOMEM;
        goto out;
    }
    char ts[40];
    sf_format_rfc3339(sf_now_ns(), 3, ts, sizeof ts);
    for (size_t i = 0; i < n; i++) {
        entry(&b, ts, sink, evs[i], reasons[i]);
        ends[i] = b.len;
    }
    if ((rc = sf_buf_error(&b)) != 0)
        goto out; /* a record cut short by a failed append is never written */
    ok = fitting(d, ends, n);
    if (ok < n) {
        if ((rc = recount(d)) != 0) { /* full by our count: look at the file itself */
            ok = 0;
            goto out;
        }
        ok = fitting(d, ends, n);
    }
    if (ok) {
        size_t len = ends[ok - 1];
        if ((rc = sf_append_durable(d->fd, b.data, len, d->size)) != 0) {
            ok = 0; /* cut back to d->size (or, if even that failed, a torn last line) */
            goto out;
        }
        d->size += len;
        d->count += ok;
    }
    if (ok < n)
        rc = -ENOSPC;
out:
    report(d, rc, sink, n - ok);
    free(ends);
    sf_buf_free(&b);
    if (written)
        *written = ok;
    return rc;
}

void sf_deadletter_reopen(sf_deadletter *d)
{
    if (d && d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
        d->size = 0;
    }
}

uint64_t sf_deadletter_count(const sf_deadletter *d)
{
    return d ? d->count : 0;
}

bool sf_deadletter_full(const sf_deadletter *d)
{
    return d && d->full;
}

uint64_t sf_deadletter_size(const sf_deadletter *d)
{
    return d ? d->size : 0;
}

const char *sf_deadletter_path(const sf_deadletter *d)
{
    return d ? d->path : NULL;
}

void sf_deadletter_free(sf_deadletter *d)
{
    if (!d)
        return;
    if (d->fd >= 0)
        close(d->fd);
    free(d->path);
    free(d);
}
