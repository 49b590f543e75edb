#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "formats/format.h"
#include "core/log.h"
#include "sinks/sink.h"
#include "core/util.h"
#include "testutil.h"

#define SECRET "SuperSecretToken-9f8e7d"

static sf_config cfg;
static sf_cfg_errors errs;
static char tmpdir[128];

static void setup(void)
{
    memset(&cfg, 0, sizeof cfg);
    memset(&errs, 0, sizeof errs);
    sf_test_mkdtemp(tmpdir, sizeof tmpdir, "cfg");
    sf_log_set_level(SF_LOG_ERROR); /* keep test output quiet; counters still count */
}

static void teardown(void)
{
    sf_config_free(&cfg);
    sf_cfg_errors_free(&errs);
    sf_test_rmtree(tmpdir);
}

static int load(const char *text)
{
    sf_config_free(&cfg);
    sf_cfg_errors_free(&errs);
    return sf_config_load_text("t.yaml", text, strlen(text), &cfg, &errs);
}

static void dump(void)
{
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "  [%zu] %s\n", i, errs.msgs[i]);
}

/* Asserts exactly one error equal to 'want'. */
static void expect1(const char *text, const char *want)
{
    int rc = load(text);
    if (rc != -1 || errs.n != 1 || strcmp(errs.msgs[0], want) != 0) {
        dump();
        ck_abort_msg("want exactly one error '%s', got rc=%d n=%zu", want, rc, errs.n);
    }
}

/* "file, stdout, ..." from the sink registry, as the loader lists them. */
static const char *valid_types(void)
{
    static char buf[512];
    buf[0] = '\0';
    const sf_sink_ops *const *all = sf_sink_all();
    for (size_t i = 0; all[i]; i++) {
        if (i)
            strcat(buf, ", ");
        strcat(buf, all[i]->type);
    }
    return buf;
}

static bool has_err(const char *want)
{
    for (size_t i = 0; i < errs.n; i++)
        if (strcmp(errs.msgs[i], want) == 0)
            return true;
    return false;
}

static void expect_has(const char *want)
{
    if (!has_err(want)) {
        dump();
        ck_abort_msg("missing error '%s'", want);
    }
}

static bool no_secret_in_errors(const char *secret)
{
    for (size_t i = 0; i < errs.n; i++)
        if (strstr(errs.msgs[i], secret))
            return false;
    return true;
}

#define SRC "source:\n  url: https://secure.sysdig.com\n  token: " SECRET "\n"
#define SINK "sinks:\n  - type: stdout\n"

/* ---- valid configurations ---- */

START_TEST(test_minimal_defaults)
{
    int rc = load(SRC SINK);
    if (rc)
        dump();
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(cfg.file, "t.yaml");
    const sf_source_cfg *s = &cfg.source;
    ck_assert_str_eq(s->url, "https://secure.sysdig.com");
    ck_assert_int_eq(s->api, SF_API_LEGACY);
    ck_assert_str_eq(s->token, SECRET);
    ck_assert_ptr_null(s->token_file);
    ck_assert_ptr_null(s->filter);
    ck_assert_uint_eq(s->zones.n, 0);
    ck_assert_int_eq(s->page_size, 200);
    ck_assert_int_eq(s->poll_interval_ms, 10000);
    ck_assert_int_eq(s->lookback_ms, 3600000);
    ck_assert_int_eq(s->overlap_ms, 60000);
    ck_assert_int_eq(s->request_timeout_ms, 30000);
    ck_assert_int_eq(s->connect_timeout_ms, 10000);
    ck_assert_int_eq(s->max_window_events, 10000);
    ck_assert(s->max_response_size == UINT64_C(64) * 1024 * 1024);
    ck_assert_int_eq(s->retry_initial_ms, 1000);
    ck_assert_int_eq(s->retry_max_ms, 300000);
    ck_assert_int_eq(s->auth_retry_ms, 300000);
    ck_assert_int_eq(s->dedup_max_ids, 100000);
    ck_assert(s->tls.verify);
    ck_assert_ptr_null(s->tls.ca_file);
    ck_assert_ptr_null(s->proxy);
    ck_assert_ptr_nonnull(s->user_agent);
    ck_assert_ptr_nonnull(strstr(s->user_agent, "sysdig-forwarder"));
    ck_assert_str_eq(cfg.checkpoint.path, "/var/lib/sysdig-forwarder/checkpoint.json");
    ck_assert_int_eq(cfg.log.level, SF_LOG_INFO);
    ck_assert_int_eq(cfg.log.format, SF_LOG_TEXT);
    ck_assert(cfg.server.listen == NULL || cfg.server.listen[0] == '\0');
    ck_assert_int_eq(cfg.server.ready_max_poll_age_ms, 300000);
    ck_assert_int_eq(cfg.pipeline.max_inflight_pages, 4);
    ck_assert_int_eq(cfg.pipeline.shutdown_timeout_ms, 20000);
    ck_assert_uint_eq(cfg.nsinks, 1);
    const sf_sink_cfg *k = cfg.sinks[0];
    ck_assert_str_eq(k->common.name, "stdout");
    ck_assert_str_eq(k->common.type, "stdout");
    ck_assert_str_eq(k->common.format, "raw");
    ck_assert_ptr_eq(k->ops, sf_sink_find("stdout"));
    ck_assert_ptr_eq(k->format, sf_format_find("raw"));
    ck_assert_int_eq(k->common.queue_max_events, 10000);
    ck_assert_int_eq(k->common.retry_initial_ms, 1000);
    ck_assert_int_eq(k->common.retry_max_ms, 300000);
    ck_assert_int_eq(k->common.retry_max_attempts, 0);
    ck_assert_ptr_nonnull(k->common.node);
    ck_assert_int_eq(k->common.node->kind, SF_NODE_MAP);
    ck_assert_int_eq(k->common.node->line, 5);
    ck_assert_int_eq(k->common.node->col, 5);
}
END_TEST

static const char full_yaml[] = "source:\n"
                                "  url: http://localhost:8080/\n"
                                "  api: events\n"
                                "  token: " SECRET "\n"
                                "  filter: 'severity in (0,1)'\n"
                                "  zones: [1, 22, 333]\n"
                                "  page_size: 150\n"
                                "  poll_interval: 2s\n"
                                "  lookback: 2h\n"
                                "  overlap: 90s\n"
                                "  request_timeout: 15s\n"
                                "  connect_timeout: 3s\n"
                                "  max_window_events: 5000\n"
                                "  max_response_size: 10MiB\n"
                                "  retry:\n"
                                "    initial: 500ms\n"
                                "    max: 1m\n"
                                "  auth_retry: 10m\n"
                                "  dedup_max_ids: 5000\n"
                                "  tls:\n"
                                "    verify: no\n"
                                "    ca_file: /etc/ca.pem\n"
                                "  proxy: http://proxy:3128\n"
                                "  user_agent: test-agent/1\n"
                                "checkpoint:\n"
                                "  path: /tmp/cp.json\n"
                                "log:\n"
                                "  level: debug\n"
                                "  format: json\n"
                                "server:\n"
                                "  listen: 127.0.0.1:9464\n"
                                "  ready_max_poll_age: 90s\n"
                                "pipeline:\n"
                                "  max_inflight_pages: 8\n"
                                "  shutdown_timeout: 5s\n"
                                "sinks:\n"
                                "  - name: archive\n"
                                "    type: file\n"
                                "    format: raw\n"
                                "    path: /tmp/events.ndjson\n"
                                "    rotate:\n"
                                "      max_size: 100MiB\n"
                                "      keep: 3\n"
                                "    fsync: interval\n"
                                "    queue:\n"
                                "      max_events: 500\n"
                                "    retry:\n"
                                "      initial: 2s\n"
                                "      max: 30s\n"
                                "      max_attempts: 7\n"
                                "  - type: stdout\n";

