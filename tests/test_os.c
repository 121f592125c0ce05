/* Tests for the OS-query layer (src/os_linux.c): the live /proc queries
 * against figures taken independently, and the pure parsers against crafted
 * buffers. Parser inputs are copied into heap blocks of their exact length,
 * without a NUL, so that ASan and valgrind catch any read past len. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os.h"
#include "zm_test.h"

#define MIB ((size_t)1 << 20)
#define TOUCH_BYTES (64 * MIB)
/* RSS counters are per-CPU and batched in the kernel, and the test harness
 * itself moves a little memory: figures taken apart agree this closely. */
#define RSS_SLACK (4 * MIB)

static size_t page(void) {
    return (size_t)sysconf(_SC_PAGESIZE);
}

static char *exact_copy(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static size_t absdiff(size_t a, size_t b) {
    return a > b ? a - b : b - a;
}

/* A fresh anonymous mapping with every page written, so it is resident.
 * NULL on failure: fork children must not use cmocka's asserts. */
static char *map_touched(size_t bytes) {
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    for (size_t off = 0; off < bytes; off += page())
        p[off] = 1;
    return p;
}

static size_t status_vmrss(void) {
    char line[256];
    size_t kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
            break;
    fclose(f);
    assert_true(kb > 0);
    return kb * 1024;
}

/* A descriptor open on /proc/<pid>/statm, found through /proc/self/fd; -1
 * if none. zm__os_rss keeps one for this process. */
static int find_statm_fd_of(pid_t pid) {
    char want[64], link[256], path[300];
    int found = -1;
    snprintf(want, sizeof want, "/proc/%ld/statm", (long)pid);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strcmp(link, want) == 0)
            found = atoi(e->d_name);
    }
    closedir(d);
    return found;
}

static int find_statm_fd(void) {
    return find_statm_fd_of(getpid());
}

