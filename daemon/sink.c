#include "sink.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Every sink module exports one sf_sink_ops; add new ones here. */
extern const sf_sink_ops sf_sink_file_ops;
extern const sf_sink_ops sf_sink_stdout_ops;
extern const sf_sink_ops sf_sink_syslog_ops;
extern const sf_sink_ops sf_sink_webhook_ops;
extern const sf_sink_ops sf_sink_splunk_hec_ops;
extern const sf_sink_ops sf_sink_kafka_rest_ops;

static const sf_sink_ops *const sinks[] = {
    &sf_sink_file_ops,
    &sf_sink_stdout_ops,
    &sf_sink_syslog_ops,
    &sf_sink_webhook_ops,
    &sf_sink_splunk_hec_ops,
    &sf_sink_kafka_rest_ops,
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

void sf_sink_set_error(sf_sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
}
