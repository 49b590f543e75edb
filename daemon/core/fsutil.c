#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

int sf_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

int sf_append_durable(int fd, const void *buf, size_t len, uint64_t size_before)
{
    const char *p = buf;
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        done += (size_t)w;
    }
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    if (rc && ftruncate(fd, (off_t)size_before) != 0)
        rc = -EIO; /* and the file may now hold a torn record: readers check */
    return rc;
}
