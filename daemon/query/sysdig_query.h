/* sysdig_query: STIX pattern -> Sysdig Secure Events queries (from, to, filter), covering what
 * IBM stix-shifter's Sysdig connector covers (its from_stix_map.json and query_constructor.py),
 * with its bugs fixed (docs/stix-query.md lists each):
 *
 *   - every comparison maps to one Sysdig field (table in sysdig_query.c); strings take =, !=,
 *     IN; integers also <, <=, >, >=; NOT negates the operator; LIKE, MATCHES, ISSUBSET,
 *     ISSUPERSET, EXISTS, FOLLOWEDBY, WITHIN and REPEATS are refused with their position;
 *   - x-ibm-finding:severity (1..100) maps to Sysdig's 0..7 buckets (91-100 -> 0 ... 1-30 -> 7)
 *     and, since Sysdig's scale shrinks with danger, the order comparators flip
 *     (severity >= 50 -> severity<=5);
 *   - string values are double-quoted with " and \ escaped; control characters are refused;
 *   - each observation's window is its closest START/STOP (else the last default_range before
 *     now), in exact integer nanoseconds; observations with the same window are joined with
 *     " or " into one query, in the order they appear; a window over 14 days (the API's
 *     limit) becomes several consecutive queries, oldest first;
 *   - every filter is "(<filter>)andsource!=\"auditTrail\"" (stix-shifter's guard), and a
 *     comparison that could only match audit-trail events is refused.
 *
 * Comparisons keep the pattern's order and are joined with " and " / " or ", with parentheses
 * where the pattern's grouping needs them. */
#ifndef SF_SYSDIG_QUERY_H
#define SF_SYSDIG_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/stix_pattern.h"

struct sf_buf;

/* The Secure Events API's limits. */
#define SF_SYSDIG_MAX_WINDOW_NS (INT64_C(14) * 86400 * INT64_C(1000000000))
#define SF_SYSDIG_MAX_FILTER 2048

typedef struct sf_sysdig_query {
    int64_t from_ns, to_ns;
    char *filter;
} sf_sysdig_query;

typedef struct sf_sysdig_queries {
    sf_sysdig_query *v;
    size_t n;
} sf_sysdig_queries;

typedef struct sf_sysdig_opts {
    int64_t now_ns;           /* end of the default window */
    int64_t default_range_ns; /* length of the default window (stix-shifter: 5 minutes) */
    /* one filter for a daemon that chooses its own windows: START/STOP refused, every
     * observation joined with " or " into out->v[0] (from/to 0) */
    bool filter_only;
} sf_sysdig_opts;

#define SF_SYSDIG_DEFAULT_RANGE_NS (INT64_C(300) * INT64_C(1000000000))

/* Translates a parsed pattern. Returns 0 (out filled, free with sf_sysdig_queries_free),
 * -EINVAL with *err, or -ENOMEM. */
int sf_sysdig_translate(const sf_stix_pattern *p, const sf_sysdig_opts *o, sf_sysdig_queries *out,
                        sf_sp_error *err);
/* Parses then translates pattern (NUL-terminated). */
int sf_sysdig_translate_text(const char *pattern, const sf_sysdig_opts *o, sf_sysdig_queries *out,
                             sf_sp_error *err);
void sf_sysdig_queries_free(sf_sysdig_queries *q);

/* The i-th supported STIX path (object, path) and its Sysdig field; NULL past the last. */
const char *sf_sysdig_field(size_t i, const char **object, const char **path);

/* Appends "from=<ns>&to=<ns>&filter=<filter>" (stix-shifter's form, not URL-encoded). */
int sf_sysdig_query_format(const sf_sysdig_query *q, struct sf_buf *out);

#endif