/* A child's verdict travels back as its exit status. */
static int wait_child(pid_t pid) {
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

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

/* ------------------------------------------------------------------------
 * cgroup limits
 * ---------------------------------------------------------------------- */

static char tmp_root[64];

static void path_join(char *out, size_t cap, const char *rel) {
    int n = snprintf(out, cap, "%s/%s", tmp_root, rel);
    assert_true(n > 0 && (size_t)n < cap);
}

static void mkdirs(const char *rel) {
    char path[PATH_MAX];
    path_join(path, sizeof path, rel);
    for (char *p = path + strlen(tmp_root) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
        *p = '/';
    }
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void put(const char *rel, const char *content) {
    char path[PATH_MAX];
    path_join(path, sizeof path, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(content, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static int cgroup_setup(void **state) {
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/zm_test_os_XXXXXX");
    if (!mkdtemp(tmp_root))
        return -1;
    /* v2 "max" at the leaf, a number at the parent, none at the root. */
    mkdirs("v2a/a/b");
    put("v2a/a/b/memory.max", "max\n");
    put("v2a/a/memory.max", "1073741824\n");
    /* v2 limits at every level: the smallest one wins. */
    mkdirs("v2b/a/b");
    put("v2b/memory.max", "4000000000\n");
    put("v2b/a/memory.max", "2000000000\n");
    put("v2b/a/b/memory.max", "3000000000\n");
    /* v2 with no limit anywhere, and with junk in the files. */
    mkdirs("v2c/a/b");
    put("v2c/memory.max", "max\n");
    put("v2c/a/memory.max", "12abc\n");
    put("v2c/a/b/memory.max", "0\n");
    /* v1 unlimited everywhere. */
    mkdirs("v1a/x/y");
    put("v1a/memory.limit_in_bytes", "9223372036854771712\n");
    put("v1a/x/memory.limit_in_bytes", "9223372036854771712\n");
    put("v1a/x/y/memory.limit_in_bytes", "9223372036854771712\n");
    /* v1 with a real limit at the parent of an unlimited leaf. */
    mkdirs("v1b/x/y");
    put("v1b/memory.limit_in_bytes", "9223372036854771712\n");
    put("v1b/x/memory.limit_in_bytes", "536870912\n");
    put("v1b/x/y/memory.limit_in_bytes", "9223372036854771712\n");
    /* Only the mount point has a limit (a container's own cgroup). */
    mkdirs("v2d");
    put("v2d/memory.max", "777777777");
    /* Outside the mount points: a path with ".." must not reach it. */
    mkdirs("evil");
    put("evil/memory.max", "12345\n");
    put("evil/memory.limit_in_bytes", "12345\n");
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int cgroup_teardown(void **state) {
    (void)state;
    return nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t limit_of(const char *text, size_t len, const char *v2, const char *v1) {
    char r2[PATH_MAX], r1[PATH_MAX];
    path_join(r2, sizeof r2, v2);
    path_join(r1, sizeof r1, v1);
    char *b = exact_copy(text, len);
    size_t r = zm__cgroup_limit(b, len, r2, r1);
    free(b);
    return r;
}
#define LIMIT(lit, v2, v1) limit_of(lit, sizeof(lit) - 1, v2, v1)

static void test_cgroup_v2(void **state) {
    (void)state;
    assert_int_equal(LIMIT("0::/a/b\n", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/a/b", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/a/b/\n", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/a\n", "v2a", "none"), 1073741824);
    assert_int_equal(LIMIT("0::/\n", "v2a", "none"), 0);
    assert_int_equal(LIMIT("0::/a/b\n", "v2b", "none"), 2000000000);
    assert_int_equal(LIMIT("0::/a\n", "v2b", "none"), 2000000000);
    assert_int_equal(LIMIT("0::/\n", "v2b", "none"), 4000000000);
    assert_int_equal(LIMIT("0::/a/b\n", "v2c", "none"), 0);
    /* Paths that do not exist below the mount still reach its own file. */
    assert_int_equal(LIMIT("0::/docker/abc/def\n", "v2d", "none"), 777777777);
    assert_int_equal(LIMIT("0::/\n", "v2d", "none"), 777777777);
}

static void test_cgroup_v1(void **state) {
    (void)state;
    assert_int_equal(LIMIT("4:memory:/x/y\n", "none", "v1a"), 0);
    assert_int_equal(LIMIT("4:memory:/x/y\n", "none", "v1b"), 536870912);
    assert_int_equal(LIMIT("7:cpu,memory:/x/y\n", "none", "v1b"), 536870912);
    assert_int_equal(LIMIT("7:memory,cpu:/x/y", "none", "v1b"), 536870912);
    assert_int_equal(LIMIT("7:cpu,memoryx:/x/y\n", "none", "v1b"), 0);
    assert_int_equal(LIMIT("7:xmemory:/x/y\n", "none", "v1b"), 0);
    assert_int_equal(LIMIT("7:name=memory:/x/y\n", "none", "v1b"), 0);
    assert_int_equal(LIMIT("0::/x/y\n", "none", "v1b"), 0); /* a v2 line */

    /* Hybrid: v2 sets nothing, so the v1 memory line decides... */
    static const char hybrid[] = "9:name=systemd:/\n"
                                 "4:memory:/x/y\n"
                                 "1:cpu:/\n"
                                 "0::/a/b\n";
    assert_int_equal(LIMIT(hybrid, "v2c", "v1b"), 536870912);
    /* ...but a v2 limit wins even over a smaller v1 one. */
    assert_int_equal(LIMIT(hybrid, "v2b", "v1b"), 2000000000);
    assert_int_equal(LIMIT(hybrid, "v2c", "v1a"), 0);
}

static void test_cgroup_garbage(void **state) {
    (void)state;
    static const char *const junk[] = {
        "", "\n", "garbage", ":", "::", ":::::", "0::", "0::\n", "0::relative/a/b\n", "0:x:/a/b\n",
        "00::/a/b\n", "1::/a/b\n", "0::/..\n", "0::/../evil\n", "0::/a/../../evil\n", "4:memory:\n",
        "4:memory:x/y\n", "4:memory:/../evil\n", "\n\n\n:memory:\n",
    };
    for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++)
        assert_int_equal(limit_of(junk[k], strlen(junk[k]), "v2a", "v1a"), 0);

    /* A NUL inside the path would cut it short; the line is refused. */
    static const char nul[] = "0::/a\0/b\n";
    assert_int_equal(LIMIT(nul, "v2d", "none"), 0);
    /* Bounded by len: the text goes on to a limited path that must not count. */
    static const char cut[] = "0::/\n4:memory:/x/y\n";
    assert_int_equal(limit_of(cut, 5, "v2c", "v1b"), 0);
    assert_int_equal(zm__cgroup_limit(NULL, 10, "/", "/"), 0);
    assert_int_equal(limit_of("0::/a/b\n", 8, "v2a", "none"), 1073741824);
}

static void test_cgroup_long_path(void **state) {
    (void)state;
    /* Levels longer than PATH_MAX are skipped; shorter parents still count. */
    size_t n = 3 + 2 * PATH_MAX + 1;
    char *text = malloc(n);
    assert_non_null(text);
    memcpy(text, "0::/", 4);
    memset(text + 4, 'a', PATH_MAX);
    text[4 + PATH_MAX] = '/';
    memset(text + 5 + PATH_MAX, 'b', n - 5 - PATH_MAX);
    assert_int_equal(limit_of(text, n, "v2d", "none"), 777777777);
    free(text);
}

/* Random texts built from cgroup-file pieces: nothing may crash or read
 * past len, and any answer must be one of the limits in the tree. */
static void test_cgroup_random(void **state) {
    (void)state;
    static const char *const pieces[] = {"0::/", "4:memory:/", "7:cpu,memory:/", "1::", "a", "b", "x",
                                         "y", "/", "..", "\n", ":", ",", "max", "memory", "0"};
    const size_t npieces = sizeof pieces / sizeof pieces[0];
    char buf[96];
    unsigned seed = 12345;
    for (int it = 0; it < 3000; it++) {
        size_t n = 0;
        for (;;) {
            seed = seed * 1103515245u + 12345u;
            const char *piece = pieces[(seed >> 16) % npieces];
            size_t len = strlen(piece);
            if (n + len > 64 || (seed & 0x1f) == 0)
                break;
            memcpy(buf + n, piece, len);
            n += len;
        }
        if ((seed & 0x300) == 0 && n > 0)
            buf[(seed >> 20) % n] = '\0';
        size_t r = limit_of(buf, n, "v2b", "v1b");
        assert_true(r == 0 || r == 536870912 || r == 2000000000 || r == 4000000000);
    }
}

/* ------------------------------------------------------------------------
 * Machine memory
 * ---------------------------------------------------------------------- */

static void test_memory_size(void **state) {
    (void)state;
    errno = 4321;
    size_t mem = zm__os_memory_size();
    assert_int_equal(errno, 4321);
    assert_true(mem > 0);
    /* pages * page size, saturated at SIZE_MAX (a 32-bit process on a
     * machine with more than 4 GiB) */
    unsigned long long bytes =
        (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE);
    assert_int_equal(mem, bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes);
}

static void test_memory_limit(void **state) {
    (void)state;
    errno = 4321;
    size_t limit = zm__os_memory_limit();
    assert_int_equal(errno, 4321);
    assert_true(limit > 0);
    assert_true(limit <= zm__os_memory_size());
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
        cmocka_unit_test(test_rss_tracks_touched_pages),
        cmocka_unit_test(test_rss_matches_status),
        cmocka_unit_test(test_rss_keeps_errno_on_success),
        cmocka_unit_test(test_rss_keeps_descriptor_open),
        cmocka_unit_test(test_rss_survives_closed_descriptor),
        cmocka_unit_test(test_rss_leaves_foreign_descriptor_alone),
        cmocka_unit_test(test_rss_fork_child_sees_its_own),
        cmocka_unit_test(test_rss_concurrent),
        cmocka_unit_test(test_parse_statm),
        cmocka_unit_test(test_parse_stat_tricky_comm),
        cmocka_unit_test(test_parse_stat_malformed),
        cmocka_unit_test(test_proc_stat_live),
        cmocka_unit_test(test_smaps_fields),
        cmocka_unit_test(test_smaps_any_chunking),
        cmocka_unit_test(test_smaps_line_edges),
        cmocka_unit_test(test_smaps_saturates),
        cmocka_unit_test(test_smap_bytes_self),
        cmocka_unit_test(test_smap_bytes_tracks_dirty_pages),
        cmocka_unit_test(test_smap_bytes_errors),
        cmocka_unit_test(test_smap_bytes_eacces),
        cmocka_unit_test_setup_teardown(test_cgroup_v2, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v1, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_garbage, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_long_path, cgroup_setup, cgroup_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_random, cgroup_setup, cgroup_teardown),
        cmocka_unit_test(test_memory_size),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_dontneed_whole_pages_only),
    };
    return zt_run(tests, argc, argv, NULL, NULL);
}
