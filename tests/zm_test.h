/* Shared by the test programs: cmocka, and a tally of live blocks whose
 * zm_size() sum must always equal the used-memory counter's growth. */
#ifndef ZM_TEST_H
#define ZM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
/* cmocka.h after its prerequisites */
#include <cmocka.h>

#include "zmalloc.h"

/* Skips the running test, saying why: ctest shows the reason, and counts the
 * test as skipped when it ran alone (see zt_run). */
static int zt_skipped;
#define zt_skip(reason)                                   \
    do {                                                  \
        fprintf(stderr, "zmalloc test skipped: %s\n", reason); \
        zt_skipped++;                                     \
        skip();                                           \
    } while (0)

/* Runs the group. With an argument, only the test of that name (ctest runs
 * each test so, as its own process); the process then exits 77, ctest's
 * SKIP_RETURN_CODE, when that test was skipped. */
#define zt_run(tests, argc, argv, setup, teardown)                                      \
    zt__run(tests, sizeof(tests) / sizeof((tests)[0]), argc, argv, setup, teardown)
static inline int zt__run(const struct CMUnitTest *tests, size_t n, int argc, char **argv,
                          CMFixtureFunction setup, CMFixtureFunction teardown) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    int failed = _cmocka_run_group_tests("tests", tests, n, setup, teardown);
    if (failed == 0 && argc > 1 && zt_skipped) return 77;
    return failed;
}


#include "zt_expected.h"

/* Teardown for tests that set a limit or a handler: a failed test must not
 * leave either to the next. */
static inline int zt_reset_settings(void **state) {
    (void)state;
    zm_set_limit(0);
    zm_set_oom_handler(NULL);
    return 0;
}

/* Used memory as an exact signed difference from a baseline. */
static inline long long zt_used_since(size_t base) {
    return (long long)zm_used_memory() - (long long)base;
}

/* Hides a constant from the compiler, so that deliberately huge sizes reach
 * the library instead of being rejected at compile time. */
static inline size_t zt_opaque(size_t x) {
    __asm__("" : "+r"(x));
    return x;
}


/* Runs fn(arg) in a fork child under an alarm(alarm_s) watchdog and returns
 * its result (0..255), or 100 + the signal that killed it. Under valgrind the
 * child hands its result over a pipe and ends with SIGKILL, skipping
 * valgrind's exit-time leak check: in a fork child, blocks held by the
 * parent's other threads (which do not exist in the child) would count as
 * lost. */
static inline int zt_fork_run(int (*fn)(void *), void *arg, unsigned alarm_s) {
    int fds[2];
    if (pipe(fds) != 0) return 200;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(alarm_s); /* a deadlock shows as SIGALRM, not as a hung suite */
        unsigned char rc = (unsigned char)fn(arg);
        if (zt_under_valgrind()) {
            ssize_t w = write(fds[1], &rc, 1);
            (void)w;
            kill(getpid(), SIGKILL);
        }
        _exit(rc);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return 201;
    }
    unsigned char rc = 0;
    ssize_t got = read(fds[0], &rc, 1);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got == 1) return rc;
    if (WIFSIGNALED(status)) return 100 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

#endif
