/* cfg: YAML (libyaml event API) -> sf_cfg_node tree -> typed structs via option tables.
 * Over 600 lines: the engine's four parts (errors, YAML to node tree with ${VAR} expansion,
 * applying option tables, documentation) share the node and error types and nothing else;
 * they are sections of this file, each under its banner. */
#include "config/cfg.h"

#include <ctype.h>
#include <limits.h>
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

#include "core/log.h"
#include "core/util.h"

#define MAX_DEPTH 64

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

void sf_cfg_error_key(sf_cfg_errors *e, int line, int col, const char *path, const char *key,
                      const char *fmt, ...)
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
    for (size_t i = 0; i < e->nwarns; i++)
        free(e->warns[i]);
    free(e->warns);
    e->warns = NULL;
    e->nwarns = 0;
}

void sf_cfg_warn_at(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *fmt, ...)
{
    int line, col;
    sf_cfg_pos(map, key, &line, &col);
    sf_buf b = {0};
    if (line > 0)
        sf_buf_appendf(&b, "%s:%d:%d: ", e->file ? e->file : "<config>", line, col > 0 ? col : 1);
    va_list ap;
    va_start(ap, fmt);
    sf_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    char *msg = redact(sf_buf_steal(&b));
    char **v = msg ? realloc(e->warns, (e->nwarns + 1) * sizeof *v) : NULL;
    if (!v) {
        free(msg); /* a warning lost to OOM changes nothing that is accepted */
        return;
    }
    e->warns = v;
    e->warns[e->nwarns++] = msg;
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

void sf_cfg_key_pos(const sf_cfg_node *map, const char *key, int *line, int *col)
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

void sf_cfg_pos(const sf_cfg_node *map, const char *key, int *line, int *col)
{
    const sf_cfg_node *n = sf_cfg_map_get(map, key);
    if (n) {
        *line = n->line;
        *col = n->col;
    } else {
        sf_cfg_key_pos(map, key, line, col);
    }
}

void sf_cfg_error_at(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *fmt,
                     ...)
{
    int line, col;
    sf_cfg_pos(map, key, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    verror(e, line, col, NULL, NULL, fmt, ap);
    va_end(ap);
}

/* The directory part of path ("." for a bare name), in out. */
static void dir_of(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, outlen, ".");
    else if (slash == path)
        snprintf(out, outlen, "/");
    else
        snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/* The directory path is to be made in exists and can be written (created: the error names
 * path as what cannot be created). */
static void check_parent(sf_cfg_errors *e, const sf_cfg_node *map, const char *key,
                         const char *what, const char *path, bool created)
{
    struct stat st;
    char parent[PATH_MAX];
    dir_of(path, parent, sizeof parent);
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        sf_cfg_error_at(e, map, key, "%s: the directory %s does not exist (create it first)", what,
                        parent);
    else if (access(parent, W_OK | X_OK) != 0) {
        if (created)
            sf_cfg_error_at(e, map, key,
                            "%s: %s cannot be created: directory %s is not writable (%s)", what,
                            path, parent, strerror(errno));
        else
            sf_cfg_error_at(e, map, key, "%s: directory %s is not writable (%s)", what, parent,
                            strerror(errno));
    }
}

/* An output path that is to be made (a file or a directory): checked as this process's user.
 * dir: it must be a writable directory if it exists, else a writable file. */
static void check_output(sf_cfg_errors *e, const sf_cfg_node *map, const char *key,
                         const char *what, const char *path, bool dir)
{
    struct stat st;
    if (!path || !*path)
        return;
    if (stat(path, &st) == 0) {
        if (!dir && S_ISDIR(st.st_mode))
            sf_cfg_error_at(e, map, key, "%s: %s is a directory, not a file", what, path);
        else if (dir && !S_ISDIR(st.st_mode))
            sf_cfg_error_at(e, map, key, "%s: %s is not a directory", what, path);
        else if (access(path, dir ? W_OK | X_OK : W_OK) != 0)
            sf_cfg_error_at(e, map, key, "%s: %s cannot be written (%s)", what, path,
                            strerror(errno));
        return;
    }
    if (errno != ENOENT) {
        sf_cfg_error_at(e, map, key, "%s: %s: %s", what, path, strerror(errno));
        return;
    }
    check_parent(e, map, key, what, path, true);
}

void sf_cfg_check_file(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *what,
                       const char *path)
{
    check_output(e, map, key, what, path, false);
}

void sf_cfg_check_dir(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *what,
                      const char *path)
{
    check_output(e, map, key, what, path, true);
}

void sf_cfg_check_replaced(sf_cfg_errors *e, const sf_cfg_node *map, const char *key,
                           const char *what, const char *path)
{
    struct stat st;
    if (!path || !*path)
        return;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        sf_cfg_error_at(e, map, key, "%s: %s is a directory, not a file", what, path);
        return;
    }
    check_parent(e, map, key, what, path, false);
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

bool sf_cfg_is_null(const sf_cfg_node *n)
{
    return n && n->kind == SF_NODE_SCALAR && !n->quoted &&
           (n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0);
}

const char *sf_cfg_kind_name(sf_node_kind k)
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

#define VERR(c, ...)                                                                               \
    sf_cfg_error_key((c)->errs, (c)->line, (c)->col, (c)->path, (c)->key, __VA_ARGS__)

/* "…, got "abc"" for non-secret values; nothing for secrets. */
static void bad_value(const vctx *c, const char *what, const char *s)
{
    if (c->o->flags & SF_OPT_SECRET)
        VERR(c, "invalid value (expected %s)", what);
    else
        VERR(c, "expected %s, got \"%.*s\"", what, SF_CFG_MAX_VALUE_SHOWN, s);
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
            VERR(c, "invalid value \"%.*s\" (allowed: %s)", SF_CFG_MAX_VALUE_SHOWN, s, allowed);
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

char *sf_cfg_join_path(const char *path, const char *key)
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
        if (node && !sf_cfg_is_null(node) && node->kind != SF_NODE_MAP) {
            VERR(&c, "expected a map, got %s", sf_cfg_kind_name(node->kind));
            return -1;
        }
        if (node && (o->flags & SF_OPT_ISSET))
            *(bool *)((char *)st + o->isset_offset) = true;
        char *sub = sf_cfg_join_path(path, o->name);
        if (!sub)
            return -ENOMEM;
        const sf_cfg_option *t[1] = {o->sub};
        void *s[1] = {(char *)st + o->offset}; /* the sub-table's offsets are relative */
        const sf_cfg_node *m = sf_cfg_is_null(node) ? NULL : node;
        int n = apply_tables(m, m ? m->line : (node ? kline : pline),
                             m ? m->col : (node ? kcol : pcol), sub, t, s, 1, true, errs);
        free(sub);
        return n < 0 ? n : n > 0 ? -1 : 0;
    }
    const char *env = o->env && o->type <= SF_OPT_ENUM ? getenv(o->env) : NULL;
    if (env && *env) {
        char *epath = sf_cfg_join_path(path, o->name);
        if (!epath)
            return -ENOMEM;
        char *where = NULL;
        sf_buf w = {0};
        if (sf_buf_appendf(&w, "%s (from the environment variable %s)", epath, o->env) == 0)
            where = sf_buf_steal(&w);
        sf_buf_free(&w);
        free(epath);
        if (!where)
            return -ENOMEM;
        vctx ec = {errs, NULL, where, o, node ? node->line : kline, node ? node->col : kcol};
        if (o->flags & SF_OPT_ISSET)
            *(bool *)((char *)st + o->isset_offset) = true;
        rc = set_scalar(&ec, env, st);
        free(where);
        return rc;
    }
    if (sf_cfg_is_null(node) && o->type != SF_OPT_NODE) {
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
            VERR(&c, "expected a scalar value, got %s", sf_cfg_kind_name(node->kind));
            return -1;
        }
        return set_scalar(&c, node->value, st);
    case SF_OPT_STRLIST:
    case SF_OPT_INTLIST: {
        if (node->kind != SF_NODE_SEQ) {
            VERR(&c, "expected a list, got %s", sf_cfg_kind_name(node->kind));
            return -1;
        }
        int bad = 0;
        for (size_t i = 0; i < node->n; i++) {
            const sf_cfg_node *it = node->items[i];
            vctx ic = c;
            ic.line = it->line;
            ic.col = it->col;
            if (it->kind != SF_NODE_SCALAR) {
                VERR(&ic, "item %zu: expected a scalar, got %s", i, sf_cfg_kind_name(it->kind));
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
                    VERR(&ic, "item %zu: expected an integer, got \"%.*s\"", i,
                         SF_CFG_MAX_VALUE_SHOWN, it->value);
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
            VERR(&c, "expected a map, got %s", sf_cfg_kind_name(node->kind));
            return -1;
        }
        sf_kvlist *l = FIELD(st, o, sf_kvlist);
        int bad = 0;
        for (size_t i = 0; i < node->n; i++) {
            const sf_cfg_node *it = node->items[i];
            if (it->kind != SF_NODE_SCALAR) {
                sf_cfg_error_key(errs, it->line, it->col, path, o->name,
                                 "%s: expected a scalar, got %s", node->keys[i],
                                 sf_cfg_kind_name(it->kind));
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
        *FIELD(st, o, const sf_cfg_node *) = sf_cfg_is_null(node) ? NULL : node;
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
        sf_cfg_error_key(errs, map->line, map->col, path, NULL, "expected a map, got %s",
                         sf_cfg_kind_name(map->kind));
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
            sf_cfg_error_key(errs, map->key_line[i], map->key_col[i], path, NULL,
                             "unknown key '%s' (did you mean '%s'?)", k, best);
        else
            sf_cfg_error_key(errs, map->key_line[i], map->key_col[i], path, NULL,
                             "unknown key '%s'", k);
    }
    return (int)(errs->n - before);
}

int sf_cfg_apply_at(const sf_cfg_node *map, int line, int col, const char *path,
                    const sf_cfg_option *const *tables, void *const *structs, size_t ntables,
                    bool check_unknown, sf_cfg_errors *errs)
{
    return apply_tables(map, line, col, path, tables, structs, ntables, check_unknown, errs);
}

const char *sf_cfg_suggest(const char *key, const char *const *names)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; names[i]; i++) {
        size_t d = edit_distance(key, names[i]);
        if (d < bestd) {
            bestd = d;
            best = names[i];
        }
    }
    return best;
}

void sf_cfg_errors_redact(sf_cfg_errors *e, size_t from)
{
    for (size_t i = from; i < e->n; i++)
        if (!(e->msgs[i] = redact(e->msgs[i])))
            errors_push(e, NULL); /* aborts: out of memory */
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
            sf_cfg_free_struct(o->sub, (char *)st + o->offset);
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
        char *name = sf_cfg_join_path(prefix, o->name);
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
        if (!rc && o->env)
            rc = sf_buf_appendf(out, " The environment variable `%s` overrides it.", o->env);
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
