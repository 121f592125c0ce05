/* What each backend must show: its name and version, block sizes that agree
 * with the allocator's own answer, statistics that follow the live data,
 * purging that gives memory back, and (jemalloc) the defrag helpers and the
 * background thread. Built against whichever backend this tree is
 * configured for; its fast paths are test_backend_fast_paths.c's. */
#include "zt_backend.h"

static void test_lib_name(void **state) {
    (void)state;
    assert_int_equal(strncmp(ZMALLOC_LIB, BACKEND_NAME, strlen(BACKEND_NAME)), 0);
#ifndef ZM_TEST_BACKEND_libc
    /* name-major.minor... */
    const char *v = ZMALLOC_LIB + strlen(BACKEND_NAME);
    assert_true(v[0] >= '0' && v[0] <= '9');
    assert_non_null(strchr(v, '.'));
#endif
}

/* What a block of `requested` bytes must report as usable: the allocator's
 * own usable size, or (size-header mode) the request. */
static size_t own_usable(const void *p, size_t requested) {
#ifdef ZM_SIZE_HEADER
    (void)p;
    return requested;
#else
    (void)requested;
    return OWN_SIZE((void *)p);
#endif
}

/* Sizes computed inline from the request (size classes, chunk headers, the
 * size header) must be the allocator's own answer (zt_expected_size: the
 * allocator's size function, or request + header), for every way a block
 * comes to be. */
static void test_sizes_match_allocator(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    for (size_t n = 0; n < (8u << 20); n = n < 4096 ? n + 1 : n + n / 7) {
        size_t u = 0;
        void *a = zm_malloc_usable(n, &u);
        assert_int_equal(u, own_usable(a, n));
        assert_int_equal(zm_size(a), zt_expected_size(a, n));
        void *b = zm_calloc_usable(n, &u);
        assert_int_equal(u, own_usable(b, n));
        b = zm_realloc_usable(b, n * 2 + 1, &u);
        assert_int_equal(u, own_usable(b, n * 2 + 1));
        assert_int_equal(zt_used_since(base), zt_expected_size(a, n) + zt_expected_size(b, n * 2 + 1));
        zm_free(a);
        zm_free_with_size(b, u);
        assert_int_equal(zt_used_since(base), 0);
    }
}


static size_t info(int bit) {
    size_t f[6] = {0};
    zm_get_allocator_info(&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]);
    for (int i = 0; i < 6; i++)
        if (bit == (1 << i)) return f[i];
    return 0;
}

