/* One test per promise of include/zmalloc.h that the other programs do not
 * test: each checks the promise against a source that is not the code under
 * test (zt_expected_size(), the allocator's own figures, the cgroup files,
 * sysconf), and each can fail for the reason it names. This file: the
 * caller's own calls (a wrong size, a C library block, OOM handlers, the
 * limit); test_promises_threads.c: settings and the peak under threads;
 * test_promises_cgroup.c: the memory limit from cgroup files. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zm_test.h"

#ifdef ZMALLOC_TESTING
#include "fault.h" /* zm__fault_arm: a backend failure on demand */
#endif
#if defined(ZM_TEST_BACKEND_jemalloc)
#include <jemalloc/jemalloc.h>
#elif defined(ZM_TEST_BACKEND_tcmalloc)
#include <gperftools/malloc_extension_c.h>
#endif
#include <malloc.h>
#ifdef __GLIBC__
#include <execinfo.h> /* backtrace_symbols: glibc's */
#endif


static size_t oom_calls, oom_last;
static void counting_oom(size_t size) {
    oom_calls++;
    oom_last = size;
}


/* ---- zm_free_with_size: a wrong size aborts in ZMALLOC_TESTING builds ---- */

#ifdef ZMALLOC_TESTING
static int free_with_size_off_by(void *arg) {
    long delta = *(long *)arg;
    size_t u;
    void *p = zm_malloc_usable(100, &u);
    zm_free_with_size(p, (size_t)((long)u + delta));
    return 0; /* reached only when the wrong size went unnoticed */
}
#endif

static void test_free_with_size_wrong_size_aborts(void **state) {
    (void)state;
#ifndef ZMALLOC_TESTING
    zt_skip("zm_free_with_size checks the size only in ZMALLOC_TESTING builds (undefined behaviour otherwise)");
#else
    /* In a child: the abort ends it with SIGABRT. The last wrong size is
     * the likeliest mix-up in size-header mode: zm_size(), which is the
     * usable size plus the header. */
    long right = 0, over = 1, under = -1, header = (long)alignof(max_align_t);
    assert_int_equal(zt_fork_run(free_with_size_off_by, &right, 20), 0); /* the control */
    assert_int_equal(zt_fork_run(free_with_size_off_by, &over, 20), 100 + SIGABRT);
    assert_int_equal(zt_fork_run(free_with_size_off_by, &under, 20), 100 + SIGABRT);
    assert_int_equal(zt_fork_run(free_with_size_off_by, &header, 20), 100 + SIGABRT);
#endif
}

/* ---- zm_libc_free: frees a C library block, counts nothing ------------- */

/* The C library heap's own figure for live bytes, or -1 when this build has
 * no way to read it (mimalloc keeps no statistics; a sanitizer or valgrind
 * replaces malloc). Read from whichever allocator owns the global malloc. */
static long long libc_heap_in_use(void) {
#if defined(ZT_SANITIZED)
    return -1;
#else
    if (zt_under_valgrind()) return -1;
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (!sym || !dladdr(sym, &info) || !info.dli_fname) return -1;
#if defined(ZM_TEST_BACKEND_jemalloc)
    if (strstr(info.dli_fname, "jemalloc")) {
        uint64_t epoch = 1;
        size_t v = 0, len = sizeof epoch;
        mallctl("epoch", &epoch, &len, &epoch, len);
        len = sizeof v;
        return mallctl("stats.allocated", &v, &len, NULL, 0) == 0 ? (long long)v : -1;
    }
#elif defined(ZM_TEST_BACKEND_tcmalloc)
    if (strstr(info.dli_fname, "tcmalloc")) {
        size_t v = 0;
        return MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &v) ? (long long)v : -1;
    }
#endif
#ifdef __GLIBC__
    if (strstr(info.dli_fname, "/libc.so")) {
        struct mallinfo2 mi = mallinfo2();
        return (long long)(mi.uordblks + mi.hblkhd);
    }
#endif
    return -1;
#endif
}

/* A string larger than glibc's largest mmap threshold (32 MiB), so that its
 * block is an mmapped chunk of its own: freeing it moves the heap figure back
 * exactly, and no free list keeps it. */
#define LIBC_BIG ((size_t)33 << 20)

