/* jdoc: cJSON 1.7's parser, re-done without an allocation per node (see jdoc.h). Each function
 * mirrors the cJSON function of the same name (cJSON.c v1.7.15: parse_value, parse_number,
 * parse_string, utf16_literal_to_utf8, parse_array, parse_object, buffer_skip_whitespace),
 * offsets included, so acceptance, values and error positions are the same — as Debian ships
 * it (1.7.15-1+deb12u4): with the fixes of CVE-2023-26819 (numbers of any length, upstream
 * a328d65) and CVE-2023-53154 (a name must follow '{' or ',', upstream 3ef4e4e). */
#include "core/jdoc.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NESTING_LIMIT CJSON_NESTING_LIMIT

/* Arena: nodes are taken from the bottom of a chunk (aligned), strings from its top. */
typedef struct chunk {
    struct chunk *next;
    size_t lo, hi; /* free space is data[lo, hi) */
    max_align_t data[];
} chunk;

struct sf_jdoc {
    chunk *head;
    size_t next_size;
};

typedef struct rd {
    const unsigned char *s;
    size_t len, off, depth;
    sf_jdoc *doc; /* NULL: check only */
    sf_jdoc_want *want;
    size_t nwant;
    bool oom;
} rd;

static chunk *new_chunk(sf_jdoc *d, size_t need)
{
    size_t size = d->next_size > need ? d->next_size : need;
    chunk *c = malloc(sizeof *c + size);
    if (!c)
        return NULL;
    c->next = d->head;
    c->lo = 0;
    c->hi = size;
    d->head = c;
    return c;
}

static cJSON *new_node(rd *r)
{
    const size_t sz = sizeof(cJSON);
    chunk *c = r->doc->head;
    if (!c || c->hi - c->lo < sz) {
        if (!(c = new_chunk(r->doc, sz))) {
            r->oom = true;
            return NULL;
        }
    }
    cJSON *n = (cJSON *)((unsigned char *)c->data + c->lo);
    c->lo += sz; /* sizeof(cJSON) is a multiple of its alignment */
    memset(n, 0, sz);
    return n;
}

static unsigned char *new_bytes(rd *r, size_t n)
{
    chunk *c = r->doc->head;
    if (!c || c->hi - c->lo < n) {
        if (!(c = new_chunk(r->doc, n + sizeof(cJSON)))) {
            r->oom = true;
            return NULL;
        }
    }
    c->hi -= n;
    return (unsigned char *)c->data + c->hi;
}

void sf_jdoc_free(sf_jdoc *doc)
{
    if (!doc)
        return;
    chunk *c = doc->head;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(doc);
}

static void skip_ws(rd *r)
{
    if (r->off >= r->len)
        return;
    while (r->off < r->len && r->s[r->off] <= 32)
        r->off++;
    if (r->off == r->len)
        r->off--;
}

static bool parse_value(rd *r, cJSON *item);

static bool parse_number(rd *r, cJSON *item)
{
    char small[64], *num = small;
    char *after = NULL;
    size_t i;
    bool digits_only = true, point = false;
    const unsigned char *c = r->s + r->off;
    for (i = 0; r->off + i < r->len; i++) {
        if (c[i] >= '0' && c[i] <= '9')
            continue;
        if (c[i] == '+' || c[i] == '-' || c[i] == 'e' || c[i] == 'E')
            digits_only = digits_only && c[i] == '-' && i == 0;
        else if (c[i] == '.')
            digits_only = false, point = true;
        else
            break;
    }
    double d;
    size_t neg = c[0] == '-';
    if (digits_only && i > neg && i - neg <= 15) {
        /* -?[0-9]{1,15}: exact in a double, what strtod returns */
        int64_t v = 0;
        for (size_t k = neg; k < i; k++)
            v = v * 10 + (c[k] - '0');
        d = neg ? -(double)v : (double)v;
        r->off += i;
    } else {
        if (i >= sizeof small && !(num = malloc(i + 1))) {
            r->oom = true;
            return false;
        }
        memcpy(num, c, i);
        num[i] = '\0';
        if (point) {
            char dp = localeconv()->decimal_point[0];
            for (size_t k = 0; k < i; k++)
                if (num[k] == '.')
                    num[k] = dp;
        }
        d = strtod(num, &after);
        size_t used = (size_t)(after - num);
        if (num != small)
            free(num);
        if (used == 0)
            return false;
        r->off += used;
    }
    if (item) {
        item->valuedouble = d;
        item->valueint = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
        item->type = cJSON_Number;
    }
    return true;
}

