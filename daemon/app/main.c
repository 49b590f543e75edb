/* sysdig-forwarder: command line, lifecycle and signals, and the wiring of the data flow:
 *
 *   source --emit(page, progress)--> pipeline --commit(progress), in page order--> committer
 *      ^                                |
 *      +------------ space -------------+
 *
 * The source fetches pages and emits them; the pipeline fans them out to the sinks and commits
 * each page once every sink settled it; the committer applies the commit to the checkpoint and
 * saves it. Every notification between them (commit, space, end of fetching, flush done)
 * arrives on a later loop turn (core/defer.h). --once / --from end when the source has nothing
 * more to fetch and the pipeline has committed every page (maybe_run_done).
 *
 * (Over 600 lines on purpose: the command line, start-up, the wiring and the shutdown sequence
 * stay in one file so that their order reads top to bottom; nothing here is used elsewhere.) */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <curl/curl.h>
#include <uv.h>

#include "core/checkpoint.h"
#include "config/config.h"
#include "core/defer.h"
#include "net/http.h"
#include "core/json.h"
#include "core/log.h"
#include "ops/notify.h"
#include "pipeline/committer.h"
#include "pipeline/pipeline.h"
#include "ops/server.h"
#include "sinks/sink.h"
#include "source/source.h"
#include "core/util.h"
#include "app/translate.h"
#include "app/translate_query.h"
#include "app/status.h"
#include "ops/healthcheck.h"
#include "source/demo.h"

enum {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1, /* could not deliver / API failure (--once, --from, --ping) */
    EXIT_USAGE = 2,   /* bad command line or configuration */
    EXIT_STATE = 3,   /* checkpoint unreadable, corrupt or unwritable */
};

static const char usage_text[] =
    "Usage: sysdig-forwarder -c FILE [--once | --from T --to T | --ping | --check-config]\n"
    "       sysdig-forwarder --demo [--format FMT] [-c FILE]\n"
    "       sysdig-forwarder translate --format FMT [FILE]\n"
    "       sysdig-forwarder translate --filter-sink NAME -c FILE [FILE]\n"
    "       sysdig-forwarder translate-query [--json] [--now T] 'STIX PATTERN'\n"
    "       sysdig-forwarder healthcheck [-c FILE] [-t DURATION] [URL]\n"
    "       sysdig-forwarder status -c FILE [--json] [-t DURATION]\n"
    "\n"
    "Forwards Sysdig Secure runtime events to syslog, files, Kafka REST and webhooks.\n"
    "\n"
    "  -c, --config FILE        configuration file (YAML)\n"
    "      --check-config       validate the configuration and what start-up needs from\n"
    "                           this machine (output paths writable, TLS files load);\n"
    "                           print FILE:LINE:COL: problems\n"
    "      --syntax-only        with --check-config: the configuration alone (for a\n"
    "                           machine other than the one it runs on, e.g. CI)\n"
    "      --once               catch up from the checkpoint to now, deliver, save, exit\n"
    "      --from T --to T      export a fixed range (RFC 3339, -2h, now); checkpoint untouched\n"
    "      --ping               check the URL and token against the API\n"
    "      --demo               run against a built-in simulator of the API, print to stdout\n"
    "      --format FMT         with --demo: output format (raw, stix, stix21, cef, leef)\n"
    "      --log-level LEVEL    debug, info, warn or error (overrides log.level, SF_LOG_LEVEL)\n"
    "      --print-config-reference  print the configuration reference (Markdown)\n"
    "  -v, --version            print the version\n"
    "  -h, --help               this help\n"
    "\n"
    "Exit status: 0 success; 1 events or the API could not be handled (--once, --from,\n"
    "--ping); 2 usage or configuration error; 3 checkpoint unreadable, corrupt or\n"
    "unwritable. Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reopens output files.\n";