START_TEST(test_full_config)
{
    int rc = load(full_yaml);
    if (rc)
        dump();
    ck_assert_int_eq(rc, 0);
    const sf_source_cfg *s = &cfg.source;
    ck_assert_str_eq(s->url, "http://localhost:8080/");
    ck_assert_int_eq(s->api, SF_API_EVENTS);
    ck_assert_str_eq(s->token, SECRET);
    ck_assert_str_eq(s->filter, "severity in (0,1)");
    ck_assert_uint_eq(s->zones.n, 3);
    ck_assert_int_eq(s->zones.v[0], 1);
    ck_assert_int_eq(s->zones.v[1], 22);
    ck_assert_int_eq(s->zones.v[2], 333);
    ck_assert_int_eq(s->page_size, 150);
    ck_assert_int_eq(s->poll_interval_ms, 2000);
    ck_assert_int_eq(s->lookback_ms, 7200000);
    ck_assert_int_eq(s->overlap_ms, 90000);
    ck_assert_int_eq(s->request_timeout_ms, 15000);
    ck_assert_int_eq(s->connect_timeout_ms, 3000);
    ck_assert_int_eq(s->max_window_events, 5000);
    ck_assert(s->max_response_size == UINT64_C(10) * 1024 * 1024);
    ck_assert_int_eq(s->retry_initial_ms, 500);
    ck_assert_int_eq(s->retry_max_ms, 60000);
    ck_assert_int_eq(s->auth_retry_ms, 600000);
    ck_assert_int_eq(s->dedup_max_ids, 5000);
    ck_assert(!s->tls.verify);
    ck_assert_str_eq(s->tls.ca_file, "/etc/ca.pem");
    ck_assert_str_eq(s->proxy, "http://proxy:3128");
    ck_assert_str_eq(s->user_agent, "test-agent/1");
    ck_assert_str_eq(cfg.checkpoint.path, "/tmp/cp.json");
    ck_assert_int_eq(cfg.log.level, SF_LOG_DEBUG);
    ck_assert_int_eq(cfg.log.format, SF_LOG_JSON);
    ck_assert_str_eq(cfg.server.listen, "127.0.0.1:9464");
    ck_assert_int_eq(cfg.server.ready_max_poll_age_ms, 90000);
    ck_assert_int_eq(cfg.pipeline.max_inflight_pages, 8);
    ck_assert_int_eq(cfg.pipeline.shutdown_timeout_ms, 5000);
    ck_assert_uint_eq(cfg.nsinks, 2);
    const sf_sink_cfg *a = cfg.sinks[0];
    ck_assert_str_eq(a->common.name, "archive");
    ck_assert_str_eq(a->common.type, "file");
    ck_assert_str_eq(a->common.format, "raw");
    ck_assert_int_eq(a->common.queue_max_events, 500);
    ck_assert_int_eq(a->common.retry_initial_ms, 2000);
    ck_assert_int_eq(a->common.retry_max_ms, 30000);
    ck_assert_int_eq(a->common.retry_max_attempts, 7);
    ck_assert_ptr_eq(a->ops, sf_sink_find("file"));
    ck_assert_ptr_nonnull(a->type_cfg);
    ck_assert_ptr_eq(a->common.node, cfg.root->items[5]->items[0]);
    /* the file sink's own table filled its struct (first member: char *path) */
    ck_assert_str_eq(*(char **)a->type_cfg, "/tmp/events.ndjson");
    ck_assert_str_eq(cfg.sinks[1]->common.name, "stdout");
}
END_TEST

START_TEST(test_bool_spellings)
{
    static const struct {
        const char *v;
        bool want;
    } cases[] = {{"true", true},  {"false", false}, {"yes", true},  {"no", false},
                 {"on", true},    {"off", false},   {"True", true}, {"OFF", false},
                 {"'yes'", true}, {"\"no\"", false}};
    for (size_t i = 0; i < SF_ARRAY_LEN(cases); i++) {
        char y[512];
        snprintf(y, sizeof y, SRC "  tls: {verify: %s}\n" SINK, cases[i].v);
        ck_assert_int_eq(load(y), 0);
        ck_assert_msg(cfg.source.tls.verify == cases[i].want, "%s", cases[i].v);
    }
}
END_TEST

START_TEST(test_null_values_take_defaults)
{
    ck_assert_int_eq(load(SRC "  page_size:\n  retry:\n  proxy: ~\nlog:\n" SINK), 0);
    ck_assert_int_eq(cfg.source.page_size, 200);
    ck_assert_int_eq(cfg.source.retry_max_ms, 300000);
    ck_assert_ptr_null(cfg.source.proxy);
    ck_assert_int_eq(cfg.log.level, SF_LOG_INFO);
    /* a quoted empty string is a value, not null */
    ck_assert_int_eq(load(SRC "  proxy: ''\n" SINK), 0);
    ck_assert_str_eq(cfg.source.proxy, "");
}
END_TEST

/* ---- YAML level ---- */

/* A format's own option checks run at load time (so --check-config reports them). */
START_TEST(test_format_options_checked)
{
    expect1("source: {url: https://x, token: tok-0001}\n"
            "sinks:\n  - type: stdout\n    format: leef\n    leef: {delimiter: xA6}\n",
            "t.yaml:5:11: leef.delimiter 'xA6': expected \"tab\", one ASCII character or xHH "
            "below x80 (not '=', '|', '\\\\', NUL, CR or LF)");
    ck_assert_int_eq(
        load("source: {url: https://x, token: tok-0001}\n"
             "sinks:\n  - type: stdout\n    format: leef\n    leef: {delimiter: x7C}\n"),
        -1); /* '|' */
    ck_assert_int_eq(
        load("source: {url: https://x, token: tok-0001}\n"
             "sinks:\n  - type: stdout\n    format: leef\n    leef: {delimiter: '^'}\n"),
        0);
}
END_TEST

START_TEST(test_yaml_syntax_errors)
{
    expect1("source:\n  url: \"https://x\n  token: tok-abc1\n",
            "t.yaml:4:1: YAML syntax error: found unexpected end of stream (while scanning a "
            "quoted scalar at line 2, column 8)");
    expect1("source:\n  url: https://x\n   token: tok-abc1\n",
            "t.yaml:3:9: YAML syntax error: mapping values are not allowed in this context");
    expect1("source:\n  url: [a, b\nsinks: []\n",
            "t.yaml:3:6: YAML syntax error: did not find expected ',' or ']' (while parsing a "
            "flow sequence at line 2, column 8)");
    expect1("a:\n\tb: 1\n", "t.yaml:2:1: YAML syntax error: found character that cannot start "
                            "any token (while scanning for the next token at line 2, column 1)");
    ck_assert_ptr_null(cfg.root);
}
END_TEST

START_TEST(test_yaml_structure_errors)
{
    expect1("", "t.yaml: configuration is empty");
    expect1("# only a comment\n", "t.yaml: configuration is empty");
    expect1("- a\n- b\n", "t.yaml:1:1: the configuration must be a map, got a list");
    expect1("just text\n", "t.yaml:1:1: the configuration must be a map, got a scalar");
    expect1("source:\n  url: https://x\n  url: https://y\n", "t.yaml:3:3: duplicate key 'url'");
    expect1("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one YAML document is allowed");
    expect1("? [a]\n: 1\n", "t.yaml:1:3: mapping keys must be scalars");
}
END_TEST

START_TEST(test_yaml_anchors_aliases)
{
    int rc = load("base: &b\n  x: 1\nother: *b\nval: &v 3\n");
    ck_assert_int_eq(rc, -3);
    expect_has("t.yaml:1:7: YAML anchors (&b) are not supported");
    expect_has("t.yaml:3:8: YAML aliases (*b) are not supported");
    expect_has("t.yaml:4:6: YAML anchors (&v) are not supported");
    /* merge keys are aliases too */
    rc = load(SRC "  retry: &r {initial: 1s}\n" SINK "    retry: *r\n");
    ck_assert_int_lt(rc, 0);
    expect_has("t.yaml:4:10: YAML anchors (&r) are not supported");
    expect_has("t.yaml:7:12: YAML aliases (*r) are not supported");
}
END_TEST