static unsigned parse_hex4(const unsigned char *in)
{
    unsigned h = 0;
    for (size_t i = 0; i < 4; i++) {
        if (in[i] >= '0' && in[i] <= '9')
            h += (unsigned)in[i] - '0';
        else if (in[i] >= 'A' && in[i] <= 'F')
            h += 10u + in[i] - 'A';
        else if (in[i] >= 'a' && in[i] <= 'f')
            h += 10u + in[i] - 'a';
        else
            return 0;
        if (i < 3)
            h <<= 4;
    }
    return h;
}

/* \uXXXX (or a surrogate pair) at in: writes UTF-8 at *out (if out), returns the sequence's
 * length or 0 if invalid. */
static unsigned utf16_literal(const unsigned char *in, const unsigned char *end,
                              unsigned char **out)
{
    unsigned long cp;
    unsigned seq;
    if (end - in < 6)
        return 0;
    unsigned first = parse_hex4(in + 2);
    if (first >= 0xDC00 && first <= 0xDFFF)
        return 0;
    if (first >= 0xD800 && first <= 0xDBFF) {
        const unsigned char *second = in + 6;
        if (end - second < 6 || second[0] != '\\' || second[1] != 'u')
            return 0;
        unsigned sc = parse_hex4(second + 2);
        if (sc < 0xDC00 || sc > 0xDFFF)
            return 0;
        cp = 0x10000 + (((first & 0x3FF) << 10) | (sc & 0x3FF));
        seq = 12;
    } else {
        cp = first;
        seq = 6;
    }
    unsigned n;
    unsigned char mark;
    if (cp < 0x80)
        n = 1, mark = 0;
    else if (cp < 0x800)
        n = 2, mark = 0xC0;
    else if (cp < 0x10000)
        n = 3, mark = 0xE0;
    else if (cp <= 0x10FFFF)
        n = 4, mark = 0xF0;
    else
        return 0;
    if (!out)
        return seq;
    unsigned char *o = *out;
    for (unsigned k = n - 1; k > 0; k--) {
        o[k] = (unsigned char)((cp | 0x80) & 0xBF);
        cp >>= 6;
    }
    o[0] = n > 1 ? (unsigned char)((cp | mark) & 0xFF) : (unsigned char)(cp & 0x7F);
    *out += n;
    return seq;
}

/* Unescapes the string body [ip, ie) into out (if out). False if an escape is invalid (*failp =
 * where). */
static bool unescape(const unsigned char *ip, const unsigned char *ie, unsigned char *out,
                     unsigned char **outend, const unsigned char **failp)
{
    unsigned char *op = out;
    while (ip < ie) {
        const unsigned char *bs = memchr(ip, '\\', (size_t)(ie - ip));
        const unsigned char *stop = bs ? bs : ie;
        if (op) {
            memcpy(op, ip, (size_t)(stop - ip));
            op += stop - ip;
        }
        ip = stop;
        if (!bs)
            break;
        unsigned seq = 2;
        unsigned char c;
        switch (ip[1]) {
        case 'b':
            c = '\b';
            break;
        case 'f':
            c = '\f';
            break;
        case 'n':
            c = '\n';
            break;
        case 'r':
            c = '\r';
            break;
        case 't':
            c = '\t';
            break;
        case '"':
        case '\\':
        case '/':
            c = ip[1];
            break;
        case 'u':
            seq = utf16_literal(ip, ie, op ? &op : NULL);
            if (!seq) {
                *failp = ip;
                return false;
            }
            ip += seq;
            continue;
        default:
            *failp = ip;
            return false;
        }
        if (op)
            *op++ = c;
        ip += seq;
    }
    if (op)
        *op = '\0';
    if (outend)
        *outend = op;
    return true;
}

/* The closing quote of the string whose opening quote is at p (cJSON's scan), or NULL; *esc =
 * backslashes seen. */
static const unsigned char *string_close(const unsigned char *p, const unsigned char *lim,
                                         size_t *esc)
{
    const unsigned char *q = p + 1, *quote = NULL;
    bool searched = false;
    *esc = 0;
    while (q < lim) {
        if (!searched || (quote && quote < q)) { /* the next quote not known yet */
            quote = memchr(q, '"', (size_t)(lim - q));
            searched = true;
        }
        const unsigned char *bs = memchr(q, '\\', (size_t)((quote ? quote : lim) - q));
        if (!bs)
            return quote;
        if (bs + 1 >= lim)
            return NULL; /* a backslash as the last input byte */
        (*esc)++;
        q = bs + 2;
    }
    return NULL;
}

