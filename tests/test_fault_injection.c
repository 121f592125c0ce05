/* Failure injection, SQLite-style: a workload that uses every allocating entry
 * point is run once to count its backend allocations (N), then once for each
 * n in 1..N with allocation n made to fail (and again with n and every later
 * one failing). After each run: exactly the injected failures were reported,
 * each to the right caller with the right size, a failed realloc left its
 * block intact and counted, the counter equals the sum of zt_expected_size()
 * (the allocator's own size, or request + header: not zm_size(), the code
 * under test) over the blocks the workload holds at every step, and freeing
 * them all brings the counter back to its baseline. Needs a ZMALLOC_TESTING
 * build. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "zm_test.h"

#ifndef ZMALLOC_TESTING
#error "test_fault_injection needs -DZMALLOC_TESTING=ON"
#endif

#define NSLOTS 16
#define ROUNDS 3
#define STEPS_PER_ROUND 27
#define NSTEPS (ROUNDS * STEPS_PER_ROUND)
#define PATTERN_CAP 65536 /* bytes filled and checked per block */

typedef struct {
    void *p;
    size_t len; /* requested size: bytes [0, min(len, cap)) hold the pattern */
} slot_t;

enum { KIND_Z, KIND_TRY };

static slot_t tab[NSLOTS];
static size_t g_base;
static int g_jump;             /* the OOM handler longjmps instead of returning */
static jmp_buf g_jb;
static volatile int g_step;    /* survives the longjmp: it is a global anyway */
static size_t oom_calls, oom_last;
static long g_failures;        /* failures the workload saw */
static long g_points;          /* failure points of the workload (N) */
static long g_runs;            /* runs with failures injected */

static struct {
    int kind, slot, is_realloc, zero;
    size_t req;
    void *old;
    size_t oldlen;
    long inj_before;
    size_t oom_before;
} cur;

static void handler(size_t size) {
    oom_calls++;
    oom_last = size;
    if (g_jump) longjmp(g_jb, 1);
}

static unsigned char pat(int slot, size_t j) { return (unsigned char)(slot * 31 + j * 7 + 1); }

static void fill(int s) {
    unsigned char *p = tab[s].p;
    size_t n = tab[s].len < PATTERN_CAP ? tab[s].len : PATTERN_CAP;
    for (size_t j = 0; j < n; j++) p[j] = pat(s, j);
}

static void check_prefix(int s, const void *ptr, size_t len) {
    const unsigned char *p = ptr;
    size_t n = len < PATTERN_CAP ? len : PATTERN_CAP;
    for (size_t j = 0; j < n; j++)
        if (p[j] != pat(s, j)) fail_msg("slot %d byte %zu lost its contents", s, j);
}

static void check_accounting(void) {
    size_t sum = 0;
    for (int i = 0; i < NSLOTS; i++)
        if (tab[i].p) sum += zt_expected_size(tab[i].p, tab[i].len);
    assert_int_equal(zm_used_memory(), g_base + sum);
}


static void begin(int kind, int slot, size_t req, int is_realloc) {
    cur.kind = kind;
    cur.slot = slot;
    cur.req = req;
    cur.is_realloc = is_realloc;
    cur.zero = 0;
    cur.old = tab[slot].p;
    cur.oldlen = tab[slot].len;
    cur.inj_before = zm__fault_injected();
    cur.oom_before = oom_calls;
    errno = 0;
}

/* The call failed by injection: check it was reported exactly as documented
 * and that a realloc's original block is intact (and still counted). */
static void failed_by_injection(void) {
    assert_int_equal(zm__fault_injected(), cur.inj_before + 1);
    if (cur.kind == KIND_TRY) {
        assert_int_equal(oom_calls, cur.oom_before);
        assert_int_equal(errno, ENOMEM);
    } else {
        assert_int_equal(oom_calls, cur.oom_before + 1);
        assert_int_equal(oom_last, cur.req);
    }
    if (cur.is_realloc && cur.old) {
        assert_ptr_equal(tab[cur.slot].p, cur.old);
        assert_non_null(cur.old);
        check_prefix(cur.slot, cur.old, cur.oldlen);
    } else {
        assert_null(tab[cur.slot].p);
    }
    g_failures++;
    check_accounting();
}

