/* checkpoint: JSON encode (direct) / decode (cJSON) with exact int64 strings; atomic durable save.
 */
#include "core/checkpoint.h"
#include "core/fsutil.h"
#include "core/json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <unistd.h>

#define MAX_FILE_SIZE (256u * 1024 * 1024)

void sf_checkpoint_init(sf_checkpoint *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->watermark_ns = SF_TIME_UNSET;
    cp->win_low_ns = SF_TIME_UNSET;
}

void sf_checkpoint_free(sf_checkpoint *cp)
{
    if (!cp)
        return;
    free(cp->cursor);
    free(cp->slices);
    for (size_t i = 0; i < cp->nids; i++)
        free(cp->ids[i].id);
    free(cp->ids);
    for (size_t k = 0; k < cp->nsinks; k++) {
        free(cp->sinks[k].name);
        for (size_t i = 0; i < cp->sinks[k].nids; i++)
            free(cp->sinks[k].ids[i].id);
        free(cp->sinks[k].ids);
    }
    free(cp->sinks);
    sf_checkpoint_init(cp);
}

void sf_progress_free(sf_progress *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nids; i++)
        free(p->ids[i].id);
    free(p->ids);
    free(p->cursor_after);
    free(p->slices);
    free(p);
}

static int copy_ids(sf_seen_id **dst, size_t *ndst, const sf_seen_id *src, size_t n)
{
    *dst = NULL;
    *ndst = 0;
    if (!n)
        return 0;
    if (!(*dst = calloc(n, sizeof **dst)))
        return -ENOMEM;
    for (; *ndst < n; (*ndst)++) {
        (*dst)[*ndst].ts_ns = src[*ndst].ts_ns;
        if (!((*dst)[*ndst].id = sf_strdup(src[*ndst].id)))
            return -ENOMEM;
    }
    return 0;
}

int sf_checkpoint_copy(sf_checkpoint *dst, const sf_checkpoint *src)
{
    sf_checkpoint c = *src;
    c.cursor = NULL;
    c.slices = NULL;
    c.ids = NULL;
    c.nids = 0;
    c.sinks = NULL;
    c.nsinks = 0;
    if (src->cursor && !(c.cursor = sf_strdup(src->cursor)))
        goto oom;
    if (src->nslices) {
        if (!(c.slices = malloc(src->nslices * sizeof *c.slices)))
            goto oom;
        memcpy(c.slices, src->slices, src->nslices * sizeof *c.slices);
    }
    if (copy_ids(&c.ids, &c.nids, src->ids, src->nids))
        goto oom;
    if (src->nsinks && !(c.sinks = calloc(src->nsinks, sizeof *c.sinks)))
        goto oom;
    for (; c.nsinks < src->nsinks; c.nsinks++) {
        sf_sink_progress *d = &c.sinks[c.nsinks];
        const sf_sink_progress *o = &src->sinks[c.nsinks];
        if (!(d->name = sf_strdup(o->name))) {
            c.nsinks++;
            goto oom;
        }
        if (copy_ids(&d->ids, &d->nids, o->ids, o->nids)) {
            c.nsinks++;
            goto oom;
        }
    }
    *dst = c;
    return 0;
oom:
    sf_checkpoint_free(&c);
    return -ENOMEM;
}

/* ---- encode ---- */

/* Written straight into the buffer (a cJSON tree of up to dedup_max_ids entries cost more than
 * the rest of a catch-up): the same bytes cJSON_PrintUnformatted printed. */
static void put_ns(sf_buf *out, int64_t v)
{
    if (v == SF_TIME_UNSET)
        sf_buf_puts(out, "null");
    else
        sf_buf_appendf(out, "\"%lld\"", (long long)v);
}

static void put_ids(sf_buf *out, const sf_seen_id *ids, size_t n)
{
    sf_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        sf_buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
        sf_json_cstr_append(out, ids[i].id);
        sf_buf_puts(out, ",\"ts_ns\":\"");
        sf_buf_put_i64(out, ids[i].ts_ns);
        sf_buf_puts(out, "\"}");
    }
    sf_buf_putc(out, ']');
}