/* Parses the string at r->off; *out gets the text (building) or stays NULL. */
static bool parse_string(rd *r, char **out)
{
    const unsigned char *s = r->s, *lim = s + r->len, *start = s + r->off;
    if (r->off >= r->len || *start != '"') {
        r->off++;
        return false;
    }
    size_t esc;
    const unsigned char *ie = string_close(start, lim, &esc);
    if (!ie) {
        r->off++;
        return false;
    }
    unsigned char *o = NULL;
    if (r->doc) {
        if (!(o = new_bytes(r, (size_t)(ie - start) - esc + 1))) {
            r->off++;
            return false;
        }
    }
    const unsigned char *fail = NULL;
    if (!esc) {
        if (o) {
            memcpy(o, start + 1, (size_t)(ie - start - 1));
            o[ie - start - 1] = '\0';
        }
    } else if (!unescape(start + 1, ie, o, NULL, &fail)) {
        r->off = (size_t)(fail - s);
        return false;
    }
    if (out)
        *out = (char *)o;
    r->off = (size_t)(ie - s) + 1;
    return true;
}

static bool parse_array(rd *r, cJSON *item)
{
    cJSON *head = NULL, *cur = NULL;
    if (r->depth >= NESTING_LIMIT)
        return false;
    r->depth++;
    r->off++;
    skip_ws(r);
    if (r->off < r->len && r->s[r->off] == ']')
        goto success;
    if (r->off >= r->len) {
        r->off--;
        return false;
    }
    r->off--;
    do {
        cJSON *n = NULL;
        if (r->doc) {
            if (!(n = new_node(r)))
                return false;
            if (!head) {
                head = cur = n;
            } else {
                cur->next = n;
                n->prev = cur;
                cur = n;
            }
        }
        r->off++;
        skip_ws(r);
        if (!parse_value(r, n))
            return false;
        skip_ws(r);
    } while (r->off < r->len && r->s[r->off] == ',');
    if (r->off >= r->len || r->s[r->off] != ']')
        return false;
success:
    r->depth--;
    if (head)
        head->prev = cur;
    if (item) {
        item->type = cJSON_Array;
        item->child = head;
    }
    r->off++;
    return true;
}

/* A top-level member's key [ks, ke) (raw, between the quotes): records the value span about to
 * be parsed if it is wanted. Returns the want entry or NULL. */
static sf_jdoc_want *wanted(rd *r, const unsigned char *ks, const unsigned char *ke, size_t esc)
{
    char small[128];
    char *key = NULL;
    size_t kl = (size_t)(ke - ks);
    if (esc) { /* compare the unescaped key (cut at an escaped NUL, like strcmp) */
        char *buf = kl < sizeof small ? small : malloc(kl + 1);
        const unsigned char *fail;
        if (!buf)
            return NULL;
        unsigned char *oe;
        unescape(ks, ke, (unsigned char *)buf, &oe, &fail); /* checked: cannot fail */
        key = buf;
        kl = strlen(buf);
    }
    sf_jdoc_want *hit = NULL;
    for (size_t i = 0; i < r->nwant && !hit; i++) {
        sf_jdoc_want *w = &r->want[i];
        if (!w->vs && strlen(w->key) == kl && memcmp(key ? key : (const char *)ks, w->key, kl) == 0)
            hit = w;
    }
    if (key && key != small)
        free(key);
    return hit;
}

