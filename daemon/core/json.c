/* json: see json.h. */
#include "core/json.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Whether a byte of w is < 0x20, '"' or '\\' (SWAR: a zero byte of x is found by
 * (x - 0x01..) & ~x & 0x80..; bytes >= 0x80 are never special). */
static inline bool has_special(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\');
    uint64_t zq = (quote - ones) & ~quote, zb = (bslash - ones) & ~bslash;
    uint64_t ctl = (w - ones * 0x20) & ~w; /* a byte < 0x20 (borrows only make it err true) */
    return ((zq | zb | ctl) & high) != 0;
}

int sf_json_str_append(sf_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = sf_buf_reserve(out, n + 2);
    if (rc)
        return rc;
    if ((rc = sf_buf_putc(out, '"')))
        return rc;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        /* plain bytes, eight at a time: no byte < 0x20, '"' or '\\' */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (has_special(w))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if ((rc = sf_buf_append(out, s + run, i - run)))
            return rc;
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if ((rc = sf_buf_append(out, esc, elen)))
            return rc;
    }
    if ((rc = sf_buf_append(out, s + run, n - run)))
        return rc;
    return sf_buf_putc(out, '"');
}

static bool looks_json(const char *rec, size_t len)
{
    size_t i = 0;
    while (i < len && (rec[i] == ' ' || rec[i] == '\t'))
        i++;
    return i < len && (rec[i] == '{' || rec[i] == '[');
}

int sf_json_record_append(sf_buf *out, const char *rec, size_t len, bool embed_json,
                          bool single_line)
{
    if (!rec) {
        rec = "";
        len = 0;
    }
    if (embed_json && looks_json(rec, len) && !(single_line && memchr(rec, '\n', len)))
        return sf_buf_append(out, rec, len);
    return sf_json_str_append(out, rec, len);
}

int sf_json_cstr_append(sf_buf *out, const char *s)
{
    return sf_json_str_append(out, s ? s : "", s ? strlen(s) : 0);
}

/* ---- finding a set of members in one pass ---- */

static size_t key_hash(const char *s) /* FNV-1a */
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SF_JSON_KEYS_SLOTS;
}

void sf_json_keys_init(sf_json_keys *k, const char *const *names, size_t n)
{
    memset(k, 0, sizeof *k);
    k->names = names;
    k->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t h = key_hash(names[i]);
        while (k->slot[h])
            h = (h + 1) % SF_JSON_KEYS_SLOTS;
        k->slot[h] = (unsigned char)(i + 1);
    }
}

void sf_json_find(const cJSON *obj, const sf_json_keys *k, const cJSON **found)
{
    for (size_t i = 0; i < k->n; i++)
        found[i] = NULL;
    /* the members cJSON_GetObjectItemCaseSensitive looks at: it stops at one without a name
     * (an array's elements) */
    for (const cJSON *c = obj ? obj->child : NULL; c && c->string; c = c->next) {
        for (size_t h = key_hash(c->string); k->slot[h]; h = (h + 1) % SF_JSON_KEYS_SLOTS) {
            size_t i = k->slot[h] - 1u;
            if (strcmp(k->names[i], c->string) == 0) {
                if (!found[i]) /* the first member of a name, as a lookup finds it */
                    found[i] = c;
                break;
            }
        }
    }
}

/* ---- cJSON's allocation hooks ---- */

static _Thread_local sf_arena *cur_arena;

static void *hook_malloc(size_t n)
{
    sf_arena *a = cur_arena;
    return a ? sf_arena_alloc(a, n) : malloc(n);
}

static void hook_free(void *p)
{
    sf_arena *a = cur_arena;
    if (a && sf_arena_owns(a, p))
        return; /* dies with the arena */
    free(p);
}

static void install_hooks(void)
{
    cJSON_Hooks h = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&h);
}

void sf_json_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_hooks);
}

sf_arena *sf_json_arena_set(sf_arena *a)
{
    sf_arena *prev = cur_arena;
    cur_arena = a;
    return prev;
}

cJSON *sf_json_parse_in(sf_arena *a, const char *p, size_t len, const char **endp)
{
    sf_json_init();
    sf_arena *prev = sf_json_arena_set(a);
    cJSON *r = cJSON_ParseWithLengthOpts(p, len, endp, 0);
    sf_json_arena_set(prev);
    return r;
}
