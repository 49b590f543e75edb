#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void sf_buf_init_max(sf_buf *b, size_t max)
{
    *b = (sf_buf){.max = max};
}

static int buf_fail(sf_buf *b, int err)
{
    if (!b->err)
        b->err = err;
    return b->err;
}

static int buf_grow(sf_buf *b, size_t extra, bool exact)
{
    if (b->err)
        return b->err;
    if (extra > SIZE_MAX - b->len - 1)
        return buf_fail(b, -ENOMEM);
    if (b->max && b->len + extra > b->max)
        return buf_fail(b, -E2BIG);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    if (exact)
        cap = need;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    if (b->max && cap > b->max + 1)
        cap = b->max + 1 > need ? b->max + 1 : need;
    char *p = realloc(b->data, cap);
    if (!p)
        return buf_fail(b, -ENOMEM);
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

int sf_buf_reserve(sf_buf *b, size_t extra)
{
    return buf_grow(b, extra, false);
}

int sf_buf_reserve_exact(sf_buf *b, size_t extra)
{
    return buf_grow(b, extra, true);
}

int sf_buf_append_grow(sf_buf *b, const void *p, size_t n)
{
    int rc = sf_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sf_buf_vappendf(sf_buf *b, const char *fmt, va_list ap)
{
    if (b->err)
        return b->err;
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return buf_fail(b, -EINVAL);
    if ((size_t)n < sizeof small)
        return sf_buf_append(b, small, (size_t)n);
    int rc = sf_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sf_buf_appendf(sf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sf_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void sf_buf_reset(sf_buf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sf_buf_free(sf_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

int sf_buf_put_i64(sf_buf *b, int64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; /* INT64_MIN too */
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    return sf_buf_append(b, tmp + i, sizeof tmp - i);
}

char *sf_buf_steal(sf_buf *b)
{
    if (b->err) {
        sf_buf_free(b);
        return NULL;
    }
    if (!b->data) {
        if (sf_buf_reserve(b, 0)) {
            sf_buf_free(b);
            return NULL;
        }
        b->data[0] = '\0';
    }
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

char *sf_strdup(const char *s)
{
    return s ? sf_strndup(s, strlen(s)) : NULL;
}

char *sf_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

bool sf_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

uint64_t sf_hash_str(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

/* Parses leading unsigned decimal digits; returns count consumed or 0. */
static size_t parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (isdigit((unsigned char)s[i])) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
        i++;
    }
    *out = v;
    return i;
}

int sf_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v;
    size_t n = parse_u64(s, &v);
    if (n == 0)
        return isdigit((unsigned char)s[0]) ? -ERANGE : -EINVAL;
    const char *u = s + n;
    uint64_t mul;
    if (strcmp(u, "ms") == 0)
        mul = 1;
    else if (strcmp(u, "s") == 0)
        mul = 1000;
    else if (strcmp(u, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(u, "h") == 0)
        mul = 3600 * 1000;
    else if (strcmp(u, "d") == 0)
        mul = 86400 * 1000;
    else if (*u == '\0' && v == 0)
        mul = 1;
    else
        return -EINVAL;
    if (v > (uint64_t)INT64_MAX / mul)
        return -ERANGE;
    *out_ms = (int64_t)(v * mul);
    return 0;
}

int sf_parse_size(const char *s, uint64_t *out_bytes)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v;
    size_t n = parse_u64(s, &v);
    if (n == 0)
        return isdigit((unsigned char)s[0]) ? -ERANGE : -EINVAL;
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", UINT64_C(1) << 10},
        {"MiB", UINT64_C(1) << 20},
        {"GiB", UINT64_C(1) << 30},
        {"TiB", UINT64_C(1) << 40},
        {"KB", UINT64_C(1000)},
        {"MB", UINT64_C(1000000)},
        {"GB", UINT64_C(1000000000)},
        {"TB", UINT64_C(1000000000000)},
    };
    for (size_t i = 0; i < SF_ARRAY_LEN(units); i++) {
        if (strcmp(s + n, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mul)
                return -ERANGE;
            *out_bytes = v * units[i].mul;
            return 0;
        }
    }
    return -EINVAL;
}

void sf_format_duration(int64_t ms, char *out, size_t outlen)
{
    static const struct {
        const char *u;
        int64_t m;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; i < SF_ARRAY_LEN(units); i++) {
        if (ms != 0 && ms % units[i].m == 0) {
            snprintf(out, outlen, "%lld%s", (long long)(ms / units[i].m), units[i].u);
            return;
        }
    }
    snprintf(out, outlen, "%lldms", (long long)ms);
}

int sf_parse_int64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len == 0)
        return -EINVAL;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1)
            return -EINVAL;
    }
    uint64_t v = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

/* days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int digits(const char *s, size_t len, size_t pos, size_t n, unsigned *out)
{
    if (pos + n > len)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[pos + i]))
            return -1;
        v = v * 10 + (unsigned)(s[pos + i] - '0');
    }
    *out = v;
    return 0;
}

int sf_parse_rfc3339_ns(const char *s, size_t len, int64_t *out_ns)
{
    unsigned Y, M, D, h, mi, sec;
    if (digits(s, len, 0, 4, &Y) || len < 19 || s[4] != '-' || digits(s, len, 5, 2, &M) ||
        s[7] != '-' || digits(s, len, 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, len, 11, 2, &h) || s[13] != ':' || digits(s, len, 14, 2, &mi) || s[16] != ':' ||
        digits(s, len, 17, 2, &sec))
        return -EINVAL;
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M == 2 && D == 29 && !leap)
        return -EINVAL;
    size_t p = 19;
    int64_t frac = 0;
    if (p < len && s[p] == '.') {
        p++;
        size_t nd = 0;
        while (p < len && isdigit((unsigned char)s[p])) {
            if (nd < 9) {
                frac = frac * 10 + (s[p] - '0');
                nd++;
            }
            p++;
        }
        if (nd == 0)
            return -EINVAL;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    int64_t off = 0;
    if (p < len && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        unsigned oh, om;
        if (digits(s, len, p + 1, 2, &oh) || p + 3 >= len || s[p + 3] != ':' ||
            digits(s, len, p + 4, 2, &om) || oh > 23 || om > 59)
            return -EINVAL;
        off = ((int64_t)oh * 3600 + om * 60) * (s[p] == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (p != len)
        return -EINVAL;
    int64_t days = days_from_civil(Y, M, D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + (sec == 60 ? 59 : sec) - off;
    /* representable range of int64 ns: years 1677..2262 */
    if (secs > INT64_MAX / SF_NS_PER_SEC - 1 || secs < INT64_MIN / SF_NS_PER_SEC + 1)
        return -ERANGE;
    *out_ns = secs * SF_NS_PER_SEC + frac;
    return 0;
}

