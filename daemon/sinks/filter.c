/* filter: a sink's routing filter. See filter.h. */
#include "sinks/filter.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

typedef enum { PAT_EXACT, PAT_GLOB, PAT_REGEX } pat_kind;

typedef struct pattern {
    pat_kind kind;
    char *text; /* exact text or glob */
    regex_t re; /* PAT_REGEX */
} pattern;

typedef struct patlist { /* matches when any pattern matches; n == 0: key absent */
    pattern *v;
    size_t n;
} patlist;

typedef struct labelcond {
    char *key;
    patlist vals;
} labelcond;

/* the string keys, in the order of their fields below */
enum { K_POLICY, K_RULE, K_SOURCE, K_CATEGORY, K_ORIGINATOR, K_ZONES, K_NSTR };
static const char *const str_keys[K_NSTR] = {"policy",   "rule",       "source",
                                             "category", "originator", "zones"};

struct sf_filter {
    unsigned sev_mask; /* bit s: severity s passes; 0 with has_sev: nothing passes */
    bool has_sev;
    patlist str[K_NSTR];
    labelcond *labels;
    size_t nlabels;
    sf_filter *not_; /* the event must not match it */
};

static const char *const all_keys[] = {"severity",   "policy", "rule",  "source", "category",
                                       "originator", "labels", "zones", "not",    NULL};

/* ---- compiling ---- */

static void patlist_free(patlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].kind == PAT_REGEX)
            regfree(&l->v[i].re);
        free(l->v[i].text);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void sf_filter_free(sf_filter *f)
{
    if (!f)
        return;
    for (int k = 0; k < K_NSTR; k++)
        patlist_free(&f->str[k]);
    for (size_t i = 0; i < f->nlabels; i++) {
        free(f->labels[i].key);
        patlist_free(&f->labels[i].vals);
    }
    free(f->labels);
    sf_filter_free(f->not_);
    free(f);
}

/* A glob's brackets must close (fnmatch would silently treat the pattern as text otherwise). */
static bool glob_ok(const char *g)
{
    for (const char *p = g; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']')
                q++;
            if (!*q)
                return false;
            p = q;
        }
    }
    return true;
}

/* One pattern from a scalar. Returns 0, -1 (error added) or -ENOMEM. */
static int pattern_compile(const sf_cfg_node *n, const char *path, sf_cfg_errors *errs,
                           pattern *out)
{
    const char *s = n->value ? n->value : "";
    size_t len = strlen(s);
    memset(out, 0, sizeof *out);
    if (len >= 2 && s[0] == '/' && s[len - 1] == '/') {
        char *body = sf_strndup(s + 1, len - 2);
        if (!body)
            return -ENOMEM;
        int rc = regcomp(&out->re, body, REG_EXTENDED | REG_NOSUB);
        free(body);
        if (rc) {
            char msg[128];
            regerror(rc, &out->re, msg, sizeof msg);
            sf_cfg_error_key(errs, n->line, n->col, path, NULL,
                             "invalid regular expression %.*s: %s", SF_CFG_MAX_VALUE_SHOWN, s, msg);
            return -1;
        }
        out->kind = PAT_REGEX;
        return 0;
    }
    if (strpbrk(s, "*?[")) {
        if (!glob_ok(s)) {
            sf_cfg_error_key(errs, n->line, n->col, path, NULL,
                             "invalid glob \"%.*s\": '[' without a closing ']'",
                             SF_CFG_MAX_VALUE_SHOWN, s);
            return -1;
        }
        out->kind = PAT_GLOB;
    }
    return (out->text = sf_strdup(s)) ? 0 : -ENOMEM;
}

/* The items of a list, or the node itself as a list of one (held in one[0]). */
static const sf_cfg_node *const *items_of(const sf_cfg_node *n, const sf_cfg_node *one[1],
                                          size_t *cnt)
{
    if (n->kind == SF_NODE_SEQ) {
        *cnt = n->n;
        return (const sf_cfg_node *const *)n->items;
    }
    one[0] = n;
    *cnt = 1;
    return one;
}

