/* server: the operations side of a running daemon.
 *
 * - HTTP endpoint (server.listen; off when empty), on the loop through httpd:
 *     GET /healthz  200 while the loop runs (liveness; never looks at the upstream API)
 *     GET /readyz   200 when config, checkpoint, last poll and every sink are fine, else 503;
 *                   the text body has one "[+]check ok" / "[-]check failed: why" line per check
 *     GET /metrics  Prometheus text exposition format 0.0.4
 *   other paths 404, methods other than GET/HEAD 405.
 * - Logs: during catch-up a "progress" line every 10 s (percent of the catch-up done, events/s,
 *   ETA) and a periodic one-line "health" summary (every 5 min by default).
 * - systemd STATUS= updates (notify.h).
 *
 * Metrics and bodies never contain secrets: labels are sink names, types and formats only, and
 * every text that may quote an error goes through the log redactor. */
#ifndef SF_SERVER_H
#define SF_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "config/config.h"
#include "pipeline/committer.h"
#include "pipeline/pipeline.h"
#include "source/source.h"
#include "core/util.h"

typedef struct sf_server sf_server;

typedef struct sf_server_opts {
    const char *mode;             /* "follow", "once", "range" (for logs) */
    bool checkpoint_used;         /* false in range mode (the checkpoint is not touched) */
    int64_t progress_interval_ms; /* 0: 10 s */
    int64_t health_interval_ms;   /* 0: 5 min; <0 off (log.health_interval) */
} sf_server_opts;

/* Starts the tick timer (logs, STATUS=) and, when cfg->server.listen is set, the HTTP
 * endpoint. src, pipe and cm (the checkpoint's committer: watermark, write counters) must
 * outlive the server (close it first). Returns 0 or a negative errno / libuv error (the listen
 * address could not be bound; logged). */
int sf_server_start(uv_loop_t *loop, const sf_config *cfg, const sf_source *src,
                    const sf_pipeline *pipe, const sf_committer *cm, const sf_server_opts *opts,
                    sf_server **out);
int sf_server_port(const sf_server *s); /* bound port, 0 when the endpoint is off */
/* Stops the endpoint and the timer; closed(arg) (optional) runs once everything is freed. */
void sf_server_close(sf_server *s, void (*closed)(void *arg), void *arg);

/* Rendering, exposed for tests. Each returns 0 or -ENOMEM. */
int sf_server_render_metrics(sf_server *s, sf_buf *out);
/* Returns 200 or 503 and writes the explanation into out. */
int sf_server_render_ready(sf_server *s, sf_buf *out);
/* One-line state used for STATUS= and the health log ("forwarding, lag 2s, 3/3 sinks ok"). */
void sf_server_summary(sf_server *s, char *out, size_t outlen);

#endif
