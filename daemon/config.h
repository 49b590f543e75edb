/* config: YAML (libyaml) -> node tree with positions -> typed structs, driven by option tables.
 *
 * Every section of the configuration is described by one table of sf_cfg_option (name, type,
 * default, description, range, flags, offset into the C struct it fills), in the style of
 * Fluent Bit's config maps. The same tables validate the file, fill the structs, and generate
 * the configuration reference (--print-config-reference).
 *
 * Errors carry FILE:LINE:COL; loading collects every error rather than stopping at the first. */
#ifndef SF_CONFIG_H
#define SF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- generic YAML node tree ---- */
typedef enum { SF_NODE_SCALAR, SF_NODE_SEQ, SF_NODE_MAP } sf_node_kind;

typedef struct sf_cfg_node {
    sf_node_kind kind;
    int line, col; /* 1-based, of the value */
    char *value;   /* SCALAR: text after ${VAR} expansion */
    bool quoted;   /* SCALAR was quoted in YAML ("..." or '...') */
    /* MAP: keys[i] -> items[i]; SEQ: items[i] (keys NULL) */
    char **keys;
    int *key_line, *key_col;
    struct sf_cfg_node **items;
    size_t n;
} sf_cfg_node;

const sf_cfg_node *sf_cfg_map_get(const sf_cfg_node *map, const char *key);

/* ---- errors ---- */
typedef struct sf_cfg_errors {
    char **msgs; /* each "FILE:LINE:COL: message" */
    size_t n;
    const char *file; /* name used in messages (not owned) */
} sf_cfg_errors;

