/* sysdig_query: the translation (see the header for the rules). */
#include "query/sysdig_query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

typedef enum { F_STR, F_INT, F_MAC, F_SEVERITY } field_type;

/* stix-shifter's from_stix_map.json (STIX 2.0 and 2.1: x_severity) with the types of its
 * config_map.json (fields it does not list are strings). */
static const struct field {
    const char *object, *path, *field;
    field_type type;
} fields[] = {
    {"mac-addr", "value", "machineId", F_MAC},
    {"x-oca-asset", "hostname", "host.hostName", F_STR},
    {"x-oca-asset", "extensions.'x-oca-container-ext'.container_id", "containerId", F_STR},
    {"x-oca-asset", "extensions.'x-oca-container-ext'.name", "container.name", F_STR},
    {"x-oca-asset", "extensions.'x-oca-container-ext'.image_id", "container.image.id", F_STR},
    {"x-oca-asset", "extensions.'x-oca-container-ext'.x_repo", "container.image.repo", F_STR},
    {"x-oca-asset", "extensions.'x-oca-container-ext'.x_tag", "container.image.tag", F_STR},
    {"x-oca-asset", "extensions.'x-oca-container-ext'.x_digest", "container.image.digest", F_STR},
    {"x-oca-asset", "extensions.'x-oca-pod-ext'.pod_name", "container.label.io.kubernetes.pod.name",
     F_STR},
    {"x-oca-asset", "extensions.'x-oca-pod-ext'.x_namespace",
     "container.label.io.kubernetes.pod.namespace", F_STR},
    {"x-ibm-finding", "name", "ruleName", F_STR},
    {"x-ibm-finding", "severity", "severity", F_SEVERITY},
    {"x-ibm-finding", "x_severity", "severity", F_SEVERITY},
    {"x-ibm-finding", "x_category", "category", F_STR},
    {"x-ibm-finding", "x_threat_originator", "originator", F_STR},
    {"x-ibm-finding", "x_threat_source", "source", F_STR},
    {"x-ibm-finding", "x_agent_id", "agentId", F_INT},
    {"x-sysdig-cluster", "name", "kubernetes.cluster.name", F_STR},
    {"x-sysdig-cluster", "namespace", "kubernetes.namespace.name", F_STR},
    {"x-sysdig-deployment", "name", "kubernetes.deployment.name", F_STR},
    {"x-sysdig-policy", "rule_name", "ruleName", F_STR},
    {"x-sysdig-policy", "rule_type", "ruleType", F_INT},
    {"x-sysdig-policy", "rule_subtype", "ruleSubType", F_INT},
    {"x-sysdig-policy", "policy_id", "policyId", F_INT},
    {"x-cloud-provider", "account_id", "aws.accountId", F_INT},
    {"x-cloud-provider", "name", "cloudProvider.name", F_STR},
    {"x-cloud-provider", "region", "aws.region", F_STR},
};

#define AUDIT_GUARD "andsource!=\"auditTrail\""

typedef struct tr {
    const sf_sysdig_opts *o;
    sf_sp_error *err;
    int rc;
    /* observations: window and filter, in pattern order */
    struct obs {
        int64_t from, to;
        char *filter;
    } * obs;
    size_t nobs, cap;
} tr;

static int fail(tr *t, size_t pos, const char *fmt, ...) SF_PRINTF(3, 4);
static int fail(tr *t, size_t pos, const char *fmt, ...)
{
    if (t->rc)
        return t->rc;
    t->rc = -EINVAL;
    t->err->pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err->msg, sizeof t->err->msg, fmt, ap);
    va_end(ap);
    return t->rc;
}

static int oom(tr *t)
{
    if (!t->rc) {
        t->rc = -ENOMEM;
        t->err->pos = 0;
        snprintf(t->err->msg, sizeof t->err->msg, "out of memory");
    }
    return t->rc;
}