/* After a call that returned r (and *usable u, or SIZE_MAX when none). */
static void end(void *r, size_t u) {
    long inj = zm__fault_injected() - cur.inj_before;
    assert_true(inj == 0 || inj == 1);
    if (inj) {
        assert_null(r);
        if (u != SIZE_MAX) assert_int_equal(u, 0);
        failed_by_injection();
        return;
    }
    assert_non_null(r);
    assert_int_equal(oom_calls, cur.oom_before);
    if (u != SIZE_MAX) assert_int_equal(u, zt_expected_usable(r, cur.req));
    assert_int_equal(zm_usable_size(r), zt_expected_usable(r, cur.req));
    assert_int_equal(zm_size(r), zt_expected_size(r, cur.req));
    assert_true(zm_usable_size(r) >= cur.req);
    if (cur.zero) {
        const unsigned char *p = r;
        size_t n = cur.req < PATTERN_CAP ? cur.req : PATTERN_CAP;
        for (size_t j = 0; j < n; j++) assert_int_equal(p[j], 0);
    }
    if (cur.is_realloc && cur.old)
        check_prefix(cur.slot, r, cur.oldlen < cur.req ? cur.oldlen : cur.req);
    tab[cur.slot].p = r;
    tab[cur.slot].len = cur.req;
    fill(cur.slot);
    check_accounting();
}

static void release(int s, int how) {
    void *p = tab[s].p;
    if (!p) return;
    size_t usable = zt_expected_usable(p, tab[s].len), u = 12345;
    tab[s].p = NULL;
    switch (how) {
    case 0: zm_free(p); break;
    case 1:
        zm_free_usable(p, &u);
        assert_int_equal(u, usable);
        break;
    default: zm_free_with_size(p, usable); break;
    }
    check_accounting();
}

