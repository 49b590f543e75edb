/* deadletter: the durable record of every event a sink permanently rejected.
 * One NDJSON line per event: {"time","sink","reason","id","event":<raw event>}; the file is
 * created 0600, appended with one write + fsync per call, and bounded by max_size: when full,
 * rejected events are held by the pipeline (never dropped) until the file has room again. */
#ifndef SF_DEADLETTER_H
#define SF_DEADLETTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/event.h"

typedef struct sf_deadletter sf_deadletter;

/* path NULL/"" -> dead-letters.ndjson in the directory of default_dir_of. Returns 0 or -errno;
 * the file itself is opened lazily at the first write. */
int sf_deadletter_new(const char *path, const char *default_dir_of, uint64_t max_size,
                      sf_deadletter **out);
/* Appends entries durably (one write + fsync), in order, as many whole entries as fit under
 * max_size: *written (may be NULL) says how many, always a prefix. An entry larger than max_size
 * is still written to an empty file, so no event can block the file for ever. Returns 0 when all
 * n were written; -ENOSPC when max_size stopped it (the file is full: logged once per episode,
 * sf_deadletter_full() true until a write fits again); or -errno (the entries of this write are
 * not left in the file; also logged once per episode). When full, the file's real size is read
 * again first (the operator may have emptied it), and a file moved away or deleted (rotated
 * without SIGHUP) is replaced by a new one. */
int sf_deadletter_write(sf_deadletter *d, const char *sink, const sf_event *const *evs,
                        const char *const *reasons, size_t n, size_t *written);
/* Closes the file (SIGHUP, after logrotate moved it): the next write opens the path again,
 * creating a new file, and max_size counts that file from its current size. */
void sf_deadletter_reopen(sf_deadletter *d);
uint64_t sf_deadletter_count(const sf_deadletter *d);
/* The last write found the file full (max_size), and none fitted since. */
bool sf_deadletter_full(const sf_deadletter *d);
/* Bytes of the file as counted (0 before the first write). */
uint64_t sf_deadletter_size(const sf_deadletter *d);
const char *sf_deadletter_path(const sf_deadletter *d);
void sf_deadletter_free(sf_deadletter *d);

#endif