static bool parse_object(rd *r, cJSON *item)
{
    cJSON *head = NULL, *cur = NULL;
    if (r->depth >= NESTING_LIMIT)
        return false;
    r->depth++;
    if (r->off >= r->len || r->s[r->off] != '{')
        return false;
    bool top = r->depth == 1 && r->nwant;
    r->off++;
    skip_ws(r);
    if (r->off < r->len && r->s[r->off] == '}')
        goto success;
    if (r->off >= r->len) {
        r->off--;
        return false;
    }
    r->off--;
    do {
        cJSON *n = NULL;
        if (r->doc) {
            if (!(n = new_node(r)))
                return false;
            if (!head) {
                head = cur = n;
            } else {
                cur->next = n;
                n->prev = cur;
                cur = n;
            }
        }
        if (r->off + 1 >= r->len)
            return false; /* nothing after the comma (Debian's CVE-2023-53154 fix) */
        r->off++;
        skip_ws(r);
        size_t ks = r->off;
        char *key = NULL;
        if (!parse_string(r, &key))
            return false;
        if (n)
            n->string = key;
        sf_jdoc_want *w = NULL;
        if (top) {
            size_t esc = memchr(r->s + ks + 1, '\\', r->off - ks - 2) != NULL;
            w = wanted(r, r->s + ks + 1, r->s + r->off - 1, esc);
        }
        skip_ws(r);
        if (r->off >= r->len || r->s[r->off] != ':')
            return false;
        r->off++;
        skip_ws(r);
        size_t vs = r->off;
        if (!parse_value(r, n))
            return false;
        if (w) {
            w->vs = (const char *)r->s + vs;
            w->ve = (const char *)r->s + r->off;
        }
        skip_ws(r);
    } while (r->off < r->len && r->s[r->off] == ',');
    if (r->off >= r->len || r->s[r->off] != '}')
        return false;
success:
    r->depth--;
    if (head)
        head->prev = cur;
    if (item) {
        item->type = cJSON_Object;
        item->child = head;
    }
    r->off++;
    return true;
}

static bool parse_value(rd *r, cJSON *item)
{
    const unsigned char *c = r->s + r->off;
    size_t n = r->len - r->off;
    if (n >= 4 && memcmp(c, "null", 4) == 0) {
        if (item)
            item->type = cJSON_NULL;
        r->off += 4;
        return true;
    }
    if (n >= 5 && memcmp(c, "false", 5) == 0) {
        if (item)
            item->type = cJSON_False;
        r->off += 5;
        return true;
    }
    if (n >= 4 && memcmp(c, "true", 4) == 0) {
        if (item) {
            item->type = cJSON_True;
            item->valueint = 1;
        }
        r->off += 4;
        return true;
    }
    if (n == 0)
        return false;
    if (*c == '"') {
        char *v = NULL;
        if (!parse_string(r, &v))
            return false;
        if (item) {
            item->type = cJSON_String;
            item->valuestring = v;
        }
        return true;
    }
    if (*c == '-' || (*c >= '0' && *c <= '9'))
        return parse_number(r, item);
    if (*c == '[')
        return parse_array(r, item);
    if (*c == '{')
        return parse_object(r, item);
    return false;
}

static int run(rd *r, cJSON *root, const char **endp, int *type)
{
    const char *p = (const char *)r->s;
    bool ok = false;
    if (p && r->len) {
        if (r->len > 4 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
            r->off = 3;
        skip_ws(r);
        cJSON probe = {0};
        ok = parse_value(r, root ? root : &probe);
        if (type)
            *type = root ? root->type : probe.type;
    }
    if (ok) {
        if (endp)
            *endp = p + r->off;
        return 0;
    }
    if (endp)
        *endp = p ? p + (r->off < r->len ? r->off : r->len ? r->len - 1 : 0) : NULL;
    return r->oom ? -ENOMEM : -EINVAL;
}

int sf_jdoc_check(const char *p, size_t len, const char **endp, int *type, sf_jdoc_want *want,
                  size_t nwant)
{
    rd r = {.s = (const unsigned char *)p, .len = len, .want = want, .nwant = nwant};
    for (size_t i = 0; i < nwant; i++)
        want[i].vs = want[i].ve = NULL;
    return run(&r, NULL, endp, type);
}

int sf_jdoc_parse(const char *p, size_t len, cJSON **root, sf_jdoc **doc, const char **endp)
{
    *root = NULL;
    *doc = NULL;
    sf_jdoc *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    /* one chunk holds a typical event's tree: about one node per 40 bytes, plus its text */
    d->next_size = len * 2 + 4 * sizeof(cJSON);
    rd r = {.s = (const unsigned char *)p, .len = len, .doc = d};
    cJSON *n = new_node(&r);
    int rc = n ? run(&r, n, endp, NULL) : -ENOMEM;
    if (rc) {
        sf_jdoc_free(d);
        return rc;
    }
    *root = n;
    *doc = d;
    return 0;
}

char *sf_jdoc_strdup(const char *vs, const char *ve)
{
    const unsigned char *s = (const unsigned char *)vs, *e = (const unsigned char *)ve;
    if (e - s < 2 || *s != '"')
        return NULL;
    unsigned char *out = malloc((size_t)(e - s));
    const unsigned char *fail;
    if (out && !unescape(s + 1, e - 1, out, NULL, &fail)) {
        free(out);
        out = NULL;
    }
    return (char *)out;
}
