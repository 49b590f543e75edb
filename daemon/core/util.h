/* util: growable buffers, duration/size/time parsing, backoff, a random source. No I/O. The
 * one global is the random generator's state (sf_random_u64, seeded once). */
#ifndef SF_UTIL_H
#define SF_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SF_NS_PER_SEC INT64_C(1000000000)
#define SF_NS_PER_MS INT64_C(1000000)
#define SF_TIME_UNSET INT64_MIN

#if defined(__GNUC__)
#define SF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SF_PRINTF(a, b)
#endif

/* Growable byte buffer (after curl's dynbuf). Always NUL-terminated when data != NULL (the NUL
 * is not counted in len). A zeroed sf_buf is empty and unbounded; sf_buf_init_max() bounds it.
 * Failures are sticky: once an append fails (-ENOMEM, or -E2BIG past the bound) every later
 * append fails the same way without changing the buffer, so a renderer can append freely and
 * check once at the end (sf_buf_error, or sf_buf_steal returning NULL). data keeps what was
 * appended before the failure. sf_buf_reset and sf_buf_free clear the failure.
 * All functions return 0 or a negative errno. */
typedef struct sf_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* bound on len; 0 = none */
    int err;    /* first failure (negative errno), sticky; 0 = none */
} sf_buf;

void sf_buf_init_max(sf_buf *b, size_t max); /* empty buffer holding at most max bytes */
int sf_buf_reserve(sf_buf *b, size_t extra);
/* The same, to exactly len + extra (+ the NUL): for a size known in advance (a Content-Length),
 * where doubling would waste up to half of it. */
int sf_buf_reserve_exact(sf_buf *b, size_t extra);
/* sf_buf_append when the buffer must grow (or has failed). */
int sf_buf_append_grow(sf_buf *b, const void *p, size_t n);
/* Inline: formats append a few bytes at a time, and the common case (room left, within the
 * bound, no failure) is a copy. */
static inline int sf_buf_append(sf_buf *b, const void *p, size_t n)
{
    if (b->err || n >= b->cap - b->len || (b->max && b->len + n > b->max))
        return sf_buf_append_grow(b, p, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}
static inline int sf_buf_puts(sf_buf *b, const char *s)
{
    return sf_buf_append(b, s, strlen(s));
}
static inline int sf_buf_putc(sf_buf *b, char c)
{
    return sf_buf_append(b, &c, 1);
}
/* Appends v in decimal (what printf's %lld prints, without printf's cost). */
int sf_buf_put_i64(sf_buf *b, int64_t v);
int sf_buf_appendf(sf_buf *b, const char *fmt, ...) SF_PRINTF(2, 3);
int sf_buf_vappendf(sf_buf *b, const char *fmt, va_list ap) SF_PRINTF(2, 0);
static inline int sf_buf_error(const sf_buf *b) /* 0, or the failure every append since saw */
{
    return b->err;
}
void sf_buf_reset(sf_buf *b); /* len = 0 and no failure, keeps memory and bound */
void sf_buf_free(sf_buf *b);  /* frees memory, keeps the bound */
/* Returns data (never NULL on success) and empties the buffer; a failed buffer is freed and
 * NULL returned. */
char *sf_buf_steal(sf_buf *b);
/* Replaces every byte of b->data[from..len) that does not belong to a well-formed UTF-8
 * sequence (RFC 3629: no overlong forms, surrogates or code points above U+10FFFF) with U+FFFD.
 * Returns how many bytes were replaced, or -ENOMEM (b unchanged). */
int sf_utf8_sanitize(sf_buf *b, size_t from);

/* Checked allocation helpers: return NULL on failure (callers check). */
char *sf_strdup(const char *s);
char *sf_strndup(const char *s, size_t n);

/* "500ms", "10s", "5m", "1h", "7d"; also "0". Returns 0 or -EINVAL / -ERANGE. */
int sf_parse_duration_ms(const char *s, int64_t *out_ms);
/* "512", "64KiB", "100MiB", "1GiB", "10KB", "5MB", "1GB", "1024B". Returns 0 or -EINVAL/-ERANGE. */
int sf_parse_size(const char *s, uint64_t *out_bytes);
/* Formats a duration compactly ("1h", "90s", "250ms"). */
void sf_format_duration(int64_t ms, char *out, size_t outlen);

/* RFC 3339 ("2023-11-22T11:16:28.101680299Z", "...+02:00", 0-9 fraction digits) to ns since the
 * epoch, exact (never through a double). Returns 0 or -EINVAL/-ERANGE. */
int sf_parse_rfc3339_ns(const char *s, size_t len, int64_t *out_ns);
/* Decimal int64 (optional '-'), whole string; returns 0 or -EINVAL/-ERANGE. */
int sf_parse_int64(const char *s, size_t len, int64_t *out);
/* UTC RFC 3339 with exactly frac_digits (0, 3, 6 or 9) fraction digits and 'Z'. out >= 40 bytes. */
void sf_format_rfc3339(int64_t ns, int frac_digits, char *out, size_t outlen);
/* Command-line time: RFC 3339, "now", relative "-2h"/"-30m" (before now), or integer ns. */
int sf_parse_time_arg(const char *s, int64_t now_ns, int64_t *out_ns);

int64_t sf_now_ns(void);       /* CLOCK_REALTIME */
int64_t sf_monotonic_ms(void); /* CLOCK_MONOTONIC */

/* Full-jitter exponential backoff: uniform in [0, min(max, initial * 2^attempt)], attempt >= 0.
 * Never returns less than 1 ms when initial > 0. */
int64_t sf_backoff_ms(unsigned attempt, int64_t initial_ms, int64_t max_ms);
uint64_t sf_random_u64(void); /* non-cryptographic, seeded from getrandom at first use */

bool sf_streq(const char *a, const char *b); /* NULL-safe */
uint64_t sf_hash_str(const char *s);         /* FNV-1a, for hash tables (not cryptographic) */

#endif
