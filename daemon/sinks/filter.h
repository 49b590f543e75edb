/* filter: a sink's routing filter (sinks[].filter), evaluated on the raw event before it is
 * formatted. Compiled once when the configuration is loaded (regexes with regcomp, globs
 * checked), so matching on the hot path only reads the event's parsed fields.
 *
 *   filter:
 *     severity: high                 # names (high 0..3, medium 4..5, low 6, info 7), numbers
 *                                    # 0..7 or ranges "A..B"; a list ORs them
 *     policy: ["Sysdig Runtime*"]    # the event's "name" (policy name)
 *     rule: /^Launch .*Container$/   # content.ruleName
 *     source: syscall                # top-level "source", "category", "originator"
 *     labels: { kubernetes.cluster.name: [prod-*] }  # labels[key]
 *     zones: [12, prod]              # the event's "zones" (ids or names)
 *     not: { category: auditTrail }  # the event must NOT match this nested filter
 *
 * A string pattern is exact text, a glob (fnmatch) if it has one of * ? [, or a POSIX extended
 * regular expression written /like this/ (unanchored, as grep). Keys AND together; the items
 * of a list OR together. An event lacking a field a key names does not match that key. */
#ifndef SF_FILTER_H
#define SF_FILTER_H

#include <stdbool.h>
#include "config/cfg.h"
#include "core/event.h"

typedef struct sf_filter sf_filter;

/* Compiles the filter map 'node' (path names it in messages, e.g. "sinks[0].filter"). An absent
 * or null node is no filter (*out NULL). Returns 0, -1 (errors added at FILE:LINE:COL) or
 * -ENOMEM. */
int sf_filter_compile(const sf_cfg_node *node, const char *path, sf_cfg_errors *errs,
                      sf_filter **out);
/* True when the event passes (a NULL filter passes everything). Reads the event's parsed tree
 * (builds it from raw if the page was parsed without trees). */
bool sf_filter_match(const sf_filter *f, const sf_event *ev);
void sf_filter_free(sf_filter *f);

#endif
