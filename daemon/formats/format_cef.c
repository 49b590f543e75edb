/* format cef: ArcSight CEF:0 with full escaping.
 *   CEF:0|Sysdig|Secure|1.0|<policyId or rule>|<rule name>|<0-10 or Unknown>|<extension>
 * Header fields escape '|' and '\'; extension values escape '\', '=', newline (\n) and CR (\r).
 * Other bytes (UTF-8 included) pass through unchanged. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "formats/format.h"
#include "formats/stix_common.h"

static int put_escaped(sf_buf *out, const char *s, bool header)
{
    int rc = 0;
    for (const char *p = s; *p && !rc; p++) {
        const char *e = NULL;
        switch (*p) {
        case '\\':
            e = "\\\\";
            break;
        case '|':
            e = header ? "\\|" : NULL;
            break;
        case '=':
            e = header ? NULL : "\\=";
            break;
        case '\n':
            e = header ? " " : "\\n";
            break;
        case '\r':
            e = header ? " " : "\\r";
            break;
        }
        rc = e ? sf_buf_puts(out, e) : sf_buf_putc(out, *p);
    }
    return rc;
}

typedef struct cef_ext {
    sf_buf *out;
    int rc;
    bool first; /* no key written yet (no separating space) */
} cef_ext;

static void kv(cef_ext *x, const char *key, const char *val)
{
    if (x->rc || !val || !val[0])
        return;
    if (!x->first)
        x->rc = sf_buf_putc(x->out, ' ');
    x->first = false;
    if (!x->rc)
        x->rc = sf_buf_appendf(x->out, "%s=", key);
    if (!x->rc)
        x->rc = put_escaped(x->out, val, false);
}

/* cs<n>=value cs<n>Label=label */
static void custom(cef_ext *x, int *n, const char *label, const char *val)
{
    char key[16];
    if (!val || !val[0] || *n > 6)
        return;
    snprintf(key, sizeof key, "cs%d", *n);
    kv(x, key, val);
    snprintf(key, sizeof key, "cs%dLabel", *n);
    kv(x, key, label);
    (*n)++;
}

static void endpoint(cef_ext *x, const sx_endpoint *e, const char *v4key, const char *v6key,
                     const char *portkey)
{
    char port[16], label[32], key[16];
    if (!e->ok)
        return;
    kv(x, e->v6 ? v6key : v4key, e->ip);
    if (e->v6) {
        snprintf(label, sizeof label, "%s IPv6 Address",
                 v6key[3] == '2' ? "Source" : "Destination");
        snprintf(key, sizeof key, "%sLabel", v6key);
        kv(x, key, label);
    }
    snprintf(port, sizeof port, "%d", e->port);
    kv(x, portkey, port);
}

static int cef_encode(void *state, const sf_event *ev, sf_buf *out, char *err, size_t errlen)
{
    sx_summary s;
    sx_summarize(ev, &s);
    size_t start = out->len;
    cef_ext x = {.out = out, .first = true};
    x.rc = sf_buf_puts(out, "CEF:0|Sysdig|Secure|1.0|");
    if (!x.rc)
        x.rc = put_escaped(out, s.signature ? s.signature : "sysdig-event", true);
    if (!x.rc)
        x.rc = sf_buf_putc(out, '|');
    if (!x.rc)
        x.rc = put_escaped(out, s.rule ? s.rule : "Sysdig Secure event", true);
    if (!x.rc)
        x.rc = s.severity100 < 0 ? sf_buf_puts(out, "|Unknown|")
                                 : sf_buf_appendf(out, "|%d|", (s.severity100 + 5) / 10);
    char num[32];
    if (ev->ts_ns != SF_TIME_UNSET) {
        snprintf(num, sizeof num, "%" PRId64, ev->ts_ns / SF_NS_PER_MS);
        kv(&x, "rt", num);
    }
    kv(&x, "externalId", ev->id);
    kv(&x, "cat", s.category);
    kv(&x, "msg", s.msg);
    endpoint(&x, &s.src, "src", "c6a2", "spt");
    endpoint(&x, &s.dst, "dst", "c6a3", "dpt");
    kv(&x, "proto", s.proto);
    kv(&x, "suser", s.user);
    kv(&x, "suid", s.uid);
    kv(&x, "sproc", s.proc);
    kv(&x, "spid", s.pid);
    kv(&x, "dvchost", s.host);
    int n = 1;
    custom(&x, &n, "containerId", s.container_id);
    custom(&x, &n, "containerName", s.container_name);
    sf_buf image = {0};
    if (s.image_repo && !x.rc)
        x.rc = sf_buf_appendf(&image, "%s%s%s", s.image_repo, s.image_tag ? ":" : "",
                              s.image_tag ? s.image_tag : "");
    custom(&x, &n, "containerImage", image.data);
    sf_buf_free(&image);
    custom(&x, &n, "k8sCluster", s.cluster);
    custom(&x, &n, "k8sNamespace", s.ns);
    custom(&x, &n, "k8sPod", s.pod);
    if (x.rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
    }
    (void)state;
    return x.rc;
}

const sf_format sf_format_cef = {
    .name = "cef",
    .desc = "ArcSight CEF:0 (rule/policy id as signature id, severity 0-10, rt/src/dst/spt/dpt/"
            "suser/msg/cat and cs1..cs6 container/Kubernetes context), fully escaped.",
    .encode = cef_encode,
};