/* A scalar or a non-empty list of scalars -> patterns. */
static int patlist_compile(const sf_cfg_node *n, const char *path, sf_cfg_errors *errs,
                           patlist *out)
{
    const sf_cfg_node *one[1];
    size_t cnt;
    const sf_cfg_node *const *items = items_of(n, one, &cnt);
    if (n->kind == SF_NODE_SEQ) {
        if (cnt == 0) {
            sf_cfg_error_key(errs, n->line, n->col, path, NULL,
                             "an empty list matches nothing: remove the key or name a value");
            return -1;
        }
    } else if (n->kind != SF_NODE_SCALAR || sf_cfg_is_null(n)) {
        sf_cfg_error_key(errs, n->line, n->col, path, NULL,
                         "expected a string or a list of strings, got %s",
                         sf_cfg_is_null(n) ? "null" : sf_cfg_kind_name(n->kind));
        return -1;
    }
    if (!(out->v = calloc(cnt, sizeof *out->v)))
        return -ENOMEM;
    int bad = 0;
    for (size_t i = 0; i < cnt; i++) {
        const sf_cfg_node *it = items[i];
        if (it->kind != SF_NODE_SCALAR || sf_cfg_is_null(it)) {
            sf_cfg_error_key(errs, it->line, it->col, path, NULL, "expected a string, got %s",
                             sf_cfg_is_null(it) ? "null" : sf_cfg_kind_name(it->kind));
            bad = -1;
            continue;
        }
        int rc = pattern_compile(it, path, errs, &out->v[out->n]);
        if (rc == -ENOMEM)
            return rc;
        if (rc)
            bad = -1;
        else
            out->n++;
    }
    return bad;
}

static int sev_word(const char *s, unsigned *mask)
{
    static const struct {
        const char *name;
        unsigned mask;
    } names[] = {{"high", 0x0f}, {"medium", 0x30}, {"low", 0x40}, {"info", 0x80}};
    for (size_t i = 0; i < SF_ARRAY_LEN(names); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *mask |= names[i].mask;
            return 0;
        }
    const char *dots = strstr(s, "..");
    char *end;
    if (dots) {
        long a = strtol(s, &end, 10);
        if (end != dots || end == s)
            return -1;
        long b = strtol(dots + 2, &end, 10);
        if (*end || end == dots + 2 || a < 0 || b > 7 || a > b)
            return -1;
        for (long v = a; v <= b; v++)
            *mask |= 1u << v;
        return 0;
    }
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > 7)
        return -1;
    *mask |= 1u << v;
    return 0;
}

static int severity_compile(const sf_cfg_node *n, const char *path, sf_cfg_errors *errs,
                            sf_filter *f)
{
    const sf_cfg_node *one[1];
    size_t cnt;
    const sf_cfg_node *const *items = items_of(n, one, &cnt);
    if (cnt == 0 || n->kind == SF_NODE_MAP || sf_cfg_is_null(n)) {
        sf_cfg_error_key(errs, n->line, n->col, path, NULL,
                         "expected a severity or a non-empty list of them");
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < cnt; i++) {
        const sf_cfg_node *it = items[i];
        if (it->kind != SF_NODE_SCALAR || sev_word(it->value ? it->value : "", &f->sev_mask)) {
            sf_cfg_error_key(errs, it->line, it->col, path, NULL,
                             "invalid severity \"%.*s\": expected high (0..3), medium (4..5), low "
                             "(6), info (7), a number 0..7 or a range \"A..B\"",
                             SF_CFG_MAX_VALUE_SHOWN,
                             it->kind == SF_NODE_SCALAR && it->value ? it->value : "");
            bad = -1;
        }
    }
    f->has_sev = true;
    return bad;
}

static int labels_compile(const sf_cfg_node *n, const char *path, sf_cfg_errors *errs, sf_filter *f)
{
    if (n->kind != SF_NODE_MAP || n->n == 0) {
        sf_cfg_error_key(errs, n->line, n->col, path, NULL,
                         "expected a non-empty map of label name -> value(s), got %s",
                         n->kind == SF_NODE_MAP ? "an empty map" : sf_cfg_kind_name(n->kind));
        return -1;
    }
    if (!(f->labels = calloc(n->n, sizeof *f->labels)))
        return -ENOMEM;
    int bad = 0;
    for (size_t i = 0; i < n->n; i++) {
        char *sub = sf_cfg_join_path(path, n->keys[i]);
        if (!sub)
            return -ENOMEM;
        labelcond *c = &f->labels[f->nlabels++];
        c->key = sf_strdup(n->keys[i]);
        int rc = c->key ? patlist_compile(n->items[i], sub, errs, &c->vals) : -ENOMEM;
        free(sub);
        if (rc == -ENOMEM)
            return rc;
        if (rc)
            bad = -1;
    }
    return bad;
}

