#include "core/idset.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void sf_idset_init(sf_idset *s, size_t max)
{
    memset(s, 0, sizeof *s);
    s->max = max ? max : 100000;
}

void sf_idset_free(sf_idset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i].id);
    free(s->slots);
    s->slots = NULL;
    s->cap = s->n = 0;
}

static size_t find(const sf_idset_entry *slots, size_t cap, const char *id)
{
    size_t i = sf_hash_str(id) & (cap - 1);
    while (slots[i].id && strcmp(slots[i].id, id) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

bool sf_idset_has(const sf_idset *s, const char *id)
{
    if (!s->cap)
        return false;
    return s->slots[find(s->slots, s->cap, id)].id != NULL;
}

static int rehash(sf_idset *s, size_t cap)
{
    sf_idset_entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].id)
            slots[find(slots, cap, s->slots[i].id)] = s->slots[i];
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

static int cmp_ts(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Evicts the oldest tenth so that adds stay amortised O(1). */
static int evict_oldest(sf_idset *s)
{
    int64_t *ts = malloc(s->n * sizeof *ts);
    if (!ts)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].id)
            ts[k++] = s->slots[i].ts_ns;
    qsort(ts, k, sizeof *ts, cmp_ts);
    int64_t cut = ts[k / 10];
    free(ts);
    size_t before = s->n;
    int rc = sf_idset_prune(s, cut == INT64_MIN ? INT64_MIN + 1 : cut);
    if (rc == 0 && s->n >= s->max) {
        /* many equal timestamps at the cut: drop entries at the cut until there is room */
        size_t target = s->max - s->max / 10;
        for (size_t i = 0; i < s->cap && s->n > target; i++) {
            if (s->slots[i].id && s->slots[i].ts_ns <= cut) {
                free(s->slots[i].id);
                s->slots[i].id = NULL;
                s->n--;
            }
        }
        rc = rehash(s, s->cap);
    }
    s->evicted += before - s->n;
    return rc;
}

int sf_idset_add(sf_idset *s, const char *id, int64_t ts_ns)
{
    if (s->n >= s->max) {
        int rc = evict_oldest(s);
        if (rc)
            return rc;
    }
    if ((s->n + 1) * 4 > s->cap * 3) {
        int rc = rehash(s, s->cap ? s->cap * 2 : 64);
        if (rc)
            return rc;
    }
    size_t i = find(s->slots, s->cap, id);
    if (s->slots[i].id) {
        if (ts_ns > s->slots[i].ts_ns)
            s->slots[i].ts_ns = ts_ns;
        return 0;
    }
    if (!(s->slots[i].id = sf_strdup(id)))
        return -ENOMEM;
    s->slots[i].ts_ns = ts_ns;
    s->n++;
    return 0;
}

/* Frees slot i and closes the hole (backward-shift deletion: later members of the probe chain
 * move into it when their home slot does not lie cyclically in (hole, j]). No allocation. */
static void remove_at(sf_idset *s, size_t i)
{
    size_t mask = s->cap - 1;
    free(s->slots[i].id);
    s->slots[i].id = NULL;
    s->n--;
    for (size_t j = (i + 1) & mask; s->slots[j].id; j = (j + 1) & mask) {
        size_t home = sf_hash_str(s->slots[j].id) & mask;
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        s->slots[i] = s->slots[j];
        s->slots[j].id = NULL;
        i = j;
    }
}

bool sf_idset_remove(sf_idset *s, const char *id)
{
    if (!s->cap)
        return false;
    size_t i = find(s->slots, s->cap, id);
    if (!s->slots[i].id)
        return false;
    remove_at(s, i);
    return true;
}

int sf_idset_filter(sf_idset *s, bool (*keep)(void *ud, int64_t ts), void *ud)
{
    if (!s->cap)
        return 0;
    size_t kept = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].id && keep(ud, s->slots[i].ts_ns))
            kept++;
    /* the survivors go into a table that fits them (at most 3/8 full: room to double before
     * the next growth) */
    size_t cap = 64;
    while (cap < s->cap && kept * 8 > cap * 3)
        cap *= 2;
    sf_idset_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) {
        /* in place, without allocating: each entry that goes closes its hole; an entry moved
         * into slot i is looked at again (one from before i was kept already) */
        for (size_t i = 0; i < s->cap; i++)
            while (s->slots[i].id && !keep(ud, s->slots[i].ts_ns))
                remove_at(s, i);
        return 0;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].id)
            continue;
        if (keep(ud, s->slots[i].ts_ns))
            slots[find(slots, cap, s->slots[i].id)] = s->slots[i];
        else
            free(s->slots[i].id);
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    s->n = kept;
    return 0;
}

static bool newer_than(void *ud, int64_t ts)
{
    return ts >= *(const int64_t *)ud;
}

int sf_idset_prune(sf_idset *s, int64_t min_ts)
{
    return sf_idset_filter(s, newer_than, &min_ts);
}

size_t sf_idset_next_prune(const sf_idset *s, size_t min, size_t headroom)
{
    size_t at = s->n * 2 > min ? s->n * 2 : min;
    size_t limit = s->max > headroom ? s->max - headroom : 0;
    if (at > limit)
        at = limit > s->n ? limit : SIZE_MAX;
    return at;
}

void sf_idset_each(const sf_idset *s, void (*fn)(void *ud, const char *id, int64_t ts), void *ud)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].id)
            fn(ud, s->slots[i].id, s->slots[i].ts_ns);
}
