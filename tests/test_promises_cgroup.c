/* zm_get_memory_limit()'s promise (test_promises.c says how each is
 * checked): the cgroup files this process really has, and made-up trees. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zm_test.h"

/* ---- zm_get_memory_limit: the cgroup files this process really has ------ */

/* The number in a memory.max / memory.limit_in_bytes file; 0 for "max", a
 * missing or unreadable file, or anything else that is not a number. */
static unsigned long long cgroup_file_limit(const char *path) {
    char line[64];
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    if (!got) return 0;
    line[strcspn(line, "\n")] = '\0';
    if (line[0] < '0' || line[0] > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(line, &end, 10);
    return *end || errno ? 0 : v;
}

/* The smallest limit in leaf files from <root><path> up to <root> itself. */
static unsigned long long cgroup_walk_up(const char *root, const char *path, const char *leaf) {
    char dir[PATH_MAX], file[PATH_MAX + 64];
    unsigned long long best = 0;
    snprintf(dir, sizeof dir, "%s", path);
    for (;;) {
        size_t n = strlen(dir);
        while (n > 0 && dir[n - 1] == '/') dir[--n] = '\0';
        snprintf(file, sizeof file, "%s%s/%s", root, dir, leaf);
        unsigned long long v = cgroup_file_limit(file);
        if (v && (!best || v < best)) best = v;
        if (n == 0) return best;
        char *slash = strrchr(dir, '/');
        if (!slash) return best;
        *slash = '\0';
    }
}

static int has_dotdot(const char *path) {
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/')) return 1;
    return 0;
}

/* The library's promise: the smallest cgroup limit on this process's path
 * (cgroup v2, else v1), or the machine's memory when there is none or it is
 * larger. Computed here from the files themselves; *v2 and *v1 get the
 * limits found (0: none), *v2_path and *v1_path this process's cgroups
 * ("" when it has none of that kind). */
/* The machine's memory: pages * page size, saturated at SIZE_MAX (a 32-bit
 * process on a machine with more than 4 GiB). */
static unsigned long long machine_memory(void) {
    unsigned long long bytes = (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE);
    return bytes > SIZE_MAX ? SIZE_MAX : bytes;
}

static unsigned long long expected_memory_limit(unsigned long long *v2_out, unsigned long long *v1_out,
                                                char *v2_path, char *v1_path, size_t cap) {
    unsigned long long mem = machine_memory();
    unsigned long long v2 = 0, v1 = 0;
    v2_path[0] = v1_path[0] = '\0';
    FILE *f = fopen("/proc/self/cgroup", "r");
    assert_non_null(f);
    char line[PATH_MAX + 128];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c1 = *c2 = '\0';
        const char *id = line, *controllers = c1 + 1, *path = c2 + 1;
        /* A path outside this cgroup namespace shows a ".." component and
         * names nothing under the mount. */
        if (path[0] != '/' || has_dotdot(path)) continue;
        if (strcmp(id, "0") == 0 && controllers[0] == '\0') {
            snprintf(v2_path, cap, "%s", path);
            unsigned long long v = cgroup_walk_up("/sys/fs/cgroup", path, "memory.max");
            if (v && (!v2 || v < v2)) v2 = v;
        }
        char list[256];
        snprintf(list, sizeof list, ",%s,", controllers);
        if (strstr(list, ",memory,")) {
            snprintf(v1_path, cap, "%s", path);
            unsigned long long v = cgroup_walk_up("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes");
            if (v && (!v1 || v < v1)) v1 = v;
        }
    }
    fclose(f);
    *v2_out = v2;
    *v1_out = v1;
    /* cgroup v2 first, v1 only when v2 sets nothing; v1's "no limit" is a
     * huge number, which the machine's size caps anyway. */
    unsigned long long limit = v2 ? v2 : v1;
    return limit && limit < mem ? limit : mem;
}

static void test_memory_limit_is_cgroup_limit(void **state) {
    (void)state;
    unsigned long long v2, v1, mem = (unsigned long long)zm_get_memory_size();
    char p2[PATH_MAX], p1[PATH_MAX];
    unsigned long long expect = expected_memory_limit(&v2, &v1, p2, p1, sizeof p2);
    printf("cgroup v2 %s limit %llu, v1 %s limit %llu, physical memory %llu: expecting %llu\n", p2, v2, p1, v1,
           mem, expect);
    assert_int_equal(mem, machine_memory());
    errno = 0;
    assert_int_equal(zm_get_memory_limit(), expect);
    assert_int_equal(errno, 0);
}

