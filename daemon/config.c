/* config: YAML (libyaml event API) -> sf_cfg_node tree -> typed structs via option tables. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "format.h"
#include "log.h"
#include "sink.h"
#include "util.h"

#define MAX_DEPTH 64
#define MAX_VALUE_SHOWN 80

/* ------------------------------------------------------------------------------------------ */
/* errors                                                                                     */

/* Messages never contain a registered secret, whatever option the value was given to. */
static char *redact(char *msg)
{
    sf_buf r = {0};
    if (!msg)
        return NULL;
    if (sf_log_redact(msg, &r)) {
        sf_buf_free(&r);
        free(msg);
        return NULL;
    }
    free(msg);
    return sf_buf_steal(&r);
}

static void errors_push(sf_cfg_errors *e, char *msg)
{
    msg = redact(msg);
    char **v = realloc(e->msgs, (e->n + 1) * sizeof *v);
    if (!v || !msg) {
        /* Losing an error could turn an invalid configuration into an accepted one. */
        static const char oom[] = "sysdig-forwarder: out of memory while reporting errors\n";
        (void)!write(STDERR_FILENO, oom, sizeof oom - 1);
        abort();
    }
    e->msgs = v;
    e->msgs[e->n++] = msg;
}

static void verror(sf_cfg_errors *e, int line, int col, const char *path, const char *key,
                   const char *fmt, va_list ap) SF_PRINTF(6, 0);
static void verror(sf_cfg_errors *e, int line, int col, const char *path, const char *key,
                   const char *fmt, va_list ap)
{
    sf_buf b = {0};
    const char *file = e->file ? e->file : "<config>";
    int rc;
    if (line > 0)
        rc = sf_buf_appendf(&b, "%s:%d:%d: ", file, line, col > 0 ? col : 1);
    else
        rc = sf_buf_appendf(&b, "%s: ", file);
    if (!rc && path && *path)
        rc = sf_buf_appendf(&b, "%s%s", path, key ? "." : ": ");
    if (!rc && key)
        rc = sf_buf_appendf(&b, "%s: ", key);
    if (!rc)
        rc = sf_buf_vappendf(&b, fmt, ap);
    errors_push(e, rc ? NULL : sf_buf_steal(&b));
    if (rc)
        sf_buf_free(&b);
}

void sf_cfg_error(sf_cfg_errors *e, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(e, line, col, NULL, NULL, fmt, ap);
    va_end(ap);
}

/* "FILE:LINE:COL: path.key: message" */
static void SF_PRINTF(6, 7) perror_at(sf_cfg_errors *e, int line, int col, const char *path,
                                      const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(e, line, col, path, key, fmt, ap);
    va_end(ap);
}

void sf_cfg_errors_free(sf_cfg_errors *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    e->msgs = NULL;
    e->n = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* node tree                                                                                  */

const sf_cfg_node *sf_cfg_map_get(const sf_cfg_node *map, const char *key)
{
    if (!map || map->kind != SF_NODE_MAP || !key)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

void sf_cfg_node_free(sf_cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            free(n->keys[i]);
        sf_cfg_node_free(n->items[i]);
    }
    free(n->keys);
    free(n->key_line);
    free(n->key_col);
    free(n->items);
    free(n->value);
    free(n);
}

static sf_cfg_node *node_new(sf_node_kind kind, const yaml_mark_t *m)
{
    sf_cfg_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

/* Appends item (and key, taken over, for maps). 0 or -ENOMEM (nothing taken then). */
static int node_append(sf_cfg_node *n, char *key, int kline, int kcol, sf_cfg_node *item)
{
    sf_cfg_node **items = realloc(n->items, (n->n + 1) * sizeof *items);
    if (!items)
        return -ENOMEM;
    n->items = items;
    if (n->kind == SF_NODE_MAP) {
        char **keys = realloc(n->keys, (n->n + 1) * sizeof *keys);
        if (!keys)
            return -ENOMEM;
        n->keys = keys;
        int *kl = realloc(n->key_line, (n->n + 1) * sizeof *kl);
        if (!kl)
            return -ENOMEM;
        n->key_line = kl;
        int *kc = realloc(n->key_col, (n->n + 1) * sizeof *kc);
        if (!kc)
            return -ENOMEM;
        n->key_col = kc;
        n->keys[n->n] = key;
        n->key_line[n->n] = kline;
        n->key_col[n->n] = kcol;
    }
    n->items[n->n++] = item;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* YAML parsing                                                                               */

typedef struct yparse {
    yaml_parser_t parser;
    sf_cfg_errors *errs;
    int nerr;   /* semantic errors (aliases, variables...): parsing continues */
    bool fatal; /* syntax error / OOM: parsing stops */
} yparse;

static void syntax_error(yparse *p)
{
    yaml_parser_t *ps = &p->parser;
    const char *problem = ps->problem ? ps->problem : "unknown error";
    int line = (int)ps->problem_mark.line + 1, col = (int)ps->problem_mark.column + 1;
    if (ps->error == YAML_MEMORY_ERROR) {
        sf_cfg_error(p->errs, 0, 0, "out of memory while parsing YAML");
    } else if (ps->error == YAML_READER_ERROR) {
        sf_cfg_error(p->errs, 0, 0, "YAML error: %s at byte offset %zu", problem,
                     ps->problem_offset);
    } else if (ps->context) {
        sf_cfg_error(p->errs, line, col, "YAML syntax error: %s (%s at line %d, column %d)",
                     problem, ps->context, (int)ps->context_mark.line + 1,
                     (int)ps->context_mark.column + 1);
    } else {
        sf_cfg_error(p->errs, line, col, "YAML syntax error: %s", problem);
    }
    p->fatal = true;
}

static int next_event(yparse *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->parser, ev)) {
        syntax_error(p);
        return -1;
    }
    return 0;
}

static bool valid_var_char(char c, bool first)
{
    return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

/* Expands ${VAR}, ${VAR:-default} and $$ in a scalar. Returns 0, -1 (error added) or -ENOMEM. */
static int expand_vars(yparse *p, const char *s, size_t len, int line, int col, char **out)
{
    sf_buf b = {0};
    int rc = 0;
    size_t i = 0;
    while (i < len && !rc) {
        if (s[i] != '$' || i + 1 >= len) {
            rc = sf_buf_putc(&b, s[i++]);
            continue;
        }
        if (s[i + 1] == '$') {
            rc = sf_buf_putc(&b, '$');
            i += 2;
            continue;
        }
        if (s[i + 1] != '{') {
            rc = sf_buf_putc(&b, s[i++]);
            continue;
        }
        size_t start = i + 2, j = start;
        while (j < len && s[j] != '}')
            j++;
        if (j >= len) {
            sf_cfg_error(p->errs, line, col, "unterminated ${ in value (use $$ for a literal $)");
            rc = -1;
            break;
        }
        /* s[start..j) is NAME or NAME:-default */
        size_t nend = start;
        while (nend < j && valid_var_char(s[nend], nend == start))
            nend++;
        bool has_def = nend + 1 < j + 1 && nend + 2 <= j && s[nend] == ':' && s[nend + 1] == '-';
        if (nend == start || (nend != j && !has_def)) {
            sf_cfg_error(p->errs, line, col,
                         "invalid variable reference '${%.*s}' (expected ${NAME} or "
                         "${NAME:-default})",
                         (int)(j - start > 64 ? 64 : j - start), s + start);
            rc = -1;
            break;
        }
        char name[256];
        if (nend - start >= sizeof name) {
            sf_cfg_error(p->errs, line, col, "variable name too long");
            rc = -1;
            break;
        }
        memcpy(name, s + start, nend - start);
        name[nend - start] = '\0';
        const char *val = getenv(name);
        if (has_def && (!val || !*val)) {
            rc = sf_buf_append(&b, s + nend + 2, j - (nend + 2));
        } else if (!val) {
            sf_cfg_error(p->errs, line, col, "environment variable %s is not set", name);
            rc = -1;
            break;
        } else {
            rc = sf_buf_puts(&b, val);
        }
        i = j + 1;
    }
    /* append "" so an empty result is NUL-terminated before it is stolen */
    if (!rc && (sf_buf_append(&b, "", 0) || !(*out = sf_buf_steal(&b))))
        rc = -ENOMEM;
    sf_buf_free(&b);
    return rc;
}

static sf_cfg_node *build_node(yparse *p, yaml_event_t *ev, int depth);

static void reject_anchor(yparse *p, const yaml_char_t *anchor, const yaml_mark_t *m)
{
    if (!anchor)
        return;
    sf_cfg_error(p->errs, (int)m->line + 1, (int)m->column + 1,
                 "YAML anchors (&%s) are not supported", (const char *)anchor);
    p->nerr++;
}

/* Builds the node starting with *ev (consumed). NULL on fatal error. */
static sf_cfg_node *build_node(yparse *p, yaml_event_t *ev, int depth)
{
    sf_cfg_node *n = NULL;
    yaml_event_t sub;
    if (depth > MAX_DEPTH) {
        sf_cfg_error(p->errs, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                     "nesting deeper than %d levels", MAX_DEPTH);
        p->fatal = true;
        goto out;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        sf_cfg_error(p->errs, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                     "YAML aliases (*%s) are not supported", (const char *)ev->data.alias.anchor);
        p->nerr++;
        /* placeholder so the rest of the document is still checked */
        if (!(n = node_new(SF_NODE_SCALAR, &ev->start_mark)) || !(n->value = sf_strdup(""))) {
            sf_cfg_node_free(n);
            n = NULL;
            goto oom;
        }
        break;
    case YAML_SCALAR_EVENT: {
        reject_anchor(p, ev->data.scalar.anchor, &ev->start_mark);
        if (!(n = node_new(SF_NODE_SCALAR, &ev->start_mark)))
            goto oom;
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        int rc = expand_vars(p, (const char *)ev->data.scalar.value, ev->data.scalar.length,
                             n->line, n->col, &n->value);
        if (rc == -ENOMEM) {
            sf_cfg_node_free(n);
            n = NULL;
            goto oom;
        }
        if (rc) {
            p->nerr++;
            if (!(n->value = sf_strdup(""))) {
                sf_cfg_node_free(n);
                n = NULL;
                goto oom;
            }
        }
        break;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool is_map = ev->type == YAML_MAPPING_START_EVENT;
        reject_anchor(p, is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor,
                      &ev->start_mark);
        if (!(n = node_new(is_map ? SF_NODE_MAP : SF_NODE_SEQ, &ev->start_mark)))
            goto oom;
        for (;;) {
            if (next_event(p, &sub))
                goto fail;
            if (sub.type == (is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
                yaml_event_delete(&sub);
                break;
            }
            sf_cfg_node *key = NULL;
            if (is_map) {
                key = build_node(p, &sub, depth + 1);
                if (!key)
                    goto fail;
                if (key->kind != SF_NODE_SCALAR) {
                    sf_cfg_error(p->errs, key->line, key->col, "mapping keys must be scalars");
                    p->nerr++;
                } else if (sf_cfg_map_get(n, key->value)) {
                    sf_cfg_error(p->errs, key->line, key->col, "duplicate key '%s'", key->value);
                    p->nerr++;
                }
                if (next_event(p, &sub)) {
                    sf_cfg_node_free(key);
                    goto fail;
                }
            }
            sf_cfg_node *item = build_node(p, &sub, depth + 1);
            if (!item) {
                sf_cfg_node_free(key);
                goto fail;
            }
            char *kstr = NULL;
            if (key && !(kstr = key->kind == SF_NODE_SCALAR ? key->value : sf_strdup(""))) {
                sf_cfg_node_free(key);
                sf_cfg_node_free(item);
                goto fail_oom;
            }
            int kl = key ? key->line : 0, kc = key ? key->col : 0;
            if (key && key->kind == SF_NODE_SCALAR)
                key->value = NULL; /* taken */
            sf_cfg_node_free(key);
            if (node_append(n, kstr, kl, kc, item)) {
                free(kstr);
                sf_cfg_node_free(item);
                goto fail_oom;
            }
        }
        break;
    }
    default:
        sf_cfg_error(p->errs, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                     "unexpected YAML event");
        p->fatal = true;
        goto out;
    }
out:
    yaml_event_delete(ev);
    return n;
fail_oom:
    sf_cfg_error(p->errs, 0, 0, "out of memory while parsing configuration");
    p->fatal = true;
fail:
    sf_cfg_node_free(n);
    n = NULL;
    goto out;
oom:
    sf_cfg_error(p->errs, 0, 0, "out of memory while parsing configuration");
    p->fatal = true;
    goto out;
}

sf_cfg_node *sf_cfg_parse_yaml(const char *text, size_t len, sf_cfg_errors *errs)
{
    yparse p = {.errs = errs};
    sf_cfg_node *root = NULL;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&p.parser)) {
        sf_cfg_error(errs, 0, 0, "out of memory while parsing configuration");
        return NULL;
    }
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, len);
    bool in_doc = false;
    for (;;) {
        if (next_event(&p, &ev))
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT) {
            in_doc = false;
            yaml_event_delete(&ev);
            continue;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            if (root) {
                sf_cfg_error(errs, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                             "only one YAML document is allowed");
                p.nerr++;
                yaml_event_delete(&ev);
                break;
            }
            in_doc = true;
            yaml_event_delete(&ev);
            continue;
        }
        (void)in_doc;
        sf_cfg_node *n = build_node(&p, &ev, 0);
        if (!n)
            break;
        root = n;
    }
    yaml_parser_delete(&p.parser);
    if (!p.fatal && !p.nerr && !root) {
        sf_cfg_error(errs, 0, 0, "configuration is empty");
        p.nerr++;
    }
    if (p.fatal || p.nerr) {
        sf_cfg_node_free(root);
        return NULL;
    }
    return root;
}

