/* The part of cmocka's API that zmalloc's tests use, header-only, for
 * platforms where Debian's cmocka cannot be linked (musl: cmocka is built
 * against glibc). Selected with -DZMALLOC_CMOCKA_SHIM=ON; the test sources
 * stay the same. Failures longjmp out of the test, as in cmocka; asserts
 * belong to the thread that runs the test. */
#ifndef ZM_CMOCKA_SHIM_H
#define ZM_CMOCKA_SHIM_H

#include <fnmatch.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
    CMFixtureFunction setup_func;
    CMFixtureFunction teardown_func;
    void *initial_state;
};

#define cmocka_unit_test(f) {#f, f, NULL, NULL, NULL}
#define cmocka_unit_test_teardown(f, t) {#f, f, NULL, t, NULL}
#define cmocka_unit_test_setup_teardown(f, s, t) {#f, f, s, t, NULL}

enum { ZM_SHIM_OK, ZM_SHIM_FAILED, ZM_SHIM_SKIPPED };
static jmp_buf zm_shim_jump;
static int zm_shim_result;
static const char *zm_shim_filter;

static inline void cmocka_set_test_filter(const char *pattern) { zm_shim_filter = pattern; }

static inline void zm_shim_stop(int result) {
    zm_shim_result = result;
    longjmp(zm_shim_jump, 1);
}

#define zm_shim_fail(...)                                                  \
    do {                                                                   \
        fprintf(stderr, "[  ERROR   ] --- ");                              \
        fprintf(stderr, __VA_ARGS__);                                      \
        fprintf(stderr, "\n[   LINE   ] --- %s:%d: error: Failure!\n", __FILE__, __LINE__); \
        zm_shim_stop(ZM_SHIM_FAILED);                                      \
    } while (0)

#define assert_true(c)                                         \
    do {                                                       \
        if (!(c)) zm_shim_fail("%s", #c);                      \
    } while (0)
#define assert_false(c)                                        \
    do {                                                       \
        if (c) zm_shim_fail("!(%s)", #c);                      \
    } while (0)
#define assert_int_equal(a, b)                                                   \
    do {                                                                         \
        uintmax_t zm_shim_a = (uintmax_t)(a), zm_shim_b = (uintmax_t)(b);        \
        if (zm_shim_a != zm_shim_b) zm_shim_fail("%#jx != %#jx", zm_shim_a, zm_shim_b); \
    } while (0)
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_null(p) assert_true((p) == NULL)
#define assert_ptr_equal(a, b) assert_true((const void *)(a) == (const void *)(b))
#define assert_ptr_not_equal(a, b) assert_true((const void *)(a) != (const void *)(b))
#define assert_string_equal(a, b)                                               \
    do {                                                                        \
        const char *zm_shim_sa = (const char *)(a), *zm_shim_sb = (const char *)(b); \
        if (strcmp(zm_shim_sa, zm_shim_sb) != 0)                                \
            zm_shim_fail("\"%s\" != \"%s\"", zm_shim_sa, zm_shim_sb);        \
    } while (0)
#define assert_memory_equal(a, b, n) assert_true(memcmp((a), (b), (n)) == 0)
#define fail() zm_shim_fail("%s", "fail()")
#define fail_msg(...) zm_shim_fail(__VA_ARGS__)
#define skip() zm_shim_stop(ZM_SHIM_SKIPPED)

/* Runs one test (with its fixtures); returns ZM_SHIM_*. */
static inline int zm_shim_run_one(const struct CMUnitTest *t) {
    void *state = t->initial_state;
    volatile int result = ZM_SHIM_OK;
    zm_shim_result = ZM_SHIM_OK;
    if (setjmp(zm_shim_jump) == 0) {
        if (t->setup_func && t->setup_func(&state) != 0) zm_shim_stop(ZM_SHIM_FAILED);
        t->test_func(&state);
    }
    result = zm_shim_result;
    if (t->teardown_func && t->teardown_func(&state) != 0 && result == ZM_SHIM_OK)
        result = ZM_SHIM_FAILED;
    return result;
}

static inline int _cmocka_run_group_tests(const char *group, const struct CMUnitTest *tests,
                                          size_t n, CMFixtureFunction setup,
                                          CMFixtureFunction teardown) {
    void *state = NULL;
    size_t ran = 0, failed = 0, skipped = 0;
    if (setup && setup(&state) != 0) {
        fprintf(stderr, "%s: group setup failed\n", group);
        return (int)n;
    }
    for (size_t i = 0; i < n; i++) {
        if (zm_shim_filter && fnmatch(zm_shim_filter, tests[i].name, 0) != 0) continue;
        printf("[ RUN      ] %s\n", tests[i].name);
        fflush(stdout);
        int r = zm_shim_run_one(&tests[i]);
        ran++;
        if (r == ZM_SHIM_FAILED) failed++;
        if (r == ZM_SHIM_SKIPPED) skipped++;
        printf("%s %s\n", r == ZM_SHIM_OK ? "[       OK ]" : r == ZM_SHIM_SKIPPED ? "[  SKIPPED ]" : "[  FAILED  ]",
               tests[i].name);
        fflush(stdout);
    }
    if (teardown) teardown(&state);
    printf("[==========] %zu test(s) run: %zu passed, %zu failed, %zu skipped.\n", ran,
           ran - failed - skipped, failed, skipped);
    return (int)failed;
}

#define cmocka_run_group_tests(tests, setup, teardown) \
    _cmocka_run_group_tests(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif
