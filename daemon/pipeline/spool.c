#include "pipeline/spool.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/fsutil.h"
#include "core/log.h"

#define MAGIC 0x50534653u /* "SFSP" */
#define HDR 16
#define MAX_PART (64u << 20)

typedef struct seg {
    uint64_t seq;
    uint64_t size;      /* bytes in the file */
    uint64_t valid_end; /* records beyond this are corrupt (skipped) */
} seg_t;

struct sf_spool {
    char *dir;
    uint64_t max_size, seg_size;
    seg_t *segs;
    size_t nsegs;
    uint64_t head_seq, head_off;
    uint64_t count, bytes;
    int wfd;
    uint64_t *peek_seq, *peek_end;
    size_t npeek;
    /* taken (sent) but not yet consumed: record end positions, FIFO [tk_first, tk_first+ntaken) */
    uint64_t *tk_seq, *tk_end;
    size_t tk_first, ntaken, tk_cap;
    uint64_t corrupt;
    /* records found corrupt (checksum) but stepped over: (seq, offset) pairs, read past */
    uint64_t *bad_seq, *bad_off;
    size_t nbad;
};

static bool known_bad(const sf_spool *s, uint64_t seq, uint64_t off)
{
    for (size_t i = 0; i < s->nbad; i++)
        if (s->bad_seq[i] == seq && s->bad_off[i] == off)
            return true;
    return false;
}

static int remember_bad(sf_spool *s, uint64_t seq, uint64_t off)
{
    uint64_t *a = realloc(s->bad_seq, (s->nbad + 1) * sizeof *a);
    if (!a)
        return -ENOMEM;
    s->bad_seq = a;
    uint64_t *b = realloc(s->bad_off, (s->nbad + 1) * sizeof *b);
    if (!b)
        return -ENOMEM;
    s->bad_off = b;
    s->bad_seq[s->nbad] = seq;
    s->bad_off[s->nbad++] = off;
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void seg_path(const sf_spool *s, uint64_t seq, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%020llu.seg", s->dir, (unsigned long long)seq);
}

static int read_full(int fd, void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO; /* short */
        done += (size_t)r;
    }
    return 0;
}

/* Reads one record at off: returns 0 and sets lens, -EBADMSG if there is no valid record header
 * there (or the record runs past size), or -EILSEQ if the record is complete but its CRC does
 * not match (the lengths are then set, so a reader can step over it). */
static int read_record(int fd, uint64_t off, uint64_t size, uint32_t *raw_len, uint32_t *rec_len,
                       char **data)
{
    unsigned char h[HDR];
    if (off + HDR > size || read_full(fd, h, HDR, (off_t)off))
        return -EBADMSG;
    uint32_t rl = get32(h + 4), cl = get32(h + 8);
    if (get32(h) != MAGIC || rl > MAX_PART || cl > MAX_PART || off + HDR + rl + cl > size)
        return -EBADMSG;
    char *buf = malloc((size_t)rl + cl + 1);
    if (!buf)
        return -ENOMEM;
    if (read_full(fd, buf, (size_t)rl + cl, (off_t)(off + HDR))) {
        free(buf);
        return -EBADMSG;
    }
    if ((uint32_t)crc32(0L, (const Bytef *)buf, rl + cl) != get32(h + 12)) {
        free(buf);
        *raw_len = rl;
        *rec_len = cl;
        return -EILSEQ;
    }
    *raw_len = rl;
    *rec_len = cl;
    if (data)
        *data = buf;
    else
        free(buf);
    return 0;
}

static int cmp_seg(const void *a, const void *b)
{
    uint64_t x = ((const seg_t *)a)->seq, y = ((const seg_t *)b)->seq;
    return (x > y) - (x < y);
}

static int write_head(sf_spool *s)
{
    char tmp[4200], path[4200], line[64];
    snprintf(path, sizeof path, "%s/head", s->dir);
    snprintf(tmp, sizeof tmp, "%s/head.tmp", s->dir);
    int n = snprintf(line, sizeof line, "%llu %llu\n", (unsigned long long)s->head_seq,
                     (unsigned long long)s->head_off);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
        rc = errno ? -errno : -EIO;
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (!rc)
        rc = sf_fsync_dir(s->dir);
    if (rc)
        unlink(tmp);
    return rc;
}

static int open_writer(sf_spool *s)
{
    if (s->wfd >= 0)
        close(s->wfd);
    char p[4200];
    seg_path(s, s->segs[s->nsegs - 1].seq, p, sizeof p);
    s->wfd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    return s->wfd < 0 ? -errno : 0;
}

static int add_seg(sf_spool *s, uint64_t seq)
{
    seg_t *v = realloc(s->segs, (s->nsegs + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    s->segs = v;
    s->segs[s->nsegs++] = (seg_t){.seq = seq};
    int rc = open_writer(s);
    if (!rc)
        rc = sf_fsync_dir(s->dir);
    return rc;
}

/* Validates every record from the head; cuts a torn tail of the last segment. */
static int scan(sf_spool *s)
{
    for (size_t i = 0; i < s->nsegs; i++) {
        seg_t *g = &s->segs[i];
        char p[4200];
        seg_path(s, g->seq, p, sizeof p);
        int fd = open(p, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        struct stat st;
        fstat(fd, &st);
        g->size = (uint64_t)st.st_size;
        uint64_t off = g->seq == s->head_seq ? s->head_off : 0;
        while (off < g->size) {
            uint32_t rl, cl;
            int rc = read_record(fd, off, g->size, &rl, &cl, NULL);
            if (rc == -ENOMEM) {
                close(fd);
                return rc;
            }
            /* A complete record whose CRC fails, followed by a valid one, is corruption of
             * that record alone (bit rot, a bad sector): step over it. A bad suffix with
             * nothing valid after it is what a crash mid-append leaves: a torn tail. */
            if (rc == -EILSEQ) {
                uint64_t next = off + HDR + rl + cl;
                uint32_t nrl, ncl;
                int nrc = next < g->size ? read_record(fd, next, g->size, &nrl, &ncl, NULL) : -1;
                if (nrc == -ENOMEM) {
                    close(fd);
                    return nrc;
                }
                if (nrc == 0) {
                    SF_ERROR("spool",
                             "%s: corrupt record (checksum mismatch) at offset %llu skipped "
                             "(one event lost)",
                             p, (unsigned long long)off);
                    if (remember_bad(s, g->seq, off)) {
                        close(fd);
                        return -ENOMEM;
                    }
                    s->corrupt++;
                    s->bytes += next - off; /* on disk until consumed */
                    off = next;
                    continue;
                }
            }
            if (rc) {
                if (i == s->nsegs - 1) {
                    SF_WARN("spool",
                            "%s: torn tail of %llu bytes at offset %llu cut off (an "
                            "append interrupted by a crash; those events were never "
                            "acknowledged and will be read again from the API)",
                            p, (unsigned long long)(g->size - off), (unsigned long long)off);
                    if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) {
                        int e = -errno;
                        close(fd);
                        return e;
                    }
                    g->size = off;
                } else {
                    SF_ERROR("spool",
                             "%s: corrupt record at offset %llu; the remaining %llu "
                             "bytes of this segment are skipped (events lost)",
                             p, (unsigned long long)off, (unsigned long long)(g->size - off));
                    s->corrupt++;
                }
                break;
            }
            off += HDR + rl + cl;
            s->count++;
            s->bytes += HDR + rl + cl;
        }
        g->valid_end = off;
        close(fd);
    }
    return 0;
}

/* The spool's head file ("SEQ OFF": where the sink's progress is): 1 and *seq, *off set; 0 when
 * there is none; -EINVAL (err filled) when it cannot be read. */
static int read_head(const char *dir, uint64_t *seq, uint64_t *off, char *err, size_t errlen)
{
    char hp[4200];
    snprintf(hp, sizeof hp, "%s/head", dir);
    FILE *hf = fopen(hp, "re");
    if (!hf)
        return 0;
    unsigned long long a, b;
    int n = fscanf(hf, "%llu %llu", &a, &b);
    fclose(hf);
    if (n != 2) {
        snprintf(err, errlen, "spool %s: unreadable head file", dir);
        return -EINVAL;
    }
    *seq = a;
    *off = b;
    return 1;
}

int sf_spool_open(const char *dir, uint64_t max_size, uint64_t segment_size, sf_spool **out,
                  char *err, size_t errlen)
{
    sf_spool *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->wfd = -1;
    s->max_size = max_size;
    s->seg_size = segment_size ? segment_size : (16u << 20);
    int rc = -ENOMEM;
    if (!(s->dir = sf_strdup(dir)))
        goto fail;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create spool directory %s: %s", dir, strerror(-rc));
        goto fail;
    }
    DIR *d = opendir(dir);
    if (!d) {
        rc = -errno;
        snprintf(err, errlen, "cannot open spool directory %s: %s", dir, strerror(-rc));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long seq;
        char tail[8];
        if (sscanf(de->d_name, "%llu.se%1s", &seq, tail) == 2 && strlen(de->d_name) == 24) {
            seg_t *v = realloc(s->segs, (s->nsegs + 1) * sizeof *v);
            if (!v) {
                closedir(d);
                goto fail;
            }
            s->segs = v;
            s->segs[s->nsegs++] = (seg_t){.seq = seq};
        }
    }
    closedir(d);
    if (s->nsegs)
        qsort(s->segs, s->nsegs, sizeof *s->segs, cmp_seg);
    int hr = read_head(dir, &s->head_seq, &s->head_off, err, errlen);
    if (hr < 0) {
        rc = hr;
        goto fail;
    }
    if (hr == 0) /* none: the first segment's start */
        s->head_seq = s->nsegs ? s->segs[0].seq : 1;
    /* segments entirely before the head were delivered */
    size_t keep = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i].seq < s->head_seq) {
            char p[4200];
            seg_path(s, s->segs[i].seq, p, sizeof p);
            unlink(p);
        } else {
            s->segs[keep++] = s->segs[i];
        }
    }
    s->nsegs = keep;
    if (s->nsegs && s->segs[0].seq != s->head_seq) {
        s->head_seq = s->segs[0].seq;
        s->head_off = 0;
    }
    if ((rc = scan(s)) != 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(-rc));
        goto fail;
    }
    rc = s->nsegs ? open_writer(s) : add_seg(s, s->head_seq);
    if (rc) {
        snprintf(err, errlen, "spool %s: cannot open a segment: %s", dir, strerror(-rc));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    sf_spool_close(s);
    return rc;
}