static void do_step(int step) {
    int round = step / STEPS_PER_ROUND, k = step % STEPS_PER_ROUND;
    size_t m = (size_t)round * 1000; /* sizes change from round to round */
    size_t u = 777;
    void *r;
    switch (k) {
    case 0: begin(KIND_Z, 0, 100 + m, 0); r = zm_malloc(cur.req); end(r, SIZE_MAX); break;
    case 1:
        begin(KIND_Z, 1, 200 + m, 0);
        cur.zero = 1;
        r = zm_calloc(cur.req);
        end(r, SIZE_MAX);
        break;
    case 2:
        begin(KIND_Z, 2, 10 * (30 + m), 0);
        cur.zero = 1;
        r = zm_calloc_num(10, 30 + m);
        end(r, SIZE_MAX);
        break;
    case 3: /* grow */
        if (!tab[0].p) break;
        begin(KIND_Z, 0, 5000 + m, 1);
        r = zm_realloc(tab[0].p, cur.req);
        end(r, SIZE_MAX);
        break;
    case 4: /* shrink */
        if (!tab[0].p) break;
        begin(KIND_Z, 0, 50, 1);
        r = zm_realloc(tab[0].p, cur.req);
        end(r, SIZE_MAX);
        break;
    case 5: begin(KIND_Z, 3, 70 + m, 1); r = zm_realloc(NULL, cur.req); end(r, SIZE_MAX); break;
    case 6: {
        static const char s[] = "fault injection: the string to duplicate";
        begin(KIND_Z, 4, sizeof s, 0);
        r = zm_strdup(s);
        if (r) assert_string_equal(r, s);
        end(r, SIZE_MAX);
        break;
    }
    case 7: begin(KIND_TRY, 5, 300 + m, 0); r = zm_try_malloc(cur.req); end(r, SIZE_MAX); break;
    case 8:
        begin(KIND_TRY, 6, 400 + m, 0);
        cur.zero = 1;
        r = zm_try_calloc(cur.req);
        end(r, SIZE_MAX);
        break;
    case 9: /* grow, possibly moving */
        if (!tab[5].p) break;
        begin(KIND_TRY, 5, 100000 + m, 1);
        r = zm_try_realloc(tab[5].p, cur.req);
        end(r, SIZE_MAX);
        break;
    case 10: /* shrink */
        if (!tab[5].p) break;
        begin(KIND_TRY, 5, 20 + m, 1);
        r = zm_try_realloc(tab[5].p, cur.req);
        end(r, SIZE_MAX);
        break;
    case 11: begin(KIND_Z, 7, 123 + m, 0); r = zm_malloc_usable(cur.req, &u); end(r, u); break;
    case 12:
        begin(KIND_Z, 8, 456 + m, 0);
        cur.zero = 1;
        r = zm_calloc_usable(cur.req, &u);
        end(r, u);
        break;
    case 13:
        if (!tab[7].p) break;
        begin(KIND_Z, 7, 3000 + m, 1);
        r = zm_realloc_usable(tab[7].p, cur.req, &u);
        end(r, u);
        break;
    case 14: begin(KIND_TRY, 9, 99 + m, 0); r = zm_try_malloc_usable(cur.req, &u); end(r, u); break;
    case 15:
        begin(KIND_TRY, 10, 888 + m, 0);
        cur.zero = 1;
        r = zm_try_calloc_usable(cur.req, &u);
        end(r, u);
        break;
    case 16:
        if (!tab[9].p) break;
        begin(KIND_TRY, 9, 7000 + m, 1);
        r = zm_try_realloc_usable(tab[9].p, cur.req, &u);
        end(r, u);
        break;
    case 17: begin(KIND_TRY, 11, 0, 1); r = zm_try_realloc_usable(NULL, 0, &u); end(r, u); break;
    case 18: begin(KIND_Z, 12, 0, 0); r = zm_malloc(0); end(r, SIZE_MAX); break;
    case 19: begin(KIND_TRY, 13, 0, 0); r = zm_try_malloc(0); end(r, SIZE_MAX); break;
    case 22: /* realloc(NULL, 0) is malloc(0): its failure goes to the handler */
        begin(KIND_Z, 15, 0, 1);
        r = zm_realloc(NULL, 0);
        end(r, SIZE_MAX);
        break;
    case 20: /* a large block (mmap-sized), then a larger one */
        begin(KIND_Z, 14, ((size_t)1 << 20) + m, 0);
        r = zm_malloc(cur.req);
        end(r, SIZE_MAX);
        break;
    case 21:
        if (!tab[14].p) break;
        begin(KIND_Z, 14, ((size_t)2 << 20) + m, 1);
        r = zm_realloc(tab[14].p, cur.req);
        end(r, SIZE_MAX);
        break;
    case 23: { /* requests refused before the backend: no fault point used */
        long seen = zm__fault_seen(), inj = zm__fault_injected();
        assert_null(zm_try_malloc(zt_opaque((size_t)PTRDIFF_MAX)));
        assert_null(zm_try_calloc(zt_opaque(SIZE_MAX)));
        if (tab[1].p) assert_null(zm_try_realloc(tab[1].p, zt_opaque(SIZE_MAX)));
        assert_int_equal(zm__fault_seen(), seen);
        assert_int_equal(zm__fault_injected(), inj);
        check_accounting();
        break;
    }
    case 24: /* realloc to 0 frees and allocates nothing */
        if (!tab[3].p) break;
        {
            long seen = zm__fault_seen();
            assert_null(zm_realloc(tab[3].p, 0));
            tab[3].p = NULL;
            assert_int_equal(zm__fault_seen(), seen);
            check_accounting();
        }
        break;
    case 25: /* the three ways to free */
        release(0, 0);
        release(1, 1);
        release(2, 2);
        release(5, round % 3);
        release(7, (round + 1) % 3);
        release(14, (round + 2) % 3);
        break;
    default: /* the rest, except what the next round reallocates into */
        for (int s = 0; s < NSLOTS; s++) release(s, (s + round) % 3);
        break;
    }
}

