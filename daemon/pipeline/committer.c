/* committer: applies committed pages to the checkpoint and saves it. See committer.h. */
#include "pipeline/committer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/idset.h"
#include "core/log.h"
#include "sinks/sink.h"

struct sf_committer {
    bool failed; /* a page failed: nothing after it may move the checkpoint */
    uv_loop_t *loop;
    sf_defer *defer;
    const sf_config *cfg;
    bool persist;
    sf_checkpoint cp;   /* committed state; its ids live in 'committed' */
    sf_idset committed; /* ids delivered (what the checkpoint lists) */
    size_t forget_at;   /* committed.n at which ids no save lists again are dropped */
    /* per sink (config order): ids that sink confirmed in pages not committed yet (the
     * checkpoint's "sinks"); bounded by dedup_max_ids each (beyond it the oldest are forgotten:
     * re-sent after a crash, never lost) */
    size_t nsinks;
    sf_idset *ahead;
    bool dirty; /* cp differs from the file */
    /* the save in flight */
    bool saving;
    uv_work_t work;
    sf_buf save_text; /* the checkpoint being written, encoded on the loop */
    int save_rc;
    char save_err[256];
    /* the flush waiting for a save, or whose result waits for the next turn */
    bool flush_waiting;
    void (*flush_cb)(void *, int);
    void *flush_ud;
    int flush_rc;
    sf_defer_node flush_done;
    sf_committer_stats st;
};

static void flush_done_cb(void *arg)
{
    sf_committer *c = arg;
    void (*cb)(void *, int) = c->flush_cb;
    c->flush_cb = NULL;
    if (cb)
        cb(c->flush_ud, c->flush_rc);
}

/* The flush's result goes to its caller on a later turn. */
static void finish_flush(sf_committer *c, int rc)
{
    c->flush_waiting = false;
    c->flush_rc = rc;
    sf_defer_post(c->defer, &c->flush_done);
}

static void save_work_cb(uv_work_t *w)
{
    sf_committer *c = w->data;
    c->save_rc = sf_checkpoint_write(c->cfg->checkpoint.path, c->save_text.data, c->save_text.len,
                                     c->save_err, sizeof c->save_err);
}

static void save_start(sf_committer *c);

static void save_after_cb(uv_work_t *w, int status)
{
    sf_committer *c = w->data;
    c->saving = false;
    sf_buf_free(&c->save_text);
    if (status == 0 && c->save_rc == 0) {
        c->st.writes++;
    } else {
        c->st.errors++;
        c->dirty = true; /* try again with the next commit or flush */
        SF_ERROR("checkpoint", "cannot write checkpoint: %s",
                 c->save_err[0] ? c->save_err : "cancelled");
    }
    if (c->dirty && c->save_rc == 0) /* newer commits arrived meanwhile */
        save_start(c);
    if (!c->saving && c->flush_waiting)
        finish_flush(c, c->dirty ? (c->save_rc ? c->save_rc : -EIO) : 0);
}

typedef struct listing {
    sf_checkpoint *cp;
    int64_t overlap_ns;
} listing;

/* A delivered id goes into the file if a restart may read its event again (the ranges still
 * to read of a window fetched in slices, the overlap): not every id of a window cut into
 * slices, which made each save as large as the window (bench/: ~1 MB a page at 0 ms). */
static void add_committed_id(void *ud, const char *id, int64_t ts)
{
    listing *l = ud;
    sf_checkpoint *cp = l->cp;
    if (!sf_checkpoint_rereads(cp, l->overlap_ns, ts))
        return;
    cp->ids[cp->nids].id = (char *)id; /* borrowed for the copy below */
    cp->ids[cp->nids].ts_ns = ts;
    cp->nids++;
}

/* While a window is fetched in slices, a save lists only the ids of what a restart re-reads
 * (above), and that only shrinks as the window's pages commit (what is left of each slice,
 * the window's overlap): an id a save skips is never listed again. Dropped once the set has
 * doubled since the last time, so memory follows what a restart re-reads, not the window. */
#define FORGET_MIN 512

