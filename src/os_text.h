/* The number parsers and descriptor helpers every /proc and sysfs reader of
 * the OS layer shares (os_rss.c, os_smaps.c, os_memory.c, os_linux.c). They
 * read into the caller's fixed buffer through a raw descriptor: the callers
 * may be inside an interposed malloc, so a heap allocation or a stdio FILE
 * could recurse. Header-only: each reader keeps the few it uses. */
#ifndef ZM_OS_TEXT_H
#define ZM_OS_TEXT_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "os.h"

static inline int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* The whole token must be digits; 0 on an empty token or overflow. */
static inline int parse_ull(const char *s, size_t n, unsigned long long *out) {
    unsigned long long v = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        if (__builtin_mul_overflow(v, 10ULL, &v) || __builtin_add_overflow(v, (unsigned)(s[i] - '0'), &v))
            return 0;
    }
    *out = v;
    return 1;
}

/* As parse_ull with an optional '-'; LLONG_MIN is reachable. */
static inline int parse_ll(const char *s, size_t n, long long *out) {
    int neg = n > 0 && s[0] == '-';
    unsigned long long mag;
    if (!parse_ull(s + neg, n - (size_t)neg, &mag))
        return 0;
    if (mag > (unsigned long long)LLONG_MAX + (unsigned long long)neg)
        return 0;
    /* Negating through unsigned keeps LLONG_MIN free of signed overflow. */
    *out = neg ? (long long)(0ULL - mag) : (long long)mag;
    return 1;
}

/* proc(5) files separate fields with one space and end the line with '\n';
 * a buffer may also simply stop. */
static inline size_t token_end(const char *buf, size_t len, size_t pos) {
    while (pos < len && buf[pos] != ' ' && buf[pos] != '\n')
        pos++;
    return pos;
}

static inline unsigned long long sat_add(unsigned long long a, unsigned long long b) {
    unsigned long long r;
    return __builtin_add_overflow(a, b, &r) ? ULLONG_MAX : r;
}

static inline size_t sat_mul_size(unsigned long long a, unsigned long long b) {
    size_t r;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

static inline int open_ro(const char *path) {
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* Linux releases the descriptor even when close fails, so a retry could close
 * a descriptor another thread just got; the result says nothing useful for a
 * read-only file, and a caller reporting an earlier failure keeps its errno. */
static inline void close_quietly(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

static inline ssize_t read_retry(int fd, char *buf, size_t cap) {
    ssize_t n;
    do
        n = read(fd, buf, cap);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Reads until EOF or a full buffer: proc files may come in several reads. */
static inline ssize_t read_all(int fd, char *buf, size_t cap) {
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read_retry(fd, buf + got, cap - got);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static inline ssize_t read_file(const char *path, char *buf, size_t cap) {
    int fd = open_ro(path);
    if (fd < 0)
        return -1;
    ssize_t n = read_all(fd, buf, cap);
    close_quietly(fd);
    return n;
}

/* A full buffer may end inside a record; drop back to the last separator so
 * that a cut number is never read as a whole one. */
static inline size_t trim_to_last(const char *buf, size_t n, size_t cap, char sep) {
    if (n < cap)
        return n;
    while (n > 0 && buf[n - 1] != sep)
        n--;
    return n > 0 ? n - 1 : 0;
}

static inline size_t page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

#endif
