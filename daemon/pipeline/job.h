/* job: one page's work for one sink. The page's events encoded in the sink's format, a state per
 * record (pending, settled, or to be dead-lettered with a reason), and the attempts made.
 *
 * Once a job is finished (no record pending) its work is freed and the job itself becomes a
 * *hold* (settle.h) until the sink settled its records; a hold with page == NULL stands for
 * spool_n replayed spool records instead. */
#ifndef SF_JOB_H
#define SF_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "formats/format.h"
#include "pipeline/deadletter.h"
#include "pipeline/ledger.h"
#include "sinks/filter.h"

enum { SF_JOB_PENDING = 0, SF_JOB_SETTLED = 1, SF_JOB_DEAD = 2 };

typedef struct sf_job {
    struct sf_job *next;
    sf_ledger_page *page;
    uint64_t seq_end;       /* as a hold: settled once the sink settled this many records */
    size_t spool_n;         /* as a spool hold: records to consume from the spool */
    uint64_t t_queued;      /* uv_now() at submit (batch_wait) */
    sf_buf *records;        /* page->n */
    unsigned char *done;    /* page->n: SF_JOB_PENDING, SF_JOB_SETTLED or SF_JOB_DEAD */
    char **reasons;         /* page->n: why SF_JOB_DEAD (owned) */
    size_t ndead;           /* records marked SF_JOB_DEAD, not written yet */
    size_t remaining;       /* records not settled */
    unsigned attempts;      /* sink attempts that left records pending */
    unsigned dead_failures; /* failed dead-letter writes (not sink attempts) */
    bool borrowed;          /* records are views of the events' raw bytes (format keep_bytes) */
    size_t bytes;           /* memory the records own */
    size_t sink;            /* the sink's index in the pipeline (config order) */
    bool gave_up;           /* bounded mode gave up on it: settled, but not confirmed */
} sf_job;

/* Counters a job reports into (per sink). */
typedef struct sf_job_counts {
    uint64_t *encode_errors, *utf8_events;
    uint64_t *filtered; /* events the sink's filter dropped */
} sf_job_counts;

/* A job for pg: every event that passes the sink's filter (sinks/filter.h; NULL: every event)
 * encoded with format f (its state fmt_state); an event the filter drops is settled at once
 * (not sent, never dead-lettered: the checkpoint may move past it); an event the format cannot
 * encode is marked for the dead-letter file. Runs while the events' trees are loaded. Returns
 * NULL when out of memory. */
sf_job *sf_job_new(sf_ledger_page *pg, const struct sf_filter *filter, const sf_format *f,
                   void *fmt_state, const char *sink, uint64_t now, const sf_job_counts *counts);
/* A hold without a page (spool records); NULL when out of memory. */
sf_job *sf_job_new_spool_hold(size_t spool_n);
/* Frees what the job needs for sending (all of it for a hold, whose page may be gone). */
void sf_job_free_work(sf_job *j);
void sf_job_free(sf_job *j);
/* Record idx needs no sending: the sink confirmed it in an earlier run (it counts as settled). */
void sf_job_skip(sf_job *j, size_t idx);
/* Marks record idx for the dead-letter file (takes reason; ignored unless still pending). */
void sf_job_mark_dead(sf_job *j, size_t idx, char *reason);
/* Bounded mode gives up on the page: it will fail (the checkpoint stays before it), and its
 * pending records (and, with dead_too, those waiting for the dead-letter file) are settled. */
void sf_job_give_up(sf_job *j, bool dead_too);
/* Writes the records marked dead durably to the dead-letter file, in order, as many as it
 * takes; only those are settled (*rejected counts them). Returns 0, or negative if the file
 * could not take them all (the rest stay marked, the job is held). */
int sf_job_flush_dead(sf_job *j, sf_deadletter *dl, const char *sink, uint64_t *rejected);

#endif
