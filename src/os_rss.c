/* Linux: the resident set size from /proc/self/statm, through a descriptor
 * kept open (and reopened in a forked child, whose /proc/self differs). */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "os_text.h"

int zm__parse_statm_resident(const char *buf, size_t len, unsigned long long *pages) {
    unsigned long long size, resident;
    if (!buf || !pages)
        return 0;
    size_t end1 = token_end(buf, len, 0);
    if (!parse_ull(buf, end1, &size) || end1 >= len || buf[end1] != ' ')
        return 0;
    size_t end2 = token_end(buf, len, end1 + 1);
    if (!parse_ull(buf + end1 + 1, end2 - end1 - 1, &resident))
        return 0;
    *pages = resident;
    return 1;
}

/* Opening statm costs ~11us against ~1.5us for a pread on a kept descriptor,
 * and RSS is sampled often (Redis's cron), so the descriptor stays open. */
static atomic_int statm_fd = -1;
/* Identity of statm_fd's file, checked before the fork child closes it: the
 * program may have closed our descriptor and reused the number. */
static atomic_ullong statm_dev, statm_ino;
/* Keeping the descriptor is only safe once the fork handler is in place,
 * which may be later than the first query (another constructor's call). */
static atomic_int statm_keep;

/* /proc/self was resolved at open time, so an inherited descriptor shows the
 * parent's figures; the child must open its own. */
static void statm_forget_in_child(void) {
    int fd = atomic_exchange_explicit(&statm_fd, -1, memory_order_relaxed);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return;
    if ((unsigned long long)st.st_dev == atomic_load_explicit(&statm_dev, memory_order_relaxed) &&
        (unsigned long long)st.st_ino == atomic_load_explicit(&statm_ino, memory_order_relaxed))
        close_quietly(fd);
}

/* pthread_atfork may allocate, so it runs at load time rather than inside a
 * query that could come from an interposed malloc. */
__attribute__((constructor)) static void os_linux_init(void) {
    if (pthread_atfork(NULL, NULL, statm_forget_in_child) == 0)
        atomic_store_explicit(&statm_keep, 1, memory_order_release);
}

static int statm_pread(int fd, unsigned long long *pages) {
    char buf[256];
    ssize_t n;
    /* statm is one short line produced by a single seq_file read. */
    do
        n = pread(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return 0;
    if (!zm__parse_statm_resident(buf, (size_t)n, pages)) {
        errno = EIO;
        return 0;
    }
    return 1;
}

static void statm_remember_identity(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    atomic_store_explicit(&statm_dev, (unsigned long long)st.st_dev, memory_order_relaxed);
    atomic_store_explicit(&statm_ino, (unsigned long long)st.st_ino, memory_order_relaxed);
}

/* Replaces the slot's stale value. The stale descriptor is left open: after
 * a failure we cannot tell whether the number still belongs to us. At worst
 * (two threads recovering at once while the number is reused) one
 * descriptor leaks. Returns the descriptor to read from, or -1 with errno. */
static int statm_install(int stale) {
    int fd = open_ro("/proc/self/statm");
    if (fd < 0)
        return -1;
    int cur = stale;
    while (!atomic_compare_exchange_strong_explicit(&statm_fd, &cur, fd, memory_order_acq_rel,
                                                    memory_order_acquire)) {
        if (cur >= 0) { /* another thread installed one first: use theirs */
            close_quietly(fd);
            return cur;
        }
    }
    /* A fork before this lands only leaks the descriptor in the child. */
    statm_remember_identity(fd);
    return fd;
}

static int statm_pages_uncached(unsigned long long *pages) {
    int fd = open_ro("/proc/self/statm");
    if (fd < 0)
        return 0;
    int ok = statm_pread(fd, pages);
    close_quietly(fd);
    return ok;
}

static int statm_pages(unsigned long long *pages) {
    if (!atomic_load_explicit(&statm_keep, memory_order_acquire))
        return statm_pages_uncached(pages);
    int fd = atomic_load_explicit(&statm_fd, memory_order_acquire);
    if (fd >= 0 && statm_pread(fd, pages))
        return 1;
    /* The program may have closed our descriptor: one fresh try. */
    fd = statm_install(fd);
    return fd >= 0 && statm_pread(fd, pages);
}

size_t zm__os_rss(void) {
    int saved = errno;
    unsigned long long pages;
    if (!statm_pages(&pages))
        return 0;
    errno = saved;
    return sat_mul_size(pages, page_size());
}
