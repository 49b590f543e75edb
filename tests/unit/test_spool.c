/* The disk spool on its own: order, take/consume across restarts, segments, the size bound,
 * and what a crash mid-append or a corrupt record leaves behind. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/event.h"
#include "pipeline/spool.h"
#include "testutil.h"

static char tmpdir[256], dir[320];

static void setup(void)
{
    sf_test_mkdtemp(tmpdir, sizeof tmpdir, "spool");
    snprintf(dir, sizeof dir, "%s/sp", tmpdir);
}

static void teardown(void)
{
    sf_test_rmtree(tmpdir);
}

static sf_spool *open_spool(uint64_t max_size, uint64_t seg_size)
{
    sf_spool *s = NULL;
    char err[256] = "";
    ck_assert_msg(sf_spool_open(dir, max_size, seg_size, &s, err, sizeof err) == 0, "%s", err);
    return s;
}

/* Appends events k..k+n-1 ("e<k>", record "R<k>"), one append call. */
static int append_range(sf_spool *s, int k, int n)
{
    sf_event *evs = calloc((size_t)n, sizeof *evs);
    const sf_event **pev = calloc((size_t)n, sizeof *pev);
    sf_buf *recs = calloc((size_t)n, sizeof *recs);
    for (int i = 0; i < n; i++) {
        char text[128];
        int len = snprintf(text, sizeof text, "{\"id\":\"e%d\",\"timestamp\":%d000}", k + i, k + i);
        char err[128];
        ck_assert_int_eq(sf_event_parse(text, (size_t)len, &evs[i], err, sizeof err), 0);
        pev[i] = &evs[i];
        ck_assert_int_eq(sf_buf_appendf(&recs[i], "R%d", k + i), 0);
    }
    int rc = sf_spool_append(s, pev, recs, (size_t)n);
    for (int i = 0; i < n; i++) {
        sf_event_free(&evs[i]);
        sf_buf_free(&recs[i]);
    }
    free(evs);
    free(pev);
    free(recs);
    return rc;
}

/* Peeks up to max and checks the ids are e<first>, e<first+1>, ...; returns how many. */
static size_t peek_expect(sf_spool *s, size_t max, int first)
{
    sf_spool_item *it = NULL;
    size_t n = 0;
    ck_assert_int_eq(sf_spool_peek(s, max, &it, &n), 0);
    for (size_t i = 0; i < n; i++) {
        char id[32], rec[32];
        snprintf(id, sizeof id, "e%d", first + (int)i);
        snprintf(rec, sizeof rec, "R%d", first + (int)i);
        ck_assert_str_eq(it[i].ev.id, id);
        ck_assert_str_eq(it[i].rec.data, rec);
    }
    sf_spool_items_free(it, n);
    return n;
}

static size_t count_segments(void)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

START_TEST(test_order_take_consume)
{
    sf_spool *s = open_spool(1 << 20, 1 << 16);
    ck_assert_uint_eq(sf_spool_count(s), 0);
    ck_assert_uint_eq(peek_expect(s, 10, 0), 0);
    ck_assert_int_eq(append_range(s, 0, 3), 0);
    ck_assert_int_eq(append_range(s, 3, 2), 0);
    ck_assert_uint_eq(sf_spool_count(s), 5);
    ck_assert_uint_eq(sf_spool_unsent(s), 5);
    ck_assert_uint_gt(sf_spool_bytes(s), 0);
    /* peek does not move anything */
    ck_assert_uint_eq(peek_expect(s, 2, 0), 2);
    ck_assert_uint_eq(peek_expect(s, 10, 0), 5);
    /* take 2: the next peek starts after them, nothing consumed yet */
    ck_assert_int_eq(sf_spool_take(s, 2), 0);
    ck_assert_uint_eq(sf_spool_unsent(s), 3);
    ck_assert_uint_eq(sf_spool_count(s), 5);
    ck_assert_uint_eq(peek_expect(s, 10, 2), 3);
    /* consume the 2 taken */
    ck_assert_int_eq(sf_spool_consume(s, 2), 0);
    ck_assert_uint_eq(sf_spool_count(s), 3);
    ck_assert_uint_eq(peek_expect(s, 10, 2), 3);
    ck_assert_int_eq(sf_spool_take(s, 3), 0);
    ck_assert_int_eq(sf_spool_consume(s, 3), 0);
    ck_assert_uint_eq(sf_spool_count(s), 0);
    ck_assert_uint_eq(sf_spool_unsent(s), 0);
    ck_assert_uint_eq(peek_expect(s, 10, 0), 0);
    sf_spool_close(s);
}
END_TEST

