/* syslog_fmt: pure syslog message building (RFC 5424 / RFC 3164) and transport framing
 * (RFC 6587 octet counting or LF), used by sink_syslog.c. No I/O, no globals. */
#ifndef SF_SYSLOG_FMT_H
#define SF_SYSLOG_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

enum { SF_SYSLOG_UDP = 0, SF_SYSLOG_TCP = 1, SF_SYSLOG_TLS = 2 };
enum { SF_SYSLOG_RFC5424 = 0, SF_SYSLOG_RFC3164 = 1 };
enum { SF_SYSLOG_OCTET_COUNTING = 0, SF_SYSLOG_LF = 1 };

#define SF_SYSLOG_HOSTNAME_MAX 255
#define SF_SYSLOG_APPNAME_MAX 48
#define SF_SYSLOG_PROCID_MAX 128
#define SF_SYSLOG_MSGID_MAX 32
#define SF_SYSLOG_SDNAME_MAX 32
#define SF_SYSLOG_TAG_MAX 32
#define SF_SYSLOG_3164_MAX 1024

/* "udp://host:514", "tcp://[::1]:601", "tls://logs.example.com:6514". host gets the bare host
 * (no brackets). Returns 0 or -EINVAL (err says why). */
int sf_syslog_parse_address(const char *s, int *transport, char *host, size_t hostlen, int *port,
                            char *err, size_t errlen);

/* Facility by name ("local0", "auth", ...) or number "0".."23". Returns 0..23 or -EINVAL. */
int sf_syslog_parse_facility(const char *s);

/* Sysdig severity 0..7 (0 most severe, -1 unknown) -> syslog severity:
 * 0-1 -> 2 crit, 2-3 -> 3 err, 4-5 -> 4 warning, 6 -> 5 notice, 7 -> 6 info, unknown -> 5. */
int sf_syslog_severity(int sysdig_sev07);

/* PRI value facility * 8 + severity. */
int sf_syslog_pri(int facility, int severity);

/* true if s is a valid SD-NAME (1..32 printable ASCII, no '=', ' ', ']', '"'). */
bool sf_syslog_valid_sdname(const char *s);

/* Appends a header field: printable ASCII (33..126) kept, any other byte becomes '_', at most
 * maxlen bytes, "-" when empty or NULL. */
int sf_syslog_put_field(sf_buf *out, const char *v, size_t maxlen);

/* Appends an SD-PARAM value with '"', '\\' and ']' escaped by a backslash. */
int sf_syslog_put_sdvalue(sf_buf *out, const char *v);

/* "Mmm dd hh:mm:ss" (day space-padded), UTC. out >= 16 bytes. */
void sf_syslog_ts3164(int64_t ns, char *out, size_t outlen);

typedef struct sf_syslog_opts {
    int rfc;      /* SF_SYSLOG_RFC5424 / SF_SYSLOG_RFC3164 */
    int facility; /* 0..23 */
    const char *hostname;
    const char *app_name; /* 3164: TAG */
    const char *procid;   /* 5424 only; NULL -> "-" */
    const char *msgid;    /* 5424 only */
    const char *sd_id;    /* 5424: SD-ID of the element; NULL or "" -> no structured data */
    bool bom;             /* 5424: MSG starts with the UTF-8 BOM */
    size_t max_size;      /* bytes of the whole message (framing excluded); 0 = unlimited */
    bool reject_oversize; /* else truncate (at a UTF-8 character boundary) */
} sf_syslog_opts;

typedef struct sf_syslog_fields {
    int64_t ts_ns;       /* SF_TIME_UNSET: now */
    int severity;        /* syslog 0..7 */
    const char *id;      /* SD param id (5424) */
    const char *policy;  /* SD param policy; NULL: omitted */
    int sysdig_severity; /* SD param severity; < 0: omitted */
} sf_syslog_fields;

/* Appends one message (without framing) to out. Returns 0 (*truncated says whether MSG was
 * cut), -EMSGSIZE (too big and reject_oversize, or the header alone exceeds max_size; out is
 * left unchanged), -ENOMEM. */
int sf_syslog_format(sf_buf *out, const sf_syslog_opts *o, const sf_syslog_fields *f,
                     const char *msg, size_t msglen, bool *truncated);

/* Appends msg framed for a stream: "LEN SP MSG" (octet counting) or MSG LF (LF framing; an
 * embedded LF would split the message, so each one becomes a space). */
int sf_syslog_frame(sf_buf *out, int framing, const char *msg, size_t len);

/* Length of the longest prefix of s[0..len) that is at most max bytes and does not end inside a
 * UTF-8 multi-byte sequence. */
size_t sf_syslog_utf8_cut(const char *s, size_t len, size_t max);

#endif
