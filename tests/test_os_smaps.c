/* The OS layer's smaps and status fields (src/os_smaps.c): the streaming
 * parser at any chunking, and the live figures with their errors. */
#include "zt_os.h"

/* ------------------------------------------------------------------------
 * smaps parser
 * ---------------------------------------------------------------------- */

static const char smaps_text[] =
    "557d2ed82000-557d2ed84000 r--p 00000000 fe:00 247498                     /usr/bin/head\n"
    "Size:                  8 kB\n"
    "Rss:                   8 kB\n"
    "Pss:                   6 kB\n"
    "Pss_Dirty:           100 kB\n"
    "SwapPss:            1000 kB\n"
    "Private_Dirty:         4 kB\n"
    "THPeligible:           7\n"
    "VmFlags: rd mr mw me \n"
    "7ffd1000-7ffd3000 rw-p 00000000 00:00 0                                  [stack]\n"
    "Rss:                  12 kB\n"
    "Pss:                  10 kB\n"
    "Pss_Dirty:           200 kB\n"
    "SwapPss:            2000 kB\n"
    "Private_Dirty:\t12\tkB\n";

static size_t smaps_sum(const char *field, const char *text, size_t len, size_t chunk, int *found) {
    zm__smaps_sum s;
    char *b = exact_copy(text, len);
    zm__smaps_init(&s, field);
    for (size_t off = 0; off < len; off += chunk)
        zm__smaps_feed(&s, b + off, len - off < chunk ? len - off : chunk);
    free(b);
    return zm__smaps_result(&s, found);
}

