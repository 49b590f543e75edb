/* translate-query: the command-line front of query/sysdig_query. */
#include "app/translate_query.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/util.h"
#include "query/sysdig_query.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sysdig-forwarder translate-query [--json] [--now TIME] [--range DURATION] "
               "PATTERN\n"
               "  Prints the Sysdig Secure Events queries for a STIX pattern, one per line:\n"
               "  from=<ns>&to=<ns>&filter=<filter> (not URL-encoded), or {\"queries\":[...]}\n"
               "  with --json. PATTERN \"-\" (or none) reads it from stdin.\n"
               "  Observations without START t'...' STOP t'...' cover the last --range (5m)\n"
               "  before --now (RFC 3339, \"now\", -2h, or ns; default: the clock). Windows over\n"
               "  14 days become several queries.\n"
               "  Exit status: 0 translated, 2 usage error or a pattern it cannot translate.\n"
               "  STIX paths (-> Sysdig field):\n");
    const char *obj, *path, *field;
    for (size_t i = 0; (field = sf_sysdig_field(i, &obj, &path)); i++)
        fprintf(f, "    %s:%s -> %s\n", obj, path, field);
}

/* The message, and the pattern with a caret under the position when it fits on a line. */
static void report(const char *pattern, const sf_sp_error *err)
{
    fprintf(stderr, "translate-query: position %zu: %s\n", err->pos + 1, err->msg);
    size_t n = strlen(pattern);
    if (n > 200 || strpbrk(pattern, "\n\r\t"))
        return;
    fprintf(stderr, "  %s\n  %*s^\n", pattern, (int)err->pos, "");
}

static char *read_stdin(void)
{
    sf_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        if (sf_buf_append(&b, chunk, n))
            break;
    if (ferror(stdin)) {
        sf_buf_free(&b);
        return NULL;
    }
    while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.data[--b.len] = 0;
    if (!b.data)
        return sf_strdup("");
    return sf_buf_steal(&b);
}

int sf_translate_query_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"now", required_argument, NULL, 'n'},
        {"range", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool json = false;
    int64_t clock_ns = sf_now_ns();
    sf_sysdig_opts o = {.now_ns = clock_ns, .default_range_ns = SF_SYSDIG_DEFAULT_RANGE_NS};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'n':
            if (sf_parse_time_arg(optarg, clock_ns, &o.now_ns) || o.now_ns < 0) {
                fprintf(stderr, "translate-query: --now takes RFC 3339, \"now\", -DURATION or "
                                "ns since 1970\n");
                return 2;
            }
            break;
        case 'r': {
            int64_t ms;
            if (sf_parse_duration_ms(optarg, &ms) || ms <= 0 || ms > INT64_MAX / SF_NS_PER_MS) {
                fprintf(stderr, "translate-query: --range takes a positive duration (5m, 1h)\n");
                return 2;
            }
            o.default_range_ns = ms * SF_NS_PER_MS;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "translate-query: one PATTERN (quote it)\n");
        usage(stderr);
        return 2;
    }
    if (o.now_ns - o.default_range_ns < 0) {
        fprintf(stderr, "translate-query: --now minus --range is before 1970\n");
        return 2;
    }
    char *owned = NULL;
    const char *pattern = optind < argc ? argv[optind] : "-";
    if (!strcmp(pattern, "-")) {
        pattern = owned = read_stdin();
        if (!owned) {
            fprintf(stderr, "translate-query: cannot read the pattern from stdin\n");
            return 2;
        }
    }
    sf_sysdig_queries q;
    sf_sp_error err;
    int rc = sf_sysdig_translate_text(pattern, &o, &q, &err);
    if (rc) {
        report(pattern, &err);
        free(owned);
        return 2;
    }
    sf_buf out = {0};
    bool bad = false;
    if (json)
        sf_buf_puts(&out, "{\"queries\":[");
    for (size_t i = 0; i < q.n; i++) {
        if (json) {
            sf_buf b = {0};
            sf_sysdig_query_format(&q.v[i], &b);
            if (i)
                sf_buf_putc(&out, ',');
            if (sf_buf_error(&b) || sf_json_str_append(&out, b.data, b.len))
                bad = true;
            sf_buf_free(&b);
        } else {
            sf_sysdig_query_format(&q.v[i], &out);
            sf_buf_putc(&out, '\n');
        }
    }
    if (json)
        sf_buf_puts(&out, "]}\n");
    int status = 0;
    if (bad || sf_buf_error(&out) || fwrite(out.data, 1, out.len, stdout) != out.len ||
        fflush(stdout) != 0) {
        fprintf(stderr, "translate-query: cannot write the queries\n");
        status = 1;
    }
    sf_buf_free(&out);
    sf_sysdig_queries_free(&q);
    free(owned);
    return status;
}
