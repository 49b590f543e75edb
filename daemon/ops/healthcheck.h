/* healthcheck: `sysdig-forwarder healthcheck [-c FILE] [--timeout D] [URL]`, the built-in probe
 * for container HEALTHCHECKs (the image needs no curl): GETs the running daemon's /healthz with
 * libcurl and exits 0 when it answers 200, 1 otherwise. */
#ifndef SF_HEALTHCHECK_H
#define SF_HEALTHCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The probe URL for a server.listen value: "0.0.0.0:9464" and ":9464" give
 * "http://127.0.0.1:9464/healthz", "[::]:9464" and "[]:9464" give "http://[::1]:9464/healthz",
 * any other address is used as it is. Returns 0, or -EINVAL when listen is empty (the server is
 * off), has port 0 (ephemeral: unknown) or is not HOST:PORT, or the URL does not fit in n. */
int sf_healthcheck_url(const char *listen, char *out, size_t n);

struct sf_buf;
/* One blocking GET of url (the daemon's own endpoint: no proxy, no redirects, http/https only),
 * giving up after timeout_ms. The body goes into body (may be NULL; bounded by its own bound,
 * sf_buf_init_max). Returns 0 and sets *status, or -1 when no answer came (err says why). */
int sf_healthcheck_get(const char *url, long timeout_ms, long *status, struct sf_buf *body,
                       char *err, size_t errlen);

/* argv[0] == "healthcheck". Returns the exit status: 0 healthy, 1 for everything else
 * (unhealthy, unreachable, no usable address, usage error: Docker reserves status 2). */
int sf_healthcheck_main(int argc, char **argv);
/* A probe command's --timeout DURATION (1ms..10m) into *ms; false (and a message on stderr
 * naming cmd) when it is not one. */
bool sf_probe_timeout_arg(const char *cmd, const char *arg, int64_t *ms);

#endif