int sf_spool_append(sf_spool *s, const sf_event *const *evs, const sf_buf *recs, size_t n)
{
    sf_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char h[HDR];
        size_t rl = evs[i]->raw_len, cl = recs[i].len;
        if (rl > MAX_PART || cl > MAX_PART) {
            sf_buf_free(&b);
            return -E2BIG;
        }
        uLong c = crc32(0L, (const Bytef *)evs[i]->raw, (uInt)rl);
        c = crc32(c, (const Bytef *)(recs[i].data ? recs[i].data : ""), (uInt)cl);
        put32(h, MAGIC);
        put32(h + 4, (uint32_t)rl);
        put32(h + 8, (uint32_t)cl);
        put32(h + 12, (uint32_t)c);
        if (sf_buf_append(&b, h, HDR) || sf_buf_append(&b, evs[i]->raw, rl) ||
            sf_buf_append(&b, recs[i].data ? recs[i].data : "", cl)) {
            sf_buf_free(&b);
            return -ENOMEM;
        }
    }
    int rc = 0;
    if (s->bytes + b.len > s->max_size) {
        rc = -ENOSPC;
        goto out;
    }
    seg_t *g = &s->segs[s->nsegs - 1];
    if (g->size > 0 && g->size + b.len > s->seg_size) {
        if ((rc = add_seg(s, g->seq + 1)) != 0)
            goto out;
        g = &s->segs[s->nsegs - 1];
    }
    if ((rc = sf_append_durable(s->wfd, b.data, b.len, g->size)) != 0) {
        if (rc == -EIO)
            SF_ERROR("spool", "%s: cannot cut back a failed append", s->dir);
        goto out;
    }
    g->size += b.len;
    g->valid_end = g->size;
    s->count += n;
    s->bytes += b.len;
out:
    sf_buf_free(&b);
    return rc;
}

void sf_spool_items_free(sf_spool_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        sf_event_free(&items[i].ev);
        sf_buf_free(&items[i].rec);
    }
    free(items);
}

