/* sink file: NDJSON to a local file (rotation, fsync policy, reopen on SIGHUP) through the
 * shared fd writer (fdwriter.h). */
#include <stddef.h>

#include "sinks/fdwriter.h"

typedef struct file_cfg {
    char *path;
    uint64_t rotate_max_size;
    int64_t rotate_keep;
    int fsync;
    int64_t fsync_interval_ms;
} file_cfg;

static const char *const fsync_values[] = {"always", "interval", "never", NULL};

static const sf_cfg_option rotate_options[] = {
    {.name = "max_size",
     .type = SF_OPT_SIZE,
     .def = "0",
     .desc = "Rotate when the file reaches this size, checked after each write (a write is "
             "every page queued behind the last one: at most pipeline.max_inflight_bytes "
             "over it). 0: never; use SIGHUP with logrotate",
     .offset = offsetof(file_cfg, rotate_max_size)},
    {.name = "keep",
     .type = SF_OPT_INT,
     .def = "5",
     .min = 0,
     .max = 1000,
     .desc = "Rotated files kept (path.1 newest ... path.N)",
     .offset = offsetof(file_cfg, rotate_keep)},
    {0},
};

static const sf_cfg_option file_options[] = {
    {.name = "path",
     .type = SF_OPT_STR,
     .flags = SF_OPT_REQUIRED | SF_OPT_PATH,
     .desc = "Output file (NDJSON, one event per line, created 0600)",
     .offset = offsetof(file_cfg, path)},
    {.name = "rotate", .type = SF_OPT_SECTION, .sub = rotate_options, .desc = "Size rotation"},
    {.name = "fsync",
     .type = SF_OPT_ENUM,
     .def = "always",
     .enum_values = fsync_values,
     .desc = "always: fsync each batch before the checkpoint moves; interval: at most every "
             "fsync_interval (a crash may lose the last interval); never: leave it to the OS",
     .offset = offsetof(file_cfg, fsync)},
    {.name = "fsync_interval",
     .type = SF_OPT_DURATION,
     .def = "1s",
     .min = 1,
     .desc = "With fsync: interval",
     .offset = offsetof(file_cfg, fsync_interval_ms)},
    {0},
};

static int file_open(sf_sink *s)
{
    const file_cfg *c = s->cfg->type_cfg;
    sf_fdwriter_opts o = {.path = c->path,
                          .rotate_max_size = c->rotate_max_size,
                          .rotate_keep = c->rotate_keep,
                          .fsync_policy = c->fsync,
                          .fsync_interval_ms = c->fsync_interval_ms};
    return sf_fdwriter_open(s, &o);
}

static void file_check_env(const void *cfg, const sf_cfg_node *node, sf_cfg_errors *errs)
{
    const file_cfg *c = cfg;
    sf_cfg_check_file(errs, node, "path", "path", c->path);
}

const sf_sink_ops sf_sink_file_ops = {
    .type = "file",
    .desc = "Appends one record per line to a local file.",
    .options = file_options,
    .cfg_size = sizeof(file_cfg),
    .check_env = file_check_env,
    .open = file_open,
    .submit = sf_fdwriter_submit,
    .reopen = sf_fdwriter_reopen,
    .close = sf_fdwriter_close,
    .destroy = sf_fdwriter_destroy,
};