/* ------------------------------------------------------------------------------------------ */
/* option tables: apply                                                                       */

#define FIELD(st, o, T) ((T *)(void *)((char *)(st) + (o)->offset))

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

static bool is_null_node(const sf_cfg_node *n)
{
    return n && n->kind == SF_NODE_SCALAR && !n->quoted &&
           (n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0);
}

static const char *kind_name(sf_node_kind k)
{
    return k == SF_NODE_MAP ? "a map" : k == SF_NODE_SEQ ? "a list" : "a scalar";
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static void enum_list(const char *const *vals, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; vals && vals[i] && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", vals[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

static bool ranged(const sf_cfg_option *o)
{
    return o->min != 0 || o->max != 0;
}

/* Upper bound: a table giving only min (max 0) means "no upper bound". */
static int64_t omax(const sf_cfg_option *o)
{
    return o->max == 0 && o->min != 0 ? INT64_MAX : o->max;
}

/* Context for error messages about one value. */
typedef struct vctx {
    sf_cfg_errors *errs;
    const char *path;
    const char *key;
    const sf_cfg_option *o;
    int line, col;
} vctx;

#define VERR(c, ...) perror_at((c)->errs, (c)->line, (c)->col, (c)->path, (c)->key, __VA_ARGS__)

/* "…, got "abc"" for non-secret values; nothing for secrets. */
static void bad_value(const vctx *c, const char *what, const char *s)
{
    if (c->o->flags & SF_OPT_SECRET)
        VERR(c, "invalid value (expected %s)", what);
    else
        VERR(c, "expected %s, got \"%.*s\"", what, MAX_VALUE_SHOWN, s);
}

static int check_int_range(const vctx *c, int64_t v)
{
    const sf_cfg_option *o = c->o;
    if (ranged(o) && (v < o->min || v > omax(o))) {
        if (omax(o) == INT64_MAX)
            VERR(c, "must be at least %lld", (long long)o->min);
        else
            VERR(c, "must be between %lld and %lld", (long long)o->min, (long long)omax(o));
        return -1;
    }
    return 0;
}

/* Parses a scalar string into the field. 0 or -1 (error reported) or -ENOMEM. */
static int set_scalar(const vctx *c, const char *s, void *st)
{
    const sf_cfg_option *o = c->o;
    switch (o->type) {
    case SF_OPT_STR: {
        size_t l = strlen(s);
        if (ranged(o) && ((int64_t)l < o->min || (int64_t)l > omax(o))) {
            VERR(c, "length must be between %lld and %lld characters", (long long)o->min,
                 (long long)omax(o));
            return -1;
        }
        char *v = sf_strdup(s);
        if (!v)
            return -ENOMEM;
        char **f = FIELD(st, o, char *);
        free(*f);
        *f = v;
        if ((o->flags & SF_OPT_SECRET) && sf_log_add_secret(v))
            return -ENOMEM;
        return 0;
    }
    case SF_OPT_INT: {
        int64_t v;
        int rc = sf_parse_int64(s, strlen(s), &v);
        if (rc == -ERANGE) {
            VERR(c, "integer out of range");
            return -1;
        }
        if (rc) {
            bad_value(c, "an integer", s);
            return -1;
        }
        if (check_int_range(c, v))
            return -1;
        *FIELD(st, o, int64_t) = v;
        return 0;
    }
    case SF_OPT_BOOL: {
        bool v;
        if (parse_bool(s, &v)) {
            bad_value(c, "a boolean (true/false)", s);
            return -1;
        }
        *FIELD(st, o, bool) = v;
        return 0;
    }
    case SF_OPT_DURATION: {
        int64_t v;
        int rc = sf_parse_duration_ms(s, &v);
        if (rc == -ERANGE) {
            VERR(c, "duration too large");
            return -1;
        }
        if (rc) {
            bad_value(c, "a duration such as 500ms, 10s, 5m, 1h, 7d", s);
            return -1;
        }
        if (ranged(o) && (v < o->min || v > omax(o))) {
            char a[32], b[32];
            sf_format_duration(o->min, a, sizeof a);
            sf_format_duration(omax(o), b, sizeof b);
            if (omax(o) == INT64_MAX)
                VERR(c, "must be at least %s", a);
            else
                VERR(c, "must be between %s and %s", a, b);
            return -1;
        }
        *FIELD(st, o, int64_t) = v;
        return 0;
    }
    case SF_OPT_SIZE: {
        uint64_t v;
        int rc = sf_parse_size(s, &v);
        if (rc == -ERANGE) {
            VERR(c, "size too large");
            return -1;
        }
        if (rc) {
            bad_value(c, "a size such as 512, 64KiB, 100MiB, 1GiB", s);
            return -1;
        }
        if (ranged(o) && (v < (uint64_t)o->min || v > (uint64_t)omax(o))) {
            VERR(c, "must be between %lld and %lld bytes", (long long)o->min, (long long)omax(o));
            return -1;
        }
        *FIELD(st, o, uint64_t) = v;
        return 0;
    }
    case SF_OPT_ENUM: {
        for (int i = 0; o->enum_values && o->enum_values[i]; i++) {
            if (strcmp(o->enum_values[i], s) == 0) {
                *FIELD(st, o, int) = i;
                return 0;
            }
        }
        char allowed[256];
        enum_list(o->enum_values, allowed, sizeof allowed);
        if (o->flags & SF_OPT_SECRET)
            VERR(c, "invalid value (allowed: %s)", allowed);
        else
            VERR(c, "invalid value \"%.*s\" (allowed: %s)", MAX_VALUE_SHOWN, s, allowed);
        return -1;
    }
    default:
        return -1;
    }
}

static int append_str(sf_strlist *l, const char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    l->v = v;
    if (!(l->v[l->n] = sf_strdup(s)))
        return -ENOMEM;
    l->n++;
    return 0;
}

static void free_strlist(sf_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void free_kvlist(sf_kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->k[i]);
        free(l->v[i]);
    }
    free(l->k);
    free(l->v);
    l->k = l->v = NULL;
    l->n = 0;
}

static int apply_tables(const sf_cfg_node *map, int pline, int pcol, const char *path,
                        const sf_cfg_option *const *tables, void *const *structs, size_t ntables,
                        bool check_unknown, sf_cfg_errors *errs);

static char *join_path(const char *path, const char *key)
{
    sf_buf b = {0};
    if (path && *path ? sf_buf_appendf(&b, "%s.%s", path, key) : sf_buf_puts(&b, key)) {
        sf_buf_free(&b);
        return NULL;
    }
    return sf_buf_steal(&b);
}

/* Applies one option: node (may be NULL: default). Returns 0, -1 (error reported), -ENOMEM. */
static int apply_option(const sf_cfg_option *o, const sf_cfg_node *node, int kline, int kcol,
                        int pline, int pcol, const char *path, void *st, sf_cfg_errors *errs)
{
    vctx c = {errs, path, o->name, o, node ? node->line : pline, node ? node->col : pcol};
    int rc = 0;
    if (o->type == SF_OPT_SECTION) {
        if (node && !is_null_node(node) && node->kind != SF_NODE_MAP) {
            VERR(&c, "expected a map, got %s", kind_name(node->kind));
            return -1;
        }
        if (node && (o->flags & SF_OPT_ISSET))
            *(bool *)((char *)st + o->isset_offset) = true;
        char *sub = join_path(path, o->name);
        if (!sub)
            return -ENOMEM;
        const sf_cfg_option *t[1] = {o->sub};
        void *s[1] = {st};
        const sf_cfg_node *m = is_null_node(node) ? NULL : node;
        int n = apply_tables(m, m ? m->line : (node ? kline : pline),
                             m ? m->col : (node ? kcol : pcol), sub, t, s, 1, true, errs);
        free(sub);
        return n < 0 ? n : n > 0 ? -1 : 0;
    }
    if (is_null_node(node) && o->type != SF_OPT_NODE) {
        /* "key:" with no value: as if absent, but report a missing value where it is */
        if (o->flags & SF_OPT_REQUIRED) {
            c.line = kline;
            c.col = kcol;
            VERR(&c, "a value is required");
            return -1;
        }
        node = NULL;
    }
    if (!node) {
        if (o->flags & SF_OPT_REQUIRED) {
            c.line = pline;
            c.col = pcol;
            VERR(&c, "missing required key");
            return -1;
        }
        if (!o->def)
            return 0;
        switch (o->type) {
        case SF_OPT_STR:
        case SF_OPT_INT:
        case SF_OPT_BOOL:
        case SF_OPT_DURATION:
        case SF_OPT_SIZE:
        case SF_OPT_ENUM:
            rc = set_scalar(&c, o->def, st);
            if (rc == -1)
                VERR(&c, "internal error: invalid default");
            return rc;
        default:
            return 0;
        }
    }
    if (o->flags & SF_OPT_ISSET)
        *(bool *)((char *)st + o->isset_offset) = true;
    switch (o->type) {
    case SF_OPT_STR:
    case SF_OPT_INT:
    case SF_OPT_BOOL:
    case SF_OPT_DURATION:
    case SF_OPT_SIZE:
    case SF_OPT_ENUM:
        if (node->kind != SF_NODE_SCALAR) {
            VERR(&c, "expected a scalar value, got %s", kind_name(node->kind));
            return -1;
        }
        return set_scalar(&c, node->value, st);
    case SF_OPT_STRLIST:
    case SF_OPT_INTLIST: {
        if (node->kind != SF_NODE_SEQ) {
            VERR(&c, "expected a list, got %s", kind_name(node->kind));
            return -1;
        }
        int bad = 0;
        for (size_t i = 0; i < node->n; i++) {
            const sf_cfg_node *it = node->items[i];
            vctx ic = c;
            ic.line = it->line;
            ic.col = it->col;
            if (it->kind != SF_NODE_SCALAR) {
                VERR(&ic, "item %zu: expected a scalar, got %s", i, kind_name(it->kind));
                bad++;
                continue;
            }
            if (o->type == SF_OPT_STRLIST) {
                if (append_str(FIELD(st, o, sf_strlist), it->value))
                    return -ENOMEM;
                if ((o->flags & SF_OPT_SECRET) && sf_log_add_secret(it->value))
                    return -ENOMEM;
                continue;
            }
            int64_t v;
            int prc = sf_parse_int64(it->value, strlen(it->value), &v);
            if (prc) {
                if (o->flags & SF_OPT_SECRET)
                    VERR(&ic, "item %zu: invalid value (expected an integer)", i);
                else
                    VERR(&ic, "item %zu: expected an integer, got \"%.*s\"", i, MAX_VALUE_SHOWN,
                         it->value);
                bad++;
                continue;
            }
            if (check_int_range(&ic, v)) {
                bad++;
                continue;
            }
            sf_intlist *l = FIELD(st, o, sf_intlist);
            int64_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
            if (!nv)
                return -ENOMEM;
            l->v = nv;
            l->v[l->n++] = v;
        }
        return bad ? -1 : 0;
    }
    case SF_OPT_KVLIST: {
        if (node->kind != SF_NODE_MAP) {
            VERR(&c, "expected a map, got %s", kind_name(node->kind));
            return -1;
        }
        sf_kvlist *l = FIELD(st, o, sf_kvlist);
        int bad = 0;
        for (size_t i = 0; i < node->n; i++) {
            const sf_cfg_node *it = node->items[i];
            if (it->kind != SF_NODE_SCALAR) {
                perror_at(errs, it->line, it->col, path, o->name, "%s: expected a scalar, got %s",
                          node->keys[i], kind_name(it->kind));
                bad++;
                continue;
            }
            char **k = realloc(l->k, (l->n + 1) * sizeof *k);
            if (!k)
                return -ENOMEM;
            l->k = k;
            char **v = realloc(l->v, (l->n + 1) * sizeof *v);
            if (!v)
                return -ENOMEM;
            l->v = v;
            char *ks = sf_strdup(node->keys[i]), *vs = sf_strdup(it->value);
            if (!ks || !vs) {
                free(ks);
                free(vs);
                return -ENOMEM;
            }
            l->k[l->n] = ks;
            l->v[l->n++] = vs;
            if ((o->flags & SF_OPT_SECRET) && sf_log_add_secret(vs))
                return -ENOMEM;
        }
        return bad ? -1 : 0;
    }
    case SF_OPT_NODE:
        *FIELD(st, o, const sf_cfg_node *) = is_null_node(node) ? NULL : node;
        return 0;
    default:
        return -1;
    }
}

/* Returns number of errors added, or -ENOMEM. */
static int apply_tables(const sf_cfg_node *map, int pline, int pcol, const char *path,
                        const sf_cfg_option *const *tables, void *const *structs, size_t ntables,
                        bool check_unknown, sf_cfg_errors *errs)
{
    size_t before = errs->n;
    if (map && map->kind != SF_NODE_MAP) {
        perror_at(errs, map->line, map->col, path, NULL, "expected a map, got %s",
                  kind_name(map->kind));
        return (int)(errs->n - before);
    }
    for (size_t t = 0; t < ntables; t++) {
        for (const sf_cfg_option *o = tables[t]; o && o->name; o++) {
            const sf_cfg_node *node = NULL;
            int kl = pline, kc = pcol;
            for (size_t i = 0; map && i < map->n; i++) {
                if (strcmp(map->keys[i], o->name) == 0) {
                    node = map->items[i];
                    kl = map->key_line[i];
                    kc = map->key_col[i];
                    break;
                }
            }
            int rc = apply_option(o, node, kl, kc, pline, pcol, path, structs[t], errs);
            if (rc == -ENOMEM) {
                sf_cfg_error(errs, 0, 0, "out of memory");
                return -ENOMEM;
            }
        }
    }
    for (size_t i = 0; check_unknown && map && i < map->n; i++) {
        const char *k = map->keys[i];
        bool found = false;
        const char *best = NULL;
        size_t bestd = 3;
        for (size_t t = 0; t < ntables && !found; t++) {
            for (const sf_cfg_option *o = tables[t]; o && o->name; o++) {
                if (strcmp(o->name, k) == 0) {
                    found = true;
                    break;
                }
                size_t d = edit_distance(k, o->name);
                if (d < bestd) {
                    bestd = d;
                    best = o->name;
                }
            }
        }
        if (found)
            continue;
        if (best)
            perror_at(errs, map->key_line[i], map->key_col[i], path, NULL,
                      "unknown key '%s' (did you mean '%s'?)", k, best);
        else
            perror_at(errs, map->key_line[i], map->key_col[i], path, NULL, "unknown key '%s'", k);
    }
    return (int)(errs->n - before);
}

int sf_cfg_apply(const sf_cfg_node *map, const char *path, const sf_cfg_option *const *tables,
                 void *const *structs, size_t ntables, sf_cfg_errors *errs)
{
    int line = map ? map->line : 0, col = map ? map->col : 0;
    int rc = apply_tables(map, line, col, path, tables, structs, ntables, true, errs);
    return rc < 0 ? 1 : rc;
}

void sf_cfg_free_struct(const sf_cfg_option *table, void *st)
{
    if (!st)
        return;
    for (const sf_cfg_option *o = table; o && o->name; o++) {
        switch (o->type) {
        case SF_OPT_STR: {
            char **f = FIELD(st, o, char *);
            free(*f);
            *f = NULL;
            break;
        }
        case SF_OPT_STRLIST:
            free_strlist(FIELD(st, o, sf_strlist));
            break;
        case SF_OPT_INTLIST: {
            sf_intlist *l = FIELD(st, o, sf_intlist);
            free(l->v);
            l->v = NULL;
            l->n = 0;
            break;
        }
        case SF_OPT_KVLIST:
            free_kvlist(FIELD(st, o, sf_kvlist));
            break;
        case SF_OPT_SECTION:
            sf_cfg_free_struct(o->sub, st);
            break;
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* documentation                                                                              */

static int doc_type(const sf_cfg_option *o, sf_buf *out)
{
    static const char *const names[] = {
        [SF_OPT_STR] = "string",
        [SF_OPT_INT] = "integer",
        [SF_OPT_BOOL] = "boolean",
        [SF_OPT_DURATION] = "duration",
        [SF_OPT_SIZE] = "size",
        [SF_OPT_ENUM] = "enum",
        [SF_OPT_STRLIST] = "list of strings",
        [SF_OPT_INTLIST] = "list of integers",
        [SF_OPT_KVLIST] = "map of strings",
        [SF_OPT_SECTION] = "section",
        [SF_OPT_NODE] = "object",
    };
    int rc = sf_buf_puts(out, (unsigned)o->type < SF_ARRAY_LEN(names) ? names[o->type] : "?");
    if (!rc && o->type == SF_OPT_ENUM) {
        char allowed[256];
        enum_list(o->enum_values, allowed, sizeof allowed);
        rc = sf_buf_appendf(out, " (%s)", allowed);
    }
    if (!rc && ranged(o)) {
        char a[32], b[32];
        switch (o->type) {
        case SF_OPT_DURATION:
            sf_format_duration(o->min, a, sizeof a);
            sf_format_duration(omax(o), b, sizeof b);
            break;
        default:
            snprintf(a, sizeof a, "%lld", (long long)o->min);
            snprintf(b, sizeof b, "%lld", (long long)omax(o));
        }
        const char *what = o->type == SF_OPT_STR ? "length " : "";
        if (omax(o) == INT64_MAX)
            rc = sf_buf_appendf(out, ", %s>= %s", what, a);
        else
            rc = sf_buf_appendf(out, ", %s%s..%s", what, a, b);
    }
    return rc;
}

static int doc_escape(sf_buf *out, const char *s)
{
    int rc = 0;
    for (; s && *s && !rc; s++)
        rc = *s == '|' ? sf_buf_puts(out, "\\|") : sf_buf_putc(out, *s);
    return rc;
}

static int doc_rows(const sf_cfg_option *table, const char *prefix, sf_buf *out)
{
    int rc = 0;
    for (const sf_cfg_option *o = table; o && o->name && !rc; o++) {
        char *name = join_path(prefix, o->name);
        if (!name)
            return -ENOMEM;
        if (o->type == SF_OPT_SECTION) {
            rc = doc_rows(o->sub, name, out);
            free(name);
            continue;
        }
        rc = sf_buf_appendf(out, "| `%s` | ", name);
        free(name);
        if (!rc)
            rc = doc_type(o, out);
        if (!rc) {
            if (o->flags & SF_OPT_REQUIRED)
                rc = sf_buf_puts(out, " | *required* | ");
            else if (o->def && (o->flags & SF_OPT_SECRET))
                rc = sf_buf_puts(out, " | `***` | ");
            else if (o->def && *o->def)
                rc = sf_buf_appendf(out, " | `%s` | ", o->def);
            else
                rc = sf_buf_puts(out, " | - | ");
        }
        if (!rc)
            rc = doc_escape(out, o->desc);
        if (!rc && (o->flags & SF_OPT_SECRET))
            rc = sf_buf_puts(out, " (secret: never logged)");
        if (!rc)
            rc = sf_buf_puts(out, " |\n");
    }
    return rc;
}

int sf_cfg_doc_table(const sf_cfg_option *table, const char *prefix, sf_buf *out)
{
    int rc = sf_buf_puts(out, "| Key | Type | Default | Description |\n|---|---|---|---|\n");
    return rc ? rc : doc_rows(table, prefix, out);
}

/* ------------------------------------------------------------------------------------------ */
/* the daemon's tables                                                                        */

#define OFF(T, f) offsetof(T, f)

static const char *const api_values[] = {"legacy", "events", NULL};
static const char *const level_values[] = {"debug", "info", "warn", "error", NULL};
static const char *const logfmt_values[] = {"text", "json", NULL};

#define DUR_MAX INT64_MAX

static const sf_cfg_option source_retry_options[] = {
    {"initial", SF_OPT_DURATION, "1s",
     "First retry delay after a retriable error (5xx, 429, "
     "network); doubles on each failure, with full jitter.",
     OFF(sf_source_cfg, retry_initial_ms), 0, 1, DUR_MAX, NULL, NULL, 0},
    {"max", SF_OPT_DURATION, "5m", "Upper bound of the retry delay.",
     OFF(sf_source_cfg, retry_max_ms), 0, 1, DUR_MAX, NULL, NULL, 0},
    {0},
};

static const sf_cfg_option source_tls_options[] = {
    {"verify", SF_OPT_BOOL, "true", "Verify the server certificate and host name.",
     OFF(sf_source_cfg, tls_verify), 0, 0, 0, NULL, NULL, 0},
    {"ca_file", SF_OPT_STR, NULL, "PEM bundle of CAs to trust instead of the system store.",
     OFF(sf_source_cfg, tls_ca_file), SF_OPT_PATH, 0, 0, NULL, NULL, 0},
    {0},
};

const sf_cfg_option sf_source_options[] = {
    {"url", SF_OPT_STR, NULL,
     "Base URL of the Sysdig Secure API, e.g. https://secure.sysdig.com (http:// or https://).",
     OFF(sf_source_cfg, url), SF_OPT_REQUIRED, 0, 0, NULL, NULL, 0},
    {"api", SF_OPT_ENUM, "legacy",
     "Events API flavour: legacy (/api/v1/secureEvents) or events (/secure/events/v1/events).",
     OFF(sf_source_cfg, api), 0, 0, 0, api_values, NULL, 0},
    {"token", SF_OPT_STR, NULL,
     "API token (Bearer). Exactly one of token and token_file is required; prefer "
     "token_file or ${ENV_VAR}.",
     OFF(sf_source_cfg, token), SF_OPT_SECRET, 0, 0, NULL, NULL, 0},
    {"token_file", SF_OPT_STR, NULL,
     "File holding the API token (read at startup, trailing whitespace trimmed; should be mode "
     "0600).",
     OFF(sf_source_cfg, token_file), SF_OPT_PATH, 0, 0, NULL, NULL, 0},
    {"filter", SF_OPT_STR, NULL, "Server-side event filter expression (at most 2048 characters).",
     OFF(sf_source_cfg, filter), 0, 0, 2048, NULL, NULL, 0},
    {"zones", SF_OPT_INTLIST, NULL, "Zone ids to restrict events to (at most 100).",
     OFF(sf_source_cfg, zones), 0, 0, INT64_MAX, NULL, NULL, 0},
    {"page_size", SF_OPT_INT, "200",
     "Events requested per page (1..999 for api legacy, 1..200 for api events).",
     OFF(sf_source_cfg, page_size), 0, 1, 999, NULL, NULL, 0},
    {"poll_interval", SF_OPT_DURATION, "10s", "Delay between polls once caught up.",
     OFF(sf_source_cfg, poll_interval_ms), 0, 100, DUR_MAX, NULL, NULL, 0},
    {"lookback", SF_OPT_DURATION, "1h",
     "On first start (no checkpoint), how far back to start reading.",
     OFF(sf_source_cfg, lookback_ms), 0, 0, DUR_MAX, NULL, NULL, 0},
    {"overlap", SF_OPT_DURATION, "60s",
     "Each window re-reads this much before the watermark to catch late-indexed events "
     "(duplicates are removed by id).",
     OFF(sf_source_cfg, overlap_ms), 0, 0, DUR_MAX, NULL, NULL, 0},
    {"request_timeout", SF_OPT_DURATION, "30s", "Timeout of one API request.",
     OFF(sf_source_cfg, request_timeout_ms), 0, 1000, DUR_MAX, NULL, NULL, 0},
    {"connect_timeout", SF_OPT_DURATION, "10s", "Timeout of the TCP/TLS connection.",
     OFF(sf_source_cfg, connect_timeout_ms), 0, 1000, DUR_MAX, NULL, NULL, 0},
    {"max_window_events", SF_OPT_INT, "10000",
     "A time window whose page.total exceeds this is split in halves.",
     OFF(sf_source_cfg, max_window_events), 0, 1, INT64_MAX, NULL, NULL, 0},
    {"max_response_size", SF_OPT_SIZE, "64MiB", "Largest accepted API response body.",
     OFF(sf_source_cfg, max_response_size), 0, 1024, INT64_MAX, NULL, NULL, 0},
    {"retry", SF_OPT_SECTION, NULL, "Backoff for retriable errors.", 0, 0, 0, 0, NULL,
     source_retry_options, 0},
    {"auth_retry", SF_OPT_DURATION, "5m",
     "Wait after an authentication or request error (400/401/403) before trying again.",
     OFF(sf_source_cfg, auth_retry_ms), 0, 1000, DUR_MAX, NULL, NULL, 0},
    {"dedup_max_ids", SF_OPT_INT, "100000",
     "Most event ids remembered for de-duplication across overlapping windows.",
     OFF(sf_source_cfg, dedup_max_ids), 0, 1, INT64_MAX, NULL, NULL, 0},
    {"tls", SF_OPT_SECTION, NULL, "TLS settings.", 0, 0, 0, 0, NULL, source_tls_options, 0},
    {"proxy", SF_OPT_STR, NULL,
     "HTTP(S) proxy URL (default: the https_proxy / no_proxy environment variables, as curl reads "
     "them).",
     OFF(sf_source_cfg, proxy), 0, 0, 0, NULL, NULL, 0},
    {"user_agent", SF_OPT_STR, "sysdig-forwarder/" SF_VERSION, "User-Agent header.",
     OFF(sf_source_cfg, user_agent), 0, 0, 0, NULL, NULL, 0},
    {0},
};

const sf_cfg_option sf_checkpoint_options[] = {
    {"path", SF_OPT_STR, "/var/lib/sysdig-forwarder/checkpoint.json",
     "Checkpoint file (written atomically; its directory must be writable).",
     OFF(sf_checkpoint_cfg, path), SF_OPT_PATH, 1, 4096, NULL, NULL, 0},
    {0},
};

const sf_cfg_option sf_log_options[] = {
    {"level", SF_OPT_ENUM, "info", "Least severe level logged.", OFF(sf_log_cfg, level), 0, 0, 0,
     level_values, NULL, 0},
    {"format", SF_OPT_ENUM, "text", "Log line format on stderr.", OFF(sf_log_cfg, format), 0, 0, 0,
     logfmt_values, NULL, 0},
    {"health_interval", SF_OPT_DURATION, "5m",
     "Period of the one-line health summary (component health); 0 turns it off. The "
     "environment variable SF_HEALTH_LOG_INTERVAL overrides it.",
     OFF(sf_log_cfg, health_interval_ms), 0, 0, DUR_MAX, NULL, NULL, 0},
    {0},
};

const sf_cfg_option sf_server_options[] = {
    {"listen", SF_OPT_STR, NULL,
     "host:port of the HTTP server for /metrics, /healthz and /readyz (empty: disabled).",
     OFF(sf_server_cfg, listen), 0, 0, 0, NULL, NULL, 0},
    {"ready_max_poll_age", SF_OPT_DURATION, "5m",
     "/readyz fails when the last successful poll is older than this.",
     OFF(sf_server_cfg, ready_max_poll_age_ms), 0, 1000, DUR_MAX, NULL, NULL, 0},
    {0},
};

const sf_cfg_option sf_pipeline_options[] = {
    {"max_inflight_pages", SF_OPT_INT, "4", "Pages fetched but not yet checkpointed.",
     OFF(sf_pipeline_cfg, max_inflight_pages), 0, 1, 64, NULL, NULL, 0},
    {"shutdown_timeout", SF_OPT_DURATION, "20s",
     "On SIGTERM, how long to wait for in-flight deliveries before exiting.",
     OFF(sf_pipeline_cfg, shutdown_timeout_ms), 0, 0, DUR_MAX, NULL, NULL, 0},
    {0},
};

const sf_cfg_option sf_dead_letter_options[] = {
    {"path", SF_OPT_STR, NULL,
     "File (NDJSON, 0600) receiving every event a sink permanently rejected, with the sink name "
     "and the reason. Default: dead-letters.ndjson in the checkpoint's directory.",
     OFF(sf_dead_letter_cfg, path), SF_OPT_PATH, 0, 0, NULL, NULL, 0},
    {"max_size", SF_OPT_SIZE, "1GiB",
     "Size bound. When reached, rejected events are held and retried (never dropped) and an "
     "error is logged until space is made.",
     OFF(sf_dead_letter_cfg, max_size), 0, 4096, 0, NULL, NULL, 0},
    {0},
};

static const sf_cfg_option sink_queue_options[] = {
    {"max_events", SF_OPT_INT, "10000",
     "Events buffered for this sink; when full, polling pauses (backpressure).",
     OFF(sf_sink_common_cfg, queue_max_events), 0, 1, INT64_MAX, NULL, NULL, 0},
    {0},
};

static const sf_cfg_option sink_retry_options[] = {
    {"initial", SF_OPT_DURATION, "1s", "First delay before re-sending a refused batch.",
     OFF(sf_sink_common_cfg, retry_initial_ms), 0, 1, DUR_MAX, NULL, NULL, 0},
    {"max", SF_OPT_DURATION, "5m", "Upper bound of the retry delay.",
     OFF(sf_sink_common_cfg, retry_max_ms), 0, 1, DUR_MAX, NULL, NULL, 0},
    {"max_attempts", SF_OPT_INT, "0",
     "Attempts before an event is dead-lettered (0: retry forever).",
     OFF(sf_sink_common_cfg, retry_max_attempts), 0, 0, INT64_MAX, NULL, NULL, 0},
    {0},
};

static const sf_cfg_option sink_spool_options[] = {
    {"path", SF_OPT_STR, NULL,
     "Directory of this sink's disk spool. While the sink refuses events they are stored here "
     "(fsync'd) so the checkpoint and the other sinks move on, and replayed in order when it "
     "recovers. Unset: no spool (a sink that is down holds the checkpoint).",
     OFF(sf_sink_common_cfg, spool_path), SF_OPT_PATH, 0, 0, NULL, NULL, 0},
    {"max_size", SF_OPT_SIZE, "1GiB",
     "Spool bound. When full, polling pauses (backpressure); nothing is dropped.",
     OFF(sf_sink_common_cfg, spool_max_size), 0, 4096, 0, NULL, NULL, 0},
    {"segment_size", SF_OPT_SIZE, "16MiB", "Size of one spool segment file.",
     OFF(sf_sink_common_cfg, spool_segment_size), 0, 4096, 0, NULL, NULL, 0},
    {0},
};

const sf_cfg_option sf_sink_common_options[] = {
    {"name", SF_OPT_STR, NULL, "Unique name used in logs and metrics (default: the type).",
     OFF(sf_sink_common_cfg, name), 0, 1, 128, NULL, NULL, 0},
    {"type", SF_OPT_STR, NULL, "Sink type (see the sink types below).",
     OFF(sf_sink_common_cfg, type), SF_OPT_REQUIRED, 0, 0, NULL, NULL, 0},
    {"format", SF_OPT_STR, "raw", "Record format (see the formats below).",
     OFF(sf_sink_common_cfg, format), 0, 0, 0, NULL, NULL, 0},
    {"queue", SF_OPT_SECTION, NULL, "Queue settings.", 0, 0, 0, 0, NULL, sink_queue_options, 0},
    {"retry", SF_OPT_SECTION, NULL, "Retry settings.", 0, 0, 0, 0, NULL, sink_retry_options, 0},
    {"spool", SF_OPT_SECTION, NULL, "Disk spool settings.", 0, 0, 0, 0, NULL, sink_spool_options,
     0},
    {0},
};

static const char *const top_keys[] = {"source", "checkpoint", "sinks",       "log",
                                       "server", "pipeline",   "dead_letter", NULL};

/* ------------------------------------------------------------------------------------------ */
/* loading                                                                                    */

static void sink_cfg_free(sf_sink_cfg *s)
{
    if (!s)
        return;
    sf_cfg_free_struct(sf_sink_common_options, &s->common);
    if (s->ops && s->type_cfg)
        sf_cfg_free_struct(s->ops->options, s->type_cfg);
    free(s->type_cfg);
    if (s->format && s->format_cfg)
        sf_cfg_free_struct(s->format->options, s->format_cfg);
    free(s->format_cfg);
    free(s);
}

void sf_config_free(sf_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    sf_cfg_free_struct(sf_source_options, &cfg->source);
    sf_cfg_free_struct(sf_checkpoint_options, &cfg->checkpoint);
    sf_cfg_free_struct(sf_log_options, &cfg->log);
    sf_cfg_free_struct(sf_server_options, &cfg->server);
    sf_cfg_free_struct(sf_pipeline_options, &cfg->pipeline);
    sf_cfg_free_struct(sf_dead_letter_options, &cfg->dead_letter);
    for (size_t i = 0; i < cfg->nsinks; i++)
        sink_cfg_free(cfg->sinks[i]);
    free(cfg->sinks);
    sf_cfg_node_free(cfg->root);
    memset(cfg, 0, sizeof *cfg);
}

/* Position of key 'key' in map (or of the map). */
static void key_pos(const sf_cfg_node *map, const char *key, int *line, int *col)
{
    *line = map ? map->line : 0;
    *col = map ? map->col : 0;
    for (size_t i = 0; map && map->kind == SF_NODE_MAP && i < map->n; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            *line = map->key_line[i];
            *col = map->key_col[i];
            return;
        }
    }
}

static void val_pos(const sf_cfg_node *map, const char *key, int *line, int *col)
{
    const sf_cfg_node *n = sf_cfg_map_get(map, key);
    if (n) {
        *line = n->line;
        *col = n->col;
    } else {
        key_pos(map, key, line, col);
    }
}

/* Reads token_file into source->token. Returns 0, -1 (error added) or -ENOMEM. */
static int read_token_file(sf_source_cfg *src, const sf_cfg_node *smap, sf_cfg_errors *errs)
{
    int line, col, rc = -1, fd;
    val_pos(smap, "token_file", &line, &col);
    sf_buf b = {0};
    fd = open(src->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror_at(errs, line, col, "source", "token_file", "cannot open %s: %s", src->token_file,
                  strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        SF_WARN("config", "token file %s is accessible by group/others (mode %04o); use chmod 600",
                src->token_file, (unsigned)(st.st_mode & 07777));
    for (;;) {
        if (b.len > 65536) {
            perror_at(errs, line, col, "source", "token_file", "%s is too large for a token",
                      src->token_file);
            goto out;
        }
        if (sf_buf_reserve(&b, 4096)) {
            rc = -ENOMEM;
            goto out;
        }
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror_at(errs, line, col, "source", "token_file", "cannot read %s: %s",
                      src->token_file, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    while (b.len > 0 && isspace((unsigned char)b.data[b.len - 1]))
        b.data[--b.len] = '\0';
    if (b.len == 0) {
        perror_at(errs, line, col, "source", "token_file", "%s is empty", src->token_file);
        goto out;
    }
    if (memchr(b.data, '\0', b.len) || strpbrk(b.data, "\r\n")) {
        perror_at(errs, line, col, "source", "token_file", "%s must hold a single line (the token)",
                  src->token_file);
        goto out;
    }
    if (sf_log_add_secret(b.data)) {
        rc = -ENOMEM;
        goto out;
    }
    free(src->token);
    src->token = sf_buf_steal(&b);
    rc = src->token ? 0 : -ENOMEM;
out:
    if (fd >= 0)
        close(fd);
    if (b.data) {
        memset(b.data, 0, b.cap);
        sf_buf_free(&b);
    }
    return rc;
}

static bool valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1])
        return false;
    if (s[0] == '[' && colon[-1] != ']')
        return false;
    int64_t port;
    if (sf_parse_int64(colon + 1, strlen(colon + 1), &port) || port < 1 || port > 65535)
        return false;
    return true;
}

static int check_source(sf_source_cfg *src, const sf_cfg_node *smap, int sline, int scol,
                        sf_cfg_errors *errs)
{
    int line, col;
    if (src->url && strncmp(src->url, "http://", 7) != 0 && strncmp(src->url, "https://", 8) != 0) {
        val_pos(smap, "url", &line, &col);
        perror_at(errs, line, col, "source", "url", "must start with http:// or https://");
    } else if (src->url && (!strcmp(src->url, "http://") || !strcmp(src->url, "https://"))) {
        val_pos(smap, "url", &line, &col);
        perror_at(errs, line, col, "source", "url", "missing host name");
    }
    bool has_token = src->token && *src->token, has_file = src->token_file && *src->token_file;
    if (has_token && has_file) {
        key_pos(smap, "token_file", &line, &col);
        perror_at(errs, line, col, "source", NULL,
                  "token and token_file are mutually exclusive (set exactly one)");
    } else if (!has_token && !has_file) {
        perror_at(errs, sline, scol, "source", NULL, "one of token or token_file is required");
    } else if (has_file) {
        int rc = read_token_file(src, smap, errs);
        if (rc == -ENOMEM)
            return rc;
    }
    if (src->zones.n > 100) {
        val_pos(smap, "zones", &line, &col);
        perror_at(errs, line, col, "source", "zones", "at most 100 zones are allowed (got %zu)",
                  src->zones.n);
    }
    if (src->api == SF_API_EVENTS && src->page_size > 200) {
        val_pos(smap, "page_size", &line, &col);
        perror_at(errs, line, col, "source", "page_size",
                  "must be between 1 and 200 with api: events");
    }
    if (src->retry_initial_ms > src->retry_max_ms) {
        const sf_cfg_node *r = sf_cfg_map_get(smap, "retry");
        val_pos(r ? r : smap, r ? "initial" : "retry", &line, &col);
        perror_at(errs, line, col, "source", "retry", "initial must not exceed max");
    }
    return 0;
}

static char *list_sinks(void)
{
    sf_buf b = {0};
    const sf_sink_ops *const *all = sf_sink_all();
    for (size_t i = 0; all[i]; i++)
        if (sf_buf_appendf(&b, "%s%s", i ? ", " : "", all[i]->type))
            break;
    return sf_buf_steal(&b);
}

static char *list_formats(void)
{
    sf_buf b = {0};
    const sf_format *const *all = sf_format_all();
    for (size_t i = 0; all[i]; i++)
        if (sf_buf_appendf(&b, "%s%s", i ? ", " : "", all[i]->name))
            break;
    return sf_buf_steal(&b);
}

/* Builds one sink. Returns 0, -1 (errors added) or -ENOMEM; *out set when 0 or -1 if allocated. */
static int load_sink(const sf_cfg_node *map, size_t idx, sf_sink_cfg **out, sf_cfg_errors *errs)
{
    char path[32];
    snprintf(path, sizeof path, "sinks[%zu]", idx);
    size_t before = errs->n;
    sf_sink_cfg *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *out = s;
    if (map->kind != SF_NODE_MAP) {
        perror_at(errs, map->line, map->col, path, NULL, "expected a map, got %s",
                  kind_name(map->kind));
        return -1;
    }
    s->common.node = map;
    bool type_ok = true;
    const sf_cfg_node *tn = sf_cfg_map_get(map, "type");
    if (tn && tn->kind == SF_NODE_SCALAR && !is_null_node(tn)) {
        s->ops = sf_sink_find(tn->value);
        if (!s->ops) {
            char *valid = list_sinks();
            if (!valid)
                return -ENOMEM;
            perror_at(errs, tn->line, tn->col, path, "type",
                      "unknown sink type \"%.*s\" (valid types: %s)", MAX_VALUE_SHOWN, tn->value,
                      valid);
            free(valid);
            type_ok = false;
        }
    } else {
        type_ok = false; /* the common table reports it */
    }
    const sf_cfg_node *fn = sf_cfg_map_get(map, "format");
    bool format_ok = true;
    if (fn && fn->kind == SF_NODE_SCALAR && !is_null_node(fn)) {
        s->format = sf_format_find(fn->value);
        if (!s->format) {
            char *valid = list_formats();
            if (!valid)
                return -ENOMEM;
            perror_at(errs, fn->line, fn->col, path, "format",
                      "unknown format \"%.*s\" (valid formats: %s)", MAX_VALUE_SHOWN, fn->value,
                      valid);
            free(valid);
            format_ok = false;
        }
    } else if (fn && !is_null_node(fn)) {
        format_ok = false; /* common table reports the type error */
    } else {
        s->format = sf_format_find("raw");
    }
    if (s->ops && s->ops->cfg_size && !(s->type_cfg = calloc(1, s->ops->cfg_size)))
        return -ENOMEM;
    if (s->format && s->format->cfg_size && !(s->format_cfg = calloc(1, s->format->cfg_size)))
        return -ENOMEM;

    /* The format's key (if any) is a pseudo-option holding its map; the keys of the other
     * formats are recognised too, to explain that they do not apply to this format. */
    enum { MAX_FMTS = 32 };
    struct {
        const sf_cfg_node *node[MAX_FMTS];
    } fmtslot;
    memset(&fmtslot, 0, sizeof fmtslot);
    sf_cfg_option fmt_table[MAX_FMTS + 1];
    memset(fmt_table, 0, sizeof fmt_table);
    size_t nf = 0;
    const sf_format *const *allf = sf_format_all();
    for (size_t i = 0; allf[i] && nf < MAX_FMTS; i++) {
        bool dup = false;
        for (size_t j = 0; j < nf; j++)
            dup = dup || sf_streq(fmt_table[j].name, allf[i]->cfg_key);
        if (!allf[i]->cfg_key || dup)
            continue;
        fmt_table[nf].name = allf[i]->cfg_key;
        fmt_table[nf].type = SF_OPT_NODE;
        fmt_table[nf].offset = nf * sizeof(const sf_cfg_node *);
        nf++;
    }
    /* placeholder struct for a type table when the type has options but cfg_size 0 */
    char dummy[1];
    const sf_cfg_option *tables[3] = {sf_sink_common_options, s->ops ? s->ops->options : NULL,
                                      fmt_table};
    void *structs[3] = {&s->common, s->type_cfg ? s->type_cfg : dummy, &fmtslot};
    int rc = apply_tables(map, map->line, map->col, path, tables, structs, 3, type_ok && format_ok,
                          errs);
    s->common.node = map;
    const sf_cfg_node *fm = NULL;
    for (size_t i = 0; i < nf; i++) {
        if (s->format && sf_streq(s->format->cfg_key, fmt_table[i].name)) {
            fm = fmtslot.node[i];
        } else if (sf_cfg_map_get(map, fmt_table[i].name) && format_ok) {
            int line, col;
            char names[256] = "";
            size_t off = 0;
            for (size_t j = 0; allf[j] && off < sizeof names; j++) {
                if (sf_streq(allf[j]->cfg_key, fmt_table[i].name)) {
                    int w = snprintf(names + off, sizeof names - off, "%s%s", off ? " or " : "",
                                     allf[j]->name);
                    off += w > 0 ? (size_t)w : 0;
                }
            }
            key_pos(map, fmt_table[i].name, &line, &col);
            perror_at(errs, line, col, path, NULL,
                      "key '%s' is only valid with format: %s (this sink's format is %s)",
                      fmt_table[i].name, names, s->format ? s->format->name : "raw");
        }
    }
    if (rc < 0)
        return rc;
    if (s->format && s->format->options && s->format_cfg) {
        char *fpath = s->format->cfg_key ? join_path(path, s->format->cfg_key) : sf_strdup(path);
        if (!fpath)
            return -ENOMEM;
        int fl = map->line, fc = map->col;
        if (s->format->cfg_key)
            val_pos(map, s->format->cfg_key, &fl, &fc);
        const sf_cfg_option *ft[1] = {s->format->options};
        void *fs[1] = {s->format_cfg};
        rc = apply_tables(fm, fl, fc, fpath, ft, fs, 1, true, errs);
        free(fpath);
        if (rc < 0)
            return rc;
        /* the format's own checks (e.g. the LEEF delimiter), so --check-config reports them */
        void *fst = NULL;
        char ferr[256] = "";
        if (rc == 0 && s->format->init) {
            if (s->format->init(s->format_cfg, &fst, ferr, sizeof ferr) == 0) {
                if (s->format->destroy)
                    s->format->destroy(fst);
            } else {
                sf_cfg_error(errs, fl, fc, "%s", ferr[0] ? ferr : "invalid format options");
            }
        }
    }
    if (!s->common.name && s->common.type && !(s->common.name = sf_strdup(s->common.type)))
        return -ENOMEM;
    if (s->common.retry_initial_ms > s->common.retry_max_ms) {
        int line, col;
        const sf_cfg_node *r = sf_cfg_map_get(map, "retry");
        val_pos(r ? r : map, r ? "initial" : "retry", &line, &col);
        perror_at(errs, line, col, path, "retry", "initial must not exceed max");
    }
    if (errs->n == before && s->ops && s->ops->validate)
        s->ops->validate(s->type_cfg, map, errs);
    return errs->n == before ? 0 : -1;
}

static int load_sinks(sf_config *cfg, const sf_cfg_node *root, sf_cfg_errors *errs)
{
    const sf_cfg_node *seq = sf_cfg_map_get(root, "sinks");
    int line, col;
    if (!seq || is_null_node(seq)) {
        key_pos(root, "sinks", &line, &col);
        perror_at(errs, line, col, "sinks", NULL, "at least one sink is required");
        return 0;
    }
    if (seq->kind != SF_NODE_SEQ) {
        perror_at(errs, seq->line, seq->col, "sinks", NULL, "expected a list of sinks, got %s",
                  kind_name(seq->kind));
        return 0;
    }
    if (seq->n == 0) {
        perror_at(errs, seq->line, seq->col, "sinks", NULL, "at least one sink is required");
        return 0;
    }
    if (!(cfg->sinks = calloc(seq->n, sizeof *cfg->sinks)))
        return -ENOMEM;
    for (size_t i = 0; i < seq->n; i++) {
        int rc = load_sink(seq->items[i], i, &cfg->sinks[cfg->nsinks], errs);
        if (cfg->sinks[cfg->nsinks])
            cfg->nsinks++;
        if (rc == -ENOMEM)
            return rc;
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const char *name = cfg->sinks[i]->common.name;
        for (size_t j = 0; name && j < i; j++) {
            if (sf_streq(cfg->sinks[j]->common.name, name)) {
                const sf_cfg_node *m = cfg->sinks[i]->common.node;
                const sf_cfg_node *nn = sf_cfg_map_get(m, "name");
                char path[32];
                snprintf(path, sizeof path, "sinks[%zu]", i);
                perror_at(errs,
                          nn  ? nn->line
                          : m ? m->line
                              : 0,
                          nn  ? nn->col
                          : m ? m->col
                              : 0,
                          path, "name", "duplicate sink name \"%s\" (also used by sinks[%zu])",
                          name, j);
                break;
            }
        }
    }
    return 0;
}

int sf_config_load_text(const char *name, const char *text, size_t len, sf_config *cfg,
                        sf_cfg_errors *errs)
{
    size_t before = errs->n;
    int rc = 0;
    memset(cfg, 0, sizeof *cfg);
    if (name)
        errs->file = name;
    if (name && !(cfg->file = sf_strdup(name)))
        goto oom;
    cfg->root = sf_cfg_parse_yaml(text, len, errs);
    if (!cfg->root)
        goto out;
    const sf_cfg_node *root = cfg->root;
    if (root->kind != SF_NODE_MAP) {
        sf_cfg_error(errs, root->line, root->col, "the configuration must be a map, got %s",
                     kind_name(root->kind));
        goto out;
    }
    for (size_t i = 0; i < root->n; i++) {
        bool ok = false;
        const char *best = NULL;
        size_t bestd = 3;
        for (size_t k = 0; top_keys[k]; k++) {
            if (strcmp(root->keys[i], top_keys[k]) == 0) {
                ok = true;
                break;
            }
            size_t d = edit_distance(root->keys[i], top_keys[k]);
            if (d < bestd) {
                bestd = d;
                best = top_keys[k];
            }
        }
        if (ok)
            continue;
        if (best)
            sf_cfg_error(errs, root->key_line[i], root->key_col[i],
                         "unknown key '%s' (did you mean '%s'?)", root->keys[i], best);
        else
            sf_cfg_error(errs, root->key_line[i], root->key_col[i],
                         "unknown key '%s' (valid: source, checkpoint, sinks, log, server, "
                         "pipeline)",
                         root->keys[i]);
    }
    static const struct {
        const char *key;
        const sf_cfg_option *table;
        size_t off;
    } sections[] = {
        {"source", sf_source_options, offsetof(sf_config, source)},
        {"checkpoint", sf_checkpoint_options, offsetof(sf_config, checkpoint)},
        {"log", sf_log_options, offsetof(sf_config, log)},
        {"server", sf_server_options, offsetof(sf_config, server)},
        {"pipeline", sf_pipeline_options, offsetof(sf_config, pipeline)},
        {"dead_letter", sf_dead_letter_options, offsetof(sf_config, dead_letter)},
    };
    for (size_t i = 0; i < SF_ARRAY_LEN(sections); i++) {
        const sf_cfg_node *m = sf_cfg_map_get(root, sections[i].key);
        int line, col;
        if (m && !is_null_node(m)) {
            line = m->line;
            col = m->col;
        } else {
            m = NULL;
            key_pos(root, sections[i].key, &line, &col);
        }
        const sf_cfg_option *t[1] = {sections[i].table};
        void *s[1] = {(char *)cfg + sections[i].off};
        if (apply_tables(m, line, col, sections[i].key, t, s, 1, true, errs) < 0)
            goto oom;
        if (i == 0 && (!m || m->kind == SF_NODE_MAP) &&
            check_source(&cfg->source, m, line, col, errs))
            goto oom;
    }
    if (cfg->server.listen && *cfg->server.listen && !valid_listen(cfg->server.listen)) {
        int line, col;
        val_pos(sf_cfg_map_get(root, "server"), "listen", &line, &col);
        perror_at(errs, line, col, "server", "listen",
                  "expected host:port with a port in 1..65535, got \"%.*s\"", MAX_VALUE_SHOWN,
                  cfg->server.listen);
    }
    if (load_sinks(cfg, root, errs))
        goto oom;
    goto out;
oom:
    sf_cfg_error(errs, 0, 0, "out of memory while loading the configuration");
out:
    /* secrets registered after an error was recorded (later options, token_file) */
    for (size_t i = before; i < errs->n; i++)
        if (!(errs->msgs[i] = redact(errs->msgs[i])))
            errors_push(errs, NULL); /* aborts: out of memory */
    if (errs->n > before) {
        rc = -(int)(errs->n - before);
        sf_config_free(cfg);
    }
    return rc;
}

int sf_config_load(const char *path, sf_config *cfg, sf_cfg_errors *errs)
{
    memset(cfg, 0, sizeof *cfg);
    sf_buf b = {0};
    int rc = -1, err = 0;
    const char *save = errs->file;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    for (;;) {
        if (b.len > 16 * 1024 * 1024) {
            err = EFBIG;
            goto out;
        }
        if (sf_buf_reserve(&b, 65536)) {
            err = ENOMEM;
            goto out;
        }
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    rc = sf_config_load_text(path, b.data ? b.data : "", b.len, cfg, errs);
out:
    if (err) {
        errs->file = path;
        sf_cfg_error(errs, 0, 0, "cannot read configuration file: %s", strerror(err));
        errs->file = save ? save : path;
    }
    if (fd >= 0)
        close(fd);
    sf_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* reference                                                                                  */

int sf_config_reference(sf_buf *out)
{
    static const struct {
        const char *key;
        const char *desc;
        const sf_cfg_option *table;
    } sections[] = {
        {"source", "Where events are read from (the Sysdig Secure events API).", sf_source_options},
        {"checkpoint", "Durable position of the forwarder.", sf_checkpoint_options},
        {"log", "Logging to stderr.", sf_log_options},
        {"server", "HTTP server for metrics and health checks.", sf_server_options},
        {"pipeline", "Flow control between the source and the sinks.", sf_pipeline_options},
        {"dead_letter", "Where permanently rejected events go (never dropped silently).",
         sf_dead_letter_options},
    };
    int rc = sf_buf_puts(out, "# Configuration reference\n\n"
                              "Durations: `500ms`, `10s`, `5m`, `1h`, `7d`. Sizes: `512`, `64KiB`, "
                              "`100MiB`, `1GB`. Every value may use `${VAR}` or "
                              "`${VAR:-default}` (environment); `$$` is a literal `$`.\n\n");
    for (size_t i = 0; i < SF_ARRAY_LEN(sections) && !rc; i++) {
        rc = sf_buf_appendf(out, "## `%s`\n\n%s\n\n", sections[i].key, sections[i].desc);
        if (!rc)
            rc = sf_cfg_doc_table(sections[i].table, "", out);
        if (!rc)
            rc = sf_buf_puts(out, "\n");
    }
    if (!rc)
        rc = sf_buf_puts(out, "## `sinks`\n\nA non-empty list of sinks. Keys every sink has:\n\n");
    if (!rc)
        rc = sf_cfg_doc_table(sf_sink_common_options, "", out);
    const sf_sink_ops *const *sinks = sf_sink_all();
    for (size_t i = 0; sinks[i] && !rc; i++) {
        rc = sf_buf_appendf(out, "\n### Sink type `%s`\n\n%s\n\n", sinks[i]->type,
                            sinks[i]->desc ? sinks[i]->desc : "");
        if (!rc && sinks[i]->options && sinks[i]->options->name)
            rc = sf_cfg_doc_table(sinks[i]->options, "", out);
        else if (!rc)
            rc = sf_buf_puts(out, "No type-specific options.\n");
    }
    if (!rc)
        rc = sf_buf_puts(out, "\n## Formats\n\nSelected with a sink's `format` key.\n");
    const sf_format *const *fmts = sf_format_all();
    for (size_t i = 0; fmts[i] && !rc; i++) {
        rc = sf_buf_appendf(out, "\n### Format `%s`\n\n%s\n", fmts[i]->name,
                            fmts[i]->desc ? fmts[i]->desc : "");
        if (!rc && fmts[i]->options && fmts[i]->options->name) {
            if (fmts[i]->cfg_key)
                rc = sf_buf_appendf(out, "\nOptions, under the sink's `%s` key:\n\n",
                                    fmts[i]->cfg_key);
            else
                rc = sf_buf_puts(out, "\nOptions:\n\n");
            if (!rc)
                rc = sf_cfg_doc_table(fmts[i]->options, fmts[i]->cfg_key ? fmts[i]->cfg_key : "",
                                      out);
        }
    }
    return rc;
}