static bool still_listed(void *ud, int64_t ts)
{
    const listing *l = ud;
    return sf_checkpoint_rereads(l->cp, l->overlap_ns, ts);
}

/* When to forget next: once the set has doubled, and before a commit's ids could make it evict
 * (its oldest are slice 0's, still listed). */
static void plan_forget(sf_committer *c)
{
    c->forget_at = sf_idset_next_prune(&c->committed, FORGET_MIN, (size_t)c->cfg->source.page_size);
}

static void forget_unlisted(sf_committer *c, int64_t overlap_ns)
{
    if (!c->cp.in_window || !c->cp.cut || c->committed.n < c->forget_at)
        return;
    listing l = {.cp = &c->cp, .overlap_ns = overlap_ns};
    if (sf_idset_filter(&c->committed, still_listed, &l))
        SF_WARN("checkpoint", "out of memory forgetting delivered ids (duplicates possible)");
    plan_forget(c);
}

static void add_ahead_id(void *ud, const char *id, int64_t ts)
{
    sf_sink_progress *sp = ud;
    sp->ids[sp->nids].id = (char *)id; /* borrowed for the copy below */
    sp->ids[sp->nids].ts_ns = ts;
    sp->nids++;
}

static void save_start(sf_committer *c)
{
    if (c->saving || !c->persist)
        return;
    /* the committed set is the checkpoint's id list (borrowed): encoded here, so the worker
     * only writes bytes (no deep copy of up to dedup_max_ids ids per save); so are the sinks'
     * sets, in the same file: one atomic replace says where every sink is */
    sf_checkpoint tmp = c->cp;
    int rc = -ENOMEM;
    tmp.ids = calloc(c->committed.n ? c->committed.n : 1, sizeof *tmp.ids);
    tmp.sinks = calloc(c->nsinks ? c->nsinks : 1, sizeof *tmp.sinks);
    tmp.nsinks = 0;
    if (!tmp.ids || !tmp.sinks)
        goto enc;
    tmp.nids = 0;
    listing l = {&tmp, c->cfg->source.overlap_ms * SF_NS_PER_MS};
    sf_idset_each(&c->committed, add_committed_id, &l);
    tmp.has_sinks = true;
    for (; tmp.nsinks < c->nsinks; tmp.nsinks++) {
        sf_sink_progress *sp = &tmp.sinks[tmp.nsinks];
        sp->name = (char *)c->cfg->sinks[tmp.nsinks]->common.name;
        sp->ids = calloc(c->ahead[tmp.nsinks].n ? c->ahead[tmp.nsinks].n : 1, sizeof *sp->ids);
        if (!sp->ids)
            goto enc;
        sf_idset_each(&c->ahead[tmp.nsinks], add_ahead_id, sp);
    }
    tmp.updated_ns = sf_now_ns();
    sf_buf_free(&c->save_text);
    rc = sf_checkpoint_encode(&tmp, &c->save_text);
enc:
    free(tmp.ids);
    for (size_t k = 0; tmp.sinks && k < c->nsinks; k++)
        free(tmp.sinks[k].ids);
    free(tmp.sinks);
    if (rc) {
        sf_buf_free(&c->save_text);
        SF_ERROR("checkpoint", "out of memory preparing the checkpoint");
        return;
    }
    c->dirty = false;
    c->saving = true;
    c->save_err[0] = '\0';
    c->work.data = c;
    if ((rc = uv_queue_work(c->loop, &c->work, save_work_cb, save_after_cb)) != 0) {
        c->saving = false;
        c->dirty = true;
        sf_buf_free(&c->save_text);
        SF_ERROR("checkpoint", "cannot queue checkpoint write: %s", uv_strerror(rc));
    }
}

