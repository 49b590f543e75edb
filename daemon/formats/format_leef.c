/* format leef: QRadar LEEF 2.0.
 *   LEEF:2.0|Sysdig|Secure|1.0|<policyId or rule>|<delimiter>|key=value<delim>key=value...
 * The delimiter is configurable (leef: { delimiter: ... }: "tab" (default), one character, or
 * "xHH"/"0xHH"); header field 6 names it ("x09" for tab and other non-printable bytes, else the
 * character itself). LEEF has no escape for the delimiter inside a value: it is replaced by a
 * space (by '_' when the delimiter is the space), and CR/LF by a space so a record stays one
 * line. Header fields escape '|' and '\' with '\'. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "formats/stix_common.h"

typedef struct leef_cfg {
    char *delimiter;
} leef_cfg;

static const sf_cfg_option leef_options[] = {
    {.name = "delimiter",
     .type = SF_OPT_STR,
     .def = "tab",
     .desc = "Attribute delimiter: \"tab\", a single character, or a hex byte \"xHH\"/\"0xHH\".",
     .offset = offsetof(leef_cfg, delimiter)},
    {.name = NULL},
};

typedef struct leef_state {
    char delim;
    char header[16]; /* header field 6 */
} leef_state;

static int hexdigit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int leef_init(const void *cfg, void **state, char *err, size_t errlen)
{
    const leef_cfg *c = cfg;
    const char *d = c && c->delimiter && c->delimiter[0] ? c->delimiter : "tab";
    int v = -1;
    if (!strcmp(d, "tab") || !strcmp(d, "\t"))
        v = '\t';
    else if (strlen(d) == 1)
        v = (unsigned char)d[0];
    else {
        const char *h = !strncmp(d, "0x", 2) ? d + 2 : d[0] == 'x' ? d + 1 : NULL;
        if (h && strlen(h) == 2 && hexdigit(h[0]) >= 0 && hexdigit(h[1]) >= 0)
            v = hexdigit(h[0]) * 16 + hexdigit(h[1]);
    }
    /* '=' and '|' would break key=value and header parsing; NUL/CR/LF the record itself; a
     * byte >= 0x80 is not a character in UTF-8 (records are UTF-8) */
    if (v <= 0 || v >= 0x80 || v == '=' || v == '|' || v == '\n' || v == '\r' || v == '\\') {
        if (err && errlen)
            snprintf(err, errlen,
                     "leef.delimiter '%s': expected \"tab\", one ASCII character or xHH below x80 "
                     "(not '=', '|', '\\\\', NUL, CR or LF)",
                     d);
        return -EINVAL;
    }
    leef_state *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->delim = (char)v;
    if (v > 0x20 && v < 0x7f)
        snprintf(st->header, sizeof st->header, "%c", v);
    else
        snprintf(st->header, sizeof st->header, "x%02X", (unsigned)v);
    *state = st;
    return 0;
}

static void leef_destroy(void *state)
{
    free(state);
}

typedef struct leef_out {
    sf_buf *out;
    char delim;
    bool first;
    int rc;
} leef_out;

static int put_header(sf_buf *out, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && !rc; p++) {
        if (*p == '|' || *p == '\\')
            rc = sf_buf_putc(out, '\\');
        if (!rc)
            rc = sf_buf_putc(out, *p == '\n' || *p == '\r' ? ' ' : *p);
    }
    return !rc ? sf_buf_putc(out, '|') : rc;
}

static void kv(leef_out *x, const char *key, const char *val)
{
    if (x->rc || !val || !val[0])
        return;
    if (!x->first)
        x->rc = sf_buf_putc(x->out, x->delim);
    x->first = false;
    if (!x->rc)
        x->rc = sf_buf_appendf(x->out, "%s=", key);
    char repl = x->delim == ' ' ? '_' : ' ';
    for (const char *p = val; *p && !x->rc; p++)
        x->rc = sf_buf_putc(x->out, *p == x->delim || *p == '\n' || *p == '\r' ? repl : *p);
}

static void endpoint(leef_out *x, const sx_endpoint *e, const char *ipkey, const char *portkey)
{
    char port[8];
    if (!e->ok)
        return;
    kv(x, ipkey, e->ip);
    snprintf(port, sizeof port, "%d", e->port);
    kv(x, portkey, port);
}

static int leef_encode(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen)
{
    const leef_state *st = state;
    char delim = st ? st->delim : '\t';
    sx_summary s;
    sx_summarize(ev, &s);
    size_t start = out->len;
    leef_out x = {.out = out, .delim = delim, .first = true};
    x.rc = sf_buf_puts(out, "LEEF:2.0|Sysdig|Secure|1.0|");
    if (!x.rc)
        x.rc = put_header(out, s.signature ? s.signature : "sysdig-event");
    if (!x.rc)
        x.rc = sf_buf_appendf(out, "%s|", st ? st->header : "x09");
    char buf[48];
    if (ev->ts_ns != SF_TIME_UNSET) {
        sf_format_rfc3339(ev->ts_ns, 3, buf, sizeof buf);
        kv(&x, "devTime", buf);
        kv(&x, "devTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX");
    }
    kv(&x, "cat", s.category);
    if (s.severity100 >= 0) {
        int sev = (s.severity100 + 5) / 10;
        snprintf(buf, sizeof buf, "%d", sev < 1 ? 1 : sev);
        kv(&x, "sev", buf);
    }
    kv(&x, "eventId", ev->id);
    kv(&x, "ruleName", s.rule);
    kv(&x, "msg", s.msg);
    endpoint(&x, &s.src, "src", "srcPort");
    endpoint(&x, &s.dst, "dst", "dstPort");
    kv(&x, "proto", s.proto);
    kv(&x, "usrName", s.user);
    kv(&x, "userId", s.uid);
    kv(&x, "processName", s.proc);
    kv(&x, "processId", s.pid);
    kv(&x, "identHostName", s.host);
    kv(&x, "containerId", s.container_id);
    kv(&x, "containerName", s.container_name);
    kv(&x, "imageRepo", s.image_repo);
    kv(&x, "imageTag", s.image_tag);
    kv(&x, "k8sCluster", s.cluster);
    kv(&x, "k8sNamespace", s.ns);
    kv(&x, "k8sPod", s.pod);
    kv(&x, "k8sWorkload", s.workload);
    if (x.rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
    }
    return x.rc;
}

const sf_format sf_format_leef = {
    .name = "leef",
    .desc = "QRadar LEEF 2.0 with a configurable delimiter (tab by default): devTime, sev 1-10, "
            "cat, src/dst/srcPort/dstPort/proto, usrName and container/Kubernetes context.",
    .cfg_key = "leef",
    .options = leef_options,
    .cfg_size = sizeof(leef_cfg),
    .init = leef_init,
    .encode = leef_encode,
    .destroy = leef_destroy,
};
