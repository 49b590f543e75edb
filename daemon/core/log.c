#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"

static sf_log_level g_level = SF_LOG_INFO;
static sf_log_format g_format = SF_LOG_TEXT;
static char **g_secrets;
static size_t g_nsecrets;
static uint64_t g_counts[4];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sf_log_set_level(sf_log_level lvl)
{
    g_level = lvl;
}

void sf_log_set_format(sf_log_format fmt)
{
    g_format = fmt;
}

sf_log_level sf_log_get_level(void)
{
    return g_level;
}

uint64_t sf_log_count(sf_log_level lvl)
{
    return (unsigned)lvl < 4 ? g_counts[lvl] : 0;
}

int sf_log_parse_level(const char *s, sf_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (sf_streq(s, level_names[i])) {
            *out = (sf_log_level)i;
            return 0;
        }
    }
    if (sf_streq(s, "warning")) {
        *out = SF_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

int sf_log_add_secret(const char *secret)
{
    if (!secret || !*secret)
        return 0;
    for (size_t i = 0; i < g_nsecrets; i++)
        if (strcmp(g_secrets[i], secret) == 0)
            return 0;
    char **v = realloc(g_secrets, (g_nsecrets + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    g_secrets = v;
    if (!(g_secrets[g_nsecrets] = sf_strdup(secret)))
        return -ENOMEM;
    g_nsecrets++;
    return 0;
}

void sf_log_clear_secrets(void)
{
    for (size_t i = 0; i < g_nsecrets; i++)
        free(g_secrets[i]);
    free(g_secrets);
    g_secrets = NULL;
    g_nsecrets = 0;
}

int sf_log_redact(const char *src, sf_buf *dst)
{
    const char *p = src;
    while (*p) {
        size_t best_len = 0;
        for (size_t i = 0; i < g_nsecrets; i++) {
            size_t l = strlen(g_secrets[i]);
            if (l > best_len && strncmp(p, g_secrets[i], l) == 0)
                best_len = l;
        }
        int rc;
        if (best_len) {
            rc = sf_buf_puts(dst, "***");
            p += best_len;
        } else {
            rc = sf_buf_putc(dst, *p++);
        }
        if (rc)
            return rc;
    }
    return sf_buf_reserve(dst, 0);
}

void sf_vlog(sf_log_level lvl, const char *component, const char *fmt, va_list ap)
{
    if (lvl < g_level || (unsigned)lvl > SF_LOG_ERROR)
        return;
    g_counts[lvl]++;
    sf_buf msg = {0}, red = {0}, line = {0};
    if (sf_buf_vappendf(&msg, fmt, ap) || sf_log_redact(msg.data ? msg.data : "", &red)) {
        static const char oom[] = "sysdig-forwarder: out of memory while logging\n";
        (void)!write(STDERR_FILENO, oom, sizeof oom - 1);
        goto out;
    }
    char ts[40];
    sf_format_rfc3339(sf_now_ns(), 3, ts, sizeof ts);
    if (g_format == SF_LOG_JSON) {
        sf_buf_appendf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":", ts,
                       level_names[lvl]);
        sf_json_cstr_append(&line, component ? component : "main");
        sf_buf_puts(&line, ",\"msg\":");
        sf_json_cstr_append(&line, red.data);
        sf_buf_puts(&line, "}\n");
    } else {
        sf_buf_appendf(&line, "%s %-5s [%s] %s\n", ts, level_names[lvl],
                       component ? component : "main", red.data);
    }
    if (line.data && !sf_buf_error(&line)) {
        (void)!write(STDERR_FILENO, line.data, line.len);
    } else {
        static const char oom[] = "sysdig-forwarder: out of memory while logging\n";
        (void)!write(STDERR_FILENO, oom, sizeof oom - 1);
    }
out:
    sf_buf_free(&msg);
    sf_buf_free(&red);
    sf_buf_free(&line);
}

void sf_log(sf_log_level lvl, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sf_vlog(lvl, component, fmt, ap);
    va_end(ap);
}
