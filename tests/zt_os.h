/* What the OS-layer tests share (test_os*.c): the figures' tolerances and
 * helpers that read /proc the plain way, to check zmalloc's readers against
 * figures taken independently. Parser inputs are copied into heap blocks of
 * their exact length, without a NUL (exact_copy), so that ASan and valgrind
 * catch any read past len. */
#ifndef ZT_OS_H
#define ZT_OS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os.h"
#include "zm_test.h"

#define MIB ((size_t)1 << 20)
#define TOUCH_BYTES (64 * MIB)
/* RSS counters are per-CPU and batched in the kernel, and the test harness
 * itself moves a little memory: figures taken apart agree this closely. */
#define RSS_SLACK (4 * MIB)

static inline size_t page(void) {
    return (size_t)sysconf(_SC_PAGESIZE);
}

static inline char *exact_copy(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static inline size_t absdiff(size_t a, size_t b) {
    return a > b ? a - b : b - a;
}

/* A fresh anonymous mapping with every page written, so it is resident.
 * NULL on failure: fork children must not use cmocka's asserts. */
static inline char *map_touched(size_t bytes) {
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    for (size_t off = 0; off < bytes; off += page())
        p[off] = 1;
    return p;
}

static inline size_t status_vmrss(void) {
    char line[256];
    size_t kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
            break;
    fclose(f);
    assert_true(kb > 0);
    return kb * 1024;
}

/* A descriptor open on /proc/<pid>/statm, found through /proc/self/fd; -1
 * if none. zm__os_rss keeps one for this process. */
static inline int find_statm_fd_of(pid_t pid) {
    char want[64], link[256], path[300];
    int found = -1;
    snprintf(want, sizeof want, "/proc/%ld/statm", (long)pid);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strcmp(link, want) == 0)
            found = atoi(e->d_name);
    }
    closedir(d);
    return found;
}

static inline int find_statm_fd(void) {
    return find_statm_fd_of(getpid());
}

/* A child's verdict travels back as its exit status. */
static inline int wait_child(pid_t pid) {
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}


#endif
