/* config: the daemon's schema: its tables, loading a file, the configuration reference.
 * Over 600 lines: half of it is the option tables of the daemon's own sections (declarative),
 * the rest the cross-section checks and sink/format loading. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "formats/format.h"
#include "net/httpd.h"
#include "query/sysdig_query.h"
#include "sinks/filter.h"
#include "sinks/sink.h"

/* ------------------------------------------------------------------------------------------ */
/* the daemon's tables                                                                        */

#define OFF(T, f) offsetof(T, f)

static const char *const api_values[] = {"legacy", "events", NULL};
static const char *const level_values[] = {"debug", "info", "warn", "error", NULL};
static const char *const logfmt_values[] = {"text", "json", NULL};

#define DUR_MAX INT64_MAX

static const sf_cfg_option source_retry_options[] = {
    {.name = "initial",
     .type = SF_OPT_DURATION,
     .def = "1s",
     .desc = "First retry delay after a retriable error (5xx, 429, "
             "network); doubles on each failure, with full jitter.",
     .offset = OFF(sf_source_cfg, retry_initial_ms),
     .min = 1,
     .max = DUR_MAX},
    {.name = "max",
     .type = SF_OPT_DURATION,
     .def = "5m",
     .desc = "Upper bound of the retry delay.",
     .offset = OFF(sf_source_cfg, retry_max_ms),
     .min = 1,
     .max = DUR_MAX},
    {0},
};

const sf_cfg_option sf_source_options[] = {
    {.name = "url",
     .type = SF_OPT_STR,
     .desc =
         "Base URL of the Sysdig Secure API, e.g. https://secure.sysdig.com (http:// or https://).",
     .offset = OFF(sf_source_cfg, url),
     .flags = SF_OPT_REQUIRED},
    {.name = "api",
     .type = SF_OPT_ENUM,
     .def = "legacy",
     .desc =
         "Events API flavour: legacy (/api/v1/secureEvents) or events (/secure/events/v1/events).",
     .offset = OFF(sf_source_cfg, api),
     .enum_values = api_values},
    {.name = "token",
     .type = SF_OPT_STR,
     .desc = "API token (Bearer). Exactly one of token and token_file is required; prefer "
             "token_file or ${ENV_VAR}.",
     .offset = OFF(sf_source_cfg, token),
     .flags = SF_OPT_SECRET},
    {.name = "token_file",
     .type = SF_OPT_STR,
     .desc =
         "File holding the API token (read at startup, trailing whitespace trimmed; should be mode "
         "0600, or 0440/0640 owned by root for a group the daemon runs in, as a Kubernetes "
         "Secret with fsGroup).",
     .offset = OFF(sf_source_cfg, token_file),
     .flags = SF_OPT_PATH},
    {.name = "filter",
     .type = SF_OPT_STR,
     .desc = "Server-side event filter expression (at most 2048 characters).",
     .offset = OFF(sf_source_cfg, filter),
     .max = 2048},
    {.name = "stix_pattern",
     .type = SF_OPT_STR,
     .desc = "A STIX pattern such as \"[x-ibm-finding:severity >= 70 AND "
             "x-sysdig-cluster:name = 'prod']\", translated once at start-up into the filter "
             "(as `sysdig-forwarder translate-query` does, without START/STOP: the daemon "
             "chooses its windows). An alternative to filter: set at most one.",
     .offset = OFF(sf_source_cfg, stix_pattern)},
    {.name = "zones",
     .type = SF_OPT_INTLIST,
     .desc = "Zone ids to restrict events to (at most 100).",
     .offset = OFF(sf_source_cfg, zones),
     .max = INT64_MAX},
    {.name = "page_size",
     .type = SF_OPT_INT,
     .def = "200",
     .desc = "Events requested per page (1..999 for api legacy, 1..200 for api events).",
     .offset = OFF(sf_source_cfg, page_size),
     .min = 1,
     .max = 999},
    {.name = "poll_interval",
     .type = SF_OPT_DURATION,
     .def = "10s",
     .desc = "Delay between polls once caught up.",
     .offset = OFF(sf_source_cfg, poll_interval_ms),
     .min = 100,
     .max = DUR_MAX},
    {.name = "lookback",
     .type = SF_OPT_DURATION,
     .def = "1h",
     .desc = "On first start (no checkpoint), how far back to start reading.",
     .offset = OFF(sf_source_cfg, lookback_ms),
     .max = DUR_MAX},
    {.name = "overlap",
     .type = SF_OPT_DURATION,
     .def = "60s",
     .desc = "Each window re-reads this much before the watermark to catch late-indexed events "
             "(duplicates are removed by id).",
     .offset = OFF(sf_source_cfg, overlap_ms),
     .max = DUR_MAX},
    {.name = "request_timeout",
     .type = SF_OPT_DURATION,
     .def = "30s",
     .desc = "Timeout of one API request.",
     .offset = OFF(sf_source_cfg, request_timeout_ms),
     .min = 1000,
     .max = DUR_MAX},
    {.name = "connect_timeout",
     .type = SF_OPT_DURATION,
     .def = "10s",
     .desc = "Timeout of the TCP/TLS connection.",
     .offset = OFF(sf_source_cfg, connect_timeout_ms),
     .min = 1000,
     .max = DUR_MAX},
    {.name = "max_window_events",
     .type = SF_OPT_INT,
     .def = "10000",
     .desc = "A time window whose page.total exceeds this is shrunk (to hold about 3/4 of this "
             "many at the density seen) before anything of it is delivered; backlog windows "
             "are sized the same way. With max_concurrency > 1 the bound is at least 16 pages "
             "per concurrent slice (page_size x max_concurrency x 16).",
     .offset = OFF(sf_source_cfg, max_window_events),
     .min = 1,
     .max = INT64_MAX},
    {.name = "max_concurrency",
     .type = SF_OPT_INT,
     .def = "8",
     .desc = "Catch-up: a backlog window of more than two pages is cut into this many time "
             "slices fetched concurrently (each with its own cursor), so catching up is not "
             "bound by one request's round trip. Halved on HTTP 429, grown back slowly, and "
             "paced under the API's X-RateLimit-Limit. Tailing stays one request per poll. 1: "
             "one request at a time.",
     .offset = OFF(sf_source_cfg, max_concurrency),
     .min = 1,
     .max = 32},
    {.name = "max_response_size",
     .type = SF_OPT_SIZE,
     .def = "64MiB",
     .desc = "Largest accepted API response body.",
     .offset = OFF(sf_source_cfg, max_response_size),
     .min = 1024,
     .max = INT64_MAX},
    {.name = "retry",
     .type = SF_OPT_SECTION,
     .desc = "Backoff for retriable errors.",
     .sub = source_retry_options},
    {.name = "auth_retry",
     .type = SF_OPT_DURATION,
     .def = "5m",
     .desc = "Wait after an authentication or request error (400/401/403) before trying again.",
     .offset = OFF(sf_source_cfg, auth_retry_ms),
     .min = 1000,
     .max = DUR_MAX},
    {.name = "dedup_max_ids",
     .type = SF_OPT_INT,
     .def = "100000",
     .desc = "Most event ids remembered for de-duplication across overlapping windows (beyond "
             "it the oldest are forgotten: duplicates possible, never losses). Size it above "
             "twice the events of `overlap` at the peak rate; where that is more than half of "
             "it, catch-up windows stay under half of it.",
     .offset = OFF(sf_source_cfg, dedup_max_ids),
     .min = 1,
     .max = INT64_MAX},
    {.name = "tls",
     .type = SF_OPT_SECTION,
     .desc = "TLS settings (the shared TLS table, net/tls.h).",
     .sub = sf_tls_options,
     .offset = OFF(sf_source_cfg, tls)},
    {.name = "proxy",
     .type = SF_OPT_STR,
     .desc = "HTTP(S) proxy URL (default: the https_proxy / no_proxy environment variables, as "
             "curl reads "
             "them).",
     .offset = OFF(sf_source_cfg, proxy)},
    {.name = "user_agent",
     .type = SF_OPT_STR,
     .def = "sysdig-forwarder/" SF_VERSION,
     .desc = "User-Agent header.",
     .offset = OFF(sf_source_cfg, user_agent)},
    {0},
};

