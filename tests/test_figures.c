/* The public process and allocator figures, and their answers to bad input.
 * Where the library passes on a figure from elsewhere (the allocator's own
 * statistics, glibc's heap), the test reads that source itself. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zm_test.h"

#if defined(ZM_TEST_BACKEND_jemalloc)
#include "zt_jemalloc.h"
#elif defined(ZM_TEST_BACKEND_tcmalloc)
#include <gperftools/malloc_extension_c.h>
#elif defined(ZM_TEST_BACKEND_mimalloc)
#include <mimalloc.h>
#endif
#include <malloc.h> /* glibc: M_TRIM_THRESHOLD, mallinfo2 */

static void test_rss_and_ratio(void **state) {
    (void)state;
    size_t rss = zm_get_rss();
    assert_true(rss > 0);
    assert_true(rss < zm_get_memory_size());
    void *p = zm_malloc(1 << 20);
    size_t used = zm_used_memory();
    float ratio = zm_get_fragmentation_ratio(rss);
    assert_int_equal(zm_used_memory(), used); /* nothing moved in between */
    assert_true(ratio > 0.0f);
    /* the ratio is rss / used memory, nothing else: the same float division */
    /* volatile: rounded to float, as the returned ratio is (i386 computes
     * in x87 registers with more precision) */
    volatile float expect = (float)rss / (float)used;
    assert_true(ratio == expect);
    zm_free(p);
}

static void test_smaps_fields(void **state) {
    (void)state;
    errno = 0;
    size_t rss = zm_get_smap_bytes_by_field("Rss:", -1);
    assert_int_equal(errno, 0);
    assert_true(rss > 0);
    assert_int_equal(rss % 1024, 0);
    assert_true(zm_get_private_dirty(-1) > 0);
    assert_int_equal(zm_get_private_dirty(-1) % 1024, 0);
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field("No_Such_Field:", -1), 0);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field(NULL, -1), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(zm_get_private_dirty(0x7ffffff0L), 0);
    assert_int_equal(errno, ESRCH);
}

static void test_memory_sizes(void **state) {
    (void)state;
    size_t phys = zm_get_memory_size();
    /* pages * page size, saturated at SIZE_MAX (a 32-bit process on a
     * machine with more than 4 GiB) */
    unsigned long long bytes = (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE);
    assert_int_equal(phys, bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes);
    size_t limit = zm_get_memory_limit();
    assert_true(limit > 0 && limit <= phys);
}

static void test_proc_stat(void **state) {
    (void)state;
    long long v = 0;
    assert_int_equal(zm_get_proc_stat_ll(1, &v), 1);
    assert_int_equal(v, getpid());
    assert_int_equal(zm_get_proc_stat_ll(0, &v), 0);
    assert_int_equal(zm_get_proc_stat_ll(1, NULL), 0);
    assert_int_equal(zm_get_proc_stat_ll(100000, &v), 0);
}


#if defined(ZM_TEST_BACKEND_jemalloc)
static size_t je_size(const char *name) {
    size_t v = 0, len = sizeof v;
    assert_int_equal(mallctl(name, &v, &len, NULL, 0), 0);
    return v;
}
#define ZT_STR(x) ZT_STR2(x)
#define ZT_STR2(x) #x
#elif defined(ZM_TEST_BACKEND_tcmalloc)
static size_t tc_prop(const char *name) {
    size_t v = 0;
    assert_true(MallocExtension_GetNumericProperty(name, &v));
    return v;
}
#endif

/* The bits are exactly the backend's, a missing figure reads as 0, and each
 * real figure is the allocator's own, read here from the allocator at the
 * same instant (nothing allocates in between). */
static void test_allocator_info(void **state) {
    (void)state;
    size_t allocated = 1, active = 1, resident = 1, retained = 1, muzzy = 1, frag = 1;
    int have = zm_get_allocator_info(&allocated, &active, &resident, &retained, &muzzy, &frag);
    assert_int_equal(have, zt_expected_info_bits());
    size_t *figs[] = {&allocated, &active, &resident, &retained, &muzzy, &frag};
    for (int i = 0; i < 6; i++)
        if (!(have & (1 << i))) assert_int_equal(*figs[i], 0); /* no figure reads as 0 */
#if defined(ZM_TEST_BACKEND_jemalloc)
    /* zm_get_allocator_info refreshed the epoch; read the same snapshot. */
    assert_int_equal(allocated, je_size("stats.allocated"));
    assert_int_equal(active, je_size("stats.active"));
    assert_int_equal(resident, je_size("stats.resident"));
    assert_int_equal(retained, je_size("stats.retained"));
    assert_int_equal(muzzy, je_size("stats.arenas." ZT_STR(MALLCTL_ARENAS_ALL) ".pmuzzy") * je_size("arenas.page"));
    assert_true(frag <= active);
#elif defined(ZM_TEST_BACKEND_tcmalloc)
    size_t heap = tc_prop("generic.heap_size"), unmapped = tc_prop("tcmalloc.pageheap_unmapped_bytes");
    assert_int_equal(allocated, tc_prop("generic.current_allocated_bytes"));
    assert_int_equal(resident, heap - unmapped);
    assert_int_equal(active, heap - unmapped - tc_prop("tcmalloc.pageheap_free_bytes"));
    assert_int_equal(retained, unmapped);
#elif defined(ZM_TEST_BACKEND_mimalloc)
    size_t elapsed, user, sys, rss, peak_rss, commit = 0, peak_commit, faults;
    mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
    assert_int_equal(active, commit);
#elif defined(__GLIBC__)
    if (have) {
        struct mallinfo2 mi = mallinfo2();
        assert_int_equal(allocated, mi.uordblks + mi.hblkhd); /* heap chunks in use + mmapped */
        assert_int_equal(active, mi.arena + mi.hblkhd);       /* taken from the OS */
    }
#endif
    if ((have & ZMALLOC_INFO_ACTIVE) && (have & ZMALLOC_INFO_ALLOCATED)) assert_true(active >= allocated);
    assert_int_equal(zm_get_allocator_info(NULL, NULL, NULL, NULL, NULL, NULL), have);
}

