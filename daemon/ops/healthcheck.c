/* healthcheck: the container probe. One blocking libcurl GET with a short timeout; no event
 * loop, no state, nothing written but one line of verdict.
 *
 * Which URL: the URL argument; else, with -c FILE, the configuration's server.listen (so the
 * image's HEALTHCHECK follows SF_LISTEN and a mounted configuration instead of a fixed port);
 * else http://127.0.0.1:9464/healthz. A wildcard listen address is probed on loopback. */
#include "ops/healthcheck.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"
#include "core/util.h"

#define HC_DEFAULT_URL "http://127.0.0.1:9464/healthz"
#define HC_DEFAULT_TIMEOUT_MS 3000
#define HC_URL_MAX 512

enum { HC_OK = 0, HC_FAIL = 1 };

static const char usage_text[] =
    "usage: sysdig-forwarder healthcheck [-c FILE] [-t DURATION] [URL | HOST:PORT]\n"
    "  GETs the running daemon's /healthz and exits 0 if it answers 200, else 1 (container\n"
    "  HEALTHCHECK; no curl needed). The address: URL (/healthz is added when it has no path)\n"
    "  or HOST:PORT; else server.listen of the configuration FILE (0.0.0.0 and [::] are probed\n"
    "  on loopback); else " HC_DEFAULT_URL ".\n"
    "  -c, --config FILE     the daemon's configuration (environment variables expand as for\n"
    "                        the daemon)\n"
    "  -t, --timeout D       give up after D (default 3s; e.g. 500ms, 2s)\n"
    "  Proxy variables (http_proxy, ...) are ignored: the daemon is local.\n";

int sf_healthcheck_url(const char *listen, char *out, size_t n)
{
    if (!listen || !*listen)
        return -EINVAL;
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1])
        return -EINVAL;
    int64_t port;
    if (sf_parse_int64(colon + 1, strlen(colon + 1), &port) || port <= 0 || port > 65535)
        return -EINVAL;
    size_t hlen = (size_t)(colon - listen);
    const char *host = listen;
    bool v6 = false;
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
        v6 = true;
    }
    if (memchr(host, '/', hlen) || memchr(host, '@', hlen) || (!v6 && memchr(host, ':', hlen)))
        return -EINVAL;
    int w;
    if (v6 && (hlen == 0 || (hlen == 2 && memcmp(host, "::", 2) == 0)))
        w = snprintf(out, n, "http://[::1]:%d/healthz", (int)port);
    else if (!v6 && (hlen == 0 || (hlen == 7 && memcmp(host, "0.0.0.0", 7) == 0)))
        w = snprintf(out, n, "http://127.0.0.1:%d/healthz", (int)port);
    else
        w = snprintf(out, n, v6 ? "http://[%.*s]:%d/healthz" : "http://%.*s:%d/healthz", (int)hlen,
                     host, (int)port);
    return w < 0 || (size_t)w >= n ? -EINVAL : 0;
}

/* A URL argument: with a scheme, as given (plus /healthz when it has no path); without one,
 * HOST:PORT as for server.listen. */
static int url_from_arg(const char *arg, char *out, size_t n)
{
    const char *scheme = strstr(arg, "://");
    if (!scheme)
        return sf_healthcheck_url(arg, out, n);
    const char *path = strchr(scheme + 3, '/');
    const char *add = !path ? "/healthz" : strcmp(path, "/") == 0 ? "healthz" : "";
    int w = snprintf(out, n, "%s%s", arg, add);
    return w < 0 || (size_t)w >= n ? -EINVAL : 0;
}

