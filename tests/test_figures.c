/* The public process and allocator figures, and their answers to bad input. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zm_test.h"

static void test_rss_and_ratio(void **state) {
    (void)state;
    size_t rss = zm_get_rss();
    assert_true(rss > 0);
    assert_true(rss < zm_get_memory_size());
    void *p = zm_malloc(1 << 20);
    float ratio = zm_get_fragmentation_ratio(rss);
    assert_true(ratio > 0.0f);
    /* the ratio is rss / used memory, nothing else */
    float expect = (float)rss / (float)zm_used_memory();
    assert_true(ratio > expect * 0.999f && ratio < expect * 1.001f);
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
    assert_int_equal(phys, (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE));
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

static void test_allocator_info(void **state) {
    (void)state;
    size_t allocated = 1, active = 1, resident = 1, retained = 1, muzzy = 1, frag = 1;
    int have = zm_get_allocator_info(&allocated, &active, &resident, &retained, &muzzy, &frag);
    size_t *figs[] = {&allocated, &active, &resident, &retained, &muzzy, &frag};
    for (int i = 0; i < 6; i++)
        if (!(have & (1 << i))) assert_int_equal(*figs[i], 0); /* no figure reads as 0 */
    assert_int_equal(zm_get_allocator_info(NULL, NULL, NULL, NULL, NULL, NULL), have);
    if (!(have & ZMALLOC_INFO_ALLOCATED)) return;
    /* allocated follows live data: up by at least what is allocated, then down */
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
    if (have & ZMALLOC_INFO_ACTIVE) assert_true(active >= allocated);
}

static void test_purge_and_trim(void **state) {
    (void)state;
    assert_int_equal(zm_purge(), 0);
    zm_libc_trim();
    zm_set_background_thread(0);
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
        cmocka_unit_test(test_purge_and_trim),
        cmocka_unit_test(test_madvise_dontneed),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