/* Runs the whole workload; returns the failures it saw. */
static long run_workload(int jump) {
    memset(tab, 0, sizeof tab);
    g_jump = jump;
    g_failures = 0;
    oom_calls = oom_last = 0;
    g_step = 0;
    if (setjmp(g_jb)) { /* the OOM handler jumped out of the failing call */
        assert_true(g_jump);
        assert_true(cur.kind == KIND_Z);
        failed_by_injection();
        g_step = g_step + 1;
    }
    while (g_step < NSTEPS) {
        do_step(g_step);
        g_step = g_step + 1;
    }
    for (int s = 0; s < NSLOTS; s++) release(s, 0);
    assert_int_equal(zm_used_memory(), g_base);
    return g_failures;
}

static long count_points(void) {
    zm__fault_arm(LONG_MAX, 0); /* counting, never failing */
    assert_int_equal(run_workload(0), 0);
    long n = zm__fault_seen();
    assert_int_equal(zm__fault_injected(), 0);
    zm__fault_arm(0, 0);
    return n;
}

static int setup(void **state) {
    (void)state;
    zm_set_oom_handler(handler);
    g_base = zm_used_memory();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    zm__fault_arm(0, 0);
    zm_set_oom_handler(NULL);
    assert_int_equal(zm_used_memory(), g_base);
    return 0;
}

static void single_failures(int jump) {
    long n = count_points();
    assert_true(n >= 3 * 20);
    for (long nth = 1; nth <= n; nth++) {
        zm__fault_arm(nth, 0);
        long seen_fail = run_workload(jump);
        long inj = zm__fault_injected();
        if (inj != 1 || seen_fail != 1)
            fail_msg("point %ld of %ld: %ld injected, %ld seen", nth, n, inj, seen_fail);
        zm__fault_arm(0, 0);
    }
    g_points = n;
    g_runs += n;
    printf("fault injection: %ld points, %s handler, all exact\n", n, jump ? "longjmp" : "returning");
}

static void persistent_failures(int jump) {
    long n = count_points();
    for (long nth = 1; nth <= n; nth++) {
        zm__fault_arm(nth, 1);
        long seen_fail = run_workload(jump);
        long inj = zm__fault_injected();
        if (inj < 1 || inj != seen_fail)
            fail_msg("persistent from %ld of %ld: %ld injected, %ld seen", nth, n, inj, seen_fail);
        zm__fault_arm(0, 0);
    }
    g_points = n;
    g_runs += n;
    printf("fault injection: %ld persistent starts, %s handler, all exact\n", n,
           jump ? "longjmp" : "returning");
}

static void test_single_returning(void **state) { (void)state; single_failures(0); }
static void test_single_longjmp(void **state) { (void)state; single_failures(1); }
static void test_persistent_returning(void **state) { (void)state; persistent_failures(0); }
static void test_persistent_longjmp(void **state) { (void)state; persistent_failures(1); }

/* The injector itself: disarmed, nothing is counted; armed, it counts. */
static void test_injector_counts(void **state) {
    (void)state;
    zm__fault_arm(0, 0);
    void *p = zm_malloc(10);
    assert_int_equal(zm__fault_seen(), 0);
    zm__fault_arm(2, 0);
    void *a = zm_try_malloc(10), *b = zm_try_malloc(10), *c = zm_try_malloc(10);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    assert_int_equal(zm__fault_seen(), 3);
    assert_int_equal(zm__fault_injected(), 1);
    zm__fault_arm(0, 0);
    zm_free(a);
    zm_free(c);
    zm_free(p);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_injector_counts),
        cmocka_unit_test(test_single_returning),
        cmocka_unit_test(test_single_longjmp),
        cmocka_unit_test(test_persistent_returning),
        cmocka_unit_test(test_persistent_longjmp),
    };
    int rc = zt_run(tests, argc, argv, setup, teardown);
    if (rc == 0)
        printf("fault injection: %ld points, all exact (%ld runs: single and persistent failures, "
               "returning and longjmp OOM handlers)\n",
               g_points, g_runs);
    return rc;
}