static void test_libc_free_frees_libc_block_uncounted(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    char *big = malloc(LIBC_BIG + 1);
    assert_non_null(big);
    memset(big, 'z', LIBC_BIG);
    big[LIBC_BIG] = '\0';
    long long heap0 = libc_heap_in_use();
    char *s = strdup(big); /* the C library's block, not ours */
    assert_non_null(s);
    long long heap1 = libc_heap_in_use();
    assert_int_equal(zt_used_since(base), 0);
    zm_libc_free(s);
    assert_int_equal(zt_used_since(base), 0); /* nothing was uncounted either */
    long long heap2 = libc_heap_in_use();
    if (heap0 >= 0) {
        assert_true(heap1 >= heap0 + (long long)LIBC_BIG); /* the figure does see the block */
        assert_int_equal(heap2, heap0);                   /* and zm_libc_free gave it back */
    }
    free(big);
#ifdef __GLIBC__
    /* backtrace_symbols: the documented use */
    void *frames[8];
    int n = backtrace(frames, 8);
    assert_true(n > 0);
    char **names = backtrace_symbols(frames, n);
    assert_non_null(names);
    zm_libc_free(names);
#endif
    zm_libc_free(NULL);
    assert_int_equal(zt_used_since(base), 0);
}

/* ---- an OOM handler that calls back into the library ------------------- */

static struct {
    void *reserve;         /* freed by the handler, through zm_free */
    void *made;            /* allocated by the handler */
    size_t calls, last;
    long long used_inside; /* zm_used_memory() - base, read inside the handler */
    size_t base;
} re;

static void reentrant_oom(size_t size) {
    re.calls++;
    re.last = size;
    /* "no lock held, the counters settled": a lock still held would
     * deadlock here (the watchdog turns that into SIGALRM), and a count of
     * the failed call would show. */
    re.used_inside = zt_used_since(re.base);
    zm_free(re.reserve);
    re.reserve = NULL;
    if (!re.made) re.made = zm_malloc(64);
}

/* Exit codes say which check failed. */
static int reentrant_child(void *arg) {
    int kind = *(int *)arg; /* 0: size, 1: limit, 2: backend failure */
    re.base = zm_used_memory();
    re.reserve = zm_malloc(100000);
    void *keep = zm_malloc(1000);
    long long reserve_bytes = (long long)zt_expected_size(re.reserve, 100000);
    long long keep_bytes = (long long)zt_expected_size(keep, 1000);
    zm_set_oom_handler(reentrant_oom);
    size_t req = 0;
    void *r = NULL;
    if (kind == 0) {
        req = zt_opaque(SIZE_MAX - 7);
        r = zm_malloc(req);
    } else if (kind == 1) {
        zm_set_limit(zm_used_memory() + 50000);
        req = 60000;
        r = zm_malloc(req);
    } else {
#ifdef ZMALLOC_TESTING
        zm__fault_arm(1, 0); /* the next backend allocation fails, once */
        req = 3000;
        r = zm_malloc(req);
        zm__fault_arm(0, 0);
#else
        return 0;
#endif
    }
    if (r) return 1;                                        /* the failing call returns NULL */
    if (re.calls != 1 || re.last != req) return 2;          /* once, with the request */
    if (re.used_inside != reserve_bytes + keep_bytes) return 3; /* settled, the failure uncounted */
    if (re.reserve || !re.made) return 4;                   /* the handler's own calls worked */
    if (zt_used_since(re.base) != keep_bytes + (long long)zt_expected_size(re.made, 64)) return 5;
    zm_set_limit(0);
    zm_free(re.made);
    zm_free(keep);
    return zt_used_since(re.base) == 0 ? 0 : 6;
}

static void test_oom_handler_reenters_library(void **state) {
    (void)state;
    int kinds[] = {0, 1, 2};
    assert_int_equal(zt_fork_run(reentrant_child, &kinds[0], 20), 0);
    assert_int_equal(zt_fork_run(reentrant_child, &kinds[1], 20), 0);
#ifdef ZMALLOC_TESTING
    assert_int_equal(zt_fork_run(reentrant_child, &kinds[2], 20), 0);
#endif
}

/* ---- an OOM handler that exits ----------------------------------------- */

static size_t exit_expected;

/* Runs inside exit(): the library is usable and exact there too. _exit
 * keeps the parent's unflushed stdio buffers from being written twice. */
static void check_at_exit(void) { _exit(zm_used_memory() == exit_expected ? 42 : 43); }

static void exiting_oom(size_t size) {
    (void)size;
    exit(41); /* the atexit hook turns this into 42 or 43 */
}

static int exiting_child(void *arg) {
    int by_limit = *(int *)arg;
    void *held = zm_malloc(777);
    exit_expected = zm_used_memory();
    if (exit_expected == 0 || !held) return 1;
    if (atexit(check_at_exit) != 0) return 2;
    zm_set_oom_handler(exiting_oom);
    if (by_limit) {
        zm_set_limit(exit_expected + 100);
        zm_malloc(1000);
    } else {
        zm_malloc(zt_opaque(SIZE_MAX));
    }
    return 3; /* the handler did not exit */
}