/* v in exactly w decimal digits (leading zeros; v < 10^w) at *p. */
static void put_digits(char **p, unsigned v, int w)
{
    for (int i = w - 1; i >= 0; i--, v /= 10)
        (*p)[i] = (char)('0' + v % 10);
    *p += w;
}

void sf_format_rfc3339(int64_t ns, int frac_digits, char *out, size_t outlen)
{
    int64_t secs = ns / SF_NS_PER_SEC;
    int64_t frac = ns % SF_NS_PER_SEC;
    if (frac < 0) {
        frac += SF_NS_PER_SEC;
        secs -= 1;
    }
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999 && outlen >= 31) {
        /* digit by digit what the snprintf calls below write (formats call this per event) */
        unsigned f[] = {
            (unsigned)y,         m, d, (unsigned)(rem / 3600), (unsigned)(rem % 3600 / 60),
            (unsigned)(rem % 60)};
        static const char sep[] = "--T::";
        char *p = out;
        put_digits(&p, f[0], 4);
        for (int i = 1; i < 6; i++) {
            *p++ = sep[i - 1];
            put_digits(&p, f[i], 2);
        }
        if (frac_digits == 3 || frac_digits == 6 || frac_digits == 9) {
            *p++ = '.';
            for (int i = 9; i > frac_digits; i--)
                frac /= 10;
            put_digits(&p, (unsigned)frac, frac_digits);
        }
        *p++ = 'Z';
        *p = '\0';
        return;
    }
    int n = snprintf(out, outlen, "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, m, d,
                     (unsigned)(rem / 3600), (unsigned)(rem % 3600 / 60), (unsigned)(rem % 60));
    if (n < 0 || (size_t)n >= outlen)
        return;
    if (frac_digits == 3 || frac_digits == 6 || frac_digits == 9) {
        int64_t div = frac_digits == 3 ? 1000000 : frac_digits == 6 ? 1000 : 1;
        snprintf(out + n, outlen - (size_t)n, ".%0*lldZ", frac_digits, (long long)(frac / div));
    } else {
        snprintf(out + n, outlen - (size_t)n, "Z");
    }
}