START_TEST(test_parse_tree_positions)
{
    sf_cfg_errors e = {.file = "p.yaml"};
    const char y[] = "a:\n  b: [1, \"two\"]\n  c: {d: x}\n";
    sf_cfg_node *root = sf_cfg_parse_yaml(y, strlen(y), &e);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(e.n, 0);
    ck_assert_int_eq(root->kind, SF_NODE_MAP);
    const sf_cfg_node *a = sf_cfg_map_get(root, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(root->key_line[0], 1);
    ck_assert_int_eq(root->key_col[0], 1);
    const sf_cfg_node *b = sf_cfg_map_get(a, "b");
    ck_assert_int_eq(b->kind, SF_NODE_SEQ);
    ck_assert_int_eq(b->line, 2);
    ck_assert_int_eq(b->col, 6);
    ck_assert_uint_eq(b->n, 2);
    ck_assert_str_eq(b->items[1]->value, "two");
    ck_assert(b->items[1]->quoted);
    ck_assert(!b->items[0]->quoted);
    ck_assert_int_eq(b->items[1]->line, 2);
    ck_assert_int_eq(b->items[1]->col, 10);
    const sf_cfg_node *d = sf_cfg_map_get(sf_cfg_map_get(a, "c"), "d");
    ck_assert_str_eq(d->value, "x");
    ck_assert_int_eq(d->line, 3);
    ck_assert_int_eq(d->col, 10);
    ck_assert_ptr_null(sf_cfg_map_get(a, "zz"));
    ck_assert_ptr_null(sf_cfg_map_get(b, "b")); /* not a map */
    ck_assert_ptr_null(sf_cfg_map_get(NULL, "b"));
    sf_cfg_node_free(root);
}
END_TEST

/* ---- environment expansion ---- */

START_TEST(test_env_expansion)
{
    setenv("SF_T_URL", "https://env.example", 1);
    setenv("SF_T_EMPTY", "", 1);
    unsetenv("SF_T_UNSET");
    const char y[] = "source:\n"
                     "  url: ${SF_T_URL}\n"
                     "  token: pre-${SF_T_UNSET:-dflt}-$$HOME-$${SF_T_URL}-post\n"
                     "  filter: \"${SF_T_EMPTY:-was empty} ${SF_T_URL}/x $ alone $5\"\n"
                     "  proxy: ${SF_T_UNSET:-}\n" SINK;
    int rc = load(y);
    if (rc)
        dump();
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(cfg.source.url, "https://env.example");
    ck_assert_str_eq(cfg.source.token, "pre-dflt-$HOME-${SF_T_URL}-post");
    ck_assert_str_eq(cfg.source.filter, "was empty https://env.example/x $ alone $5");
    /* an unquoted value that expands to nothing is null: the default applies */
    ck_assert_ptr_null(cfg.source.proxy);
}
END_TEST

START_TEST(test_env_errors)
{
    unsetenv("SF_T_UNSET");
    int rc = load("source:\n  url: https://x\n  token: ${SF_T_UNSET}\n" SINK);
    ck_assert_int_lt(rc, 0);
    expect_has("t.yaml:3:10: environment variable SF_T_UNSET is not set");
    expect1("a: \"x ${SF_T_URL\"\n",
            "t.yaml:1:4: unterminated ${ in value (use $$ for a literal $)");
    expect1("a: ${1BAD}\n", "t.yaml:1:4: invalid variable reference '${1BAD}' (expected ${NAME} "
                            "or ${NAME:-default})");
    expect1("a: ${A-B}\n", "t.yaml:1:4: invalid variable reference '${A-B}' (expected ${NAME} or "
                           "${NAME:-default})");
    expect1("a: ${}\n",
            "t.yaml:1:4: invalid variable reference '${}' (expected ${NAME} or ${NAME:-default})");
    /* all undefined variables are reported, not just the first */
    rc = load("a: ${SF_T_UNSET}\nb:\n  - ${SF_T_UNSET_2}\n");
    ck_assert_int_eq(rc, -2);
    expect_has("t.yaml:1:4: environment variable SF_T_UNSET is not set");
    expect_has("t.yaml:3:5: environment variable SF_T_UNSET_2 is not set");
}
END_TEST

/* ---- sf_cfg_apply errors ---- */

START_TEST(test_unknown_keys_did_you_mean)
{
    int rc = load(SRC "  pagesize: 10\n  retry: {intial: 1s}\n  tls: {verfy: true}\n  zzzzzz: 1\n"
                      "logg: {}\n" SINK "    nmae: x\n    queue: {max_event: 3}\n");
    ck_assert_int_eq(rc, -7);
    expect_has("t.yaml:4:3: source: unknown key 'pagesize' (did you mean 'page_size'?)");
    expect_has("t.yaml:5:11: source.retry: unknown key 'intial' (did you mean 'initial'?)");
    expect_has("t.yaml:6:9: source.tls: unknown key 'verfy' (did you mean 'verify'?)");
    expect_has("t.yaml:7:3: source: unknown key 'zzzzzz'");
    expect_has("t.yaml:8:1: unknown key 'logg' (did you mean 'log'?)");
    expect_has("t.yaml:11:5: sinks[0]: unknown key 'nmae' (did you mean 'name'?)");
    expect_has("t.yaml:12:13: sinks[0].queue: unknown key 'max_event' (did you mean "
               "'max_events'?)");
    expect1(SRC SINK "extra: 1\n", "t.yaml:6:1: unknown key 'extra' (valid: source, checkpoint, "
                                   "sinks, log, server, pipeline)");
}
END_TEST

START_TEST(test_wrong_types)
{
    expect1(SRC "  page_size: abc\n" SINK,
            "t.yaml:4:14: source.page_size: expected an integer, got \"abc\"");
    expect1(SRC "  page_size: 1.5\n" SINK,
            "t.yaml:4:14: source.page_size: expected an integer, got \"1.5\"");
    expect1(SRC "  page_size: 99999999999999999999\n" SINK,
            "t.yaml:4:14: source.page_size: integer out of range");
    expect1(SRC "  page_size: {a: 1}\n" SINK,
            "t.yaml:4:14: source.page_size: expected a scalar value, got a map");
    expect1(SRC "  url2: x\n" SINK, "t.yaml:4:3: source: unknown key 'url2' (did you mean 'url'?)");
    ck_assert_int_eq(load(SRC "  filter: [a]\n" SINK), -1);
    expect_has("t.yaml:4:11: source.filter: expected a scalar value, got a list");
    expect1(SRC "  tls: {verify: maybe}\n" SINK,
            "t.yaml:4:17: source.tls.verify: expected a boolean (true/false), got \"maybe\"");
    expect1(SRC "  tls: [1]\n" SINK, "t.yaml:4:8: source.tls: expected a map, got a list");
    expect1(SRC "  poll_interval: 10\n" SINK,
            "t.yaml:4:18: source.poll_interval: expected a duration such as 500ms, 10s, 5m, 1h, "
            "7d, got \"10\"");
    expect1(SRC "  poll_interval: 999999999999d\n" SINK,
            "t.yaml:4:18: source.poll_interval: duration too large");
    expect1(SRC "  max_response_size: 10 MB\n" SINK,
            "t.yaml:4:22: source.max_response_size: expected a size such as 512, 64KiB, "
            "100MiB, 1GiB, got \"10 MB\"");
    expect1(SRC "  max_response_size: 99999999999999999999\n" SINK,
            "t.yaml:4:22: source.max_response_size: size too large");
    expect1(SRC "  zones: 5\n" SINK, "t.yaml:4:10: source.zones: expected a list, got a scalar");
    expect1(SRC "  zones: [1, x]\n" SINK,
            "t.yaml:4:14: source.zones: item 1: expected an integer, got \"x\"");
    ck_assert_int_eq(load(SRC "  zones: [1, [2]]\n" SINK), -1);
    expect_has("t.yaml:4:14: source.zones: item 1: expected a scalar, got a list");
    expect1("source: 5\n" SINK, "t.yaml:1:9: source: expected a map, got a scalar");
}
END_TEST

START_TEST(test_ranges)
{
    expect1(SRC "  page_size: 0\n" SINK,
            "t.yaml:4:14: source.page_size: must be between 1 and 999");
    expect1(SRC "  page_size: 1000\n" SINK,
            "t.yaml:4:14: source.page_size: must be between 1 and 999");
    expect1(SRC "  page_size: -5\n" SINK,
            "t.yaml:4:14: source.page_size: must be between 1 and 999");
    ck_assert_int_eq(load(SRC "  page_size: 999\n" SINK), 0);
    ck_assert_int_eq(load(SRC "  page_size: 1\n" SINK), 0);
    /* events API: 1..200 (cross-check) */
    expect1(SRC "  api: events\n  page_size: 201\n" SINK,
            "t.yaml:5:14: source.page_size: must be between 1 and 200 with api: events");
    ck_assert_int_eq(load(SRC "  api: events\n  page_size: 200\n" SINK), 0);
    ck_assert_int_eq(load(SRC "  api: legacy\n  page_size: 999\n" SINK), 0);
    expect1(SRC "  poll_interval: 50ms\n" SINK,
            "t.yaml:4:18: source.poll_interval: must be at least 100ms");
    ck_assert_int_eq(load(SRC "  poll_interval: 1s\n" SINK), 0);
    expect1(SRC "pipeline: {max_inflight_pages: 65}\n" SINK,
            "t.yaml:4:32: pipeline.max_inflight_pages: must be between 1 and 64");
    expect1(SRC "pipeline: {max_inflight_pages: 0}\n" SINK,
            "t.yaml:4:32: pipeline.max_inflight_pages: must be between 1 and 64");
    ck_assert_int_eq(load(SRC "pipeline: {max_inflight_pages: 64}\n" SINK), 0);
    expect1(SRC "  max_response_size: 512\n" SINK,
            "t.yaml:4:22: source.max_response_size: must be between 1024 and "
            "9223372036854775807 bytes");
    /* filter length */
    char big[2200 + 200];
    char filter[2050];
    memset(filter, 'f', 2049);
    filter[2049] = '\0';
    snprintf(big, sizeof big, SRC "  filter: %s\n" SINK, filter);
    expect1(big, "t.yaml:4:11: source.filter: length must be between 0 and 2048 characters");
    filter[2048] = '\0';
    snprintf(big, sizeof big, SRC "  filter: %s\n" SINK, filter);
    ck_assert_int_eq(load(big), 0);
    /* zones: at most 100 */
    char zy[1024] = SRC "  zones: [";
    for (int i = 0; i < 101; i++)
        snprintf(zy + strlen(zy), sizeof zy - strlen(zy), "%s%d", i ? "," : "", i);
    strcat(zy, "]\n" SINK);
    expect1(zy, "t.yaml:4:10: source.zones: at most 100 zones are allowed (got 101)");
    /* retry initial <= max */
    expect1(SRC "  retry: {initial: 10s, max: 1s}\n" SINK,
            "t.yaml:4:20: source.retry: initial must not exceed max");
}
END_TEST

START_TEST(test_enums)
{
    expect1(SRC "  api: v2\n" SINK,
            "t.yaml:4:8: source.api: invalid value \"v2\" (allowed: legacy, events)");
    expect1(SRC "log: {level: verbose}\n" SINK,
            "t.yaml:4:14: log.level: invalid value \"verbose\" (allowed: debug, info, warn, "
            "error)");
    expect1(SRC "log: {format: xml}\n" SINK,
            "t.yaml:4:15: log.format: invalid value \"xml\" (allowed: text, json)");
    ck_assert_int_eq(load(SRC "log: {level: warn, format: json}\n" SINK), 0);
    ck_assert_int_eq(cfg.log.level, SF_LOG_WARN);
    ck_assert_int_eq(cfg.log.format, SF_LOG_JSON);
    ck_assert_int_eq(load(SRC "log: {level: error}\n" SINK), 0);
    ck_assert_int_eq(cfg.log.level, SF_LOG_ERROR);
}
END_TEST

START_TEST(test_required)
{
    /* url missing: position of the enclosing map (source's first key) */
    expect1("source:\n  token: abcd1234\n" SINK, "t.yaml:2:3: source.url: missing required key");
    /* url given without a value */
    expect1("source:\n  token: abcd1234\n  url:\n" SINK,
            "t.yaml:3:3: source.url: a value is required");
    /* no source at all: the top-level map's position */
    int rc = load("log: {level: info}\n" SINK);
    ck_assert_int_eq(rc, -2);
    expect_has("t.yaml:1:1: source.url: missing required key");
    expect_has("t.yaml:1:1: source: one of token or token_file is required");
    expect1(SRC "  url: ftp://x\n" SINK, "t.yaml:4:3: duplicate key 'url'");
    expect1("source:\n  url: ftp://x\n  token: abcd1234\n" SINK,
            "t.yaml:2:8: source.url: must start with http:// or https://");
    expect1("source:\n  url: https://\n  token: abcd1234\n" SINK,
            "t.yaml:2:8: source.url: missing host name");
}
END_TEST

START_TEST(test_token_exclusive)
{
    char y[1024];
    snprintf(y, sizeof y, SRC "  token_file: %s/tok\n" SINK, tmpdir);
    expect1(y, "t.yaml:4:3: source: token and token_file are mutually exclusive (set exactly one)");
    expect1("source:\n  url: https://x\n" SINK,
            "t.yaml:2:3: source: one of token or token_file is required");
    expect1("source:\n  url: https://x\n  token: ''\n" SINK,
            "t.yaml:2:3: source: one of token or token_file is required");
}
END_TEST

START_TEST(test_stix_pattern)
{
    /* translated once, at load, into the filter the source sends */
    ck_assert_int_eq(load(SRC "  stix_pattern: \"[x-ibm-finding:severity >= 70]\"\n" SINK), 0);
    ck_assert_str_eq(cfg.source.filter, "(severity<=3)andsource!=\"auditTrail\"");
    ck_assert_int_eq(load(SRC "  stix_pattern: ''\n" SINK), 0);
    ck_assert_ptr_null(cfg.source.filter);
    expect1(SRC "  filter: source = \"syscall\"\n  stix_pattern: \"[x-sysdig-cluster:name = "
                "'a']\"\n" SINK,
            "t.yaml:5:3: source: filter and stix_pattern are mutually exclusive (set at most one)");
    expect1(SRC "  stix_pattern: \"[x-sysdig-cluster:name = 'a' AND]\"\n" SINK,
            "t.yaml:4:17: source.stix_pattern: at position 33: expected an object path "
            "(type:property), found ']'");
}
END_TEST

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(test_token_file)
{
    char tok[256], y[1024];
    snprintf(tok, sizeof tok, "%s/token", tmpdir);
    write_file(tok, SECRET " \n\n", 0600);
    snprintf(y, sizeof y, "source:\n  url: https://x\n  token_file: %s\n" SINK, tok);
    sf_log_set_level(SF_LOG_WARN); /* lines below the level are not counted */
    uint64_t warns = sf_log_count(SF_LOG_WARN);
    int rc = load(y);
    if (rc)
        dump();
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(cfg.source.token, SECRET); /* trailing whitespace trimmed */
    ck_assert_str_eq(cfg.source.token_file, tok);
    ck_assert(sf_log_count(SF_LOG_WARN) == warns); /* 0600: no warning */
    /* the token is registered with the redactor */
    sf_buf red = {0};
    ck_assert_int_eq(sf_log_redact("auth " SECRET " end", &red), 0);
    ck_assert_str_eq(red.data, "auth *** end");
    sf_buf_free(&red);

    ck_assert_uint_eq(cfg.warnings.n, 0);
    /* readable by others: loads, with a warning kept for the caller to log (once log.format
     * applies), not logged while loading */
    ck_assert_int_eq(chmod(tok, 0644), 0);
    ck_assert_int_eq(load(y), 0);
    ck_assert(sf_log_count(SF_LOG_WARN) == warns);
    ck_assert_uint_eq(cfg.warnings.n, 1);
    ck_assert_ptr_nonnull(strstr(cfg.warnings.v[0], "accessible by group/others"));

    /* a token longer than the Authorization header holds is refused, never cut short */
    {
        static char big[5000];
        memset(big, 'k', sizeof big - 2);
        big[sizeof big - 2] = '\n';
        write_file(tok, big, 0600);
        char want[512];
        snprintf(want, sizeof want,
                 "t.yaml:3:15: source.token_file: the token is 4998 bytes, more than 4096: "
                 "check that this is the API token");
        expect1(y, want);
    }

    /* empty (after trimming) */
    write_file(tok, " \n", 0600);
    char want[512];
    snprintf(want, sizeof want, "t.yaml:3:15: source.token_file: %s is empty", tok);
    expect1(y, want);

    /* missing */
    snprintf(y, sizeof y, "source:\n  url: https://x\n  token_file: %s/missing\n" SINK, tmpdir);
    snprintf(want, sizeof want,
             "t.yaml:3:15: source.token_file: cannot open %s/missing: No such file or directory",
             tmpdir);
    expect1(y, want);

    /* several lines */
    write_file(tok, "abcd\nefgh\n", 0600);
    snprintf(y, sizeof y, "source:\n  url: https://x\n  token_file: %s\n" SINK, tok);
    snprintf(want, sizeof want,
             "t.yaml:3:15: source.token_file: %s must hold a single line (the token)", tok);
    expect1(y, want);
}
END_TEST

START_TEST(test_secret_never_in_errors)
{
    /* a config full of errors around a secret token */
    int rc = load("source:\n  url: ftp://x\n  token: " SECRET "\n  token_file: /nonexistent\n"
                  "  tokn: " SECRET "\n  page_size: " SECRET "\nsinks:\n  - type: " SECRET "x\n");
    ck_assert_int_lt(rc, 0);
    ck_assert_uint_ge(errs.n, 4);
    /* the secret is redacted even where another option echoes it */
    for (size_t i = 0; i < errs.n; i++)
        ck_assert_msg(strstr(errs.msgs[i], SECRET) == NULL, "%s", errs.msgs[i]);
    expect_has("t.yaml:6:14: source.page_size: expected an integer, got \"***\"");
    char want[700];
    snprintf(want, sizeof want,
             "t.yaml:8:11: sinks[0].type: unknown sink type \"***x\" (valid types: %s)",
             valid_types());
    expect_has(want);
    /* token of the wrong type: no value echoed */
    rc = load("source:\n  url: https://x\n  token: [" SECRET "]\n" SINK);
    ck_assert_int_lt(rc, 0);
    ck_assert(no_secret_in_errors(SECRET));
    expect_has("t.yaml:3:10: source.token: expected a scalar value, got a list");
    /* a secret-flagged option with an invalid value is never quoted (generic table) */
    struct {
        int64_t n;
    } st = {0};
    const sf_cfg_option tab[] = {
        {.name = "pin", .type = SF_OPT_INT, .desc = "secret pin", .flags = SF_OPT_SECRET},
        {0},
    };
    sf_cfg_errors e = {.file = "s.yaml"};
    const char y[] = "pin: " SECRET "\n";
    sf_cfg_node *root = sf_cfg_parse_yaml(y, strlen(y), &e);
    ck_assert_ptr_nonnull(root);
    const sf_cfg_option *tabs[] = {tab};
    void *sts[] = {&st};
    ck_assert_int_eq(sf_cfg_apply(root, "x", tabs, sts, 1, &e), 1);
    ck_assert_str_eq(e.msgs[0], "s.yaml:1:6: x.pin: invalid value (expected an integer)");
    sf_cfg_node_free(root);
    sf_cfg_errors_free(&e);
}
END_TEST

START_TEST(test_server_listen)
{
    /* what the check accepts is what the server can listen on: one parser (getaddrinfo) */
    const char *good[] = {"[::1]:9464", "127.0.0.1:9464", "localhost:19465",
                          ":9464",      "0.0.0.0:9464",   "[::]:9464"};
    for (size_t i = 0; i < SF_ARRAY_LEN(good); i++) {
        char y[256];
        snprintf(y, sizeof y, SRC "server: {listen: '%s'}\n" SINK, good[i]);
        ck_assert_msg(load(y) == 0, "%s refused", good[i]);
        ck_assert_str_eq(cfg.server.listen, good[i]);
    }
    ck_assert_int_eq(load(SRC "server: {listen: ''}\n" SINK), 0);
    expect1(SRC "server: {listen: 'localhost'}\n" SINK,
            "t.yaml:4:18: server.listen: \"localhost\": expected host:port, [IPv6]:port or :port");
    expect1(SRC "server: {listen: 'localhost:70000'}\n" SINK,
            "t.yaml:4:18: server.listen: \"localhost:70000\": the port must be a number in "
            "0..65535");
    expect1(SRC "server: {listen: 'localhost:0'}\n" SINK,
            "t.yaml:4:18: server.listen: \"localhost:0\": the port must be in 1..65535");
    expect1(SRC "server: {listen: '::1:9464'}\n" SINK,
            "t.yaml:4:18: server.listen: \"::1:9464\": an IPv6 address goes in brackets: "
            "[::1]:9464");
}
END_TEST

START_TEST(test_collects_all_errors)
{
    int rc = load("source:\n  api: bad\n  page_size: x\nlog: {level: loud}\n"
                  "pipeline: {shutdown_timeout: soon}\nsinks: []\n");
    ck_assert_int_eq(rc, -7);
    expect_has("t.yaml:6:8: sinks: at least one sink is required");
    expect_has("t.yaml:2:3: source.url: missing required key");
    expect_has("t.yaml:2:8: source.api: invalid value \"bad\" (allowed: legacy, events)");
    expect_has("t.yaml:3:14: source.page_size: expected an integer, got \"x\"");
    expect_has("t.yaml:2:3: source: one of token or token_file is required");
    expect_has("t.yaml:4:14: log.level: invalid value \"loud\" (allowed: debug, info, warn, "
               "error)");
    expect_has("t.yaml:5:30: pipeline.shutdown_timeout: expected a duration such as 500ms, 10s, "
               "5m, 1h, 7d, got \"soon\"");
    /* failed load leaves nothing allocated behind */
    ck_assert_ptr_null(cfg.root);
    ck_assert_ptr_null(cfg.source.url);
    ck_assert_uint_eq(cfg.nsinks, 0);
}
END_TEST

/* ---- sinks ---- */

START_TEST(test_sinks_errors)
{
    expect1(SRC, "t.yaml:1:1: sinks: at least one sink is required");
    expect1(SRC "sinks: []\n", "t.yaml:4:8: sinks: at least one sink is required");
    expect1(SRC "sinks:\n", "t.yaml:4:1: sinks: at least one sink is required");
    expect1(SRC "sinks: {type: file}\n", "t.yaml:4:8: sinks: expected a list of sinks, got a map");
    expect1(SRC "sinks:\n  - stdout\n", "t.yaml:5:5: sinks[0]: expected a map, got a scalar");
    expect1(SRC "sinks:\n  - name: x\n", "t.yaml:5:5: sinks[0].type: missing required key");
    char want[700];
    snprintf(want, sizeof want,
             "t.yaml:5:11: sinks[0].type: unknown sink type \"kinesis\" (valid types: %s)",
             valid_types());
    expect1(SRC "sinks:\n  - type: kinesis\n    stream: x\n", want);
    ck_assert_int_eq(load(SRC "sinks:\n  - type: stdout\n    format: xml\n"), -1);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "t.yaml:6:13: sinks[0].format: unknown format "
                                               "\"xml\" (valid formats: raw"));
    expect1(SRC "sinks:\n  - type: stdout\n  - type: stdout\n",
            "t.yaml:6:5: sinks[1].name: duplicate sink name \"stdout\" (also used by sinks[0])");
    expect1(SRC "sinks:\n  - type: stdout\n    name: a\n  - type: stdout\n    name: a\n",
            "t.yaml:8:11: sinks[1].name: duplicate sink name \"a\" (also used by sinks[0])");
    expect1(SRC "sinks:\n  - type: stdout\n    name: ''\n",
            "t.yaml:6:11: sinks[0].name: length must be between 1 and 128 characters");
    expect1(SRC "sinks:\n  - type: stdout\n    queue: {max_events: 0}\n",
            "t.yaml:6:25: sinks[0].queue.max_events: must be at least 1");
    expect1(SRC "sinks:\n  - type: stdout\n    retry: {initial: 1m, max: 1s}\n",
            "t.yaml:6:22: sinks[0].retry: initial must not exceed max");
    /* options of another sink type are unknown here */
    expect1(SRC "sinks:\n  - type: stdout\n    path: /tmp/x\n",
            "t.yaml:6:5: sinks[0]: unknown key 'path'");
}
END_TEST

