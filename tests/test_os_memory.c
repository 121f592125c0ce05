/* The OS layer's physical memory and cgroup limits (src/os_memory.c), the
 * cgroup walk on made-up trees of both versions. */
#include "zt_os.h"

/* ------------------------------------------------------------------------
 * cgroup limits
 * ---------------------------------------------------------------------- */

static char tmp_root[64];

static void path_join(char *out, size_t cap, const char *rel) {
    int n = snprintf(out, cap, "%s/%s", tmp_root, rel);
    assert_true(n > 0 && (size_t)n < cap);
}

static void mkdirs(const char *rel) {
    char path[PATH_MAX];
    path_join(path, sizeof path, rel);
    for (char *p = path + strlen(tmp_root) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
        *p = '/';
    }
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void put(const char *rel, const char *content) {
    char path[PATH_MAX];
    path_join(path, sizeof path, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(content, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static int cgroup_setup(void **state) {
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/zm_test_os_XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    /* v2 "max" at the leaf, a number at the parent, none at the root. */
    mkdirs("v2a/a/b");
    put("v2a/a/b/memory.max", "max\n");
    put("v2a/a/memory.max", "1073741824\n");
    /* v2 limits at every level: the smallest one wins. */
    mkdirs("v2b/a/b");
    put("v2b/memory.max", "4000000000\n");
    put("v2b/a/memory.max", "2000000000\n");
    put("v2b/a/b/memory.max", "3000000000\n");
    /* v2 with no limit anywhere, and with junk in the files. */
    mkdirs("v2c/a/b");
    put("v2c/memory.max", "max\n");
    put("v2c/a/memory.max", "12abc\n");
    put("v2c/a/b/memory.max", "0\n");
    /* v1 unlimited everywhere. */
    mkdirs("v1a/x/y");
    put("v1a/memory.limit_in_bytes", "9223372036854771712\n");
    put("v1a/x/memory.limit_in_bytes", "9223372036854771712\n");
    put("v1a/x/y/memory.limit_in_bytes", "9223372036854771712\n");
    /* v1 with a real limit at the parent of an unlimited leaf. */
    mkdirs("v1b/x/y");
    put("v1b/memory.limit_in_bytes", "9223372036854771712\n");
    put("v1b/x/memory.limit_in_bytes", "536870912\n");
    put("v1b/x/y/memory.limit_in_bytes", "9223372036854771712\n");
    /* Only the mount point has a limit (a container's own cgroup). */
    mkdirs("v2d");
    put("v2d/memory.max", "777777777");
    /* Outside the mount points: a path with ".." must not reach it. */
    mkdirs("evil");
    put("evil/memory.max", "12345\n");
    put("evil/memory.limit_in_bytes", "12345\n");
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int cgroup_teardown(void **state) {
    (void)state;
    return nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t limit_of(const char *text, size_t len, const char *v2, const char *v1) {
    char r2[PATH_MAX], r1[PATH_MAX];
    path_join(r2, sizeof r2, v2);
    path_join(r1, sizeof r1, v1);
    char *b = exact_copy(text, len);
    size_t r = zm__cgroup_limit(b, len, r2, r1);
    free(b);
    return r;
}
#define LIMIT(lit, v2, v1) limit_of(lit, sizeof(lit) - 1, v2, v1)

static void test_cgroup_v2(void **state) {
    (void)state;
    assert_int_equal(LIMIT("0::/a/b\n", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/a/b", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/a/b/\n", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/a\n", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/\n", "v2a", "none"), 0);
    assert_int_equal(LIMIT("0::/a/b\n", "v2b", "none"), 2000000000);
    assert_int_equal(LIMIT("0::/a\n", "v2b", "none"), 2000000000);
    assert_int_equal(LIMIT("0::/\n", "v2b", "none"), 4000000000);
    assert_int_equal(LIMIT("0::/a/b\n", "v2c", "none"), 0);
    /* Paths that do not exist below the mount still reach its own file. */
    assert_int_equal(LIMIT("0::/docker/abc/def\n", "v2d", "none"), 777777777);
    assert_int_equal(LIMIT("0::/\n", "v2d", "none"), 777777777);
}

static void test_cgroup_v1(void **state) {
    (void)state;
    assert_int_equal(LIMIT("4:memory:/x/y\n", "none", "v1a"), 0);
    assert_int_equal(LIMIT("4:memory:/x/y\n", "none", "v1b"), 536870912);
    assert_int_equal(LIMIT("7:cpu,memory:/x/y\n", "none", "v1b"), 536870912);
    assert_int_equal(LIMIT("7:memory,cpu:/x/y", "none", "v1b"), 536870912);
    assert_int_equal(LIMIT("7:cpu,memoryx:/x/y\n", "none", "v1b"), 0);
    assert_int_equal(LIMIT("7:xmemory:/x/y\n", "none", "v1b"), 0);
    assert_int_equal(LIMIT("7:name=memory:/x/y\n", "none", "v1b"), 0);
    assert_int_equal(LIMIT("0::/x/y\n", "none", "v1b"), 0); /* a v2 line */

    /* Hybrid: v2 sets nothing, so the v1 memory line decides... */
    static const char hybrid[] = "9:name=systemd:/\n"
                                 "4:memory:/x/y\n"
                                 "1:cpu:/\n"
                                 "0::/a/b\n";
    assert_int_equal(LIMIT(hybrid, "v2c", "v1b"), 536870912);
    /* ...but a v2 limit wins even over a smaller v1 one. */
    assert_int_equal(LIMIT(hybrid, "v2b", "v1b"), 2000000000);
    assert_int_equal(LIMIT(hybrid, "v2c", "v1a"), 0);
}

static void test_cgroup_garbage(void **state) {
    (void)state;
    static const char *const junk[] = {
        "", "\n", "garbage", ":", "::", ":::::", "0::", "0::\n", "0::relative/a/b\n", "0:x:/a/b\n",
        "00::/a/b\n", "1::/a/b\n", "0::/..\n", "0::/../evil\n", "0::/a/../../evil\n", "4:memory:\n",
        "4:memory:x/y\n", "4:memory:/../evil\n", "\n\n\n:memory:\n",
    };
    for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++)
        assert_int_equal(limit_of(junk[k], strlen(junk[k]), "v2a", "v1a"), 0);

    /* A NUL inside the path would cut it short; the line is refused. */
    static const char nul[] = "0::/a\0/b\n";
    assert_int_equal(LIMIT(nul, "v2d", "none"), 0);
    /* Bounded by len: the text goes on to a limited path that must not count. */
    static const char cut[] = "0::/\n4:memory:/x/y\n";
    assert_int_equal(limit_of(cut, 5, "v2c", "v1b"), 0);
    assert_int_equal(zm__cgroup_limit(NULL, 10, "/", "/"), 0);
    assert_int_equal(limit_of("0::/a/b\n", 8, "v2a", "none"), 1073741824);
}

static void test_cgroup_long_path(void **state) {
    (void)state;
    /* Levels longer than PATH_MAX are skipped; shorter parents still count. */
    size_t n = 3 + 2 * PATH_MAX + 1;
    char *text = malloc(n);
    assert_non_null(text);
    memcpy(text, "0::/", 4);
    memset(text + 4, 'a', PATH_MAX);
    text[4 + PATH_MAX] = '/';
    memset(text + 5 + PATH_MAX, 'b', n - 5 - PATH_MAX);
    assert_int_equal(limit_of(text, n, "v2d", "none"), 777777777);
    free(text);
}

/* Random texts built from cgroup-file pieces: nothing may crash or read
 * past len, and any answer must be one of the limits in the tree. */
static void test_cgroup_random(void **state) {
    (void)state;
    static const char *const pieces[] = {"0::/", "4:memory:/", "7:cpu,memory:/", "1::", "a", "b", "x",
                                         "y", "/", "..", "\n", ":", ",", "max", "memory", "0"};
    const size_t npieces = sizeof pieces / sizeof pieces[0];
    char buf[96];
    unsigned seed = 12345;
    for (int it = 0; it < 3000; it++) {
        size_t n = 0;
        for (;;) {
            seed = seed * 1103515245u + 12345u;
            const char *piece = pieces[(seed >> 16) % npieces];
            size_t len = strlen(piece);
            if (n + len > 64 || (seed & 0x1f) == 0)
                break;
            memcpy(buf + n, piece, len);
            n += len;
        }
        if ((seed & 0x300) == 0 && n > 0)
            buf[(seed >> 20) % n] = '\0';
        size_t r = limit_of(buf, n, "v2b", "v1b");
        assert_true(r == 0 || r == 536870912 || r == 2000000000 || r == 4000000000);
    }
}

/* ------------------------------------------------------------------------
 * Machine memory
 * ---------------------------------------------------------------------- */

static void test_memory_size(void **state) {
    (void)state;
    errno = 4321;
    size_t mem = zm__os_memory_size();
    assert_int_equal(errno, 4321);
    assert_true(mem > 0);
    /* pages * page size, saturated at SIZE_MAX (a 32-bit process on a
     * machine with more than 4 GiB) */
    unsigned long long bytes =
        (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE);
    assert_int_equal(mem, bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes);
}

static void test_memory_limit(void **state) {
    (void)state;
    errno = 4321;
    size_t limit = zm__os_memory_limit();
    assert_int_equal(errno, 4321);
    assert_true(limit > 0);
    assert_true(limit <= zm__os_memory_size());
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cgroup_v2, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v1, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_garbage, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_long_path, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_random, cgroup_setup, cgroup_teardown),
        cmocka_unit_test(test_memory_size),
        cmocka_unit_test(test_memory_limit),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