int sf_parse_time_arg(const char *s, int64_t now_ns, int64_t *out_ns)
{
    if (!s || !*s)
        return -EINVAL;
    if (strcmp(s, "now") == 0) {
        *out_ns = now_ns;
        return 0;
    }
    if (s[0] == '-' && !isdigit((unsigned char)s[strlen(s) - 1])) {
        int64_t ms;
        int rc = sf_parse_duration_ms(s + 1, &ms);
        if (rc)
            return rc;
        if (ms > INT64_MAX / SF_NS_PER_MS)
            return -ERANGE;
        *out_ns = now_ns - ms * SF_NS_PER_MS;
        return 0;
    }
    size_t len = strlen(s);
    if (sf_parse_int64(s, len, out_ns) == 0)
        return 0;
    return sf_parse_rfc3339_ns(s, len, out_ns);
}

int64_t sf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SF_NS_PER_SEC + ts.tv_nsec;
}

int64_t sf_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_state;

uint64_t sf_random_u64(void)
{
    if (rng_state == 0) {
        if (getrandom(&rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state)
            rng_state = (uint64_t)sf_now_ns();
        rng_state |= 1;
    }
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

int64_t sf_backoff_ms(unsigned attempt, int64_t initial_ms, int64_t max_ms)
{
    if (initial_ms <= 0)
        return 0;
    if (max_ms < initial_ms)
        max_ms = initial_ms;
    int64_t cap = initial_ms;
    for (unsigned i = 0; i < attempt && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    if (cap > max_ms)
        cap = max_ms;
    int64_t v = (int64_t)(sf_random_u64() % ((uint64_t)cap + 1)); /* cap may be INT64_MAX */
    return v < 1 ? 1 : v;
}

/* Length of the well-formed UTF-8 sequence at p (n bytes available), 0 if there is none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

int sf_utf8_sanitize(sf_buf *b, size_t from)
{
    const unsigned char *d = (const unsigned char *)b->data;
    size_t i = from, bad = 0;
    while (i < b->len) {
        /* ASCII runs, eight bytes at a time (most records are ASCII) */
        while (b->len - i >= 8) {
            uint64_t w;
            memcpy(&w, d + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= b->len)
            break;
        size_t l = utf8_seq(d + i, b->len - i);
        bad += l == 0;
        i += l ? l : 1;
    }
    if (!bad)
        return 0;
    sf_buf o = {0}; /* unbounded: the result replaces b, whose bound is restored below */
    if (sf_buf_reserve(&o, b->len + bad * 2 + 1))
        return -ENOMEM;
    sf_buf_append(&o, b->data, from); /* cannot fail: reserved */
    for (i = from; i < b->len;) {
        size_t l = utf8_seq(d + i, b->len - i);
        if (l) {
            sf_buf_append(&o, d + i, l);
            i += l;
        } else {
            sf_buf_append(&o, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (b->max && o.len > b->max) { /* the replacements would pass b's bound */
        sf_buf_free(&o);
        return -E2BIG;
    }
    o.max = b->max;
    sf_buf_free(b);
    *b = o;
    return (int)(bad > INT32_MAX ? INT32_MAX : bad);
}