int sf_checkpoint_encode(const sf_checkpoint *cp, sf_buf *out)
{
    size_t start = out->len, n = cp->nids;
    for (size_t k = 0; k < cp->nsinks; k++)
        n += cp->sinks[k].nids + 1;
    sf_buf_reserve(out, 256 + n * 72);
    sf_buf_appendf(out, "{\"version\":%d,\"watermark_ns\":", SF_CHECKPOINT_VERSION);
    put_ns(out, cp->watermark_ns);
    sf_buf_puts(out, ",\"window\":");
    if (cp->in_window) {
        sf_buf_appendf(out, "{\"from_ns\":\"%lld\",\"to_ns\":\"%lld\",\"cursor\":",
                       (long long)cp->win_from_ns, (long long)cp->win_to_ns);
        if (cp->cursor)
            sf_json_cstr_append(out, cp->cursor);
        else
            sf_buf_puts(out, "null");
        sf_buf_puts(out, ",\"low_ns\":");
        put_ns(out, cp->win_low_ns);
        if (cp->cut) {
            sf_buf_puts(out, ",\"slices\":[");
            for (size_t i = 0; i < cp->nslices; i++) {
                sf_buf_puts(out, i ? ",{\"from_ns\":" : "{\"from_ns\":");
                put_ns(out, cp->slices[i].from_ns);
                sf_buf_puts(out, ",\"to_ns\":");
                put_ns(out, cp->slices[i].to_ns);
                sf_buf_puts(out, ",\"low_ns\":");
                put_ns(out, cp->slices[i].low_ns);
                sf_buf_putc(out, '}');
            }
            sf_buf_putc(out, ']');
        }
        sf_buf_putc(out, '}');
    } else {
        sf_buf_puts(out, "null");
    }
    sf_buf_puts(out, ",\"recent_ids\":");
    put_ids(out, cp->ids, cp->nids);
    sf_buf_puts(out, ",\"sinks\":{");
    for (size_t k = 0; k < cp->nsinks; k++) {
        if (k)
            sf_buf_putc(out, ',');
        sf_json_cstr_append(out, cp->sinks[k].name);
        sf_buf_puts(out, ":{\"ids\":");
        put_ids(out, cp->sinks[k].ids, cp->sinks[k].nids);
        sf_buf_putc(out, '}');
    }
    sf_buf_appendf(out, "},\"events_total\":\"%llu\",\"updated_ns\":\"%lld\"}\n",
                   (unsigned long long)cp->events_total, (long long)cp->updated_ns);
    int rc = sf_buf_error(out);
    if (rc && out->data && out->len >= start) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

bool sf_checkpoint_rereads(const sf_checkpoint *cp, int64_t overlap_ns, int64_t ts)
{
    if (!cp->in_window || ts == SF_TIME_UNSET || ts >= cp->win_to_ns - overlap_ns)
        return true; /* (between windows the set holds the overlap only) */
    if (cp->cut && cp->nslices) {
        for (size_t i = 0; i < cp->nslices; i++) {
            const sf_slice *sl = &cp->slices[i];
            if (ts >= sl->from_ns && ts <= sf_slice_left_to(sl))
                return true;
        }
        return false;
    }
    if (!cp->cut && cp->cursor) /* resumed at its cursor; by time [from, low] if that fails */
        return ts >= cp->win_from_ns &&
               ts <= (cp->win_low_ns != SF_TIME_UNSET ? cp->win_low_ns : cp->win_to_ns);
    return true; /* re-read whole */
}

/* ---- decode ---- */

static int SF_PRINTF(3, 4) fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* A required int64 string (or null -> SF_TIME_UNSET when allow_null). */
static int get_ns(const cJSON *obj, const char *key, const char *path, bool allow_null,
                  int64_t *out, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return fail(err, errlen, "%s: missing", path);
    if (cJSON_IsNull(it) && allow_null) {
        *out = SF_TIME_UNSET;
        return 0;
    }
    if (!cJSON_IsString(it) || !it->valuestring)
        return fail(err, errlen,
                    allow_null ? "%s: expected a string holding an integer, or null"
                               : "%s: expected a string holding an integer",
                    path);
    int rc = sf_parse_int64(it->valuestring, strlen(it->valuestring), out);
    if (rc == -ERANGE)
        return fail(err, errlen, "%s: integer out of range", path);
    if (rc)
        return fail(err, errlen, "%s: not an integer", path);
    return 0;
}

static int parse_u64str(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* A list of {"id","ts_ns"} (what: its path in errors). */
static int get_ids(const cJSON *ids, const char *what, sf_seen_id **out, size_t *nout, char *err,
                   size_t errlen)
{
    if (!ids)
        return fail(err, errlen, "%s: missing", what);
    if (!cJSON_IsArray(ids))
        return fail(err, errlen, "%s: expected an array", what);
    int n = cJSON_GetArraySize(ids);
    if (n > 0 && !(*out = calloc((size_t)n, sizeof **out)))
        return -ENOMEM;
    const cJSON *it;
    size_t i = 0;
    int rc;
    cJSON_ArrayForEach(it, ids)
    {
        char path[200];
        snprintf(path, sizeof path, "%.140s[%zu]", what, i);
        if (!cJSON_IsObject(it))
            return fail(err, errlen, "%s: expected an object", path);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsString(id) || !id->valuestring || !*id->valuestring) {
            snprintf(path, sizeof path, "%.140s[%zu].id", what, i);
            return fail(err, errlen, "%s: expected a non-empty string", path);
        }
        snprintf(path, sizeof path, "%.140s[%zu].ts_ns", what, i);
        if ((rc = get_ns(it, "ts_ns", path, false, &(*out)[i].ts_ns, err, errlen)))
            return rc;
        if (!((*out)[i].id = sf_strdup(id->valuestring)))
            return -ENOMEM;
        *nout = ++i;
    }
    return 0;
}

/* window.slices (optional: absent in files that did not cut the window). */
static int get_slices(const cJSON *a, sf_checkpoint *cp, char *err, size_t errlen)
{
    if (!a)
        return 0;
    if (!cJSON_IsArray(a))
        return fail(err, errlen, "%s: expected an array", "window.slices");
    int n = cJSON_GetArraySize(a);
    if (n > SF_CHECKPOINT_MAX_SLICES)
        return fail(err, errlen, "window.slices: %d slices, at most %d", n,
                    SF_CHECKPOINT_MAX_SLICES);
    cp->cut = true;
    if (n && !(cp->slices = calloc((size_t)n, sizeof *cp->slices)))
        return -ENOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        char path[64];
        snprintf(path, sizeof path, "window.slices[%zu]", cp->nslices);
        sf_slice *sl = &cp->slices[cp->nslices];
        int rc;
        if (!cJSON_IsObject(it))
            return fail(err, errlen, "%s: expected an object", path);
        static const char *const keys[3] = {"from_ns", "to_ns", "low_ns"};
        int64_t *vals[3] = {&sl->from_ns, &sl->to_ns, &sl->low_ns};
        for (int k = 0; k < 3; k++) {
            char kp[96];
            snprintf(kp, sizeof kp, "%s.%s", path, keys[k]);
            if ((rc = get_ns(it, keys[k], kp, k == 2, vals[k], err, errlen)))
                return rc;
        }
        if (sl->from_ns > sl->to_ns || sl->from_ns < cp->win_from_ns || sl->to_ns > cp->win_to_ns)
            return fail(err, errlen, "%s: not within the window", path);
        cp->nslices++;
    }
    return 0;
}

