/* sink stdout: one record per line on standard output (demo, pipes, containers). */
#include <unistd.h>

#include "sinks/fdwriter.h"

static const sf_cfg_option stdout_options[] = {{0}};

static int stdout_open(sf_sink *s)
{
    sf_fdwriter_opts o = {.fixed_fd = STDOUT_FILENO, .fsync_policy = SF_FSYNC_NEVER};
    return sf_fdwriter_open(s, &o);
}

const sf_sink_ops sf_sink_stdout_ops = {
    .type = "stdout",
    .desc = "Writes one record per line to standard output.",
    .options = stdout_options,
    .cfg_size = 0,
    .open = stdout_open,
    .submit = sf_fdwriter_submit,
    .close = sf_fdwriter_close,
    .destroy = sf_fdwriter_destroy,
};
