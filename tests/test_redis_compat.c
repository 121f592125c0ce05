/* Call sites of every released zmalloc.h form (Redis 6.2, 7.0, 7.2, 7.4,
 * 8.0; Valkey 7.2, 8.0, 8.1) compile against our header and do the same job.
 * Sizes are checked against zt_expected_size, not against zmalloc_size. */
#define REDIS_TEST 1 /* Redis's test builds declare zmalloc_test */
#include "zm_test.h"

static void test_allocator_info_every_arity(void **state) {
    (void)state;
    size_t allocated = 1, active = 1, resident = 1, retained = 1, muzzy = 1, frag = 1;
    int all = zmalloc_get_allocator_info(&allocated, &active, &resident, &retained, &muzzy, &frag);
    /* Redis 6.2-7.2, Valkey 7.2 */
    assert_int_equal(zmalloc_get_allocator_info(&allocated, &active, &resident), all);
    /* Valkey 8.1 */
    assert_int_equal(zmalloc_get_allocator_info(&allocated, &active, &resident, &retained, &muzzy),
                     all);
    /* Redis 7.4, 8.0 */
    assert_int_equal(
        zmalloc_get_allocator_info(1, &allocated, &active, &resident, &retained, &muzzy, &frag),
        all);
    /* A figure the backend does not have is stored as 0. */
    if (!(all & ZMALLOC_INFO_RETAINED)) assert_int_equal(retained, 0);
    assert_int_equal(zmalloc_get_allocator_info_by_arena(0, 1, &allocated, &active, &resident, &frag),
                     0);
    assert_int_equal(allocated, 0);
}

static void test_usable_forms(void **state) {
    (void)state;
    size_t base = zmalloc_used_memory(), u = 0;
    char *p = zmalloc_usable(20, &u);
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 20));
    p = zrealloc_usable(p, 300, &u);
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 300));
    zfree_usable(p, &u); /* Redis 6.2-7.2 */
    assert_true(u >= 300);
    p = ztrymalloc_usable(40, NULL);
    p = extend_to_usable(p, zmalloc_usable_size(p)); /* 7.0.x and later */
    zfree_with_size(p, zmalloc_usable_size(p));    /* Valkey 8 */
    assert_int_equal(zt_used_since(base), 0);
}

static void test_valkey_names(void **state) {
    (void)state;
    size_t base = zmalloc_used_memory();
    void *p = valkey_malloc(64);
    p = valkey_realloc(p, 128);
    void *q = valkey_calloc(10);
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 128) + zt_expected_size(q, 10));
    valkey_free(p);
    valkey_free(q);
    void *z = zcalloc_num(4, 16);
    assert_int_equal(zt_used_since(base), zt_expected_size(z, 64));
    zfree(z);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_query_forms(void **state) {
    (void)state;
    assert_int_equal(jemalloc_purge(), 0);
    set_jemalloc_bg_thread(0);
    zlibc_trim();
    long long ticks = -1;
    assert_int_equal(get_proc_stat_ll(14, &ticks), 1);
    assert_true(ticks >= 0);
    char *big = zmalloc(1 << 20);
    memset(big, 1, 1 << 20);
    zmadvise_dontneed(big);
    assert_int_equal(big[4096], 0); /* whole pages inside the block were dropped */
    zfree(big);
    assert_true(zmalloc_get_rss() > 0);
    assert_true(zmalloc_get_private_dirty(-1) > 0);
    assert_true(zmalloc_get_memory_size() > 0);
    assert_int_equal(zmalloc_test(0, NULL, 0), 0); /* REDIS_TEST builds */
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocator_info_every_arity),
        cmocka_unit_test(test_usable_forms),
        cmocka_unit_test(test_valkey_names),
        cmocka_unit_test(test_query_forms),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