const sf_cfg_option sf_checkpoint_options[] = {
    {.name = "path",
     .type = SF_OPT_STR,
     .def = "/var/lib/sysdig-forwarder/checkpoint.json",
     .desc = "Checkpoint file (written atomically; its directory must be writable).",
     .offset = OFF(sf_checkpoint_cfg, path),
     .flags = SF_OPT_PATH,
     .min = 1,
     .max = 4096},
    {0},
};

const sf_cfg_option sf_log_options[] = {
    {.name = "level",
     .type = SF_OPT_ENUM,
     .def = "info",
     .desc = "Least severe level logged (the --log-level flag overrides both).",
     .offset = OFF(sf_log_cfg, level),
     .env = "SF_LOG_LEVEL",
     .enum_values = level_values},
    {.name = "format",
     .type = SF_OPT_ENUM,
     .def = "text",
     .desc = "Log line format on stderr, from the first line on.",
     .offset = OFF(sf_log_cfg, format),
     .env = "SF_LOG_FORMAT",
     .enum_values = logfmt_values},
    {.name = "health_interval",
     .type = SF_OPT_DURATION,
     .def = "5m",
     .desc = "Period of the one-line health summary (component health); 0 turns it off.",
     .env = "SF_HEALTH_LOG_INTERVAL",
     .offset = OFF(sf_log_cfg, health_interval_ms),
     .max = DUR_MAX},
    {0},
};

const sf_cfg_option sf_server_options[] = {
    {.name = "listen",
     .type = SF_OPT_STR,
     .desc = "host:port of the HTTP server for /metrics, /healthz and /readyz (empty: disabled).",
     .offset = OFF(sf_server_cfg, listen)},
    {.name = "ready_max_poll_age",
     .type = SF_OPT_DURATION,
     .def = "5m",
     .desc = "/readyz fails when the last successful poll is older than this.",
     .offset = OFF(sf_server_cfg, ready_max_poll_age_ms),
     .min = 1000,
     .max = DUR_MAX},
    {0},
};