int sf_checkpoint_decode(const char *text, size_t len, sf_checkpoint *out, char *err, size_t errlen)
{
    sf_checkpoint cp;
    sf_checkpoint_init(&cp);
    int rc = -EINVAL;
    const char *end = NULL;
    cJSON *root = NULL;
    if (len == 0) {
        rc = fail(err, errlen, "%s", "empty file");
        goto out;
    }
    root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        int line, col;
        const char *at = end ? end : cJSON_GetErrorPtr();
        if (!at || at < text || at > text + len)
            at = text + len;
        line_col(text, at, &line, &col);
        if (err && errlen)
            snprintf(err, errlen, "invalid JSON at line %d, column %d%s", line, col,
                     at == text + len ? " (truncated?)" : "");
        rc = -EINVAL;
        goto out;
    }
    for (const char *p = end; p && p < text + len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            int line, col;
            line_col(text, p, &line, &col);
            if (err && errlen)
                snprintf(err, errlen, "trailing data after the JSON object at line %d, column %d",
                         line, col);
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(err, errlen, "%s", "expected a JSON object");
        goto out;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!ver) {
        rc = fail(err, errlen, "%s: missing", "version");
        goto out;
    }
    if (!cJSON_IsNumber(ver) || ver->valuedouble < SF_CHECKPOINT_VERSION_MIN ||
        ver->valuedouble > SF_CHECKPOINT_VERSION || ver->valuedouble != (double)ver->valueint) {
        if (err && errlen) {
            if (cJSON_IsNumber(ver))
                snprintf(err, errlen, "version: unsupported version %g (expected %d to %d)",
                         ver->valuedouble, SF_CHECKPOINT_VERSION_MIN, SF_CHECKPOINT_VERSION);
            else
                snprintf(err, errlen, "version: expected a number");
        }
        rc = -EINVAL;
        goto out;
    }
    cp.version = ver->valueint;
    if ((rc = get_ns(root, "watermark_ns", "watermark_ns", true, &cp.watermark_ns, err, errlen)))
        goto out;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "window");
    if (!w) {
        rc = fail(err, errlen, "%s: missing", "window");
        goto out;
    }
    if (cJSON_IsObject(w)) {
        cp.in_window = true;
        if ((rc = get_ns(w, "from_ns", "window.from_ns", false, &cp.win_from_ns, err, errlen)) ||
            (rc = get_ns(w, "to_ns", "window.to_ns", false, &cp.win_to_ns, err, errlen)))
            goto out;
        if (cp.win_from_ns > cp.win_to_ns) {
            rc = fail(err, errlen, "%s: from_ns is after to_ns", "window");
            goto out;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(w, "cursor");
        if (c && !cJSON_IsNull(c)) {
            if (!cJSON_IsString(c) || !c->valuestring) {
                rc = fail(err, errlen, "%s: expected a string or null", "window.cursor");
                goto out;
            }
            if (!(cp.cursor = sf_strdup(c->valuestring))) {
                rc = -ENOMEM;
                goto out;
            }
        }
        if (cJSON_GetObjectItemCaseSensitive(w, "low_ns") &&
            (rc = get_ns(w, "low_ns", "window.low_ns", true, &cp.win_low_ns, err, errlen)))
            goto out;
        if ((rc = get_slices(cJSON_GetObjectItemCaseSensitive(w, "slices"), &cp, err, errlen)))
            goto out;
    } else if (!cJSON_IsNull(w)) {
        rc = fail(err, errlen, "%s: expected an object or null", "window");
        goto out;
    }
    if ((rc = get_ids(cJSON_GetObjectItemCaseSensitive(root, "recent_ids"), "recent_ids", &cp.ids,
                      &cp.nids, err, errlen)))
        goto out;
    const cJSON *sinks = cJSON_GetObjectItemCaseSensitive(root, "sinks");
    if (cp.version >= 2 && !sinks) {
        rc = fail(err, errlen, "%s: missing", "sinks");
        goto out;
    }
    if (cp.version >= 2) {
        if (!cJSON_IsObject(sinks)) {
            rc = fail(err, errlen, "%s: expected an object", "sinks");
            goto out;
        }
        cp.has_sinks = true;
        int ns = cJSON_GetArraySize(sinks);
        if (ns > 0 && !(cp.sinks = calloc((size_t)ns, sizeof *cp.sinks))) {
            rc = -ENOMEM;
            goto out;
        }
        const cJSON *sk;
        cJSON_ArrayForEach(sk, sinks)
        {
            char path[160];
            snprintf(path, sizeof path, "sinks.%.100s", sk->string ? sk->string : "");
            if (!sk->string || !*sk->string) {
                rc = fail(err, errlen, "%s", "sinks: a sink name is empty");
                goto out;
            }
            for (size_t k = 0; k < cp.nsinks; k++)
                if (strcmp(cp.sinks[k].name, sk->string) == 0) {
                    rc = fail(err, errlen, "%s: listed twice", path);
                    goto out;
                }
            if (!cJSON_IsObject(sk)) {
                rc = fail(err, errlen, "%s: expected an object", path);
                goto out;
            }
            sf_sink_progress *sp = &cp.sinks[cp.nsinks++];
            if (!(sp->name = sf_strdup(sk->string))) {
                rc = -ENOMEM;
                goto out;
            }
            snprintf(path, sizeof path, "sinks.%.100s.ids", sk->string);
            if ((rc = get_ids(cJSON_GetObjectItemCaseSensitive(sk, "ids"), path, &sp->ids,
                              &sp->nids, err, errlen)))
                goto out;
        }
    }
    const cJSON *tot = cJSON_GetObjectItemCaseSensitive(root, "events_total");
    if (tot && !cJSON_IsNull(tot)) {
        int prc = -EINVAL;
        if (cJSON_IsString(tot) && tot->valuestring)
            prc = parse_u64str(tot->valuestring, &cp.events_total);
        if (prc) {
            rc = fail(err, errlen, "%s: expected a string holding a non-negative integer",
                      "events_total");
            goto out;
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "updated_ns") &&
        (rc = get_ns(root, "updated_ns", "updated_ns", true, &cp.updated_ns, err, errlen)))
        goto out;
    if (cp.updated_ns == SF_TIME_UNSET)
        cp.updated_ns = 0;
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) {
        if (rc == -ENOMEM && err && errlen)
            snprintf(err, errlen, "out of memory");
        sf_checkpoint_free(&cp);
        return rc;
    }
    *out = cp;
    return 0;
}

