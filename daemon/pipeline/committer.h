/* committer: the only writer of the checkpoint.
 *
 * Data flows one way: source -> pipeline (formats, sinks, acks) -> committer. The pipeline
 * reports committed pages in page order; app/main.c hands each commit to sf_committer_commit,
 * which applies the page's progress (sf_progress, core/checkpoint.h, built by the source) to the
 * committed state: the window in progress and the next page's cursor, or, at a window's end, the
 * watermark; the ids delivered (kept while they may be re-read in the overlap); the event count.
 *
 * Saving: atomic (core/checkpoint.c: temp file, fsync, rename, fsync of the directory), on the
 * libuv threadpool, at most one save in flight. Commits that arrive while a save runs coalesce:
 * when it finishes, one save writes the latest state. A failed save keeps the old file and
 * leaves the state dirty; the next commit, or the final flush, tries again. sf_committer_flush
 * (SIGTERM, end of --once) writes the latest state if it is not on disk yet.
 *
 * Per sink: the pipeline also reports every page a sink confirmed before the page could commit
 * (a sink that settles late, or is down, holds the commit for all). The committer keeps, per
 * sink (by name in the file: the checkpoint's "sinks"), the ids of those pages, written
 * atomically with the rest; a page's commit removes its ids from every sink's set (the common
 * position says it). After a crash the source re-reads from the common position and the
 * pipeline skips, for each sink, what that sink had confirmed (sf_committer_sink_has). A sink
 * the file does not list starts from the common position; one the configuration no longer has
 * is dropped. Each set is bounded by dedup_max_ids (pages not committed yet are bounded by the
 * pipeline: max_inflight_pages + 256 settling pages): beyond it the oldest ids are forgotten,
 * which re-sends them after a crash and never loses them.
 *
 * Nothing calls back into the source: it got what it needs (where to resume, the ids already
 * delivered, for dedup) from the loaded checkpoint when it was created. */
#ifndef SF_COMMITTER_H
#define SF_COMMITTER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "config/config.h"
#include "core/checkpoint.h"
#include "core/defer.h"

typedef struct sf_committer sf_committer;

typedef struct sf_committer_stats {
    int64_t watermark_ns;  /* committed; SF_TIME_UNSET before the first window ended */
    uint64_t writes;       /* saves that succeeded */
    uint64_t errors;       /* saves that failed */
    uint64_t events_total; /* as in the checkpoint */
    size_t ids;            /* delivered ids kept in memory (what a save may list) */
} sf_committer_stats;

/* cp (the loaded checkpoint) is taken over (moved). persist false (--from/--to): the state is
 * kept in memory only, the file is never written. Returns 0 or -ENOMEM. */
int sf_committer_new(uv_loop_t *loop, sf_defer *defer, const sf_config *cfg, sf_checkpoint *cp,
                     bool persist, sf_committer **out);
/* The next page in page order was committed: ok, its progress is applied and saved; not ok
 * (some event of it could not be settled), the checkpoint stays, and stays for every later
 * page too (their progress would skip the failed one). Takes progress. */
void sf_committer_commit(sf_committer *c, sf_progress *progress, bool ok);
/* Sink number sink (config order) confirmed every event of the page t describes, before the page
 * committed (t stays the caller's: it is still the page's token). Recorded and saved. */
void sf_committer_sink_confirmed(sf_committer *c, size_t sink, const sf_progress *t);
/* Whether that sink confirmed id beyond the committed position (it need not be sent again). */
bool sf_committer_sink_has(const sf_committer *c, size_t sink, const char *id);
/* How many ids that sink confirmed beyond the committed position. */
size_t sf_committer_sink_ahead(const sf_committer *c, size_t sink);
/* Waits for the save in flight and writes the latest state if it is not on disk yet; then,
 * on a later loop turn, cb(ud, 0) or cb(ud, negative errno). */
void sf_committer_flush(sf_committer *c, void (*cb)(void *ud, int rc), void *ud);
void sf_committer_stats_get(const sf_committer *c, sf_committer_stats *st);
/* Once no save is in flight (after a flush completed, or after the loop ended). */
void sf_committer_free(sf_committer *c);

#endif
