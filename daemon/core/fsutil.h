/* fsutil: small durable-file helpers shared by the dead-letter file and the spool. */
#ifndef SF_FSUTIL_H
#define SF_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Appends len bytes to fd (opened O_APPEND) and fsyncs. On any failure the file is cut back
 * to size_before, so a record is either wholly there or not at all. 0 or -errno. */
int sf_append_durable(int fd, const void *buf, size_t len, uint64_t size_before);
struct iovec;
/* Writes all of iov[0..n) to fd (writev, IOV_MAX at a time, partial writes and EINTR resumed;
 * iov is consumed: its entries are advanced). The bytes written so far go to *written
 * (optional). 0 or -errno. */
int sf_writev_all(int fd, struct iovec *iov, size_t n, size_t *written);
/* fsyncs a directory (after creating, renaming or removing entries in it). 0 or -errno. */
int sf_fsync_dir(const char *dir);

#endif
