/* zm_malloc_aligned() and zm_try_malloc_aligned(): every power-of-two
 * alignment from 1 to 4096 at sizes around each backend's classes, counted
 * for exactly the size the allocator itself reports (or, in size-header
 * mode, the request plus the header or the alignment); bad alignments, the
 * limit and the OOM handler; realloc, the other frees, and frees on another
 * thread. */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>

#include "zm_test.h"

static const size_t sizes[] = {0,    1,    7,    8,    15,    16,     17,    24,   63,
                               64,   100,  1000, 4095, 4096,  5000,   40000, 70000,
                               1 << 20};
#define N_SIZES (sizeof sizes / sizeof sizes[0])
#define MAX_ALIGN_LOG 12 /* 4096 */

/* What a block from zm_malloc_aligned(align, size) must be accounted for,
 * from a source other than the code under test. */
static size_t expected_size(const void *p, size_t align, size_t size) {
    size_t plain = size < align ? align : size;
#ifdef ZM_SIZE_HEADER
    (void)p;
    return align > alignof(max_align_t) ? size + align : plain + alignof(max_align_t);
#else
    return zt_expected_size(p, plain);
#endif
}

static size_t oom_calls, oom_last;
static void counting_oom(size_t size) {
    oom_calls++;
    oom_last = size;
}

static void test_every_alignment_exact(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    for (int lg = 0; lg <= MAX_ALIGN_LOG; lg++) {
        size_t align = (size_t)1 << lg;
        void *blocks[N_SIZES];
        long long sum = 0;
        for (size_t i = 0; i < N_SIZES; i++) {
            void *p = (i % 2) ? zm_malloc_aligned(align, sizes[i])
                              : zm_try_malloc_aligned(align, sizes[i]);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            assert_int_equal(zm_size(p), expected_size(p, align, sizes[i]));
            assert_true(zm_usable_size(p) >= sizes[i]);
#ifdef __SANITIZE_THREAD__
            /* TSan's malloc(0) says 1 usable byte that its shadow still gives
             * to the block freed there before: write the request only. */
            memset(p, 0xa5, sizes[i]);
#else
            memset(p, 0xa5, zm_usable_size(p)); /* the whole usable room is the caller's */
#endif
            sum += (long long)zm_size(p);
            assert_int_equal(zt_used_since(base), sum);
            blocks[i] = p;
        }
        for (size_t i = 0; i < N_SIZES; i++) {
            sum -= (long long)zm_size(blocks[i]);
            zm_free(blocks[i]);
            assert_int_equal(zt_used_since(base), sum);
        }
    }
    assert_int_equal(zm_used_memory(), base);
}

static void test_bad_alignment(void **state) {
    (void)state;
    zm_set_oom_handler(counting_oom);
    oom_calls = 0;
    size_t base = zm_used_memory();
    const size_t bad[] = {0, 3, 24, 48, 1000, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(zm_try_malloc_aligned(zt_opaque(bad[i]), 64));
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_null(zm_malloc_aligned(zt_opaque(bad[i]), 64));
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(oom_calls, 0); /* a bad argument is not an out-of-memory */
    assert_int_equal(zm_used_memory(), base);
}

static void test_failures_limit_and_oom(void **state) {
    (void)state;
    zm_set_oom_handler(counting_oom);
    oom_calls = 0;
    size_t base = zm_used_memory();
    /* Too big: for the size rules, and for any alignment. */
    errno = 0;
    assert_null(zm_try_malloc_aligned(64, zt_opaque(SIZE_MAX - 8)));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(zm_try_malloc_aligned(zt_opaque((size_t)1 << (sizeof(size_t) * 8 - 1)), 16));
    assert_int_equal(errno, ENOMEM);
    /* The limit, with the try form and with the handler's. */
    zm_set_limit(base + 4096);
    errno = 0;
    assert_null(zm_try_malloc_aligned(256, 1 << 20));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(oom_calls, 0);
    assert_null(zm_malloc_aligned(256, 1 << 20));
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, 1 << 20);
    assert_int_equal(zm_used_memory(), base);
    /* Below the limit it still succeeds. */
    void *p = zm_try_malloc_aligned(256, 100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 256, 0);
    zm_free(p);
    assert_int_equal(zm_used_memory(), base);
}

