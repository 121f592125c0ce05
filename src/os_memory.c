/* Linux: physical memory (sysconf) and the memory limit of the process's
 * cgroup (v2's memory.max or v1's memory.limit_in_bytes, walked up from its
 * own group). */

#include "os_text.h"

/* cgroup v1 reports "no limit" as LONG_MAX rounded down to a page; anything
 * this large cannot be a limit someone set on purpose. */
#define ZM_CGROUP_V1_UNLIMITED (1ULL << 62)

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