typedef struct app {
    uv_loop_t loop;
    sf_defer defer; /* the loop's next-turn notification queue */
    sf_config cfg;
    bool cfg_loaded;
    sf_http *http;
    sf_pipeline *pipe;
    sf_source *src;
    sf_committer *committer; /* writes the checkpoint */
    sf_server *server;       /* ops endpoint, progress/health logs, systemd STATUS= */
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t shutdown_timer, drain_timer;
    bool shutting_down, finishing;
    bool stop_requested; /* SIGTERM/SIGINT arrived before the source existed */
    /* --once / --from: the source fetched everything (with this status); pages failed */
    bool fetch_done, run_done;
    int fetch_status;
    uint64_t pages_failed;
    int exit_code;
    const char *mode_name;
    bool has_flag_level;
    sf_log_level flag_level; /* --log-level: overrides log.level and SF_LOG_LEVEL */
    int lock_fd;             /* holds the checkpoint's lock (one daemon per checkpoint) */
    sf_demo *demo;
    char demo_dir[256];
} app_t;

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_http_closed(void *ud)
{
    app_t *a = ud;
    a->http = NULL;
    if (a->src) {
        sf_source_free(a->src); /* closes its timer; freed from the close callback */
        a->src = NULL;
    }
    close_handle((uv_handle_t *)&a->sigterm);
    close_handle((uv_handle_t *)&a->sigint);
    close_handle((uv_handle_t *)&a->sighup);
    close_handle((uv_handle_t *)&a->shutdown_timer);
    close_handle((uv_handle_t *)&a->drain_timer);
    sf_defer_close(&a->defer);
}

static void on_demo_closed(void *ud)
{
    app_t *a = ud;
    a->demo = NULL;
    sf_http_close(a->http, on_http_closed, a);
}

static void on_pipeline_closed(void *ud)
{
    app_t *a = ud;
    if (a->demo) {
        sf_demo_close(a->demo, on_demo_closed, a);
        return;
    }
    sf_http_close(a->http, on_http_closed, a);
}

static void on_flushed(void *ud, int rc)
{
    app_t *a = ud;
    if (rc) {
        SF_ERROR("main", "the final checkpoint could not be written");
        if (a->exit_code == EXIT_OK)
            a->exit_code = EXIT_STATE;
    }
    sf_pipeline_close(a->pipe, on_pipeline_closed, a);
}

static void finish_shutdown(app_t *a)
{
    if (a->finishing)
        return; /* the final save (or the close after it) is under way */
    a->finishing = true;
    uv_timer_stop(&a->drain_timer);
    uv_timer_stop(&a->shutdown_timer);
    size_t left = sf_pipeline_inflight(a->pipe);
    if (left) {
        SF_WARN("main",
                "%zu pages still in flight at shutdown; they will be read again on the "
                "next start",
                left);
        if (a->exit_code == EXIT_OK && strcmp(a->mode_name, "follow") != 0)
            a->exit_code = EXIT_RUNTIME;
    }
    sf_committer_flush(a->committer, on_flushed, a);
}

static void drain_tick(uv_timer_t *t)
{
    app_t *a = t->data;
    if (sf_pipeline_inflight(a->pipe) == 0)
        finish_shutdown(a);
}

static void shutdown_timeout(uv_timer_t *t)
{
    finish_shutdown(t->data);
}

static void begin_shutdown(app_t *a, int code)
{
    if (a->shutting_down)
        return;
    a->shutting_down = true;
    if (code != EXIT_OK && a->exit_code == EXIT_OK)
        a->exit_code = code;
    sf_notify_stopping("stopping: finishing in-flight delivery");
    sf_server_close(a->server, NULL, NULL); /* before the source it reads is freed */
    a->server = NULL;
    sf_source_stop(a->src);
    sf_pipeline_flush(a->pipe); /* sinks that settle late: settle what they wrote now */
    uv_signal_stop(&a->sighup);
    uv_timer_start(&a->shutdown_timer, shutdown_timeout,
                   (uint64_t)a->cfg.pipeline.shutdown_timeout_ms, 0);
    uv_timer_start(&a->drain_timer, drain_tick, 0, 50);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *a = h->data;
    if (!a->src) {
        /* before the pipeline runs (start-up, --ping): nothing to drain; the default action
         * would kill us mid-start, so the watchers are installed early and this is a no-op */
        if (signum != SIGHUP)
            SF_INFO("main", "signal %d during start-up: stopping once started", signum);
        a->stop_requested = signum != SIGHUP;
        return;
    }
    if (signum == SIGHUP) {
        SF_INFO("main", "SIGHUP: reopening output files");
        sf_pipeline_reopen(a->pipe);
        return;
    }
    if (a->shutting_down) {
        SF_WARN("main", "second signal: stopping now");
        finish_shutdown(a);
        return;
    }
    SF_INFO("main", "%s: finishing in-flight delivery and saving the checkpoint",
            signum == SIGTERM ? "SIGTERM" : "SIGINT");
    begin_shutdown(a, EXIT_OK);
}

