/* stix_pattern: lexer and recursive-descent parser (grammar: stix2-patterns' STIXPattern.g4).
 *
 *   pattern     := obs_fby EOF
 *   obs_fby     := obs_or (FOLLOWEDBY obs_or)*
 *   obs_or      := obs_and (OR obs_and)*
 *   obs_and     := obs_qual (AND obs_qual)*
 *   obs_qual    := obs_primary qualifier*
 *   obs_primary := '[' cmp_or ']' | '(' obs_fby ')'
 *   qualifier   := START t'..' STOP t'..' | WITHIN number SECONDS | REPEATS int TIMES
 *   cmp_or      := cmp_and (OR cmp_and)*
 *   cmp_and     := cmp_test (AND cmp_test)*
 *   cmp_test    := '(' cmp_or ')' | EXISTS path | path [NOT] op value
 *   path        := type ':' component ('.' component | '[' (int | '*') ']')*
 *   value       := literal | '(' [literal (',' literal)*] ')'      (the set, after IN)
 *
 * The parser keeps one token of look-ahead; recursion is bounded by MAX_DEPTH. */
#include "query/stix_pattern.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/util.h"

#define MAX_DEPTH 200

struct sf_stix_pattern {
    sf_arena *arena;
    sf_sp_obs *root;
};

typedef enum {
    T_EOF,
    T_LBRACK,
    T_RBRACK,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_COLON,
    T_DOT,
    T_STAR,
    T_OP,    /* comparison operator symbol: op */
    T_IDENT, /* identifier or keyword (text in s/len) */
    T_STR,   /* '...' (unescaped in lit) */
    T_INT,
    T_FLOAT,
    T_TIME, /* t'...' */
    T_BIN,  /* b'...' */
    T_HEX,  /* h'...' */
} tok_kind;

typedef struct tok {
    tok_kind kind;
    size_t pos;
    const char *s; /* source text */
    size_t len;
    sf_sp_op op;
    sf_sp_lit lit; /* literals */
} tok;

typedef struct parser {
    const char *text;
    size_t len, p;
    tok t; /* current token */
    sf_arena *arena;
    sf_sp_error *err;
    int depth;
    int rc; /* first failure: -EINVAL or -ENOMEM */
} parser;

static const char *const keywords[] = {
    "AND",      "OR",     "NOT",  "FOLLOWEDBY", "LIKE", "MATCHES", "ISSUPERSET",
    "ISSUBSET", "EXISTS", "IN",   "START",      "STOP", "WITHIN",  "SECONDS",
    "REPEATS",  "TIMES",  "true", "false",      NULL,
};

const char *sf_sp_op_name(sf_sp_op op)
{
    switch (op) {
    case SF_SP_EQ:
        return "=";
    case SF_SP_NE:
        return "!=";
    case SF_SP_LT:
        return "<";
    case SF_SP_LE:
        return "<=";
    case SF_SP_GT:
        return ">";
    case SF_SP_GE:
        return ">=";
    case SF_SP_IN:
        return "IN";
    case SF_SP_LIKE:
        return "LIKE";
    case SF_SP_MATCHES:
        return "MATCHES";
    case SF_SP_ISSUBSET:
        return "ISSUBSET";
    case SF_SP_ISSUPERSET:
        return "ISSUPERSET";
    }
    return "?";
}

static int fail(parser *ps, size_t pos, const char *fmt, ...) SF_PRINTF(3, 4);
static int fail(parser *ps, size_t pos, const char *fmt, ...)
{
    if (ps->rc)
        return ps->rc;
    ps->rc = -EINVAL;
    ps->err->pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
    va_end(ap);
    return ps->rc;
}

static int oom(parser *ps)
{
    if (!ps->rc) {
        ps->rc = -ENOMEM;
        ps->err->pos = 0;
        snprintf(ps->err->msg, sizeof ps->err->msg, "out of memory");
    }
    return ps->rc;
}

