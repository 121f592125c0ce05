/* The OS layer's resident set size (src/os_rss.c): /proc/self/statm, its
 * kept descriptor across close, fork and threads, and its parser. */
#include "zt_os.h"

/* ------------------------------------------------------------------------
 * RSS
 * ---------------------------------------------------------------------- */

static void test_rss_tracks_touched_pages(void **state) {
    (void)state;
    size_t before = zm__os_rss();
    assert_true(before > 0);
    assert_int_equal(before % page(), 0);
    char *p = map_touched(TOUCH_BYTES);
    assert_non_null(p);
    size_t during = zm__os_rss();
    assert_true(during >= before + TOUCH_BYTES - RSS_SLACK);
    assert_int_equal(munmap(p, TOUCH_BYTES), 0);
    size_t after = zm__os_rss();
    assert_true(after + TOUCH_BYTES - RSS_SLACK <= during);
}

static void test_rss_matches_status(void **state) {
    (void)state;
    size_t vmrss = status_vmrss();
    size_t rss = zm__os_rss();
    assert_true(absdiff(rss, vmrss) <= RSS_SLACK);
}

static void test_rss_keeps_errno_on_success(void **state) {
    (void)state;
    errno = 4321;
    assert_true(zm__os_rss() > 0);
    assert_int_equal(errno, 4321);
}

static void test_rss_keeps_descriptor_open(void **state) {
    (void)state;
    assert_true(zm__os_rss() > 0);
    int fd = find_statm_fd();
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_true(zm__os_rss() > 0);
    assert_int_equal(find_statm_fd(), fd);
}

static void test_rss_survives_closed_descriptor(void **state) {
    (void)state;
    assert_true(zm__os_rss() > 0);
    int fd = find_statm_fd();
    assert_true(fd >= 0);
    assert_int_equal(close(fd), 0);
    assert_true(zm__os_rss() > 0);
    assert_true(find_statm_fd() >= 0);
}

/* The program closed our descriptor and the number now holds its own file:
 * neither the fork child handler nor the query may close that file. */
static void test_rss_leaves_foreign_descriptor_alone(void **state) {
    (void)state;
    assert_true(zm__os_rss() > 0);
    int fd = find_statm_fd();
    assert_true(fd >= 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(null >= 0);
    assert_int_equal(dup2(null, fd), fd);
    assert_int_equal(close(null), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fcntl(fd, F_GETFD) != -1 ? 0 : 1);
    assert_int_equal(wait_child(pid), 0);

    assert_true(zm__os_rss() > 0);
    assert_true(fcntl(fd, F_GETFD) != -1);
    assert_true(find_statm_fd() >= 0);
    assert_int_equal(close(fd), 0);
}

/* Exit codes of the fork child below, so that a failure says which check. */
enum { CHILD_OK, CHILD_PARENT_FD, CHILD_NO_RSS, CHILD_NO_MAP, CHILD_NOT_GROWN };

static int fork_child_checks(void) {
    /* The atfork handler dropped the inherited descriptor... */
    if (find_statm_fd_of(getppid()) >= 0)
        return CHILD_PARENT_FD;
    size_t before = zm__os_rss();
    if (before == 0)
        return CHILD_NO_RSS;
    /* ...so the figures are the child's own. */
    char *p = map_touched(TOUCH_BYTES);
    if (!p)
        return CHILD_NO_MAP;
    size_t after = zm__os_rss();
    munmap(p, TOUCH_BYTES);
    return after >= before + TOUCH_BYTES - RSS_SLACK ? CHILD_OK : CHILD_NOT_GROWN;
}

static void test_rss_fork_child_sees_its_own(void **state) {
    (void)state;
    assert_true(zm__os_rss() > 0);
    int parent_fd = find_statm_fd();
    assert_true(parent_fd >= 0);
    size_t parent_before = zm__os_rss();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fork_child_checks());
    assert_int_equal(wait_child(pid), CHILD_OK);
    size_t parent_after = zm__os_rss();
    assert_true(parent_after < parent_before + TOUCH_BYTES / 2);
    assert_int_equal(find_statm_fd(), parent_fd);
}

static void *rss_hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++)
        if (zm__os_rss() == 0)
            return (void *)1;
    return NULL;
}

static void test_rss_concurrent(void **state) {
    (void)state;
    pthread_t t[4];
    /* Start from no descriptor so that the threads race to install one. */
    int fd = find_statm_fd();
    if (fd >= 0)
        assert_int_equal(close(fd), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, rss_hammer, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    assert_true(find_statm_fd() >= 0);
}

/* ------------------------------------------------------------------------
 * statm parser
 * ---------------------------------------------------------------------- */

static int statm(const char *s, size_t n, unsigned long long *pages) {
    char *b = exact_copy(s, n);
    int r = zm__parse_statm_resident(b, n, pages);
    free(b);
    return r;
}
#define STATM(lit, pages) statm(lit, sizeof(lit) - 1, pages)

static void test_parse_statm(void **state) {
    (void)state;
    unsigned long long pages = 99;
    assert_int_equal(STATM("2345 678 123 4 0 90 0\n", &pages), 1);
    assert_int_equal(pages, 678);
    assert_int_equal(STATM("1 0 0 0 0 0 0\n", &pages), 1);
    assert_int_equal(pages, 0);
    assert_int_equal(STATM("2345 678", &pages), 1); /* no newline */
    assert_int_equal(pages, 678);
    assert_int_equal(STATM("1 18446744073709551615 0\n", &pages), 1);
    assert_int_equal(pages, ULLONG_MAX);
    /* Bounded by len: only "2345 6" is visible. */
    assert_int_equal(statm("2345 678 1\n", 6, &pages), 1);
    assert_int_equal(pages, 6);

    pages = 99;
    assert_int_equal(STATM("1 18446744073709551616 0\n", &pages), 0);
    assert_int_equal(STATM("99999999999999999999999 5 0\n", &pages), 0);
    assert_int_equal(STATM("", &pages), 0);
    assert_int_equal(STATM("2345", &pages), 0);
    assert_int_equal(STATM("2345 ", &pages), 0);
    assert_int_equal(STATM("2345\n678\n", &pages), 0);
    assert_int_equal(STATM("2345  678 1\n", &pages), 0);
    assert_int_equal(STATM("x 678 1\n", &pages), 0);
    assert_int_equal(STATM("2345 67x 1\n", &pages), 0);
    assert_int_equal(STATM("2345 -678 1\n", &pages), 0);
    assert_int_equal(STATM(" 2345 678\n", &pages), 0);
    assert_int_equal(statm("2345 678\n", 5, &pages), 0);
    assert_int_equal(pages, 99); /* untouched on failure */
    assert_int_equal(zm__parse_statm_resident(NULL, 0, &pages), 0);
    assert_int_equal(zm__parse_statm_resident("1 2", 3, NULL), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_tracks_touched_pages),
        cmocka_unit_test(test_rss_matches_status),
        cmocka_unit_test(test_rss_keeps_errno_on_success),
        cmocka_unit_test(test_rss_keeps_descriptor_open),
        cmocka_unit_test(test_rss_survives_closed_descriptor),
        cmocka_unit_test(test_rss_leaves_foreign_descriptor_alone),
        cmocka_unit_test(test_rss_fork_child_sees_its_own),
        cmocka_unit_test(test_rss_concurrent),
        cmocka_unit_test(test_parse_statm),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
