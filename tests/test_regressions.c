/* One test per defect an independent audit reproduced, each checked against
 * sizes the code under test did not compute (zt_expected_size). This file:
 * the glibc probe, the limit, the peak, the OOM handler, what readers see;
 * test_regressions_threads.c: fork and thread exit; test_regressions_preloaded.c:
 * defects that show only with another library preloaded. */
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

/* ---- 4. the glibc probe leaves malloc's thresholds alone ---------------- */
#if defined(ZM_TEST_BACKEND_libc) && defined(__GLIBC__) && !defined(ZT_SANITIZED)
#include <malloc.h>
/* glibc mmaps a request above its mmap threshold (128 KiB until a free of an
 * mmapped chunk raises it): such a request moves hblkhd by its size. */
static int comes_from_mmap(size_t size) {
    size_t before = mallinfo2().hblkhd;
    void *p = malloc(size);
    __asm__ volatile("" : : "r"(p) : "memory"); /* or gcc drops the pair */
    size_t after = mallinfo2().hblkhd;
    free(p);
    return after >= before + size;
}
static void test_probe_keeps_mmap_threshold(void **state) {
    (void)state;
    if (zt_under_valgrind()) zt_skip("valgrind's malloc has no mmap threshold");
    /* This process has run zmalloc's load-time probe. Each free of an mmapped
     * chunk raises the threshold to that chunk's size, so go upwards. */
    assert_true(comes_from_mmap((size_t)200 << 10));
    assert_true(comes_from_mmap((size_t)1 << 20));
    assert_true(comes_from_mmap((size_t)2 << 20));
}
#else
static void test_probe_keeps_mmap_threshold(void **state) {
    (void)state;
    zt_skip("glibc's own malloc only");
}
#endif

/* ---- 5. over the limit, requests that do not grow always pass ---------- */
static size_t oom_calls, oom_last;
static void counting_oom(size_t size) {
    oom_calls++;
    oom_last = size;
}

static void test_shrink_over_limit(void **state) {
    (void)state;
    oom_calls = 0;
    zm_set_oom_handler(counting_oom);
    size_t base = zm_used_memory();
    char *buf = zm_malloc(100000);
    memset(buf, 5, 100000);
    zm_set_limit(base + 1); /* already far over it, and still after the shrinks */
    char *small = zm_try_realloc(buf, 10);
    assert_non_null(small);
    assert_int_equal(small[9], 5);
    char *smaller = zm_realloc(small, 5);
    assert_non_null(smaller);
    void *zero = zm_try_malloc(0);
    assert_non_null(zero);
    assert_null(zm_try_malloc(1)); /* growth is still refused */
    assert_int_equal(oom_calls, 0);
    zm_free(zero);
    zm_free(smaller);
    zm_set_limit(0);
    zm_set_oom_handler(NULL);
    assert_int_equal(zt_used_since(base), 0);
}

/* ---- 6. a single allocation of 64 KiB or more is always in the peak ----- */
struct drift_arg {
    pthread_barrier_t *ready, *go;
    int sign;
};

/* Leaves this thread's unpublished drift near -60 KiB (sign < 0) or
 * +60 KiB (sign > 0), then waits. */
static void *drifting_thread(void *arg) {
    struct drift_arg *d = arg;
    enum { N = 130 };
    void *b[N];
    for (int i = 0; i < N; i++) b[i] = zm_malloc(SMALL); /* publishes near +64 KiB */
    int keep = d->sign < 0 ? 10 : 70;
    for (int i = keep; i < N; i++) zm_free(b[i]);
    pthread_barrier_wait(d->ready);
    pthread_barrier_wait(d->go);
    for (int i = 0; i < keep; i++) zm_free(b[i]);
    return NULL;
}

static void test_large_allocation_always_in_peak(void **state) {
    (void)state;
    pthread_barrier_t ready, go;
    pthread_barrier_init(&ready, NULL, 4);
    pthread_barrier_init(&go, NULL, 4);
    struct drift_arg args[3] = {{&ready, &go, -1}, {&ready, &go, -1}, {&ready, &go, 1}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, drifting_thread, &args[i]);
    pthread_barrier_wait(&ready);
    /* This thread, too, with a negative drift. */
    enum { N = 130 };
    void *b[N];
    for (int i = 0; i < N; i++) b[i] = zm_malloc(SMALL);
    for (int i = 10; i < N; i++) zm_free(b[i]);
    zm_reset_peak();
    size_t before = zm_used_memory();
    void *big = zm_malloc(65536);
    size_t expect = before + zt_expected_size(big, 65536);
    assert_int_equal(zm_used_memory_peak(), expect);
    zm_free(big);
    for (int i = 0; i < 10; i++) zm_free(b[i]);
    pthread_barrier_wait(&go);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&go);
}