void sf_cfg_error(sf_cfg_errors *e, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sf_cfg_errors_free(sf_cfg_errors *e);

/* ---- value types used in config structs ---- */
typedef struct sf_strlist {
    char **v;
    size_t n;
} sf_strlist;

typedef struct sf_kvlist { /* string -> string map, order kept (e.g. HTTP headers) */
    char **k;
    char **v;
    size_t n;
} sf_kvlist;

typedef struct sf_intlist {
    int64_t *v;
    size_t n;
} sf_intlist;

typedef enum {
    SF_OPT_STR,      /* char *            */
    SF_OPT_INT,      /* int64_t           (min/max)  */
    SF_OPT_BOOL,     /* bool              */
    SF_OPT_DURATION, /* int64_t ms        (min/max in ms) */
    SF_OPT_SIZE,     /* uint64_t bytes    (min/max in bytes) */
    SF_OPT_ENUM,     /* int index into enum_values */
    SF_OPT_STRLIST,  /* sf_strlist        */
    SF_OPT_INTLIST,  /* sf_intlist        (min/max per item) */
    SF_OPT_KVLIST,   /* sf_kvlist         (YAML map of scalars) */
    SF_OPT_SECTION,  /* nested map described by .sub, filling the SAME struct (offsets absolute) */
    SF_OPT_NODE,     /* const sf_cfg_node * kept as-is (e.g. a free-form object); may be NULL */
} sf_opt_type;

enum {
    SF_OPT_REQUIRED = 1 << 0,
    SF_OPT_SECRET = 1 << 1, /* value registered with the log redactor, shown as *** in docs */
    SF_OPT_ISSET = 1 << 2, /* an extra 'bool' at isset_offset is set true when the key is present */
    SF_OPT_PATH = 1 << 3,  /* documentation hint: a filesystem path */
};

typedef struct sf_cfg_option {
    const char *name;
    sf_opt_type type;
    const char *def; /* default in config syntax ("10s", "true", "200"); NULL: none (zero/NULL) */
    const char *desc;
    size_t offset;
    unsigned flags;
    int64_t min, max;                /* inclusive; both 0 = unchecked */
    const char *const *enum_values;  /* NULL-terminated, SF_OPT_ENUM */
    const struct sf_cfg_option *sub; /* SF_OPT_SECTION; table ends with name == NULL */
    size_t isset_offset;             /* SF_OPT_ISSET */
} sf_cfg_option;

/* Applies ntables tables (each filling its own struct, structs[i]) to one YAML map.
 * A key not found in any table is an "unknown key" error (with a did-you-mean hint).
 * Missing keys take their default. A NULL map applies defaults only.
 * 'path' prefixes messages ("sinks[0].retry"). Returns number of errors added. */
int sf_cfg_apply(const sf_cfg_node *map, const char *path, const sf_cfg_option *const *tables,
                 void *const *structs, size_t ntables, sf_cfg_errors *errs);
/* Frees the strings/lists a table filled in a struct (does not free the struct). */
void sf_cfg_free_struct(const sf_cfg_option *table, void *st);
/* Writes the table as a Markdown table (name, type, default, description). */
struct sf_buf;
int sf_cfg_doc_table(const sf_cfg_option *table, const char *prefix, struct sf_buf *out);

/* ---- the daemon's configuration ---- */
typedef enum { SF_API_LEGACY = 0, SF_API_EVENTS = 1 } sf_api_kind;

typedef struct sf_source_cfg {
    char *url;
    int api; /* sf_api_kind */
    char *token;
    char *token_file;
    char *filter;
    sf_intlist zones;
    int64_t page_size;
    int64_t poll_interval_ms;
    int64_t lookback_ms;
    int64_t overlap_ms;
    int64_t request_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t max_window_events;              /* split a window whose page.total exceeds this */
    uint64_t max_response_size;             /* bytes */
    int64_t retry_initial_ms, retry_max_ms; /* backoff for retriable errors */
    int64_t auth_retry_ms;                  /* wait after 401/403/400 */
    int64_t dedup_max_ids;                  /* bound on remembered ids */
    bool tls_verify;
    char *tls_ca_file;
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
    int64_t max_inflight_pages; /* pages fetched but not yet checkpointed */
    int64_t shutdown_timeout_ms;
} sf_pipeline_cfg;

typedef struct sf_dead_letter_cfg {
    char *path;        /* NULL/empty: dead-letters.ndjson beside the checkpoint */
    uint64_t max_size; /* bytes; when full, rejected events are held (retried), never dropped */
} sf_dead_letter_cfg;

/* Settings every sink has, whatever its type. */
typedef struct sf_sink_common_cfg {
    char *name;
    char *type;
    char *format;
    int64_t queue_max_events;
    int64_t retry_initial_ms, retry_max_ms, retry_max_attempts; /* 0 attempts = unlimited */
    char *spool_path;        /* NULL: no disk spool (memory only) */
    uint64_t spool_max_size; /* bytes */
    uint64_t spool_segment_size;
    const struct sf_cfg_node *node; /* the sink's YAML map (for type/format-specific tables) */
} sf_sink_common_cfg;

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
    sf_cfg_node *root; /* kept: sinks' node pointers refer into it */
} sf_config;

/* Option tables (exported for docs and tests). */
extern const sf_cfg_option sf_source_options[];
extern const sf_cfg_option sf_checkpoint_options[];
extern const sf_cfg_option sf_log_options[];
extern const sf_cfg_option sf_server_options[];
extern const sf_cfg_option sf_pipeline_options[];
extern const sf_cfg_option sf_dead_letter_options[];
extern const sf_cfg_option sf_sink_common_options[];

/* Parses YAML text into a node tree; ${VAR} / ${VAR:-default} are expanded from the
 * environment in every scalar ($$ is a literal $). An undefined variable without default is an
 * error. Returns the root or NULL (errors added). */
sf_cfg_node *sf_cfg_parse_yaml(const char *text, size_t len, sf_cfg_errors *errs);
void sf_cfg_node_free(sf_cfg_node *n);

/* Loads and validates a whole config file (including every sink and format section, and the
 * token_file). Returns 0 and fills cfg, or a negative count of errors (errs filled). */
int sf_config_load(const char *path, sf_config *cfg, sf_cfg_errors *errs);
/* Same from text (tests); 'name' is used in messages. */
int sf_config_load_text(const char *name, const char *text, size_t len, sf_config *cfg,
                        sf_cfg_errors *errs);
void sf_config_free(sf_config *cfg);

/* Markdown reference of every section, sink type and format (drives README). */
int sf_config_reference(struct sf_buf *out);

#endif
