/* ZMALLOC_NO_REDIS_NAMES: the header then defines none of the Redis/Valkey
 * names, neither as macros (checked by the preprocessor below) nor as
 * functions or anything else (each name is declared again here, as an
 * enumerator: a declaration already made by the header would not compile),
 * and the zm_* API works on its own. REDIS_TEST and SERVER_TEST are defined
 * too: in Redis's test builds the header adds zmalloc_test, which must go as
 * well. */
#define ZMALLOC_NO_REDIS_NAMES 1
#define REDIS_TEST 1
#define SERVER_TEST 1

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "zm_test.h" /* includes zmalloc.h, and uses zm_* names only */

/* Every name the header defines without ZMALLOC_NO_REDIS_NAMES. */
#ifdef zmalloc
#error "zmalloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zcalloc
#error "zcalloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zcalloc_num
#error "zcalloc_num is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zrealloc
#error "zrealloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zfree
#error "zfree is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zstrdup
#error "zstrdup is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef ztrymalloc
#error "ztrymalloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef ztrycalloc
#error "ztrycalloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef ztryrealloc
#error "ztryrealloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_usable
#error "zmalloc_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zcalloc_usable
#error "zcalloc_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zrealloc_usable
#error "zrealloc_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef ztrymalloc_usable
#error "ztrymalloc_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef ztrycalloc_usable
#error "ztrycalloc_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef ztryrealloc_usable
#error "ztryrealloc_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zfree_usable
#error "zfree_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zfree_with_size
#error "zfree_with_size is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zlibc_free
#error "zlibc_free is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_size
#error "zmalloc_size is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_usable_size
#error "zmalloc_usable_size is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef extend_to_usable
#error "extend_to_usable is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_used_memory
#error "zmalloc_used_memory is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_used_memory_peak
#error "zmalloc_used_memory_peak is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_reset_peak
#error "zmalloc_reset_peak is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_set_limit
#error "zmalloc_set_limit is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_limit
#error "zmalloc_get_limit is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_set_oom_handler
#error "zmalloc_set_oom_handler is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_enable_thread_safeness
#error "zmalloc_enable_thread_safeness is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_rss
#error "zmalloc_get_rss is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_fragmentation_ratio
#error "zmalloc_get_fragmentation_ratio is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_private_dirty
#error "zmalloc_get_private_dirty is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_smap_bytes_by_field
#error "zmalloc_get_smap_bytes_by_field is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_memory_size
#error "zmalloc_get_memory_size is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_memory_limit
#error "zmalloc_get_memory_limit is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef get_proc_stat_ll
#error "get_proc_stat_ll is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_allocator_info
#error "zmalloc_get_allocator_info is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_get_allocator_info_by_arena
#error "zmalloc_get_allocator_info_by_arena is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef set_jemalloc_bg_thread
#error "set_jemalloc_bg_thread is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef jemalloc_purge
#error "jemalloc_purge is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zlibc_trim
#error "zlibc_trim is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmadvise_dontneed
#error "zmadvise_dontneed is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_no_tcache
#error "zmalloc_no_tcache is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zfree_no_tcache
#error "zfree_no_tcache is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef zmalloc_test
#error "zmalloc_test is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef valkey_malloc
#error "valkey_malloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef valkey_calloc
#error "valkey_calloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef valkey_realloc
#error "valkey_realloc is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif
#ifdef valkey_free
#error "valkey_free is a macro under ZMALLOC_NO_REDIS_NAMES"
#endif

/* The same names as ordinary identifiers of this program's own. */
enum redis_names_are_free {
    zmalloc,
    zcalloc,
    zcalloc_num,
    zrealloc,
    zfree,
    zstrdup,
    ztrymalloc,
    ztrycalloc,
    ztryrealloc,
    zmalloc_usable,
    zcalloc_usable,
    zrealloc_usable,
    ztrymalloc_usable,
    ztrycalloc_usable,
    ztryrealloc_usable,
    zfree_usable,
    zfree_with_size,
    zlibc_free,
    zmalloc_size,
    zmalloc_usable_size,
    extend_to_usable,
    zmalloc_used_memory,
    zmalloc_used_memory_peak,
    zmalloc_reset_peak,
    zmalloc_set_limit,
    zmalloc_get_limit,
    zmalloc_set_oom_handler,
    zmalloc_enable_thread_safeness,
    zmalloc_get_rss,
    zmalloc_get_fragmentation_ratio,
    zmalloc_get_private_dirty,
    zmalloc_get_smap_bytes_by_field,
    zmalloc_get_memory_size,
    zmalloc_get_memory_limit,
    get_proc_stat_ll,
    zmalloc_get_allocator_info,
    zmalloc_get_allocator_info_by_arena,
    set_jemalloc_bg_thread,
    jemalloc_purge,
    zlibc_trim,
    zmadvise_dontneed,
    zmalloc_no_tcache,
    zfree_no_tcache,
    zmalloc_test,
    valkey_malloc,
    valkey_calloc,
    valkey_realloc,
    valkey_free,
    REDIS_NAME_COUNT
};

