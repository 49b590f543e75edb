#include "sinks/syslog_fmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int sf_syslog_parse_address(const char *s, int *transport, char *host, size_t hostlen, int *port,
                            char *err, size_t errlen)
{
    static const struct {
        const char *prefix;
        int t;
    } schemes[] = {{"udp://", SF_SYSLOG_UDP}, {"tcp://", SF_SYSLOG_TCP}, {"tls://", SF_SYSLOG_TLS}};
    if (!s || !*s) {
        snprintf(err, errlen, "address is empty");
        return -EINVAL;
    }
    const char *p = NULL;
    for (size_t i = 0; i < SF_ARRAY_LEN(schemes); i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncmp(s, schemes[i].prefix, n) == 0) {
            *transport = schemes[i].t;
            p = s + n;
            break;
        }
    }
    if (!p) {
        snprintf(err, errlen, "address must start with udp://, tcp:// or tls://");
        return -EINVAL;
    }
    const char *hs, *he, *colon;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he) {
            snprintf(err, errlen, "unterminated '[' in address");
            return -EINVAL;
        }
        colon = he + 1;
        if (*colon != ':') {
            snprintf(err, errlen, "address needs a port (host:port)");
            return -EINVAL;
        }
    } else {
        hs = p;
        colon = strrchr(p, ':');
        if (!colon) {
            snprintf(err, errlen, "address needs a port (host:port)");
            return -EINVAL;
        }
        he = colon;
        if (memchr(hs, ':', (size_t)(he - hs))) {
            snprintf(err, errlen, "an IPv6 address must be written in brackets: [::1]:514");
            return -EINVAL;
        }
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0) {
        snprintf(err, errlen, "address has no host");
        return -EINVAL;
    }
    if (hl >= hostlen) {
        snprintf(err, errlen, "host name too long");
        return -EINVAL;
    }
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)hs[i];
        if (c <= ' ' || c > 126 || c == '/' || c == '@' || c == '?' || c == '#') {
            snprintf(err, errlen, "invalid character in host");
            return -EINVAL;
        }
    }
    const char *ps = colon + 1;
    if (!*ps) {
        snprintf(err, errlen, "address needs a port (host:port)");
        return -EINVAL;
    }
    long v = 0;
    for (const char *q = ps; *q; q++) {
        if (*q < '0' || *q > '9' || v > 65535) {
            snprintf(err, errlen, "invalid port \"%.16s\"", ps);
            return -EINVAL;
        }
        v = v * 10 + (*q - '0');
    }
    if (v < 1 || v > 65535) {
        snprintf(err, errlen, "port must be 1..65535");
        return -EINVAL;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *port = (int)v;
    return 0;
}

static const char *const facility_names[] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7",
};

int sf_syslog_parse_facility(const char *s)
{
    if (!s || !*s)
        return -EINVAL;
    for (size_t i = 0; i < SF_ARRAY_LEN(facility_names); i++)
        if (strcmp(s, facility_names[i]) == 0)
            return (int)i;
    int64_t v;
    if (sf_parse_int64(s, strlen(s), &v) == 0 && v >= 0 && v <= 23)
        return (int)v;
    return -EINVAL;
}

int sf_syslog_severity(int sev)
{
    switch (sev) {
    case 0:
    case 1:
        return 2;
    case 2:
    case 3:
        return 3;
    case 4:
    case 5:
        return 4;
    case 6:
        return 5;
    case 7:
        return 6;
    default:
        return 5;
    }
}

int sf_syslog_pri(int facility, int severity)
{
    return facility * 8 + severity;
}

bool sf_syslog_valid_sdname(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SF_SYSLOG_SDNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126 || c == '=' || c == ']' || c == '"')
            return false;
    }
    return true;
}

int sf_syslog_put_field(sf_buf *out, const char *v, size_t maxlen)
{
    size_t n = v ? strlen(v) : 0;
    if (n > maxlen)
        n = maxlen;
    if (n == 0)
        return sf_buf_putc(out, '-');
    int rc = sf_buf_reserve(out, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        out->data[out->len++] = (c >= 33 && c <= 126) ? (char)c : '_';
    }
    out->data[out->len] = '\0';
    return 0;
}

int sf_syslog_put_sdvalue(sf_buf *out, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        int rc = 0;
        if (*p == '"' || *p == '\\' || *p == ']')
            rc = sf_buf_putc(out, '\\');
        if (rc || (rc = sf_buf_putc(out, *p)))
            return rc;
    }
    return 0;
}

