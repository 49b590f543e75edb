/* json: the one JSON string escaper (RFC 8259) for everything the daemon writes by hand:
 * HTTP bodies, dead letters, JSON log lines. Bytes >= 0x80 pass through (the caller keeps its
 * text UTF-8); '"', '\\' and control characters are escaped. */
#ifndef SF_JSON_H
#define SF_JSON_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
