/* The allocation API on one thread: sizes, zero, NULL, overflow, the OOM
 * handler, realloc's rules, and the counter moving by exactly the size each
 * block must be accounted for. That size comes from zt_expected_size() (the
 * allocator's own size function, or request + header in size-header mode),
 * never from zm_size(): a counter and a zm_size() that are wrong the same way
 * would agree with each other. */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zm_test.h"

static size_t oom_calls, oom_last;
static jmp_buf oom_jump;
static int oom_jumps;

static void counting_oom(size_t size) {
    oom_calls++;
    oom_last = size;
    if (oom_jumps) longjmp(oom_jump, 1);
}


static int setup_handler(void **state) {
    (void)state;
    oom_calls = oom_last = 0;
    oom_jumps = 0;
    zm_set_oom_handler(counting_oom);
    return 0;
}

static int restore_handler(void **state) {
    (void)state;
    zm_set_oom_handler(NULL);
    zm_set_limit(0);
    return 0;
}

static void test_counts_exact_sizes(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *blocks[64];
    size_t sum = 0;
    for (int i = 0; i < 64; i++) {
        size_t n = (size_t)i * 37;
        blocks[i] = zm_malloc(n);
        assert_non_null(blocks[i]);
        assert_int_equal(zm_size(blocks[i]), zt_expected_size(blocks[i], n));
        assert_int_equal(zm_usable_size(blocks[i]), zt_expected_usable(blocks[i], n));
        assert_true(zm_usable_size(blocks[i]) >= n);
        sum += zt_expected_size(blocks[i], n);
        assert_int_equal(zt_used_since(base), sum);
    }
    for (int i = 0; i < 64; i++) {
        sum -= zt_expected_size(blocks[i], (size_t)i * 37);
        zm_free(blocks[i]);
        assert_int_equal(zt_used_since(base), sum);
    }
    assert_int_equal(zt_used_since(base), 0);
}

static void test_zero_size_unique(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *a = zm_malloc(0), *b = zm_malloc(0), *c = zm_calloc(0), *d = zm_calloc_num(7, 0),
         *e = zm_calloc_num(0, 9), *f = zm_try_malloc(0);
    void *all[] = {a, b, c, d, e, f};
    for (int i = 0; i < 6; i++) {
        assert_non_null(all[i]);
        for (int j = 0; j < i; j++) assert_ptr_not_equal(all[i], all[j]);
    }
    size_t sum = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(zm_size(all[i]), zt_expected_size(all[i], 0));
        sum += zt_expected_size(all[i], 0);
    }
    assert_int_equal(zt_used_since(base), sum);
    for (int i = 0; i < 6; i++) zm_free(all[i]);
    zm_free(NULL);
    zm_free_usable(NULL, NULL);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_calloc_zeroed(void **state) {
    (void)state;
    for (size_t n = 1; n < 300000; n = n * 3 + 1) {
        unsigned char *p = zm_calloc(n);
        for (size_t i = 0; i < n; i++) assert_int_equal(p[i], 0);
        memset(p, 0xAB, n);
        zm_free(p);
        unsigned char *q = zm_calloc_num(n, 3);
        for (size_t i = 0; i < n * 3; i++) assert_int_equal(q[i], 0);
        zm_free(q);
    }
}

static void test_alignment(void **state) {
    (void)state;
    void *keep[200];
    for (size_t i = 0; i < 200; i++) {
        size_t n = 16 + i * 13;
        keep[i] = (i & 1) ? zm_malloc(n) : zm_calloc(n);
        assert_int_equal((uintptr_t)keep[i] % alignof(max_align_t), 0);
        keep[i] = zm_realloc(keep[i], n * 2 + 5);
        assert_int_equal((uintptr_t)keep[i] % alignof(max_align_t), 0);
    }
    for (size_t i = 0; i < 200; i++) zm_free(keep[i]);
}