/* ---- load / save ---- */

int sf_checkpoint_load(const char *path, sf_checkpoint *out, char *err, size_t errlen)
{
    sf_buf b = {0};
    char derr[200];
    int rc;
    sf_checkpoint_init(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        if (rc == -ENOENT)
            return 1;
        snprintf(err, errlen, "checkpoint %s: cannot open: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(err, errlen, "checkpoint %s: not a regular file", path);
        goto out;
    }
    for (;;) {
        if (b.len > MAX_FILE_SIZE) {
            rc = -EFBIG;
            snprintf(err, errlen, "checkpoint %s: file too large", path);
            goto out;
        }
        if ((rc = sf_buf_reserve(&b, 65536))) {
            snprintf(err, errlen, "checkpoint %s: out of memory", path);
            goto out;
        }
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "checkpoint %s: read error: %s", path, strerror(-rc));
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    rc = sf_checkpoint_decode(b.data ? b.data : "", b.len, out, derr, sizeof derr);
    if (rc)
        snprintf(err, errlen, "checkpoint %s is corrupt: %s (fix or remove it to start fresh)",
                 path, derr);
out:
    close(fd);
    sf_buf_free(&b);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sf_checkpoint_save(const char *path, const sf_checkpoint *cp, char *err, size_t errlen)
{
    sf_buf data = {0};
    sf_checkpoint c = *cp; /* shallow: only updated_ns differs */
    c.updated_ns = sf_now_ns();
    int rc = sf_checkpoint_encode(&c, &data);
    if (rc)
        snprintf(err, errlen, "checkpoint %s: cannot encode: out of memory", path);
    else
        rc = sf_checkpoint_write(path, data.data, data.len, err, errlen);
    sf_buf_free(&data);
    return rc;
}

int sf_checkpoint_write(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    sf_buf tmp = {0};
    char *dir = NULL;
    int fd = -1, rc;
    bool created = false;
    const char *slash = strrchr(path, '/');
    dir = slash ? sf_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : sf_strdup(".");
    if (!dir) {
        rc = -ENOMEM;
        snprintf(err, errlen, "checkpoint %s: out of memory", path);
        goto out;
    }
    for (int attempt = 0;; attempt++) {
        sf_buf_reset(&tmp);
        if ((rc = sf_buf_appendf(&tmp, "%s.tmp.%ld.%016llx", path, (long)getpid(),
                                 (unsigned long long)sf_random_u64()))) {
            snprintf(err, errlen, "checkpoint %s: out of memory", path);
            goto out;
        }
        fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            break;
        rc = -errno;
        if (rc != -EEXIST || attempt >= 10) {
            snprintf(err, errlen, "checkpoint %s: cannot create %s: %s", path, tmp.data,
                     strerror(-rc));
            goto out;
        }
    }
    created = true;
    if ((rc = write_all(fd, data, len))) {
        snprintf(err, errlen, "checkpoint %s: write %s: %s", path, tmp.data, strerror(-rc));
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        snprintf(err, errlen, "checkpoint %s: fsync %s: %s", path, tmp.data, strerror(-rc));
        goto out;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) {
        rc = -errno;
        snprintf(err, errlen, "checkpoint %s: close %s: %s", path, tmp.data, strerror(-rc));
        goto out;
    }
    if (rename(tmp.data, path) != 0) {
        rc = -errno;
        snprintf(err, errlen, "checkpoint %s: rename from %s: %s", path, tmp.data, strerror(-rc));
        goto out;
    }
    created = false; /* the temp file is now the checkpoint */
    if ((rc = sf_fsync_dir(dir)) != 0) {
        snprintf(err, errlen, "checkpoint %s: fsync directory %s: %s", path, dir, strerror(-rc));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp.data);
    sf_buf_free(&tmp);
    free(dir);
    return rc;
}

int sf_checkpoint_lock(const char *path, int *fd, long *holder, char *err, size_t errlen)
{
    *fd = -1;
    *holder = 0;
    sf_buf lp = {0};
    sf_buf_appendf(&lp, "%s.lock", path);
    if (sf_buf_error(&lp)) {
        snprintf(err, errlen, "checkpoint %s: out of memory", path);
        sf_buf_free(&lp);
        return -ENOMEM;
    }
    int rc = 0;
    int lfd = open(lp.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open the lock file %s: %s", lp.data, strerror(-rc));
        goto out;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        if (rc == -EWOULDBLOCK) {
            char buf[32] = "";
            ssize_t n = pread(lfd, buf, sizeof buf - 1, 0);
            if (n > 0) {
                buf[n] = '\0';
                *holder = strtol(buf, NULL, 10);
            }
            rc = -EBUSY;
            snprintf(err, errlen,
                     "checkpoint %s is in use by another sysdig-forwarder (pid %ld, lock %s): "
                     "one daemon per checkpoint; stop the other one or give this one its own "
                     "checkpoint.path",
                     path, *holder, lp.data);
        } else {
            snprintf(err, errlen, "cannot lock %s: %s", lp.data, strerror(-rc));
        }
        close(lfd);
        goto out;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(lfd, 0) != 0 || pwrite(lfd, pid, (size_t)len, 0) != len) {
        rc = -errno;
        snprintf(err, errlen, "cannot write the lock file %s: %s", lp.data, strerror(-rc));
        close(lfd);
        goto out;
    }
    *fd = lfd;
out:
    sf_buf_free(&lp);
    return rc;
}
