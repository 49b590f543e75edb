/* jdoc: a fast reader for exactly the JSON that cJSON 1.7 accepts, into a read-only cJSON tree
 * held in one arena (no allocation per node or per string), or only checked (no allocation).
 *
 * Why: cJSON_Parse mallocs every node and every string, and freeing a page of such trees was
 * most of the daemon's CPU (and of its heap fragmentation). The grammar, the numbers (same
 * strtod on the same characters), the string unescaping (\uXXXX and surrogates included), the
 * nesting limit, the leading BOM and whitespace (any byte <= 32) and where a value ends are
 * cJSON_ParseWithLengthOpts(..., require_null_terminated = 0)'s, so callers see what they saw
 * with cJSON (tests/unit/test_jdoc.c compares the two). The tree is read with cJSON's
 * accessors; it must never be given to cJSON_Delete or modified: free it with sf_jdoc_free. */
#ifndef SF_JDOC_H
#define SF_JDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct sf_jdoc sf_jdoc;

/* A top-level member to find while checking: the span of the value of the first member named
 * key (keys compared unescaped, like cJSON_GetObjectItemCaseSensitive); vs = NULL if absent. */
typedef struct sf_jdoc_want {
    const char *key;
    const char *vs, *ve;
} sf_jdoc_want;

/* Checks one value at the start of [p, p + len). Returns 0 with *endp = just past it and *type =
 * its cJSON type (cJSON_Object...), or -EINVAL with *endp = where it failed (cJSON's error
 * position). want (nwant entries, may be NULL): members of a top-level object to locate. */
int sf_jdoc_check(const char *p, size_t len, const char **endp, int *type, sf_jdoc_want *want,
                  size_t nwant);
/* Same, and builds the tree: *root (owned by *doc). -ENOMEM possible. */
int sf_jdoc_parse(const char *p, size_t len, cJSON **root, sf_jdoc **doc, const char **endp);
void sf_jdoc_free(sf_jdoc *doc);

/* The unescaped text of a checked string value [vs, ve) (quotes included), malloc'd and
 * NUL-terminated (it ends at an escaped NUL, like cJSON's valuestring). NULL if out of
 * memory. */
char *sf_jdoc_strdup(const char *vs, const char *ve);

#endif