/* Taken is in memory only: after a restart what was taken but not consumed comes back. */
START_TEST(test_restart_replays_unconsumed)
{
    sf_spool *s = open_spool(1 << 20, 1 << 16);
    ck_assert_int_eq(append_range(s, 0, 6), 0);
    ck_assert_uint_eq(peek_expect(s, 4, 0), 4);
    ck_assert_int_eq(sf_spool_take(s, 4), 0);
    ck_assert_int_eq(sf_spool_consume(s, 1), 0); /* e0 delivered for good */
    sf_spool_close(s);
    s = open_spool(1 << 20, 1 << 16);
    ck_assert_uint_eq(sf_spool_count(s), 5);
    ck_assert_uint_eq(sf_spool_unsent(s), 5);
    ck_assert_uint_eq(peek_expect(s, 10, 1), 5); /* e1..e5: taken ones are re-sent */
    ck_assert_uint_eq(sf_spool_dropped_corrupt(s), 0);
    sf_spool_close(s);
}
END_TEST

/* Small segments: appends roll over to new segment files, replay crosses them in order, and
 * segments wholly consumed are removed. */
START_TEST(test_segments_roll_and_are_removed)
{
    sf_spool *s = open_spool(1 << 20, 4096);
    for (int k = 0; k < 200; k += 10)
        ck_assert_int_eq(append_range(s, k, 10), 0);
    size_t segs = count_segments();
    ck_assert_uint_gt(segs, 1);
    int next = 0;
    while (sf_spool_unsent(s)) {
        size_t n = peek_expect(s, 33, next);
        ck_assert_uint_gt(n, 0);
        ck_assert_int_eq(sf_spool_take(s, n), 0);
        ck_assert_int_eq(sf_spool_consume(s, n), 0);
        next += (int)n;
    }
    ck_assert_int_eq(next, 200);
    ck_assert_uint_le(count_segments(), 1); /* at most the one being written */
    sf_spool_close(s);
    s = open_spool(1 << 20, 4096);
    ck_assert_uint_eq(sf_spool_count(s), 0);
    sf_spool_close(s);
}
END_TEST

/* The bound: an append that would pass max_size fails as a whole with -ENOSPC. */
START_TEST(test_max_size_all_or_nothing)
{
    sf_spool *s = open_spool(4096, 4096);
    int k = 0;
    int rc;
    while ((rc = append_range(s, k, 5)) == 0)
        k += 5;
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_uint_eq(sf_spool_count(s), (uint64_t)k);
    ck_assert_uint_le(sf_spool_bytes(s), 4096);
    ck_assert_uint_eq(peek_expect(s, 1000, 0), (size_t)k);
    sf_spool_close(s);
    /* and after a restart the same records are there, nothing half-written */
    s = open_spool(4096, 4096);
    ck_assert_uint_eq(sf_spool_count(s), (uint64_t)k);
    sf_spool_close(s);
}
END_TEST

static char *last_segment(char *buf, size_t len)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char best[256] = "";
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".seg") && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    ck_assert(best[0]);
    snprintf(buf, len, "%s/%s", dir, best);
    return buf;
}

/* Flips one byte inside the record text rec ("R<k>") in the last segment: its checksum no
 * longer matches, its framing is intact. */
static void corrupt_record(const char *rec)
{
    char seg[640];
    last_segment(seg, sizeof seg);
    FILE *f = fopen(seg, "r+b");
    ck_assert_ptr_nonnull(f);
    char data[4096];
    size_t n = fread(data, 1, sizeof data, f);
    char *p = memmem(data, n, rec, strlen(rec));
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fseek(f, p - data + 1, SEEK_SET), 0);
    fputc('X', f);
    fclose(f);
}

/* A crash mid-append leaves a torn tail: it is cut off at open (those events were never
 * acknowledged, so the API is read again) and the spool goes on appending after it. */
START_TEST(test_torn_tail_cut)
{
    sf_spool *s = open_spool(1 << 20, 1 << 16);
    ck_assert_int_eq(append_range(s, 0, 3), 0);
    sf_spool_close(s);
    char seg[640];
    last_segment(seg, sizeof seg);
    struct stat st;
    ck_assert_int_eq(stat(seg, &st), 0);
    ck_assert_int_eq(truncate(seg, st.st_size - 3), 0); /* e2 torn */
    s = open_spool(1 << 20, 1 << 16);
    ck_assert_uint_eq(sf_spool_count(s), 2);
    ck_assert_uint_eq(peek_expect(s, 10, 0), 2);
    ck_assert_int_eq(append_range(s, 2, 2), 0); /* appends after the cut: e2 e3 */
    ck_assert_uint_eq(peek_expect(s, 10, 0), 4);
    sf_spool_close(s);
    s = open_spool(1 << 20, 1 << 16);
    ck_assert_uint_eq(peek_expect(s, 10, 0), 4);
    ck_assert_uint_eq(sf_spool_dropped_corrupt(s), 0);
    sf_spool_close(s);
}
END_TEST

