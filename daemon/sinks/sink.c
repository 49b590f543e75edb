#include "sinks/sink.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Every sink module exports one sf_sink_ops named sf_sink_<type>_ops; the list of them is
 * generated from SF_SINKS in CMakeLists.txt (add a sink there). */
#define SF_SINK(t) extern const sf_sink_ops sf_sink_##t##_ops;
#include "sf_sink_list.h"
#undef SF_SINK

static const sf_sink_ops *const sinks[] = {
#define SF_SINK(t) &sf_sink_##t##_ops,
#include "sf_sink_list.h"
#undef SF_SINK
    NULL,
};

const sf_sink_ops *sf_sink_find(const char *type)
{
    for (size_t i = 0; type && sinks[i]; i++)
        if (strcmp(sinks[i]->type, type) == 0)
            return sinks[i];
    return NULL;
}

const sf_sink_ops *const *sf_sink_all(void)
{
    return sinks;
}

#define OFF(T, f) offsetof(T, f)
#define DUR_MAX INT64_MAX

static const sf_cfg_option sink_queue_options[] = {
    {.name = "max_events",
     .type = SF_OPT_INT,
     .def = "10000",
     .desc = "Events buffered for this sink; when full, polling pauses (backpressure).",
     .offset = OFF(sf_sink_common_cfg, queue_max_events),
     .min = 1,
     .max = INT64_MAX},
    {0},
};

static const sf_cfg_option sink_retry_options[] = {
    {.name = "initial",
     .type = SF_OPT_DURATION,
     .def = "1s",
     .desc = "First delay before re-sending a refused batch.",
     .offset = OFF(sf_sink_common_cfg, retry_initial_ms),
     .min = 1,
     .max = DUR_MAX},
    {.name = "max",
     .type = SF_OPT_DURATION,
     .def = "5m",
     .desc = "Upper bound of the retry delay.",
     .offset = OFF(sf_sink_common_cfg, retry_max_ms),
     .min = 1,
     .max = DUR_MAX},
    {.name = "max_attempts",
     .type = SF_OPT_INT,
     .def = "0",
     .desc = "Attempts before an event is dead-lettered (0: retry forever).",
     .offset = OFF(sf_sink_common_cfg, retry_max_attempts),
     .max = INT64_MAX},
    {0},
};

static const sf_cfg_option sink_spool_options[] = {
    {.name = "path",
     .type = SF_OPT_STR,
     .desc =
         "Directory of this sink's disk spool. While the sink refuses events they are stored here "
         "(fsync'd) so the checkpoint and the other sinks move on, and replayed in order when it "
         "recovers. Unset: no spool (a sink that is down holds the checkpoint).",
     .offset = OFF(sf_sink_common_cfg, spool_path),
     .flags = SF_OPT_PATH},
    {.name = "max_size",
     .type = SF_OPT_SIZE,
     .def = "1GiB",
     .desc = "Spool bound. When full, polling pauses (backpressure); nothing is dropped.",
     .offset = OFF(sf_sink_common_cfg, spool_max_size),
     .min = 4096},
    {.name = "segment_size",
     .type = SF_OPT_SIZE,
     .def = "16MiB",
     .desc = "Size of one spool segment file.",
     .offset = OFF(sf_sink_common_cfg, spool_segment_size),
     .min = 4096},
    {0},
};

const sf_cfg_option sf_sink_common_options[] = {
    {.name = "name",
     .type = SF_OPT_STR,
     .desc = "Unique name used in logs and metrics (default: the type).",
     .offset = OFF(sf_sink_common_cfg, name),
     .min = 1,
     .max = 128},
    {.name = "type",
     .type = SF_OPT_STR,
     .desc = "Sink type (see the sink types below).",
     .offset = OFF(sf_sink_common_cfg, type),
     .flags = SF_OPT_REQUIRED},
    {.name = "format",
     .type = SF_OPT_STR,
     .def = "raw",
     .desc = "Record format (see the formats below).",
     .offset = OFF(sf_sink_common_cfg, format)},
    {.name = "queue", .type = SF_OPT_SECTION, .desc = "Queue settings.", .sub = sink_queue_options},
    {.name = "retry", .type = SF_OPT_SECTION, .desc = "Retry settings.", .sub = sink_retry_options},
    {.name = "spool",
     .type = SF_OPT_SECTION,
     .desc = "Disk spool settings.",
     .sub = sink_spool_options},
    {.name = "filter",
     .type = SF_OPT_NODE,
     .desc = "Routing: only events matching this filter go to this sink (the others count as "
             "settled for it, in `sink_events_filtered_total`). Keys AND together, list items "
             "OR: `severity` (`high` 0..3, `medium` 4..5, `low` 6, `info` 7, a number 0..7 or a "
             "range `\"0..5\"`), `policy` (the event's `name`), `rule` (`content.ruleName`), "
             "`source`, `category`, `originator`, `labels` (label -> value(s)), `zones` (ids or "
             "names), and `not` (a nested filter the event must not match). Strings are exact, "
             "globs (`prod-*`) or `/regular expressions/`. Unset: every event.",
     .offset = OFF(sf_sink_common_cfg, filter_node)},
    {0},
};

void sf_sink_set_error(sf_sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
}