/* The loaded per-sink progress goes to the sinks of this configuration, by name. */
static void load_sinks(sf_committer *c)
{
    sf_checkpoint *cp = &c->cp;
    bool fresh = cp->version == 0; /* no file: nothing to say */
    if (!fresh && !cp->has_sinks && c->persist)
        SF_INFO("checkpoint",
                "checkpoint version %d: it will be rewritten as version %d, which also records "
                "what each sink confirmed (a crash then re-sends to each sink only what it had "
                "not confirmed)",
                cp->version, SF_CHECKPOINT_VERSION);
    for (size_t k = 0; k < c->nsinks; k++) {
        const char *name = c->cfg->sinks[k]->common.name;
        const sf_sink_progress *sp = NULL;
        for (size_t j = 0; j < cp->nsinks && !sp; j++)
            if (strcmp(cp->sinks[j].name, name) == 0)
                sp = &cp->sinks[j];
        if (sp) {
            for (size_t i = 0; i < sp->nids; i++)
                if (sf_idset_add(&c->ahead[k], sp->ids[i].id, sp->ids[i].ts_ns))
                    SF_WARN("checkpoint",
                            "out of memory loading sink %s's progress "
                            "(duplicates possible)",
                            name);
        } else if (cp->has_sinks && c->persist) {
            SF_INFO("checkpoint",
                    "sink %s is new in this checkpoint: it starts from the checkpoint's position "
                    "(events delivered before it are not sent to it; --from/--to sends it a "
                    "range)",
                    name);
        }
    }
    for (size_t j = 0; j < cp->nsinks; j++) {
        bool known = false;
        for (size_t k = 0; k < c->nsinks && !known; k++)
            known = strcmp(cp->sinks[j].name, c->cfg->sinks[k]->common.name) == 0;
        if (!known && c->persist)
            SF_INFO("checkpoint",
                    "sink %s is no longer configured: its progress (%zu events ahead of the "
                    "checkpoint) is dropped",
                    cp->sinks[j].name, cp->sinks[j].nids);
    }
    /* the sets hold them now (what a save writes comes from there) */
    sf_checkpoint tmp;
    sf_checkpoint_init(&tmp);
    tmp.sinks = cp->sinks;
    tmp.nsinks = cp->nsinks;
    sf_checkpoint_free(&tmp);
    cp->sinks = NULL;
    cp->nsinks = 0;
}

int sf_committer_new(uv_loop_t *loop, sf_defer *defer, const sf_config *cfg, sf_checkpoint *cp,
                     bool persist, sf_committer **out)
{
    sf_committer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->defer = defer;
    c->cfg = cfg;
    c->persist = persist;
    c->cp = *cp;
    sf_checkpoint_init(cp);
    sf_defer_node_init(&c->flush_done, flush_done_cb, c);
    sf_idset_init(&c->committed, (size_t)cfg->source.dedup_max_ids);
    for (size_t i = 0; i < c->cp.nids; i++) {
        sf_idset_add(&c->committed, c->cp.ids[i].id, c->cp.ids[i].ts_ns);
        free(c->cp.ids[i].id);
    }
    plan_forget(c); /* from the ids the checkpoint listed */
    free(c->cp.ids);
    c->cp.ids = NULL;
    c->cp.nids = 0;
    c->nsinks = cfg->nsinks;
    if (!(c->ahead = calloc(cfg->nsinks ? cfg->nsinks : 1, sizeof *c->ahead))) {
        sf_idset_free(&c->committed);
        sf_checkpoint_free(&c->cp);
        free(c);
        return -ENOMEM;
    }
    for (size_t k = 0; k < c->nsinks; k++)
        sf_idset_init(&c->ahead[k], (size_t)cfg->source.dedup_max_ids);
    load_sinks(c);
    c->st.watermark_ns = c->cp.watermark_ns;
    c->st.events_total = c->cp.events_total;
    *out = c;
    return 0;
}

