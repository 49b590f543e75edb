/* arena: bump allocation in chunks, all freed at once (reset or free); nothing is freed alone.
 *
 * The first region is either the caller's buffer (sf_arena_init: a stack buffer, no malloc at
 * all while it suffices) or allocated with the arena itself (sf_arena_new: one malloc). When it
 * is full, chunks are malloc'd (each at least as large as the last). Used by core/json to hold
 * a cJSON tree without cJSON's malloc per node and per string. Not thread-safe. */
#ifndef SF_ARENA_H
#define SF_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sf_arena_chunk sf_arena_chunk;

typedef struct sf_arena {
    char *p, *end; /* free space of the region being filled */
    char *buf;     /* first region (not malloc'd on its own), buf_len bytes */
    size_t buf_len;
    sf_arena_chunk *chunks; /* malloc'd chunks, newest first */
    size_t next_size;       /* data bytes of the next chunk */
    size_t used;            /* bytes handed out since init or reset (alignment included) */
    bool oom;               /* an allocation failed since init or reset */
} sf_arena;

/* Alignment of every allocation: enough for pointers, doubles and int64 (cJSON's nodes); not
 * for long double or SIMD types. */
#define SF_ARENA_ALIGN 8

/* An arena whose first region is buf (len bytes, SF_ARENA_ALIGN-aligned; may be NULL/0). */
void sf_arena_init(sf_arena *a, void *buf, size_t len);
/* Frees a's chunks (not buf); a is then as after sf_arena_init with the same buf. */
void sf_arena_reset(sf_arena *a);
/* Frees a's chunks; a must be initialised again before use. */
void sf_arena_fini(sf_arena *a);

/* A malloc'd arena with a first region of len bytes in the same allocation; NULL if out of
 * memory. Free with sf_arena_free. */
sf_arena *sf_arena_new(size_t len);
void sf_arena_free(sf_arena *a);

/* n bytes (n == 0 gives a distinct pointer too), aligned to SF_ARENA_ALIGN; NULL if out of
 * memory. */
void *sf_arena_alloc_chunk(sf_arena *a, size_t n); /* the slow path: a new chunk */
static inline void *sf_arena_alloc(sf_arena *a, size_t n)
{
    size_t r = n ? (n + (SF_ARENA_ALIGN - 1)) & ~(size_t)(SF_ARENA_ALIGN - 1) : SF_ARENA_ALIGN;
    if (a->p && r >= n && (size_t)(a->end - a->p) >= r) {
        void *q = a->p;
        a->p += r;
        a->used += r;
        return q;
    }
    return sf_arena_alloc_chunk(a, n);
}
/* Whether p points into memory a handed out (or may hand out). */
bool sf_arena_owns(const sf_arena *a, const void *p);

#endif
