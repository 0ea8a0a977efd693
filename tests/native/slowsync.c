/* LD_PRELOAD shim for the durability tests: every write() or pwrite() to a file opened O_DSYNC (the
 * request log, or its journal: gateway/audit/journal.py) returns SLOWSYNC_DELAY_US microseconds late,
 * and just before it returns appends "<inode> <bytes durable>\n" to the file SLOWSYNC_MARKS: for the
 * log itself its inode and size, for a journal frame the log file's inode and the end of the batch in
 * it (read from the frame's header). A record is durable once its mark is there: an answer a client
 * receives before the mark of its record was released too early.
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

#include <stdint.h>
#include <string.h>

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static long writes;
static int fail_next;

static int is_dsync(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags != -1 && (flags & O_DSYNC) == O_DSYNC && (flags & O_ACCMODE) != O_RDONLY;
}

static void mark(const char *line, int len) {
    const char *marks = getenv("SLOWSYNC_MARKS");
    if (!marks)
        return;
    int out = open(marks, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (out >= 0) {
        real_write(out, line, (size_t)len);
        close(out);
    }
}

static void delay(void) {
    const char *text = getenv("SLOWSYNC_DELAY_US");
    long us = text ? atol(text) : 20000;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static int should_fail(size_t count) {
    const char *every = getenv("SLOWSYNC_FAIL_EVERY");
    long n = every ? atol(every) : 0;
    return n > 0 && ++writes % n == 0 && count > 1;
}

/* Before a write of count bytes to an O_DSYNC file: 0 to write it all, -1 to fail it (ENOSPC), or the
 * shorter count to write instead (SLOWSYNC_FAIL_EVERY's short write, the ENOSPC following it). */
static ssize_t injected(size_t count) {
    if (fail_next) {
        fail_next = 0;
        errno = ENOSPC;
        return -1;
    }
    if (should_fail(count)) {
        fail_next = 1;
        return (ssize_t)(count / 2);
    }
    return 0;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    if (!real_write)
        real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (!real_pwrite)
        real_pwrite = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    if (!is_dsync(fd))
        return real_pwrite(fd, buf, count, offset);
    ssize_t cut = injected(count);
    if (cut != 0)
        return cut < 0 ? -1 : real_pwrite(fd, buf, (size_t)cut, offset);
    ssize_t done = real_pwrite(fd, buf, count, offset);
    delay();
    /* a journal frame: magic \xffGWJ, generation u32, inode u64, offset u64, length u32, crc u32 */
    if (done == (ssize_t)count && count >= 32 && memcmp(buf, "\xffGWJ", 4) == 0) {
        uint64_t inode, at;
        uint32_t length;
        memcpy(&inode, (const char *)buf + 8, 8);
        memcpy(&at, (const char *)buf + 16, 8);
        memcpy(&length, (const char *)buf + 24, 4);
        char line[64];
        int len = snprintf(line, sizeof line, "%llu %llu\n", (unsigned long long)inode,
                           (unsigned long long)(at + length));
        mark(line, len);
    }
    return done;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    return pwrite(fd, buf, count, offset);
}

ssize_t write(int fd, const void *buf, size_t count) {
    if (!real_write)
        real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (!is_dsync(fd))
        return real_write(fd, buf, count);
    ssize_t cut = injected(count);
    if (cut != 0)
        return cut < 0 ? -1 : real_write(fd, buf, (size_t)cut);
    ssize_t done = real_write(fd, buf, count);
    delay();
    struct stat st;
    if (done > 0 && fstat(fd, &st) == 0) {
        char line[64];
        int len = snprintf(line, sizeof line, "%lu %lld\n", (unsigned long)st.st_ino, (long long)st.st_size);
        mark(line, len);
    }
    return done;
}