static const struct field *lookup(const char *object, const char *path)
{
    for (size_t i = 0; i < SF_ARRAY_LEN(fields); i++)
        if (!strcmp(fields[i].object, object) && !strcmp(fields[i].path, path))
            return &fields[i];
    return NULL;
}

/* Sysdig severity bucket of a STIX severity 1..100: 91-100 -> 0, 81-90 -> 1, ... 31-40 -> 6,
 * 1-30 -> 7 (stix-shifter's _field_severity). */
static int severity_bucket(int64_t v)
{
    return v >= 31 ? (int)((100 - v) / 10) : 7;
}

static bool is_mac(const char *s, size_t n)
{
    if (n != 17)
        return false;
    char sep = s[2];
    if (sep != ':' && sep != '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (i % 3 == 2) {
            if (c != ':' && c != '-') /* stix-shifter's regex allows mixing them: so do we */
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static const char *lit_kind_name(sf_sp_lit_kind k)
{
    switch (k) {
    case SF_SP_LIT_STR:
        return "a string";
    case SF_SP_LIT_INT:
        return "an integer";
    case SF_SP_LIT_FLOAT:
        return "a float";
    case SF_SP_LIT_BOOL:
        return "a boolean";
    case SF_SP_LIT_TIME:
        return "a timestamp";
    case SF_SP_LIT_BIN:
        return "a binary literal";
    case SF_SP_LIT_HEX:
        return "a hex literal";
    }
    return "a value";
}

/* Appends one value of field f, as Sysdig's filter writes it. */
static int put_value(tr *t, const struct field *f, const sf_sp_cmp *c, const sf_sp_lit *v,
                     sf_buf *b)
{
    switch (f->type) {
    case F_MAC:
        if (v->kind != SF_SP_LIT_STR || !is_mac(v->s, v->len))
            return fail(t, v->pos, "%s:%s takes a MAC address such as '00:aa:bb:cc:dd:ee'",
                        c->object, c->path);
        return sf_buf_appendf(b, "\"%s\"", v->s);
    case F_STR: {
        if (v->kind == SF_SP_LIT_INT)
            return sf_buf_appendf(b, "\"%" PRId64 "\"", v->i);
        if (v->kind != SF_SP_LIT_STR)
            return fail(t, v->pos, "%s:%s takes a string, not %s", c->object, c->path,
                        lit_kind_name(v->kind));
        sf_buf_putc(b, '"');
        for (size_t i = 0; i < v->len; i++) {
            unsigned char ch = (unsigned char)v->s[i];
            if (ch < 0x20 || ch == 0x7f)
                return fail(t, v->pos,
                            "control character 0x%02x in a string: Sysdig filters cannot hold it",
                            ch);
            if (ch == '"' || ch == '\\')
                sf_buf_putc(b, '\\');
            sf_buf_putc(b, (char)ch);
        }
        return sf_buf_putc(b, '"');
    }
    case F_INT:
    case F_SEVERITY: {
        int64_t n;
        const char *digits = NULL;
        if (v->kind == SF_SP_LIT_INT && v->i >= 0) {
            n = v->i;
        } else if (v->kind == SF_SP_LIT_STR && all_digits(v->s, v->len) &&
                   sf_parse_int64(v->s, v->len, &n) == 0) {
            digits = v->s; /* as written: leading zeros kept (account ids) */
        } else {
            return fail(t, v->pos, "%s:%s takes a non-negative integer, not %s", c->object, c->path,
                        v->kind == SF_SP_LIT_INT ? "a negative one" : lit_kind_name(v->kind));
        }
        if (f->type == F_SEVERITY) {
            if (n < 1 || n > 100)
                return fail(t, v->pos, "%s:%s takes 1..100 (got %" PRId64 ")", c->object, c->path,
                            n);
            return sf_buf_appendf(b, "%d", severity_bucket(n));
        }
        return digits ? sf_buf_puts(b, digits) : sf_buf_appendf(b, "%" PRId64, n);
    }
    }
    return 0;
}

static bool value_is(const sf_sp_lit *v, const char *s)
{
    return v->kind == SF_SP_LIT_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

static int render_test(tr *t, const sf_sp_cmp *c, sf_buf *b)
{
    if (c->kind == SF_SP_EXISTS)
        return fail(t, c->op_pos, "EXISTS is not supported: Sysdig filters cannot test presence");
    switch (c->op) {
    case SF_SP_LIKE:
    case SF_SP_MATCHES:
        return fail(t, c->op_pos,
                    "%s is not supported: Sysdig filters have no pattern matching (use = or IN)",
                    sf_sp_op_name(c->op));
    case SF_SP_ISSUBSET:
    case SF_SP_ISSUPERSET:
        return fail(t, c->op_pos, "%s is not supported: no Sysdig field holds a network",
                    sf_sp_op_name(c->op));
    default:
        break;
    }
    const struct field *f = lookup(c->object, c->path);
    if (!f)
        return fail(t, c->path_pos,
                    "no Sysdig field for %s:%s (`sysdig-forwarder translate-query --help` "
                    "lists the supported paths)",
                    c->object, c->path);
    /* NOT negates the operator; IN keeps a flag */
    sf_sp_op op = c->op;
    bool not_in = false;
    if (c->negated) {
        static const sf_sp_op neg[] = {
            [SF_SP_EQ] = SF_SP_NE, [SF_SP_NE] = SF_SP_EQ, [SF_SP_LT] = SF_SP_GE,
            [SF_SP_LE] = SF_SP_GT, [SF_SP_GT] = SF_SP_LE, [SF_SP_GE] = SF_SP_LT};
        if (op == SF_SP_IN)
            not_in = true;
        else
            op = neg[op];
    }
    bool ordered = op == SF_SP_LT || op == SF_SP_LE || op == SF_SP_GT || op == SF_SP_GE;
    if (ordered && (f->type == F_STR || f->type == F_MAC))
        return fail(t, c->op_pos, "%s is not supported for %s:%s (a string): use =, != or IN",
                    sf_sp_op_name(c->op), c->object, c->path);
    if (op == SF_SP_IN && c->nvals == 0)
        return fail(t, c->op_pos, "IN with an empty set matches nothing");
    /* the guard excludes audit-trail events from every query: asking for them finds nothing */
    if (!strcmp(f->field, "source") && (op == SF_SP_EQ || (op == SF_SP_IN && !not_in)))
        for (size_t i = 0; i < c->nvals; i++)
            if (value_is(&c->vals[i], "auditTrail"))
                return fail(t, c->vals[i].pos,
                            "auditTrail events are excluded from every query "
                            "(source!=\"auditTrail\" is appended): this cannot match");
    /* Sysdig's severity shrinks as danger grows: order comparators flip */
    if (f->type == F_SEVERITY) {
        static const sf_sp_op flip[] = {[SF_SP_LT] = SF_SP_GT,
                                        [SF_SP_LE] = SF_SP_GE,
                                        [SF_SP_GT] = SF_SP_LT,
                                        [SF_SP_GE] = SF_SP_LE};
        if (ordered)
            op = flip[op];
    }
    if (op == SF_SP_IN) {
        sf_buf_appendf(b, "%s %s (", f->field, not_in ? "not in" : "in");
        size_t start = b->len;
        for (size_t i = 0; i < c->nvals; i++) {
            size_t mark = b->len;
            if (i && sf_buf_putc(b, ','))
                break;
            size_t vstart = b->len;
            if (put_value(t, f, c, &c->vals[i], b))
                return t->rc;
            /* a severity bucket already in the list (IN (95, 100) -> in (0)) */
            if (f->type == F_SEVERITY && b->data) {
                size_t vl = b->len - vstart;
                const char *val = b->data + vstart;
                for (const char *p = b->data + start; p < b->data + mark;) {
                    const char *e = memchr(p, ',', (size_t)(b->data + mark - p));
                    if (!e)
                        e = b->data + mark;
                    if ((size_t)(e - p) == vl && !memcmp(p, val, vl)) {
                        b->len = mark;
                        b->data[mark] = 0;
                        break;
                    }
                    p = e + 1;
                }
            }
        }
        return sf_buf_putc(b, ')');
    }
    sf_buf_appendf(b, "%s%s", f->field, sf_sp_op_name(op));
    return put_value(t, f, c, &c->vals[0], b);
}

/* prec: of the context (0 top, 1 inside OR, 2 inside AND); parentheses where a looser node
 * sits inside a tighter one. */
static int render_cmp(tr *t, const sf_sp_cmp *c, int prec, sf_buf *b)
{
    if (c->kind == SF_SP_TEST || c->kind == SF_SP_EXISTS)
        return render_test(t, c, b);
    int mine = c->kind == SF_SP_AND ? 2 : 1;
    bool paren = mine < prec;
    if (paren)
        sf_buf_putc(b, '(');
    if (render_cmp(t, c->l, mine, b))
        return t->rc;
    sf_buf_puts(b, c->kind == SF_SP_AND ? " and " : " or ");
    if (render_cmp(t, c->r, mine, b))
        return t->rc;
    if (paren)
        sf_buf_putc(b, ')');
    return sf_buf_error(b);
}

static int add_obs(tr *t, int64_t from, int64_t to, char *filter)
{
    if (t->nobs == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 4;
        struct obs *v = realloc(t->obs, ncap * sizeof *v);
        if (!v) {
            free(filter);
            return oom(t);
        }
        t->obs = v;
        t->cap = ncap;
    }
    t->obs[t->nobs++] = (struct obs){from, to, filter};
    return 0;
}

/* Walks the observation tree; win: the closest enclosing START/STOP (NULL: none). */
static int walk(tr *t, const sf_sp_obs *o, const sf_sp_qual *win)
{
    const sf_sp_qual *own = NULL;
    for (size_t i = 0; i < o->nquals; i++) {
        const sf_sp_qual *q = &o->quals[i];
        if (q->kind == SF_SP_Q_WITHIN)
            return fail(t, q->pos, "WITHIN is not supported: use START t'...' STOP t'...'");
        if (q->kind == SF_SP_Q_REPEATS)
            return fail(t, q->pos, "REPEATS is not supported: Sysdig queries cannot count");
        if (t->o->filter_only)
            return fail(t, q->pos,
                        "START/STOP is not allowed here: the daemon chooses its own time windows "
                        "(use translate-query for fixed windows)");
        if (own)
            return fail(t, q->pos, "a second START/STOP on the same observation");
        if (q->start_ns < 0)
            return fail(t, q->pos, "START is before 1970-01-01 (the API takes ns since then)");
        if (q->start_ns >= q->stop_ns)
            return fail(t, q->pos, "START must be before STOP");
        win = own = q;
    }
    switch (o->kind) {
    case SF_SP_FOLLOWEDBY:
        return fail(t, o->pos,
                    "FOLLOWEDBY is not supported: Sysdig queries cannot order observations");
    case SF_SP_OBS_GROUP:
        return walk(t, o->l, win);
    case SF_SP_OBS_AND: /* stix-shifter: each observation is fetched; the filters are OR-ed */
    case SF_SP_OBS_OR:
        if (walk(t, o->l, win))
            return t->rc;
        return walk(t, o->r, win);
    case SF_SP_OBS:
        break;
    }
    sf_buf b = {0};
    if (render_cmp(t, o->cmp, 0, &b)) {
        sf_buf_free(&b);
        return t->rc;
    }
    char *filter = sf_buf_steal(&b);
    if (!filter)
        return oom(t);
    int64_t from = 0, to = 0;
    if (win) {
        from = win->start_ns;
        to = win->stop_ns;
    } else if (!t->o->filter_only) {
        to = t->o->now_ns;
        from = to - t->o->default_range_ns;
    }
    return add_obs(t, from, to, filter);
}

static int add_query(tr *t, sf_sysdig_queries *out, int64_t from, int64_t to, const char *filter)
{
    sf_sysdig_query *v = realloc(out->v, (out->n + 1) * sizeof *v);
    if (!v)
        return oom(t);
    out->v = v;
    char *f = sf_strdup(filter);
    if (!f)
        return oom(t);
    out->v[out->n++] = (sf_sysdig_query){from, to, f};
    return 0;
}

/* Groups the observations by window (first appearance order), appends the guard, and splits
 * windows longer than the API allows. */
static int build(tr *t, sf_sysdig_queries *out)
{
    bool *done = calloc(t->nobs ? t->nobs : 1, sizeof *done);
    if (!done)
        return oom(t);
    sf_buf b = {0};
    for (size_t i = 0; i < t->nobs && !t->rc; i++) {
        if (done[i])
            continue;
        sf_buf_reset(&b);
        sf_buf_putc(&b, '(');
        for (size_t j = i; j < t->nobs; j++) {
            bool same = t->o->filter_only ||
                        (t->obs[j].from == t->obs[i].from && t->obs[j].to == t->obs[i].to);
            if (done[j] || !same)
                continue;
            if (j != i)
                sf_buf_puts(&b, " or ");
            sf_buf_puts(&b, t->obs[j].filter);
            done[j] = true;
        }
        sf_buf_puts(&b, ")" AUDIT_GUARD);
        if (sf_buf_error(&b)) {
            oom(t);
            break;
        }
        if (b.len > SF_SYSDIG_MAX_FILTER) {
            fail(t, 0, "the filter is %zu characters: the API takes at most %d", b.len,
                 SF_SYSDIG_MAX_FILTER);
            break;
        }
        int64_t from = t->obs[i].from, to = t->obs[i].to;
        if (t->o->filter_only) {
            add_query(t, out, 0, 0, b.data);
            continue;
        }
        /* consecutive windows of at most 14 days, each starting where the last ended */
        while (!t->rc && to - from > SF_SYSDIG_MAX_WINDOW_NS) {
            add_query(t, out, from, from + SF_SYSDIG_MAX_WINDOW_NS, b.data);
            from += SF_SYSDIG_MAX_WINDOW_NS;
        }
        if (!t->rc)
            add_query(t, out, from, to, b.data);
    }
    sf_buf_free(&b);
    free(done);
    return t->rc;
}

int sf_sysdig_translate(const sf_stix_pattern *p, const sf_sysdig_opts *o, sf_sysdig_queries *out,
                        sf_sp_error *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    tr t = {.o = o, .err = err};
    if (walk(&t, sf_stix_pattern_root(p), NULL) == 0)
        build(&t, out);
    for (size_t i = 0; i < t.nobs; i++)
        free(t.obs[i].filter);
    free(t.obs);
    if (t.rc)
        sf_sysdig_queries_free(out);
    return t.rc;
}

int sf_sysdig_translate_text(const char *pattern, const sf_sysdig_opts *o, sf_sysdig_queries *out,
                             sf_sp_error *err)
{
    memset(out, 0, sizeof *out);
    sf_stix_pattern *p;
    int rc = sf_stix_pattern_parse(pattern, strlen(pattern), &p, err);
    if (rc)
        return rc;
    rc = sf_sysdig_translate(p, o, out, err);
    sf_stix_pattern_free(p);
    return rc;
}

void sf_sysdig_queries_free(sf_sysdig_queries *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->v[i].filter);
    free(q->v);
    q->v = NULL;
    q->n = 0;
}

const char *sf_sysdig_field(size_t i, const char **object, const char **path)
{
    if (i >= SF_ARRAY_LEN(fields))
        return NULL;
    *object = fields[i].object;
    *path = fields[i].path;
    return fields[i].field;
}

int sf_sysdig_query_format(const sf_sysdig_query *q, sf_buf *out)
{
    return sf_buf_appendf(out, "from=%" PRId64 "&to=%" PRId64 "&filter=%s", q->from_ns, q->to_ns,
                          q->filter);
}
