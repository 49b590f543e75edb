/* LD_PRELOAD shim for the durability tests: fsync() and fdatasync() fail with EIO on every
 * file whose path contains $SF_FAIL_FSYNC (a substring; unset or empty: nothing fails).
 * Each failure is counted in the file named by $SF_FAIL_FSYNC_LOG (one line per failed call),
 * so a test can tell "the daemon did not fsync" from "its fsync failed and it coped".
 * Slow mode: on files whose path contains $SF_SLOW_FSYNC, every call succeeds after
 * $SF_SLOW_FSYNC_MS milliseconds (a slow disk) and is counted in $SF_FAIL_FSYNC_LOG
 * ("fsync PATH: slow"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fd_path(int fd, char *path, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, len - 1);
    if (n < 0)
        return -1;
    path[n] = '\0';
    return 0;
}

static void log_line(const char *path, const char *what)
{
    const char *log = getenv("SF_FAIL_FSYNC_LOG");
    if (!log || !*log)
        return;
    int lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0)
        return;
    char line[4200];
    int len = snprintf(line, sizeof line, "fsync %s: %s\n", path, what);
    if (len > 0)
        (void)!write(lfd, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1);
    close(lfd);
}

/* slow mode: waits, logs, and lets the real call run */
static void maybe_slow(int fd)
{
    const char *match = getenv("SF_SLOW_FSYNC");
    char path[4096];
    if (!match || !*match || fd_path(fd, path, sizeof path) != 0 || !strstr(path, match))
        return;
    const char *ms = getenv("SF_SLOW_FSYNC_MS");
    long d = ms ? strtol(ms, NULL, 10) : 0;
    if (d > 0) {
        struct timespec ts = {d / 1000, (d % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    log_line(path, "slow");
}

static int should_fail(int fd)
{
    const char *match = getenv("SF_FAIL_FSYNC");
    if (!match || !*match)
        return 0;
    char path[4096];
    if (fd_path(fd, path, sizeof path) != 0 || !strstr(path, match))
        return 0;
    log_line(path, "EIO");
    return 1;
}

int fsync(int fd)
{
    static int (*real)(int);
    if (should_fail(fd)) {
        errno = EIO;
        return -1;
    }
    maybe_slow(fd);
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
    maybe_slow(fd);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