/* allocated follows live data: up by at least the block, then down again. */
static void test_allocated_follows_data(void **state) {
    (void)state;
    size_t allocated = 0;
    int have = zm_get_allocator_info(&allocated, NULL, NULL, NULL, NULL, NULL);
    if (!(have & ZMALLOC_INFO_ALLOCATED)) zt_skip("this backend (or a replaced malloc) has no allocated figure");
    const size_t n = 8 << 20;
    void *p = zm_malloc(n);
    memset(p, 1, n);
    size_t during = 0;
    zm_get_allocator_info(&during, NULL, NULL, NULL, NULL, NULL);
    assert_true(during >= allocated + n - (1 << 16));
    zm_free(p);
    size_t after = 0;
    zm_get_allocator_info(&after, NULL, NULL, NULL, NULL, NULL);
    assert_true(after <= during - n + (1 << 16));
}

static void test_purge(void **state) {
    (void)state;
    assert_int_equal(zm_purge(), 0);
    void *p = zm_malloc(1 << 20);
    zm_free(p);
    assert_int_equal(zm_purge(), 0);
    zm_set_background_thread(0);
}

#if defined(__GLIBC__) && !defined(ZT_SANITIZED)
/* Resident pages of this process, read here from /proc/self/statm. */
static size_t statm_rss(void) {
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

/* zm_libc_trim() is malloc_trim(0) on glibc's own heap, whatever the backend:
 * fill that heap through glibc's malloc (looked up in libc.so.6 itself, since
 * a backend may have taken over the global malloc), free it with automatic
 * trimming off (M_TRIM_THRESHOLD) so that free() cannot give it back by
 * itself, and the trim must drop those pages from the resident set. */
static void test_libc_trim_returns_free_pages(void **state) {
    (void)state;
    if (zt_under_emulator()) zt_skip("under qemu-user the RSS is the emulator's");
#if defined(ZT_SANITIZED)
    zt_skip("the sanitizer runtime replaces glibc's malloc");
#elif !defined(__GLIBC__)
    zt_skip("not glibc: zm_libc_trim is a documented no-op");
#else
    if (zt_under_valgrind()) zt_skip("valgrind replaces glibc's malloc");
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!libc) zt_skip("not glibc: zm_libc_trim is a documented no-op");
    void *(*glibc_malloc)(size_t) = (void *(*)(size_t))dlsym(libc, "malloc");
    void (*glibc_free)(void *) = (void (*)(void *))dlsym(libc, "free");
    int (*glibc_mallopt)(int, int) = (int (*)(int, int))dlsym(libc, "mallopt");
    dlclose(libc);
    assert_non_null(glibc_malloc);
    assert_non_null(glibc_free);
    assert_non_null(glibc_mallopt);
    assert_int_equal(glibc_mallopt(M_TRIM_THRESHOLD, INT_MAX), 1);
    enum { COUNT = 256, SIZE = 64 * 1024 }; /* below glibc's mmap threshold: heap chunks */
    static char *blocks[COUNT];
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = glibc_malloc(SIZE);
        assert_non_null(blocks[i]);
        memset(blocks[i], 7, SIZE);
    }
    for (int i = 0; i < COUNT; i++) glibc_free(blocks[i]);
    size_t full = statm_rss();
    zm_libc_trim();
    size_t trimmed = statm_rss();
    glibc_mallopt(M_TRIM_THRESHOLD, 128 * 1024); /* glibc's default */
    /* 16 MiB of free heap was resident; at least 3/4 of it must be gone. */
    if (trimmed + (size_t)COUNT * SIZE * 3 / 4 > full)
        fail_msg("rss %zu before zm_libc_trim, %zu after", full, trimmed);
#endif
}

static void test_madvise_dontneed(void **state) {
    (void)state;
    long page = sysconf(_SC_PAGESIZE);
    size_t n = 64 * (size_t)page;
    unsigned char *p = zm_malloc(n);
    memset(p, 0x5A, n);
    zm_madvise_dontneed(p);
    /* whole pages inside the block read back as zero; the block stays valid */
    unsigned char *first_full = (unsigned char *)(((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1));
    assert_int_equal(first_full[0], 0);
    assert_int_equal(first_full[page], 0);
    p[0] = 1;
    zm_madvise_dontneed(NULL);
    void *small = zm_malloc(16);
    memset(small, 0x33, 16);
    zm_madvise_dontneed(small); /* smaller than a page: untouched */
    assert_int_equal(((unsigned char *)small)[15], 0x33);
    zm_free(small);
    zm_free(p);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_and_ratio),
        cmocka_unit_test(test_smaps_fields),
        cmocka_unit_test(test_memory_sizes),
        cmocka_unit_test(test_proc_stat),
        cmocka_unit_test(test_allocator_info),
        cmocka_unit_test(test_allocated_follows_data),
        cmocka_unit_test(test_purge),
        cmocka_unit_test(test_libc_trim_returns_free_pages),
        cmocka_unit_test(test_madvise_dontneed),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