static void test_smaps_fields(void **state) {
    (void)state;
    const size_t len = sizeof smaps_text - 1;
    int found = -1;
    assert_int_equal(smaps_sum("Rss:", smaps_text, len, len, &found), 20 * 1024);
    assert_int_equal(found, 1);
    assert_int_equal(smaps_sum("Rss", smaps_text, len, len, &found), 20 * 1024);
    /* Whole names only: not SwapPss, not Pss_Dirty. */
    assert_int_equal(smaps_sum("Pss", smaps_text, len, len, &found), 16 * 1024);
    assert_int_equal(smaps_sum("Pss_Dirty:", smaps_text, len, len, &found), 300 * 1024);
    assert_int_equal(smaps_sum("SwapPss", smaps_text, len, len, &found), 3000 * 1024);
    assert_int_equal(smaps_sum("Private_Dirty:", smaps_text, len, len, &found), 16 * 1024);
    assert_int_equal(smaps_sum("Ss", smaps_text, len, len, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(smaps_sum("Rss::", smaps_text, len, len, &found), 0);
    assert_int_equal(found, 0);
    /* Not a byte figure. */
    assert_int_equal(smaps_sum("THPeligible", smaps_text, len, len, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(smaps_sum("", smaps_text, len, len, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(smaps_sum(NULL, smaps_text, len, len, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(smaps_sum("Nope:", smaps_text, len, len, NULL), 0);
}

static void test_smaps_any_chunking(void **state) {
    (void)state;
    const size_t len = sizeof smaps_text - 1;
    static const char *const fields[] = {"Rss:", "Pss", "Pss_Dirty", "SwapPss:", "Private_Dirty"};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        size_t whole = smaps_sum(fields[f], smaps_text, len, len, NULL);
        assert_true(whole > 0);
        for (size_t chunk = 1; chunk <= 130; chunk++)
            assert_int_equal(smaps_sum(fields[f], smaps_text, len, chunk, NULL), whole);
        /* Every split into two pieces. */
        for (size_t cut = 0; cut <= len; cut++) {
            zm__smaps_sum s;
            zm__smaps_init(&s, fields[f]);
            zm__smaps_feed(&s, smaps_text, cut);
            zm__smaps_feed(&s, smaps_text + cut, len - cut);
            assert_int_equal(zm__smaps_result(&s, NULL), whole);
        }
    }
}

static void test_smaps_line_edges(void **state) {
    (void)state;
    char text[512];
    int found;
    /* Exactly sizeof line bytes fits; one more is an overlong line. */
    zm__smaps_sum probe;
    const size_t cap = sizeof probe.line;
    int n = snprintf(text, sizeof text, "Rss:%*s5 kB\n", (int)(cap - 8), "");
    assert_int_equal((size_t)n, cap + 1);
    assert_int_equal(smaps_sum("Rss", text, (size_t)n, 7, &found), 5 * 1024);
    n = snprintf(text, sizeof text, "Rss:%*s5 kB\nRss: 3 kB\n", (int)(cap - 7), "");
    assert_int_equal(smaps_sum("Rss", text, (size_t)n, 7, &found), 3 * 1024);
    assert_int_equal(found, 1);
    /* An overlong header must not leak into the next line. */
    n = snprintf(text, sizeof text, "%0*d Rss: 9 kB\nRss: 2 kB\n", 300, 0);
    assert_int_equal(smaps_sum("Rss", text, (size_t)n, (size_t)n, &found), 2 * 1024);

    static const char ragged[] = "Rss: 1 kB\n"
                                 "Rss: x kB\n"
                                 "Rss: 5 MB\n"
                                 "Rss 5 kB\n"
                                 "Rss: 5 kB extra\n"
                                 "Rss: kB\n"
                                 "Rss: -5 kB\n"
                                 " Rss: 5 kB\n"
                                 "Rss:\n"
                                 "Rss: 5 k\n"
                                 "\n\n"
                                 "Rss:2kB\n"
                                 "Rss: 4 kB  ";
    assert_int_equal(smaps_sum("Rss", ragged, sizeof ragged - 1, 3, &found), 7 * 1024);
    assert_int_equal(found, 1);

    static const char zero[] = "Rss: 0 kB";
    assert_int_equal(smaps_sum("Rss", zero, sizeof zero - 1, 1, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(smaps_sum("Rss", "", 0, 1, &found), 0);
    assert_int_equal(found, 0);
}

static void test_smaps_saturates(void **state) {
    (void)state;
    static const char huge[] = "Rss: 18014398509481984 kB\n"; /* 2^54 kB = 2^64 B */
    static const char two[] = "Rss: 18446744073709551615 kB\nRss: 18446744073709551615 kB\n";
    static const char digits[] = "Rss: 999999999999999999999999999999 kB";
    assert_true(smaps_sum("Rss", huge, sizeof huge - 1, 5, NULL) == SIZE_MAX);
    assert_true(smaps_sum("Rss", two, sizeof two - 1, 5, NULL) == SIZE_MAX);
    assert_true(smaps_sum("Rss", digits, sizeof digits - 1, 5, NULL) == SIZE_MAX);
}

/* ------------------------------------------------------------------------
 * smaps query
 * ---------------------------------------------------------------------- */

static void test_smap_bytes_self(void **state) {
    (void)state;
    errno = 4321;
    size_t with = zm__os_smap_bytes("Rss:", -1);
    size_t without = zm__os_smap_bytes("Rss", -1);
    assert_int_equal(errno, 4321);
    assert_true(with > 0);
    assert_int_equal(with % 1024, 0);
    assert_true(absdiff(with, without) <= RSS_SLACK);
    assert_true(absdiff(with, zm__os_rss()) <= RSS_SLACK);
    assert_true(zm__os_smap_bytes("Private_Dirty:", -1) > 0);

    size_t by_pid = zm__os_smap_bytes("Rss:", (long)getpid());
    assert_true(absdiff(with, by_pid) <= RSS_SLACK);

    /* A field that exists but sums to 0 is a success: errno untouched. */
    errno = 0;
    (void)zm__os_smap_bytes("Private_Hugetlb:", -1);
    assert_int_equal(errno, 0);
}

static void test_smap_bytes_tracks_dirty_pages(void **state) {
    (void)state;
    size_t before = zm__os_smap_bytes("Private_Dirty:", -1);
    char *p = map_touched(TOUCH_BYTES);
    assert_non_null(p);
    size_t during = zm__os_smap_bytes("Private_Dirty:", -1);
    assert_true(during >= before + TOUCH_BYTES - RSS_SLACK);
    assert_int_equal(munmap(p, TOUCH_BYTES), 0);
}

static void expect_smap_errno(const char *field, long pid, int err) {
    errno = 0;
    assert_int_equal(zm__os_smap_bytes(field, pid), 0);
    assert_int_equal(errno, err);
}

static void test_smap_bytes_errors(void **state) {
    (void)state;
    char longf[300];
    memset(longf, 'A', sizeof longf - 1);
    longf[sizeof longf - 1] = '\0';
    expect_smap_errno(NULL, -1, EINVAL);
    expect_smap_errno("", -1, EINVAL);
    expect_smap_errno(":", -1, EINVAL);
    expect_smap_errno(longf, -1, EINVAL);
    expect_smap_errno("Rss:", -2, EINVAL);
    expect_smap_errno("Rss:", LONG_MIN, EINVAL);
    expect_smap_errno("NoSuchField:", -1, ENOENT);
    expect_smap_errno("THPeligible:", -1, ENOENT);
    expect_smap_errno("Rss:", 999999999L, ESRCH);
    expect_smap_errno("Rss:", LONG_MAX, ESRCH);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(wait_child(pid), 0);
    expect_smap_errno("Rss:", (long)pid, ESRCH);
}

/* Reading another user's smaps needs ptrace rights: as root, a child that
 * drops to nobody asks for its parent's; otherwise, ask for pid 1's. */
static void test_smap_bytes_eacces(void **state) {
    (void)state;
    if (geteuid() != 0) {
        struct stat st;
        if (stat("/proc/1", &st) != 0 || st.st_uid == geteuid())
            zt_skip("no process owned by another user to read");
        expect_smap_errno("Rss:", 1, EACCES);
        return;
    }
    long parent = (long)getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        errno = 0;
        size_t r = zm__os_smap_bytes("Rss:", parent);
        _exit(r == 0 && errno == EACCES ? 0 : 1);
    }
    int rc = wait_child(pid);
    if (rc == 2)
        zt_skip("no CAP_SETUID here");
    assert_int_equal(rc, 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smaps_fields),
        cmocka_unit_test(test_smaps_any_chunking),
        cmocka_unit_test(test_smaps_line_edges),
        cmocka_unit_test(test_smaps_saturates),
        cmocka_unit_test(test_smap_bytes_self),
        cmocka_unit_test(test_smap_bytes_tracks_dirty_pages),
        cmocka_unit_test(test_smap_bytes_errors),
        cmocka_unit_test(test_smap_bytes_eacces),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