static int compile_map(const sf_cfg_node *node, const char *path, sf_cfg_errors *errs,
                       sf_filter **out)
{
    *out = NULL;
    if (node->kind != SF_NODE_MAP) {
        sf_cfg_error_key(errs, node->line, node->col, path, NULL,
                         "expected a map (severity, policy, rule, source, category, originator, "
                         "labels, zones, not), got %s",
                         sf_cfg_kind_name(node->kind));
        return -1;
    }
    sf_filter *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    int bad = 0, rc = 0;
    for (size_t i = 0; i < node->n && rc != -ENOMEM; i++) {
        const char *key = node->keys[i];
        const sf_cfg_node *v = node->items[i];
        char *sub = sf_cfg_join_path(path, key);
        if (!sub) {
            rc = -ENOMEM;
            break;
        }
        int k = 0;
        while (k < K_NSTR && strcmp(key, str_keys[k]) != 0)
            k++;
        if (k < K_NSTR) {
            rc = patlist_compile(v, sub, errs, &f->str[k]);
        } else if (strcmp(key, "severity") == 0) {
            rc = severity_compile(v, sub, errs, f);
        } else if (strcmp(key, "labels") == 0) {
            rc = labels_compile(v, sub, errs, f);
        } else if (strcmp(key, "not") == 0) {
            rc = compile_map(v, sub, errs, &f->not_);
        } else {
            const char *hint = sf_cfg_suggest(key, all_keys);
            char valid[160] = "";
            for (size_t j = 0, off = 0; all_keys[j] && off < sizeof valid; j++)
                off += (size_t)snprintf(valid + off, sizeof valid - off, "%s%s", j ? ", " : "",
                                        all_keys[j]);
            sf_cfg_error_key(errs, node->key_line[i], node->key_col[i], path, NULL,
                             "unknown key '%s'%s%s%s (valid: %s)", key,
                             hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "",
                             valid);
            rc = -1;
        }
        free(sub);
        if (rc)
            bad = -1;
    }
    if (rc == -ENOMEM) {
        sf_filter_free(f);
        return rc;
    }
    *out = f;
    return bad;
}

int sf_filter_compile(const sf_cfg_node *node, const char *path, sf_cfg_errors *errs,
                      sf_filter **out)
{
    *out = NULL;
    if (!node || sf_cfg_is_null(node))
        return 0;
    sf_filter *f;
    int rc = compile_map(node, path, errs, &f);
    if (rc) {
        sf_filter_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* ---- matching ---- */

static bool pat_match(const pattern *p, const char *s)
{
    switch (p->kind) {
    case PAT_REGEX:
        return regexec(&p->re, s, 0, NULL, 0) == 0;
    case PAT_GLOB:
        return fnmatch(p->text, s, 0) == 0;
    default:
        return strcmp(p->text, s) == 0;
    }
}

static bool list_match(const patlist *l, const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (pat_match(&l->v[i], s))
            return true;
    return false;
}

/* A zone's id (number or string) or name, as text. */
static bool zone_value_match(const patlist *l, const cJSON *v)
{
    if (cJSON_IsString(v))
        return list_match(l, v->valuestring);
    if (cJSON_IsNumber(v) && v->valuedouble > -1e15 && v->valuedouble < 1e15) {
        char num[32];
        snprintf(num, sizeof num, "%" PRId64, (int64_t)v->valuedouble);
        return list_match(l, num);
    }
    return false;
}

/* The event's "zones": a list of ids, names, or objects with id/zoneId/name/zoneName (the API
 * reference does not document the field; every shape is accepted). */
static bool zones_match(const patlist *l, const sf_event *ev)
{
    const cJSON *zs = sf_event_get(ev, "zones");
    const cJSON *z;
    if (!cJSON_IsArray(zs))
        return zone_value_match(l, zs);
    cJSON_ArrayForEach(z, zs)
    {
        if (!cJSON_IsObject(z)) {
            if (zone_value_match(l, z))
                return true;
            continue;
        }
        static const char *const keys[] = {"id", "zoneId", "name", "zoneName"};
        for (size_t i = 0; i < SF_ARRAY_LEN(keys); i++)
            if (zone_value_match(l, cJSON_GetObjectItemCaseSensitive(z, keys[i])))
                return true;
    }
    return false;
}

static const char *rule_name(const sf_event *ev)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sf_event_get(ev, "content"), "ruleName");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool sf_filter_match(const sf_filter *f, const sf_event *ev)
{
    if (!f)
        return true;
    if (f->has_sev) {
        int s = sf_event_severity07(ev);
        if (s < 0 || !(f->sev_mask & (1u << s)))
            return false;
    }
    static const char *const fields[K_NSTR] = {"name",     NULL,         "source",
                                               "category", "originator", NULL};
    for (int k = 0; k < K_NSTR; k++) {
        const patlist *l = &f->str[k];
        if (!l->n)
            continue;
        bool ok = k == K_RULE    ? list_match(l, rule_name(ev))
                  : k == K_ZONES ? zones_match(l, ev)
                                 : list_match(l, sf_event_str(ev, fields[k]));
        if (!ok)
            return false;
    }
    for (size_t i = 0; i < f->nlabels; i++)
        if (!list_match(&f->labels[i].vals, sf_event_label(ev, f->labels[i].key)))
            return false;
    return !f->not_ || !sf_filter_match(f->not_, ev);
}
