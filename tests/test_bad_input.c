/* Bad input to the public functions gets its documented answer: NULL, 0 and
 * out-of-range arguments, and the edge cases of realloc, the limit and the
 * figures that test_api.c and test_figures.c do not already cover. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "zm_test.h"

static void test_smaps_bad_field_and_pid(void **state) {
    (void)state;
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field("", -1), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field(":", -1), 0); /* empty name, colon only */
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field("Rss:", -5), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field("Rss:", LONG_MIN), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(zm_get_private_dirty(-2), 0);
    assert_int_equal(errno, EINVAL);
    /* A field far longer than any smaps line. */
    char longf[512];
    memset(longf, 'A', sizeof longf - 2);
    longf[sizeof longf - 2] = ':';
    longf[sizeof longf - 1] = '\0';
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field(longf, -1), 0);
    assert_int_equal(errno, EINVAL);
    /* A pid that cannot exist (above pid_max, which is at most 2^22). */
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field("Rss:", 1L << 30), 0);
    assert_int_equal(errno, ESRCH);
    /* A field no mapping has. */
    errno = 0;
    assert_int_equal(zm_get_smap_bytes_by_field("NoSuchField:", -1), 0);
    assert_int_equal(errno, ENOENT);
    /* The own pid given explicitly works like -1. */
    errno = 0;
    assert_true(zm_get_smap_bytes_by_field("Rss", (long)getpid()) > 0);
    assert_int_equal(errno, 0);
}

/* The first test of this program (run alone or first in the group): nothing
 * has gone through zmalloc yet (cmocka uses libc's malloc directly), so used
 * memory is exactly 0, and with used memory 0 the ratio is 0 whatever the
 * rss. */
static void test_fragmentation_ratio_used_zero(void **state) {
    (void)state;
    assert_int_equal(zm_used_memory(), 0);
    assert_true(zm_get_fragmentation_ratio(0) == 0.0f);
    assert_true(zm_get_fragmentation_ratio(123456789) == 0.0f);
    assert_true(zm_get_fragmentation_ratio(SIZE_MAX) == 0.0f);
    void *p = zm_malloc(1000);
    size_t used = zm_used_memory();
    assert_int_equal(used, zt_expected_size(p, 1000));
    assert_true(zm_get_fragmentation_ratio(0) == 0.0f);
    /* Small integers are exact in a float: rss / used is exactly 2. */
    assert_true(zm_get_fragmentation_ratio(used * 2) == 2.0f);
    assert_true(zm_get_fragmentation_ratio(used) == 1.0f);
    zm_free(p);
    assert_int_equal(zm_used_memory(), 0);
}

