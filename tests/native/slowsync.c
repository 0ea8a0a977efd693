/* LD_PRELOAD shim for the durability tests: every write() to a file opened O_DSYNC (the request
 * log) returns SLOWSYNC_DELAY_US microseconds late, and just before it returns appends
 * "<inode> <file size>\n" to the file SLOWSYNC_MARKS. A record is durable once its mark is there:
 * an answer a client receives before the mark of its record was released too early.
 * SLOWSYNC_FAIL_EVERY=N: every Nth such write fails instead: half of it is written and the short
 * count returned (no mark), and the write after it fails with ENOSPC (a disk that fills mid-record). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static long writes;
static int fail_next;

ssize_t write(int fd, const void *buf, size_t count) {
    if (!real_write)
        real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1 || (flags & O_DSYNC) != O_DSYNC || (flags & O_ACCMODE) == O_RDONLY)
        return real_write(fd, buf, count);
    const char *every = getenv("SLOWSYNC_FAIL_EVERY");
    long n = every ? atol(every) : 0;
    if (fail_next) {
        fail_next = 0;
        errno = ENOSPC;
        return -1;
    }
    if (n > 0 && ++writes % n == 0 && count > 1) {
        fail_next = 1;
        return real_write(fd, buf, count / 2);
    }
    ssize_t done = real_write(fd, buf, count);
    const char *delay = getenv("SLOWSYNC_DELAY_US");
    long us = delay ? atol(delay) : 20000;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    const char *marks = getenv("SLOWSYNC_MARKS");
    if (marks && done > 0) {
        struct stat st;
        if (fstat(fd, &st) == 0) {
            char line[64];
            int len = snprintf(line, sizeof line, "%lu %lld\n", (unsigned long)st.st_ino, (long long)st.st_size);
            int out = open(marks, O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (out >= 0) {
                real_write(out, line, (size_t)len);
                close(out);
            }
        }
    }
    return done;
}
