/* Linux: /proc/self/stat fields, madvise, and the checks on what runs the
 * process (valgrind's malloc, a checked read of memory that may be gone). */
#include <sys/mman.h>

#include "os_text.h"

static size_t last_close_paren(const char *buf, size_t len, int *found) {
    for (size_t i = len; i > 0; i--) {
        if (buf[i - 1] == ')') {
            *found = 1;
            return i - 1;
        }
    }
    *found = 0;
    return 0;
}

int zm__parse_stat_field(const char *buf, size_t len, int i, long long *res) {
    int found;
    if (!buf || !res || i < 1)
        return 0;
    if (i == 1)
        return parse_ll(buf, token_end(buf, len, 0), res);
    /* comm (field 2) may hold spaces and ')', so fields are counted from
     * the last ')'. comm itself is not a number. */
    size_t pos = last_close_paren(buf, len, &found) + 1;
    if (!found || i == 2)
        return 0;
    for (int f = 3;; f++) {
        if (pos >= len || buf[pos] != ' ')
            return 0;
        size_t end = token_end(buf, len, ++pos);
        if (f == i)
            return parse_ll(buf + pos, end - pos, res);
        if (end >= len || buf[end] == '\n')
            return 0;
        pos = end;
    }
}

int zm__os_proc_stat_ll(int i, long long *res) {
    char buf[2048];
    long long v;
    if (i < 1 || !res) {
        errno = EINVAL;
        return 0;
    }
    ssize_t n = read_file("/proc/self/stat", buf, sizeof buf);
    if (n < 0)
        return 0;
    if (!zm__parse_stat_field(buf, trim_to_last(buf, (size_t)n, sizeof buf, ' '), i, &v)) {
        errno = EINVAL;
        return 0;
    }
    *res = v;
    return 1;
}

/* ------------------------------------------------------------------------
 * madvise
 * ---------------------------------------------------------------------- */

void zm__os_dontneed(void *p, size_t size) {
    uintptr_t page = page_size(), a = (uintptr_t)p;
    if (a > UINTPTR_MAX - (page - 1))
        return;
    if (size > UINTPTR_MAX - a)
        size = UINTPTR_MAX - a;
    uintptr_t start = (a + page - 1) & ~(page - 1);
    uintptr_t end = (a + size) & ~(page - 1);
    if (end <= start)
        return;
    int saved = errno; /* advice only: a failure changes nothing */
    madvise((void *)start, end - start, MADV_DONTNEED);
    errno = saved;
}

int zm__os_valgrind_replaces_malloc(void) {
    const char *s = getenv("LD_PRELOAD");
    while (s && (s = strstr(s, "vgpreload_")) != NULL) {
        s += sizeof "vgpreload_" - 1;
        if (strncmp(s, "core", 4) != 0) return 1;
    }
    return 0;
}

int zm__os_read_checked(const void *addr, void *buf, size_t len) {
    int fd[2];
    int saved = errno;
    if (pipe2(fd, O_CLOEXEC) != 0) {
        errno = saved;
        return 0;
    }
    int ok = write(fd[1], addr, len) == (ssize_t)len && read(fd[0], buf, len) == (ssize_t)len;
    close(fd[0]);
    close(fd[1]);
    errno = saved;
    return ok;
}
