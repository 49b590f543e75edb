/* spool: a sink's bounded on-disk queue, used while the sink cannot take events so that the
 * checkpoint (and the other sinks) can move on.
 *
 * A directory of append-only segments (<seq>.seg) of records
 *   [magic u32 "SFSP"][raw_len u32][rec_len u32][crc32 u32 of raw+rec][raw][rec]
 * (little endian), plus a "head" file "<seq> <offset>\n" naming the first record not yet
 * delivered (replaced atomically). Records are peeked, taken (sent; the next peek starts
 * after them) and consumed (delivered for good, the head moves) in order; a sink that settles
 * late keeps records taken but not consumed for a while. Appends are fsync'd before they count. On
 * open every record from the head on is checked: a torn or corrupt tail (a crash mid-append) is
 * reported and cut off — those events were never acknowledged, so the API re-reads them;
 * corruption inside a segment is reported and the rest of that segment skipped.
 * The I/O is synchronous: it runs only while a sink is failing, one fsync per page. */
#ifndef SF_SPOOL_H
#define SF_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include "core/event.h"
#include "core/util.h"

typedef struct sf_spool sf_spool;

typedef struct sf_spool_item {
    sf_event ev; /* parsed back from the raw bytes */
    sf_buf rec;  /* the encoded record */
} sf_spool_item;

/* Opens (creating, 0700) the spool directory. Returns 0 or negative (err says why). */
int sf_spool_open(const char *dir, uint64_t max_size, uint64_t segment_size, sf_spool **out,
                  char *err, size_t errlen);
/* Appends n records durably (all or nothing). -ENOSPC when max_size would be exceeded. */
int sf_spool_append(sf_spool *s, const sf_event *const *evs, const sf_buf *recs, size_t n);
/* Reads up to max records that were not taken yet, oldest first, without consuming them. *n
 * set; items owned by the caller (free with sf_spool_items_free). */
int sf_spool_peek(sf_spool *s, size_t max, sf_spool_item **items, size_t *n);
void sf_spool_items_free(sf_spool_item *items, size_t n);
/* The first n records of the last peek were sent: the next peek starts after them. In memory
 * only: after a restart they are read again until consumed. */
int sf_spool_take(sf_spool *s, size_t n);
/* The oldest n taken records are delivered for good; persists the head. */
int sf_spool_consume(sf_spool *s, size_t n);
uint64_t sf_spool_count(const sf_spool *s);  /* records not consumed (taken or not) */
uint64_t sf_spool_unsent(const sf_spool *s); /* records not taken yet */
uint64_t sf_spool_bytes(const sf_spool *s);
uint64_t sf_spool_dropped_corrupt(const sf_spool *s); /* records found corrupt at open */
void sf_spool_close(sf_spool *s);

/* What a spool directory holds, read without changing anything (no lock taken, nothing
 * created, cut or removed), so it may run beside the daemon that owns the spool: the records
 * from the head on, walked by their headers (checksums are not verified; a record the daemon is
 * appending, or a torn or corrupt tail, ends the count of its segment). */
typedef struct sf_spool_stat {
    uint64_t events;   /* records not consumed */
    uint64_t bytes;    /* their bytes on disk */
    uint64_t segments; /* segment files from the head on */
} sf_spool_stat;
/* Returns 0, 1 when dir does not exist (nothing spooled yet), or negative (err says why). */
int sf_spool_inspect(const char *dir, sf_spool_stat *st, char *err, size_t errlen);

#endif
