/* deadletter: the durable record of every event a sink permanently rejected.
 * One NDJSON line per event: {"time","sink","reason","id","event":<raw event>}; the file is
 * created 0600, appended with one write + fsync per call, and bounded by max_size. */
#ifndef SF_DEADLETTER_H
#define SF_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>
#include "core/event.h"

typedef struct sf_deadletter sf_deadletter;

/* path NULL/"" -> dead-letters.ndjson in the directory of default_dir_of. Returns 0 or -errno;
 * the file itself is opened lazily at the first write. */
int sf_deadletter_new(const char *path, const char *default_dir_of, uint64_t max_size,
                      sf_deadletter **out);
/* Appends n entries durably. Returns 0, -ENOSPC when max_size would be exceeded, or -errno;
 * on failure nothing of this call is left in the file. */
int sf_deadletter_write(sf_deadletter *d, const char *sink, const sf_event *const *evs,
                        const char *const *reasons, size_t n);
/* Closes the file (SIGHUP, after logrotate moved it): the next write opens the path again,
 * creating a new file, and max_size counts that file from its current size. */
void sf_deadletter_reopen(sf_deadletter *d);
uint64_t sf_deadletter_count(const sf_deadletter *d);
const char *sf_deadletter_path(const sf_deadletter *d);
void sf_deadletter_free(sf_deadletter *d);

#endif