/* --once / --from: the source fetched everything and the pipeline committed every page. */
static void maybe_run_done(app_t *a)
{
    if (!a->fetch_done || a->run_done || a->shutting_down || sf_pipeline_inflight(a->pipe))
        return;
    a->run_done = true;
    int status = a->fetch_status ? a->fetch_status : a->pages_failed ? EXIT_RUNTIME : EXIT_OK;
    sf_source_stats st;
    sf_source_stats_get(a->src, &st);
    sf_pipeline_stats ps;
    sf_pipeline_stats_get(a->pipe, &ps);
    if (status == 0)
        SF_INFO("main", "done: %llu events in %llu pages, %llu deliveries, %llu dead-lettered",
                (unsigned long long)st.events, (unsigned long long)st.pages,
                (unsigned long long)ps.delivered, (unsigned long long)ps.rejected);
    else
        SF_ERROR("main", "finished with errors: %llu events in %llu pages before the failure",
                 (unsigned long long)st.events, (unsigned long long)st.pages);
    begin_shutdown(a, status ? EXIT_RUNTIME : EXIT_OK);
}

/* ---- the data flow: source -> pipeline -> committer ---- */

static int emit_page(void *ud, sf_event *events, size_t n, sf_progress *progress)
{
    app_t *a = ud;
    return sf_pipeline_submit(a->pipe, events, n, progress);
}

static bool pipeline_can_accept(void *ud)
{
    app_t *a = ud;
    return sf_pipeline_can_accept(a->pipe);
}

static size_t pipeline_held_bytes(void *ud)
{
    app_t *a = ud;
    return sf_pipeline_held_bytes(a->pipe);
}

static void on_pipeline_space(void *ud)
{
    app_t *a = ud;
    sf_source_on_space(a->src);
}

/* A page committed (in page order): the committer moves the checkpoint. */
static void on_commit(void *ud, void *token, bool ok)
{
    app_t *a = ud;
    if (!ok)
        a->pages_failed++;
    sf_committer_commit(a->committer, token, ok);
    maybe_run_done(a); /* the last page of --once / --from */
}

/* A sink confirmed a page that cannot commit yet (another sink holds it): the committer records
 * it for that sink, so a crash does not re-send the page to it. */
static void on_sink_confirmed(void *ud, size_t sink, void *token)
{
    app_t *a = ud;
    sf_committer_sink_confirmed(a->committer, sink, token);
}

/* An event the sink confirmed in an earlier run (the checkpoint's per-sink progress). */
static bool sink_skips(void *ud, size_t sink, const sf_event *ev)
{
    app_t *a = ud;
    return ev->id[0] && sf_committer_sink_has(a->committer, sink, ev->id);
}

/* --once / --from: nothing more will be fetched; the pages in flight finish first. */
static void on_source_done(void *ud, int status)
{
    app_t *a = ud;
    a->fetch_done = true;
    a->fetch_status = status;
    sf_pipeline_flush(a->pipe); /* nothing more comes: sinks that settle late settle now */
    maybe_run_done(a);
}

/* Position of "FILE:LINE:COL: ..." as a sortable number (unpositioned messages last). */
static long long error_pos(const char *msg)
{
    const char *p = strstr(msg, ": ");
    unsigned line = 0, col = 0;
    const char *c = msg;
    /* LINE:COL are the last two numbers before the first ": " */
    for (const char *q = msg; p && q < p; q++)
        if (*q == ':')
            c = q;
    if (p && c > msg) {
        const char *l = c - 1;
        while (l > msg && *l != ':')
            l--;
        if (sscanf(l, ":%u:%u", &line, &col) == 2)
            return (long long)line * 100000 + col;
    }
    return LLONG_MAX;
}

static int cmp_errors(const void *a, const void *b)
{
    long long x = error_pos(*(char *const *)a), y = error_pos(*(char *const *)b);
    return (x > y) - (x < y);
}

static void print_errors(sf_cfg_errors *errs)
{
    if (errs->n > 1)
        qsort(errs->msgs, errs->n, sizeof *errs->msgs, cmp_errors);
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->msgs[i]);
}

