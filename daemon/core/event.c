/* event: API page parsing with exact byte spans.
 *
 * cJSON keeps numbers as doubles and re-serialises with its own spacing, so it cannot give us
 * byte-faithful raw events or exact int64 nanosecond timestamps. We therefore walk the page's
 * top level ourselves, let cJSON parse each element of "data" (cJSON_ParseWithLengthOpts
 * returns where the element ended: that is the exact span), and read the id's and timestamp's
 * own text when they are numbers. cJSON parses into an arena (core/json: no malloc per node,
 * one free per event) that the event keeps with its tree; or, for pages whose trees no format
 * reads (raw output), into a scratch arena on the stack that is dropped, and the tree is parsed
 * again from raw only if something asks for it (sf_event_load). */
#include "core/event.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/util.h"

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *string_end(const char *p, const char *end)
{
    /* p at opening quote */
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (*p == '"')
            return p + 1;
    }
    return NULL;
}

const char *sf_json_value_end(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return string_end(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = string_end(p, end);
                if (!p)
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *s = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t')
        p++;
    return p > s ? p : NULL;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) SF_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The raw text of the value of the k-th member of the object [p, end) (checked by cJSON). */
static int member_span(const char *p, const char *end, int k, const char **vs, const char **ve)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -EINVAL;
    p++;
    for (int i = 0;; i++) {
        p = skip_ws(p, end);
        const char *ke = p < end && *p == '"' ? string_end(p, end) : NULL;
        if (!ke)
            return -EINVAL;
        p = skip_ws(ke, end);
        if (p >= end || *p != ':')
            return -EINVAL;
        p = skip_ws(p + 1, end);
        const char *e = sf_json_value_end(p, end);
        if (!e)
            return -EINVAL;
        if (i == k) {
            *vs = p;
            *ve = e;
            return 0;
        }
        p = skip_ws(e, end);
        if (p >= end || *p != ',')
            return -EINVAL;
        p++;
    }
}

/* The first member named key of obj (as cJSON_GetObjectItemCaseSensitive) and its index. */
static const cJSON *member(const cJSON *obj, const char *key, int *k)
{
    *k = 0;
    for (const cJSON *c = obj->child; c; c = c->next, (*k)++)
        if (c->string && strcmp(c->string, key) == 0)
            return c;
    return NULL;
}

/* Fills id/ts of ev from obj, the tree of ev->raw: numbers from their own text (int64 exact). */
static int event_fill(sf_event *ev, const cJSON *obj, char *err, size_t errlen)
{
    const char *vs, *ve, *rend = ev->raw + ev->raw_len;
    int k;
    const cJSON *id = member(obj, "id", &k);
    if (cJSON_IsString(id) && id->valuestring[0]) {
        if (!(ev->id = sf_strdup(id->valuestring)))
            return -ENOMEM;
    } else if (cJSON_IsNumber(id) && member_span(ev->raw, rend, k, &vs, &ve) == 0) {
        if (!(ev->id = sf_strndup(vs, (size_t)(ve - vs))))
            return -ENOMEM;
    } else {
        set_err(err, errlen, "event has no id");
        return -EINVAL;
    }
    ev->ts_ns = SF_TIME_UNSET;
    int64_t v;
    const cJSON *ts = member(obj, "timestamp", &k);
    if (cJSON_IsString(ts)) {
        const char *t = ts->valuestring;
        if (sf_parse_rfc3339_ns(t, strlen(t), &v) == 0 || sf_parse_int64(t, strlen(t), &v) == 0)
            ev->ts_ns = v;
    } else if (cJSON_IsNumber(ts) && member_span(ev->raw, rend, k, &vs, &ve) == 0 &&
               sf_parse_int64(vs, (size_t)(ve - vs), &v) == 0) {
        ev->ts_ns = v;
    }
    return 0;
}

/* A response body the events of a page point into (sf_page_parse_owned). Events live on the
 * loop thread: a plain count. */
typedef struct sf_chunk {
    size_t refs;
    char *data;
    size_t len;
} sf_chunk;

static void chunk_unref(sf_chunk *c)
{
    if (c && --c->refs == 0) {
        free(c->data);
        free(c);
    }
}

int sf_events_compact(sf_event *evs, size_t n)
{
    sf_chunk *c = n ? evs[0].chunk : NULL;
    if (!c)
        return 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (evs[i].chunk == c)
            kept += evs[i].raw_len;
    if (kept * 2 >= c->len)
        return 0;
    size_t copied = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        sf_event *ev = &evs[i];
        if (ev->chunk != c)
            continue;
        char *own = sf_strndup(ev->raw, ev->raw_len);
        if (!own) {
            rc = -ENOMEM;
            break;
        }
        ev->raw = own;
        ev->chunk = NULL;
        copied++;
    }
    while (copied--) /* (after the loop: the last may free c) */
        chunk_unref(c);
    return rc;
}