const sf_cfg_option sf_pipeline_options[] = {
    {.name = "max_inflight_pages",
     .type = SF_OPT_INT,
     .def = "4",
     .desc = "Pages fetched but not yet checkpointed.",
     .offset = OFF(sf_pipeline_cfg, max_inflight_pages),
     .min = 1,
     .max = 64},
    {.name = "max_inflight_bytes",
     .type = SF_OPT_SIZE,
     .def = "8MiB",
     .desc = "Bound on the memory events take between the API and the sinks: the answers being "
             "received or parsed and the pages not yet sent by every sink. A request starts "
             "while one more page of the recent size fits; requests waiting for their answer "
             "hold nothing, and answers arriving together beyond the bound are paused (TCP "
             "holds the API back) until pages leave. One answer may always be received (a "
             "single page larger than the bound still flows), so memory stays bounded whatever "
             "the backlog, page_size and max_concurrency.",
     .offset = OFF(sf_pipeline_cfg, max_inflight_bytes),
     .min = 65536},
    {.name = "shutdown_timeout",
     .type = SF_OPT_DURATION,
     .def = "20s",
     .desc = "On SIGTERM, how long to wait for in-flight deliveries before exiting.",
     .offset = OFF(sf_pipeline_cfg, shutdown_timeout_ms),
     .max = DUR_MAX},
    {0},
};

const sf_cfg_option sf_dead_letter_options[] = {
    {.name = "path",
     .type = SF_OPT_STR,
     .desc = "File (NDJSON, 0600) receiving every event a sink permanently rejected, with the sink "
             "name and the reason; reopened on SIGHUP (logrotate). Default: dead-letters.ndjson "
             "in the checkpoint's directory.",
     .offset = OFF(sf_dead_letter_cfg, path),
     .flags = SF_OPT_PATH},
    {.name = "max_size",
     .type = SF_OPT_SIZE,
     .def = "1GiB",
     .desc = "Size bound of the file. Entries are written whole while they fit (one larger than "
             "max_size only into an empty file). When full, the rejected events left are held "
             "and retried (never dropped; the checkpoint waits for them), logged once, shown by "
             "sysdig_forwarder_dead_letter_full and /readyz, until there is room: move the file "
             "away (SIGHUP, or the next retry notices) or empty it.",
     .offset = OFF(sf_dead_letter_cfg, max_size),
     .min = 4096},
    {0},
};

static const char *const top_keys[] = {"source", "checkpoint", "sinks",       "log",
                                       "server", "pipeline",   "dead_letter", NULL};

/* ------------------------------------------------------------------------------------------ */
/* loading                                                                                    */

static void sink_cfg_free(sf_sink_cfg *s)
{
    if (!s)
        return;
    sf_filter_free(s->common.filter);
    sf_cfg_free_struct(sf_sink_common_options, &s->common);
    if (s->ops && s->type_cfg)
        sf_cfg_free_struct(s->ops->options, s->type_cfg);
    free(s->type_cfg);
    if (s->format && s->format_cfg)
        sf_cfg_free_struct(s->format->options, s->format_cfg);
    free(s->format_cfg);
    free(s);
}

void sf_config_free(sf_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    for (size_t i = 0; i < cfg->warnings.n; i++)
        free(cfg->warnings.v[i]);
    free(cfg->warnings.v);
    sf_cfg_free_struct(sf_source_options, &cfg->source);
    sf_cfg_free_struct(sf_checkpoint_options, &cfg->checkpoint);
    sf_cfg_free_struct(sf_log_options, &cfg->log);
    sf_cfg_free_struct(sf_server_options, &cfg->server);
    sf_cfg_free_struct(sf_pipeline_options, &cfg->pipeline);
    sf_cfg_free_struct(sf_dead_letter_options, &cfg->dead_letter);
    for (size_t i = 0; i < cfg->nsinks; i++)
        sink_cfg_free(cfg->sinks[i]);
    free(cfg->sinks);
    sf_cfg_node_free(cfg->root);
    memset(cfg, 0, sizeof *cfg);
}

/* Whether a token file's mode exposes it. A file of our own must be 0600 or stricter. A file
 * root gave us (owner root, we are not root) may also be read by its group: that is how a
 * group is granted a secret on purpose (0640 root:GROUP; a Kubernetes Secret volume with an
 * fsGroup, whose files the kubelet makes 0440 root:fsGroup whatever defaultMode says), and as
 * we could open it without being its owner or others, we are in that group. Group write and
 * any access by others are exposure in every case. */
static bool token_mode_exposed(const struct stat *st, uid_t euid)
{
    if (st->st_uid == 0 && euid != 0)
        return (st->st_mode & 037) != 0;
    return (st->st_mode & 077) != 0;
}