static int load_config(app_t *a, const char *path, const char *text)
{
    sf_cfg_errors errs = {0};
    int rc = text ? sf_config_load_text(path, text, strlen(text), &a->cfg, &errs)
                  : sf_config_load(path, &a->cfg, &errs);
    if (rc != 0) {
        print_errors(&errs);
        if (!errs.n)
            fprintf(stderr, "%s: cannot load the configuration\n", path);
        sf_cfg_errors_free(&errs);
        return -1;
    }
    sf_cfg_errors_free(&errs);
    a->cfg_loaded = true;
    /* logging as configured (file, SF_LOG_* overrides, --log-level) before any line of it */
    sf_log_set_format((sf_log_format)a->cfg.log.format);
    sf_log_set_level(a->has_flag_level ? a->flag_level : (sf_log_level)a->cfg.log.level);
    for (size_t i = 0; i < a->cfg.warnings.n; i++)
        SF_WARN("config", "%s", a->cfg.warnings.v[i]);
    return 0;
}

/* What start-up will need from this machine (files to write, TLS files to load): an error
 * there is a configuration error (exit 2, FILE:LINE:COL), found by --check-config too, never a
 * failure after start. */
static int check_env(app_t *a, bool uses_checkpoint)
{
    sf_cfg_errors errs = {0};
    int n = sf_config_check_env(&a->cfg, &errs);
    if (uses_checkpoint)
        n += sf_config_check_checkpoint_env(&a->cfg, &errs);
    print_errors(&errs);
    sf_cfg_errors_free(&errs);
    return n ? -1 : 0;
}

/* Before the configuration is read: the environment's overrides and --log-level already
 * apply, so the first lines have the format the rest will have. */
static void early_logging(app_t *a)
{
    const char *f = getenv("SF_LOG_FORMAT"), *l = getenv("SF_LOG_LEVEL");
    if (f && strcmp(f, "json") == 0)
        sf_log_set_format(SF_LOG_JSON);
    sf_log_level lvl;
    if (a->has_flag_level)
        sf_log_set_level(a->flag_level);
    else if (l && *l && sf_log_parse_level(l, &lvl) == 0)
        sf_log_set_level(lvl);
}

static void log_startup(app_t *a, const sf_checkpoint *cp)
{
    const sf_config *c = &a->cfg;
    sf_buf sinks = {0};
    for (size_t i = 0; i < c->nsinks; i++)
        sf_buf_appendf(&sinks, "%s%s(%s,%s)", i ? " " : "", c->sinks[i]->common.name,
                       c->sinks[i]->ops->type, c->sinks[i]->format->name);
    char pos[64] = "none (first start)";
    if (cp->watermark_ns != SF_TIME_UNSET)
        sf_format_rfc3339(cp->watermark_ns, 3, pos, sizeof pos);
    SF_INFO("main",
            "sysdig-forwarder %s starting: mode %s, api %s at %s, sinks: %s, "
            "checkpoint %s at %s%s",
            SF_VERSION, a->mode_name, c->source.api == SF_API_EVENTS ? "events" : "legacy",
            c->source.url, sinks.data ? sinks.data : "-", c->checkpoint.path, pos,
            cp->in_window ? " (window in progress)" : "");
    if (c->source.stix_pattern && *c->source.stix_pattern)
        SF_INFO("main", "source.stix_pattern translated to the filter %s", c->source.filter);
    sf_buf_free(&sinks);
}

static void on_ping_done(void *ud, int rc, const char *message)
{
    app_t *a = ud;
    if (rc == 0)
        printf("%s\n", message);
    else
        fprintf(stderr, "ping failed: %s\n", message);
    a->exit_code = rc ? EXIT_RUNTIME : EXIT_OK;
    sf_http_close(a->http, on_http_closed, a);
}

static void init_handles(app_t *a)
{
    sf_defer_init(&a->loop, &a->defer);
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    uv_signal_init(&a->loop, &a->sighup);
    uv_timer_init(&a->loop, &a->shutdown_timer);
    uv_timer_init(&a->loop, &a->drain_timer);
    a->sigterm.data = a->sigint.data = a->sighup.data = a;
    a->shutdown_timer.data = a->drain_timer.data = a;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    close_handle(h);
}

static void run_loop_to_end(app_t *a)
{
    uv_run(&a->loop, UV_RUN_DEFAULT);
    /* every handle closes through the shutdown chain; drain what is left */
    uv_walk(&a->loop, walk_close, NULL);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&a->loop) != 0)
        SF_WARN("main", "event loop closed with handles still open");
}