static void *alloc(parser *ps, size_t n)
{
    void *q = sf_arena_alloc(ps->arena, n);
    if (!q) {
        oom(ps);
        return NULL;
    }
    memset(q, 0, n);
    return q;
}

static char *dup_text(parser *ps, const char *s, size_t n)
{
    char *q = alloc(ps, n + 1);
    if (q) {
        memcpy(q, s, n);
        q[n] = 0;
    }
    return q;
}

/* A short, printable excerpt of the token for messages. */
static const char *tok_text(const tok *t, char *buf, size_t n)
{
    if (t->kind == T_EOF)
        return "the end of the pattern";
    size_t l = t->len < 40 ? t->len : 40;
    snprintf(buf, n, "'%.*s%s'", (int)l, t->s, t->len > l ? "..." : "");
    return buf;
}

static bool is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* A quoted literal starting at q (the opening quote); fills t->lit.s with the text between the
 * quotes, unescaped when unescape (\' and \\ are the only escapes of STIX strings). */
static int lex_quoted(parser *ps, size_t q, tok *t, bool unescape)
{
    const char *s = ps->text;
    size_t i = q + 1;
    char *out = alloc(ps, ps->len - q + 1);
    if (!out)
        return ps->rc;
    size_t n = 0;
    for (;;) {
        if (i >= ps->len)
            return fail(ps, q, "unterminated string (no closing ')");
        char c = s[i];
        if (c == '\'')
            break;
        if (c == '\\') {
            if (i + 1 >= ps->len)
                return fail(ps, q, "unterminated string (no closing ')");
            char e = s[i + 1];
            if (e != '\'' && e != '\\')
                return fail(ps, i, "bad escape '\\%c' in a string: only \\' and \\\\ exist", e);
            if (unescape)
                out[n++] = e;
            else {
                out[n++] = c;
                out[n++] = e;
            }
            i += 2;
            continue;
        }
        if (c == 0)
            return fail(ps, i, "NUL byte in a string");
        out[n++] = c;
        i++;
    }
    out[n] = 0;
    t->lit.s = out;
    t->lit.len = n;
    t->lit.pos = t->pos;
    ps->p = i + 1;
    return 0;
}

/* STIX timestamp: YYYY-MM-DDTHH:MM:SS[.fraction]Z, upper-case T and Z, at most 9 fraction
 * digits (nanoseconds, kept exactly). */
static int lex_time(parser *ps, tok *t)
{
    const char *v = t->lit.s;
    size_t n = t->lit.len;
    static const char form[] = "dddd-dd-ddTdd:dd:dd"; /* d: a digit */
    bool shape = n >= 20 && v[n - 1] == 'Z';
    for (size_t i = 0; shape && i < 19; i++)
        if (form[i] == 'd' ? !isdigit((unsigned char)v[i]) : v[i] != form[i])
            shape = false;
    size_t frac = 0;
    if (shape && n > 20) {
        if (v[19] != '.' || n == 21)
            shape = false;
        for (size_t i = 20; shape && i < n - 1; i++, frac++)
            if (!isdigit((unsigned char)v[i]))
                shape = false;
    }
    if (!shape)
        return fail(ps, t->pos, "bad timestamp t'%.40s': expected t'YYYY-MM-DDTHH:MM:SS[.s]Z'", v);
    if (frac > 9)
        return fail(ps, t->pos,
                    "timestamp t'%.40s' has %zu fraction digits: at most 9 (nanoseconds)", v, frac);
    int rc = sf_parse_rfc3339_ns(v, n, &t->lit.i);
    if (rc == -ERANGE)
        return fail(ps, t->pos, "timestamp t'%.40s' is out of range (years 1678..2261)", v);
    if (rc)
        return fail(ps, t->pos, "bad timestamp t'%.40s': no such date or time", v);
    return 0;
}

static int lex(parser *ps)
{
    const char *s = ps->text;
    while (ps->p < ps->len && isspace((unsigned char)s[ps->p]))
        ps->p++;
    tok *t = &ps->t;
    memset(t, 0, sizeof *t);
    t->pos = ps->p;
    t->s = s + ps->p;
    if (ps->p >= ps->len) {
        t->kind = T_EOF;
        return 0;
    }
    size_t start = ps->p;
    char c = s[start], d = start + 1 < ps->len ? s[start + 1] : 0;
    switch (c) {
    case '[':
        t->kind = T_LBRACK;
        break;
    case ']':
        t->kind = T_RBRACK;
        break;
    case '(':
        t->kind = T_LPAREN;
        break;
    case ')':
        t->kind = T_RPAREN;
        break;
    case ',':
        t->kind = T_COMMA;
        break;
    case ':':
        t->kind = T_COLON;
        break;
    case '*':
        t->kind = T_STAR;
        break;
    case '=':
        t->kind = T_OP;
        t->op = SF_SP_EQ;
        if (d == '=') /* the grammar's EQ is '=' | '==' */
            ps->p++;
        break;
    case '!':
        if (d != '=')
            return fail(ps, start, "unexpected '!' (did you mean !=?)");
        t->kind = T_OP;
        t->op = SF_SP_NE;
        ps->p++;
        break;
    case '<':
        t->kind = T_OP;
        t->op = d == '=' ? SF_SP_LE : d == '>' ? SF_SP_NE : SF_SP_LT;
        if (d == '=' || d == '>')
            ps->p++;
        break;
    case '>':
        t->kind = T_OP;
        t->op = d == '=' ? SF_SP_GE : SF_SP_GT;
        if (d == '=')
            ps->p++;
        break;
    case '\'':
        t->kind = T_STR;
        if (lex_quoted(ps, start, t, true))
            return ps->rc;
        t->len = ps->p - start;
        t->lit.kind = SF_SP_LIT_STR;
        return 0;
    default:
        if ((c == 't' || c == 'b' || c == 'h') && d == '\'') {
            t->kind = c == 't' ? T_TIME : c == 'b' ? T_BIN : T_HEX;
            if (lex_quoted(ps, start + 1, t, false))
                return ps->rc;
            t->len = ps->p - start;
            t->lit.pos = start;
            t->lit.kind = c == 't' ? SF_SP_LIT_TIME : c == 'b' ? SF_SP_LIT_BIN : SF_SP_LIT_HEX;
            return c == 't' ? lex_time(ps, t) : 0;
        }
        if (isdigit((unsigned char)c) || ((c == '-' || c == '+') && start + 1 < ps->len &&
                                          (isdigit((unsigned char)d) || d == '.'))) {
            size_t i = start + 1;
            while (i < ps->len && isdigit((unsigned char)s[i]))
                i++;
            bool is_float = false;
            if (i < ps->len && s[i] == '.' && i + 1 < ps->len && isdigit((unsigned char)s[i + 1])) {
                is_float = true;
                i++;
                while (i < ps->len && isdigit((unsigned char)s[i]))
                    i++;
            }
            if (i < ps->len && is_ident_start(s[i]))
                return fail(ps, start, "bad number '%.*s'", (int)(i - start + 1), s + start);
            t->len = i - start;
            t->lit.pos = start;
            t->lit.s = dup_text(ps, s + start, t->len);
            if (!t->lit.s)
                return ps->rc;
            t->lit.len = t->len;
            ps->p = i;
            if (is_float) {
                t->kind = T_FLOAT;
                t->lit.kind = SF_SP_LIT_FLOAT;
                return 0;
            }
            t->kind = T_INT;
            t->lit.kind = SF_SP_LIT_INT;
            const char *digits = t->lit.s + (c == '+');
            if (sf_parse_int64(digits, strlen(digits), &t->lit.i))
                return fail(ps, start, "integer %.40s is out of range", t->lit.s);
            return 0;
        }
        if (c == '.') {
            t->kind = T_DOT;
            break;
        }
        if (is_ident_start(c)) {
            size_t i = start + 1;
            while (i < ps->len && is_ident_char(s[i]))
                i++;
            t->kind = T_IDENT;
            t->len = i - start;
            ps->p = i;
            return 0;
        }
        if ((unsigned char)c < 0x20 || c == 0x7f)
            return fail(ps, start, "unexpected control character 0x%02x", (unsigned char)c);
        return fail(ps, start, "unexpected character '%c'", c);
    }
    ps->p++;
    t->len = ps->p - start;
    return 0;
}

static bool is_kw(const tok *t, const char *kw)
{
    return t->kind == T_IDENT && t->len == strlen(kw) && memcmp(t->s, kw, t->len) == 0;
}

static bool is_any_kw(const tok *t)
{
    for (const char *const *k = keywords; *k; k++)
        if (is_kw(t, *k))
            return true;
    return false;
}

/* "expected X, found Y" with a hint when Y is a keyword written in lower case. */
static int expected(parser *ps, const char *what)
{
    char b[64];
    const tok *t = &ps->t;
    if (t->kind == T_IDENT && !is_any_kw(t)) {
        char up[16];
        if (t->len < sizeof up) {
            for (size_t i = 0; i < t->len; i++)
                up[i] = (char)toupper((unsigned char)t->s[i]);
            up[t->len] = 0;
            for (const char *const *k = keywords; *k; k++)
                if (!strcmp(up, *k))
                    return fail(ps, t->pos, "expected %s, found %s (keywords are upper case: %s)",
                                what, tok_text(t, b, sizeof b), *k);
        }
    }
    return fail(ps, t->pos, "expected %s, found %s", what, tok_text(t, b, sizeof b));
}

static int next(parser *ps)
{
    return lex(ps);
}

static int expect(parser *ps, tok_kind k, const char *what)
{
    if (ps->t.kind != k)
        return expected(ps, what);
    return next(ps);
}

static int enter(parser *ps)
{
    if (++ps->depth > MAX_DEPTH)
        return fail(ps, ps->t.pos, "nested more than %d levels deep", MAX_DEPTH);
    return 0;
}

/* ---- comparison expressions ---- */

static int parse_literal(parser *ps, sf_sp_lit *out)
{
    tok *t = &ps->t;
    switch (t->kind) {
    case T_STR:
    case T_INT:
    case T_FLOAT:
    case T_TIME:
    case T_BIN:
    case T_HEX:
        *out = t->lit;
        return next(ps);
    case T_IDENT:
        if (is_kw(t, "true") || is_kw(t, "false")) {
            out->kind = SF_SP_LIT_BOOL;
            out->i = is_kw(t, "true");
            out->s = is_kw(t, "true") ? "true" : "false";
            out->len = strlen(out->s);
            out->pos = t->pos;
            return next(ps);
        }
        /* fall through */
    default:
        return expected(ps, "a value ('string', number, true/false, t'timestamp', b'..', h'..')");
    }
}

static int parse_path(parser *ps, sf_sp_cmp *c)
{
    tok *t = &ps->t;
    if (t->kind != T_IDENT || is_any_kw(t))
        return expected(ps, "an object path (type:property)");
    c->path_pos = t->pos;
    c->object = dup_text(ps, t->s, t->len);
    if (!c->object || next(ps))
        return ps->rc;
    if (t->kind != T_COLON)
        return expected(ps, "':' after the object type");
    if (next(ps))
        return ps->rc;
    sf_buf b = {0};
    bool first = true;
    for (;;) {
        if (!first)
            sf_buf_putc(&b, '.');
        if (t->kind == T_IDENT) {
            sf_buf_append(&b, t->s, t->len);
        } else if (t->kind == T_STR) {
            sf_buf_putc(&b, '\'');
            sf_buf_append(&b, t->lit.s, t->lit.len);
            sf_buf_putc(&b, '\'');
        } else {
            sf_buf_free(&b);
            return expected(ps, first ? "a property name" : "a property name after '.'");
        }
        first = false;
        if (next(ps))
            break;
        while (t->kind == T_LBRACK) { /* list index: [n] or [*] */
            if (next(ps))
                break;
            if (t->kind == T_INT || t->kind == T_STAR)
                sf_buf_appendf(&b, "[%.*s]", (int)t->len, t->s);
            else {
                expected(ps, "a list index or '*'");
                break;
            }
            if (next(ps) || expect(ps, T_RBRACK, "']' after the list index"))
                break;
        }
        if (ps->rc || t->kind != T_DOT)
            break;
        if (next(ps))
            break;
    }
    if (ps->rc) {
        sf_buf_free(&b);
        return ps->rc;
    }
    if (sf_buf_error(&b)) {
        sf_buf_free(&b);
        return oom(ps);
    }
    c->path = dup_text(ps, b.data ? b.data : "", b.len);
    sf_buf_free(&b);
    return ps->rc;
}

static sf_sp_cmp *parse_cmp_or(parser *ps);

static sf_sp_cmp *parse_cmp_test(parser *ps)
{
    tok *t = &ps->t;
    if (enter(ps))
        return NULL;
    sf_sp_cmp *c = NULL;
    if (t->kind == T_LPAREN) {
        if (next(ps))
            return NULL;
        c = parse_cmp_or(ps);
        if (!c || expect(ps, T_RPAREN, "')' closing the comparison group"))
            return NULL;
        ps->depth--;
        return c;
    }
    c = alloc(ps, sizeof *c);
    if (!c)
        return NULL;
    c->pos = t->pos;
    if (is_kw(t, "EXISTS")) {
        c->kind = SF_SP_EXISTS;
        c->op_pos = t->pos;
        if (next(ps) || parse_path(ps, c))
            return NULL;
        ps->depth--;
        return c;
    }
    c->kind = SF_SP_TEST;
    if (parse_path(ps, c))
        return NULL;
    if (is_kw(t, "NOT")) {
        c->negated = true;
        if (next(ps))
            return NULL;
    }
    c->op_pos = t->pos;
    if (t->kind == T_OP)
        c->op = t->op;
    else if (is_kw(t, "IN"))
        c->op = SF_SP_IN;
    else if (is_kw(t, "LIKE"))
        c->op = SF_SP_LIKE;
    else if (is_kw(t, "MATCHES"))
        c->op = SF_SP_MATCHES;
    else if (is_kw(t, "ISSUBSET"))
        c->op = SF_SP_ISSUBSET;
    else if (is_kw(t, "ISSUPERSET"))
        c->op = SF_SP_ISSUPERSET;
    else {
        expected(ps, "a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES)");
        return NULL;
    }
    if (next(ps))
        return NULL;
    if (c->op == SF_SP_IN) {
        if (t->kind != T_LPAREN) {
            expected(ps, "'(' opening the set after IN");
            return NULL;
        }
        if (next(ps))
            return NULL;
        size_t cap = 0;
        while (t->kind != T_RPAREN) {
            if (c->nvals == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                sf_sp_lit *v = alloc(ps, ncap * sizeof *v);
                if (!v)
                    return NULL;
                if (c->nvals)
                    memcpy(v, c->vals, c->nvals * sizeof *v);
                c->vals = v;
                cap = ncap;
            }
            if (parse_literal(ps, &c->vals[c->nvals]))
                return NULL;
            c->nvals++;
            if (t->kind == T_COMMA) {
                if (next(ps))
                    return NULL;
                continue;
            }
            if (t->kind != T_RPAREN) {
                expected(ps, "',' or ')' in the set");
                return NULL;
            }
        }
        if (next(ps))
            return NULL;
    } else {
        c->vals = alloc(ps, sizeof *c->vals);
        if (!c->vals || parse_literal(ps, c->vals))
            return NULL;
        c->nvals = 1;
    }
    ps->depth--;
    return c;
}

static sf_sp_cmp *join_cmp(parser *ps, sf_sp_cmp_kind k, sf_sp_cmp *l, sf_sp_cmp *r)
{
    sf_sp_cmp *c = alloc(ps, sizeof *c);
    if (!c)
        return NULL;
    c->kind = k;
    c->pos = l->pos;
    c->l = l;
    c->r = r;
    return c;
}

static sf_sp_cmp *parse_cmp_and(parser *ps)
{
    sf_sp_cmp *l = parse_cmp_test(ps);
    while (l && is_kw(&ps->t, "AND")) {
        if (next(ps))
            return NULL;
        sf_sp_cmp *r = parse_cmp_test(ps);
        l = r ? join_cmp(ps, SF_SP_AND, l, r) : NULL;
    }
    return l;
}

static sf_sp_cmp *parse_cmp_or(parser *ps)
{
    sf_sp_cmp *l = parse_cmp_and(ps);
    while (l && is_kw(&ps->t, "OR")) {
        if (next(ps))
            return NULL;
        sf_sp_cmp *r = parse_cmp_and(ps);
        l = r ? join_cmp(ps, SF_SP_OR, l, r) : NULL;
    }
    return l;
}

/* ---- observation expressions ---- */

static sf_sp_obs *parse_obs_fby(parser *ps);

static int parse_qualifier(parser *ps, sf_sp_obs *o)
{
    tok *t = &ps->t;
    sf_sp_qual q = {.pos = t->pos};
    if (is_kw(t, "START")) {
        q.kind = SF_SP_Q_START_STOP;
        if (next(ps))
            return ps->rc;
        if (t->kind != T_TIME)
            return expected(ps, "a timestamp t'YYYY-MM-DDTHH:MM:SSZ' after START");
        q.start_ns = t->lit.i;
        if (next(ps))
            return ps->rc;
        if (!is_kw(t, "STOP"))
            return expected(ps, "STOP after the START timestamp");
        if (next(ps))
            return ps->rc;
        if (t->kind != T_TIME)
            return expected(ps, "a timestamp t'YYYY-MM-DDTHH:MM:SSZ' after STOP");
        q.stop_ns = t->lit.i;
    } else if (is_kw(t, "WITHIN")) {
        q.kind = SF_SP_Q_WITHIN;
        if (next(ps))
            return ps->rc;
        if (t->kind != T_INT && t->kind != T_FLOAT)
            return expected(ps, "a number of seconds after WITHIN");
        q.n = t->lit;
        if (next(ps))
            return ps->rc;
        if (!is_kw(t, "SECONDS"))
            return expected(ps, "SECONDS");
    } else {
        q.kind = SF_SP_Q_REPEATS;
        if (next(ps))
            return ps->rc;
        if (t->kind != T_INT)
            return expected(ps, "a number after REPEATS");
        q.n = t->lit;
        if (next(ps))
            return ps->rc;
        if (!is_kw(t, "TIMES"))
            return expected(ps, "TIMES");
    }
    if (next(ps))
        return ps->rc;
    sf_sp_qual *v = alloc(ps, (o->nquals + 1) * sizeof *v);
    if (!v)
        return ps->rc;
    if (o->nquals)
        memcpy(v, o->quals, o->nquals * sizeof *v);
    v[o->nquals++] = q;
    o->quals = v;
    return 0;
}

static sf_sp_obs *parse_obs_qual(parser *ps)
{
    tok *t = &ps->t;
    if (enter(ps))
        return NULL;
    sf_sp_obs *o = NULL;
    size_t pos = t->pos;
    if (t->kind == T_LBRACK) {
        if (next(ps))
            return NULL;
        o = alloc(ps, sizeof *o);
        if (!o)
            return NULL;
        o->kind = SF_SP_OBS;
        o->pos = pos;
        if (t->kind == T_RBRACK) {
            fail(ps, t->pos, "empty observation []: expected a comparison");
            return NULL;
        }
        o->cmp = parse_cmp_or(ps);
        if (!o->cmp)
            return NULL;
        if (t->kind != T_RBRACK) {
            expected(ps, "']', AND or OR");
            return NULL;
        }
        if (next(ps))
            return NULL;
    } else if (t->kind == T_LPAREN) {
        if (next(ps))
            return NULL;
        o = parse_obs_fby(ps);
        if (!o)
            return NULL;
        if (t->kind != T_RPAREN) {
            expected(ps, "')' closing the observation group");
            return NULL;
        }
        if (next(ps))
            return NULL;
        if (o->nquals) { /* qualifiers after the ')' belong to a new node around the group */
            sf_sp_obs *w = alloc(ps, sizeof *w);
            if (!w)
                return NULL;
            w->kind = SF_SP_OBS_GROUP;
            w->pos = pos;
            w->l = o;
            o = w;
        }
    } else {
        expected(ps, "'[' starting an observation");
        return NULL;
    }
    while (is_kw(t, "START") || is_kw(t, "WITHIN") || is_kw(t, "REPEATS"))
        if (parse_qualifier(ps, o))
            return NULL;
    ps->depth--;
    return o;
}

static sf_sp_obs *join_obs(parser *ps, sf_sp_obs_kind k, sf_sp_obs *l, sf_sp_obs *r)
{
    sf_sp_obs *o = alloc(ps, sizeof *o);
    if (!o)
        return NULL;
    o->kind = k;
    o->pos = l->pos;
    o->l = l;
    o->r = r;
    return o;
}

static sf_sp_obs *parse_obs_and(parser *ps)
{
    sf_sp_obs *l = parse_obs_qual(ps);
    while (l && is_kw(&ps->t, "AND")) {
        if (next(ps))
            return NULL;
        sf_sp_obs *r = parse_obs_qual(ps);
        l = r ? join_obs(ps, SF_SP_OBS_AND, l, r) : NULL;
    }
    return l;
}

static sf_sp_obs *parse_obs_or(parser *ps)
{
    sf_sp_obs *l = parse_obs_and(ps);
    while (l && is_kw(&ps->t, "OR")) {
        if (next(ps))
            return NULL;
        sf_sp_obs *r = parse_obs_and(ps);
        l = r ? join_obs(ps, SF_SP_OBS_OR, l, r) : NULL;
    }
    return l;
}

static sf_sp_obs *parse_obs_fby(parser *ps)
{
    sf_sp_obs *l = parse_obs_or(ps);
    while (l && is_kw(&ps->t, "FOLLOWEDBY")) {
        size_t pos = ps->t.pos;
        if (next(ps))
            return NULL;
        sf_sp_obs *r = parse_obs_or(ps);
        l = r ? join_obs(ps, SF_SP_FOLLOWEDBY, l, r) : NULL;
        if (l)
            l->pos = pos;
    }
    return l;
}

int sf_stix_pattern_parse(const char *text, size_t len, sf_stix_pattern **out, sf_sp_error *err)
{
    *out = NULL;
    memset(err, 0, sizeof *err);
    parser ps = {.text = text, .len = len, .err = err};
    ps.arena = sf_arena_new(4096);
    if (!ps.arena)
        return oom(&ps);
    sf_stix_pattern *p = sf_arena_alloc(ps.arena, sizeof *p);
    if (!p) {
        sf_arena_free(ps.arena);
        return oom(&ps);
    }
    p->arena = ps.arena;
    p->root = NULL;
    if (lex(&ps) == 0) {
        if (ps.t.kind == T_EOF)
            fail(&ps, 0, "empty pattern: expected '[' starting an observation");
        else
            p->root = parse_obs_fby(&ps);
        if (p->root && ps.t.kind != T_EOF)
            expected(&ps, "AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern");
    }
    if (ps.rc || !p->root) {
        sf_arena_free(ps.arena);
        return ps.rc ? ps.rc : -EINVAL;
    }
    *out = p;
    return 0;
}

const sf_sp_obs *sf_stix_pattern_root(const sf_stix_pattern *p)
{
    return p->root;
}

void sf_stix_pattern_free(sf_stix_pattern *p)
{
    if (p)
        sf_arena_free(p->arena);
}
