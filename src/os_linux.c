/* Linux implementation of os.h. Everything here reads /proc or sysfs into
 * fixed stack buffers through raw descriptors: the callers may be inside an
 * interposed malloc, so a heap allocation or a stdio FILE could recurse. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "os.h"

/* cgroup v1 reports "no limit" as LONG_MAX rounded down to a page; anything
 * this large cannot be a limit someone set on purpose. */
#define ZM_CGROUP_V1_UNLIMITED (1ULL << 62)

/* ------------------------------------------------------------------------
 * Number and descriptor helpers
 * ---------------------------------------------------------------------- */

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* The whole token must be digits; 0 on an empty token or overflow. */
static int parse_ull(const char *s, size_t n, unsigned long long *out) {
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
static int parse_ll(const char *s, size_t n, long long *out) {
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
static size_t token_end(const char *buf, size_t len, size_t pos) {
    while (pos < len && buf[pos] != ' ' && buf[pos] != '\n')
        pos++;
    return pos;
}

static unsigned long long sat_add(unsigned long long a, unsigned long long b) {
    unsigned long long r;
    return __builtin_add_overflow(a, b, &r) ? ULLONG_MAX : r;
}

static size_t sat_mul_size(unsigned long long a, unsigned long long b) {
    size_t r;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

static int open_ro(const char *path) {
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* Linux releases the descriptor even when close fails, so a retry could close
 * a descriptor another thread just got; the result says nothing useful for a
 * read-only file, and a caller reporting an earlier failure keeps its errno. */
static void close_quietly(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}

static ssize_t read_retry(int fd, char *buf, size_t cap) {
    ssize_t n;
    do
        n = read(fd, buf, cap);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Reads until EOF or a full buffer: proc files may come in several reads. */
static ssize_t read_all(int fd, char *buf, size_t cap) {
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

static ssize_t read_file(const char *path, char *buf, size_t cap) {
    int fd = open_ro(path);
    if (fd < 0)
        return -1;
    ssize_t n = read_all(fd, buf, cap);
    close_quietly(fd);
    return n;
}

/* A full buffer may end inside a record; drop back to the last separator so
 * that a cut number is never read as a whole one. */
static size_t trim_to_last(const char *buf, size_t n, size_t cap, char sep) {
    if (n < cap)
        return n;
    while (n > 0 && buf[n - 1] != sep)
        n--;
    return n > 0 ? n - 1 : 0;
}

static size_t page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* ------------------------------------------------------------------------
 * RSS from /proc/self/statm
 * ---------------------------------------------------------------------- */

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

/* ------------------------------------------------------------------------
 * smaps
 * ---------------------------------------------------------------------- */

void zm__smaps_init(zm__smaps_sum *s, const char *field) {
    memset(s, 0, sizeof *s);
    s->field = field ? field : "";
    size_t n = strnlen(s->field, sizeof s->line);
    if (n > 0 && s->field[n - 1] == ':')
        n--;
    s->field_len = n;
}

static size_t skip_blanks(const char *s, size_t n, size_t pos) {
    while (pos < n && (s[pos] == ' ' || s[pos] == '\t'))
        pos++;
    return pos;
}

/* "<field>:<blanks><digits><blanks>kB": the whole name must match, and the
 * kB unit keeps unitless fields (THPeligible, ProtectionKey) out of a byte
 * count. A number too large saturates. */
static int smaps_line_kb(const zm__smaps_sum *s, const char *line, size_t n, unsigned long long *kb) {
    size_t k = s->field_len;
    if (k == 0 || n <= k || memcmp(line, s->field, k) != 0 || line[k] != ':')
        return 0;
    size_t pos = skip_blanks(line, n, k + 1);
    size_t digits = pos;
    unsigned long long v = 0;
    while (pos < n && is_digit(line[pos])) {
        unsigned d = (unsigned)(line[pos++] - '0');
        v = (v > (ULLONG_MAX - d) / 10) ? ULLONG_MAX : v * 10 + d;
    }
    if (pos == digits)
        return 0;
    pos = skip_blanks(line, n, pos);
    if (n - pos < 2 || line[pos] != 'k' || line[pos + 1] != 'B')
        return 0;
    if (skip_blanks(line, n, pos + 2) != n)
        return 0;
    *kb = v;
    return 1;
}

static void smaps_append(zm__smaps_sum *s, const char *buf, size_t n) {
    if (s->line_overflow)
        return;
    if (n > sizeof s->line - s->line_len) {
        s->line_overflow = 1; /* mapping headers with long paths: never a field */
        return;
    }
    memcpy(s->line + s->line_len, buf, n);
    s->line_len += n;
}

static void smaps_end_line(zm__smaps_sum *s) {
    unsigned long long kb;
    if (!s->line_overflow && smaps_line_kb(s, s->line, s->line_len, &kb)) {
        s->kb = sat_add(s->kb, kb);
        s->found = 1;
    }
    s->line_len = 0;
    s->line_overflow = 0;
}

void zm__smaps_feed(zm__smaps_sum *s, const char *buf, size_t len) {
    if (!s || !buf)
        return;
    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t take = nl ? (size_t)(nl - buf) : len;
        smaps_append(s, buf, take);
        if (!nl)
            return;
        smaps_end_line(s);
        buf += take + 1;
        len -= take + 1;
    }
}

size_t zm__smaps_result(const zm__smaps_sum *s, int *found) {
    unsigned long long kb = s->kb, tail;
    int any = s->found;
    /* A last line without '\n' still counts. */
    if (!s->line_overflow && smaps_line_kb(s, s->line, s->line_len, &tail)) {
        kb = sat_add(kb, tail);
        any = 1;
    }
    if (found)
        *found = any;
    return sat_mul_size(kb, 1024);
}

/* Shortest line that can match: name, ':', one digit and "kB". */
static int smaps_field_fits(const zm__smaps_sum *s) {
    return s->field_len > 0 && s->field_len + 4 <= sizeof s->line;
}

/* Writes "/proc/<pid>/<leaf>" (or /proc/self/ for -1) into out. */
static void proc_path(char *out, long pid, const char *leaf) {
    char digits[24];
    size_t nd = 0;
    char *p = out;
    memcpy(p, "/proc/", 6);
    p += 6;
    if (pid < 0) {
        memcpy(p, "self", 4);
        p += 4;
    } else {
        unsigned long v = (unsigned long)pid;
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        while (nd > 0)
            *p++ = digits[--nd];
    }
    *p++ = '/';
    size_t ll = strlen(leaf);
    memcpy(p, leaf, ll + 1);
}

static int smaps_read(int fd, zm__smaps_sum *s) {
    char buf[4096];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);
        if (n < 0)
            return 0;
        if (n == 0)
            return 1;
        zm__smaps_feed(s, buf, (size_t)n);
    }
}

/* The sum of a "Name:  N kB" field over the lines of /proc/<pid>/<leaf>. */
static size_t kb_field_bytes(const char *field, long pid, const char *leaf) {
    zm__smaps_sum s;
    char path[48];
    int found, saved = errno;
    if (!field || pid < -1) {
        errno = EINVAL;
        return 0;
    }
    zm__smaps_init(&s, field);
    if (!smaps_field_fits(&s)) {
        errno = EINVAL;
        return 0;
    }
    proc_path(path, pid, leaf);
    int fd = open_ro(path);
    if (fd < 0) {
        if (errno == ENOENT)
            errno = ESRCH;
        else if (errno == EPERM)
            errno = EACCES;
        return 0;
    }
    int ok = smaps_read(fd, &s);
    close_quietly(fd);
    if (!ok)
        return 0;
    size_t bytes = zm__smaps_result(&s, &found);
    errno = found ? saved : ENOENT;
    return bytes;
}

size_t zm__os_smap_bytes(const char *field, long pid) { return kb_field_bytes(field, pid, "smaps"); }

size_t zm__os_status_bytes(const char *field) { return kb_field_bytes(field, -1, "status"); }

/* ------------------------------------------------------------------------
 * Physical memory and cgroup limits
 * ---------------------------------------------------------------------- */

/* sysconf leaves errno alone for an indeterminate value; never report a
 * failure with errno 0. */
static size_t sysconf_positive(int name) {
    int saved = errno;
    errno = 0;
    long v = sysconf(name);
    if (v <= 0) {
        if (errno == 0)
            errno = ENOSYS;
        return 0;
    }
    errno = saved;
    return (size_t)v;
}

size_t zm__os_memory_size(void) {
    size_t pages = sysconf_positive(_SC_PHYS_PAGES);
    if (pages == 0)
        return 0;
    size_t psize = sysconf_positive(_SC_PAGESIZE);
    if (psize == 0)
        return 0;
    return sat_mul_size(pages, psize);
}

enum cgroup_kind { CGROUP_V2, CGROUP_V1 };

/* The value in a memory.max / memory.limit_in_bytes file; 0 for none. A
 * limit of 0 would stop the process from running at all, so 0 never hides a
 * real limit. */
static size_t cgroup_read_limit(const char *path, enum cgroup_kind kind) {
    char buf[32];
    unsigned long long v;
    ssize_t n = read_file(path, buf, sizeof buf);
    if (n <= 0)
        return 0;
    size_t len = (size_t)n;
    if (buf[len - 1] == '\n')
        len--;
    if (!parse_ull(buf, len, &v)) /* "max", garbage or overflow */
        return 0;
    if (kind == CGROUP_V1 && v >= ZM_CGROUP_V1_UNLIMITED)
        return 0;
    return v > SIZE_MAX ? SIZE_MAX : (size_t)v;
}

static size_t min_limit(size_t a, size_t b) {
    if (a == 0)
        return b;
    return (b != 0 && b < a) ? b : a;
}

/* <root><dir>/<leaf>; 0 when it does not fit, which skips that level. */
static int cgroup_build_path(char *out, const char *root, const char *dir, size_t dlen,
                             const char *leaf) {
    size_t rlen = strlen(root), llen = strlen(leaf);
    if (rlen > PATH_MAX - 1 || dlen > PATH_MAX - 1 - rlen || llen + 2 > PATH_MAX - rlen - dlen)
        return 0;
    memcpy(out, root, rlen);
    memcpy(out + rlen, dir, dlen);
    out[rlen + dlen] = '/';
    memcpy(out + rlen + dlen + 1, leaf, llen + 1);
    return 1;
}

/* A ".." component would let a forged cgroup path leave the mount point. */
static int path_has_dotdot(const char *p, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '.' && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') && (i + 2 == n || p[i + 2] == '/'))
            return 1;
    return 0;
}

static size_t strip_trailing_slashes(const char *p, size_t n) {
    while (n > 0 && p[n - 1] == '/')
        n--;
    return n;
}

/* Limits on the way up apply too (a child cannot exceed its parent), so the
 * smallest one from the cgroup up to the mount point wins. */
static size_t cgroup_walk(const char *root, const char *dir, size_t dlen, enum cgroup_kind kind) {
    const char *leaf = kind == CGROUP_V2 ? "memory.max" : "memory.limit_in_bytes";
    char path[PATH_MAX];
    size_t best = 0;
    if (dlen == 0 || dir[0] != '/' || memchr(dir, '\0', dlen) || path_has_dotdot(dir, dlen))
        return 0;
    dlen = strip_trailing_slashes(dir, dlen);
    for (;;) {
        if (cgroup_build_path(path, root, dir, dlen, leaf))
            best = min_limit(best, cgroup_read_limit(path, kind));
        if (dlen == 0)
            return best;
        while (dlen > 0 && dir[dlen - 1] != '/')
            dlen--;
        dlen = strip_trailing_slashes(dir, dlen);
    }
}

/* Whether the comma-separated list names the memory controller. */
static int controllers_have_memory(const char *c, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || c[i] == ',') {
            if (i - start == 6 && memcmp(c + start, "memory", 6) == 0)
                return 1;
            start = i + 1;
        }
    }
    return 0;
}

/* One "hierarchy-id:controllers:path" line: the path's limit when the line is
 * the one kind looks for, else 0. */
static size_t cgroup_line_limit(const char *line, size_t n, const char *root, enum cgroup_kind kind) {
    const char *c1 = memchr(line, ':', n);
    if (!c1)
        return 0;
    const char *ctl = c1 + 1;
    const char *c2 = memchr(ctl, ':', n - (size_t)(ctl - line));
    if (!c2)
        return 0;
    size_t id_len = (size_t)(c1 - line), ctl_len = (size_t)(c2 - ctl);
    const char *dir = c2 + 1;
    size_t dlen = n - (size_t)(dir - line);
    int wanted = kind == CGROUP_V2 ? (id_len == 1 && line[0] == '0' && ctl_len == 0)
                                   : controllers_have_memory(ctl, ctl_len);
    return wanted ? cgroup_walk(root, dir, dlen, kind) : 0;
}

static size_t cgroup_scan(const char *text, size_t len, const char *root, enum cgroup_kind kind) {
    size_t best = 0;
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        best = min_limit(best, cgroup_line_limit(text, n, root, kind));
        if (!nl)
            break;
        text += n + 1;
        len -= n + 1;
    }
    return best;
}

size_t zm__cgroup_limit(const char *proc_cgroup, size_t len, const char *v2_root,
                        const char *v1_memory_root) {
    size_t limit = 0;
    if (!proc_cgroup)
        return 0;
    if (v2_root)
        limit = cgroup_scan(proc_cgroup, len, v2_root, CGROUP_V2);
    if (limit == 0 && v1_memory_root)
        limit = cgroup_scan(proc_cgroup, len, v1_memory_root, CGROUP_V1);
    return limit;
}

size_t zm__os_memory_limit(void) {
    char buf[4096];
    size_t mem = zm__os_memory_size();
    if (mem == 0)
        return 0;
    int saved = errno; /* missing cgroup files are the normal case */
    ssize_t n = read_file("/proc/self/cgroup", buf, sizeof buf);
    size_t limit = 0;
    if (n > 0)
        limit = zm__cgroup_limit(buf, trim_to_last(buf, (size_t)n, sizeof buf, '\n'), "/sys/fs/cgroup",
                                 "/sys/fs/cgroup/memory");
    errno = saved;
    return (limit == 0 || limit > mem) ? mem : limit;
}

/* ------------------------------------------------------------------------
 * /proc/self/stat
 * ---------------------------------------------------------------------- */

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