START_TEST(test_sink_file_options)
{
    /* required option of the type's own table: position of the sink's map */
    expect1(SRC "sinks:\n  - type: file\n", "t.yaml:5:5: sinks[0].path: missing required key");
    expect1(SRC "sinks:\n  - type: file\n    path: /x\n    rotate: {keep: 5000}\n",
            "t.yaml:7:20: sinks[0].rotate.keep: must be between 0 and 1000");
    expect1(SRC "sinks:\n  - type: file\n    path: /x\n    fsync: sometimes\n",
            "t.yaml:7:12: sinks[0].fsync: invalid value \"sometimes\" (allowed: always, "
            "interval, never)");
    expect1(SRC "sinks:\n  - type: file\n    path: /x\n    rotat: {}\n",
            "t.yaml:7:5: sinks[0]: unknown key 'rotat' (did you mean 'rotate'?)");
    ck_assert_int_eq(load(SRC "sinks:\n  - type: file\n    path: /x\n"), 0);
    ck_assert_str_eq(cfg.sinks[0]->common.name, "file");
    ck_assert_str_eq(*(char **)cfg.sinks[0]->type_cfg, "/x");
}
END_TEST

START_TEST(test_sink_format_options)
{
    /* a format's key used with another format */
    const sf_format *const *all = sf_format_all();
    const sf_format *withkey = NULL;
    for (size_t i = 0; all[i]; i++)
        if (all[i]->cfg_key && all[i]->options)
            withkey = all[i];
    if (!withkey)
        return; /* no format with options registered */
    char y[1024];
    snprintf(y, sizeof y, SRC "sinks:\n  - type: stdout\n    %s: {}\n", withkey->cfg_key);
    ck_assert_int_eq(load(y), -1);
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "t.yaml:6:5: sinks[0]: key '"));
    ck_assert_ptr_nonnull(strstr(errs.msgs[0], "is only valid with format: "));
    /* with its own format: accepted, filled with defaults, format_cfg allocated */
    snprintf(y, sizeof y, SRC "sinks:\n  - type: stdout\n    format: %s\n    %s: {}\n",
             withkey->name, withkey->cfg_key);
    int rc = load(y);
    if (rc)
        dump();
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_eq(cfg.sinks[0]->format, withkey);
    ck_assert_ptr_nonnull(cfg.sinks[0]->format_cfg);
    /* unknown key inside the format's map */
    snprintf(y, sizeof y, SRC "sinks:\n  - type: stdout\n    format: %s\n    %s: {bogus_key: 1}\n",
             withkey->name, withkey->cfg_key);
    ck_assert_int_eq(load(y), -1);
    char want[256];
    snprintf(want, sizeof want, "t.yaml:7:%zu: sinks[0].%s: unknown key 'bogus_key'",
             strlen(withkey->cfg_key) + 8, withkey->cfg_key);
    expect_has(want);
}
END_TEST