static void test_realloc_and_other_frees(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    for (int lg = 5; lg <= MAX_ALIGN_LOG; lg++) {
        size_t align = (size_t)1 << lg;
        unsigned char *p = zm_malloc_aligned(align, 100);
        assert_non_null(p);
        for (int i = 0; i < 100; i++) p[i] = (unsigned char)i;
        /* Grows, then shrinks: the contents stay, max_align_t alignment stays. */
        p = zm_realloc(p, 5000);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        for (int i = 0; i < 100; i++) assert_int_equal(p[i], i);
        assert_int_equal(zt_used_since(base), zm_size(p));
        assert_int_equal(zm_size(p), zt_expected_size(p, 5000));
        p = zm_realloc(p, 50);
        assert_non_null(p);
        for (int i = 0; i < 50; i++) assert_int_equal(p[i], i);
        assert_int_equal(zt_used_since(base), zm_size(p));
        zm_free(p);
        assert_int_equal(zm_used_memory(), base);

        /* Shrunk in place or moved, an aligned block is counted by what it
         * became. */
        p = zm_malloc_aligned(align, 3000);
        p = zm_realloc(p, 10);
        assert_non_null(p);
        assert_int_equal(zt_used_since(base), zm_size(p));
        zm_free(p);

        size_t usable = 0;
        p = zm_malloc_aligned(align, 333);
        size_t expected = zm_usable_size(p);
        zm_free_usable(p, &usable);
        assert_int_equal(usable, expected);
        assert_int_equal(zm_used_memory(), base);

        p = zm_malloc_aligned(align, 333);
        zm_free_with_size(p, zm_usable_size(p));
        assert_int_equal(zm_used_memory(), base);
    }
}

#define THREAD_BLOCKS 256

static size_t thread_align(int i) { return (size_t)1 << (i % (MAX_ALIGN_LOG + 1)); }

/* Allocates the blocks and notes, while this thread still runs, what each
 * must be counted for. */
static size_t thread_sizes[THREAD_BLOCKS];
static void *allocate_aligned(void *arg) {
    void **blocks = arg;
    for (int i = 0; i < THREAD_BLOCKS; i++) {
        size_t align = thread_align(i);
        blocks[i] = zm_malloc_aligned(align, (size_t)i * 11);
        if (!blocks[i] || (uintptr_t)blocks[i] % align) return NULL;
        thread_sizes[i] = expected_size(blocks[i], align, (size_t)i * 11);
    }
    return blocks;
}

static void test_freed_on_another_thread(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    static void *blocks[THREAD_BLOCKS];
    pthread_t t;
    void *result = NULL;
    assert_int_equal(pthread_create(&t, NULL, allocate_aligned, blocks), 0);
    assert_int_equal(pthread_join(t, &result), 0);
    assert_ptr_equal(result, blocks);
    long long sum = 0;
    int changed = 0;
    for (int i = 0; i < THREAD_BLOCKS; i++) {
        sum += (long long)thread_sizes[i];
        changed += expected_size(blocks[i], thread_align(i), (size_t)i * 11) != thread_sizes[i];
    }
    assert_int_equal(zt_used_since(base), sum);
    /* mimalloc 3.0.1 (Debian 13) changes its answer for a block at an aligned
     * offset inside a larger slot while the block lives: mi_usable_size()
     * gives the whole slot once its thread has exited (7168 for a block that
     * had 6272 while the thread ran), and in one thread too once other blocks
     * of its page come and go (a quarter of 100 blocks of memalign(16384,
     * 100)); mimalloc 3.6 keeps the first answer. A free then takes off more
     * than the allocation counted, and no public call gives the first answer
     * back: the allocator's inconsistency, which no count can follow. */
    if (changed) {
        for (int i = 0; i < THREAD_BLOCKS; i++) zm_free(blocks[i]);
        zt_skip("the allocator's usable size of aligned blocks changed when their thread exited");
    }
    for (int i = 0; i < THREAD_BLOCKS; i++) zm_free(blocks[i]);
    assert_int_equal(zm_used_memory(), base);
}

/* Sizes that are multiples of the alignment, in new threads: mimalloc
 * 2.0.9's mi_malloc_aligned() returned such blocks misaligned there. */
static void *multiples(void *arg) {
    (void)arg;
    for (int round = 0; round < 20; round++)
        for (int lg = 0; lg <= MAX_ALIGN_LOG; lg++)
            for (size_t k = 1; k <= 4; k *= 2) {
                size_t align = (size_t)1 << lg;
                void *p = zm_try_malloc_aligned(align, k * align);
                int ok = p && (uintptr_t)p % align == 0;
                zm_free(p);
                if (!ok) return NULL;
            }
    return arg;
}

static void test_size_multiple_of_alignment(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    static int tokens[4];
    pthread_t t[4];
    void *result[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, multiples, &tokens[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &result[i]), 0);
        assert_ptr_equal(result[i], &tokens[i]);
    }
    assert_int_equal(zm_used_memory(), base);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_alignment_exact),
        cmocka_unit_test_teardown(test_bad_alignment, zt_reset_settings),
        cmocka_unit_test_teardown(test_failures_limit_and_oom, zt_reset_settings),
        cmocka_unit_test(test_realloc_and_other_frees),
        cmocka_unit_test(test_freed_on_another_thread),
        cmocka_unit_test(test_size_multiple_of_alignment),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