static void test_usable_family(void **state) {
    (void)state;
    size_t base = zm_used_memory(), u = 0, freed = 0;
    char *p = zm_malloc_usable(100, &u);
    assert_true(u >= 100);
    assert_int_equal(u, zt_expected_usable(p, 100));
    assert_int_equal(u, zm_usable_size(p));
    assert_ptr_equal(zm_extend_to_usable(p, u), p); /* the same block, only retyped */
    memset(zm_extend_to_usable(p, u), 1, u);
    size_t u2 = 0;
    p = zm_realloc_usable(p, 5000, &u2);
    assert_true(u2 >= 5000);
    assert_int_equal(u2, zt_expected_usable(p, 5000));
    assert_int_equal(u2, zm_usable_size(p));
    assert_int_equal(p[99], 1);
    size_t u3 = 0;
    char *q = zm_calloc_usable(33, &u3);
    assert_int_equal(u3, zt_expected_usable(q, 33));
    size_t u4 = 0, u5 = 0, u6 = 0;
    void *r = zm_try_malloc_usable(10, &u4), *s = zm_try_calloc_usable(20, &u5);
    assert_int_equal(u4, zt_expected_usable(r, 10));
    r = zm_try_realloc_usable(r, 40, &u6);
    assert_int_equal(u5, zt_expected_usable(s, 20));
    assert_int_equal(u6, zt_expected_usable(r, 40));
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 5000) + zt_expected_size(q, 33) +
                                              zt_expected_size(r, 40) + zt_expected_size(s, 20));
    /* usable may be NULL: the block is still made and counted */
    void *t = zm_malloc_usable(70, NULL);
    assert_non_null(t);
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 5000) + zt_expected_size(q, 33) +
                                              zt_expected_size(r, 40) + zt_expected_size(s, 20) +
                                              zt_expected_size(t, 70));
    zm_free_usable(t, NULL);
    size_t pu = zt_expected_usable(p, 5000);
    zm_free_usable(p, &freed);
    assert_int_equal(freed, pu);
    zm_free_usable(q, NULL);
    zm_free_with_size(r, u6);
    zm_free_with_size(s, u5);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_strdup(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    char *s = zm_strdup("hello, zmalloc");
    assert_string_equal(s, "hello, zmalloc");
    assert_int_equal(zt_used_since(base), zt_expected_size(s, sizeof "hello, zmalloc"));
    zm_free(s);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_realloc_rules(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    char *p = zm_realloc(NULL, 10); /* allocates */
    assert_non_null(p);
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 10));
    strcpy(p, "abcdefghi");
    for (size_t n = 11; n < 1u << 22; n *= 3) {
        p = zm_realloc(p, n);
        assert_string_equal(p, "abcdefghi");
        assert_int_equal(zt_used_since(base), zt_expected_size(p, n));
    }
    p = zm_realloc(p, 12); /* shrinking keeps the prefix */
    assert_memory_equal(p, "abcdefghi", 10);
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 12));
    errno = 0;
    assert_null(zm_realloc(p, 0)); /* frees, and is no failure */
    assert_int_equal(oom_calls, 0);
    assert_int_equal(zt_used_since(base), 0);
    void *q = zm_try_malloc(50);
    assert_int_equal(zt_used_since(base), zt_expected_size(q, 50));
    assert_null(zm_try_realloc(q, 0));
    assert_int_equal(zt_used_since(base), 0);
}

