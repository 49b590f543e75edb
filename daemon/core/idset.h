/* idset: a bounded set of event ids with their timestamps (dedup across overlapping windows).
 * Open addressing; pruning by time rebuilds the table. */
#ifndef SF_IDSET_H
#define SF_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sf_idset_entry {
    char *id;
    int64_t ts_ns;
} sf_idset_entry;

typedef struct sf_idset {
    sf_idset_entry *slots;
    size_t cap, n;
    size_t max; /* bound: beyond it the oldest entries are evicted */
    uint64_t evicted;
} sf_idset;

void sf_idset_init(sf_idset *s, size_t max);
void sf_idset_free(sf_idset *s);
bool sf_idset_has(const sf_idset *s, const char *id);
/* 0 (added or already there), -ENOMEM. */
int sf_idset_add(sf_idset *s, const char *id, int64_t ts_ns);
/* Removes id if present (true if it was). */
bool sf_idset_remove(sf_idset *s, const char *id);
/* Removes every entry older than min_ts (entries without a time, SF_TIME_UNSET, too). */
int sf_idset_prune(sf_idset *s, int64_t min_ts);
/* Keeps the entries whose time keep(ud, ts) accepts (SF_TIME_UNSET included: keep decides) and
 * shrinks the table to fit them. */
int sf_idset_filter(sf_idset *s, bool (*keep)(void *ud, int64_t ts), void *ud);
/* When a set pruned as it grows is pruned next: once it has doubled (and holds at least min),
 * and before adding headroom more entries could make it evict; SIZE_MAX while pruning cannot
 * bring it under that (it holds what it must: eviction then, as the bound says). */
size_t sf_idset_next_prune(const sf_idset *s, size_t min, size_t headroom);
/* Calls fn for every entry (order unspecified). */
void sf_idset_each(const sf_idset *s, void (*fn)(void *ud, const char *id, int64_t ts), void *ud);

#endif