int sf_spool_peek(sf_spool *s, size_t max, sf_spool_item **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    free(s->peek_seq);
    free(s->peek_end);
    s->peek_seq = NULL; /* a peek that finds nothing leaves none behind (no double free) */
    s->peek_end = NULL;
    s->npeek = 0;
    uint64_t unsent = s->count - s->ntaken;
    size_t want = max < unsent ? max : (size_t)unsent;
    if (!want)
        return 0;
    /* read from after the last taken record, else from the head */
    uint64_t rd_seq = s->head_seq, rd_off = s->head_off;
    if (s->ntaken) {
        rd_seq = s->tk_seq[s->tk_first + s->ntaken - 1];
        rd_off = s->tk_end[s->tk_first + s->ntaken - 1];
    }
    sf_spool_item *v = calloc(want, sizeof *v);
    s->peek_seq = calloc(want, sizeof *s->peek_seq);
    s->peek_end = calloc(want, sizeof *s->peek_end);
    if (!v || !s->peek_seq || !s->peek_end) {
        free(v);
        return -ENOMEM;
    }
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < s->nsegs && k < want; i++) {
        seg_t *g = &s->segs[i];
        if (g->seq < rd_seq)
            continue;
        uint64_t off = g->seq == rd_seq ? rd_off : 0;
        if (off >= g->valid_end)
            continue;
        char p[4200];
        seg_path(s, g->seq, p, sizeof p);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            break;
        }
        while (off < g->valid_end && k < want) {
            uint32_t rl, cl;
            char *data = NULL;
            rc = read_record(fd, off, g->valid_end, &rl, &cl, &data);
            if (rc == -EILSEQ) { /* checksum: step over it (found at open, or since) */
                if (!known_bad(s, g->seq, off)) {
                    SF_ERROR("spool",
                             "%s: corrupt record (checksum mismatch) at offset %llu skipped "
                             "(one event lost)",
                             p, (unsigned long long)off);
                    if ((rc = remember_bad(s, g->seq, off)) != 0)
                        break;
                    s->corrupt++;
                    s->count--; /* it was counted as good at open */
                }
                off += HDR + rl + cl;
                rc = 0;
                continue;
            }
            if (rc)
                break;
            char err[128];
            rc = sf_event_parse(data, rl, &v[k].ev, err, sizeof err);
            if (!rc)
                rc = sf_buf_append(&v[k].rec, data + rl, cl);
            free(data);
            if (rc)
                break;
            off += HDR + rl + cl;
            s->peek_seq[k] = g->seq;
            s->peek_end[k] = off;
            k++;
        }
        close(fd);
        if (rc)
            break;
    }
    if (rc) {
        sf_spool_items_free(v, k + 1 <= want ? k + 1 : k);
        return rc;
    }
    s->npeek = k;
    *items = v;
    *n = k;
    return 0;
}

int sf_spool_take(sf_spool *s, size_t n)
{
    if (n == 0)
        return 0;
    if (n > s->npeek)
        return -EINVAL;
    if (s->tk_first + s->ntaken + n > s->tk_cap) {
        if (s->tk_first) { /* compact */
            memmove(s->tk_seq, s->tk_seq + s->tk_first, s->ntaken * sizeof *s->tk_seq);
            memmove(s->tk_end, s->tk_end + s->tk_first, s->ntaken * sizeof *s->tk_end);
            s->tk_first = 0;
        }
        if (s->ntaken + n > s->tk_cap) {
            size_t cap = s->tk_cap ? s->tk_cap : 64;
            while (cap < s->ntaken + n)
                cap *= 2;
            uint64_t *a = realloc(s->tk_seq, cap * sizeof *a);
            if (!a)
                return -ENOMEM;
            s->tk_seq = a;
            uint64_t *b = realloc(s->tk_end, cap * sizeof *b);
            if (!b)
                return -ENOMEM;
            s->tk_end = b;
            s->tk_cap = cap;
        }
    }
    memcpy(s->tk_seq + s->tk_first + s->ntaken, s->peek_seq, n * sizeof *s->tk_seq);
    memcpy(s->tk_end + s->tk_first + s->ntaken, s->peek_end, n * sizeof *s->tk_end);
    s->ntaken += n;
    s->npeek = 0;
    return 0;
}