/* A corrupt record inside a segment (its CRC no longer matches) is reported, counted, and the
 * rest of that segment skipped; the records before it are kept. */
START_TEST(test_corrupt_record_skipped)
{
    sf_spool *s = open_spool(1 << 20, 1 << 16);
    ck_assert_int_eq(append_range(s, 0, 4), 0);
    sf_spool_close(s);
    corrupt_record("R1");
    s = open_spool(1 << 20, 1 << 16);
    ck_assert_uint_eq(sf_spool_dropped_corrupt(s), 1);
    ck_assert_uint_eq(sf_spool_count(s), 3);
    sf_spool_item *it = NULL;
    size_t k = 0;
    ck_assert_int_eq(sf_spool_peek(s, 10, &it, &k), 0);
    ck_assert_uint_eq(k, 3); /* e0, e2, e3: only the corrupt record is lost */
    ck_assert_str_eq(it[0].ev.id, "e0");
    ck_assert_str_eq(it[1].ev.id, "e2");
    ck_assert_str_eq(it[2].ev.id, "e3");
    sf_spool_items_free(it, k);
    ck_assert_int_eq(sf_spool_take(s, 3), 0);
    ck_assert_int_eq(sf_spool_consume(s, 3), 0);
    ck_assert_uint_eq(sf_spool_count(s), 0);
    ck_assert_uint_eq(sf_spool_bytes(s), 0); /* the corrupt record's bytes went with them */
    sf_spool_close(s);
}
END_TEST

/* The same corruption in the last record of the file is indistinguishable from a torn append:
 * it is cut off as a torn tail. */
START_TEST(test_corrupt_last_record_is_a_torn_tail)
{
    sf_spool *s = open_spool(1 << 20, 1 << 16);
    ck_assert_int_eq(append_range(s, 0, 3), 0);
    sf_spool_close(s);
    corrupt_record("R2");
    s = open_spool(1 << 20, 1 << 16);
    ck_assert_uint_eq(peek_expect(s, 10, 0), 2);
    ck_assert_uint_eq(sf_spool_dropped_corrupt(s), 0);
    sf_spool_close(s);
}
END_TEST

/* A record that goes bad while the spool is open is stepped over at replay and counted. */
START_TEST(test_corruption_found_at_replay)
{
    sf_spool *s = open_spool(1 << 20, 1 << 16);
    ck_assert_int_eq(append_range(s, 0, 4), 0);
    corrupt_record("R1");
    sf_spool_item *it = NULL;
    size_t k = 0;
    ck_assert_int_eq(sf_spool_peek(s, 10, &it, &k), 0);
    ck_assert_uint_eq(k, 3);
    ck_assert_str_eq(it[1].ev.id, "e2");
    sf_spool_items_free(it, k);
    ck_assert_uint_eq(sf_spool_dropped_corrupt(s), 1);
    ck_assert_uint_eq(sf_spool_count(s), 3);
    ck_assert_int_eq(sf_spool_peek(s, 10, &it, &k), 0); /* counted once */
    ck_assert_uint_eq(k, 3);
    sf_spool_items_free(it, k);
    ck_assert_uint_eq(sf_spool_dropped_corrupt(s), 1);
    ck_assert_int_eq(sf_spool_take(s, 3), 0);
    ck_assert_int_eq(sf_spool_consume(s, 3), 0);
    ck_assert_uint_eq(sf_spool_unsent(s), 0);
    sf_spool_close(s);
}
END_TEST

/* The head file names the first record not consumed and is replaced atomically (no temp file
 * left behind). */
START_TEST(test_head_file)
{
    sf_spool *s = open_spool(1 << 20, 1 << 16);
    ck_assert_int_eq(append_range(s, 0, 3), 0);
    ck_assert_uint_eq(peek_expect(s, 2, 0), 2);
    ck_assert_int_eq(sf_spool_take(s, 2), 0);
    ck_assert_int_eq(sf_spool_consume(s, 2), 0);
    char path[640], text[128] = "";
    snprintf(path, sizeof path, "%s/head", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(text, sizeof text, f));
    fclose(f);
    unsigned long long seq, off;
    ck_assert_int_eq(sscanf(text, "%llu %llu", &seq, &off), 2);
    ck_assert_uint_gt(off, 0);
    snprintf(path, sizeof path, "%s/head.tmp", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    sf_spool_close(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_order_take_consume);
    tcase_add_test(tc, test_restart_replays_unconsumed);
    tcase_add_test(tc, test_segments_roll_and_are_removed);
    tcase_add_test(tc, test_max_size_all_or_nothing);
    tcase_add_test(tc, test_torn_tail_cut);
    tcase_add_test(tc, test_corrupt_record_skipped);
    tcase_add_test(tc, test_corrupt_last_record_is_a_torn_tail);
    tcase_add_test(tc, test_corruption_found_at_replay);
    tcase_add_test(tc, test_head_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