static void test_overflow_try(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    const size_t bad[] = {zt_opaque((size_t)PTRDIFF_MAX), zt_opaque((size_t)PTRDIFF_MAX + 1),
                          zt_opaque(SIZE_MAX), zt_opaque(SIZE_MAX - 15)};
    for (int i = 0; i < 4; i++) {
        size_t u = 77;
        errno = 0;
        assert_null(zm_try_malloc(bad[i]));
        assert_int_equal(errno, ENOMEM);
        assert_null(zm_try_calloc(bad[i]));
        assert_null(zm_try_malloc_usable(bad[i], &u));
        assert_int_equal(u, 0);
        u = 77;
        assert_null(zm_try_calloc_usable(bad[i], &u));
        assert_int_equal(u, 0);
        char *p = zm_malloc(8);
        strcpy(p, "keep");
        size_t before = zt_expected_size(p, 8);
        assert_null(zm_try_realloc(p, bad[i]));
        assert_string_equal(p, "keep"); /* still valid, unchanged, still counted */
        assert_int_equal(zt_used_since(base), before);
        u = 5;
        assert_null(zm_try_realloc_usable(p, bad[i], &u));
        assert_int_equal(u, 0);
        zm_free(p);
    }
    assert_int_equal(oom_calls, 0);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_overflow_calls_handler(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    assert_null(zm_malloc(zt_opaque(SIZE_MAX)));
    assert_int_equal(oom_calls, 1);
    assert_int_equal(oom_last, SIZE_MAX);
    assert_null(zm_calloc(zt_opaque((size_t)PTRDIFF_MAX)));
    assert_int_equal(oom_last, (size_t)PTRDIFF_MAX);
    assert_null(zm_calloc_num(zt_opaque(SIZE_MAX / 2), 3)); /* product overflows */
    assert_int_equal(oom_calls, 3);
    assert_int_equal(oom_last, SIZE_MAX);
    /* 2^(bits-1) = PTRDIFF_MAX + 1: too big, on 32-bit and 64-bit alike */
    const unsigned half = sizeof(size_t) * 4;
    assert_null(zm_calloc_num(zt_opaque((size_t)1 << half), (size_t)1 << (half - 1)));
    assert_int_equal(oom_last, (size_t)PTRDIFF_MAX + 1);
    size_t u = 9;
    assert_null(zm_malloc_usable(zt_opaque(SIZE_MAX - 1), &u));
    assert_int_equal(u, 0);
    assert_int_equal(oom_last, SIZE_MAX - 1);
    char *p = zm_strdup("survivor");
    assert_null(zm_realloc(p, zt_opaque(SIZE_MAX - 3)));
    assert_int_equal(oom_last, SIZE_MAX - 3);
    assert_string_equal(p, "survivor");
    assert_null(zm_realloc_usable(p, zt_opaque((size_t)PTRDIFF_MAX), &u));
    assert_int_equal(oom_calls, 7);
    zm_free(p);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_handler_longjmp_keeps_counts(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    void *volatile held = zm_malloc(1000);
    oom_jumps = 1;
    if (setjmp(oom_jump) == 0) {
        zm_malloc(zt_opaque(SIZE_MAX - 100));
        fail_msg("handler did not jump");
    }
    assert_int_equal(oom_last, SIZE_MAX - 100);
    zm_set_limit(zm_used_memory() + 100); /* a refused-by-limit call jumps out too */
    if (setjmp(oom_jump) == 0) {
        zm_realloc(held, 1 << 20);
        fail_msg("handler did not jump");
    }
    zm_set_limit(0);
    assert_int_equal(zt_used_since(base), zt_expected_size(held, 1000));
    zm_free(held);
    assert_int_equal(zt_used_since(base), 0);
}

/* The default handler: one line on stderr, then abort(). Run in a child. */
static void test_default_handler_aborts(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        zm_set_oom_handler(counting_oom);
        zm_set_oom_handler(NULL); /* restores the default */
        zm_malloc(zt_opaque(SIZE_MAX));
        _exit(0);
    }
    close(fds[1]);
    char buf[256] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_true(n > 0);
    char expect[128];
    snprintf(expect, sizeof expect, "zmalloc: out of memory trying to allocate %zu bytes\n", SIZE_MAX);
    /* Only the first line: an emulator (qemu-user) adds its own about the abort. */
    char *nl = strchr(buf, '\n');
    if (nl) nl[1] = '\0';
    assert_string_equal(buf, expect);
}

static void test_free_with_size_counts(void **state) {
    (void)state;
    size_t base = zm_used_memory();
    for (size_t n = 1; n < 1 << 20; n = n * 2 + 3) {
        size_t u;
        void *p = zm_malloc_usable(n, &u);
        assert_int_equal(u, zt_expected_usable(p, n));
        assert_int_equal(zt_used_since(base), zt_expected_size(p, n));
        zm_free_with_size(p, u);
        assert_int_equal(zt_used_since(base), 0);
    }
}

static void test_names_and_config(void **state) {
    (void)state;
    assert_true(strlen(ZMALLOC_LIB) > 0);
    zmalloc_enable_thread_safeness();
    size_t base = zm_used_memory();
    void *p = zmalloc(10); /* the Redis names reach the same functions */
    assert_int_equal(zt_used_since(base), zt_expected_size(p, 10));
    assert_int_equal(zmalloc_size(p), zt_expected_size(p, 10));
    /* HAVE_MALLOC_SIZE (zmalloc_config.h) is set exactly when there is no
     * size header, and zmalloc_usable_size follows it. */
#if defined(HAVE_MALLOC_SIZE) == defined(ZM_SIZE_HEADER)
#error "HAVE_MALLOC_SIZE must be defined exactly in the builds without a size header"
#endif
#ifdef HAVE_MALLOC_SIZE
    assert_int_equal(zmalloc_usable_size(p), zt_expected_size(p, 10));
#else
    assert_int_equal(zmalloc_usable_size(p), 10);
    assert_int_equal(zmalloc_size(p), 10 + alignof(max_align_t));
#endif
    zfree(p);
    assert_int_equal(zt_used_since(base), 0);
    assert_int_equal(zm_size(NULL), 0);
    assert_int_equal(zm_usable_size(NULL), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_exact_sizes),
        cmocka_unit_test(test_zero_size_unique),
        cmocka_unit_test(test_calloc_zeroed),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_usable_family),
        cmocka_unit_test(test_strdup),
        cmocka_unit_test_setup_teardown(test_realloc_rules, setup_handler, restore_handler),
        cmocka_unit_test_setup_teardown(test_overflow_try, setup_handler, restore_handler),
        cmocka_unit_test_setup_teardown(test_overflow_calls_handler, setup_handler, restore_handler),
        cmocka_unit_test_setup_teardown(test_handler_longjmp_keeps_counts, setup_handler,
                                        restore_handler),
        cmocka_unit_test(test_default_handler_aborts),
        cmocka_unit_test(test_free_with_size_counts),
        cmocka_unit_test(test_names_and_config),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