/* ---- generic table types ---- */

typedef struct gen {
    sf_strlist tags;
    sf_kvlist headers;
    const sf_cfg_node *extra;
    uint64_t size;
    char *name;
    bool name_set;
    int64_t n;
} gen;

static const sf_cfg_option gen_sub[] = {
    {.name = "n",
     .type = SF_OPT_INT,
     .def = "3",
     .desc = "number",
     .offset = offsetof(gen, n),
     .min = -5,
     .max = 5},
    {0},
};

static const sf_cfg_option gen_table[] = {
    {.name = "tags", .type = SF_OPT_STRLIST, .desc = "tags", .offset = offsetof(gen, tags)},
    {.name = "headers", .type = SF_OPT_KVLIST, .desc = "headers", .offset = offsetof(gen, headers)},
    {.name = "extra", .type = SF_OPT_NODE, .desc = "free-form", .offset = offsetof(gen, extra)},
    {.name = "size",
     .type = SF_OPT_SIZE,
     .def = "1KiB",
     .desc = "size",
     .offset = offsetof(gen, size)},
    {.name = "name",
     .type = SF_OPT_STR,
     .def = "dflt",
     .desc = "name",
     .offset = offsetof(gen, name),
     .flags = SF_OPT_ISSET,
     .isset_offset = offsetof(gen, name_set)},
    {.name = "sub", .type = SF_OPT_SECTION, .desc = "sub", .sub = gen_sub},
    {0},
};

