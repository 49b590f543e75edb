/* cfg: the configuration engine. YAML (libyaml) -> node tree with positions -> typed structs,
 * driven by option tables. It knows nothing of the daemon's sections, sinks or formats: those
 * declare their tables and the daemon's schema (config/config.h) puts them together.
 *
 * Every section of the configuration is described by one table of sf_cfg_option (name, type,
 * default, description, range, flags, offset into the C struct it fills), in the style of
 * Fluent Bit's config maps. The same tables validate the file, fill the structs, and generate
 * the configuration reference (--print-config-reference).
 *
 * Errors carry FILE:LINE:COL; loading collects every error rather than stopping at the first. */
#ifndef SF_CFG_H
#define SF_CFG_H

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
    /* warnings: accepted, but worth telling the operator ("FILE:LINE:COL: message") */
    char **warns;
    size_t nwarns;
} sf_cfg_errors;

/* Records a warning at sf_cfg_pos(map, key) (a risky but valid setting). */
void sf_cfg_warn_at(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void sf_cfg_error(sf_cfg_errors *e, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "FILE:LINE:COL: path.key: message" (path and key may be NULL). */
void sf_cfg_error_key(sf_cfg_errors *e, int line, int col, const char *path, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void sf_cfg_errors_free(sf_cfg_errors *e);

/* Values shown in error messages are cut at this many bytes. */
#define SF_CFG_MAX_VALUE_SHOWN 80
/* An empty, "~" or "null" unquoted scalar. */
bool sf_cfg_is_null(const sf_cfg_node *n);
/* "a map", "a list", "a scalar" */
const char *sf_cfg_kind_name(sf_node_kind k);

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
    SF_OPT_SECTION,  /* nested map described by .sub; the sub-table's offsets are relative to
                      * this option's .offset (0: the same struct; offsetof(T, tls): a member
                      * struct, so one table such as TLS can serve every struct embedding it) */
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
    /* Scalar options only: an environment variable that, when set and not empty, overrides the
     * file's value (validated the same way; errors name the variable). Documented in the
     * reference. Prefer ${VAR} in the file: this is for overrides that predate the file. */
    const char *env;
} sf_cfg_option;

/* Applies ntables tables (each filling its own struct, structs[i]) to one YAML map.
 * A key not found in any table is an "unknown key" error (with a did-you-mean hint).
 * Missing keys take their default. A NULL map applies defaults only.
 * 'path' prefixes messages ("sinks[0].retry"). Returns number of errors added. */
int sf_cfg_apply(const sf_cfg_node *map, const char *path, const sf_cfg_option *const *tables,
                 void *const *structs, size_t ntables, sf_cfg_errors *errs);
/* sf_cfg_apply with the position to report missing keys at (line, col) and unknown keys
 * reported only if check_unknown. Returns the number of errors added, or -ENOMEM. */
int sf_cfg_apply_at(const sf_cfg_node *map, int line, int col, const char *path,
                    const sf_cfg_option *const *tables, void *const *structs, size_t ntables,
                    bool check_unknown, sf_cfg_errors *errs);
/* "path.key" (or "key" if path is empty); malloc'd, NULL on OOM. */
char *sf_cfg_join_path(const char *path, const char *key);
/* The name in names (NULL-terminated) closest to key by edit distance (< 3), or NULL. */
const char *sf_cfg_suggest(const char *key, const char *const *names);
/* Redacts secrets registered since errors from..n were recorded (e.g. by a later option). */
void sf_cfg_errors_redact(sf_cfg_errors *e, size_t from);
/* Frees the strings/lists a table filled in a struct (does not free the struct). */
void sf_cfg_free_struct(const sf_cfg_option *table, void *st);
/* Writes the table as a Markdown table (name, type, default, description). */
struct sf_buf;
int sf_cfg_doc_table(const sf_cfg_option *table, const char *prefix, struct sf_buf *out);

/* Parses YAML text into a node tree; ${VAR} / ${VAR:-default} are expanded from the
 * environment in every scalar ($$ is a literal $). An undefined variable without default is an
 * error. Returns the root or NULL (errors added). */
sf_cfg_node *sf_cfg_parse_yaml(const char *text, size_t len, sf_cfg_errors *errs);
void sf_cfg_node_free(sf_cfg_node *n);

/* Position of the value of 'key' in map, else of the key, else of the map itself. */
void sf_cfg_pos(const sf_cfg_node *map, const char *key, int *line, int *col);
/* Position of the key 'key' in map (else of the map). */
void sf_cfg_key_pos(const sf_cfg_node *map, const char *key, int *line, int *col);
/* Reports an error at sf_cfg_pos(map, key): how a sink's validate() points at its keys. */
void sf_cfg_error_at(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Checks of the machine, not of the text (what start-up will need: sf_config_check_env). Each
 * reports at sf_cfg_pos(map, key), naming what (e.g. "sinks[0].path"), as this process's user:
 *  - file: path can be opened for appending (it exists and is a writable regular file, or its
 *    directory exists and new files can be made in it);
 *  - dir: path is a writable directory, or can be made (its parent is a writable directory);
 *  - replaced: a file written elsewhere and renamed over path (and files made beside it): its
 *    directory exists and is writable, path is not a directory. */
void sf_cfg_check_file(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *what,
                       const char *path);
void sf_cfg_check_dir(sf_cfg_errors *e, const sf_cfg_node *map, const char *key, const char *what,
                      const char *path);
void sf_cfg_check_replaced(sf_cfg_errors *e, const sf_cfg_node *map, const char *key,
                           const char *what, const char *path);

#endif
