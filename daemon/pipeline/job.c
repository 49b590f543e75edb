/* job: a page's work for one sink. See job.h. */
#include "pipeline/job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

sf_job *sf_job_new(sf_ledger_page *pg, const sf_filter *filter, const sf_format *f, void *fmt_state,
                   const char *sink, uint64_t now, const sf_job_counts *counts)
{
    size_t n = pg->n;
    sf_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->page = pg;
    j->records = calloc(n ? n : 1, sizeof *j->records);
    j->done = calloc(n ? n : 1, 1);
    j->reasons = calloc(n ? n : 1, sizeof *j->reasons);
    if (!j->records || !j->done || !j->reasons)
        goto oom;
    j->remaining = n;
    j->t_queued = now;
    /* a record that is the event's bytes is borrowed, not copied (the page outlives the job's
     * work: sf_ledger_sent) */
    j->borrowed = f->keep_bytes;
    for (size_t i = 0; i < n; i++) {
        char err[256] = "";
        size_t fixed = 0;
        const sf_event *ev = &pg->events[i];
        if (filter && !sf_filter_match(filter, ev)) {
            /* routed away from this sink: settled for it, nothing to send */
            j->done[i] = SF_JOB_SETTLED;
            j->remaining--;
            (*counts->filtered)++;
            continue;
        }
        if (j->borrowed) {
            j->records[i] = (sf_buf){.data = ev->raw, .len = ev->raw_len};
            continue;
        }
        int rc = sf_format_encode(f, fmt_state, ev, &j->records[i], &fixed, err, sizeof err);
        if (fixed && (*counts->utf8_events)++ < 10)
            SF_WARN("pipeline",
                    "event %s: %zu bytes of invalid UTF-8 replaced with U+FFFD in its %s "
                    "record for sink %s%s",
                    ev->id, fixed, f->name, sink,
                    *counts->utf8_events == 10 ? " (not logged any more)" : "");
        j->bytes += j->records[i].cap;
        if (rc == -ENOMEM)
            goto oom;
        if (rc) {
            (*counts->encode_errors)++;
            sf_buf r = {0};
            sf_buf_appendf(&r, "format %s cannot encode the event: %s", f->name, err);
            char *reason = sf_buf_steal(&r);
            if (!reason)
                goto oom;
            sf_job_mark_dead(j, i, reason);
        }
    }
    return j;
oom:
    sf_job_free(j);
    return NULL;
}

sf_job *sf_job_new_spool_hold(size_t spool_n)
{
    sf_job *h = calloc(1, sizeof *h);
    if (h)
        h->spool_n = spool_n;
    return h;
}

void sf_job_free_work(sf_job *j)
{
    for (size_t i = 0; j->records && !j->borrowed && i < j->page->n; i++)
        sf_buf_free(&j->records[i]);
    for (size_t i = 0; j->reasons && i < j->page->n; i++)
        free(j->reasons[i]);
    free(j->records);
    free(j->done);
    free(j->reasons);
    j->records = NULL;
    j->done = NULL;
    j->reasons = NULL;
}

void sf_job_free(sf_job *j)
{
    if (!j)
        return;
    sf_job_free_work(j);
    free(j);
}

void sf_job_skip(sf_job *j, size_t idx)
{
    if (j->done[idx] == SF_JOB_PENDING) {
        j->done[idx] = SF_JOB_SETTLED;
        j->remaining--;
    } else if (j->done[idx] == SF_JOB_DEAD) { /* unencodable, but the sink has it already */
        j->done[idx] = SF_JOB_SETTLED;
        j->remaining--;
        j->ndead--;
        free(j->reasons[idx]);
        j->reasons[idx] = NULL;
    }
}

void sf_job_mark_dead(sf_job *j, size_t idx, char *reason)
{
    if (j->done[idx] != SF_JOB_PENDING) {
        free(reason);
        return;
    }
    j->done[idx] = SF_JOB_DEAD;
    free(j->reasons[idx]);
    j->reasons[idx] = reason;
    j->ndead++;
}

void sf_job_give_up(sf_job *j, bool dead_too)
{
    j->page->failed = true;
    j->gave_up = true;
    for (size_t i = 0; i < j->page->n; i++)
        if (j->done[i] == SF_JOB_PENDING || (dead_too && j->done[i] == SF_JOB_DEAD)) {
            j->done[i] = SF_JOB_SETTLED;
            j->remaining--;
        }
    if (dead_too)
        j->ndead = 0;
}

int sf_job_flush_dead(sf_job *j, sf_deadletter *dl, const char *sink, uint64_t *rejected)
{
    if (!j->ndead)
        return 0;
    const sf_event **evs = calloc(j->ndead, sizeof *evs);
    const char **why = calloc(j->ndead, sizeof *why);
    int rc = -ENOMEM;
    if (!evs || !why)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < j->page->n; i++) {
        if (j->done[i] != SF_JOB_DEAD)
            continue;
        evs[k] = &j->page->events[i];
        why[k++] = j->reasons[i] ? j->reasons[i] : "rejected";
    }
    size_t written = 0;
    /* what does not fit or fails is logged by the dead-letter file (once per episode) */
    rc = sf_deadletter_write(dl, sink, evs, why, k, &written);
    for (size_t i = 0; i < j->page->n && written; i++) {
        if (j->done[i] != SF_JOB_DEAD)
            continue;
        SF_ERROR("pipeline", "sink %s: event %s dead-lettered: %s", sink, j->page->events[i].id,
                 j->reasons[i] ? j->reasons[i] : "rejected");
        j->done[i] = SF_JOB_SETTLED;
        j->remaining--;
        j->ndead--;
        written--;
        (*rejected)++;
    }
out:
    free(evs);
    free(why);
    return rc;
}