int sf_spool_consume(sf_spool *s, size_t n)
{
    if (n == 0)
        return 0;
    if (n > s->ntaken)
        return -EINVAL;
    uint64_t new_seq = s->tk_seq[s->tk_first + n - 1], new_off = s->tk_end[s->tk_first + n - 1];
    s->tk_first += n;
    s->ntaken -= n;
    if (!s->ntaken)
        s->tk_first = 0;
    /* bytes consumed: walk segments from the old head */
    uint64_t used = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        seg_t *g = &s->segs[i];
        if (g->seq < s->head_seq || g->seq > new_seq)
            continue;
        uint64_t from = g->seq == s->head_seq ? s->head_off : 0;
        uint64_t to = g->seq == new_seq ? new_off : g->valid_end;
        used += to - from;
    }
    s->head_seq = new_seq;
    s->head_off = new_off;
    s->count -= n;
    s->bytes -= used;
    int rc = write_head(s);
    /* drop fully delivered segments (never the one being written) */
    size_t keep = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        seg_t *g = &s->segs[i];
        bool done = i + 1 < s->nsegs && (g->seq < s->head_seq ||
                                         (g->seq == s->head_seq && s->head_off >= g->valid_end));
        if (done) {
            char p[4200];
            seg_path(s, g->seq, p, sizeof p);
            unlink(p);
            if (g->seq == s->head_seq) {
                s->head_seq = s->segs[i + 1].seq;
                s->head_off = 0;
            }
        } else {
            s->segs[keep++] = *g;
        }
    }
    if (keep != s->nsegs) {
        s->nsegs = keep;
        int r2 = write_head(s);
        if (!rc)
            rc = r2;
    }
    return rc;
}

uint64_t sf_spool_count(const sf_spool *s)
{
    return s ? s->count : 0;
}

uint64_t sf_spool_unsent(const sf_spool *s)
{
    return s ? s->count - s->ntaken : 0;
}

uint64_t sf_spool_bytes(const sf_spool *s)
{
    return s ? s->bytes : 0;
}

uint64_t sf_spool_dropped_corrupt(const sf_spool *s)
{
    return s ? s->corrupt : 0;
}

void sf_spool_close(sf_spool *s)
{
    if (!s)
        return;
    if (s->wfd >= 0)
        close(s->wfd);
    free(s->segs);
    free(s->peek_seq);
    free(s->peek_end);
    free(s->tk_seq);
    free(s->tk_end);
    free(s->bad_seq);
    free(s->bad_off);
    free(s->dir);
    free(s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int sf_spool_inspect(const char *dir, sf_spool_stat *st, char *err, size_t errlen)
{
    *st = (sf_spool_stat){0};
    DIR *d = opendir(dir);
    if (!d) {
        int rc = -errno;
        if (rc == -ENOENT)
            return 1;
        snprintf(err, errlen, "cannot open spool directory %s: %s", dir, strerror(-rc));
        return rc;
    }
    uint64_t *seqs = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long seq;
        char tail[8];
        if (sscanf(de->d_name, "%llu.se%1s", &seq, tail) == 2 && strlen(de->d_name) == 24) {
            uint64_t *v = realloc(seqs, (n + 1) * sizeof *v);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            seqs = v;
            seqs[n++] = seq;
        }
    }
    closedir(d);
    if (rc) {
        snprintf(err, errlen, "spool %s: out of memory", dir);
        free(seqs);
        return rc;
    }
    if (n)
        qsort(seqs, n, sizeof *seqs, cmp_u64); /* as the daemon orders them */
    /* the head as sf_spool_open reads it: none means the first segment's start */
    uint64_t head_seq = n ? seqs[0] : 1, head_off = 0;
    int hr = read_head(dir, &head_seq, &head_off, err, errlen);
    if (hr < 0) {
        free(seqs);
        return hr;
    }
    size_t first = 0;
    while (first < n && seqs[first] < head_seq)
        first++; /* delivered: the daemon removes them at its next start */
    if (first < n && seqs[first] != head_seq) {
        head_seq = seqs[first];
        head_off = 0;
    }
    for (size_t i = first; i < n; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%020llu.seg", dir, (unsigned long long)seqs[i]);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue; /* consumed meanwhile */
            rc = -errno;
            snprintf(err, errlen, "cannot open %s: %s", p, strerror(-rc));
            break;
        }
        struct stat sb;
        uint64_t size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        uint64_t off = seqs[i] == head_seq ? head_off : 0;
        st->segments++;
        while (off + HDR <= size) {
            unsigned char h[HDR];
            if (read_full(fd, h, HDR, (off_t)off))
                break;
            uint32_t rl = get32(h + 4), cl = get32(h + 8);
            if (get32(h) != MAGIC || rl > MAX_PART || cl > MAX_PART || off + HDR + rl + cl > size)
                break;
            off += HDR + (uint64_t)rl + cl;
            st->events++;
            st->bytes += HDR + (uint64_t)rl + cl;
        }
        close(fd);
    }
    free(seqs);
    return rc;
}