void sf_event_free(sf_event *ev)
{
    if (!ev)
        return;
    free(ev->id);
    if (ev->chunk)
        chunk_unref(ev->chunk);
    else
        free(ev->raw);
    if (ev->arena)
        sf_arena_free(ev->arena); /* the tree dies with it */
    else
        cJSON_Delete(ev->json);
    memset(ev, 0, sizeof *ev);
}

void sf_event_unload(sf_event *ev)
{
    if (!ev || !ev->json)
        return;
    if (ev->arena)
        sf_arena_free(ev->arena);
    else
        cJSON_Delete(ev->json);
    ev->arena = NULL;
    ev->json = NULL;
}

int sf_event_load(const sf_event *ev)
{
    if (ev->json || !ev->raw)
        return 0;
    sf_event *m = (sf_event *)ev; /* the tree is a cache of raw (see event.h) */
    sf_arena *a = sf_arena_new(m->tree_size ? m->tree_size : 3 * m->raw_len + 1024);
    if (!a)
        return -ENOMEM;
    cJSON *t = sf_json_parse_in(a, m->raw, m->raw_len, NULL);
    if (!t) { /* raw was checked: only memory can fail */
        sf_arena_free(a);
        return -ENOMEM;
    }
    m->json = t;
    m->arena = a;
    return 0;
}

/* Scratch space for checking an event whose tree is dropped: enough unless the event is large. */
#define SCRATCH_SIZE (32u << 10)

/* Size of the next event's arena: the last tree's size and a quarter (events of a stream are
 * alike; a larger tree takes another chunk). */
static _Thread_local size_t tree_hint = 16u << 10;

/* Parses one value at p (no leading ws) into an event; *endp = end of the value. cJSON checks
 * it into an arena that becomes the event's (keep_tree), or a scratch arena on the stack. */
static int parse_event_at(const char *p, const char *end, size_t max_size, bool keep_tree,
                          sf_chunk *chunk, sf_event *ev, const char **endp, char *err,
                          size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    _Alignas(SF_ARENA_ALIGN) char buf[SCRATCH_SIZE]; /* no cost when unused */
    sf_arena scratch, *a = &scratch;
    if (keep_tree) {
        if (!(a = sf_arena_new(tree_hint)))
            return -ENOMEM;
    } else {
        sf_arena_init(a, buf, sizeof buf);
    }
    const char *pe = NULL;
    int rc = 0;
    cJSON *obj = sf_json_parse_in(a, p, (size_t)(end - p), &pe);
    if (!obj) {
        set_err(err, errlen, "invalid JSON at byte %td", pe ? pe - p : 0);
        rc = a->oom ? -ENOMEM : -EINVAL;
        goto out;
    }
    if (!cJSON_IsObject(obj)) {
        set_err(err, errlen, "event is not a JSON object");
        rc = -EINVAL;
        goto out;
    }
    size_t len = (size_t)(pe - p);
    if (max_size && len > max_size) {
        set_err(err, errlen, "event of %zu bytes exceeds the %zu-byte limit", len, max_size);
        rc = -E2BIG;
        goto out;
    }
    if (chunk) { /* p lies in chunk: share it */
        ev->raw = (char *)p;
        ev->chunk = chunk;
        chunk->refs++;
    } else if (!(ev->raw = sf_strndup(p, len))) {
        rc = -ENOMEM;
        goto out;
    }
    ev->raw_len = len;
    ev->tree_size = a->used;
    if ((rc = event_fill(ev, obj, err, errlen)) != 0)
        goto out;
    *endp = pe;
out:
    if (rc)
        sf_event_free(ev);
    if (keep_tree && rc == 0) {
        tree_hint = a->used + a->used / 4 + 256;
        ev->json = obj;
        ev->arena = a;
    } else if (keep_tree) {
        sf_arena_free(a);
    } else {
        sf_arena_fini(a);
    }
    return rc;
}

int sf_event_parse(const char *text, size_t len, sf_event *out, char *err, size_t errlen)
{
    const char *end = text + len;
    const char *p = skip_ws(text, end);
    const char *e;
    int rc = parse_event_at(p, end, 0, true, NULL, out, &e, err, errlen);
    if (rc)
        return rc;
    if (skip_ws(e, end) != end) {
        set_err(err, errlen, "trailing data after the event object");
        sf_event_free(out);
        return -EINVAL;
    }
    return 0;
}