START_TEST(test_generic_types)
{
    sf_cfg_errors e = {.file = "g.yaml"};
    const char y[] = "tags: [a, b]\nheaders: {X-A: '1', X-B: two}\nextra: {any: [thing]}\n"
                     "size: 2MiB\nsub: {n: -5}\n";
    sf_cfg_node *root = sf_cfg_parse_yaml(y, strlen(y), &e);
    ck_assert_ptr_nonnull(root);
    gen g = {0};
    const sf_cfg_option *tabs[] = {gen_table};
    void *sts[] = {&g};
    ck_assert_int_eq(sf_cfg_apply(root, "", tabs, sts, 1, &e), 0);
    ck_assert_uint_eq(g.tags.n, 2);
    ck_assert_str_eq(g.tags.v[1], "b");
    ck_assert_uint_eq(g.headers.n, 2);
    ck_assert_str_eq(g.headers.k[0], "X-A");
    ck_assert_str_eq(g.headers.v[0], "1");
    ck_assert_str_eq(g.headers.k[1], "X-B");
    ck_assert_str_eq(g.headers.v[1], "two");
    ck_assert_ptr_nonnull(g.extra);
    ck_assert_int_eq(g.extra->kind, SF_NODE_MAP);
    ck_assert(g.size == 2 * 1024 * 1024);
    ck_assert_str_eq(g.name, "dflt");
    ck_assert(!g.name_set);
    ck_assert_int_eq(g.n, -5);
    sf_cfg_free_struct(gen_table, &g);
    ck_assert_ptr_null(g.name);
    ck_assert_ptr_null(g.tags.v);
    sf_cfg_node_free(root);

    /* NULL map: defaults only */
    gen d = {0};
    ck_assert_int_eq(sf_cfg_apply(NULL, "p", tabs, (void *const[]){&d}, 1, &e), 0);
    ck_assert_str_eq(d.name, "dflt");
    ck_assert_int_eq(d.n, 3);
    ck_assert(d.size == 1024);
    ck_assert_ptr_null(d.extra);
    sf_cfg_free_struct(gen_table, &d);

    /* errors of the list/map types */
    const char bad[] = "tags: {a: 1}\nheaders: {X: [1]}\nsub: {n: 6}\nname: given\n";
    root = sf_cfg_parse_yaml(bad, strlen(bad), &e);
    gen b = {0};
    ck_assert_int_eq(sf_cfg_apply(root, "p", tabs, (void *const[]){&b}, 1, &e), 3);
    ck_assert_str_eq(e.msgs[0], "g.yaml:1:7: p.tags: expected a list, got a map");
    ck_assert_str_eq(e.msgs[1], "g.yaml:2:14: p.headers: X: expected a scalar, got a list");
    ck_assert_str_eq(e.msgs[2], "g.yaml:3:10: p.sub.n: must be between -5 and 5");
    ck_assert(b.name_set);
    ck_assert_str_eq(b.name, "given");
    sf_cfg_free_struct(gen_table, &b);
    sf_cfg_node_free(root);
    /* not a map at all */
    root = sf_cfg_parse_yaml("[1]", 3, &e);
    ck_assert_int_eq(sf_cfg_apply(root, "p", tabs, (void *const[]){&b}, 1, &e), 1);
    ck_assert_str_eq(e.msgs[3], "g.yaml:1:1: p: expected a map, got a list");
    sf_cfg_free_struct(gen_table, &b);
    sf_cfg_node_free(root);
    sf_cfg_errors_free(&e);
}
END_TEST

