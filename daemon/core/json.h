/* json: the one JSON string escaper (RFC 8259) for everything the daemon writes by hand:
 * HTTP bodies, dead letters, JSON log lines. Bytes >= 0x80 pass through (the caller keeps its
 * text UTF-8); '"', '\\' and control characters are escaped.
 *
 * And cJSON's allocation hooks: cJSON mallocs every node and every string, and freeing page
 * trees was most of the daemon's CPU, so events are parsed (by cJSON) into a core/arena. While
 * a thread has a current arena (sf_json_arena_set, only around a parse), cJSON's malloc takes
 * from it and its free does nothing for memory of that arena; otherwise they are malloc and
 * free. A tree parsed in an arena is read-only and never given to cJSON_Delete: it dies with
 * its arena. */
#ifndef SF_JSON_H
#define SF_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/arena.h"
#include "core/util.h"

/* Appends s (n bytes) as a JSON string literal, quotes included. 0 or -ENOMEM. */
int sf_json_str_append(sf_buf *out, const char *s, size_t n);
/* Same for a NUL-terminated string (NULL: ""). */
int sf_json_cstr_append(sf_buf *out, const char *s);
/* Appends a formatted record as a JSON value: embedded as is if embed_json and it looks like
 * JSON ('{' or '[' first), else as a JSON string. single_line: a record holding a newline is
 * always a string (NDJSON bodies keep one record per line). */
int sf_json_record_append(sf_buf *out, const char *rec, size_t len, bool embed_json,
                          bool single_line);

/* A fixed set of member names found in an object in one pass over its members
 * (cJSON_GetObjectItemCaseSensitive walks the members once per name: a STIX record asks for
 * some fifty names in objects of twenty to forty members). Initialised once, then read-only
 * (any number of threads). */
#define SF_JSON_KEYS_SLOTS 256
typedef struct sf_json_keys {
    const char *const *names;
    size_t n;
    unsigned char slot[SF_JSON_KEYS_SLOTS]; /* hash -> index + 1 of a name; 0 = free */
} sf_json_keys;
/* names[0..n): distinct, n <= SF_JSON_KEYS_SLOTS / 2; names must outlive k. */
void sf_json_keys_init(sf_json_keys *k, const char *const *names, size_t n);
/* found[i] = cJSON_GetObjectItemCaseSensitive(obj, k->names[i]) for every i < k->n (the first
 * member of that name; NULL when obj is NULL, has none, or is not an object). */
void sf_json_find(const cJSON *obj, const sf_json_keys *k, const cJSON **found);

/* Installs the hooks (once; any thread, any number of calls). Called at start-up and by every
 * function here that parses in an arena. */
void sf_json_init(void);
/* Makes a (NULL: none) the calling thread's current arena; returns the previous one. Memory of
 * an arena must not be freed (cJSON_Delete, cJSON_free) while another arena, or none, is
 * current. */
sf_arena *sf_json_arena_set(sf_arena *a);
/* cJSON_ParseWithLengthOpts(p, len, endp, 0) with the tree in a: NULL if the value is invalid
 * (*endp: where it failed, as cJSON says) or memory ran out. The tree is a's. */
cJSON *sf_json_parse_in(sf_arena *a, const char *p, size_t len, const char **endp);

#endif
