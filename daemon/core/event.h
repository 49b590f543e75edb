/* event: one Secure event as received, and API page parsing.
 *
 * raw/raw_len are the exact bytes of the event object as the API sent it (raw format is
 * byte-faithful: no re-serialisation, int64 precision kept). json is the parsed tree the
 * formats read, in the event's arena (core/json): kept from the parse that checked raw, or
 * (page parsed with drop_trees) built again from raw on first use (sf_event_load, or any
 * accessor below). The timestamp is parsed exactly from its text (int64 ns or RFC 3339). */
#ifndef SF_EVENT_H
#define SF_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct sf_event {
    char *id;      /* never NULL ("" if missing) */
    int64_t ts_ns; /* SF_TIME_UNSET if missing/unparsable */
    char *raw;     /* exact bytes (raw_len of them; not NUL-terminated when in a chunk) */
    size_t raw_len;
    struct sf_chunk *chunk; /* NULL: raw is the event's own copy; else raw lies in this shared
                             * buffer (a page's response body), freed with its last event */
    cJSON *json; /* owned; NULL until loaded (a cache of raw: loading does not change the event) */
    struct sf_arena *arena; /* holds json (NULL: json is a malloc'd tree, cJSON_Delete'd) */
    size_t tree_size;       /* bytes the tree took when raw was checked (0: unknown) */
} sf_event;

typedef struct sf_parse_limits {
    size_t max_event_size; /* bytes of one event object; 0 = unlimited */
    size_t max_events;     /* events in one page; 0 = unlimited */
    bool drop_trees;       /* don't keep the events' trees (raw output): built again on demand */
} sf_parse_limits;

typedef struct sf_page {
    sf_event *events;
    size_t n;
    char *prev;    /* page.prev cursor or NULL */
    char *next;    /* page.next cursor or NULL */
    int64_t total; /* page.total, -1 if absent */
} sf_page;

/* Parses an API page {"data":[...],"page":{...}}, or a bare JSON array of events (then prev/next
 * are NULL and total -1). Returns 0, or -EINVAL (malformed: err says where), -E2BIG (a limit was
 * exceeded), -ENOMEM. On error *out is empty. Elements of data that are not objects, or lack a
 * string id, are errors (a page we cannot account for is not half-delivered). */
int sf_page_parse(const char *body, size_t len, const sf_parse_limits *lim, sf_page *out, char *err,
                  size_t errlen);
void sf_page_free(sf_page *p);
/* sf_page_parse of a malloc'd body the page takes over (in every case: freed on error): the
 * events' raw bytes stay where they are in it, shared, instead of one copy each (half the
 * memory and no allocation per event); the body is freed with the last event. */
int sf_page_parse_owned(char *body, size_t len, const sf_parse_limits *lim, sf_page *out, char *err,
                        size_t errlen);

/* Events of one page that keep less than half of the body they share (the rest of the page was
 * clipped or was a duplicate) get their own copy of their bytes, so the body goes with the rest
 * of the page instead of being held, larger than they count, until they are sent. 0, or -ENOMEM
 * (the events not copied yet still share it: only memory). */
int sf_events_compact(sf_event *evs, size_t n);

/* Parses one event object from text (exact span kept as raw). Returns 0 or -EINVAL/-ENOMEM. */
int sf_event_parse(const char *text, size_t len, sf_event *out, char *err, size_t errlen);
/* Builds an event from an already parsed object (takes ownership of obj; raw is its unformatted
 * print). Used by translate for array/page input. */
int sf_event_from_json(cJSON *obj, sf_event *out, char *err, size_t errlen);
void sf_event_free(sf_event *ev);
/* Builds ev->json from raw if not done yet (ev is logically const: the tree is a cache; one
 * thread at a time). 0, or -ENOMEM. */
int sf_event_load(const sf_event *ev);
/* Drops ev->json (the cache; raw, id and ts stay): what a page's events hold once every sink
 * encoded them. A later accessor builds it again. */
void sf_event_unload(sf_event *ev);

/* End of the JSON value starting at p (no leading whitespace): a light scanner that only matches
 * strings and brackets (validation is cJSON's job). Returns the end pointer or NULL. */
const char *sf_json_value_end(const char *p, const char *end);

/* Helpers for formats. Return NULL / fallback when absent or of another type. */
const char *sf_event_str(const sf_event *ev, const char *key);           /* top-level string */
const cJSON *sf_event_get(const sf_event *ev, const char *key);          /* top-level any */
const char *sf_event_field(const sf_event *ev, const char *falco_field); /* content.fields[k] */
const char *sf_event_label(const sf_event *ev, const char *label);       /* labels[k] */
/* Severity on the Sysdig 0..7 scale (0 most severe); 0..100-scale values are mapped back
 * (>=91 -> 0 ... <=30 -> 7); numeric strings accepted; -1 if absent/invalid. */
int sf_event_severity07(const sf_event *ev);

#endif
