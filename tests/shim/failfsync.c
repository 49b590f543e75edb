/* LD_PRELOAD shim for the durability tests: fsync() and fdatasync() fail with EIO on every
 * file whose path contains $SF_FAIL_FSYNC (a substring; unset or empty: nothing fails).
 * Each failure is counted in the file named by $SF_FAIL_FSYNC_LOG (one line per failed call),
 * so a test can tell "the daemon did not fsync" from "its fsync failed and it coped". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int should_fail(int fd)
{
    const char *match = getenv("SF_FAIL_FSYNC");
    if (!match || !*match)
        return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = '\0';
    if (!strstr(path, match))
        return 0;
    const char *log = getenv("SF_FAIL_FSYNC_LOG");
    if (log && *log) {
        int lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (lfd >= 0) {
            char line[4200];
            int len = snprintf(line, sizeof line, "fsync %s: EIO\n", path);
            if (len > 0)
                (void)!write(lfd, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
            close(lfd);
        }
    }
    return 1;
}

int fsync(int fd)
{
    static int (*real)(int);
    if (should_fail(fd)) {
        errno = EIO;
        return -1;
    }
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (should_fail(fd)) {
        errno = EIO;
        return -1;
    }
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
