/* defer: next-turn call queue. See defer.h. */
#include "core/defer.h"

#include <stddef.h>

static void unlink_node(sf_defer_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->queued = false;
}

static void link_tail(sf_defer *d, sf_defer_node *n)
{
    n->prev = d->list.prev;
    n->next = &d->list;
    d->list.prev->next = n;
    d->list.prev = n;
    n->queued = true;
}

static bool queue_empty(const sf_defer *d)
{
    return d->list.next == &d->list;
}

static void idle_cb(uv_idle_t *h)
{
    (void)h; /* only keeps the loop's poll from blocking while nodes wait */
}

static void stop_handles(sf_defer *d)
{
    if (!d->active)
        return;
    d->active = false;
    uv_check_stop(&d->check);
    uv_idle_stop(&d->idle);
}

static void check_cb(uv_check_t *h)
{
    sf_defer *d = h->data;
    if (queue_empty(d)) {
        stop_handles(d);
        return;
    }
    /* this drain runs what was queued before it began: a node posted meanwhile (or re-posted
     * by its own function) lands after the mark and waits for the next drain */
    link_tail(d, &d->mark);
    while (!d->closed) {
        sf_defer_node *n = d->list.next;
        unlink_node(n);
        if (n == &d->mark)
            break;
        n->fn(n->arg);
    }
    if (d->mark.queued)
        unlink_node(&d->mark); /* closed during the drain */
    if (queue_empty(d))
        stop_handles(d);
}

void sf_defer_init(uv_loop_t *loop, sf_defer *d)
{
    d->list.prev = d->list.next = &d->list;
    d->mark.prev = d->mark.next = NULL;
    d->mark.queued = false;
    d->mark.fn = NULL;
    d->active = d->closed = false;
    uv_check_init(loop, &d->check);
    uv_idle_init(loop, &d->idle);
    d->check.data = d->idle.data = d;
}

void sf_defer_node_init(sf_defer_node *n, void (*fn)(void *arg), void *arg)
{
    n->prev = n->next = NULL;
    n->fn = fn;
    n->arg = arg;
    n->queued = false;
}

void sf_defer_post(sf_defer *d, sf_defer_node *n)
{
    if (n->queued || d->closed)
        return;
    link_tail(d, n);
    if (!d->active) {
        d->active = true;
        uv_check_start(&d->check, check_cb);
        uv_idle_start(&d->idle, idle_cb);
    }
}

void sf_defer_cancel(sf_defer_node *n)
{
    if (n->queued)
        unlink_node(n);
}

void sf_defer_close(sf_defer *d)
{
    if (d->closed)
        return;
    d->closed = true;
    while (!queue_empty(d))
        unlink_node(d->list.next);
    stop_handles(d);
    /* (a loop torn down with uv_walk may have closed them already) */
    if (!uv_is_closing((uv_handle_t *)&d->check))
        uv_close((uv_handle_t *)&d->check, NULL);
    if (!uv_is_closing((uv_handle_t *)&d->idle))
        uv_close((uv_handle_t *)&d->idle, NULL);
}
