/* libFuzzer target: bytes -> STIX pattern parser -> Sysdig translator (both modes). Errors
 * must point inside the input; translations must respect the API's limits (windows of at most
 * 14 days, from < to, filters of at most 2048 characters, the audit-trail guard last). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/stix_pattern.h"
#include "query/sysdig_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const sf_sysdig_queries *q, bool filter_only)
{
    static const char guard[] = ")andsource!=\"auditTrail\"";
    if (q->n == 0 || (filter_only && q->n != 1))
        abort();
    for (size_t i = 0; i < q->n; i++) {
        const sf_sysdig_query *v = &q->v[i];
        size_t n = strlen(v->filter);
        if (n > SF_SYSDIG_MAX_FILTER || n < sizeof guard || v->filter[0] != '(' ||
            strcmp(v->filter + n - (sizeof guard - 1), guard) != 0)
            abort();
        if (!filter_only && (v->from_ns < 0 || v->to_ns <= v->from_ns ||
                             v->to_ns - v->from_ns > SF_SYSDIG_MAX_WINDOW_NS))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sf_stix_pattern *p;
    sf_sp_error err;
    if (sf_stix_pattern_parse((const char *)data, size, &p, &err) != 0) {
        if (err.pos > size || !err.msg[0])
            abort();
        return 0;
    }
    for (int mode = 0; mode < 2; mode++) {
        sf_sysdig_opts o = {.now_ns = INT64_C(1709626200000000000),
                            .default_range_ns = SF_SYSDIG_DEFAULT_RANGE_NS,
                            .filter_only = mode == 1};
        sf_sysdig_queries q;
        int rc = sf_sysdig_translate(p, &o, &q, &err);
        if (rc == 0) {
            check(&q, o.filter_only);
            sf_sysdig_queries_free(&q);
        } else if (err.pos > size || !err.msg[0] || q.n || q.v) {
            abort();
        }
    }
    sf_stix_pattern_free(p);
    return 0;
}
