/* Built with -O2 -D_FORTIFY_SOURCE=3, as distributions build packages: the
 * compiler sizes each block from the header's attributes, and glibc's checked
 * memset aborts on a write past that size. A *_usable block must take writes
 * up to its reported usable size; a plain zmalloc(n) block must still abort
 * one byte past n. */
#include "zm_test.h"

#if !defined(_FORTIFY_SOURCE) || _FORTIFY_SOURCE < 3 || !defined(__OPTIMIZE__)
#error "test_fortify must be built with -O2 -D_FORTIFY_SOURCE=3"
#endif

/* Sizes reach the calls at run time, so that the checks are the dynamic
 * ones (__memset_chk with __builtin_dynamic_object_size). */
static size_t request = 20;

static void fill(void *p, size_t n) { memset(p, 'x', n); }

static void test_usable_family_writes_whole_room(void **state) {
    (void)state;
    size_t base = zm_used_memory(), u = 0;
    size_t n = zt_opaque(request);

    char *p = zmalloc_usable(n, &u);
    assert_true(u >= n);
    fill(p, u);
    zfree(p);
    p = zcalloc_usable(n, &u);
    fill(p, u);
    zfree(p);
    p = ztrymalloc_usable(n, &u);
    fill(p, u);
    zfree(p);
    p = ztrycalloc_usable(n, &u);
    fill(p, u);
    p = zrealloc_usable(p, n * 3, &u);
    assert_true(u >= n * 3);
    fill(p, u);
    p = ztryrealloc_usable(p, n * 5, &u);
    fill(p, u);
    zfree(p);
    assert_int_equal(zt_used_since(base), 0);
}

static void test_extend_to_usable_writes_whole_room(void **state) {
    (void)state;
    size_t n = zt_opaque(request);
    char *p = zmalloc(n);
    size_t u = zmalloc_usable_size(p);
    p = extend_to_usable(p, u);
    fill(p, u);
    zfree(p);
}

/* The test can fail: FORTIFY really sees a plain block's size. */
static void test_plain_block_is_sized(void **state) {
    (void)state;
    size_t n = zt_opaque(request);
    char *p = zmalloc(n);
    assert_int_equal(__builtin_dynamic_object_size(p, 0), n);
    zfree(p);
}

static int write_one_past(void *arg) {
    (void)arg;
    close(STDERR_FILENO); /* the expected "buffer overflow detected" line */
    size_t n = zt_opaque(request);
    char *p = zmalloc(n);
    fill(p, n + 1);
    zfree(p);
    return 0;
}

static void test_overflow_of_plain_block_aborts(void **state) {
    (void)state;
    assert_int_equal(zt_fork_run(write_one_past, NULL, 30), 100 + SIGABRT);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usable_family_writes_whole_room),
        cmocka_unit_test(test_extend_to_usable_writes_whole_room),
        cmocka_unit_test(test_plain_block_is_sized),
        cmocka_unit_test(test_overflow_of_plain_block_aborts),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