void sf_committer_commit(sf_committer *c, sf_progress *t, bool ok)
{
    if (!ok && !c->failed) {
        c->failed = true;
        SF_WARN("checkpoint", "a page could not be delivered: the checkpoint stays before it for "
                              "the rest of this run, so the next run reads it again");
    }
    if (c->failed) {
        /* A page's progress describes the stream up to and including it (the cursor after it,
         * the window's end): applying a later page's would skip the failed one. */
        sf_progress_free(t);
        return;
    }
    for (size_t i = 0; i < t->nids; i++) {
        if (sf_idset_add(&c->committed, t->ids[i].id, t->ids[i].ts_ns))
            SF_WARN("source", "out of memory remembering delivered ids (duplicates possible)");
        /* every sink has it now: the common position says so */
        for (size_t k = 0; k < c->nsinks; k++)
            sf_idset_remove(&c->ahead[k], t->ids[i].id);
    }
    c->cp.events_total += t->nevents;
    int64_t overlap_ns = c->cfg->source.overlap_ms * SF_NS_PER_MS;
    if (t->window_end) {
        if (c->cp.watermark_ns == SF_TIME_UNSET || t->win_to > c->cp.watermark_ns)
            c->cp.watermark_ns = t->win_to;
        c->cp.in_window = false;
        free(c->cp.cursor);
        c->cp.cursor = NULL;
        c->cp.win_low_ns = SF_TIME_UNSET;
        free(c->cp.slices);
        c->cp.slices = NULL;
        c->cp.nslices = 0;
        c->cp.cut = false;
        sf_idset_prune(&c->committed, c->cp.watermark_ns - overlap_ns);
        plan_forget(c);
        /* what no window will read again is not skipped again either */
        for (size_t k = 0; k < c->nsinks; k++)
            if (c->ahead[k].n)
                sf_idset_prune(&c->ahead[k], c->cp.watermark_ns - overlap_ns);
    } else {
        c->cp.in_window = true;
        c->cp.win_from_ns = t->win_from;
        c->cp.win_to_ns = t->win_to;
        c->cp.win_low_ns = t->low_ns;
        free(c->cp.cursor);
        c->cp.cursor = t->cursor_after;
        t->cursor_after = NULL;
        free(c->cp.slices);
        c->cp.cut = t->cut;
        c->cp.slices = t->slices;
        c->cp.nslices = t->nslices;
        t->slices = NULL;
        forget_unlisted(c, overlap_ns);
    }
    c->st.watermark_ns = c->cp.watermark_ns;
    c->st.events_total = c->cp.events_total;
    sf_progress_free(t);
    c->dirty = true;
    save_start(c);
}

void sf_committer_sink_confirmed(sf_committer *c, size_t sink, const sf_progress *t)
{
    if (sink >= c->nsinks)
        return;
    for (size_t i = 0; i < t->nids; i++)
        if (sf_idset_add(&c->ahead[sink], t->ids[i].id, t->ids[i].ts_ns))
            SF_WARN("checkpoint",
                    "out of memory recording sink %s's progress (duplicates "
                    "possible)",
                    c->cfg->sinks[sink]->common.name);
    if (!t->nids)
        return;
    c->dirty = true;
    save_start(c);
}

bool sf_committer_sink_has(const sf_committer *c, size_t sink, const char *id)
{
    return sink < c->nsinks && c->ahead[sink].n && sf_idset_has(&c->ahead[sink], id);
}

size_t sf_committer_sink_ahead(const sf_committer *c, size_t sink)
{
    return sink < c->nsinks ? c->ahead[sink].n : 0;
}

void sf_committer_flush(sf_committer *c, void (*cb)(void *ud, int rc), void *ud)
{
    c->flush_cb = cb;
    c->flush_ud = ud;
    if (!c->persist || (!c->saving && !c->dirty)) {
        finish_flush(c, 0);
        return;
    }
    c->flush_waiting = true;
    if (!c->saving)
        save_start(c);
    if (!c->saving) /* could not even start */
        finish_flush(c, -EIO);
}

void sf_committer_stats_get(const sf_committer *c, sf_committer_stats *st)
{
    *st = c->st;
    st->ids = c->committed.n;
}

void sf_committer_free(sf_committer *c)
{
    if (!c)
        return;
    sf_defer_cancel(&c->flush_done);
    sf_idset_free(&c->committed);
    for (size_t k = 0; k < c->nsinks; k++)
        sf_idset_free(&c->ahead[k]);
    free(c->ahead);
    sf_checkpoint_free(&c->cp);
    sf_buf_free(&c->save_text);
    free(c);
}
