/* defer: calls made on a later turn of the loop, never inside the caller's stack.
 *
 * Every notification that crosses a layer goes through one queue per loop (the application owns
 * it): a sink's batch done or settlement (sink -> pipeline), a page commit and "space for more
 * pages" (pipeline -> application -> committer / source), the end of fetching (source ->
 * application), a flush's completion (committer -> application). The poster records what
 * happened in its own state and posts a node; the node's function runs later, from the loop, with
 * nobody's half-finished operation below it on the stack. So no module needs "am I inside my own
 * callback?" flags, and a callee may call the poster's API freely. As curl's multi-uv.c puts it,
 * completions are handled "NOT within the callback itself".
 *
 * Ordering guarantee: FIFO. Nodes run in the order they were posted. A node is queued at most
 * once: posting a node that is already queued does nothing (it keeps its place; notifications
 * coalesce, the handler looks at the poster's state, not at a count of posts). A node posted
 * while the queue is being drained (by a node's function) runs in the next drain, after the loop
 * polled for I/O once more, so a chain of posts cannot starve I/O or timers. A node that is
 * cancelled before it runs does not run.
 *
 * Mechanics: a uv_check handle drains the queue (after the loop's I/O poll), and a uv_idle
 * handle is active while nodes wait, so that the poll does not block (node.js's setImmediate
 * works the same way). Both handles are active only while the queue is not empty: an empty
 * queue does not keep the loop alive. */
#ifndef SF_DEFER_H
#define SF_DEFER_H

#include <stdbool.h>
#include <uv.h>

typedef struct sf_defer_node {
    struct sf_defer_node *prev, *next; /* in the queue while queued */
    void (*fn)(void *arg);
    void *arg;
    bool queued;
} sf_defer_node;

typedef struct sf_defer {
    uv_check_t check;
    uv_idle_t idle;
    sf_defer_node list;  /* sentinel of a circular list */
    sf_defer_node mark;  /* end of the batch being drained */
    bool active, closed; /* handles started; sf_defer_close was called */
} sf_defer;

/* Initialises d on loop (cannot fail: libuv's init of check and idle handles only fills them). */
void sf_defer_init(uv_loop_t *loop, sf_defer *d);
/* Prepares a node: fn(arg) runs once per post. A node lives in its owner's memory. */
void sf_defer_node_init(sf_defer_node *n, void (*fn)(void *arg), void *arg);
/* Queues n at the tail (no-op while it is queued, or after sf_defer_close). */
void sf_defer_post(sf_defer *d, sf_defer_node *n);
/* Unqueues n if it is queued (owners call it before freeing the memory a node lives in). */
void sf_defer_cancel(sf_defer_node *n);
/* Closes both handles (uv_close; the loop finishes closing them). Nodes still queued are
 * unqueued without running; later posts are ignored. d must stay allocated until the loop ran
 * the close callbacks. */
void sf_defer_close(sf_defer *d);

#endif