/* ---- reference ---- */

static void check_table_documented(const char *doc, const sf_cfg_option *t, const char *prefix)
{
    for (; t && t->name; t++) {
        char name[256];
        if (*prefix)
            snprintf(name, sizeof name, "%s.%s", prefix, t->name);
        else
            snprintf(name, sizeof name, "%s", t->name);
        if (t->type == SF_OPT_SECTION) {
            check_table_documented(doc, t->sub, name);
            continue;
        }
        char needle[300];
        snprintf(needle, sizeof needle, "| `%s` |", name);
        ck_assert_msg(strstr(doc, needle) != NULL, "reference lacks %s", needle);
        if (t->desc && *t->desc) {
            /* descriptions appear too (first 20 chars, no table escaping involved) */
            char d[21];
            snprintf(d, sizeof d, "%s", t->desc);
            if (!strchr(d, '|'))
                ck_assert_msg(strstr(doc, d) != NULL, "reference lacks desc of %s", name);
        }
    }
}

START_TEST(test_reference)
{
    sf_buf b = {0};
    ck_assert_int_eq(sf_config_reference(&b), 0);
    const char *doc = b.data;
    ck_assert_ptr_nonnull(strstr(doc, "## `source`"));
    ck_assert_ptr_nonnull(strstr(doc, "## `checkpoint`"));
    ck_assert_ptr_nonnull(strstr(doc, "## `log`"));
    ck_assert_ptr_nonnull(strstr(doc, "## `server`"));
    ck_assert_ptr_nonnull(strstr(doc, "## `pipeline`"));
    ck_assert_ptr_nonnull(strstr(doc, "## `sinks`"));
    check_table_documented(doc, sf_source_options, "");
    check_table_documented(doc, sf_checkpoint_options, "");
    check_table_documented(doc, sf_log_options, "");
    check_table_documented(doc, sf_server_options, "");
    check_table_documented(doc, sf_pipeline_options, "");
    check_table_documented(doc, sf_sink_common_options, "");
    const sf_sink_ops *const *sinks = sf_sink_all();
    for (size_t i = 0; sinks[i]; i++) {
        char h[128];
        snprintf(h, sizeof h, "### Sink type `%s`", sinks[i]->type);
        ck_assert_msg(strstr(doc, h) != NULL, "%s", h);
        check_table_documented(doc, sinks[i]->options, "");
    }
    const sf_format *const *fmts = sf_format_all();
    for (size_t i = 0; fmts[i]; i++) {
        char h[128];
        snprintf(h, sizeof h, "### Format `%s`", fmts[i]->name);
        ck_assert_msg(strstr(doc, h) != NULL, "%s", h);
        check_table_documented(doc, fmts[i]->options, fmts[i]->cfg_key ? fmts[i]->cfg_key : "");
    }
    /* types, defaults, ranges and enums are rendered */
    ck_assert_ptr_nonnull(strstr(doc, "| `page_size` | integer, 1..999 | `200` |"));
    ck_assert_ptr_nonnull(strstr(doc, "| `api` | enum (legacy, events) | `legacy` |"));
    ck_assert_ptr_nonnull(strstr(doc, "| `url` | string | *required* |"));
    ck_assert_ptr_nonnull(strstr(doc, "| `poll_interval` | duration, >= 100ms | `10s` |"));
    ck_assert_ptr_nonnull(strstr(doc, "| `retry.initial` | duration"));
    sf_buf_free(&b);

    /* doc table escapes pipes */
    const sf_cfg_option t[] = {{.name = "a", .type = SF_OPT_BOOL, .def = "true", .desc = "x | y"},
                               {0}};
    ck_assert_int_eq(sf_cfg_doc_table(t, "pre", &b), 0);
    ck_assert_ptr_nonnull(strstr(b.data, "| `pre.a` | boolean | `true` | x \\| y |"));
    sf_buf_free(&b);
}
END_TEST

/* ---- files ---- */

START_TEST(test_load_file)
{
    char path[256];
    snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
    sf_cfg_errors e = {0};
    ck_assert_int_lt(sf_config_load(path, &cfg, &e), 0);
    ck_assert_uint_eq(e.n, 1);
    char want[512];
    snprintf(want, sizeof want, "%s: cannot read configuration file: No such file or directory",
             path);
    ck_assert_str_eq(e.msgs[0], want);
    sf_cfg_errors_free(&e);

    snprintf(path, sizeof path, "%s/ok.yaml", tmpdir);
    write_file(path, SRC SINK "log: {level: bad}\n", 0600);
    ck_assert_int_eq(sf_config_load(path, &cfg, &e), -1);
    snprintf(want, sizeof want,
             "%s:6:14: log.level: invalid value \"bad\" (allowed: debug, info, warn, error)", path);
    ck_assert_str_eq(e.msgs[0], want);
    sf_cfg_errors_free(&e);

    write_file(path, SRC SINK, 0600);
    ck_assert_int_eq(sf_config_load(path, &cfg, &e), 0);
    ck_assert_str_eq(cfg.file, path);
    ck_assert_str_eq(cfg.source.url, "https://secure.sysdig.com");
    sf_cfg_errors_free(&e);

    sf_config_free(&cfg);

    /* a directory */
    ck_assert_int_lt(sf_config_load(tmpdir, &cfg, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msgs[0], tmpdir));
    ck_assert_ptr_nonnull(strstr(e.msgs[0], "Is a directory"));
    sf_cfg_errors_free(&e);
}
END_TEST

START_TEST(test_example_configs)
{
    char tok[256];
    snprintf(tok, sizeof tok, "%s/token", tmpdir);
    write_file(tok, "example-token-value\n", 0600);
    setenv("SYSDIG_SECURE_API_TOKEN", "example-token-value", 1);
    setenv("SYSDIG_SECURE_URL", "https://secure.sysdig.com", 1);
    static const char *const files[] = {"../conf/sysdig-forwarder.yaml", "../conf/minimal.yaml"};
    for (size_t i = 0; i < SF_ARRAY_LEN(files); i++) {
        sf_cfg_errors e = {0};
        int rc = sf_config_load(files[i], &cfg, &e);
        for (size_t j = 0; j < e.n; j++)
            fprintf(stderr, "%s\n", e.msgs[j]);
        ck_assert_msg(rc == 0, "%s does not load", files[i]);
        ck_assert_uint_ge(cfg.nsinks, 1);
        sf_cfg_errors_free(&e);
        sf_config_free(&cfg);
    }
}
END_TEST

