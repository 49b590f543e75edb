/* translate: batch conversion, also the benchmark entry point.
 *
 * Input detection: if the first line holds one complete JSON object that is not an API page,
 * the input is NDJSON and is streamed line by line (positions "line N"). Otherwise the whole
 * input is read and walked value by value: a JSON array ("index N"), an API page
 * ("data[N]"), or concatenated objects ("value N"). Each event is parsed from its exact byte
 * span, so raw output stays byte-faithful and integer timestamps exact. */
#include "app/translate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/event.h"
#include "formats/format.h"
#include "core/util.h"
#include "sinks/filter.h"
#include "sinks/sink.h"

typedef struct tr {
    const sf_format *fmt;
    void *state;
    const sf_filter *filter; /* --filter-sink: that sink's filter (NULL: every event) */
    sf_buf out;
    size_t failed, events, passed;
} tr;

static void usage(FILE *f)
{
    fprintf(f, "usage: sysdig-forwarder translate --format FORMAT [FILE]\n"
               "       sysdig-forwarder translate --filter-sink NAME -c CONFIG [--format FORMAT] "
               "[FILE]\n"
               "  Converts events (JSON array, API page {\"data\":[...]} or NDJSON; stdin when\n"
               "  FILE is absent or \"-\") to one FORMAT record per line on stdout.\n"
               "  --filter-sink NAME: what the sink NAME of CONFIG would receive: only the events\n"
               "  its filter passes, in its format and format options (unless --format).\n"
               "  FORMAT:");
    for (const sf_format *const *f2 = sf_format_all(); *f2; f2++)
        fprintf(f, " %s", (*f2)->name);
    fprintf(f, "\n  Exit status: 0 all converted, 1 some events failed (reported on stderr),"
               " 2 usage error.\n");
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Converts the event text [p, p+n); pos_kind/pos name its position in error messages. */
static void convert(tr *t, const char *p, size_t n, const char *pos_kind, size_t pos)
{
    sf_event ev;
    char err[256] = "";
    int rc = sf_event_parse(p, n, &ev, err, sizeof err);
    if (rc == 0)
        t->events++;
    if (rc == 0 && t->filter && !sf_filter_match(t->filter, &ev)) {
        sf_event_free(&ev);
        return;
    }
    if (rc == 0) {
        t->passed++;
        sf_buf_reset(&t->out);
        rc = sf_format_encode(t->fmt, t->state, &ev, &t->out, NULL, err, sizeof err);
        if (rc == 0 && (rc = sf_buf_putc(&t->out, '\n')) == 0 &&
            fwrite(t->out.data, 1, t->out.len, stdout) != t->out.len)
            rc = -EIO;
        sf_event_free(&ev);
    }
    if (rc) {
        t->failed++;
        if (!err[0])
            snprintf(err, sizeof err, "%s", strerror(-rc));
        fprintf(stderr, "translate: %s %zu: %s\n", pos_kind, pos, err);
    }
}

/* Elements of the array starting at p ('['). Returns the end of the array or NULL. */
static const char *convert_array(tr *t, const char *p, const char *end, const char *kind)
{
    size_t i = 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    while (p < end) {
        const char *e = sf_json_value_end(p, end);
        if (!e) {
            t->failed++;
            fprintf(stderr, "translate: %s %zu: truncated JSON value\n", kind, i);
            return NULL;
        }
        convert(t, p, (size_t)(e - p), kind, i++);
        p = skip_ws(e, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            return p + 1;
        break;
    }
    t->failed++;
    fprintf(stderr, "translate: %s %zu: expected ',' or ']'\n", kind, i ? i - 1 : 0);
    return NULL;
}

/* If the object [p, e) has a top-level "data" array, returns where that array starts. */
static const char *page_data(const char *p, const char *e)
{
    p = skip_ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *ke = sf_json_value_end(p, e);
        if (!ke)
            return NULL;
        bool is_data = ke - p == 6 && memcmp(p, "\"data\"", 6) == 0;
        p = skip_ws(ke, e);
        if (p >= e || *p != ':')
            return NULL;
        p = skip_ws(p + 1, e);
        if (is_data && p < e && *p == '[')
            return p;
        const char *ve = sf_json_value_end(p, e);
        if (!ve)
            return NULL;
        p = skip_ws(ve, e);
        if (p < e && *p == ',')
            p = skip_ws(p + 1, e);
    }
    return NULL;
}

static void convert_buffer(tr *t, const char *p, const char *end)
{
    size_t nval = 0;
    for (p = skip_ws(p, end); p < end; p = skip_ws(p, end)) {
        const char *e = sf_json_value_end(p, end);
        const char *data;
        if (*p == '[') {
            if (!(e = convert_array(t, p, end, "index")))
                return;
        } else if (*p == '{' && e && (data = page_data(p, e)) != NULL) {
            if (!convert_array(t, data, e, "data"))
                return;
        } else if (*p == '{' && !e && (data = page_data(p, end)) != NULL) {
            convert_array(t, data, end, "data"); /* truncated page: convert what is there */
            return;
        } else if (!e) {
            t->failed++;
            fprintf(stderr, "translate: value %zu: truncated or invalid JSON\n", nval);
            return;
        } else {
            convert(t, p, (size_t)(e - p), "value", nval);
        }
        nval++;
        p = e;
    }
}

/* One complete object on the line, and not an API page: NDJSON. */
static bool is_ndjson_line(const char *line, size_t n)
{
    const char *end = line + n, *p = skip_ws(line, end);
    if (p >= end || *p != '{')
        return false;
    const char *e = sf_json_value_end(p, end);
    return e && skip_ws(e, end) == end && !page_data(p, e);
}

static int run(tr *t, FILE *in)
{
    char *line = NULL;
    size_t cap = 0, lineno = 1;
    ssize_t n;
    /* first non-blank line decides the mode */
    sf_buf all = {0};
    while ((n = getline(&line, &cap, in)) >= 0) {
        if (skip_ws(line, line + n) != line + n)
            break;
        lineno++;
    }
    if (n >= 0 && is_ndjson_line(line, (size_t)n)) {
        do {
            if (skip_ws(line, line + n) != line + n)
                convert(t, line, (size_t)n, "line", lineno);
            lineno++;
        } while ((n = getline(&line, &cap, in)) >= 0);
    } else if (n >= 0) {
        char chunk[65536];
        size_t r;
        int rc = sf_buf_append(&all, line, (size_t)n);
        while (!rc && (r = fread(chunk, 1, sizeof chunk, in)) > 0)
            rc = sf_buf_append(&all, chunk, r);
        if (rc) {
            free(line);
            sf_buf_free(&all);
            fprintf(stderr, "translate: out of memory reading the input\n");
            return 1;
        }
        convert_buffer(t, all.data, all.data + all.len);
    }
    free(line);
    sf_buf_free(&all);
    if (ferror(in)) {
        fprintf(stderr, "translate: read error: %s\n", strerror(errno));
        return 1;
    }
    return t->failed ? 1 : 0;
}

int sf_translate_main(int argc, char **argv)
{
    const char *fmt_name = NULL, *file = NULL, *sink_name = NULL, *conf = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **val = !strcmp(a, "--format") || !strcmp(a, "-f")   ? &fmt_name
                           : !strcmp(a, "--filter-sink")                ? &sink_name
                           : !strcmp(a, "--config") || !strcmp(a, "-c") ? &conf
                                                                        : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (val) {
            if (++i >= argc) {
                fprintf(stderr, "translate: %s needs a value\n", a);
                usage(stderr);
                return 2;
            }
            *val = argv[i];
        } else if (!strncmp(a, "--format=", 9)) {
            fmt_name = a + 9;
        } else if (!strncmp(a, "--filter-sink=", 14)) {
            sink_name = a + 14;
        } else if (!strncmp(a, "--config=", 9)) {
            conf = a + 9;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "translate: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (file) {
            fprintf(stderr, "translate: more than one input file\n");
            usage(stderr);
            return 2;
        } else {
            file = a;
        }
    }
    tr t = {0};
    if (!sink_name != !conf) {
        fprintf(stderr, "translate: --filter-sink and -c CONFIG go together\n");
        usage(stderr);
        return 2;
    }
    sf_config config = {0};
    const sf_sink_cfg *sink = NULL;
    if (conf) {
        sf_cfg_errors errs = {0};
        if (sf_config_load(conf, &config, &errs) != 0) {
            for (size_t i = 0; i < errs.n; i++)
                fprintf(stderr, "%s\n", errs.msgs[i]);
            sf_cfg_errors_free(&errs);
            sf_config_free(&config);
            return 2;
        }
        sf_cfg_errors_free(&errs);
        for (size_t i = 0; i < config.nsinks && !sink; i++)
            if (sf_streq(config.sinks[i]->common.name, sink_name))
                sink = config.sinks[i];
        if (!sink) {
            fprintf(stderr, "translate: %s has no sink named \"%s\"\n", conf, sink_name);
            sf_config_free(&config);
            return 2;
        }
        t.filter = sink->common.filter;
        if (!fmt_name)
            t.fmt = sink->format;
    }
    if (!t.fmt && (!fmt_name || !(t.fmt = sf_format_find(fmt_name)))) {
        if (fmt_name)
            fprintf(stderr, "translate: unknown format '%s'\n", fmt_name);
        else
            fprintf(stderr, "translate: --format is required\n");
        usage(stderr);
        sf_config_free(&config);
        return 2;
    }
    FILE *in = stdin;
    if (file && strcmp(file, "-") != 0 && !(in = fopen(file, "r"))) {
        fprintf(stderr, "translate: %s: %s\n", file, strerror(errno));
        sf_config_free(&config);
        return 2;
    }
    /* without a configuration file, format options take their defaults (every format treats a
     * zeroed options struct as "all defaults"); with --filter-sink, the sink's own format takes
     * its options from the file */
    bool own = sink && t.fmt == sink->format;
    void *cfg = own ? NULL : t.fmt->cfg_size ? calloc(1, t.fmt->cfg_size) : NULL;
    char err[256] = "";
    int rc = 2;
    if (!own && t.fmt->cfg_size && !cfg) {
        fprintf(stderr, "translate: out of memory\n");
        goto out;
    }
    if (t.fmt->init && t.fmt->init(own ? sink->format_cfg : cfg, &t.state, err, sizeof err) != 0) {
        fprintf(stderr, "translate: format %s: %s\n", t.fmt->name, err);
        goto out;
    }
    rc = run(&t, in);
    if (sink)
        fprintf(stderr, "translate: sink %s: %zu of %zu events pass its filter\n", sink_name,
                t.passed, t.events);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "translate: write error: %s\n", strerror(errno));
        rc = 1;
    }
    if (t.fmt->destroy)
        t.fmt->destroy(t.state);
out:
    sf_buf_free(&t.out);
    free(cfg);
    sf_config_free(&config);
    if (in != stdin)
        fclose(in);
    return rc;
}