int sf_event_from_json(cJSON *obj, sf_event *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        set_err(err, errlen, "event is not a JSON object");
        return -EINVAL;
    }
    char *raw = cJSON_PrintUnformatted(obj);
    if (!raw) {
        cJSON_Delete(obj);
        return -ENOMEM;
    }
    const char *e;
    int rc = parse_event_at(raw, raw + strlen(raw), 0, false, NULL, out, &e, err, errlen);
    cJSON_free(raw);
    if (rc == 0) /* keep the caller's tree: it is what raw was printed from */
        out->json = obj;
    else
        cJSON_Delete(obj);
    return rc;
}

void sf_page_free(sf_page *pg)
{
    if (!pg)
        return;
    for (size_t i = 0; i < pg->n; i++)
        sf_event_free(&pg->events[i]);
    free(pg->events);
    free(pg->prev);
    free(pg->next);
    memset(pg, 0, sizeof *pg);
    pg->total = -1;
}

static int parse_data_array(const char *p, const char *end, const char **endp,
                            const sf_parse_limits *lim, sf_chunk *chunk, sf_page *pg, char *err,
                            size_t errlen)
{
    size_t cap = 0;
    p = skip_ws(p + 1, end); /* past '[' */
    if (p < end && *p == ']') {
        *endp = p + 1;
        return 0;
    }
    for (;;) {
        if (lim && lim->max_events && pg->n >= lim->max_events) {
            set_err(err, errlen, "page holds more than %zu events", lim->max_events);
            return -E2BIG;
        }
        if (pg->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            sf_event *v = realloc(pg->events, ncap * sizeof *v);
            if (!v)
                return -ENOMEM;
            pg->events = v;
            cap = ncap;
        }
        const char *e;
        char sub[160];
        int rc = parse_event_at(p, end, lim ? lim->max_event_size : 0, !(lim && lim->drop_trees),
                                chunk, &pg->events[pg->n], &e, sub, sizeof sub);
        if (rc) {
            set_err(err, errlen, "data[%zu]: %s", pg->n, sub);
            return rc;
        }
        pg->n++;
        p = skip_ws(e, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']') {
            *endp = p + 1;
            return 0;
        }
        set_err(err, errlen, "data: expected ',' or ']' after element %zu", pg->n - 1);
        return -EINVAL;
    }
}

static int parse_page_obj(const char *p, const char *end, sf_page *pg, char *err, size_t errlen)
{
    cJSON *o = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), NULL, 0);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        set_err(err, errlen, "\"page\" is not a JSON object");
        return -EINVAL;
    }
    int rc = 0;
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "prev");
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(o, "next");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(o, "total");
    if (cJSON_IsString(prev) && prev->valuestring[0] && !(pg->prev = sf_strdup(prev->valuestring)))
        rc = -ENOMEM;
    if (cJSON_IsString(next) && next->valuestring[0] && !(pg->next = sf_strdup(next->valuestring)))
        rc = -ENOMEM;
    if (cJSON_IsNumber(total) && total->valuedouble >= 0 && total->valuedouble < 9e15)
        pg->total = (int64_t)total->valuedouble;
    cJSON_Delete(o);
    return rc;
}

static int page_parse(const char *body, size_t len, const sf_parse_limits *lim, sf_chunk *chunk,
                      sf_page *out, char *err, size_t errlen);

int sf_page_parse(const char *body, size_t len, const sf_parse_limits *lim, sf_page *out, char *err,
                  size_t errlen)
{
    return page_parse(body, len, lim, NULL, out, err, errlen);
}