/* An option's environment override (log.health_interval <- SF_HEALTH_LOG_INTERVAL): applied
 * like the key, validated like it, errors name the variable. */
START_TEST(test_env_override)
{
    const char *text = "source:\n  url: https://x.example\n  token: tok-1234\n"
                       "log:\n  health_interval: 10m\n"
                       "sinks:\n  - type: stdout\n";
    sf_config c;
    sf_cfg_errors e = {0};
    unsetenv("SF_HEALTH_LOG_INTERVAL");
    ck_assert_int_eq(sf_config_load_text("e.yaml", text, strlen(text), &c, &e), 0);
    ck_assert_int_eq(c.log.health_interval_ms, 600000);
    sf_config_free(&c);
    setenv("SF_HEALTH_LOG_INTERVAL", "3s", 1);
    ck_assert_int_eq(sf_config_load_text("e.yaml", text, strlen(text), &c, &e), 0);
    ck_assert_int_eq(c.log.health_interval_ms, 3000);
    sf_config_free(&c);
    setenv("SF_HEALTH_LOG_INTERVAL", "", 1); /* empty: no override */
    ck_assert_int_eq(sf_config_load_text("e.yaml", text, strlen(text), &c, &e), 0);
    ck_assert_int_eq(c.log.health_interval_ms, 600000);
    sf_config_free(&c);
    setenv("SF_HEALTH_LOG_INTERVAL", "soon", 1);
    ck_assert_int_lt(sf_config_load_text("e.yaml", text, strlen(text), &c, &e), 0);
    ck_assert_uint_eq(e.n, 1);
    ck_assert_msg(strstr(e.msgs[0], "e.yaml:5:20: ") && strstr(e.msgs[0], "SF_HEALTH_LOG_INTERVAL"),
                  "%s", e.msgs[0]);
    sf_cfg_errors_free(&e);
    unsetenv("SF_HEALTH_LOG_INTERVAL");
    /* the reference says so */
    sf_buf ref = {0};
    ck_assert_int_eq(sf_config_reference(&ref), 0);
    ck_assert_ptr_nonnull(strstr(ref.data, "The environment variable `SF_HEALTH_LOG_INTERVAL` "
                                           "overrides it."));
    sf_buf_free(&ref);
}
END_TEST

/* Risky but valid sink settings are accepted with a warning at their FILE:LINE:COL:
 * credentials over plain http://, TLS verification off. */
START_TEST(test_sink_transport_warnings)
{
    const char *head = "source:\n  url: https://x.example\n  token: tok-1234\n";
    struct {
        const char *sinks;
        const char *want; /* NULL: no warning */
    } cases[] = {
        {"sinks:\n  - type: webhook\n    url: http://h.example/\n    auth: {type: bearer, "
         "token: tok-bearer-1}\n",
         "w.yaml:6:10: credentials are sent over plain http://"},
        {"sinks:\n  - type: webhook\n    url: http://h.example/\n    auth: {type: hmac, "
         "secret: hmac-secret-1}\n",
         NULL},
        {"sinks:\n  - type: splunk_hec\n    url: http://h.example:8088\n    token: hec-token-1\n",
         "w.yaml:6:10: credentials are sent over plain http://"},
        {"sinks:\n  - type: webhook\n    url: https://h.example/\n    tls: {verify: false}\n",
         "w.yaml:7:19: tls.verify is false"},
        {"sinks:\n  - type: webhook\n    url: https://h.example/\n", NULL},
        {"sinks:\n  - type: syslog\n    address: tls://h.example:6514\n    tls: {verify: "
         "false}\n",
         "w.yaml:7:19: tls.verify is false"},
        {"sinks:\n  - type: kafka_rest\n    url: http://k.example:8082\n    topic: t1\n"
         "    auth: {type: basic, username: u, password: pw-123456}\n",
         "w.yaml:6:10: credentials are sent over plain http://"},
    };
    for (size_t i = 0; i < SF_ARRAY_LEN(cases); i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s%s", head, cases[i].sinks);
        sf_config c;
        sf_cfg_errors e = {.file = "w.yaml"};
        int rc = sf_config_load_text("w.yaml", text, strlen(text), &c, &e);
        for (size_t k = 0; k < e.n; k++)
            fprintf(stderr, "  [%zu] %s\n", k, e.msgs[k]);
        ck_assert_int_eq(rc, 0);
        if (cases[i].want) {
            ck_assert_msg(c.warnings.n == 1, "case %zu: %zu warnings", i, c.warnings.n);
            ck_assert_msg(strstr(c.warnings.v[0], cases[i].want), "case %zu: %s", i,
                          c.warnings.v[0]);
        } else {
            ck_assert_msg(c.warnings.n == 0, "case %zu: %s", i, c.warnings.v[0]);
        }
        sf_config_free(&c);
        sf_cfg_errors_free(&e);
    }
}
END_TEST

/* Sink URLs go through libcurl's URL API at load time, with FILE:LINE:COL errors. */
START_TEST(test_sink_urls_parsed)
{
    struct {
        const char *url, *why;
    } bad[] = {
        {"https://", "No host part in the URL"},
        {"https://exa mple.com/x", "Bad hostname"},
        {"http://[::1", "Bad IPv6 address"},
        {"http://h.example:99999/x", "Port number"},
    };
    for (size_t i = 0; i < SF_ARRAY_LEN(bad); i++) {
        char y[512], want[512];
        snprintf(y, sizeof y, SRC "sinks:\n  - type: webhook\n    url: \"%s\"\n", bad[i].url);
        snprintf(want, sizeof want, "t.yaml:6:10: url: \"%s\" is not a valid URL (%s", bad[i].url,
                 bad[i].why);
        ck_assert_int_lt(load(y), 0);
        ck_assert_msg(errs.n == 1 && strncmp(errs.msgs[0], want, strlen(want)) == 0, "%s: %s",
                      bad[i].url, errs.n ? errs.msgs[0] : "(no error)");
    }
    ck_assert_int_eq(load(SRC "sinks:\n  - type: kafka_rest\n    url: \"http://[::1\"\n    topic: "
                              "t\n"),
                     -1);
    ck_assert_int_eq(load(SRC "sinks:\n  - type: webhook\n    url: "
                              "\"https://h.example:8443/x?y=1\"\n"),
                     0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_minimal_defaults);
    tcase_add_test(tc, test_sink_urls_parsed);
    tcase_add_test(tc, test_sink_transport_warnings);
    tcase_add_test(tc, test_env_override);
    tcase_add_test(tc, test_full_config);
    tcase_add_test(tc, test_bool_spellings);
    tcase_add_test(tc, test_null_values_take_defaults);
    tcase_add_test(tc, test_yaml_syntax_errors);
    tcase_add_test(tc, test_format_options_checked);
    tcase_add_test(tc, test_yaml_structure_errors);
    tcase_add_test(tc, test_yaml_anchors_aliases);
    tcase_add_test(tc, test_parse_tree_positions);
    tcase_add_test(tc, test_env_expansion);
    tcase_add_test(tc, test_env_errors);
    tcase_add_test(tc, test_unknown_keys_did_you_mean);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_ranges);
    tcase_add_test(tc, test_enums);
    tcase_add_test(tc, test_required);
    tcase_add_test(tc, test_token_exclusive);
    tcase_add_test(tc, test_stix_pattern);
    tcase_add_test(tc, test_token_file);
    tcase_add_test(tc, test_secret_never_in_errors);
    tcase_add_test(tc, test_server_listen);
    tcase_add_test(tc, test_collects_all_errors);
    tcase_add_test(tc, test_sinks_errors);
    tcase_add_test(tc, test_sink_file_options);
    tcase_add_test(tc, test_sink_format_options);
    tcase_add_test(tc, test_generic_types);
    tcase_add_test(tc, test_reference);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_example_configs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