/* The same against cgroup trees made up here: in a private mount namespace
 * (a fork child), a tmpfs over /sys/fs/cgroup holds files with chosen limits
 * along this process's real cgroup paths. */
static int put_file(const char *root, const char *dir, const char *leaf, const char *text) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s%s", root, dir);
    for (char *p = path + 1; *p; p++) { /* mkdir -p */
        if (*p != '/') continue;
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s%s/%s", root, strcmp(dir, "/") ? dir : "", leaf);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

#define MIB (1024ULL * 1024)

static int check_limit(unsigned long long want, int code) {
    unsigned long long v2, v1;
    char p2[PATH_MAX], p1[PATH_MAX];
    unsigned long long independent = expected_memory_limit(&v2, &v1, p2, p1, sizeof p2);
    size_t got = zm_get_memory_limit();
    if (independent == want && got == want) return 0;
    fprintf(stderr, "made-up tree %d: zm_get_memory_limit %zu, computed here %llu, written %llu\n", code, got,
            independent, want);
    return code;
}

static int made_up_trees(void *arg) {
    (void)arg;
    if (unshare(CLONE_NEWNS) != 0) return 77;
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return 77;
    if (mount("zm-test", "/sys/fs/cgroup", "tmpfs", 0, NULL) != 0) return 77;
    unsigned long long v2, v1, mem = (unsigned long long)zm_get_memory_size();
    char p2[PATH_MAX], p1[PATH_MAX], text[64];
    if (check_limit(mem, 1)) return 1; /* no files at all: the machine's memory */
    expected_memory_limit(&v2, &v1, p2, p1, sizeof p2);
    const char *r2 = "/sys/fs/cgroup", *r1 = "/sys/fs/cgroup/memory";
    int rc;
    if (p1[0]) { /* cgroup v1: the smaller of the leaf's and the root's limit */
        if (!put_file(r1, "/", "memory.limit_in_bytes", "262144000\n")) return 10;
        if (strcmp(p1, "/") != 0 && !put_file(r1, p1, "memory.limit_in_bytes", "209715200\n")) return 11;
        if ((rc = check_limit(strcmp(p1, "/") ? 200 * MIB : 250 * MIB, 12))) return rc;
        /* v1's "no limit" */
        if (!put_file(r1, "/", "memory.limit_in_bytes", "9223372036854771712\n")) return 13;
        if (strcmp(p1, "/") != 0 && !put_file(r1, p1, "memory.limit_in_bytes", "9223372036854771712\n"))
            return 14;
        if ((rc = check_limit(mem, 15))) return rc;
        if (!put_file(r1, "/", "memory.limit_in_bytes", "209715200\n")) return 16;
    }
    if (p2[0]) { /* cgroup v2: "max" at the leaf, a number at the root... */
        if (strcmp(p2, "/") != 0 && !put_file(r2, p2, "memory.max", "max\n")) return 20;
        if (!put_file(r2, "/", "memory.max", "419430400\n")) return 21;
        /* ...which wins over any v1 limit, even a smaller one */
        if ((rc = check_limit(400 * MIB, 22))) return rc;
        /* a limit above the machine's memory */
        snprintf(text, sizeof text, "%llu\n", mem * 2);
        if (!put_file(r2, "/", "memory.max", text)) return 23;
        if ((rc = check_limit(mem, 24))) return rc;
        /* "max" everywhere: v1 decides again */
        if (!put_file(r2, "/", "memory.max", "max\n")) return 25;
        if ((rc = check_limit(p1[0] ? 200 * MIB : mem, 26))) return rc;
    }
    return 0;
}

static void test_memory_limit_in_made_up_cgroup_trees(void **state) {
    (void)state;
    int rc = zt_fork_run(made_up_trees, NULL, 20);
    if (rc == 77) zt_skip("no private mount namespace here (unshare or mount refused): needs CAP_SYS_ADMIN");
    assert_int_equal(rc, 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_memory_limit_is_cgroup_limit, zt_reset_settings),
        cmocka_unit_test_teardown(test_memory_limit_in_made_up_cgroup_trees, zt_reset_settings),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