static int start_demo(app_t *a, const char *format, const char *cfg_path)
{
    sf_demo_opts o = {.backlog = 50, .backlog_span_ms = 3600 * 1000, .interval_ms = 3000};
    int rc = sf_demo_start(&a->loop, &o, &a->demo);
    if (rc) {
        fprintf(stderr, "cannot start the demo API simulator: %s\n", uv_strerror(rc));
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(a->demo_dir, sizeof a->demo_dir, "%s/sysdig-forwarder-demo-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(a->demo_dir)) {
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        return -1;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sf_demo_port(a->demo));
    if (cfg_path) {
        /* the user's config, pointed at the simulator */
        setenv("SF_DEMO_URL", url, 1);
        return load_config(a, cfg_path, NULL);
    }
    sf_buf y = {0};
    sf_buf_appendf(&y,
                   "source:\n"
                   "  url: %s\n"
                   "  api: legacy\n"
                   "  token: demo-token\n"
                   "  poll_interval: 2s\n"
                   "  lookback: 1h\n"
                   "  overlap: 10s\n"
                   "checkpoint:\n"
                   "  path: %s/checkpoint.json\n"
                   "sinks:\n"
                   "  - name: console\n"
                   "    type: stdout\n"
                   "    format: %s\n",
                   url, a->demo_dir, format ? format : "raw");
    rc = y.data ? load_config(a, "<demo>", y.data) : -1;
    sf_buf_free(&y);
    return rc;
}

static void demo_cleanup(app_t *a)
{
    if (!a->demo_dir[0])
        return;
    char p[300];
    snprintf(p, sizeof p, "%s/checkpoint.json", a->demo_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/checkpoint.json.lock", a->demo_dir);
    unlink(p);
    rmdir(a->demo_dir);
}

int main(int argc, char **argv)
{
    sf_json_init(); /* cJSON's allocation hooks, before any thread (core/json.h) */
#ifdef __GLIBC__
    /* Response bodies (a legacy page is ~4 MB, an events-API page ~0.8 MB) come and go by the
     * hundred during a catch-up. glibc raises its mmap threshold to the size of the last mmap'd
     * block freed, after which such bodies come from the heaps and their freed space stays
     * resident (fragmented): a fixed threshold keeps every block over 256 KiB an mmap returned
     * to the system when freed, so resident memory follows pipeline.max_inflight_bytes, for
     * some page faults (bench/, 200,000 events at 0 ms: legacy at concurrency 4, peak RSS 62 ->
     * 41 MiB at a 1 MiB threshold; events API at concurrency 8, 35 -> 26 MiB at 256 KiB for
     * ~1.5 us of system time an event). */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
#endif
    if (argc > 1 && strcmp(argv[1], "translate") == 0) {
        return sf_translate_main(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "translate-query") == 0)
        return sf_translate_query_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "healthcheck") == 0)
        return sf_healthcheck_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return sf_status_main(argc - 1, argv + 1);
    enum {
        OPT_CHECK = 256,
        OPT_ONCE,
        OPT_FROM,
        OPT_TO,
        OPT_PING,
        OPT_DEMO,
        OPT_FORMAT,
        OPT_REF,
        OPT_LOG_LEVEL,
        OPT_SYNTAX_ONLY
    };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"syntax-only", no_argument, NULL, OPT_SYNTAX_ONLY},
        {"once", no_argument, NULL, OPT_ONCE},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"ping", no_argument, NULL, OPT_PING},
        {"demo", no_argument, NULL, OPT_DEMO},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"print-config-reference", no_argument, NULL, OPT_REF},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *cfg_path = NULL, *from_s = NULL, *to_s = NULL, *format = NULL;
    bool check = false, once = false, ping = false, demo = false, has_flag_level = false;
    bool syntax_only = false;
    sf_log_level flag_level = SF_LOG_INFO;
    int c;
    while ((c = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_SYNTAX_ONLY:
            syntax_only = true;
            break;
        case OPT_ONCE:
            once = true;
            break;
        case OPT_FROM:
            from_s = optarg;
            break;
        case OPT_TO:
            to_s = optarg;
            break;
        case OPT_PING:
            ping = true;
            break;
        case OPT_DEMO:
            demo = true;
            break;
        case OPT_FORMAT:
            format = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (sf_log_parse_level(optarg, &flag_level) != 0) {
                fprintf(stderr, "sysdig-forwarder: --log-level takes debug, info, warn or error\n");
                return EXIT_USAGE;
            }
            has_flag_level = true;
            break;
        case OPT_REF: {
            sf_buf b = {0};
            int rc = sf_config_reference(&b);
            if (b.data)
                fputs(b.data, stdout);
            sf_buf_free(&b);
            return rc ? EXIT_RUNTIME : EXIT_OK;
        }
        case 'v':
            printf("sysdig-forwarder %s (%s, libuv %s)\n", SF_VERSION, curl_version(),
                   uv_version_string());
            return EXIT_OK;
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK;
        default:
            fputs(usage_text, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sysdig-forwarder: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return EXIT_USAGE;
    }
    int modes = (check ? 1 : 0) + (once ? 1 : 0) + (ping ? 1 : 0) + ((from_s || to_s) ? 1 : 0);
    if (modes > 1 || (!cfg_path && !demo) || (!!from_s != !!to_s) || (format && !demo) ||
        (syntax_only && !check)) {
        fprintf(
            stderr, "%s%s",
            !cfg_path && !demo      ? "sysdig-forwarder: -c FILE is required\n"
            : syntax_only && !check ? "sysdig-forwarder: --syntax-only goes with --check-config\n"
            : (!!from_s != !!to_s)  ? "sysdig-forwarder: --from and --to go together\n"
            : format && !demo
                ? "sysdig-forwarder: --format goes with --demo (sinks choose formats in the "
                  "configuration)\n"
                : "sysdig-forwarder: choose one of --once, --from/--to, --ping, --check-config\n",
            usage_text);
        return EXIT_USAGE;
    }

    signal(SIGPIPE, SIG_IGN);
    static app_t app;
    app_t *a = &app;
    a->exit_code = EXIT_OK;
    a->lock_fd = -1;
    a->has_flag_level = has_flag_level;
    a->flag_level = flag_level;
    early_logging(a);
    a->mode_name = once ? "once" : from_s ? "range" : "follow";
    if (uv_loop_init(&a->loop) != 0) {
        fprintf(stderr, "cannot initialise the event loop\n");
        return EXIT_RUNTIME;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "cannot initialise libcurl\n");
        return EXIT_RUNTIME;
    }
    init_handles(a);
    /* installed before anything else so that a SIGTERM during start-up is handled, not fatal */
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sighup, on_signal, SIGHUP);
    int exit_code = EXIT_OK;
    sf_checkpoint cp;
    sf_checkpoint_init(&cp);

    if (demo) {
        if (start_demo(a, format, cfg_path) != 0) {
            exit_code = EXIT_USAGE;
            goto out_loop;
        }
    } else if (load_config(a, cfg_path, NULL) != 0) {
        exit_code = EXIT_USAGE;
        goto out_loop;
    }
    if (!syntax_only && check_env(a, !from_s && !ping) != 0) {
        exit_code = EXIT_USAGE;
        goto out_loop;
    }
    if (check) {
        printf("%s: configuration OK (%zu sink%s)\n", cfg_path, a->cfg.nsinks,
               a->cfg.nsinks == 1 ? "" : "s");
        goto out_loop;
    }
    if (!a->cfg.source.tls.verify)
        SF_WARN("main", "source.tls.verify is false: the API's certificate is NOT checked");

    if (!(a->http = sf_http_new(&a->loop))) {
        fprintf(stderr, "cannot initialise the HTTP client\n");
        exit_code = EXIT_RUNTIME;
        goto out_loop;
    }
    if (ping) {
        if (sf_source_ping(a->http, &a->cfg, on_ping_done, a) != 0) {
            fprintf(stderr, "ping failed: cannot build the request (check source.url)\n");
            a->exit_code = EXIT_RUNTIME;
            sf_http_close(a->http, on_http_closed, a);
        }
        run_loop_to_end(a);
        exit_code = a->exit_code;
        goto out;
    }

    sf_source_opts so = {.mode = once ? SF_MODE_ONCE : from_s ? SF_MODE_RANGE : SF_MODE_FOLLOW};
    for (size_t i = 0; i < a->cfg.nsinks; i++)
        so.keep_trees = so.keep_trees || a->cfg.sinks[i]->common.filter; /* filters read them */
    if (from_s) {
        int64_t now = sf_now_ns();
        if (sf_parse_time_arg(from_s, now, &so.range_from_ns) != 0 ||
            sf_parse_time_arg(to_s, now, &so.range_to_ns) != 0 ||
            so.range_to_ns <= so.range_from_ns) {
            fprintf(stderr, "sysdig-forwarder: --from/--to need RFC 3339 times, 'now' or "
                            "relative times like -2h, with --from before --to\n");
            exit_code = EXIT_USAGE;
            goto out_http;
        }
    } else {
        char err[512];
        long holder = 0;
        if (sf_checkpoint_lock(a->cfg.checkpoint.path, &a->lock_fd, &holder, err, sizeof err)) {
            fprintf(stderr, "sysdig-forwarder: %s\n", err);
            exit_code = EXIT_STATE;
            goto out_http;
        }
        int rc = sf_checkpoint_load(a->cfg.checkpoint.path, &cp, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "sysdig-forwarder: %s\n", err);
            fprintf(stderr, "sysdig-forwarder: refusing to start: the checkpoint is kept as it "
                            "is; fix or move it away to start over (events may be re-sent)\n");
            exit_code = EXIT_STATE;
            goto out_http;
        }
    }
    if (sf_pipeline_new(&a->loop, &a->defer, a->http, &a->cfg, on_commit, a, &a->pipe) != 0 ||
        sf_pipeline_open(a->pipe) != 0) {
        exit_code = EXIT_RUNTIME;
        goto out_http;
    }
    sf_pipeline_set_bounded(a->pipe, so.mode != SF_MODE_FOLLOW);
    log_startup(a, &cp);
    sf_source_out out = {.ud = a,
                         .emit = emit_page,
                         .can_accept = pipeline_can_accept,
                         .held_bytes = pipeline_held_bytes,
                         .done = on_source_done};
    /* the source reads where to resume; the committer takes the checkpoint over */
    if (sf_source_new(&a->loop, &a->defer, a->http, &a->cfg, &cp, &so, &out, &a->src) != 0 ||
        sf_committer_new(&a->loop, &a->defer, &a->cfg, &cp, so.mode != SF_MODE_RANGE,
                         &a->committer) != 0) {
        exit_code = EXIT_RUNTIME;
        goto out_http;
    }
    sf_pipeline_on_space(a->pipe, on_pipeline_space, a);
    sf_pipeline_sink_hooks hooks = {.confirmed = on_sink_confirmed, .skip = sink_skips, .ud = a};
    sf_pipeline_set_sink_hooks(a->pipe, &hooks);
    sf_server_opts sopts = {.mode = a->mode_name,
                            .checkpoint_used = so.mode != SF_MODE_RANGE,
                            .health_interval_ms = a->cfg.log.health_interval_ms > 0
                                                      ? a->cfg.log.health_interval_ms
                                                      : -1};
    if (sf_server_start(&a->loop, &a->cfg, a->src, a->pipe, a->committer, &sopts, &a->server) !=
        0) {
        exit_code = EXIT_RUNTIME;
        goto out_http;
    }
    sf_notify_init(&a->loop);
    if (sf_source_start(a->src) != 0) {
        exit_code = EXIT_RUNTIME;
        begin_shutdown(a, EXIT_RUNTIME);
    } else {
        sf_notify_ready("starting: polling the API");
        if (a->stop_requested)
            begin_shutdown(a, EXIT_OK);
    }
    run_loop_to_end(a);
    exit_code = a->exit_code;
    goto out;

out_http:
    if (a->pipe) {
        sf_pipeline_close(a->pipe, on_pipeline_closed, a);
    } else if (a->http) {
        sf_http_close(a->http, on_http_closed, a);
    }
out_loop:
    if (a->demo && !a->pipe && !a->http)
        sf_demo_close(a->demo, NULL, NULL);
    if (!a->pipe && !a->http)
        on_http_closed(a);
    run_loop_to_end(a);
out:
    sf_pipeline_free(a->pipe);
    sf_committer_free(a->committer); /* the loop ended: no save in flight */
    sf_checkpoint_free(&cp);
    if (a->cfg_loaded)
        sf_config_free(&a->cfg);
    demo_cleanup(a); /* (removes the demo's lock file while still holding it) */
    if (a->lock_fd >= 0)
        close(a->lock_fd); /* the lock is released; the file stays for the next run */
    curl_global_cleanup();
    sf_log_clear_secrets();
    return exit_code;
}
