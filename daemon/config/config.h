/* config: the daemon's configuration schema. Puts the sections together (source, checkpoint,
 * log, server, pipeline, dead_letter, sinks), each described by its option table, loads and
 * validates a file with the engine (config/cfg.h), and writes the configuration reference. */
#ifndef SF_CONFIG_H
#define SF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "net/tls.h"

typedef enum { SF_API_LEGACY = 0, SF_API_EVENTS = 1 } sf_api_kind;

/* Longest API token accepted (the Authorization header has room for it). */
#define SF_SOURCE_MAX_TOKEN 4096

typedef struct sf_source_cfg {
    char *url;
    int api; /* sf_api_kind */
    char *token;
    char *token_file;
    char *filter;       /* also the translation of stix_pattern, done at load */
    char *stix_pattern; /* a STIX pattern scoping the events (query/sysdig_query.h) */
    sf_intlist zones;
    int64_t page_size;
    int64_t poll_interval_ms;
    int64_t lookback_ms;
    int64_t overlap_ms;
    int64_t request_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t max_window_events;              /* split a window whose page.total exceeds this */
    int64_t max_concurrency;                /* catch-up: requests in flight at most (lanes) */
    uint64_t max_response_size;             /* bytes */
    int64_t retry_initial_ms, retry_max_ms; /* backoff for retriable errors */
    int64_t auth_retry_ms;                  /* wait after 401/403/400 */
    int64_t dedup_max_ids;                  /* bound on remembered ids */
    sf_tls_cfg tls;                         /* source.tls (net/tls.h) */
    char *proxy;
    char *user_agent;
} sf_source_cfg;

typedef struct sf_checkpoint_cfg {
    char *path;
} sf_checkpoint_cfg;

typedef struct sf_log_cfg {
    int level;                  /* sf_log_level */
    int format;                 /* sf_log_format */
    int64_t health_interval_ms; /* 0: off */
} sf_log_cfg;

typedef struct sf_server_cfg {
    char *listen; /* "127.0.0.1:9464"; NULL/empty = off */
    int64_t ready_max_poll_age_ms;
} sf_server_cfg;

typedef struct sf_pipeline_cfg {
    int64_t max_inflight_pages;  /* pages fetched but not yet checkpointed */
    uint64_t max_inflight_bytes; /* event bytes in memory: requests in flight + pages unsent */
    int64_t shutdown_timeout_ms;
} sf_pipeline_cfg;

typedef struct sf_dead_letter_cfg {
    char *path;        /* NULL/empty: dead-letters.ndjson beside the checkpoint */
    uint64_t max_size; /* bytes; when full, rejected events are held (retried), never dropped */
} sf_dead_letter_cfg;

struct sf_sink_cfg; /* defined in sink.h */

typedef struct sf_config {
    char *file;
    sf_source_cfg source;
    sf_checkpoint_cfg checkpoint;
    sf_log_cfg log;
    sf_server_cfg server;
    sf_pipeline_cfg pipeline;
    sf_dead_letter_cfg dead_letter;
    struct sf_sink_cfg **sinks;
    size_t nsinks;
    sf_cfg_node *root;   /* kept: sinks' node pointers refer into it */
    sf_strlist warnings; /* found while loading, for the caller to log once logging is set */
} sf_config;

/* Option tables (exported for docs and tests). */
extern const sf_cfg_option sf_source_options[];
extern const sf_cfg_option sf_checkpoint_options[];
extern const sf_cfg_option sf_log_options[];
extern const sf_cfg_option sf_server_options[];
extern const sf_cfg_option sf_pipeline_options[];
extern const sf_cfg_option sf_dead_letter_options[];

/* Loads and validates a whole config file (including every sink and format section, and the
 * token_file). Returns 0 and fills cfg, or a negative count of errors (errs filled). */
int sf_config_load(const char *path, sf_config *cfg, sf_cfg_errors *errs);
/* Same from text (tests); 'name' is used in messages. */
int sf_config_load_text(const char *name, const char *text, size_t len, sf_config *cfg,
                        sf_cfg_errors *errs);
void sf_config_free(sf_config *cfg);
/* What start-up will need from this machine, checked before anything starts (and by
 * --check-config, as the same user): output files and directories can be written or made
 * (file sinks, spools, dead_letter.path), TLS files load (source and sinks) and server.listen
 * can be listened on (an address of this machine, a port this process may bind; one in use
 * now passes). Errors go to errs at the key's FILE:LINE:COL; returns their count. */
int sf_config_check_env(const sf_config *cfg, sf_cfg_errors *errs);
/* The same for the checkpoint, for the runs that use it (not --from/--to exports, --ping):
 * its directory exists and is writable (the checkpoint is replaced by rename, its lock file
 * made beside it), checkpoint.path is not a directory. What is in the checkpoint (unreadable,
 * corrupt) and its lock (held by another daemon) are the checkpoint's own checks (exit 3). */
int sf_config_check_checkpoint_env(const sf_config *cfg, sf_cfg_errors *errs);

/* Markdown reference of every section, sink type and format (drives README). */
int sf_config_reference(struct sf_buf *out);

#endif
