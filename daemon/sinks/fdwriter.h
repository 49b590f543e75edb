/* fdwriter: the line writer behind the file and stdout sinks. Each batch's records go to one
 * fd as lines, with an fsync policy (always: fsync'd before the batch is reported OK), size
 * rotation and reopen on SIGHUP. A batch is the head page and every whole page queued behind
 * it (group commit: one write and one fsync for the pages that waited for the last one). All
 * blocking I/O runs on libuv's threadpool; the sink ops below can serve directly as a sink's
 * submit/reopen/close/destroy. */
#ifndef SF_FDWRITER_H
#define SF_FDWRITER_H

#include "sinks/sink.h"

enum { SF_FSYNC_ALWAYS = 0, SF_FSYNC_INTERVAL = 1, SF_FSYNC_NEVER = 2 };

typedef struct sf_fdwriter_opts {
    const char *path; /* NULL: write to fixed_fd */
    int fixed_fd;
    uint64_t rotate_max_size; /* 0 = never */
    int64_t rotate_keep;
    int fsync_policy;
    int64_t fsync_interval_ms;
} sf_fdwriter_opts;

int sf_fdwriter_open(sf_sink *s, const sf_fdwriter_opts *o);
int sf_fdwriter_submit(sf_sink *s, sf_sink_batch *b);
void sf_fdwriter_reopen(sf_sink *s);
void sf_fdwriter_close(sf_sink *s, void (*closed)(sf_sink *s));
void sf_fdwriter_destroy(sf_sink *s);

#endif
