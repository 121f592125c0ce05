/* Defects an independent audit reproduced (test_regressions.c says how they
 * are checked) that show only with another library preloaded in front of
 * this program: tcmalloc's debug allocator, a glibc whose tcache counts run
 * downwards. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "zm_test.h"

#ifdef ZMALLOC_TESTING
#include "counter.h" /* zm__test_publish_hook */
#endif

enum { SMALL = 1000 };

/* ---- tests in a child with a library preloaded -------------------------
 * Some defects show only with another library in front of the ones this
 * program links. Such a test runs this program again, as `test_regressions_preloaded
 * TEST`, with LD_PRELOAD=LIB and ZT_PRELOADED=TEST, and passes if the child
 * passed; in the child, preloaded_child(TEST) is true and the test checks. */
static inline int preloaded_child(const char *test) {
    const char *e = getenv("ZT_PRELOADED");
    return e && strcmp(e, test) == 0;
}

static inline void run_preloaded(const char *test, const char *lib) {
    if (zt_under_valgrind() || zt_under_emulator())
        zt_skip("re-runs this program natively with a library preloaded");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("LD_PRELOAD", lib, 1);
        setenv("ZT_PRELOADED", test, 1);
        unsetenv("ZMALLOC_FAST_PATHS"); /* the test is about the load-time checks */
        alarm(120);                     /* a hang shows as SIGALRM */
        execl("/proc/self/exe", "test_regressions_preloaded", test, (char *)NULL);
        _exit(126);
    }
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("%s with %s preloaded: killed by signal %d", test, lib, WTERMSIG(status));
    if (WEXITSTATUS(status) == 77) zt_skip("the preloaded child skipped");
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s with %s preloaded: exit status %d (its output is above)", test, lib,
                 WEXITSTATUS(status));
}

/* ---- tcmalloc's debug allocator: sizes from real blocks -----------------
 * libtcmalloc_minimal_debug.so.4 answers tc_nallocx() with the release
 * build's class sizes, but gives every block exactly its request and guards
 * the bytes past it. The size table came from tc_nallocx() alone: 100 bytes
 * counted as 112 (12 left counted after the free), zmalloc_usable said 112,
 * and writing that many aborted in the debug allocator ("memory stomping"). */
#if defined(ZM_TEST_BACKEND_tcmalloc) && !defined(ZM_SIZE_HEADER) && !defined(ZT_SANITIZED)
#include <dlfcn.h>
#include <gperftools/tcmalloc.h>

/* The file tc_malloc comes from in this process. */
static const char *tcmalloc_file(void) {
    Dl_info info;
    if (!dladdr((const void *)&tc_malloc, &info) || !info.dli_fname) return "";
    return info.dli_fname;
}

static void test_tcmalloc_debug_sizes(void **state) {
    (void)state;
    static const char test[] = "test_tcmalloc_debug_sizes";
    if (!preloaded_child(test)) {
        /* The debug build beside the library linked: libtcmalloc_minimal.so.4
         * -> libtcmalloc_minimal_debug.so.4. */
        const char *linked = tcmalloc_file(), *so = strstr(linked, ".so");
        char lib[4096];
        int n = snprintf(lib, sizeof lib, "%.*s_debug%s", so ? (int)(so - linked) : 0, linked,
                         so ? so : "");
        if (!so || n <= 0 || (size_t)n >= sizeof lib || access(lib, R_OK) != 0)
            fail_msg("tcmalloc's debug allocator is not installed beside %s (looked for %s): "
                     "apt-get install libtcmalloc-minimal4, which ships it",
                     linked, lib);
        run_preloaded(test, lib);
        return;
    }
    if (!strstr(tcmalloc_file(), "_debug"))
        fail_msg("tc_malloc is %s's, not the debug allocator's", tcmalloc_file());
    static const size_t sizes[] = {100, 1, 1000, 5000, 100000};
    size_t base = zm_used_memory();
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        zm_free(zm_malloc(sizes[i]));
        if (zm_used_memory() != base)
            fail_msg("zmalloc(%zu); zfree(): used %zu, expected %zu", sizes[i], zm_used_memory(),
                     base);
        size_t usable = 0;
        char *p = zm_malloc_usable(sizes[i], &usable);
        assert_non_null(p);
        if (usable != tc_malloc_size(p))
            fail_msg("zmalloc_usable(%zu): usable %zu, tcmalloc says %zu", sizes[i], usable,
                     tc_malloc_size(p));
        assert_int_equal(zm_used_memory(), base + usable);
        memset(p, 7, usable); /* the debug allocator checks the bytes past the block at its free */
        zm_free(p);
        for (int k = 0; k < 100; k++) zm_free(zm_malloc(sizes[i]));
        assert_int_equal(zm_used_memory(), base);
    }
}
#else
static void test_tcmalloc_debug_sizes(void **state) {
    (void)state;
    zt_skip("the tcmalloc backend only (no size header, no sanitizer)");
}
#endif

/* ---- a glibc whose tcache counts run downwards --------------------------
 * A glibc that keeps the 0x290-byte thread cache but stores free slots
 * where 2.36 stores counts (tests/glibc_counts_down.c models it, preloaded)
 * passed the copies' load-time trial: zmalloc then took a bin's slots for
 * blocks and popped its NULL head at the third zmalloc(100) in a row. The
 * trial must see the counts run the other way and leave the copies off. */
#ifdef ZT_GLIBC_MODEL
static void test_glibc_counts_run_downwards(void **state) {
    (void)state;
    static const char test[] = "test_glibc_counts_run_downwards";
    if (!preloaded_child(test)) {
        run_preloaded(test, ZT_GLIBC_MODEL);
        return;
    }
    /* Blocks held several at a time in each bin size, then freed. */
    enum { HELD = 20 };
    static const size_t sizes[] = {0, 24, 100, 200, 1000, 1032, 5000};
    size_t base = zm_used_memory();
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p[HELD];
            size_t held = 0;
            for (int k = 0; k < HELD; k++) {
                p[k] = zm_malloc(sizes[i]);
                assert_non_null(p[k]);
                held += zt_expected_size(p[k], sizes[i]);
            }
            if (zm_used_memory() != base + held)
                fail_msg("%d blocks of %zu: used %zu, expected %zu", HELD, sizes[i],
                         zm_used_memory(), base + held);
            for (int k = 0; k < HELD; k++) zm_free(p[k]);
            assert_int_equal(zm_used_memory(), base);
        }
    }
    for (int i = 0; i < 1000; i++) zm_free(zm_malloc(100));
    assert_int_equal(zm_used_memory(), base);
    char report[1024];
    zm_fast_paths(report, sizeof report);
    if (strstr(report, "left out of this build")) zt_skip("fast paths left out of this build");
    if (!strstr(report, "glibc-tcache-copies: off (trial disagreed: "))
        fail_msg("the copies did not refuse the model: %s", report);
    fprintf(stderr, "fast paths under the model: %s\n", report);
}
#else
static void test_glibc_counts_run_downwards(void **state) {
    (void)state;
    zt_skip("the libc backend on x86-64 glibc only, without sanitizers (the copies' trial)");
}
#endif

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tcmalloc_debug_sizes, zt_reset_settings),
        cmocka_unit_test_teardown(test_glibc_counts_run_downwards, zt_reset_settings),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