/* ---- 7. zmalloc_no_tcache calls the OOM handler ------------------------ */
static void test_no_tcache_failure_reaches_oom_handler(void **state) {
    (void)state;
    oom_calls = 0;
    zm_set_oom_handler(counting_oom);
    errno = 0;
    assert_null(zmalloc_no_tcache(zt_opaque(SIZE_MAX)));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, SIZE_MAX);
    zm_set_oom_handler(NULL);
}

/* ---- readers see only figures that happened ----------------------------
 * One thread keeps between 0 and 24 blocks of 4,000 bytes; every reading of
 * another thread must lie in that range, and so must the peak. */
enum { RACE_BLOCKS = 24, RACE_SIZE = 4000 };
static atomic_int race_stop;

static void *race_mutator(void *arg) {
    void **b = arg;
    while (!atomic_load_explicit(&race_stop, memory_order_relaxed)) {
        for (int i = 0; i < RACE_BLOCKS; i++) b[i] = zm_malloc(RACE_SIZE);
        for (int i = 0; i < RACE_BLOCKS; i++) zm_free(b[i]);
    }
    return NULL;
}

static void test_reader_never_sees_a_figure_that_did_not_happen(void **state) {
    (void)state;
    static void *blocks[RACE_BLOCKS];
    void *probe = zm_malloc(RACE_SIZE);
    size_t one = zt_expected_size(probe, RACE_SIZE);
    zm_free(probe);
    size_t base = zm_used_memory();
    zm_reset_peak();
    size_t hi = base + RACE_BLOCKS * one;
    atomic_store(&race_stop, 0);
    pthread_t t;
    pthread_create(&t, NULL, race_mutator, blocks);
    long reads = zt_slow() ? 20000 : 2000000, bad = 0;
    size_t worst = base;
    for (long i = 0; i < reads; i++) {
        size_t v = zm_used_memory();
        if (v < base || v > hi) bad++;
        if (v > worst) worst = v;
    }
    atomic_store(&race_stop, 1);
    pthread_join(t, NULL);
    if (bad) fprintf(stderr, "%ld of %ld reads out of [%zu, %zu]; highest %zu\n", bad, reads, base, hi, worst);
    assert_int_equal(bad, 0);
    assert_true(zm_used_memory_peak() <= hi);
    assert_int_equal(zm_used_memory(), base);
}

/* ---- a thread's first zmalloc calls count nothing; then it frees --------
 * A thread that first asks for allocator statistics, purges or asks a
 * block's size, then frees blocks that another thread allocated: the frees
 * count, exactly. (With the private jemalloc such calls set up jemalloc's
 * thread data in full, which opened zm_free's copy of jemalloc's free fast
 * path to a thread without a slot, whose frees then went uncounted.) */
enum { QUIET_BLOCKS = 8 };
struct quiet_case {
    int kind;
    void *blocks[QUIET_BLOCKS];
};

static void *quiet_then_free(void *arg) {
    struct quiet_case *c = arg;
    size_t a;
    switch (c->kind) {
    case 0: (void)zm_get_allocator_info(&a, NULL, NULL, NULL, NULL, NULL); break;
    case 1: (void)zm_purge(); break;
    default: (void)zm_size(c->blocks[0]); break;
    }
    for (int i = 0; i < QUIET_BLOCKS; i++) zm_free(c->blocks[i]);
    return NULL;
}

static void test_frees_after_quiet_first_calls(void **state) {
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        struct quiet_case c = {.kind = kind};
        size_t base = zm_used_memory(), held = 0;
        for (int i = 0; i < QUIET_BLOCKS; i++) {
            c.blocks[i] = zm_malloc(100 + 300 * (size_t)i);
            held += zt_expected_size(c.blocks[i], 100 + 300 * (size_t)i);
        }
        assert_int_equal(zm_used_memory(), base + held);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, quiet_then_free, &c), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        if (zm_used_memory() != base) fail_msg("first call kind %d: used %zu, expected %zu", kind, zm_used_memory(), base);
    }
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_probe_keeps_mmap_threshold, zt_reset_settings),
        cmocka_unit_test_teardown(test_shrink_over_limit, zt_reset_settings),
        cmocka_unit_test_teardown(test_large_allocation_always_in_peak, zt_reset_settings),
        cmocka_unit_test_teardown(test_no_tcache_failure_reaches_oom_handler, zt_reset_settings),
        cmocka_unit_test_teardown(test_reader_never_sees_a_figure_that_did_not_happen, zt_reset_settings),
        cmocka_unit_test_teardown(test_frees_after_quiet_first_calls, zt_reset_settings),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