static int url_from_config(const char *path, char *out, size_t n)
{
    sf_config cfg;
    sf_cfg_errors errs = {0};
    int rc = sf_config_load(path, &cfg, &errs);
    if (rc != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        if (!errs.n)
            fprintf(stderr, "%s: cannot load the configuration\n", path);
        fprintf(stderr, "healthcheck: no address to probe (configuration errors)\n");
        sf_cfg_errors_free(&errs);
        return -1;
    }
    sf_cfg_errors_free(&errs);
    const char *listen = cfg.server.listen;
    rc = sf_healthcheck_url(listen, out, n);
    if (rc && (!listen || !*listen))
        fprintf(stderr,
                "healthcheck: %s: server.listen is empty (the server is off): nothing "
                "to probe\n",
                path);
    else if (rc)
        fprintf(stderr, "healthcheck: %s: server.listen '%s' has no fixed port: give the URL\n",
                path, listen);
    sf_config_free(&cfg);
    return rc ? -1 : 0;
}

static size_t body_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    sf_buf *b = ud;
    if (b && sf_buf_append(b, p, size * nmemb))
        return 0; /* over the bound: libcurl stops with CURLE_WRITE_ERROR */
    return size * nmemb;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(h, opt, val) != CURLE_OK)                                             \
            goto setopt_failed;                                                                    \
    } while (0)

int sf_healthcheck_get(const char *url, long timeout_ms, long *status, sf_buf *body, char *err,
                       size_t errlen)
{
    *status = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    int rc = -1;
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot initialise libcurl");
        goto out;
    }
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_NOPROGRESS, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_NOPROXY, "*"); /* the daemon is local: a proxy in the environment is not */
    SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    SETOPT(CURLOPT_USERAGENT, "sysdig-forwarder-healthcheck/" SF_VERSION);
    SETOPT(CURLOPT_WRITEFUNCTION, body_cb);
    SETOPT(CURLOPT_WRITEDATA, body);
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        rc = 0;
    } else {
        snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    goto out;
setopt_failed:
    snprintf(err, errlen, "libcurl rejected an option");
out:
    if (h)
        curl_easy_cleanup(h);
    curl_global_cleanup();
    return rc;
}

/* GET url. Returns 0 (HTTP 200) or 1, and prints the verdict. */
static int probe(const char *url, int64_t timeout_ms)
{
    char err[CURL_ERROR_SIZE + 64];
    long status;
    if (sf_healthcheck_get(url, (long)timeout_ms, &status, NULL, err, sizeof err)) {
        fprintf(stderr, "unhealthy: %s: %s\n", url, err);
        return HC_FAIL;
    }
    if (status != 200) {
        fprintf(stderr, "unhealthy: %s: HTTP %ld\n", url, status);
        return HC_FAIL;
    }
    printf("healthy: %s: HTTP 200\n", url);
    return HC_OK;
}

bool sf_probe_timeout_arg(const char *cmd, const char *arg, int64_t *ms)
{
    if (sf_parse_duration_ms(arg, ms) == 0 && *ms > 0 && *ms <= 600000)
        return true;
    fprintf(stderr, "%s: --timeout '%s': want a duration from 1ms to 10m\n", cmd, arg);
    return false;
}

int sf_healthcheck_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *cfg_path = NULL;
    int64_t timeout_ms = HC_DEFAULT_TIMEOUT_MS;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 't':
            if (!sf_probe_timeout_arg("healthcheck", optarg, &timeout_ms))
                return HC_FAIL;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return HC_OK;
        default:
            fputs(usage_text, stderr);
            return HC_FAIL;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "healthcheck: one URL at most\n%s", usage_text);
        return HC_FAIL;
    }
    char url[HC_URL_MAX];
    if (optind < argc) {
        if (url_from_arg(argv[optind], url, sizeof url)) {
            fprintf(stderr, "healthcheck: '%s' is neither a URL nor HOST:PORT with a port\n",
                    argv[optind]);
            return HC_FAIL;
        }
    } else if (cfg_path) {
        /* the daemon reports configuration warnings; the probe reports only its verdict */
        sf_log_set_level(SF_LOG_ERROR);
        if (url_from_config(cfg_path, url, sizeof url))
            return HC_FAIL;
    } else {
        snprintf(url, sizeof url, "%s", HC_DEFAULT_URL);
    }
    return probe(url, timeout_ms);
}