static void test_oom_handler_may_exit(void **state) {
    (void)state;
    int by_size = 0, by_limit = 1;
    assert_int_equal(zt_fork_run(exiting_child, &by_size, 20), 42);
    assert_int_equal(zt_fork_run(exiting_child, &by_limit, 20), 42);
}

/* ---- over the limit, freeing and shrinking always work ----------------- */

static void test_free_and_shrink_over_limit(void **state) {
    (void)state;
    oom_calls = 0;
    zm_set_oom_handler(counting_oom);
    size_t base = zm_used_memory(), uc = 0, u = 0;
    char *a = zm_malloc(100000), *b = zm_malloc(5000), *c = zm_malloc_usable(3000, &uc);
    void *d = zm_malloc(2000), *e = zm_malloc_no_tcache(4000), *f = zm_malloc(50000), *g = zm_malloc(700);
    memset(a, 'a', 100000);
    long long held = (long long)(zt_expected_size(a, 100000) + zt_expected_size(b, 5000) +
                                 zt_expected_size(c, 3000) + zt_expected_size(d, 2000) +
                                 zt_expected_size(e, 4000) + zt_expected_size(f, 50000) +
                                 zt_expected_size(g, 700));
    assert_int_equal(zt_used_since(base), held);
    zm_set_limit(base + 1); /* far below what is held, for the whole test */

    /* shrinking */
    long long was = (long long)zt_expected_size(a, 100000);
    char *a2 = zm_realloc(a, 10);
    assert_non_null(a2);
    assert_memory_equal(a2, "aaaaaaaaaa", 10);
    held += (long long)zt_expected_size(a2, 10) - was;
    assert_int_equal(zt_used_since(base), held);
    was = (long long)zt_expected_size(f, 50000);
    void *f2 = zm_try_realloc_usable(f, 100, &u);
    assert_non_null(f2);
    assert_int_equal(u, zt_expected_usable(f2, 100));
    held += (long long)zt_expected_size(f2, 100) - was;
    assert_int_equal(zt_used_since(base), held);
    /* to its own usable size: no growth, so allowed */
    size_t bu = zt_expected_usable(b, 5000);
    was = (long long)zt_expected_size(b, 5000);
    void *b2 = zm_realloc(b, bu);
    assert_non_null(b2);
    size_t b2u = zt_expected_usable(b2, bu);
    held += (long long)zt_expected_size(b2, bu) - was;
    assert_int_equal(zt_used_since(base), held);

    /* every way to free */
    held -= (long long)zt_expected_size(a2, 10);
    zm_free(a2);
    assert_int_equal(zt_used_since(base), held);
    held -= (long long)zt_expected_size(b2, bu);
    zm_free_usable(b2, &u);
    assert_int_equal(u, b2u);
    assert_int_equal(zt_used_since(base), held);
    held -= (long long)zt_expected_size(c, 3000);
    zm_free_with_size(c, uc);
    assert_int_equal(zt_used_since(base), held);
    held -= (long long)zt_expected_size(d, 2000);
    assert_null(zm_realloc(d, 0));
    assert_int_equal(zt_used_since(base), held);
    held -= (long long)zt_expected_size(e, 4000);
    zm_free_no_tcache(e);
    assert_int_equal(zt_used_since(base), held);
    held -= (long long)zt_expected_size(g, 700);
    assert_null(zm_try_realloc(g, 0));
    assert_int_equal(zt_used_since(base), held);
    assert_int_equal(oom_calls, 0); /* none of that was a failure */

    /* growth is still refused, and counted as nothing */
    errno = 0;
    assert_null(zm_try_malloc(1));
    assert_int_equal(errno, ENOMEM);
    assert_null(zm_malloc(1));
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, 1);
    assert_int_equal(zt_used_since(base), held);
    held -= (long long)zt_expected_size(f2, 100);
    zm_free(f2);
    zm_set_limit(0);
    zm_set_oom_handler(NULL);
    assert_int_equal(held, 0);
    assert_int_equal(zt_used_since(base), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_free_with_size_wrong_size_aborts, zt_reset_settings),
        cmocka_unit_test_teardown(test_libc_free_frees_libc_block_uncounted, zt_reset_settings),
        cmocka_unit_test_teardown(test_oom_handler_reenters_library, zt_reset_settings),
        cmocka_unit_test_teardown(test_oom_handler_may_exit, zt_reset_settings),
        cmocka_unit_test_teardown(test_free_and_shrink_over_limit, zt_reset_settings),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