static void test_names_are_free(void **state) {
    (void)state;
    /* The enumerators are this program's: the first is 0, and there are as
     * many as the names listed. */
    assert_int_equal(zmalloc, 0);
    assert_int_equal(valkey_free, REDIS_NAME_COUNT - 1);
    assert_int_equal(REDIS_NAME_COUNT, 48);
}

static size_t oom_calls;
static void counting_oom(size_t size) {
    (void)size;
    oom_calls++;
}

/* The zm_* API without the Redis names: every allocating and freeing call,
 * counted exactly (zt_expected_size: the allocator's own size, or request +
 * header). */
static void test_zm_api_works(void **state) {
    (void)state;
    size_t base = zm_used_memory(), u = 0;
    char *a = zm_malloc(100);
    void *b = zm_calloc(200), *c = zm_calloc_num(3, 50), *d = zm_try_malloc(10), *e = zm_try_calloc(20);
    char *s = zm_strdup("no redis names");
    void *f = zm_malloc_usable(30, &u);
    assert_non_null(a);
    assert_string_equal(s, "no redis names");
    long long held = (long long)(zt_expected_size(a, 100) + zt_expected_size(b, 200) + zt_expected_size(c, 150) +
                                 zt_expected_size(d, 10) + zt_expected_size(e, 20) +
                                 zt_expected_size(s, sizeof "no redis names") + zt_expected_size(f, 30));
    assert_int_equal(zt_used_since(base), held);
    assert_int_equal(zm_size(a), zt_expected_size(a, 100));
    memset(a, 'x', 100);
    held -= (long long)(zt_expected_size(a, 100) + zt_expected_size(d, 10));
    a = zm_realloc(a, 5000);
    d = zm_try_realloc(d, 3000);
    assert_non_null(d);
    assert_int_equal(a[99], 'x');
    held += (long long)(zt_expected_size(a, 5000) + zt_expected_size(d, 3000));
    assert_int_equal(zt_used_since(base), held);
    zm_free(a);
    zm_free(b);
    zm_free_usable(c, NULL);
    zm_free_with_size(f, u);
    zm_free(d);
    zm_free(e);
    zm_free(s);
    assert_int_equal(zt_used_since(base), 0);

    /* limit, OOM handler and peak */
    zm_set_oom_handler(counting_oom);
    zm_set_limit(zm_used_memory() + 1000);
    assert_int_equal(zm_get_limit(), zm_used_memory() + 1000);
    errno = 0;
    assert_null(zm_try_malloc(5000));
    assert_int_equal(errno, ENOMEM);
    assert_null(zm_malloc(5000));
    assert_int_equal(oom_calls, 1);
    zm_set_limit(0);
    zm_set_oom_handler(NULL);
    zm_reset_peak();
    assert_int_equal(zm_used_memory_peak(), zm_used_memory());
    zm_enable_thread_safeness();

    /* the figures */
    assert_true(zm_get_rss() > 0);
    assert_true(zm_get_memory_size() > 0);
    assert_true(zm_get_memory_limit() <= zm_get_memory_size());
    long long pid = 0;
    assert_int_equal(zm_get_proc_stat_ll(1, &pid), 1);
    assert_int_equal(pid, (long long)getpid());
    (void)zm_get_allocator_info(NULL, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(zm_purge(), 0);
    void *n = zm_malloc_no_tcache(64);
    assert_int_equal(zt_used_since(base), zt_expected_size(n, 64));
    zm_free_no_tcache(n);
    assert_int_equal(zt_used_since(base), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_are_free),
        cmocka_unit_test(test_zm_api_works),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