static void test_proc_stat_bad_index(void **state) {
    (void)state;
    if (zt_under_emulator()) zt_skip("qemu-user emulates /proc/self/stat only in part");
    long long v = 42;
    int bad[] = {-1, 0, INT_MIN, 10000, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(zm_get_proc_stat_ll(bad[i], &v), 0);
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_int_equal(zm_get_proc_stat_ll(1, NULL), 0); /* NULL result */
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(zm_get_proc_stat_ll(2, &v), 0); /* comm is not a number */
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(zm_get_proc_stat_ll(3, &v), 0); /* state is not a number */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(zm_get_proc_stat_ll(1, &v), 1);
    assert_int_equal(v, (long long)getpid());
}

static void test_null_frees_and_sizes(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    zm_free(NULL);
    size_t u = 999;
    zm_free_usable(NULL, &u);
    assert_int_equal(u, 0);
    zm_free_with_size(NULL, 5);
    zm_free_with_size(NULL, 0);
    zm_madvise_dontneed(NULL);
    zm_libc_free(NULL);
    assert_int_equal(zm_size(NULL), 0);
    assert_int_equal(zm_usable_size(NULL), 0);
    assert_int_equal(zm_used_memory(), base);
    /* A block smaller than a page: dontneed leaves its contents alone. */
    char *p = zm_malloc(64);
    memset(p, 'x', 64);
    zm_madvise_dontneed(p);
    for (int i = 0; i < 64; i++) assert_int_equal(p[i], 'x');
    zm_free(p);
    assert_int_equal(zm_used_memory(), base);
}

/* realloc(NULL, 0) is malloc(0): a unique, freeable, counted block (not NULL,
 * and the OOM handler is not called). realloc(p, 0) frees p and returns NULL. */
static void test_realloc_null_zero(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    size_t u = 999;
    void *a = zm_realloc(NULL, 0), *b = zm_try_realloc(NULL, 0), *c = zm_realloc_usable(NULL, 0, &u);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(b, c);
#ifdef ZM_SIZE_HEADER
    assert_int_equal(u, 0);
#else
    assert_int_equal(u, zt_expected_size(c, 0));
#endif
    assert_int_equal(zt_used_since(base),
                     zt_expected_size(a, 0) + zt_expected_size(b, 0) + zt_expected_size(c, 0));
    u = 999;
    assert_null(zm_realloc_usable(c, 0, &u));
    assert_int_equal(u, 0);
    assert_null(zm_try_realloc(b, 0));
    assert_null(zm_realloc(a, 0));
    assert_int_equal(zt_used_since(base), 0);
}

static size_t oom_calls, oom_last;
static void counting_oom(size_t size) {
    oom_calls++;
    oom_last = size;
}

static void test_limit_edges(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    zm_set_oom_handler(counting_oom);
    zm_set_limit(0); /* 0 removes the cap */
    assert_int_equal(zm_get_limit(), 0);
    void *p = zm_malloc(1 << 20);
    assert_non_null(p);
    zm_free(p);
    zm_set_limit(SIZE_MAX); /* no real cap */
    assert_int_equal(zm_get_limit(), SIZE_MAX);
    p = zm_try_malloc(4096);
    assert_non_null(p);
    zm_free(p);
    assert_null(zm_try_malloc(zt_opaque((size_t)PTRDIFF_MAX))); /* still refused by size */
    void *hold = zm_malloc(100);
    zm_set_limit(1); /* below current use: every request fails */
    errno = 0;
    assert_null(zm_try_malloc(1));
    assert_int_equal(errno, ENOMEM);
    oom_calls = 0;
    assert_null(zm_malloc(100));
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, 100);
    assert_int_equal(zt_used_since(base), zt_expected_size(hold, 100)); /* nothing counted */
    zm_set_limit(0);
    assert_int_equal(zm_get_limit(), 0);
    zm_free(hold);
    p = zm_malloc(100);
    assert_non_null(p);
    zm_free(p);
    zm_set_oom_handler(NULL);
    assert_int_equal(zm_used_memory(), base);
}


static void test_allocator_info_all_null(void **state) {
    (void)state;
    int bits = zm_get_allocator_info(NULL, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(bits, zt_expected_info_bits());
    zm_enable_thread_safeness();
    zm_set_background_thread(0);
    zm_set_background_thread(0);
}

static void test_calloc_num_zero_and_overflow(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    zm_set_oom_handler(counting_oom);
    oom_calls = 0;
    void *a = zm_calloc_num(0, zt_opaque(SIZE_MAX)), *b = zm_calloc_num(zt_opaque(SIZE_MAX), 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(oom_calls, 0);
    assert_int_equal(zt_used_since(base), zt_expected_size(a, 0) + zt_expected_size(b, 0));
    assert_null(zm_calloc_num(zt_opaque(SIZE_MAX / 2 + 1), 2));
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, SIZE_MAX);
    zm_free(a);
    zm_free(b);
    zm_set_oom_handler(NULL);
    assert_int_equal(zm_used_memory(), base);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fragmentation_ratio_used_zero, zt_reset_settings),
        cmocka_unit_test_teardown(test_smaps_bad_field_and_pid, zt_reset_settings),
        cmocka_unit_test_teardown(test_proc_stat_bad_index, zt_reset_settings),
        cmocka_unit_test_teardown(test_null_frees_and_sizes, zt_reset_settings),
        cmocka_unit_test_teardown(test_realloc_null_zero, zt_reset_settings),
        cmocka_unit_test_teardown(test_limit_edges, zt_reset_settings),
        cmocka_unit_test_teardown(test_allocator_info_all_null, zt_reset_settings),
        cmocka_unit_test_teardown(test_calloc_num_zero_and_overflow, zt_reset_settings),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