/* Every figure the backend claims moves with the data it describes. */
static void test_figures_follow_data(void **state) {
    (void)state;
    int have = zm_get_allocator_info(NULL, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(have, zt_expected_info_bits());
    if (libc_replaced()) zt_skip("malloc is not glibc's (sanitizer or valgrind): no allocator figures");
    if (have == 0) zt_skip("this C library's malloc reports no figures (not glibc)");
    const size_t n = 32u << 20, slack = 1u << 20;
    assert_int_equal(zm_purge(), 0);
    size_t alloc0 = info(ZMALLOC_INFO_ALLOCATED), active0 = info(ZMALLOC_INFO_ACTIVE),
           res0 = info(ZMALLOC_INFO_RESIDENT);
    char *p = zm_malloc(n);
    memset(p, 1, n);
    if (have & ZMALLOC_INFO_ALLOCATED) assert_true(info(ZMALLOC_INFO_ALLOCATED) >= alloc0 + n - slack);
    assert_true(info(ZMALLOC_INFO_ACTIVE) >= active0 + n - slack);
    if (have & ZMALLOC_INFO_RESIDENT) assert_true(info(ZMALLOC_INFO_RESIDENT) >= res0 + n - slack);
    if (have & ZMALLOC_INFO_ALLOCATED)
        assert_true(info(ZMALLOC_INFO_ACTIVE) >= info(ZMALLOC_INFO_ALLOCATED) - slack);
    size_t alloc1 = info(ZMALLOC_INFO_ALLOCATED), retained1 = info(ZMALLOC_INFO_RETAINED);
    zm_free(p);
    assert_int_equal(zm_purge(), 0);
    if (have & ZMALLOC_INFO_ALLOCATED) assert_true(info(ZMALLOC_INFO_ALLOCATED) + n - slack <= alloc1);
    /* purged pages stay mapped but leave the resident set */
    if (have & ZMALLOC_INFO_RETAINED) assert_true(info(ZMALLOC_INFO_RETAINED) >= retained1 + n - slack);
}

/* Free room in partly used small-size slabs: free every other small block. */
static void test_frag_smallbins(void **state) {
    (void)state;
    if (!(zm_get_allocator_info(NULL, NULL, NULL, NULL, NULL, NULL) & ZMALLOC_INFO_FRAG_SMALLBINS))
        zt_skip("this backend keeps no small-bin figure");
    enum { COUNT = 20000 };
    static void *blocks[COUNT];
    for (int i = 0; i < COUNT; i++) blocks[i] = zm_malloc(96);
    assert_int_equal(zm_purge(), 0); /* also flushes the thread cache, so jemalloc sees what is free */
    size_t before = info(ZMALLOC_INFO_FRAG_SMALLBINS), freed = 0;
    for (int i = 0; i < COUNT; i += 2) {
        freed += zt_expected_size(blocks[i], 96);
        zm_free(blocks[i]);
    }
    assert_int_equal(zm_purge(), 0);
    assert_true(info(ZMALLOC_INFO_FRAG_SMALLBINS) >= before + freed * 9 / 10);
    for (int i = 1; i < COUNT; i += 2) zm_free(blocks[i]);
}

/* RSS falls when freed memory is purged. A block kept after the freed ones
 * stops glibc from trimming the heap top by itself. */
static void test_rss_falls_after_purge(void **state) {
    (void)state;
    enum { COUNT = 1024, SIZE = 64 * 1024 };
    static char *blocks[COUNT];
    if (libc_replaced()) zt_skip("a sanitizer's or valgrind's malloc keeps freed memory in quarantine");
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = zm_malloc(SIZE);
        memset(blocks[i], 7, SIZE);
    }
    void *keep = zm_malloc(100);
    size_t full = zm_get_rss();
    for (int i = 0; i < COUNT; i++) zm_free(blocks[i]);
    assert_int_equal(zm_purge(), 0);
    size_t purged = zm_get_rss();
    assert_true(purged + (size_t)COUNT * SIZE / 2 < full); /* at least half of 64 MiB came back */
    zm_free(keep);
}

static void test_background_thread(void **state) {
    (void)state;
#if defined(ZM_TEST_BACKEND_jemalloc) && !defined(__SANITIZE_THREAD__)
    /* (jemalloc starts this thread past TSan's pthread_create interceptor,
     * so TSan aborts when jemalloc joins it.) */
    bool on = false;
    size_t len = sizeof on;
    zm_set_background_thread(1);
    assert_int_equal(mallctl("background_thread", &on, &len, NULL, 0), 0);
    assert_true(on);
    zm_set_background_thread(0);
    assert_int_equal(mallctl("background_thread", &on, &len, NULL, 0), 0);
    assert_false(on);
#elif defined(ZM_TEST_BACKEND_jemalloc)
    zt_skip("jemalloc starts its background thread past TSan's pthread_create interceptor, "
            "so TSan aborts when jemalloc joins it");
#else
    zm_set_background_thread(1); /* a documented no-op */
    zm_set_background_thread(0);
    zt_skip("no background thread on this backend");
#endif
}

/* The defragmentation pair, in every mode: counted like any block, and a
 * block from zmalloc_no_tcache may be freed by zfree (Redis does both). */
static void test_no_tcache(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *p = zmalloc_no_tcache(1000);
    assert_non_null(p);
    memset(p, 1, 1000);
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 1000));
    zfree_no_tcache(p);
    assert_int_equal(zt_used_since(base), 0);
    void *q = zmalloc_no_tcache(1000);
    assert_int_equal(zt_used_since(base), zt_expected_size(q, 1000));
    zfree(q);
    assert_int_equal(zt_used_since(base), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lib_name),
        cmocka_unit_test(test_sizes_match_allocator),
        cmocka_unit_test(test_figures_follow_data),
        cmocka_unit_test(test_frag_smallbins),
        cmocka_unit_test(test_rss_falls_after_purge),
        cmocka_unit_test(test_background_thread),
        cmocka_unit_test(test_no_tcache),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
