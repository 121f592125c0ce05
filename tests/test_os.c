/* The OS layer (src/os*.c, os.h): /proc/self/stat's fields and madvise; the
 * other readers have files of their own (test_os_rss.c, test_os_smaps.c,
 * test_os_memory.c). */
#include "zt_os.h"

/* ------------------------------------------------------------------------
 * stat parser and query
 * ---------------------------------------------------------------------- */

static int stat_field(const char *s, size_t n, int i, long long *res) {
    char *b = exact_copy(s, n);
    int r = zm__parse_stat_field(b, n, i, res);
    free(b);
    return r;
}
#define STAT(lit, i, res) stat_field(lit, sizeof(lit) - 1, i, res)

static const char tricky_stat[] = "4242 ((a b) c)) S 7 8 -1 -9223372036854775808 9223372036854775807 12\n";

static void test_parse_stat_tricky_comm(void **state) {
    (void)state;
    long long v = 77;
    assert_int_equal(STAT(tricky_stat, 1, &v), 1);
    assert_int_equal(v, 4242);
    assert_int_equal(STAT(tricky_stat, 4, &v), 1);
    assert_int_equal(v, 7);
    assert_int_equal(STAT(tricky_stat, 5, &v), 1);
    assert_int_equal(v, 8);
    assert_int_equal(STAT(tricky_stat, 6, &v), 1);
    assert_int_equal(v, -1);
    assert_int_equal(STAT(tricky_stat, 7, &v), 1);
    assert_true(v == LLONG_MIN);
    assert_int_equal(STAT(tricky_stat, 8, &v), 1);
    assert_true(v == LLONG_MAX);
    assert_int_equal(STAT(tricky_stat, 9, &v), 1);
    assert_int_equal(v, 12);

    v = 77;
    assert_int_equal(STAT(tricky_stat, 2, &v), 0); /* comm */
    assert_int_equal(STAT(tricky_stat, 3, &v), 0); /* state letter */
    assert_int_equal(STAT(tricky_stat, 10, &v), 0);
    assert_int_equal(STAT(tricky_stat, 1000, &v), 0);
    assert_int_equal(STAT(tricky_stat, INT_MAX, &v), 0);
    assert_int_equal(STAT(tricky_stat, 0, &v), 0);
    assert_int_equal(STAT(tricky_stat, -3, &v), 0);
    assert_int_equal(v, 77);
    assert_int_equal(zm__parse_stat_field(tricky_stat, sizeof tricky_stat - 1, 1, NULL), 0);
    assert_int_equal(zm__parse_stat_field(NULL, 0, 1, &v), 0);
}

static void test_parse_stat_malformed(void **state) {
    (void)state;
    long long v = 77;
    assert_int_equal(STAT("1 (x) S 9223372036854775808 2\n", 4, &v), 0);
    assert_int_equal(STAT("1 (x) S -9223372036854775809 2\n", 4, &v), 0);
    assert_int_equal(STAT("1 (x) S 18446744073709551615 2\n", 4, &v), 0);
    assert_int_equal(STAT("1 (x) S 12a 2\n", 4, &v), 0);
    assert_int_equal(STAT("1 (x) S - 2\n", 4, &v), 0);
    assert_int_equal(STAT("1 (x) S +5 2\n", 4, &v), 0);
    assert_int_equal(STAT("1 (x) S  5 2\n", 4, &v), 0); /* empty field */
    assert_int_equal(STAT("1 (x)S 5 2\n", 4, &v), 0);
    assert_int_equal(STAT("1 (x S 5 2\n", 4, &v), 0); /* no ')' */
    assert_int_equal(STAT("1 (x) S 5\n6 7\n", 5, &v), 0); /* past the line */
    assert_int_equal(STAT("", 1, &v), 0);
    assert_int_equal(STAT("", 4, &v), 0);
    assert_int_equal(STAT("x1 (x) S 5\n", 1, &v), 0);
    assert_int_equal(STAT(")", 3, &v), 0);
    assert_int_equal(v, 77);

    /* No trailing newline, and a buffer cut short by len. */
    assert_int_equal(STAT("1 (x) S 5 6", 5, &v), 1);
    assert_int_equal(v, 6);
    assert_int_equal(stat_field("1 (x) S 5 678 9\n", 12, 5, &v), 1);
    assert_int_equal(v, 67);
    assert_int_equal(stat_field("1 (x) S 5 678 9\n", 12, 6, &v), 0);
}

static void test_proc_stat_live(void **state) {
    (void)state;
    if (zt_under_emulator()) zt_skip("qemu-user emulates /proc/self/stat only in part");
    long long v = 0;
    errno = 4321;
    assert_int_equal(zm__os_proc_stat_ll(1, &v), 1);
    assert_int_equal(v, getpid());
    assert_int_equal(zm__os_proc_stat_ll(4, &v), 1);
    assert_int_equal(v, getppid());
    assert_int_equal(zm__os_proc_stat_ll(5, &v), 1);
    assert_int_equal(v, getpgrp());
    assert_int_equal(zm__os_proc_stat_ll(24, &v), 1); /* rss, in pages */
    assert_true(v > 0);
    assert_int_equal(errno, 4321);

    static const int bad[] = {0, -1, 2, 3, 1000, INT_MAX, INT_MIN};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        v = 77;
        errno = 0;
        assert_int_equal(zm__os_proc_stat_ll(bad[k], &v), 0);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(v, 77);
    }
    errno = 0;
    assert_int_equal(zm__os_proc_stat_ll(1, NULL), 0);
    assert_int_equal(errno, EINVAL);
}

/* ------------------------------------------------------------------------
 * madvise
 * ---------------------------------------------------------------------- */

static void test_dontneed_whole_pages_only(void **state) {
    (void)state;
    size_t pg = page();
    unsigned char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 0xAB, 4 * pg);

    errno = 4321;
    zm__os_dontneed(p + 100, pg - 100); /* no whole page */
    zm__os_dontneed(p + 1, pg);
    zm__os_dontneed(p, 0);
    zm__os_dontneed(NULL, 0);
    for (size_t k = 0; k < 4 * pg; k++)
        assert_int_equal(p[k], 0xAB);

    zm__os_dontneed(p + 100, 3 * pg); /* pages 1 and 2 */
    assert_int_equal(errno, 4321);
    assert_int_equal(p[pg - 1], 0xAB);
    for (size_t k = pg; k < 3 * pg; k++)
        assert_int_equal(p[k], 0);
    assert_int_equal(p[3 * pg], 0xAB);
    assert_int_equal(p[4 * pg - 1], 0xAB);
    assert_int_equal(munmap(p, 4 * pg), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat_tricky_comm),
        cmocka_unit_test(test_parse_stat_malformed),
        cmocka_unit_test(test_proc_stat_live),
        cmocka_unit_test(test_dontneed_whole_pages_only),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
