/* arena: see arena.h. */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>

struct sf_arena_chunk {
    sf_arena_chunk *next;
    size_t size; /* data bytes, after the header */
    _Alignas(16) char data[];
};

#define FIRST_CHUNK 4096u

static size_t align_up(size_t n)
{
    return (n + (SF_ARENA_ALIGN - 1)) & ~(size_t)(SF_ARENA_ALIGN - 1);
}

void sf_arena_init(sf_arena *a, void *buf, size_t len)
{
    a->buf = buf;
    a->buf_len = buf ? len : 0;
    a->p = a->buf;
    a->end = a->buf ? a->buf + a->buf_len : NULL;
    a->chunks = NULL;
    a->next_size = a->buf_len > FIRST_CHUNK ? align_up(a->buf_len) : FIRST_CHUNK;
    a->used = 0;
    a->oom = false;
}

void sf_arena_fini(sf_arena *a)
{
    sf_arena_chunk *c = a->chunks;
    while (c) {
        sf_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->chunks = NULL;
}

void sf_arena_reset(sf_arena *a)
{
    sf_arena_fini(a);
    sf_arena_init(a, a->buf, a->buf_len);
}

sf_arena *sf_arena_new(size_t len)
{
    size_t head = align_up(sizeof(sf_arena));
    len = align_up(len);
    if (len > SIZE_MAX - head)
        return NULL;
    sf_arena *a = malloc(head + len);
    if (a)
        sf_arena_init(a, (char *)a + head, len);
    return a;
}

void sf_arena_free(sf_arena *a)
{
    if (!a)
        return;
    sf_arena_fini(a);
    free(a);
}

void *sf_arena_alloc_chunk(sf_arena *a, size_t n)
{
    if (n > SIZE_MAX / 2) {
        a->oom = true;
        return NULL;
    }
    n = n ? align_up(n) : SF_ARENA_ALIGN;
    if (!a->p || (size_t)(a->end - a->p) < n) {
        size_t size = a->next_size > n ? a->next_size : n;
        sf_arena_chunk *c = malloc(sizeof *c + size);
        if (!c) {
            a->oom = true;
            return NULL;
        }
        c->next = a->chunks;
        c->size = size;
        a->chunks = c;
        a->p = c->data;
        a->end = c->data + size;
        if (a->next_size < SIZE_MAX / 4)
            a->next_size *= 2;
    }
    void *r = a->p;
    a->p += n;
    a->used += n;
    return r;
}

bool sf_arena_owns(const sf_arena *a, const void *p)
{
    uintptr_t u = (uintptr_t)p;
    if (a->buf && u >= (uintptr_t)a->buf && u < (uintptr_t)a->buf + a->buf_len)
        return true;
    for (const sf_arena_chunk *c = a->chunks; c; c = c->next)
        if (u >= (uintptr_t)c->data && u < (uintptr_t)c->data + c->size)
            return true;
    return false;
}