void sf_syslog_ts3164(int64_t ns, char *out, size_t outlen)
{
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t sec = ns / SF_NS_PER_SEC;
    if (ns < 0 && ns % SF_NS_PER_SEC)
        sec--;
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, outlen, "Jan  1 00:00:00");
        return;
    }
    snprintf(out, outlen, "%s %2d %02d:%02d:%02d", mon[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

size_t sf_syslog_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t p = max; /* s[p] is the first byte left out */
    while (p > 0 && ((unsigned char)s[p] & 0xC0) == 0x80)
        p--;
    /* s[p] is now a lead byte (or ASCII) whose character does not fit entirely: cut before it.
     * When the walk-back went nowhere (s[max] is a lead/ASCII byte) the cut is at max. */
    return p;
}

static int put_header(sf_buf *h, const sf_syslog_opts *o, const sf_syslog_fields *f)
{
    int64_t ts = f->ts_ns == SF_TIME_UNSET ? sf_now_ns() : f->ts_ns;
    int pri = sf_syslog_pri(o->facility, f->severity);
    int rc;
    if (o->rfc == SF_SYSLOG_RFC3164) {
        char t[32];
        sf_syslog_ts3164(ts, t, sizeof t);
        if ((rc = sf_buf_appendf(h, "<%d>%s ", pri, t)) ||
            (rc = sf_syslog_put_field(h, o->hostname, SF_SYSLOG_HOSTNAME_MAX)) ||
            (rc = sf_buf_putc(h, ' ')))
            return rc;
        /* TAG: alphanumeric characters (and - _ .), at most 32 */
        size_t before = h->len;
        for (const char *p = o->app_name ? o->app_name : ""; *p; p++) {
            char c = *p;
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
            if (h->len - before >= SF_SYSLOG_TAG_MAX)
                break;
            if ((rc = sf_buf_putc(h, ok ? c : '_')))
                return rc;
        }
        if (h->len == before && (rc = sf_buf_puts(h, "syslog")))
            return rc;
        return sf_buf_puts(h, ": ");
    }
    char t[48];
    sf_format_rfc3339(ts, 6, t, sizeof t);
    if ((rc = sf_buf_appendf(h, "<%d>1 %s ", pri, t)) ||
        (rc = sf_syslog_put_field(h, o->hostname, SF_SYSLOG_HOSTNAME_MAX)) ||
        (rc = sf_buf_putc(h, ' ')) ||
        (rc = sf_syslog_put_field(h, o->app_name, SF_SYSLOG_APPNAME_MAX)) ||
        (rc = sf_buf_putc(h, ' ')) ||
        (rc = sf_syslog_put_field(h, o->procid, SF_SYSLOG_PROCID_MAX)) ||
        (rc = sf_buf_putc(h, ' ')) ||
        (rc = sf_syslog_put_field(h, o->msgid, SF_SYSLOG_MSGID_MAX)) || (rc = sf_buf_putc(h, ' ')))
        return rc;
    if (o->sd_id && *o->sd_id) {
        if ((rc = sf_buf_putc(h, '[')) || (rc = sf_buf_puts(h, o->sd_id)) ||
            (rc = sf_buf_puts(h, " id=\"")) || (rc = sf_syslog_put_sdvalue(h, f->id)) ||
            (rc = sf_buf_putc(h, '"')))
            return rc;
        if (f->policy && ((rc = sf_buf_puts(h, " policy=\"")) ||
                          (rc = sf_syslog_put_sdvalue(h, f->policy)) || (rc = sf_buf_putc(h, '"'))))
            return rc;
        if (f->sysdig_severity >= 0 &&
            (rc = sf_buf_appendf(h, " severity=\"%d\"", f->sysdig_severity)))
            return rc;
        if ((rc = sf_buf_putc(h, ']')))
            return rc;
    } else if ((rc = sf_buf_putc(h, '-'))) {
        return rc;
    }
    if ((rc = sf_buf_putc(h, ' ')))
        return rc;
    if (o->bom)
        rc = sf_buf_puts(h, "\xEF\xBB\xBF");
    return rc;
}

int sf_syslog_format(sf_buf *out, const sf_syslog_opts *o, const sf_syslog_fields *f,
                     const char *msg, size_t msglen, bool *truncated)
{
    size_t start = out->len;
    *truncated = false;
    int rc = put_header(out, o, f);
    if (rc)
        goto fail;
    size_t hlen = out->len - start;
    size_t n = msglen;
    if (o->max_size && hlen + msglen > o->max_size) {
        if (o->reject_oversize || hlen >= o->max_size) {
            rc = -EMSGSIZE;
            goto fail;
        }
        n = sf_syslog_utf8_cut(msg, msglen, o->max_size - hlen);
        *truncated = true;
    }
    if ((rc = sf_buf_append(out, msg, n)))
        goto fail;
    return 0;
fail:
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    return rc;
}

int sf_syslog_frame(sf_buf *out, int framing, const char *msg, size_t len)
{
    int rc;
    if (framing == SF_SYSLOG_OCTET_COUNTING) {
        if ((rc = sf_buf_appendf(out, "%zu ", len)))
            return rc;
        return sf_buf_append(out, msg, len);
    }
    if ((rc = sf_buf_reserve(out, len + 1)))
        return rc;
    for (size_t i = 0; i < len; i++)
        out->data[out->len++] = msg[i] == '\n' ? ' ' : msg[i];
    out->data[out->len++] = '\n';
    out->data[out->len] = '\0';
    return 0;
}
