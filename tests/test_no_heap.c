/* The accounting and query layers never allocate from the heap: a later tool
 * interposes malloc for whole programs and runs this code inside it. This
 * program interposes malloc itself and counts the calls around each path. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "zm_test.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static atomic_long heap_calls;

void *malloc(size_t n) {
    atomic_fetch_add(&heap_calls, 1);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
    atomic_fetch_add(&heap_calls, 1);
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
    atomic_fetch_add(&heap_calls, 1);
    return __libc_realloc(p, n);
}
void free(void *p) {
    if (p) atomic_fetch_add(&heap_calls, 1);
    __libc_free(p);
}

static long calls_during_first_alloc;

static void *first_allocation(void *arg) {
    void **out = arg;
    long before = atomic_load(&heap_calls);
    *out = zm_malloc(10); /* registers this thread: only the block itself may come from malloc */
    calls_during_first_alloc = atomic_load(&heap_calls) - before;
    return NULL;
}

static void test_thread_registration(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *p = NULL;
    pthread_t t;
    pthread_create(&t, NULL, first_allocation, &p);
    pthread_join(t, NULL);
    assert_int_equal(calls_during_first_alloc, 1);
    /* and the registration lost nothing: the block is counted, exactly */
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 10));
    zm_free(p);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_queries(void **state) {
    (void)state;
    (void)zm_get_rss(); /* the first call opens its descriptor */
    long before = atomic_load(&heap_calls);
    (void)zm_used_memory();
    (void)zm_used_memory_peak();
    zm_reset_peak();
    zm_set_limit(1 << 30);
    size_t base = zm_used_memory();
    void *p = zm_malloc(100);
    long long grown = zt_used_since(base), expect = (long long)zt_expected_size(p, 100);
    zm_free(p);
    zm_set_limit(0);
    (void)zm_get_rss();
    (void)zm_get_private_dirty(-1);
    (void)zm_get_smap_bytes_by_field("Rss:", -1);
    (void)zm_get_memory_size();
    (void)zm_get_memory_limit();
    long long v;
    (void)zm_get_proc_stat_ll(1, &v);
    (void)zm_get_fragmentation_ratio(1000);
    assert_int_equal(atomic_load(&heap_calls) - before, 2); /* the malloc and free above */
    assert_int_equal(grown, expect); /* and the block was counted exactly */
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_registration),
        cmocka_unit_test(test_queries),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