/* Reads token_file into source->token. Returns 0, -1 (error added) or -ENOMEM. */
static int read_token_file(sf_source_cfg *src, const sf_cfg_node *smap, sf_cfg_errors *errs,
                           sf_strlist *warnings)
{
    int line, col, rc = -1, fd;
    sf_cfg_pos(smap, "token_file", &line, &col);
    sf_buf b = {0};
    fd = open(src->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sf_cfg_error_key(errs, line, col, "source", "token_file", "cannot open %s: %s",
                         src->token_file, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && token_mode_exposed(&st, geteuid())) {
        /* kept, not logged: the caller logs warnings once log.format applies */
        sf_buf w = {0};
        sf_buf_appendf(&w, "token file %s is accessible by group/others (mode %04o); use chmod 600",
                       src->token_file, (unsigned)(st.st_mode & 07777));
        char *msg = sf_buf_steal(&w);
        char **v = msg ? realloc(warnings->v, (warnings->n + 1) * sizeof *v) : NULL;
        if (v) {
            warnings->v = v;
            warnings->v[warnings->n++] = msg;
        } else {
            free(msg);
        }
    }
    for (;;) {
        if (b.len > 65536) {
            sf_cfg_error_key(errs, line, col, "source", "token_file", "%s is too large for a token",
                             src->token_file);
            goto out;
        }
        if (sf_buf_reserve(&b, 4096)) {
            rc = -ENOMEM;
            goto out;
        }
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sf_cfg_error_key(errs, line, col, "source", "token_file", "cannot read %s: %s",
                             src->token_file, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    while (b.len > 0 && isspace((unsigned char)b.data[b.len - 1]))
        b.data[--b.len] = '\0';
    if (b.len == 0) {
        sf_cfg_error_key(errs, line, col, "source", "token_file", "%s is empty", src->token_file);
        goto out;
    }
    if (memchr(b.data, '\0', b.len) || strpbrk(b.data, "\r\n")) {
        sf_cfg_error_key(errs, line, col, "source", "token_file",
                         "%s must hold a single line (the token)", src->token_file);
        goto out;
    }
    if (sf_log_add_secret(b.data)) {
        rc = -ENOMEM;
        goto out;
    }
    free(src->token);
    src->token = sf_buf_steal(&b);
    rc = src->token ? 0 : -ENOMEM;
out:
    if (fd >= 0)
        close(fd);
    if (b.data) {
        memset(b.data, 0, b.cap);
        sf_buf_free(&b);
    }
    return rc;
}

/* source.stix_pattern: translated once, into source.filter (what the source sends). */
static int check_stix_pattern(sf_source_cfg *src, const sf_cfg_node *smap, sf_cfg_errors *errs)
{
    if (!src->stix_pattern || !*src->stix_pattern)
        return 0;
    int line, col;
    if (src->filter && *src->filter) {
        sf_cfg_key_pos(smap, "stix_pattern", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", NULL,
                         "filter and stix_pattern are mutually exclusive (set at most one)");
        return 0;
    }
    sf_sysdig_opts o = {.filter_only = true};
    sf_sysdig_queries q;
    sf_sp_error err;
    int rc = sf_sysdig_translate_text(src->stix_pattern, &o, &q, &err);
    if (rc == -ENOMEM)
        return rc;
    if (rc) {
        sf_cfg_pos(smap, "stix_pattern", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", "stix_pattern", "at position %zu: %s",
                         err.pos + 1, err.msg);
        return 0;
    }
    free(src->filter);
    src->filter = q.v[0].filter; /* freed with the configuration, as filter */
    q.v[0].filter = NULL;
    sf_sysdig_queries_free(&q);
    return 0;
}

static int check_source(sf_source_cfg *src, const sf_cfg_node *smap, int sline, int scol,
                        sf_cfg_errors *errs, sf_strlist *warnings)
{
    int line, col;
    if (src->url && strncmp(src->url, "http://", 7) != 0 && strncmp(src->url, "https://", 8) != 0) {
        sf_cfg_pos(smap, "url", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", "url", "must start with http:// or https://");
    } else if (src->url && (!strcmp(src->url, "http://") || !strcmp(src->url, "https://"))) {
        sf_cfg_pos(smap, "url", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", "url", "missing host name");
    }
    bool has_token = src->token && *src->token, has_file = src->token_file && *src->token_file;
    if (has_token && has_file) {
        sf_cfg_key_pos(smap, "token_file", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", NULL,
                         "token and token_file are mutually exclusive (set exactly one)");
    } else if (!has_token && !has_file) {
        sf_cfg_error_key(errs, sline, scol, "source", NULL,
                         "one of token or token_file is required");
    } else if (has_file) {
        int rc = read_token_file(src, smap, errs, warnings);
        if (rc == -ENOMEM)
            return rc;
    }
    /* the Authorization header is built in a fixed buffer: a longer token would be cut short
     * there (and no Sysdig token is anywhere near this long: a wrong file or variable) */
    if (src->token && strlen(src->token) > SF_SOURCE_MAX_TOKEN) {
        const char *key = has_file ? "token_file" : "token";
        sf_cfg_pos(smap, key, &line, &col);
        sf_cfg_error_key(errs, line, col, "source", key,
                         "the token is %zu bytes, more than %d: check that this is the API token",
                         strlen(src->token), SF_SOURCE_MAX_TOKEN);
    }
    if (check_stix_pattern(src, smap, errs) == -ENOMEM)
        return -ENOMEM;
    if (src->zones.n > 100) {
        sf_cfg_pos(smap, "zones", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", "zones",
                         "at most 100 zones are allowed (got %zu)", src->zones.n);
    }
    if (src->api == SF_API_EVENTS && src->page_size > 200) {
        sf_cfg_pos(smap, "page_size", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", "page_size",
                         "must be between 1 and 200 with api: events");
    }
    if (src->retry_initial_ms > src->retry_max_ms) {
        const sf_cfg_node *r = sf_cfg_map_get(smap, "retry");
        sf_cfg_pos(r ? r : smap, r ? "initial" : "retry", &line, &col);
        sf_cfg_error_key(errs, line, col, "source", "retry", "initial must not exceed max");
    }
    sf_tls_validate(&src->tls, smap, "source.tls", errs);
    return 0;
}

static char *list_sinks(void)
{
    sf_buf b = {0};
    const sf_sink_ops *const *all = sf_sink_all();
    for (size_t i = 0; all[i]; i++)
        if (sf_buf_appendf(&b, "%s%s", i ? ", " : "", all[i]->type))
            break;
    return sf_buf_steal(&b);
}

static char *list_formats(void)
{
    sf_buf b = {0};
    const sf_format *const *all = sf_format_all();
    for (size_t i = 0; all[i]; i++)
        if (sf_buf_appendf(&b, "%s%s", i ? ", " : "", all[i]->name))
            break;
    return sf_buf_steal(&b);
}

/* Builds one sink. Returns 0, -1 (errors added) or -ENOMEM; *out set when 0 or -1 if allocated. */
static int load_sink(const sf_cfg_node *map, size_t idx, sf_sink_cfg **out, sf_cfg_errors *errs)
{
    char path[32];
    snprintf(path, sizeof path, "sinks[%zu]", idx);
    size_t before = errs->n;
    sf_sink_cfg *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *out = s;
    if (map->kind != SF_NODE_MAP) {
        sf_cfg_error_key(errs, map->line, map->col, path, NULL, "expected a map, got %s",
                         sf_cfg_kind_name(map->kind));
        return -1;
    }
    s->common.node = map;
    bool type_ok = true;
    const sf_cfg_node *tn = sf_cfg_map_get(map, "type");
    if (tn && tn->kind == SF_NODE_SCALAR && !sf_cfg_is_null(tn)) {
        s->ops = sf_sink_find(tn->value);
        if (!s->ops) {
            char *valid = list_sinks();
            if (!valid)
                return -ENOMEM;
            sf_cfg_error_key(errs, tn->line, tn->col, path, "type",
                             "unknown sink type \"%.*s\" (valid types: %s)", SF_CFG_MAX_VALUE_SHOWN,
                             tn->value, valid);
            free(valid);
            type_ok = false;
        }
    } else {
        type_ok = false; /* the common table reports it */
    }
    const sf_cfg_node *fn = sf_cfg_map_get(map, "format");
    bool format_ok = true;
    if (fn && fn->kind == SF_NODE_SCALAR && !sf_cfg_is_null(fn)) {
        s->format = sf_format_find(fn->value);
        if (!s->format) {
            char *valid = list_formats();
            if (!valid)
                return -ENOMEM;
            sf_cfg_error_key(errs, fn->line, fn->col, path, "format",
                             "unknown format \"%.*s\" (valid formats: %s)", SF_CFG_MAX_VALUE_SHOWN,
                             fn->value, valid);
            free(valid);
            format_ok = false;
        }
    } else if (fn && !sf_cfg_is_null(fn)) {
        format_ok = false; /* common table reports the type error */
    } else {
        s->format = sf_format_find("raw");
    }
    if (s->ops && s->ops->cfg_size && !(s->type_cfg = calloc(1, s->ops->cfg_size)))
        return -ENOMEM;
    if (s->format && s->format->cfg_size && !(s->format_cfg = calloc(1, s->format->cfg_size)))
        return -ENOMEM;

    /* The format's key (if any) is a pseudo-option holding its map; the keys of the other
     * formats are recognised too, to explain that they do not apply to this format. */
    enum { MAX_FMTS = 32 };
    struct {
        const sf_cfg_node *node[MAX_FMTS];
    } fmtslot;
    memset(&fmtslot, 0, sizeof fmtslot);
    sf_cfg_option fmt_table[MAX_FMTS + 1];
    memset(fmt_table, 0, sizeof fmt_table);
    size_t nf = 0;
    const sf_format *const *allf = sf_format_all();
    for (size_t i = 0; allf[i] && nf < MAX_FMTS; i++) {
        bool dup = false;
        for (size_t j = 0; j < nf; j++)
            dup = dup || sf_streq(fmt_table[j].name, allf[i]->cfg_key);
        if (!allf[i]->cfg_key || dup)
            continue;
        fmt_table[nf].name = allf[i]->cfg_key;
        fmt_table[nf].type = SF_OPT_NODE;
        fmt_table[nf].offset = nf * sizeof(const sf_cfg_node *);
        nf++;
    }
    /* placeholder struct for a type table when the type has options but cfg_size 0 */
    char dummy[1];
    const sf_cfg_option *tables[3] = {sf_sink_common_options, s->ops ? s->ops->options : NULL,
                                      fmt_table};
    void *structs[3] = {&s->common, s->type_cfg ? s->type_cfg : dummy, &fmtslot};
    int rc = sf_cfg_apply_at(map, map->line, map->col, path, tables, structs, 3,
                             type_ok && format_ok, errs);
    s->common.node = map;
    const sf_cfg_node *fm = NULL;
    for (size_t i = 0; i < nf; i++) {
        if (s->format && sf_streq(s->format->cfg_key, fmt_table[i].name)) {
            fm = fmtslot.node[i];
        } else if (sf_cfg_map_get(map, fmt_table[i].name) && format_ok) {
            int line, col;
            char names[256] = "";
            size_t off = 0;
            for (size_t j = 0; allf[j] && off < sizeof names; j++) {
                if (sf_streq(allf[j]->cfg_key, fmt_table[i].name)) {
                    int w = snprintf(names + off, sizeof names - off, "%s%s", off ? " or " : "",
                                     allf[j]->name);
                    off += w > 0 ? (size_t)w : 0;
                }
            }
            sf_cfg_key_pos(map, fmt_table[i].name, &line, &col);
            sf_cfg_error_key(errs, line, col, path, NULL,
                             "key '%s' is only valid with format: %s (this sink's format is %s)",
                             fmt_table[i].name, names, s->format ? s->format->name : "raw");
        }
    }
    if (rc < 0)
        return rc;
    if (s->format && s->format->options && s->format_cfg) {
        char *fpath =
            s->format->cfg_key ? sf_cfg_join_path(path, s->format->cfg_key) : sf_strdup(path);
        if (!fpath)
            return -ENOMEM;
        int fl = map->line, fc = map->col;
        if (s->format->cfg_key)
            sf_cfg_pos(map, s->format->cfg_key, &fl, &fc);
        const sf_cfg_option *ft[1] = {s->format->options};
        void *fs[1] = {s->format_cfg};
        rc = sf_cfg_apply_at(fm, fl, fc, fpath, ft, fs, 1, true, errs);
        free(fpath);
        if (rc < 0)
            return rc;
        /* the format's own checks (e.g. the LEEF delimiter), so --check-config reports them */
        void *fst = NULL;
        char ferr[256] = "";
        if (rc == 0 && s->format->init) {
            if (s->format->init(s->format_cfg, &fst, ferr, sizeof ferr) == 0) {
                if (s->format->destroy)
                    s->format->destroy(fst);
            } else {
                sf_cfg_error(errs, fl, fc, "%s", ferr[0] ? ferr : "invalid format options");
            }
        }
    }
    if (!s->common.name && s->common.type && !(s->common.name = sf_strdup(s->common.type)))
        return -ENOMEM;
    if (s->common.retry_initial_ms > s->common.retry_max_ms) {
        int line, col;
        const sf_cfg_node *r = sf_cfg_map_get(map, "retry");
        sf_cfg_pos(r ? r : map, r ? "initial" : "retry", &line, &col);
        sf_cfg_error_key(errs, line, col, path, "retry", "initial must not exceed max");
    }
    if (s->common.filter_node) {
        char *fpath = sf_cfg_join_path(path, "filter");
        if (!fpath)
            return -ENOMEM;
        rc = sf_filter_compile(s->common.filter_node, fpath, errs, &s->common.filter);
        free(fpath);
        if (rc == -ENOMEM)
            return rc;
    }
    if (errs->n == before && s->ops && s->ops->validate)
        s->ops->validate(s->type_cfg, map, errs);
    return errs->n == before ? 0 : -1;
}

static int load_sinks(sf_config *cfg, const sf_cfg_node *root, sf_cfg_errors *errs)
{
    const sf_cfg_node *seq = sf_cfg_map_get(root, "sinks");
    int line, col;
    if (!seq || sf_cfg_is_null(seq)) {
        sf_cfg_key_pos(root, "sinks", &line, &col);
        sf_cfg_error_key(errs, line, col, "sinks", NULL, "at least one sink is required");
        return 0;
    }
    if (seq->kind != SF_NODE_SEQ) {
        sf_cfg_error_key(errs, seq->line, seq->col, "sinks", NULL,
                         "expected a list of sinks, got %s", sf_cfg_kind_name(seq->kind));
        return 0;
    }
    if (seq->n == 0) {
        sf_cfg_error_key(errs, seq->line, seq->col, "sinks", NULL, "at least one sink is required");
        return 0;
    }
    if (!(cfg->sinks = calloc(seq->n, sizeof *cfg->sinks)))
        return -ENOMEM;
    for (size_t i = 0; i < seq->n; i++) {
        int rc = load_sink(seq->items[i], i, &cfg->sinks[cfg->nsinks], errs);
        if (cfg->sinks[cfg->nsinks])
            cfg->nsinks++;
        if (rc == -ENOMEM)
            return rc;
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const char *name = cfg->sinks[i]->common.name;
        for (size_t j = 0; name && j < i; j++) {
            if (sf_streq(cfg->sinks[j]->common.name, name)) {
                const sf_cfg_node *m = cfg->sinks[i]->common.node;
                const sf_cfg_node *nn = sf_cfg_map_get(m, "name");
                char path[32];
                snprintf(path, sizeof path, "sinks[%zu]", i);
                sf_cfg_error_key(errs,
                                 nn  ? nn->line
                                 : m ? m->line
                                     : 0,
                                 nn  ? nn->col
                                 : m ? m->col
                                     : 0,
                                 path, "name",
                                 "duplicate sink name \"%s\" (also used by sinks[%zu])", name, j);
                break;
            }
        }
    }
    return 0;
}

int sf_config_load_text(const char *name, const char *text, size_t len, sf_config *cfg,
                        sf_cfg_errors *errs)
{
    size_t before = errs->n;
    int rc = 0;
    memset(cfg, 0, sizeof *cfg);
    if (name)
        errs->file = name;
    if (name && !(cfg->file = sf_strdup(name)))
        goto oom;
    cfg->root = sf_cfg_parse_yaml(text, len, errs);
    if (!cfg->root)
        goto out;
    const sf_cfg_node *root = cfg->root;
    if (root->kind != SF_NODE_MAP) {
        sf_cfg_error(errs, root->line, root->col, "the configuration must be a map, got %s",
                     sf_cfg_kind_name(root->kind));
        goto out;
    }
    for (size_t i = 0; i < root->n; i++) {
        bool ok = false;
        for (size_t k = 0; top_keys[k] && !ok; k++)
            ok = strcmp(root->keys[i], top_keys[k]) == 0;
        if (ok)
            continue;
        const char *best = sf_cfg_suggest(root->keys[i], top_keys);
        if (best)
            sf_cfg_error(errs, root->key_line[i], root->key_col[i],
                         "unknown key '%s' (did you mean '%s'?)", root->keys[i], best);
        else
            sf_cfg_error(errs, root->key_line[i], root->key_col[i],
                         "unknown key '%s' (valid: source, checkpoint, sinks, log, server, "
                         "pipeline)",
                         root->keys[i]);
    }
    static const struct {
        const char *key;
        const sf_cfg_option *table;
        size_t off;
    } sections[] = {
        {"source", sf_source_options, offsetof(sf_config, source)},
        {"checkpoint", sf_checkpoint_options, offsetof(sf_config, checkpoint)},
        {"log", sf_log_options, offsetof(sf_config, log)},
        {"server", sf_server_options, offsetof(sf_config, server)},
        {"pipeline", sf_pipeline_options, offsetof(sf_config, pipeline)},
        {"dead_letter", sf_dead_letter_options, offsetof(sf_config, dead_letter)},
    };
    for (size_t i = 0; i < SF_ARRAY_LEN(sections); i++) {
        const sf_cfg_node *m = sf_cfg_map_get(root, sections[i].key);
        int line, col;
        if (m && !sf_cfg_is_null(m)) {
            line = m->line;
            col = m->col;
        } else {
            m = NULL;
            sf_cfg_key_pos(root, sections[i].key, &line, &col);
        }
        const sf_cfg_option *t[1] = {sections[i].table};
        void *s[1] = {(char *)cfg + sections[i].off};
        if (sf_cfg_apply_at(m, line, col, sections[i].key, t, s, 1, true, errs) < 0)
            goto oom;
        if (i == 0 && (!m || m->kind == SF_NODE_MAP) &&
            check_source(&cfg->source, m, line, col, errs, &cfg->warnings))
            goto oom;
    }
    if (cfg->server.listen && *cfg->server.listen) {
        /* the server's own parser: what passes here is what it can listen on */
        struct sockaddr_storage ss;
        char why[160];
        const char *colon = strrchr(cfg->server.listen, ':');
        int bad = sf_httpd_parse_listen(cfg->server.listen, &ss, why, sizeof why);
        if (!bad && colon && strcmp(colon, ":0") == 0) {
            snprintf(why, sizeof why, "the port must be in 1..65535");
            bad = 1;
        }
        if (bad) {
            int line, col;
            sf_cfg_pos(sf_cfg_map_get(root, "server"), "listen", &line, &col);
            sf_cfg_error_key(errs, line, col, "server", "listen", "\"%.*s\": %s",
                             SF_CFG_MAX_VALUE_SHOWN, cfg->server.listen, why);
        }
    }
    if (load_sinks(cfg, root, errs))
        goto oom;
    goto out;
oom:
    sf_cfg_error(errs, 0, 0, "out of memory while loading the configuration");
out:
    /* secrets registered after an error was recorded (later options, token_file) */
    sf_cfg_errors_redact(errs, before);
    /* the validators' warnings join the loader's, for the caller to log */
    for (size_t i = 0; errs->n == before && i < errs->nwarns; i++) {
        char **v = realloc(cfg->warnings.v, (cfg->warnings.n + 1) * sizeof *v);
        if (!v)
            break;
        cfg->warnings.v = v;
        cfg->warnings.v[cfg->warnings.n++] = errs->warns[i];
        errs->warns[i] = NULL;
    }
    if (errs->n > before) {
        rc = -(int)(errs->n - before);
        sf_config_free(cfg);
    }
    return rc;
}

int sf_config_check_env(const sf_config *cfg, sf_cfg_errors *errs)
{
    size_t before = errs->n;
    if (cfg->file)
        errs->file = cfg->file;
    const sf_cfg_node *root = cfg->root;
    const sf_cfg_node *smap = root ? sf_cfg_map_get(root, "source") : NULL;
    if (cfg->source.url && strncmp(cfg->source.url, "https://", 8) == 0)
        sf_tls_check_files(&cfg->source.tls, smap, "source.tls", errs);
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const sf_sink_cfg *s = cfg->sinks[i];
        const sf_cfg_node *map = s->common.node;
        if (s->common.spool_path) {
            const sf_cfg_node *sp = map ? sf_cfg_map_get(map, "spool") : NULL;
            sf_cfg_check_dir(errs, sp ? sp : map, sp ? "path" : "spool", "spool.path",
                             s->common.spool_path);
        }
        if (s->ops && s->ops->check_env)
            s->ops->check_env(s->type_cfg, map, errs);
    }
    if (cfg->dead_letter.path && *cfg->dead_letter.path) {
        const sf_cfg_node *dl = root ? sf_cfg_map_get(root, "dead_letter") : NULL;
        sf_cfg_check_file(errs, dl ? dl : root, "path", "dead_letter.path", cfg->dead_letter.path);
    }
    if (cfg->server.listen && *cfg->server.listen) {
        char why[200];
        if (sf_httpd_check_listen(cfg->server.listen, why, sizeof why)) {
            const sf_cfg_node *sv = root ? sf_cfg_map_get(root, "server") : NULL;
            sf_cfg_error_at(errs, sv ? sv : root, sv ? "listen" : "server",
                            "server.listen: \"%.*s\": %s", SF_CFG_MAX_VALUE_SHOWN,
                            cfg->server.listen, why);
        }
    }
    return (int)(errs->n - before);
}

int sf_config_check_checkpoint_env(const sf_config *cfg, sf_cfg_errors *errs)
{
    size_t before = errs->n;
    if (cfg->file)
        errs->file = cfg->file;
    const sf_cfg_node *root = cfg->root;
    const sf_cfg_node *cp = root ? sf_cfg_map_get(root, "checkpoint") : NULL;
    sf_cfg_check_replaced(errs, cp ? cp : root, cp ? "path" : "checkpoint", "checkpoint.path",
                          cfg->checkpoint.path);
    return (int)(errs->n - before);
}

int sf_config_load(const char *path, sf_config *cfg, sf_cfg_errors *errs)
{
    memset(cfg, 0, sizeof *cfg);
    sf_buf b = {0};
    int rc = -1, err = 0;
    const char *save = errs->file;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    for (;;) {
        if (b.len > 16 * 1024 * 1024) {
            err = EFBIG;
            goto out;
        }
        if (sf_buf_reserve(&b, 65536)) {
            err = ENOMEM;
            goto out;
        }
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    rc = sf_config_load_text(path, b.data ? b.data : "", b.len, cfg, errs);
out:
    if (err) {
        errs->file = path;
        sf_cfg_error(errs, 0, 0, "cannot read configuration file: %s", strerror(err));
        errs->file = save ? save : path;
    }
    if (fd >= 0)
        close(fd);
    sf_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* reference                                                                                  */

int sf_config_reference(sf_buf *out)
{
    static const struct {
        const char *key;
        const char *desc;
        const sf_cfg_option *table;
    } sections[] = {
        {"source", "Where events are read from (the Sysdig Secure events API).", sf_source_options},
        {"checkpoint", "Durable position of the forwarder.", sf_checkpoint_options},
        {"log", "Logging to stderr.", sf_log_options},
        {"server", "HTTP server for metrics and health checks.", sf_server_options},
        {"pipeline", "Flow control between the source and the sinks.", sf_pipeline_options},
        {"dead_letter", "Where permanently rejected events go (never dropped silently).",
         sf_dead_letter_options},
    };
    int rc = sf_buf_puts(out, "# Configuration reference\n\n"
                              "Durations: `500ms`, `10s`, `5m`, `1h`, `7d`. Sizes: `512`, `64KiB`, "
                              "`100MiB`, `1GB`. Every value may use `${VAR}` or "
                              "`${VAR:-default}` (environment); `$$` is a literal `$`.\n\n"
                              "TLS: every `tls` section (`source` and the `webhook`, `splunk_hec`, "
                              "`kafka_rest`, `kafka` and `syslog` sinks) is the same table, with "
                              "the same keys, defaults and checks: `verify`, `ca_file`, "
                              "`cert_file`, `key_file`, `key_password`, `server_name`, "
                              "`min_version` (the `kafka` sink, on librdkafka, refuses "
                              "`server_name` and `min_version: \"1.3\"`).\n\n");
    for (size_t i = 0; i < SF_ARRAY_LEN(sections) && !rc; i++) {
        rc = sf_buf_appendf(out, "## `%s`\n\n%s\n\n", sections[i].key, sections[i].desc);
        if (!rc)
            rc = sf_cfg_doc_table(sections[i].table, "", out);
        if (!rc)
            rc = sf_buf_puts(out, "\n");
    }
    if (!rc)
        rc = sf_buf_puts(out, "## `sinks`\n\nA non-empty list of sinks. Keys every sink has:\n\n");
    if (!rc)
        rc = sf_cfg_doc_table(sf_sink_common_options, "", out);
    const sf_sink_ops *const *sinks = sf_sink_all();
    for (size_t i = 0; sinks[i] && !rc; i++) {
        rc = sf_buf_appendf(out, "\n### Sink type `%s`\n\n%s\n\n", sinks[i]->type,
                            sinks[i]->desc ? sinks[i]->desc : "");
        if (!rc && sinks[i]->options && sinks[i]->options->name)
            rc = sf_cfg_doc_table(sinks[i]->options, "", out);
        else if (!rc)
            rc = sf_buf_puts(out, "No type-specific options.\n");
    }
    if (!rc)
        rc = sf_buf_puts(out, "\n## Formats\n\nSelected with a sink's `format` key.\n");
    const sf_format *const *fmts = sf_format_all();
    for (size_t i = 0; fmts[i] && !rc; i++) {
        rc = sf_buf_appendf(out, "\n### Format `%s`\n\n%s\n", fmts[i]->name,
                            fmts[i]->desc ? fmts[i]->desc : "");
        if (!rc && fmts[i]->options && fmts[i]->options->name) {
            if (fmts[i]->cfg_key)
                rc = sf_buf_appendf(out, "\nOptions, under the sink's `%s` key:\n\n",
                                    fmts[i]->cfg_key);
            else
                rc = sf_buf_puts(out, "\nOptions:\n\n");
            if (!rc)
                rc = sf_cfg_doc_table(fmts[i]->options, fmts[i]->cfg_key ? fmts[i]->cfg_key : "",
                                      out);
        }
    }
    return rc;
}
