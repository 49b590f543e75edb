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

int sf_deadletter_write(sf_deadletter *d, const char *sink, const sf_event *const *evs,
                        const char *const *reasons, size_t n)
{
    if (n == 0)
        return 0;
    if (d->fd < 0) {
        d->fd = open(d->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (d->fd < 0) {
            int e = errno;
            SF_ERROR("deadletter", "cannot open %s: %s", d->path, strerror(e));
            return -e;
        }
        struct stat st;
        d->size = fstat(d->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    }
    sf_buf b = {0};
    char ts[40];
    sf_format_rfc3339(sf_now_ns(), 3, ts, sizeof ts);
    for (size_t i = 0; i < n; i++) {
        sf_buf_appendf(&b, "{\"time\":\"%s\",\"sink\":", ts);
        sf_json_cstr_append(&b, sink);
        sf_buf_puts(&b, ",\"reason\":");
        /* a peer's error text may echo credentials back: redact registered secrets */
        sf_buf red = {0};
        sf_json_cstr_append(&b, sf_log_redact(reasons[i] ? reasons[i] : "", &red) == 0 && red.data
                                    ? red.data
                                    : "(reason withheld: out of memory)");
        sf_buf_free(&red);
        sf_buf_puts(&b, ",\"id\":");
        sf_json_cstr_append(&b, evs[i]->id);
        sf_buf_puts(&b, ",\"event\":");
        /* the event as received (it is JSON); newlines inside it would break NDJSON */
        for (size_t k = 0; k < evs[i]->raw_len; k++) {
            char c = evs[i]->raw[k];
            sf_buf_putc(&b, c == '\n' || c == '\r' ? ' ' : c);
        }
        sf_buf_puts(&b, "}\n");
    }
    int rc = sf_buf_error(&b); /* a record cut short by a failed append is never written */
    if (rc || !b.data) {
        rc = rc ? rc : -ENOMEM;
        goto out;
    }
    if (d->size + b.len > d->max_size) {
        /* full by our count: the operator may have emptied the file (truncate, no SIGHUP)
         * since; count again from what it holds now */
        struct stat st;
        if (fstat(d->fd, &st) == 0 && (uint64_t)st.st_size < d->size)
            d->size = (uint64_t)st.st_size;
    }
    if (d->size + b.len > d->max_size) {
        rc = -ENOSPC;
        goto out;
    }
    if ((rc = sf_append_durable(d->fd, b.data, b.len, d->size)) != 0) {
        if (rc == -EIO)
            SF_ERROR("deadletter", "cannot cut back %s after a failed write", d->path);
        goto out;
    }
    d->size += b.len;
    d->count += n;
out:
    sf_buf_free(&b);
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