int sf_page_parse_owned(char *body, size_t len, const sf_parse_limits *lim, sf_page *out, char *err,
                        size_t errlen)
{
    sf_chunk *c = body || !len ? malloc(sizeof *c) : NULL; /* no body: the steal failed */
    if (!c) {
        free(body);
        memset(out, 0, sizeof *out);
        out->total = -1;
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *c = (sf_chunk){.refs = 1, .data = body, .len = len};
    int rc = page_parse(body ? body : "", len, lim, c, out, err, errlen);
    chunk_unref(c); /* the events hold theirs */
    return rc;
}

static int page_parse(const char *body, size_t len, const sf_parse_limits *lim, sf_chunk *chunk,
                      sf_page *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->total = -1;
    const char *end = body + len;
    const char *p = skip_ws(body, end);
    int rc = -EINVAL;
    bool have_data = false, have_page = false;
    if (p < end && *p == '[') {
        const char *e;
        if ((rc = parse_data_array(p, end, &e, lim, chunk, out, err, errlen)) != 0)
            goto fail;
        if (skip_ws(e, end) != end) {
            set_err(err, errlen, "trailing data after the array");
            rc = -EINVAL;
            goto fail;
        }
        return 0;
    }
    if (p >= end || *p != '{') {
        set_err(err, errlen, "response is not a JSON object");
        goto fail;
    }
    p = skip_ws(p + 1, end);
    while (p < end && *p != '}') {
        if (*p != '"') {
            set_err(err, errlen, "expected a key at byte %td", p - body);
            rc = -EINVAL;
            goto fail;
        }
        const char *ke = string_end(p, end);
        if (!ke) {
            set_err(err, errlen, "unterminated key at byte %td", p - body);
            rc = -EINVAL;
            goto fail;
        }
        const char *ks = p + 1;
        size_t kl = (size_t)(ke - 1 - ks);
        p = skip_ws(ke, end);
        if (p >= end || *p != ':') {
            set_err(err, errlen, "expected ':' at byte %td", p - body);
            rc = -EINVAL;
            goto fail;
        }
        p = skip_ws(p + 1, end);
        const char *ve;
        if (kl == 4 && memcmp(ks, "data", 4) == 0) {
            if (p >= end || *p != '[' || have_data) {
                set_err(err, errlen, have_data ? "duplicate \"data\"" : "\"data\" is not an array");
                rc = -EINVAL;
                goto fail;
            }
            have_data = true;
            if ((rc = parse_data_array(p, end, &ve, lim, chunk, out, err, errlen)) != 0)
                goto fail;
        } else {
            ve = sf_json_value_end(p, end);
            if (!ve) {
                set_err(err, errlen, "truncated value at byte %td", p - body);
                rc = -EINVAL;
                goto fail;
            }
            if (kl == 4 && memcmp(ks, "page", 4) == 0) {
                /* two "page" objects: which cursor is meant is ambiguous, like two "data" */
                if (have_page) {
                    set_err(err, errlen, "duplicate \"page\"");
                    rc = -EINVAL;
                    goto fail;
                }
                have_page = true;
                if ((rc = parse_page_obj(p, ve, out, err, errlen)) != 0)
                    goto fail;
            }
        }
        p = skip_ws(ve, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            if (p < end && *p == '}') {
                set_err(err, errlen, "trailing ',' before '}' at byte %td", p - body);
                rc = -EINVAL;
                goto fail;
            }
        } else if (p < end && *p != '}') {
            set_err(err, errlen, "expected ',' or '}' at byte %td", p - body);
            rc = -EINVAL;
            goto fail;
        }
    }
    if (p >= end) {
        set_err(err, errlen, "truncated response (no closing '}')");
        rc = -EINVAL;
        goto fail;
    }
    if (skip_ws(p + 1, end) != end) {
        set_err(err, errlen, "trailing data after the response object");
        rc = -EINVAL;
        goto fail;
    }
    if (!have_data) {
        set_err(err, errlen, "response has no \"data\" array");
        rc = -EINVAL;
        goto fail;
    }
    return 0;
fail:
    sf_page_free(out);
    return rc;
}

const cJSON *sf_event_get(const sf_event *ev, const char *key)
{
    if (!ev || (!ev->json && sf_event_load(ev) != 0))
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(ev->json, key);
}

const char *sf_event_str(const sf_event *ev, const char *key)
{
    const cJSON *v = sf_event_get(ev, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *sf_event_field(const sf_event *ev, const char *falco_field)
{
    const cJSON *c = sf_event_get(ev, "content");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "fields");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, falco_field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *sf_event_label(const sf_event *ev, const char *label)
{
    const cJSON *l = sf_event_get(ev, "labels");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(l, label);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int sf_event_severity07(const sf_event *ev)
{
    const cJSON *v = sf_event_get(ev, "severity");
    int64_t s;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d > -1e15 && d < 1e15) || d != (double)(int64_t)d)
            return -1; /* NaN, huge (the cast would be undefined) or not an integer */
        s = (int64_t)d;
    } else if (cJSON_IsString(v)) {
        if (sf_parse_int64(v->valuestring, strlen(v->valuestring), &s))
            return -1;
    } else {
        return -1;
    }
    if (s >= 0 && s <= 7)
        return (int)s;
    if (s < 0)
        return -1;
    /* 0..100 scale (stix-shifter's query mapping, inverted) */
    if (s >= 91)
        return 0;
    if (s >= 81)
        return 1;
    if (s >= 71)
        return 2;
    if (s >= 61)
        return 3;
    if (s >= 51)
        return 4;
    if (s >= 41)
        return 5;
    if (s >= 31)
        return 6;
    return 7;
}
