/* checkpoint: the durable position of the forwarder.
 *
 * JSON file {"version":2, "watermark_ns":"...", "window":{...}|null, "recent_ids":[...],
 * "sinks":{"<name>":{"ids":[...]}, ...}}; ns values are strings (exact int64). The position
 * and recent_ids describe what every sink settled (the slowest sink); "sinks" lists, per sink,
 * the ids that sink settled beyond that position (a restart re-reads from the position and
 * skips them for that sink only). Version 1 files (no "sinks") are read as "no sink is ahead".
 * Written atomically: temp file in the same directory
 * (mode 0600), write, fsync, rename over the old one, fsync the directory. A corrupt file is
 * an error, never silently replaced. */
#ifndef SF_CHECKPOINT_H
#define SF_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

typedef struct sf_seen_id {
    char *id;
    int64_t ts_ns;
} sf_seen_id;

/* A slice of a window being fetched in slices (parallel catch-up) that was not fetched to its
 * end: [from, to], delivered newest first down to low (SF_TIME_UNSET: nothing of it yet). A
 * restart re-reads [from, low] (the whole slice when low is unset) instead of the window. */
typedef struct sf_slice {
    int64_t from_ns, to_ns, low_ns;
} sf_slice;

#define SF_CHECKPOINT_MAX_SLICES 32

/* The newest end of what is left of a slice: its low (what is older was not delivered; the
 * ids at low are listed), or its end when nothing of it was delivered. A restart re-reads
 * [from, sf_slice_left_to], and the checkpoint lists the ids there (sf_checkpoint_rereads). */
static inline int64_t sf_slice_left_to(const sf_slice *sl)
{
    return sl->low_ns != SF_TIME_UNSET ? sl->low_ns : sl->to_ns;
}

/* One sink's progress beyond the common position: the ids it settled in pages that not every
 * sink settled yet. */
typedef struct sf_sink_progress {
    char *name;
    sf_seen_id *ids;
    size_t nids;
} sf_sink_progress;

typedef struct sf_checkpoint {
    int64_t watermark_ns; /* end of the last fully delivered window; SF_TIME_UNSET = none */
    /* window in progress (in_window false: none) */
    bool in_window;
    int64_t win_from_ns, win_to_ns;
    char *cursor;       /* next page inside the window; NULL = window's first page */
    int64_t win_low_ns; /* oldest event time delivered in this window; SF_TIME_UNSET = none yet */
    /* the window is fetched in slices: those not fetched to their end (cut false: not cut, or
     * a version that did not say, whose window a restart re-reads whole, skipping the ids) */
    bool cut;
    sf_slice *slices;
    size_t nslices;
    /* ids delivered recently (dedup across overlapping windows and resumed windows) */
    sf_seen_id *ids;
    size_t nids;
    /* per sink, by name (has_sinks false: a version 1 file, which does not say) */
    bool has_sinks;
    sf_sink_progress *sinks;
    size_t nsinks;
    int version;           /* of the file read (decode); encode always writes the current */
    uint64_t events_total; /* informational: events delivered since the file was created */
    int64_t updated_ns;    /* informational: wall clock of the save */
} sf_checkpoint;

#define SF_CHECKPOINT_VERSION 2
#define SF_CHECKPOINT_VERSION_MIN 1 /* the oldest version read */

/* What committing one page changes in the checkpoint. The source builds one for every page it
 * emits; it travels through the pipeline as the page's token and the committer
 * (pipeline/committer.h) applies it, in page order, once every sink settled the page. */
typedef struct sf_progress {
    bool window_end;          /* the page ends its window: the watermark moves to win_to */
    int64_t win_from, win_to; /* the window the page belongs to */
    int64_t low_ns;           /* oldest event time delivered in that window so far */
    char *cursor_after;       /* the next page's cursor (NULL when window_end) */
    sf_seen_id *ids;          /* ids the page delivers (nids) */
    size_t nids;
    size_t nevents;
    bool cut;         /* the window is fetched in slices: ... */
    sf_slice *slices; /* ... those not fetched to their end once this page is (owned) */
    size_t nslices;
} sf_progress;

void sf_progress_free(sf_progress *p); /* p itself too; NULL is fine */

void sf_checkpoint_init(sf_checkpoint *cp);
void sf_checkpoint_free(sf_checkpoint *cp);
int sf_checkpoint_copy(sf_checkpoint *dst, const sf_checkpoint *src); /* deep; 0 or -ENOMEM */

int sf_checkpoint_encode(const sf_checkpoint *cp, sf_buf *out);
/* Whether a restart from cp may read an event of time ts again, so that its id has to be listed
 * (recent_ids) to be skipped: within the window's ranges still to be read (its slices down to
 * their low, or [from, low] when a cursor fails), within the overlap the next window re-reads,
 * or anywhere when the window is resumed whole. Ids outside need not be written. */
bool sf_checkpoint_rereads(const sf_checkpoint *cp, int64_t overlap_ns, int64_t ts);
/* Returns 0, or -EINVAL with err naming what is wrong (e.g. "line 3: watermark_ns: not an
 * integer"), -ENOMEM. */
int sf_checkpoint_decode(const char *text, size_t len, sf_checkpoint *out, char *err,
                         size_t errlen);

/* Returns 0 (loaded), 1 (no file: fresh start; *out initialised), or negative (unreadable or
 * corrupt; err says why, naming the path). */
int sf_checkpoint_load(const char *path, sf_checkpoint *out, char *err, size_t errlen);
/* One daemon per checkpoint: takes an exclusive flock on "<path>.lock" (created 0600 beside
 * the checkpoint) and writes this process's pid into it. The lock is held while *fd stays
 * open (for the process's lifetime; the kernel drops it at exit, even after a SIGKILL).
 * Returns 0, -EBUSY if another process holds it (*holder = its pid, or 0 if unknown), or a
 * negative errno; err says which and why. */
int sf_checkpoint_lock(const char *path, int *fd, long *holder, char *err, size_t errlen);

/* Atomic durable replace. Blocking (call from a worker thread). 0 or negative errno. */
int sf_checkpoint_save(const char *path, const sf_checkpoint *cp, char *err, size_t errlen);
/* The same atomic durable replace for an already encoded checkpoint (data, len bytes). */
int sf_checkpoint_write(const char *path, const char *data, size_t len, char *err, size_t errlen);

#endif
