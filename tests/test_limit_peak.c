/* The hard limit and the peak, against figures taken from zt_expected_size()
 * (not from zm_size(), the code under test). */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "zm_test.h"

static size_t oom_calls, oom_last;
static void counting_oom(size_t size) {
    oom_calls++;
    oom_last = size;
}

static void test_limit_refuses_and_counts_nothing(void **state) {
    (void)state;
    zm_set_oom_handler(counting_oom);
    size_t base = zm_used_memory();
    zm_set_limit(base + 10000);
    assert_int_equal(zm_get_limit(), base + 10000);
    void *a = zm_try_malloc(5000);
    assert_non_null(a);
    size_t used = zm_used_memory();
    assert_int_equal(used, base + zt_expected_size(a, 5000));
    errno = 0;
    assert_null(zm_try_malloc(base + 10001 - used)); /* one byte too many */
    assert_int_equal(errno, ENOMEM);
    assert_null(zm_try_calloc(8000));
    assert_int_equal(zm_used_memory(), used);
    assert_null(zm_malloc(9000));
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, 9000);
    void *b = zm_try_malloc(base + 10000 - used); /* exactly up to the limit fits */
    assert_non_null(b);
    assert_int_equal(zm_used_memory(), used + zt_expected_size(b, base + 10000 - used));
    zm_free(b);
    /* realloc is checked on its growth; a refused one keeps the block */
    memset(a, 7, 5000);
    assert_null(zm_try_realloc(a, 20000));
    assert_int_equal(((unsigned char *)a)[4999], 7);
    assert_int_equal(zm_used_memory(), used);
    void *smaller = zm_try_realloc(a, 100); /* shrinking is always allowed */
    assert_non_null(smaller);
    assert_int_equal(zt_used_since(base), zt_expected_size(smaller, 100));
    zm_set_limit(0);
    assert_int_equal(zm_get_limit(), 0);
    void *big = zm_try_malloc(1 << 20); /* no limit any more */
    assert_non_null(big);
    zm_free(big);
    zm_free(smaller);
    assert_int_equal(zt_used_since(base), 0);
    zm_set_oom_handler(NULL);
}

static void test_limit_below_current_use(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *a = zm_malloc(4096);
    zm_set_limit(1); /* below what is already used: every growth fails */
    errno = 0;
    assert_null(zm_try_malloc(1));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(zt_used_since(base), zt_expected_size(a, 4096)); /* nothing counted */
    zm_free(a); /* freeing always works */
    assert_int_equal(zt_used_since(base), 0);
    zm_set_limit(0);
}

enum { RACE_REQ = 1000, RACE_MAX = 10000 };

static void *alloc_until_refused(void *arg) {
    void **list = arg;
    for (int i = 0; i < RACE_MAX; i++) {
        list[i] = zm_try_malloc(RACE_REQ);
        if (!list[i]) break;
    }
    return NULL;
}

/* Threads racing to the limit. Every block is counted exactly; and since
 * only allocations happen, the last refusal saw more than limit - RACE_REQ
 * (so used ends above that), while each success saw room for RACE_REQ with
 * at most the three other threads' blocks not yet counted: used ends at most
 * limit - RACE_REQ + 4 blocks (the documented overshoot: size-class rounding
 * plus the requests in flight). */
static void test_limit_under_threads(void **state) {
    (void)state;
    void *probe = zm_malloc(RACE_REQ);
    size_t one = zt_expected_size(probe, RACE_REQ);
    zm_free(probe);
    size_t base = zm_used_memory();
    size_t limit = base + 2 * 1024 * 1024;
    zm_set_limit(limit);
    static void *lists[4][RACE_MAX];
    memset(lists, 0, sizeof lists);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, alloc_until_refused, lists[i]);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    size_t used = zm_used_memory(), held = 0;
    for (int i = 0; i < 4; i++) {
        assert_null(lists[i][RACE_MAX - 1]); /* each thread was refused before its list ran out */
        for (int j = 0; j < RACE_MAX && lists[i][j]; j++) held += zt_expected_size(lists[i][j], RACE_REQ);
    }
    assert_int_equal(used, base + held);
    assert_true(used > limit - RACE_REQ); /* they did reach it */
    assert_true(used <= limit - RACE_REQ + 4 * one);
    zm_set_limit(0);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < RACE_MAX; j++) zm_free(lists[i][j]);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_peak(void **state) {
    (void)state;
    zm_reset_peak();
    size_t base = zm_used_memory();
    assert_int_equal(zm_used_memory_peak(), base);
    void *big = zm_malloc(1 << 20); /* >= 64 KiB: in the peak at once */
    size_t top = base + zt_expected_size(big, 1 << 20);
    /* One thread, nothing else moving: the peak is exactly that figure. */
    assert_int_equal(zm_used_memory_peak(), top);
    zm_free(big);
    assert_int_equal(zm_used_memory(), base);
    assert_int_equal(zm_used_memory_peak(), top); /* the peak stays */
    zm_reset_peak();
    assert_int_equal(zm_used_memory_peak(), base);
    /* small blocks: seen by zm_used_memory() at the latest */
    void *small = zm_malloc(100);
    size_t now = zm_used_memory();
    zm_free(small);
    assert_int_equal(zm_used_memory_peak(), now);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_refuses_and_counts_nothing),
        cmocka_unit_test(test_limit_below_current_use),
        cmocka_unit_test(test_limit_under_threads),
        cmocka_unit_test(test_peak),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
